//! The store contract (STO-1 to STO-3) on the in-memory store: the
//! conformance suite that the SQLite and PostgreSQL stores also pass.

use std::sync::Arc;

use mimi_onion::state::InMemoryHubStore;
use mimi_onion::test_utils::store_suite::{self, Backend};

struct Memory;

impl Backend for Memory {
    type Store = Arc<InMemoryHubStore>;

    fn fresh(&self) -> Self::Store {
        Arc::new(InMemoryHubStore::new())
    }

    fn share(&self, store: &Self::Store) -> Self::Store {
        store.clone()
    }

    fn outage(&self, store: &Self::Store, down: bool) {
        store.set_available(!down);
    }
}

#[test]
fn sto2_sto3_primitives() {
    store_suite::primitives(&Memory);
}

#[test]
fn sto1_rollback() {
    store_suite::rollback(&Memory);
}

#[test]
fn hub5_resend_and_tok6_spent_token_through_the_store() {
    store_suite::resend_and_spent_token(&Memory);
}

#[test]
fn sto1_outage_fails_closed_and_resumes() {
    store_suite::outage(&Memory);
}

#[test]
fn sto2_race_two_commits_one_wins() {
    store_suite::race_commits(&Memory, 200);
}

#[test]
fn sto2_race_one_envelope_processed_once() {
    store_suite::race_same_envelope(&Memory, 200);
}

#[test]
fn sto3_bounded_across_key_rotations() {
    let n = store_suite::bounded_n();
    let counts = store_suite::bounded(&Memory, n);
    println!("in-memory store after {n} envelopes: {counts:?}");
}

#[test]
fn fan7_sto5_fanout_entries() {
    store_suite::fanout_entries(&Memory);
}

#[test]
fn fan4_fan7_race_fanout_order() {
    store_suite::race_fanout_order(&Memory, 100);
}

#[test]
fn fan7_fanout_through_the_hub() {
    store_suite::fanout_through_the_hub(&Memory);
}

#[test]
fn fan7_delivery_lease() {
    store_suite::delivery_lease(&Memory);
}
