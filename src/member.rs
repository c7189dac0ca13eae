//! The member (spec section "Member Processing"): receives fan-out
//! messages from its provider, finds the group by scanning the hints of
//! every epoch it holds (current and previous of every group) without
//! stopping at the first match, verifies the check value, opens the body,
//! and processes the MLS message with the RFC 9420 glue, verifying the key
//! commitment `c` before it decrypts the content.
//!
//! Messages that match no held epoch wait in a bounded buffer that is
//! rescanned after every epoch change, so that a message of the next epoch
//! that arrives before its commit is delivered after it. Errors here are
//! local and distinct ([`ReceiveError`]); none of them goes on the wire.

use std::collections::{BTreeMap, HashSet, VecDeque};

use crate::commitment::CommitmentInput;
use crate::error::Error;
use crate::fanout::{EpochKeys, FanoutMessage};
use crate::mls::framing::{
    apply_reuse_guard, decrypt_sender_data, open_content, verify_framed_content, FramedContent,
    GroupContext, PrivateMessage, PublicMessage, Sender, MAX_GENERATION,
};
use crate::mls::message::{ContentType, MessageInfo, WireFormat};
use crate::mls::secret_tree::{leaf_key_nonce, RatchetKind};
use crate::mls::suite::MlsSuite;
use crate::secret::Secret;

/// Default capacity of the buffer of unmatched fan-out messages.
pub const DEFAULT_BUFFER: usize = 256;

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
    /// envelope) is dropped.
    Replayed,
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
            ReceiveError::Replayed => f.write_str("message key already used"),
        }
    }
}

impl std::error::Error for ReceiveError {}

#[derive(Debug)]
struct HeldEpoch {
    state: EpochState,
    /// (leaf, handshake?, generation) of the PrivateMessages delivered.
    used: HashSet<(u32, bool, u32)>,
}

#[derive(Debug)]
struct HeldGroup {
    group_id: Vec<u8>,
    suite: MlsSuite,
    /// Oldest first; at most two (previous and current).
    epochs: Vec<HeldEpoch>,
}

/// The key of a delivered PrivateMessage, recorded against reuse.
type UsedKey = (u32, bool, u32);

/// A client's member side, over all the groups it is in.
#[derive(Debug)]
pub struct Member {
    groups: Vec<HeldGroup>,
    buffer: VecDeque<Vec<u8>>,
    buffer_cap: usize,
}

impl Default for Member {
    fn default() -> Self {
        Member::new(DEFAULT_BUFFER)
    }
}

/// Where a received message was found: held group, held epoch, what it
/// delivers, and the key to record as used.
type Found = (usize, usize, Processed);

/// What RFC 9420 processing made of an opened message.
enum Processed {
    /// A member's message, verified, with the key to record as used.
    Member(Received, Option<UsedKey>),
    /// A non-member's PublicMessage, for the client's MLS stack.
    NonMember(Vec<u8>),
}

impl Member {
    /// A member with a buffer of `buffer_cap` unmatched messages.
    pub fn new(buffer_cap: usize) -> Self {
        Member {
            groups: Vec::new(),
            buffer: VecDeque::new(),
            buffer_cap,
        }
    }

    /// Number of (group, epoch) key sets held: the hint scan's cost.
    pub fn held_epochs(&self) -> usize {
        self.groups.iter().map(|g| g.epochs.len()).sum()
    }

    /// Messages waiting in the buffer.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
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
        let held = HeldEpoch {
            state,
            used: HashSet::new(),
        };
        match self.groups.iter_mut().find(|g| g.group_id == gid) {
            Some(g) => {
                g.epochs.retain(|e| e.state.group_context.epoch != epoch);
                g.epochs.push(held);
                g.epochs.sort_by_key(|e| e.state.group_context.epoch);
                while g.epochs.len() > 2 {
                    g.epochs.remove(0);
                }
            }
            None => self.groups.push(HeldGroup {
                group_id: gid,
                suite,
                epochs: vec![held],
            }),
        }
        self.rescan()
    }

    /// Leaves a group: forgets its keys (FAN-1).
    pub fn leave(&mut self, group_id: &[u8]) {
        self.groups.retain(|g| g.group_id != group_id);
    }

    /// MEM-6: every buffered message, in arrival order, under MEM-1 to
    /// MEM-5; those that still match nothing stay in the buffer, in order.
    fn rescan(&mut self) -> Vec<Result<Delivery, ReceiveError>> {
        let waiting: Vec<Vec<u8>> = self.buffer.drain(..).collect();
        let mut out = Vec::new();
        for bytes in waiting {
            match self.try_receive(&bytes) {
                Ok(Some(found)) => out.push(Ok(self.record(found))),
                Ok(None) => self.buffer.push_back(bytes),
                Err(e) => out.push(Err(e)),
            }
        }
        out
    }

    fn record(&mut self, (gi, ei, processed): Found) -> Delivery {
        match processed {
            Processed::Member(received, used) => {
                if let Some(k) = used {
                    self.groups[gi].epochs[ei].used.insert(k);
                }
                Delivery::Delivered(received)
            }
            Processed::NonMember(message) => {
                let g = &self.groups[gi];
                Delivery::ForMlsStack {
                    group_id: g.group_id.clone(),
                    epoch: g.epochs[ei].state.group_context.epoch,
                    message,
                }
            }
        }
    }

    /// Receives one fan-out message.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Delivery, ReceiveError> {
        match self.try_receive(bytes)? {
            Some(found) => Ok(self.record(found)),
            None => {
                // MEM-6: no held epoch matched: into the bounded buffer, in
                // arrival order, dropping the oldest when it is full.
                let overflow = self.buffer.len() >= self.buffer_cap;
                if overflow {
                    self.buffer.pop_front();
                }
                if self.buffer_cap > 0 {
                    self.buffer.push_back(bytes.to_vec());
                }
                if overflow {
                    Err(ReceiveError::BufferOverflow)
                } else {
                    Ok(Delivery::Buffered)
                }
            }
        }
    }

    /// `Ok(None)`: no hint matched.
    fn try_receive(&self, bytes: &[u8]) -> Result<Option<Found>, ReceiveError> {
        let msg = FanoutMessage::parse(bytes).map_err(|_| ReceiveError::Malformed)?;
        // MEM-1: scan every held epoch; no early exit, so the time does not
        // depend on which group (if any) matched.
        let mut matches = Vec::new();
        for (gi, g) in self.groups.iter().enumerate() {
            for (ei, e) in g.epochs.iter().enumerate() {
                if e.state.fanout.hint_matches(&msg) {
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
            if let Ok(m) = self.groups[gi].epochs[ei].state.fanout.open(&msg) {
                opened = Some((gi, ei, m));
                break;
            }
        }
        let (gi, ei, message) = opened.ok_or(ReceiveError::CheckFailed)?;
        let g = &self.groups[gi];
        let held = &g.epochs[ei];
        let processed = process(g.suite, &g.group_id, &held.state, &held.used, message)?;
        Ok(Some((gi, ei, processed)))
    }
}

/// RFC 9420 processing of the message inside a fan-out message.
fn process(
    suite: MlsSuite,
    group_id: &[u8],
    epoch: &EpochState,
    used: &HashSet<UsedKey>,
    message: Vec<u8>,
) -> Result<Processed, ReceiveError> {
    let info = MessageInfo::parse(&message).map_err(ReceiveError::Mls)?;
    let gc = &epoch.group_context;
    // MEM-3: the message's group_id and epoch are those of the keys that
    // opened it, and it is processed with that epoch's state only.
    if info.group_id != Some(group_id) || info.epoch != Some(gc.epoch) {
        return Err(ReceiveError::WrongGroup);
    }
    match info.wire_format {
        WireFormat::PrivateMessage => {
            let (received, key) = process_private(suite, epoch, used, message)?;
            Ok(Processed::Member(received, Some(key)))
        }
        WireFormat::PublicMessage => {
            // MEM-5: a member sender's membership tag and signature are
            // verified here; another sender's message goes to the MLS stack.
            let pm = PublicMessage::parse(&message).map_err(ReceiveError::Mls)?;
            let Sender::Member(leaf) = pm.content.sender else {
                return Ok(Processed::NonMember(message));
            };
            pm.verify_membership_tag(suite, &epoch.membership_key, gc)
                .map_err(|_| ReceiveError::Signature)?;
            let key = epoch.leaf_keys.get(&leaf).ok_or(ReceiveError::Signature)?;
            pm.verify_signature(suite, key, Some(gc))
                .map_err(|_| ReceiveError::Signature)?;
            let received = Received {
                group_id: group_id.to_vec(),
                epoch: gc.epoch,
                wire_format: WireFormat::PublicMessage,
                content_type: pm.content.content_type,
                sender_leaf: leaf,
                content: pm.content.content.clone(),
                message,
            };
            Ok(Processed::Member(received, None))
        }
        // MEM-3: only a PublicMessage or a PrivateMessage.
        _ => Err(ReceiveError::WrongGroup),
    }
}

/// MEM-4: a PrivateMessage in the order the spec gives: sender data (leaf
/// and generation in range), the member's own key and nonce, the
/// `reuse_guard`, the key commitment before decryption, then the signature.
fn process_private(
    suite: MlsSuite,
    epoch: &EpochState,
    used: &HashSet<UsedKey>,
    message: Vec<u8>,
) -> Result<(Received, UsedKey), ReceiveError> {
    let gc = &epoch.group_context;
    let msg = PrivateMessage::parse(&message).map_err(ReceiveError::Mls)?;
    let sd =
        decrypt_sender_data(suite, &epoch.sender_data_secret, &msg).map_err(ReceiveError::Mls)?;
    if sd.leaf_index >= epoch.n_leaves || sd.generation > MAX_GENERATION {
        return Err(ReceiveError::Mls(Error::Malformed(
            "sender data out of range",
        )));
    }
    // MEM-4: a blank leaf, or a key already used, is refused before any
    // key is derived or anything decrypted.
    if !epoch.leaf_keys.contains_key(&sd.leaf_index) {
        return Err(ReceiveError::Signature);
    }
    let key_id = (
        sd.leaf_index,
        msg.content_type != ContentType::Application,
        sd.generation,
    );
    if used.contains(&key_id) {
        return Err(ReceiveError::Replayed);
    }
    let kn = leaf_key_nonce(
        suite,
        &epoch.encryption_secret,
        epoch.n_leaves,
        sd.leaf_index,
        RatchetKind::for_content_type(msg.content_type),
        sd.generation,
    )
    .map_err(ReceiveError::Mls)?;
    let final_nonce = apply_reuse_guard(&kn.nonce, sd.reuse_guard).map_err(ReceiveError::Mls)?;
    // MEM-4: the member's own ratchet key and nonce and the sender data's
    // leaf: c must match before anything is decrypted.
    CommitmentInput {
        suite,
        group_id: &msg.group_id,
        epoch: msg.epoch,
        leaf_index: sd.leaf_index,
        key: kn.key.expose(),
        final_nonce: final_nonce.expose(),
    }
    .verify(&msg.authenticated_data)
    .map_err(|_| ReceiveError::Commitment)?;
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
        message,
    };
    Ok((received, key_id))
}
