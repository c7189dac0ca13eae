//! The crate's single error type.
//!
//! Decoding, policy and peer errors carry a short static description so that a
//! caller can log them locally. Every cryptographic failure (a wrong key,
//! a modified ciphertext, a bad signature, a failed MAC) is the single
//! variant [`Error::Crypto`], so nothing that reaches a peer can tell which
//! check failed (spec requirement ERR-1).

use core::fmt;

/// Result alias used throughout the crate.
pub type Res<T> = Result<T, Error>;

/// Everything that can go wrong in this crate.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that do not decode: truncated input, trailing bytes, a length
    /// that does not fit, a non-minimal length prefix, a value out of range.
    Malformed(&'static str),
    /// A well-formed value this implementation does not support: an unknown
    /// version, HPKE suite, key id or signature scheme.
    Unsupported(&'static str),
    /// A cryptographic check failed. Deliberately carries no detail.
    Crypto,
    /// A hub configuration was refused (spec requirements CFG-1 to CFG-3).
    Config(&'static str),
    /// An input is larger than this version allows.
    TooLarge(&'static str),
    /// The operating system's random number generator failed.
    Randomness,
    /// A caller-side precondition does not hold (for example sealing a
    /// handshake message without the key layer it needs): a mistake of the
    /// code that calls this crate, never of a peer.
    Usage(&'static str),
    /// A peer sent something well-formed that breaks a rule of the
    /// protocol (for example a registration whose tree hash does not match
    /// its ratchet tree). Never a cryptographic failure: those are
    /// [`Error::Crypto`] (ERR-1).
    PeerMisbehaved(&'static str),
    /// Something this crate relies on, such as the hub's store, failed;
    /// trying again later may work. Never caused by a peer's input.
    Unavailable(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(what) => write!(f, "malformed input: {what}"),
            Error::Unsupported(what) => write!(f, "unsupported: {what}"),
            Error::Crypto => f.write_str("cryptographic check failed"),
            Error::Config(what) => write!(f, "hub configuration refused: {what}"),
            Error::TooLarge(what) => write!(f, "too large: {what}"),
            Error::Randomness => f.write_str("random number generator failed"),
            Error::Usage(what) => write!(f, "invalid use: {what}"),
            Error::PeerMisbehaved(what) => write!(f, "peer misbehaved: {what}"),
            Error::Unavailable(what) => write!(f, "unavailable: {what}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<tls_codec::Error> for Error {
    fn from(e: tls_codec::Error) -> Self {
        match e {
            tls_codec::Error::EndOfStream => Error::Malformed("unexpected end of input"),
            tls_codec::Error::TrailingData => Error::Malformed("trailing bytes"),
            tls_codec::Error::InvalidVectorLength => Error::Malformed("invalid vector length"),
            _ => Error::Malformed("tls decoding failed"),
        }
    }
}
