//! # mimi-onion
//!
//! Reference codec for layered ("onion") metadata encryption of MLS
//! (RFC 9420) messages in MIMI federated messaging. See `spec/` for the
//! protocol; every module names the spec section it implements.
//!
//! One module per party: [`sender`], [`balancer`], [`hub`]; shared:
//! [`wire`], [`suite`], [`config`], [`token`], [`response`], [`state`],
//! [`padding`], [`labels`], and [`mls`] (RFC 9420 glue).
//!
//! ```
//! use mimi_onion::test_utils::{self, DemoWorld};
//! use mimi_onion::mls::message::ContentType;
//! use mimi_onion::response::Status;
//! use mimi_onion::sender::SealOptions;
//!
//! // A hub, its load balancer, a client that accepted the hub's signed
//! // configuration, and one of the demo rooms provisioned on the hub.
//! let mut world = DemoWorld::new()?;
//! let mut client = world.client()?;
//! let mut room = test_utils::rooms(&world)?.remove(0);
//! test_utils::provision_room(&mut world, &mut client, &room, 0)?;
//!
//! // Alice protects an application message (key commitment in its
//! // SafeAAD) and seals it into an envelope.
//! let message = room.protect(0, ContentType::Application, b"hello")?.message;
//! let keys = room.membership_keys(0)?;
//! let sealed = client.seal(&message, SealOptions { membership: Some(&keys), ..Default::default() })?;
//!
//! // The load balancer routes by the token; the hub opens and answers.
//! let _route = world.balancer.route(&sealed.bytes);
//! let outcome = world.hub.handle(&sealed.bytes, mimi_onion::test_utils::NOW);
//! assert_eq!(outcome.view.as_ref().map(|v| v.message.to_vec()), Some(message));
//! let response = client.open_response(&sealed.pending, &outcome.response)?;
//! assert_eq!(response.status, Status::Accepted);
//! # Ok::<(), mimi_onion::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admission;
pub mod balancer;
pub mod codec;
pub mod commitment;
pub mod config;
pub mod dispute;

pub mod error;
pub mod fanout;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod hpke;
pub mod hub;
pub mod keylayer;
pub mod keys;
pub mod labels;
pub mod limits;
pub mod member;
pub mod mls;
pub mod padding;
pub mod policy;
pub mod profile;
#[cfg(any(test, feature = "vectors"))]
pub mod replay;
pub mod response;
pub mod secret;
pub mod sender;
pub mod state;
pub mod suite;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;
pub mod token;
pub mod tracker;
#[cfg(any(test, feature = "vectors"))]
pub mod vectors;
pub mod wire;

pub use error::{Error, Res};
