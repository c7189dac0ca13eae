//! Group `seal`: mimi-onion `Sender::seal` of an application PrivateMessage
//! (mandatory suite) vs one raw hpke-rs single-shot seal of the same bytes
//! to the same X25519 key vs OHTTP client request encapsulation of the
//! same bytes.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn seal(c: &mut Criterion) {
    let (world, mut client) = common::world();
    let keys = common::epoch_keys();
    let (_, pk) = common::hub_key_pair(&world);
    let (info, aad) = common::info_aad();
    let mut hpke = common::raw_hpke();
    let server = common::ohttp_server();
    let ohttp_config =
        ohttp::KeyConfig::decode(&common::ohttp_encoded_config(&server)).expect("decode");

    let mut group = c.benchmark_group("seal");
    for app_len in common::SIZES {
        let message = common::application_message(app_len);
        let label = common::size_label(app_len);
        group.throughput(Throughput::Bytes(message.len() as u64));

        group.bench_function(BenchmarkId::new("mimi-onion", &label), |b| {
            b.iter(|| {
                client
                    .seal(black_box(&message), common::app_options(&keys))
                    .expect("seal")
            });
        });

        group.bench_function(BenchmarkId::new("raw-hpke", &label), |b| {
            b.iter(|| {
                hpke.seal(&pk, &info, &aad, black_box(&message), None, None, None)
                    .expect("hpke seal")
            });
        });

        group.bench_function(BenchmarkId::new("ohttp", &label), |b| {
            b.iter_batched(
                || ohttp_config.clone(),
                |mut config| {
                    let request = ohttp::ClientRequest::from_config(&mut config).expect("client");
                    request
                        .encapsulate(black_box(&message))
                        .expect("encapsulate")
                },
                common::batch_size(app_len),
            );
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = seal
}
criterion_main!(benches);
