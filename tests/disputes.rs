//! Disputed commits (spec "Disputed Commits"): the two wedges of issue 12
//! reproduced on real MLS messages, and the group working again after a
//! member's dispute. DSP-1 (the member's reasons to dispute: a refused
//! commit, a wrong F), DSP-2 (signed wire form), DSP-3 (the hub's checks),
//! DSP-4 (disclosure), DSP-5 (votes and threshold), DSP-6 (revert),
//! DSP-7 (re-pinning F), DSP-8 (the outcomes the disputer learns).

mod common;

use common::{room_public, room_world, room_world_with, seal_room};
use mimi_onion::dispute::{Dispute, DisputeClaim, DisputeOutcome};
use mimi_onion::member::{Delivery, Member, ReceiveError};
use mimi_onion::mls::framing::{apply_reuse_guard, decrypt_sender_data, PrivateMessage};
use mimi_onion::mls::message::ContentType;
use mimi_onion::mls::secret_tree::{leaf_key_nonce, RatchetKind};
use mimi_onion::profile::HandshakeProfile;
use mimi_onion::response::{RejectReason, Status};
use mimi_onion::secret::Secret;
use mimi_onion::sender::{
    protect_private_message, MlsSendState, PrivateContent, ProtectedMessage, Sender,
};
use mimi_onion::suite::HpkeSuite;
use mimi_onion::test_utils::room::Room;
use mimi_onion::test_utils::{install_epoch, DemoWorld, NOW};

/// The honest member's leaf (Bob); leaf 1 commits the faulty commits.
const HONEST: u32 = 0;

/// Seals `p` (key layer, F for a commit or `f`), hands it to the hub and
/// returns the verdict the sender reads.
fn send(
    world: &mut DemoWorld,
    client: &mut Sender,
    room: &Room,
    epoch: u64,
    p: &ProtectedMessage,
    f: Option<Secret>,
) -> Status {
    let env = seal_room(world, client, room, epoch, p, HpkeSuite::MANDATORY, None, f);
    let out = world.hub.handle(&env.bytes, NOW);
    client
        .open_response(&env.pending, &out.response)
        .unwrap()
        .status
}

/// The one fan-out message a follower gets for an accepted message.
fn fan(world: &DemoWorld, room: &Room, epoch: u64, message: &[u8]) -> Vec<u8> {
    world
        .hub
        .fan_out(&room.group_id, epoch, message, 1)
        .unwrap()
        .remove(0)
}

/// Leaf 1's commit of epoch 0, valid in every respect (signed content,
/// confirmation tag, F signature) except that it is encrypted under a key
/// and nonce that are not leaf 1's ratchet key, with `c` over that key:
/// the key layer discloses that key, so the policy engine accepts it.
fn foreign_key_commit(room: &Room) -> ProtectedMessage {
    let e = room.epoch(0).unwrap();
    let next = room.epoch(1).unwrap();
    let suite = room.suite;
    let key = Secret::new(vec![0x5a; suite.nk()]);
    let nonce = Secret::new(vec![0xa5; suite.nn()]);
    let tag = suite
        .mac(
            &next.secrets.confirmation_key,
            &next.context.confirmed_transcript_hash,
        )
        .unwrap();
    protect_private_message(
        &MlsSendState {
            suite,
            group_context: &e.context,
            sender_data_secret: &e.secrets.sender_data_secret,
            leaf_index: 1,
            generation: 0,
            key: &key,
            nonce: &nonce,
            reuse_guard: [1, 2, 3, 4],
            signature_private_key: &room.leaves[1].signature_private,
        },
        &PrivateContent {
            content_type: ContentType::Commit,
            content: &room.commit,
            confirmation_tag: Some(tag),
            padding_len: 0,
            other_safe_aad: &[],
            omit_commitment: false,
        },
        Some(&next.f),
    )
    .unwrap()
}

/// Bob's (the honest leaf's) signed dispute of `commit`, encoded.
fn dispute(room: &Room, commit: &[u8], claim: DisputeClaim) -> Vec<u8> {
    Dispute::sign(
        room.suite,
        &room.leaves[HONEST as usize].signature_private,
        commit,
        HONEST,
        claim,
    )
    .unwrap()
    .encode()
    .unwrap()
    .to_vec()
}

/// The key and final nonce Bob's own ratchet gives for leaf 1's handshake
/// message of epoch 0 at `generation`, with the commit's reuse guard.
fn bobs_disclosure(room: &Room, commit: &[u8]) -> DisputeClaim {
    let e = room.epoch(0).unwrap();
    let msg = PrivateMessage::parse(commit).unwrap();
    let sd = decrypt_sender_data(room.suite, &e.secrets.sender_data_secret, &msg).unwrap();
    let kn = leaf_key_nonce(
        room.suite,
        &e.secrets.encryption_secret,
        2,
        sd.leaf_index,
        RatchetKind::Handshake,
        sd.generation,
    )
    .unwrap();
    DisputeClaim::Undecryptable {
        generation: sd.generation,
        key: kn.key.clone(),
        nonce: apply_reuse_guard(&kn.nonce, sd.reuse_guard).unwrap(),
    }
}

/// After the group is back in epoch 0: the honest leaf's proposal and
/// commit are accepted and delivered, and Bob enters epoch 1 with the hub.
/// A proposal or commit of the honest leaf in the form of the room's
/// handshake profile (PRF-2).
fn honest_handshake(
    room: &mut Room,
    epoch: u64,
    content_type: ContentType,
    reuse_guard: [u8; 4],
) -> ProtectedMessage {
    match room.profile {
        HandshakeProfile::Public => ProtectedMessage {
            message: room
                .protect_public_as(HONEST, epoch, content_type, b"")
                .unwrap(),
            key_layer: None,
        },
        _ => room
            .protect_as(HONEST, epoch, content_type, b"", reuse_guard)
            .unwrap(),
    }
}

fn group_works_again(
    world: &mut DemoWorld,
    client: &mut Sender,
    room: &mut Room,
    bob: &mut Member,
) {
    let p = honest_handshake(room, 0, ContentType::Proposal, [9; 4]);
    assert_eq!(send(world, client, room, 0, &p, None), Status::Accepted);
    let Ok(Delivery::Delivered(r)) = bob.receive(&fan(world, room, 0, &p.message)) else {
        panic!("proposal not delivered");
    };
    assert_eq!(r.sender_leaf, HONEST);
    let c = honest_handshake(room, 0, ContentType::Commit, [8; 4]);
    assert_eq!(send(world, client, room, 0, &c, None), Status::Accepted);
    let Ok(Delivery::Delivered(r)) = bob.receive(&fan(world, room, 0, &c.message)) else {
        panic!("commit not delivered");
    };
    assert_eq!(r.content_type, ContentType::Commit);
    install_epoch(world, room, 1).unwrap();
    bob.enter_epoch(room.suite, room.member_state(1).unwrap());
    let a = room
        .protect_as(
            HONEST,
            1,
            ContentType::Application,
            b"epoch 1 again",
            [7; 4],
        )
        .unwrap();
    assert_eq!(send(world, client, room, 1, &a, None), Status::Accepted);
    let Ok(Delivery::Delivered(r)) = bob.receive(&fan(world, room, 1, &a.message)) else {
        panic!("application message not delivered");
    };
    assert_eq!(r.content, b"epoch 1 again");
}

/// Wedge (a), PrivateMessage: a commit under a key that is not the
/// committer's ratchet key, with `c` over that key, is accepted; Bob
/// refuses it (MEM-4) and the honest leaf's next proposal gets
/// `stale_epoch`. The group must work again afterwards.
#[test]
fn dsp_private_commit_under_a_foreign_key_wedges_then_recovers() {
    let (mut world, mut client, mut room, mut bob) = room_world(1);
    let bad = foreign_key_commit(&room);
    assert_eq!(
        send(&mut world, &mut client, &room, 0, &bad, None),
        Status::Accepted
    );
    assert_eq!(world.hub.group(&room.group_id).unwrap().unwrap().epoch, 1);
    assert_eq!(
        bob.receive(&fan(&world, &room, 0, &bad.message)),
        Err(ReceiveError::Commitment)
    );
    let p = room
        .protect_as(HONEST, 0, ContentType::Proposal, b"", [3; 4])
        .unwrap();
    assert_eq!(
        send(&mut world, &mut client, &room, 0, &p, None),
        Status::Rejected(RejectReason::StaleEpoch)
    );
    // DSP-3: a dispute by the committer itself, or with a signature that
    // does not verify, is refused; DSP-4: so is one disclosing the very
    // key the policy engine read (`c` matches it).
    let own = Dispute::sign(
        room.suite,
        &room.leaves[1].signature_private,
        &bad.message,
        1,
        DisputeClaim::Unprocessable,
    )
    .unwrap();
    assert_eq!(
        world.hub.handle_dispute(&own.encode().unwrap()).unwrap(),
        DisputeOutcome::Refused
    );
    let mut forged =
        Dispute::parse(&dispute(&room, &bad.message, DisputeClaim::Unprocessable)).unwrap();
    forged.signature[0] ^= 1;
    assert_eq!(
        world.hub.handle_dispute(&forged.encode().unwrap()).unwrap(),
        DisputeOutcome::Refused
    );
    let same_key = DisputeClaim::Undecryptable {
        generation: 0,
        key: Secret::new(vec![0x5a; room.suite.nk()]),
        nonce: apply_reuse_guard(&Secret::new(vec![0xa5; room.suite.nn()]), [1, 2, 3, 4]).unwrap(),
    };
    assert_eq!(
        world
            .hub
            .handle_dispute(&dispute(&room, &bad.message, same_key))
            .unwrap(),
        DisputeOutcome::Refused
    );
    assert_eq!(world.hub.group(&room.group_id).unwrap().unwrap().epoch, 1);
    // DSP-4, DSP-6: Bob discloses what its ratchet gives; `c` does not
    // match it, and the threshold (1) is met: the hub reverts to epoch 0.
    let claim = bobs_disclosure(&room, &bad.message);
    assert_eq!(
        world
            .hub
            .handle_dispute(&dispute(&room, &bad.message, claim.clone()))
            .unwrap(),
        DisputeOutcome::Reverted
    );
    let record = world.hub.group(&room.group_id).unwrap().unwrap();
    assert_eq!(record.epoch, 0);
    assert!(record.fanout_key(1).is_none());
    assert_eq!(
        record.group_context,
        room.epoch(0).unwrap().context.encode().unwrap()
    );
    // The disputed commit is refused if sent again (HUB-7), its epoch's
    // fan-out is gone, and a second dispute is refused.
    assert_eq!(
        send(&mut world, &mut client, &room, 0, &bad, None),
        Status::Rejected(RejectReason::ReplayedEnvelope)
    );
    assert!(world.hub.fan_out(&room.group_id, 1, b"x", 1).is_err());
    assert_eq!(
        world
            .hub
            .handle_dispute(&dispute(&room, &bad.message, claim))
            .unwrap(),
        DisputeOutcome::Refused
    );
    group_works_again(&mut world, &mut client, &mut room, &mut bob);
}

/// Wedge (a), PublicMessage: one flipped byte in the membership tag of a
/// member's PublicMessage commit; the hub cannot check the tag, accepts
/// it, Bob refuses it (MEM-5), the honest leaf's next proposal gets
/// `stale_epoch`. The group must work again afterwards.
#[test]
fn dsp_public_commit_with_a_flipped_tag_byte_wedges_then_recovers() {
    let (mut world, mut client, mut room, mut bob) = room_world_with(1, HandshakeProfile::Public);
    let mut bad = room_public(&mut room, 0, ContentType::Commit, b"");
    let last = bad.message.len() - 1;
    bad.message[last] ^= 0x01;
    assert_eq!(
        send(&mut world, &mut client, &room, 0, &bad, None),
        Status::Accepted
    );
    assert_eq!(
        bob.receive(&fan(&world, &room, 0, &bad.message)),
        Err(ReceiveError::Signature)
    );
    let p = honest_handshake(&mut room, 0, ContentType::Proposal, [3; 4]);
    assert_eq!(
        send(&mut world, &mut client, &room, 0, &p, None),
        Status::Rejected(RejectReason::StaleEpoch)
    );
    // DSP-4: a disclosure is for PrivateMessage commits only.
    let e = room.epoch(0).unwrap();
    let disclosure = DisputeClaim::Undecryptable {
        generation: 0,
        key: e.secrets.sender_data_secret.clone(),
        nonce: Secret::new(vec![1; 12]),
    };
    assert_eq!(
        world
            .hub
            .handle_dispute(&dispute(&room, &bad.message, disclosure))
            .unwrap(),
        DisputeOutcome::Refused
    );
    // DSP-5: with a threshold of 2 the first claim is counted only, and
    // counted once; DSP-6: at the threshold the hub reverts.
    world.hub.set_dispute_threshold(2);
    let d = dispute(&room, &bad.message, DisputeClaim::Unprocessable);
    assert_eq!(
        world.hub.handle_dispute(&d).unwrap(),
        DisputeOutcome::Counted {
            votes: 1,
            needed: 2
        }
    );
    assert_eq!(
        world.hub.handle_dispute(&d).unwrap(),
        DisputeOutcome::AlreadyCounted
    );
    assert_eq!(world.hub.group(&room.group_id).unwrap().unwrap().epoch, 1);
    // The hub's threshold back at 1: Bob's resend, counted once, now
    // meets it and the hub reverts to epoch 0.
    world.hub.set_dispute_threshold(1);
    assert_eq!(
        world.hub.handle_dispute(&d).unwrap(),
        DisputeOutcome::Reverted
    );
    assert_eq!(world.hub.group(&room.group_id).unwrap().unwrap().epoch, 0);
    group_works_again(&mut world, &mut client, &mut room, &mut bob);
}

/// Wedge (b): a member's PublicMessage commit carrying an F that members
/// do not derive is accepted (a PublicMessage has no F signature); Bob
/// processes the commit and enters epoch 1, and every member envelope of
/// epoch 1 fails the membership proof. The group must work again.
#[test]
fn dsp_public_commit_with_a_wrong_f_wedges_then_recovers() {
    let (mut world, mut client, mut room, mut bob) = room_world_with(1, HandshakeProfile::Public);
    let commit = room_public(&mut room, 0, ContentType::Commit, b"");
    let wrong_f = Secret::new(vec![0x77; 32]);
    assert_eq!(
        send(&mut world, &mut client, &room, 0, &commit, Some(wrong_f)),
        Status::Accepted
    );
    let Ok(Delivery::Delivered(_)) = bob.receive(&fan(&world, &room, 0, &commit.message)) else {
        panic!("the commit itself is valid");
    };
    install_epoch(&mut world, &room, 1).unwrap();
    bob.enter_epoch(room.suite, room.member_state(1).unwrap());
    let p = honest_handshake(&mut room, 1, ContentType::Proposal, [3; 4]);
    assert_eq!(
        send(&mut world, &mut client, &room, 1, &p, None),
        Status::Rejected(RejectReason::MembershipProofFailed)
    );
    // DSP-7: Bob names the F it derives; the pinned one is refused as a
    // claim, the members' F is pinned again at the threshold.
    let pinned = world.hub.group(&room.group_id).unwrap().unwrap();
    let pinned_f = pinned.fanout_key(1).unwrap().clone();
    assert_eq!(
        world
            .hub
            .handle_dispute(&dispute(
                &room,
                &commit.message,
                DisputeClaim::WrongFanoutKey {
                    fanout_key: pinned_f
                }
            ))
            .unwrap(),
        DisputeOutcome::Refused
    );
    let right_f = room.epoch(1).unwrap().f.clone();
    assert_eq!(
        world
            .hub
            .handle_dispute(&dispute(
                &room,
                &commit.message,
                DisputeClaim::WrongFanoutKey {
                    fanout_key: right_f.clone()
                }
            ))
            .unwrap(),
        DisputeOutcome::Repinned
    );
    let record = world.hub.group(&room.group_id).unwrap().unwrap();
    assert_eq!((record.epoch, record.fanout_key(1)), (1, Some(&right_f)));
    // The group must work in epoch 1 again: the proposal (a new one, the
    // refused one was never accepted) is accepted and delivered.
    let p = honest_handshake(&mut room, 1, ContentType::Proposal, [4; 4]);
    assert_eq!(
        send(&mut world, &mut client, &room, 1, &p, None),
        Status::Accepted
    );
    let Ok(Delivery::Delivered(r)) = bob.receive(&fan(&world, &room, 1, &p.message)) else {
        panic!("proposal of epoch 1 not delivered");
    };
    assert_eq!(r.sender_leaf, HONEST);
}

/// Writes the seed corpus of the `dispute` fuzz target (DSP-2): one
/// dispute per claim on this file's commits, each with its truncations,
/// a flipped byte and a trailing byte. Run on demand:
/// `cargo test -p mimi-onion --test disputes -- --ignored generate_dispute_seeds`.
#[test]
#[ignore = "writes fuzz/corpus/dispute; run on demand"]
fn generate_dispute_seeds() {
    let (_, _, mut room, _) = room_world(1);
    let bad = foreign_key_commit(&room);
    let public = room_public(&mut room, 0, ContentType::Commit, b"");
    let seeds = [
        (
            "undecryptable",
            dispute(&room, &bad.message, bobs_disclosure(&room, &bad.message)),
        ),
        (
            "unprocessable",
            dispute(&room, &public.message, DisputeClaim::Unprocessable),
        ),
        (
            "wrong_fanout_key",
            dispute(
                &room,
                &public.message,
                DisputeClaim::WrongFanoutKey {
                    fanout_key: room.epoch(1).unwrap().f.clone(),
                },
            ),
        ),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/dispute");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, data) in seeds {
        let put = |n: String, d: &[u8]| std::fs::write(dir.join(n), d).unwrap();
        put(name.to_string(), &data);
        put(format!("{name}-truncated1"), &data[..data.len() - 1]);
        put(format!("{name}-half"), &data[..data.len() / 2]);
        let mut flipped = data.clone();
        flipped[data.len() / 2] ^= 0x01;
        put(format!("{name}-flip-mid"), &flipped);
        let mut longer = data.clone();
        longer.push(0);
        put(format!("{name}-trailing0"), &longer);
    }
}

/// DSP-4: a disclosure that opens the disputed commit to a second content
/// signed by the committer is a proof, upheld at once whatever the
/// threshold. The commit here is encrypted under Bob's real ratchet key
/// while its `c` names another key, as one half of a two-key ciphertext
/// would be; the hub's record of the accepted commit is pointed at it in
/// the store, standing in for the other half that the policy engine
/// accepted (a full salamander whose both openings are signed MLS
/// contents is not built here).
#[test]
fn dsp4_a_second_signed_opening_is_a_proof() {
    use mimi_onion::commitment::{build_authenticated_data, CommitmentInput};
    use mimi_onion::mls::framing::{
        encrypt_private_message, sign_framed_content, FramedContent, FramedContentAuthData,
        PrivateMessageContent, Sender as MlsSender, SenderData,
    };
    use mimi_onion::mls::message::WireFormat;
    use mimi_onion::state::HubStore as _;
    let (mut world, mut client, mut room, mut bob) = room_world(1);
    let bad = foreign_key_commit(&room);
    assert_eq!(
        send(&mut world, &mut client, &room, 0, &bad, None),
        Status::Accepted
    );
    let e = room.epoch(0).unwrap();
    let suite = room.suite;
    let reuse_guard = [1, 2, 3, 4];
    let other_nonce = apply_reuse_guard(&Secret::new(vec![0xa5; suite.nn()]), reuse_guard).unwrap();
    let c = CommitmentInput {
        suite,
        group_id: &room.group_id,
        epoch: 0,
        leaf_index: 1,
        key: &[0x5a; 16],
        final_nonce: other_nonce.expose(),
    }
    .commitment()
    .unwrap();
    let ad = build_authenticated_data(&c, &[]).unwrap();
    let framed = FramedContent {
        group_id: room.group_id.clone(),
        epoch: 0,
        sender: MlsSender::Member(1),
        authenticated_data: ad.clone(),
        content_type: ContentType::Commit,
        content: room.commit.clone(),
    };
    let signature = sign_framed_content(
        suite,
        room.leaves[1].signature_private.expose(),
        WireFormat::PrivateMessage,
        &framed,
        Some(&e.context),
    )
    .unwrap();
    let next = room.epoch(1).unwrap();
    let tag = suite
        .mac(
            &next.secrets.confirmation_key,
            &next.context.confirmed_transcript_hash,
        )
        .unwrap();
    let kn = leaf_key_nonce(
        suite,
        &e.secrets.encryption_secret,
        2,
        1,
        RatchetKind::Handshake,
        5,
    )
    .unwrap();
    let twin = encrypt_private_message(
        suite,
        &e.secrets.sender_data_secret,
        &kn.key,
        &kn.nonce,
        &room.group_id,
        0,
        &ad,
        &SenderData {
            leaf_index: 1,
            generation: 5,
            reuse_guard,
        },
        &PrivateMessageContent {
            content_type: ContentType::Commit,
            content: room.commit.clone(),
            auth: FramedContentAuthData {
                signature,
                confirmation_tag: Some(tag),
            },
            padding_len: 0,
        },
    )
    .unwrap();
    let hash: [u8; 32] = mimi_onion::test_utils::sha256(&twin);
    world
        .hub
        .store()
        .transact(&mut |t| {
            let mut closed = t.closed_epoch(&room.group_id)?.expect("closed epoch kept");
            closed.commit_hash = hash;
            t.set_closed_epoch(&room.group_id, Some(&closed))
        })
        .unwrap();
    world.hub.set_dispute_threshold(5);
    let claim = bobs_disclosure(&room, &twin);
    assert_eq!(
        world
            .hub
            .handle_dispute(&dispute(&room, &twin, claim))
            .unwrap(),
        DisputeOutcome::Reverted
    );
    assert_eq!(world.hub.group(&room.group_id).unwrap().unwrap().epoch, 0);
    group_works_again(&mut world, &mut client, &mut room, &mut bob);
}
