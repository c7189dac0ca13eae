//! The store contract (STO-1 to STO-3) on the SQLite store: the
//! conformance suite of `mimi_onion::test_utils::store_suite`, which the
//! in-memory and PostgreSQL stores pass too.
//!
//! Each store is a new file in a temporary folder. A second front-end
//! (`share`) opens the same file again: another connection, as another
//! thread or process would hold. An outage is another connection that
//! takes the file's write lock (`BEGIN EXCLUSIVE`) and holds it: every
//! transaction of the stores under test (`BEGIN IMMEDIATE`) then waits for
//! their short busy timeout and fails, as with a database that hangs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mimi_onion::secret::Secret;
use mimi_onion::state::{GroupRecord, HubStore, StoreResult};
use mimi_onion::test_utils::store_suite::{self, Backend};
use mimi_onion::token::TOKEN_NONCE_LEN;
use mimi_onion_store_sqlite::{SqliteHubStore, SqliteOptions};
use rusqlite::Connection;
use tempfile::TempDir;

/// Short enough that an outage fails a transaction in a quarter second,
/// long enough for the other front-end's transaction in a race.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

struct Sqlite {
    dir: TempDir,
    next: AtomicUsize,
    /// Per file, the connection that holds its write lock during an outage.
    outages: Mutex<HashMap<PathBuf, Connection>>,
}

impl Sqlite {
    fn new() -> Self {
        Sqlite {
            dir: tempfile::tempdir().expect("temporary folder"),
            next: AtomicUsize::new(0),
            outages: Mutex::new(HashMap::new()),
        }
    }

    fn options() -> SqliteOptions {
        SqliteOptions::new().with_busy_timeout(BUSY_TIMEOUT)
    }
}

impl Backend for Sqlite {
    type Store = SqliteHubStore;

    fn fresh(&self) -> SqliteHubStore {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("hub-{n}.sqlite"));
        Self::options().open(path).expect("open a new store")
    }

    fn share(&self, store: &SqliteHubStore) -> SqliteHubStore {
        store.reopen().expect("a second connection")
    }

    fn outage(&self, store: &SqliteHubStore, down: bool) {
        let mut outages = self.outages.lock().expect("outages");
        if down {
            let lock = Connection::open(store.path()).expect("the locking connection");
            lock.execute_batch("BEGIN EXCLUSIVE")
                .expect("take the write lock");
            outages.insert(store.path().to_path_buf(), lock);
        } else if let Some(lock) = outages.remove(store.path()) {
            lock.execute_batch("ROLLBACK").expect("release the lock");
        }
    }
}

fn tx<R>(
    store: &SqliteHubStore,
    mut f: impl FnMut(&mut dyn mimi_onion::state::HubState) -> StoreResult<R>,
) -> StoreResult<R> {
    store.transact(&mut f)
}

#[test]
fn sto2_sto3_primitives() {
    store_suite::primitives(&Sqlite::new());
}

#[test]
fn sto1_rollback() {
    store_suite::rollback(&Sqlite::new());
}

#[test]
fn hub5_resend_and_tok6_spent_token_through_the_store() {
    store_suite::resend_and_spent_token(&Sqlite::new());
}

#[test]
fn sto1_outage_fails_closed_and_resumes() {
    let b = Sqlite::new();
    store_suite::outage(&b);
    // The outage is real: a held write lock fails a transaction after the
    // busy timeout, not at once and not forever.
    let s = b.fresh();
    b.outage(&s, true);
    let start = Instant::now();
    let err = tx(&s, |t| t.counts()).expect_err("the lock is held");
    let waited = start.elapsed();
    b.outage(&s, false);
    assert_eq!(err.what(), "transaction: begin");
    assert!(
        waited >= BUSY_TIMEOUT / 2 && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    tx(&s, |t| t.counts()).expect("works again");
}

#[test]
fn sto2_race_two_commits_one_wins() {
    store_suite::race_commits(&Sqlite::new(), 1000);
}

#[test]
fn sto2_race_one_envelope_processed_once() {
    store_suite::race_same_envelope(&Sqlite::new(), 1000);
}

#[test]
fn sto3_bounded_across_key_rotations() {
    let n = store_suite::bounded_n();
    let counts = store_suite::bounded(&Sqlite::new(), n);
    println!("SQLite store after {n} envelopes: {counts:?}");
}

/// Values at the top of `u64` (epochs, `not_after` of keys that never
/// expire) round-trip and compare as numbers.
#[test]
fn u64_max_round_trips_and_orders() {
    let b = Sqlite::new();
    let s = b.fresh();
    let g = b"max group";
    let mut r = GroupRecord::new(u32::MAX, u64::MAX - 1, u16::MAX);
    r.pin_fanout_key(u64::MAX - 1, Secret::new(vec![1; 32]));
    r.group_context = vec![0; 70_000];
    tx(&s, |t| t.put_group(g, &r)).expect("put");
    assert_eq!(tx(&s, |t| t.group(g)).expect("read"), Some(r.clone()));
    let mut next = r.clone();
    next.epoch = u64::MAX;
    next.pin_fanout_key(u64::MAX, Secret::new(vec![2; 32]));
    assert!(tx(&s, |t| t.advance_group(g, u64::MAX - 1, &next)).expect("cas"));
    assert_eq!(tx(&s, |t| t.group(g)).expect("read"), Some(next));

    // Expiry times above i64::MAX: kept until then, gone after.
    let above = i64::MAX as u64 + 5;
    tx(&s, |t| {
        t.spend_token(0, &[1; TOKEN_NONCE_LEN], u64::MAX)?;
        t.spend_token(0, &[2; TOKEN_NONCE_LEN], above)?;
        t.insert_envelope(&[3; 32], &[4; 32], u64::MAX)?;
        t.set_response(&[3; 32], b"r", above)
    })
    .expect("write");
    tx(&s, |t| t.expire(above - 1)).expect("expire");
    let c = tx(&s, |t| t.counts()).expect("counts");
    assert_eq!((c.spent_tokens, c.envelopes, c.cached_responses), (2, 1, 1));
    assert!(tx(&s, |t| t.envelope(&[3; 32], above - 1))
        .expect("read")
        .and_then(|e| e.response)
        .is_some());
    tx(&s, |t| t.expire(above)).expect("expire");
    let c = tx(&s, |t| t.counts()).expect("counts");
    assert_eq!((c.spent_tokens, c.envelopes, c.cached_responses), (1, 1, 0));
    tx(&s, |t| t.expire(u64::MAX)).expect("expire");
    let c = tx(&s, |t| t.counts()).expect("counts");
    assert_eq!((c.spent_tokens, c.envelopes), (0, 0));

    // Handshakes of the last epochs.
    tx(&s, |t| t.record_handshake(g, u64::MAX, &[5; 32])).expect("record");
    tx(&s, |t| t.forget_handshakes(g, u64::MAX - 1)).expect("forget");
    assert!(tx(&s, |t| t.handshake_accepted(g, &[5; 32])).expect("read"));
    tx(&s, |t| t.forget_handshakes(g, u64::MAX)).expect("forget");
    assert!(!tx(&s, |t| t.handshake_accepted(g, &[5; 32])).expect("read"));
}

/// A row that does not decode is a `StoreError` naming the operation.
#[test]
fn corrupt_rows_are_errors() {
    let b = Sqlite::new();
    let s = b.fresh();
    let mut r = GroupRecord::new(1, 2, 1);
    r.pin_fanout_key(2, Secret::new(vec![7; 32]));
    tx(&s, |t| t.put_group(b"g", &r)).expect("put");
    tx(&s, |t| t.insert_envelope(&[1; 32], &[2; 32], 10)).expect("insert");
    let raw = Connection::open(s.path()).expect("raw connection");
    for (sql, what) in [
        (
            "UPDATE groups SET fanout_keys = x'00000000000000020020'",
            "group",
        ),
        ("UPDATE groups SET epoch = x'0102'", "group"),
        ("UPDATE groups SET commitment_required = 2", "group"),
        ("UPDATE groups SET shard = -1", "group"),
        ("UPDATE groups SET group_context = 5", "group"),
        ("UPDATE envelopes SET fingerprint = x'00'", "envelope"),
    ] {
        raw.execute_batch(sql).expect(sql);
        let err = if what == "group" {
            tx(&s, |t| t.group(b"g").map(|_| ())).expect_err(sql)
        } else {
            tx(&s, |t| t.envelope(&[1; 32], 0).map(|_| ())).expect_err(sql)
        };
        assert_eq!(err.what(), what, "{sql}: {err}");
        tx(&s, |t| t.put_group(b"g", &r)).expect("repair");
    }
}

/// A file of schema version 1 (before the closed epochs of DSP-6 and the
/// fan-out entries of FAN-7) is migrated to version 3 when opened, and the
/// closed epochs work.
#[test]
fn a_version_1_file_is_migrated() {
    let b = Sqlite::new();
    let s = b.fresh();
    let path = s.path().to_path_buf();
    drop(s);
    Connection::open(&path)
        .expect("raw connection")
        .execute_batch(
            "DROP TABLE closed_epochs; DROP TABLE tracker_states; DROP TABLE store_meta;
             DROP TABLE fanout; DROP TABLE delivery_leases;
             PRAGMA user_version = 1",
        )
        .expect("back to version 1");
    let store = SqliteHubStore::open(&path).expect("migrated");
    let closed = mimi_onion::state::ClosedEpoch {
        record: GroupRecord::new(0, 3, 1),
        commit_hash: [1; 32],
        committer: 0,
        private: false,
        state: mimi_onion::state::DisputeState::Open,
        votes: vec![(1, [2; 32])],
    };
    let back = store
        .transact(&mut |t| {
            t.set_closed_epoch(b"g", Some(&closed))?;
            t.closed_epoch(b"g")
        })
        .expect("closed epochs after the migration");
    assert_eq!(back, Some(closed));
    let version: i64 = Connection::open(&path)
        .expect("raw connection")
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    assert_eq!(version, mimi_onion_store_sqlite::SCHEMA_VERSION);
}

/// A file of schema version 2 (before the group tracker's states of
/// TRK-4 and before FAN-7) is migrated to version 3 when opened: what it
/// held is kept, the tracker's states work, the store gets an id of its
/// own, and fan-out entries commit and roll back with their transaction.
#[test]
fn a_version_2_file_is_migrated() {
    let b = Sqlite::new();
    let s = b.fresh();
    let path = s.path().to_path_buf();
    let g: &[u8] = b"kept group";
    s.transact(&mut |t| t.put_group(g, &GroupRecord::new(0, 4, 1)))
        .expect("a group");
    drop(s);
    Connection::open(&path)
        .expect("raw connection")
        .execute_batch(
            "DROP TABLE tracker_states; DROP TABLE store_meta; DROP TABLE fanout;
             DROP TABLE delivery_leases; PRAGMA user_version = 2",
        )
        .expect("back to version 2");
    let store = SqliteHubStore::open(&path).expect("migrated");
    let back = store
        .transact(&mut |t| {
            t.set_tracker_state(b"g", 7, Some(b"state"))?;
            t.tracker_state(b"g", 7)
        })
        .expect("tracker states after the migration");
    assert_eq!(back.as_deref(), Some(&b"state"[..]));
    let version: i64 = Connection::open(&path)
        .expect("raw connection")
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    assert_eq!(version, mimi_onion_store_sqlite::SCHEMA_VERSION);
    assert_eq!(
        store
            .transact(&mut |t| t.group(g))
            .expect("read")
            .map(|r| r.epoch),
        Some(4),
        "kept"
    );
    let id = store.transact(&mut |t| t.store_id()).expect("store id");
    assert_ne!(id, [0; 16]);
    let reopened = SqliteHubStore::open(&path).expect("reopened");
    assert_eq!(
        reopened.transact(&mut |t| t.store_id()).expect("id"),
        id,
        "STO-5"
    );
    let entry = mimi_onion::state::NewFanout {
        follower: "f",
        address: b"q",
        group_id: g,
        epoch: 4,
        message: b"m",
    };
    let failed: StoreResult<u64> = store.transact(&mut |t| {
        t.add_fanout(&entry)?;
        Err(mimi_onion::state::StoreError::new("test", "roll back"))
    });
    assert!(failed.is_err());
    let seq = store.transact(&mut |t| t.add_fanout(&entry)).expect("add");
    let entries = reopened
        .transact(&mut |t| t.fanout_entries("f", 10))
        .expect("entries");
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![seq]);
}

/// The schema version lives in `PRAGMA user_version`; a file with another
/// version, or another application's tables, is refused with a clear
/// error.
#[test]
fn unknown_schema_versions_are_refused() {
    let b = Sqlite::new();
    let s = b.fresh();
    let path = s.path().to_path_buf();
    drop(s);
    let raw = Connection::open(&path).expect("raw connection");
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    assert_eq!(version, mimi_onion_store_sqlite::SCHEMA_VERSION);
    raw.execute_batch("PRAGMA user_version = 99").expect("bump");
    let err = SqliteHubStore::open(&path).expect_err("version 99");
    assert!(err.to_string().contains("schema version 99"), "{err}");

    let other = b.dir.path().join("other.sqlite");
    Connection::open(&other)
        .expect("other")
        .execute_batch("CREATE TABLE t (x)")
        .expect("a foreign table");
    let err = SqliteHubStore::open(&other).expect_err("not a hub store");
    assert!(err.to_string().contains("not a hub store"), "{err}");

    let not_sqlite = b.dir.path().join("garbage.sqlite");
    std::fs::write(&not_sqlite, vec![0x5a; 4096]).expect("write");
    assert!(SqliteHubStore::open(&not_sqlite).is_err());
}

/// A thread that panics inside a transaction leaves nothing behind and
/// does not break the store (its mutex is poisoned; the store goes on).
#[test]
fn a_panic_inside_a_transaction_rolls_back() {
    let b = Sqlite::new();
    let s = b.fresh();
    let panicked = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let _ = tx(&s, |t| -> StoreResult<()> {
                    t.spend_token(0, &[9; TOKEN_NONCE_LEN], 100)?;
                    panic!("inside the transaction")
                });
            })
            .join()
            .is_err()
    });
    assert!(panicked);
    assert!(
        tx(&s, |t| t.spend_token(0, &[9; TOKEN_NONCE_LEN], 100)).expect("works"),
        "the panicked transaction was rolled back"
    );
}

/// The store is `Send + Sync`, so front-end threads can share one.
#[test]
fn the_store_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<SqliteHubStore>();
}

#[test]
fn fan7_sto5_fanout_entries() {
    store_suite::fanout_entries(&Sqlite::new());
}

#[test]
fn fan4_fan7_race_fanout_order() {
    store_suite::race_fanout_order(&Sqlite::new(), 50);
}

#[test]
fn fan7_fanout_through_the_hub() {
    store_suite::fanout_through_the_hub(&Sqlite::new());
}

#[test]
fn fan7_delivery_lease() {
    store_suite::delivery_lease(&Sqlite::new());
}
