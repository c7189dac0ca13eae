//! The command line as the README describes it: `demo`, `demo --dump`,
//! `inspect`, `open --demo-keys`. Errors exit non-zero with a message on
//! stderr, never a panic.

use std::path::PathBuf;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mimi-onion"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mimi-onion-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn no_panic(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "panic: {err}");
}

const MESSAGES: [&str; 10] = [
    "key_package",
    "group_info",
    "welcome",
    "registration",
    "application",
    "proposal",
    "commit",
    "application_epoch1",
    "application_p256",
    "application_chacha",
];

#[test]
fn demo_prints_every_party() {
    let out = run(&["demo"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for party in [
        "sender's provider",
        "load balancer",
        "hub front-end",
        "opened the",
    ] {
        assert!(text.contains(party), "missing {party}");
    }
    for m in MESSAGES {
        assert!(text.contains(&format!("== {m} ==")), "missing {m}");
    }
}

#[test]
fn dump_writes_envelope_response_manifest() {
    let dir = temp_dir("dump");
    let out = run(&["demo", "--dump", dir.to_str().unwrap()]);
    assert!(out.status.success());
    for m in MESSAGES {
        let d = dir.join(m);
        let env = std::fs::read(d.join("envelope.bin")).unwrap();
        let resp = std::fs::read(d.join("response.bin")).unwrap();
        assert!(resp.len() == 103 || resp.len() == 119);
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("manifest.json")).unwrap())
                .unwrap();
        for key in [
            "wire_format",
            "content_type",
            "group_id",
            "epoch",
            "routing_token",
            "shard_id",
            "key_id",
            "hpke_suite",
            "mls_suite",
            "hub_view",
        ] {
            assert!(manifest.get(key).is_some(), "{m}: {key}");
        }
        assert!(manifest["shard_id"].is_u64(), "{m}: shard");
        assert_eq!(manifest["hpke_suite"].as_array().unwrap().len(), 3);
        let token = manifest["routing_token"].as_str().unwrap();
        assert_eq!(token, mimi_onion::demo::to_hex(&env[1..18]));
        // The hub's view is the message, and the envelope does not carry
        // the group_id in the clear.
        if let Some(g) = manifest["group_id"].as_str() {
            let g = mimi_onion::demo::from_hex(g).unwrap();
            assert!(!env.windows(g.len()).any(|w| w == g.as_slice()), "{m}");
        }
        // The hub reopens the dumped envelope with the demo keys.
        let opened = run(&[
            "open",
            "--demo-keys",
            d.join("envelope.bin").to_str().unwrap(),
        ]);
        assert!(opened.status.success(), "{m}");
        let text = String::from_utf8(opened.stdout).unwrap();
        assert!(text.contains(manifest["hub_view"].as_str().unwrap()), "{m}");
        let inspected = run(&["inspect", d.join("envelope.bin").to_str().unwrap()]);
        assert!(inspected.status.success());
        let text = String::from_utf8(inspected.stdout).unwrap();
        assert!(text.contains(token));
        if let Some(g) = manifest["group_id"].as_str() {
            assert!(!text.contains(g));
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("commit/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["wire_format"], "private_message");
    assert_eq!(manifest["content_type"], "commit");
    assert_eq!(manifest["mls_suite"], 1);
    assert_eq!(manifest["sender_leaf"], 1);
    // The policy engine and the member read the same commit.
    assert_eq!(manifest["policy_plaintext"], manifest["member_plaintext"]);
    assert!(manifest["policy_plaintext"].is_string());
    assert!(dir.join("commit/policy.bin").exists());
    // `open --demo-keys` runs the policy engine on a key layer.
    let opened = run(&[
        "open",
        "--demo-keys",
        dir.join("commit/envelope.bin").to_str().unwrap(),
    ]);
    assert!(opened.status.success());
    let text = String::from_utf8(opened.stdout).unwrap();
    assert!(text.contains("policy engine     opened the key layer: leaf 1"));
    assert!(text.contains(manifest["policy_plaintext"].as_str().unwrap()));
    for m in ["application", "commit", "application_p256"] {
        for f in ["fanout-1.bin", "fanout-2.bin"] {
            assert!(dir.join(m).join(f).exists(), "{m}/{f}");
        }
        let man: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(m).join("manifest.json")).unwrap(),
        )
        .unwrap();
        assert!(man["member_plaintext"].is_string(), "{m}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrupted_envelope_exits_nonzero_without_panic() {
    let dir = temp_dir("corrupt");
    assert!(run(&["demo", "--dump", dir.to_str().unwrap()])
        .status
        .success());
    let path = dir.join("application/envelope.bin");
    let good = std::fs::read(&path).unwrap();
    for (i, variant) in [
        {
            let mut b = good.clone();
            let n = b.len() / 2;
            b[n] ^= 0x40;
            b
        },
        good[..good.len() - 1].to_vec(),
        Vec::new(),
        b"not an envelope at all".to_vec(),
    ]
    .into_iter()
    .enumerate()
    {
        let bad = dir.join(format!("bad-{i}.bin"));
        std::fs::write(&bad, &variant).unwrap();
        let out = run(&["open", "--demo-keys", bad.to_str().unwrap()]);
        assert!(!out.status.success(), "variant {i} accepted");
        no_panic(&out);
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("error:"));
        let out = run(&["inspect", bad.to_str().unwrap()]);
        no_panic(&out);
    }
    let out = run(&["open", "--demo-keys", "/nonexistent/file"]);
    assert!(!out.status.success());
    no_panic(&out);
    let out = run(&["frobnicate"]);
    assert!(!out.status.success());
    no_panic(&out);
    let _ = std::fs::remove_dir_all(&dir);
}
