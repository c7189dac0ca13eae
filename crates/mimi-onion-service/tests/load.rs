//! A load test on loopback, bounded in count (`MIMI_ONION_LOAD_N`,
//! default 2,000 envelopes) and time (60 s of sending): envelopes per
//! second through the balancer and both hub shards, as a ratio to
//! `HubFrontEnd::handle` in this process on the same machine and the
//! same store (SQLite); 0 lost and 0 duplicated deliveries. It asserts
//! only the deliveries, never a time, and prints the figures.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use mimi_onion::config::HubConfigStore;
use mimi_onion::mls::message::ContentType;
use mimi_onion::response::Status;
use mimi_onion::sender::{SealOptions, Sender};
use mimi_onion_service::client::{fetch_queue, verify_queue, DemoRoom};
use mimi_onion_service::keys::read_signing_key;
use mimi_onion_store_sqlite::SqliteHubStore;
use serde_json::Value;

const PROVIDER: &str = "load.example";

/// CPU seconds (user + system) a process has used so far, from
/// `/proc/<pid>/stat` (Linux; 0 elsewhere).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of the file, counted after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

/// `handle()` in this process over SQLite: envelopes per second, timing
/// only the `handle` calls (sealing is the client's work).
fn in_process_rate(keys: &mimi_onion_service::keys::HubKeys, n: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteHubStore::open(dir.path().join("hub.sqlite")).unwrap();
    let mut hub = keys.front_end(store).unwrap();
    let signed = keys.signed_configuration(&hub).unwrap();
    let signing = keys.signing_component().unwrap();
    let mut accepted_config = HubConfigStore::new();
    let now = mimi_onion_service::unix_now();
    accepted_config.accept(&signed, &signing, now).unwrap();
    let mut sender = Sender::new(accepted_config.current().unwrap().clone());
    let mut room = DemoRoom::new(format!("{PROVIDER}/in-process").as_bytes(), &signing).unwrap();
    let gi = room.room.group_info(0).unwrap();
    let sealed = sender
        .seal(
            &gi,
            SealOptions {
                fanout_key: Some(room.room.epoch(0).unwrap().f.clone()),
                ..SealOptions::default()
            },
        )
        .unwrap();
    let out = hub.handle(&sealed.bytes, now);
    let r = sender
        .open_response(&sealed.pending, &out.response)
        .unwrap();
    assert_eq!(r.status, Status::Accepted);
    let keys0 = room.room.membership_keys(0).unwrap();
    let mut busy = Duration::ZERO;
    for i in 0..n {
        let m = room
            .room
            .protect(
                0,
                ContentType::Application,
                format!("in-process {i}").as_bytes(),
            )
            .unwrap()
            .message;
        let sealed = sender
            .seal(
                &m,
                SealOptions {
                    membership: Some(&keys0),
                    ..SealOptions::default()
                },
            )
            .unwrap();
        let t = Instant::now();
        let out = hub.handle(&sealed.bytes, now);
        busy += t.elapsed();
        let r = sender
            .open_response(&sealed.pending, &out.response)
            .unwrap();
        assert_eq!(r.status, Status::Accepted);
    }
    n as f64 / busy.as_secs_f64()
}

#[test]
fn load_through_balancer_and_hubs() {
    let n: usize = std::env::var("MIMI_ONION_LOAD_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let keys = make_keys(dir.path());
    // Four rooms, two on each shard; each fans out to one queue at each
    // of the two followers.
    let rooms = rooms_on_both_shards(&keys, PROVIDER, "load-", 4);
    let gids: Vec<Vec<u8>> = rooms
        .iter()
        .map(|r| format!("{PROVIDER}/{r}").into_bytes())
        .collect();
    let cluster = Cluster::start(
        dir,
        keys.clone(),
        ClusterOptions {
            rooms: gids
                .iter()
                .zip(&rooms)
                .map(|(g, r)| (g.clone(), vec![(0, r.clone()), (1, r.clone())]))
                .collect(),
            ..ClusterOptions::default()
        },
    );
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
        "load".into(),
        "--count".into(),
        n.to_string(),
        "--limit-s".into(),
        "60".into(),
    ]);
    let servers: Vec<u32> = cluster
        .hubs
        .iter()
        .map(|h| h.child.id())
        .chain([cluster.balancer.child.id()])
        .collect();
    let cpu_start: Vec<f64> = servers.iter().map(|p| cpu_seconds(*p)).collect();
    let cpu_before: f64 = cpu_start.iter().sum();
    let out = Command::new(BIN).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cpu_each: Vec<f64> = servers.iter().map(|p| cpu_seconds(*p)).collect();
    let cpu_servers = cpu_each.iter().sum::<f64>() - cpu_before;
    let accepted = report["accepted"].as_u64().unwrap() as usize;
    let sent = report["sent"].as_u64().unwrap() as usize;
    assert_eq!(accepted, sent, "{report}");
    assert_eq!(report["response_sizes"], serde_json::json!([103]));

    // Every accepted message at both followers, once: wait (bounded) for
    // the outboxes to drain, then read each queue as a member.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let pending: u64 = cluster
            .hubs
            .iter()
            .map(|h| {
                get_json(&h.url, "/v1/stats")["outbox_pending"]
                    .as_u64()
                    .unwrap()
            })
            .sum();
        if pending == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let signing = read_signing_key(&cluster.signing_key_file()).unwrap();
    let mut lost = 0usize;
    let mut duplicated = 0usize;
    for f in &cluster.followers {
        let mut delivered = 0usize;
        for (r, g) in rooms.iter().zip(&gids) {
            let room = DemoRoom::new(g, &signing).unwrap();
            let items = fetch_queue(&f.url, r).unwrap();
            let check = verify_queue(&[&room.room], &items).unwrap();
            assert!(check.failures.is_empty(), "{:?}", check.failures);
            let unique: HashSet<&Vec<u8>> = check.delivered.iter().collect();
            duplicated += items.len() - unique.len();
            delivered += unique.len();
        }
        lost += accepted - delivered.min(accepted);
    }
    let net_rate = report["envelopes_per_s"].as_f64().unwrap();
    let elapsed = report["elapsed_s"].as_f64().unwrap();
    let cores_used = cpu_servers / elapsed;
    let local_rate = in_process_rate(&keys, n.min(2000));
    println!(
        "load: {accepted} envelopes through balancer + 2 hub shards in {elapsed:.2} s: \
         {net_rate:.0} envelopes/s; handle() in-process (SQLite): {local_rate:.0} envelopes/s; \
         ratio {:.2}; hub + balancer CPU {cpu_servers:.2} s = {cores_used:.2} cores; \
         ratio per core used {:.2}; lost {lost}, duplicated {duplicated}",
        net_rate / local_rate,
        net_rate / local_rate / cores_used.max(1e-9),
    );
    let per_process: Vec<String> = cpu_each
        .iter()
        .zip(&cpu_start)
        .zip(["hub shard 0", "hub shard 1", "balancer"])
        .map(|((a, b), name)| format!("{name} {:.2} s", a - b))
        .collect();
    println!(
        "load: CPU by process while sending: {}",
        per_process.join(", ")
    );
    assert_eq!(lost, 0, "lost deliveries");
    assert_eq!(duplicated, 0, "duplicated deliveries");
}
