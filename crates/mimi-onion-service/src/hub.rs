//! The hub server: one front-end process of one shard.
//!
//! - `POST /v1/envelope` ([`media::ENVELOPE`], at most
//!   [`MAX_ENVELOPE_LEN`] bytes, read within `--read-timeout`): a request
//!   that reaches the hub logic gets `200`, [`media::RESPONSE`],
//!   `cache-control: no-store` and the fixed-size hub response (RSP-1,
//!   RSP-2), whatever the outcome. Before that logic, a wrong method gets
//!   `405`, a wrong media type `415`, a body over the limit `413`, a body
//!   that ends early `400`, a body too slow `408`; none of them touches
//!   the state.
//! - `GET /v1/configuration`: the signed configuration
//!   ([`media::CONFIGURATION`]) with `cache-control: max-age` up to
//!   [`media::CONFIGURATION_MAX_AGE`], as OHTTP serves key configurations.
//! - `GET /v1/stats`: counters, the groups this process handled, the
//!   response sizes it sent, the store's counts (JSON).
//!
//! An envelope for a group of another shard (an unroutable token, a
//! registration sent with a lobby token) is forwarded to that shard's
//! front-end (spec "Decoding at the Load Balancer": an internal hop, never
//! an error); the answer is relayed as it is.
//!
//! Accepted PublicMessages and PrivateMessages are fanned out (FAN-2): one
//! fan-out message per follower that the directory names for the room,
//! with that follower's recipient queues, through the [`Outbox`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use mimi_onion::admission::valid_provider_name;
use mimi_onion::hub::HubFrontEnd;
use mimi_onion::mls::message::WireFormat;
use mimi_onion::response::Status;
use mimi_onion::state::{HubState, HubStore, StoreResult};
use mimi_onion::test_utils::{from_hex, to_hex};
use mimi_onion::wire::MAX_ENVELOPE_LEN;
use mimi_onion_store_postgres::PostgresHubStore;
use mimi_onion_store_sqlite::SqliteHubStore;
use serde_json::json;

use crate::admission::{Ledger, QuotaAdmission};
use crate::http::{self, Client, Resp};
use crate::keys::HubKeys;
use crate::media;
use crate::outbox::{Follower, Outbox};
use crate::{Error, Result};

/// The hub's state: SQLite (default) or PostgreSQL.
pub enum AnyStore {
    /// One SQLite file.
    Sqlite(SqliteHubStore),
    /// A PostgreSQL database shared by the shard's front-ends.
    Postgres(Box<PostgresHubStore>),
}

impl HubStore for AnyStore {
    fn transact<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn HubState) -> StoreResult<R>,
    ) -> StoreResult<R> {
        match self {
            AnyStore::Sqlite(s) => s.transact(f),
            AnyStore::Postgres(s) => s.transact(f),
        }
    }
}

/// How a hub process runs.
#[derive(Clone, Debug)]
pub struct HubOptions {
    /// `hub-keys.json`.
    pub keys: PathBuf,
    /// This process's shard.
    pub shard: u32,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where the SQLite store, the outbox and the ledger live.
    pub data_dir: PathBuf,
    /// A PostgreSQL connection string: the store there instead of SQLite.
    pub postgres: Option<String>,
    /// The schema of the PostgreSQL store (default: the store crate's).
    pub postgres_schema: Option<String>,
    /// The followers fan-out goes to.
    pub followers: Vec<Follower>,
    /// The directory file: lines `<group_id hex> <follower> <queue>[,<queue>]`.
    pub directory: Option<PathBuf>,
    /// Front-ends of other shards: (shard, URL).
    pub peers: Vec<(u32, String)>,
    /// Read the sending provider from [`media::PROVIDER_HEADER`] (and
    /// honour [`media::FORWARDED_HEADER`]): only behind a trusted gateway.
    pub trust_provider_header: bool,
    /// Rooms per provider (ADM-3).
    pub quota: usize,
    /// The admission ledger that all shards share (default: in the data
    /// directory).
    pub ledger: Option<PathBuf>,
    /// Rooms without a namespace admitted for one provider each
    /// ([`QuotaAdmission::adopted`]): (provider, group_id).
    pub adopted: Vec<(String, Vec<u8>)>,
    /// Deadline for a request body.
    pub read_timeout: Duration,
    /// TLS certificate chain and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// CA certificates (PEM) of the providers' client certificates: with
    /// TLS, a client certificate then names the sending provider (ADM-1).
    pub tls_client_ca: Option<PathBuf>,
    /// Where to write the bound URL once listening.
    pub ready_file: Option<PathBuf>,
}

#[derive(Default)]
struct Stats {
    handled: AtomicU64,
    forwarded: AtomicU64,
    received_forwarded: AtomicU64,
    misrouted: AtomicU64,
    fanout_enqueued: AtomicU64,
    statuses: Mutex<BTreeMap<String, u64>>,
    groups: Mutex<BTreeSet<String>>,
    response_sizes: Mutex<BTreeSet<usize>>,
}

type Directory = HashMap<Vec<u8>, Vec<(usize, Vec<String>)>>;

struct HubService {
    front: Mutex<HubFrontEnd<AnyStore>>,
    config: Bytes,
    not_after: u64,
    shard: u32,
    peers: HashMap<u32, String>,
    peer_clients: Mutex<HashMap<u32, Vec<Client>>>,
    outbox: Arc<Outbox>,
    directory: Directory,
    ledger: Arc<Mutex<Ledger>>,
    trust_provider_header: bool,
    read_timeout: Duration,
    stats: Stats,
}

/// Reads a directory file.
pub fn read_directory(path: &std::path::Path, followers: &[Follower]) -> Result<Directory> {
    let text = std::fs::read_to_string(path)?;
    let mut dir: Directory = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(gid), Some(f), Some(queues)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::Config(
                "directory line: <group_id hex> <follower> <queues>",
            ));
        };
        let gid = from_hex(gid).map_err(|_| Error::Config("directory: group_id hex"))?;
        let f = followers
            .iter()
            .position(|x| x.name == f)
            .ok_or(Error::Config("directory names an unknown follower"))?;
        let queues = queues.split(',').map(str::to_string).collect();
        dir.entry(gid).or_default().push((f, queues));
    }
    Ok(dir)
}

/// Runs a hub process until it is killed.
pub async fn run(opts: HubOptions) -> Result<()> {
    let keys = HubKeys::read(&opts.keys)?;
    if opts.shard >= keys.shard_count {
        return Err(Error::Config("shard not below the shard count"));
    }
    std::fs::create_dir_all(&opts.data_dir)?;
    let store = match &opts.postgres {
        Some(url) => {
            // The synchronous client runs its own runtime: off this one's
            // threads, as every later store call is (spawn_blocking).
            let (url, schema) = (url.clone(), opts.postgres_schema.clone());
            let store = tokio::task::spawn_blocking(move || match schema {
                Some(schema) => PostgresHubStore::connect_with_schema(&url, &schema),
                None => PostgresHubStore::connect(&url),
            })
            .await
            .map_err(|_| Error::Db("connect".into()))??;
            AnyStore::Postgres(Box::new(store))
        }
        None => AnyStore::Sqlite(SqliteHubStore::open(
            opts.data_dir
                .join(format!("hub-shard-{}.sqlite", opts.shard)),
        )?),
    };
    let mut front = keys.front_end(store)?;
    // Envelopes of other shards' groups are forwarded, not processed here.
    front.set_own_shard(Some(opts.shard));
    let signed = keys.signed_configuration(&front)?;
    let not_after = signed
        .configuration
        .keys
        .iter()
        .map(|k| k.not_after)
        .min()
        .unwrap_or(0);
    let ledger_path = opts
        .ledger
        .clone()
        .unwrap_or_else(|| opts.data_dir.join("admissions.sqlite"));
    let ledger = Arc::new(Mutex::new(Ledger::open(Some(&ledger_path))?));
    front.set_admission(Box::new(QuotaAdmission {
        quota: opts.quota,
        ledger: ledger.clone(),
        adopted: opts.adopted.clone(),
    }));
    let directory = match &opts.directory {
        Some(p) => read_directory(p, &opts.followers)?,
        None => HashMap::new(),
    };
    let outbox = Outbox::open(
        &opts
            .data_dir
            .join(format!("outbox-shard-{}.sqlite", opts.shard)),
        opts.followers.clone(),
    )?;
    outbox.start();
    let svc = Arc::new(HubService {
        front: Mutex::new(front),
        config: Bytes::from(signed.to_bytes()?),
        not_after,
        shard: opts.shard,
        peers: opts.peers.iter().cloned().collect(),
        peer_clients: Mutex::new(HashMap::new()),
        outbox,
        directory,
        ledger,
        trust_provider_header: opts.trust_provider_header,
        read_timeout: opts.read_timeout,
        stats: Stats::default(),
    });
    let tls = match &opts.tls {
        Some((cert, key)) => Some(crate::tls::acceptor(
            cert,
            key,
            opts.tls_client_ca.as_deref(),
        )?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr()?);
    if let Some(p) = &opts.ready_file {
        crate::write_ready_file(p, &url)?;
    }
    eprintln!("hub shard {} listening on {url}", opts.shard);
    let handler: http::Handler = Arc::new(move |req| {
        let svc = svc.clone();
        Box::pin(async move { svc.route(req).await })
    });
    http::serve(listener, tls, handler).await;
    Ok(())
}

/// The fixed headers of every hub response (RSP-1: the same whatever the
/// outcome).
fn hub_response(body: Vec<u8>) -> Resp {
    let mut r = http::bytes(StatusCode::OK, media::RESPONSE, body);
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}

impl HubService {
    async fn route(self: Arc<Self>, req: Request<Incoming>) -> Resp {
        match req.uri().path() {
            media::ENVELOPE_PATH => self.envelope(req).await,
            media::CONFIGURATION_PATH => match *req.method() {
                Method::GET | Method::HEAD => self.configuration(),
                _ => http::method_not_allowed("GET, HEAD"),
            },
            media::STATS_PATH => match *req.method() {
                Method::GET => {
                    let me = self.clone();
                    tokio::task::spawn_blocking(move || me.stats())
                        .await
                        .unwrap_or_else(|_| {
                            http::text(StatusCode::INTERNAL_SERVER_ERROR, "stats\n")
                        })
                }
                _ => http::method_not_allowed("GET"),
            },
            _ => http::text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    fn configuration(&self) -> Resp {
        let left = self.not_after.saturating_sub(crate::unix_now());
        let max_age = left.min(media::CONFIGURATION_MAX_AGE);
        let mut r = http::bytes(StatusCode::OK, media::CONFIGURATION, self.config.clone());
        if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("max-age={max_age}")) {
            r.headers_mut().insert(hyper::header::CACHE_CONTROL, v);
        }
        r
    }

    async fn envelope(self: Arc<Self>, req: Request<Incoming>) -> Resp {
        if req.method() != Method::POST {
            return http::method_not_allowed("POST");
        }
        if !http::has_media_type(&req, media::ENVELOPE) {
            return http::text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected application/mimi-onion-envelope\n",
            );
        }
        if http::content_length(&req).is_some_and(|n| n > MAX_ENVELOPE_LEN as u64) {
            return http::text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
        }
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        // ADM-1: the provider the connection's client certificate names;
        // else, behind a trusted gateway only, the gateway's header.
        let peer = req
            .extensions()
            .get::<crate::tls::PeerProvider>()
            .map(|p| p.0.clone());
        let (provider, forwarded) = match (peer, self.trust_provider_header) {
            (Some(p), trust) => (Some(p), trust && header(media::FORWARDED_HEADER).is_some()),
            (None, true) => (
                header(media::PROVIDER_HEADER).filter(|p| valid_provider_name(p)),
                header(media::FORWARDED_HEADER).is_some(),
            ),
            (None, false) => (None, false),
        };
        let body = match http::read_body(req.into_body(), MAX_ENVELOPE_LEN, self.read_timeout).await
        {
            Ok(b) => b,
            Err(e) => return e.response(),
        };
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.process(&body, provider.as_deref(), forwarded))
            .await
            .unwrap_or_else(|_| http::text(StatusCode::INTERNAL_SERVER_ERROR, "hub\n"))
    }

    /// Forwards to the front-end of `shard`; `None` if that is not
    /// possible (no peer, peer down, a peer answer not a hub response).
    fn forward(&self, shard: u32, body: &[u8], provider: Option<&str>) -> Option<Resp> {
        let url = self.peers.get(&shard)?;
        let mut client = self
            .peer_clients
            .lock()
            .ok()
            .and_then(|mut m| m.get_mut(&shard).and_then(Vec::pop))
            .or_else(|| Client::new(url).ok())?;
        let mut headers = vec![
            ("content-type", media::ENVELOPE),
            (media::FORWARDED_HEADER, "1"),
        ];
        if let Some(p) = provider {
            headers.push((media::PROVIDER_HEADER, p));
        }
        let r = client
            .request("POST", media::ENVELOPE_PATH, &headers, body)
            .ok()?;
        if let Ok(mut m) = self.peer_clients.lock() {
            m.entry(shard).or_default().push(client);
        }
        if r.status != 200 || r.header("content-type") != Some(media::RESPONSE) {
            return None;
        }
        self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        Some(hub_response(r.body))
    }

    fn process(&self, body: &Bytes, provider: Option<&str>, forwarded: bool) -> Resp {
        let now = crate::unix_now();
        if forwarded {
            self.stats
                .received_forwarded
                .fetch_add(1, Ordering::Relaxed);
        }
        let Ok(mut front) = self.front.lock() else {
            return http::text(StatusCode::INTERNAL_SERVER_ERROR, "hub\n");
        };
        let outcome = front.handle_from(body.to_vec(), now, provider);
        // An envelope of another shard's group (a lobby token on a
        // registration, an unroutable token) was opened but not processed:
        // it goes to that shard, one hop (a forwarded one is never
        // forwarded again).
        if let Some(target) = front.take_misrouted() {
            drop(front);
            self.stats.misrouted.fetch_add(1, Ordering::Relaxed);
            if forwarded {
                return hub_response(outcome.response);
            }
            return self.forward(target, body, provider).unwrap_or_else(|| {
                let mut r = http::text(StatusCode::SERVICE_UNAVAILABLE, "shard unavailable\n");
                r.headers_mut().insert(
                    hyper::header::RETRY_AFTER,
                    hyper::header::HeaderValue::from_static("1"),
                );
                r
            });
        }
        let mut status = "unopenable".to_string();
        if let Some(view) = &outcome.view {
            status = match view.status {
                Status::Accepted => "accepted".into(),
                Status::Rejected(r) => r.name().into(),
            };
            if let Some(g) = &view.group_id {
                if let Ok(mut groups) = self.stats.groups.lock() {
                    groups.insert(to_hex(g));
                }
            }
            let group_message = matches!(
                view.wire_format,
                WireFormat::PublicMessage | WireFormat::PrivateMessage
            );
            if let (Status::Accepted, true, Some(g), Some(epoch)) =
                (view.status, group_message, &view.group_id, view.epoch)
            {
                // FAN-2, FAN-4: one message per follower, queued under the
                // front-end's lock, so in acceptance order.
                if let Some(recipients) = self.directory.get(g) {
                    match front.fan_out(g, epoch, &view.message, recipients.len()) {
                        Ok(messages) => {
                            let items: Vec<_> = recipients
                                .iter()
                                .zip(messages)
                                .map(|((f, q), m)| (*f, q.clone(), m))
                                .collect();
                            let n = items.len() as u64;
                            match self.outbox.enqueue(&items) {
                                Ok(()) => {
                                    self.stats.fanout_enqueued.fetch_add(n, Ordering::Relaxed);
                                }
                                Err(e) => eprintln!("hub: outbox: {e}"),
                            }
                        }
                        Err(e) => eprintln!("hub: fan-out: {e:?}"),
                    }
                }
            }
            // ADM-4: a room counts against its provider once accepted.
            if let (Status::Accepted, WireFormat::GroupInfo, Some(g), Some(p)) =
                (view.status, view.wire_format, &view.group_id, provider)
            {
                if let Ok(mut ledger) = self.ledger.lock() {
                    if let Err(e) = ledger.record(p, g) {
                        eprintln!("hub: admission ledger: {e}");
                    }
                }
            }
        } else if outcome.from_cache {
            status = "resend".into();
        }
        drop(front);
        self.stats.handled.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut s) = self.stats.statuses.lock() {
            *s.entry(status).or_default() += 1;
        }
        if let Ok(mut s) = self.stats.response_sizes.lock() {
            s.insert(outcome.response.len());
        }
        hub_response(outcome.response)
    }

    fn stats(&self) -> Resp {
        let counts = self.front.lock().ok().and_then(|f| f.counts().ok());
        let store = counts.map(|c| {
            json!({
                "groups": c.groups,
                "leaf_keys": c.leaf_keys,
                "spent_tokens": c.spent_tokens,
                "envelopes": c.envelopes,
                "cached_responses": c.cached_responses,
                "handshakes": c.handshakes,
            })
        });
        let s = &self.stats;
        let groups: Vec<String> = s
            .groups
            .lock()
            .map(|g| g.iter().cloned().collect())
            .unwrap_or_default();
        let statuses = s.statuses.lock().map(|m| json!(*m)).unwrap_or(json!({}));
        let sizes: Vec<usize> = s
            .response_sizes
            .lock()
            .map(|g| g.iter().copied().collect())
            .unwrap_or_default();
        http::json(&json!({
            "shard": self.shard,
            "handled": s.handled.load(Ordering::Relaxed),
            "forwarded": s.forwarded.load(Ordering::Relaxed),
            "received_forwarded": s.received_forwarded.load(Ordering::Relaxed),
            "misrouted": s.misrouted.load(Ordering::Relaxed),
            "statuses": statuses,
            "groups": groups,
            "response_sizes": sizes,
            "fanout_enqueued": s.fanout_enqueued.load(Ordering::Relaxed),
            "outbox_pending": self.outbox.pending(),
            "outbox_delivered": self.outbox.delivered(),
            "outbox_retries": self.outbox.retries(),
            "store": store,
        }))
    }
}
