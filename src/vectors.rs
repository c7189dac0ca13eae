//! Test vectors for implementations in other languages (spec appendix
//! "Test Vectors"): a deterministic generator and a verifier.
//!
//! Every input comes from a fixed seed (`SHA-256("mimi-onion vectors v1: "
//! || name)`), HPKE ephemeral keys are replayed from the listed `ikm_e`
//! through the test-only [`crate::replay`] provider, and signatures are
//! deterministic (Ed25519; ECDSA P-256 with RFC 6979), so the output is
//! byte-identical run to run. Large messages appear as a length and a seed;
//! both sides expand them with [`expand_seed`].
//!
//! Compiled for tests and with the `vectors` feature only.

use std::path::Path;

use hpke_rs::{Hpke, HpkePublicKey, Mode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::codec::put_vec;
use crate::commitment::{build_authenticated_data, CommitmentInput, KEY_COMMITMENT_COMPONENT};
use crate::config::{
    app_data_dictionary_extension, AppDataDictionary, HubConfiguration, HubSigningKey, KeyUse,
    SignedHubConfiguration,
};
use crate::error::{Error, Res};
use crate::fanout::{
    fanout_key, fanout_key_tbs, fanout_padded_len, sign_fanout_key, verify_fanout_key, EpochKeys,
    FanoutMessage,
};
use crate::hub::open_hub_layer;
use crate::keylayer;
use crate::keys::HubKeyPair;
use crate::mls::message::ContentType;
use crate::padding::padded_length;
use crate::profile::HandshakeProfile;
use crate::replay::{ReplayCrypto, ReplayRng};
use crate::response::{self, HubResponse, RejectReason, Status, RESPONSE_TOKENS};
use crate::secret::Secret;
use crate::sender::{seal_envelope, HubLayerFields, Membership};
use crate::suite::HpkeSuite;
use crate::test_utils::{from_hex, room::Room, to_hex};
use crate::token::{RoutingToken, TokenKey, TokenKeys, UNROUTABLE_CODEPOINT};
use crate::wire::{
    Envelope, HubLayerContent, OuterHeader, HEADER_LEN, KEY_ID_OFFSET, TOKEN_OFFSET,
};

/// The vector files, in the order they are written.
pub const FILES: [&str; 8] = [
    "padding.json",
    "tokens.json",
    "hub-configuration.json",
    "envelopes.json",
    "key-layer.json",
    "fanout.json",
    "negative.json",
    "disputes.json",
];

/// Messages at or above this length appear as a length and a seed.
pub const LARGE: usize = 1024;

/// `SHA-256("mimi-onion vectors v1: " || name)`.
pub fn seed(name: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mimi-onion vectors v1: ");
    h.update(name.as_bytes());
    h.finalize().into()
}

/// Expands a seed to `len` bytes: `SHA-256(seed || uint32(i))` for i = 0,
/// 1, ..., concatenated and truncated.
pub fn expand_seed(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut i: u32 = 0;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(i.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        i = i.wrapping_add(1);
    }
    out.truncate(len);
    out
}

fn ids(s: HpkeSuite) -> Value {
    let (k, d, a) = s.ids();
    json!([k, d, a])
}

fn hex_or_digest(bytes: &[u8]) -> Value {
    if bytes.len() >= LARGE {
        json!({ "length": bytes.len(), "sha256": to_hex(&Sha256::digest(bytes)) })
    } else {
        json!(to_hex(bytes))
    }
}

fn replay_hpke(suite: HpkeSuite, ikm_e: &[u8]) -> Hpke<ReplayCrypto> {
    let (kem, kdf, aead) = suite.hpke_types();
    Hpke::new_with_rng(Mode::Base, kem, kdf, aead, ReplayRng::new(ikm_e))
}

fn hub_key(key_id: u8, key_use: KeyUse, suite: HpkeSuite, ikm: &[u8]) -> Res<HubKeyPair> {
    HubKeyPair::derive(key_id, key_use, &[suite], ikm, u64::MAX)
}

fn io(_: std::io::Error) -> Error {
    Error::Usage("cannot read or write the vector directory")
}

/// Writes every vector file into `dir`.
pub fn generate(dir: &Path) -> Res<()> {
    std::fs::create_dir_all(dir).map_err(io)?;
    let files: [(&str, Value); 8] = [
        (FILES[0], padding()?),
        (FILES[1], tokens()?),
        (FILES[2], hub_configuration()?),
        (FILES[3], envelopes()?),
        (FILES[4], key_layers()?),
        (FILES[5], fanouts()?),
        (FILES[6], negatives()?),
        (FILES[7], disputes()?),
    ];
    for (name, value) in files {
        let text = serde_json::to_string_pretty(&value).map_err(|_| Error::Usage("json"))?;
        std::fs::write(dir.join(name), text + "\n").map_err(io)?;
    }
    Ok(())
}

fn padding() -> Res<Value> {
    let lengths = [
        0usize,
        1,
        63,
        64,
        100,
        255,
        1000,
        4096,
        16383,
        16384,
        65536,
        1 << 20,
    ];
    Ok(Value::Array(
        lengths
            .iter()
            .map(|&n| {
                json!({
                    "message_length": n,
                    "padded_length": padded_length(n),
                    "fanout_padded_length": fanout_padded_len(n),
                })
            })
            .collect(),
    ))
}

fn tokens() -> Res<Value> {
    let mut out = Vec::new();
    for (i, (cp, shard)) in [(0u8, 0u32), (1, 5), (3, 15), (6, 4_000_000_000)]
        .iter()
        .enumerate()
    {
        let s = seed(&format!("token {i}"));
        let mut key = [0u8; 16];
        key.copy_from_slice(&s[..16]);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&s[16..28]);
        let config_random = s[28] & 0x1f;
        let k = TokenKey::new(*cp, key, u64::MAX)?;
        let t = k.issue_with(*shard, nonce, config_random);
        let shard_count = 16u32;
        out.push(json!({
            "codepoint": cp,
            "token_key": to_hex(&key),
            "shard_id": shard,
            "nonce": to_hex(&nonce),
            "config_random": config_random,
            "token": to_hex(&t.0),
            "shard_count": shard_count,
            "route": if *shard < shard_count { json!(shard) } else { Value::Null },
        }));
    }
    let mut u = expand_seed(&seed("unroutable token"), 17);
    u[0] = (UNROUTABLE_CODEPOINT << 5) | (u[0] & 0x1f);
    out.push(
        json!({ "codepoint": UNROUTABLE_CODEPOINT, "token": to_hex(&u), "route": Value::Null }),
    );
    Ok(Value::Array(out))
}

fn signing_key(name: &str) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&seed(name))
}

fn hub_configuration() -> Res<Value> {
    let sk = signing_key("configuration signing key");
    let component = HubSigningKey::ed25519(&sk.verifying_key());
    let dict = AppDataDictionary::with_hub_signing_key(&component)?;
    let mut keys = Vec::new();
    let mut key_json = Vec::new();
    for (i, (use_, suite)) in [
        (KeyUse::Hub, HpkeSuite::X25519Aes128Gcm),
        (KeyUse::Hub, HpkeSuite::P256Aes128Gcm),
        (KeyUse::Policy, HpkeSuite::X25519ChaCha20Poly1305),
    ]
    .iter()
    .enumerate()
    {
        let ikm = seed(&format!("configuration key {i}"));
        let mut pair = HubKeyPair::derive((i as u8) + 1, *use_, &[*suite], &ikm, 4_102_444_800)?;
        if *use_ == KeyUse::Hub && *suite == HpkeSuite::X25519Aes128Gcm {
            pair.config
                .symmetric
                .push(crate::config::SymmetricAlgorithm {
                    kdf_id: 1,
                    aead_id: 3,
                });
        }
        key_json.push(json!({
            "key_id": pair.config.key_id,
            "key_use": pair.config.key_use,
            "kem_id": pair.config.kem_id,
            "ikm": to_hex(&ikm),
            "public_key": to_hex(&pair.config.public_key.0),
            "symmetric": pair.config.symmetric.iter().map(|s| json!([s.kdf_id, s.aead_id])).collect::<Vec<_>>(),
            "not_after": pair.config.not_after,
        }));
        keys.push(pair.config.clone());
    }
    let configuration = HubConfiguration { serial: 7, keys };
    let signed = configuration.clone().sign(&sk)?;
    use tls_codec::Serialize as _;
    Ok(json!([{
        "signature_scheme": crate::config::SIGNATURE_SCHEME_ED25519,
        "signing_key_seed": to_hex(&seed("configuration signing key")),
        "signing_public_key": to_hex(&sk.verifying_key().to_bytes()),
        "hub_signing_key_component": to_hex(&component.tls_serialize_detached()?),
        "app_data_dictionary": to_hex(&dict.to_bytes()?),
        "group_context_extension": to_hex(&app_data_dictionary_extension(&dict)?),
        "keys": key_json,
        "configuration": to_hex(&configuration.tls_serialize_detached()?),
        "signature": to_hex(&signed.signature.0),
        "signed_configuration": to_hex(&signed.to_bytes()?),
        "verify_at": 1_800_000_000u64,
    }]))
}

/// One envelope with every intermediate, and its response.
struct EnvelopeCase {
    suite: HpkeSuite,
    name: String,
    message: Vec<u8>,
    key_layer: Vec<u8>,
    fanout_key: Option<Secret>,
    /// The committer's signature over F (a PublicMessage commit, PRF-4).
    fanout_key_signature: Vec<u8>,
    /// F of the message's epoch, for a member-sent message's membership
    /// proof (HUB-11); `None`: 16 bytes of filler.
    membership_f: Option<Secret>,
    status: Status,
}

fn envelope_entry(case: &EnvelopeCase) -> Res<(Value, Vec<u8>)> {
    let hub_ikm = seed(&format!("hub key {:?}", case.suite));
    let pair = hub_key(1, KeyUse::Hub, case.suite, &hub_ikm)?;
    let s = seed(&format!("envelope {}", case.name));
    let mut token = [0u8; 17];
    token.copy_from_slice(&expand_seed(&seed(&format!("token {}", case.name)), 17));
    let header = OuterHeader {
        token: RoutingToken(token),
        key_id: 1,
        suite: case.suite,
    };
    let ikm_e = seed(&format!("ikm_e {}", case.name));
    let mut proof = [0u8; 16];
    proof.copy_from_slice(&seed(&format!("membership filler {}", case.name))[..16]);
    let member_keys = case
        .membership_f
        .as_ref()
        .map(|f| EpochKeys::derive(f, 0))
        .transpose()?;
    let membership = match &member_keys {
        Some(k) => Membership::Keys(k),
        None => Membership::Filler(proof),
    };
    let parts = seal_envelope(
        &ikm_e,
        &pair.config,
        header,
        &case.message,
        membership,
        HubLayerFields {
            key_layer: &case.key_layer,
            fanout_key: case.fanout_key.clone(),
            fanout_key_signature: &case.fanout_key_signature,
        },
    )?;
    // The sender seals in place and keeps no plaintext: the vector's
    // padded plaintext is the same encoding made again.
    let padded_plaintext = crate::wire::HubLayerContent {
        message: &case.message,
        membership_proof: parts.membership_proof,
        key_layer: &case.key_layer,
        fanout_key: case.fanout_key.clone(),
        fanout_key_signature: &case.fanout_key_signature,
    }
    .encode_padded()?;
    let nr = response::response_nonce_len(case.suite);
    let response_nonce = expand_seed(&seed(&format!("response nonce {}", case.name)), nr);
    let tokens: [RoutingToken; RESPONSE_TOKENS] = core::array::from_fn(|i| {
        let mut t = [0u8; 17];
        t.copy_from_slice(&expand_seed(
            &seed(&format!("response token {} {i}", case.name)),
            17,
        ));
        RoutingToken(t)
    });
    let resp = HubResponse {
        status: case.status,
        tokens,
    };
    let (key, nonce) = response::response_key_nonce(
        case.suite,
        &parts.response_secret,
        &parts.enc,
        &response_nonce,
    )?;
    let response_bytes = response::seal_with_nonce(
        case.suite,
        &parts.response_secret,
        &parts.enc,
        &resp,
        response_nonce.clone(),
    )?;
    let message = if case.message.len() >= LARGE {
        json!({ "length": case.message.len(), "seed": to_hex(&s) })
    } else {
        json!(to_hex(&case.message))
    };
    let (status, reason) = match case.status {
        Status::Accepted => (0u8, 0u16),
        Status::Rejected(r) => (1, r.code()),
    };
    Ok((
        json!({
            "name": case.name,
            "hpke_suite": ids(case.suite),
            "key_id": 1,
            "hub_ikm": to_hex(&hub_ikm),
            "hub_public_key": to_hex(&pair.config.public_key.0),
            "token": to_hex(&token),
            "ikm_e": to_hex(&ikm_e),
            "message": message,
            "membership_fanout_key": case.membership_f.as_ref().map(|f| to_hex(f.expose())),
            "membership_proof": to_hex(&parts.membership_proof),
            "key_layer": to_hex(&case.key_layer),
            "fanout_key": case.fanout_key.as_ref().map(|f| to_hex(f.expose())),
            "fanout_key_signature": to_hex(&case.fanout_key_signature),
            "header": to_hex(&parts.header.to_bytes()),
            "info": to_hex(&parts.info),
            "aad": to_hex(&parts.header.to_bytes()),
            "enc": to_hex(&parts.enc),
            "padded_length": padded_plaintext.len(),
            "padded_plaintext": hex_or_digest(&padded_plaintext),
            "envelope": hex_or_digest(&parts.bytes),
            "response": {
                "exported_secret": to_hex(parts.response_secret.expose()),
                "response_nonce": to_hex(&response_nonce),
                "aead_key": to_hex(key.expose()),
                "aead_nonce": to_hex(nonce.expose()),
                "status": status,
                "reason": reason,
                "tokens": tokens.iter().map(|t| to_hex(&t.0)).collect::<Vec<_>>(),
                "content": to_hex(&resp.encode()),
                "response": to_hex(&response_bytes),
            },
        }),
        parts.bytes,
    ))
}

/// A room of the demo, whose GroupContext carries the vectors' signing key.
fn room(code: u16) -> Res<Room> {
    let sk = signing_key("configuration signing key");
    Room::new(code, &HubSigningKey::ed25519(&sk.verifying_key()))
}

/// The room of [`room`] with public handshakes, under its own group id.
fn public_room(code: u16) -> Res<Room> {
    let sk = signing_key("configuration signing key");
    let private = room(code)?;
    let mut group_id = private.group_id.clone();
    group_id.extend_from_slice(b" public handshakes");
    Room::with_profile(
        code,
        &HubSigningKey::ed25519(&sk.verifying_key()),
        Some(group_id),
        HandshakeProfile::Public,
    )
}

fn envelope_cases() -> Res<Vec<EnvelopeCase>> {
    let mut cases = Vec::new();
    for suite in HpkeSuite::ALL {
        let tag = match suite {
            HpkeSuite::X25519Aes128Gcm => "x25519-aes128gcm",
            HpkeSuite::X25519ChaCha20Poly1305 => "x25519-chacha20poly1305",
            _ => "p256-aes128gcm",
        };
        let mut r = room(1)?;
        let small = r.protect_with(
            0,
            ContentType::Application,
            b"a small application message",
            [1, 2, 3, 4],
        )?;
        cases.push(EnvelopeCase {
            suite,
            name: format!("{tag} empty"),
            message: Vec::new(),
            key_layer: Vec::new(),
            fanout_key: None,
            fanout_key_signature: Vec::new(),
            membership_f: None,
            status: Status::Rejected(RejectReason::MalformedMessage),
        });
        cases.push(EnvelopeCase {
            suite,
            name: format!("{tag} small"),
            message: small.message,
            key_layer: Vec::new(),
            fanout_key: None,
            fanout_key_signature: Vec::new(),
            membership_f: Some(r.epoch(0)?.f.clone()),
            status: Status::Accepted,
        });
        let large_seed = seed(&format!("envelope {tag} large"));
        cases.push(EnvelopeCase {
            suite,
            name: format!("{tag} large"),
            message: expand_seed(&large_seed, 70_000),
            key_layer: Vec::new(),
            fanout_key: None,
            fanout_key_signature: Vec::new(),
            membership_f: None,
            status: Status::Rejected(RejectReason::MalformedMessage),
        });
    }
    // A commit with its key layer and F, under the mandatory suite.
    let (commit, kl, f) = commit_with_key_layer(1)?;
    let f0 = room(1)?.epoch(0)?.f.clone();
    cases.push(EnvelopeCase {
        suite: HpkeSuite::MANDATORY,
        name: "x25519-aes128gcm commit".into(),
        message: commit,
        key_layer: kl,
        fanout_key: Some(f),
        fanout_key_signature: Vec::new(),
        membership_f: Some(f0.clone()),
        status: Status::Accepted,
    });
    // A PublicMessage commit of a room with public handshakes: no key
    // layer, F, and the committer's signature over F (PRF-4).
    let mut public = public_room(1)?;
    let message = public.protect_public(0, ContentType::Commit, b"")?;
    cases.push(EnvelopeCase {
        suite: HpkeSuite::MANDATORY,
        name: "x25519-aes128gcm public commit".into(),
        message,
        key_layer: Vec::new(),
        fanout_key: Some(public.epoch(1)?.f.clone()),
        fanout_key_signature: public.fanout_key_signature(0)?,
        membership_f: Some(public.epoch(0)?.f.clone()),
        status: Status::Accepted,
    });
    Ok(cases)
}

fn envelopes() -> Res<Value> {
    let mut out = Vec::new();
    for case in envelope_cases()? {
        out.push(envelope_entry(&case)?.0);
    }
    Ok(Value::Array(out))
}

fn policy_pair() -> Res<(HubKeyPair, [u8; 32])> {
    policy_pair_for(HpkeSuite::MANDATORY)
}

/// The policy key of the key-layer vectors for `suite`: key id 1 and
/// `seed("policy key")` for the mandatory suite, key ids 2 and 3 and
/// `seed("policy key P256Aes128Gcm")` / `seed("policy key
/// X25519ChaCha20Poly1305")` for the others.
fn policy_pair_for(suite: HpkeSuite) -> Res<(HubKeyPair, [u8; 32])> {
    let (key_id, ikm) = match suite {
        HpkeSuite::X25519Aes128Gcm => (1, seed("policy key")),
        HpkeSuite::P256Aes128Gcm => (2, seed("policy key P256Aes128Gcm")),
        _ => (3, seed("policy key X25519ChaCha20Poly1305")),
    };
    Ok((hub_key(key_id, KeyUse::Policy, suite, &ikm)?, ikm))
}

fn commit_with_key_layer(code: u16) -> Res<(Vec<u8>, Vec<u8>, Secret)> {
    let mut r = room(code)?;
    let p = r.protect_with(0, ContentType::Commit, b"", [5, 6, 7, 8])?;
    let (pair, _) = policy_pair()?;
    let content = p
        .key_layer
        .ok_or(Error::Usage("commit without key layer"))?;
    let ikm_e = seed(&format!("key layer ikm_e suite {code} commit"));
    let kl = keylayer::seal_with(
        &mut replay_hpke(HpkeSuite::MANDATORY, &ikm_e),
        &pair.config,
        HpkeSuite::MANDATORY,
        code,
        &p.message,
        &content,
    )?;
    Ok((p.message, kl, r.epoch(1)?.f.clone()))
}

/// DSP-2: one dispute per claim and MLS suite, by leaf 0 of the demo room,
/// of the room's PrivateMessage commit of epoch 0.
fn disputes() -> Res<Value> {
    use crate::dispute::{Dispute, DisputeClaim};
    let mut out = Vec::new();
    for code in 1..=3u16 {
        let r = room(code)?;
        let (commit, _, f) = commit_with_key_layer(code)?;
        let leaf = &r.leaves[0];
        let claims = [
            DisputeClaim::Undecryptable {
                generation: 0,
                key: Secret::new(expand_seed(&seed("dispute key"), r.suite.nk())),
                nonce: Secret::new(expand_seed(&seed("dispute nonce"), r.suite.nn())),
            },
            DisputeClaim::Unprocessable,
            DisputeClaim::WrongFanoutKey { fanout_key: f },
        ];
        for claim in claims {
            let d = Dispute::sign(r.suite, &leaf.signature_private, &commit, 0, claim)?;
            let (code_of, generation, key, nonce, fanout) = match &d.claim {
                DisputeClaim::Undecryptable {
                    generation,
                    key,
                    nonce,
                } => (
                    1,
                    *generation,
                    to_hex(key.expose()),
                    to_hex(nonce.expose()),
                    String::new(),
                ),
                DisputeClaim::Unprocessable => (2, 0, String::new(), String::new(), String::new()),
                DisputeClaim::WrongFanoutKey { fanout_key } => (
                    3,
                    0,
                    String::new(),
                    String::new(),
                    to_hex(fanout_key.expose()),
                ),
            };
            out.push(json!({
                "cipher_suite": code,
                "signature_public_key": to_hex(&leaf.signature_public),
                "commit": to_hex(&d.commit),
                "disputer": d.disputer,
                "claim": code_of,
                "generation": generation,
                "key": key,
                "nonce": nonce,
                "fanout_key": fanout,
                "dispute_tbs": to_hex(&d.tbs()?),
                "signature": to_hex(&d.signature),
                "dispute": to_hex(&d.encode()?),
            }));
        }
    }
    Ok(Value::Array(out))
}

fn key_layers() -> Res<Value> {
    let mut out = Vec::new();
    for code in 1..=3u16 {
        for (ct, guard) in [
            (ContentType::Proposal, [9u8, 9, 9, 9]),
            (ContentType::Commit, [5, 6, 7, 8]),
        ] {
            // Commits of suites 2 and 3 use the other policy suites, so
            // that every HPKE suite (and the largest key layer) appears.
            let policy_suite = match (code, ct) {
                (2, ContentType::Commit) => HpkeSuite::P256Aes128Gcm,
                (3, ContentType::Commit) => HpkeSuite::X25519ChaCha20Poly1305,
                _ => HpkeSuite::MANDATORY,
            };
            let (pair, policy_ikm) = policy_pair_for(policy_suite)?;
            let mut r = room(code)?;
            let p = r.protect_with(0, ct, b"", guard)?;
            let content = p.key_layer.as_ref().ok_or(Error::Usage("no key layer"))?;
            let input = CommitmentInput {
                suite: r.suite,
                group_id: &r.group_id,
                epoch: 0,
                leaf_index: content.leaf_index,
                key: content.key.expose(),
                final_nonce: content.nonce.expose(),
            };
            let ikm_e = seed(&format!("key layer ikm_e suite {code} {}", ct.name()));
            let kl = keylayer::seal_with(
                &mut replay_hpke(policy_suite, &ikm_e),
                &pair.config,
                policy_suite,
                code,
                &p.message,
                content,
            )?;
            let pm = crate::mls::framing::PrivateMessage::parse(&p.message)?;
            let f = (ct == ContentType::Commit)
                .then(|| r.epoch(1).map(|e| e.f.clone()))
                .transpose()?;
            out.push(json!({
                "mls_suite": code,
                "hpke_suite": ids(policy_suite),
                "content_type": ct.name(),
                "group_id": to_hex(&r.group_id),
                "epoch": 0,
                "leaf_index": content.leaf_index,
                "key": to_hex(content.key.expose()),
                "final_nonce": to_hex(content.nonce.expose()),
                "commitment_input": to_hex(&input.encode()?),
                "commitment": to_hex(&input.commitment()?),
                "authenticated_data": to_hex(&pm.authenticated_data),
                "message": to_hex(&p.message),
                "signature_public_key": to_hex(&r.leaves[1].signature_public),
                "fanout_key": f.as_ref().map(|f| to_hex(f.expose())),
                "fanout_key_tbs": f.as_ref().map(|f| fanout_key_tbs(r.suite, &r.group_id, 1, f).map(|t| to_hex(&t))).transpose()?,
                "fanout_key_signature": to_hex(&content.f_signature),
                "key_layer_plaintext": to_hex(&content.padded_bytes()?),
                "policy_key_id": pair.config.key_id,
                "policy_ikm": to_hex(&policy_ikm),
                "policy_public_key": to_hex(&pair.config.public_key.0),
                "ikm_e": to_hex(&ikm_e),
                "info": to_hex(&keylayer::key_layer_info(pair.config.key_id, policy_suite)),
                "aad": to_hex(&keylayer::key_layer_aad(code, &p.message)?),
                "key_layer": to_hex(&kl),
            }));
        }
    }
    Ok(Value::Array(out))
}

fn fanouts() -> Res<Value> {
    let mut out = Vec::new();
    for code in 1..=3u16 {
        let mut r = room(code)?;
        let e = r.epoch(0)?;
        let exporter = e.secrets.exporter_secret.clone();
        let f = fanout_key(r.suite, &exporter)?;
        let keys = EpochKeys::derive(&f, 0)?;
        let sub = |label: &[u8], len: usize| -> Res<String> {
            let hk = hkdf::Hkdf::<Sha256>::from_prk(f.expose()).map_err(|_| Error::Crypto)?;
            let mut o = vec![0u8; len];
            hk.expand(label, &mut o).map_err(|_| Error::Crypto)?;
            Ok(to_hex(&o))
        };
        let header = expand_seed(&seed(&format!("fan-out header {code}")), 25);
        let enc = expand_seed(&seed(&format!("fan-out enc {code}")), 32);
        let msg = r.protect_with(
            0,
            ContentType::Application,
            b"through the followers",
            [4, 3, 2, 1],
        )?;
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&seed(&format!("fan-out nonce {code}"))[..12]);
        let fan = keys.seal_with_nonce(&msg.message, nonce)?;
        out.push(json!({
            "mls_suite": code,
            "epoch": 0,
            "exporter_secret": to_hex(exporter.expose()),
            "fanout_key": to_hex(f.expose()),
            "membership_key": sub(crate::fanout::MEMBERSHIP_KEY_LABEL, 32)?,
            "hint_key": sub(crate::fanout::HINT_KEY_LABEL, 16)?,
            "check_key": sub(crate::fanout::CHECK_KEY_LABEL, 32)?,
            "body_key": sub(crate::fanout::BODY_KEY_LABEL, 32)?,
            "header": to_hex(&header),
            "enc": to_hex(&enc),
            "membership_proof": to_hex(&keys.membership_proof(&header, &enc)),
            "nonce": to_hex(&nonce),
            "hint": to_hex(&keys.hint(&nonce)),
            "check": to_hex(&keys.check(&nonce)),
            "message": to_hex(&msg.message),
            "fanout_message": to_hex(&fan),
        }));
    }
    Ok(Value::Array(out))
}

/// A change to a valid envelope (given the suite's `Nenc`) that makes it
/// one every implementation must reject.
type EnvelopeMutation = fn(&[u8], usize) -> Vec<u8>;

fn negatives() -> Res<Value> {
    let mut out = Vec::new();
    let cases = envelope_cases()?;
    let small = cases
        .iter()
        .find(|c| c.name == "x25519-aes128gcm small")
        .ok_or(Error::Usage("case"))?;
    let (entry, env) = envelope_entry(small)?;
    let hub_ikm = entry["hub_ikm"].clone();
    let mut push = |req: &str, kind: &str, description: &str, fields: Value| {
        let mut v = json!({
            "requirement": req,
            "kind": kind,
            "description": description,
            "hpke_suite": ids(HpkeSuite::MANDATORY),
        });
        if let (Some(o), Value::Object(f)) = (v.as_object_mut(), fields) {
            o.extend(f);
        }
        out.push(v);
    };
    // Envelopes that must not open: one row per (requirement, mutation) of
    // the valid envelope `env`.
    let n_enc = HpkeSuite::MANDATORY.n_enc();
    let envelope_mutations: [(&str, &str, EnvelopeMutation); 5] = [
        ("OUT-3", "one byte short", |e, _| e[..e.len() - 1].to_vec()),
        ("OUT-3", "a trailing byte", |e, _| [e, &[0]].concat()),
        ("OUT-1", "version 2", |e, _| [&[2], &e[1..]].concat()),
        ("OUT-4", "routing token swapped for another one", |e, _| {
            let mut v = e.to_vec();
            v[TOKEN_OFFSET..KEY_ID_OFFSET]
                .copy_from_slice(&expand_seed(&seed("another token"), 17));
            v
        }),
        (
            "OUT-3",
            "non-minimal length prefix of the sealed hub layer",
            |e, n_enc| {
                let body = HEADER_LEN + n_enc;
                let sealed = &e[body + 2..];
                let prefix = (0x8000_0000u32 | sealed.len() as u32).to_be_bytes();
                [&e[..body], &prefix[..], sealed].concat()
            },
        ),
    ];
    for (req, description, mutate) in envelope_mutations {
        push(
            req,
            "envelope",
            description,
            json!({"hub_ikm": hub_ikm, "envelope": to_hex(&mutate(&env, n_enc))}),
        );
    }
    // Hub layers that open but must be refused (HUB-2).
    for (desc, tweak) in [
        ("a non-zero padding byte", 0u8),
        ("one zero byte too many", 1),
    ] {
        let msg = &small.message;
        let content = HubLayerContent {
            message: msg,
            membership_proof: [0x11; 16],
            key_layer: &[],
            fanout_key: None,
            fanout_key_signature: &[],
        };
        let mut pt = content.encode_padded()?;
        if tweak == 0 {
            let last = pt.len() - 1;
            pt[last] = 1;
        } else {
            pt.push(0);
        }
        let ikm_e = seed(&format!("negative hub layer {tweak}"));
        let pair = hub_key(
            1,
            KeyUse::Hub,
            HpkeSuite::MANDATORY,
            &seed("hub key X25519Aes128Gcm"),
        )?;
        let header = OuterHeader {
            token: RoutingToken(
                env[TOKEN_OFFSET..KEY_ID_OFFSET]
                    .try_into()
                    .map_err(|_| Error::Usage("token"))?,
            ),
            key_id: 1,
            suite: HpkeSuite::MANDATORY,
        };
        let mut hpke = replay_hpke(HpkeSuite::MANDATORY, &ikm_e);
        let (enc, mut ctx) = hpke
            .setup_sender(
                &HpkePublicKey::new(pair.config.public_key.0.clone()),
                &header.hpke_info(),
                None,
                None,
                None,
            )
            .map_err(|_| Error::Crypto)?;
        let ct = ctx
            .seal(&header.to_bytes(), &pt)
            .map_err(|_| Error::Crypto)?;
        let bad = Envelope::encode(&header, &enc, &ct)?;
        push(
            "HUB-2",
            "hub_layer",
            desc,
            json!({"hub_ikm": hub_ikm, "ikm_e": to_hex(&ikm_e), "envelope": to_hex(&bad), "padded_plaintext": to_hex(&pt)}),
        );
    }
    // SafeAAD and commitment (HUB-9).
    let mut r = room(1)?;
    let p = r.protect_with(0, ContentType::Proposal, b"", [9, 9, 9, 9])?;
    let kl = p.key_layer.as_ref().ok_or(Error::Usage("no key layer"))?;
    let input = CommitmentInput {
        suite: r.suite,
        group_id: &r.group_id,
        epoch: 0,
        leaf_index: kl.leaf_index,
        key: kl.key.expose(),
        final_nonce: kl.nonce.expose(),
    };
    let c = input.commitment()?;
    let item = |id: u16, data: &[u8]| {
        let mut v = id.to_be_bytes().to_vec();
        put_vec(&mut v, data).map(|_| v)
    };
    let wrap = |items: Vec<Vec<u8>>| -> Res<Vec<u8>> {
        let mut out = Vec::new();
        put_vec(&mut out, &items.concat())?;
        Ok(out)
    };
    let base = json!({
        "mls_suite": 1, "group_id": to_hex(&r.group_id), "epoch": 0, "leaf_index": kl.leaf_index,
        "key": to_hex(kl.key.expose()), "final_nonce": to_hex(kl.nonce.expose()),
    });
    let with = |ad: Vec<u8>| {
        let mut v = base.clone();
        v["authenticated_data"] = json!(to_hex(&ad));
        v
    };
    // Strict SafeAAD parsing: one row per (mutation, items).
    let safe_aad_mutations = [
        (
            "the key commitment item twice",
            vec![
                item(KEY_COMMITMENT_COMPONENT, &c)?,
                item(KEY_COMMITMENT_COMPONENT, &c)?,
            ],
        ),
        (
            "items out of order",
            vec![item(KEY_COMMITMENT_COMPONENT, &c)?, item(0x0005, b"x")?],
        ),
        (
            "commitment item one byte short",
            vec![item(KEY_COMMITMENT_COMPONENT, &c[..31])?],
        ),
        ("no commitment item", vec![item(0x0005, b"x")?]),
    ];
    for (description, items) in safe_aad_mutations {
        push("HUB-9", "safe_aad", description, with(wrap(items)?));
    }
    let mut wrong = c.clone();
    wrong[0] ^= 1;
    push(
        "HUB-9",
        "safe_aad",
        "wrong commitment",
        with(build_authenticated_data(&wrong, &[])?),
    );
    // KCM-2: the right commitment, but a byte after the SafeAAD structure.
    let mut trailing = build_authenticated_data(&c, &[])?;
    trailing.push(0);
    push(
        "KCM-2",
        "safe_aad",
        "a byte after the SafeAAD structure",
        with(trailing),
    );
    // A key layer lifted onto another message (HUB-8).
    let (pair, policy_ikm) = policy_pair()?;
    let ikm_e = seed("negative lifted key layer");
    let layer = keylayer::seal_with(
        &mut replay_hpke(HpkeSuite::MANDATORY, &ikm_e),
        &pair.config,
        HpkeSuite::MANDATORY,
        1,
        &p.message,
        kl,
    )?;
    let other = r.protect_with(0, ContentType::Proposal, b"", [1, 1, 1, 1])?;
    push(
        "HUB-8",
        "key_layer",
        "key layer of one message presented with another",
        json!({
            "mls_suite": 1, "policy_ikm": to_hex(&policy_ikm), "key_layer": to_hex(&layer), "message": to_hex(&other.message),
        }),
    );
    // A bad membership proof (HUB-11).
    let f = r.epoch(0)?.f.clone();
    let keys = EpochKeys::derive(&f, 0)?;
    let (header, enc) = (&env[..HEADER_LEN], &env[HEADER_LEN..HEADER_LEN + n_enc]);
    let mut proof = keys.membership_proof(header, enc);
    proof[0] ^= 1;
    push(
        "HUB-11",
        "membership_proof",
        "one bit of the proof flipped",
        json!({
            "fanout_key": to_hex(f.expose()), "header": to_hex(header), "enc": to_hex(enc), "membership_proof": to_hex(&proof),
        }),
    );
    // A bad F signature (HUB-10): a signature over another F.
    let other_f = Secret::new(seed("another F").to_vec());
    let sig = sign_fanout_key(
        r.suite,
        r.leaves[1].signature_private.expose(),
        &r.group_id,
        1,
        &other_f,
    )?;
    let next = r.epoch(1)?.f.clone();
    push(
        "HUB-10",
        "fanout_key_signature",
        "signature over another F",
        json!({
            "mls_suite": 1, "group_id": to_hex(&r.group_id), "new_epoch": 1, "fanout_key": to_hex(next.expose()),
            "signature_public_key": to_hex(&r.leaves[1].signature_public), "fanout_key_signature": to_hex(&sig),
        }),
    );
    // A fan-out message tried with another group's keys (FAN).
    let mut r2 = room(2)?;
    let m = r2.protect_with(0, ContentType::Application, b"for room 2", [2, 2, 2, 2])?;
    let f2 = r2.epoch(0)?.f.clone();
    // The hint is the held F's, so a member tries it; the check value and
    // body are under another group's F, so the check value fails (FAN-5,
    // MEM-2) before the body is opened.
    let mut fan = EpochKeys::derive(&f2, 0)?.seal_with_nonce(&m.message, [7; 12])?;
    let held_hint = keys.hint(&[7; 12]);
    fan[12..20].copy_from_slice(&held_hint);
    push(
        "MEM-2",
        "fanout",
        "hint of the held F; check value and body under another group's F",
        json!({
            "fanout_key": to_hex(f.expose()), "fanout_message": to_hex(&fan),
        }),
    );
    let _ = FanoutMessage::parse(&fan)?;
    Ok(Value::Array(out))
}

/// Regenerates the vectors into memory and compares them with the files in
/// `dir`, then checks each file's entries through the library's decoding
/// and opening paths (not the generator's sealing path).
pub fn verify(dir: &Path) -> Res<usize> {
    let tmp = std::env::temp_dir().join(format!("mimi-onion-vectors-{}", std::process::id()));
    generate(&tmp)?;
    let mut checked = 0;
    for name in FILES {
        let have = std::fs::read(dir.join(name)).map_err(io)?;
        let want = std::fs::read(tmp.join(name)).map_err(io)?;
        if have != want {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(Error::Usage(
                "a vector file differs from the regenerated one",
            ));
        }
        let v: Value = serde_json::from_slice(&have).map_err(|_| Error::Malformed("json"))?;
        checked += v.as_array().map_or(0, Vec::len);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    checked += check_semantics(dir)?;
    Ok(checked)
}

fn field<'a>(v: &'a Value, k: &str) -> Res<&'a str> {
    v.get(k)
        .and_then(Value::as_str)
        .ok_or(Error::Malformed("vector field"))
}

fn hexf(v: &Value, k: &str) -> Res<Vec<u8>> {
    from_hex(field(v, k)?)
}

fn load(dir: &Path, name: &str) -> Res<Vec<Value>> {
    let text = std::fs::read(dir.join(name)).map_err(io)?;
    let v: Value = serde_json::from_slice(&text).map_err(|_| Error::Malformed("json"))?;
    v.as_array().cloned().ok_or(Error::Malformed("json array"))
}

fn check(ok: bool, what: &'static str) -> Res<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(what))
    }
}

fn check_semantics(dir: &Path) -> Res<usize> {
    let mut n = 0;
    for e in load(dir, "padding.json")? {
        let len = e["message_length"]
            .as_u64()
            .ok_or(Error::Malformed("len"))? as usize;
        check(
            e["padded_length"].as_u64() == Some(padded_length(len) as u64),
            "padding",
        )?;
        n += 1;
    }
    for e in load(dir, "tokens.json")? {
        let token: [u8; 17] = hexf(&e, "token")?
            .try_into()
            .map_err(|_| Error::Malformed("token"))?;
        if let Ok(k) = hexf(&e, "token_key") {
            let key: [u8; 16] = k.try_into().map_err(|_| Error::Malformed("key"))?;
            let cp = e["codepoint"].as_u64().unwrap_or(0) as u8;
            let d = TokenKeys::new(vec![TokenKey::new(cp, key, u64::MAX)?])?
                .decode(&token)
                .ok_or(Error::Usage("token"))?;
            check(
                u64::from(d.shard) == e["shard_id"].as_u64().unwrap_or(u64::MAX),
                "token shard",
            )?;
            check(to_hex(&d.nonce) == field(&e, "nonce")?, "token nonce")?;
        } else {
            check(
                RoutingToken(token).codepoint() == UNROUTABLE_CODEPOINT,
                "unroutable",
            )?;
        }
        n += 1;
    }
    for e in load(dir, "hub-configuration.json")? {
        let signed = SignedHubConfiguration::from_bytes(&hexf(&e, "signed_configuration")?)?;
        let component = HubSigningKey::from_app_data_dictionary(&hexf(&e, "app_data_dictionary")?)?;
        signed.verify(&component, e["verify_at"].as_u64().unwrap_or(0))?;
        n += 1;
    }
    for e in load(dir, "envelopes.json")? {
        let suite = suite_of(&e)?;
        let pair = hub_key(1, KeyUse::Hub, suite, &hexf(&e, "hub_ikm")?)?;
        let message = match &e["message"] {
            Value::String(s) => from_hex(s)?,
            m => expand_seed(
                &from_hex(m["seed"].as_str().unwrap_or(""))?,
                m["length"].as_u64().unwrap_or(0) as usize,
            ),
        };
        let env_bytes = match &e["envelope"] {
            Value::String(s) => from_hex(s)?,
            _ => {
                // Rebuild from the inputs and compare the digest.
                let header = OuterHeader {
                    token: RoutingToken(
                        hexf(&e, "token")?
                            .try_into()
                            .map_err(|_| Error::Malformed("token"))?,
                    ),
                    key_id: 1,
                    suite,
                };
                let proof: [u8; 16] = hexf(&e, "membership_proof")?
                    .try_into()
                    .map_err(|_| Error::Malformed("proof"))?;
                let parts = seal_envelope(
                    &hexf(&e, "ikm_e")?,
                    &pair.config,
                    header,
                    &message,
                    Membership::Filler(proof),
                    HubLayerFields {
                        key_layer: &hexf(&e, "key_layer")?,
                        ..HubLayerFields::default()
                    },
                )?;
                check(
                    to_hex(&Sha256::digest(&parts.bytes))
                        == e["envelope"]["sha256"].as_str().unwrap_or(""),
                    "envelope digest",
                )?;
                parts.bytes
            }
        };
        let env = Envelope::parse(&env_bytes)?;
        let (secret, pt) = open_hub_layer(&pair, &env)?;
        let content = HubLayerContent::parse_padded(pt.bytes())?;
        check(content.message == message.as_slice(), "hub layer message")?;
        check(
            to_hex(secret.expose()) == field(&e["response"], "exported_secret")?,
            "exported secret",
        )?;
        let resp = response::open(suite, &secret, env.enc, &hexf(&e["response"], "response")?)?;
        check(
            to_hex(&resp.encode()) == field(&e["response"], "content")?,
            "response content",
        )?;
        n += 1;
    }
    for e in load(dir, "key-layer.json")? {
        let code = e["mls_suite"].as_u64().unwrap_or(0) as u16;
        let message = hexf(&e, "message")?;
        let policy_suite = suite_of(&e)?;
        let key_id = e["policy_key_id"].as_u64().unwrap_or(0) as u8;
        let pair = hub_key(
            key_id,
            KeyUse::Policy,
            policy_suite,
            &hexf(&e, "policy_ikm")?,
        )?;
        let kl = keylayer::open(
            std::iter::once(&pair),
            code,
            &message,
            &hexf(&e, "key_layer")?,
        )?;
        let suite =
            crate::mls::suite::MlsSuite::from_code(code).ok_or(Error::Unsupported("suite"))?;
        let gid = hexf(&e, "group_id")?;
        CommitmentInput {
            suite,
            group_id: &gid,
            epoch: 0,
            leaf_index: kl.leaf_index,
            key: kl.key.expose(),
            final_nonce: kl.nonce.expose(),
        }
        .verify(&hexf(&e, "authenticated_data")?)?;
        if let Ok(tbs) = hexf(&e, "fanout_key_tbs") {
            // The file's FanoutKeyTBS is the one built from its group id,
            // the epoch the commit opens and its F, and the key layer's F
            // signature verifies over it.
            let f = Secret::new(hexf(&e, "fanout_key")?);
            check(tbs == fanout_key_tbs(suite, &gid, 1, &f)?, "fanout_key_tbs")?;
            verify_fanout_key(
                suite,
                &hexf(&e, "signature_public_key")?,
                &gid,
                1,
                &f,
                &kl.f_signature,
            )?;
        }
        n += 1;
    }
    for e in load(dir, "fanout.json")? {
        let suite =
            crate::mls::suite::MlsSuite::from_code(e["mls_suite"].as_u64().unwrap_or(0) as u16)
                .ok_or(Error::Unsupported("suite"))?;
        let f = fanout_key(suite, &Secret::new(hexf(&e, "exporter_secret")?))?;
        check(to_hex(f.expose()) == field(&e, "fanout_key")?, "F")?;
        let keys = EpochKeys::derive(&f, 0)?;
        let fan = hexf(&e, "fanout_message")?;
        let m = FanoutMessage::parse(&fan)?;
        check(keys.hint_matches(&m), "hint")?;
        check(keys.open(&m)? == hexf(&e, "message")?, "fan-out message")?;
        check(
            keys.verify_membership_proof(
                &hexf(&e, "header")?,
                &hexf(&e, "enc")?,
                &hexf(&e, "membership_proof")?,
            ),
            "membership proof",
        )?;
        n += 1;
    }
    for e in load(dir, "disputes.json")? {
        let suite =
            crate::mls::suite::MlsSuite::from_code(e["cipher_suite"].as_u64().unwrap_or(0) as u16)
                .ok_or(Error::Unsupported("suite"))?;
        let bytes = hexf(&e, "dispute")?;
        let d = crate::dispute::Dispute::parse(&bytes)?;
        check(
            to_hex(&d.tbs()?) == field(&e, "dispute_tbs")?,
            "dispute tbs",
        )?;
        check(d.commit == hexf(&e, "commit")?, "dispute commit")?;
        d.verify(suite, &hexf(&e, "signature_public_key")?)?;
        n += 1;
    }
    let (pair, _) = policy_pair()?;
    for e in load(dir, "negative.json")? {
        check(
            negative_rejected(&e, &pair),
            "a negative vector was accepted",
        )?;
        n += 1;
    }
    Ok(n)
}

fn suite_of(e: &Value) -> Res<HpkeSuite> {
    let id = |i: usize| e["hpke_suite"][i].as_u64().unwrap_or(0) as u16;
    HpkeSuite::from_ids(id(0), id(1), id(2))
}

/// True if the library rejects the negative vector `e`.
fn negative_rejected(e: &Value, policy: &HubKeyPair) -> bool {
    let run = || -> Res<()> {
        match field(e, "kind")? {
            "envelope" | "hub_layer" => {
                let pair = hub_key(1, KeyUse::Hub, HpkeSuite::MANDATORY, &hexf(e, "hub_ikm")?)?;
                let bytes = hexf(e, "envelope")?;
                let env = Envelope::parse(&bytes)?;
                let (_, pt) = open_hub_layer(&pair, &env)?;
                HubLayerContent::parse_padded(pt.bytes()).map(|_| ())
            }
            "safe_aad" => {
                let gid = hexf(e, "group_id")?;
                let key = hexf(e, "key")?;
                let nonce = hexf(e, "final_nonce")?;
                CommitmentInput {
                    suite: crate::mls::suite::MlsSuite::from_code(1).ok_or(Error::Crypto)?,
                    group_id: &gid,
                    epoch: 0,
                    leaf_index: e["leaf_index"].as_u64().unwrap_or(0) as u32,
                    key: &key,
                    final_nonce: &nonce,
                }
                .verify(&hexf(e, "authenticated_data")?)
            }
            "key_layer" => keylayer::open(
                std::iter::once(policy),
                1,
                &hexf(e, "message")?,
                &hexf(e, "key_layer")?,
            )
            .map(|_| ()),
            "membership_proof" => {
                let keys = EpochKeys::derive(&Secret::new(hexf(e, "fanout_key")?), 0)?;
                check(
                    keys.verify_membership_proof(
                        &hexf(e, "header")?,
                        &hexf(e, "enc")?,
                        &hexf(e, "membership_proof")?,
                    ),
                    "proof",
                )
            }
            "fanout_key_signature" => {
                let suite = crate::mls::suite::MlsSuite::from_code(1).ok_or(Error::Crypto)?;
                verify_fanout_key(
                    suite,
                    &hexf(e, "signature_public_key")?,
                    &hexf(e, "group_id")?,
                    1,
                    &Secret::new(hexf(e, "fanout_key")?),
                    &hexf(e, "fanout_key_signature")?,
                )
            }
            "fanout" => {
                let keys = EpochKeys::derive(&Secret::new(hexf(e, "fanout_key")?), 0)?;
                let bytes = hexf(e, "fanout_message")?;
                keys.open(&FanoutMessage::parse(&bytes)?).map(|_| ())
            }
            _ => Ok(()),
        }
    };
    run().is_err()
}

#[cfg(test)]
mod tests {
    /// The committed vectors are exactly what the generator writes, and
    /// every entry passes the library's own checks (negatives are
    /// rejected).
    #[test]
    fn committed_vectors_verify() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test-vectors");
        let n = super::verify(&dir).unwrap();
        assert!(n > 50, "{n} entries");
    }

    #[test]
    fn expand_seed_is_prefix_stable() {
        let a = super::expand_seed(b"s", 100);
        let b = super::expand_seed(b"s", 40);
        assert_eq!(&a[..40], &b[..]);
    }
}
