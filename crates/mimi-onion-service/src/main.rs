//! `mimi-onion-service`: the hub, load balancer, follower and client of
//! mimi-onion over HTTP (see the crate's README).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mimi_onion_service::outbox::Follower;
use mimi_onion_service::{balancer, client, follower, hub, keys, Error, Result};

#[derive(Parser)]
#[command(
    name = "mimi-onion-service",
    version,
    about = "mimi-onion hub, balancer, follower and client over HTTP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant (the hub's
// options) costs nothing worth boxing it for.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Writes fresh key material for a hub into DIR: hub-keys.json (the
    /// hub's), balancer-keys.json (the balancers'), hub-signing-key.hex
    /// (public; rooms carry it).
    Init {
        /// Directory to write into.
        dir: PathBuf,
        /// Number of shards.
        #[arg(long, default_value_t = 2)]
        shards: u32,
        /// The lobby shard (for messages that name no group).
        #[arg(long, default_value_t = 0)]
        lobby: u32,
        /// Lifetime of the keys, in days.
        #[arg(long, default_value_t = 30)]
        days: u64,
        /// Take the configuration-signing key's seed (32 bytes, hex) from
        /// this file instead of drawing one. For a test hub whose rooms
        /// carry a published key, such as the test vectors' demo rooms
        /// (`signing_key_seed` of test-vectors/hub-configuration.json):
        /// anyone can sign for such a hub.
        #[arg(long)]
        signing_seed: Option<PathBuf>,
    },
    /// Runs a hub front-end of one shard.
    Hub {
        /// hub-keys.json.
        #[arg(long)]
        keys: PathBuf,
        /// This process's shard.
        #[arg(long)]
        shard: u32,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Directory of the SQLite store, the outbox and the admission ledger.
        #[arg(long)]
        data: PathBuf,
        /// PostgreSQL connection string: keep the hub state there instead.
        #[arg(long)]
        postgres: Option<String>,
        /// The schema of the PostgreSQL store (several hubs in one database).
        #[arg(long, requires = "postgres")]
        postgres_schema: Option<String>,
        /// A follower: NAME=http://host:port (repeatable).
        #[arg(long = "follower")]
        followers: Vec<String>,
        /// Directory file: lines "<group_id hex> <follower name> <queue>[,<queue>]".
        #[arg(long)]
        directory: Option<PathBuf>,
        /// Another shard's front-end: SHARD=http://host:port (repeatable).
        #[arg(long = "peer")]
        peers: Vec<String>,
        /// Take the sending provider from the mimi-onion-provider header
        /// (only behind the provider's trusted gateway or the hub's balancer).
        #[arg(long)]
        trust_provider_header: bool,
        /// Rooms one provider may register (ADM-3).
        #[arg(long, default_value_t = 100)]
        quota: usize,
        /// The admission ledger (SQLite) every shard of the hub shares;
        /// default: admissions.sqlite in --data.
        #[arg(long)]
        ledger: Option<PathBuf>,
        /// Admit the room GROUP_ID (hex), which has no namespace, for
        /// PROVIDER only: GROUP_ID=PROVIDER (repeatable; the hub's own
        /// exception to ADM-2, e.g. for the test vectors' demo room).
        #[arg(long = "adopt")]
        adopt: Vec<String>,
        /// Deadline for a request body, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        read_timeout_ms: u64,
        /// TLS certificate chain (PEM).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// CA certificates (PEM) of the providers' TLS client certificates:
        /// a client certificate's DNS name is then the sending provider.
        #[arg(long, requires = "tls_cert")]
        tls_client_ca: Option<PathBuf>,
        /// Write the bound URL here once listening.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Runs the token-routing load balancer.
    Balancer {
        /// balancer-keys.json.
        #[arg(long)]
        keys: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// A backend: SHARD=http://host:port (repeatable).
        #[arg(long = "backend", required = true)]
        backends: Vec<String>,
        /// Deadline for a request head and the routing bytes, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        read_timeout_ms: u64,
        /// Write the bound URL here once listening.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Runs a follower endpoint.
    Follower {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Store but answer 503 to the first N deliveries (a lost ack).
        #[arg(long, default_value_t = 0)]
        fail_acks: u64,
        /// Directory of the queues (follower.sqlite); in memory without it.
        #[arg(long)]
        data: Option<PathBuf>,
        /// How long an idempotency key is remembered, in seconds.
        #[arg(long, default_value_t = follower::DEFAULT_DEDUPE_WINDOW.as_secs())]
        dedupe_window_secs: u64,
        /// Write the bound URL here once listening.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Runs a client against a hub or balancer.
    Client {
        /// The hub or balancer: http://host:port.
        #[arg(long)]
        hub: String,
        /// The configuration-signing key the rooms carry (hub-signing-key.hex).
        #[arg(long)]
        signing_key: PathBuf,
        /// The sending provider, as its gateway names it.
        #[arg(long)]
        provider: Option<String>,
        /// A room: its group_id is "<provider>/<ROOM>" (repeatable; life
        /// and load need one at least).
        #[arg(long = "room")]
        rooms: Vec<String>,
        #[command(subcommand)]
        mode: ClientMode,
    },
}

#[derive(Subcommand)]
enum ClientMode {
    /// Each room's life (registration, application messages, a proposal,
    /// a commit, application messages in the new epoch), then each queue
    /// read as a member; prints a JSON report.
    Life {
        /// Application messages per epoch.
        #[arg(long, default_value_t = 3)]
        apps: usize,
        /// A queue to check: http://host:port/QUEUE (repeatable).
        #[arg(long = "check")]
        checks: Vec<String>,
        /// How long to wait for fan-out to arrive, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        settle_ms: u64,
    },
    /// Registers the rooms, then sends COUNT application messages over
    /// them, one thread per room; prints a JSON report.
    Load {
        /// Application messages in all.
        #[arg(long, default_value_t = 2000)]
        count: usize,
        /// Stop sending after this many seconds.
        #[arg(long, default_value_t = 60)]
        limit_s: u64,
    },
    /// Registers the test vectors' demo room of MLS suite 1 (the group of
    /// key-layer.json, whose F of epoch 0 fanout.json publishes) at epoch
    /// 0; prints a JSON report. The hub must use the vectors' signing key
    /// (`init --signing-seed`) and adopt the room for --provider.
    VectorsRoom,
}

fn followers(specs: &[String]) -> Result<Vec<Follower>> {
    specs
        .iter()
        .map(|s| {
            let (name, url) = s
                .split_once('=')
                .ok_or(Error::Config("--follower NAME=URL"))?;
            Ok(Follower {
                name: name.to_string(),
                url: url.to_string(),
            })
        })
        .collect()
}

fn shard_urls(specs: &[String]) -> Result<Vec<(u32, String)>> {
    specs
        .iter()
        .map(|s| {
            let (shard, url) = s.split_once('=').ok_or(Error::Config("SHARD=URL"))?;
            Ok((
                shard
                    .parse()
                    .map_err(|_| Error::Config("SHARD=URL: shard"))?,
                url.to_string(),
            ))
        })
        .collect()
}

fn adoptions(specs: &[String]) -> Result<Vec<(String, Vec<u8>)>> {
    specs
        .iter()
        .map(|s| {
            let (gid, provider) = s
                .split_once('=')
                .ok_or(Error::Config("--adopt GROUP_ID=PROVIDER"))?;
            if !mimi_onion::admission::valid_provider_name(provider) {
                return Err(Error::Config("--adopt: not a provider name"));
            }
            let gid = mimi_onion::test_utils::from_hex(gid)
                .map_err(|_| Error::Config("--adopt: group_id hex"))?;
            Ok((provider.to_string(), gid))
        })
        .collect()
}

fn read_seed(path: &std::path::Path) -> Result<[u8; 32]> {
    let text = std::fs::read_to_string(path)?;
    mimi_onion::test_utils::from_hex(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(Error::Config("--signing-seed: 32 bytes of hex"))
}

fn split_check(s: &str) -> Result<(String, String)> {
    let rest = s
        .strip_prefix("http://")
        .ok_or(Error::Config("--check http://host:port/QUEUE"))?;
    let (auth, queue) = rest
        .split_once('/')
        .ok_or(Error::Config("--check http://host:port/QUEUE"))?;
    Ok((format!("http://{auth}"), queue.to_string()))
}

fn run(cli: Cli) -> Result<()> {
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Error::Io)
    };
    match cli.command {
        Command::Init {
            dir,
            shards,
            lobby,
            days,
            signing_seed,
        } => {
            let mut k = keys::HubKeys::generate(
                shards,
                lobby,
                mimi_onion_service::unix_now(),
                days * 86_400,
            )?;
            if let Some(p) = signing_seed {
                k.signing_seed = read_seed(&p)?;
            }
            k.write(&dir)?;
            println!("wrote {}", dir.display());
            Ok(())
        }
        Command::Hub {
            keys,
            shard,
            listen,
            data,
            postgres,
            postgres_schema,
            followers: f,
            directory,
            peers,
            trust_provider_header,
            quota,
            ledger,
            adopt,
            read_timeout_ms,
            tls_cert,
            tls_key,
            tls_client_ca,
            ready_file,
        } => {
            let opts = hub::HubOptions {
                keys,
                shard,
                listen,
                data_dir: data,
                postgres,
                postgres_schema,
                followers: followers(&f)?,
                directory,
                peers: shard_urls(&peers)?,
                trust_provider_header,
                quota,
                ledger,
                adopted: adoptions(&adopt)?,
                read_timeout: Duration::from_millis(read_timeout_ms),
                tls: tls_cert.zip(tls_key),
                tls_client_ca,
                ready_file,
            };
            runtime()?.block_on(hub::run(opts))
        }
        Command::Balancer {
            keys,
            listen,
            backends,
            read_timeout_ms,
            ready_file,
        } => runtime()?.block_on(balancer::run(balancer::BalancerOptions {
            keys,
            listen,
            backends: shard_urls(&backends)?,
            read_timeout: Duration::from_millis(read_timeout_ms),
            ready_file,
        })),
        Command::Follower {
            listen,
            fail_acks,
            data,
            dedupe_window_secs,
            ready_file,
        } => runtime()?.block_on(follower::run(follower::FollowerOptions {
            listen,
            fail_acks,
            data_dir: data,
            dedupe_window: Duration::from_secs(dedupe_window_secs),
            ready_file,
        })),
        Command::Client {
            hub,
            signing_key,
            provider,
            rooms,
            mode,
        } => {
            let key = keys::read_signing_key(&signing_key)?;
            let prefix = provider.clone().unwrap_or_default();
            let group_ids: Vec<Vec<u8>> = rooms
                .iter()
                .map(|r| format!("{prefix}/{r}").into_bytes())
                .collect();
            let report = match mode {
                ClientMode::Life {
                    apps,
                    checks,
                    settle_ms,
                } => {
                    if group_ids.is_empty() {
                        return Err(Error::Usage("life needs at least one --room"));
                    }
                    let queues = checks
                        .iter()
                        .map(|c| split_check(c))
                        .collect::<Result<Vec<_>>>()?;
                    client::life(
                        &hub,
                        &key,
                        provider.as_deref(),
                        &group_ids,
                        apps,
                        &queues,
                        Duration::from_millis(settle_ms),
                    )?
                }
                ClientMode::Load { count, limit_s } => client::load(
                    &hub,
                    &key,
                    provider.as_deref(),
                    &group_ids,
                    count,
                    Duration::from_secs(limit_s),
                )?,
                ClientMode::VectorsRoom => {
                    client::register_vectors_room(&hub, &key, provider.as_deref())?
                }
            };
            println!("{report}");
            Ok(())
        }
    }
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mimi-onion-service: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
