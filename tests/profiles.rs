//! Handshake profiles (PRF-1 to PRF-4) and the key commitment only where
//! it protects something (KCM-1, KCM-2), each tested by its requirement
//! id.

mod common;

use common::{room_public, room_world, room_world_with, seal_room};
use mimi_onion::commitment::build_authenticated_data;
use mimi_onion::config::{find_app_data_dictionary, AppDataDictionary, KeyUse};
use mimi_onion::member::{Delivery, ReceiveError};
use mimi_onion::mls::message::ContentType;
use mimi_onion::profile::{HandshakeProfile, HANDSHAKE_PROFILE_COMPONENT};
use mimi_onion::response::{RejectReason, Status};
use mimi_onion::secret::Secret;
use mimi_onion::sender::{
    seal_envelope, HubLayerFields, Membership, ProtectedMessage, SealOptions, Sender,
};
use mimi_onion::suite::HpkeSuite;
use mimi_onion::test_utils::room::Room;
use mimi_onion::test_utils::{DemoWorld, NOW};
use mimi_onion::wire::OuterHeader;

const WRONG_FORM: Status = Status::Rejected(RejectReason::WrongForm);
const POLICY: Status = Status::Rejected(RejectReason::PolicyRejected);

fn status(world: &mut DemoWorld, envelope: &[u8]) -> Status {
    world.hub.handle(envelope, NOW).view.unwrap().status
}

/// Seals a protected message of the room as its form requires
/// ([`seal_room`]) and hands it to the hub.
fn send(
    world: &mut DemoWorld,
    client: &mut Sender,
    room: &Room,
    epoch: u64,
    p: &ProtectedMessage,
) -> Status {
    let env = seal_room(
        world,
        client,
        room,
        epoch,
        p,
        HpkeSuite::MANDATORY,
        None,
        None,
    );
    status(world, &env.bytes)
}

/// Seals a PublicMessage commit of `epoch` carrying `f` and `signature`.
fn seal_public_commit(
    client: &mut Sender,
    room: &Room,
    epoch: u64,
    message: &[u8],
    f: Secret,
    signature: &[u8],
) -> Vec<u8> {
    let keys = room.membership_keys(epoch).unwrap();
    client
        .seal(
            message,
            SealOptions {
                fanout_key: Some(f),
                membership: Some(&keys),
                fanout_key_signature: Some(signature),
                ..SealOptions::default()
            },
        )
        .unwrap()
        .bytes
}

/// PRF-2: in a room with public handshakes, a PrivateMessage proposal or
/// commit (with its key layer) is refused before the policy engine sees
/// it; an application PrivateMessage is accepted as in any room.
#[test]
fn prf2_private_handshake_in_a_public_room_is_refused() {
    let (mut world, mut client, mut room, _) = room_world_with(1, HandshakeProfile::Public);
    let audits = world.hub.policy().audit().len();
    for ct in [ContentType::Proposal, ContentType::Commit] {
        let p = room.protect(0, ct, b"").unwrap();
        assert_eq!(
            send(&mut world, &mut client, &room, 0, &p),
            WRONG_FORM,
            "{ct:?}"
        );
    }
    assert_eq!(world.hub.policy().audit().len(), audits);
    let app = room.protect(0, ContentType::Application, b"hi").unwrap();
    assert_eq!(
        send(&mut world, &mut client, &room, 0, &app),
        Status::Accepted
    );
}

/// PRF-2: in a room with private handshakes, a member's PublicMessage
/// proposal or commit is refused; a non-member's PublicMessage (which has
/// no keys for a PrivateMessage) is not refused by PRF-2 but judged by
/// HUB-12 (this hub, with no group tracker, cannot verify it).
#[test]
fn prf2_public_handshake_in_a_private_room_is_refused() {
    let (mut world, mut client, mut room, _) = room_world(1);
    for ct in [ContentType::Proposal, ContentType::Commit] {
        let p = room_public(&mut room, 0, ct, b"");
        assert_eq!(
            send(&mut world, &mut client, &room, 0, &p),
            WRONG_FORM,
            "{ct:?}"
        );
    }
    let mut external = mimi_onion::mls::framing::PublicMessage::parse(
        &room_public(&mut room, 0, ContentType::Proposal, b"ext").message,
    )
    .unwrap();
    external.content.sender = mimi_onion::mls::framing::Sender::External(0);
    external.membership_tag = None;
    let s = client
        .seal(&external.encode().unwrap(), SealOptions::default())
        .unwrap();
    assert_eq!(status(&mut world, &s.bytes), POLICY);
    // The same handshakes in the form of the profile are accepted.
    let p = room.protect(0, ContentType::Proposal, b"").unwrap();
    assert_eq!(
        send(&mut world, &mut client, &room, 0, &p),
        Status::Accepted
    );
}

/// PRF-4: a PublicMessage commit's hub layer carries the committer's
/// signature over the F of the epoch it opens. Over another F, by another
/// leaf, or altered: refused (`policy_rejected`), nothing pinned. Without
/// it: the sender refuses to seal, and a hand-sealed envelope is
/// `wrong_form` (HUB-1). With it: accepted, and that F is pinned.
#[test]
fn prf4_public_commit_needs_the_committers_signature_over_f() {
    let (mut world, mut client, mut room, mut bob) = room_world_with(1, HandshakeProfile::Public);
    let commit = room.protect_public(0, ContentType::Commit, b"").unwrap();
    let f1 = room.epoch(1).unwrap().f.clone();
    let good = room.sign_fanout_key(1, 1, &f1).unwrap();
    let other_f = room
        .sign_fanout_key(1, 1, &Secret::new(vec![0x55; 32]))
        .unwrap();
    let other_leaf = room.sign_fanout_key(0, 1, &f1).unwrap();
    let other_epoch = room.sign_fanout_key(1, 2, &f1).unwrap();
    let mut flipped = good.clone();
    flipped[3] ^= 1;
    for (what, sig) in [
        ("over another F", &other_f),
        ("by another leaf", &other_leaf),
        ("for another epoch", &other_epoch),
        ("altered", &flipped),
    ] {
        let env = seal_public_commit(&mut client, &room, 0, &commit, f1.clone(), sig);
        assert_eq!(status(&mut world, &env), POLICY, "{what}");
        assert_eq!(world.hub.group(&room.group_id).unwrap().unwrap().epoch, 0);
    }
    // No signature: the sender refuses; the hub refuses a hand-made one.
    let keys = room.membership_keys(0).unwrap();
    assert!(client
        .seal(
            &commit,
            SealOptions {
                fanout_key: Some(f1.clone()),
                membership: Some(&keys),
                ..SealOptions::default()
            },
        )
        .is_err());
    let key = world
        .signed_config
        .configuration
        .current(KeyUse::Hub)
        .unwrap()
        .clone();
    let token = world.hub.issue_tokens(Some(&room.group_id))[0];
    let unsigned = seal_envelope(
        &[7; 32],
        &key,
        OuterHeader {
            token,
            key_id: key.key_id,
            suite: HpkeSuite::MANDATORY,
        },
        &commit,
        Membership::Keys(&keys),
        HubLayerFields {
            fanout_key: Some(f1.clone()),
            ..HubLayerFields::default()
        },
    )
    .unwrap();
    assert_eq!(status(&mut world, &unsigned.bytes), WRONG_FORM);
    // A signature on a proposal is refused as well (HUB-1).
    let proposal = room.protect_public(0, ContentType::Proposal, b"").unwrap();
    assert!(client
        .seal(
            &proposal,
            SealOptions {
                membership: Some(&keys),
                fanout_key_signature: Some(&good),
                ..SealOptions::default()
            },
        )
        .is_err());
    // The real one.
    let env = seal_public_commit(&mut client, &room, 0, &commit, f1.clone(), &good);
    assert_eq!(status(&mut world, &env), Status::Accepted);
    let record = world.hub.group(&room.group_id).unwrap().unwrap();
    assert_eq!((record.epoch, record.fanout_key(1)), (1, Some(&f1)));
    let fan = world.hub.fan_out(&room.group_id, 0, &commit, 1).unwrap();
    assert!(matches!(bob.receive(&fan[0]), Ok(Delivery::Delivered(_))));
}

/// PRF-1: a registration whose GroupContext names no handshake profile is
/// refused; an accepted one fixes the room's profile in the hub's state.
#[test]
fn prf1_registration_fixes_the_profile() {
    let mut world = DemoWorld::new().unwrap();
    let mut client = world.client().unwrap();
    let component =
        mimi_onion::config::HubSigningKey::from_app_data_dictionary(&world.app_data_dictionary)
            .unwrap();
    let send = |world: &mut DemoWorld, client: &mut Sender, gi: &[u8], f: &Secret| {
        let s = client
            .seal(
                gi,
                SealOptions {
                    fanout_key: Some(f.clone()),
                    ..SealOptions::default()
                },
            )
            .unwrap();
        status(world, &s.bytes)
    };
    for profile in [HandshakeProfile::Public, HandshakeProfile::Private] {
        let group_id = format!("registered {profile:?}").into_bytes();
        let mut room = Room::with_profile(1, &component, Some(group_id), profile).unwrap();
        let f = room.epoch(0).unwrap().f.clone();
        // The same GroupContext without the profile component.
        let full = room.epochs[0].context.extensions.clone();
        let dict = AppDataDictionary::from_bytes(find_app_data_dictionary(&full).unwrap()).unwrap();
        let stripped = AppDataDictionary {
            component_data: dict
                .component_data
                .into_iter()
                .filter(|c| c.component_id != HANDSHAKE_PROFILE_COMPONENT)
                .collect(),
        };
        room.epochs[0].context.extensions =
            mimi_onion::config::app_data_dictionary_extension(&stripped).unwrap();
        let gi = room.group_info(0).unwrap();
        assert_eq!(
            send(&mut world, &mut client, &gi, &f),
            Status::Rejected(RejectReason::RegistrationRefused)
        );
        room.epochs[0].context.extensions = full;
        let gi = room.group_info(0).unwrap();
        assert_eq!(send(&mut world, &mut client, &gi, &f), Status::Accepted);
        let record = world.hub.group(&room.group_id).unwrap().unwrap();
        assert_eq!(record.profile, profile);
    }
}

/// KCM-1: an application PrivateMessage without `c`, as an RFC 9420 stack
/// without the hook sends it, is accepted by the hub and delivered by the
/// member, in either profile; with a wrong `c` it is refused by the
/// member. KCM-2: a proposal must carry `c`, and the member refuses one
/// without it.
#[test]
fn kcm1_application_messages_need_no_commitment() {
    for profile in [HandshakeProfile::Public, HandshakeProfile::Private] {
        let (mut world, mut client, mut room, mut bob) = room_world_with(1, profile);
        let plain = room.protect_unmodified(0, b"from any stack").unwrap();
        let pm = mimi_onion::mls::framing::PrivateMessage::parse(&plain.message).unwrap();
        assert!(pm.authenticated_data.is_empty());
        assert_eq!(
            send(&mut world, &mut client, &room, 0, &plain),
            Status::Accepted
        );
        let fan = world
            .hub
            .fan_out(&room.group_id, 0, &plain.message, 1)
            .unwrap();
        let Ok(Delivery::Delivered(r)) = bob.receive(&fan[0]) else {
            panic!("application message without c not delivered ({profile:?})");
        };
        assert_eq!(r.content, b"from any stack");
    }
    // A wrong c on an application message, and a proposal without c.
    let (world, _, mut room, mut bob) = room_world(1);
    let keys = room.membership_keys(0).unwrap();
    let mut rng = rand::rng();
    let wrong_c = build_authenticated_data(&[7; 32], &[]).unwrap();
    for (what, m) in [
        (
            "application message with a wrong c",
            room.protect_raw_aad(0, ContentType::Application, &wrong_c),
        ),
        (
            "application message whose authenticated_data is no SafeAAD",
            room.protect_raw_aad(0, ContentType::Application, b"app's own"),
        ),
        (
            "proposal without c",
            room.protect_raw_aad(0, ContentType::Proposal, &[]),
        ),
        (
            "application message with a byte after c (KCM-2)",
            room.protect_trailing_byte(0),
        ),
    ] {
        let m = m.unwrap();
        assert_eq!(
            bob.receive(&keys.seal(&m.message, &mut rng).unwrap()),
            Err(ReceiveError::Commitment),
            "{what}"
        );
    }
    drop(world);
}
