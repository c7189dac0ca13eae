//! Rules that the other test files exercise only indirectly, each tested
//! here by the requirement id of the spec it checks.

mod common;

use common::{room_world, seal_room};
use mimi_onion::balancer::Route;
use mimi_onion::config::KeyUse;
use mimi_onion::member::{Delivery, ReceiveError};
use mimi_onion::mls::framing::PublicMessage;
use mimi_onion::mls::message::ContentType;
use mimi_onion::response::{RejectReason, Status};
use mimi_onion::sender::{seal_envelope, HubLayerFields, Membership};
use mimi_onion::suite::HpkeSuite;
use mimi_onion::test_utils::NOW;
use mimi_onion::token::RoutingToken;
use mimi_onion::wire::OuterHeader;

/// MEM-5: a member-sent PublicMessage is delivered only if its
/// membership tag and signature verify; a non-member PublicMessage is left
/// to the client's MLS stack.
#[test]
fn mem5_public_messages_need_tag_and_signature() {
    let (world, _, mut room, mut bob) = room_world(1);
    let mut pm = PublicMessage::parse(
        &common::room_public(&mut room, 0, ContentType::Proposal, b"").message,
    )
    .unwrap();
    let tag = pm.membership_tag.clone().unwrap();
    let keys = room.membership_keys(0).unwrap();
    let mut rng = rand::rng();
    let good = keys.seal(&pm.encode().unwrap(), &mut rng).unwrap();
    let Ok(Delivery::Delivered(r)) = bob.receive(&good) else {
        panic!("PublicMessage not delivered");
    };
    assert_eq!(r.content, room.proposal);
    let mut bad_tag = tag;
    bad_tag[0] ^= 1;
    pm.membership_tag = Some(bad_tag);
    let bad = keys.seal(&pm.encode().unwrap(), &mut rng).unwrap();
    assert_eq!(bob.receive(&bad), Err(ReceiveError::Signature));
    drop(world);
}

/// MEM-3: a fan-out message whose keys match a held epoch but whose MLS
/// message names another epoch (or group) is dropped.
#[test]
fn mem3_message_must_match_the_keys_epoch() {
    let (_, _, mut room, mut bob) = room_world(1);
    let later = room
        .protect(1, ContentType::Application, b"epoch 1")
        .unwrap();
    let keys0 = room.membership_keys(0).unwrap();
    let fan = keys0.seal(&later.message, &mut rand::rng()).unwrap();
    assert_eq!(bob.receive(&fan), Err(ReceiveError::WrongGroup));
}

/// TOK-7: a token is spent only once its envelope passes decoding and the
/// presence rules; an envelope refused before (here: wrong form) leaves it
/// unspent, so its next use is accepted, and the use after that is not.
#[test]
fn tok7_token_spent_only_after_the_form_check() {
    let (mut world, client, mut room, _) = room_world(1);
    let token = world.hub.issue_tokens(Some(&room.group_id))[0];
    let key = world
        .signed_config
        .configuration
        .keys
        .iter()
        .find(|k| k.key_use() == Some(KeyUse::Hub) && k.offers(HpkeSuite::MANDATORY))
        .unwrap()
        .clone();
    let keys = room.membership_keys(0).unwrap();
    let app = room.protect(0, ContentType::Application, b"x").unwrap();
    // An application message carrying F: wrong form (HUB-1).
    let header = OuterHeader {
        token,
        key_id: key.key_id,
        suite: HpkeSuite::MANDATORY,
    };
    let seal = |m: &[u8], f: Option<mimi_onion::secret::Secret>| {
        seal_envelope(
            &rand::random::<[u8; 32]>(),
            &key,
            header,
            m,
            Membership::Keys(&keys),
            HubLayerFields {
                fanout_key: f,
                ..HubLayerFields::default()
            },
        )
        .unwrap()
        .bytes
    };
    let wrong = seal(&app.message, Some(room.epoch(1).unwrap().f.clone()));
    let status = |world: &mut mimi_onion::test_utils::DemoWorld, env: &[u8]| {
        world.hub.handle(env, NOW).view.map(|v| v.status)
    };
    assert_eq!(
        status(&mut world, &wrong),
        Some(Status::Rejected(RejectReason::WrongForm))
    );
    let app2 = room.protect(0, ContentType::Application, b"y").unwrap();
    assert_eq!(
        status(&mut world, &seal(&app2.message, None)),
        Some(Status::Accepted)
    );
    let app3 = room.protect(0, ContentType::Application, b"z").unwrap();
    assert_eq!(
        status(&mut world, &seal(&app3.message, None)),
        Some(Status::Rejected(RejectReason::TokenReused))
    );
    drop(client);
}

/// RSP-5: an accepted response carries four tokens under the hub's newest
/// live key for the group's shard; a response to an unknown group carries
/// four unroutable tokens.
#[test]
fn rsp5_tokens_in_responses() {
    let (mut world, mut client, mut room, _) = room_world(1);
    let shard = world.hub.group(&room.group_id).unwrap().unwrap().shard;
    let p = room.protect(0, ContentType::Application, b"t").unwrap();
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
    let out = world.hub.handle(&env.bytes, NOW);
    let resp = client.open_response(&env.pending, &out.response).unwrap();
    assert_eq!(resp.status, Status::Accepted);
    let route = |t: &RoutingToken| {
        let mut env = vec![1u8];
        env.extend_from_slice(&t.0);
        world.balancer.route(&env)
    };
    for t in &resp.tokens {
        assert_eq!(route(t), Route::Shard(shard));
        assert_eq!(t.codepoint(), 1, "the newest live token key");
    }
    // An unknown group: four unroutable tokens.
    let m = common::private_message(b"no such group", 0, ContentType::Application, 3);
    let env = common::seal(
        &world,
        &mut client,
        &m,
        ContentType::Application,
        HpkeSuite::MANDATORY,
    );
    let out = world.hub.handle(&env.bytes, NOW);
    let resp = client.open_response(&env.pending, &out.response).unwrap();
    assert_eq!(resp.status, Status::Rejected(RejectReason::UnknownGroup));
    for t in &resp.tokens {
        assert_eq!(t.codepoint(), mimi_onion::token::UNROUTABLE_CODEPOINT);
    }
}

/// MEM-5: a member delivers a PublicMessage once. The same PublicMessage
/// again, in a new fan-out message, is refused as a replay, in its epoch
/// and once that epoch is the previous one; another PublicMessage of the
/// same sender is delivered. A non-member's PublicMessage goes to the MLS
/// stack once. The record per epoch is bounded.
#[test]
fn mem5_replayed_public_message_is_refused() {
    use mimi_onion::member::{Member, ReceiveLimits};
    use mimi_onion::mls::framing::Sender as MlsSender;
    let (_, _, mut room, mut bob) = room_world(1);
    let pm = common::room_public(&mut room, 0, ContentType::Proposal, b"").message;
    let keys = room.membership_keys(0).unwrap();
    let mut rng = rand::rng();
    let first = keys.seal(&pm, &mut rng).unwrap();
    let again = keys.seal(&pm, &mut rng).unwrap();
    assert_ne!(first, again);
    let Ok(Delivery::Delivered(r)) = bob.receive(&first) else {
        panic!("PublicMessage not delivered");
    };
    assert_eq!(r.content, room.proposal);
    assert_eq!(bob.receive(&again), Err(ReceiveError::Replayed));
    assert_eq!(bob.receive(&first), Err(ReceiveError::Replayed));
    let other = common::room_public(&mut room, 0, ContentType::Proposal, b"other").message;
    assert!(matches!(
        bob.receive(&keys.seal(&other, &mut rng).unwrap()),
        Ok(Delivery::Delivered(_))
    ));
    // A non-member's proposal: handed to the MLS stack once.
    let mut external = PublicMessage::parse(&pm).unwrap();
    external.content.sender = MlsSender::External(0);
    external.membership_tag = None;
    let external = external.encode().unwrap();
    assert!(matches!(
        bob.receive(&keys.seal(&external, &mut rng).unwrap()),
        Ok(Delivery::ForMlsStack { .. })
    ));
    assert_eq!(
        bob.receive(&keys.seal(&external, &mut rng).unwrap()),
        Err(ReceiveError::Replayed)
    );
    // Epoch 0 is now the previous epoch: still refused.
    bob.enter_epoch(room.suite, room.member_state(1).unwrap());
    assert_eq!(
        bob.receive(&keys.seal(&pm, &mut rng).unwrap()),
        Err(ReceiveError::Replayed)
    );
    // The record is bounded: past it, PublicMessages of the epoch are
    // refused, not delivered unrecorded.
    let mut small = Member::default().with_limits(ReceiveLimits {
        max_public_per_epoch: 1,
        ..ReceiveLimits::default()
    });
    small.enter_epoch(room.suite, room.member_state(0).unwrap());
    assert!(matches!(
        small.receive(&keys.seal(&pm, &mut rng).unwrap()),
        Ok(Delivery::Delivered(_))
    ));
    assert_eq!(
        small.receive(&keys.seal(&other, &mut rng).unwrap()),
        Err(ReceiveError::LimitReached)
    );
}
