//! Group `balancer`: `LoadBalancer::route` on a real envelope (routable
//! token) vs one AES-128 block decryption with an expanded key, the floor
//! of DESIGN.md "Cost floors".

mod common;

use std::hint::black_box;

use aes::cipher::{BlockCipherDecrypt, KeyInit};
use aes::{Aes128, Block};
use criterion::{criterion_group, criterion_main, Criterion};
use mimi_onion::balancer::Route;

fn balancer(c: &mut Criterion) {
    let (world, mut client) = common::world();
    client.add_tokens(
        Some(common::GROUP),
        &world.hub.issue_tokens(Some(common::GROUP)),
    );
    let envelope = client
        .seal(
            &common::application_message(64),
            common::app_options(&common::epoch_keys()),
        )
        .expect("seal")
        .bytes;
    assert!(
        matches!(world.balancer.route(&envelope), Route::Shard(_)),
        "routable envelope"
    );
    let cipher = Aes128::new(&[0x42u8; 16].into());
    let block = Block::from([0x17u8; 16]);

    let mut group = c.benchmark_group("balancer");
    group.bench_function("mimi-onion-route", |b| {
        b.iter(|| world.balancer.route(black_box(&envelope)));
    });
    group.bench_function("aes128-decrypt-block", |b| {
        b.iter(|| {
            let mut blk = black_box(block);
            cipher.decrypt_block(&mut blk);
            blk
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = balancer
}
criterion_main!(benches);
