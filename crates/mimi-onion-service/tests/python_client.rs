//! A second language, live: the Python client mode of the test-vector
//! checker (`test-vectors/client.py`, written from the spec and the
//! vectors alone) against a balancer, two hub shards and two followers
//! on loopback. The hub signs with the vectors' configuration-signing key
//! and holds the vectors' demo room of MLS suite 1, registered by the Rust
//! client, so F of epoch 0 is the one `fanout.json` publishes.
//!
//! The interpreter is `$MIMI_ONION_PYTHON` (`.ci/run` points it at a
//! venv with `test-vectors/requirements.txt`). Without it the test fails
//! when `CI` is set and is skipped, with a notice, otherwise.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use mimi_onion::response::{RejectReason, Status};
use mimi_onion::test_utils::{from_hex, to_hex};
use mimi_onion_service::client::{fetch_queue, tally, verify_queue, DemoRoom, HubClient};
use mimi_onion_service::keys::read_signing_key;
use serde_json::{json, Value};

const PROVIDER: &str = "provider-a.example";

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors")
}

fn vector(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(vectors_dir().join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn hex_field(v: &Value, key: &str) -> Vec<u8> {
    from_hex(v[key].as_str().unwrap()).unwrap()
}

/// The interpreter, or `None` (skip) outside CI.
fn python() -> Option<String> {
    match std::env::var("MIMI_ONION_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but MIMI_ONION_PYTHON is not: the Python client test must run"
            );
            println!(
                "skipped: set MIMI_ONION_PYTHON to a Python with test-vectors/requirements.txt"
            );
            None
        }
    }
}

/// CFG-1 to CFG-5, HUB-6 with ADM-1 to ADM-3 (the operator's exception),
/// TOK-5, TOK-6, HUB-8, HUB-10, HUB-11, RSP-1, RSP-2, RSP-5, FAN-2, FAN-4
/// and FAN-5 across two implementations: the Python client's KeyPackages
/// are accepted, its application message of the demo room is refused
/// under a wrong membership proof and a reused token and accepted once,
/// its commit (with a key layer it sealed to the policy key) is accepted,
/// and every recipient queue holds both exactly once, as a Rust member
/// reads them (the commit moving it to epoch 1).
#[test]
fn python_client_against_the_service() {
    let Some(python) = python() else { return };
    let config_vector = &vector("hub-configuration.json")[0];
    let room_vector = vector("fanout.json")
        .into_iter()
        .find(|v| v["mls_suite"] == 1)
        .unwrap();
    let commit_vector = vector("key-layer.json")
        .into_iter()
        .find(|v| v["mls_suite"] == 1 && v["content_type"] == "commit")
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let seed_file = dir.path().join("vectors-signing-seed.hex");
    std::fs::write(
        &seed_file,
        config_vector["signing_key_seed"].as_str().unwrap(),
    )
    .unwrap();
    let keys = make_keys_with(dir.path(), &["--signing-seed".into(), path(&seed_file)]);
    let key = read_signing_key(&dir.path().join("keys/hub-signing-key.hex")).unwrap();
    assert_eq!(
        to_hex(&key.public_key.0),
        config_vector["signing_public_key"].as_str().unwrap()
    );
    // The Rust fixture is the vectors' room: its F of epoch 0 is
    // fanout.json's.
    let mut room = DemoRoom::vectors(&key).unwrap();
    assert_eq!(
        room.room.epoch(0).unwrap().f.expose(),
        hex_field(&room_vector, "fanout_key").as_slice()
    );
    let group_id = room.room.group_id.clone();
    let recipients = vec![(0, "bob".to_string()), (1, "carol,dave".to_string())];
    let mut cluster = Cluster::start(
        dir,
        keys,
        ClusterOptions {
            rooms: vec![(group_id.clone(), recipients)],
            adopt: vec![(group_id.clone(), PROVIDER.to_string())],
            ..ClusterOptions::default()
        },
    );
    let lb = cluster.balancer.url.clone();

    // ADM-2: the room has no namespace; the hub adopted it for PROVIDER
    // only.
    let mut other = HubClient::connect(&lb, &key, Some("provider-b.example")).unwrap();
    assert_eq!(
        DemoRoom::vectors(&key)
            .unwrap()
            .register(&mut other)
            .unwrap(),
        Status::Rejected(RejectReason::RegistrationRefused)
    );
    let mut client = HubClient::connect(&lb, &key, Some(PROVIDER)).unwrap();
    assert_eq!(room.register(&mut client).unwrap(), Status::Accepted);

    let (f0, f1) = (
        cluster.followers[0].url.clone(),
        cluster.followers[1].url.clone(),
    );
    let queues = [(f0, "bob"), (f1.clone(), "carol"), (f1, "dave")];
    let report_file = cluster.dir.path().join("python-report.json");
    let mut cmd = Command::new(&python);
    cmd.arg(vectors_dir().join("client.py"))
        .args(["--hub", &lb, "--vectors"])
        .arg(vectors_dir())
        .arg("--trust-anchor")
        .arg(cluster.signing_key_file())
        .arg("--report")
        .arg(&report_file);
    for (url, q) in &queues {
        cmd.args(["--queue", &format!("{url}/{q}")]);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!(
        "python client:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "python client failed");
    assert!(
        stdout.contains("\n7 passed, 0 failed, 0 skipped\n"),
        "{stdout}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_file).unwrap()).unwrap();
    assert_eq!(
        report["statuses"],
        json!({
            "key_package_0": "accepted",
            "key_package_1": "accepted",
            "wrong_proof": "membership_proof_failed",
            "application": "accepted",
            "reused_token": "token_reused",
            "damaged": "unopenable",
            "commit": "accepted",
        })
    );
    assert_eq!(report["group_id"], to_hex(&group_id));
    assert_eq!(report["response_sizes"], json!([103]));
    assert_eq!(report["suite"], json!([32, 1, 1]));
    for q in report["queues"].as_array().unwrap() {
        assert_eq!(q["copies"], 1, "{q}");
        assert_eq!(q["commit_copies"], 1, "{q}");
        assert_eq!(q["new_items"], 2, "{q}");
    }

    // CFG-1: a trust anchor other than the hub's key refuses the
    // configuration, and the client sends nothing.
    let wrong_anchor = cluster.dir.path().join("other-key.hex");
    std::fs::write(&wrong_anchor, to_hex(&[7u8; 32])).unwrap();
    let out = Command::new(&python)
        .arg(vectors_dir().join("client.py"))
        .args(["--hub", &lb, "--trust-anchor"])
        .arg(&wrong_anchor)
        .output()
        .unwrap();
    let refused = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{refused}");
    assert!(
        refused.contains("FAIL configuration (CFG-1 to CFG-5): Reject: CFG-1"),
        "{refused}"
    );
    assert!(
        refused.contains("\n1 passed, 1 failed, 5 skipped\n"),
        "{refused}"
    );

    // A Rust member of the room reads each queue: the vectors' message
    // and commit, each exactly once, and nothing else.
    let accepted = [
        hex_field(&room_vector, "message"),
        hex_field(&commit_vector, "message"),
    ];
    for (url, q) in &queues {
        let items = fetch_queue(url, q).unwrap();
        let check = verify_queue(&[&room.room], &items).unwrap();
        assert!(check.failures.is_empty(), "{q}: {:?}", check.failures);
        assert_eq!(tally(&accepted, &check.delivered), (2, 0, 0, 0), "{q}");
        assert_eq!(items.len(), 2, "{q}");
    }

    // What the hubs counted: two registrations (one refused), two
    // KeyPackages, one application message and the commit accepted, one refusal of
    // each kind, one unopenable envelope; nothing from the refused run.
    let mut statuses = std::collections::BTreeMap::<String, u64>::new();
    for hub in &cluster.hubs {
        let stats = get_json(&hub.url, "/v1/stats");
        for (k, v) in stats["statuses"].as_object().unwrap() {
            *statuses.entry(k.clone()).or_default() += v.as_u64().unwrap();
        }
    }
    let want: std::collections::BTreeMap<String, u64> = [
        ("accepted", 5),
        ("registration_refused", 1),
        ("membership_proof_failed", 1),
        ("token_reused", 1),
        ("unopenable", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(statuses, want);
    assert!(cluster.all_alive());
}
