//! What the PostgreSQL tests share: the server they run against (env
//! `MIMI_ONION_PG_URL`), fresh schemas that are dropped afterwards, and
//! the suite's [`Backend`].
//!
//! Without `MIMI_ONION_PG_URL` a test prints "skipped: MIMI_ONION_PG_URL
//! not set" and passes, unless env `CI` is set: CI never skips them.

#![allow(dead_code)]

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use mimi_onion::test_utils::store_suite::Backend;
use mimi_onion_store_postgres::PostgresHubStore;

/// The server's connection string.
pub const URL_VAR: &str = "MIMI_ONION_PG_URL";

/// Writes a line to the test's stderr past the harness's output capture,
/// so that it shows in a normal `cargo test` run.
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn required_in_ci(what: &str) -> ! {
    panic!("{what} is not set, and CI is: the PostgreSQL tests must run in CI (see .ci/run)")
}

/// The server's connection string, or `None` (the test is skipped) when
/// it is not set outside CI.
pub fn url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => required_in_ci(URL_VAR),
        _ => {
            note(&format!("skipped: {URL_VAR} not set"));
            None
        }
    }
}

/// A schema name no other test (in this process or another) uses.
pub fn unique_schema(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "t_{tag}_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Drops schemas (the test's own, created by [`unique_schema`]).
pub fn drop_schemas(url: &str, schemas: &[String]) {
    if schemas.is_empty() {
        return;
    }
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect to drop");
    for s in schemas {
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE"))
            .expect("drop schema");
    }
}

/// How the tests stop and start the server: `pg_ctl` and the data
/// directory, with the options of the server's first start.
pub struct PgCtl {
    pg_ctl: String,
    data: String,
    opts: String,
}

impl PgCtl {
    /// From env `MIMI_ONION_PG_CTL`, `MIMI_ONION_PG_DATA` and
    /// `MIMI_ONION_PG_OPTS`; `None` (the check is skipped) when one is
    /// missing outside CI.
    pub fn from_env() -> Option<Self> {
        let vars = [
            "MIMI_ONION_PG_CTL",
            "MIMI_ONION_PG_DATA",
            "MIMI_ONION_PG_OPTS",
        ];
        let values: Vec<Option<String>> = vars
            .iter()
            .map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
            .collect();
        match values.as_slice() {
            [Some(pg_ctl), Some(data), Some(opts)] => Some(PgCtl {
                pg_ctl: pg_ctl.clone(),
                data: data.clone(),
                opts: opts.clone(),
            }),
            _ if std::env::var_os("CI").is_some() => required_in_ci(&vars.join(", ")),
            _ => {
                note(&format!(
                    "skipped: the outage check needs {} (it stops and starts the server)",
                    vars.join(", ")
                ));
                None
            }
        }
    }

    /// Runs `pg_ctl ARGS` as the server's owner: through `runuser -u
    /// postgres` when the tests run as root, directly otherwise.
    fn run(&self, args: &[&str]) {
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let mut cmd = if as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &self.pg_ctl]);
            c
        } else {
            Command::new(&self.pg_ctl)
        };
        cmd.arg("-D").arg(&self.data).args(args);
        // The server inherits no pipe of ours (it would hold it open).
        let status = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect("run pg_ctl");
        assert!(status.success(), "pg_ctl {args:?}: {status}");
    }

    /// Stops the server (fast: open connections are closed).
    pub fn stop(&self) {
        self.run(&["-m", "fast", "-w", "stop"]);
    }

    /// Starts the server again with the first start's options; its log
    /// goes to `mimi-onion-restart.log` in the data directory.
    pub fn start(&self) {
        let log = format!("{}/mimi-onion-restart.log", self.data);
        self.run(&["-l", &log, "-o", &self.opts, "-w", "start"]);
    }
}

/// The suite's backend: a fresh store is a new schema, a shared one a
/// second connection to it, an outage a stop of the server. The schemas
/// are dropped when the backend is, unless a test failed (then they stay
/// for a look).
pub struct Pg {
    pub url: String,
    pub ctl: Option<PgCtl>,
    schemas: Mutex<Vec<String>>,
    /// The server is stopped by [`Backend::outage`] and not started yet.
    down: AtomicBool,
}

impl Pg {
    pub fn new(url: String, ctl: Option<PgCtl>) -> Self {
        Pg {
            url,
            ctl,
            schemas: Mutex::new(Vec::new()),
            down: AtomicBool::new(false),
        }
    }

    /// A new schema with a store on it.
    pub fn fresh_named(&self, tag: &str) -> PostgresHubStore {
        let schema = unique_schema(tag);
        self.schemas
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(schema.clone());
        PostgresHubStore::connect_with_schema(&self.url, &schema).expect("open a fresh schema")
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        // A check that failed during an outage leaves the server up.
        if self.down.load(Ordering::SeqCst) {
            if let Some(ctl) = &self.ctl {
                ctl.start();
            }
        }
        let schemas = std::mem::take(
            &mut *self
                .schemas
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if std::thread::panicking() {
            note(&format!("kept the schemas of a failed test: {schemas:?}"));
        } else {
            drop_schemas(&self.url, &schemas);
        }
    }
}

impl Backend for Pg {
    type Store = PostgresHubStore;

    fn fresh(&self) -> PostgresHubStore {
        self.fresh_named("suite")
    }

    fn share(&self, store: &PostgresHubStore) -> PostgresHubStore {
        store.connect_again().expect("a second connection")
    }

    fn outage(&self, _store: &PostgresHubStore, down: bool) {
        let ctl = self.ctl.as_ref().expect("the outage check has pg_ctl");
        if down {
            ctl.stop();
        } else {
            ctl.start();
        }
        self.down.store(down, Ordering::SeqCst);
    }
}
