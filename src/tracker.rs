//! The group-tracker seam (spec section "Group Tracking", TRK-1 to TRK-5):
//! what the hub front-end asks of an MLS delivery-service stack that
//! follows each group's public state (its ratchet tree and GroupContext)
//! from the registration on, through every PublicMessage proposal and
//! commit.
//!
//! The core has no MLS stack of its own beyond what HUB-6 and HUB-12 need
//! (it checks the GroupInfo's signature, its tree hash and member senders'
//! signatures). A [`GroupTracker`] installed with
//! [`crate::hub::HubFrontEnd::set_tracker`] adds what only a full stack
//! can do: it validates the whole tree of a registration (every leaf's
//! signature, the parent hashes), verifies proposals and commits of every
//! sender type RFC 9420 allows in a PublicMessage (`member`,
//! `new_member_commit`, `new_member_proposal`, `external`), and computes
//! the GroupContext and leaf keys of the epoch an accepted commit opens,
//! which the policy engine (HUB-10) and HUB-12 then use.
//!
//! A tracker is stateless across calls: the state of each group is an
//! opaque blob ([`TrackedState`]) that the hub keeps in its store
//! ([`crate::state::HubState::tracker_state`]) per group and epoch, read
//! and written in the envelope's store transaction (STO-1). A restart or a
//! second front-end on the same store therefore sees the same state, and a
//! transaction that rolls back leaves it as it was.
//!
//! The adapter crate `mimi-onion-openmls` implements the trait on
//! openmls's `PublicGroup`.

use std::collections::BTreeMap;

/// A group's tracked state, opaque to the hub: the tracker's own
/// serialization of its view of the group (tree, GroupContext, transcript
/// hashes, queued proposals). The hub stores it byte for byte.
pub type TrackedState = Vec<u8>;

/// Why a tracker refused a message. The front-end turns every refusal
/// into one reason for the sender (`registration_refused` or
/// `policy_rejected`, ERR-1); the detail stays local.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrackerError {
    /// The message breaks a rule of RFC 9420 or of the spec (a bad
    /// signature, an invalid tree or proposal, a wrong epoch). The text
    /// says which, for the hub's log only.
    Invalid(String),
    /// The message is of a kind this tracker does not follow (for
    /// example a PrivateMessage handshake, which a public tracker cannot
    /// read).
    Unsupported(&'static str),
    /// The tracked state the hub handed back does not decode: the store
    /// holds bytes this tracker did not write.
    CorruptState(String),
}

impl core::fmt::Display for TrackerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TrackerError::Invalid(s) => write!(f, "invalid: {s}"),
            TrackerError::Unsupported(s) => write!(f, "unsupported: {s}"),
            TrackerError::CorruptState(s) => write!(f, "corrupt tracked state: {s}"),
        }
    }
}

impl std::error::Error for TrackerError {}

/// What a group looks like in an epoch, as the tracker computed it: what
/// the hub's own records need.
#[derive(Clone, PartialEq, Eq)]
pub struct TrackedEpoch {
    /// The tracker's state of the group at this epoch, to store.
    pub state: TrackedState,
    /// The epoch's serialized GroupContext (RFC 9420 `GroupContext`), for
    /// the policy engine (HUB-10) and HUB-12.
    pub group_context: Vec<u8>,
    /// The signature key of every non-blank leaf of the epoch's tree, by
    /// leaf index.
    pub leaves: BTreeMap<u32, Vec<u8>>,
}

impl core::fmt::Debug for TrackedEpoch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TrackedEpoch")
            .field("state_len", &self.state.len())
            .field("group_context_len", &self.group_context.len())
            .field("leaves", &self.leaves.len())
            .finish()
    }
}

/// The sender of a PublicMessage handshake, as RFC 9420 section 6 types
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrackedSender {
    /// A member, by leaf index: signed with the leaf's key.
    Member(u32),
    /// An external commit (`new_member_commit`): signed with the key of
    /// the commit's path leaf node.
    NewMemberCommit,
    /// A new member's Add proposal (`new_member_proposal`): signed with
    /// the key of the KeyPackage's leaf node.
    NewMemberProposal,
    /// An external sender of the group's `external_senders` extension, by
    /// index.
    External(u32),
}

/// A PublicMessage proposal or commit that the tracker verified, with what
/// the hub keeps once it accepts the message.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedHandshake {
    /// Who sent it.
    pub sender: TrackedSender,
    /// The key the message's signature verified under: the signer's key
    /// that RFC 9420 prescribes for the sender type. For a commit, the F
    /// signature (HUB-12) is verified under the same key.
    pub signature_key: Vec<u8>,
    /// For a proposal: the group's state in the same epoch with the
    /// proposal queued (a later commit may reference it). For a commit:
    /// `None`, see [`Self::next_epoch`].
    pub state: Option<TrackedState>,
    /// For a commit: the epoch it opens.
    pub next_epoch: Option<TrackedEpoch>,
    /// For a GroupContextExtensions proposal: the extensions it proposes
    /// (the contents of `Extension extensions<V>`, without the length
    /// prefix), so that the hub can refuse a change of its components
    /// (PRF-3). `None` for any other message.
    pub proposed_extensions: Option<Vec<u8>>,
    /// For a commit: the leaves that held a member before it and are
    /// blank in the epoch it opens (removed members), whose keys the hub
    /// drops.
    pub blanked_leaves: Vec<u32>,
}

impl core::fmt::Debug for VerifiedHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VerifiedHandshake")
            .field("sender", &self.sender)
            .field("signature_key_len", &self.signature_key.len())
            .field("is_commit", &self.next_epoch.is_some())
            .finish_non_exhaustive()
    }
}

/// An MLS delivery-service stack that tracks each group's public state.
/// Every method is a pure function of its arguments: the hub persists
/// what comes back in the envelope's store transaction.
pub trait GroupTracker: Send + Sync {
    /// HUB-6 (registration, with a tracker): checks the whole
    /// `group_info` (a serialized MLSMessage of wire format
    /// `mls_group_info` that carries its `ratchet_tree` extension): the
    /// GroupInfo's signature under the signer's leaf, the tree (every
    /// leaf node's signature and lifetime, parent hashes, the tree hash
    /// against the GroupContext) and the GroupContext itself. Returns the
    /// group's tracked state at the GroupInfo's epoch.
    ///
    /// # Errors
    ///
    /// [`TrackerError::Invalid`] for a GroupInfo that fails any of these
    /// checks; the hub then refuses the registration.
    fn register(&self, group_info: &[u8]) -> Result<TrackedEpoch, TrackerError>;

    /// HUB-12 (with a tracker): verifies `message`, a serialized
    /// MLSMessage holding a PublicMessage proposal or commit of the
    /// group's current epoch, against `state` (the group's tracked state
    /// at that epoch): its signature under the key RFC 9420 prescribes
    /// for its sender type (the leaf's for `member`, the path leaf node's
    /// for `new_member_commit`, the KeyPackage leaf's for
    /// `new_member_proposal`, the `external_senders` entry for
    /// `external`), the proposal's or commit's validity (RFC 9420
    /// sections 12.1 to 12.4: proposal list, path, confirmation tag), and
    /// for a commit computes the epoch it opens. Changes nothing: the hub
    /// stores the result only if it accepts the message.
    ///
    /// # Errors
    ///
    /// [`TrackerError::Invalid`] for a message that fails a check,
    /// [`TrackerError::Unsupported`] for one the tracker does not follow,
    /// [`TrackerError::CorruptState`] if `state` does not decode.
    fn verify_handshake(
        &self,
        state: &[u8],
        message: &[u8],
    ) -> Result<VerifiedHandshake, TrackerError>;

    /// The epoch view of a stored state (its GroupContext and leaf keys),
    /// for a hub that reverts a group to an earlier epoch (DSP-7).
    ///
    /// # Errors
    ///
    /// [`TrackerError::CorruptState`] if `state` does not decode.
    fn epoch_of(&self, state: &[u8]) -> Result<TrackedEpoch, TrackerError>;
}
