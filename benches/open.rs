//! Group `open`: mimi-onion `HubFrontEnd::handle_owned` on a fresh envelope each
//! iteration (open, processing rules, fixed-size response) vs one raw
//! hpke-rs single-shot open of the same bytes with the same X25519 key vs
//! OHTTP server decapsulation plus response encapsulation.
//!
//! The hub caches responses by `enc` (RSP-4), so every iteration gets a
//! new envelope from the batch setup; setup is not measured. Each envelope
//! carries a fresh routable token, which the hub decodes and spends
//! (TOK-6), as in production.

mod common;

use mimi_onion::test_utils::NOW;
use std::cell::RefCell;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn open(c: &mut Criterion) {
    let (world, mut client) = common::world();
    let keys = common::epoch_keys();
    let (sk, pk) = common::hub_key_pair(&world);
    let (info, aad) = common::info_aad();
    let mut hpke = common::raw_hpke();
    let server = common::ohttp_server();
    let ohttp_config =
        ohttp::KeyConfig::decode(&common::ohttp_encoded_config(&server)).expect("decode");
    let response = common::response_body();
    // Setup (tokens) and routine (handle) both need the hub, one at a time.
    let world = RefCell::new(world);

    let mut group = c.benchmark_group("open");
    for app_len in common::SIZES {
        let message = common::application_message(app_len);
        let label = common::size_label(app_len);
        group.throughput(Throughput::Bytes(message.len() as u64));

        // Sanity: the hub accepts what the bench sends.
        {
            let mut w = world.borrow_mut();
            client.add_tokens(
                Some(common::GROUP),
                &w.hub.issue_tokens(Some(common::GROUP)),
            );
            let sealed = client
                .seal(&message, common::app_options(&keys))
                .expect("seal");
            let outcome = w.hub.handle(&sealed.bytes, NOW);
            let view = outcome.view.expect("hub opened the envelope");
            assert_eq!(view.status, mimi_onion::response::Status::Accepted);
            assert!(view.token.is_some(), "routable token");
        }

        group.bench_function(BenchmarkId::new("mimi-onion", &label), |b| {
            b.iter_batched(
                || {
                    let tokens = world.borrow().hub.issue_tokens(Some(common::GROUP));
                    client.add_tokens(Some(common::GROUP), &tokens[..1]);
                    client
                        .seal(&message, common::app_options(&keys))
                        .expect("seal")
                        .bytes
                },
                |envelope| {
                    world
                        .borrow_mut()
                        .hub
                        .handle_owned(black_box(envelope), NOW)
                },
                common::batch_size(app_len),
            );
        });

        let (enc, ct) = hpke
            .seal(&pk, &info, &aad, &message, None, None, None)
            .expect("hpke seal");
        group.bench_function(BenchmarkId::new("raw-hpke", &label), |b| {
            b.iter(|| {
                hpke.open(&enc, &sk, &info, &aad, black_box(&ct), None, None, None)
                    .expect("hpke open")
            });
        });

        let mut config = ohttp_config.clone();
        let (request, _) = ohttp::ClientRequest::from_config(&mut config)
            .expect("client")
            .encapsulate(&message)
            .expect("encapsulate");
        group.bench_function(BenchmarkId::new("ohttp", &label), |b| {
            b.iter(|| {
                let (body, server_response) = server
                    .decapsulate(black_box(&request))
                    .expect("decapsulate");
                black_box(body);
                server_response.encapsulate(&response).expect("response")
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = open
}
criterion_main!(benches);
