//! The hub's fan-out delivery (spec FAN-4, FAN-7): the fan-out entries
//! that the front-end recorded in the hub store, in the same transaction
//! that accepted each message, go to their followers, in sequence order,
//! one delivery thread per follower, retried until the follower
//! acknowledges.
//!
//! The front-end records, for every accepted PublicMessage and
//! PrivateMessage, one sealed fan-out message per follower that the
//! directory names ([`ServiceDirectory`],
//! `HubFrontEnd::set_fanout_directory`, `HubState::add_fanout`). There is
//! no other queue: a message is accepted together with its fan-out or not
//! at all, so a crash of the hub process at any point loses no fan-out of
//! a message whose sender was told `accepted`.
//!
//! A delivery thread reads the oldest entries of its follower (at most
//! [`BATCH`]), sends them in one POST ([`media::FANOUT_BATCH`]) in sequence
//! order, and deletes them from the store only after a 2xx answer. Every
//! entry carries an idempotency key, `<store id>:<sequence number>`: the
//! store id is drawn once when the store is created and kept in it, and
//! sequence numbers are never reused, so the key names the entry across
//! retries, restarts and every hub process of the shard that shares the
//! store. A crash between the answer and the delete, a lost
//! acknowledgement, or two hub processes on one PostgreSQL store sending
//! the same entry cause a redelivery with the same key and the same bytes,
//! which the follower acknowledges and stores no second time.
//!
//! Order (FAN-4): a group's entries are numbered in the order their
//! accepting transactions committed, and a delivery thread reads an entry
//! only together with every earlier entry of its follower that is still
//! unacknowledged. So the first copy of each entry that reaches a follower
//! arrives in acceptance order, whichever process of the shard sent it.
//!
//! Several hub processes of a shard on one store take turns per follower:
//! a delivery thread sends only while it holds the follower's delivery
//! lease in the store (`HubState::claim_delivery`, renewed before every
//! batch, [`DEFAULT_LEASE`] long), so one process at a time sends to a
//! follower, and another takes over within one lease once the holder
//! died. The lease saves duplicate traffic; correctness does not rest on
//! it (a holder that outlived its lease while sending causes a
//! redelivery, dropped by its key).
//!
//! A hub process run with `--no-deliver` records fan-out but sends
//! nothing: another process of the shard on the same store delivers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use mimi_onion::fanout::{FanoutDirectory, FanoutTarget};
use mimi_onion::state::{FanoutEntry, HubStore, STORE_ID_LEN};
use mimi_onion::test_utils::to_hex;
use rand::Rng as _;

use crate::http::Client;
use crate::hub::{AnyStore, Directory};
use crate::media;
use crate::{Error, Result};

/// Entries a delivery thread sends in one POST.
pub const BATCH: usize = 64;

/// How long a delivery lease lasts unless the hub is told otherwise
/// (seconds): the time another process waits before it takes over the
/// deliveries of a process that died.
pub const DEFAULT_LEASE: u64 = 10;

/// How often a delivery thread looks for entries when nothing woke it
/// (entries that another process of the shard recorded, a store that was
/// down).
const POLL: Duration = Duration::from_millis(200);

/// A follower the hub delivers to.
#[derive(Clone, Debug)]
pub struct Follower {
    /// Its name, as the directory uses it.
    pub name: String,
    /// Its base URL (`http://host:port`).
    pub url: String,
}

/// The directory as the front-end asks it inside the accepting
/// transaction: for each group, its followers with their recipient queues
/// (the entry's address: the queue names joined by `,`).
pub struct ServiceDirectory {
    directory: Directory,
    followers: Vec<Follower>,
}

impl ServiceDirectory {
    /// The directory of a hub process over its followers.
    pub fn new(directory: Directory, followers: Vec<Follower>) -> Self {
        ServiceDirectory {
            directory,
            followers,
        }
    }
}

impl FanoutDirectory for ServiceDirectory {
    fn targets(&self, group_id: &[u8]) -> Vec<FanoutTarget> {
        self.directory
            .get(group_id)
            .into_iter()
            .flatten()
            .filter_map(|(f, queues)| {
                Some(FanoutTarget {
                    follower: self.followers.get(*f)?.name.clone(),
                    address: queues.join(",").into_bytes(),
                })
            })
            .collect()
    }
}

/// The delivery threads of one hub process.
pub struct Outbox {
    store: Arc<AnyStore>,
    key_prefix: String,
    holder: [u8; STORE_ID_LEN],
    lease: u64,
    followers: Vec<Follower>,
    wake: Condvar,
    wake_lock: Mutex<()>,
    stop: AtomicBool,
    delivered: AtomicU64,
    retries: AtomicU64,
}

impl core::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Outbox")
            .field("key_prefix", &self.key_prefix)
            .field("followers", &self.followers)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// The deliverer over `store` (a connection of its own, not the
    /// front-end's), for `followers`, with delivery leases of `lease`
    /// seconds (at least 1). Reads the store id.
    pub fn new(store: Arc<AnyStore>, followers: Vec<Follower>, lease: u64) -> Result<Arc<Self>> {
        let id = store
            .transact(&mut |tx| tx.store_id())
            .map_err(|e| Error::Db(e.to_string()))?;
        let mut holder = [0u8; STORE_ID_LEN];
        rand::rng().fill_bytes(&mut holder);
        Ok(Arc::new(Outbox {
            store,
            key_prefix: to_hex(&id),
            holder,
            lease: lease.max(1),
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

    /// The idempotency key of an entry: `<store id hex>:<seq>`.
    pub fn key(&self, entry: &FanoutEntry) -> String {
        format!("{}:{}", self.key_prefix, entry.seq)
    }

    /// Entries waiting in the store (of every process of the shard).
    pub fn pending(&self) -> Option<u64> {
        self.store
            .transact(&mut |tx| tx.counts())
            .ok()
            .map(|c| c.fanout as u64)
    }

    /// Deliveries acknowledged since start.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Failed delivery attempts since start (each retried).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Wakes the delivery threads: new entries were committed.
    pub fn notify(&self) {
        self.wake.notify_all();
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

    fn wait(&self, timeout: Duration) {
        if let Ok(g) = self.wake_lock.lock() {
            let _ = self.wake.wait_timeout(g, timeout);
        }
    }

    fn deliver_loop(&self, index: usize) {
        let follower = self.followers[index].clone();
        let Ok(client) = Client::new(&follower.url) else {
            eprintln!("outbox: bad follower URL {}", follower.url);
            return;
        };
        let mut client = client.with_timeout(Duration::from_secs(10));
        let mut backoff = Duration::from_millis(20);
        while !self.stop.load(Ordering::Relaxed) {
            // The lease, taken or renewed, and the oldest entries, in one
            // transaction; another process's lease: wait.
            let now = crate::unix_now();
            let until = now.saturating_add(self.lease);
            let batch = match self.store.transact(&mut |tx| {
                if !tx.claim_delivery(&follower.name, &self.holder, now, until)? {
                    return Ok(None);
                }
                tx.fanout_entries(&follower.name, BATCH).map(Some)
            }) {
                Ok(Some(batch)) => batch,
                Ok(None) => {
                    self.wait(POLL);
                    continue;
                }
                Err(e) => {
                    eprintln!("outbox: {e}");
                    self.wait(POLL);
                    continue;
                }
            };
            if batch.is_empty() {
                self.wait(POLL);
                continue;
            }
            // One POST for the batch, in sequence order (FAN-4); every
            // entry keeps its own key, so a resend is stored once.
            let keys: Vec<String> = batch.iter().map(|e| self.key(e)).collect();
            let items: Vec<Vec<u8>> = batch
                .iter()
                .zip(&keys)
                .map(|(e, key)| {
                    media::encode_list([key.as_bytes(), e.address.as_slice(), &e.message])
                })
                .collect();
            let payload = media::encode_list(items.iter().map(Vec::as_slice));
            let sent = client.request(
                "POST",
                media::DELIVERIES_PATH,
                &[("content-type", media::FANOUT_BATCH)],
                &payload,
            );
            if !matches!(&sent, Ok(r) if (200..300).contains(&r.status)) {
                self.retries.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
            backoff = Duration::from_millis(20);
            self.delivered
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            // A crash (or a failed delete) before the delete commits
            // redelivers the batch: the follower drops the copies by key.
            let deleted = self.store.transact(&mut |tx| {
                for e in &batch {
                    tx.delete_fanout(e.seq)?;
                }
                Ok(())
            });
            if let Err(e) = deleted {
                eprintln!("outbox: {e}");
            }
        }
    }
}
