//! The hub's load balancer: a reverse proxy that routes envelopes by
//! their routing token (TOK-1 to TOK-3) and reads nothing else of them.
//!
//! For each request it reads the HTTP/1.1 head (peeking for its end, so
//! that no body byte is consumed with it), then for `POST /v1/envelope`
//! exactly the first [`ROUTING_PREFIX`] bytes of the body (version and
//! token), asks [`LoadBalancer::route`], and picks a backend: one of the
//! token's shard, or any backend for an unroutable token, round robin,
//! skipping a backend that refuses connections. It then writes the head
//! and those bytes to the backend and splices the rest of the body
//! through a fixed 8 KiB buffer: no parsing, no buffering of the
//! envelope. The response is relayed as it comes.
//!
//! Every other request (the configuration, for instance) goes to any
//! backend the same way, without the token step; `GET /v1/stats` is the
//! balancer's own: how many body bytes it had consumed when it chose a
//! backend (at most [`ROUTING_PREFIX`]), per shard counts, backend
//! failures.
//!
//! Bodies need a `Content-Length` (`411` otherwise); a body above the
//! largest legal envelope gets `413` before anything is forwarded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mimi_onion::balancer::{LoadBalancer, Route};
use mimi_onion::token::TOKEN_LEN;
use mimi_onion::wire::{MAX_ENVELOPE_LEN, TOKEN_OFFSET};
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::keys::BalancerKeys;
use crate::media;
use crate::{Error, Result};

/// The body bytes the balancer reads before it chooses: the version byte
/// and the routing token.
pub const ROUTING_PREFIX: usize = TOKEN_OFFSET + TOKEN_LEN;

/// The largest request head accepted.
const MAX_HEAD: usize = 8192;

/// How long an idle backend connection is reused.
const IDLE_REUSE: Duration = Duration::from_secs(4);

/// How a balancer process runs.
#[derive(Clone, Debug)]
pub struct BalancerOptions {
    /// `balancer-keys.json`.
    pub keys: PathBuf,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Backends: (shard, `http://host:port`).
    pub backends: Vec<(u32, String)>,
    /// Deadline for a request head and for each body read.
    pub read_timeout: Duration,
    /// Where to write the bound URL once listening.
    pub ready_file: Option<PathBuf>,
}

struct Backend {
    addr: SocketAddr,
    idle: Mutex<Vec<(TcpStream, Instant)>>,
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    envelopes: AtomicU64,
    unroutable: AtomicU64,
    max_prefix: AtomicU64,
    backend_failures: AtomicU64,
    routed: Mutex<HashMap<u32, u64>>,
}

struct Balancer {
    lb: LoadBalancer,
    backends: Vec<Backend>,
    by_shard: HashMap<u32, Vec<usize>>,
    rr: AtomicUsize,
    read_timeout: Duration,
    stats: Stats,
}

/// Runs a balancer until it is killed.
pub async fn run(opts: BalancerOptions) -> Result<()> {
    let keys = BalancerKeys::read(&opts.keys)?;
    if opts.backends.is_empty() {
        return Err(Error::Config("no backend"));
    }
    let mut backends = Vec::new();
    let mut by_shard: HashMap<u32, Vec<usize>> = HashMap::new();
    for (shard, url) in &opts.backends {
        let addr: SocketAddr = crate::http::authority(url)?
            .parse()
            .map_err(|_| Error::Config("backend must be http://ip:port"))?;
        by_shard.entry(*shard).or_default().push(backends.len());
        backends.push(Backend {
            addr,
            idle: Mutex::new(Vec::new()),
        });
    }
    let me = Arc::new(Balancer {
        lb: LoadBalancer::new(keys.tokens()?, keys.shard_count),
        backends,
        by_shard,
        rr: AtomicUsize::new(0),
        read_timeout: opts.read_timeout,
        stats: Stats::default(),
    });
    let listener = TcpListener::bind(opts.listen).await?;
    let url = format!("http://{}", listener.local_addr()?);
    if let Some(p) = &opts.ready_file {
        crate::write_ready_file(p, &url)?;
    }
    eprintln!("balancer listening on {url}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let me = me.clone();
        tokio::spawn(async move {
            let _ = me.connection(stream).await;
        });
    }
}

/// A parsed request head.
struct Head {
    raw: Vec<u8>,
    method: String,
    path: String,
    content_length: Option<u64>,
    chunked: bool,
    close: bool,
}

fn parse_head(raw: Vec<u8>) -> Option<Head> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&raw) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let mut content_length = None;
    let mut chunked = false;
    let mut close = false;
    for h in req.headers.iter() {
        let v = std::str::from_utf8(h.value).ok()?.trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            let n: u64 = v.parse().ok()?;
            if content_length.is_some_and(|c| c != n) {
                return None;
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = v.eq_ignore_ascii_case("close");
        }
    }
    Some(Head {
        method: req.method?.to_string(),
        path: req.path?.to_string(),
        raw,
        content_length,
        chunked,
        close,
    })
}

async fn answer(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let msg = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(msg.as_bytes()).await
}

impl Balancer {
    /// Reads a request head without consuming any byte after it: peeks,
    /// and consumes only up to the blank line that ends the head. `None`
    /// at a clean end of the connection.
    async fn read_head(&self, stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
        let mut head = Vec::new();
        let mut buf = vec![0u8; MAX_HEAD];
        loop {
            let n = stream.peek(&mut buf).await?;
            if n == 0 {
                return if head.is_empty() {
                    Ok(None)
                } else {
                    Err(std::io::ErrorKind::UnexpectedEof.into())
                };
            }
            // The blank line may straddle what was consumed and the peek.
            let keep = head.len().min(3);
            let mut window = head[head.len() - keep..].to_vec();
            window.extend_from_slice(&buf[..n]);
            if let Some(end) = window.windows(4).position(|w| w == b"\r\n\r\n") {
                let take = end + 4 - keep;
                let mut exact = vec![0u8; take];
                stream.read_exact(&mut exact).await?;
                head.extend_from_slice(&exact);
                return Ok(Some(head));
            }
            let mut all = vec![0u8; n];
            stream.read_exact(&mut all).await?;
            head.extend_from_slice(&all);
            if head.len() > MAX_HEAD {
                return Err(std::io::Error::other("head too large"));
            }
        }
    }

    async fn connection(self: Arc<Self>, mut client: TcpStream) -> std::io::Result<()> {
        loop {
            let raw =
                match tokio::time::timeout(self.read_timeout, self.read_head(&mut client)).await {
                    Ok(Ok(Some(raw))) => raw,
                    Ok(Ok(None)) => return Ok(()),
                    Ok(Err(_)) => {
                        let _ = answer(&mut client, "400 Bad Request", "bad request head\n").await;
                        return Ok(());
                    }
                    Err(_) => {
                        let _ = answer(&mut client, "408 Request Timeout", "head too slow\n").await;
                        return Ok(());
                    }
                };
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let Some(head) = parse_head(raw) else {
                answer(&mut client, "400 Bad Request", "bad request head\n").await?;
                return Ok(());
            };
            if head.chunked {
                answer(
                    &mut client,
                    "411 Length Required",
                    "content-length required\n",
                )
                .await?;
                return Ok(());
            }
            let length = head.content_length.unwrap_or(0);
            if length > MAX_ENVELOPE_LEN as u64 {
                answer(&mut client, "413 Payload Too Large", "body too large\n").await?;
                return Ok(());
            }
            if head.method == "GET" && head.path == media::STATS_PATH {
                let body = self.stats_json();
                let msg = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                client.write_all(msg.as_bytes()).await?;
                continue;
            }
            // TOK-1: the version byte and the token, nothing more.
            let is_envelope = head.method == "POST" && head.path == media::ENVELOPE_PATH;
            let want = if is_envelope {
                (ROUTING_PREFIX as u64).min(length) as usize
            } else {
                0
            };
            let mut prefix = vec![0u8; want];
            match tokio::time::timeout(self.read_timeout, client.read_exact(&mut prefix)).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => {
                    let _ = answer(&mut client, "400 Bad Request", "incomplete body\n").await;
                    return Ok(());
                }
                Err(_) => {
                    let _ = answer(&mut client, "408 Request Timeout", "body too slow\n").await;
                    return Ok(());
                }
            }
            let candidates = if is_envelope {
                self.stats.envelopes.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .max_prefix
                    .fetch_max(prefix.len() as u64, Ordering::Relaxed);
                match self.lb.route(&prefix) {
                    Route::Shard(s) if self.by_shard.contains_key(&s) => {
                        if let Ok(mut r) = self.stats.routed.lock() {
                            *r.entry(s).or_default() += 1;
                        }
                        self.by_shard[&s].clone()
                    }
                    _ => {
                        self.stats.unroutable.fetch_add(1, Ordering::Relaxed);
                        (0..self.backends.len()).collect()
                    }
                }
            } else {
                (0..self.backends.len()).collect()
            };
            let Some((mut backend, index)) = self.connect(&candidates, &head.raw, &prefix).await
            else {
                answer(&mut client, "502 Bad Gateway", "no backend available\n").await?;
                return Ok(());
            };
            // The rest of the body, spliced through without looking at it.
            let rest = length - prefix.len() as u64;
            let copied = {
                let mut limited = (&mut client).take(rest);
                tokio::io::copy(&mut limited, &mut backend).await
            };
            if !matches!(copied, Ok(n) if n == rest) {
                // The client's body stopped: the backend answers what it
                // got (400, 408); relay it and end the connection.
                let _ = backend.shutdown().await;
            }
            let mut reader = BufReader::new(backend);
            let keep = match tokio::time::timeout(
                Duration::from_secs(60),
                relay_response(&mut reader, &mut client),
            )
            .await
            {
                Ok(Ok(keep)) => keep,
                _ => {
                    self.stats.backend_failures.fetch_add(1, Ordering::Relaxed);
                    let _ = answer(&mut client, "502 Bad Gateway", "backend failed\n").await;
                    return Ok(());
                }
            };
            if keep && reader.buffer().is_empty() && matches!(copied, Ok(n) if n == rest) {
                if let Ok(mut idle) = self.backends[index].idle.lock() {
                    idle.push((reader.into_inner(), Instant::now()));
                }
            }
            if head.close || !matches!(copied, Ok(n) if n == rest) {
                return Ok(());
            }
        }
    }

    /// A connection to one of `candidates` (round robin from a moving
    /// start) with the head and prefix written to it; a backend that
    /// refuses is skipped.
    async fn connect(
        &self,
        candidates: &[usize],
        head: &[u8],
        prefix: &[u8],
    ) -> Option<(TcpStream, usize)> {
        if candidates.is_empty() {
            return None;
        }
        let start = self.rr.fetch_add(1, Ordering::Relaxed);
        for k in 0..candidates.len() {
            let index = candidates[(start + k) % candidates.len()];
            let backend = &self.backends[index];
            // A kept connection first; a stale one is dropped.
            loop {
                let kept = backend.idle.lock().ok().and_then(|mut v| v.pop());
                let Some((mut s, since)) = kept else {
                    break;
                };
                if since.elapsed() > IDLE_REUSE {
                    continue;
                }
                if s.write_all(head).await.is_ok() && s.write_all(prefix).await.is_ok() {
                    return Some((s, index));
                }
            }
            match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(backend.addr))
                .await
            {
                Ok(Ok(mut s)) => {
                    let _ = s.set_nodelay(true);
                    if s.write_all(head).await.is_ok() && s.write_all(prefix).await.is_ok() {
                        return Some((s, index));
                    }
                    self.stats.backend_failures.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    self.stats.backend_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        None
    }

    fn stats_json(&self) -> String {
        let s = &self.stats;
        let routed: HashMap<String, u64> = s
            .routed
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.to_string(), *v)).collect())
            .unwrap_or_default();
        json!({
            "requests": s.requests.load(Ordering::Relaxed),
            "envelopes": s.envelopes.load(Ordering::Relaxed),
            "unroutable": s.unroutable.load(Ordering::Relaxed),
            "routed": routed,
            "max_body_bytes_before_choice": s.max_prefix.load(Ordering::Relaxed),
            "routing_prefix": ROUTING_PREFIX,
            "backend_failures": s.backend_failures.load(Ordering::Relaxed),
        })
        .to_string()
    }
}

/// Relays one response (head and `Content-Length` body) from the backend
/// to the client; returns whether the backend connection may be kept.
async fn relay_response(
    backend: &mut BufReader<TcpStream>,
    client: &mut TcpStream,
) -> std::io::Result<bool> {
    let mut head = Vec::new();
    let mut length: u64 = 0;
    let mut keep = true;
    let mut first = true;
    loop {
        let mut line = Vec::new();
        let n = backend.read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&line);
        if head.len() > MAX_HEAD {
            return Err(std::io::Error::other("response head too large"));
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if first {
            first = false;
            continue;
        }
        if text.is_empty() {
            break;
        }
        if let Some((name, value)) = text.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value
                    .parse()
                    .map_err(|_| std::io::Error::other("content-length"))?;
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                keep = false;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(std::io::Error::other("chunked response"));
            }
        }
    }
    client.write_all(&head).await?;
    let mut body = (&mut *backend).take(length);
    let n = tokio::io::copy(&mut body, client).await?;
    if n != length {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(keep)
}
