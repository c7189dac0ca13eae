//! The hub's state of [`mimi_onion`] in one SQLite file: the embedded
//! default store of a hub (spec section "The Store Contract", STO-1 to
//! STO-5).
//!
//! [`SqliteHubStore`] implements [`HubStore`] on a file that outlives the
//! process. A hub opens it and hands it to its front-end:
//!
//! ```no_run
//! # fn demo(
//! #     keys: Vec<mimi_onion::keys::HubKeyPair>,
//! #     tokens: mimi_onion::token::TokenKeys,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use mimi_onion::hub::HubFrontEnd;
//! use mimi_onion_store_sqlite::SqliteHubStore;
//!
//! let (shards, lobby) = (16, 0);
//! let hub = HubFrontEnd::new(keys, tokens, shards, lobby, SqliteHubStore::open("hub.sqlite")?)?;
//! # let _ = hub;
//! # Ok(())
//! # }
//! ```
//!
//! # Transactions (STO-1, STO-2)
//!
//! [`HubStore::transact`] runs the front-end's work on one envelope between
//! `BEGIN IMMEDIATE` and `COMMIT`: the transaction takes SQLite's write
//! lock when it starts, so transactions of every connection on the file
//! (several front-end threads or processes of one machine) run one after
//! the other and never conflict at commit time. An error from the closure
//! or from the commit rolls everything back. A transaction that cannot get
//! the lock within the busy timeout ([`SqliteOptions::with_busy_timeout`],
//! [`DEFAULT_BUSY_TIMEOUT`] unless set) fails with a [`StoreError`], and the
//! front-end answers `unavailable`.
//!
//! The operations that a race could break are single statements on primary
//! keys that report whether they changed a row: `INSERT ... ON CONFLICT DO
//! NOTHING` to spend a token, record an `enc`, register a group and record
//! a handshake hash; `UPDATE groups ... WHERE group_id = ? AND epoch = ?` to
//! advance an epoch (compare-and-set). Expiry columns are indexed, so
//! `expire(now)` (STO-3) touches only what expired.
//!
//! The fan-out entries (STO-5, FAN-7, schema version 3) are rows of table
//! `fanout` with an `AUTOINCREMENT` sequence number, never reused; since
//! every transaction holds the file's write lock, the numbers follow the
//! commit order. The store id is 16 bytes of `randomblob` drawn when the
//! schema is created (or migrated from version 1 or 2).
//!
//! # Durability (STO-4)
//!
//! The file is in WAL mode. What a committed transaction wrote survives
//! the end of the process, whichever way it ends (a crash, a kill, an exit
//! without closing the store): after a restart an identical resend gets the
//! recorded response and a spent token stays spent (STO-4). With
//! [`Synchronous::Normal`] (the default, `PRAGMA synchronous = NORMAL`) a
//! commit does not wait for the disk: the last transactions before a power
//! loss or an operating-system crash may be lost (the file stays
//! consistent). [`Synchronous::Full`] makes every commit wait for the disk
//! (one `fsync` of the WAL per commit), so committed transactions survive a
//! power loss as well, at the cost of throughput.
//!
//! # Encoding
//!
//! `u64` values (epochs, expiry times; `u64::MAX` means "never expires")
//! are stored as 8-byte big-endian blobs: SQLite compares blobs with
//! `memcmp`, which orders them as the numbers they encode, and every value
//! round-trips exactly (SQLite's integers are `i64`). The fan-out keys of a
//! group are one blob of entries `epoch (8 bytes, big-endian) || length (2
//! bytes, big-endian) || F`. A row that does not decode is a
//! [`StoreError`], never a panic.
//!
//! The file holds F of the live epochs and the leaves' signature keys:
//! protect it as the hub's private keys. On Unix a file this store creates
//! is readable and writable by its owner only (SQLite's `-wal` and `-shm`
//! files take the same permissions).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use mimi_onion::profile::HandshakeProfile;
use mimi_onion::state::{
    CachedResponse, ClosedEpoch, FanoutEntry, GroupRecord, HubState, HubStore, NewFanout,
    StoreCounts, StoreError, StoreResult, STORE_ID_LEN,
};
use mimi_onion::token::TOKEN_NONCE_LEN;
use rusqlite::{params, Connection, OptionalExtension as _, TransactionBehavior};

/// The schema version this crate writes and reads, kept in `PRAGMA
/// user_version`. [`SqliteHubStore::open`] refuses a file with another
/// (non-zero) version.
pub const SCHEMA_VERSION: i64 = 3;

/// How long a transaction waits for the write lock held by another
/// connection before it fails, unless [`SqliteOptions::with_busy_timeout`]
/// says otherwise.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, version [`SCHEMA_VERSION`]. `u64` columns are 8-byte
/// big-endian blobs (see the crate documentation).
const SCHEMA: &str = "
CREATE TABLE groups (
    group_id BLOB PRIMARY KEY NOT NULL,
    shard INTEGER NOT NULL,
    epoch BLOB NOT NULL,
    mls_suite INTEGER NOT NULL,
    commitment_required INTEGER NOT NULL,
    group_context BLOB NOT NULL,
    fanout_keys BLOB NOT NULL
);
CREATE TABLE leaf_keys (
    group_id BLOB NOT NULL,
    leaf_index INTEGER NOT NULL,
    signature_key BLOB NOT NULL,
    PRIMARY KEY (group_id, leaf_index)
) WITHOUT ROWID;
CREATE TABLE spent_tokens (
    codepoint INTEGER NOT NULL,
    nonce BLOB NOT NULL,
    expires_at BLOB NOT NULL,
    PRIMARY KEY (codepoint, nonce)
) WITHOUT ROWID;
CREATE INDEX spent_tokens_expiry ON spent_tokens (expires_at);
CREATE TABLE envelopes (
    enc BLOB PRIMARY KEY NOT NULL,
    fingerprint BLOB NOT NULL,
    expires_at BLOB NOT NULL,
    response BLOB,
    response_until BLOB
);
CREATE INDEX envelopes_expiry ON envelopes (expires_at);
CREATE INDEX envelopes_response_expiry ON envelopes (response_until)
    WHERE response_until IS NOT NULL;
CREATE TABLE handshakes (
    group_id BLOB NOT NULL,
    hash BLOB NOT NULL,
    epoch BLOB NOT NULL,
    PRIMARY KEY (group_id, hash)
) WITHOUT ROWID;
CREATE INDEX handshakes_epoch ON handshakes (group_id, epoch);
CREATE TABLE closed_epochs (
    group_id BLOB PRIMARY KEY NOT NULL,
    closed BLOB NOT NULL
);
CREATE TABLE tracker_states (
    group_id BLOB NOT NULL,
    epoch BLOB NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (group_id, epoch)
) WITHOUT ROWID;
";

/// From version 2 to 3, with [`FANOUT_TABLES`]: the group tracker's state
/// per group and epoch (TRK-4).
const MIGRATE_2_TO_3: &str = "
CREATE TABLE tracker_states (
    group_id BLOB NOT NULL,
    epoch BLOB NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (group_id, epoch)
) WITHOUT ROWID;
";

/// New in version 3 (FAN-7, STO-5): the store's identifier, drawn once,
/// and the fan-out entries waiting for their followers. `AUTOINCREMENT`:
/// a sequence number is never reused, even after its row is deleted.
const FANOUT_TABLES: &str = "
CREATE TABLE store_meta (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    store_id BLOB NOT NULL
);
INSERT INTO store_meta (singleton, store_id) VALUES (1, randomblob(16));
CREATE TABLE fanout (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    follower TEXT NOT NULL,
    address BLOB NOT NULL,
    group_id BLOB NOT NULL,
    epoch BLOB NOT NULL,
    message BLOB NOT NULL
);
CREATE INDEX fanout_follower ON fanout (follower, seq);
CREATE TABLE delivery_leases (
    follower TEXT PRIMARY KEY NOT NULL,
    holder BLOB NOT NULL,
    until BLOB NOT NULL
);
";

/// From version 1 to 2: the closed epoch of each group (DSP-6).
const MIGRATE_1_TO_2: &str = "
CREATE TABLE closed_epochs (
    group_id BLOB PRIMARY KEY NOT NULL,
    closed BLOB NOT NULL
);
";

/// When a commit returns relative to the disk (`PRAGMA synchronous`); see
/// the crate documentation, "Durability".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// `NORMAL` (the default): a committed transaction survives a crash of
    /// the process; the last transactions before a power loss or an
    /// operating-system crash may be lost.
    #[default]
    Normal,
    /// `FULL`: every commit waits for the disk; a committed transaction
    /// survives a power loss too.
    Full,
}

impl Synchronous {
    fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// How [`SqliteHubStore`] opens its connection: the busy timeout and the
/// synchronous setting.
///
/// ```no_run
/// use std::time::Duration;
/// use mimi_onion_store_sqlite::{SqliteOptions, Synchronous};
///
/// let store = SqliteOptions::new()
///     .with_synchronous(Synchronous::Full)
///     .with_busy_timeout(Duration::from_secs(2))
///     .open("hub.sqlite")?;
/// # Ok::<(), mimi_onion::state::StoreError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    busy_timeout: Duration,
    synchronous: Synchronous,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            synchronous: Synchronous::Normal,
        }
    }
}

impl SqliteOptions {
    /// The defaults: [`DEFAULT_BUSY_TIMEOUT`] and [`Synchronous::Normal`].
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a transaction waits for another connection's write lock
    /// before it fails (and the front-end answers `unavailable`).
    pub fn with_busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// When a commit returns relative to the disk.
    pub fn with_synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// The busy timeout.
    pub fn busy_timeout(&self) -> Duration {
        self.busy_timeout
    }

    /// The synchronous setting.
    pub fn synchronous(&self) -> Synchronous {
        self.synchronous
    }

    /// Opens (and, if absent, creates) the store at `path` with these
    /// options: see [`SqliteHubStore::open`].
    pub fn open(&self, path: impl AsRef<Path>) -> Result<SqliteHubStore, StoreError> {
        SqliteHubStore::open_with(path.as_ref(), self.clone())
    }
}

/// The hub's state in one SQLite file: a [`HubStore`] whose committed
/// transactions outlive the process (STO-4).
///
/// One value is one connection, behind a mutex: the front-ends of one
/// process may share it (it is `Send + Sync`, and `Arc<SqliteHubStore>` is
/// a [`HubStore`] too), or each open their own connection on the same file
/// ([`SqliteHubStore::reopen`]); front-ends in other processes of the same
/// machine open the same path. SQLite runs the transactions of all of them
/// one at a time.
#[derive(Debug)]
pub struct SqliteHubStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    options: SqliteOptions,
}

/// A rusqlite error as the [`StoreError`] of operation `what`.
fn fail(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::new(what, e.to_string())
}

impl SqliteHubStore {
    /// Opens the store at `path`, creating the file and its schema if
    /// absent, with the default [`SqliteOptions`]: WAL mode, `synchronous =
    /// NORMAL` (a committed transaction survives a crash of the process,
    /// the last ones may be lost on a power loss: STO-4; see
    /// [`Synchronous`]), a busy timeout of [`DEFAULT_BUSY_TIMEOUT`].
    ///
    /// Fails if the file cannot be opened or created, is not an SQLite
    /// database, cannot be put in WAL mode, holds tables but no schema
    /// version (another application's database), or has a schema version
    /// other than [`SCHEMA_VERSION`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path.as_ref(), SqliteOptions::default())
    }

    fn open_with(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        create_private(path).map_err(|e| StoreError::new("open", e.to_string()))?;
        let mut conn = Connection::open(path).map_err(fail("open"))?;
        conn.busy_timeout(options.busy_timeout)
            .map_err(fail("open: busy_timeout"))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(fail("open: journal_mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::new(
                "open: journal_mode",
                format!("{}: journal mode is {mode}, not WAL", path.display()),
            ));
        }
        // STO-4: when a commit returns relative to the disk.
        conn.pragma_update(None, "synchronous", options.synchronous.pragma_value())
            .map_err(fail("open: synchronous"))?;
        // The schema declares no foreign keys; keep the checks off anyway.
        conn.pragma_update(None, "foreign_keys", false)
            .map_err(fail("open: foreign_keys"))?;
        conn.set_prepared_statement_cache_capacity(32);
        ensure_schema(&mut conn, path)?;
        Ok(SqliteHubStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            options,
        })
    }

    /// Another connection on the same file with the same options, as a
    /// second front-end of this process holds.
    pub fn reopen(&self) -> Result<Self, StoreError> {
        Self::open_with(&self.path, self.options.clone())
    }

    /// The path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &SqliteOptions {
        &self.options
    }
}

/// Creates `path` empty (an empty file is an empty SQLite database),
/// readable by its owner only, unless it exists.
#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Creates the schema in an empty database, or checks the version of an
/// existing one. Runs under the write lock, so that two processes opening
/// a new file at once create it once.
fn ensure_schema(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail("open: begin"))?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(fail("open: user_version"))?;
    match version {
        SCHEMA_VERSION => {}
        1 | 2 => {
            // One step per version, in order: 1 to 2, the closed epochs
            // (DSP-6); 2 to 3, the tracker's states (TRK-4), the store id
            // and the fan-out entries (FAN-7, STO-5).
            for (from, step) in [(1, MIGRATE_1_TO_2), (2, MIGRATE_2_TO_3), (2, FANOUT_TABLES)] {
                if version <= from {
                    tx.execute_batch(step)
                        .map_err(fail("open: migrate schema"))?;
                }
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(fail("open: user_version"))?;
        }
        0 => {
            let tables: i64 = tx
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                    [],
                    |row| row.get(0),
                )
                .map_err(fail("open: schema"))?;
            if tables != 0 {
                return Err(StoreError::new(
                    "open: schema",
                    format!(
                        "{}: holds tables but no schema version: not a hub store",
                        path.display()
                    ),
                ));
            }
            tx.execute_batch(SCHEMA)
                .and_then(|()| tx.execute_batch(FANOUT_TABLES))
                .map_err(fail("open: create schema"))?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(fail("open: user_version"))?;
        }
        other => {
            return Err(StoreError::new(
                "open: schema",
                format!(
                    "{}: schema version {other} is unknown to this build, which knows \
                     version {SCHEMA_VERSION}",
                    path.display()
                ),
            ));
        }
    }
    tx.commit().map_err(fail("open: commit"))
}

impl HubStore for SqliteHubStore {
    /// `BEGIN IMMEDIATE`, `f`, `COMMIT`; `ROLLBACK` if `f` or the commit
    /// fails (STO-1). Never runs `f` twice: the write lock is taken at the
    /// start, so there are no conflicts to retry.
    fn transact<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn HubState) -> StoreResult<R>,
    ) -> StoreResult<R> {
        // A poisoned mutex means a thread panicked inside `f`; unwinding
        // dropped its transaction, which rolled it back. The connection is
        // usable: take it, and make sure nothing is left open.
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK")
                .map_err(fail("transaction: rollback"))?;
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail("transaction: begin"))?;
        match f(&mut SqliteTx { conn: &tx }) {
            // A failed COMMIT drops `tx`, which rolls back.
            Ok(r) => tx.commit().map(|()| r).map_err(fail("transaction: commit")),
            Err(e) => {
                // If the rollback fails too, the next transaction retries it
                // (above); the caller needs the first error.
                let _ = tx.rollback();
                Err(e)
            }
        }
    }
}

/// One transaction's view of the file.
struct SqliteTx<'c> {
    conn: &'c Connection,
}

/// A `u64` as it is stored: 8 bytes, big-endian (order-preserving under
/// SQLite's `memcmp` comparison of blobs).
fn be(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

/// A stored `u64` back.
fn from_be(what: &'static str, column: &str, bytes: &[u8]) -> StoreResult<u64> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt(what, format!("{column} is {} bytes, not 8", bytes.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

fn corrupt(what: &'static str, detail: impl core::fmt::Display) -> StoreError {
    StoreError::new(what, format!("corrupt row: {detail}"))
}

fn to_u32(what: &'static str, column: &str, v: i64) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| corrupt(what, format!("{column} {v} out of range")))
}

fn to_usize(what: &'static str, v: i64) -> StoreResult<usize> {
    usize::try_from(v).map_err(|_| corrupt(what, format!("count {v}")))
}

/// The columns of a `groups` row as read, before they are checked.
type GroupRow = (i64, Vec<u8>, i64, i64, Vec<u8>, Vec<u8>);

fn decode_group(what: &'static str, row: GroupRow) -> StoreResult<GroupRecord> {
    let (shard, epoch, mls_suite, commitment_required, group_context, fanout_keys) = row;
    Ok(GroupRecord {
        shard: to_u32(what, "shard", shard)?,
        epoch: from_be(what, "epoch", &epoch)?,
        mls_suite: u16::try_from(mls_suite)
            .map_err(|_| corrupt(what, format!("mls_suite {mls_suite} out of range")))?,
        // The column keeps its first name; true means private handshakes.
        profile: match commitment_required {
            0 => HandshakeProfile::Public,
            1 => HandshakeProfile::Private,
            v => return Err(corrupt(what, format!("commitment_required is {v}"))),
        },
        group_context,
        fanout_keys: GroupRecord::decode_fanout_keys(&fanout_keys)
            .map_err(|e| corrupt(what, e.to_string()))?,
    })
}

impl SqliteTx<'_> {
    /// Runs a cached statement that changes rows; returns how many.
    fn change(
        &self,
        what: &'static str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> StoreResult<usize> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(params))
            .map_err(fail(what))
    }

    /// Writes a group's record: `sql` takes the group id and the record's
    /// columns as `?1` to `?7`.
    fn write_group(
        &self,
        what: &'static str,
        sql: &str,
        group_id: &[u8],
        r: &GroupRecord,
        extra: Option<u64>,
    ) -> StoreResult<usize> {
        let fanout = r
            .encode_fanout_keys()
            .map_err(|e| StoreError::new(what, e.to_string()))?;
        let fanout: &[u8] = &fanout;
        let (shard, epoch, suite) = (i64::from(r.shard), be(r.epoch), i64::from(r.mls_suite));
        let required = i64::from(r.profile.is_private());
        match extra {
            None => self.change(
                what,
                sql,
                params![
                    group_id,
                    shard,
                    epoch,
                    suite,
                    required,
                    r.group_context,
                    fanout
                ],
            ),
            Some(from) => self.change(
                what,
                sql,
                params![
                    group_id,
                    shard,
                    epoch,
                    suite,
                    required,
                    r.group_context,
                    fanout,
                    be(from)
                ],
            ),
        }
    }
}

impl HubState for SqliteTx<'_> {
    fn group(&mut self, group_id: &[u8]) -> StoreResult<Option<GroupRecord>> {
        const WHAT: &str = "group";
        let row: Option<GroupRow> = self
            .conn
            .prepare_cached(
                "SELECT shard, epoch, mls_suite, commitment_required, group_context, fanout_keys
                 FROM groups WHERE group_id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([group_id], |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                    ))
                })
                .optional()
            })
            .map_err(fail(WHAT))?;
        row.map(|row| decode_group(WHAT, row)).transpose()
    }

    fn put_group(&mut self, group_id: &[u8], record: &GroupRecord) -> StoreResult<()> {
        self.write_group(
            "put_group",
            "INSERT INTO groups (group_id, shard, epoch, mls_suite, commitment_required,
                                 group_context, fanout_keys)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (group_id) DO UPDATE SET
                 shard = excluded.shard, epoch = excluded.epoch,
                 mls_suite = excluded.mls_suite,
                 commitment_required = excluded.commitment_required,
                 group_context = excluded.group_context,
                 fanout_keys = excluded.fanout_keys",
            group_id,
            record,
            None,
        )?;
        Ok(())
    }

    fn insert_group(&mut self, group_id: &[u8], record: &GroupRecord) -> StoreResult<bool> {
        // STO-2, HUB-6: created only if absent.
        let n = self.write_group(
            "insert_group",
            "INSERT INTO groups (group_id, shard, epoch, mls_suite, commitment_required,
                                 group_context, fanout_keys)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (group_id) DO NOTHING",
            group_id,
            record,
            None,
        )?;
        Ok(n == 1)
    }

    fn advance_group(
        &mut self,
        group_id: &[u8],
        from_epoch: u64,
        record: &GroupRecord,
    ) -> StoreResult<bool> {
        // STO-2: compare-and-set on the epoch the checks read.
        let n = self.write_group(
            "advance_group",
            "UPDATE groups SET shard = ?2, epoch = ?3, mls_suite = ?4,
                 commitment_required = ?5, group_context = ?6, fanout_keys = ?7
             WHERE group_id = ?1 AND epoch = ?8",
            group_id,
            record,
            Some(from_epoch),
        )?;
        Ok(n == 1)
    }

    fn spend_token(
        &mut self,
        codepoint: u8,
        nonce: &[u8; TOKEN_NONCE_LEN],
        expires_at: u64,
    ) -> StoreResult<bool> {
        // STO-2, TOK-6: a nonce is spent once.
        let n = self.change(
            "spend_token",
            "INSERT INTO spent_tokens (codepoint, nonce, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (codepoint, nonce) DO NOTHING",
            params![codepoint, &nonce[..], be(expires_at)],
        )?;
        Ok(n == 1)
    }

    fn envelope(&mut self, enc: &[u8], now: u64) -> StoreResult<Option<CachedResponse>> {
        const WHAT: &str = "envelope";
        let row: Option<(Vec<u8>, Option<Vec<u8>>)> = self
            .conn
            .prepare_cached(
                "SELECT fingerprint, CASE WHEN response_until > ?2 THEN response END
                 FROM envelopes WHERE enc = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![enc, be(now)], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()
            })
            .map_err(fail(WHAT))?;
        row.map(|(fingerprint, response)| {
            let fingerprint: [u8; 32] = fingerprint.as_slice().try_into().map_err(|_| {
                corrupt(WHAT, format!("fingerprint is {} bytes", fingerprint.len()))
            })?;
            Ok(CachedResponse {
                fingerprint,
                response,
            })
        })
        .transpose()
    }

    fn insert_envelope(
        &mut self,
        enc: &[u8],
        fingerprint: &[u8; 32],
        expires_at: u64,
    ) -> StoreResult<bool> {
        // STO-2, HUB-5: the front-end whose insert took effect processes
        // the envelope.
        let n = self.change(
            "insert_envelope",
            "INSERT INTO envelopes (enc, fingerprint, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (enc) DO NOTHING",
            params![enc, &fingerprint[..], be(expires_at)],
        )?;
        Ok(n == 1)
    }

    fn set_response(&mut self, enc: &[u8], response: &[u8], until: u64) -> StoreResult<()> {
        self.change(
            "set_response",
            "UPDATE envelopes SET response = ?2, response_until = ?3 WHERE enc = ?1",
            params![enc, response, be(until)],
        )?;
        Ok(())
    }

    fn handshake_accepted(&mut self, group_id: &[u8], hash: &[u8; 32]) -> StoreResult<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM handshakes WHERE group_id = ?1 AND hash = ?2")
            .and_then(|mut stmt| stmt.exists(params![group_id, &hash[..]]))
            .map_err(fail("handshake_accepted"))
    }

    fn record_handshake(
        &mut self,
        group_id: &[u8],
        epoch: u64,
        hash: &[u8; 32],
    ) -> StoreResult<bool> {
        // STO-2, HUB-7: recorded only if absent.
        let n = self.change(
            "record_handshake",
            "INSERT INTO handshakes (group_id, hash, epoch) VALUES (?1, ?2, ?3)
             ON CONFLICT (group_id, hash) DO NOTHING",
            params![group_id, &hash[..], be(epoch)],
        )?;
        Ok(n == 1)
    }

    fn forget_handshakes(&mut self, group_id: &[u8], epoch: u64) -> StoreResult<()> {
        self.change(
            "forget_handshakes",
            "DELETE FROM handshakes WHERE group_id = ?1 AND epoch <= ?2",
            params![group_id, be(epoch)],
        )?;
        Ok(())
    }

    fn leaf_signature_key(
        &mut self,
        group_id: &[u8],
        leaf_index: u32,
    ) -> StoreResult<Option<Vec<u8>>> {
        self.conn
            .prepare_cached(
                "SELECT signature_key FROM leaf_keys WHERE group_id = ?1 AND leaf_index = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![group_id, leaf_index], |row| row.get(0))
                    .optional()
            })
            .map_err(fail("leaf_signature_key"))
    }

    fn set_leaf_signature_key(
        &mut self,
        group_id: &[u8],
        leaf_index: u32,
        key: Option<&[u8]>,
    ) -> StoreResult<()> {
        const WHAT: &str = "set_leaf_signature_key";
        match key {
            Some(key) => self.change(
                WHAT,
                "INSERT INTO leaf_keys (group_id, leaf_index, signature_key) VALUES (?1, ?2, ?3)
                 ON CONFLICT (group_id, leaf_index) DO UPDATE SET
                     signature_key = excluded.signature_key",
                params![group_id, leaf_index, key],
            ),
            None => self.change(
                WHAT,
                "DELETE FROM leaf_keys WHERE group_id = ?1 AND leaf_index = ?2",
                params![group_id, leaf_index],
            ),
        }?;
        Ok(())
    }

    fn closed_epoch(&mut self, group_id: &[u8]) -> StoreResult<Option<ClosedEpoch>> {
        const WHAT: &str = "closed_epoch";
        let blob: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT closed FROM closed_epochs WHERE group_id = ?1")
            .and_then(|mut stmt| stmt.query_row([group_id], |row| row.get(0)).optional())
            .map_err(fail(WHAT))?;
        blob.map(|b| ClosedEpoch::decode(&b).map_err(|e| corrupt(WHAT, e.to_string())))
            .transpose()
    }

    fn set_closed_epoch(
        &mut self,
        group_id: &[u8],
        closed: Option<&ClosedEpoch>,
    ) -> StoreResult<()> {
        const WHAT: &str = "set_closed_epoch";
        match closed {
            Some(c) => {
                let blob = c.encode().map_err(|e| corrupt(WHAT, e.to_string()))?;
                self.change(
                    WHAT,
                    "INSERT INTO closed_epochs (group_id, closed) VALUES (?1, ?2)
                     ON CONFLICT (group_id) DO UPDATE SET closed = excluded.closed",
                    params![group_id, &blob[..]],
                )
            }
            None => self.change(
                WHAT,
                "DELETE FROM closed_epochs WHERE group_id = ?1",
                params![group_id],
            ),
        }?;
        Ok(())
    }

    fn tracker_state(&mut self, group_id: &[u8], epoch: u64) -> StoreResult<Option<Vec<u8>>> {
        // The transaction holds the write lock (BEGIN IMMEDIATE): no other
        // writes the row before it ends.
        self.conn
            .prepare_cached("SELECT state FROM tracker_states WHERE group_id = ?1 AND epoch = ?2")
            .and_then(|mut stmt| {
                stmt.query_row(params![group_id, be(epoch)], |row| row.get(0))
                    .optional()
            })
            .map_err(fail("tracker_state"))
    }

    fn set_tracker_state(
        &mut self,
        group_id: &[u8],
        epoch: u64,
        state: Option<&[u8]>,
    ) -> StoreResult<()> {
        const WHAT: &str = "set_tracker_state";
        match state {
            Some(state) => self.change(
                WHAT,
                "INSERT INTO tracker_states (group_id, epoch, state) VALUES (?1, ?2, ?3)
                 ON CONFLICT (group_id, epoch) DO UPDATE SET state = excluded.state",
                params![group_id, be(epoch), state],
            ),
            None => self.change(
                WHAT,
                "DELETE FROM tracker_states WHERE group_id = ?1 AND epoch = ?2",
                params![group_id, be(epoch)],
            ),
        }?;
        Ok(())
    }

    fn store_id(&mut self) -> StoreResult<[u8; STORE_ID_LEN]> {
        const WHAT: &str = "store_id";
        let id: Vec<u8> = self
            .conn
            .prepare_cached("SELECT store_id FROM store_meta WHERE singleton = 1")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .map_err(fail(WHAT))?;
        id.as_slice()
            .try_into()
            .map_err(|_| corrupt(WHAT, format!("store_id is {} bytes", id.len())))
    }

    fn add_fanout(&mut self, e: &NewFanout<'_>) -> StoreResult<u64> {
        // FAN-7: the transaction holds the file's write lock, so sequence
        // numbers follow the commit order.
        const WHAT: &str = "add_fanout";
        let seq: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO fanout (follower, address, group_id, epoch, message)
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING seq",
            )
            .and_then(|mut stmt| {
                stmt.query_row(
                    params![e.follower, e.address, e.group_id, be(e.epoch), e.message],
                    |row| row.get(0),
                )
            })
            .map_err(fail(WHAT))?;
        u64::try_from(seq).map_err(|_| corrupt(WHAT, format!("seq {seq}")))
    }

    fn fanout_entries(&mut self, follower: &str, limit: usize) -> StoreResult<Vec<FanoutEntry>> {
        const WHAT: &str = "fanout_entries";
        type Row = (i64, String, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<Row> = self
            .conn
            .prepare_cached(
                "SELECT seq, follower, address, group_id, epoch, message FROM fanout
                 WHERE follower = ?1 ORDER BY seq LIMIT ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![follower, limit], |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                    ))
                })?
                .collect()
            })
            .map_err(fail(WHAT))?;
        rows.into_iter()
            .map(|(seq, follower, address, group_id, epoch, message)| {
                Ok(FanoutEntry {
                    seq: u64::try_from(seq).map_err(|_| corrupt(WHAT, format!("seq {seq}")))?,
                    follower,
                    address,
                    group_id,
                    epoch: from_be(WHAT, "epoch", &epoch)?,
                    message,
                })
            })
            .collect()
    }

    fn delete_fanout(&mut self, seq: u64) -> StoreResult<bool> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(false);
        };
        let n = self.change("delete_fanout", "DELETE FROM fanout WHERE seq = ?1", [seq])?;
        Ok(n == 1)
    }

    fn claim_delivery(
        &mut self,
        follower: &str,
        holder: &[u8; STORE_ID_LEN],
        now: u64,
        until: u64,
    ) -> StoreResult<bool> {
        // One statement: taken if absent, renewed if ours, taken over if
        // it ran out.
        let n = self.change(
            "claim_delivery",
            "INSERT INTO delivery_leases (follower, holder, until) VALUES (?1, ?2, ?3)
             ON CONFLICT (follower) DO UPDATE SET holder = excluded.holder,
                 until = excluded.until
             WHERE delivery_leases.holder = excluded.holder OR delivery_leases.until <= ?4",
            params![follower, &holder[..], be(until), be(now)],
        )?;
        Ok(n == 1)
    }

    fn expire(&mut self, now: u64) -> StoreResult<()> {
        // STO-3, by the indexes on the expiry columns.
        const WHAT: &str = "expire";
        let now = be(now);
        self.change(
            WHAT,
            "DELETE FROM spent_tokens WHERE expires_at <= ?1",
            [now],
        )?;
        self.change(WHAT, "DELETE FROM envelopes WHERE expires_at <= ?1", [now])?;
        self.change(
            WHAT,
            "UPDATE envelopes SET response = NULL, response_until = NULL
             WHERE response_until <= ?1",
            [now],
        )?;
        Ok(())
    }

    fn counts(&mut self) -> StoreResult<StoreCounts> {
        const WHAT: &str = "counts";
        let row: [i64; 7] = self
            .conn
            .prepare_cached(
                "SELECT (SELECT count(*) FROM groups), (SELECT count(*) FROM leaf_keys),
                        (SELECT count(*) FROM spent_tokens), (SELECT count(*) FROM envelopes),
                        (SELECT count(*) FROM envelopes WHERE response_until IS NOT NULL),
                        (SELECT count(*) FROM handshakes), (SELECT count(*) FROM fanout)",
            )
            .and_then(|mut stmt| {
                stmt.query_row([], |row| {
                    Ok([
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                        row.get(6)?,
                    ])
                })
            })
            .map_err(fail(WHAT))?;
        Ok(StoreCounts {
            groups: to_usize(WHAT, row[0])?,
            leaf_keys: to_usize(WHAT, row[1])?,
            spent_tokens: to_usize(WHAT, row[2])?,
            envelopes: to_usize(WHAT, row[3])?,
            cached_responses: to_usize(WHAT, row[4])?,
            handshakes: to_usize(WHAT, row[5])?,
            fanout: to_usize(WHAT, row[6])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The connection settings of the crate documentation are those in
    /// force (STO-4: WAL, `synchronous`), per connection.
    #[test]
    fn pragmas_are_set_per_connection() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("pragmas.sqlite");
        let query = |store: &SqliteHubStore, pragma: &str| -> i64 {
            let conn = store.conn.lock().expect("connection");
            conn.pragma_query_value(None, pragma, |row| row.get(0))
                .expect(pragma)
        };
        let normal = SqliteHubStore::open(&path).expect("open");
        let full = SqliteOptions::new()
            .with_synchronous(Synchronous::Full)
            .with_busy_timeout(Duration::from_millis(1234))
            .open(&path)
            .expect("open");
        assert_eq!(query(&normal, "synchronous"), 1, "NORMAL");
        assert_eq!(query(&full, "synchronous"), 2, "FULL");
        assert_eq!(query(&normal, "busy_timeout"), 5000);
        assert_eq!(query(&full, "busy_timeout"), 1234);
        assert_eq!(query(&normal, "foreign_keys"), 0);
        let mode: String = normal
            .conn
            .lock()
            .expect("connection")
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .expect("journal_mode");
        assert_eq!(mode, "wal");
        assert_eq!(query(&normal, "user_version"), SCHEMA_VERSION);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
        }
    }

    #[test]
    fn be_blobs_order_as_numbers() {
        let values = [
            0,
            1,
            255,
            256,
            i64::MAX as u64,
            i64::MAX as u64 + 1,
            u64::MAX,
        ];
        for w in values.windows(2) {
            assert!(be(w[0]) < be(w[1]));
            assert_eq!(from_be("t", "c", &be(w[1])).expect("8 bytes"), w[1]);
        }
        assert!(from_be("t", "c", &[0; 7]).is_err());
    }
}
