//! # mimi-onion-service
//!
//! The network face of a mimi-onion hub (spec sections "Routing Tokens",
//! "Hub Response", "Fan-out Message", "The Store Contract" and
//! "Registration Admission"): one binary, `mimi-onion-service`, whose
//! subcommands are the parties that talk over HTTP/1.1:
//!
//! - [`hub`]: a hub front-end process of one shard. Envelopes by POST
//!   ([`media::ENVELOPE`]), the fixed-size hub response back, the signed
//!   configuration by GET ([`media::CONFIGURATION`], with a cache lifetime),
//!   its state in SQLite (default) or PostgreSQL, fan-out to the followers
//!   recorded in the hub store's transaction and delivered by the
//!   [`outbox`], registration admission per sending
//!   provider ([`admission`]), TLS through rustls ([`tls`]).
//! - [`balancer`]: the token-routing reverse proxy. Reads the request head
//!   and then exactly the first 18 body bytes (version and routing token),
//!   picks a backend of the token's shard (any backend when unroutable,
//!   skipping backends that are down) and splices the rest of the body
//!   through without parsing or buffering it.
//! - [`follower`]: a follower provider's endpoint: fan-out deliveries by
//!   POST, de-duplicated by their idempotency key, queued per recipient;
//!   members fetch their queue by GET.
//! - [`client`]: fetches and verifies the configuration through the room's
//!   signing key (CFG-1), seals with [`mimi_onion::sender::Sender`], opens
//!   the responses and refills its token pools; runs a demo room's life or
//!   a load, and checks follower queues as a member.
//!
//! The core crate stays free of I/O: this crate owns sockets, clocks and
//! files.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admission;
pub mod balancer;
pub mod client;
pub mod follower;
pub mod http;
pub mod hub;
pub mod keys;
pub mod media;
pub mod outbox;
pub mod tls;

/// What can go wrong in a service process (never on a peer's input: a
/// peer's bad request gets an HTTP error or the hub response).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file or socket failed.
    Io(std::io::Error),
    /// The core refused (a key, a configuration).
    Core(mimi_onion::Error),
    /// A key file or option is wrong.
    Config(&'static str),
    /// The caller asked for something that cannot be.
    Usage(&'static str),
    /// A peer answered something unexpected.
    Protocol(String),
    /// A store (the hub store, for fan-out) or the ledger database failed.
    Db(String),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "i/o: {e}"),
            Error::Core(e) => write!(f, "mimi-onion: {e:?}"),
            Error::Config(what) => write!(f, "configuration: {what}"),
            Error::Usage(what) => write!(f, "usage: {what}"),
            Error::Protocol(what) => write!(f, "protocol: {what}"),
            Error::Db(what) => write!(f, "database: {what}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<mimi_onion::Error> for Error {
    fn from(e: mimi_onion::Error) -> Self {
        Error::Core(e)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Db(e.to_string())
    }
}

impl From<mimi_onion::state::StoreError> for Error {
    fn from(e: mimi_onion::state::StoreError) -> Self {
        Error::Db(e.to_string())
    }
}

/// Result of this crate.
pub type Result<T> = core::result::Result<T, Error>;

/// The current Unix time in seconds (the hub's clock, which the core
/// takes as `now`).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes `line` to `path` atomically (a temporary file, then a rename):
/// how a process tells its parent the address it bound.
pub fn write_ready_file(path: &std::path::Path, line: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{line}\n"))?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
