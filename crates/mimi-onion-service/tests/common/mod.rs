//! Processes on loopback for the tests: followers, hub shards and a
//! balancer, each a child process of `mimi-onion-service`, killed when
//! the [`Cluster`] is dropped.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mimi_onion::state::InMemoryHubStore;
use mimi_onion_service::http::Client;
use mimi_onion_service::keys::HubKeys;
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mimi-onion-service");

/// A child process, killed on drop.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// True while the process runs (it did not panic or exit).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Starts `mimi-onion-service <args> --ready-file F` and waits for F.
pub fn spawn(name: &str, dir: &Path, args: &[String]) -> Proc {
    let ready = dir.join(format!("{name}.ready"));
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(BIN)
        .args(args)
        .arg("--ready-file")
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut p = Proc {
        name: name.to_string(),
        child,
        url: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(&ready) {
            p.url = text.trim().to_string();
            return p;
        }
        assert!(p.alive(), "{name} exited: {}", log_of(dir, name));
        assert!(Instant::now() < deadline, "{name} not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process's log.
pub fn log_of(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A room's recipients: (follower index, queues).
pub type Recipients = Vec<(usize, String)>;

/// How to start a cluster.
pub struct ClusterOptions {
    /// Rooms whose fan-out the directory routes: (group_id, [(follower
    /// index, queue)]).
    pub rooms: Vec<(Vec<u8>, Recipients)>,
    /// Followers, each with its `--fail-acks`.
    pub followers: Vec<u64>,
    /// Rooms per provider.
    pub quota: usize,
    /// Body deadline of the hubs and the balancer (ms).
    pub read_timeout_ms: u64,
    /// Rooms without a namespace the hubs admit for one provider each
    /// (`--adopt`): (group_id, provider).
    pub adopt: Vec<(Vec<u8>, String)>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            rooms: Vec::new(),
            followers: vec![0, 0],
            quota: 100,
            read_timeout_ms: 10_000,
            adopt: Vec::new(),
        }
    }
}

/// Two hub shards, followers and a balancer.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub keys: HubKeys,
    pub followers: Vec<Proc>,
    pub hubs: Vec<Proc>,
    pub balancer: Proc,
}

/// The key directory of a cluster, with shard count 2.
pub fn make_keys(dir: &Path) -> HubKeys {
    make_keys_with(dir, &[])
}

/// [`make_keys`] with more arguments of `init`.
pub fn make_keys_with(dir: &Path, args: &[String]) -> HubKeys {
    let out = Command::new(BIN)
        .args(["init", "--shards", "2"])
        .args(args)
        .arg(dir.join("keys"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    HubKeys::read(&dir.join("keys/hub-keys.json")).unwrap()
}

/// The shard of a group under these keys.
pub fn shard_of(keys: &HubKeys, group_id: &[u8]) -> u32 {
    keys.front_end(InMemoryHubStore::new())
        .unwrap()
        .shard_of(group_id)
}

/// Room names under `provider` whose groups cover both shards: `n` of them,
/// alternating shard 0 and shard 1.
pub fn rooms_on_both_shards(keys: &HubKeys, provider: &str, prefix: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut want = 0;
    let mut i = 0;
    while out.len() < n {
        let name = format!("{prefix}{i}");
        if shard_of(keys, format!("{provider}/{name}").as_bytes()) == want {
            out.push(name);
            want = 1 - want;
        }
        i += 1;
    }
    out
}

impl Cluster {
    /// Starts followers, two hub shards and a balancer in a new temporary
    /// directory whose keys are `keys` (made by [`make_keys`] there).
    pub fn start(dir: tempfile::TempDir, keys: HubKeys, opts: ClusterOptions) -> Cluster {
        let d = dir.path().to_path_buf();
        let followers: Vec<Proc> = opts
            .followers
            .iter()
            .enumerate()
            .map(|(i, fail)| {
                spawn(
                    &format!("follower{i}"),
                    &d,
                    &[
                        "follower".into(),
                        "--fail-acks".into(),
                        fail.to_string(),
                        "--data".into(),
                        path(&d.join(format!("follower{i}"))),
                    ],
                )
            })
            .collect();
        let mut directory = String::new();
        for (gid, recipients) in &opts.rooms {
            for (f, q) in recipients {
                directory.push_str(&format!(
                    "{} f{f} {q}\n",
                    mimi_onion::test_utils::to_hex(gid)
                ));
            }
        }
        std::fs::write(d.join("directory.txt"), directory).unwrap();
        let ports = [free_port(), free_port()];
        let hubs: Vec<Proc> = (0..2)
            .map(|shard| {
                let mut args: Vec<String> = vec![
                    "hub".into(),
                    "--keys".into(),
                    path(&d.join("keys/hub-keys.json")),
                    "--shard".into(),
                    shard.to_string(),
                    "--listen".into(),
                    format!("127.0.0.1:{}", ports[shard]),
                    "--data".into(),
                    path(&d.join(format!("data{shard}"))),
                    "--directory".into(),
                    path(&d.join("directory.txt")),
                    "--peer".into(),
                    format!("{}=http://127.0.0.1:{}", 1 - shard, ports[1 - shard]),
                    "--trust-provider-header".into(),
                    "--quota".into(),
                    opts.quota.to_string(),
                    "--ledger".into(),
                    path(&d.join("admissions.sqlite")),
                    "--read-timeout-ms".into(),
                    opts.read_timeout_ms.to_string(),
                ];
                for (gid, provider) in &opts.adopt {
                    args.push("--adopt".into());
                    args.push(format!(
                        "{}={provider}",
                        mimi_onion::test_utils::to_hex(gid)
                    ));
                }
                for (i, f) in followers.iter().enumerate() {
                    args.push("--follower".into());
                    args.push(format!("f{i}={}", f.url));
                }
                spawn(&format!("hub{shard}"), &d, &args)
            })
            .collect();
        let balancer = spawn(
            "balancer",
            &d,
            &[
                "balancer".into(),
                "--keys".into(),
                path(&d.join("keys/balancer-keys.json")),
                "--backend".into(),
                format!("0={}", hubs[0].url),
                "--backend".into(),
                format!("1={}", hubs[1].url),
                "--read-timeout-ms".into(),
                opts.read_timeout_ms.to_string(),
            ],
        );
        Cluster {
            dir,
            keys,
            followers,
            hubs,
            balancer,
        }
    }

    /// The public signing key file.
    pub fn signing_key_file(&self) -> PathBuf {
        self.dir.path().join("keys/hub-signing-key.hex")
    }

    /// Every process still runs.
    pub fn all_alive(&mut self) -> bool {
        let mut ok = self.balancer.alive();
        for p in self.hubs.iter_mut().chain(self.followers.iter_mut()) {
            ok &= p.alive();
        }
        ok
    }
}

/// A path as a string argument.
pub fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// GET `url` + `path` as JSON.
pub fn get_json(url: &str, path: &str) -> Value {
    let r = Client::new(url)
        .unwrap()
        .request("GET", path, &[], &[])
        .unwrap();
    assert_eq!(r.status, 200, "GET {path}");
    serde_json::from_slice(&r.body).unwrap()
}

/// A raw HTTP exchange: writes `request`, then reads until the server
/// closes or `wait` passes; returns what came back.
pub fn raw(addr: &str, request: &[u8], half_close: bool, wait: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(request).unwrap();
    if half_close {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                // One response is enough: stop once its body is complete.
                if let Some(len) = complete_len(&out) {
                    if out.len() >= len {
                        break;
                    }
                }
            }
            Err(_) => break,
        }
    }
    out
}

/// The total length of a response with a `Content-Length`, once its head
/// is in `bytes`.
fn complete_len(bytes: &[u8]) -> Option<usize> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    Some(end + len)
}

/// The status code of a raw response.
pub fn status_of(response: &[u8]) -> u16 {
    String::from_utf8_lossy(response)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The head (lowercase, without `date`) and body of a raw response.
pub fn split_response(response: &[u8]) -> (Vec<String>, Vec<u8>) {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
    let lines = head
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("date:"))
        .map(str::to_string)
        .collect();
    (lines, response[end..].to_vec())
}
