//! A follower provider's endpoint.
//!
//! - `POST /v1/deliveries` ([`media::FANOUT`], with
//!   [`media::QUEUES_HEADER`] and [`media::IDEMPOTENCY_HEADER`]; or
//!   [`media::FANOUT_BATCH`], several in order): appends each fan-out
//!   message, unchanged, to each named recipient queue (FAN-4: FIFO per
//!   queue) and answers `204`. A delivery whose key was seen before is
//!   acknowledged again and stored no second time.
//! - `GET /v1/queues/<queue>[?from=N]`: the queue's messages from the
//!   `N`-th on, as a [`media::FANOUT_LIST`].
//! - `GET /v1/stats`: deliveries, duplicates, queue lengths (JSON).
//!
//! The queues and the idempotency keys seen live in a SQLite file
//! (`follower.sqlite` in `--data`; in memory without it, for tests that
//! need no restart). A delivery request is stored in one transaction,
//! committed before the `204`: once acknowledged, a message survives a
//! crash of the follower, and a redelivery after a restart is still
//! recognised and stored no second time. Keys are kept for
//! [`FollowerOptions::dedupe_window`] (a week by default), far longer than
//! a hub retries. `--fail-acks N` stores the first `N` delivery requests
//! but answers `503`, as a lost acknowledgement would, so that tests see
//! the hub retry and the follower keep one copy.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension as _};

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use mimi_onion::wire::MAX_ENVELOPE_LEN;
use serde_json::json;

use crate::http::{self, Resp};
use crate::media;
use crate::Result;

/// How a follower process runs.
#[derive(Clone, Debug)]
pub struct FollowerOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Answer `503` to the first this many (stored) deliveries.
    pub fail_acks: u64,
    /// Where the queues are kept (`follower.sqlite`); `None`: in memory.
    pub data_dir: Option<PathBuf>,
    /// How long an idempotency key is remembered.
    pub dedupe_window: Duration,
    /// Where to write the bound URL once listening.
    pub ready_file: Option<PathBuf>,
}

/// A week: how long [`FollowerOptions::dedupe_window`] is by default.
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS seen (
    key TEXT PRIMARY KEY NOT NULL,
    at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_at ON seen (at);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS items_queue ON items (queue, id);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

struct State {
    db: Connection,
    failed_acks: u64,
    since_expiry: u64,
}

struct Follower {
    state: Mutex<State>,
    fail_acks: u64,
    dedupe_window: u64,
}

/// Opens (or creates) the follower's store.
fn open_store(data_dir: Option<&std::path::Path>) -> Result<Connection> {
    let db = match data_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            let db = Connection::open(d.join("follower.sqlite"))
                .map_err(|e| crate::Error::Db(e.to_string()))?;
            db.pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| crate::Error::Db(e.to_string()))?;
            db.pragma_update(None, "synchronous", "NORMAL")
                .map_err(|e| crate::Error::Db(e.to_string()))?;
            db
        }
        None => Connection::open_in_memory().map_err(|e| crate::Error::Db(e.to_string()))?,
    };
    db.execute_batch(SCHEMA)
        .map_err(|e| crate::Error::Db(e.to_string()))?;
    Ok(db)
}

/// Runs a follower until it is killed.
pub async fn run(opts: FollowerOptions) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    let url = format!("http://{}", listener.local_addr()?);
    if let Some(p) = &opts.ready_file {
        crate::write_ready_file(p, &url)?;
    }
    eprintln!("follower listening on {url}");
    let me = Arc::new(Follower {
        state: Mutex::new(State {
            db: open_store(opts.data_dir.as_deref())?,
            failed_acks: 0,
            since_expiry: 0,
        }),
        fail_acks: opts.fail_acks,
        dedupe_window: opts.dedupe_window.as_secs(),
    });
    let handler: http::Handler = Arc::new(move |req| {
        let me = me.clone();
        Box::pin(async move { me.route(req).await })
    });
    http::serve(listener, None, handler).await;
    Ok(())
}

fn valid_queue(q: &str) -> bool {
    !q.is_empty()
        && q.len() <= 128
        && q.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._@".contains(&b))
}

impl Follower {
    async fn route(self: Arc<Self>, req: Request<Incoming>) -> Resp {
        let path = req.uri().path().to_string();
        if path == media::DELIVERIES_PATH {
            if req.method() != Method::POST {
                return http::method_not_allowed("POST");
            }
            return self.deliver(req).await;
        }
        if path == media::STATS_PATH {
            return self.stats();
        }
        if let Some(q) = path.strip_prefix(media::QUEUES_PREFIX) {
            if req.method() != Method::GET {
                return http::method_not_allowed("GET");
            }
            let from: usize = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("from="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            return self.queue(q, from);
        }
        http::text(StatusCode::NOT_FOUND, "not found\n")
    }

    async fn deliver(&self, req: Request<Incoming>) -> Resp {
        let batch = http::has_media_type(&req, media::FANOUT_BATCH);
        if !batch && !http::has_media_type(&req, media::FANOUT) {
            return http::text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a fan-out message\n",
            );
        }
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let single = (
            header(media::IDEMPOTENCY_HEADER),
            header(media::QUEUES_HEADER),
        );
        let body = match http::read_body(req.into_body(), MAX_ENVELOPE_LEN, Duration::from_secs(30))
            .await
        {
            Ok(b) => b,
            Err(e) => return e.response(),
        };
        // (key, queues, message) of every delivery, all checked before
        // any is stored.
        let items: Vec<(String, Vec<String>, Vec<u8>)> = if batch {
            let Some(list) = media::decode_list(&body) else {
                return http::text(StatusCode::BAD_REQUEST, "bad batch\n");
            };
            let mut items = Vec::new();
            for item in list {
                let parts = media::decode_list(&item).unwrap_or_default();
                let [key, queues, message] = <[Vec<u8>; 3]>::try_from(parts).unwrap_or_default();
                let (Ok(key), Ok(queues)) = (String::from_utf8(key), String::from_utf8(queues))
                else {
                    return http::text(StatusCode::BAD_REQUEST, "bad batch item\n");
                };
                items.push((
                    key,
                    queues.split(',').map(str::to_string).collect(),
                    message,
                ));
            }
            items
        } else {
            let (Some(key), queues) = single else {
                return http::text(StatusCode::BAD_REQUEST, "idempotency-key required\n");
            };
            let queues = queues
                .unwrap_or_default()
                .split(',')
                .map(str::to_string)
                .collect();
            vec![(key, queues, body.to_vec())]
        };
        for (key, queues, _) in &items {
            if key.is_empty() || key.len() > 200 {
                return http::text(StatusCode::BAD_REQUEST, "idempotency-key required\n");
            }
            if queues.is_empty() || !queues.iter().all(|q| valid_queue(q)) {
                return http::text(StatusCode::BAD_REQUEST, "bad recipient queues\n");
            }
        }
        let Ok(mut st) = self.state.lock() else {
            return http::text(StatusCode::INTERNAL_SERVER_ERROR, "follower\n");
        };
        if let Err(e) = self.store(&mut st, items) {
            // Nothing was stored: the hub retries.
            eprintln!("follower: store: {e}");
            return http::text(StatusCode::SERVICE_UNAVAILABLE, "try again\n");
        }
        if st.failed_acks < self.fail_acks {
            st.failed_acks += 1;
            return http::text(StatusCode::SERVICE_UNAVAILABLE, "try again\n");
        }
        let mut r = http::text(StatusCode::NO_CONTENT, "");
        *r.body_mut() = http_body_util::Full::new(bytes::Bytes::new());
        r
    }

    /// Stores one delivery request in one transaction: each item whose key
    /// is new goes to the end of each of its queues (FAN-4), a known key
    /// counts as a duplicate. Every so often, keys older than the window
    /// are forgotten.
    fn store(
        &self,
        st: &mut State,
        items: Vec<(String, Vec<String>, Vec<u8>)>,
    ) -> rusqlite::Result<()> {
        let now = i64::try_from(crate::unix_now()).unwrap_or(i64::MAX);
        let expire = st.since_expiry >= 1000;
        let tx = st.db.transaction()?;
        let (mut received, mut duplicates) = (0i64, 0i64);
        for (key, queues, message) in items {
            let fresh = tx.execute(
                "INSERT OR IGNORE INTO seen (key, at) VALUES (?1, ?2)",
                params![key, now],
            )? == 1;
            if !fresh {
                duplicates += 1;
                continue;
            }
            received += 1;
            for q in queues {
                tx.execute(
                    "INSERT INTO items (queue, body) VALUES (?1, ?2)",
                    params![q, message],
                )?;
            }
        }
        for (name, n) in [("received", received), ("duplicates", duplicates)] {
            tx.execute(
                "INSERT INTO counters (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                params![name, n],
            )?;
        }
        if expire {
            let before = now.saturating_sub(i64::try_from(self.dedupe_window).unwrap_or(i64::MAX));
            tx.execute("DELETE FROM seen WHERE at < ?1", params![before])?;
        }
        tx.commit()?;
        st.since_expiry = if expire { 0 } else { st.since_expiry + 1 };
        Ok(())
    }

    fn queue(&self, q: &str, from: usize) -> Resp {
        let Ok(st) = self.state.lock() else {
            return http::text(StatusCode::INTERNAL_SERVER_ERROR, "follower\n");
        };
        let items = (|| -> rusqlite::Result<Vec<Vec<u8>>> {
            let mut stmt = st.db.prepare_cached(
                "SELECT body FROM items WHERE queue = ?1 ORDER BY id LIMIT -1 OFFSET ?2",
            )?;
            let offset = i64::try_from(from).unwrap_or(i64::MAX);
            let rows = stmt.query_map(params![q, offset], |r| r.get::<_, Vec<u8>>(0))?;
            rows.collect()
        })();
        match items {
            Ok(items) => {
                let body = media::encode_list(items.iter().map(Vec::as_slice));
                http::bytes(StatusCode::OK, media::FANOUT_LIST, body)
            }
            Err(_) => http::text(StatusCode::SERVICE_UNAVAILABLE, "try again\n"),
        }
    }

    fn stats(&self) -> Resp {
        let Ok(st) = self.state.lock() else {
            return http::text(StatusCode::INTERNAL_SERVER_ERROR, "follower\n");
        };
        let read = || -> rusqlite::Result<(i64, i64, BTreeMap<String, i64>)> {
            let counter = |name: &str| -> rusqlite::Result<i64> {
                Ok(st
                    .db
                    .query_row(
                        "SELECT value FROM counters WHERE name = ?1",
                        params![name],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or(0))
            };
            let mut stmt = st
                .db
                .prepare_cached("SELECT queue, COUNT(*) FROM items GROUP BY queue")?;
            let queues = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
            Ok((counter("received")?, counter("duplicates")?, queues))
        };
        match read() {
            Ok((received, duplicates, queues)) => http::json(&json!({
                "received": received,
                "duplicates": duplicates,
                "failed_acks": st.failed_acks,
                "queues": queues,
            })),
            Err(_) => http::text(StatusCode::SERVICE_UNAVAILABLE, "try again\n"),
        }
    }
}
