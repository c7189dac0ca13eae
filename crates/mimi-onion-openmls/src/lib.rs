//! mimi-onion for applications built on openmls.
//!
//! The hub side: [`hub::PublicGroupTracker`] tracks a hub's groups with
//! openmls's delivery-service API ([`openmls::prelude::PublicGroup`]),
//! behind the core's [`mimi_onion::tracker::GroupTracker`] seam; its
//! per-group storage is [`storage::GroupStorage`].

pub mod hub;
pub mod storage;
