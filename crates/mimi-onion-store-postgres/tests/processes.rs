//! STO-2 across two processes on PostgreSQL: two front-ends, each in a
//! process of its own over the same schema, race as the suite's threads
//! do (`race_commits`, `race_same_envelope`), 1,000 trials each
//! (`MIMI_ONION_PROCESS_TRIALS` may lower it).
//!
//! The workers are this test binary run again
//! (`std::env::current_exe()` with `worker --exact --ignored
//! --nocapture`, env `MIMI_ONION_PG_WORKER_SCHEMA` naming the schema):
//! each is a `DemoWorld` front-end (the same deterministic demo keys as
//! the parent's), reads one envelope per line from stdin (hex) and
//! answers one line per envelope on stdout: `ANSWER <status> <from_cache>
//! <response hex>`, the status being `-` when the front-end did not
//! process the envelope. The parent builds the envelopes with its own
//! front-end on the schema (rooms, tokens), writes one line to each worker
//! and only then reads both answers, so that the two race.

mod common;

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use common::{note, Pg};
use mimi_onion::response::{RejectReason, Status};
use mimi_onion::state::GroupRecord;
use mimi_onion::test_utils::store_suite::{application, commit, room_on};
use mimi_onion::test_utils::{demo_fanout_key, from_hex, to_hex, DemoWorld, NOW};
use mimi_onion_store_postgres::PostgresHubStore;

/// Set in a worker process: the schema its front-end uses.
const WORKER_ENV: &str = "MIMI_ONION_PG_WORKER_SCHEMA";

/// A worker process: its front-end answers the envelopes of stdin.
#[test]
#[ignore = "a worker process of sto2_two_front_end_processes_race (which runs it)"]
fn worker() {
    let Ok(schema) = std::env::var(WORKER_ENV) else {
        note("worker: not started by sto2_two_front_end_processes_race; nothing to do");
        return;
    };
    let url = std::env::var(common::URL_VAR).expect("the parent passes the URL");
    let store = PostgresHubStore::connect_with_schema(&url, &schema).expect("worker store");
    let mut world = DemoWorld::with_store(store).expect("worker front-end");
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").expect("stdout");
    out.flush().expect("stdout");
    for line in std::io::stdin().lock().lines() {
        let envelope = from_hex(line.expect("stdin").trim()).expect("hex");
        let o = world.hub.handle(&envelope, NOW);
        let status = o
            .view
            .map_or_else(|| "-".to_owned(), |v| format!("{:?}", v.status));
        writeln!(
            out,
            "ANSWER {status} {} {}",
            o.from_cache,
            to_hex(&o.response)
        )
        .expect("stdout");
        out.flush().expect("stdout");
    }
}

/// One worker's answer to one envelope.
#[derive(Debug)]
struct Answer {
    /// `Debug` of the status, `None` if the worker did not process it.
    status: Option<String>,
    from_cache: bool,
    response: Vec<u8>,
}

/// A worker process and its pipes; killed if the test fails.
struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn spawn(schema: &str) -> Self {
        let exe = std::env::current_exe().expect("the test binary");
        let mut child = Command::new(exe)
            .args([
                "worker",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WORKER_ENV, schema)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn a worker");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut w = Worker {
            child,
            stdin,
            stdout,
        };
        w.read_line("READY");
        w
    }

    /// What follows `word` on the next line of the worker that has it
    /// (the test harness prints lines of its own, and its `test worker
    /// ... ` precedes the first line of the worker on the same line).
    fn read_line(&mut self, word: &str) -> String {
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).expect("read a worker");
            assert!(n > 0, "the worker ended before it said {word}");
            if let Some(at) = line.find(word) {
                return line[at + word.len()..].trim().to_owned();
            }
        }
    }

    fn send(&mut self, envelope: &[u8]) {
        let stdin = self.stdin.as_mut().expect("open");
        writeln!(stdin, "{}", to_hex(envelope)).expect("write a worker");
        stdin.flush().expect("write a worker");
    }

    fn answer(&mut self) -> Answer {
        let line = self.read_line("ANSWER");
        let mut parts = line.split(' ');
        let (Some(status), Some(from_cache), Some(response)) =
            (parts.next(), parts.next(), parts.next())
        else {
            panic!("a worker's answer: {line:?}");
        };
        Answer {
            status: (status != "-").then(|| status.to_owned()),
            from_cache: from_cache == "true",
            response: from_hex(response).expect("hex"),
        }
    }

    /// Closes stdin and waits for the worker to end well.
    fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait for a worker");
        assert!(status.success(), "a worker failed: {status}");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends `envelopes[i]` to worker `i`, both before reading either answer.
fn at_once(workers: &mut [Worker; 2], envelopes: [&[u8]; 2]) -> [Answer; 2] {
    workers[0].send(envelopes[0]);
    workers[1].send(envelopes[1]);
    [workers[0].answer(), workers[1].answer()]
}

#[test]
fn sto2_two_front_end_processes_race() {
    let Some(url) = common::url() else { return };
    let trials: usize = std::env::var("MIMI_ONION_PROCESS_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let pg = Pg::new(url, None);
    let store = pg.fresh_named("processes");
    let schema = store.schema().to_owned();
    let mut world = DemoWorld::with_store(store).expect("the parent's front-end");
    let mut client = world.client().expect("client");
    let started = Instant::now();
    let mut workers = [Worker::spawn(&schema), Worker::spawn(&schema)];
    note(&format!(
        "two worker processes ready: {:.2?}",
        started.elapsed()
    ));

    // Two different valid commits for one epoch, one to each process.
    let accepted = format!("{:?}", Status::Accepted);
    let stale = format!("{:?}", Status::Rejected(RejectReason::StaleEpoch));
    let mut wins = [0usize; 2];
    let start = Instant::now();
    for n in 0..trials {
        let mut room = room_on(&world, n);
        let group = room.group_id.clone();
        client.add_tokens(Some(&group), &world.hub.issue_tokens(Some(&group)));
        let a = commit(&world, &mut client, &mut room, 1);
        let c = commit(&world, &mut client, &mut room, 2);
        let answers = at_once(&mut workers, [&a, &c]);
        let statuses: Vec<Option<&str>> = answers.iter().map(|a| a.status.as_deref()).collect();
        let winners: Vec<usize> = (0..2)
            .filter(|i| statuses[*i] == Some(accepted.as_str()))
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "trial {n}: STO-2, one commit wins: {statuses:?}"
        );
        wins[winners[0]] += 1;
        assert!(
            statuses.contains(&Some(stale.as_str())),
            "trial {n}: the loser sees the epoch moved: {statuses:?}"
        );
        let record = world.hub.group(&group).expect("store").expect("group");
        assert_eq!(record.epoch, 1, "trial {n}: exactly one epoch further");
    }
    let commits = start.elapsed();
    note(&format!(
        "race_commits across processes: {trials} trials in {commits:.2?} \
         ({:.2?} per trial), wins per process {wins:?}",
        commits / trials.max(1) as u32
    ));

    // One envelope to both processes, routable and unroutable tokens.
    let group: &[u8] = b"process twin group";
    let mut record = GroupRecord::new(0, 1, 1);
    record.pin_fanout_key(1, demo_fanout_key(group, 1));
    world.hub.provision(group, record).expect("provision");
    client.add_tokens(Some(group), &world.hub.issue_tokens(Some(group)));
    let mut processed_by = [0usize; 2];
    let start = Instant::now();
    for n in 0..trials {
        let routable = n % 2 == 0;
        if !routable {
            // An empty pool: the sender uses the unroutable codepoint.
            while client.pool_len(Some(group)) > 0 {
                let e = application(&mut client, group, 1);
                let _ = world.hub.handle(&e.bytes, NOW);
            }
        } else if client.pool_len(Some(group)) == 0 {
            client.add_tokens(Some(group), &world.hub.issue_tokens(Some(group)));
        }
        let e = application(&mut client, group, 1);
        let before = world.hub.counts().expect("counts").envelopes;
        let answers = at_once(&mut workers, [&e.bytes, &e.bytes]);
        let processed: Vec<usize> = (0..2).filter(|i| answers[*i].status.is_some()).collect();
        assert_eq!(
            processed.len(),
            1,
            "trial {n} (routable: {routable}): processed once: {answers:?}"
        );
        processed_by[processed[0]] += 1;
        let other = &answers[1 - processed[0]];
        assert!(
            other.from_cache,
            "trial {n}: the other answers from the record"
        );
        assert_eq!(
            answers[0].response, answers[1].response,
            "trial {n}: same answer"
        );
        assert_eq!(
            world.hub.counts().expect("counts").envelopes,
            before + 1,
            "trial {n}: one record"
        );
        let r = client
            .open_response(&e.pending, &answers[0].response)
            .expect("the response opens");
        assert_eq!(r.status, Status::Accepted, "trial {n}");
    }
    let twins = start.elapsed();
    note(&format!(
        "race_same_envelope across processes: {trials} trials in {twins:.2?} \
         ({:.2?} per trial), processed per process {processed_by:?}",
        twins / trials.max(1) as u32
    ));
    let [w0, w1] = workers;
    w0.finish();
    w1.finish();
}
