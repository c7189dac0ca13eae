//! The member (spec section "Member Processing"): receives fan-out
//! messages from its provider, finds the group by scanning the hints of
//! every epoch it holds (current and previous of every group) without
//! stopping at the first match, verifies the check value, opens the body,
//! and processes the MLS message with the RFC 9420 glue, verifying the key
//! commitment `c` before it decrypts the content.
//!
//! Two parts, as the spec divides them: [`OnionMember`] is the onion part
//! on its own (hint scan, check value, body, group binding, the record of
//! delivered PublicMessages, the buffer and its rescan, the held epochs,
//! all from F alone), for an application whose MLS processing another
//! stack does; [`check_key_commitment`] is the check of `c` for a stack
//! with the hook. [`Member`] is the onion part with this crate's own
//! RFC 9420 processing behind it.
//!
//! Messages that match no held epoch wait in a bounded buffer that is
//! rescanned after every epoch change, so that a message of the next epoch
//! that arrives before its commit is delivered after it. Errors here are
//! local and distinct ([`ReceiveError`]); none of them goes on the wire.
//!
//! Work and memory are bounded per message and per epoch ([`ReceiveLimits`]):
//!
//! - MEM-8: for each held epoch, the member keeps one sender ratchet per
//!   (leaf, content type ratchet) it has delivered a PrivateMessage from:
//!   the ratchet secret at the next generation, and the keys and nonces of
//!   at most `out_of_order_tolerance` skipped generations. A message at the
//!   ratchet's next generation costs one ratchet step at any generation; a
//!   generation more than `max_forward_distance` ahead is refused before
//!   any derivation, so no message costs more than that many steps. Keys
//!   are deleted once used and once the window passes them; the state
//!   changes only when a message is delivered. Per epoch: at most two
//!   ratchets per non-blank leaf, each of `Nh` bytes plus at most
//!   `out_of_order_tolerance` keys and nonces (`Nk + Nn` bytes each).
//! - MEM-5: for each held epoch, the digests (32 bytes) of at most
//!   `max_public_per_epoch` delivered PublicMessages, against replay.
//!
//! Everything goes with the epoch (two epochs per group are held), and
//! every secret is zeroized when it is replaced, deleted or dropped.

use std::collections::{BTreeMap, HashSet, VecDeque};

use sha2::{Digest, Sha256};

use crate::commitment::CommitmentInput;
use crate::error::{Error, Res};
use crate::fanout::{EpochKeys, FanoutMessage};
use crate::mls::framing::{
    apply_reuse_guard, decrypt_sender_data, open_content, verify_framed_content, FramedContent,
    GroupContext, PrivateMessage, PublicMessage, Sender, MAX_GENERATION,
};
use crate::mls::message::{ContentType, MessageInfo, WireFormat};
use crate::mls::secret_tree::{leaf_ratchet, HashRatchet, KeyNonce, RatchetKind};
use crate::mls::suite::MlsSuite;
use crate::secret::Secret;

/// Default capacity of the buffer of unmatched fan-out messages.
pub const DEFAULT_BUFFER: usize = 256;

/// Default bound on how far ahead of a sender's ratchet a PrivateMessage
/// may name its generation (MEM-8).
pub const DEFAULT_MAX_FORWARD_DISTANCE: u32 = 1_024;

/// Default number of generations behind a sender's ratchet whose unused
/// keys are kept for messages that arrive out of order (MEM-8).
pub const DEFAULT_OUT_OF_ORDER_TOLERANCE: u32 = 32;

/// Default number of delivered PublicMessages remembered per held epoch
/// against replay (MEM-5).
pub const DEFAULT_MAX_PUBLIC_PER_EPOCH: usize = 4_096;

/// The member's bounds on per-message work and per-epoch memory (MEM-5,
/// MEM-8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiveLimits {
    /// How far ahead of a sender's ratchet (the next generation it has
    /// not derived) a PrivateMessage may name its generation. A message
    /// further ahead is refused with [`ReceiveError::TooFarAhead`] before
    /// any key is derived.
    pub max_forward_distance: u32,
    /// How many generations behind a sender's ratchet the member keeps
    /// the unused keys of skipped generations. Older keys are deleted.
    pub out_of_order_tolerance: u32,
    /// How many delivered PublicMessages the member remembers per held
    /// epoch. Once full, further PublicMessages of that epoch are refused
    /// with [`ReceiveError::LimitReached`].
    pub max_public_per_epoch: usize,
}

impl Default for ReceiveLimits {
    fn default() -> Self {
        ReceiveLimits {
            max_forward_distance: DEFAULT_MAX_FORWARD_DISTANCE,
            out_of_order_tolerance: DEFAULT_OUT_OF_ORDER_TOLERANCE,
            max_public_per_epoch: DEFAULT_MAX_PUBLIC_PER_EPOCH,
        }
    }
}

/// What the member holds of one sender ratchet (MEM-8): no secret, only
/// generations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RatchetStatus {
    /// The next generation the ratchet derives: every generation below it
    /// is either among [`RatchetStatus::held`] or deleted.
    pub next_generation: u32,
    /// The generations below `next_generation` whose keys are kept for
    /// out-of-order messages, in increasing order.
    pub held: Vec<u32>,
}

/// What a member holds for one epoch of one group.
#[derive(Debug)]
pub struct EpochState {
    /// The GroupContext of the epoch (group id, epoch, suite, hashes).
    pub group_context: GroupContext,
    /// The epoch's encryption secret (root of the secret tree).
    pub encryption_secret: Secret,
    /// The epoch's sender-data secret.
    pub sender_data_secret: Secret,
    /// The epoch's membership key (PublicMessage membership tags).
    pub membership_key: Secret,
    /// Number of leaves of the ratchet tree (a power of two).
    pub n_leaves: u32,
    /// The fan-out keys derived from the epoch's F.
    pub fanout: EpochKeys,
    /// Signature public keys of the members' leaves.
    pub leaf_keys: BTreeMap<u32, Vec<u8>>,
}

/// A delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The group.
    pub group_id: Vec<u8>,
    /// The epoch the message belongs to.
    pub epoch: u64,
    /// Its wire format.
    pub wire_format: WireFormat,
    /// Its content type.
    pub content_type: ContentType,
    /// The sender's leaf.
    pub sender_leaf: u32,
    /// The application data, or the encoded `Proposal` / `Commit`.
    pub content: Vec<u8>,
    /// The MLS message byte for byte.
    pub message: Vec<u8>,
}

/// What became of a fan-out message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Processed and delivered.
    Delivered(Received),
    /// Matched no held epoch: kept for a rescan after the next epoch change.
    Buffered,
    /// A PublicMessage from a non-member sender (an external commit or
    /// proposal), opened from the fan-out layer for the client's MLS stack
    /// to verify and process (MEM-5): its signing key is in the commit's
    /// path or a KeyPackage, which this module does not parse.
    ForMlsStack {
        /// The group.
        group_id: Vec<u8>,
        /// The epoch of the keys that opened it.
        epoch: u64,
        /// The MLS message, byte for byte.
        message: Vec<u8>,
    },
}

/// Why a fan-out message was dropped. Local only.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiveError {
    /// Not a fan-out message.
    Malformed,
    /// A hint matched but no check value did (another group's message, or
    /// a forgery).
    CheckFailed,
    /// The check value matched but the body did not open.
    BodyFailed,
    /// The message inside names another group or epoch than its keys.
    WrongGroup,
    /// The key commitment is missing, duplicated or wrong.
    Commitment,
    /// The MLS signature does not verify, or the leaf is unknown.
    Signature,
    /// RFC 9420 processing failed.
    Mls(Error),
    /// The buffer is full; the oldest message was dropped for this one.
    BufferOverflow,
    /// The (leaf, ratchet, generation) of this PrivateMessage was already
    /// used: a message delivered twice (for example resent in a new
    /// envelope) is dropped. For a PublicMessage: already delivered.
    Replayed,
    /// The PrivateMessage names a generation further ahead of the sender's
    /// ratchet than [`ReceiveLimits::max_forward_distance`] (MEM-8).
    TooFarAhead,
    /// The PrivateMessage names a generation whose key was deleted: further
    /// behind the sender's ratchet than
    /// [`ReceiveLimits::out_of_order_tolerance`] (MEM-8).
    KeyDeleted,
    /// The epoch's record of delivered PublicMessages is full
    /// ([`ReceiveLimits::max_public_per_epoch`], MEM-5).
    LimitReached,
}

impl core::fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReceiveError::Malformed => f.write_str("not a fan-out message"),
            ReceiveError::CheckFailed => f.write_str("check value matches no held key"),
            ReceiveError::BodyFailed => f.write_str("fan-out body does not open"),
            ReceiveError::WrongGroup => f.write_str("message names another group or epoch"),
            ReceiveError::Commitment => f.write_str("key commitment missing or wrong"),
            ReceiveError::Signature => f.write_str("MLS signature does not verify"),
            ReceiveError::Mls(e) => write!(f, "MLS processing failed: {e}"),
            ReceiveError::BufferOverflow => f.write_str("buffer full: oldest message dropped"),
            ReceiveError::Replayed => f.write_str("message already delivered (key used)"),
            ReceiveError::TooFarAhead => f.write_str("generation too far ahead of the ratchet"),
            ReceiveError::KeyDeleted => f.write_str("generation's key already deleted"),
            ReceiveError::LimitReached => {
                f.write_str("epoch's record of delivered PublicMessages is full")
            }
        }
    }
}

impl std::error::Error for ReceiveError {}

/// One sender ratchet of one leaf in one epoch (MEM-8): the ratchet at the
/// next generation it has not derived, and the unused keys of skipped
/// generations within the out-of-order window. Every secret is zeroized
/// when it is replaced, used, deleted or dropped.
#[derive(Debug)]
struct SenderRatchet {
    ratchet: HashRatchet,
    skipped: BTreeMap<u32, KeyNonce>,
}

impl SenderRatchet {
    fn status(&self) -> RatchetStatus {
        RatchetStatus {
            next_generation: self.ratchet.generation(),
            held: self.skipped.keys().copied().collect(),
        }
    }
}

/// Identifies a sender ratchet of an epoch: leaf and content type ratchet.
type RatchetId = (u32, RatchetKind);

/// Digest of a delivered PublicMessage (MEM-5).
type PublicDigest = [u8; 32];

// ---------------------------------------------------------------------------
// The onion part: MEM-1, MEM-2, MEM-3, MEM-5's record, MEM-6.
// ---------------------------------------------------------------------------

/// A fan-out message opened by the onion part of a member
/// ([`OnionMember`]): the MLS message, byte for byte, and the group and
/// epoch whose fan-out keys opened it (MEM-3: the message names that group
/// and epoch). The application's MLS stack processes `message` with that
/// epoch's state only, then reports the delivery with
/// [`OnionMember::accept`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The group.
    pub group_id: Vec<u8>,
    /// The epoch of the keys that opened it, which the message names.
    pub epoch: u64,
    /// `PublicMessage` or `PrivateMessage` (MEM-3: nothing else).
    pub wire_format: WireFormat,
    /// The MLS message, byte for byte.
    pub message: Vec<u8>,
    /// MEM-5: for a PublicMessage, the digest to record once it is
    /// delivered.
    public: Option<PublicDigest>,
}

impl Opened {
    /// True for a PublicMessage, whose delivery [`OnionMember::accept`]
    /// records against replay (MEM-5).
    pub fn is_public(&self) -> bool {
        self.public.is_some()
    }
}

/// What the onion part made of a fan-out message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    /// Opened: the MLS message for the application's MLS stack.
    Opened(Opened),
    /// Matched no held epoch: kept for a rescan after the next epoch
    /// change (MEM-6).
    Buffered,
}

#[derive(Debug)]
struct OnionEpoch {
    keys: EpochKeys,
    /// MEM-5: digests of the PublicMessages delivered in this epoch.
    public_seen: HashSet<PublicDigest>,
}

#[derive(Debug)]
struct OnionGroup {
    group_id: Vec<u8>,
    /// Oldest first; at most two (previous and current).
    epochs: Vec<OnionEpoch>,
}

/// The onion part of a member, over all the groups it is in, for an
/// application whose MLS processing is done by another stack (spec
/// section "Member Processing"): the hint scan over every held epoch
/// (MEM-1), the check value and the body (MEM-2), the binding of the
/// message to the group and epoch of the keys that opened it (MEM-3), the
/// record of delivered PublicMessages (MEM-5), the bounded buffer and its
/// rescan after every epoch change (MEM-6), and the epochs held (FAN-1:
/// current and previous of every group). It holds F's subkeys only, no
/// MLS secret.
///
/// The application's part is everything RFC 9420 does with the opened
/// message (for a PrivateMessage, the key commitment `c` with
/// [`check_key_commitment`] once its stack has the key and final nonce;
/// the signatures; the state changes), and telling this part which epochs
/// it holds: [`OnionMember::enter_epoch`] with the F of every epoch its
/// stack enters (after a Welcome or a merged commit), [`OnionMember::leave`]
/// when it leaves the group.
///
/// The use is:
///
/// 1. [`OnionMember::receive`] each fan-out message; an [`Opening::Opened`]
///    goes to the MLS stack;
/// 2. if the stack accepts it, [`OnionMember::accept`] it (MEM-5 records
///    a PublicMessage only then, so that a forgery cannot pre-empt the
///    genuine message);
/// 3. after each epoch change, [`OnionMember::next_rescanned`] until it
///    returns `None`, each result handled as in 1 and 2, before the next
///    fan-out message (MEM-6).
#[derive(Debug)]
pub struct OnionMember {
    groups: Vec<OnionGroup>,
    buffer: VecDeque<Vec<u8>>,
    /// MEM-6: buffered messages waiting for the rescan of the last epoch
    /// change, in arrival order.
    rescan: VecDeque<Vec<u8>>,
    buffer_cap: usize,
    max_public_per_epoch: usize,
    /// MEM-5: refuse a PublicMessage already delivered when it is opened
    /// (before the MLS stack sees it), not only in `accept`. [`Member`]
    /// verifies first, so that a replay is told from a forgery.
    replay_on_open: bool,
}

impl Default for OnionMember {
    fn default() -> Self {
        OnionMember::new(DEFAULT_BUFFER, DEFAULT_MAX_PUBLIC_PER_EPOCH)
    }
}

impl OnionMember {
    /// An onion part with a buffer of `buffer_cap` unmatched messages
    /// (MEM-6) that remembers at most `max_public_per_epoch` delivered
    /// PublicMessages per held epoch (MEM-5).
    pub fn new(buffer_cap: usize, max_public_per_epoch: usize) -> Self {
        OnionMember {
            groups: Vec::new(),
            buffer: VecDeque::new(),
            rescan: VecDeque::new(),
            buffer_cap,
            max_public_per_epoch,
            replay_on_open: true,
        }
    }

    /// Enters an epoch of a group from its F (`MLS-Exporter("mimi-onion v1
    /// fanout key", "", 32)` of the epoch): joins the group, or moves it to
    /// a new epoch, keeping the previous one and deleting older ones
    /// (FAN-1). Entering a held epoch again with the same F keeps its
    /// record (MEM-5); another F replaces it. Queues the buffer for the
    /// rescan ([`OnionMember::next_rescanned`], MEM-6).
    pub fn enter_epoch(&mut self, group_id: &[u8], epoch: u64, f: &Secret) -> Res<()> {
        self.enter_epoch_keys(group_id, EpochKeys::derive(f, epoch)?);
        Ok(())
    }

    /// [`OnionMember::enter_epoch`] with the subkeys already derived from F
    /// for the epoch `keys.epoch()`.
    pub fn enter_epoch_keys(&mut self, group_id: &[u8], keys: EpochKeys) {
        let epoch = keys.epoch();
        let fresh = |keys| OnionEpoch {
            keys,
            public_seen: HashSet::new(),
        };
        match self.groups.iter_mut().find(|g| g.group_id == group_id) {
            Some(g) => {
                let held = match g.epochs.iter().position(|e| e.keys.epoch() == epoch) {
                    Some(i) if g.epochs[i].keys.same_keys(&keys) => g.epochs.remove(i),
                    Some(i) => {
                        g.epochs.remove(i);
                        fresh(keys)
                    }
                    None => fresh(keys),
                };
                g.epochs.push(held);
                g.epochs.sort_by_key(|e| e.keys.epoch());
                while g.epochs.len() > 2 {
                    g.epochs.remove(0);
                }
            }
            None => self.groups.push(OnionGroup {
                group_id: group_id.to_vec(),
                epochs: vec![fresh(keys)],
            }),
        }
        // MEM-6: every buffered message is tried again, in arrival order,
        // after those of an earlier change still waiting.
        let waiting: Vec<Vec<u8>> = self.buffer.drain(..).collect();
        self.rescan.extend(waiting);
    }

    /// Leaves a group: forgets its keys and record (FAN-1).
    pub fn leave(&mut self, group_id: &[u8]) {
        self.groups.retain(|g| g.group_id != group_id);
    }

    /// True if the keys of `epoch` of `group_id` are held.
    pub fn holds(&self, group_id: &[u8], epoch: u64) -> bool {
        self.group(group_id)
            .is_some_and(|g| g.epochs.iter().any(|e| e.keys.epoch() == epoch))
    }

    /// The epochs held of `group_id`, oldest first (at most two).
    pub fn epochs(&self, group_id: &[u8]) -> Vec<u64> {
        self.group(group_id)
            .map(|g| g.epochs.iter().map(|e| e.keys.epoch()).collect())
            .unwrap_or_default()
    }

    /// The fan-out keys of `epoch` of `group_id`, if held (the membership
    /// proof of the envelopes a client sends in that epoch).
    pub fn epoch_keys(&self, group_id: &[u8], epoch: u64) -> Option<&EpochKeys> {
        self.group(group_id)?
            .epochs
            .iter()
            .find(|e| e.keys.epoch() == epoch)
            .map(|e| &e.keys)
    }

    /// Number of (group, epoch) key sets held: the hint scan's cost.
    pub fn held_epochs(&self) -> usize {
        self.groups.iter().map(|g| g.epochs.len()).sum()
    }

    /// Messages waiting in the buffer, and for the rescan.
    pub fn buffered(&self) -> usize {
        self.buffer.len() + self.rescan.len()
    }

    fn group(&self, group_id: &[u8]) -> Option<&OnionGroup> {
        self.groups.iter().find(|g| g.group_id == group_id)
    }

    fn epoch_mut(&mut self, group_id: &[u8], epoch: u64) -> Option<&mut OnionEpoch> {
        self.groups
            .iter_mut()
            .find(|g| g.group_id == group_id)?
            .epochs
            .iter_mut()
            .find(|e| e.keys.epoch() == epoch)
    }

    /// Receives one fan-out message: MEM-1 to MEM-3, and MEM-5's replay
    /// check; a message that matches no held epoch goes into the bounded
    /// buffer (MEM-6), dropping the oldest when it is full
    /// ([`ReceiveError::BufferOverflow`]).
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Opening, ReceiveError> {
        match self.try_open(bytes)? {
            Some(opened) => Ok(Opening::Opened(opened)),
            None => {
                let overflow = self.buffer.len() + self.rescan.len() >= self.buffer_cap;
                if overflow && self.rescan.pop_front().is_none() {
                    self.buffer.pop_front();
                }
                if self.buffer_cap > 0 {
                    self.buffer.push_back(bytes.to_vec());
                }
                if overflow {
                    Err(ReceiveError::BufferOverflow)
                } else {
                    Ok(Opening::Buffered)
                }
            }
        }
    }

    /// MEM-6: the next buffered message that the epochs now held open, in
    /// arrival order, or a buffered message refused under MEM-1 to MEM-5;
    /// `None` once the rescan is done. Those that still match nothing stay
    /// in the buffer, in order.
    pub fn next_rescanned(&mut self) -> Option<Result<Opened, ReceiveError>> {
        while let Some(bytes) = self.rescan.pop_front() {
            match self.try_open(&bytes) {
                Ok(Some(opened)) => return Some(Ok(opened)),
                Ok(None) => self.buffer.push_back(bytes),
                Err(e) => return Some(Err(e)),
            }
        }
        None
    }

    /// Records the delivery of an opened message once the MLS stack
    /// accepted it (MEM-5: a PublicMessage is delivered once per epoch; a
    /// PrivateMessage's replay is the MLS stack's, by its ratchets).
    /// [`ReceiveError::Replayed`] or [`ReceiveError::LimitReached`] if the
    /// PublicMessage must not be delivered after all; [`ReceiveError::WrongGroup`]
    /// if its epoch is no longer held.
    pub fn accept(&mut self, opened: &Opened) -> Result<(), ReceiveError> {
        let Some(digest) = opened.public else {
            return Ok(());
        };
        let max = self.max_public_per_epoch;
        let held = self
            .epoch_mut(&opened.group_id, opened.epoch)
            .ok_or(ReceiveError::WrongGroup)?;
        check_public(&held.public_seen, max, &digest)?;
        held.public_seen.insert(digest);
        Ok(())
    }

    /// `Ok(None)`: no hint matched.
    fn try_open(&self, bytes: &[u8]) -> Result<Option<Opened>, ReceiveError> {
        let msg = FanoutMessage::parse(bytes).map_err(|_| ReceiveError::Malformed)?;
        // MEM-1: scan every held epoch; no early exit, so the time does not
        // depend on which group (if any) matched.
        let mut matches = Vec::new();
        for (gi, g) in self.groups.iter().enumerate() {
            for (ei, e) in g.epochs.iter().enumerate() {
                if e.keys.hint_matches(&msg) {
                    matches.push((gi, ei));
                }
            }
        }
        if matches.is_empty() {
            return Ok(None);
        }
        // MEM-2: every hint match is tried by its check value (FAN-5, in
        // `EpochKeys::open`); the first that verifies and opens is used. If
        // none does, the message is dropped.
        let mut opened = None;
        for (gi, ei) in matches {
            if let Ok(m) = self.groups[gi].epochs[ei].keys.open(&msg) {
                opened = Some((gi, ei, m));
                break;
            }
        }
        let (gi, ei, message) = opened.ok_or(ReceiveError::CheckFailed)?;
        let g = &self.groups[gi];
        let held = &g.epochs[ei];
        let epoch = held.keys.epoch();
        let info = MessageInfo::parse(&message).map_err(ReceiveError::Mls)?;
        // MEM-3: the message's group_id and epoch are those of the keys that
        // opened it; only a PublicMessage or a PrivateMessage.
        if info.group_id != Some(g.group_id.as_slice()) || info.epoch != Some(epoch) {
            return Err(ReceiveError::WrongGroup);
        }
        let public = match info.wire_format {
            WireFormat::PrivateMessage => None,
            WireFormat::PublicMessage => {
                let pm = PublicMessage::parse(&message).map_err(ReceiveError::Mls)?;
                let digest = match pm.content.sender {
                    Sender::Member(_) => {
                        public_digest(true, &pm.content.encode().map_err(ReceiveError::Mls)?)
                    }
                    _ => public_digest(false, &message),
                };
                // MEM-5: refused here if already delivered; recorded by
                // `accept` once delivered.
                if self.replay_on_open {
                    check_public(&held.public_seen, self.max_public_per_epoch, &digest)?;
                }
                Some(digest)
            }
            _ => return Err(ReceiveError::WrongGroup),
        };
        Ok(Some(Opened {
            group_id: g.group_id.clone(),
            epoch,
            wire_format: info.wire_format,
            message,
            public,
        }))
    }
}

/// The member's check of the key commitment `c` of a PrivateMessage (spec
/// sections "Key Commitment" and "Hook for MLS Implementations"), from
/// what the hook gives the receiving MLS stack before it decrypts the
/// content: the sender data's leaf, the ratchet key and the final nonce
/// (after the reuse guard) in `input`, the message's content type, and its
/// `authenticated_data`.
///
/// KCM-1: a proposal or commit must carry exactly one well-formed `c`
/// item (SafeAAD component 0x8A02) that matches; an application message
/// may carry none, and one it carries must match. KCM-2: a malformed
/// SafeAAD, or one with bytes after it, is refused either way. Every
/// failure is [`ReceiveError::Commitment`].
pub fn check_key_commitment(
    input: &CommitmentInput<'_>,
    content_type: ContentType,
    authenticated_data: &[u8],
) -> Result<(), ReceiveError> {
    match content_type {
        ContentType::Application => input.verify_optional(authenticated_data),
        ContentType::Proposal | ContentType::Commit => input.verify(authenticated_data),
    }
    .map_err(|_| ReceiveError::Commitment)
}

// ---------------------------------------------------------------------------
// The member with the project's own RFC 9420 processing, on the onion part.
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct HeldEpoch {
    state: EpochState,
    /// MEM-8: the sender ratchets of the leaves that sent in this epoch.
    ratchets: BTreeMap<RatchetId, SenderRatchet>,
}

impl HeldEpoch {
    fn new(state: EpochState) -> Self {
        HeldEpoch {
            state,
            ratchets: BTreeMap::new(),
        }
    }

    /// The same epoch from the same secrets: entering it again keeps what
    /// was used.
    fn same_as(&self, state: &EpochState) -> bool {
        self.state.group_context == state.group_context
            && self.state.encryption_secret == state.encryption_secret
    }
}

#[derive(Debug)]
struct HeldGroup {
    group_id: Vec<u8>,
    suite: MlsSuite,
    /// The epochs the onion part holds of the group, oldest first.
    epochs: Vec<HeldEpoch>,
}

/// What delivering a PrivateMessage changes in its epoch's state.
enum Update {
    /// MEM-8: the ratchet moved forward to deliver a message at or past
    /// its next generation: the ratchet after that generation, the keys of
    /// the skipped generations within the window, and the lowest
    /// generation whose key stays.
    Forward {
        id: RatchetId,
        ratchet: HashRatchet,
        skipped: Vec<(u32, KeyNonce)>,
        lowest_kept: u32,
    },
    /// MEM-8: a skipped generation's key was used: delete it.
    UseSkipped { id: RatchetId, generation: u32 },
}

/// A client's member side, over all the groups it is in: the onion part
/// ([`OnionMember`]) and the project's own RFC 9420 processing of what it
/// opens (MEM-4, MEM-5's verification, MEM-8).
#[derive(Debug)]
pub struct Member {
    onion: OnionMember,
    groups: Vec<HeldGroup>,
    limits: ReceiveLimits,
    ratchet_steps: u64,
}

impl Default for Member {
    fn default() -> Self {
        Member::new(DEFAULT_BUFFER)
    }
}

/// What RFC 9420 processing made of an opened message.
enum Processed {
    /// A member's message, verified, with what its delivery changes.
    Member(Received, Option<Update>),
    /// A non-member's PublicMessage, for the client's MLS stack.
    NonMember,
}

impl Member {
    /// A member with a buffer of `buffer_cap` unmatched messages.
    pub fn new(buffer_cap: usize) -> Self {
        let mut onion = OnionMember::new(buffer_cap, DEFAULT_MAX_PUBLIC_PER_EPOCH);
        onion.replay_on_open = false;
        Member {
            onion,
            groups: Vec::new(),
            limits: ReceiveLimits::default(),
            ratchet_steps: 0,
        }
    }

    /// The same member with other bounds (MEM-5, MEM-8).
    pub fn with_limits(mut self, limits: ReceiveLimits) -> Self {
        self.limits = limits;
        self.onion.max_public_per_epoch = limits.max_public_per_epoch;
        self
    }

    /// The member's bounds.
    pub fn limits(&self) -> ReceiveLimits {
        self.limits
    }

    /// The member's onion part.
    pub fn onion(&self) -> &OnionMember {
        &self.onion
    }

    /// Ratchet steps (`DeriveTreeSecret(.., "secret", ..)`) the member has
    /// computed so far, over all groups: the part of its work that depends
    /// on the generations senders name.
    pub fn ratchet_steps(&self) -> u64 {
        self.ratchet_steps
    }

    /// What the member holds of the `kind` ratchet of `leaf` in `epoch` of
    /// `group_id`, if it holds that ratchet (MEM-8).
    pub fn sender_ratchet(
        &self,
        group_id: &[u8],
        epoch: u64,
        leaf: u32,
        kind: RatchetKind,
    ) -> Option<RatchetStatus> {
        self.groups
            .iter()
            .find(|g| g.group_id == group_id)?
            .epochs
            .iter()
            .find(|e| e.state.group_context.epoch == epoch)?
            .ratchets
            .get(&(leaf, kind))
            .map(SenderRatchet::status)
    }

    /// Number of (group, epoch) key sets held: the hint scan's cost.
    pub fn held_epochs(&self) -> usize {
        self.onion.held_epochs()
    }

    /// Messages waiting in the buffer.
    pub fn buffered(&self) -> usize {
        self.onion.buffered()
    }

    /// Enters an epoch of a group: joins the group, or moves it to a new
    /// epoch (keeping the previous one, dropping older ones), then rescans
    /// the buffer. Returns what the rescan delivered or dropped.
    ///
    /// FAN-1 (member side): the subkeys of the current and the previous
    /// epoch of every group are kept, older ones deleted. MEM-6: the rescan
    /// runs at every epoch change, before the caller hands in new messages.
    pub fn enter_epoch(
        &mut self,
        suite: MlsSuite,
        state: EpochState,
    ) -> Vec<Result<Delivery, ReceiveError>> {
        let gid = state.group_context.group_id.clone();
        let epoch = state.group_context.epoch;
        self.onion.enter_epoch_keys(&gid, state.fanout.clone());
        let held_epochs = self.onion.epochs(&gid);
        let g = match self.groups.iter().position(|g| g.group_id == gid) {
            Some(i) => &mut self.groups[i],
            None => {
                self.groups.push(HeldGroup {
                    group_id: gid.clone(),
                    suite,
                    epochs: Vec::new(),
                });
                self.groups.last_mut().expect("just pushed")
            }
        };
        // Entering a held epoch again with the same secrets keeps its
        // ratchets (MEM-8); other secrets replace it.
        let held = match g
            .epochs
            .iter()
            .position(|e| e.state.group_context.epoch == epoch)
        {
            Some(i) if g.epochs[i].same_as(&state) => g.epochs.remove(i),
            Some(i) => {
                g.epochs.remove(i);
                HeldEpoch::new(state)
            }
            None => HeldEpoch::new(state),
        };
        g.epochs.push(held);
        // FAN-1: exactly the epochs the onion part holds.
        g.epochs
            .retain(|e| held_epochs.contains(&e.state.group_context.epoch));
        g.epochs.sort_by_key(|e| e.state.group_context.epoch);
        let mut out = Vec::new();
        while let Some(r) = self.onion.next_rescanned() {
            out.push(r.and_then(|opened| self.deliver(opened)));
        }
        out
    }

    /// Leaves a group: forgets its keys (FAN-1).
    pub fn leave(&mut self, group_id: &[u8]) {
        self.onion.leave(group_id);
        self.groups.retain(|g| g.group_id != group_id);
    }

    /// Receives one fan-out message.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Delivery, ReceiveError> {
        match self.onion.receive(bytes)? {
            Opening::Opened(opened) => self.deliver(opened),
            Opening::Buffered => Ok(Delivery::Buffered),
        }
    }

    /// The project's RFC 9420 processing of what the onion part opened,
    /// with the state of the epoch whose keys opened it (MEM-3).
    fn deliver(&mut self, opened: Opened) -> Result<Delivery, ReceiveError> {
        let (gi, ei) = self
            .groups
            .iter()
            .enumerate()
            .find(|(_, g)| g.group_id == opened.group_id)
            .and_then(|(gi, g)| {
                g.epochs
                    .iter()
                    .position(|e| e.state.group_context.epoch == opened.epoch)
                    .map(|ei| (gi, ei))
            })
            .ok_or(ReceiveError::WrongGroup)?;
        let g = &self.groups[gi];
        let mut steps = 0;
        let r = process(
            g.suite,
            &g.epochs[ei],
            &self.limits,
            &opened.message,
            opened.wire_format,
            &mut steps,
        );
        self.ratchet_steps += steps;
        match r? {
            Processed::Member(received, update) => {
                self.onion.accept(&opened)?;
                if let Some(update) = update {
                    self.groups[gi].epochs[ei].apply(update);
                }
                Ok(Delivery::Delivered(received))
            }
            Processed::NonMember => {
                self.onion.accept(&opened)?;
                Ok(Delivery::ForMlsStack {
                    group_id: opened.group_id,
                    epoch: opened.epoch,
                    message: opened.message,
                })
            }
        }
    }
}

impl HeldEpoch {
    /// Applies what delivering a message changes (after it was verified).
    fn apply(&mut self, update: Update) {
        match update {
            Update::Forward {
                id,
                ratchet,
                skipped,
                lowest_kept,
            } => match self.ratchets.get_mut(&id) {
                Some(r) => {
                    r.ratchet = ratchet;
                    // MEM-8: keys the window has passed are deleted
                    // (dropping a `KeyNonce` zeroizes it).
                    r.skipped.retain(|&g, _| g >= lowest_kept);
                    r.skipped.extend(skipped);
                }
                None => {
                    self.ratchets.insert(
                        id,
                        SenderRatchet {
                            ratchet,
                            skipped: skipped.into_iter().collect(),
                        },
                    );
                }
            },
            Update::UseSkipped { id, generation } => {
                if let Some(r) = self.ratchets.get_mut(&id) {
                    r.skipped.remove(&generation);
                }
            }
        }
    }
}

/// MEM-5: the digest recorded for a delivered PublicMessage. For a member
/// sender, whose tag and signature the member's MLS stack verifies, the
/// digest of its `FramedContent` (sender, content and authenticated data),
/// so that the same content under another signature encoding is a replay
/// too; for another sender, the digest of the message's bytes, so that a
/// forgery cannot pre-empt the genuine message.
fn public_digest(member: bool, bytes: &[u8]) -> PublicDigest {
    let label: &[u8] = if member {
        b"mimi-onion member public content"
    } else {
        b"mimi-onion member public message"
    };
    let mut h = Sha256::new();
    h.update(label);
    h.update(bytes);
    h.finalize().into()
}

/// MEM-5: refuses a PublicMessage already delivered in the epoch, or any
/// new one once the epoch's record is full.
fn check_public(
    seen: &HashSet<PublicDigest>,
    max: usize,
    digest: &PublicDigest,
) -> Result<(), ReceiveError> {
    if seen.contains(digest) {
        return Err(ReceiveError::Replayed);
    }
    if seen.len() >= max {
        return Err(ReceiveError::LimitReached);
    }
    Ok(())
}

/// RFC 9420 processing of a message the onion part opened (MEM-3 done).
fn process(
    suite: MlsSuite,
    held: &HeldEpoch,
    limits: &ReceiveLimits,
    message: &[u8],
    wire_format: WireFormat,
    steps: &mut u64,
) -> Result<Processed, ReceiveError> {
    let epoch = &held.state;
    let gc = &epoch.group_context;
    match wire_format {
        WireFormat::PrivateMessage => {
            let (received, update) = process_private(suite, held, limits, message, steps)?;
            Ok(Processed::Member(received, Some(update)))
        }
        WireFormat::PublicMessage => {
            // MEM-5: a member sender's membership tag and signature are
            // verified here; another sender's message goes to the MLS stack.
            let pm = PublicMessage::parse(message).map_err(ReceiveError::Mls)?;
            let Sender::Member(leaf) = pm.content.sender else {
                return Ok(Processed::NonMember);
            };
            pm.verify_membership_tag(suite, &epoch.membership_key, gc)
                .map_err(|_| ReceiveError::Signature)?;
            let key = epoch.leaf_keys.get(&leaf).ok_or(ReceiveError::Signature)?;
            pm.verify_signature(suite, key, Some(gc))
                .map_err(|_| ReceiveError::Signature)?;
            let received = Received {
                group_id: gc.group_id.clone(),
                epoch: gc.epoch,
                wire_format: WireFormat::PublicMessage,
                content_type: pm.content.content_type,
                sender_leaf: leaf,
                content: pm.content.content.clone(),
                message: message.to_vec(),
            };
            Ok(Processed::Member(received, None))
        }
        // MEM-3: only a PublicMessage or a PrivateMessage.
        _ => Err(ReceiveError::WrongGroup),
    }
}

/// MEM-8: the key and nonce of (`leaf`, `kind`, `generation`) from the
/// epoch's sender ratchets, without changing them, and the update that
/// delivering the message applies. `steps` counts the ratchet steps.
///
/// A generation at or past the ratchet's next one costs the distance plus
/// one step, and at most [`ReceiveLimits::max_forward_distance`] plus one:
/// the member refuses a longer jump before it derives anything. A
/// generation behind it is served from the kept keys, at no step.
fn ratchet_key(
    suite: MlsSuite,
    held: &HeldEpoch,
    limits: &ReceiveLimits,
    id: RatchetId,
    generation: u32,
    steps: &mut u64,
) -> Result<(KeyNonce, Update), ReceiveError> {
    let state = held.ratchets.get(&id);
    let next = state.map_or(0, |r| r.ratchet.generation());
    if generation < next {
        if let Some(kn) = state.and_then(|r| r.skipped.get(&generation)) {
            return Ok((kn.clone(), Update::UseSkipped { id, generation }));
        }
        // Absent within the window: used; below it: deleted.
        let lowest_kept = (next - 1).saturating_sub(limits.out_of_order_tolerance);
        return Err(if generation >= lowest_kept {
            ReceiveError::Replayed
        } else {
            ReceiveError::KeyDeleted
        });
    }
    if generation - next > limits.max_forward_distance {
        return Err(ReceiveError::TooFarAhead);
    }
    let mut ratchet = match state {
        Some(r) => r.ratchet.clone(),
        None => leaf_ratchet(
            suite,
            &held.state.encryption_secret,
            held.state.n_leaves,
            id.0,
            id.1,
        )
        .map_err(ReceiveError::Mls)?,
    };
    let lowest_kept = generation.saturating_sub(limits.out_of_order_tolerance);
    let mut skipped = Vec::new();
    while ratchet.generation() < generation {
        if ratchet.generation() >= lowest_kept {
            skipped.push((
                ratchet.generation(),
                ratchet.key_nonce().map_err(ReceiveError::Mls)?,
            ));
        }
        ratchet.advance().map_err(ReceiveError::Mls)?;
        *steps += 1;
    }
    let kn = ratchet.key_nonce().map_err(ReceiveError::Mls)?;
    // The generation's ratchet secret goes at once: its key is used.
    ratchet.advance().map_err(ReceiveError::Mls)?;
    *steps += 1;
    Ok((
        kn,
        Update::Forward {
            id,
            ratchet,
            skipped,
            lowest_kept,
        },
    ))
}

/// MEM-4: a PrivateMessage in the order the spec gives: sender data (leaf
/// and generation in range), the member's own key and nonce, the
/// `reuse_guard`, the key commitment before decryption, then the signature.
/// MEM-8: the key comes from the epoch's sender ratchets, which change
/// only when the message is delivered.
fn process_private(
    suite: MlsSuite,
    held: &HeldEpoch,
    limits: &ReceiveLimits,
    message: &[u8],
    steps: &mut u64,
) -> Result<(Received, Update), ReceiveError> {
    let epoch = &held.state;
    let gc = &epoch.group_context;
    let msg = PrivateMessage::parse(message).map_err(ReceiveError::Mls)?;
    let sd =
        decrypt_sender_data(suite, &epoch.sender_data_secret, &msg).map_err(ReceiveError::Mls)?;
    if sd.leaf_index >= epoch.n_leaves || sd.generation > MAX_GENERATION {
        return Err(ReceiveError::Mls(Error::Malformed(
            "sender data out of range",
        )));
    }
    // MEM-4: a blank leaf is refused before any key is derived; MEM-8: so
    // is a key already used or deleted, or a generation too far ahead.
    if !epoch.leaf_keys.contains_key(&sd.leaf_index) {
        return Err(ReceiveError::Signature);
    }
    let id = (
        sd.leaf_index,
        RatchetKind::for_content_type(msg.content_type),
    );
    let (kn, update) = ratchet_key(suite, held, limits, id, sd.generation, steps)?;
    let final_nonce = apply_reuse_guard(&kn.nonce, sd.reuse_guard).map_err(ReceiveError::Mls)?;
    // MEM-4: the member's own ratchet key and nonce and the sender data's
    // leaf: c must match before anything is decrypted.
    check_key_commitment(
        &CommitmentInput {
            suite,
            group_id: &msg.group_id,
            epoch: msg.epoch,
            leaf_index: sd.leaf_index,
            key: kn.key.expose(),
            final_nonce: final_nonce.expose(),
        },
        msg.content_type,
        &msg.authenticated_data,
    )?;
    let (content, _) =
        open_content(suite, &kn.key, &final_nonce, &msg).map_err(ReceiveError::Mls)?;
    let key = epoch
        .leaf_keys
        .get(&sd.leaf_index)
        .ok_or(ReceiveError::Signature)?;
    let framed = FramedContent {
        group_id: msg.group_id.clone(),
        epoch: msg.epoch,
        sender: Sender::Member(sd.leaf_index),
        authenticated_data: msg.authenticated_data.clone(),
        content_type: msg.content_type,
        content: content.content.clone(),
    };
    // MEM-4: the sender's signature, under the leaf's key.
    verify_framed_content(
        suite,
        key,
        WireFormat::PrivateMessage,
        &framed,
        Some(gc),
        &content.auth.signature,
    )
    .map_err(|_| ReceiveError::Signature)?;
    let received = Received {
        group_id: msg.group_id.clone(),
        epoch: msg.epoch,
        wire_format: WireFormat::PrivateMessage,
        content_type: msg.content_type,
        sender_leaf: sd.leaf_index,
        content: content.content,
        message: message.to_vec(),
    };
    Ok((received, update))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KCM-1, KCM-2, MEM-4 step 4 through the public check a stack with
    /// the hook calls: `c` from the key, final nonce and leaf is required
    /// on proposals and commits, optional on application messages, and
    /// checked whenever present.
    #[test]
    fn check_key_commitment_takes_what_the_hook_gives() {
        use crate::commitment::build_authenticated_data;
        let suite = MlsSuite::from_code(1).unwrap();
        let input = CommitmentInput {
            suite,
            group_id: b"group",
            epoch: 7,
            leaf_index: 3,
            key: &[0x11; 16],
            final_nonce: &[0x22; 12],
        };
        let aad = build_authenticated_data(&input.commitment().unwrap(), &[]).unwrap();
        let other = CommitmentInput {
            final_nonce: &[0x23; 12],
            ..input
        };
        for ct in [
            ContentType::Application,
            ContentType::Proposal,
            ContentType::Commit,
        ] {
            assert_eq!(check_key_commitment(&input, ct, &aad), Ok(()));
            assert_eq!(
                check_key_commitment(&other, ct, &aad),
                Err(ReceiveError::Commitment)
            );
            assert_eq!(
                check_key_commitment(&input, ct, &[0xFF]),
                Err(ReceiveError::Commitment)
            );
        }
        assert_eq!(
            check_key_commitment(&input, ContentType::Application, b""),
            Ok(())
        );
        for ct in [ContentType::Proposal, ContentType::Commit] {
            assert_eq!(
                check_key_commitment(&input, ct, b""),
                Err(ReceiveError::Commitment)
            );
        }
    }

    /// MEM-8: the sender ratchets' Debug shows generations, never a
    /// secret byte.
    #[test]
    fn sender_ratchet_debug_is_redacted() {
        let suite = MlsSuite::from_code(1).unwrap();
        let r = SenderRatchet {
            ratchet: HashRatchet::new(suite, Secret::from_slice(&[0xAB; 32])),
            skipped: BTreeMap::from([(
                3,
                KeyNonce {
                    key: Secret::from_slice(&[0xCD; 16]),
                    nonce: Secret::from_slice(&[0xEF; 12]),
                },
            )]),
        };
        let shown = format!("{r:?}");
        for byte in ["171", "205", "239", "ab", "cd", "ef"] {
            assert!(!shown.to_lowercase().contains(byte), "{shown}");
        }
        assert!(shown.contains("***"));
        assert_eq!(
            r.status(),
            RatchetStatus {
                next_generation: 0,
                held: vec![3]
            }
        );
    }
}
