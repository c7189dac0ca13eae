//! The hub as a network service, as separate processes on loopback: a
//! balancer, two hub shards, two followers and a client.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::*;
use mimi_onion::response::{RejectReason, Status};
use mimi_onion::test_utils::from_hex;
use mimi_onion_service::client::{DemoRoom, HubClient};
use mimi_onion_service::keys::read_signing_key;
use serde_json::Value;

const PROVIDER: &str = "provider-a.example";

fn gid(provider: &str, room: &str) -> Vec<u8> {
    format!("{provider}/{room}").into_bytes()
}

fn store_counts(c: &Cluster) -> Vec<Value> {
    c.hubs
        .iter()
        .map(|h| get_json(&h.url, "/v1/stats")["store"].clone())
        .collect()
}

/// A room's life through the balancer and both shards, the client a
/// process of its own: every accepted message reaches every recipient
/// queue exactly once (FAN-2, FAN-4), though the second follower loses its
/// first three acknowledgements and the hub retries; every response has
/// the fixed size (RSP-1); each shard handled only its own groups; the
/// balancer had read only the version and token (TOK-1) when it chose.
#[test]
fn room_life_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let keys = make_keys(dir.path());
    let rooms = rooms_on_both_shards(&keys, PROVIDER, "room-", 2);
    let recipients = vec![(0, "bob".to_string()), (1, "carol,dave".to_string())];
    let mut cluster = Cluster::start(
        dir,
        keys,
        ClusterOptions {
            rooms: rooms
                .iter()
                .map(|r| (gid(PROVIDER, r), recipients.clone()))
                .collect(),
            followers: vec![0, 3],
            ..ClusterOptions::default()
        },
    );
    let f0 = cluster.followers[0].url.clone();
    let f1 = cluster.followers[1].url.clone();
    let mut args: Vec<String> = vec![
        "client".into(),
        "--hub".into(),
        cluster.balancer.url.clone(),
        "--signing-key".into(),
        path(&cluster.signing_key_file()),
        "--provider".into(),
        PROVIDER.into(),
    ];
    for r in &rooms {
        args.push("--room".into());
        args.push(r.clone());
    }
    args.extend([
        "life".into(),
        "--apps".into(),
        "3".into(),
        "--check".into(),
        format!("{f0}/bob"),
        "--check".into(),
        format!("{f1}/carol"),
        "--check".into(),
        format!("{f1}/dave"),
    ]);
    let out = Command::new(BIN).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("client report: {report}");

    // Registration, 3 + 3 application messages, a proposal, a commit.
    for room in report["rooms"].as_array().unwrap() {
        let statuses: Vec<&str> = room["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(statuses, vec!["accepted"; 9], "{room}");
    }
    let accepted = report["accepted"].as_u64().unwrap();
    assert_eq!(accepted, 2 * 8);
    assert_eq!(report["responses"], 18);
    // RSP-1: one size for every response (AES-128-GCM: 103 bytes).
    assert_eq!(report["response_sizes"], serde_json::json!([103]));
    for q in report["queues"].as_array().unwrap() {
        assert_eq!(q["items"], accepted, "{q}");
        assert_eq!(q["exactly_once"], accepted, "{q}");
        assert_eq!(q["missing"], 0);
        assert_eq!(q["duplicated"], 0);
        assert_eq!(q["unknown"], 0);
        assert_eq!(q["failures"], serde_json::json!([]));
    }
    // The lost acknowledgements were retried and de-duplicated. The
    // messages are queued by the first (unacknowledged) attempt, so the
    // members' view above can be complete before the last retry is in:
    // wait for it (at most 10 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let f1_stats = loop {
        let s = get_json(&f1, "/v1/stats");
        let pending: u64 = cluster
            .hubs
            .iter()
            .map(|h| {
                get_json(&h.url, "/v1/stats")["outbox_pending"]
                    .as_u64()
                    .unwrap_or(1)
            })
            .sum();
        if pending == 0 || std::time::Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(f1_stats["failed_acks"], 3, "{f1_stats}");
    assert!(f1_stats["duplicates"].as_u64().unwrap() >= 3, "{f1_stats}");
    assert_eq!(f1_stats["received"], accepted);

    // Each shard handled only the groups placed on it, and both shards
    // had some.
    let mut seen = BTreeSet::new();
    for (shard, hub) in cluster.hubs.iter().enumerate() {
        let stats = get_json(&hub.url, "/v1/stats");
        let groups = stats["groups"].as_array().unwrap();
        assert!(!groups.is_empty(), "shard {shard}: {stats}");
        for g in groups {
            let g = from_hex(g.as_str().unwrap()).unwrap();
            assert_eq!(shard_of(&cluster.keys, &g), shard as u32, "{stats}");
            seen.insert(g);
        }
        assert_eq!(stats["response_sizes"], serde_json::json!([103]));
        assert_eq!(stats["outbox_pending"], 0);
        assert_eq!(
            stats["store"]["groups"].as_u64().unwrap(),
            groups.len() as u64
        );
    }
    let expected: BTreeSet<Vec<u8>> = rooms.iter().map(|r| gid(PROVIDER, r)).collect();
    assert_eq!(seen, expected);

    // TOK-1: the balancer chose every backend after reading 18 body bytes.
    let lb = get_json(&cluster.balancer.url, "/v1/stats");
    println!("balancer: {lb}");
    assert_eq!(lb["max_body_bytes_before_choice"], 18);
    assert_eq!(lb["envelopes"], 18);
    assert!(cluster.all_alive());
}

/// RSP-1, RSP-2 over HTTP: an accepted envelope, a refused one and bytes
/// the hub cannot open get the same status, the same headers and the
/// same size.
#[test]
fn every_outcome_looks_alike_on_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let keys = make_keys(dir.path());
    let mut cluster = Cluster::start(dir, keys, ClusterOptions::default());
    let key = read_signing_key(&cluster.signing_key_file()).unwrap();
    let mut client = HubClient::connect(&cluster.balancer.url, &key, Some(PROVIDER)).unwrap();
    let mut room = DemoRoom::new(&gid(PROVIDER, "alike"), &key).unwrap();
    assert_eq!(room.register(&mut client).unwrap(), Status::Accepted);
    let accepted = client.last_http.clone().unwrap();
    // A second registration of the same room is refused (HUB-6).
    assert_eq!(
        room.register(&mut client).unwrap(),
        Status::Rejected(RejectReason::RegistrationRefused)
    );
    let refused = client.last_http.clone().unwrap();
    let garbage = client.post(&[0x42; 300]).unwrap();
    let strip = |h: &Vec<(String, String)>| {
        h.iter()
            .filter(|(n, _)| n != "date")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(accepted.0, 200);
    assert_eq!(refused.0, 200);
    assert_eq!(garbage.status, 200);
    assert_eq!(strip(&accepted.1), strip(&refused.1));
    assert_eq!(strip(&accepted.1), strip(&garbage.headers));
    assert_eq!(garbage.body.len(), 103);
    assert_eq!(client.response_sizes, BTreeSet::from([103]));
    println!(
        "headers of every hub response: {:?}",
        strip(&garbage.headers)
    );
    assert!(cluster.all_alive());
}

/// Bad requests, to a hub directly and through the balancer: each gets a
/// clear HTTP error (or, for garbage with the right media type, the
/// fixed-size response, RSP-2), no process panics, and the hub's state is
/// what it was.
#[test]
fn bad_requests_leave_the_state_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let keys = make_keys(dir.path());
    let mut cluster = Cluster::start(
        dir,
        keys,
        ClusterOptions {
            read_timeout_ms: 400,
            ..ClusterOptions::default()
        },
    );
    let key = read_signing_key(&cluster.signing_key_file()).unwrap();
    let mut client = HubClient::connect(&cluster.balancer.url, &key, Some(PROVIDER)).unwrap();
    let mut room = DemoRoom::new(&gid(PROVIDER, "bad"), &key).unwrap();
    assert_eq!(room.register(&mut client).unwrap(), Status::Accepted);
    let before = store_counts(&cluster);
    let max = mimi_onion::wire::MAX_ENVELOPE_LEN;
    let wait = Duration::from_secs(5);
    for target in [
        cluster.hubs[0].url.clone(),
        cluster.hubs[1].url.clone(),
        cluster.balancer.url.clone(),
    ] {
        let addr = target.strip_prefix("http://").unwrap().to_string();
        let post = |ctype: &str, len: usize, body: &[u8]| {
            let mut r = format!(
                "POST /v1/envelope HTTP/1.1\r\nhost: x\r\ncontent-type: {ctype}\r\ncontent-length: {len}\r\n\r\n"
            )
            .into_bytes();
            r.extend_from_slice(body);
            r
        };
        let env = "application/mimi-onion-envelope";
        let cases: Vec<(&str, Vec<u8>, bool, u16)> = vec![
            (
                "wrong method",
                b"GET /v1/envelope HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
                false,
                405,
            ),
            (
                "wrong media type",
                post("text/plain", 4, b"abcd"),
                false,
                415,
            ),
            ("over-size body", post(env, max + 1, b""), false, 413),
            ("body stops half way", post(env, 1000, &[7; 500]), true, 400),
            ("slow body", post(env, 1000, &[7; 10]), false, 408),
            ("garbage", post(env, 300, &[0x5a; 300]), false, 200),
            ("short garbage", post(env, 3, b"abc"), false, 200),
            ("empty body", post(env, 0, b""), false, 200),
            (
                "unknown path",
                b"GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
                false,
                404,
            ),
        ];
        for (what, request, half_close, status) in cases {
            let resp = raw(&addr, &request, half_close, wait);
            assert_eq!(
                status_of(&resp),
                status,
                "{what} at {target}: {}",
                String::from_utf8_lossy(&resp)
            );
            if status == 200 {
                // RSP-1, RSP-2: random bytes of the mandatory suite's size.
                let (head, body) = split_response(&resp);
                assert_eq!(body.len(), 103, "{what}");
                assert!(head.contains(&"content-type: application/mimi-onion-response".into()));
            }
        }
    }
    // A malformed head at the balancer, and a chunked body it refuses.
    let lb = cluster
        .balancer
        .url
        .strip_prefix("http://")
        .unwrap()
        .to_string();
    assert_eq!(
        status_of(&raw(&lb, b"\x00\x01garbage\r\n\r\n", false, wait)),
        400
    );
    let chunked =
        b"POST /v1/envelope HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(status_of(&raw(&lb, chunked, false, wait)), 411);
    assert_eq!(store_counts(&cluster), before, "the state changed");
    assert!(cluster.all_alive(), "a process died");
    // The hubs still work.
    assert_eq!(
        room.send(
            &mut client,
            0,
            mimi_onion::mls::message::ContentType::Application,
            b"after"
        )
        .unwrap(),
        Status::Accepted
    );
}

/// ADM-1, ADM-2, ADM-3, ADM-4: a registration without an authenticated
/// provider (ADM-1), for a room in another provider's namespace (ADM-2),
/// or over the provider's quota (ADM-3) is refused with
/// `registration_refused` (ADM-4); within them it is accepted. A
/// refusal creates no room (only the envelope's own `enc` record, HUB-5).
#[test]
fn admission_refuses_foreign_rooms_and_registrations_over_quota() {
    let dir = tempfile::tempdir().unwrap();
    let keys = make_keys(dir.path());
    let mut cluster = Cluster::start(
        dir,
        keys,
        ClusterOptions {
            quota: 2,
            ..ClusterOptions::default()
        },
    );
    let key = read_signing_key(&cluster.signing_key_file()).unwrap();
    let url = cluster.balancer.url.clone();
    let refused = Status::Rejected(RejectReason::RegistrationRefused);
    let register = |provider: Option<&str>, group: &[u8]| {
        let mut client = HubClient::connect(&url, &key, provider).unwrap();
        DemoRoom::new(group, &key)
            .unwrap()
            .register(&mut client)
            .unwrap()
    };
    let b = "provider-b.example";
    // ADM-1: no authenticated provider.
    assert_eq!(register(None, &gid(PROVIDER, "anon")), refused);
    // ADM-2: another provider's namespace, and no namespace at all.
    assert_eq!(register(Some(b), &gid(PROVIDER, "squat")), refused);
    assert_eq!(
        register(Some(PROVIDER), b"a room without a namespace"),
        refused
    );
    let nothing = store_counts(&cluster);
    for c in &nothing {
        assert_eq!(c["groups"], 0, "{c}");
    }
    // ADM-3: two rooms each, the third refused; another provider's quota
    // is its own.
    assert_eq!(
        register(Some(PROVIDER), &gid(PROVIDER, "one")),
        Status::Accepted
    );
    assert_eq!(
        register(Some(PROVIDER), &gid(PROVIDER, "two")),
        Status::Accepted
    );
    let rooms = |c: &Cluster| {
        store_counts(c)
            .iter()
            .map(|s| (s["groups"].clone(), s["leaf_keys"].clone()))
            .collect::<Vec<_>>()
    };
    let at_quota = rooms(&cluster);
    assert_eq!(register(Some(PROVIDER), &gid(PROVIDER, "three")), refused);
    // Only the envelope's own record (HUB-5) is kept, no room.
    assert_eq!(rooms(&cluster), at_quota);
    assert_eq!(register(Some(b), &gid(b, "one")), Status::Accepted);
    let groups: u64 = store_counts(&cluster)
        .iter()
        .map(|c| c["groups"].as_u64().unwrap())
        .sum();
    assert_eq!(groups, 3);
    assert!(cluster.all_alive());
}
