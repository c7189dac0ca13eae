//! The follower endpoint keeps what it acknowledged: its queues and the
//! idempotency keys it has seen survive a `kill -9` and a restart on the
//! same `--data`, so a delivery acknowledged before the crash is still
//! queued once, and the hub's redelivery of it after the restart is
//! recognised and not stored again (FAN-4: each queue keeps its order).

mod common;

use std::time::Duration;

use common::*;
use mimi_onion_service::media;

fn deliver(addr: &str, key: &str, queues: &str, message: &[u8]) -> u16 {
    let mut req = format!(
        "POST {} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: {}\r\n{}: {key}\r\n{}: {queues}\r\ncontent-length: {}\r\n\r\n",
        media::DELIVERIES_PATH,
        media::FANOUT,
        media::IDEMPOTENCY_HEADER,
        media::QUEUES_HEADER,
        message.len()
    )
    .into_bytes();
    req.extend_from_slice(message);
    status_of(&raw(addr, &req, false, Duration::from_secs(5)))
}

fn deliver_batch(addr: &str, items: &[(&str, &str, &[u8])]) -> u16 {
    let encoded: Vec<Vec<u8>> = items
        .iter()
        .map(|(k, q, m)| media::encode_list([k.as_bytes(), q.as_bytes(), *m]))
        .collect();
    let body = media::encode_list(encoded.iter().map(Vec::as_slice));
    let mut req = format!(
        "POST {} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: {}\r\ncontent-length: {}\r\n\r\n",
        media::DELIVERIES_PATH,
        media::FANOUT_BATCH,
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    status_of(&raw(addr, &req, false, Duration::from_secs(5)))
}

fn queue(url: &str, q: &str) -> Vec<Vec<u8>> {
    mimi_onion_service::client::fetch_queue(url, q).unwrap()
}

fn start(dir: &std::path::Path, name: &str) -> Proc {
    spawn(
        name,
        dir,
        &[
            "follower".into(),
            "--data".into(),
            path(&dir.join("follower-data")),
        ],
    )
}

#[test]
fn queues_and_keys_survive_a_kill_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut f = start(d, "follower-a");
    let addr = f.url.strip_prefix("http://").unwrap().to_string();
    assert_eq!(deliver(&addr, "hub:1", "alice,bob", b"m1"), 204);
    assert_eq!(
        deliver_batch(
            &addr,
            &[("hub:1", "alice,bob", b"m1"), ("hub:2", "bob", b"m2")]
        ),
        204
    );
    assert_eq!(queue(&f.url, "alice"), vec![b"m1".to_vec()]);
    assert_eq!(queue(&f.url, "bob"), vec![b"m1".to_vec(), b"m2".to_vec()]);
    let stats = get_json(&f.url, media::STATS_PATH);
    assert_eq!(
        (stats["received"].as_u64(), stats["duplicates"].as_u64()),
        (Some(2), Some(1))
    );
    // SIGKILL: no shutdown path runs.
    f.child.kill().unwrap();
    f.child.wait().unwrap();
    drop(f);
    let f = start(d, "follower-b");
    let addr = f.url.strip_prefix("http://").unwrap().to_string();
    assert_eq!(queue(&f.url, "bob"), vec![b"m1".to_vec(), b"m2".to_vec()]);
    // The hub's retry of an acknowledged delivery: kept once.
    assert_eq!(deliver(&addr, "hub:2", "bob", b"m2"), 204);
    assert_eq!(deliver(&addr, "hub:3", "bob", b"m3"), 204);
    assert_eq!(
        queue(&f.url, "bob"),
        vec![b"m1".to_vec(), b"m2".to_vec(), b"m3".to_vec()]
    );
    let stats = get_json(&f.url, media::STATS_PATH);
    assert_eq!(
        (stats["received"].as_u64(), stats["duplicates"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(stats["queues"]["bob"].as_u64(), Some(3));
    // Bad requests store nothing.
    assert_eq!(deliver(&addr, "", "bob", b"x"), 400);
    assert_eq!(deliver(&addr, "hub:4", "bad queue!", b"x"), 400);
    assert_eq!(queue(&f.url, "bob").len(), 3);
}
