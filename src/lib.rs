//! # mimi-onion
//!
//! Reference codec for layered ("onion") metadata encryption of MLS
//! (RFC 9420) messages in MIMI federated messaging. See `spec/` for the
//! protocol; every module names the spec section it implements.
//!
//! One module per party: [`sender`], [`balancer`], [`hub`]; shared:
//! [`wire`], [`suite`], [`config`], [`token`], [`response`], [`state`],
//! [`padding`], [`labels`], and [`mls`] (RFC 9420 glue).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod balancer;
pub mod codec;
pub mod commitment;
pub mod config;
pub mod demo;

pub mod error;
pub mod fanout;
#[doc(hidden)]
pub mod fuzzing;
pub mod hub;
pub mod keylayer;
pub mod labels;
pub mod member;
pub mod mls;
pub mod padding;
pub mod policy;
#[cfg(any(test, feature = "vectors"))]
pub mod replay;
pub mod response;
pub mod secret;
pub mod sender;
pub mod state;
pub mod suite;
pub mod token;
#[cfg(any(test, feature = "vectors"))]
pub mod vectors;
pub mod wire;

pub use error::{Error, Res};
