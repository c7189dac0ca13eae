//! mimi-onion for applications built on [openmls] 0.9: the client side
//! ([`client`]: the room's GroupContext components, F from openmls's
//! exporter, and the sealing of every openmls output into an envelope),
//! the member side ([`member`]: the onion part of the core, then
//! `MlsGroup::process_message`), and the hub side:
//! [`hub::PublicGroupTracker`] tracks a hub's groups with openmls's
//! delivery-service API ([`openmls::prelude::PublicGroup`]), behind the
//! core's [`mimi_onion::tracker::GroupTracker`] seam; its per-group storage
//! is [`storage::GroupStorage`].
//!
//! # Profile: public handshakes
//!
//! openmls rooms use the public-handshake profile (component `0x8A03` =
//! `0x01` in the GroupContext's `app_data_dictionary`): proposals and
//! commits travel as PublicMessage inside the envelope, read by the hub
//! front-end; application messages are openmls's own PrivateMessages,
//! unmodified and without the key commitment `c`.
//!
//! The private-handshake profile (`0x02`: PrivateMessage proposals and
//! commits with `c` in their SafeAAD and a key layer for the policy engine)
//! needs the hook of the spec's section "Hook for MLS Implementations",
//! which openmls 0.9.2 does not have:
//!
//! - sending: `c` must go into `authenticated_data` before the content is
//!   signed and encrypted, and it is computed from the leaf, the ratchet key
//!   and the final nonce (ratchet nonce XOR reuse guard) of the message.
//!   openmls fixes `authenticated_data` first (`MlsGroup::set_aad`, then the
//!   `AuthenticatedContent` is built and signed), and only afterwards, inside
//!   the crate-private `PrivateMessage::encrypt_content`, takes the
//!   generation, key and nonce from its secret tree
//!   (`secret_for_encryption`) and draws the reuse guard. No public API
//!   returns (leaf, generation, key, final nonce) for the next message of a
//!   content type before its `authenticated_data` is fixed, and none takes
//!   a reuse guard from the caller. The key layer needs the same key and
//!   final nonce.
//! - receiving: `MlsGroup::process_message` derives the key and nonce and
//!   decrypts in one call; nothing hands the key and final nonce to the
//!   application between the sender-data decryption and the content
//!   decryption, where the member checks `c`
//!   ([`mimi_onion::member::check_key_commitment`]).
//!
//! Getting them otherwise would mean encrypting twice or copying openmls's
//! secret tree, which this crate does not do.
//!
//! [openmls]: https://docs.rs/openmls/0.9.2

pub mod client;
pub mod hub;
pub mod member;
pub mod storage;

pub use client::{
    epoch_keys, fanout_key, room_capabilities, room_create_config, room_extensions,
    room_join_config, room_signing_key, OpenMlsClient, Sealed, FANOUT_KEY_LABEL, PROFILE,
};
pub use member::{Event, OpenMlsMember};

/// What went wrong in the adapter.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// From the mimi-onion core.
    Onion(mimi_onion::Error),
    /// From openmls (its error, rendered: its types are generic over the
    /// provider's storage error).
    OpenMls(String),
    /// The room or the message does not fit the mimi-onion profile of this
    /// crate (for example a handshake that is not a PublicMessage).
    Profile(&'static str),
    /// The onion part dropped a fan-out message (local only).
    Receive(mimi_onion::member::ReceiveError),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Onion(e) => write!(f, "mimi-onion: {e}"),
            Error::OpenMls(e) => write!(f, "openmls: {e}"),
            Error::Profile(e) => write!(f, "profile: {e}"),
            Error::Receive(e) => write!(f, "fan-out message dropped: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<mimi_onion::Error> for Error {
    fn from(e: mimi_onion::Error) -> Self {
        Error::Onion(e)
    }
}

impl From<mimi_onion::member::ReceiveError> for Error {
    fn from(e: mimi_onion::member::ReceiveError) -> Self {
        Error::Receive(e)
    }
}

/// An openmls error as [`Error::OpenMls`].
pub(crate) fn openmls<E: core::fmt::Debug>(e: E) -> Error {
    Error::OpenMls(format!("{e:?}"))
}

/// Results of this crate.
pub type Result<T> = core::result::Result<T, Error>;
