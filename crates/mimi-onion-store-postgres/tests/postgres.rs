//! What is particular to the PostgreSQL store, beyond the conformance
//! suite: `u64` values at the ends of their range, corrupt rows, the
//! schema version, concurrent opening, the retry after a deadlock, an
//! unreachable server. Against the server of env `MIMI_ONION_PG_URL`
//! (see `common`).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::thread;

use common::{note, Pg};
use mimi_onion::secret::Secret;
use mimi_onion::state::{GroupRecord, HubState, HubStore, StoreError, StoreResult};
use mimi_onion::token::TOKEN_NONCE_LEN;
use mimi_onion_store_postgres::PostgresHubStore;

fn tx<R>(s: &PostgresHubStore, f: impl FnMut(&mut dyn HubState) -> StoreResult<R>) -> R {
    let mut f = f;
    s.transact(&mut f).expect("the store works")
}

fn raw(pg: &Pg) -> postgres::Client {
    postgres::Client::connect(&pg.url, postgres::NoTls).expect("connect")
}

fn backend() -> Option<Pg> {
    common::url().map(|url| Pg::new(url, None))
}

#[test]
fn u64_values_keep_their_order_up_to_u64_max() {
    let Some(pg) = backend() else { return };
    let s = pg.fresh_named("u64");
    let g = b"u64 group";
    let mut r = GroupRecord::new(u32::MAX, u64::MAX - 1, u16::MAX);
    r.pin_fanout_key(u64::MAX - 1, Secret::new(vec![1; 32]));
    r.group_context = vec![0; 3];
    assert!(tx(&s, |t| t.insert_group(g, &r)));
    assert_eq!(tx(&s, |t| t.group(g)), Some(r.clone()), "round trip");
    let mut next = r.clone();
    next.epoch = u64::MAX;
    next.pin_fanout_key(u64::MAX, Secret::new(vec![2; 32]));
    assert!(!tx(&s, |t| t.advance_group(g, u64::MAX, &next)));
    assert!(tx(&s, |t| t.advance_group(g, u64::MAX - 1, &next)));
    let read = tx(&s, |t| t.group(g)).expect("group");
    assert_eq!(read, next);
    assert_eq!(read.fanout_keys.len(), 2, "F of epochs MAX - 1 and MAX");

    // Expiry by the caller's clock at the top of the range: u64::MAX is
    // "never" for any clock below it.
    let nonce = [9u8; TOKEN_NONCE_LEN];
    assert!(tx(&s, |t| t.spend_token(0, &nonce, u64::MAX)));
    assert!(tx(&s, |t| t.insert_envelope(&[1; 32], &[2; 32], u64::MAX)));
    tx(&s, |t| t.set_response(&[1; 32], b"r", u64::MAX));
    tx(&s, |t| t.expire(u64::MAX - 1));
    let c = tx(&s, |t| t.counts());
    assert_eq!((c.spent_tokens, c.envelopes, c.cached_responses), (1, 1, 1));
    let seen = tx(&s, |t| t.envelope(&[1; 32], u64::MAX - 1)).expect("recorded");
    assert_eq!(seen.response.as_deref(), Some(&b"r"[..]));
    assert!(tx(&s, |t| t.spend_token(0, &[8; TOKEN_NONCE_LEN], 1 << 63)));
    assert!(tx(&s, |t| t.spend_token(
        0,
        &[7; TOKEN_NONCE_LEN],
        (1 << 63) - 1
    )));
    tx(&s, |t| t.expire((1 << 63) - 1));
    assert_eq!(tx(&s, |t| t.counts()).spent_tokens, 2, "2^63 - 1 went");
    tx(&s, |t| t.expire(u64::MAX));
    let c = tx(&s, |t| t.counts());
    assert_eq!((c.spent_tokens, c.envelopes), (0, 0));

    // Handshake epochs either side of 2^63.
    for (i, epoch) in [0, (1 << 63) - 1, 1 << 63, u64::MAX]
        .into_iter()
        .enumerate()
    {
        assert!(tx(&s, |t| t.record_handshake(g, epoch, &[i as u8; 32])));
    }
    tx(&s, |t| t.forget_handshakes(g, (1 << 63) - 1));
    assert_eq!(tx(&s, |t| t.counts()).handshakes, 2);
    assert!(tx(&s, |t| t.handshake_accepted(g, &[2; 32])));
    tx(&s, |t| t.forget_handshakes(g, u64::MAX));
    assert_eq!(tx(&s, |t| t.counts()).handshakes, 0);
}

#[test]
fn corrupt_rows_are_store_errors() {
    let Some(pg) = backend() else { return };
    let s = pg.fresh_named("corrupt");
    let schema = s.schema().to_owned();
    let mut r = GroupRecord::new(1, 1, 1);
    r.pin_fanout_key(1, Secret::new(vec![1; 32]));
    tx(&s, |t| t.put_group(b"g", &r));
    tx(&s, |t| t.insert_envelope(b"enc", &[0; 32], 10));
    let mut c = raw(&pg);
    let cases = [
        (
            format!("UPDATE \"{schema}\".groups SET fanout_keys = '\\x0001'"),
            "group",
        ),
        (
            format!("UPDATE \"{schema}\".groups SET shard = -1"),
            "group",
        ),
        (
            format!("UPDATE \"{schema}\".groups SET mls_suite = 65536"),
            "group",
        ),
        (
            format!("UPDATE \"{schema}\".envelopes SET fingerprint = '\\x00'"),
            "envelope",
        ),
    ];
    let repair = format!(
        "UPDATE \"{schema}\".groups SET shard = 1, mls_suite = 1, fanout_keys = \
         decode('0000000000000001' || '0020' || repeat('01', 32), 'hex'); \
         UPDATE \"{schema}\".envelopes SET fingerprint = decode(repeat('00', 32), 'hex')"
    );
    for (sql, what) in cases {
        c.batch_execute(&sql).expect("corrupt");
        let got = s.transact(&mut |t| {
            t.group(b"g")?;
            t.envelope(b"enc", 0)?;
            Ok(())
        });
        let err = got.expect_err(&sql);
        assert_eq!(err.what(), what, "{sql}: {err}");
        assert!(err.to_string().contains("corrupt row"), "{err}");
        c.batch_execute(&repair).expect("repair");
        assert_eq!(tx(&s, |t| t.group(b"g")), Some(r.clone()), "repaired");
    }
    // The uncorrupted rows read again.
    assert_eq!(tx(&s, |t| t.group(b"g")), Some(r));
}

#[test]
fn an_unknown_schema_version_is_refused() {
    let Some(pg) = backend() else { return };
    let s = pg.fresh_named("version");
    let schema = s.schema().to_owned();
    drop(s);
    raw(&pg)
        .batch_execute(&format!(
            "UPDATE \"{schema}\".schema_version SET version = 99"
        ))
        .expect("bump");
    let err = PostgresHubStore::connect_with_schema(&pg.url, &schema).expect_err("refused");
    assert_eq!(err.what(), "open schema");
    let msg = err.to_string();
    assert!(
        msg.contains("version [99]")
            && msg.contains(&format!(
                "knows version {}",
                mimi_onion_store_postgres::SCHEMA_VERSION
            )),
        "{msg}"
    );
    note(&format!("unknown version: {msg}"));
}

/// A schema of version 1 (before the closed epochs of DSP-6 and the
/// fan-out entries of FAN-7) is migrated to version 3 when a front-end
/// connects, and the closed epochs work.
#[test]
fn a_version_1_schema_is_migrated() {
    let Some(pg) = backend() else { return };
    let s = pg.fresh_named("migrate");
    let schema = s.schema().to_owned();
    drop(s);
    raw(&pg)
        .batch_execute(&format!(
            "DROP TABLE \"{schema}\".closed_epochs; \
             DROP TABLE \"{schema}\".tracker_states; DROP TABLE \"{schema}\".store_meta; \
             DROP TABLE \"{schema}\".fanout; DROP TABLE \"{schema}\".delivery_leases; \
             UPDATE \"{schema}\".schema_version SET version = 1"
        ))
        .expect("back to version 1");
    let store = PostgresHubStore::connect_with_schema(&pg.url, &schema).expect("migrated");
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
    let version: i32 = raw(&pg)
        .query_one(
            &format!("SELECT version FROM \"{schema}\".schema_version"),
            &[],
        )
        .expect("version")
        .get(0);
    assert_eq!(version, mimi_onion_store_postgres::SCHEMA_VERSION);
}

/// A schema of version 2 (before the group tracker's states of TRK-4
/// and before FAN-7) is migrated to version 3 when a front-end connects:
/// what it held is kept, the tracker's states work, the store gets one id
/// that every front-end reads, and fan-out entries commit and roll back
/// with their transaction.
#[test]
fn a_version_2_schema_is_migrated() {
    let Some(pg) = backend() else { return };
    let s = pg.fresh_named("migrate2");
    let schema = s.schema().to_owned();
    let g: &[u8] = b"kept group";
    tx(&s, |t| t.put_group(g, &GroupRecord::new(0, 4, 1)));
    drop(s);
    raw(&pg)
        .batch_execute(&format!(
            "DROP TABLE \"{schema}\".tracker_states; DROP TABLE \"{schema}\".store_meta; \
             DROP TABLE \"{schema}\".fanout; DROP TABLE \"{schema}\".delivery_leases; \
             UPDATE \"{schema}\".schema_version SET version = 2"
        ))
        .expect("back to version 2");
    let store = PostgresHubStore::connect_with_schema(&pg.url, &schema).expect("migrated");
    let back = store
        .transact(&mut |t| {
            t.set_tracker_state(b"g", u64::MAX, Some(b"state"))?;
            t.tracker_state(b"g", u64::MAX)
        })
        .expect("tracker states after the migration");
    assert_eq!(back.as_deref(), Some(&b"state"[..]));
    let version: i32 = raw(&pg)
        .query_one(
            &format!("SELECT version FROM \"{schema}\".schema_version"),
            &[],
        )
        .expect("version")
        .get(0);
    assert_eq!(version, mimi_onion_store_postgres::SCHEMA_VERSION);
    assert_eq!(tx(&store, |t| t.group(g)).map(|r| r.epoch), Some(4), "kept");
    let id = tx(&store, |t| t.store_id());
    let other = store.connect_again().expect("second front-end");
    assert_eq!(tx(&other, |t| t.store_id()), id, "STO-5: one id");
    let entry = mimi_onion::state::NewFanout {
        follower: "f",
        address: b"q",
        group_id: g,
        epoch: 4,
        message: b"m",
    };
    let failed: StoreResult<u64> = store.transact(&mut |t| {
        t.add_fanout(&entry)?;
        Err(StoreError::new("test", "roll back"))
    });
    assert!(failed.is_err());
    let seq = tx(&store, |t| t.add_fanout(&entry));
    let entries = tx(&other, |t| t.fanout_entries("f", 10));
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![seq]);
}

#[test]
fn front_ends_opening_a_new_schema_at_once_all_succeed() {
    let Some(pg) = backend() else { return };
    let schema = common::unique_schema("open");
    let barrier = Barrier::new(4);
    thread::scope(|scope| {
        let opens: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    PostgresHubStore::connect_with_schema(&pg.url, &schema)
                })
            })
            .collect();
        for o in opens {
            o.join().expect("thread").expect("open");
        }
    });
    common::drop_schemas(&pg.url, &[schema]);
}

/// Writes the rows of two leaves in the order given; the first run waits
/// between the two for the other thread's first write.
fn lock_two(
    store: &PostgresHubStore,
    g: &[u8],
    barrier: &Barrier,
    runs: &AtomicUsize,
    leaves: [u32; 2],
) -> StoreResult<()> {
    store.transact(&mut |t| {
        let run = runs.fetch_add(1, Ordering::SeqCst);
        t.set_leaf_signature_key(g, leaves[0], Some(b"1"))?;
        if run == 0 {
            barrier.wait();
        }
        t.set_leaf_signature_key(g, leaves[1], Some(b"1"))
    })
}

#[test]
fn a_deadlocked_transaction_is_run_again() {
    let Some(pg) = backend() else { return };
    let a = pg.fresh_named("deadlock");
    let b = a.connect_again().expect("second connection");
    let g = b"deadlock group";
    tx(&a, |t| {
        t.set_leaf_signature_key(g, 1, Some(b"0"))?;
        t.set_leaf_signature_key(g, 2, Some(b"0"))
    });
    let barrier = Barrier::new(2);
    let runs = [AtomicUsize::new(0), AtomicUsize::new(0)];
    thread::scope(|scope| {
        let t0 = scope.spawn(|| lock_two(&a, g, &barrier, &runs[0], [1, 2]));
        let t1 = scope.spawn(|| lock_two(&b, g, &barrier, &runs[1], [2, 1]));
        t0.join().expect("thread 0").expect("transaction 0");
        t1.join().expect("thread 1").expect("transaction 1");
    });
    let total = runs[0].load(Ordering::SeqCst) + runs[1].load(Ordering::SeqCst);
    assert_eq!(total, 3, "the deadlock victim ran once more");
    assert_eq!(tx(&a, |t| t.leaf_signature_key(g, 1)), Some(b"1".to_vec()));
}

#[test]
fn statement_failures_and_an_unreachable_server_are_store_errors() {
    let Some(pg) = backend() else { return };
    let s = pg.fresh_named("fail");
    raw(&pg)
        .batch_execute(&format!("DROP TABLE \"{}\".spent_tokens", s.schema()))
        .expect("drop");
    let err = s
        .transact(&mut |t| t.spend_token(0, &[0; TOKEN_NONCE_LEN], 1))
        .expect_err("no table");
    assert_eq!(err.what(), "spend_token");
    assert!(
        err.to_string().contains("does not exist") && err.to_string().contains("42P01"),
        "{err}"
    );
    note(&format!("a failed statement: {err}"));
    // The rest of the store still works, on the same connection.
    assert_eq!(tx(&s, |t| t.group(b"none")), None);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let err = PostgresHubStore::connect(&format!("host=127.0.0.1 port={port} user=postgres"))
        .expect_err("nobody listens");
    assert_eq!(err.what(), "connect");
}
