//! Replays the committed fuzz seed corpus (`fuzz/corpus/<target>/`) and any
//! crash files (`fuzz/artifacts/<target>/`) through the matching
//! `mimi_onion::fuzzing` function, so CI checks them on stable Rust without
//! cargo-fuzz or nightly.
//!
//! The seeds are made by the ignored test `generate_seed_corpus`:
//!
//! ```text
//! cargo test --test fuzz_corpus -- --ignored generate_seed_corpus
//! ```
//!
//! It rewrites the generated files (same names; envelopes and hub responses
//! differ run to run, as their HPKE ephemeral keys and tokens are random)
//! and leaves files the fuzzer added (named by their SHA-1) alone.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use mimi_onion::commitment::{build_authenticated_data, SafeAadItem};
use mimi_onion::config::KeyUse;
use mimi_onion::config::{
    AppDataDictionary, ComponentData, HubSigningKey, SignedHubConfiguration,
    HUB_SIGNING_KEY_COMPONENT,
};
use mimi_onion::fanout::EpochKeys;
use mimi_onion::fuzzing;
use mimi_onion::keylayer;
use mimi_onion::mls::framing::{PrivateMessage, PublicMessage};
use mimi_onion::mls::message::{ContentType, MessageInfo};
use mimi_onion::response::{HubResponse, RejectReason, Status};
use mimi_onion::sender::SealOptions;
use mimi_onion::suite::HpkeSuite;
use mimi_onion::test_utils::NOW;
use mimi_onion::test_utils::{self, DemoRecord, DemoWorld};
use mimi_onion::token::{RoutingToken, TOKEN_LEN};
use mimi_onion::wire::{Envelope, HubLayerContent, OuterHeader};

type Target = fn(&[u8]);

/// Every fuzz target, by the name of its corpus directory.
const TARGETS: [(&str, Target); 17] = [
    ("envelope", fuzzing::envelope),
    ("hub_layer", fuzzing::hub_layer),
    ("mls_message", fuzzing::mls_message),
    ("hub_configuration", fuzzing::hub_configuration),
    ("app_data_dictionary", fuzzing::app_data_dictionary),
    ("hub_response", fuzzing::hub_response),
    ("balancer_route", fuzzing::balancer_route),
    ("hub_handle", fuzzing::hub_handle),
    ("group_info", fuzzing::group_info),
    ("private_message", fuzzing::private_message),
    ("safe_aad", fuzzing::safe_aad),
    ("fanout_member", fuzzing::fanout_member),
    ("key_layer", fuzzing::key_layer),
    ("hub_plaintext", fuzzing::hub_plaintext),
    ("key_layer_plaintext", fuzzing::key_layer_plaintext),
    ("fanout_plaintext", fuzzing::fanout_plaintext),
    ("dispute", fuzzing::dispute),
];

/// The repository's root: this crate lives in `crates/mimi-onion-cli`.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fuzz_dir() -> PathBuf {
    repo_root().join("fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn replay_fuzz_corpus() {
    let mut failures = Vec::new();
    let mut total = 0usize;
    for (name, target) in TARGETS {
        let corpus = fuzz_dir().join("corpus").join(name);
        let mut files = files_in(&corpus);
        assert!(
            !files.is_empty(),
            "corpus directory {} is missing or empty",
            corpus.display()
        );
        files.extend(files_in(&fuzz_dir().join("artifacts").join(name)));
        for file in files {
            let data = std::fs::read(&file).expect("readable corpus file");
            total += 1;
            if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                failures.push(format!("{name}: {}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "panicked on: {failures:#?}");
    assert!(total >= TARGETS.len());
}

/// The room envelopes among the `hub_handle` seeds reach the policy engine
/// of a hub provisioned as `test_utils::provision` does (which
/// `fuzzing::hub_handle` reproduces before every input): a proposal and a
/// commit with their key layers are accepted, the broken ones are refused
/// by the policy engine.
#[test]
fn hub_handle_room_seeds_reach_the_policy_engine() {
    let dir = fuzz_dir().join("corpus").join("hub_handle");
    for (name, expected) in [
        ("room-application", Status::Accepted),
        ("room-proposal-with-key-layer", Status::Accepted),
        ("room-commit-with-key-layer-and-f", Status::Accepted),
        (
            "room-proposal-key-layer-flipped",
            Status::Rejected(RejectReason::PolicyRejected),
        ),
        (
            "room-commit-key-layer-flipped",
            Status::Rejected(RejectReason::PolicyRejected),
        ),
        (
            "room-commit-other-f",
            Status::Rejected(RejectReason::PolicyRejected),
        ),
    ] {
        let envelope = std::fs::read(dir.join(name)).expect("the seed exists");
        let mut world = DemoWorld::new().expect("demo world");
        let mut client = world.client().expect("client");
        test_utils::provision(&mut world, &mut client).expect("provision");
        let outcome = world.hub.handle(&envelope, NOW);
        let view = outcome.view.expect("the hub opens the seed");
        assert_eq!(view.status, expected, "{name}");
        fuzzing::hub_handle(&envelope);
    }
}

// ---------------------------------------------------------------------------
// Seed generation (run on demand, see the module documentation).

struct Seeds {
    dir: PathBuf,
}

impl Seeds {
    fn new(target: &str) -> Self {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("create the corpus directory");
        Seeds { dir }
    }

    fn put(&self, name: &str, data: &[u8]) {
        std::fs::write(self.dir.join(name), data).expect("write a seed");
    }

    /// A valid seed plus its edge cases: truncated by one byte, cut in
    /// half, one byte flipped in the middle, one trailing byte.
    fn put_with_edges(&self, name: &str, data: &[u8]) {
        self.put(name, data);
        if data.is_empty() {
            return;
        }
        self.put(&format!("{name}-truncated1"), &data[..data.len() - 1]);
        self.put(&format!("{name}-half"), &data[..data.len() / 2]);
        let mut flipped = data.to_vec();
        flipped[data.len() / 2] ^= 0x01;
        self.put(&format!("{name}-flip-mid"), &flipped);
        let mut longer = data.to_vec();
        longer.push(0);
        self.put(&format!("{name}-trailing0"), &longer);
    }
}

fn hex(s: &str) -> Vec<u8> {
    test_utils::from_hex(s).expect("hex")
}

fn token(b: u8) -> RoutingToken {
    RoutingToken([b; TOKEN_LEN])
}

/// Seeds of the targets behind the AEADs (`hub_plaintext`,
/// `key_layer_plaintext`, `fanout_plaintext`): the plaintexts the harness
/// seals itself. Deterministic (fixed reuse guards, Ed25519). Run on demand
/// like [`generate_seed_corpus`]:
/// `cargo test --test fuzz_corpus -- --ignored generate_plaintext_seeds`.
#[test]
#[ignore = "writes fuzz/corpus; run on demand"]
fn generate_plaintext_seeds() {
    let world = DemoWorld::new().expect("world");
    let mut room = test_utils::rooms(&world)
        .expect("rooms")
        .into_iter()
        .find(|r| r.suite.code() == 1)
        .expect("room of suite 1");
    let hub = Seeds::new("hub_plaintext");
    let key_layer = Seeds::new("key_layer_plaintext");
    let fanout = Seeds::new("fanout_plaintext");
    let hub_layer = |message: &[u8], key_layer: &[u8], f: Option<mimi_onion::secret::Secret>| {
        HubLayerContent {
            message,
            membership_proof: [0; 16],
            key_layer,
            fanout_key: f,
            fanout_key_signature: &[],
        }
        .encode_padded()
        .expect("encodes")
    };
    let fanout_body = |message: &[u8]| {
        let mut pt = Vec::new();
        mimi_onion::codec::put_vec(&mut pt, message).expect("encodes");
        pt.resize(mimi_onion::fanout::fanout_padded_len(message.len()), 0);
        pt
    };
    for (name, ct) in [
        ("application", ContentType::Application),
        ("proposal", ContentType::Proposal),
        ("commit", ContentType::Commit),
    ] {
        let p = room
            .protect_with(0, ct, b"seed", [0x5a; 4])
            .expect("protect");
        let f = (ct == ContentType::Commit).then(|| room.epoch(1).expect("epoch 1").f.clone());
        // A key layer of the right length (its bytes are the policy
        // engine's business; the hub checks its presence and length).
        let kl = p
            .key_layer
            .as_ref()
            .map(|_| vec![0x11; mimi_onion::wire::KEY_LAYER_HEADER_LEN + 32 + 256 + 16])
            .unwrap_or_default();
        hub.put_with_edges(&format!("room-{name}"), &hub_layer(&p.message, &kl, f));
        fanout.put_with_edges(&format!("room-{name}"), &fanout_body(&p.message));
        if let Some(content) = &p.key_layer {
            key_layer.put_with_edges(
                &format!("room-{name}"),
                &content.padded_bytes().expect("encodes"),
            );
        }
    }
    for m in test_utils::demo_messages().expect("demo messages") {
        let info = MessageInfo::parse(&m.bytes).expect("parses");
        let f = info
            .carries_fanout_key()
            .then(|| test_utils::demo_fanout_key(info.group_id.unwrap_or_default(), 0));
        hub.put(&format!("demo-{}", m.name), &hub_layer(&m.bytes, &[], f));
        fanout.put(&format!("demo-{}", m.name), &fanout_body(&m.bytes));
    }
    let (_, gi) = test_utils::registration(&world).expect("registration");
    hub.put(
        "registration",
        &hub_layer(
            &gi,
            &[],
            Some(mimi_onion::secret::Secret::from_slice(&[7; 32])),
        ),
    );
}

#[test]
#[ignore = "writes fuzz/corpus; run on demand"]
fn generate_seed_corpus() {
    let messages = test_utils::demo_messages().expect("demo messages");

    // Envelopes: the demo run, as `mimi-onion demo --dump` writes them, plus
    // envelopes for the hub's other paths (private handshake with a key
    // layer, wrong form, stale epoch, malformed message).
    let records = test_utils::run(NOW).expect("demo run");
    let envelope = Seeds::new("envelope");
    let hub_handle = Seeds::new("hub_handle");
    let balancer = Seeds::new("balancer_route");
    for rec in &records {
        let n = &rec.name;
        envelope.put(&format!("demo-{n}"), &rec.envelope);
        hub_handle.put(&format!("demo-{n}"), &rec.envelope);
        balancer.put(&format!("token-{n}"), &rec.envelope[..18]);
    }
    let first = &records[0].envelope;
    envelope.put_with_edges("demo-first", first);
    envelope.put("empty", &[]);
    let mut v2 = first.clone();
    v2[0] = 2;
    envelope.put("version-2", &v2);
    envelope.put("header-only", &first[..25]);
    // A non-minimal length prefix for the sealed hub layer: 0x40 0x05.
    let mut nonmin = first[..25 + 32].to_vec();
    nonmin.extend_from_slice(&[0x40, 0x05, 1, 2, 3, 4, 5]);
    envelope.put("nonminimal-prefix", &nonmin);

    let mut world = DemoWorld::new().expect("demo world");
    let mut client = world.client().expect("client");
    test_utils::provision(&mut world, &mut client).expect("provision");
    let mp = test_utils::message_protection_vectors().expect("vectors");
    let s1 = &mp[0];
    let field = |k: &str| hex(s1[k].as_str().expect("hex field"));
    let dummy_key_layer = vec![0x5a; 300];
    let group_id = field("group_id");
    let epoch: u64 = s1["epoch"].as_u64().expect("epoch");
    let keys =
        EpochKeys::derive(&test_utils::demo_fanout_key(&group_id, epoch), epoch).expect("keys");
    for (name, msg, key_layer, with_f) in [
        ("commit_priv", field("commit_priv"), true, true),
        ("proposal_priv", field("proposal_priv"), true, false),
    ] {
        let opts = SealOptions {
            key_layer: key_layer.then_some(dummy_key_layer.as_slice()),
            fanout_key: with_f.then(|| test_utils::demo_fanout_key(&group_id, epoch + 1)),
            membership: Some(&keys),
            fanout_key_signature: None,
        };
        let sealed = client.seal(&msg, opts).expect("seal");
        hub_handle.put(name, &sealed.bytes);
    }
    // Forms the sender refuses to make, sealed by hand.
    let app = field("application_priv");
    let f = test_utils::demo_fanout_key(&group_id, epoch + 1);
    let commit_priv = field("commit_priv");
    for (name, message, key_layer, fanout_key) in [
        (
            "wrong-form-application-with-f",
            &app[..],
            &[][..],
            Some(f.clone()),
        ),
        (
            "wrong-form-commit-priv-no-key-layer",
            &commit_priv[..],
            &[][..],
            Some(f.clone()),
        ),
        ("malformed-mls", &[0u8, 1, 0, 9, 0][..], &[][..], None),
    ] {
        let tok = world.hub.issue_tokens(Some(&group_id))[0];
        let env = seal_raw(&world, tok, |h, enc| {
            HubLayerContent {
                message,
                membership_proof: keys.membership_proof(h, enc),
                key_layer,
                fanout_key,
                fanout_key_signature: &[],
            }
            .encode_padded()
            .expect("encode")
        });
        hub_handle.put(name, &env);
    }
    let tok = world.hub.issue_tokens(Some(&group_id))[0];
    let env = seal_raw(&world, tok, |h, enc| {
        let mut pt = HubLayerContent {
            message: &app,
            membership_proof: keys.membership_proof(h, enc),
            key_layer: &[],
            fanout_key: None,
            fanout_key_signature: &[],
        }
        .encode_padded()
        .expect("encode");
        *pt.last_mut().expect("non-empty") = 1;
        pt
    });
    hub_handle.put("nonzero-padding", &env);
    let tok = world.hub.issue_tokens(Some(&group_id))[0];
    let env = seal_raw(&world, tok, |_, _| {
        HubLayerContent {
            message: &app,
            membership_proof: [0x33; 16],
            key_layer: &[],
            fanout_key: None,
            fanout_key_signature: &[],
        }
        .encode_padded()
        .expect("encode")
    });
    hub_handle.put("bad-membership-proof", &env);
    // A stale epoch: the application message with its epoch moved on by 5
    // (the hub reads the header only; offsets: version, wire format, group
    // id with its 1-byte prefix, then the epoch).
    let mut stale = field("application_priv");
    let at = 4 + 1 + group_id.len();
    stale[at..at + 8].copy_from_slice(&(epoch + 5).to_be_bytes());
    let opts = SealOptions {
        membership: Some(&keys),
        ..SealOptions::default()
    };
    let sealed = client.seal(&stale, opts).expect("seal");
    hub_handle.put("stale-epoch", &sealed.bytes);
    hub_handle.put("empty", &[]);
    hub_handle.put("header-only", &first[..25]);
    let mut flipped = first.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x80; // breaks the AEAD tag
    hub_handle.put("demo-first-tag-flipped", &flipped);

    balancer.put("empty", &[]);
    balancer.put("17-bytes", &first[..17]);
    let mut reserved = first[..18].to_vec();
    reserved[1] = (reserved[1] & 0x1f) | (7 << 5);
    balancer.put("reserved-codepoint", &reserved);
    let mut flip = first[..18].to_vec();
    flip[10] ^= 1;
    balancer.put("token-flipped", &flip);

    // Hub-layer plaintexts: every demo message as its sender pads it.
    let hub_layer = Seeds::new("hub_layer");
    for m in &messages {
        let opts = test_utils::seal_options(m, None).expect("seal options");
        let content = HubLayerContent {
            message: &m.bytes,
            membership_proof: [0x11; 16],
            key_layer: &[],
            fanout_key: opts.fanout_key,
            fanout_key_signature: &[],
        };
        let pt = content.encode_padded().expect("encode");
        hub_layer.put(&format!("demo-{}", m.name), &pt);
    }
    let commit_priv = field("commit_priv");
    let content = HubLayerContent {
        message: &commit_priv,
        membership_proof: [0x22; 16],
        key_layer: &dummy_key_layer,
        fanout_key: Some(test_utils::demo_fanout_key(&group_id, epoch + 1)),
        fanout_key_signature: &[],
    };
    let pt = content.encode_padded().expect("encode");
    hub_layer.put_with_edges("commit_priv-with-key-layer", &pt);
    let empty_msg = HubLayerContent {
        message: &[],
        membership_proof: [0; 16],
        key_layer: &[],
        fanout_key: None,
        fanout_key_signature: &[],
    };
    let pt = empty_msg.encode_padded().expect("encode");
    hub_layer.put("empty-message", &pt);
    let mut nonzero = pt.clone();
    let last = nonzero.len() - 1;
    nonzero[last] = 1;
    hub_layer.put("empty-message-nonzero-padding", &nonzero);
    hub_layer.put("empty", &[]);

    // MLS messages: the RFC 9420 vectors the demo uses and more.
    let mls = Seeds::new("mls_message");
    for k in [
        "application_priv",
        "proposal_pub",
        "proposal_priv",
        "commit_pub",
        "commit_priv",
    ] {
        mls.put(&format!("suite1-{k}"), &field(k));
    }
    let ex = &serde_json_excerpt()[0];
    for k in [
        "mls_welcome",
        "mls_group_info",
        "mls_key_package",
        "public_message_application",
        "private_message",
    ] {
        mls.put(k, &hex(ex[k].as_str().expect("hex field")));
    }
    mls.put_with_edges("suite1-commit_pub", &field("commit_pub"));
    mls.put("empty", &[]);
    mls.put("version-2", &[0, 2, 0, 1]);
    mls.put("nonminimal-group-id", &[0, 1, 0, 2, 0x40, 0x01, 0xaa]);
    mls.put("reserved-varint-prefix", &[0, 1, 0, 1, 0xc0, 0, 0, 0]);

    // Hub configurations.
    let cfg = Seeds::new("hub_configuration");
    let signed = world.signed_config.to_bytes().expect("encode");
    cfg.put_with_edges("demo-signed", &signed);
    let mut one = world.signed_config.clone();
    one.configuration.keys.truncate(1);
    cfg.put("one-key", &one.to_bytes().expect("encode"));
    let mut none = world.signed_config.clone();
    none.configuration.keys.clear();
    none.signature.0.clear();
    cfg.put("no-keys-no-signature", &none.to_bytes().expect("encode"));
    let served = SignedHubConfiguration::from_bytes(&signed).expect("decode");
    assert_eq!(served, world.signed_config);
    cfg.put("empty", &[]);
    // serial (8 bytes) then a non-minimal `keys` prefix.
    let mut nonmin = signed[..8].to_vec();
    nonmin.extend_from_slice(&[0x40, 0x00, 0x00]);
    cfg.put("nonminimal-keys-prefix", &nonmin);

    // app_data_dictionary extension data.
    let add = Seeds::new("app_data_dictionary");
    add.put_with_edges("demo", &world.app_data_dictionary);
    let key =
        HubSigningKey::from_app_data_dictionary(&world.app_data_dictionary).expect("demo key");
    let mut two = AppDataDictionary::with_hub_signing_key(&key).expect("dict");
    two.component_data.insert(
        0,
        ComponentData {
            component_id: 1,
            data: mimi_onion::codec::Opaque(b"other component".to_vec()),
        },
    );
    add.put("two-components", &two.to_bytes().expect("encode"));
    let mut dup = two.clone();
    dup.component_data[0].component_id = HUB_SIGNING_KEY_COMPONENT;
    add.put("ids-not-increasing", &dup.to_bytes().expect("encode"));
    let mut bad_scheme = key.clone();
    bad_scheme.signature_scheme = 0x0403;
    let d = AppDataDictionary::with_hub_signing_key(&bad_scheme).expect("dict");
    add.put("ecdsa-scheme", &d.to_bytes().expect("encode"));
    let mut short = key.clone();
    short.public_key.0.truncate(31);
    let d = AppDataDictionary::with_hub_signing_key(&short).expect("dict");
    add.put("short-key", &d.to_bytes().expect("encode"));
    add.put("no-components", &[0]);
    add.put("empty", &[]);

    // Hub responses: every status.
    let resp = Seeds::new("hub_response");
    let tokens = [token(0x01), token(0x22), token(0x43), token(0xe4)];
    let accepted = HubResponse {
        status: Status::Accepted,
        tokens,
    };
    resp.put_with_edges("accepted", &accepted.encode());
    for r in RejectReason::ALL {
        let rejected = HubResponse {
            status: Status::Rejected(r),
            tokens,
        };
        resp.put(&format!("rejected-{}", r.name()), &rejected.encode());
    }
    let mut bad = accepted.encode();
    bad[0] = 2;
    resp.put("status-2", &bad);
    let mut bad = accepted.encode();
    bad[0] = 1;
    bad[2] = 10;
    resp.put("unknown-reason", &bad);
    resp.put("empty", &[]);

    room_seeds(&mut world, &mut client, &records);
}

/// A hex field of a JSON object.
fn jhex(v: &serde_json::Value, k: &str) -> Vec<u8> {
    hex(v[k].as_str().expect("hex field"))
}

fn project_vectors(name: &str) -> Vec<serde_json::Value> {
    let path = repo_root().join("test-vectors").join(name);
    let text = std::fs::read_to_string(path).expect("readable vectors");
    serde_json::from_str(&text).expect("the vectors parse")
}

/// Seeds of the targets for the rooms (GroupInfo, framing, SafeAAD,
/// fan-out, key layer) and the room envelopes for `hub_handle`'s policy
/// engine path. `world` and `client` have the demo provisioned.
fn room_seeds(
    world: &mut DemoWorld,
    client: &mut mimi_onion::sender::Sender,
    records: &[DemoRecord],
) {
    let mp = test_utils::message_protection_vectors().expect("vectors");
    let ex = &serde_json_excerpt()[0];
    let key_layer_vectors = project_vectors("key-layer.json");
    let negative = project_vectors("negative.json");
    let mut rooms = test_utils::rooms(world).expect("rooms");
    let room_of = |rec: &DemoRecord| -> Option<usize> {
        let info = MessageInfo::parse(&rec.message).ok()?;
        let g = info.group_id?;
        rooms.iter().position(|r| r.group_id.as_slice() == g)
    };
    let room_records: Vec<&DemoRecord> = records.iter().filter(|r| room_of(r).is_some()).collect();
    assert!(room_records.len() >= 6, "the demo sends six room messages");

    // hub_handle: the room envelopes of the demo run, named by what the
    // policy engine sees, and envelopes it must reject.
    let hub_handle = Seeds::new("hub_handle");
    for rec in &room_records {
        let what = match rec.name.as_str() {
            "proposal" => "room-proposal-with-key-layer".to_string(),
            "commit" => "room-commit-with-key-layer-and-f".to_string(),
            n => format!("room-{n}"),
        };
        hub_handle.put(&what, &rec.envelope);
    }
    let policy_key = world
        .signed_config
        .configuration
        .current(KeyUse::Policy)
        .expect("policy key")
        .clone();
    let room = &mut rooms[0];
    let membership = room.membership_keys(0).expect("keys");
    for (name, ct, break_key_layer, other_f) in [
        (
            "room-proposal-key-layer-flipped",
            ContentType::Proposal,
            true,
            false,
        ),
        ("room-commit-other-f", ContentType::Commit, false, true),
        (
            "room-commit-key-layer-flipped",
            ContentType::Commit,
            true,
            false,
        ),
    ] {
        let protected = room.protect(0, ct, b"").expect("protect");
        let mut kl = keylayer::seal(
            &policy_key,
            HpkeSuite::MANDATORY,
            room.suite.code(),
            &protected.message,
            protected.key_layer.as_ref().expect("key layer content"),
        )
        .expect("seal key layer");
        if break_key_layer {
            let mid = kl.len() / 2;
            kl[mid] ^= 1;
        }
        let f = if other_f {
            test_utils::demo_fanout_key(&room.group_id, 1)
        } else {
            room.epoch(1).expect("epoch 1").f.clone()
        };
        let sealed = client
            .seal(
                &protected.message,
                SealOptions {
                    key_layer: Some(&kl),
                    fanout_key: (ct == ContentType::Commit).then_some(f),
                    membership: Some(&membership),
                    fanout_key_signature: None,
                },
            )
            .expect("seal");
        hub_handle.put(name, &sealed.bytes);
    }

    // group_info: the official GroupInfo, the registration and the rooms'.
    let gi = Seeds::new("group_info");
    gi.put("official-mls_group_info", &jhex(ex, "mls_group_info"));
    let (_, registration) = test_utils::registration(world).expect("registration");
    gi.put_with_edges("registration", &registration);
    for r in rooms.iter() {
        let code = r.suite.code();
        gi.put(
            &format!("room-suite{code}-epoch0"),
            &r.group_info(0).expect("gi"),
        );
    }
    gi.put("room-suite1-epoch1", &rooms[0].group_info(1).expect("gi"));
    // The signer (the uint32 before signature<V>, 64 bytes for Ed25519 with
    // its 2-byte prefix) moved to a leaf that is not in the tree.
    let mut signer = registration.clone();
    let at = signer.len() - 66 - 4;
    signer[at..at + 4].copy_from_slice(&7u32.to_be_bytes());
    gi.put("signer-not-a-member", &signer);
    let mut sig = registration.clone();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    gi.put("signature-flipped", &sig);
    let mut suite9 = registration.clone();
    suite9[6..8].copy_from_slice(&9u16.to_be_bytes());
    gi.put("unknown-suite", &suite9);
    gi.put("key-package-not-group-info", &jhex(ex, "mls_key_package"));
    gi.put("empty", &[]);
    gi.put("header-only", &[0, 1, 0, 4]);

    // private_message: the RFC 9420 vectors of every suite, the official
    // excerpt, the demo's room messages and the key-layer vectors.
    let pm = Seeds::new("private_message");
    for v in &mp {
        let code = v["cipher_suite"].as_u64().expect("suite");
        for k in [
            "application_priv",
            "proposal_priv",
            "commit_priv",
            "proposal_pub",
            "commit_pub",
        ] {
            pm.put(&format!("suite{code}-{k}"), &jhex(v, k));
        }
    }
    for k in [
        "public_message_application",
        "public_message_proposal",
        "public_message_commit",
        "private_message",
    ] {
        pm.put(&format!("official-{k}"), &jhex(ex, k));
    }
    for rec in &room_records {
        pm.put(&format!("room-{}", rec.name), &rec.message);
    }
    for (i, v) in key_layer_vectors.iter().enumerate() {
        pm.put(&format!("key-layer-vector-{i}"), &jhex(v, "message"));
    }
    let s1 = &mp[0];
    pm.put_with_edges("suite1-commit_priv", &jhex(s1, "commit_priv"));
    pm.put_with_edges("suite1-commit_pub", &jhex(s1, "commit_pub"));
    pm.put("empty", &[]);
    pm.put("version-2", &[0, 2, 0, 2]);
    pm.put("nonminimal-group-id", &[0, 1, 0, 2, 0x40, 0x01, 0xaa]);
    let mut ct9 = jhex(s1, "application_priv");
    let gid_len = jhex(s1, "group_id").len();
    ct9[4 + 1 + gid_len + 8] = 9;
    pm.put("unknown-content-type", &ct9);

    // safe_aad: the authenticated_data of real messages, the project's
    // vectors (key layer, negative) and hand-built structures.
    let sa = Seeds::new("safe_aad");
    for rec in &room_records {
        if let Ok(m) = PrivateMessage::parse(&rec.message) {
            sa.put(&format!("room-{}", rec.name), &m.authenticated_data);
        }
    }
    for (i, v) in key_layer_vectors.iter().enumerate() {
        sa.put(
            &format!("key-layer-vector-{i}"),
            &jhex(v, "authenticated_data"),
        );
    }
    for (i, v) in negative.iter().enumerate() {
        if v["kind"] == "safe_aad" {
            sa.put(&format!("negative-{i}"), &jhex(v, "authenticated_data"));
        }
    }
    let c = [0xc5u8; 32];
    let item = |id: u16, data: &'static [u8]| SafeAadItem {
        component_id: id,
        data,
    };
    // `rest`: bytes after the structure, which KCM-2 refuses.
    let built = |others: &[SafeAadItem<'_>], rest: &[u8]| {
        let mut ad = build_authenticated_data(&c, others).expect("build");
        ad.extend_from_slice(rest);
        ad
    };
    sa.put_with_edges("commitment-only", &built(&[], &[]));
    sa.put("commitment-and-rest", &built(&[], b"application aad"));
    sa.put(
        "three-items",
        &built(&[item(1, b"one"), item(0xffff, b"last")], &[]),
    );
    sa.put(
        "item-before-commitment",
        &built(&[item(0x0002, &[7; 40])], b"x"),
    );
    let mut short = built(&[], &[]);
    short[0] -= 1;
    short[4] -= 1;
    short.pop();
    sa.put("commitment-31-bytes", &short);
    sa.put("empty", &[]);
    sa.put("no-items", &[0]);
    sa.put("nonminimal-prefix", &[0x40, 0x00]);
    sa.put("reserved-prefix", &[0xc0, 0, 0, 0]);

    // fanout_member: the fan-out messages of the demo run (room 1's
    // epoch 0 ones are delivered; epoch 1 and the other rooms' are
    // buffered), the project's fan-out vectors, and messages sealed under
    // room 1's epoch-0 keys that the member must drop.
    let fm = Seeds::new("fanout_member");
    let mut delivered = None;
    for rec in &room_records {
        if let Some(f) = rec.fanouts.first() {
            fm.put(&format!("room-{}", rec.name), f);
            if rec.name == "application" {
                delivered = Some(f.clone());
            }
        }
    }
    for (i, v) in project_vectors("fanout.json").iter().enumerate() {
        fm.put(&format!("vector-{i}"), &jhex(v, "fanout_message"));
    }
    for (i, v) in negative.iter().enumerate() {
        if v["kind"] == "fanout" {
            fm.put(&format!("negative-{i}"), &jhex(v, "fanout_message"));
        }
    }
    let delivered = delivered.expect("the room application was fanned out");
    fm.put_with_edges("room-application-edges", &delivered);
    let mut tag = delivered.clone();
    let last = tag.len() - 1;
    tag[last] ^= 0x80;
    fm.put("room-application-tag-flipped", &tag);
    let mut check = delivered.clone();
    check[20] ^= 1;
    fm.put("room-application-check-flipped", &check);
    let keys = rooms[0].membership_keys(0).expect("keys");
    let nonce = [0x42u8; 12];
    let seal = |m: &[u8]| keys.seal_with_nonce(m, nonce).expect("seal");
    fm.put(
        "sealed-official-proposal_pub",
        &seal(&jhex(s1, "proposal_pub")),
    );
    fm.put("sealed-empty-message", &seal(&[]));
    fm.put("sealed-malformed-mls", &seal(&[0, 1, 0, 2, 0xff]));
    // A room message whose authenticated_data lost the key commitment.
    let app = room_records
        .iter()
        .find(|r| r.name == "application")
        .expect("room application");
    let mut m = PrivateMessage::parse(&app.message).expect("private message");
    m.authenticated_data.clear();
    fm.put(
        "sealed-room-application-no-commitment",
        &seal(&m.encode().expect("encode")),
    );
    // The official PublicMessage moved to room 1's group and epoch 0: its
    // membership tag cannot verify.
    let mut p = PublicMessage::parse(&jhex(s1, "proposal_pub")).expect("public message");
    p.content.group_id = rooms[0].group_id.clone();
    p.content.epoch = 0;
    fm.put(
        "sealed-public-message-in-room",
        &seal(&p.encode().expect("encode")),
    );
    let min = seal(&[]);
    fm.put("min-length", &min);
    fm.put("min-length-minus-1", &min[..min.len() - 1]);
    fm.put("empty", &[]);

    // key_layer: key layers for the target's fixed message (the room
    // proposal), the project's key-layer vectors (other policy keys),
    // framing edge cases, and the fixed message itself (as a message).
    let kl = Seeds::new("key_layer");
    let message = fuzzing::key_layer_message();
    let mut r = test_utils::rooms(world).expect("rooms").remove(0);
    let protected = r
        .protect_with(0, ContentType::Proposal, &[], [0x5a; 4])
        .expect("protect");
    assert_eq!(
        protected.message, message,
        "the fixed message is deterministic"
    );
    let content = protected.key_layer.expect("key layer content");
    let sealed = keylayer::seal(&policy_key, HpkeSuite::MANDATORY, 1, message, &content)
        .expect("seal key layer");
    let keys = world.hub.policy().keys();
    keylayer::open(keys.iter(), 1, message, &sealed).expect("the seed opens");
    kl.put_with_edges("policy-key-proposal", &sealed);
    let mut key_id = sealed.clone();
    key_id[0] = 2;
    kl.put("unknown-key-id", &key_id);
    let mut chacha = sealed.clone();
    chacha[6] = 3;
    kl.put("suite-not-offered", &chacha);
    let mut p256 = sealed.clone();
    p256[2] = 0x10;
    kl.put("p256-kem-short-enc", &p256);
    for (i, v) in key_layer_vectors.iter().enumerate() {
        kl.put(&format!("vector-{i}"), &jhex(v, "key_layer"));
    }
    kl.put("fixed-message-as-message", message);
    kl.put("room-application-as-message", &app.message);
    kl.put("header-only", &sealed[..7]);
    kl.put("empty", &[]);
}

/// Seals a hub-layer plaintext to demo hub key 1 (X25519, AES-128-GCM)
/// as the sender would, without the sender's checks on its content. The
/// plaintext is made by `content` from the header bytes and `enc` (which a
/// membership proof covers).
fn seal_raw(
    world: &DemoWorld,
    token: RoutingToken,
    content: impl FnOnce(&[u8], &[u8]) -> Vec<u8>,
) -> Vec<u8> {
    use hpke_rs::hpke_types::{AeadAlgorithm, KdfAlgorithm, KemAlgorithm};
    let suite = HpkeSuite::X25519Aes128Gcm;
    let key = world
        .signed_config
        .configuration
        .key(KeyUse::Hub, 1)
        .expect("hub key 1");
    let header = OuterHeader {
        token,
        key_id: 1,
        suite,
    };
    let mut hpke = hpke_rs::Hpke::<hpke_rs_rust_crypto::HpkeRustCrypto>::new(
        hpke_rs::Mode::Base,
        KemAlgorithm::DhKem25519,
        KdfAlgorithm::HkdfSha256,
        AeadAlgorithm::Aes128Gcm,
    );
    let pk = hpke_rs::HpkePublicKey::new(key.public_key.0.clone());
    let (enc, mut ctx) = hpke
        .setup_sender(&pk, &header.hpke_info(), None, None, None)
        .expect("setup");
    let header_bytes = header.to_bytes();
    let plaintext = content(&header_bytes, &enc);
    let sealed = ctx.seal(&header_bytes, &plaintext).expect("seal");
    Envelope::encode(&header, &enc, &sealed).expect("encode")
}

fn serde_json_excerpt() -> Vec<serde_json::Value> {
    serde_json::from_str(include_str!(
        "../../../test-vectors/mls/messages-excerpt.json"
    ))
    .expect("the excerpt parses")
}
