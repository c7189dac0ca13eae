//! Group `handshake`: sealing a PrivateMessage commit (key layer sealed to
//! the demo policy key with `keylayer::seal`, then `Sender::seal` with the
//! key layer and F) vs two raw hpke-rs single-shot seals (the message to
//! the hub key, a 256-byte key-layer plaintext to the policy key).

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mimi_onion::config::KeyUse;
use mimi_onion::keylayer::{self, KeyLayerContent};
use mimi_onion::mls::message::ContentType;
use mimi_onion::secret::Secret;
use mimi_onion::sender::SealOptions;
use mimi_onion::suite::HpkeSuite;
use mimi_onion::wire::KEY_LAYER_PLAINTEXT_LEN;

fn handshake(c: &mut Criterion) {
    let (world, mut client) = common::world();
    let keys = common::epoch_keys();
    let f_next = common::f_of(common::EPOCH + 1);
    let (_, hub_pk) = common::hub_key_pair(&world);
    let policy = world
        .signed_config
        .configuration
        .current(KeyUse::Policy)
        .expect("policy key")
        .clone();
    let policy_pk = hpke_rs::HpkePublicKey::new(policy.public_key.0.clone());
    let (info, aad) = common::info_aad();
    let key_layer_aad = vec![0x02; 64];
    let key_layer_pt = vec![0x03; KEY_LAYER_PLAINTEXT_LEN];
    let mut hpke = common::raw_hpke();
    let content = KeyLayerContent {
        leaf_index: 1,
        key: Secret::from_slice(&[0x11; 16]),
        nonce: Secret::from_slice(&[0x22; 12]),
        f_signature: vec![0x33; 64],
    };

    let mut group = c.benchmark_group("handshake");
    for app_len in common::SIZES {
        let message =
            common::private_message(common::GROUP, common::EPOCH, ContentType::Commit, app_len);
        let label = common::size_label(app_len);
        group.throughput(Throughput::Bytes(message.len() as u64));

        group.bench_function(BenchmarkId::new("mimi-onion", &label), |b| {
            b.iter(|| {
                let message = black_box(&message);
                let key_layer =
                    keylayer::seal(&policy, HpkeSuite::X25519Aes128Gcm, 1, message, &content)
                        .expect("key layer");
                let opts = SealOptions {
                    key_layer: Some(&key_layer),
                    fanout_key: Some(f_next.clone()),
                    membership: Some(&keys),
                    fanout_key_signature: None,
                };
                client.seal(message, opts).expect("seal")
            });
        });

        group.bench_function(BenchmarkId::new("raw-hpke-x2", &label), |b| {
            b.iter(|| {
                let key_layer = hpke
                    .seal(
                        &policy_pk,
                        &info,
                        &key_layer_aad,
                        black_box(&key_layer_pt),
                        None,
                        None,
                        None,
                    )
                    .expect("hpke seal");
                let hub_layer = hpke
                    .seal(&hub_pk, &info, &aad, black_box(&message), None, None, None)
                    .expect("hpke seal");
                (key_layer, hub_layer)
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = handshake
}
criterion_main!(benches);
