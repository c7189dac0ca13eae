//! Fuzzing entry points: one function per decoder of untrusted bytes.
//!
//! Each function takes arbitrary bytes, must never panic, and checks an
//! "inverse" property where the decoder has an encoder: whatever decodes
//! re-encodes to exactly the same bytes (RFC 9420 minimal length prefixes,
//! no trailing bytes, zero padding). A failed `assert_eq!` here is a bug in
//! the library, not in the fuzz target.
//!
//! The cargo-fuzz targets in `fuzz/fuzz_targets/` are two-line calls into
//! these functions, and `tests/fuzz_corpus.rs` replays the committed seed
//! corpus through them on stable Rust. Not part of the stable API.

use std::sync::{Mutex, OnceLock, PoisonError};

use tls_codec::Serialize as _;

use crate::balancer::{LoadBalancer, Route};
use crate::codec::put_vec;
use crate::commitment::{
    build_authenticated_data, commitment_item, optional_commitment_item, parse_safe_aad,
    KEY_COMMITMENT_COMPONENT,
};
use crate::config::{
    AppDataDictionary, HubSigningKey, KeyUse, SignedHubConfiguration, HUB_SIGNING_KEY_COMPONENT,
};
use crate::fanout::{fanout_padded_len, EpochKeys, FanoutMessage, FANOUT_HEADER_LEN};
use crate::keylayer;
use crate::member::{Delivery, EpochState, Member, ReceiveError};
use crate::mls::framing::{PrivateMessage, PublicMessage};
use crate::mls::group_info::{GroupInfoIn, TreeNode};
use crate::mls::message::{ContentType, MessageInfo, WireFormat};
use crate::mls::suite::MlsSuite;
use crate::profile::{HandshakeProfile, HANDSHAKE_PROFILE_COMPONENT};
use crate::response::{response_len, HubResponse};
use crate::state::{GroupRecord, InMemoryHubStore};
use crate::suite::HpkeSuite;
use crate::test_utils::room::Room;
use crate::test_utils::{demo_fanout_key, demo_messages, rooms, DemoWorld, SHARD_COUNT};
use crate::token::TOKEN_LEN;
use crate::wire::{
    Envelope, HubLayerContent, OuterHeader, HEADER_LEN, KEY_LAYER_HEADER_LEN,
    KEY_LAYER_PLAINTEXT_LEN, TOKEN_OFFSET,
};

/// `wire::Envelope::parse`; when it parses, `Envelope::encode` of the
/// decoded parts must give back the input byte for byte.
pub fn envelope(data: &[u8]) {
    let Ok(env) = Envelope::parse(data) else {
        return;
    };
    assert_eq!(env.header_bytes, &data[..HEADER_LEN]);
    assert_eq!(env.header.to_bytes().as_slice(), env.header_bytes);
    let encoded = Envelope::encode(&env.header, env.enc, env.sealed_hub_layer)
        .expect("a parsed envelope must re-encode");
    assert_eq!(encoded, data);
}

/// `wire::HubLayerContent::parse_padded`; when it parses, `encode_padded`
/// must reproduce the padded plaintext exactly.
pub fn hub_layer(data: &[u8]) {
    let Ok(content) = HubLayerContent::parse_padded(data) else {
        return;
    };
    let encoded = content
        .encode_padded()
        .expect("a parsed hub layer must re-encode");
    assert_eq!(encoded, data);
}

/// `mls::message::MessageInfo::parse`: must not panic; the facts it
/// reports must be consistent with the wire format.
pub fn mls_message(data: &[u8]) {
    let Ok(info) = MessageInfo::parse(data) else {
        return;
    };
    assert_eq!(info.group_id.is_some(), info.epoch.is_some());
    let _ = (info.is_non_member(), info.is_private_handshake());
}

/// `config::SignedHubConfiguration::from_bytes`; when it decodes,
/// `to_bytes` must equal the input.
pub fn hub_configuration(data: &[u8]) {
    let Ok(signed) = SignedHubConfiguration::from_bytes(data) else {
        return;
    };
    let encoded = signed
        .to_bytes()
        .expect("a decoded configuration must re-encode");
    assert_eq!(encoded, data);
    for key in &signed.configuration.keys {
        let _ = (key.key_use(), key.suites());
    }
}

/// `config::AppDataDictionary::from_bytes`,
/// `config::HubSigningKey::from_app_data_dictionary` and
/// `profile::HandshakeProfile::from_app_data_dictionary`; each value that
/// decodes must re-encode to the bytes it came from.
pub fn app_data_dictionary(data: &[u8]) {
    let dict = AppDataDictionary::from_bytes(data);
    if let Ok(dict) = &dict {
        let encoded = dict
            .to_bytes()
            .expect("a decoded dictionary must re-encode");
        assert_eq!(encoded, data);
    }
    // PRF-1: a profile is read only from a dictionary that decodes, and
    // it is exactly the component's one byte.
    if let Ok(profile) = HandshakeProfile::from_app_data_dictionary(data) {
        let dict = dict
            .as_ref()
            .expect("a profile was read from a dictionary that does not decode");
        assert_eq!(
            dict.component(HANDSHAKE_PROFILE_COMPONENT),
            Some(&[profile.code()][..])
        );
    }
    let Ok(key) = HubSigningKey::from_app_data_dictionary(data) else {
        return;
    };
    let dict = dict.expect("a signing key was read from a dictionary that does not decode");
    let entry = dict
        .component_data
        .iter()
        .find(|c| c.component_id == HUB_SIGNING_KEY_COMPONENT)
        .expect("a signing key was read from a dictionary without its component");
    let encoded = key
        .tls_serialize_detached()
        .expect("a decoded signing key must re-encode");
    assert_eq!(encoded, entry.data.0);
}

/// `response::HubResponse::decode`; when it decodes, `encode` must equal
/// the input.
pub fn hub_response(data: &[u8]) {
    let Ok(resp) = HubResponse::decode(data) else {
        return;
    };
    assert_eq!(resp.encode().as_slice(), data);
}

/// The demo load balancer, built once: routing keeps no state.
fn demo_balancer() -> &'static LoadBalancer {
    static BALANCER: OnceLock<LoadBalancer> = OnceLock::new();
    BALANCER.get_or_init(|| {
        DemoWorld::new()
            .expect("the demo world builds from fixed keys")
            .balancer
    })
}

/// `balancer::LoadBalancer::route` with the demo token keys: must not
/// panic, must name a shard in range, and must depend on the 17 token
/// bytes alone (TOK-1).
pub fn balancer_route(data: &[u8]) {
    let lb = demo_balancer();
    let route = lb.route(data);
    let token_end = TOKEN_OFFSET + TOKEN_LEN;
    match route {
        Route::Shard(s) => assert!(s < SHARD_COUNT, "shard {s} out of range"),
        Route::Unroutable => {}
    }
    if data.len() < token_end {
        assert_eq!(route, Route::Unroutable);
    } else {
        assert_eq!(route, lb.route(&data[..token_end]));
    }
}

/// The size of the response the hub owes an envelope (RSP-1, RSP-2): that
/// of the suite its header names, if the header is complete and names a
/// supported suite, else that of [`HpkeSuite::MANDATORY`].
fn expected_response_len(data: &[u8]) -> usize {
    let suite = OuterHeader::peek_suite(data).unwrap_or(HpkeSuite::MANDATORY);
    response_len(suite)
}

/// A group the demo hub hosts: its id, its record, and the signature
/// keys of its leaves (for the policy engine; empty for the groups of the
/// official vectors).
type DemoGroup = (Vec<u8>, GroupRecord, Vec<(u32, Vec<u8>)>);

/// The groups the demo hub hosts, as `test_utils::provision` sets them up: the
/// demo's rooms at epoch 0 (as `test_utils::provision_room` does: record with the
/// GroupContext, the commitment requirement and F, and the leaves'
/// signature keys), then the groups of the demo messages other than the
/// registration's, each at its epoch, with its MLS suite and F of that
/// epoch pinned.
fn demo_groups() -> &'static [DemoGroup] {
    static GROUPS: OnceLock<Vec<DemoGroup>> = OnceLock::new();
    GROUPS.get_or_init(|| {
        let world = DemoWorld::new().expect("the demo world builds from fixed keys");
        let mut groups: Vec<DemoGroup> = Vec::new();
        for room in rooms(&world).expect("the demo rooms build") {
            let record = room.record(0).expect("a room has epoch 0");
            let leaves = room
                .leaves
                .iter()
                .map(|l| (l.index, l.signature_public.clone()))
                .collect();
            groups.push((room.group_id.clone(), record, leaves));
        }
        for m in demo_messages().expect("the embedded demo messages parse") {
            let info = MessageInfo::parse(&m.bytes).expect("a demo message parses");
            if let (Some(g), Some(e), false) = (
                info.group_id,
                info.epoch,
                info.wire_format == WireFormat::GroupInfo,
            ) {
                if !groups.iter().any(|(have, _, _)| have.as_slice() == g) {
                    let mut record = GroupRecord::new(0, e, m.mls_suite);
                    record.pin_fanout_key(e, demo_fanout_key(g, e));
                    groups.push((g.to_vec(), record, Vec::new()));
                }
            }
        }
        groups
    })
}

/// The demo world for [`hub_handle`], built once; its hub state is reset
/// before every input.
fn demo_world() -> &'static Mutex<DemoWorld> {
    static WORLD: OnceLock<Mutex<DemoWorld>> = OnceLock::new();
    WORLD.get_or_init(|| {
        Mutex::new(DemoWorld::new().expect("the demo world builds from fixed keys"))
    })
}

/// The policy engine keeps a log of every handshake message it accepted
/// (it cannot be cleared from outside); past this many entries the world
/// is rebuilt so that a long run does not grow without bound.
const MAX_POLICY_AUDIT: usize = 1024;

/// The demo hub front-end (`DemoWorld::new()`, then `world.hub.handle`),
/// with fresh hub state and the demo's rooms and groups provisioned for
/// every input (as `test_utils::provision` does) so that runs are reproducible
/// and envelopes of the rooms reach the policy engine: `handle` must not
/// panic and must answer with a response of the fixed size for the
/// header's suite (RSP-1, RSP-2); an envelope it opened and answered, sent
/// again, must be answered from the cache with the same bytes (RSP-4).
pub fn hub_handle(data: &[u8]) {
    // A panic in an earlier input poisons the lock; the state is reset
    // below anyway.
    let mut world = demo_world().lock().unwrap_or_else(PoisonError::into_inner);
    reset_demo_hub(&mut world);
    let hub = &mut world.hub;
    let outcome = hub.handle(data, crate::test_utils::NOW);
    assert_eq!(outcome.response.len(), expected_response_len(data));
    assert!(!outcome.from_cache, "a fresh hub has no cache");
    if outcome.view.is_some() {
        let again = hub.handle(data, crate::test_utils::NOW);
        assert!(again.from_cache, "an identical resend must hit the cache");
        assert_eq!(again.response, outcome.response);
    }
}

/// `mls::group_info::GroupInfoIn::parse`; when it parses: the kept
/// `GroupInfoTBS` is the message after its 4-byte header up to the
/// signature, and starts with the kept GroupContext; then
/// `ratchet_tree`, `leaf_signature_keys` (one key per leaf of the tree),
/// each leaf's own signature (the first four leaves) and `verify` with the
/// GroupContext's suite (results ignored); `verify` with another suite
/// must fail.
pub fn group_info(data: &[u8]) {
    let Ok(gi) = GroupInfoIn::parse(data) else {
        return;
    };
    let after_header = data.get(4..).expect("a parsed group info has a header");
    assert!(after_header.starts_with(&gi.tbs));
    assert!(gi.tbs.starts_with(&gi.group_context_bytes));
    let tree = gi.ratchet_tree();
    let keys = gi.leaf_signature_keys();
    if let (Ok(tree), Ok(keys)) = (&tree, &keys) {
        let leaves = tree
            .iter()
            .step_by(2)
            .filter(|n| matches!(n, Some(TreeNode::Leaf(_))))
            .count();
        assert_eq!(keys.len(), leaves);
    }
    let suite = gi.suite().ok();
    if let (Ok(tree), Some(suite)) = (&tree, suite) {
        let group_id = &gi.group_context.group_id;
        for (i, node) in tree.iter().step_by(2).enumerate().take(4) {
            if let Some(TreeNode::Leaf(leaf)) = node {
                let index = u32::try_from(i).expect("at most four leaves");
                let _ = leaf.verify_signature(suite, group_id, index);
            }
        }
    }
    if let Some(suite) = suite {
        let _ = gi.verify(suite);
    }
    let other = if gi.group_context.cipher_suite == 1 {
        2
    } else {
        1
    };
    let other = MlsSuite::from_code(other).expect("suites 1 and 2 exist");
    assert!(gi.verify(other).is_err(), "verified under another suite");
}

/// `mls::framing::PrivateMessage::parse` and `PublicMessage::parse`; each
/// message that parses must re-encode (`encode`) to the input byte for
/// byte.
pub fn private_message(data: &[u8]) {
    if let Ok(msg) = PrivateMessage::parse(data) {
        let encoded = msg
            .encode()
            .expect("a parsed private message must re-encode");
        assert_eq!(encoded, data);
        let _ = (msg.sender_data_aad(), msg.content_aad());
    }
    if let Ok(msg) = PublicMessage::parse(data) {
        let encoded = msg
            .encode()
            .expect("a parsed public message must re-encode");
        assert_eq!(encoded, data);
        let _ = msg.tbs(None);
    }
}

/// `commitment::parse_safe_aad` and `commitment::commitment_item(data,
/// 32)`. A SafeAAD that parses has strictly increasing ids and re-encodes
/// (items, then the rest) to the input. When `commitment_item` succeeds,
/// `parse_safe_aad` must too with nothing after the structure (KCM-2), and
/// `build_authenticated_data` from the commitment and the other items must
/// give back the input: it sorts the items by id (which `parse_safe_aad`
/// already requires). `optional_commitment_item` agrees with
/// `commitment_item` wherever an item is present.
pub fn safe_aad(data: &[u8]) {
    let parsed = parse_safe_aad(data);
    if let Ok((items, rest)) = &parsed {
        assert!(items
            .windows(2)
            .all(|w| w[0].component_id < w[1].component_id));
        let mut inner = Vec::new();
        for item in items {
            inner.extend_from_slice(&item.component_id.to_be_bytes());
            put_vec(&mut inner, item.data).expect("a parsed item re-encodes");
        }
        let mut encoded = Vec::new();
        put_vec(&mut encoded, &inner).expect("parsed items re-encode");
        encoded.extend_from_slice(rest);
        assert_eq!(encoded, data);
    }
    let optional = optional_commitment_item(data, 32);
    let Ok(c) = commitment_item(data, 32) else {
        assert!(!matches!(optional, Ok(Some(_))));
        return;
    };
    assert_eq!(optional, Ok(Some(c)));
    assert_eq!(c.len(), 32);
    let (items, rest) = parsed.expect("commitment_item read a SafeAAD parse_safe_aad refuses");
    assert!(rest.is_empty());
    let others: Vec<_> = items
        .into_iter()
        .filter(|i| i.component_id != KEY_COMMITMENT_COMPONENT)
        .collect();
    let rebuilt = build_authenticated_data(c, &others).expect("a parsed SafeAAD must rebuild");
    assert_eq!(rebuilt, data);
}

/// What [`fanout_member`] holds: the demo room of suite 1 at epoch 0.
struct MemberFixture {
    suite: MlsSuite,
    state: EpochState,
    keys: EpochKeys,
}

/// The demo room of MLS suite 1 (`test_utils::rooms`, the first room).
fn demo_room_suite1() -> Room {
    let world = DemoWorld::new().expect("the demo world builds from fixed keys");
    rooms(&world)
        .expect("the demo rooms build")
        .into_iter()
        .find(|r| r.suite.code() == 1)
        .expect("the demo has a room of suite 1")
}

fn member_fixture() -> &'static MemberFixture {
    static FIXTURE: OnceLock<MemberFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let room = demo_room_suite1();
        MemberFixture {
            suite: room.suite,
            state: room.member_state(0).expect("the room has epoch 0"),
            keys: room.membership_keys(0).expect("the room has epoch 0"),
        }
    })
}

/// A copy of an epoch state (`EpochState` is not `Clone`).
fn copy_state(s: &EpochState) -> EpochState {
    EpochState {
        group_context: s.group_context.clone(),
        encryption_secret: s.encryption_secret.clone(),
        sender_data_secret: s.sender_data_secret.clone(),
        membership_key: s.membership_key.clone(),
        n_leaves: s.n_leaves,
        fanout: s.fanout.clone(),
        leaf_keys: s.leaf_keys.clone(),
    }
}

/// A fresh `member::Member` holding the demo room of suite 1 at epoch 0
/// (`test_utils::rooms`, `room.member_state(0)`), for every input, receives the
/// data as a fan-out message (`Member::receive`): it must not panic; a
/// delivered message belongs to that room and epoch, and a delivered
/// message (or one handed to the MLS stack) received again is `Replayed`;
/// a buffered one is in the buffer. Then `fanout::FanoutMessage::parse` and `EpochKeys::open` with
/// the room's epoch-0 keys: the framing accepts exactly the inputs long
/// enough; what opens has a matching hint and re-seals
/// (`seal_with_nonce`, deterministic) to the input; the member buffers
/// exactly what no hint matches.
pub fn fanout_member(data: &[u8]) {
    let fx = member_fixture();
    let mut member = Member::new(1);
    let rescan = member.enter_epoch(fx.suite, copy_state(&fx.state));
    assert!(rescan.is_empty());
    let first = member.receive(data);
    match &first {
        Ok(Delivery::Delivered(r)) => {
            assert_eq!(r.group_id, fx.state.group_context.group_id);
            assert_eq!(r.epoch, 0);
            // MEM-4, MEM-8 (a used key) and MEM-5 (a delivered
            // PublicMessage): never delivered twice.
            assert_eq!(member.receive(data), Err(ReceiveError::Replayed));
        }
        Ok(Delivery::Buffered) => assert_eq!(member.buffered(), 1),
        Ok(Delivery::ForMlsStack {
            group_id, epoch, ..
        }) => {
            assert_eq!(group_id, &fx.state.group_context.group_id);
            assert_eq!(*epoch, 0);
            assert_eq!(member.receive(data), Err(ReceiveError::Replayed));
        }
        Err(_) => assert_eq!(member.buffered(), 0),
    }
    let parsed = FanoutMessage::parse(data);
    let min_len = FANOUT_HEADER_LEN + fanout_padded_len(0) + 16;
    assert_eq!(parsed.is_ok(), data.len() >= min_len);
    let Ok(msg) = parsed else {
        assert_eq!(first, Err(ReceiveError::Malformed));
        return;
    };
    assert_eq!(msg.header.len() + msg.body.len(), data.len());
    let hint = fx.keys.hint_matches(&msg);
    assert_eq!(matches!(first, Ok(Delivery::Buffered)), !hint);
    if let Ok(message) = fx.keys.open(&msg) {
        assert!(hint, "a fan-out message opened under another hint");
        let sealed = fx
            .keys
            .seal_with_nonce(&message, *msg.nonce)
            .expect("an opened fan-out message re-seals");
        assert_eq!(sealed, data);
    } else if hint {
        assert_eq!(first, Err(ReceiveError::CheckFailed));
    }
}

/// What [`key_layer`] holds: the demo world (for its policy key pair), a
/// room proposal and its key layer sealed to the policy key.
struct KeyLayerFixture {
    world: Mutex<DemoWorld>,
    message: Vec<u8>,
    key_layer: Vec<u8>,
}

fn key_layer_fixture() -> &'static KeyLayerFixture {
    static FIXTURE: OnceLock<KeyLayerFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let world = DemoWorld::new().expect("the demo world builds from fixed keys");
        let (message, content) = key_layer_message_and_content();
        let policy_key = world
            .signed_config
            .configuration
            .current(KeyUse::Policy)
            .expect("the demo has a policy key");
        let key_layer = keylayer::seal(policy_key, HpkeSuite::MANDATORY, 1, &message, &content)
            .expect("the demo key layer seals");
        KeyLayerFixture {
            world: Mutex::new(world),
            message,
            key_layer,
        }
    })
}

fn key_layer_message_and_content() -> (Vec<u8>, keylayer::KeyLayerContent) {
    let mut room = demo_room_suite1();
    let protected = room
        .protect_with(0, ContentType::Proposal, &[], [0x5a; 4])
        .expect("the room protects its proposal");
    let content = protected
        .key_layer
        .expect("a proposal has a key layer content");
    (protected.message, content)
}

/// The fixed message of [`key_layer`]: the proposal of the demo room of
/// MLS suite 1 at epoch 0, generation 0, reuse guard `5a5a5a5a`
/// (deterministic: Ed25519 signatures, no random padding). Seeds for that
/// target are key layers sealed for it.
pub fn key_layer_message() -> &'static [u8] {
    &key_layer_fixture().message
}

/// `keylayer::open` with the demo policy key pair
/// (`world.hub.policy().keys()`), for a fixed room proposal of MLS suite 1
/// ([`key_layer_message`]) and the data as its key layer: must not panic;
/// what opens has the framing's exact length and its content re-encodes
/// to the 256-byte padded plaintext (`KeyLayerContent::padded_bytes`; its
/// decoder is private and runs inside `open`). Then the data as the *message* of the
/// fixed key layer (`keylayer::key_layer_aad`, then `open`): the key layer
/// binds SHA-256 of the message, so it must open exactly when the data is
/// the fixed message.
pub fn key_layer(data: &[u8]) {
    let fx = key_layer_fixture();
    let world = fx.world.lock().unwrap_or_else(PoisonError::into_inner);
    let keys = world.hub.policy().keys();
    if let Ok(content) = keylayer::open(keys.iter(), 1, &fx.message, data) {
        let suite = HpkeSuite::from_ids(
            u16::from_be_bytes([data[1], data[2]]),
            u16::from_be_bytes([data[3], data[4]]),
            u16::from_be_bytes([data[5], data[6]]),
        )
        .expect("an opened key layer names a suite");
        let n_enc = crate::suite::kem_n_enc(suite.ids().0).expect("a known KEM");
        assert_eq!(
            data.len(),
            KEY_LAYER_HEADER_LEN + n_enc + KEY_LAYER_PLAINTEXT_LEN + suite.n_t()
        );
        let padded = content
            .padded_bytes()
            .expect("an opened key layer content re-encodes");
        assert_eq!(padded.len(), KEY_LAYER_PLAINTEXT_LEN);
    }
    if keylayer::key_layer_aad(1, data).is_ok() {
        let opened = keylayer::open(keys.iter(), 1, data, &fx.key_layer);
        assert_eq!(opened.is_ok(), data == fx.message.as_slice());
    }
}

/// Resets the demo hub's state and provisions the demo's rooms and groups
/// (as `test_utils::provision` does), rebuilding the world when the policy
/// engine's log is full.
fn reset_demo_hub(world: &mut DemoWorld) {
    if world.hub.policy().audit().len() >= MAX_POLICY_AUDIT {
        *world = DemoWorld::new().expect("the demo world builds from fixed keys");
    }
    let hub = &mut world.hub;
    hub.replace_store(InMemoryHubStore::new());
    for (group_id, record, leaves) in demo_groups() {
        hub.provision(group_id, record.clone())
            .expect("the in-memory store does not fail");
        for (index, key) in leaves {
            hub.set_leaf_signature_key(group_id, *index, Some(key))
                .expect("the in-memory store does not fail");
        }
    }
}

/// The rules behind the hub layer's HPKE: the data is the hub-layer
/// *plaintext*, which the harness seals itself to the demo hub key 1
/// (mandatory suite, an unroutable token) before `hub.handle`, so the
/// fuzzer reaches the hub-layer decoder, the classification and the
/// processing rules without forging an AEAD tag. When the data decodes as
/// a hub layer whose message names a demo group and an epoch whose F the
/// hub holds, the harness puts the correct membership proof in place (a
/// fuzzer cannot forge the MAC either) and seals that re-encoding. The
/// response has the fixed size; the hub shows a view exactly when the
/// sealed plaintext decodes as a hub layer, its message is the one in the
/// plaintext, and a resend is answered from the cache.
pub fn hub_plaintext(data: &[u8]) {
    let mut world = demo_world().lock().unwrap_or_else(PoisonError::into_inner);
    reset_demo_hub(&mut world);
    let suite = HpkeSuite::MANDATORY;
    let key = world
        .signed_config
        .configuration
        .keys
        .iter()
        .find(|k| k.key_use() == Some(KeyUse::Hub) && k.key_id == 1 && k.offers(suite))
        .expect("the demo hub key 1 offers the mandatory suite")
        .clone();
    let mut token = [0u8; TOKEN_LEN];
    token[0] = crate::token::UNROUTABLE_CODEPOINT << 5;
    let header = OuterHeader {
        token: crate::token::RoutingToken(token),
        key_id: key.key_id,
        suite,
    };
    let header_bytes = header.to_bytes();
    let ikm_e = crate::test_utils::sha256(data);
    let (enc, ctx) =
        crate::hpke::setup_sender(suite, &key.public_key.0, &header.hpke_info(), &ikm_e)
            .expect("sealing to the demo hub key works");
    let plaintext = with_membership_proof(data, &header_bytes, &enc);
    let mut body = plaintext.clone();
    let tag = ctx
        .seal_in_place(&header_bytes, &mut body)
        .expect("sealing works");
    body.extend_from_slice(&tag);
    let envelope = match Envelope::encode(&header, &enc, &body) {
        Ok(e) => e,
        // Longer than a varint can frame: not an envelope at all.
        Err(_) => return,
    };
    let hub = &mut world.hub;
    let outcome = hub.handle(&envelope, crate::test_utils::NOW);
    assert_eq!(outcome.response.len(), response_len(suite));
    let content = HubLayerContent::parse_padded(&plaintext);
    if let Some(view) = &outcome.view {
        let content = content.expect("the hub showed a view of a hub layer that does not decode");
        assert_eq!(view.message, content.message.to_vec());
        let again = hub.handle(&envelope, crate::test_utils::NOW);
        assert!(again.from_cache, "an identical resend must hit the cache");
        assert_eq!(again.response, outcome.response);
    }
}

/// `data` with the membership proof of a demo group's epoch in place, if
/// it decodes as a hub layer whose message names one whose F the demo hub
/// pins; else `data` itself.
fn with_membership_proof(data: &[u8], header: &[u8], enc: &[u8]) -> Vec<u8> {
    let Ok(mut content) = HubLayerContent::parse_padded(data) else {
        return data.to_vec();
    };
    let Ok(info) = MessageInfo::parse(content.message) else {
        return data.to_vec();
    };
    let (Some(g), Some(e)) = (info.group_id, info.epoch) else {
        return data.to_vec();
    };
    let Some(f) = demo_groups()
        .iter()
        .find(|(id, _, _)| id.as_slice() == g)
        .and_then(|(_, record, _)| record.fanout_key(e))
    else {
        return data.to_vec();
    };
    let Ok(keys) = EpochKeys::derive(f, e) else {
        return data.to_vec();
    };
    content.membership_proof = keys.membership_proof(header, enc);
    content.encode_padded().unwrap_or_else(|_| data.to_vec())
}

/// The policy engine's decoder behind the key layer's HPKE: the data is
/// the key-layer *plaintext* of the fixed room proposal
/// ([`key_layer_message`]), sealed by the harness to the demo policy key,
/// then `keylayer::open`: it must not panic, it opens exactly when the
/// data is a `KeyLayerContent` of the padded length, and what opens
/// re-encodes to the data (the decoder is strict).
pub fn key_layer_plaintext(data: &[u8]) {
    let fx = key_layer_fixture();
    let world = fx.world.lock().unwrap_or_else(PoisonError::into_inner);
    let policy_key = world
        .signed_config
        .configuration
        .current(KeyUse::Policy)
        .expect("the demo has a policy key")
        .clone();
    let mut hpke = HpkeSuite::MANDATORY.hpke().expect("the mandatory suite");
    let Ok(key_layer) = keylayer::seal_plaintext_with(
        &mut hpke,
        &policy_key,
        HpkeSuite::MANDATORY,
        1,
        &fx.message,
        data,
    ) else {
        return;
    };
    let keys = world.hub.policy().keys();
    if let Ok(content) = keylayer::open(keys.iter(), 1, &fx.message, &key_layer) {
        assert_eq!(data.len(), KEY_LAYER_PLAINTEXT_LEN);
        let padded = content
            .padded_bytes()
            .expect("an opened key layer content re-encodes");
        assert_eq!(padded, data, "the key layer decoder is not strict");
    }
}

/// The member's rules behind the fan-out AEAD: the data is the fan-out
/// *body plaintext*, which the harness seals with the demo room's epoch-0
/// keys (hint, check value, AES-256-GCM-SIV, a nonce from the data) before
/// a fresh member holding that room receives it: no panic; the hint always
/// matches, so nothing is buffered; a message is delivered or handed on
/// only if the body opens as a `FanoutContent`, which then re-seals to the
/// same bytes; a delivered one is refused when received again.
pub fn fanout_plaintext(data: &[u8]) {
    let fx = member_fixture();
    let digest = crate::test_utils::sha256(data);
    let mut nonce = [0u8; crate::fanout::FANOUT_NONCE_LEN];
    nonce.copy_from_slice(&digest[..crate::fanout::FANOUT_NONCE_LEN]);
    let Ok(sealed) = fx.keys.seal_body(data, nonce) else {
        return;
    };
    let mut member = Member::new(1);
    let rescan = member.enter_epoch(fx.suite, copy_state(&fx.state));
    assert!(rescan.is_empty());
    let first = member.receive(&sealed);
    assert!(
        !matches!(first, Ok(Delivery::Buffered)),
        "own hint must match"
    );
    let opened = FanoutMessage::parse(&sealed)
        .ok()
        .and_then(|m| fx.keys.open(&m).ok());
    match &opened {
        Some(message) => {
            let again = fx
                .keys
                .seal_with_nonce(message, nonce)
                .expect("an opened fan-out body re-seals");
            assert_eq!(again, sealed, "the fan-out body decoder is not strict");
        }
        None => assert!(first.is_err(), "delivered a body that does not open"),
    }
    if matches!(
        first,
        Ok(Delivery::Delivered(_) | Delivery::ForMlsStack { .. })
    ) {
        assert_eq!(member.receive(&sealed), Err(ReceiveError::Replayed));
    }
}

/// `dispute::Dispute::parse` (DSP-2): must not panic; when it decodes,
/// `encode` must give back the input byte for byte (the decoder is strict),
/// and a signature check under a fixed key must not panic.
pub fn dispute(data: &[u8]) {
    let Ok(d) = crate::dispute::Dispute::parse(data) else {
        return;
    };
    let again = d.encode().expect("a decoded dispute re-encodes");
    assert_eq!(&again[..], data, "the dispute decoder is not strict");
    if let Some(suite) = crate::mls::suite::MlsSuite::from_code(1) {
        let _ = d.verify(suite, &[0x11; 32]);
    }
}
