//! The hub's fan-out outbox: a SQLite file of fan-out messages waiting to
//! be delivered, one delivery thread per follower, in acceptance order
//! (FAN-4), retried until the follower acknowledges.
//!
//! A delivery thread sends up to 64 entries in one POST
//! ([`media::FANOUT_BATCH`]). Every entry has an idempotency key, `<outbox id>:<row id>`, where the
//! outbox id is drawn once when the file is created and row ids are never
//! reused (`AUTOINCREMENT`): a retry of a delivery whose acknowledgement
//! was lost carries the same key, and the follower keeps one copy. An
//! entry is deleted only after a 2xx answer, so a delivery survives a
//! follower outage and a hub restart.
//!
//! Not atomic with the hub store's transaction: the hub enqueues right
//! after `handle` returns, so a crash between the two loses the fan-out of
//! that one message (the sender saw `accepted`). Closing that gap needs
//! the outbox inside the store's transaction.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use mimi_onion::test_utils::to_hex;
use rand::Rng as _;
use rusqlite::{params, Connection, OptionalExtension as _};

use crate::http::Client;
use crate::media;
use crate::Result;

/// Entries a delivery thread reads at once.
const BATCH: usize = 64;

/// A follower the hub delivers to.
#[derive(Clone, Debug)]
pub struct Follower {
    /// Its name, as the directory uses it.
    pub name: String,
    /// Its base URL (`http://host:port`).
    pub url: String,
}

/// The outbox.
#[derive(Debug)]
pub struct Outbox {
    db: Mutex<Connection>,
    id: String,
    followers: Vec<Follower>,
    wake: Condvar,
    wake_lock: Mutex<()>,
    stop: AtomicBool,
    delivered: AtomicU64,
    retries: AtomicU64,
}

impl Outbox {
    /// Opens (or creates) the outbox file.
    pub fn open(path: &std::path::Path, followers: Vec<Follower>) -> Result<Arc<Self>> {
        let db = Connection::open(path)?;
        db.busy_timeout(Duration::from_secs(5))?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS outbox (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 follower TEXT NOT NULL,
                 queues TEXT NOT NULL,
                 body BLOB NOT NULL);
             CREATE INDEX IF NOT EXISTS outbox_follower ON outbox (follower, id);",
        )?;
        let id: Option<String> = db
            .query_row("SELECT v FROM meta WHERE k = 'id'", [], |r| r.get(0))
            .optional()?;
        let id = match id {
            Some(id) => id,
            None => {
                let mut b = [0u8; 12];
                rand::rng().fill_bytes(&mut b);
                let id = to_hex(&b);
                db.execute("INSERT INTO meta (k, v) VALUES ('id', ?1)", params![id])?;
                id
            }
        };
        Ok(Arc::new(Outbox {
            db: Mutex::new(db),
            id,
            followers,
            wake: Condvar::new(),
            wake_lock: Mutex::new(()),
            stop: AtomicBool::new(false),
            delivered: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }))
    }

    /// The followers, by index.
    pub fn followers(&self) -> &[Follower] {
        &self.followers
    }

    /// Queues fan-out messages in one transaction: `(follower index,
    /// recipient queues, bytes)` each.
    pub fn enqueue(&self, items: &[(usize, Vec<String>, Vec<u8>)]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        {
            let mut db = self
                .db
                .lock()
                .map_err(|_| crate::Error::Db("outbox lock".into()))?;
            let tx = db.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO outbox (follower, queues, body) VALUES (?1, ?2, ?3)",
                )?;
                for (f, queues, body) in items {
                    let name = &self
                        .followers
                        .get(*f)
                        .ok_or(crate::Error::Usage("no such follower"))?
                        .name;
                    insert.execute(params![name, queues.join(","), body])?;
                }
            }
            tx.commit()?;
        }
        self.wake.notify_all();
        Ok(())
    }

    /// Entries not delivered yet.
    pub fn pending(&self) -> u64 {
        self.db
            .lock()
            .ok()
            .and_then(|db| {
                db.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))
                    .ok()
            })
            .map_or(0, |n| n.max(0) as u64)
    }

    /// Deliveries acknowledged since start.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Failed delivery attempts since start (each retried).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Starts one delivery thread per follower.
    pub fn start(self: &Arc<Self>) {
        for i in 0..self.followers.len() {
            let me = self.clone();
            std::thread::spawn(move || me.deliver_loop(i));
        }
    }

    /// Asks the delivery threads to stop.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify_all();
    }

    /// The oldest entries of a follower, at most [`BATCH`].
    fn next(&self, follower: &str) -> Vec<(i64, String, Vec<u8>)> {
        let Ok(db) = self.db.lock() else {
            return Vec::new();
        };
        let Ok(mut stmt) = db.prepare_cached(
            "SELECT id, queues, body FROM outbox WHERE follower = ?1 ORDER BY id LIMIT ?2",
        ) else {
            return Vec::new();
        };
        stmt.query_map(params![follower, BATCH as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map(|rows| rows.filter_map(|r| r.ok()).collect())
        .unwrap_or_default()
    }

    /// Deletes delivered entries (one transaction).
    fn done(&self, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        let Ok(mut db) = self.db.lock() else {
            return;
        };
        let Ok(tx) = db.transaction() else {
            return;
        };
        if let Ok(mut delete) = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1") {
            for id in ids {
                let _ = delete.execute(params![id]);
            }
        }
        let _ = tx.commit();
    }

    fn deliver_loop(&self, index: usize) {
        let follower = self.followers[index].clone();
        let Ok(mut client) = Client::new(&follower.url) else {
            eprintln!("outbox: bad follower URL {}", follower.url);
            return;
        };
        client = client.with_timeout(Duration::from_secs(10));
        let mut backoff = Duration::from_millis(20);
        while !self.stop.load(Ordering::Relaxed) {
            let batch = self.next(&follower.name);
            if batch.is_empty() {
                let guard = self.wake_lock.lock();
                if let Ok(g) = guard {
                    let _ = self.wake.wait_timeout(g, Duration::from_millis(200));
                }
                continue;
            }
            // One POST for the batch, in order (FAN-4); every entry keeps
            // its own key, so a retry of the batch is stored once.
            let keys: Vec<String> = batch
                .iter()
                .map(|(id, _, _)| format!("{}:{id}", self.id))
                .collect();
            let items: Vec<Vec<u8>> = batch
                .iter()
                .zip(&keys)
                .map(|((_, queues, body), key)| {
                    media::encode_list([key.as_bytes(), queues.as_bytes(), body.as_slice()])
                })
                .collect();
            let payload = media::encode_list(items.iter().map(Vec::as_slice));
            let sent = client.request(
                "POST",
                media::DELIVERIES_PATH,
                &[("content-type", media::FANOUT_BATCH)],
                &payload,
            );
            let failed = !matches!(&sent, Ok(r) if (200..300).contains(&r.status));
            let delivered: Vec<i64> = if failed {
                Vec::new()
            } else {
                self.delivered
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.iter().map(|(id, _, _)| *id).collect()
            };
            // A crash before this line redelivers the batch: the follower
            // drops the copies by their keys.
            self.done(&delivered);
            if failed {
                self.retries.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            } else {
                backoff = Duration::from_millis(20);
            }
        }
    }
}
