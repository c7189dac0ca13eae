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
use crate::config::{
    AppDataDictionary, HubSigningKey, SignedHubConfiguration, HUB_SIGNING_KEY_COMPONENT,
};
use crate::demo::{demo_fanout_key, demo_messages, DemoWorld, SHARD_COUNT};
use crate::mls::message::{MessageInfo, WireFormat};
use crate::response::{response_len, HubResponse};
use crate::state::{GroupRecord, InMemoryHubState};
use crate::suite::HpkeSuite;
use crate::token::TOKEN_LEN;
use crate::wire::{Envelope, HubLayerContent, HEADER_LEN, TOKEN_OFFSET};

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

/// `config::AppDataDictionary::from_bytes` and
/// `config::HubSigningKey::from_app_data_dictionary`; each value that
/// decodes must re-encode to the bytes it came from.
pub fn app_data_dictionary(data: &[u8]) {
    let dict = AppDataDictionary::from_bytes(data);
    if let Ok(dict) = &dict {
        let encoded = dict
            .to_bytes()
            .expect("a decoded dictionary must re-encode");
        assert_eq!(encoded, data);
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
    let suite = data
        .get(..HEADER_LEN)
        .and_then(|h| {
            let id = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
            HpkeSuite::from_ids(id(19), id(21), id(23)).ok()
        })
        .unwrap_or(HpkeSuite::MANDATORY);
    response_len(suite)
}

/// The groups the demo hub hosts, as `demo::provision` sets them up: those
/// of the demo messages other than the registration's, each at its epoch,
/// with its MLS suite and F of that epoch pinned.
fn demo_groups() -> &'static [(Vec<u8>, GroupRecord)] {
    static GROUPS: OnceLock<Vec<(Vec<u8>, GroupRecord)>> = OnceLock::new();
    GROUPS.get_or_init(|| {
        let mut groups: Vec<(Vec<u8>, GroupRecord)> = Vec::new();
        for m in demo_messages().expect("the embedded demo messages parse") {
            let info = MessageInfo::parse(&m.bytes).expect("a demo message parses");
            if let (Some(g), Some(e), false) = (
                info.group_id,
                info.epoch,
                info.wire_format == WireFormat::GroupInfo,
            ) {
                if !groups.iter().any(|(have, _)| have.as_slice() == g) {
                    let mut record = GroupRecord::new(0, e, m.mls_suite);
                    record.pin_fanout_key(e, demo_fanout_key(g, e));
                    groups.push((g.to_vec(), record));
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

/// The demo hub front-end (`DemoWorld::new()`, then `world.hub.handle`),
/// with fresh hub state and the demo groups provisioned for every input so
/// that runs are reproducible: `handle` must not panic and must answer with
/// a response of the fixed size for the header's suite (RSP-1, RSP-2); an
/// envelope it opened and answered, sent again, must be answered from the
/// cache with the same bytes (RSP-4).
pub fn hub_handle(data: &[u8]) {
    // A panic in an earlier input poisons the lock; the state is reset
    // below anyway.
    let mut world = demo_world().lock().unwrap_or_else(PoisonError::into_inner);
    let hub = &mut world.hub;
    *hub.state_mut() = InMemoryHubState::new();
    for (group_id, record) in demo_groups() {
        hub.provision(group_id, record.clone());
    }
    let outcome = hub.handle(data);
    assert_eq!(outcome.response.len(), expected_response_len(data));
    assert!(!outcome.from_cache, "a fresh hub has no cache");
    if outcome.view.is_some() {
        let again = hub.handle(data);
        assert!(again.from_cache, "an identical resend must hit the cache");
        assert_eq!(again.response, outcome.response);
    }
}
