//! Test utilities (feature `test-utils`): fixtures that the tests, the
//! fuzz targets, the benches and the demo of `mimi-onion-cli` share.
//!
//! [`DemoWorld`] is one hub, its load balancer and a client, built from
//! fixed input keying material: its private keys are public knowledge, so
//! nothing here belongs in a deployment. Its MLS messages come from the
//! official RFC 9420 test vectors in `test-vectors/mls/`, and its rooms
//! ([`room`]) are built from them with real signatures. [`run`] sends every
//! demo message through every party and returns what each one saw.
//!
//! Also here: lowercase hex ([`to_hex`], [`from_hex`]) and the embedded
//! official vectors as JSON ([`message_protection_vectors`]).

use std::fmt::Write as _;

use ed25519_dalek::SigningKey;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::balancer::{LoadBalancer, Route};
use crate::config::{
    AppDataDictionary, HubConfigStore, HubSigningKey, KeyUse, SignedHubConfiguration,
};
use crate::error::{Error, Res};
use crate::fanout::EpochKeys;
use crate::hub::{HubFrontEnd, HubOutcome};
use crate::keylayer;
use crate::keys::HubKeyPair;
use crate::member::{Delivery, Member, ReceiveError, Received};
use crate::mls::message::{ContentType, MessageInfo, WireFormat};
use crate::policy::PolicyAudit;
use crate::response::Status;
use crate::secret::Secret;
use crate::sender::{SealOptions, Sender};
use crate::state::{GroupRecord, HubStore, InMemoryHubStore};
use crate::suite::HpkeSuite;
use crate::token::{TokenKey, TokenKeys};

pub mod room;
pub mod store_suite;

use room::Room;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Number of shards of the demo hub.
pub const SHARD_COUNT: u32 = 16;
/// The demo hub's lobby shard.
pub const LOBBY_SHARD: u32 = 0;
/// Expiry of the demo keys (2100-01-01).
pub const NOT_AFTER: u64 = 4_102_444_800;

const MESSAGE_PROTECTION: &str = include_str!("../../test-vectors/mls/message-protection.json");
const MESSAGES_EXCERPT: &str = include_str!("../../test-vectors/mls/messages-excerpt.json");

/// A hub, its load balancer and what a client of the hub's rooms holds.
pub struct DemoWorld<S: HubStore = InMemoryHubStore> {
    /// The hub front-end.
    pub hub: HubFrontEnd<S>,
    /// The hub's load balancer.
    pub balancer: LoadBalancer,
    /// The configuration-signing key (hub side).
    pub signing_key: SigningKey,
    /// The GroupContext `app_data_dictionary` extension data every demo
    /// group carries.
    pub app_data_dictionary: Vec<u8>,
    /// The signed configuration the hub serves.
    pub signed_config: SignedHubConfiguration,
}

impl<S: HubStore> core::fmt::Debug for DemoWorld<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DemoWorld").finish_non_exhaustive()
    }
}

fn ikm(name: &str) -> Vec<u8> {
    format!("mimi-onion demo ikm: {name}").into_bytes()
}

/// The fixtures' clock (Unix seconds, 2027-01-15): what tests pass as
/// `now`, so that key expiry never depends on the day a test runs. The
/// demo keys expire at [`NOT_AFTER`], long after it.
pub const NOW: u64 = 1_800_000_000;

impl DemoWorld {
    /// Builds the demo hub from fixed input keying material: hub key 1
    /// (X25519 with AES-128-GCM and ChaCha20-Poly1305), hub key 2 (P-256),
    /// policy key 1 (X25519), token keys with codepoints 0 and 1; its
    /// state in memory.
    pub fn new() -> Res<Self> {
        DemoWorld::with_store(InMemoryHubStore::new())
    }
}

impl<S: HubStore> DemoWorld<S> {
    /// The demo hub of [`DemoWorld::new`] over another store: every
    /// world built this way has the same keys, so several of them over one
    /// store are several front-ends of one hub.
    pub fn with_store(store: S) -> Res<Self> {
        let keys = vec![
            // Hub key 1 is listed last, as the newest: every client of the
            // demo uses it with its first suite, the mandatory one, for
            // every room (CFG-5). Key 2 (P-256) serves clients that ask for
            // it (`Sender::with_suites`), as the tests of that suite do.
            HubKeyPair::derive(
                2,
                KeyUse::Hub,
                &[HpkeSuite::P256Aes128Gcm],
                &ikm("hub key 2"),
                NOT_AFTER,
            )?,
            HubKeyPair::derive(
                1,
                KeyUse::Hub,
                &[
                    HpkeSuite::X25519Aes128Gcm,
                    HpkeSuite::X25519ChaCha20Poly1305,
                ],
                &ikm("hub key 1"),
                NOT_AFTER,
            )?,
            HubKeyPair::derive(
                1,
                KeyUse::Policy,
                &[HpkeSuite::X25519Aes128Gcm],
                &ikm("policy key 1"),
                NOT_AFTER,
            )?,
        ];
        let token_key = |cp: u8| -> Res<TokenKey> {
            let d = Sha256::digest(ikm(&format!("token key {cp}")));
            let mut k = [0u8; 16];
            k.copy_from_slice(&d[..16]);
            TokenKey::new(cp, k, NOT_AFTER)
        };
        let tokens = TokenKeys::new(vec![token_key(0)?, token_key(1)?])?;
        let balancer = LoadBalancer::new(tokens.clone(), SHARD_COUNT);
        let hub = HubFrontEnd::new(keys, tokens, SHARD_COUNT, LOBBY_SHARD, store)?;
        let seed: [u8; 32] = Sha256::digest(ikm("configuration signing key")).into();
        let signing_key = SigningKey::from_bytes(&seed);
        let component = HubSigningKey::ed25519(&signing_key.verifying_key());
        let app_data_dictionary =
            AppDataDictionary::with_hub_signing_key(&component)?.to_bytes()?;
        let mut hub = hub;
        hub.set_signing_key(component.clone());
        let signed_config = hub.configuration(1).sign(&signing_key)?;
        Ok(DemoWorld {
            hub,
            balancer,
            signing_key,
            app_data_dictionary,
            signed_config,
        })
    }

    /// A client: fetches the signed configuration (through its provider),
    /// accepts it only under the signing key of the group's component
    /// (CFG-1), and holds lobby tokens.
    pub fn client(&self) -> Res<Sender> {
        let component = HubSigningKey::from_app_data_dictionary(&self.app_data_dictionary)?;
        let served = SignedHubConfiguration::from_bytes(&self.signed_config.to_bytes()?)?;
        let mut store = HubConfigStore::new();
        let config = store.accept(&served, &component, NOW)?.clone();
        let mut sender = Sender::new(config);
        sender.add_tokens(None, &self.hub.issue_tokens(None));
        Ok(sender)
    }
}

/// One message of the demo.
#[derive(Clone, Debug)]
pub struct DemoMessage {
    /// Folder name in `--dump`.
    pub name: &'static str,
    /// The serialized MLSMessage.
    pub bytes: Vec<u8>,
    /// The group's MLS cipher suite.
    pub mls_suite: u16,
}

fn hex_field(v: &Value, key: &str) -> Res<Vec<u8>> {
    let s = v
        .get(key)
        .and_then(Value::as_str)
        .ok_or(Error::Malformed("demo vector field"))?;
    from_hex(s)
}

/// Decodes lowercase or uppercase hex.
pub fn from_hex(s: &str) -> Res<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return Err(Error::Malformed("hex: odd length"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| Error::Malformed("hex digit")))
        .collect()
}

/// Encodes lowercase hex.
pub fn to_hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// A structurally valid RFC 9420 PrivateMessage whose ciphertext is random
/// bytes of the size a message with `app_len` bytes of application data
/// would have (content vector, an Ed25519 signature, the AEAD tag): the
/// hub judges it by its framing and membership proof alone.
pub fn private_message(
    group_id: &[u8],
    epoch: u64,
    content_type: ContentType,
    app_len: usize,
) -> Vec<u8> {
    use rand::Rng as _;
    let mut rng = rand::rng();
    let mut out = vec![0, 1, 0, 2];
    crate::codec::put_vec(&mut out, group_id).expect("short group id");
    out.extend_from_slice(&epoch.to_be_bytes());
    out.push(content_type.code());
    crate::codec::put_vec(&mut out, &[]).expect("empty");
    let mut sender_data = [0u8; 28];
    rng.fill_bytes(&mut sender_data);
    crate::codec::put_vec(&mut out, &sender_data).expect("short");
    let ct_len = crate::codec::varint_len(app_len) + app_len + 1 + 64 + 16;
    let mut ct = vec![0u8; ct_len];
    rng.fill_bytes(&mut ct);
    crate::codec::put_vec(&mut out, &ct).expect("bounded");
    out
}

/// The official message-protection vectors (RFC 9420), parsed.
pub fn message_protection_vectors() -> Res<Vec<Value>> {
    serde_json::from_str(MESSAGE_PROTECTION).map_err(|_| Error::Malformed("embedded vectors"))
}

/// The demo's messages, in the order it sends them.
pub fn demo_messages() -> Res<Vec<DemoMessage>> {
    let mp = message_protection_vectors()?;
    let ex: Vec<Value> =
        serde_json::from_str(MESSAGES_EXCERPT).map_err(|_| Error::Malformed("embedded vectors"))?;
    let ex = ex.first().ok_or(Error::Malformed("embedded vectors"))?;
    let suite_entry = |suite: u64| -> Res<&Value> {
        mp.iter()
            .find(|e| e.get("cipher_suite").and_then(Value::as_u64) == Some(suite))
            .ok_or(Error::Malformed("embedded vectors"))
    };
    let s1 = suite_entry(1)?;
    // (folder name, vector entry, field, MLS suite); the client seals them
    // all with its one suite (CFG-5)
    let table: [(&'static str, &Value, &str, u16); 8] = [
        ("key_package", ex, "mls_key_package", 1),
        ("group_info", ex, "mls_group_info", 1),
        ("welcome", ex, "mls_welcome", 1),
        ("application", s1, "application_priv", 1),
        ("proposal", s1, "proposal_pub", 1),
        ("commit", s1, "commit_pub", 1),
        ("application_p256", suite_entry(2)?, "application_priv", 2),
        ("application_chacha", suite_entry(3)?, "application_priv", 3),
    ];
    table
        .into_iter()
        .map(|(name, entry, field, mls_suite)| {
            Ok(DemoMessage {
                name,
                bytes: hex_field(entry, field)?,
                mls_suite,
            })
        })
        .collect()
}

/// F for the demo's commits and registration. The fan-out layer derives F
/// with MLS-Exporter from the epoch's exporter secret; the official
/// vectors used here do not carry those secrets for these groups, so the
/// demo derives a stand-in from the group and epoch. The hub only stores
/// it; nothing in this layer depends on how it was made.
pub fn demo_fanout_key(group_id: &[u8], epoch: u64) -> Secret {
    let mut h = Sha256::new();
    h.update(b"mimi-onion demo F");
    h.update(group_id);
    h.update(epoch.to_be_bytes());
    Secret::new(h.finalize().to_vec())
}

/// Provisions the demo's rooms at epoch 0 and the groups of the official
/// demo messages on the hub (as the hub does when it creates a room), and
/// gives the client tokens for them. The registration's group is left for
/// the registration to create.
pub fn provision<S: HubStore>(world: &mut DemoWorld<S>, client: &mut Sender) -> Res<()> {
    for room in rooms(world)? {
        provision_room(world, client, &room, 0)?;
    }
    for m in demo_messages()? {
        let info = MessageInfo::parse(&m.bytes)?;
        if let (Some(g), Some(e), true) = (
            info.group_id,
            info.epoch,
            info.wire_format != WireFormat::GroupInfo,
        ) {
            if world.hub.group(g)?.is_none() {
                let mut record = GroupRecord::new(0, e, m.mls_suite);
                record.pin_fanout_key(e, demo_fanout_key(g, e));
                world.hub.provision(g, record)?;
                client.add_tokens(Some(g), &world.hub.issue_tokens(Some(g)));
            }
        }
    }
    Ok(())
}

/// The membership keys for a member-sent demo message (F of its epoch).
pub fn membership_keys(m: &DemoMessage) -> Res<Option<EpochKeys>> {
    let info = MessageInfo::parse(&m.bytes)?;
    match (info.is_member_sent(), info.group_id, info.epoch) {
        (true, Some(g), Some(e)) => Ok(Some(EpochKeys::derive(&demo_fanout_key(g, e), e)?)),
        _ => Ok(None),
    }
}

/// The options the demo sender uses for a message.
pub fn seal_options<'a>(
    m: &DemoMessage,
    membership: Option<&'a EpochKeys>,
) -> Res<SealOptions<'a>> {
    let info = MessageInfo::parse(&m.bytes)?;
    let fanout_key = match (info.carries_fanout_key(), info.group_id, info.epoch) {
        (true, Some(g), Some(e)) => {
            let next = if info.wire_format == WireFormat::GroupInfo {
                e
            } else {
                e.saturating_add(1)
            };
            Some(demo_fanout_key(g, next))
        }
        _ => None,
    };
    Ok(SealOptions {
        fanout_key,
        membership,
        ..SealOptions::default()
    })
}

/// The demo's rooms, by MLS cipher suite. Their envelopes all use the
/// client's one hub key and suite (CFG-5): the clear header does not tell
/// the rooms apart.
pub const ROOMS: [u16; 3] = [1, 2, 3];

/// Number of follower providers each room fans out to.
pub const FOLLOWERS: usize = 2;

/// The demo's rooms, whose GroupContexts carry the world's hub signing key.
pub fn rooms<S: HubStore>(world: &DemoWorld<S>) -> Res<Vec<Room>> {
    let component = HubSigningKey::from_app_data_dictionary(&world.app_data_dictionary)?;
    ROOMS
        .iter()
        .map(|code| Room::new(*code, &component))
        .collect()
}

/// The hub provisions a room at `epoch` (its state: suite, GroupContext,
/// commitment requirement, F, the leaves' signature keys) and the client
/// gets tokens for it.
pub fn provision_room<S: HubStore>(
    world: &mut DemoWorld<S>,
    client: &mut Sender,
    room: &Room,
    epoch: u64,
) -> Res<()> {
    world.hub.provision(&room.group_id, room.record(epoch)?)?;
    for leaf in &room.leaves {
        world.hub.set_leaf_signature_key(
            &room.group_id,
            leaf.index,
            Some(&leaf.signature_public),
        )?;
    }
    client.add_tokens(
        Some(&room.group_id),
        &world.hub.issue_tokens(Some(&room.group_id)),
    );
    Ok(())
}

/// After the hub accepted a commit opening `epoch`, its MLS stack installs
/// the new epoch's GroupContext (the front-end already moved the epoch and
/// pinned F from the hub layer).
pub fn install_epoch<S: HubStore>(world: &mut DemoWorld<S>, room: &Room, epoch: u64) -> Res<()> {
    let mut record = world
        .hub
        .group(&room.group_id)?
        .ok_or(Error::Usage("room not provisioned"))?;
    if record.epoch != epoch {
        return Err(Error::Usage("the hub did not move to that epoch"));
    }
    record.group_context = room.epoch(epoch)?.context.encode()?;
    world.hub.put_group(&room.group_id, &record)?;
    Ok(())
}

/// What one demo message produced.
#[derive(Debug)]
pub struct DemoRecord {
    /// The part of the demo it belongs to.
    pub scene: Scene,
    /// Folder name in `--dump`.
    pub name: String,
    /// The MLS message.
    pub message: Vec<u8>,
    /// The group's MLS cipher suite.
    pub mls_suite: u16,
    /// The envelope bytes.
    pub envelope: Vec<u8>,
    /// The sealed key layer, as the policy engine received it.
    pub key_layer: Option<Vec<u8>>,
    /// The load balancer's decision.
    pub route: Route,
    /// The hub's outcome.
    pub outcome: HubOutcome,
    /// What the policy engine read (its own log), for handshake messages.
    pub policy: Option<PolicyAudit>,
    /// The verdict the sender read from the response.
    pub status: Status,
    /// The sender's token pool for the group after the response.
    pub pool_after: usize,
    /// The fan-out messages, one per follower.
    pub fanouts: Vec<Vec<u8>>,
    /// What the receiving member decrypted.
    pub delivered: Option<Received>,
    /// Number of (group, epoch) key sets the member scanned.
    pub member_held: usize,
}

/// Runs the demo world: every message of the demo through every party, in
/// order. The records hold what each party saw; rendering them is the
/// caller's business (the CLI prints and dumps them).
pub fn run(now: u64) -> Res<Vec<DemoRecord>> {
    let mut world = DemoWorld::new()?;
    let mut client = world.client()?;
    let mut records = Vec::new();
    // Part 1: messages that name no group the hub holds, from the official
    // vectors: a KeyPackage, a registration (GroupInfo plus F), a Welcome.
    // The official GroupInfo's GroupContext lacks this hub's signing key,
    // so its registration is refused (HUB-6).
    for m in demo_messages()?
        .into_iter()
        .filter(|m| matches!(m.name, "key_package" | "group_info" | "welcome"))
    {
        let mut rec = send_official(&mut world, &mut client, &m, now)?;
        rec.scene = Scene::Official;
        records.push(rec);
    }
    // A registration the hub accepts (HUB-6): a room of this project
    // introduces itself with a GroupInfo signed in its ratchet tree and a
    // GroupContext that carries this hub's signing key.
    let mut rec = send_registration(&mut world, &mut client, now)?;
    rec.scene = Scene::Registration;
    records.push(rec);
    // Part 2: rooms on the hub, members Alice (leaf 1, sending) and Bob
    // (leaf 0, receiving through two follower providers).
    let mut rooms = rooms(&world)?;
    let mut bob = Member::default();
    for room in &rooms {
        provision_room(&mut world, &mut client, room, 0)?;
        bob.enter_epoch(room.suite, room.member_state(0)?);
    }
    for (i, room) in rooms.iter_mut().enumerate() {
        let code = ROOMS[i];
        let hpke = client.suite().ok_or(Error::Config("no usable hub key"))?;
        let plan: &[(&str, u64, ContentType)] = if code == 1 {
            &[
                ("application", 0, ContentType::Application),
                ("proposal", 0, ContentType::Proposal),
                ("commit", 0, ContentType::Commit),
                ("application_epoch1", 1, ContentType::Application),
            ]
        } else if code == 2 {
            &[("application_p256", 0, ContentType::Application)]
        } else {
            &[("application_chacha", 0, ContentType::Application)]
        };
        for (name, epoch, ct) in plan {
            let text = format!("{name}: hello from Alice in epoch {epoch}");
            let mut rec = send_in_room(
                &mut world,
                &mut client,
                &mut bob,
                room,
                now,
                name,
                *epoch,
                *ct,
                text.as_bytes(),
            )?;
            rec.scene = Scene::Room {
                mls_suite: code,
                hpke_suite: hpke,
                members: room.leaves.len(),
            };
            records.push(rec);
        }
    }
    Ok(records)
}

/// Which part of the demo a record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scene {
    /// An official RFC 9420 message that names no room the hub holds.
    Official,
    /// A room of this project registering itself with the hub.
    Registration,
    /// A message in one of the demo rooms, Alice to Bob.
    Room {
        /// The room's MLS cipher suite.
        mls_suite: u16,
        /// The HPKE suite Alice's envelopes use.
        hpke_suite: HpkeSuite,
        /// The number of members.
        members: usize,
    },
}

/// Group id of the room the demo registers.
pub const REGISTERED_ROOM: &[u8] = b"mimi-onion demo: a room that registers itself";

/// The room the demo registers, and its registration message.
pub fn registration<S: HubStore>(world: &DemoWorld<S>) -> Res<(Room, Vec<u8>)> {
    let component = HubSigningKey::from_app_data_dictionary(&world.app_data_dictionary)?;
    let room = Room::with_group_id(1, &component, Some(REGISTERED_ROOM.to_vec()))?;
    let gi = room.group_info(0)?;
    Ok((room, gi))
}

fn send_registration<S: HubStore>(
    world: &mut DemoWorld<S>,
    client: &mut Sender,
    now: u64,
) -> Res<DemoRecord> {
    let (room, gi) = registration(world)?;
    let sealed = client.seal(
        &gi,
        SealOptions {
            fanout_key: Some(room.epoch(0)?.f.clone()),
            ..SealOptions::default()
        },
    )?;
    let route = world.balancer.route(&sealed.bytes);
    let outcome = world.hub.handle(&sealed.bytes, now);
    let resp = client.open_response(&sealed.pending, &outcome.response)?;
    Ok(DemoRecord {
        scene: Scene::Official,
        name: "registration".into(),
        message: gi,
        mls_suite: 1,
        envelope: sealed.bytes,
        key_layer: None,
        route,
        outcome,
        policy: None,
        status: resp.status,
        pool_after: client.pool_len(Some(REGISTERED_ROOM)),
        fanouts: Vec::new(),
        delivered: None,
        member_held: 0,
    })
}

fn send_official<S: HubStore>(
    world: &mut DemoWorld<S>,
    client: &mut Sender,
    m: &DemoMessage,
    now: u64,
) -> Res<DemoRecord> {
    let keys = membership_keys(m)?;
    let sealed = client.seal(&m.bytes, seal_options(m, keys.as_ref())?)?;
    let route = world.balancer.route(&sealed.bytes);
    let outcome = world.hub.handle(&sealed.bytes, now);
    let resp = client.open_response(&sealed.pending, &outcome.response)?;
    let info = MessageInfo::parse(&m.bytes)?;
    Ok(DemoRecord {
        scene: Scene::Official,
        name: m.name.to_string(),
        message: m.bytes.clone(),
        mls_suite: m.mls_suite,
        envelope: sealed.bytes,
        key_layer: None,
        route,
        outcome,
        policy: None,
        status: resp.status,
        pool_after: client.pool_len(info.group_id),
        fanouts: Vec::new(),
        delivered: None,
        member_held: 0,
    })
}

/// Sends one message in a room through every party: Alice protects it
/// (commitment in the SafeAAD, signature, RFC 9420 encryption), seals the
/// key layer (handshake messages) and the envelope; the load balancer
/// routes; the front-end and the policy engine judge; the hub fans it out
/// to the followers; Bob's member side finds, opens and verifies it.
#[allow(clippy::too_many_arguments)]
pub fn send_in_room<S: HubStore>(
    world: &mut DemoWorld<S>,
    client: &mut Sender,
    member: &mut Member,
    room: &mut Room,
    now: u64,
    name: &str,
    epoch: u64,
    content_type: ContentType,
    app_data: &[u8],
) -> Res<DemoRecord> {
    let protected = room.protect(epoch, content_type, app_data)?;
    let policy_key = world
        .signed_config
        .configuration
        .current(KeyUse::Policy)
        .ok_or(Error::Config("no policy key"))?
        .clone();
    let key_layer = match &protected.key_layer {
        Some(content) => Some(keylayer::seal(
            &policy_key,
            HpkeSuite::MANDATORY,
            room.suite.code(),
            &protected.message,
            content,
        )?),
        None => None,
    };
    let membership = room.membership_keys(epoch)?;
    let fanout_key = match content_type {
        ContentType::Commit => Some(room.epoch(epoch + 1)?.f.clone()),
        _ => None,
    };
    let sealed = client.seal(
        &protected.message,
        SealOptions {
            key_layer: key_layer.as_deref(),
            fanout_key,
            membership: Some(&membership),
            fanout_key_signature: None,
        },
    )?;
    let route = world.balancer.route(&sealed.bytes);
    let audits_before = world.hub.policy().audit().len();
    let outcome = world.hub.handle(&sealed.bytes, now);
    let policy = world.hub.policy().audit().get(audits_before).cloned();
    let resp = client.open_response(&sealed.pending, &outcome.response)?;
    let mut fanouts = Vec::new();
    let mut delivered = None;
    let member_held = member.held_epochs();
    if resp.status == Status::Accepted {
        fanouts = world
            .hub
            .fan_out(&room.group_id, epoch, &protected.message, FOLLOWERS)?;
        // Each follower delivers its copy; Bob is served by the first.
        if let Some(first) = fanouts.first() {
            match member.receive(first) {
                Ok(Delivery::Delivered(r)) => delivered = Some(r),
                Ok(Delivery::Buffered | Delivery::ForMlsStack { .. }) => {}
                Err(e) => return Err(Error::Usage(leak_reason(&e))),
            }
        }
        if content_type == ContentType::Commit {
            install_epoch(world, room, epoch + 1)?;
            member.enter_epoch(room.suite, room.member_state(epoch + 1)?);
        }
    }
    Ok(DemoRecord {
        scene: Scene::Official,
        name: name.to_string(),
        message: protected.message,
        mls_suite: room.suite.code(),
        envelope: sealed.bytes,
        key_layer,
        route,
        outcome,
        policy,
        status: resp.status,
        pool_after: client.pool_len(Some(&room.group_id)),
        fanouts,
        delivered,
        member_held,
    })
}

fn leak_reason(e: &ReceiveError) -> &'static str {
    match e {
        ReceiveError::CheckFailed => "member: check value failed",
        ReceiveError::Commitment => "member: key commitment failed",
        ReceiveError::Signature => "member: signature failed",
        _ => "member: could not process the fan-out message",
    }
}
