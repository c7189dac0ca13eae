//! STO-4 across a restart, with two real processes: what a committed
//! transaction wrote to the SQLite file is there for the next process on
//! it. After a restart an identical resend gets the recorded response byte
//! for byte and is not processed again (HUB-5, RSP-4), after the retry
//! window it gets random bytes, and a spent token stays spent (TOK-6).
//!
//! How the processes are made: the test re-executes its own binary
//! (`std::env::current_exe()`) with `restart_worker --exact --ignored
//! --nocapture` and the environment variable [`WORKER_ENV`] naming a job
//! folder. That process runs the ignored test [`restart_worker`]: it opens
//! the folder's `hub.sqlite` with `DemoWorld::with_store` (the demo hub's
//! fixed keys, the same in every process), runs the lines of the folder's
//! `jobs` file (`provision`, or `handle NAME NOW`: the envelope bytes of
//! `NAME.envelope` at time `NOW`), writes for each envelope the response
//! bytes (`NAME.response`) and what the front-end did (`NAME.outcome`:
//! whether it processed the envelope, `view.is_some()`, and whether it
//! answered from the cache), and exits without closing the store, as a
//! crashed process would. Without the variable the worker does nothing, so
//! `cargo test -- --ignored` passes.
//!
//! The parent is the client: it holds the `Sender` (with a configuration
//! and tokens from an in-memory copy of the same demo hub), seals the
//! envelopes, hands them to the workers and opens their responses.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use mimi_onion::fanout::EpochKeys;
use mimi_onion::hub::DEFAULT_RETRY_WINDOW;
use mimi_onion::mls::message::ContentType;
use mimi_onion::response::{RejectReason, Status};
use mimi_onion::sender::{SealOptions, SealedEnvelope, Sender};
use mimi_onion::state::{GroupRecord, HubStore, StoreCounts};
use mimi_onion::test_utils::{demo_fanout_key, private_message, DemoWorld, NOW};
use mimi_onion_store_sqlite::SqliteHubStore;

/// Names the job folder of a worker process.
const WORKER_ENV: &str = "MIMI_ONION_SQLITE_RESTART_JOBS";
/// The test that a worker process runs.
const WORKER_TEST: &str = "restart_worker";
/// The demo group of the test.
const GROUP: &[u8] = b"restart group";

/// The group's record at provisioning, as `store_suite`'s demo hub has it.
fn record() -> GroupRecord {
    let mut record = GroupRecord::new(0, 1, 1);
    record.pin_fanout_key(1, demo_fanout_key(GROUP, 1));
    record
}

/// The worker process (see the module documentation). Run by
/// [`sto4_hub5_rsp4_tok6_survive_a_restart`] in a process of its own.
#[test]
#[ignore = "a worker process of sto4_hub5_rsp4_tok6_survive_a_restart, which runs it"]
fn restart_worker() {
    let Some(dir) = std::env::var_os(WORKER_ENV).map(PathBuf::from) else {
        return;
    };
    let jobs = fs::read_to_string(dir.join("jobs")).expect("jobs");
    let store = SqliteHubStore::open(dir.join("hub.sqlite")).expect("open the store");
    let mut world = DemoWorld::with_store(store).expect("demo hub");
    for line in jobs.lines() {
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["provision"] => {
                world.hub.provision(GROUP, record()).expect("provision");
            }
            ["handle", name, now] => {
                let envelope = fs::read(dir.join(format!("{name}.envelope"))).expect("envelope");
                let out = world.hub.handle(&envelope, now.parse().expect("now"));
                fs::write(dir.join(format!("{name}.response")), &out.response).expect("write");
                let outcome = format!(
                    "processed={} from_cache={}",
                    out.view.is_some(),
                    out.from_cache
                );
                fs::write(dir.join(format!("{name}.outcome")), outcome).expect("write");
            }
            _ => panic!("unknown job {line:?}"),
        }
    }
    fs::write(dir.join(format!("pid-{}", std::process::id())), "worker").expect("write");
    // As a crash: no destructor runs, the store is never closed and its
    // WAL never checkpointed. What was committed must be there anyway.
    std::process::exit(0);
}

/// What a worker did with one envelope.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    processed: bool,
    from_cache: bool,
    response: Vec<u8>,
}

/// Runs one worker process on `dir` with `jobs`; returns its process id.
fn run_worker(dir: &Path, jobs: &str) -> u32 {
    fs::write(dir.join("jobs"), jobs).expect("write jobs");
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new(exe)
        .args([WORKER_TEST, "--exact", "--ignored", "--nocapture"])
        .arg("--test-threads=1")
        .env(WORKER_ENV, dir)
        .output()
        .expect("start the worker");
    assert!(
        out.status.success(),
        "worker failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let pids: Vec<u32> = fs::read_dir(dir)
        .expect("job folder")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let pid = name.strip_prefix("pid-")?.parse().ok()?;
            fs::remove_file(dir.join(&name)).ok()?;
            Some(pid)
        })
        .collect();
    assert_eq!(pids.len(), 1, "the worker ran its jobs to the end");
    pids[0]
}

fn outcome(dir: &Path, name: &str) -> Outcome {
    let text = fs::read_to_string(dir.join(format!("{name}.outcome"))).expect("outcome");
    let flag = |key: &str| text.contains(&format!("{key}=true"));
    Outcome {
        processed: flag("processed"),
        from_cache: flag("from_cache"),
        response: fs::read(dir.join(format!("{name}.response"))).expect("response"),
    }
}

fn application(client: &mut Sender) -> SealedEnvelope {
    let keys = EpochKeys::derive(&demo_fanout_key(GROUP, 1), 1).expect("keys");
    let msg = private_message(GROUP, 1, ContentType::Application, 32);
    client
        .seal(
            &msg,
            SealOptions {
                membership: Some(&keys),
                ..SealOptions::default()
            },
        )
        .expect("seal")
}

/// STO-4 (with HUB-5, RSP-4, TOK-6): process 1 provisions the group and
/// accepts an envelope, then exits; process 2 on the same file answers the
/// identical resend from the record, byte for byte, without processing it;
/// after the retry window it answers with random bytes; a new envelope
/// with the spent token gets `token_reused`. Nothing is processed twice.
#[test]
fn sto4_hub5_rsp4_tok6_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let dir = dir.path();

    // The client, with the demo hub's configuration and one token twice,
    // so that both envelopes carry the same token nonce.
    let issuer = DemoWorld::new().expect("demo hub in memory");
    issuer.hub.provision(GROUP, record()).expect("provision");
    let mut client = issuer.client().expect("client");
    let token = issuer.hub.issue_tokens(Some(GROUP))[0];
    client.add_tokens(Some(GROUP), &[token, token]);
    let first = application(&mut client);
    let second = application(&mut client);
    fs::write(dir.join("first.envelope"), &first.bytes).expect("write");
    fs::write(dir.join("resend.envelope"), &first.bytes).expect("write");
    fs::write(dir.join("late.envelope"), &first.bytes).expect("write");
    fs::write(dir.join("reused.envelope"), &second.bytes).expect("write");

    // Process 1.
    let pid1 = run_worker(dir, &format!("provision\nhandle first {NOW}\n"));
    let accepted = outcome(dir, "first");
    assert!(accepted.processed && !accepted.from_cache, "{accepted:?}");
    let r = client
        .open_response(&first.pending, &accepted.response)
        .expect("the response opens");
    assert_eq!(r.status, Status::Accepted);

    // Process 2, on the same file.
    let late = NOW + DEFAULT_RETRY_WINDOW;
    let jobs = format!(
        "handle resend {}\nhandle reused {}\nhandle late {late}\n",
        NOW + 1,
        NOW + 2
    );
    let pid2 = run_worker(dir, &jobs);
    assert_ne!(pid1, pid2, "two processes");
    assert!(pid1 != std::process::id() && pid2 != std::process::id());

    let resend = outcome(dir, "resend");
    assert!(
        resend.from_cache && !resend.processed,
        "STO-4, HUB-5: the resend is answered from the record: {resend:?}"
    );
    assert_eq!(
        resend.response, accepted.response,
        "STO-4, RSP-4: byte for byte"
    );

    let reused = outcome(dir, "reused");
    assert!(reused.processed && !reused.from_cache, "{reused:?}");
    let r = client
        .open_response(&second.pending, &reused.response)
        .expect("the response opens");
    assert_eq!(
        r.status,
        Status::Rejected(RejectReason::TokenReused),
        "STO-4, TOK-6: the token stays spent"
    );

    let late = outcome(dir, "late");
    assert!(
        !late.processed && !late.from_cache,
        "HUB-5: after the retry window: {late:?}"
    );
    assert_ne!(late.response, accepted.response);
    assert_eq!(late.response.len(), accepted.response.len(), "RSP-1");
    assert!(
        client
            .open_response(&first.pending, &late.response)
            .is_err(),
        "HUB-5: random bytes after the retry window"
    );

    // Nothing was processed twice: two `enc` records, one spent nonce.
    let store = SqliteHubStore::open(dir.join("hub.sqlite")).expect("open");
    let counts = store.transact(&mut |t| t.counts()).expect("counts");
    assert_eq!(
        counts,
        StoreCounts {
            groups: 1,
            leaf_keys: 0,
            spent_tokens: 1,
            envelopes: 2,
            // The first response's window ended (and `expire` ran at
            // `late`); the second's lasts.
            cached_responses: 1,
            handshakes: 0,
            fanout: 0,
        }
    );
}
