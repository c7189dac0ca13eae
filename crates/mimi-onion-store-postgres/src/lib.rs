//! The hub state of mimi-onion in PostgreSQL: a [`HubStore`] that several
//! front-ends of one shard share, on one machine or many (spec section
//! "The Store Contract", STO-1 to STO-5).
//!
//! ```no_run
//! use mimi_onion_store_postgres::PostgresHubStore;
//! # fn main() -> Result<(), mimi_onion::state::StoreError> {
//! let store = PostgresHubStore::connect("host=127.0.0.1 user=hub dbname=hub")?;
//! // HubFrontEnd::new(keys, token_keys, shard_count, lobby_shard, store)
//! # let _ = store;
//! # Ok(())
//! # }
//! ```
//!
//! # Schema
//!
//! The tables live in one PostgreSQL schema ([`DEFAULT_SCHEMA`] unless
//! [`PostgresHubStore::connect_with_schema`] names another: several hubs,
//! or isolated tests, share a database that way). Opening a store creates
//! the schema and its tables if they are absent, under an advisory lock so
//! that front-ends starting together do not race; the table
//! `schema_version` holds [`SCHEMA_VERSION`], and a store of another
//! version is refused with an error that says so.
//!
//! | table | key | columns |
//! | --- | --- | --- |
//! | `groups` | `group_id` | `shard`, `epoch`, `mls_suite`, `commitment_required`, `group_context`, `fanout_keys` |
//! | `leaf_keys` | `group_id`, `leaf_index` | `signature_key` |
//! | `spent_tokens` | `codepoint`, `nonce` | `expires_at` (indexed) |
//! | `envelopes` | `enc` | `fingerprint`, `expires_at` (indexed), `response`, `response_until` (indexed) |
//! | `handshakes` | `group_id`, `hash` | `epoch` (indexed with `group_id`) |
//! | `closed_epochs` | `group_id` | `closed` (DSP-6; version 2) |
//! | `tracker_states` | `group_id`, `epoch` | `state` (the group tracker's, TRK-4; version 3) |
//! | `store_meta` | one row | `store_id` (16 random bytes, STO-5; version 3) |
//! | `fanout` | `seq` (identity, never reused) | `follower` (indexed with `seq`), `address`, `group_id`, `epoch`, `message` (FAN-7; version 3) |
//! | `delivery_leases` | `follower` | `holder`, `until` (which deliverer sends to the follower; version 3) |
//!
//! Every `u64` (epochs, expiry times; `u64::MAX` means "never") is a
//! `BIGINT` holding the value with its top bit flipped, read as a signed
//! integer ([`u64_to_sql`]): 0 is stored as `i64::MIN`, `u64::MAX` as
//! `i64::MAX`, so SQL comparisons keep the order of the `u64` values and
//! every value round-trips. `shard` and `leaf_index` (`u32`) are `BIGINT`,
//! `mls_suite` (`u16`) `INTEGER`, `codepoint` (`u8`) `SMALLINT`, each
//! range-checked when read. `fanout_keys` is F per live epoch, in order,
//! as `epoch (8 bytes, big-endian) || length (2 bytes, big-endian) || F`
//! per entry; a row that does not parse is a [`StoreError`], not a panic.
//!
//! # Transactions
//!
//! [`HubStore::transact`] runs the closure in one database transaction at
//! isolation level READ COMMITTED and commits it, or rolls it back when
//! the closure fails. READ COMMITTED is enough because every operation
//! whose race would break a rule (STO-2) is one statement that decides
//! against the latest committed state, not against the transaction's
//! snapshot:
//!
//! * `spend_token`, `insert_envelope`, `insert_group` and
//!   `record_handshake` are `INSERT ... ON CONFLICT DO NOTHING` on the
//!   entry's key, and report the affected-row count. A concurrent insert
//!   of the same key waits for the other transaction to end; if it
//!   committed, this one does nothing (0 rows: the first front-end wins),
//!   if it rolled back, this one inserts.
//! * `advance_group` is `UPDATE ... WHERE group_id = $1 AND epoch = $2`:
//!   it locks the row, and a concurrent update waits for the other
//!   transaction, then re-checks the condition on the committed row, so
//!   only the first commit for an epoch moves it.
//! * `add_fanout` first locks the group's row (`SELECT ... FOR UPDATE`)
//!   and only then draws the entry's sequence number: two front-ends
//!   recording fan-out of the same group run one after the other, so a
//!   group's sequence numbers follow the commit order (FAN-4, FAN-7), and
//!   a deliverer that reads an entry also sees every earlier one of its
//!   group.
//! * Each later statement sees what other transactions committed before
//!   it started: the front-end whose `insert_envelope` lost reads the
//!   winner's record and response (HUB-5).
//!
//! The plain reads (`group`, `handshake_accepted`, ...) may be overtaken
//! by a concurrent commit, but every decision they feed that a race could
//! break is taken again by one of the statements above when the
//! transaction writes. REPEATABLE READ or SERIALIZABLE would turn the same
//! races into serialization failures to retry, with the same outcome at a
//! higher cost; the level is set explicitly, whatever the server's default.
//!
//! A transaction that fails with `serialization_failure` or
//! `deadlock_detected` (SQLSTATE 40001, 40P01: two expiry runs deleting
//! the same rows, for example) is run again, up to [`MAX_ATTEMPTS`] times
//! in all, as the [`HubStore`] contract allows.
//!
//! # Connection
//!
//! One connection per store, behind a mutex (so the store is `Send +
//! Sync`; a front-end handles one envelope at a time per store). When the
//! connection breaks (the server restarted, the network failed), the store
//! connects again: at once, and runs the closure again, when the break
//! came before the commit was sent (nothing was committed); otherwise at
//! the next transaction. While the server is away every transaction fails
//! with a [`StoreError`], so the hub answers `unavailable` (STO-1), and
//! handling resumes when the server is back. A connection timeout of
//! [`DEFAULT_CONNECT_TIMEOUT`] applies unless the connection string sets
//! `connect_timeout`; lock waits are bounded only by the server's
//! `lock_timeout` (for example `options='-c lock_timeout=5s'` in the
//! connection string).
//!
//! This version connects without TLS ([`postgres::NoTls`]): a database on
//! the same machine (loopback or a Unix socket). A remote database needs a
//! TLS connector, which is not wired in yet.
//!
//! # F at rest
//!
//! The store holds F of the live epochs and the leaves' signature keys in
//! the clear: whoever reads the database can verify membership proofs and
//! build fan-out messages for the groups. Protect the database, its
//! backups and its replicas as the hub's private keys.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use mimi_onion::profile::HandshakeProfile;
use mimi_onion::state::{
    CachedResponse, ClosedEpoch, FanoutEntry, GroupRecord, HubState, HubStore, NewFanout,
    StoreCounts, StoreError, StoreResult, STORE_ID_LEN,
};
use mimi_onion::token::TOKEN_NONCE_LEN;
use postgres::error::SqlState;
use postgres::{Client, Config, IsolationLevel, NoTls, Row, Statement};
use zeroize::Zeroizing;

/// The schema a store uses unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "mimi_onion";

/// The version of the tables this crate creates and reads.
pub const SCHEMA_VERSION: i32 = 3;

/// How many times [`HubStore::transact`] runs a transaction that fails
/// with a serialization failure or a deadlock, or whose connection broke
/// before its commit, before it gives up.
pub const MAX_ATTEMPTS: u32 = 5;

/// The connection timeout when the connection string sets none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest schema name PostgreSQL keeps (NAMEDATALEN - 1).
const MAX_SCHEMA_LEN: usize = 63;

/// A `u64` as the `BIGINT` that stores it: the top bit flipped, so that
/// the order of the stored values is the order of the `u64` values (0 is
/// `i64::MIN`, `u64::MAX` is `i64::MAX`).
pub fn u64_to_sql(v: u64) -> i64 {
    i64::from_be_bytes((v ^ (1 << 63)).to_be_bytes())
}

/// The `u64` a `BIGINT` of [`u64_to_sql`] stores.
pub fn u64_from_sql(v: i64) -> u64 {
    u64::from_be_bytes(v.to_be_bytes()) ^ (1 << 63)
}

/// Whether a schema name is one this crate accepts: lowercase ASCII
/// letters, digits and `_`, not starting with a digit, at most 63 bytes,
/// and not one of PostgreSQL's own (`pg_...`, `information_schema`).
fn valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    first_ok
        && name.len() <= MAX_SCHEMA_LEN
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with("pg_")
        && name != "information_schema"
}

/// The client's message with its causes (the server's message among
/// them), and the SQLSTATE when the server sent one.
fn describe(e: &postgres::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    if let Some(code) = e.code() {
        out.push_str(&format!(" (SQLSTATE {})", code.code()));
    }
    out
}

fn store_error(what: &'static str, e: &postgres::Error) -> StoreError {
    StoreError::new(what, describe(e))
}

/// What a failed statement means for the transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    /// Serialization failure or deadlock: run it again.
    Conflict,
    /// The connection is gone (or the server is shutting it down).
    Broken,
    /// Anything else: report it.
    Other,
}

fn cause(e: &postgres::Error) -> Cause {
    let Some(code) = e.code() else {
        return if e.is_closed() {
            Cause::Broken
        } else {
            Cause::Other
        };
    };
    if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED {
        Cause::Conflict
    } else if code.code().starts_with("08")
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
    {
        Cause::Broken
    } else {
        Cause::Other
    }
}

/// The store's statements, in the text that names its schema.
struct Sql {
    group: String,
    put_group: String,
    insert_group: String,
    advance_group: String,
    spend_token: String,
    envelope: String,
    insert_envelope: String,
    set_response: String,
    handshake_accepted: String,
    record_handshake: String,
    forget_handshakes: String,
    leaf_key: String,
    set_leaf_key: String,
    delete_leaf_key: String,
    closed_epoch: String,
    set_closed_epoch: String,
    delete_closed_epoch: String,
    tracker_state: String,
    set_tracker_state: String,
    delete_tracker_state: String,
    expire_tokens: String,
    expire_envelopes: String,
    expire_responses: String,
    counts: String,
    store_id: String,
    lock_group: String,
    add_fanout: String,
    fanout_entries: String,
    delete_fanout: String,
    claim_delivery: String,
}

const GROUP_COLUMNS: &str =
    "group_id, shard, epoch, mls_suite, commitment_required, group_context, fanout_keys";

impl Sql {
    fn new(s: &str) -> Self {
        Sql {
            group: format!(
                "SELECT shard, epoch, mls_suite, commitment_required, group_context, fanout_keys \
                 FROM {s}.groups WHERE group_id = $1"
            ),
            put_group: format!(
                "INSERT INTO {s}.groups ({GROUP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (group_id) DO UPDATE SET shard = EXCLUDED.shard, \
                 epoch = EXCLUDED.epoch, mls_suite = EXCLUDED.mls_suite, \
                 commitment_required = EXCLUDED.commitment_required, \
                 group_context = EXCLUDED.group_context, fanout_keys = EXCLUDED.fanout_keys"
            ),
            insert_group: format!(
                "INSERT INTO {s}.groups ({GROUP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (group_id) DO NOTHING"
            ),
            advance_group: format!(
                "UPDATE {s}.groups SET shard = $3, epoch = $4, mls_suite = $5, \
                 commitment_required = $6, group_context = $7, fanout_keys = $8 \
                 WHERE group_id = $1 AND epoch = $2"
            ),
            spend_token: format!(
                "INSERT INTO {s}.spent_tokens (codepoint, nonce, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (codepoint, nonce) DO NOTHING"
            ),
            envelope: format!(
                "SELECT fingerprint, CASE WHEN response_until > $2 THEN response END \
                 FROM {s}.envelopes WHERE enc = $1"
            ),
            insert_envelope: format!(
                "INSERT INTO {s}.envelopes (enc, fingerprint, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (enc) DO NOTHING"
            ),
            set_response: format!(
                "UPDATE {s}.envelopes SET response = $2, response_until = $3 WHERE enc = $1"
            ),
            handshake_accepted: format!(
                "SELECT EXISTS (SELECT 1 FROM {s}.handshakes WHERE group_id = $1 AND hash = $2)"
            ),
            record_handshake: format!(
                "INSERT INTO {s}.handshakes (group_id, hash, epoch) VALUES ($1, $2, $3) \
                 ON CONFLICT (group_id, hash) DO NOTHING"
            ),
            forget_handshakes: format!(
                "DELETE FROM {s}.handshakes WHERE group_id = $1 AND epoch <= $2"
            ),
            leaf_key: format!(
                "SELECT signature_key FROM {s}.leaf_keys WHERE group_id = $1 AND leaf_index = $2"
            ),
            set_leaf_key: format!(
                "INSERT INTO {s}.leaf_keys (group_id, leaf_index, signature_key) \
                 VALUES ($1, $2, $3) ON CONFLICT (group_id, leaf_index) \
                 DO UPDATE SET signature_key = EXCLUDED.signature_key"
            ),
            delete_leaf_key: format!(
                "DELETE FROM {s}.leaf_keys WHERE group_id = $1 AND leaf_index = $2"
            ),
            // DSP-6: the row is locked until the transaction ends, so two
            // disputes counted at once are both counted (STO-2).
            closed_epoch: format!(
                "SELECT closed FROM {s}.closed_epochs WHERE group_id = $1 FOR UPDATE"
            ),
            set_closed_epoch: format!(
                "INSERT INTO {s}.closed_epochs (group_id, closed) VALUES ($1, $2) \
                 ON CONFLICT (group_id) DO UPDATE SET closed = EXCLUDED.closed"
            ),
            delete_closed_epoch: format!("DELETE FROM {s}.closed_epochs WHERE group_id = $1"),
            // Locked until the transaction ends: two proposals accepted at
            // once are queued one after the other (STO-2).
            tracker_state: format!(
                "SELECT state FROM {s}.tracker_states WHERE group_id = $1 AND epoch = $2 \
                 FOR UPDATE"
            ),
            set_tracker_state: format!(
                "INSERT INTO {s}.tracker_states (group_id, epoch, state) VALUES ($1, $2, $3) \
                 ON CONFLICT (group_id, epoch) DO UPDATE SET state = EXCLUDED.state"
            ),
            delete_tracker_state: format!(
                "DELETE FROM {s}.tracker_states WHERE group_id = $1 AND epoch = $2"
            ),
            expire_tokens: format!("DELETE FROM {s}.spent_tokens WHERE expires_at <= $1"),
            expire_envelopes: format!("DELETE FROM {s}.envelopes WHERE expires_at <= $1"),
            expire_responses: format!(
                "UPDATE {s}.envelopes SET response = NULL, response_until = NULL \
                 WHERE response_until <= $1"
            ),
            counts: format!(
                "SELECT (SELECT count(*) FROM {s}.groups), \
                 (SELECT count(*) FROM {s}.leaf_keys), \
                 (SELECT count(*) FROM {s}.spent_tokens), \
                 (SELECT count(*) FROM {s}.envelopes), \
                 (SELECT count(*) FROM {s}.envelopes WHERE response IS NOT NULL), \
                 (SELECT count(*) FROM {s}.handshakes), \
                 (SELECT count(*) FROM {s}.fanout)"
            ),
            store_id: format!("SELECT store_id FROM {s}.store_meta"),
            // FAN-7: the group's row is locked until the transaction ends
            // before the sequence number is drawn, so a group's entries are
            // numbered in the order their transactions commit.
            lock_group: format!("SELECT 1 FROM {s}.groups WHERE group_id = $1 FOR UPDATE"),
            add_fanout: format!(
                "INSERT INTO {s}.fanout (follower, address, group_id, epoch, message) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING seq"
            ),
            fanout_entries: format!(
                "SELECT seq, follower, address, group_id, epoch, message FROM {s}.fanout \
                 WHERE follower = $1 ORDER BY seq LIMIT $2"
            ),
            delete_fanout: format!("DELETE FROM {s}.fanout WHERE seq = $1"),
            // One statement: a concurrent claim waits for this one's
            // transaction and re-checks the condition on the committed row.
            claim_delivery: format!(
                "INSERT INTO {s}.delivery_leases AS l (follower, holder, until) \
                 VALUES ($1, $2, $3) ON CONFLICT (follower) DO UPDATE \
                 SET holder = EXCLUDED.holder, until = EXCLUDED.until \
                 WHERE l.holder = EXCLUDED.holder OR l.until <= $4"
            ),
        }
    }
}

/// The table of closed epochs (DSP-6), new in version 2.
fn closed_epochs_table(s: &str) -> String {
    format!(
        "CREATE TABLE {s}.closed_epochs (
             group_id BYTEA PRIMARY KEY,
             closed BYTEA NOT NULL
         );"
    )
}

/// The table of the group tracker's states (TRK-4), new in version 3.
fn tracker_states_table(s: &str) -> String {
    format!(
        "CREATE TABLE {s}.tracker_states (
             group_id BYTEA NOT NULL,
             epoch BIGINT NOT NULL,
             state BYTEA NOT NULL,
             PRIMARY KEY (group_id, epoch)
         );"
    )
}

/// The store's identifier and the fan-out entries (FAN-7, STO-5), new in
/// version 3. The identity column never hands out a number twice.
fn fanout_tables(s: &str) -> String {
    format!(
        "CREATE TABLE {s}.store_meta (
             singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
             store_id BYTEA NOT NULL CHECK (length(store_id) = 16)
         );
         INSERT INTO {s}.store_meta (store_id) VALUES (uuid_send(gen_random_uuid()));
         CREATE TABLE {s}.fanout (
             seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             follower TEXT NOT NULL,
             address BYTEA NOT NULL,
             group_id BYTEA NOT NULL,
             epoch BIGINT NOT NULL,
             message BYTEA NOT NULL
         );
         CREATE INDEX fanout_follower_seq ON {s}.fanout (follower, seq);
         CREATE TABLE {s}.delivery_leases (
             follower TEXT PRIMARY KEY,
             holder BYTEA NOT NULL,
             until BIGINT NOT NULL
         );"
    )
}

/// The tables of [`SCHEMA_VERSION`], in schema `s` (quoted).
fn create_tables(s: &str) -> String {
    format!(
        "CREATE TABLE {s}.schema_version (
             singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
             version INTEGER NOT NULL
         );
         CREATE TABLE {s}.groups (
             group_id BYTEA PRIMARY KEY,
             shard BIGINT NOT NULL,
             epoch BIGINT NOT NULL,
             mls_suite INTEGER NOT NULL,
             commitment_required BOOLEAN NOT NULL,
             group_context BYTEA NOT NULL,
             fanout_keys BYTEA NOT NULL
         );
         CREATE TABLE {s}.leaf_keys (
             group_id BYTEA NOT NULL,
             leaf_index BIGINT NOT NULL,
             signature_key BYTEA NOT NULL,
             PRIMARY KEY (group_id, leaf_index)
         );
         CREATE TABLE {s}.spent_tokens (
             codepoint SMALLINT NOT NULL,
             nonce BYTEA NOT NULL,
             expires_at BIGINT NOT NULL,
             PRIMARY KEY (codepoint, nonce)
         );
         CREATE INDEX spent_tokens_expires_at ON {s}.spent_tokens (expires_at);
         CREATE TABLE {s}.envelopes (
             enc BYTEA PRIMARY KEY,
             fingerprint BYTEA NOT NULL,
             expires_at BIGINT NOT NULL,
             response BYTEA,
             response_until BIGINT,
             CHECK ((response IS NULL) = (response_until IS NULL))
         );
         CREATE INDEX envelopes_expires_at ON {s}.envelopes (expires_at);
         CREATE INDEX envelopes_response_until ON {s}.envelopes (response_until)
             WHERE response_until IS NOT NULL;
         CREATE TABLE {s}.handshakes (
             group_id BYTEA NOT NULL,
             hash BYTEA NOT NULL,
             epoch BIGINT NOT NULL,
             PRIMARY KEY (group_id, hash)
         );
         CREATE INDEX handshakes_group_epoch ON {s}.handshakes (group_id, epoch);
         {closed}
         {tracked}
         {fanout}
         INSERT INTO {s}.schema_version (version) VALUES ({SCHEMA_VERSION});",
        closed = closed_epochs_table(s),
        tracked = tracker_states_table(s),
        fanout = fanout_tables(s)
    )
}

/// The statements, prepared on one connection.
struct Statements {
    group: Statement,
    put_group: Statement,
    insert_group: Statement,
    advance_group: Statement,
    spend_token: Statement,
    envelope: Statement,
    insert_envelope: Statement,
    set_response: Statement,
    handshake_accepted: Statement,
    record_handshake: Statement,
    forget_handshakes: Statement,
    leaf_key: Statement,
    set_leaf_key: Statement,
    delete_leaf_key: Statement,
    closed_epoch: Statement,
    set_closed_epoch: Statement,
    delete_closed_epoch: Statement,
    tracker_state: Statement,
    set_tracker_state: Statement,
    delete_tracker_state: Statement,
    expire_tokens: Statement,
    expire_envelopes: Statement,
    expire_responses: Statement,
    counts: Statement,
    store_id: Statement,
    lock_group: Statement,
    add_fanout: Statement,
    fanout_entries: Statement,
    delete_fanout: Statement,
    claim_delivery: Statement,
}

impl Statements {
    fn prepare(client: &mut Client, sql: &Sql) -> Result<Self, postgres::Error> {
        let mut p = |q: &str| client.prepare(q);
        Ok(Statements {
            group: p(&sql.group)?,
            put_group: p(&sql.put_group)?,
            insert_group: p(&sql.insert_group)?,
            advance_group: p(&sql.advance_group)?,
            spend_token: p(&sql.spend_token)?,
            envelope: p(&sql.envelope)?,
            insert_envelope: p(&sql.insert_envelope)?,
            set_response: p(&sql.set_response)?,
            handshake_accepted: p(&sql.handshake_accepted)?,
            record_handshake: p(&sql.record_handshake)?,
            forget_handshakes: p(&sql.forget_handshakes)?,
            leaf_key: p(&sql.leaf_key)?,
            set_leaf_key: p(&sql.set_leaf_key)?,
            delete_leaf_key: p(&sql.delete_leaf_key)?,
            closed_epoch: p(&sql.closed_epoch)?,
            set_closed_epoch: p(&sql.set_closed_epoch)?,
            delete_closed_epoch: p(&sql.delete_closed_epoch)?,
            tracker_state: p(&sql.tracker_state)?,
            set_tracker_state: p(&sql.set_tracker_state)?,
            delete_tracker_state: p(&sql.delete_tracker_state)?,
            expire_tokens: p(&sql.expire_tokens)?,
            expire_envelopes: p(&sql.expire_envelopes)?,
            expire_responses: p(&sql.expire_responses)?,
            counts: p(&sql.counts)?,
            store_id: p(&sql.store_id)?,
            lock_group: p(&sql.lock_group)?,
            add_fanout: p(&sql.add_fanout)?,
            fanout_entries: p(&sql.fanout_entries)?,
            delete_fanout: p(&sql.delete_fanout)?,
            claim_delivery: p(&sql.claim_delivery)?,
        })
    }
}

/// A live connection with its prepared statements.
struct Conn {
    client: Client,
    statements: Statements,
}

/// A [`HubStore`] in a PostgreSQL database, shared by every front-end of a
/// shard that connects to the same database and schema (see the crate
/// documentation for the schema, the isolation level and reconnection).
pub struct PostgresHubStore {
    config: Config,
    schema: String,
    sql: Sql,
    conn: Mutex<Option<Conn>>,
}

impl core::fmt::Debug for PostgresHubStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PostgresHubStore")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresHubStore {
    /// Connects to the database that `url` names (a libpq-style connection
    /// string, `host=127.0.0.1 user=hub dbname=hub`, or a
    /// `postgresql://` URL) and opens the store in [`DEFAULT_SCHEMA`],
    /// creating its tables if they are absent.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_schema(url, DEFAULT_SCHEMA)
    }

    /// [`Self::connect`] with the store in schema `schema` (lowercase ASCII
    /// letters, digits and `_`, at most 63 bytes): several hubs, or tests,
    /// in one database.
    pub fn connect_with_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        let mut config: Config = url
            .parse()
            .map_err(|e: postgres::Error| store_error("connection string", &e))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("mimi-onion hub");
        }
        if !valid_schema(schema) {
            return Err(StoreError::new(
                "connection string",
                format!(
                    "schema name {schema:?}: use 1 to {MAX_SCHEMA_LEN} lowercase ASCII letters, \
                     digits or '_', not starting with a digit or 'pg_'"
                ),
            ));
        }
        let store = PostgresHubStore {
            sql: Sql::new(&format!("\"{schema}\"")),
            schema: schema.to_owned(),
            config,
            conn: Mutex::new(None),
        };
        let mut client = store.client()?;
        store.open_schema(&mut client)?;
        let conn = store.prepare(client)?;
        *store.slot() = Some(conn);
        Ok(store)
    }

    /// Another store on the same database and schema, with its own
    /// connection: what a second front-end of the shard holds.
    pub fn connect_again(&self) -> Result<Self, StoreError> {
        let store = PostgresHubStore {
            config: self.config.clone(),
            schema: self.schema.clone(),
            sql: Sql::new(&format!("\"{}\"", self.schema)),
            conn: Mutex::new(None),
        };
        let conn = store.prepare(store.client()?)?;
        *store.slot() = Some(conn);
        Ok(store)
    }

    /// The schema the store's tables are in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    fn client(&self) -> Result<Client, StoreError> {
        self.config
            .connect(NoTls)
            .map_err(|e| store_error("connect", &e))
    }

    fn prepare(&self, mut client: Client) -> Result<Conn, StoreError> {
        let statements =
            Statements::prepare(&mut client, &self.sql).map_err(|e| store_error("prepare", &e))?;
        Ok(Conn { client, statements })
    }

    /// Creates the schema and its tables if absent (one front-end at a
    /// time, under a session advisory lock), and checks the schema
    /// version.
    fn open_schema(&self, client: &mut Client) -> Result<(), StoreError> {
        // A store that exists needs no lock and no privilege beyond
        // reading it.
        if self.check_schema(client, false)? {
            return Ok(());
        }
        let err = |e: postgres::Error| store_error("open schema", &e);
        let lock = "hashtext('mimi-onion-store-postgres: ' || $1)";
        client
            .execute(&format!("SELECT pg_advisory_lock({lock})"), &[&self.schema])
            .map_err(err)?;
        // A new transaction after the lock: it sees the tables that the
        // front-end which held the lock before created.
        let created = self.check_schema(client, true);
        let unlocked = client
            .execute(
                &format!("SELECT pg_advisory_unlock({lock})"),
                &[&self.schema],
            )
            .map_err(err);
        created?;
        unlocked.map(|_| ())
    }

    /// In one transaction: whether the store's tables exist (creating them
    /// first if `create`), and if so that their version is ours.
    fn check_schema(&self, client: &mut Client, create: bool) -> Result<bool, StoreError> {
        let err = |e: postgres::Error| store_error("open schema", &e);
        let mut tx = client.transaction().map_err(err)?;
        let row = tx
            .query_one(
                "SELECT to_regclass(quote_ident($1) || '.schema_version') IS NOT NULL",
                &[&self.schema],
            )
            .map_err(err)?;
        let exists: bool = row.try_get(0).map_err(err)?;
        if !exists {
            if !create {
                return Ok(false);
            }
            let s = format!("\"{}\"", self.schema);
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {s}"))
                .map_err(err)?;
            tx.batch_execute(&create_tables(&s)).map_err(err)?;
        }
        let rows = tx
            .query(
                &format!("SELECT version FROM \"{}\".schema_version", self.schema),
                &[],
            )
            .map_err(err)?;
        let mut versions: Vec<i32> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        let s = format!("\"{}\"", self.schema);
        if versions == [1] {
            // From version 1 to 2: the closed epochs of the groups (DSP-6).
            tx.batch_execute(&format!(
                "{} UPDATE {s}.schema_version SET version = 2;",
                closed_epochs_table(&s)
            ))
            .map_err(err)?;
            versions = vec![2];
        }
        if versions == [2] {
            // From version 2 to 3: the group tracker's states (TRK-4), the
            // store id and the fan-out entries (FAN-7, STO-5).
            tx.batch_execute(&format!(
                "{} {} UPDATE {s}.schema_version SET version = 3;",
                tracker_states_table(&s),
                fanout_tables(&s)
            ))
            .map_err(err)?;
            versions = vec![3];
        }
        if versions != [SCHEMA_VERSION] {
            return Err(StoreError::new(
                "open schema",
                format!(
                    "schema {:?} has version {versions:?}; this build of \
                     mimi-onion-store-postgres knows version {SCHEMA_VERSION} only",
                    self.schema
                ),
            ));
        }
        tx.commit().map_err(err)?;
        Ok(true)
    }

    /// The connection slot. A transaction that panicked leaves the mutex
    /// poisoned; its connection is dropped (the server rolls back what it
    /// left open) and the next transaction connects again.
    fn slot(&self) -> MutexGuard<'_, Option<Conn>> {
        match self.conn.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                let mut guard = poisoned.into_inner();
                *guard = None;
                self.conn.clear_poison();
                guard
            }
        }
    }
}

/// How one attempt at a transaction failed.
struct Failed {
    error: StoreError,
    cause: Cause,
    /// The failure came with or after the commit: whether it took effect
    /// is unknown, so it is not run again on a new connection.
    at_commit: bool,
}

/// Runs `f` once in one transaction on `conn`.
fn attempt<R>(
    conn: &mut Conn,
    f: &mut dyn FnMut(&mut dyn HubState) -> StoreResult<R>,
) -> Result<R, Failed> {
    let Conn { client, statements } = conn;
    let before_commit = |what, e: postgres::Error| Failed {
        error: store_error(what, &e),
        cause: cause(&e),
        at_commit: false,
    };
    let t = client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .map_err(|e| before_commit("begin", e))?;
    let mut tx = PgTx {
        t,
        st: statements,
        failure: None,
    };
    let result = f(&mut tx);
    let PgTx { t, failure, .. } = tx;
    match result {
        Ok(r) => match t.commit() {
            Ok(()) => Ok(r),
            Err(e) => Err(Failed {
                error: store_error("commit", &e),
                cause: cause(&e),
                at_commit: true,
            }),
        },
        Err(error) => {
            // Dropping the transaction would roll it back as well.
            let _ = t.rollback();
            Err(Failed {
                error,
                cause: failure.unwrap_or(Cause::Other),
                at_commit: false,
            })
        }
    }
}

impl HubStore for PostgresHubStore {
    fn transact<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn HubState) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let mut slot = self.slot();
        let mut reconnected = false;
        let mut attempts = 0;
        loop {
            attempts += 1;
            if slot.as_ref().is_some_and(|c| c.client.is_closed()) {
                *slot = None;
            }
            let conn = match &mut *slot {
                Some(conn) => conn,
                empty => {
                    reconnected = true;
                    empty.insert(self.prepare(self.client()?)?)
                }
            };
            let failed = match attempt(conn, f) {
                Ok(r) => return Ok(r),
                Err(failed) => failed,
            };
            let broken = failed.cause == Cause::Broken || conn.client.is_closed();
            if broken {
                *slot = None;
            }
            let again = match failed.cause {
                Cause::Conflict => true,
                // A connection that broke before this transaction's commit
                // (typically one that went stale while the server
                // restarted): nothing was committed, so run it again on a
                // new connection, once.
                _ if broken => !failed.at_commit && !reconnected,
                _ => false,
            };
            if !again || attempts >= MAX_ATTEMPTS {
                return Err(failed.error);
            }
            if failed.cause == Cause::Conflict {
                std::thread::sleep(Duration::from_millis(u64::from(attempts)));
            }
        }
    }
}

/// One transaction: the [`HubState`] that [`HubStore::transact`] hands to
/// its closure.
struct PgTx<'c> {
    t: postgres::Transaction<'c>,
    st: &'c Statements,
    /// What the first failed statement means for the transaction (after
    /// it, PostgreSQL refuses every statement until the rollback).
    failure: Option<Cause>,
}

type Params<'p> = [&'p (dyn postgres::types::ToSql + Sync)];

impl PgTx<'_> {
    fn fail(&mut self, what: &'static str, e: &postgres::Error) -> StoreError {
        self.failure.get_or_insert(cause(e));
        store_error(what, e)
    }

    fn execute(&mut self, what: &'static str, st: &Statement, p: &Params<'_>) -> StoreResult<u64> {
        match self.t.execute(st, p) {
            Ok(n) => Ok(n),
            Err(e) => Err(self.fail(what, &e)),
        }
    }

    fn query_opt(
        &mut self,
        what: &'static str,
        st: &Statement,
        p: &Params<'_>,
    ) -> StoreResult<Option<Row>> {
        match self.t.query_opt(st, p) {
            Ok(r) => Ok(r),
            Err(e) => Err(self.fail(what, &e)),
        }
    }

    fn query_one(
        &mut self,
        what: &'static str,
        st: &Statement,
        p: &Params<'_>,
    ) -> StoreResult<Row> {
        match self.t.query_one(st, p) {
            Ok(r) => Ok(r),
            Err(e) => Err(self.fail(what, &e)),
        }
    }

    /// Writes a group record: `put_group`, `insert_group` (both with the
    /// group's seven columns) or `advance_group` (`from_epoch` first).
    fn write_group(
        &mut self,
        what: &'static str,
        st: &Statement,
        group_id: &[u8],
        from_epoch: Option<u64>,
        r: &GroupRecord,
    ) -> StoreResult<u64> {
        let shard = i64::from(r.shard);
        let epoch = u64_to_sql(r.epoch);
        let suite = i32::from(r.mls_suite);
        let fanout = r
            .encode_fanout_keys()
            .map_err(|e| StoreError::new(what, e.to_string()))?;
        let fanout: &[u8] = &fanout;
        match from_epoch {
            None => self.execute(
                what,
                st,
                &[
                    &group_id,
                    &shard,
                    &epoch,
                    &suite,
                    &r.profile.is_private(),
                    &r.group_context,
                    &fanout,
                ],
            ),
            Some(from) => self.execute(
                what,
                st,
                &[
                    &group_id,
                    &u64_to_sql(from),
                    &shard,
                    &epoch,
                    &suite,
                    &r.profile.is_private(),
                    &r.group_context,
                    &fanout,
                ],
            ),
        }
    }
}

/// A column of a row, or a corrupt-row error naming the operation.
fn column<'r, T: postgres::types::FromSql<'r>>(
    what: &'static str,
    row: &'r Row,
    i: usize,
) -> StoreResult<T> {
    row.try_get(i)
        .map_err(|e| StoreError::new(what, format!("corrupt row: column {i}: {e}")))
}

fn group_from_row(row: &Row) -> StoreResult<GroupRecord> {
    let what = "group";
    let corrupt = |c: &str| StoreError::new(what, format!("corrupt row: {c} out of range"));
    let shard: i64 = column(what, row, 0)?;
    let epoch: i64 = column(what, row, 1)?;
    let suite: i32 = column(what, row, 2)?;
    let fanout: Zeroizing<Vec<u8>> = Zeroizing::new(column(what, row, 5)?);
    Ok(GroupRecord {
        shard: u32::try_from(shard).map_err(|_| corrupt("shard"))?,
        epoch: u64_from_sql(epoch),
        mls_suite: u16::try_from(suite).map_err(|_| corrupt("mls_suite"))?,
        profile: HandshakeProfile::from_private(column(what, row, 3)?),
        group_context: column(what, row, 4)?,
        fanout_keys: GroupRecord::decode_fanout_keys(&fanout)
            .map_err(|_| StoreError::new("group", "corrupt row: fanout_keys does not parse"))?,
    })
}

impl HubState for PgTx<'_> {
    fn group(&mut self, group_id: &[u8]) -> StoreResult<Option<GroupRecord>> {
        let st = self.st;
        self.query_opt("group", &st.group, &[&group_id])?
            .map(|row| group_from_row(&row))
            .transpose()
    }

    fn put_group(&mut self, group_id: &[u8], record: &GroupRecord) -> StoreResult<()> {
        let st = self.st;
        self.write_group("put_group", &st.put_group, group_id, None, record)?;
        Ok(())
    }

    fn insert_group(&mut self, group_id: &[u8], record: &GroupRecord) -> StoreResult<bool> {
        let st = self.st;
        let n = self.write_group("insert_group", &st.insert_group, group_id, None, record)?;
        Ok(n == 1)
    }

    fn advance_group(
        &mut self,
        group_id: &[u8],
        from_epoch: u64,
        record: &GroupRecord,
    ) -> StoreResult<bool> {
        let st = self.st;
        let n = self.write_group(
            "advance_group",
            &st.advance_group,
            group_id,
            Some(from_epoch),
            record,
        )?;
        Ok(n == 1)
    }

    fn spend_token(
        &mut self,
        codepoint: u8,
        nonce: &[u8; TOKEN_NONCE_LEN],
        expires_at: u64,
    ) -> StoreResult<bool> {
        let st = self.st;
        let n = self.execute(
            "spend_token",
            &st.spend_token,
            &[&i16::from(codepoint), &&nonce[..], &u64_to_sql(expires_at)],
        )?;
        Ok(n == 1)
    }

    fn envelope(&mut self, enc: &[u8], now: u64) -> StoreResult<Option<CachedResponse>> {
        let what = "envelope";
        let st = self.st;
        let Some(row) = self.query_opt(what, &st.envelope, &[&enc, &u64_to_sql(now)])? else {
            return Ok(None);
        };
        let fingerprint: &[u8] = column(what, &row, 0)?;
        let fingerprint = <[u8; 32]>::try_from(fingerprint)
            .map_err(|_| StoreError::new(what, "corrupt row: fingerprint is not 32 bytes"))?;
        Ok(Some(CachedResponse {
            fingerprint,
            response: column(what, &row, 1)?,
        }))
    }

    fn insert_envelope(
        &mut self,
        enc: &[u8],
        fingerprint: &[u8; 32],
        expires_at: u64,
    ) -> StoreResult<bool> {
        let st = self.st;
        let n = self.execute(
            "insert_envelope",
            &st.insert_envelope,
            &[&enc, &&fingerprint[..], &u64_to_sql(expires_at)],
        )?;
        Ok(n == 1)
    }

    fn set_response(&mut self, enc: &[u8], response: &[u8], until: u64) -> StoreResult<()> {
        let st = self.st;
        self.execute(
            "set_response",
            &st.set_response,
            &[&enc, &response, &u64_to_sql(until)],
        )?;
        Ok(())
    }

    fn handshake_accepted(&mut self, group_id: &[u8], hash: &[u8; 32]) -> StoreResult<bool> {
        let what = "handshake_accepted";
        let st = self.st;
        let row = self.query_one(what, &st.handshake_accepted, &[&group_id, &&hash[..]])?;
        column(what, &row, 0)
    }

    fn record_handshake(
        &mut self,
        group_id: &[u8],
        epoch: u64,
        hash: &[u8; 32],
    ) -> StoreResult<bool> {
        let st = self.st;
        let n = self.execute(
            "record_handshake",
            &st.record_handshake,
            &[&group_id, &&hash[..], &u64_to_sql(epoch)],
        )?;
        Ok(n == 1)
    }

    fn forget_handshakes(&mut self, group_id: &[u8], epoch: u64) -> StoreResult<()> {
        let st = self.st;
        self.execute(
            "forget_handshakes",
            &st.forget_handshakes,
            &[&group_id, &u64_to_sql(epoch)],
        )?;
        Ok(())
    }

    fn leaf_signature_key(
        &mut self,
        group_id: &[u8],
        leaf_index: u32,
    ) -> StoreResult<Option<Vec<u8>>> {
        let what = "leaf_signature_key";
        let st = self.st;
        self.query_opt(what, &st.leaf_key, &[&group_id, &i64::from(leaf_index)])?
            .map(|row| column(what, &row, 0))
            .transpose()
    }

    fn set_leaf_signature_key(
        &mut self,
        group_id: &[u8],
        leaf_index: u32,
        key: Option<&[u8]>,
    ) -> StoreResult<()> {
        let what = "set_leaf_signature_key";
        let st = self.st;
        let leaf = i64::from(leaf_index);
        match key {
            Some(key) => self.execute(what, &st.set_leaf_key, &[&group_id, &leaf, &key])?,
            None => self.execute(what, &st.delete_leaf_key, &[&group_id, &leaf])?,
        };
        Ok(())
    }

    fn closed_epoch(&mut self, group_id: &[u8]) -> StoreResult<Option<ClosedEpoch>> {
        let what = "closed_epoch";
        let st = self.st;
        self.query_opt(what, &st.closed_epoch, &[&group_id])?
            .map(|row| {
                let blob: zeroize::Zeroizing<Vec<u8>> =
                    zeroize::Zeroizing::new(column(what, &row, 0)?);
                ClosedEpoch::decode(&blob).map_err(|e| StoreError::new(what, e.to_string()))
            })
            .transpose()
    }

    fn set_closed_epoch(
        &mut self,
        group_id: &[u8],
        closed: Option<&ClosedEpoch>,
    ) -> StoreResult<()> {
        let what = "set_closed_epoch";
        let st = self.st;
        match closed {
            Some(c) => {
                let blob = c
                    .encode()
                    .map_err(|e| StoreError::new(what, e.to_string()))?;
                let blob: &[u8] = &blob;
                self.execute(what, &st.set_closed_epoch, &[&group_id, &blob])?
            }
            None => self.execute(what, &st.delete_closed_epoch, &[&group_id])?,
        };
        Ok(())
    }

    fn tracker_state(&mut self, group_id: &[u8], epoch: u64) -> StoreResult<Option<Vec<u8>>> {
        let what = "tracker_state";
        let st = self.st;
        self.query_opt(what, &st.tracker_state, &[&group_id, &u64_to_sql(epoch)])?
            .map(|row| column(what, &row, 0))
            .transpose()
    }

    fn set_tracker_state(
        &mut self,
        group_id: &[u8],
        epoch: u64,
        state: Option<&[u8]>,
    ) -> StoreResult<()> {
        let what = "set_tracker_state";
        let st = self.st;
        let epoch = u64_to_sql(epoch);
        match state {
            Some(state) => {
                self.execute(what, &st.set_tracker_state, &[&group_id, &epoch, &state])?
            }
            None => self.execute(what, &st.delete_tracker_state, &[&group_id, &epoch])?,
        };
        Ok(())
    }

    fn store_id(&mut self) -> StoreResult<[u8; STORE_ID_LEN]> {
        let what = "store_id";
        let st = self.st;
        let row = self.query_one(what, &st.store_id, &[])?;
        let id: &[u8] = column(what, &row, 0)?;
        <[u8; STORE_ID_LEN]>::try_from(id)
            .map_err(|_| StoreError::new(what, "corrupt row: store_id is not 16 bytes"))
    }

    fn add_fanout(&mut self, e: &NewFanout<'_>) -> StoreResult<u64> {
        let what = "add_fanout";
        let st = self.st;
        self.query_opt(what, &st.lock_group, &[&e.group_id])?;
        let row = self.query_one(
            what,
            &st.add_fanout,
            &[
                &e.follower,
                &e.address,
                &e.group_id,
                &u64_to_sql(e.epoch),
                &e.message,
            ],
        )?;
        let seq: i64 = column(what, &row, 0)?;
        u64::try_from(seq).map_err(|_| StoreError::new(what, "corrupt row: negative seq"))
    }

    fn fanout_entries(&mut self, follower: &str, limit: usize) -> StoreResult<Vec<FanoutEntry>> {
        let what = "fanout_entries";
        let st = self.st;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match self.t.query(&st.fanout_entries, &[&follower, &limit]) {
            Ok(rows) => rows,
            Err(e) => return Err(self.fail(what, &e)),
        };
        rows.iter()
            .map(|row| {
                let seq: i64 = column(what, row, 0)?;
                let epoch: i64 = column(what, row, 4)?;
                Ok(FanoutEntry {
                    seq: u64::try_from(seq)
                        .map_err(|_| StoreError::new(what, "corrupt row: negative seq"))?,
                    follower: column(what, row, 1)?,
                    address: column(what, row, 2)?,
                    group_id: column(what, row, 3)?,
                    epoch: u64_from_sql(epoch),
                    message: column(what, row, 5)?,
                })
            })
            .collect()
    }

    fn delete_fanout(&mut self, seq: u64) -> StoreResult<bool> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(false);
        };
        let st = self.st;
        Ok(self.execute("delete_fanout", &st.delete_fanout, &[&seq])? == 1)
    }

    fn claim_delivery(
        &mut self,
        follower: &str,
        holder: &[u8; STORE_ID_LEN],
        now: u64,
        until: u64,
    ) -> StoreResult<bool> {
        let st = self.st;
        let n = self.execute(
            "claim_delivery",
            &st.claim_delivery,
            &[
                &follower,
                &&holder[..],
                &u64_to_sql(until),
                &u64_to_sql(now),
            ],
        )?;
        Ok(n == 1)
    }

    fn expire(&mut self, now: u64) -> StoreResult<()> {
        let st = self.st;
        let now = u64_to_sql(now);
        self.execute("expire", &st.expire_tokens, &[&now])?;
        self.execute("expire", &st.expire_envelopes, &[&now])?;
        self.execute("expire", &st.expire_responses, &[&now])?;
        Ok(())
    }

    fn counts(&mut self) -> StoreResult<StoreCounts> {
        let what = "counts";
        let st = self.st;
        let row = self.query_one(what, &st.counts, &[])?;
        let n = |i| -> StoreResult<usize> {
            let v: i64 = column(what, &row, i)?;
            usize::try_from(v).map_err(|_| StoreError::new(what, "negative count"))
        };
        Ok(StoreCounts {
            groups: n(0)?,
            leaf_keys: n(1)?,
            spent_tokens: n(2)?,
            envelopes: n(3)?,
            cached_responses: n(4)?,
            handshakes: n(5)?,
            fanout: n(6)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_is_send_and_sync() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<PostgresHubStore>();
    }

    #[test]
    fn u64_mapping_keeps_order_and_round_trips() {
        let values = [0, 1, 41, (1 << 63) - 1, 1 << 63, u64::MAX - 1, u64::MAX];
        for w in values.windows(2) {
            assert!(u64_to_sql(w[0]) < u64_to_sql(w[1]), "{w:?}");
        }
        for v in values {
            assert_eq!(u64_from_sql(u64_to_sql(v)), v);
        }
        assert_eq!(u64_to_sql(0), i64::MIN);
        assert_eq!(u64_to_sql(u64::MAX), i64::MAX);
    }

    #[test]
    fn schema_names() {
        for ok in ["mimi_onion", "_x", "hub2", &"a".repeat(63)] {
            assert!(valid_schema(ok), "{ok}");
        }
        for bad in [
            "",
            "2hub",
            "Hub",
            "a-b",
            "a\"b",
            "pg_catalog",
            "information_schema",
            &"a".repeat(64),
        ] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }

    #[test]
    fn bad_connection_strings_are_errors() {
        let err = PostgresHubStore::connect("host=127.0.0.1 port=notaport").expect_err("bad");
        assert_eq!(err.what(), "connection string");
        let err = PostgresHubStore::connect_with_schema("host=127.0.0.1", "Bad Name")
            .expect_err("bad schema");
        assert_eq!(err.what(), "connection string");
    }
}
