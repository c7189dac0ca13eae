//! The store contract (STO-1 to STO-3) on PostgreSQL: every check of the
//! conformance suite that the in-memory and SQLite stores pass, against
//! the server of env `MIMI_ONION_PG_URL` (see `common`).
//!
//! The outage check stops and starts that server (env
//! `MIMI_ONION_PG_CTL`, `MIMI_ONION_PG_DATA`, `MIMI_ONION_PG_OPTS`): it
//! holds [`SERVER`] exclusively, every other check holds it shared, so no
//! check runs while the server is down.

mod common;

use std::sync::{PoisonError, RwLock};
use std::time::Instant;

use common::{note, Pg, PgCtl};
use mimi_onion::test_utils::store_suite;

/// Shared by the checks that need the server up; exclusive for the one
/// that stops it.
static SERVER: RwLock<()> = RwLock::new(());

/// Runs `check` on a backend of the server at `MIMI_ONION_PG_URL` (if
/// set), with the server up, and reports its time.
fn run(name: &str, check: impl FnOnce(&Pg)) {
    let Some(url) = common::url() else { return };
    let _up = SERVER.read().unwrap_or_else(PoisonError::into_inner);
    let start = Instant::now();
    check(&Pg::new(url, None));
    note(&format!("{name}: {:.2?}", start.elapsed()));
}

#[test]
fn sto2_sto3_primitives() {
    run("primitives", store_suite::primitives);
}

#[test]
fn sto1_rollback() {
    run("rollback", store_suite::rollback);
}

#[test]
fn hub5_resend_and_tok6_spent_token_through_the_store() {
    run(
        "resend_and_spent_token",
        store_suite::resend_and_spent_token,
    );
}

#[test]
fn sto1_outage_fails_closed_and_resumes() {
    let Some(url) = common::url() else { return };
    let Some(ctl) = PgCtl::from_env() else { return };
    let _alone = SERVER.write().unwrap_or_else(PoisonError::into_inner);
    let start = Instant::now();
    store_suite::outage(&Pg::new(url, Some(ctl)));
    note(&format!(
        "outage (server stopped and started again): {:.2?}",
        start.elapsed()
    ));
}

#[test]
fn sto2_race_two_commits_one_wins() {
    run("race_commits (200 trials)", |b| {
        store_suite::race_commits(b, 200)
    });
}

#[test]
fn sto2_race_one_envelope_processed_once() {
    run("race_same_envelope (200 trials)", |b| {
        store_suite::race_same_envelope(b, 200)
    });
}

#[test]
fn sto3_bounded_across_key_rotations() {
    let n = store_suite::bounded_n();
    run(&format!("bounded ({n} envelopes)"), |b| {
        let counts = store_suite::bounded(b, n);
        note(&format!("PostgreSQL store after {n} envelopes: {counts:?}"));
    });
}

#[test]
fn fan7_sto5_fanout_entries() {
    run("fanout_entries", store_suite::fanout_entries);
}

#[test]
fn fan4_fan7_race_fanout_order() {
    run("race_fanout_order (2 x 100)", |b| {
        store_suite::race_fanout_order(b, 100)
    });
}

#[test]
fn fan7_fanout_through_the_hub() {
    run(
        "fanout_through_the_hub",
        store_suite::fanout_through_the_hub,
    );
}

#[test]
fn fan7_delivery_lease() {
    run("delivery_lease", store_suite::delivery_lease);
}
