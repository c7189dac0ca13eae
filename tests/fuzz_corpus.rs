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

use mimi_onion::config::KeyUse;
use mimi_onion::config::{
    AppDataDictionary, ComponentData, HubSigningKey, SignedHubConfiguration,
    HUB_SIGNING_KEY_COMPONENT,
};
use mimi_onion::demo::{self, DemoWorld};
use mimi_onion::fanout::EpochKeys;
use mimi_onion::fuzzing;
use mimi_onion::response::{HubResponse, RejectReason, Status};
use mimi_onion::sender::SealOptions;
use mimi_onion::suite::HpkeSuite;
use mimi_onion::token::{RoutingToken, TOKEN_LEN};
use mimi_onion::wire::{Envelope, HubLayerContent, OuterHeader};

type Target = fn(&[u8]);

/// Every fuzz target, by the name of its corpus directory.
const TARGETS: [(&str, Target); 8] = [
    ("envelope", fuzzing::envelope),
    ("hub_layer", fuzzing::hub_layer),
    ("mls_message", fuzzing::mls_message),
    ("hub_configuration", fuzzing::hub_configuration),
    ("app_data_dictionary", fuzzing::app_data_dictionary),
    ("hub_response", fuzzing::hub_response),
    ("balancer_route", fuzzing::balancer_route),
    ("hub_handle", fuzzing::hub_handle),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
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
    demo::from_hex(s).expect("hex")
}

fn token(b: u8) -> RoutingToken {
    RoutingToken([b; TOKEN_LEN])
}

#[test]
#[ignore = "writes fuzz/corpus; run on demand"]
fn generate_seed_corpus() {
    let messages = demo::demo_messages().expect("demo messages");

    // Envelopes: the demo run, as `mimi-onion demo --dump` writes them, plus
    // envelopes for the hub's other paths (private handshake with a key
    // layer, wrong form, stale epoch, malformed message).
    let records = demo::run(&mut String::new(), None).expect("demo run");
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
    demo::provision(&mut world, &mut client).expect("provision");
    let mp = demo::message_protection_vectors().expect("vectors");
    let s1 = &mp[0];
    let field = |k: &str| hex(s1[k].as_str().expect("hex field"));
    let dummy_key_layer = vec![0x5a; 300];
    let group_id = field("group_id");
    let epoch: u64 = s1["epoch"].as_u64().expect("epoch");
    let keys = EpochKeys::derive(&demo::demo_fanout_key(&group_id, epoch), epoch).expect("keys");
    for (name, msg, key_layer, with_f) in [
        ("commit_priv", field("commit_priv"), true, true),
        ("proposal_priv", field("proposal_priv"), true, false),
    ] {
        let opts = SealOptions {
            key_layer: key_layer.then_some(dummy_key_layer.as_slice()),
            fanout_key: with_f.then(|| demo::demo_fanout_key(&group_id, epoch + 1)),
            membership: Some(&keys),
            ..SealOptions::default()
        };
        let sealed = client.seal(&msg, opts).expect("seal");
        hub_handle.put(name, &sealed.bytes);
    }
    // Forms the sender refuses to make, sealed by hand.
    let app = field("application_priv");
    let f = demo::demo_fanout_key(&group_id, epoch + 1);
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
        let opts = demo::seal_options(m, None).expect("seal options");
        let content = HubLayerContent {
            message: &m.bytes,
            membership_proof: [0x11; 16],
            key_layer: &[],
            fanout_key: opts.fanout_key,
        };
        let pt = content.encode_padded().expect("encode");
        hub_layer.put(&format!("demo-{}", m.name), &pt);
    }
    let commit_priv = field("commit_priv");
    let content = HubLayerContent {
        message: &commit_priv,
        membership_proof: [0x22; 16],
        key_layer: &dummy_key_layer,
        fanout_key: Some(demo::demo_fanout_key(&group_id, epoch + 1)),
    };
    let pt = content.encode_padded().expect("encode");
    hub_layer.put_with_edges("commit_priv-with-key-layer", &pt);
    let empty_msg = HubLayerContent {
        message: &[],
        membership_proof: [0; 16],
        key_layer: &[],
        fanout_key: None,
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
    serde_json::from_str(include_str!("../test-vectors/mls/messages-excerpt.json"))
        .expect("the excerpt parses")
}
