//! The hub side: [`PublicGroupTracker`], the core's
//! [`GroupTracker`] seam implemented on openmls's delivery-service API,
//! [`PublicGroup`].
//!
//! Install it with [`mimi_onion::hub::HubFrontEnd::set_tracker`]. The hub
//! then checks each registration's whole GroupInfo and ratchet tree
//! through [`PublicGroup::from_external`] (the GroupInfo's signature, every
//! leaf node's signature and lifetime, the parent hashes, the tree hash),
//! verifies each PublicMessage proposal and commit with
//! [`PublicGroup::process_message`] (member senders, external commits and
//! new members' proposals alike) and, for an accepted commit, takes the
//! next epoch's GroupContext and leaf keys from the merged group: no
//! manual install of the GroupContext remains.
//!
//! The group's state travels as the tracked-state blob the hub keeps in its
//! store, one [`GroupStorage`] per group and epoch; the tracker itself
//! holds nothing but the crypto provider.

use std::collections::{BTreeMap, BTreeSet};

use mimi_onion::tracker::{
    GroupTracker, TrackedEpoch, TrackedSender, TrackerError, VerifiedHandshake,
};
use openmls::prelude::{
    tls_codec::{Deserialize as _, Serialize as _},
    MlsMessageBodyIn, MlsMessageIn, ProcessedMessageContent, Proposal, ProposalStore,
    ProtocolMessage, PublicGroup, QueuedProposal, Sender,
};
use openmls_rust_crypto::RustCrypto;

use crate::storage::GroupStorage;

/// The openmls-backed group tracker of a hub.
#[derive(Default)]
pub struct PublicGroupTracker {
    crypto: RustCrypto,
}

impl core::fmt::Debug for PublicGroupTracker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PublicGroupTracker").finish_non_exhaustive()
    }
}

impl PublicGroupTracker {
    /// A tracker on openmls's RustCrypto provider.
    pub fn new() -> Self {
        Self::default()
    }
}

fn invalid(e: impl core::fmt::Display) -> TrackerError {
    TrackerError::Invalid(e.to_string())
}

fn corrupt(e: impl core::fmt::Display) -> TrackerError {
    TrackerError::CorruptState(e.to_string())
}

/// The epoch view of a loaded group: its GroupContext and leaf keys.
fn epoch_view(group: &PublicGroup, storage: &GroupStorage) -> Result<TrackedEpoch, TrackerError> {
    let group_context = group
        .group_context()
        .tls_serialize_detached()
        .map_err(invalid)?;
    Ok(TrackedEpoch {
        state: storage.encode(),
        group_context,
        leaves: leaf_keys(group),
    })
}

fn leaf_keys(group: &PublicGroup) -> BTreeMap<u32, Vec<u8>> {
    group
        .members()
        .map(|m| (m.index.u32(), m.signature_key))
        .collect()
}

/// Loads the group a tracked state holds.
fn load(state: &[u8]) -> Result<(PublicGroup, GroupStorage), TrackerError> {
    let storage = GroupStorage::decode(state).map_err(corrupt)?;
    let group_id = openmls::group::GroupId::from_slice(storage.group_id());
    let group = PublicGroup::load(&storage, &group_id)
        .map_err(corrupt)?
        .ok_or_else(|| TrackerError::CorruptState("no group in the state".into()))?;
    Ok((group, storage))
}

/// The signature key of an `external_senders` entry: the first field of
/// its encoding (RFC 9420 section 12.1.8.1, `ExternalSender`), which
/// openmls does not expose otherwise.
fn external_sender_key(group: &PublicGroup, index: u32) -> Result<Vec<u8>, TrackerError> {
    let senders = group
        .group_context()
        .extensions()
        .external_senders()
        .ok_or_else(|| invalid("external sender without an external_senders extension"))?;
    let sender = senders
        .get(index as usize)
        .ok_or_else(|| invalid("external sender index out of range"))?;
    let bytes = sender.tls_serialize_detached().map_err(invalid)?;
    let key = tls_codec::VLBytes::tls_deserialize(&mut bytes.as_slice()).map_err(invalid)?;
    Ok(key.as_slice().to_vec())
}

/// The signer's key of a verified standalone proposal, by sender type.
fn proposal_signer(
    group: &PublicGroup,
    proposal: &QueuedProposal,
) -> Result<(TrackedSender, Vec<u8>), TrackerError> {
    match proposal.sender() {
        Sender::Member(leaf) => {
            let key = group
                .leaf(*leaf)
                .ok_or_else(|| invalid("proposal from a blank leaf"))?
                .signature_key()
                .as_slice()
                .to_vec();
            Ok((TrackedSender::Member(leaf.u32()), key))
        }
        Sender::NewMemberProposal => match proposal.proposal() {
            Proposal::Add(add) => Ok((
                TrackedSender::NewMemberProposal,
                add.key_package()
                    .leaf_node()
                    .signature_key()
                    .as_slice()
                    .to_vec(),
            )),
            _ => Err(invalid("new_member_proposal that is not an Add")),
        },
        Sender::External(index) => {
            // SenderExtensionIndex is a uint32 on the wire; openmls keeps
            // its getter private.
            let bytes = index.tls_serialize_detached().map_err(invalid)?;
            let index = u32::tls_deserialize_exact(&bytes).map_err(invalid)?;
            Ok((
                TrackedSender::External(index),
                external_sender_key(group, index)?,
            ))
        }
        Sender::NewMemberCommit => Err(invalid("new_member_commit sender on a proposal")),
    }
}

impl GroupTracker for PublicGroupTracker {
    /// TRK-2 through [`PublicGroup::from_external`].
    fn register(&self, group_info: &[u8]) -> Result<TrackedEpoch, TrackerError> {
        let message = MlsMessageIn::tls_deserialize_exact(group_info).map_err(invalid)?;
        let MlsMessageBodyIn::GroupInfo(info) = message.extract() else {
            return Err(invalid("not a GroupInfo"));
        };
        let tree = info
            .extensions()
            .ratchet_tree()
            .ok_or_else(|| invalid("GroupInfo without its ratchet_tree extension"))?
            .ratchet_tree()
            .clone();
        let storage = GroupStorage::new(info.group_id().as_slice()).map_err(invalid)?;
        // Verifies the GroupInfo's signature, every leaf node (signature,
        // lifetime), the parent hashes and the tree hash.
        let (group, _) =
            PublicGroup::from_external(&self.crypto, &storage, tree, info, ProposalStore::new())
                .map_err(invalid)?;
        epoch_view(&group, &storage)
    }

    /// TRK-3 through [`PublicGroup::process_message`], then (on a copy
    /// of the state) [`PublicGroup::add_proposal`] or
    /// [`PublicGroup::merge_commit`].
    fn verify_handshake(
        &self,
        state: &[u8],
        message: &[u8],
    ) -> Result<VerifiedHandshake, TrackerError> {
        let (mut group, storage) = load(state)?;
        let message = MlsMessageIn::tls_deserialize_exact(message).map_err(invalid)?;
        let protocol: ProtocolMessage = match message.extract() {
            MlsMessageBodyIn::PublicMessage(m) => m.into(),
            MlsMessageBodyIn::PrivateMessage(_) => {
                return Err(TrackerError::Unsupported("PrivateMessage handshake"))
            }
            _ => return Err(invalid("not a PublicMessage")),
        };
        // Framing (group, epoch), the signature under the sender type's
        // key, and the proposal's or commit's validity.
        let processed = group
            .process_message(&self.crypto, protocol)
            .map_err(invalid)?;
        let sender = processed.sender().clone();
        match processed.into_content() {
            ProcessedMessageContent::ProposalMessage(p)
            | ProcessedMessageContent::ExternalJoinProposalMessage(p) => {
                let (sender, signature_key) = proposal_signer(&group, &p)?;
                let proposed_extensions = match p.proposal() {
                    Proposal::GroupContextExtensions(gce) => {
                        let list = gce.extensions().tls_serialize_detached().map_err(invalid)?;
                        // Without the vector's length prefix.
                        let contents =
                            tls_codec::VLBytes::tls_deserialize_exact(&list).map_err(invalid)?;
                        Some(contents.as_slice().to_vec())
                    }
                    _ => None,
                };
                group.add_proposal(&storage, *p).map_err(invalid)?;
                Ok(VerifiedHandshake {
                    sender,
                    signature_key,
                    state: Some(storage.encode()),
                    next_epoch: None,
                    proposed_extensions,
                    blanked_leaves: Vec::new(),
                })
            }
            ProcessedMessageContent::StagedCommitMessage(commit) => {
                // The committer's key: the leaf's for a member, the path
                // leaf node's for an external commit (RFC 9420 12.4.3.2).
                let (sender, signature_key) = match sender {
                    Sender::Member(leaf) => (
                        TrackedSender::Member(leaf.u32()),
                        group
                            .leaf(leaf)
                            .ok_or_else(|| invalid("commit from a blank leaf"))?
                            .signature_key()
                            .as_slice()
                            .to_vec(),
                    ),
                    Sender::NewMemberCommit => (
                        TrackedSender::NewMemberCommit,
                        commit
                            .update_path_leaf_node()
                            .ok_or_else(|| invalid("external commit without a path"))?
                            .signature_key()
                            .as_slice()
                            .to_vec(),
                    ),
                    _ => return Err(invalid("commit from a sender that cannot commit")),
                };
                let before: BTreeSet<u32> = leaf_keys(&group).into_keys().collect();
                group.merge_commit(&storage, *commit).map_err(invalid)?;
                let next = epoch_view(&group, &storage)?;
                let blanked_leaves = before
                    .into_iter()
                    .filter(|leaf| !next.leaves.contains_key(leaf))
                    .collect();
                Ok(VerifiedHandshake {
                    sender,
                    signature_key,
                    state: None,
                    next_epoch: Some(next),
                    proposed_extensions: None,
                    blanked_leaves,
                })
            }
            _ => Err(TrackerError::Unsupported("not a proposal or commit")),
        }
    }

    /// TRK-4: the epoch view of a stored state.
    fn epoch_of(&self, state: &[u8]) -> Result<TrackedEpoch, TrackerError> {
        let (group, storage) = load(state)?;
        epoch_view(&group, &storage)
    }
}
