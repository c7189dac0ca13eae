//! Group `store`: `HubFrontEnd::handle` on a fresh application envelope
//! (64 B of application data) per iteration, with the hub's state in each
//! store: in memory (the reference), SQLite (a file in a temporary folder,
//! WAL, `synchronous = NORMAL`) and, when `MIMI_ONION_PG_URL` names a
//! server, PostgreSQL over loopback. The figure is each store's time per
//! envelope as a ratio to the in-memory store's, in the same run
//! (benches/README.md). Setup (sealing the envelope) is not measured.

mod common;

use std::cell::RefCell;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mimi_onion::state::{HubStore, InMemoryHubStore};
use mimi_onion::test_utils::{DemoWorld, NOW};
use mimi_onion_store_postgres::PostgresHubStore;
use mimi_onion_store_sqlite::SqliteHubStore;

fn bench_store<S: HubStore>(c: &mut Criterion, name: &str, store: S) {
    let world = DemoWorld::with_store(store).expect("demo world");
    let mut client = world.client().expect("client");
    let mut record = mimi_onion::state::GroupRecord::new(0, common::EPOCH, 1);
    record.pin_fanout_key(common::EPOCH, common::f_of(common::EPOCH));
    world
        .hub
        .provision(common::GROUP, record)
        .expect("provision");
    let keys = common::epoch_keys();
    let message = common::application_message(64);
    let world = RefCell::new(world);
    // Sanity: the hub accepts what the bench sends.
    {
        let mut w = world.borrow_mut();
        client.add_tokens(
            Some(common::GROUP),
            &w.hub.issue_tokens(Some(common::GROUP)),
        );
        let sealed = client
            .seal(&message, common::app_options(&keys))
            .expect("seal");
        let view = w.hub.handle(&sealed.bytes, NOW).view.expect("opened");
        assert_eq!(
            view.status,
            mimi_onion::response::Status::Accepted,
            "{name}"
        );
    }
    let mut group = c.benchmark_group("store");
    group.bench_function(BenchmarkId::new("handle", name), |b| {
        b.iter_batched(
            || {
                let tokens = world.borrow().hub.issue_tokens(Some(common::GROUP));
                client.add_tokens(Some(common::GROUP), &tokens[..1]);
                client
                    .seal(&message, common::app_options(&keys))
                    .expect("seal")
                    .bytes
            },
            |envelope| world.borrow_mut().hub.handle(black_box(&envelope), NOW),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn stores(c: &mut Criterion) {
    bench_store(c, "memory", InMemoryHubStore::new());
    let dir = std::env::temp_dir().join(format!("mimi-onion-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sqlite = SqliteHubStore::open(dir.join("hub.sqlite")).expect("sqlite store");
    bench_store(c, "sqlite", sqlite);
    match std::env::var("MIMI_ONION_PG_URL") {
        Ok(url) => {
            // A schema of its own per run: nothing left from earlier runs.
            let schema = format!("bench_{}", std::process::id());
            let store =
                PostgresHubStore::connect_with_schema(&url, &schema).expect("postgres store");
            bench_store(c, "postgres", store);
        }
        Err(_) => eprintln!("store/handle/postgres skipped: MIMI_ONION_PG_URL not set"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, stores);
criterion_main!(benches);
