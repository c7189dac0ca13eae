//! Member side: the cost of one fan-out message as a function of the
//! generation its sender names (MEM-8). One real demo room (MLS suite 1);
//! the sending leaf sends application messages at successive generations
//! of its application ratchet; the member holds that one epoch and runs
//! the whole member path on each (scan, check value, body, sender data,
//! key from its sender ratchet, key commitment, decryption, signature).
//!
//! - `0`: generations 0, 1, 2, ... up to 4,095;
//! - `65535`: the member first walks the chain once to generation 61,439
//!   (with the default forward bound, one message every 1,024 generations,
//!   outside the measurement), then receives generations 61,440, 61,441,
//!   ... up to 65,535.
//!
//! Both see the same number of messages per member; when a member has
//! used up its 4,096 generations, a fresh member is made (and walked
//! again) outside the timed section. The messages are built outside the
//! timed section too. Without the member's sender ratchets every message
//! re-derived the ratchet from generation 0: at 65,535 about 400 ms per
//! message (issue 12, finding 1); with them the two figures should be
//! within 2x of each other.
//!
//! Peer, `member_generation_rederive/65535`: the key and nonce of
//! generation 65,535 re-derived from the leaf secret, the old per-message
//! cost of the ratchet alone.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mimi_onion::fanout::EpochKeys;
use mimi_onion::member::{Delivery, Member};
use mimi_onion::mls::message::ContentType;
use mimi_onion::mls::secret_tree::{leaf_key_nonce, leaf_ratchet, HashRatchet, RatchetKind};
use mimi_onion::sender::{protect_private_message, MlsSendState, PrivateContent};
use mimi_onion::test_utils::room::{Room, N_LEAVES, SENDER_LEAF};
use mimi_onion::test_utils::{self, DemoWorld};

/// Generations each member receives in the measurement.
const SPAN: u32 = 4_096;
/// The last generation of the high case.
const HIGH: u32 = 65_535;
/// The member's default forward bound: the walk's stride.
const STRIDE: u32 = 1_024;

/// The sender's application ratchet in epoch 0 of the room, and a member
/// holding that epoch whose ratchet for the sender is at `start`.
struct Chain {
    room: Room,
    keys: EpochKeys,
    /// The sender's ratchet at `start` (kept to restart from).
    at_start: HashRatchet,
    /// The sender's ratchet at the next generation to send.
    sender: HashRatchet,
    start: u32,
    member: Member,
}

impl Chain {
    fn new(room: Room, start: u32) -> Self {
        let e = room.epoch(0).expect("epoch 0");
        let mut at_start = leaf_ratchet(
            room.suite,
            &e.secrets.encryption_secret,
            N_LEAVES,
            SENDER_LEAF,
            RatchetKind::Application,
        )
        .expect("ratchet");
        let keys = room.membership_keys(0).expect("keys");
        at_start.key_nonce_at(start).expect("walk");
        let sender = at_start.clone();
        let mut chain = Chain {
            room,
            keys,
            at_start,
            sender,
            start,
            member: Member::default(),
        };
        chain.reset();
        chain
    }

    /// A fresh member, walked once to `start - 1` within the default
    /// forward bound; the sender back at `start`.
    fn reset(&mut self) {
        let mut member = Member::default();
        member.enter_epoch(self.room.suite, self.room.member_state(0).expect("state"));
        if self.start > 0 {
            let e = self.room.epoch(0).expect("epoch 0");
            let mut walker = leaf_ratchet(
                self.room.suite,
                &e.secrets.encryption_secret,
                N_LEAVES,
                SENDER_LEAF,
                RatchetKind::Application,
            )
            .expect("ratchet");
            let mut g = STRIDE.min(self.start - 1);
            loop {
                walker.key_nonce_at(g).expect("walk");
                let fan = self.fan_out_at(&walker);
                assert!(matches!(member.receive(&fan), Ok(Delivery::Delivered(_))));
                if g == self.start - 1 {
                    break;
                }
                g = (g + STRIDE).min(self.start - 1);
            }
        }
        self.member = member;
        self.sender = self.at_start.clone();
    }

    /// Generations left to this member.
    fn remaining(&self) -> u32 {
        (self.start + SPAN) - self.sender.generation()
    }

    /// The fan-out message of an application message at the ratchet's
    /// generation.
    fn fan_out_at(&self, ratchet: &HashRatchet) -> Vec<u8> {
        let e = self.room.epoch(0).expect("epoch 0");
        let generation = ratchet.generation();
        let kn = ratchet.key_nonce().expect("key");
        let p = protect_private_message(
            &MlsSendState {
                suite: self.room.suite,
                group_context: &e.context,
                sender_data_secret: &e.secrets.sender_data_secret,
                leaf_index: SENDER_LEAF,
                generation,
                key: &kn.key,
                nonce: &kn.nonce,
                reuse_guard: generation.to_be_bytes(),
                signature_private_key: &self.room.leaves[SENDER_LEAF as usize].signature_private,
            },
            &PrivateContent {
                content_type: ContentType::Application,
                content: &[0x61; 64],
                confirmation_tag: None,
                padding_len: 0,
                other_safe_aad: &[],
                omit_commitment: false,
            },
            None,
        )
        .expect("protect");
        self.keys
            .seal(&p.message, &mut rand::rng())
            .expect("fan-out")
    }

    /// The next `n` messages of the sender.
    fn next_messages(&mut self, n: u32) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                let fan = self.fan_out_at(&self.sender);
                self.sender.advance().expect("advance");
                fan
            })
            .collect()
    }

    /// Times the reception of `iters` messages at successive generations.
    fn time(&mut self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            if self.remaining() == 0 {
                self.reset();
            }
            let n = u32::try_from(left.min(u64::from(self.remaining()))).expect("n");
            let messages = self.next_messages(n);
            let t = Instant::now();
            for m in &messages {
                match self.member.receive(m) {
                    Ok(Delivery::Delivered(r)) => {
                        black_box(r.content.len());
                    }
                    other => panic!("not delivered: {other:?}"),
                }
            }
            total += t.elapsed();
            left -= u64::from(n);
        }
        total
    }
}

fn member_generation(c: &mut Criterion) {
    let world = DemoWorld::new().expect("world");
    let mut group = c.benchmark_group("member_generation");
    group.throughput(Throughput::Elements(1));
    for (label, start) in [(0u32, 0u32), (HIGH, HIGH + 1 - SPAN)] {
        let room = test_utils::rooms(&world).expect("rooms").remove(0);
        let mut chain = Chain::new(room, start);
        group.bench_with_input(BenchmarkId::from_parameter(label), &label, |b, _| {
            b.iter_custom(|iters| chain.time(iters))
        });
    }
    group.finish();
}

/// The peer: what each message at generation 65,535 cost before the
/// member kept its sender ratchets, the key and nonce re-derived from the
/// leaf secret (`leaf_key_nonce`, 65,535 ratchet steps).
fn rederive(c: &mut Criterion) {
    let world = DemoWorld::new().expect("world");
    let room = test_utils::rooms(&world).expect("rooms").remove(0);
    let secret = room
        .epoch(0)
        .expect("epoch 0")
        .secrets
        .encryption_secret
        .clone();
    let mut group = c.benchmark_group("member_generation_rederive");
    group.sample_size(10);
    group.bench_function(BenchmarkId::from_parameter(HIGH), |b| {
        b.iter(|| {
            leaf_key_nonce(
                room.suite,
                &secret,
                N_LEAVES,
                SENDER_LEAF,
                RatchetKind::Application,
                black_box(HIGH),
            )
            .expect("derive")
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = member_generation, rederive
}
criterion_main!(benches);
