//! The demo: one hub, its load balancer and a client, on embedded defaults
//! (hub keys from fixed input keying material; MLS messages from the
//! official RFC 9420 test vectors in `test-vectors/mls/`). Tests and the
//! CLI share it.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::balancer::{LoadBalancer, Route};
use crate::config::{
    AppDataDictionary, HubConfigStore, HubSigningKey, KeyUse, SignedHubConfiguration,
};
use crate::error::{Error, Res};
use crate::fanout::EpochKeys;
use crate::hub::{HubFrontEnd, HubKeyPair, HubOutcome};
use crate::mls::message::{ContentType, MessageInfo, WireFormat};
use crate::response::Status;
use crate::secret::Secret;
use crate::sender::{SealOptions, Sender};
use crate::state::{GroupRecord, InMemoryHubState};
use crate::suite::HpkeSuite;
use crate::token::{TokenKey, TokenKeys};
use crate::wire::Envelope;

/// Number of shards of the demo hub.
pub const SHARD_COUNT: u32 = 16;
/// The demo hub's lobby shard.
pub const LOBBY_SHARD: u32 = 0;
/// Expiry of the demo keys (2100-01-01).
pub const NOT_AFTER: u64 = 4_102_444_800;

const MESSAGE_PROTECTION: &str = include_str!("../test-vectors/mls/message-protection.json");
const MESSAGES_EXCERPT: &str = include_str!("../test-vectors/mls/messages-excerpt.json");

/// A hub, its load balancer and what a client of the hub's rooms holds.
pub struct DemoWorld {
    /// The hub front-end.
    pub hub: HubFrontEnd<InMemoryHubState>,
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

impl core::fmt::Debug for DemoWorld {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DemoWorld").finish_non_exhaustive()
    }
}

fn ikm(name: &str) -> Vec<u8> {
    format!("mimi-onion demo ikm: {name}").into_bytes()
}

/// The current time in Unix seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl DemoWorld {
    /// Builds the demo hub from fixed input keying material: hub key 1
    /// (X25519 with AES-128-GCM and ChaCha20-Poly1305), hub key 2 (P-256),
    /// policy key 1 (X25519), token keys with codepoints 0 and 1.
    pub fn new() -> Res<Self> {
        let keys = vec![
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
                2,
                KeyUse::Hub,
                &[HpkeSuite::P256Aes128Gcm],
                &ikm("hub key 2"),
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
            TokenKey::new(cp, k)
        };
        let tokens = TokenKeys::new(vec![token_key(0)?, token_key(1)?])?;
        let balancer = LoadBalancer::new(tokens.clone(), SHARD_COUNT);
        let hub = HubFrontEnd::new(
            keys,
            tokens,
            SHARD_COUNT,
            LOBBY_SHARD,
            InMemoryHubState::new(),
        )?;
        let seed: [u8; 32] = Sha256::digest(ikm("configuration signing key")).into();
        let signing_key = SigningKey::from_bytes(&seed);
        let component = HubSigningKey::ed25519(&signing_key.verifying_key());
        let app_data_dictionary =
            AppDataDictionary::with_hub_signing_key(&component)?.to_bytes()?;
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
        let config = store.accept(&served, &component, now())?.clone();
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
    /// The HPKE suite the sender uses.
    pub hpke_suite: HpkeSuite,
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
    if s.len() % 2 != 0 {
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
    let x = HpkeSuite::X25519Aes128Gcm;
    Ok(vec![
        DemoMessage {
            name: "key_package",
            bytes: hex_field(ex, "mls_key_package")?,
            mls_suite: 1,
            hpke_suite: x,
        },
        DemoMessage {
            name: "group_info",
            bytes: hex_field(ex, "mls_group_info")?,
            mls_suite: 1,
            hpke_suite: x,
        },
        DemoMessage {
            name: "welcome",
            bytes: hex_field(ex, "mls_welcome")?,
            mls_suite: 1,
            hpke_suite: x,
        },
        DemoMessage {
            name: "application",
            bytes: hex_field(s1, "application_priv")?,
            mls_suite: 1,
            hpke_suite: x,
        },
        DemoMessage {
            name: "proposal",
            bytes: hex_field(s1, "proposal_pub")?,
            mls_suite: 1,
            hpke_suite: x,
        },
        DemoMessage {
            name: "commit",
            bytes: hex_field(s1, "commit_pub")?,
            mls_suite: 1,
            hpke_suite: x,
        },
        DemoMessage {
            name: "application_p256",
            bytes: hex_field(suite_entry(2)?, "application_priv")?,
            mls_suite: 2,
            hpke_suite: HpkeSuite::P256Aes128Gcm,
        },
        DemoMessage {
            name: "application_chacha",
            bytes: hex_field(suite_entry(3)?, "application_priv")?,
            mls_suite: 3,
            hpke_suite: HpkeSuite::X25519ChaCha20Poly1305,
        },
    ])
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

/// Provisions the groups of the demo messages on the hub (as the hub does
/// when it creates a room) and gives the client tokens for them. The
/// registration's group is left for the registration to create.
pub fn provision(world: &mut DemoWorld, client: &mut Sender) -> Res<()> {
    for m in demo_messages()? {
        let info = MessageInfo::parse(&m.bytes)?;
        if let (Some(g), Some(e), true) = (
            info.group_id,
            info.epoch,
            info.wire_format != WireFormat::GroupInfo,
        ) {
            if world.hub.state().group_epoch(g).is_none() {
                let mut record = GroupRecord::new(0, e, m.mls_suite);
                record.pin_fanout_key(e, demo_fanout_key(g, e));
                world.hub.provision(g, record);
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
    let needs_f =
        info.content_type == Some(ContentType::Commit) || info.wire_format == WireFormat::GroupInfo;
    let fanout_key = match (needs_f, info.group_id, info.epoch) {
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
        suite: Some(m.hpke_suite),
        fanout_key,
        membership,
        ..SealOptions::default()
    })
}

/// What one demo message produced.
#[derive(Debug)]
pub struct DemoRecord {
    /// The message.
    pub message: DemoMessage,
    /// The envelope bytes.
    pub envelope: Vec<u8>,
    /// The load balancer's decision.
    pub route: Route,
    /// The hub's outcome.
    pub outcome: HubOutcome,
    /// The verdict the sender read from the response.
    pub status: Status,
    /// The sender's token pool for the group after the response.
    pub pool_after: usize,
}

/// Runs the demo, writing the party-by-party account to `out`, and the
/// files of each message to `dump/<message>/` if asked.
pub fn run(out: &mut String, dump: Option<&Path>) -> Res<Vec<DemoRecord>> {
    let mut world = DemoWorld::new()?;
    let mut client = world.client()?;
    let _ = writeln!(
        out,
        "client: accepted hub configuration serial {} ({} keys), signature verified under the \
         Ed25519 key in the group's app_data_dictionary component 0x{:04x}",
        world.signed_config.configuration.serial,
        world.signed_config.configuration.keys.len(),
        crate::config::HUB_SIGNING_KEY_COMPONENT
    );
    provision(&mut world, &mut client)?;
    let mut records = Vec::new();
    for m in demo_messages()? {
        let rec = send_one(&mut world, &mut client, &m)?;
        describe(out, &rec)?;
        if let Some(dir) = dump {
            write_dump(dir, &rec)?;
        }
        records.push(rec);
    }
    Ok(records)
}

fn send_one(world: &mut DemoWorld, client: &mut Sender, m: &DemoMessage) -> Res<DemoRecord> {
    let keys = membership_keys(m)?;
    let sealed = client.seal(&m.bytes, seal_options(m, keys.as_ref())?)?;
    let route = world.balancer.route(&sealed.bytes);
    let outcome = world.hub.handle(&sealed.bytes);
    let resp = client.open_response(&sealed.pending, &outcome.response)?;
    let info = MessageInfo::parse(&m.bytes)?;
    Ok(DemoRecord {
        message: m.clone(),
        envelope: sealed.bytes,
        route,
        outcome,
        status: resp.status,
        pool_after: client.pool_len(info.group_id),
    })
}

fn status_name(s: Status) -> String {
    match s {
        Status::Accepted => "accepted".into(),
        Status::Rejected(r) => format!("rejected ({})", r.name()),
    }
}

fn describe(out: &mut String, rec: &DemoRecord) -> Res<()> {
    let env = Envelope::parse(&rec.envelope)?;
    let h = env.header;
    let info = MessageInfo::parse(&rec.message.bytes)?;
    let _ = writeln!(out, "\n== {} ==", rec.message.name);
    let _ = writeln!(
        out,
        "  sender            sealed a {}-byte MLS {} into a {}-byte envelope",
        rec.message.bytes.len(),
        info.wire_format.name(),
        rec.envelope.len()
    );
    let _ = writeln!(
        out,
        "  sender's provider sees version 1, token {} (codepoint {}), key id {}, suite {}, \
         enc {}..., {} sealed bytes; no group_id, epoch or message type",
        to_hex(&h.token.0),
        h.token.codepoint(),
        h.key_id,
        h.suite.name(),
        to_hex(&env.enc[..8]),
        env.sealed_hub_layer.len()
    );
    let route = match rec.route {
        Route::Shard(s) => format!("shard {s}"),
        Route::Unroutable => "unroutable (any front-end)".into(),
    };
    let _ = writeln!(
        out,
        "  load balancer     one AES block on the token -> {route}"
    );
    match &rec.outcome.view {
        Some(v) => {
            let _ = writeln!(
                out,
                "  hub front-end     {} {} group {} epoch {}; key layer {} bytes; F {}; {}",
                v.wire_format.name(),
                v.content_type.map_or("-", ContentType::name),
                v.group_id.as_deref().map_or("-".into(), to_hex),
                v.epoch.map_or("-".into(), |e| e.to_string()),
                v.key_layer_len,
                if v.has_fanout_key {
                    "present"
                } else {
                    "absent"
                },
                status_name(v.status)
            );
        }
        None => {
            let _ = writeln!(out, "  hub front-end     could not open the envelope");
        }
    }
    let _ = writeln!(
        out,
        "  sender            opened the {}-byte response: {}; token pool for the group now {}",
        rec.outcome.response.len(),
        status_name(rec.status),
        rec.pool_after
    );
    Ok(())
}

/// The manifest of one dumped message.
pub fn manifest(rec: &DemoRecord) -> Res<Value> {
    let env = Envelope::parse(&rec.envelope)?;
    let info = MessageInfo::parse(&rec.message.bytes)?;
    let (kem, kdf, aead) = env.header.suite.ids();
    let shard = match rec.route {
        Route::Shard(s) => json!(s),
        Route::Unroutable => Value::Null,
    };
    Ok(json!({
        "wire_format": info.wire_format.name(),
        "content_type": info.content_type.map(ContentType::name),
        "group_id": info.group_id.map(to_hex),
        "epoch": info.epoch,
        "routing_token": to_hex(&env.header.token.0),
        "shard_id": shard,
        "key_id": env.header.key_id,
        "hpke_suite": [kem, kdf, aead],
        "mls_suite": rec.message.mls_suite,
        "hub_view": rec.outcome.view.as_ref().map(|v| to_hex(&v.message)),
        "status": status_name(rec.status),
    }))
}

fn write_dump(dir: &Path, rec: &DemoRecord) -> Res<()> {
    let d = dir.join(rec.message.name);
    let io = |_| Error::Usage("cannot write the dump directory");
    std::fs::create_dir_all(&d).map_err(io)?;
    std::fs::write(d.join("envelope.bin"), &rec.envelope).map_err(io)?;
    std::fs::write(d.join("response.bin"), &rec.outcome.response).map_err(io)?;
    let text = serde_json::to_string_pretty(&manifest(rec)?)
        .map_err(|_| Error::Usage("manifest encoding"))?;
    std::fs::write(d.join("manifest.json"), text + "\n").map_err(io)?;
    Ok(())
}
