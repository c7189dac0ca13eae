//! The command line as its README documents it: `demo`, `demo --dump`,
//! `demo --json`, `inspect [--json]`, `open --demo-keys [--json]`, help and
//! version, the exit codes (0 success, 1 input rejected, 2 usage error) and
//! errors that name the path. Never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mimi_onion::test_utils::{from_hex, to_hex};
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_mimi-onion"))
        .args(args)
        .output()
        .expect("binary runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exactly one JSON object on stdout.
fn one_json(out: &Output) -> Value {
    let text = stdout(out);
    let mut stream = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
    let v = stream.next().expect("a JSON value").expect("valid JSON");
    assert!(stream.next().is_none(), "more than one JSON value");
    assert!(v.is_object(), "not an object: {v}");
    v
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mimi-onion-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A dump of the demo, shared by the tests that read its files.
fn dumped(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    let out = run(&["demo", "--dump", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    dir
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
fn demo_shows_every_party_in_80_columns_with_a_summary() {
    let out = run(&["demo"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for party in [
        "sender's provider",
        "load balancer",
        "hub front-end",
        "policy engine",
        "followers 1-2",
        "member (Bob)",
        "Summary:",
    ] {
        assert!(text.contains(party), "missing {party}");
    }
    for (i, m) in MESSAGES.iter().enumerate() {
        assert!(
            text.contains(&format!("[{}/10] {m}: ", i + 1)),
            "missing {m}"
        );
    }
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "wider than 80 columns: {line}");
    }
    // The summary is measured, not asserted: every envelope and fan-out
    // set hides its group_id, and Bob got each fanned-out message intact.
    assert!(text.contains("group_id absent from 10 of 10"), "{text}");
    assert!(
        text.contains("Bob opened 6 of them, 6 byte for byte"),
        "{text}"
    );
}

#[test]
fn demo_json_is_one_object_with_the_documented_fields() {
    let v = one_json(&run(&["demo", "--json"]));
    let messages = v["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), MESSAGES.len());
    for (m, name) in messages.iter().zip(MESSAGES) {
        assert_eq!(m["name"], name);
        for key in [
            "wire_format",
            "content_type",
            "group_id",
            "epoch",
            "mls_suite",
            "message_len",
            "envelope_len",
            "routing_token",
            "shard_id",
            "key_id",
            "hpke_suite",
            "hub_view",
            "status",
            "response_len",
            "token_pool_after",
            "policy_plaintext",
            "sender_leaf",
            "followers",
            "fanout_len",
            "member_plaintext",
        ] {
            assert!(m.get(key).is_some(), "{name}: {key}");
        }
    }
    let s = &v["summary"];
    assert_eq!(s["messages"], 10);
    assert_eq!(s["group_id_hidden"], 10);
    assert_eq!(s["delivered"], s["fanned_out"]);
    assert_eq!(s["delivered"], s["delivered_byte_for_byte"]);
}

#[test]
fn dump_writes_envelope_response_manifest() {
    let dir = dumped("dump");
    for m in MESSAGES {
        let d = dir.join(m);
        let env = std::fs::read(d.join("envelope.bin")).unwrap();
        let resp = std::fs::read(d.join("response.bin")).unwrap();
        assert!(resp.len() == 103 || resp.len() == 119);
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("manifest.json")).unwrap())
                .unwrap();
        assert!(manifest["shard_id"].is_u64(), "{m}: shard");
        // The HPKE suite as everywhere in this tool: hex ids and a name.
        let suite = &manifest["hpke_suite"];
        for id in ["kem_id", "kdf_id", "aead_id"] {
            assert!(suite[id].as_str().unwrap().starts_with("0x"), "{m}: {id}");
        }
        let token = manifest["routing_token"].as_str().unwrap();
        assert_eq!(token, to_hex(&env[1..18]));
        // The envelope does not carry the group_id in the clear.
        if let Some(g) = manifest["group_id"].as_str() {
            let g = from_hex(g).unwrap();
            assert!(!env.windows(g.len()).any(|w| w == g.as_slice()), "{m}");
        }
        // The hub reopens the dumped envelope with the demo keys, and
        // `inspect` shows the token but not the group.
        let path = d.join("envelope.bin");
        let opened = one_json(&run(&[
            "open",
            "--demo-keys",
            "--json",
            path.to_str().unwrap(),
        ]));
        assert_eq!(opened["hub_view"]["message"], manifest["hub_view"], "{m}");
        assert_eq!(opened["hub_view"]["wire_format"], manifest["wire_format"]);
        let inspected = one_json(&run(&["inspect", "--json", path.to_str().unwrap()]));
        assert_eq!(inspected["routing_token"], manifest["routing_token"]);
        assert_eq!(inspected["hpke_suite"], manifest["hpke_suite"]);
        assert_eq!(inspected["shard_id"], manifest["shard_id"]);
        assert_eq!(inspected["envelope_len"], env.len());
        if let Some(g) = manifest["group_id"].as_str() {
            assert!(!inspected.to_string().contains(g));
        }
    }
    let manifest: Value =
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
    let commit = dir.join("commit/envelope.bin");
    let text = stdout(&run(&["open", "--demo-keys", commit.to_str().unwrap()]));
    assert!(text.contains("policy engine: opened the key layer of leaf 1"));
    let opened = one_json(&run(&[
        "open",
        "--json",
        "--demo-keys",
        commit.to_str().unwrap(),
    ]));
    assert_eq!(opened["policy"]["accepted"], true);
    assert_eq!(opened["policy"]["sender_leaf"], 1);
    assert_eq!(opened["policy"]["plaintext"], manifest["policy_plaintext"]);
    assert_eq!(opened["hub_view"]["content_type"], "commit");
    for m in ["application", "commit", "application_p256"] {
        for f in ["fanout-1.bin", "fanout-2.bin"] {
            assert!(dir.join(m).join(f).exists(), "{m}/{f}");
        }
        let man: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(m).join("manifest.json")).unwrap(),
        )
        .unwrap();
        assert!(man["member_plaintext"].is_string(), "{m}");
    }
    // A second dump into the same folder is refused, naming the folder.
    let again = run(&["demo", "--dump", dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains(dir.to_str().unwrap()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rejected_inputs_exit_1_and_name_the_path() {
    let dir = dumped("corrupt");
    let good = std::fs::read(dir.join("application/envelope.bin")).unwrap();
    let mut flipped = good.clone();
    let n = flipped.len() / 2;
    flipped[n] ^= 0x40;
    for (i, variant) in [
        flipped,
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
        assert_eq!(out.status.code(), Some(1), "variant {i}");
        assert!(stderr(&out).contains(bad.to_str().unwrap()), "variant {i}");
        let out = run(&["inspect", bad.to_str().unwrap()]);
        if i > 0 {
            // Only the flipped envelope still parses for a provider.
            assert_eq!(out.status.code(), Some(1), "variant {i}");
        }
    }
    // A missing file: the path and the operating system's reason.
    let out = run(&["open", "--demo-keys", "/nonexistent/file"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("/nonexistent/file") && err.contains("No such file"),
        "{err}"
    );
    // An endless input is cut at the largest legal envelope.
    if Path::new("/dev/zero").exists() {
        let out = run(&["inspect", "/dev/zero"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("larger than the largest legal envelope"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_2_and_help_and_version_exit_0() {
    for args in [
        &["frobnicate"][..],
        &["inspect"],
        &["open", "some-file"],
        &["demo", "--dump"],
        &[],
    ] {
        assert_eq!(run(args).status.code(), Some(2), "{args:?}");
    }
    // `inspect --help` is help, not a file name.
    let help = run(&["inspect", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("Usage: mimi-onion inspect"));
    let help = run(&["--help"]);
    assert!(stdout(&help).contains("Exit codes"));
    let version = run(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        stdout(&version).trim(),
        format!("mimi-onion {}", env!("CARGO_PKG_VERSION"))
    );
}
