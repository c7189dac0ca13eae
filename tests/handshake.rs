//! Key layer and key commitment, end to end on real MLS messages (spec
//! sections "Key Layer", "Key Commitment", HUB-8 to HUB-10).

mod common;

use common::salamander;
use common::{room_world, seal_room};
use mimi_onion::codec::put_vec;
use mimi_onion::commitment::{build_authenticated_data, CommitmentInput, KEY_COMMITMENT_COMPONENT};
use mimi_onion::config::KeyUse;
use mimi_onion::fanout::EpochKeys;
use mimi_onion::keylayer::{self, KeyLayerContent};
use mimi_onion::member::{Delivery, ReceiveError};
use mimi_onion::mls::framing::{
    apply_reuse_guard, content_aad, decrypt_private_message, encrypt_sender_data,
    framed_content_tbs, PrivateMessage, SenderData,
};
use mimi_onion::mls::message::{ContentType, WireFormat};
use mimi_onion::mls::secret_tree::{leaf_key_nonce, RatchetKind};
use mimi_onion::response::{RejectReason, Status};
use mimi_onion::secret::Secret;
use mimi_onion::suite::HpkeSuite;
use mimi_onion::test_utils::NOW;

const REJECTED: Status = Status::Rejected(RejectReason::PolicyRejected);

fn status(world: &mut mimi_onion::test_utils::DemoWorld, env: &[u8]) -> Status {
    world.hub.handle(env, NOW).view.expect("opened").status
}

/// HUB-8 to HUB-10 for MLS suites 1 to 3: real proposals and commits,
/// signed with the vectors' keys, pass the policy engine, which reads
/// exactly the content the sender protected; a commit pins F (FAN-1).
#[test]
fn policy_engine_accepts_real_handshakes_for_suites_1_to_3() {
    for code in 1..=3u16 {
        let (mut world, mut client, mut room, _) = room_world(code);
        let p = room.protect(0, ContentType::Proposal, b"").unwrap();
        let env = seal_room(
            &world,
            &mut client,
            &room,
            0,
            &p,
            HpkeSuite::MANDATORY,
            None,
            None,
        );
        assert_eq!(
            status(&mut world, &env.bytes),
            Status::Accepted,
            "suite {code}"
        );
        let audit = world.hub.policy().audit().last().unwrap().clone();
        assert_eq!(audit.content, room.proposal);
        assert_eq!(audit.sender_leaf, 1);
        let c = room.protect(0, ContentType::Commit, b"").unwrap();
        let env = seal_room(
            &world,
            &mut client,
            &room,
            0,
            &c,
            HpkeSuite::MANDATORY,
            None,
            None,
        );
        assert_eq!(
            status(&mut world, &env.bytes),
            Status::Accepted,
            "suite {code}"
        );
        assert_eq!(
            world.hub.policy().audit().last().unwrap().content,
            room.commit
        );
        let record = world.hub.group(&room.group_id).unwrap().unwrap();
        assert_eq!(record.epoch, 1);
        assert_eq!(record.fanout_key(1), Some(&room.epoch(1).unwrap().f));
    }
}

/// A real salamander: one AES-128-GCM ciphertext whose tag is valid under
/// two keys. Both raw opens succeed with different plaintexts; with the
/// commitment, the policy engine given the other key rejects it, and the
/// member holding the real key rejects the message whose `c` names the
/// other key (HUB-9, MEM-4).
#[test]
fn salamander_is_stopped_by_the_commitment() {
    let (mut world, mut client, room, mut bob) = room_world(1);
    let suite = room.suite;
    let e0 = room.epoch(0).unwrap();
    let kn = leaf_key_nonce(
        suite,
        &e0.secrets.encryption_secret,
        2,
        1,
        RatchetKind::Handshake,
        0,
    )
    .unwrap();
    let reuse_guard = [9, 8, 7, 6];
    let final_nonce = apply_reuse_guard(&kn.nonce, reuse_guard).unwrap();
    let k1: [u8; 16] = kn.key.expose().try_into().unwrap();
    let k2 = [0x42u8; 16];
    let nonce: [u8; 12] = final_nonce.expose().try_into().unwrap();
    let gid = room.group_id.clone();
    // `committed_key` is the key `c` names.
    let build = |committed_key: &[u8]| {
        let c = CommitmentInput {
            suite,
            group_id: &gid,
            epoch: 0,
            leaf_index: 1,
            key: committed_key,
            final_nonce: &nonce,
        }
        .commitment()
        .unwrap();
        let ad = build_authenticated_data(&c, &[]).unwrap();
        let aad = content_aad(&gid, 0, ContentType::Proposal, &ad).unwrap();
        let mut pt1 = room.proposal.clone();
        pt1.resize(64, 0);
        let s = salamander::build_with_plaintext(k1, k2, nonce, &aad, &pt1, 3);
        let (p1, p2) = s.open_both();
        assert_ne!(p1, p2);
        let esd = encrypt_sender_data(
            suite,
            &e0.secrets.sender_data_secret,
            &gid,
            0,
            ContentType::Proposal,
            &SenderData {
                leaf_index: 1,
                generation: 0,
                reuse_guard,
            },
            &s.ciphertext,
        )
        .unwrap();
        PrivateMessage {
            group_id: gid.clone(),
            epoch: 0,
            content_type: ContentType::Proposal,
            authenticated_data: ad,
            encrypted_sender_data: esd,
            ciphertext: s.ciphertext.clone(),
        }
        .encode()
        .unwrap()
    };
    // Both raw AEAD opens succeed (checked in `build`), through the
    // project's own AEAD too.
    let m1 = build(&k1);
    let pm = PrivateMessage::parse(&m1).unwrap();
    let aad = pm.content_aad().unwrap();
    let open = |k: &[u8]| {
        suite
            .aead_open(&Secret::from_slice(k), &final_nonce, &aad, &pm.ciphertext)
            .unwrap()
    };
    assert_ne!(open(&k1), open(&k2));
    // The commitment is what tells them apart: it verifies for k1 only.
    for (k, ok) in [(&k1[..], true), (&k2[..], false)] {
        let input = CommitmentInput {
            suite,
            group_id: &gid,
            epoch: 0,
            leaf_index: 1,
            key: k,
            final_nonce: &nonce,
        };
        assert_eq!(input.verify(&pm.authenticated_data).is_ok(), ok);
    }
    // c names k1 (the members' key); the sender gives the policy engine k2.
    let lying_layer = KeyLayerContent {
        leaf_index: 1,
        key: Secret::from_slice(&k2),
        nonce: final_nonce.clone(),
        f_signature: Vec::new(),
    };
    let policy = world
        .signed_config
        .configuration
        .current(KeyUse::Policy)
        .unwrap()
        .clone();
    let kl = keylayer::seal(&policy, HpkeSuite::MANDATORY, 1, &m1, &lying_layer).unwrap();
    let protected = mimi_onion::sender::ProtectedMessage {
        message: m1.clone(),
        key_layer: None,
    };
    let env = seal_room(
        &world,
        &mut client,
        &room,
        0,
        &protected,
        HpkeSuite::MANDATORY,
        Some(kl),
        None,
    );
    assert_eq!(status(&mut world, &env.bytes), REJECTED);
    // c names k2 (the key the hub would be shown); the member holds k1.
    let m2 = build(&k2);
    let keys = EpochKeys::derive(&e0.f, 0).unwrap();
    let fan = keys.seal(&m2, &mut rand::rng()).unwrap();
    assert_eq!(bob.receive(&fan), Err(ReceiveError::Commitment));
}

/// The `c` check also catches a different nonce, a wrong sender leaf, and
/// a SafeAAD with two items of this protocol's id (HUB-9).
#[test]
fn commitment_catches_nonce_leaf_and_duplicate_items() {
    let (mut world, mut client, mut room, _) = room_world(1);
    let policy = world
        .signed_config
        .configuration
        .current(KeyUse::Policy)
        .unwrap()
        .clone();
    let p = room.protect(0, ContentType::Proposal, b"").unwrap();
    let honest = p.key_layer.as_ref().unwrap();
    let variants = [
        KeyLayerContent {
            leaf_index: honest.leaf_index,
            key: honest.key.clone(),
            nonce: Secret::from_slice(&[0u8; 12]),
            f_signature: Vec::new(),
        },
        KeyLayerContent {
            leaf_index: 0,
            key: honest.key.clone(),
            nonce: honest.nonce.clone(),
            f_signature: Vec::new(),
        },
    ];
    for v in &variants {
        let kl = keylayer::seal(&policy, HpkeSuite::MANDATORY, 1, &p.message, v).unwrap();
        let env = seal_room(
            &world,
            &mut client,
            &room,
            0,
            &p,
            HpkeSuite::MANDATORY,
            Some(kl),
            None,
        );
        assert_eq!(status(&mut world, &env.bytes), REJECTED);
    }
    // Two commitment items: re-encrypt the same content with an
    // authenticated_data carrying the item twice.
    let e0 = room.epoch(0).unwrap();
    let d = decrypt_private_message(
        room.suite,
        &e0.secrets.encryption_secret,
        &e0.secrets.sender_data_secret,
        2,
        &p.message,
    )
    .unwrap();
    let pm = PrivateMessage::parse(&p.message).unwrap();
    let (items, _) = mimi_onion::commitment::parse_safe_aad(&pm.authenticated_data).unwrap();
    let mut inner = Vec::new();
    for _ in 0..2 {
        inner.extend_from_slice(&KEY_COMMITMENT_COMPONENT.to_be_bytes());
        put_vec(&mut inner, items[0].data).unwrap();
    }
    let mut ad = Vec::new();
    put_vec(&mut ad, &inner).unwrap();
    let twice = mimi_onion::mls::framing::encrypt_private_message(
        room.suite,
        &e0.secrets.sender_data_secret,
        &d.key,
        &leaf_key_nonce(
            room.suite,
            &e0.secrets.encryption_secret,
            2,
            1,
            RatchetKind::Handshake,
            0,
        )
        .unwrap()
        .nonce,
        &room.group_id,
        0,
        &ad,
        &d.sender_data,
        &d.content,
    )
    .unwrap();
    let protected = mimi_onion::sender::ProtectedMessage {
        message: twice,
        key_layer: p.key_layer,
    };
    let env = seal_room(
        &world,
        &mut client,
        &room,
        0,
        &protected,
        HpkeSuite::MANDATORY,
        None,
        None,
    );
    assert_eq!(status(&mut world, &env.bytes), REJECTED);
}

/// A key layer lifted onto another message, another group or another
/// epoch is rejected (its aad binds all three).
#[test]
fn lifted_key_layers_are_rejected() {
    let (mut world, mut client, mut room, _) = room_world(1);
    let policy = world
        .signed_config
        .configuration
        .current(KeyUse::Policy)
        .unwrap()
        .clone();
    let p1 = room.protect(0, ContentType::Proposal, b"").unwrap();
    let p2 = room.protect(0, ContentType::Proposal, b"").unwrap();
    let kl1 = keylayer::seal(
        &policy,
        HpkeSuite::MANDATORY,
        1,
        &p1.message,
        p1.key_layer.as_ref().unwrap(),
    )
    .unwrap();
    // Another message of the same group and epoch.
    let env = seal_room(
        &world,
        &mut client,
        &room,
        0,
        &p2,
        HpkeSuite::MANDATORY,
        Some(kl1.clone()),
        None,
    );
    assert_eq!(status(&mut world, &env.bytes), REJECTED);
    // The right key layer for p1 is accepted.
    let env = seal_room(
        &world,
        &mut client,
        &room,
        0,
        &p1,
        HpkeSuite::MANDATORY,
        Some(kl1.clone()),
        None,
    );
    assert_eq!(status(&mut world, &env.bytes), Status::Accepted);
    // Another epoch: move to epoch 1, then lift an epoch-0 key layer onto
    // an epoch-1 proposal.
    let c = room.protect(0, ContentType::Commit, b"").unwrap();
    let env = seal_room(
        &world,
        &mut client,
        &room,
        0,
        &c,
        HpkeSuite::MANDATORY,
        None,
        None,
    );
    assert_eq!(status(&mut world, &env.bytes), Status::Accepted);
    mimi_onion::test_utils::install_epoch(&mut world, &room, 1).unwrap();
    let p3 = room.protect(1, ContentType::Proposal, b"").unwrap();
    let kl_old = keylayer::seal(
        &policy,
        HpkeSuite::MANDATORY,
        1,
        &p2.message,
        p2.key_layer.as_ref().unwrap(),
    )
    .unwrap();
    let env = seal_room(
        &world,
        &mut client,
        &room,
        1,
        &p3,
        HpkeSuite::MANDATORY,
        Some(kl_old),
        None,
    );
    assert_eq!(status(&mut world, &env.bytes), REJECTED);
    // Another group: the suite-3 room's proposal with this room's layer.
    let (mut w3, mut c3, mut room3, _) = room_world(3);
    let q = room3.protect(0, ContentType::Proposal, b"").unwrap();
    let env = seal_room(
        &w3,
        &mut c3,
        &room3,
        0,
        &q,
        HpkeSuite::MANDATORY,
        Some(kl1),
        None,
    );
    assert_eq!(status(&mut w3, &env.bytes), REJECTED);
}

/// Signatures over FramedContentTBS verify for MLS suites 1 to 3 and fail
/// for a flipped bit in `authenticated_data`.
#[test]
fn signatures_verify_for_suites_1_to_3_and_bind_authenticated_data() {
    for code in 1..=3u16 {
        let (_, _, mut room, _) = room_world(code);
        let p = room.protect(0, ContentType::Proposal, b"").unwrap();
        let e0 = room.epoch(0).unwrap();
        let d = decrypt_private_message(
            room.suite,
            &e0.secrets.encryption_secret,
            &e0.secrets.sender_data_secret,
            2,
            &p.message,
        )
        .unwrap();
        let key = &room.leaves[1].signature_public;
        d.verify_signature(room.suite, key, &e0.context).unwrap();
        let mut framed = d.framed_content();
        framed.authenticated_data[3] ^= 1;
        let tbs =
            framed_content_tbs(WireFormat::PrivateMessage, &framed, Some(&e0.context)).unwrap();
        assert!(room
            .suite
            .verify_with_label(key, "FramedContentTBS", &tbs, &d.content.auth.signature)
            .is_err());
    }
}

/// A commit whose F signature does not verify (the hub layer carries
/// another F than the one signed) is rejected, and F is not pinned.
#[test]
fn commit_with_bad_f_signature_is_rejected_and_f_not_pinned() {
    let (mut world, mut client, mut room, _) = room_world(1);
    let c = room.protect(0, ContentType::Commit, b"").unwrap();
    let wrong_f = Secret::from_slice(&[7u8; 32]);
    let env = seal_room(
        &world,
        &mut client,
        &room,
        0,
        &c,
        HpkeSuite::MANDATORY,
        None,
        Some(wrong_f),
    );
    assert_eq!(status(&mut world, &env.bytes), REJECTED);
    let record = world.hub.group(&room.group_id).unwrap().unwrap();
    assert_eq!(record.epoch, 0);
    assert!(record.fanout_key(1).is_none());
    // The same commit with the signed F goes through.
    let env = seal_room(
        &world,
        &mut client,
        &room,
        0,
        &c,
        HpkeSuite::MANDATORY,
        None,
        None,
    );
    assert_eq!(status(&mut world, &env.bytes), Status::Accepted);
}

/// HUB-9, PRF-2: the hub refuses key layers in a room with public
/// handshakes, before the policy engine sees them.
#[test]
fn group_without_the_component_gets_no_policy_decision() {
    let (mut world, mut client, mut room, _) = room_world(1);
    let mut record = world.hub.group(&room.group_id).unwrap().unwrap();
    record.profile = mimi_onion::profile::HandshakeProfile::Public;
    world.hub.put_group(&room.group_id, &record).unwrap();
    let p = room.protect(0, ContentType::Proposal, b"").unwrap();
    let env = seal_room(
        &world,
        &mut client,
        &room,
        0,
        &p,
        HpkeSuite::MANDATORY,
        None,
        None,
    );
    let audits = world.hub.policy().audit().len();
    assert_eq!(
        status(&mut world, &env.bytes),
        Status::Rejected(RejectReason::WrongForm)
    );
    assert_eq!(world.hub.policy().audit().len(), audits);
}

/// The member recomputes `c` from its own ratchet: a message it receives
/// through the fan-out layer delivers exactly what the policy engine read.
#[test]
fn member_and_policy_engine_read_the_same_commit() {
    let (mut world, mut client, mut room, mut bob) = room_world(2);
    let c = room.protect(0, ContentType::Commit, b"").unwrap();
    let env = seal_room(
        &world,
        &mut client,
        &room,
        0,
        &c,
        HpkeSuite::P256Aes128Gcm,
        None,
        None,
    );
    assert_eq!(status(&mut world, &env.bytes), Status::Accepted);
    let fans = world.hub.fan_out(&room.group_id, 0, &c.message, 1).unwrap();
    let Ok(Delivery::Delivered(r)) = bob.receive(&fans[0]) else {
        panic!("not delivered");
    };
    assert_eq!(
        r.content,
        world.hub.policy().audit().last().unwrap().content
    );
    assert_eq!(r.sender_leaf, 1);
}
