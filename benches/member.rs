//! Member side: the hint scan and open of one fan-out message, for a
//! member holding 10, 100, 1,000 and 10,000 groups (each with its current
//! epoch; the scan costs one AES block per held epoch). The message belongs
//! to a real demo room and goes through the whole member path: scan every
//! held epoch, check value, AES-256-GCM-SIV body, RFC 9420 decryption with
//! the key commitment and the signature. Peer: the same path with a
//! single held group, so the ratio isolates the scan.

mod common;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use mimi_onion::fanout::EpochKeys;
use mimi_onion::member::{Delivery, EpochState, Member};
use mimi_onion::mls::framing::GroupContext;
use mimi_onion::mls::message::ContentType;
use mimi_onion::secret::Secret;
use mimi_onion::test_utils::{self, DemoWorld};

fn filler_state(i: u32, suite: mimi_onion::mls::suite::MlsSuite) -> EpochState {
    let mut gid = b"bench filler group ".to_vec();
    gid.extend_from_slice(&i.to_be_bytes());
    let f = Secret::new(test_utils::sha256(&gid).to_vec());
    EpochState {
        group_context: GroupContext::new(suite, &gid, 3, &[0; 32], &[0; 32]),
        encryption_secret: Secret::from_slice(&[1; 32]),
        sender_data_secret: Secret::from_slice(&[2; 32]),
        membership_key: Secret::from_slice(&[3; 32]),
        n_leaves: 2,
        fanout: EpochKeys::derive(&f, 3).expect("keys"),
        leaf_keys: Default::default(),
    }
}

fn member_scan(c: &mut Criterion) {
    let world = DemoWorld::new().expect("world");
    let mut room = test_utils::rooms(&world).expect("rooms").remove(0);
    let fan_keys = room.membership_keys(0).expect("keys");
    let mut group = c.benchmark_group("member_scan");
    for held in [1usize, 10, 100, 1_000, 10_000] {
        let mut member = Member::default();
        for i in 0..held.saturating_sub(1) {
            member.enter_epoch(room.suite, filler_state(i as u32, room.suite));
        }
        member.enter_epoch(room.suite, room.member_state(0).expect("state"));
        assert_eq!(member.held_epochs(), held);
        group.throughput(Throughput::Elements(held as u64));
        // A member refuses a message it already delivered (MEM-5), so
        // every iteration gets a fresh one: the next generation of the
        // sender's ratchet, sealed for fan-out (setup, not measured).
        group.bench_with_input(BenchmarkId::from_parameter(held), &held, |b, _| {
            b.iter_batched(
                || {
                    let message = room
                        .protect(0, ContentType::Application, &[0x61; 64])
                        .expect("protect")
                        .message;
                    fan_keys.seal(&message, &mut rand::rng()).expect("fan-out")
                },
                |fan| match member.receive(&fan) {
                    Ok(Delivery::Delivered(r)) => r.content.len(),
                    other => panic!("not delivered: {other:?}"),
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = member_scan
}
criterion_main!(benches);
