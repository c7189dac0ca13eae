//! FAN-7 with real processes and real stores: the fan-out of an accepted
//! message is committed with it, so a hub process killed with SIGKILL
//! after it answered `accepted` loses none; a redelivery (a lost
//! acknowledgement, across a restart) is stored once by the follower;
//! two hub processes on one PostgreSQL store deliver every message
//! exactly once, in acceptance order (FAN-4).
//!
//! `Child::kill` sends SIGKILL on Unix: the process gets no chance to
//! flush or finish anything.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use mimi_onion::mls::message::ContentType;
use mimi_onion::response::Status;
use mimi_onion::test_utils::to_hex;
use mimi_onion_service::client::{fetch_queue, tally, verify_queue, DemoRoom, HubClient};
use mimi_onion_service::keys::{read_signing_key, HubKeys};
use serde_json::Value;

const PROVIDER: &str = "fanout.example";

/// The queues of the test: follower 0 holds `bob`, follower 1 `carol` and
/// `dave`.
const QUEUES: [(usize, &str); 3] = [(0, "bob"), (1, "carol"), (1, "dave")];

struct Setup {
    dir: tempfile::TempDir,
    followers: Vec<Proc>,
    room: DemoRoom,
    key: mimi_onion::config::HubSigningKey,
}

/// Keys, a room placed on shard 0, the directory, and followers with
/// `--fail-acks` as given.
fn setup(fail_acks: [u64; 2]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let keys: HubKeys = make_keys(dir.path());
    let d = dir.path();
    let key = read_signing_key(&d.join("keys/hub-signing-key.hex")).unwrap();
    let room = rooms_on_both_shards(&keys, PROVIDER, "room-", 1).remove(0);
    let gid = format!("{PROVIDER}/{room}").into_bytes();
    let room = DemoRoom::new(&gid, &key).unwrap();
    let followers: Vec<Proc> = fail_acks
        .iter()
        .enumerate()
        .map(|(i, fail)| {
            spawn(
                &format!("follower{i}"),
                d,
                &["follower".into(), "--fail-acks".into(), fail.to_string()],
            )
        })
        .collect();
    std::fs::write(
        d.join("directory.txt"),
        format!("{0} f0 bob\n{0} f1 carol,dave\n", to_hex(&gid)),
    )
    .unwrap();
    Setup {
        dir,
        followers,
        room,
        key,
    }
}

impl Setup {
    /// A hub process of shard 0 on the SQLite store in `data`, or on the
    /// PostgreSQL store `(url, schema)`.
    fn hub(&self, name: &str, postgres: Option<(&str, &str)>, deliver: bool) -> Proc {
        let d = self.dir.path();
        let mut args: Vec<String> = vec![
            "hub".into(),
            "--keys".into(),
            path(&d.join("keys/hub-keys.json")),
            "--shard".into(),
            "0".into(),
            "--data".into(),
            path(&d.join("data")),
            "--directory".into(),
            path(&d.join("directory.txt")),
            "--trust-provider-header".into(),
            // A process that takes over from a killed one waits at most
            // this long for the dead one's delivery leases.
            "--delivery-lease-secs".into(),
            "2".into(),
        ];
        if let Some((url, schema)) = postgres {
            args.extend([
                "--postgres".into(),
                url.into(),
                "--postgres-schema".into(),
                schema.into(),
            ]);
        }
        for (i, f) in self.followers.iter().enumerate() {
            args.push("--follower".into());
            args.push(format!("f{i}={}", f.url));
        }
        if !deliver {
            args.push("--no-deliver".into());
        }
        spawn(name, d, &args)
    }

    fn client(&self, hub: &Proc) -> HubClient {
        HubClient::connect(&hub.url, &self.key, Some(PROVIDER)).unwrap()
    }

    /// Every queue holds every accepted message exactly once, in
    /// acceptance order, and each opens for a member (FAN-4, FAN-7).
    fn check_queues(&self) {
        let accepted = &self.room.accepted;
        for (f, queue) in QUEUES {
            let items = fetch_queue(&self.followers[f].url, queue).unwrap();
            let check = verify_queue(&[&self.room.room], &items).unwrap();
            assert_eq!(check.failures, Vec::<String>::new(), "{queue}");
            let (once, missing, duplicated, unknown) = tally(accepted, &check.delivered);
            assert_eq!(
                (once, missing, duplicated, unknown),
                (accepted.len(), 0, 0, 0),
                "{queue}: exactly once"
            );
            assert_eq!(items.len(), accepted.len(), "{queue}: one copy each");
            assert!(
                check.delivered == *accepted,
                "{queue}: FAN-4, in acceptance order"
            );
        }
    }
}

/// The stats of a hub process.
fn stats(hub: &Proc) -> Value {
    get_json(&hub.url, "/v1/stats")
}

/// Waits until the store holds no fan-out entry (as `hub` reads it).
fn drained(hub: &Proc, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = stats(hub);
        if s["outbox_pending"] == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not drained: {s}\n{}",
            log_of(dir, "hub")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends the room's life through `client`: registration, `apps`
/// application messages, a proposal, the commit to epoch 1, `apps` more.
/// All accepted.
fn life(room: &mut DemoRoom, client: &mut HubClient, apps: usize) {
    room.life(client, apps).unwrap();
    assert!(
        room.statuses.iter().all(|s| s == "accepted"),
        "{:?}",
        room.statuses
    );
}

/// FAN-7: a hub process that records fan-out but does not deliver it
/// (`--no-deliver`) answers `accepted` and is killed with SIGKILL; the
/// followers have nothing yet. A hub process started on the same SQLite
/// file delivers every accepted message to every queue exactly once, in
/// acceptance order. (Before FAN-7, the fan-out was written to a separate
/// file after the store transaction, and a kill in between lost it.)
#[test]
fn fan7_sigkill_after_accepted_loses_no_fanout() {
    let mut s = setup([0, 0]);
    let mut first = s.hub("hub-a", None, false);
    let mut client = s.client(&first);
    life(&mut s.room, &mut client, 3);
    let n = s.room.accepted.len();
    assert_eq!(n, 8);
    let st = stats(&first);
    assert_eq!(st["store"]["fanout"], 2 * n, "one entry per follower: {st}");
    assert_eq!(st["outbox_delivered"], 0, "{st}");
    for (f, queue) in QUEUES {
        assert!(fetch_queue(&s.followers[f].url, queue).unwrap().is_empty());
    }
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();

    let second = s.hub("hub", None, true);
    drained(&second, s.dir.path());
    s.check_queues();
    let st = stats(&second);
    assert_eq!(st["outbox_delivered"], 2 * n, "{st}");
    for f in &s.followers {
        let fs = get_json(&f.url, "/v1/stats");
        assert_eq!(fs["duplicates"], 0, "{fs}");
    }
}

/// FAN-7: a follower stores a batch but its acknowledgement is lost
/// (`--fail-acks 10`, about 6.5 s of retries); the hub process is killed
/// with SIGKILL while it retries, and the one started on the same store
/// sends the entries again under the same idempotency keys (the store id
/// is kept in the store): the follower acknowledges, keeps one copy each.
#[test]
fn fan7_redelivery_across_a_restart_is_stored_once() {
    let mut s = setup([10, 0]);
    let mut first = s.hub("hub-a", None, true);
    let mut client = s.client(&first);
    life(&mut s.room, &mut client, 2);
    let n = s.room.accepted.len() as u64;
    // Wait until follower 0 stored everything and lost an acknowledgement.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let fs = get_json(&s.followers[0].url, "/v1/stats");
        if fs["received"] == n && fs["failed_acks"].as_u64().unwrap() >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{fs}");
        std::thread::sleep(Duration::from_millis(10));
    }
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    let before = get_json(&s.followers[0].url, "/v1/stats");
    assert!(before["failed_acks"].as_u64().unwrap() < 10, "{before}");

    let second = s.hub("hub", None, true);
    drained(&second, s.dir.path());
    s.check_queues();
    let fs = get_json(&s.followers[0].url, "/v1/stats");
    assert_eq!(fs["failed_acks"], 10, "{fs}");
    assert_eq!(fs["received"], n, "stored once: {fs}");
    assert!(fs["duplicates"].as_u64().unwrap() >= 1, "{fs}");
    let st = stats(&second);
    assert!(
        st["outbox_delivered"].as_u64().unwrap() >= n,
        "the restarted process redelivered: {st}"
    );
}

/// FAN-4, FAN-7 with two hub processes of one shard on one PostgreSQL
/// store (env `MIMI_ONION_PG_URL`; skipped without it): the room's
/// messages are accepted alternately by each, both run delivery threads
/// (one holds each follower's lease at a time), follower 1 loses three
/// acknowledgements, and one process is killed with SIGKILL right after
/// its last `accepted`; the other takes over its leases. Every queue holds
/// every message exactly once, in acceptance order.
#[test]
fn fan7_two_hub_processes_on_one_postgres_store() {
    let Some(url) = std::env::var("MIMI_ONION_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!("skipped: MIMI_ONION_PG_URL is not set");
        return;
    };
    let schema = format!("svc_fanout_{}", std::process::id());
    let mut s = setup([0, 3]);
    let pg = Some((url.as_str(), schema.as_str()));
    let mut one = s.hub("hub-one", pg, true);
    let two = s.hub("hub", pg, true);
    let mut c1 = s.client(&one);
    let mut c2 = s.client(&two);
    assert_eq!(s.room.register(&mut c1).unwrap(), Status::Accepted);
    let mut sent = 0;
    let mut send = |room: &mut DemoRoom, epoch: u64, ct: ContentType, data: &[u8]| {
        let client = if sent % 2 == 1 { &mut c1 } else { &mut c2 };
        sent += 1;
        assert_eq!(
            room.send(client, epoch, ct, data).unwrap(),
            Status::Accepted
        );
    };
    for i in 0..4 {
        send(
            &mut s.room,
            0,
            ContentType::Application,
            format!("e0 {i}").as_bytes(),
        );
    }
    send(&mut s.room, 0, ContentType::Proposal, b"");
    send(&mut s.room, 0, ContentType::Commit, b"");
    for i in 0..4 {
        send(
            &mut s.room,
            1,
            ContentType::Application,
            format!("e1 {i}").as_bytes(),
        );
    }
    // The last one went through `one`, which dies now.
    one.child.kill().unwrap(); // SIGKILL
    one.child.wait().unwrap();
    drained(&two, s.dir.path());
    s.check_queues();
    let fs = get_json(&s.followers[1].url, "/v1/stats");
    assert_eq!(fs["failed_acks"], 3, "{fs}");
    println!(
        "followers: {} / {}",
        get_json(&s.followers[0].url, "/v1/stats"),
        fs
    );
}
