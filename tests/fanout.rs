//! The fan-out layer and the member side, end to end on real messages:
//! every row of the contract table, view equality for fan-out messages,
//! and the member rules (spec sections "Fan-out Message", "Member
//! Processing"; DESIGN.md's contract table).

mod common;

use std::collections::HashSet;

use common::{room_world, seal_room};
use mimi_onion::balancer::Route;
use mimi_onion::fanout::{FanoutMessage, FANOUT_NONCE_LEN, HINT_LEN};
use mimi_onion::member::{Delivery, Member, ReceiveError};
use mimi_onion::mls::message::ContentType;
use mimi_onion::response::{RejectReason, Status};
use mimi_onion::sender::{ProtectedMessage, Sender};
use mimi_onion::suite::HpkeSuite;
use mimi_onion::test_utils::NOW;
use mimi_onion::test_utils::{self, room::Room, DemoWorld};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Sends a protected room message through the hub and fans it out.
fn through_hub(
    world: &mut DemoWorld,
    client: &mut Sender,
    room: &Room,
    epoch: u64,
    p: &ProtectedMessage,
    hpke: HpkeSuite,
) -> (Vec<u8>, Vec<Vec<u8>>) {
    let env = seal_room(world, client, room, epoch, p, hpke, None, None);
    let out = world.hub.handle(&env.bytes, NOW);
    assert_eq!(out.view.unwrap().status, Status::Accepted);
    let fans = world
        .hub
        .fan_out(&room.group_id, epoch, &p.message, 2)
        .unwrap();
    (env.bytes, fans)
}

/// The member decrypts exactly what the sender encrypted, for MLS suites
/// 1, 2 and 3 and every HPKE suite (FAN-2, FAN-3, MEM-1, MEM-4).
#[test]
fn member_decrypts_for_every_mls_and_hpke_suite() {
    for code in 1..=3u16 {
        for hpke in HpkeSuite::ALL {
            let (mut world, mut client, mut room, bob) = room_world(code);
            // One member behind each follower.
            let mut carol = Member::default();
            carol.enter_epoch(room.suite, room.member_state(0).unwrap());
            let mut members = [bob, carol];
            for ct in [ContentType::Application, ContentType::Proposal] {
                let data = format!("suite {code} over {hpke:?}");
                let p = room.protect(0, ct, data.as_bytes()).unwrap();
                let (_, fans) = through_hub(&mut world, &mut client, &room, 0, &p, hpke);
                for (f, member) in fans.iter().zip(members.iter_mut()) {
                    let Ok(Delivery::Delivered(r)) = member.receive(f) else {
                        panic!("suite {code} {hpke:?} {ct:?}: not delivered");
                    };
                    assert_eq!(r.message, p.message);
                    let expected = match ct {
                        ContentType::Application => data.as_bytes().to_vec(),
                        _ => room.proposal.clone(),
                    };
                    assert_eq!(r.content, expected);
                    assert_eq!(r.group_id, room.group_id);
                }
            }
        }
    }
}

/// Every row of the contract table on real envelopes and fan-out
/// messages: what the sender's provider, the load balancer, the hub
/// front-end, the policy engine and the followers see, and what they must
/// never see.
#[test]
fn contract_table_end_to_end() {
    let (mut world, mut client, mut room, mut bob) = room_world(1);
    let shard = world.hub.group(&room.group_id).unwrap().unwrap().shard;
    let e0 = room.epoch(0).unwrap();
    let secrets: Vec<Vec<u8>> = vec![
        e0.f.expose().to_vec(),
        e0.secrets.encryption_secret.expose().to_vec(),
        e0.secrets.sender_data_secret.expose().to_vec(),
        e0.secrets.exporter_secret.expose().to_vec(),
    ];
    for (ct, data) in [
        (
            ContentType::Application,
            &b"the plaintext a follower must not see"[..],
        ),
        (ContentType::Proposal, &b""[..]),
        (ContentType::Commit, &b""[..]),
    ] {
        let p = room.protect(0, ct, data).unwrap();
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
        let bytes = env.bytes.clone();
        // Sender's provider: no group_id, epoch, type or key; the key
        // layer's key and nonce are not in the clear either.
        let mut forbidden: Vec<Vec<u8>> = vec![
            room.group_id.clone(),
            room.group_id[..16].to_vec(),
            room.group_id[room.group_id.len() - 16..].to_vec(),
        ];
        forbidden.extend(secrets.iter().cloned());
        if let Some(kl) = &p.key_layer {
            forbidden.push(kl.key.expose().to_vec());
            forbidden.push(kl.nonce.expose().to_vec());
        }
        if !data.is_empty() {
            forbidden.push(data.to_vec());
        }
        for f in &forbidden {
            assert!(
                !contains(&bytes, f),
                "{ct:?}: envelope shows a forbidden value"
            );
        }
        // Load balancer: the shard and nothing else.
        assert_eq!(world.balancer.route(&bytes), Route::Shard(shard));
        // Hub front-end: group, epoch, type; no key, no plaintext.
        let out = world.hub.handle(&bytes, NOW);
        let view = out.view.unwrap();
        assert_eq!(view.status, Status::Accepted);
        assert_eq!(view.group_id.as_deref(), Some(&room.group_id[..]));
        assert_eq!(view.epoch, Some(0));
        assert_eq!(view.content_type, Some(ct));
        let shown = format!("{view:?}");
        for f in &forbidden[3..] {
            assert!(
                !contains(&view.message, f),
                "{ct:?}: front-end sees a key or plaintext"
            );
            assert!(!shown.contains(&test_utils::to_hex(f)));
        }
        // Policy engine: a key layer for handshake messages only.
        assert_eq!(view.key_layer_len > 0, ct != ContentType::Application);
        // Followers: nothing but sizes; no 16-byte string of the envelope.
        let fans = world.hub.fan_out(&room.group_id, 0, &p.message, 2).unwrap();
        let windows: HashSet<&[u8]> = bytes.windows(16).collect();
        for fan in &fans {
            for f in &forbidden {
                assert!(!contains(fan, f), "{ct:?}: fan-out shows a forbidden value");
            }
            assert!(!contains(fan, &p.message[..16]));
            assert!(
                fan.windows(16).all(|w| !windows.contains(w)),
                "{ct:?}: envelope and fan-out share 16 bytes"
            );
        }
        assert!(fans[0][FANOUT_NONCE_LEN..]
            .windows(16)
            .all(|w| !fans[1].windows(16).any(|v| v == w)));
        // Recipient clients: everything.
        let Ok(Delivery::Delivered(r)) = bob.receive(&fans[0]) else {
            panic!("{ct:?}: not delivered");
        };
        assert_eq!(r.message, p.message);
        if ct == ContentType::Commit {
            break;
        }
    }
}

/// FAN-3, view equality for fan-out messages: messages of equal length from
/// different groups, epochs and types give fan-out messages of equal
/// length whose every field is fresh or key-derived.
#[test]
fn fanout_view_equality() {
    let mut fans = Vec::new();
    let target = 300;
    for code in 1..=3u16 {
        let (mut world, mut client, mut room, _) = room_world(code);
        // A proposal, and an application message padded to the same length.
        let prop = room.protect(0, ContentType::Proposal, b"").unwrap();
        let mut app_len = 0;
        let app = loop {
            let a = room
                .protect(0, ContentType::Application, &vec![b'x'; app_len])
                .unwrap();
            if a.message.len() >= prop.message.len() {
                break a;
            }
            app_len += 1;
        };
        for p in [&prop, &app] {
            let (_, f) = through_hub(&mut world, &mut client, &room, 0, p, HpkeSuite::MANDATORY);
            fans.push((p.message.len(), f[0].clone()));
        }
        // And an epoch-1 message after a commit.
        let c = room.protect(0, ContentType::Commit, b"").unwrap();
        through_hub(&mut world, &mut client, &room, 0, &c, HpkeSuite::MANDATORY);
        test_utils::install_epoch(&mut world, &room, 1).unwrap();
        let later = room
            .protect(1, ContentType::Application, &vec![b'y'; target - 250])
            .unwrap();
        let (_, f) = through_hub(
            &mut world,
            &mut client,
            &room,
            1,
            &later,
            HpkeSuite::MANDATORY,
        );
        fans.push((later.message.len(), f[0].clone()));
    }
    for (len_a, fa) in &fans {
        for (len_b, fb) in &fans {
            if len_a == len_b {
                assert_eq!(fa.len(), fb.len());
            }
        }
    }
    // The hints and nonces of all of them differ (fresh per message).
    let nonces: HashSet<&[u8]> = fans.iter().map(|(_, f)| &f[..FANOUT_NONCE_LEN]).collect();
    assert_eq!(nonces.len(), fans.len());
    let hints: HashSet<&[u8]> = fans
        .iter()
        .map(|(_, f)| &f[FANOUT_NONCE_LEN..FANOUT_NONCE_LEN + HINT_LEN])
        .collect();
    assert_eq!(hints.len(), fans.len());
}

/// A fan-out message of group A whose hint matches group B's keys fails at
/// B's check value (MEM-2, FAN-5); without a matching hint it is buffered
/// (MEM-1, MEM-6).
#[test]
fn other_groups_keys_fail_at_the_check_value() {
    let (mut world_a, mut client_a, mut room_a, _) = room_world(1);
    let (_, _, room_b, _) = room_world(2);
    let mut b_only = Member::default();
    b_only.enter_epoch(room_b.suite, room_b.member_state(0).unwrap());
    let p = room_a
        .protect(0, ContentType::Application, b"for A only")
        .unwrap();
    let (_, fans) = through_hub(
        &mut world_a,
        &mut client_a,
        &room_a,
        0,
        &p,
        HpkeSuite::MANDATORY,
    );
    assert_eq!(b_only.receive(&fans[0]), Ok(Delivery::Buffered));
    // Force B's hint onto A's message.
    let mut forged = fans[0].clone();
    let nonce: [u8; FANOUT_NONCE_LEN] = forged[..FANOUT_NONCE_LEN].try_into().unwrap();
    let b_keys = room_b.membership_keys(0).unwrap();
    forged[FANOUT_NONCE_LEN..FANOUT_NONCE_LEN + HINT_LEN].copy_from_slice(&b_keys.hint(&nonce));
    assert_eq!(b_only.receive(&forged), Err(ReceiveError::CheckFailed));
    let parsed = FanoutMessage::parse(&fans[0]).unwrap();
    assert!(b_keys.open(&parsed).is_err());
}

/// FAN-4, MEM-6: a message of the next epoch that arrives before its commit waits in the
/// buffer and is delivered after the commit (FIFO delivery per queue plus
/// the rescan after each epoch change).
#[test]
fn next_epoch_message_before_its_commit_is_delivered_after_it() {
    let (mut world, mut client, mut room, mut bob) = room_world(1);
    let c = room.protect(0, ContentType::Commit, b"").unwrap();
    let (_, commit_fans) = through_hub(&mut world, &mut client, &room, 0, &c, HpkeSuite::MANDATORY);
    test_utils::install_epoch(&mut world, &room, 1).unwrap();
    let a = room
        .protect(1, ContentType::Application, b"early bird")
        .unwrap();
    let (_, app_fans) = through_hub(&mut world, &mut client, &room, 1, &a, HpkeSuite::MANDATORY);
    // The follower's queue delivers the application message first.
    assert_eq!(bob.receive(&app_fans[0]), Ok(Delivery::Buffered));
    assert_eq!(bob.buffered(), 1);
    let Ok(Delivery::Delivered(commit)) = bob.receive(&commit_fans[0]) else {
        panic!("commit not delivered");
    };
    assert_eq!(commit.content_type, ContentType::Commit);
    let rescued = bob.enter_epoch(room.suite, room.member_state(1).unwrap());
    assert_eq!(rescued.len(), 1);
    let Ok(Delivery::Delivered(r)) = &rescued[0] else {
        panic!("not delivered after the epoch change");
    };
    assert_eq!(r.content, b"early bird");
    assert_eq!(r.epoch, 1);
    assert_eq!(bob.buffered(), 0);
    // The previous epoch's keys are still held: a late epoch-0 message
    // still opens.
    assert_eq!(bob.held_epochs(), 2);
}

/// MEM-6, MEM-7: the buffer is bounded: past its capacity the oldest
/// message is dropped and the member is told, locally.
#[test]
fn buffer_is_bounded() {
    let (mut world, mut client, mut room, _) = room_world(1);
    let mut stranger = Member::new(2);
    let p = room.protect(0, ContentType::Application, b"x").unwrap();
    let (_, fans) = through_hub(&mut world, &mut client, &room, 0, &p, HpkeSuite::MANDATORY);
    assert_eq!(stranger.receive(&fans[0]), Ok(Delivery::Buffered));
    assert_eq!(stranger.receive(&fans[1]), Ok(Delivery::Buffered));
    assert_eq!(
        stranger.receive(&fans[0]),
        Err(ReceiveError::BufferOverflow)
    );
    assert_eq!(stranger.buffered(), 2);
    assert_eq!(stranger.receive(b"short"), Err(ReceiveError::Malformed));
}

/// HUB-6, FAN-1: a registration for a group the hub already holds is refused;
/// so is one whose GroupInfo signature fails or whose GroupContext names
/// another hub's signing key, or lacks it (the official vector). An
/// accepted one creates the state with F pinned and the members' keys.
#[test]
fn registration_rules() {
    let mut world = DemoWorld::new().unwrap();
    let mut client = world.client().unwrap();
    let send =
        |world: &mut DemoWorld, client: &mut Sender, gi: &[u8], f: &mimi_onion::secret::Secret| {
            let s = client
                .seal(
                    gi,
                    mimi_onion::sender::SealOptions {
                        fanout_key: Some(f.clone()),
                        ..Default::default()
                    },
                )
                .unwrap();
            let out = world.hub.handle(&s.bytes, NOW);
            client
                .open_response(&s.pending, &out.response)
                .unwrap()
                .status
        };
    let refused = Status::Rejected(RejectReason::RegistrationRefused);
    let (room, gi) = test_utils::registration(&world).unwrap();
    let f = room.epoch(0).unwrap().f.clone();
    // The official GroupInfo: valid signature, but no hub signing key.
    let official = test_utils::demo_messages()
        .unwrap()
        .into_iter()
        .find(|m| m.name == "group_info")
        .unwrap();
    assert_eq!(send(&mut world, &mut client, &official.bytes, &f), refused);
    // A flipped bit in the signature.
    let mut bad = gi.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(send(&mut world, &mut client, &bad, &f), refused);
    // Another hub's signing key in the GroupContext.
    let other = mimi_onion::config::HubSigningKey::ed25519(
        &ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key(),
    );
    let foreign = Room::with_group_id(1, &other, Some(b"a room of another hub".to_vec())).unwrap();
    let foreign_gi = foreign.group_info(0).unwrap();
    assert_eq!(send(&mut world, &mut client, &foreign_gi, &f), refused);
    // The project's registration: accepted once.
    assert_eq!(send(&mut world, &mut client, &gi, &f), Status::Accepted);
    let record = world.hub.group(&room.group_id).unwrap().unwrap();
    assert_eq!(record.fanout_key(0), Some(&f));
    assert_eq!(
        record.profile,
        mimi_onion::profile::HandshakeProfile::Private
    );
    assert_eq!(
        world.hub.leaf_signature_key(&room.group_id, 1).unwrap(),
        Some(room.leaves[1].signature_public.clone())
    );
    assert_eq!(send(&mut world, &mut client, &gi, &f), refused);
}

/// MEM-4: a member drops a PrivateMessage whose key it already used: the same
/// message delivered twice (for example resent in a new envelope and fanned
/// out again) is reported as a replay, not delivered again.
#[test]
fn member_drops_a_message_delivered_twice() {
    let (mut world, mut client, mut room, mut bob) = room_world(1);
    let p = room.protect(0, ContentType::Application, b"once").unwrap();
    let (_, fans) = through_hub(&mut world, &mut client, &room, 0, &p, HpkeSuite::MANDATORY);
    assert!(matches!(bob.receive(&fans[0]), Ok(Delivery::Delivered(_))));
    assert_eq!(bob.receive(&fans[1]), Err(ReceiveError::Replayed));
}

// MEM-8: the member's sender ratchets.

use std::collections::BTreeMap;

use mimi_onion::member::ReceiveLimits;
use mimi_onion::mls::secret_tree::{leaf_ratchets, RatchetKind};
use mimi_onion::sender::{protect_private_message, MlsSendState, PrivateContent};
use mimi_onion::test_utils::room::{N_LEAVES, SENDER_LEAF};

/// Fan-out messages of epoch 0 of `room` from its sending leaf at each of
/// `generations`, of content type `content_type` (application data, or
/// the room's proposal), derived on one sender-side ratchet.
fn room_messages_at(
    room: &Room,
    content_type: ContentType,
    generations: impl IntoIterator<Item = u32>,
) -> BTreeMap<u32, Vec<u8>> {
    let e = room.epoch(0).unwrap();
    let (mut hs, mut app) = leaf_ratchets(
        room.suite,
        &e.secrets.encryption_secret,
        N_LEAVES,
        SENDER_LEAF,
    )
    .unwrap();
    let ratchet = match content_type {
        ContentType::Application => &mut app,
        _ => &mut hs,
    };
    let keys = room.membership_keys(0).unwrap();
    let mut generations: Vec<u32> = generations.into_iter().collect();
    generations.sort_unstable();
    let mut out = BTreeMap::new();
    for generation in generations {
        let kn = ratchet.key_nonce_at(generation).unwrap();
        let data = format!("generation {generation}").into_bytes();
        let content = match content_type {
            ContentType::Application => &data,
            _ => &room.proposal,
        };
        let p = protect_private_message(
            &MlsSendState {
                suite: room.suite,
                group_context: &e.context,
                sender_data_secret: &e.secrets.sender_data_secret,
                leaf_index: SENDER_LEAF,
                generation,
                key: &kn.key,
                nonce: &kn.nonce,
                reuse_guard: generation.to_be_bytes(),
                signature_private_key: &room.leaves[SENDER_LEAF as usize].signature_private,
            },
            &PrivateContent {
                content_type,
                content,
                confirmation_tag: None,
                padding_len: 0,
                other_safe_aad: &[],
                omit_commitment: false,
            },
            None,
        )
        .unwrap();
        out.insert(generation, keys.seal(&p.message, &mut rand::rng()).unwrap());
    }
    out
}

/// Application messages of epoch 0 at `generations`.
fn app_at(room: &Room, generations: impl IntoIterator<Item = u32>) -> BTreeMap<u32, Vec<u8>> {
    room_messages_at(room, ContentType::Application, generations)
}

fn delivered(bob: &mut Member, fan: &[u8]) -> Vec<u8> {
    match bob.receive(fan) {
        Ok(Delivery::Delivered(r)) => r.content,
        other => panic!("not delivered: {other:?}"),
    }
}

fn app_ratchet(bob: &Member, room: &Room) -> Option<mimi_onion::member::RatchetStatus> {
    bob.sender_ratchet(&room.group_id, 0, SENDER_LEAF, RatchetKind::Application)
}

/// MEM-8: the member keeps each sender ratchet where it stopped: once it
/// has walked to a generation, the message at the next generation costs
/// one ratchet step, not a walk from generation 0.
#[test]
fn mem8_next_generation_costs_one_step() {
    let (_, _, room, bob) = room_world(1);
    let mut bob = bob.with_limits(ReceiveLimits {
        max_forward_distance: 20_000,
        ..ReceiveLimits::default()
    });
    let msgs = app_at(&room, 16_383..16_400);
    assert_eq!(delivered(&mut bob, &msgs[&16_383]), b"generation 16383");
    // The walk, once: at most 16,383 steps to the generation, one past it.
    assert!(bob.ratchet_steps() <= 16_384);
    for g in 16_384..16_400 {
        let before = bob.ratchet_steps();
        assert_eq!(
            delivered(&mut bob, &msgs[&g]),
            format!("generation {g}").as_bytes()
        );
        assert_eq!(bob.ratchet_steps() - before, 1, "generation {g}");
    }
    let status = app_ratchet(&bob, &room).expect("ratchet held");
    assert_eq!(status.next_generation, 16_400);
}

/// MEM-8: keys of skipped generations are kept within the out-of-order
/// window and deleted once used or once the window passes them; a used
/// key is refused as a replay, a deleted one as deleted. Out-of-order
/// messages cost no ratchet step.
#[test]
fn mem8_out_of_order_window_and_used_keys_deleted() {
    let (_, _, room, mut bob) = room_world(1);
    assert_eq!(bob.limits().out_of_order_tolerance, 32);
    let msgs = app_at(&room, 0..=42);
    delivered(&mut bob, &msgs[&40]);
    let status = app_ratchet(&bob, &room).expect("ratchet held");
    assert_eq!(status.next_generation, 41);
    // The 32 generations below 40 are kept, older ones deleted.
    assert_eq!(status.held, (8..40).collect::<Vec<_>>());
    let steps = bob.ratchet_steps();
    assert_eq!(delivered(&mut bob, &msgs[&39]), b"generation 39");
    assert_eq!(delivered(&mut bob, &msgs[&8]), b"generation 8");
    assert_eq!(bob.ratchet_steps(), steps, "out of order: no step");
    assert_eq!(bob.receive(&msgs[&7]), Err(ReceiveError::KeyDeleted));
    assert_eq!(bob.receive(&msgs[&0]), Err(ReceiveError::KeyDeleted));
    // Used keys are gone: the same messages again are replays.
    for g in [8, 39, 40] {
        assert_eq!(bob.receive(&msgs[&g]), Err(ReceiveError::Replayed), "{g}");
    }
    let status = app_ratchet(&bob, &room).unwrap();
    assert_eq!(status.held, (9..39).collect::<Vec<_>>());
    // The window moves with the ratchet: after 41 and 42, generation 9 is
    // 33 behind and deleted, 10 still held.
    delivered(&mut bob, &msgs[&41]);
    delivered(&mut bob, &msgs[&42]);
    assert_eq!(bob.receive(&msgs[&9]), Err(ReceiveError::KeyDeleted));
    assert_eq!(delivered(&mut bob, &msgs[&10]), b"generation 10");
    let status = app_ratchet(&bob, &room).unwrap();
    assert_eq!(status.next_generation, 43);
    assert_eq!(status.held, (11..39).collect::<Vec<_>>());
    assert!(status.held.len() <= 32);
}

/// MEM-8: a generation further ahead of the ratchet than the forward
/// bound is refused before any key is derived, and leaves the ratchet as
/// it was; the bound is relative to the ratchet, so a sender that moves
/// within it can reach any generation. The bound is configurable.
#[test]
fn mem8_forward_jump_is_bounded() {
    let (_, _, room, mut bob) = room_world(1);
    assert_eq!(bob.limits().max_forward_distance, 1_024);
    let msgs = app_at(&room, [1_025, 1_024, 2_049, 3_075, 3_074]);
    assert_eq!(bob.receive(&msgs[&1_025]), Err(ReceiveError::TooFarAhead));
    assert_eq!(bob.ratchet_steps(), 0, "refused before any derivation");
    assert_eq!(app_ratchet(&bob, &room), None);
    delivered(&mut bob, &msgs[&1_024]);
    delivered(&mut bob, &msgs[&2_049]);
    let steps = bob.ratchet_steps();
    assert_eq!(bob.receive(&msgs[&3_075]), Err(ReceiveError::TooFarAhead));
    assert_eq!(bob.ratchet_steps(), steps);
    delivered(&mut bob, &msgs[&3_074]);
    assert_eq!(app_ratchet(&bob, &room).unwrap().next_generation, 3_075);

    let (_, _, room, bob) = room_world(1);
    let mut bob = bob.with_limits(ReceiveLimits {
        max_forward_distance: 10,
        ..ReceiveLimits::default()
    });
    let msgs = app_at(&room, [10, 11, 21, 22]);
    assert_eq!(bob.receive(&msgs[&11]), Err(ReceiveError::TooFarAhead));
    delivered(&mut bob, &msgs[&10]);
    assert_eq!(bob.receive(&msgs[&22]), Err(ReceiveError::TooFarAhead));
    delivered(&mut bob, &msgs[&21]);
}

/// MEM-8: a message that fails after its key is derived (here a flipped
/// ciphertext byte: the commitment holds, the AEAD fails) changes no
/// ratchet, so a forgery cannot move a sender's ratchet or delete its
/// keys; the genuine message is delivered afterwards. The handshake and
/// application ratchets of a leaf are separate.
#[test]
fn mem8_failed_message_leaves_the_ratchet() {
    use mimi_onion::mls::framing::PrivateMessage;
    let (_, _, room, mut bob) = room_world(1);
    let keys = room.membership_keys(0).unwrap();
    let msgs = app_at(&room, [5, 30]);
    let inner = keys
        .open(&FanoutMessage::parse(&msgs[&30]).unwrap())
        .unwrap();
    let mut pm = PrivateMessage::parse(&inner).unwrap();
    let last = pm.ciphertext.len() - 1;
    pm.ciphertext[last] ^= 1;
    let forged = keys.seal(&pm.encode().unwrap(), &mut rand::rng()).unwrap();
    assert!(matches!(bob.receive(&forged), Err(ReceiveError::Mls(_))));
    assert_eq!(app_ratchet(&bob, &room), None);
    delivered(&mut bob, &msgs[&30]);
    delivered(&mut bob, &msgs[&5]);
    // A proposal at generation 5 uses the handshake ratchet: not a replay.
    let proposals = room_messages_at(&room, ContentType::Proposal, [5]);
    assert_eq!(delivered(&mut bob, &proposals[&5]), room.proposal);
    let hs = bob
        .sender_ratchet(&room.group_id, 0, SENDER_LEAF, RatchetKind::Handshake)
        .unwrap();
    assert_eq!(hs.next_generation, 6);
    assert_eq!(hs.held, vec![0, 1, 2, 3, 4]);
}

/// The onion part on its own (spec section "Member Processing", for an
/// application whose MLS stack is another one): it opens a fan-out message
/// into the MLS message, byte for byte, with the group and epoch of the
/// keys that opened it (MEM-1 to MEM-3), from F alone; a message of an
/// epoch it does not hold waits in the buffer and comes out of the rescan
/// after the epoch is entered (MEM-6); a PublicMessage is refused as a
/// replay only once it was accepted (MEM-5); FAN-1: two epochs per group.
#[test]
fn onion_member_opens_for_another_mls_stack() {
    use mimi_onion::member::{OnionMember, Opening};
    let (_, _, mut room, _) = room_world(1);
    let mut onion = OnionMember::default();
    let f0 = room.epoch(0).unwrap().f.clone();
    onion.enter_epoch(&room.group_id, 0, &f0).unwrap();
    assert!(onion.next_rescanned().is_none());
    let keys0 = room.membership_keys(0).unwrap();
    let keys1 = room.membership_keys(1).unwrap();
    let mut rng = rand::rng();
    let app = room.protect(0, ContentType::Application, b"hi").unwrap();
    let Ok(Opening::Opened(opened)) = onion.receive(&keys0.seal(&app.message, &mut rng).unwrap())
    else {
        panic!("not opened");
    };
    assert_eq!(opened.message, app.message);
    assert_eq!(
        (opened.group_id.as_slice(), opened.epoch),
        (&room.group_id[..], 0)
    );
    assert!(!opened.is_public());
    onion.accept(&opened).unwrap();
    // MEM-3: keys of epoch 0 around a message of epoch 1.
    let later = room.protect(1, ContentType::Application, b"later").unwrap();
    assert_eq!(
        onion.receive(&keys0.seal(&later.message, &mut rng).unwrap()),
        Err(ReceiveError::WrongGroup)
    );
    // MEM-6: epoch 1 is not held yet: buffered, then rescanned.
    assert_eq!(
        onion.receive(&keys1.seal(&later.message, &mut rng).unwrap()),
        Ok(Opening::Buffered)
    );
    assert_eq!(onion.buffered(), 1);
    let f1 = room.epoch(1).unwrap().f.clone();
    onion.enter_epoch(&room.group_id, 1, &f1).unwrap();
    let rescanned = onion.next_rescanned().unwrap().unwrap();
    assert_eq!((rescanned.epoch, &rescanned.message), (1, &later.message));
    assert!(onion.next_rescanned().is_none());
    assert_eq!(onion.buffered(), 0);
    assert_eq!(onion.epochs(&room.group_id), vec![0, 1]);
    // MEM-5: a PublicMessage opens until it is accepted, then is a replay.
    let pm = common::room_public(&mut room, 1, ContentType::Proposal, b"").message;
    let fan = keys1.seal(&pm, &mut rng).unwrap();
    let Ok(Opening::Opened(first)) = onion.receive(&fan) else {
        panic!("not opened");
    };
    assert!(first.is_public());
    assert!(matches!(onion.receive(&fan), Ok(Opening::Opened(_))));
    onion.accept(&first).unwrap();
    assert_eq!(onion.receive(&fan), Err(ReceiveError::Replayed));
    assert_eq!(onion.accept(&first), Err(ReceiveError::Replayed));
    // FAN-1: entering epoch 2 (any F: the onion part needs no MLS
    // secret) drops epoch 0.
    let f2 = mimi_onion::secret::Secret::from_slice(&[7; 32]);
    onion.enter_epoch(&room.group_id, 2, &f2).unwrap();
    assert_eq!(onion.epochs(&room.group_id), vec![1, 2]);
    assert!(matches!(
        onion.receive(&keys0.seal(&app.message, &mut rng).unwrap()),
        Ok(Opening::Buffered)
    ));
    onion.leave(&room.group_id);
    assert_eq!(onion.held_epochs(), 0);
}
