//! Group `floor`: the cost floors of DESIGN.md "Cost floors": one X25519
//! variable-base scalar multiplication (`diffie_hellman`) and one
//! fixed-base one (`PublicKey::from(&secret)`), with x25519-dalek, the
//! curve code under hpke-rs-rust-crypto.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use x25519_dalek::{PublicKey, StaticSecret};

fn floor(c: &mut Criterion) {
    let mut rng = rand::rng();
    let secret = StaticSecret::random_from_rng(&mut rng);
    let peer = PublicKey::from(&StaticSecret::random_from_rng(&mut rng));

    let mut group = c.benchmark_group("floor");
    group.bench_function("x25519-variable-base", |b| {
        b.iter(|| black_box(&secret).diffie_hellman(black_box(&peer)));
    });
    group.bench_function("x25519-fixed-base", |b| {
        b.iter(|| PublicKey::from(black_box(&secret)));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = floor
}
criterion_main!(benches);
