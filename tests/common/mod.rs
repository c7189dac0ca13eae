//! Shared fixtures for the integration tests.
#![allow(dead_code)]

use mimi_onion::codec::put_vec;
use mimi_onion::config::KeyUse;
use mimi_onion::fanout::EpochKeys;
use mimi_onion::keylayer::{self, KeyLayerContent};
use mimi_onion::mls::message::ContentType;
use mimi_onion::profile::HandshakeProfile;
use mimi_onion::secret::Secret;
use mimi_onion::sender::{SealOptions, Sender};
use mimi_onion::state::GroupRecord;
use mimi_onion::suite::HpkeSuite;
use mimi_onion::test_utils::{self, DemoWorld};
use rand::Rng;

/// F of a test group's epoch (the demo's stand-in derivation).
pub fn f_of(group_id: &[u8], epoch: u64) -> Secret {
    test_utils::demo_fanout_key(group_id, epoch)
}

/// Membership keys of a test group's epoch.
pub fn keys_of(group_id: &[u8], epoch: u64) -> EpochKeys {
    EpochKeys::derive(&f_of(group_id, epoch), epoch).unwrap()
}

/// Provisions `group` at `epoch` (MLS suite 1, private handshakes as the
/// demo's rooms, F pinned) on the world's hub and gives the client tokens
/// for it.
pub fn provision(world: &mut DemoWorld, client: &mut Sender, group: &[u8], epoch: u64) {
    let mut record = GroupRecord::new(0, epoch, 1);
    record.profile = HandshakeProfile::Private;
    record.pin_fanout_key(epoch, f_of(group, epoch));
    world.hub.provision(group, record).unwrap();
    client.add_tokens(Some(group), &world.hub.issue_tokens(Some(group)));
}

/// A demo hub with the demo groups provisioned, and a client of it.
pub fn world() -> (DemoWorld, Sender) {
    let mut world = DemoWorld::new().unwrap();
    let mut client = world.client().unwrap();
    test_utils::provision(&mut world, &mut client).unwrap();
    (world, client)
}

/// A structurally valid RFC 9420 PrivateMessage with a random ciphertext
/// of the size `app_len` bytes of application data would have.
pub use mimi_onion::test_utils::private_message;

/// A PublicMessage from member leaf 0, framed as RFC 9420 requires up to
/// its content type, with a random body: the hub front-end judges
/// PublicMessage handshakes without the policy engine.
pub fn public_message(
    group_id: &[u8],
    epoch: u64,
    content_type: ContentType,
    body_len: usize,
) -> Vec<u8> {
    let mut out = vec![0, 1, 0, 1];
    put_vec(&mut out, group_id).unwrap();
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&[1, 0, 0, 0, 0]);
    put_vec(&mut out, &[]).unwrap();
    out.push(content_type.code());
    let mut body = vec![0u8; body_len];
    rand::rng().fill_bytes(&mut body);
    out.extend_from_slice(&body);
    out
}

/// An application PrivateMessage, or a PublicMessage handshake.
pub fn message(group_id: &[u8], epoch: u64, content_type: ContentType) -> Vec<u8> {
    match content_type {
        ContentType::Application => private_message(group_id, epoch, content_type, 5),
        _ => public_message(group_id, epoch, content_type, 40),
    }
}

/// A key layer sealed to the demo policy key, for a PrivateMessage
/// proposal or commit; `None` for anything else.
pub fn key_layer_for(
    world: &DemoWorld,
    message: &[u8],
    content_type: ContentType,
) -> Option<Vec<u8>> {
    let info = mimi_onion::mls::message::MessageInfo::parse(message).unwrap();
    if !info.is_private_handshake() {
        return None;
    }
    let policy = world
        .signed_config
        .configuration
        .current(KeyUse::Policy)
        .unwrap();
    let content = KeyLayerContent {
        leaf_index: 1,
        key: Secret::from_slice(&[0x11; 16]),
        nonce: Secret::from_slice(&[0x22; 12]),
        f_signature: if content_type == ContentType::Commit {
            vec![0x33; 64]
        } else {
            Vec::new()
        },
    };
    Some(keylayer::seal(policy, HpkeSuite::X25519Aes128Gcm, 1, message, &content).unwrap())
}

/// Seals a PrivateMessage with what the protocol requires for its type: a
/// key layer for proposals and commits, F for commits.
pub fn seal(
    world: &DemoWorld,
    client: &mut Sender,
    message: &[u8],
    content_type: ContentType,
    suite: HpkeSuite,
) -> mimi_onion::sender::SealedEnvelope {
    let key_layer = key_layer_for(world, message, content_type);
    let info = mimi_onion::mls::message::MessageInfo::parse(message).unwrap();
    let (g, e) = (info.group_id.unwrap(), info.epoch.unwrap());
    let keys = keys_of(g, e);
    let opts = SealOptions {
        key_layer: key_layer.as_deref(),
        fanout_key: (content_type == ContentType::Commit).then(|| f_of(g, e + 1)),
        membership: Some(&keys),
        fanout_key_signature: None,
    };
    let mut other;
    let sender = match other_suite(world, client, g, suite) {
        Some(o) => {
            other = o;
            &mut other
        }
        None => client,
    };
    sender.seal(message, opts).unwrap()
}

/// `None` if `client` uses `suite`, else a client of the same
/// configuration that implements only `suite` (CFG-5: a client's suite is
/// fixed), with fresh routable tokens for `group`. Its responses open with
/// any client (the pending response carries what they need).
pub fn other_suite(
    world: &DemoWorld,
    client: &Sender,
    group: &[u8],
    suite: HpkeSuite,
) -> Option<Sender> {
    if client.suite() == Some(suite) {
        return None;
    }
    let mut other = Sender::with_suites(client.configuration().clone(), &[suite]).unwrap();
    other.add_tokens(Some(group), &world.hub.issue_tokens(Some(group)));
    Some(other)
}

pub mod salamander;

use mimi_onion::member::Member;
use mimi_onion::sender::ProtectedMessage;
use mimi_onion::test_utils::room::Room;

/// A demo hub hosting the demo room of MLS suite `code` at epoch 0, a
/// client of it, the room, and Bob's member side holding epoch 0.
pub fn room_world(code: u16) -> (DemoWorld, Sender, Room, Member) {
    room_world_with(code, HandshakeProfile::Private)
}

/// [`room_world`] with a room of the given handshake profile (PRF-1).
pub fn room_world_with(code: u16, profile: HandshakeProfile) -> (DemoWorld, Sender, Room, Member) {
    let mut world = DemoWorld::new().unwrap();
    let mut client = world.client().unwrap();
    let component =
        mimi_onion::config::HubSigningKey::from_app_data_dictionary(&world.app_data_dictionary)
            .unwrap();
    let room = Room::with_profile(code, &component, None, profile).unwrap();
    test_utils::provision_room(&mut world, &mut client, &room, 0).unwrap();
    let mut bob = Member::default();
    bob.enter_epoch(room.suite, room.member_state(0).unwrap());
    (world, client, room, bob)
}

/// Seals a protected room message with its key layer (if any) sealed to
/// the demo policy key, F for a commit (or `f_override`), and the room's
/// membership keys.
#[allow(clippy::too_many_arguments)]
pub fn seal_room(
    world: &DemoWorld,
    client: &mut Sender,
    room: &Room,
    epoch: u64,
    protected: &ProtectedMessage,
    hpke: HpkeSuite,
    key_layer_override: Option<Vec<u8>>,
    f_override: Option<Secret>,
) -> mimi_onion::sender::SealedEnvelope {
    let policy = world
        .signed_config
        .configuration
        .current(KeyUse::Policy)
        .unwrap();
    let key_layer = key_layer_override.or_else(|| {
        protected.key_layer.as_ref().map(|c| {
            keylayer::seal(
                policy,
                HpkeSuite::MANDATORY,
                room.suite.code(),
                &protected.message,
                c,
            )
            .unwrap()
        })
    });
    let info = mimi_onion::mls::message::MessageInfo::parse(&protected.message).unwrap();
    let fanout_key = f_override.or_else(|| {
        (info.content_type == Some(ContentType::Commit))
            .then(|| room.epoch(epoch + 1).unwrap().f.clone())
    });
    // PRF-4: a PublicMessage commit carries the sender's signature over
    // the F it carries (a wrong F too: the signature makes it accountable).
    let signature = match (info.carries_fanout_key_signature(), &fanout_key) {
        (true, Some(f)) => {
            let pm = mimi_onion::mls::framing::PublicMessage::parse(&protected.message).unwrap();
            let leaf = match pm.content.sender {
                mimi_onion::mls::framing::Sender::Member(leaf) => leaf,
                _ => 1,
            };
            Some(room.sign_fanout_key(leaf, epoch + 1, f).unwrap())
        }
        _ => None,
    };
    let keys = room.membership_keys(epoch).unwrap();
    let mut other;
    let client = match other_suite(world, client, &room.group_id, hpke) {
        Some(o) => {
            other = o;
            &mut other
        }
        None => client,
    };
    client
        .seal(
            &protected.message,
            SealOptions {
                key_layer: key_layer.as_deref(),
                fanout_key,
                membership: Some(&keys),
                fanout_key_signature: signature.as_deref(),
            },
        )
        .unwrap()
}

/// A PublicMessage proposal or commit of the room, from the sending leaf
/// ([`Room::protect_public`]).
pub fn room_public(
    room: &mut Room,
    epoch: u64,
    content_type: ContentType,
    aad: &[u8],
) -> ProtectedMessage {
    ProtectedMessage {
        message: room.protect_public(epoch, content_type, aad).unwrap(),
        key_layer: None,
    }
}
