//! Fixtures shared by the bench targets: the demo hub and a client of it,
//! PrivateMessages of a given size, and the same X25519 hub key for the
//! raw HPKE and OHTTP peers.
#![allow(dead_code)]

use std::time::Duration;

use criterion::{BatchSize, Criterion};
use hpke_rs::{hpke_types, Hpke, HpkePrivateKey, HpkePublicKey, Mode};
use hpke_rs_rust_crypto::HpkeRustCrypto;
use mimi_onion::config::KeyUse;
use mimi_onion::fanout::EpochKeys;
use mimi_onion::mls::message::ContentType;
use mimi_onion::response::RESPONSE_CONTENT_LEN;
use mimi_onion::secret::Secret;
use mimi_onion::sender::{SealOptions, Sender};
use mimi_onion::state::GroupRecord;
use mimi_onion::test_utils::{self, DemoWorld};
use mimi_onion::wire::HEADER_LEN;

/// Application data sizes of the PrivateMessages every group measures.
pub const SIZES: [usize; 4] = [64, 1 << 10, 16 << 10, 256 << 10];

/// The group the benches send to (provisioned on the demo hub).
pub const GROUP: &[u8] = b"onion-bench group";
/// Its epoch on the hub.
pub const EPOCH: u64 = 7;

/// The input keying material of the demo's hub key 1 (see `demo.rs`): the
/// raw HPKE and OHTTP peers derive their key pair from it so that every
/// contender seals to the same X25519 key.
pub const HUB_KEY_IKM: &[u8] = b"mimi-onion demo ikm: hub key 1";

/// Length of the HPKE `info` mimi-onion uses for the hub layer
/// ("mimi-onion v1 hub layer" label, 0x00, version, key id, suite).
pub const INFO_LEN: usize = 32;

/// Short default timings (the whole suite in a few minutes on 2 cores);
/// command-line options after `--bench NAME` override them.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

/// Batch size for `iter_batched` at a payload size.
pub fn batch_size(app_len: usize) -> BatchSize {
    if app_len >= 16 << 10 {
        BatchSize::LargeInput
    } else {
        BatchSize::SmallInput
    }
}

/// A human label for a size.
pub fn size_label(app_len: usize) -> String {
    if app_len >= 1024 {
        format!("{}KiB", app_len / 1024)
    } else {
        format!("{app_len}B")
    }
}

/// The demo hub with [`GROUP`] provisioned at [`EPOCH`] (MLS suite 1, F
/// pinned), and a client of it. The client holds no tokens for [`GROUP`]:
/// unless a bench adds some, it seals with unroutable tokens (TOK-5),
/// which the hub does not spend.
pub fn world() -> (DemoWorld, Sender) {
    let world = DemoWorld::new().expect("demo world");
    let client = world.client().expect("demo client");
    let mut record = GroupRecord::new(0, EPOCH, 1);
    record.pin_fanout_key(EPOCH, f_of(EPOCH));
    world.hub.provision(GROUP, record).expect("provision");
    (world, client)
}

/// F of [`GROUP`] at `epoch` (the demo's stand-in derivation).
pub fn f_of(epoch: u64) -> Secret {
    test_utils::demo_fanout_key(GROUP, epoch)
}

/// The membership keys of [`GROUP`] at [`EPOCH`].
pub fn epoch_keys() -> EpochKeys {
    EpochKeys::derive(&f_of(EPOCH), EPOCH).expect("epoch keys")
}

/// Seal options for an application message of [`GROUP`]: mandatory suite,
/// membership proof under `keys`.
pub fn app_options(keys: &EpochKeys) -> SealOptions<'_> {
    SealOptions {
        membership: Some(keys),
        ..SealOptions::default()
    }
}

/// A structurally valid RFC 9420 PrivateMessage with a random ciphertext
/// of the size `app_len` bytes of application data would have.
pub use mimi_onion::test_utils::private_message;

/// An application PrivateMessage for [`GROUP`] with `app_len` bytes of
/// application data.
pub fn application_message(app_len: usize) -> Vec<u8> {
    private_message(GROUP, EPOCH, ContentType::Application, app_len)
}

/// A base-mode hpke-rs instance for DHKEM(X25519)/HKDF-SHA256/AES-128-GCM,
/// the suite mimi-onion makes mandatory.
pub fn raw_hpke() -> Hpke<HpkeRustCrypto> {
    Hpke::new(
        Mode::Base,
        hpke_types::KemAlgorithm::DhKem25519,
        hpke_types::KdfAlgorithm::HkdfSha256,
        hpke_types::AeadAlgorithm::Aes128Gcm,
    )
}

/// The demo hub key 1 pair, derived as the demo derives it; checked
/// against the public key the demo hub publishes.
pub fn hub_key_pair(world: &DemoWorld) -> (HpkePrivateKey, HpkePublicKey) {
    let (sk, pk) = raw_hpke()
        .derive_key_pair(HUB_KEY_IKM)
        .expect("derive")
        .into_keys();
    let published = world
        .signed_config
        .configuration
        .keys
        .iter()
        .find(|k| k.key_use() == Some(KeyUse::Hub) && k.key_id == 1)
        .expect("hub key 1");
    assert_eq!(
        published.public_key.0,
        pk.as_slice(),
        "demo hub key derivation changed"
    );
    (sk, pk)
}

/// An `info` and an `aad` of the sizes mimi-onion uses for the hub layer.
pub fn info_aad() -> (Vec<u8>, Vec<u8>) {
    (vec![0x69; INFO_LEN], vec![0x01; HEADER_LEN])
}

/// An OHTTP server on the same X25519 key (derived from the same input
/// keying material), offering HKDF-SHA256 with AES-128-GCM.
pub fn ohttp_server() -> ohttp::Server {
    use ohttp::hpke::{Aead, Kdf, Kem};
    let config = ohttp::KeyConfig::derive(
        1,
        Kem::X25519Sha256,
        vec![ohttp::SymmetricSuite::new(Kdf::HkdfSha256, Aead::Aes128Gcm)],
        HUB_KEY_IKM,
    )
    .expect("ohttp key config");
    ohttp::Server::new(config).expect("ohttp server")
}

/// The encoded OHTTP key configuration a client starts from.
pub fn ohttp_encoded_config(server: &ohttp::Server) -> Vec<u8> {
    server.config().encode().expect("encode ohttp config")
}

/// A response body of the size of mimi-onion's hub response content
/// (status and four tokens), for the OHTTP server to encapsulate.
pub fn response_body() -> Vec<u8> {
    vec![0x5a; RESPONSE_CONTENT_LEN]
}
