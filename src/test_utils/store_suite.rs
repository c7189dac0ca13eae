//! The conformance suite of the store contract (spec section "The Store
//! Contract", STO-1 to STO-3): one set of checks that every [`HubStore`]
//! passes, run by the tests of each store (in memory here, SQLite and
//! PostgreSQL in their crates), as openmls runs one storage test suite
//! against each of its backends.
//!
//! Each check panics with a message naming the rule it found broken. The
//! checks that race two front-ends run them on two threads, each with its
//! own handle on the store ([`Backend::share`]); a store whose front-ends
//! live in other processes (PostgreSQL) adds its own cross-process test.

use std::sync::{Arc, Barrier};
use std::thread;

use crate::config::{HubSigningKey, KeyUse};
use crate::fanout::EpochKeys;
use crate::fanout::{FanoutDirectory, FanoutMessage, FanoutTarget};
use crate::hub::HubFrontEnd;
use crate::keylayer;
use crate::keys::HubKeyPair;
use crate::mls::message::ContentType;
use crate::response::{RejectReason, Status};
use crate::secret::Secret;
use crate::sender::{SealOptions, Sender};
use crate::state::{
    GroupRecord, HubState, HubStore, NewFanout, StoreCounts, StoreError, StoreResult,
};
use crate::suite::HpkeSuite;
use crate::test_utils::room::Room;
use crate::test_utils::{demo_fanout_key, private_message, DemoWorld, NOW};
use crate::token::{RoutingToken, TokenKey, TokenKeys, TOKEN_NONCE_LEN};

/// What the suite needs of a store implementation.
pub trait Backend: Sync {
    /// The store.
    type Store: HubStore + Send + Sync + 'static;
    /// A new, empty store.
    fn fresh(&self) -> Self::Store;
    /// Another handle on the same store, as a second front-end holds
    /// (another connection, for a database).
    fn share(&self, store: &Self::Store) -> Self::Store;
    /// Makes the store fail (`true`) or work again (`false`), as an outage
    /// of the database would: every transaction of every handle fails
    /// while it lasts.
    fn outage(&self, store: &Self::Store, down: bool);
}

fn tx<S: HubStore, R>(store: &S, f: impl FnMut(&mut dyn HubState) -> StoreResult<R>) -> R {
    let mut f = f;
    store.transact(&mut f).expect("the store works")
}

fn counts<S: HubStore>(store: &S) -> StoreCounts {
    tx(store, |t| t.counts())
}

/// STO-2 on one handle: each atomic operation takes effect once and says
/// so; STO-3: `envelope` shows a response only within its window, and
/// `expire` drops what expired; the counts follow.
pub fn primitives<B: Backend>(b: &B) {
    let s = b.fresh();
    let nonce = [7u8; TOKEN_NONCE_LEN];
    assert!(
        tx(&s, |t| t.spend_token(0, &nonce, 100)),
        "STO-2: first spend"
    );
    assert!(
        !tx(&s, |t| t.spend_token(0, &nonce, 100)),
        "STO-2: second spend"
    );
    assert!(
        tx(&s, |t| t.spend_token(1, &nonce, 100)),
        "codepoints are apart"
    );
    let enc = [1u8; 32];
    assert!(tx(&s, |t| t.insert_envelope(&enc, &[2; 32], 200)));
    assert!(
        !tx(&s, |t| t.insert_envelope(&enc, &[3; 32], 200)),
        "STO-2: enc twice"
    );
    let seen = tx(&s, |t| t.envelope(&enc, 10)).expect("recorded");
    assert_eq!(seen.fingerprint, [2; 32]);
    assert_eq!(seen.response, None, "no response before it is set");
    tx(&s, |t| t.set_response(&enc, b"response", 50));
    let seen = tx(&s, |t| t.envelope(&enc, 49)).expect("recorded");
    assert_eq!(seen.response.as_deref(), Some(&b"response"[..]));
    let late = tx(&s, |t| t.envelope(&enc, 50)).expect("still recorded");
    assert_eq!(late.response, None, "STO-3: no response after its window");

    let g = b"primitives group";
    let mut r0 = GroupRecord::new(3, 5, 1);
    r0.pin_fanout_key(5, Secret::new(vec![9; 32]));
    r0.group_context = vec![1, 2, 3];
    r0.profile = crate::profile::HandshakeProfile::Private;
    assert!(
        tx(&s, |t| t.insert_group(g, &r0)),
        "STO-2: first registration"
    );
    assert!(
        !tx(&s, |t| t.insert_group(g, &r0)),
        "STO-2: second registration"
    );
    assert_eq!(
        tx(&s, |t| t.group(g)),
        Some(r0.clone()),
        "record round trip"
    );
    let mut r1 = r0.clone();
    r1.epoch = 6;
    r1.pin_fanout_key(6, Secret::new(vec![8; 32]));
    assert!(
        !tx(&s, |t| t.advance_group(g, 4, &r1)),
        "STO-2: CAS from a wrong epoch"
    );
    assert!(
        tx(&s, |t| t.advance_group(g, 5, &r1)),
        "STO-2: CAS from the epoch read"
    );
    assert!(!tx(&s, |t| t.advance_group(g, 5, &r1)), "STO-2: CAS twice");
    assert_eq!(tx(&s, |t| t.group(g)), Some(r1.clone()));
    assert!(!tx(&s, |t| t.advance_group(b"no such group", 0, &r1)));

    let h = [4u8; 32];
    assert!(
        tx(&s, |t| t.record_handshake(g, 6, &h)),
        "STO-2: first hash"
    );
    assert!(
        !tx(&s, |t| t.record_handshake(g, 6, &h)),
        "STO-2: second hash"
    );
    assert!(tx(&s, |t| t.handshake_accepted(g, &h)));
    assert!(!tx(&s, |t| t.handshake_accepted(b"other group", &h)));
    tx(&s, |t| t.forget_handshakes(g, 5));
    assert!(
        tx(&s, |t| t.handshake_accepted(g, &h)),
        "epoch 6 survives forgetting 5"
    );
    tx(&s, |t| t.forget_handshakes(g, 6));
    assert!(!tx(&s, |t| t.handshake_accepted(g, &h)));

    tx(&s, |t| t.set_leaf_signature_key(g, 3, Some(b"key 3")));
    assert_eq!(
        tx(&s, |t| t.leaf_signature_key(g, 3)),
        Some(b"key 3".to_vec())
    );
    tx(&s, |t| t.set_leaf_signature_key(g, 3, None));
    assert_eq!(tx(&s, |t| t.leaf_signature_key(g, 3)), None);

    // DSP-6: the closed epoch of a group round-trips, is replaced, and is
    // removed; it is kept per group.
    let mut closed = crate::state::ClosedEpoch {
        record: r0.clone(),
        commit_hash: [6; 32],
        committer: 1,
        private: true,
        state: crate::state::DisputeState::Open,
        votes: Vec::new(),
    };
    assert_eq!(tx(&s, |t| t.closed_epoch(g)), None);
    tx(&s, |t| t.set_closed_epoch(g, Some(&closed)));
    assert_eq!(tx(&s, |t| t.closed_epoch(g)), Some(closed.clone()));
    closed.votes.push((0, [7; 32]));
    closed.state = crate::state::DisputeState::Reverted;
    tx(&s, |t| t.set_closed_epoch(g, Some(&closed)));
    assert_eq!(tx(&s, |t| t.closed_epoch(g)), Some(closed.clone()));
    assert_eq!(tx(&s, |t| t.closed_epoch(b"other group")), None);
    tx(&s, |t| t.set_closed_epoch(g, None));
    assert_eq!(tx(&s, |t| t.closed_epoch(g)), None);

    // TRK-4: the group tracker's state round-trips per group and epoch
    // (epochs at the top of `u64` included), is replaced, and is removed.
    assert_eq!(tx(&s, |t| t.tracker_state(g, 1)), None);
    tx(&s, |t| t.set_tracker_state(g, 1, Some(b"state 1")));
    tx(&s, |t| {
        t.set_tracker_state(g, u64::MAX, Some(&[0xFF; 70_000]))
    });
    assert_eq!(tx(&s, |t| t.tracker_state(g, 1)), Some(b"state 1".to_vec()));
    assert_eq!(
        tx(&s, |t| t.tracker_state(g, u64::MAX)),
        Some(vec![0xFF; 70_000])
    );
    tx(&s, |t| {
        t.set_tracker_state(g, 1, Some(b"state 1 with a proposal"))
    });
    assert_eq!(
        tx(&s, |t| t.tracker_state(g, 1)),
        Some(b"state 1 with a proposal".to_vec())
    );
    assert_eq!(tx(&s, |t| t.tracker_state(b"other group", 1)), None);
    assert_eq!(tx(&s, |t| t.tracker_state(g, 2)), None);
    tx(&s, |t| t.set_tracker_state(g, 1, None));
    tx(&s, |t| t.set_tracker_state(g, u64::MAX, None));
    assert_eq!(tx(&s, |t| t.tracker_state(g, 1)), None);
    assert_eq!(tx(&s, |t| t.tracker_state(g, u64::MAX)), None);

    let before = counts(&s);
    assert_eq!(
        (before.spent_tokens, before.envelopes, before.groups),
        (2, 1, 1),
        "{before:?}"
    );
    tx(&s, |t| t.expire(100));
    let after = counts(&s);
    assert_eq!(
        after.spent_tokens, 0,
        "STO-3: spent tokens expire with their key"
    );
    assert_eq!(after.envelopes, 1, "the enc lives until 200");
    tx(&s, |t| t.expire(200));
    assert_eq!(
        counts(&s).envelopes,
        0,
        "STO-3: enc records expire with their key"
    );
    assert_eq!(counts(&s).groups, 1, "groups do not expire");
}

/// STO-1: a transaction that fails after writing leaves nothing behind,
/// and the error reaches the caller.
pub fn rollback<B: Backend>(b: &B) {
    let s = b.fresh();
    let nonce = [5u8; TOKEN_NONCE_LEN];
    let g = b"rollback group";
    let result: StoreResult<()> = s.transact(&mut |t| {
        t.spend_token(0, &nonce, 100)?;
        t.insert_envelope(&[6; 32], &[0; 32], 100)?;
        t.insert_group(g, &GroupRecord::new(0, 0, 1))?;
        t.set_leaf_signature_key(g, 0, Some(b"k"))?;
        t.record_handshake(g, 0, &[1; 32])?;
        t.set_tracker_state(g, 0, Some(b"tracked"))?;
        t.add_fanout(&NewFanout {
            follower: "f",
            address: b"q",
            group_id: g,
            epoch: 0,
            message: b"m",
        })?;
        Err(StoreError::new("test", "fails after writing"))
    });
    assert!(result.is_err(), "STO-1: the error reaches the caller");
    assert_eq!(counts(&s), StoreCounts::default(), "STO-1: nothing kept");
    assert_eq!(
        tx(&s, |t| t.tracker_state(g, 0)),
        None,
        "STO-1: no tracker state kept"
    );
    assert!(
        tx(&s, |t| t.spend_token(0, &nonce, 100)),
        "the token is still unspent"
    );
}

/// A demo hub (the keys of [`DemoWorld`]) over `store`, with the demo
/// group `group` provisioned at epoch 1, and a client with tokens for it.
pub fn demo_hub<S: HubStore>(store: S, group: &[u8]) -> (DemoWorld<S>, Sender) {
    let world = DemoWorld::with_store(store).expect("demo world");
    let mut client = world.client().expect("demo client");
    let mut record = GroupRecord::new(0, 1, 1);
    record.pin_fanout_key(1, demo_fanout_key(group, 1));
    world.hub.provision(group, record).expect("provision");
    client.add_tokens(Some(group), &world.hub.issue_tokens(Some(group)));
    (world, client)
}

/// A sealed application message of `group` in `epoch` (demo F, membership
/// proof), with the next token of the client's pool for the group.
pub fn application(client: &mut Sender, group: &[u8], epoch: u64) -> crate::sender::SealedEnvelope {
    let keys = EpochKeys::derive(&demo_fanout_key(group, epoch), epoch).expect("keys");
    let msg = private_message(group, epoch, ContentType::Application, 32);
    client
        .seal(
            &msg,
            SealOptions {
                membership: Some(&keys),
                ..SealOptions::default()
            },
        )
        .expect("seal")
}

/// HUB-5, RSP-4, TOK-6 through the store: an identical resend gets the
/// recorded response and is not processed; after the retry window it gets
/// random bytes; a spent token in a new envelope gets `token_reused`. On a
/// second handle (another front-end) the same holds.
pub fn resend_and_spent_token<B: Backend>(b: &B) {
    let group = b"resend group";
    let s = b.fresh();
    let (mut world, mut client) = demo_hub(b.share(&s), group);
    world.hub.set_retry_window(300);
    let token: RoutingToken = world.hub.issue_tokens(Some(group))[0];
    client.add_tokens(Some(group), &[token, token]);
    // Use up the pool so the next two envelopes carry `token` twice.
    while client.pool_len(Some(group)) > 2 {
        let e = application(&mut client, group, 1);
        let out = world.hub.handle(&e.bytes, NOW);
        assert!(out.view.is_some());
    }
    let first = application(&mut client, group, 1);
    let out = world.hub.handle(&first.bytes, NOW);
    assert_eq!(out.view.expect("opened").status, Status::Accepted);
    let (mut other, _) = demo_hub(b.share(&s), b"resend other group");
    for hub in [&mut world.hub, &mut other.hub] {
        let again = hub.handle(&first.bytes, NOW + 299);
        assert!(again.from_cache && again.view.is_none(), "RSP-4");
        assert_eq!(again.response, out.response, "RSP-4: byte for byte");
    }
    let late = world.hub.handle(&first.bytes, NOW + 300);
    assert!(
        !late.from_cache && late.view.is_none(),
        "HUB-5: after the window"
    );
    assert_ne!(late.response, out.response);
    let second = application(&mut client, group, 1);
    let out2 = other.hub.handle(&second.bytes, NOW);
    assert_eq!(
        out2.view.expect("opened").status,
        Status::Rejected(RejectReason::TokenReused),
        "TOK-6 across front-ends"
    );
}

/// STO-1 through the hub: while the store is down every envelope gets the
/// `unavailable` response, nothing is kept (a resend is processed once the
/// store is back), nothing accepted before is lost, and no call panics.
pub fn outage<B: Backend>(b: &B) {
    let group = b"outage group";
    let s = b.fresh();
    let (mut world, mut client) = demo_hub(b.share(&s), group);
    world.hub.set_fanout_directory(Box::new(OneFollower));
    let before = application(&mut client, group, 1);
    let out = world.hub.handle(&before.bytes, NOW);
    assert_eq!(out.view.expect("opened").status, Status::Accepted);
    let counts_before = counts(&s);
    assert_eq!(counts_before.fanout, 2, "FAN-7");

    b.outage(&s, true);
    let during = application(&mut client, group, 1);
    for _ in 0..3 {
        let out = world.hub.handle(&during.bytes, NOW);
        assert!(out.view.is_none() && !out.from_cache);
        let r = client
            .open_response(&during.pending, &out.response)
            .expect("STO-1: the unavailable response opens for its sender");
        assert_eq!(r.status, Status::Rejected(RejectReason::Unavailable));
    }
    assert!(world.hub.group(group).is_err(), "reads fail too");
    b.outage(&s, false);

    assert_eq!(
        counts(&s),
        counts_before,
        "STO-1: nothing kept, nothing lost (no fan-out of a message not accepted)"
    );
    let resent = world.hub.handle(&during.bytes, NOW);
    assert_eq!(
        resent
            .view
            .expect("processed once the store is back")
            .status,
        Status::Accepted
    );
    assert_eq!(counts(&s).fanout, 4, "FAN-7: accepted with its fan-out");
    let replay = world.hub.handle(&before.bytes, NOW);
    assert!(
        replay.from_cache,
        "accepted before the outage, still recorded"
    );
}

/// A room at epoch 0 on a hub over `store`, with a unique group id.
pub fn room_on<S: HubStore>(world: &DemoWorld<S>, n: usize) -> Room {
    let component = HubSigningKey::from_app_data_dictionary(&world.app_data_dictionary)
        .expect("demo component");
    let mut id = b"race room ".to_vec();
    id.extend_from_slice(&(n as u64).to_be_bytes());
    let room = Room::with_group_id(1, &component, Some(id)).expect("room");
    world
        .hub
        .provision(&room.group_id, room.record(0).expect("record"))
        .expect("provision");
    for leaf in &room.leaves {
        world
            .hub
            .set_leaf_signature_key(&room.group_id, leaf.index, Some(&leaf.signature_public))
            .expect("leaf key");
    }
    room
}

/// A sealed commit of `room`'s epoch 0 (private handshake, key layer and
/// F of epoch 1), distinct per `salt`.
pub fn commit<S: HubStore>(
    world: &DemoWorld<S>,
    client: &mut Sender,
    room: &mut Room,
    salt: u8,
) -> Vec<u8> {
    let protected = room
        .protect_with(0, ContentType::Commit, b"", [salt; 4])
        .expect("commit");
    let policy_key = world
        .signed_config
        .configuration
        .current(KeyUse::Policy)
        .expect("policy key")
        .clone();
    let key_layer = keylayer::seal(
        &policy_key,
        HpkeSuite::MANDATORY,
        room.suite.code(),
        &protected.message,
        protected.key_layer.as_ref().expect("key layer"),
    )
    .expect("key layer");
    let membership = room.membership_keys(0).expect("keys");
    client
        .seal(
            &protected.message,
            SealOptions {
                key_layer: Some(&key_layer),
                fanout_key: Some(room.epoch(1).expect("epoch 1").f.clone()),
                membership: Some(&membership),
                fanout_key_signature: None,
            },
        )
        .expect("seal")
        .bytes
}

/// Runs `a` on one front-end and `b` on the other at the same moment.
pub fn at_once<S: HubStore + Send + 'static>(
    hubs: &mut [DemoWorld<S>; 2],
    envelopes: [Vec<u8>; 2],
) -> [crate::hub::HubOutcome; 2] {
    let barrier = Arc::new(Barrier::new(2));
    let [h0, h1] = hubs;
    let [e0, e1] = envelopes;
    thread::scope(|scope| {
        let b0 = barrier.clone();
        let t0 = scope.spawn(move || {
            b0.wait();
            h0.hub.handle(&e0, NOW)
        });
        let b1 = barrier.clone();
        let t1 = scope.spawn(move || {
            b1.wait();
            h1.hub.handle(&e1, NOW)
        });
        [
            t0.join().expect("front-end 0"),
            t1.join().expect("front-end 1"),
        ]
    })
}

/// STO-2, HUB-4: two front-ends on one store, given two different valid
/// commits for the same epoch at the same moment, accept exactly one,
/// every time; the other gets `stale_epoch` (or, if the first commit's
/// epoch change was visible before it was checked, `stale_epoch` as
/// well), and the group is one epoch further.
pub fn race_commits<B: Backend>(b: &B, trials: usize) {
    let s = b.fresh();
    let mut hubs = [
        DemoWorld::with_store(b.share(&s)).expect("front-end 0"),
        DemoWorld::with_store(b.share(&s)).expect("front-end 1"),
    ];
    let mut client = hubs[0].client().expect("client");
    for n in 0..trials {
        let mut room = room_on(&hubs[0], n);
        let group = room.group_id.clone();
        client.add_tokens(Some(&group), &hubs[0].hub.issue_tokens(Some(&group)));
        let a = commit(&hubs[0], &mut client, &mut room, 1);
        let c = commit(&hubs[0], &mut client, &mut room, 2);
        let outs = at_once(&mut hubs, [a, c]);
        let statuses: Vec<Status> = outs
            .iter()
            .map(|o| o.view.as_ref().expect("opened").status)
            .collect();
        let accepted = statuses.iter().filter(|s| **s == Status::Accepted).count();
        assert_eq!(
            accepted, 1,
            "trial {n}: STO-2, one commit wins: {statuses:?}"
        );
        assert!(
            statuses.contains(&Status::Rejected(RejectReason::StaleEpoch)),
            "trial {n}: the loser sees the epoch moved: {statuses:?}"
        );
        let record = hubs[1].hub.group(&group).expect("store").expect("group");
        assert_eq!(record.epoch, 1, "trial {n}: exactly one epoch further");
    }
}

/// STO-2, HUB-5: one envelope sent to two front-ends at the same moment
/// is processed by exactly one, every time, with a routable and with an
/// unroutable token; the other answers from the record.
pub fn race_same_envelope<B: Backend>(b: &B, trials: usize) {
    let group = b"twin group";
    let s = b.fresh();
    let (w0, mut client) = demo_hub(b.share(&s), group);
    let w1 = DemoWorld::with_store(b.share(&s)).expect("front-end 1");
    let mut hubs = [w0, w1];
    for n in 0..trials {
        let routable = n % 2 == 0;
        if !routable {
            // An empty pool: the sender uses the unroutable codepoint.
            while client.pool_len(Some(group)) > 0 {
                let e = application(&mut client, group, 1);
                let _ = hubs[0].hub.handle(&e.bytes, NOW);
            }
        } else if client.pool_len(Some(group)) == 0 {
            client.add_tokens(Some(group), &hubs[0].hub.issue_tokens(Some(group)));
        }
        let e = application(&mut client, group, 1);
        let before = counts(&s).envelopes;
        let outs = at_once(&mut hubs, [e.bytes.clone(), e.bytes.clone()]);
        let processed = outs.iter().filter(|o| o.view.is_some()).count();
        assert_eq!(
            processed, 1,
            "trial {n} (routable: {routable}): processed once"
        );
        assert_eq!(outs[0].response, outs[1].response, "trial {n}: same answer");
        assert_eq!(counts(&s).envelopes, before + 1, "trial {n}: one record");
        let r = client
            .open_response(&e.pending, &outs[0].response)
            .expect("the response opens");
        assert_eq!(r.status, Status::Accepted, "trial {n}");
    }
}

/// How many envelopes [`bounded`] sends: `MIMI_ONION_BOUNDED_N`, else
/// 10,000 so that a developer's `cargo test` stays quick; CI sets 100,000.
pub fn bounded_n() -> usize {
    std::env::var("MIMI_ONION_BOUNDED_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// STO-3: `n` envelopes across a token-key and a hub-key rotation (half
/// before, half after; the first keys expire in between): afterwards the
/// store holds only the spent tokens and `enc` records of the live keys,
/// and response bytes only within the retry window. Returns the counts.
pub fn bounded<B: Backend>(b: &B, n: usize) -> StoreCounts {
    let group = b"bounded group";
    let s = b.fresh();
    let t0 = NOW;
    let half = n / 2;
    // The first keys live through phase one (one envelope per second).
    let t1 = NOW + half as u64 + 10;
    let window = 60;
    let hub_at = |hub_ikm: &[u8], token_cp: u8, not_after: u64| {
        let keys = vec![
            HubKeyPair::derive(
                token_cp + 1,
                KeyUse::Hub,
                &[HpkeSuite::MANDATORY],
                hub_ikm,
                not_after,
            )
            .expect("hub key"),
            HubKeyPair::derive(
                1,
                KeyUse::Policy,
                &[HpkeSuite::MANDATORY],
                &[0x77; 32],
                u64::MAX,
            )
            .expect("policy key"),
        ];
        let tokens = TokenKeys::new(vec![
            TokenKey::new(token_cp, [token_cp + 1; 16], not_after).expect("token key")
        ])
        .expect("token keys");
        let mut hub = HubFrontEnd::new(keys, tokens, 16, 0, b.share(&s)).expect("front-end");
        hub.set_retry_window(window);
        hub
    };
    let signing = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let client_for = |hub: &HubFrontEnd<B::Store>| {
        let signed = hub.configuration(1).sign(&signing).expect("sign");
        let component = HubSigningKey::ed25519(&signing.verifying_key());
        Sender::new(signed.verify(&component, t0).expect("verified"))
    };
    let mut record = GroupRecord::new(0, 1, 1);
    record.pin_fanout_key(1, demo_fanout_key(group, 1));
    let phases = [
        (hub_at(&[0xA; 32], 0, t1), t0),
        (hub_at(&[0xB; 32], 1, u64::MAX), t1 + 1),
    ];
    let mut last_times = Vec::new();
    for (i, (mut hub, start)) in phases.into_iter().enumerate() {
        hub.provision(group, record.clone()).expect("provision");
        let mut client = client_for(&hub);
        client.add_tokens(Some(group), &hub.issue_tokens(Some(group)));
        let count = if i == 0 { half } else { n - half };
        for k in 0..count {
            // One envelope per second of the caller's clock in phase two,
            // so that the retry window keeps a known number of responses.
            let now = start + k as u64;
            let e = application(&mut client, group, 1);
            let out = hub.handle(&e.bytes, now);
            let r = client
                .open_response(&e.pending, &out.response)
                .expect("response");
            assert_eq!(r.status, Status::Accepted, "envelope {k} of phase {i}");
            last_times.push(now);
        }
        if i == 1 {
            let end = start + count as u64;
            hub.expire(end).expect("expire");
        }
    }
    let c = counts(&s);
    let second = n - half;
    assert_eq!(
        c.spent_tokens, second,
        "STO-3: only tokens of the live token key: {c:?}"
    );
    assert_eq!(
        c.envelopes, second,
        "STO-3: only enc records of the live hub key: {c:?}"
    );
    assert!(
        c.cached_responses <= window as usize,
        "STO-3: responses only within the retry window: {c:?}"
    );
    assert_eq!(c.groups, 1);
    c
}

fn entry<'a>(follower: &'a str, group_id: &'a [u8], message: &'a [u8]) -> NewFanout<'a> {
    NewFanout {
        follower,
        address: b"alice,bob",
        group_id,
        epoch: 7,
        message,
    }
}

/// FAN-7, STO-5 on the store: the store id is one value for every
/// transaction and every handle, kept across handles; entries come back
/// per follower in sequence order, at most `limit`, byte for byte; a
/// delete takes effect once; entries do not expire; an entry recorded in
/// a transaction that fails does not exist, and no committed entry's
/// number is used again.
pub fn fanout_entries<B: Backend>(b: &B) {
    let s = b.fresh();
    let id = tx(&s, |t| t.store_id());
    assert_eq!(tx(&s, |t| t.store_id()), id, "STO-5: one store id");
    let other = b.share(&s);
    assert_eq!(tx(&other, |t| t.store_id()), id, "STO-5: shared store id");
    assert_ne!(
        tx(&b.fresh(), |t| t.store_id()),
        id,
        "STO-5: drawn per store"
    );
    let g = b"fanout group";
    tx(&s, |t| t.put_group(g, &GroupRecord::new(0, 7, 1)));
    let mut seqs = Vec::new();
    for i in 0..5u8 {
        let follower = if i % 2 == 0 { "even" } else { "odd" };
        seqs.push(tx(&s, |t| t.add_fanout(&entry(follower, g, &[i; 3]))));
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "FAN-7: {seqs:?}");
    let even = tx(&other, |t| t.fanout_entries("even", 10));
    assert_eq!(
        even.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![seqs[0], seqs[2], seqs[4]],
        "FAN-4: per follower, in sequence order"
    );
    assert_eq!(even[1].message, vec![2; 3]);
    assert_eq!(even[1].address, b"alice,bob");
    assert_eq!(even[1].group_id, g);
    assert_eq!(even[1].epoch, 7);
    assert_eq!(even[1].follower, "even");
    assert_eq!(tx(&s, |t| t.fanout_entries("even", 2)).len(), 2, "limit");
    assert!(tx(&s, |t| t.fanout_entries("nobody", 10)).is_empty());
    assert_eq!(counts(&s).fanout, 5);
    tx(&s, |t| t.expire(u64::MAX));
    assert_eq!(
        counts(&s).fanout,
        5,
        "fan-out entries wait, they do not expire"
    );

    // STO-1: a failed transaction leaves no entry.
    let failed: StoreResult<u64> = s.transact(&mut |t| {
        t.add_fanout(&entry("even", g, b"rolled back"))?;
        Err(StoreError::new("test", "fails after add_fanout"))
    });
    assert!(failed.is_err());
    assert_eq!(
        counts(&s).fanout,
        5,
        "STO-1: no entry of a failed transaction"
    );
    assert!(tx(&s, |t| t.fanout_entries("even", 10))
        .iter()
        .all(|e| e.message != b"rolled back"));

    assert!(tx(&s, |t| t.delete_fanout(seqs[0])), "delete");
    assert!(!tx(&other, |t| t.delete_fanout(seqs[0])), "deleted once");
    assert!(!tx(&s, |t| t.delete_fanout(u64::MAX)), "no such entry");
    let next = tx(&s, |t| t.add_fanout(&entry("even", g, b"next")));
    assert!(next > seqs[4], "STO-5: a number is never used again");
    let even = tx(&s, |t| t.fanout_entries("even", 10));
    assert_eq!(
        even.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![seqs[2], seqs[4], next]
    );
}

/// FAN-4, FAN-7 across front-ends: two front-ends record entries of one
/// group at once, each holding its transaction open after the record; an
/// entry's number is above that of every entry of the group that had
/// committed when it was recorded, and no number is drawn twice. So a
/// deliverer that reads an entry has read every earlier one of its group.
pub fn race_fanout_order<B: Backend>(b: &B, per_thread: usize) {
    let s = b.fresh();
    let g = b"fanout race group";
    tx(&s, |t| t.put_group(g, &GroupRecord::new(0, 0, 1)));
    let handles = [b.share(&s), b.share(&s)];
    let barrier = Arc::new(Barrier::new(2));
    thread::scope(|scope| {
        for (n, h) in handles.iter().enumerate() {
            let barrier = barrier.clone();
            scope.spawn(move || {
                barrier.wait();
                for i in 0..per_thread {
                    let body = format!("{n}:{i}").into_bytes();
                    tx(h, |t| {
                        let seq = t.add_fanout(&entry("f", g, &body))?;
                        // One slow transaction beside a fast one: a number
                        // drawn before the other's commit shows here.
                        let pause = if (i + n) % 2 == 0 { 4 } else { 0 };
                        thread::sleep(std::time::Duration::from_millis(pause));
                        let before = t.fanout_entries("f", usize::MAX / 2)?;
                        for e in &before {
                            assert!(
                                e.seq <= seq,
                                "FAN-7: entry {} committed before entry {seq} was \
                                 recorded, with a higher number",
                                e.seq
                            );
                        }
                        Ok(())
                    });
                    // Between envelopes: a store that makes waiters sleep
                    // and poll for its lock (SQLite) lets the other in.
                    thread::sleep(std::time::Duration::from_millis(1));
                }
            });
        }
    });
    let all = tx(&s, |t| t.fanout_entries("f", usize::MAX / 2));
    assert_eq!(all.len(), 2 * per_thread, "every entry, once");
}

/// A directory of one follower with two queues for every group.
struct OneFollower;

impl FanoutDirectory for OneFollower {
    fn targets(&self, _group_id: &[u8]) -> Vec<FanoutTarget> {
        vec![
            FanoutTarget {
                follower: "f1".into(),
                address: b"alice".to_vec(),
            },
            FanoutTarget {
                follower: "f2".into(),
                address: b"bob,carol".to_vec(),
            },
        ]
    }
}

/// FAN-7 through the front-end: an accepted message leaves, in the
/// transaction that accepts it, one fan-out message per follower, each
/// opening for a member to the message; a resend, a rejected envelope and
/// an envelope handled while the store is down leave none; a front-end
/// without a directory records nothing.
pub fn fanout_through_the_hub<B: Backend>(b: &B) {
    let group = b"fan-out hub group";
    let s = b.fresh();
    let (mut world, mut client) = demo_hub(b.share(&s), group);
    world.hub.set_fanout_directory(Box::new(OneFollower));
    let e = application(&mut client, group, 1);
    let out = world.hub.handle(&e.bytes, NOW);
    let view = out.view.expect("opened");
    assert_eq!(view.status, Status::Accepted);
    let keys = EpochKeys::derive(&demo_fanout_key(group, 1), 1).expect("keys");
    let f1 = tx(&s, |t| t.fanout_entries("f1", 10));
    let f2 = tx(&s, |t| t.fanout_entries("f2", 10));
    assert_eq!((f1.len(), f2.len()), (1, 1), "FAN-7: one per follower");
    assert_eq!(f1[0].address, b"alice");
    assert_eq!(f2[0].address, b"bob,carol");
    assert_eq!((f1[0].group_id.as_slice(), f1[0].epoch), (&group[..], 1));
    for m in [&f1[0].message, &f2[0].message] {
        let opened = keys
            .open(&FanoutMessage::parse(m).expect("a fan-out message"))
            .expect("opens under F of the epoch");
        assert_eq!(opened, view.message.as_ref(), "the message, byte for byte");
    }
    assert_ne!(f1[0].message, f2[0].message, "FAN-2: a nonce each");

    // An identical resend is answered from the cache: nothing new.
    assert!(world.hub.handle(&e.bytes, NOW).from_cache);
    // A rejected envelope (the membership proof of another F).
    let wrong = EpochKeys::derive(&Secret::new(vec![9; 32]), 1).expect("keys");
    let msg = private_message(group, 1, ContentType::Application, 32);
    let bad = client
        .seal(
            &msg,
            SealOptions {
                membership: Some(&wrong),
                ..SealOptions::default()
            },
        )
        .expect("seal");
    let out = world.hub.handle(&bad.bytes, NOW);
    assert_eq!(
        out.view.expect("opened").status,
        Status::Rejected(RejectReason::MembershipProofFailed)
    );
    assert_eq!(counts(&s).fanout, 2, "FAN-7: only accepted messages");

    let again = application(&mut client, group, 1);
    assert_eq!(
        world
            .hub
            .handle(&again.bytes, NOW)
            .view
            .expect("opened")
            .status,
        Status::Accepted
    );
    assert_eq!(counts(&s).fanout, 4);
    let f1 = tx(&s, |t| t.fanout_entries("f1", 10));
    assert!(f1[0].seq < f1[1].seq, "FAN-4: acceptance order");

    // Without a directory, nothing is recorded.
    let (mut plain, mut client) = demo_hub(b.share(&s), b"fan-out plain group");
    let e = application(&mut client, b"fan-out plain group", 1);
    assert_eq!(
        plain.hub.handle(&e.bytes, NOW).view.expect("opened").status,
        Status::Accepted
    );
    assert_eq!(counts(&s).fanout, 4, "no directory, no fan-out");
    let _ = &mut world;
}

/// The delivery lease (`HubState::claim_delivery`, STO-2): one holder per
/// follower at a time; the holder renews it; another takes it over once it
/// ran out; a claim in a failed transaction takes nothing; two handles
/// claiming at once, exactly one gets it.
pub fn delivery_lease<B: Backend>(b: &B) {
    let s = b.fresh();
    let other = b.share(&s);
    let (a, c) = ([1u8; 16], [2u8; 16]);
    assert!(tx(&s, |t| t.claim_delivery("f", &a, 100, 110)), "free");
    assert!(!tx(&other, |t| t.claim_delivery("f", &c, 105, 115)), "held");
    assert!(
        tx(&other, |t| t.claim_delivery("g", &c, 105, 115)),
        "per follower"
    );
    assert!(tx(&s, |t| t.claim_delivery("f", &a, 109, 119)), "renewed");
    assert!(
        !tx(&other, |t| t.claim_delivery("f", &c, 118, 128)),
        "renewal holds"
    );
    let failed: StoreResult<bool> = other.transact(&mut |t| {
        t.claim_delivery("f", &c, 119, 129)?;
        Err(StoreError::new("test", "roll back"))
    });
    assert!(failed.is_err());
    assert!(
        !tx(&other, |t| t.claim_delivery("f", &c, 118, 128)),
        "rolled back"
    );
    assert!(
        tx(&other, |t| t.claim_delivery("f", &c, 119, 129)),
        "ran out"
    );
    assert!(
        !tx(&s, |t| t.claim_delivery("f", &a, 120, 130)),
        "taken over"
    );

    // Two handles at once, on a lease that ran out: one wins.
    for round in 0..20u64 {
        let follower = format!("race {round}");
        tx(&s, |t| t.claim_delivery(&follower, &[9; 16], 0, 1));
        let barrier = Arc::new(Barrier::new(2));
        let handles = [b.share(&s), b.share(&s)];
        let won: Vec<bool> = thread::scope(|scope| {
            let joins: Vec<_> = handles
                .iter()
                .enumerate()
                .map(|(n, h)| {
                    let barrier = barrier.clone();
                    let follower = &follower;
                    scope.spawn(move || {
                        barrier.wait();
                        tx(h, |t| {
                            let won = t.claim_delivery(follower, &[n as u8; 16], 5, 50)?;
                            thread::sleep(std::time::Duration::from_millis(1));
                            Ok(won)
                        })
                    })
                })
                .collect();
            joins
                .into_iter()
                .map(|j| j.join().expect("claim"))
                .collect()
        });
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "STO-2: one holder: {won:?}"
        );
    }
}
