//! The benches' quick mode: every comparison of the criterion benches,
//! run as interleaved rounds in one process, printed as one JSON object
//! (`--json`) or a table. CI runs it, so no bench can rot; the figures of
//! benches/README.md come from its full mode (`--rounds 31`).
//!
//!     cargo run --release -p onion-bench -- --json
//!
//! Each figure is a ratio: in every round each contender runs a batch of
//! calls (inputs made before the clock starts), one contender after the
//! other, and the figure is the median over rounds of the per-round ratio,
//! so drift of the shared machine hits both sides of a ratio alike.
//!
//! `--callgrind WORKLOAD` runs one workload's calls inside
//! `measured_region` only, for `benches/callgrind.sh`, which counts their
//! instructions (the figure that repeats on a noisy machine).

mod common;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use aes::cipher::BlockCipherDecrypt;
use aes::{Aes128, Block};
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes128Gcm;
use clap::Parser;
use hpke_rs::{Hpke, HpkePrivateKey, HpkePublicKey};
use hpke_rs_rust_crypto::HpkeRustCrypto;
use mimi_onion::balancer::Route;
use mimi_onion::fanout::EpochKeys;
use mimi_onion::member::{Delivery, EpochState, Member};
use mimi_onion::mls::framing::GroupContext;
use mimi_onion::mls::message::ContentType;
use mimi_onion::response::Status;
use mimi_onion::secret::Secret;
use mimi_onion::sender::Sender;
use mimi_onion::test_utils::{self, DemoWorld, NOW};
use serde_json::{json, Value};
use x25519_dalek::{PublicKey, StaticSecret};

/// Payload sizes of the seal and open ratios (application data bytes).
const SIZES: [usize; 5] = [64, 1 << 10, 16 << 10, 256 << 10, 1 << 20];

#[derive(Parser, Debug)]
#[command(name = "onion-bench", about = "mimi-onion's benches in quick mode")]
struct Args {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Interleaved rounds per figure (odd; the median is reported).
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Target wall time of one contender's batch in a round, milliseconds.
    #[arg(long, default_value_t = 8)]
    batch_ms: u64,
    /// Run only this workload, its calls inside `measured_region` (for
    /// callgrind): e.g. `seal:mimi-onion:1024`; see `--list`.
    #[arg(long)]
    callgrind: Option<String>,
    /// Calls of the `--callgrind` workload.
    #[arg(long, default_value_t = 20)]
    iters: usize,
    /// List the workloads `--callgrind` takes.
    #[arg(long)]
    list: bool,
    /// Time the hub per outcome instead (spec "Privacy Considerations",
    /// "Timing"): each call timed alone, then again answered at a fixed
    /// deadline after arrival; prints a markdown table.
    #[arg(long)]
    timing: bool,
    /// Samples per outcome for `--timing` (commits and registrations get a
    /// third of them: each needs a room of its own).
    #[arg(long, default_value_t = 101)]
    samples: usize,
    /// The fixed deadline of `--timing`'s second table, microseconds.
    #[arg(long, default_value_t = 2000)]
    deadline_us: u64,
}

/// One contender: makes `n` inputs (not timed), then consumes them.
trait Workload {
    fn prepare(&mut self, n: usize);
    fn run(&mut self);
}

/// A workload from two closures: `prep(n)` fills the inputs, `call(input)`
/// is one measured call.
struct Batch<I, P: FnMut(usize) -> Vec<I>, C: FnMut(I)> {
    prep: P,
    call: C,
    inputs: Vec<I>,
}

impl<I, P: FnMut(usize) -> Vec<I>, C: FnMut(I)> Workload for Batch<I, P, C> {
    fn prepare(&mut self, n: usize) {
        self.inputs = (self.prep)(n);
    }
    fn run(&mut self) {
        for input in self.inputs.drain(..) {
            (self.call)(input);
        }
    }
}

fn batch<I, P: FnMut(usize) -> Vec<I>, C: FnMut(I)>(prep: P, call: C) -> Batch<I, P, C> {
    Batch {
        prep,
        call,
        inputs: Vec::new(),
    }
}

/// A workload without inputs.
fn calls(mut f: impl FnMut()) -> impl Workload {
    batch(|n| vec![(); n], move |()| f())
}

/// The one function callgrind collects in (`--toggle-collect`).
#[inline(never)]
fn measured_region(w: &mut dyn Workload) {
    w.run();
}

/// Times `n` calls of a workload, after one untimed call: the contender
/// before it in the round leaves the allocator and the caches in its own
/// state (a trimmed heap, say), which its first call would otherwise pay.
fn time_one(w: &mut dyn Workload, n: usize) -> Duration {
    w.prepare(1);
    w.run();
    w.prepare(n);
    let t = Instant::now();
    w.run();
    t.elapsed()
}

/// Calls per batch so that the slowest contender's batch takes about
/// `budget`, from one timed call of each after a warm-up call.
fn calibrate(ws: &mut [&mut dyn Workload], budget: Duration) -> usize {
    let mut slowest = Duration::from_nanos(1);
    for w in ws.iter_mut() {
        time_one(*w, 1);
        let t = time_one(*w, 8) / 8;
        slowest = slowest.max(t);
    }
    (budget.as_nanos() / slowest.as_nanos().max(1)).clamp(1, 1 << 20) as usize
}

/// Nanoseconds per call of each contender in each round, contenders
/// interleaved within a round.
fn rounds(ws: &mut [&mut dyn Workload], args: &Args) -> Vec<Vec<f64>> {
    let n = calibrate(ws, Duration::from_millis(args.batch_ms));
    (0..args.rounds)
        .map(|_| {
            ws.iter_mut()
                .map(|w| time_one(*w, n).as_nanos() as f64 / n as f64)
                .collect()
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One ratio: median over rounds of `ours / peer`, its spread (min, max
/// over rounds), and the median times.
#[derive(Debug, Clone, Copy)]
struct Ratio {
    ratio: f64,
    min: f64,
    max: f64,
    ours_ns: f64,
    peer_ns: f64,
}

fn ratio(r: &[Vec<f64>], ours: usize, peer: usize) -> Ratio {
    let per: Vec<f64> = r.iter().map(|x| x[ours] / x[peer]).collect();
    Ratio {
        ratio: median(per.clone()),
        min: per.iter().copied().fold(f64::INFINITY, f64::min),
        max: per.iter().copied().fold(0.0, f64::max),
        ours_ns: median(r.iter().map(|x| x[ours]).collect()),
        peer_ns: median(r.iter().map(|x| x[peer]).collect()),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Everything the workloads share.
struct Fixture {
    world: DemoWorld,
    client: Sender,
    keys: EpochKeys,
    sk: HpkePrivateKey,
    pk: HpkePublicKey,
    info: Vec<u8>,
    aad: Vec<u8>,
    hpke: Hpke<HpkeRustCrypto>,
    server: ohttp::Server,
    ohttp_config: ohttp::KeyConfig,
}

impl Fixture {
    fn new() -> Self {
        let (world, client) = common::world();
        let (sk, pk) = common::hub_key_pair(&world);
        let (info, aad) = common::info_aad();
        let server = common::ohttp_server();
        let ohttp_config =
            ohttp::KeyConfig::decode(&common::ohttp_encoded_config(&server)).expect("decode");
        Fixture {
            world,
            client,
            keys: common::epoch_keys(),
            sk,
            pk,
            info,
            aad,
            hpke: common::raw_hpke(),
            server,
            ohttp_config,
        }
    }
}

/// The seal contenders at one size: mimi-onion, raw hpke-rs, OHTTP.
fn seal_workloads(fx: &mut Fixture, app_len: usize) -> Vec<Box<dyn Workload + '_>> {
    let message = common::application_message(app_len);
    let (m1, m2, m3) = (message.clone(), message.clone(), message);
    let Fixture {
        client,
        keys,
        pk,
        info,
        aad,
        hpke,
        ohttp_config,
        ..
    } = fx;
    let keys = &*keys;
    let (pk, info, aad, cfg) = (&*pk, &*info, &*aad, &*ohttp_config);
    vec![
        Box::new(calls(move || {
            black_box(
                client
                    .seal(black_box(&m1), common::app_options(keys))
                    .expect("seal"),
            );
        })),
        Box::new(calls(move || {
            black_box(
                hpke.seal(pk, info, aad, black_box(&m2), None, None, None)
                    .expect("hpke seal"),
            );
        })),
        Box::new(batch(
            move |n| vec![cfg.clone(); n],
            move |mut config: ohttp::KeyConfig| {
                let request = ohttp::ClientRequest::from_config(&mut config).expect("client");
                black_box(request.encapsulate(black_box(&m3)).expect("encapsulate"));
            },
        )),
    ]
}

/// The open contenders at one size: the hub front-end (open, rules,
/// response; `handle_owned`, which decrypts in the request's buffer) on
/// fresh envelopes with routable tokens, raw hpke-rs open,
/// OHTTP decapsulation plus response encapsulation.
fn open_workloads(fx: &mut Fixture, app_len: usize) -> Vec<Box<dyn Workload + '_>> {
    let message = common::application_message(app_len);
    let Fixture {
        world,
        client,
        keys,
        sk,
        pk,
        info,
        aad,
        hpke,
        server,
        ohttp_config,
        ..
    } = fx;
    let (enc, ct) = hpke
        .seal(pk, info, aad, &message, None, None, None)
        .expect("hpke seal");
    let mut config = ohttp_config.clone();
    let (request, _) = ohttp::ClientRequest::from_config(&mut config)
        .expect("client")
        .encapsulate(&message)
        .expect("encapsulate");
    let response = common::response_body();
    let hub = std::cell::RefCell::new(world);
    let keys = &*keys;
    let (sk, info, aad, server) = (&*sk, &*info, &*aad, &*server);
    let hpke = &*hpke;
    let hub = std::rc::Rc::new(hub);
    let hub2 = hub.clone();
    vec![
        Box::new(batch(
            move |n| {
                (0..n)
                    .map(|_| {
                        let tokens = hub.borrow().hub.issue_tokens(Some(common::GROUP));
                        client.add_tokens(Some(common::GROUP), &tokens[..1]);
                        client
                            .seal(&message, common::app_options(keys))
                            .expect("seal")
                            .bytes
                    })
                    .collect()
            },
            move |envelope: Vec<u8>| {
                let out = hub2.borrow_mut().hub.handle_owned(black_box(envelope), NOW);
                debug_assert!(out.view.is_some());
                black_box(out);
            },
        )),
        // The peers too open a copy made before the clock starts, as the
        // hub opens envelopes it has not touched since they arrived.
        Box::new(batch(
            move |n| vec![ct.clone(); n],
            move |ct: Vec<u8>| {
                black_box(
                    hpke.open(&enc, sk, info, aad, black_box(&ct), None, None, None)
                        .expect("hpke open"),
                );
            },
        )),
        Box::new(batch(
            move |n| vec![request.clone(); n],
            move |request: Vec<u8>| {
                let (body, server_response) = server
                    .decapsulate(black_box(&request))
                    .expect("decapsulate");
                black_box(body);
                black_box(server_response.encapsulate(&response).expect("response"));
            },
        )),
    ]
}

/// `LoadBalancer::route` on a routable envelope, and one AES-128 block.
fn balancer_workloads(fx: &mut Fixture) -> (Vec<Box<dyn Workload + '_>>, Vec<u8>) {
    let tokens = fx.world.hub.issue_tokens(Some(common::GROUP));
    fx.client.add_tokens(Some(common::GROUP), &tokens);
    let envelope = fx
        .client
        .seal(
            &common::application_message(64),
            common::app_options(&fx.keys),
        )
        .expect("seal")
        .bytes;
    assert!(matches!(
        fx.world.balancer.route(&envelope),
        Route::Shard(_)
    ));
    let balancer = &fx.world.balancer;
    let env = envelope.clone();
    let cipher = Aes128::new(&[0x42u8; 16].into());
    let block = Block::from([0x17u8; 16]);
    (
        vec![
            Box::new(calls(move || {
                for _ in 0..64 {
                    black_box(balancer.route(black_box(&env)));
                }
            })),
            Box::new(calls(move || {
                for _ in 0..64 {
                    let mut blk = black_box(block);
                    cipher.decrypt_block(&mut blk);
                    black_box(blk);
                }
            })),
        ],
        envelope,
    )
}

/// The whole hub path of an application message at 1 KiB (open, rules,
/// response, fan-out to the demo's two followers) against its physical
/// floor: one variable-base X25519 plus AES-128-GCM over the message.
fn hub_path_workloads(fx: &mut Fixture) -> Vec<Box<dyn Workload + '_>> {
    let message = common::application_message(1 << 10);
    let Fixture {
        world,
        client,
        keys,
        ..
    } = fx;
    let keys = &*keys;
    let hub = std::rc::Rc::new(std::cell::RefCell::new(world));
    let hub2 = hub.clone();
    let msg = message.clone();
    let mut rng = rand::rng();
    let secret = StaticSecret::random_from_rng(&mut rng);
    let peer = PublicKey::from(&StaticSecret::random_from_rng(&mut rng));
    let aead = Aes128Gcm::new(&[7u8; 16].into());
    let mut buf = vec![0u8; message.len()];
    vec![
        Box::new(batch(
            move |n| {
                (0..n)
                    .map(|_| {
                        let tokens = hub.borrow().hub.issue_tokens(Some(common::GROUP));
                        client.add_tokens(Some(common::GROUP), &tokens[..1]);
                        client
                            .seal(&msg, common::app_options(keys))
                            .expect("seal")
                            .bytes
                    })
                    .collect()
            },
            move |envelope: Vec<u8>| {
                let mut w = hub2.borrow_mut();
                let out = w.hub.handle_owned(black_box(envelope), NOW);
                let view = out.view.expect("opened");
                debug_assert_eq!(view.status, Status::Accepted);
                let fan = w
                    .hub
                    .fan_out(
                        common::GROUP,
                        common::EPOCH,
                        &view.message,
                        test_utils::FOLLOWERS,
                    )
                    .expect("fan-out");
                black_box((out.response, fan));
            },
        )),
        Box::new(calls(move || {
            black_box(black_box(&secret).diffie_hellman(black_box(&peer)));
            let tag = aead
                .encrypt_inout_detached(&[0u8; 12].into(), &[], buf.as_mut_slice().into())
                .expect("aead");
            black_box(tag);
        })),
    ]
}

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

/// A member holding `held` epochs (the room's last) receiving fresh
/// fan-out messages of the room, one application message each.
fn member_workload(held: usize) -> impl Workload {
    let world = DemoWorld::new().expect("world");
    let mut room = test_utils::rooms(&world).expect("rooms").remove(0);
    let mut member = Member::default();
    for i in 0..held.saturating_sub(1) {
        member.enter_epoch(room.suite, filler_state(i as u32, room.suite));
    }
    member.enter_epoch(room.suite, room.member_state(0).expect("state"));
    let fan_keys = room.membership_keys(0).expect("keys");
    batch(
        move |n| {
            (0..n)
                .map(|_| {
                    let message = room
                        .protect(0, ContentType::Application, &[0x61; 64])
                        .expect("protect")
                        .message;
                    fan_keys.seal(&message, &mut rand::rng()).expect("fan-out")
                })
                .collect()
        },
        move |fan: Vec<u8>| match member.receive(&fan) {
            Ok(Delivery::Delivered(r)) => {
                black_box(r);
            }
            other => panic!("not delivered: {other:?}"),
        },
    )
}

const MEMBER_HELD: usize = 1_000;

/// `--timing`: the hub's time per outcome, the measurement behind the
/// spec's timing paragraph (RSP-6 and what remains).
mod timing {
    use super::*;
    use mimi_onion::config::KeyUse;
    use mimi_onion::keylayer;
    use mimi_onion::mls::message::WireFormat;
    use mimi_onion::sender::SealOptions;
    use mimi_onion::suite::HpkeSuite;
    use mimi_onion::test_utils::store_suite;
    use mimi_onion::wire::KEY_ID_OFFSET;

    /// A room's proposal at epoch 0 with its key layer (private
    /// handshake); `break_key_layer` flips a byte of the key layer, which
    /// the policy engine then refuses.
    fn proposal(
        world: &DemoWorld,
        client: &mut Sender,
        room: &mut mimi_onion::test_utils::room::Room,
        break_key_layer: bool,
    ) -> Vec<u8> {
        let protected = room
            .protect(0, ContentType::Proposal, b"")
            .expect("proposal");
        let policy_key = world
            .signed_config
            .configuration
            .current(KeyUse::Policy)
            .expect("policy key")
            .clone();
        let mut key_layer = keylayer::seal(
            &policy_key,
            HpkeSuite::MANDATORY,
            room.suite.code(),
            &protected.message,
            protected.key_layer.as_ref().expect("key layer"),
        )
        .expect("key layer");
        if break_key_layer {
            let last = key_layer.len() - 1;
            key_layer[last] ^= 1;
        }
        let membership = room.membership_keys(0).expect("keys");
        client
            .seal(
                &protected.message,
                SealOptions {
                    key_layer: Some(&key_layer),
                    membership: Some(&membership),
                    ..SealOptions::default()
                },
            )
            .expect("seal")
            .bytes
    }

    fn median_spread(mut v: Vec<f64>) -> (f64, f64, f64) {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (at(0.5), at(0.1), at(0.9))
    }

    pub fn run(args: &Args) {
        let (mut world, mut client) = store_suite::demo_hub(
            mimi_onion::state::InMemoryHubStore::default(),
            common::GROUP,
        );
        let keys = common::epoch_keys();
        let n = args.samples.max(3);
        let heavy = (n / 3).max(3);
        let app = common::application_message(64);
        let mut next_room = 0usize;
        let fresh = |world: &DemoWorld, client: &mut Sender| {
            let tokens = world.hub.issue_tokens(Some(common::GROUP));
            client.add_tokens(Some(common::GROUP), &tokens[..1]);
            client
                .seal(&app, common::app_options(&keys))
                .expect("seal")
                .bytes
        };
        let key_package = test_utils::demo_messages()
            .expect("demo messages")
            .into_iter()
            .find(|m| {
                mimi_onion::mls::message::MessageInfo::parse(&m.bytes)
                    .is_ok_and(|i| i.wire_format == WireFormat::KeyPackage)
            });
        // Each class: the envelopes, made before any timing; a resend
        // needs its original handled first.
        let mut classes: Vec<(&str, Vec<Vec<u8>>)> = Vec::new();
        let malformed: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let mut g = fresh(&world, &mut client);
                rand::RngExt::fill(&mut rand::rng(), &mut g[..]);
                g
            })
            .collect();
        classes.push(("does not decode (random bytes)", malformed));
        classes.push((
            "unknown key id",
            (0..n)
                .map(|_| {
                    let mut e = fresh(&world, &mut client);
                    e[KEY_ID_OFFSET] ^= 0x40;
                    e
                })
                .collect(),
        ));
        classes.push((
            "HPKE open fails (flipped tag)",
            (0..n)
                .map(|_| {
                    let mut e = fresh(&world, &mut client);
                    let last = e.len() - 1;
                    e[last] ^= 1;
                    e
                })
                .collect(),
        ));
        let originals: Vec<Vec<u8>> = (0..n).map(|_| fresh(&world, &mut client)).collect();
        for e in &originals {
            world.hub.handle(e, NOW);
        }
        classes.push(("identical resend (cached response)", originals));
        classes.push((
            "application message, accepted",
            (0..n).map(|_| fresh(&world, &mut client)).collect(),
        ));
        if let Some(kp) = &key_package {
            let envs = (0..n)
                .map(|_| {
                    let opts = test_utils::seal_options(kp, None).expect("options");
                    client.seal(&kp.bytes, opts).expect("seal").bytes
                })
                .collect();
            classes.push(("KeyPackage, accepted", envs));
        }
        let mut room = store_suite::room_on(&world, next_room);
        next_room += 1;
        classes.push((
            "proposal, accepted",
            (0..n)
                .map(|_| proposal(&world, &mut client, &mut room, false))
                .collect(),
        ));
        classes.push((
            "proposal, refused by the policy engine",
            (0..n)
                .map(|_| proposal(&world, &mut client, &mut room, true))
                .collect(),
        ));
        let commits = (0..heavy)
            .map(|i| {
                let mut r = store_suite::room_on(&world, next_room + i);
                store_suite::commit(&world, &mut client, &mut r, 1)
            })
            .collect();
        classes.push(("commit, accepted", commits));
        // A registration names a room the hub does not hold yet: one
        // demo world per sample, its registration sealed to it.
        let mut registrations: Vec<(DemoWorld, Vec<u8>)> = (0..heavy)
            .map(|_| {
                let w = DemoWorld::new().expect("world");
                let mut c = w.client().expect("client");
                let (room, gi) = test_utils::registration(&w).expect("registration");
                let e = c
                    .seal(
                        &gi,
                        SealOptions {
                            fanout_key: Some(room.epoch(0).expect("epoch").f.clone()),
                            ..SealOptions::default()
                        },
                    )
                    .expect("seal")
                    .bytes;
                (w, e)
            })
            .collect();

        let deadline = Duration::from_micros(args.deadline_us);
        // Alternate plain and deadline-answered calls within each class.
        let mut rows = Vec::new();
        let mut time_class =
            |name: &str, calls: &mut dyn FnMut(usize, bool) -> Duration, len: usize| {
                let (mut plain, mut fixed) = (Vec::new(), Vec::new());
                for i in 0..len {
                    if i % 2 == 0 {
                        plain.push(calls(i, false).as_secs_f64() * 1e6);
                    } else {
                        fixed.push(calls(i, true).as_secs_f64() * 1e6);
                    }
                }
                rows.push((name.to_string(), median_spread(plain), median_spread(fixed)));
            };
        let answer = |f: &mut dyn FnMut(), at_deadline: bool| {
            let t = Instant::now();
            f();
            if at_deadline {
                if let Some(rest) = deadline.checked_sub(t.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
            t.elapsed()
        };
        for (name, envs) in classes.iter_mut() {
            let len = envs.len();
            let hub = &mut world.hub;
            time_class(
                name,
                &mut |i, d| {
                    let mut e = Some(std::mem::take(&mut envs[i]));
                    answer(
                        &mut || {
                            if let Some(e) = e.take() {
                                drop(black_box(hub.handle_owned(e, NOW)));
                            }
                        },
                        d,
                    )
                },
                len,
            );
        }
        let len = registrations.len();
        time_class(
            "registration, accepted",
            &mut |i, d| {
                let (w, e) = &mut registrations[i];
                let mut e = Some(std::mem::take(e));
                answer(
                    &mut || {
                        if let Some(e) = e.take() {
                            drop(black_box(w.hub.handle_owned(e, NOW)));
                        }
                    },
                    d,
                )
            },
            len,
        );
        println!(
            "| outcome | median µs | p10-p90 µs | answered at {} µs: median | p10-p90 |",
            args.deadline_us
        );
        println!("|---|---:|---:|---:|---:|");
        for (name, (m, lo, hi), (fm, flo, fhi)) in rows {
            println!("| {name} | {m:.1} | {lo:.1}-{hi:.1} | {fm:.1} | {flo:.1}-{fhi:.1} |");
        }
    }
}

fn workload_names() -> Vec<String> {
    let mut names = Vec::new();
    for s in SIZES {
        for c in ["mimi-onion", "raw-hpke", "ohttp"] {
            names.push(format!("seal:{c}:{s}"));
            names.push(format!("open:{c}:{s}"));
        }
    }
    names.extend(
        [
            "balancer:mimi-onion",
            "balancer:aes-block",
            "hub-path:mimi-onion",
            "hub-path:floor",
            "member:1",
            "member:1000",
        ]
        .map(String::from),
    );
    names
}

/// `--callgrind NAME`: builds the fixtures, prepares the inputs, then runs
/// `iters` calls inside [`measured_region`] only.
fn run_callgrind(name: &str, iters: usize) {
    let parts: Vec<&str> = name.split(':').collect();
    let mut fx = Fixture::new();
    let index = |c: &str| match c {
        "mimi-onion" => 0,
        "raw-hpke" | "aes-block" | "floor" => 1,
        _ => 2,
    };
    let mut w: Box<dyn Workload + '_> = match parts.as_slice() {
        ["seal", c, s] => seal_workloads(&mut fx, s.parse().expect("size")).swap_remove(index(c)),
        ["open", c, s] => open_workloads(&mut fx, s.parse().expect("size")).swap_remove(index(c)),
        ["balancer", c] => balancer_workloads(&mut fx).0.swap_remove(index(c)),
        ["hub-path", c] => hub_path_workloads(&mut fx).swap_remove(index(c)),
        ["member", h] => Box::new(member_workload(h.parse().expect("held"))),
        _ => panic!("unknown workload {name}; see --list"),
    };
    // One call outside the region warms caches and lazy state.
    w.prepare(1);
    w.run();
    w.prepare(iters);
    measured_region(&mut *w);
}

fn main() {
    let args = Args::parse();
    if args.list {
        for n in workload_names() {
            println!("{n}");
        }
        return;
    }
    if let Some(name) = &args.callgrind {
        run_callgrind(name, args.iters);
        return;
    }
    if args.timing {
        timing::run(&args);
        return;
    }
    assert!(args.rounds % 2 == 1, "--rounds must be odd");
    let started = Instant::now();
    let mut fx = Fixture::new();
    let mut out: BTreeMap<&str, Value> = BTreeMap::new();
    let mut table: Vec<String> = Vec::new();
    let mut row = |name: String, r: Ratio| {
        table.push(format!(
            "| {name} | {:.3} | {:.3}-{:.3} | {:.0} | {:.0} |",
            r.ratio, r.min, r.max, r.ours_ns, r.peer_ns
        ));
    };

    let (mut seal_hpke, mut seal_ohttp) = (BTreeMap::new(), BTreeMap::new());
    for s in SIZES {
        let mut ws = seal_workloads(&mut fx, s);
        let mut refs: Vec<&mut dyn Workload> = ws.iter_mut().map(|w| &mut **w as _).collect();
        let r = rounds(&mut refs, &args);
        let (a, b) = (ratio(&r, 0, 1), ratio(&r, 0, 2));
        row(format!("seal {s} B / raw hpke-rs seal"), a);
        row(format!("seal {s} B / OHTTP encapsulate"), b);
        seal_hpke.insert(s.to_string(), round3(a.ratio));
        seal_ohttp.insert(s.to_string(), round3(b.ratio));
    }
    out.insert("seal_vs_hpke", json!(seal_hpke));
    out.insert("seal_vs_ohttp", json!(seal_ohttp));

    let (mut open_hpke, mut open_ohttp) = (BTreeMap::new(), BTreeMap::new());
    for s in SIZES {
        let mut ws = open_workloads(&mut fx, s);
        let mut refs: Vec<&mut dyn Workload> = ws.iter_mut().map(|w| &mut **w as _).collect();
        let r = rounds(&mut refs, &args);
        let (a, b) = (ratio(&r, 0, 1), ratio(&r, 0, 2));
        row(format!("open {s} B / raw hpke-rs open"), a);
        row(format!("open {s} B / OHTTP decapsulate + response"), b);
        open_hpke.insert(s.to_string(), round3(a.ratio));
        open_ohttp.insert(s.to_string(), round3(b.ratio));
    }
    out.insert("open_vs_hpke", json!(open_hpke));
    out.insert("open_vs_ohttp", json!(open_ohttp));

    {
        let (mut ws, envelope) = balancer_workloads(&mut fx);
        let mut refs: Vec<&mut dyn Workload> = ws.iter_mut().map(|w| &mut **w as _).collect();
        let r = rounds(&mut refs, &args);
        let a = ratio(&r, 0, 1);
        row("balancer route / one AES block".into(), a);
        out.insert("balancer_vs_aes_block", json!(round3(a.ratio)));
        drop(ws);
        let balancer = &fx.world.balancer;
        let info = allocation_counter::measure(|| {
            for _ in 0..1000 {
                black_box(balancer.route(black_box(&envelope)));
            }
        });
        out.insert("balancer_allocations", json!(info.count_total / 1000));
    }

    {
        let mut ws = hub_path_workloads(&mut fx);
        let mut refs: Vec<&mut dyn Workload> = ws.iter_mut().map(|w| &mut **w as _).collect();
        let r = rounds(&mut refs, &args);
        let a = ratio(&r, 0, 1);
        row("hub path 1 KiB / floor".into(), a);
        out.insert("hub_path_vs_floor", json!(round3(a.ratio)));
    }

    {
        let mut one = member_workload(1);
        let mut many = member_workload(MEMBER_HELD);
        let mut refs: Vec<&mut dyn Workload> = vec![&mut one, &mut many];
        let r = rounds(&mut refs, &args);
        let a = ratio(&r, 1, 0);
        let per = (a.ours_ns - a.peer_ns) / (MEMBER_HELD - 1) as f64;
        row(format!("member holding {MEMBER_HELD} / holding 1"), a);
        out.insert(
            "member_ns_per_held_epoch",
            json!((per * 10.0).round() / 10.0),
        );
    }

    if args.json {
        println!("{}", serde_json::to_string(&out).expect("json"));
    } else {
        println!("| figure | ratio (median) | spread over rounds | ours ns | peer ns |");
        println!("|---|---|---|---|---|");
        for line in &table {
            println!("{line}");
        }
        for (k, v) in &out {
            println!("{k}: {v}");
        }
    }
    eprintln!(
        "onion-bench: {} rounds, {} ms batches, {:.1} s",
        args.rounds,
        args.batch_ms,
        started.elapsed().as_secs_f64()
    );
}
