//! The example `examples/room.rs` as an integration test (the same code:
//! this file includes it), on real openmls groups through the core's
//! sender, load balancer, hub front-end with the openmls tracker, fan-out
//! and member onion part: every room message reaches each member of its
//! epoch exactly once, byte for byte; the contract checks (no group_id,
//! epoch or content type in any envelope or fan-out message; fan-out view
//! equality) hold on openmls traffic; openmls's own application
//! PrivateMessages, without `c`, are accepted by hub and members.

#[path = "../examples/room.rs"]
mod room;

use std::collections::{HashMap, HashSet};

use mimi_onion::fanout::{fanout_padded_len, FANOUT_HEADER_LEN, FANOUT_NONCE_LEN, HINT_LEN};
use mimi_onion::mls::framing::PrivateMessage;
use mimi_onion::mls::message::{ContentType, MessageInfo, WireFormat};
use mimi_onion::response::Status;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn report() -> room::Report {
    room::run(false).expect("the example runs")
}

/// Each room message and the parties who got it, byte for byte.
fn deliveries(r: &room::Report) -> Vec<(Vec<u8>, Vec<&'static str>)> {
    r.sent
        .iter()
        .map(|s| {
            let got = r
                .parties
                .iter()
                .filter(|p| p.delivered.iter().filter(|m| **m == s.message).count() == 1)
                .map(|p| p.name)
                .collect();
            (s.message.clone(), got)
        })
        .collect()
}

/// FAN-1, MEM-1 to MEM-6 on openmls: each room message reaches every
/// member of its epoch exactly once, byte for byte (their own messages
/// come back once too), and nobody else: not Bob and Carol before they
/// joined, not Carol after she was removed. PRF-4: each commit went with
/// the committer's openmls signature over F, which the hub verified
/// before it accepted the commit.
#[test]
fn every_message_reaches_each_member_exactly_once() {
    let r = report();
    assert!(r.sent.len() >= 7, "{} room messages", r.sent.len());
    for sent in &r.sent {
        for p in &r.parties {
            let n = p.delivered.iter().filter(|m| **m == sent.message).count();
            let expected = usize::from(sent.recipients.contains(&p.name));
            assert_eq!(n, expected, "{}: {} got it {n} times", sent.what, p.name);
        }
    }
    // Nothing was delivered that was not sent.
    for p in &r.parties {
        for m in &p.delivered {
            assert!(r.sent.iter().any(|s| s.message == *m), "{}", p.name);
        }
    }
    // The epoch changed twice; Carol was in epoch 1 only.
    let names: Vec<&str> = r.parties.iter().map(|p| p.name).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let epochs: HashSet<u64> = r
        .sent
        .iter()
        .map(|s| MessageInfo::parse(&s.message).unwrap().epoch.unwrap())
        .collect();
    assert_eq!(epochs, HashSet::from([0, 1, 2]));
    assert!(r.parties[2].member.group(&r.group_id).is_none());
    // MEM-6: Alice's first message of epoch 1 reached Bob and Carol before
    // their Welcome; the rescan at the join delivered it.
    let early = r
        .sent
        .iter()
        .find(|s| s.what == "alice: welcome, both")
        .unwrap();
    for p in &r.parties[1..] {
        let joined = p.view.iter().position(|l| l.starts_with("joined")).unwrap();
        let read = p
            .view
            .iter()
            .position(|l| l.contains("welcome, both"))
            .unwrap();
        assert!(read > joined, "{}", p.name);
        assert!(p.view[..joined].iter().any(|l| l.starts_with("buffered")));
        assert!(p.delivered.contains(&early.message));
    }
    assert_eq!(r.parties[2].member.onion().held_epochs(), 0);
    for p in &r.parties[..2] {
        assert_eq!(
            p.member.group(&r.group_id).unwrap().epoch().as_u64(),
            2,
            "{}",
            p.name
        );
    }
}

/// KCM-1 on openmls: the application messages are openmls's own
/// PrivateMessages, with empty `authenticated_data` (no SafeAAD, no `c`);
/// the hub accepted each and the members delivered each (the test above).
/// The handshakes are PublicMessages (profile 0x01), with no key layer.
#[test]
fn openmls_application_messages_without_c_are_accepted() {
    let r = report();
    let mut applications = 0;
    for sent in &r.sent {
        let info = MessageInfo::parse(&sent.message).unwrap();
        match info.content_type {
            Some(ContentType::Application) => {
                assert_eq!(info.wire_format, WireFormat::PrivateMessage);
                let pm = PrivateMessage::parse(&sent.message).unwrap();
                assert!(pm.authenticated_data.is_empty(), "{}", sent.what);
                applications += 1;
            }
            _ => assert_eq!(info.wire_format, WireFormat::PublicMessage),
        }
    }
    assert_eq!(applications, 6);
    for view in &r.hub_views {
        assert_eq!(view.status, Status::Accepted);
        assert_eq!(view.key_layer_len, 0);
    }
}

/// The contract table on openmls traffic: no envelope and no fan-out
/// message shows the group_id, the epoch or the content type (the MLS
/// framing's `group_id || epoch || content_type`, nor any 16 bytes of the
/// MLS message it carries); a fan-out message shares no 16 bytes with any
/// envelope; the hub front-end sees group, epoch and type.
#[test]
fn contract_checks_hold_on_openmls_traffic() {
    let r = report();
    let gid = &r.group_id;
    let mut forbidden: Vec<Vec<u8>> = vec![
        gid.clone(),
        gid[..8].to_vec(),
        gid[gid.len() - 8..].to_vec(),
    ];
    for sent in &r.sent {
        let info = MessageInfo::parse(&sent.message).unwrap();
        let epoch = info.epoch.unwrap().to_be_bytes();
        if info.wire_format == WireFormat::PrivateMessage {
            // PrivateMessage framing: epoch, then content type.
            let mut header = epoch.to_vec();
            header.push(info.content_type.unwrap().code());
            forbidden.push(header);
        } else {
            // PublicMessage framing: epoch, then the sender.
            let i = sent
                .message
                .windows(gid.len())
                .position(|w| w == &gid[..])
                .unwrap();
            let at = i + gid.len();
            forbidden.push(sent.message[at..at + 13].to_vec());
        }
    }
    let mut envelope_windows: HashSet<&[u8]> = HashSet::new();
    for (i, env) in r.envelopes.iter().enumerate() {
        for f in &forbidden {
            assert!(
                !contains(env, f),
                "envelope {i} shows the group, epoch or type"
            );
        }
        let (_, message) = &r.sealed[i];
        let windows: HashSet<&[u8]> = message.windows(16).collect();
        assert!(
            env.windows(16).all(|w| !windows.contains(w)),
            "envelope {i} shows its MLS message"
        );
        envelope_windows.extend(env.windows(16));
    }
    for (message, fan) in &r.fanouts {
        for f in &forbidden {
            assert!(
                !contains(fan, f),
                "a fan-out message shows the group, epoch or type"
            );
        }
        let windows: HashSet<&[u8]> = message.windows(16).collect();
        assert!(fan.windows(16).all(|w| !windows.contains(w)));
        assert!(
            fan.windows(16).all(|w| !envelope_windows.contains(w)),
            "fan-out and envelope share 16 bytes"
        );
    }
    // The hub front-end saw group, epoch and type of the room messages.
    for (i, view) in r.hub_views.iter().enumerate() {
        let info = MessageInfo::parse(&r.sealed[i].1).unwrap();
        assert_eq!(view.group_id.as_deref(), info.group_id);
        assert_eq!(view.epoch, info.epoch);
        assert_eq!(view.content_type, info.content_type);
        assert_eq!(view.wire_format, info.wire_format);
    }
}

/// FAN-3, view equality on openmls traffic: a fan-out message's length is
/// a function of its MLS message's length alone, whatever its epoch,
/// type and sender; nonces and hints are fresh for every fan-out message.
#[test]
fn fanout_view_equality_on_openmls_traffic() {
    let r = report();
    let mut by_len: HashMap<usize, HashSet<usize>> = HashMap::new();
    for (message, fan) in &r.fanouts {
        assert_eq!(
            fan.len(),
            FANOUT_HEADER_LEN + fanout_padded_len(message.len()) + 16
        );
        by_len.entry(message.len()).or_default().insert(fan.len());
    }
    for lens in by_len.values() {
        assert_eq!(lens.len(), 1);
    }
    let nonces: HashSet<&[u8]> = r
        .fanouts
        .iter()
        .map(|(_, f)| &f[..FANOUT_NONCE_LEN])
        .collect();
    assert_eq!(nonces.len(), r.fanouts.len());
    let hints: HashSet<&[u8]> = r
        .fanouts
        .iter()
        .map(|(_, f)| &f[FANOUT_NONCE_LEN..FANOUT_NONCE_LEN + HINT_LEN])
        .collect();
    assert_eq!(hints.len(), r.fanouts.len());
    // Both followers got a copy of each room message; the copies differ.
    assert_eq!(r.fanouts.len(), 2 * r.sent.len());
    for pair in r.fanouts.chunks(2) {
        assert_eq!(pair[0].0, pair[1].0);
        assert_ne!(pair[0].1, pair[1].1);
    }
}

/// PRF-1 and PRF-2 on openmls: the room's GroupContext fixes the profile,
/// not the sender. A client whose openmls is set to send handshakes as
/// PrivateMessage, in a room of public handshakes, gets its application
/// messages through, but cannot seal its PrivateMessage proposal with this
/// crate (each seal checks the form), the hub refuses the proposal sealed
/// with the core's sender directly, and a member refuses it in a fan-out
/// message.
#[test]
fn a_sender_cannot_pick_the_profile_per_message() {
    use mimi_onion::sender::SealOptions;
    use mimi_onion_openmls::{epoch_keys, room_capabilities, room_extensions, Error};
    use openmls::prelude::tls_codec::Serialize as _;
    use openmls::prelude::{
        GroupId, LeafNodeParameters, MlsGroup, MlsGroupCreateConfig,
        PURE_CIPHERTEXT_WIRE_FORMAT_POLICY,
    };
    use openmls_traits::OpenMlsProvider as _;

    let mut world = room::World::new().unwrap();
    let key = world.signing_key.clone();
    let mut alice = world.party("alice", 0, &key).unwrap();
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(room::SUITE)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .capabilities(room_capabilities())
        .with_group_context_extensions(room_extensions(&key).unwrap())
        .use_ratchet_tree_extension(true)
        .build();
    let group = MlsGroup::new_with_group_id(
        &alice.provider,
        &alice.signer,
        &config,
        GroupId::from_slice(b"a sender that would pick private handshakes"),
        alice.credential.clone(),
    )
    .unwrap();
    let gid = group.group_id().as_slice().to_vec();
    let crypto = alice.provider.crypto();
    let registration = alice
        .client
        .seal_registration(&group, crypto, &alice.signer)
        .unwrap();
    world.send(&mut alice, registration).unwrap();
    let tokens = world.hub.issue_tokens(Some(&gid));
    alice.client.sender_mut().add_tokens(Some(&gid), &tokens);
    for r in alice.member.add_group(&alice.provider, group).unwrap() {
        r.unwrap();
    }
    // Application messages are PrivateMessages in either profile.
    let group = alice.member.group_mut(&gid).unwrap();
    let app = group
        .create_message(&alice.provider, &alice.signer, b"still fine")
        .unwrap();
    let group = alice.member.group(&gid).unwrap();
    let crypto = alice.provider.crypto();
    let sealed = alice.client.seal_application(group, crypto, &app).unwrap();
    world.send(&mut alice, sealed).unwrap();
    // A proposal as PrivateMessage: refused by the client ...
    let group = alice.member.group_mut(&gid).unwrap();
    let (proposal, _) = group
        .propose_self_update(
            &alice.provider,
            &alice.signer,
            LeafNodeParameters::default(),
        )
        .unwrap();
    let group = alice.member.group(&gid).unwrap();
    let crypto = alice.provider.crypto();
    assert!(matches!(
        alice.client.seal_proposal(group, crypto, &proposal),
        Err(Error::Profile(_))
    ));
    // ... and, sealed as the private profile would (with a key layer), by
    // the hub.
    let bytes = proposal.tls_serialize_detached().unwrap();
    let keys = epoch_keys(group, crypto).unwrap();
    let sealed = alice
        .client
        .sender_mut()
        .seal(
            &bytes,
            SealOptions {
                key_layer: Some(&[0x5A; 96]),
                membership: Some(&keys),
                ..SealOptions::default()
            },
        )
        .unwrap();
    let outcome = world.hub.handle(&sealed.bytes, now());
    let response = alice
        .client
        .sender_mut()
        .open_response(&sealed.pending, &outcome.response)
        .unwrap();
    assert_eq!(
        response.status,
        Status::Rejected(mimi_onion::response::RejectReason::WrongForm)
    );
    // A member refuses it too, before openmls sees it, should a party
    // holding F wrap it in a fan-out message anyway.
    let fan = world.hub.fan_out(&gid, 0, &bytes, 1).unwrap();
    let results = alice.member.receive(&alice.provider, &fan[0]);
    assert!(
        matches!(results.as_slice(), [Err(Error::Profile(_))]),
        "{results:?}"
    );
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The same room with hub H's state, the openmls tracker's included, in
/// a SQLite file: every message reaches each member of its epoch exactly
/// once, as over the in-memory store.
#[test]
fn the_room_runs_on_the_sqlite_store() {
    let path = std::env::temp_dir().join(format!(
        "mimi-onion-openmls-room-{}-{}.sqlite",
        std::process::id(),
        now()
    ));
    let store = mimi_onion_store_sqlite::SqliteHubStore::open(&path).unwrap();
    let r = room::run_with(room::World::with_store(store).unwrap(), false).unwrap();
    for ((_, got), sent) in deliveries(&r).iter().zip(&r.sent) {
        let mut expected = sent.recipients.clone();
        expected.sort_unstable();
        let mut got = got.clone();
        got.sort_unstable();
        assert_eq!(got, expected, "{}", sent.what);
    }
    assert_eq!(r.sent.len(), report().sent.len());
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}
