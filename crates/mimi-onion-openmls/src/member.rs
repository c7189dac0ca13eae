//! The member side for openmls (spec section "Member Processing"): the
//! core's onion part ([`OnionMember`]: hint scan, check value, body, group
//! binding, the record of delivered PublicMessages, the buffer and its
//! rescan) finds and opens each fan-out message, and
//! `MlsGroup::process_message` does the MLS part with the group's state.
//! After a merged commit or a Welcome the member enters the new epoch's F
//! (from openmls's exporter) and the buffer is rescanned (MEM-6).

use std::collections::BTreeMap;

use mimi_onion::member::{OnionMember, Opened, Opening};
use mimi_onion::mls::framing::{PublicMessage, Sender as CoreSender};
use mimi_onion::mls::message::{ContentType, WireFormat};
use openmls::prelude::{
    MlsGroup, MlsMessageBodyIn, MlsMessageIn, ProcessedMessageContent, ProtocolMessage, Sender,
    StagedWelcome,
};
use openmls_traits::OpenMlsProvider;
use tls_codec::DeserializeBytes as _;

use crate::client::{fanout_key, room_join_config, room_signing_key};
use crate::{openmls, Error, Result};

/// What became of a fan-out message (or of a buffered one, on a rescan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Matched no held epoch: buffered for the rescan after the next epoch
    /// change (MEM-6).
    Buffered,
    /// An application message, verified and decrypted by openmls.
    Application {
        /// The group.
        group_id: Vec<u8>,
        /// Its epoch.
        epoch: u64,
        /// The sender's leaf.
        sender_leaf: u32,
        /// The application data.
        data: Vec<u8>,
        /// The MLS message, byte for byte.
        message: Vec<u8>,
    },
    /// A proposal, verified by openmls and stored in the group's proposal
    /// queue.
    Proposal {
        /// The group.
        group_id: Vec<u8>,
        /// Its epoch.
        epoch: u64,
        /// The MLS message, byte for byte.
        message: Vec<u8>,
    },
    /// A commit, verified and merged by openmls (this client's own pending
    /// commit too, once it comes back by fan-out); the member now holds
    /// the new epoch's F.
    Commit {
        /// The group.
        group_id: Vec<u8>,
        /// The epoch the commit opened.
        new_epoch: u64,
        /// True if it was this client's own commit.
        own: bool,
        /// The MLS message, byte for byte.
        message: Vec<u8>,
    },
    /// One of this client's own messages (application or proposal), fanned
    /// back: nothing to do.
    Own {
        /// The group.
        group_id: Vec<u8>,
        /// Its epoch.
        epoch: u64,
        /// The MLS message, byte for byte.
        message: Vec<u8>,
    },
    /// A commit removed this client, verified by openmls: the group's
    /// keys are forgotten.
    Removed {
        /// The group.
        group_id: Vec<u8>,
        /// The commit, byte for byte.
        message: Vec<u8>,
    },
}

/// A client's member side on openmls: the onion part and the client's
/// openmls groups.
#[derive(Debug)]
pub struct OpenMlsMember {
    onion: OnionMember,
    groups: BTreeMap<Vec<u8>, MlsGroup>,
}

impl Default for OpenMlsMember {
    fn default() -> Self {
        OpenMlsMember::new(OnionMember::default())
    }
}

impl OpenMlsMember {
    /// A member over the onion part `onion` (its buffer and record bounds).
    pub fn new(onion: OnionMember) -> Self {
        OpenMlsMember {
            onion,
            groups: BTreeMap::new(),
        }
    }

    /// The onion part.
    pub fn onion(&self) -> &OnionMember {
        &self.onion
    }

    /// The openmls group of `group_id`.
    pub fn group(&self, group_id: &[u8]) -> Option<&MlsGroup> {
        self.groups.get(group_id)
    }

    /// The openmls group of `group_id`, to create messages with. After a
    /// change of epoch made here (merging an own pending commit), call
    /// [`OpenMlsMember::epoch_changed`].
    pub fn group_mut(&mut self, group_id: &[u8]) -> Option<&mut MlsGroup> {
        self.groups.get_mut(group_id)
    }

    /// Takes a group into the member (one it created, or joined otherwise):
    /// enters F of its current epoch and rescans the buffer. Returns what
    /// the rescan delivered or dropped.
    pub fn add_group<P: OpenMlsProvider>(
        &mut self,
        provider: &P,
        group: MlsGroup,
    ) -> Result<Vec<Result<Event>>> {
        room_signing_key(&group)?;
        let group_id = group.group_id().as_slice().to_vec();
        self.groups.insert(group_id.clone(), group);
        self.epoch_changed(provider, &group_id)
    }

    /// Joins a room from a Welcome (the bytes of an `MLSMessage`, as the
    /// hub delivered them), with the ratchet tree from the Welcome's
    /// extension; refuses a room not of this crate's profile. Returns the
    /// group id and what the rescan delivered.
    pub fn join_from_welcome<P: OpenMlsProvider>(
        &mut self,
        provider: &P,
        welcome: &[u8],
    ) -> Result<(Vec<u8>, Vec<Result<Event>>)> {
        let msg = MlsMessageIn::tls_deserialize_exact_bytes(welcome).map_err(openmls)?;
        let MlsMessageBodyIn::Welcome(welcome) = msg.extract() else {
            return Err(Error::Profile("not a Welcome"));
        };
        let group = StagedWelcome::new_from_welcome(provider, &room_join_config(), welcome, None)
            .map_err(openmls)?
            .into_group(provider)
            .map_err(openmls)?;
        let group_id = group.group_id().as_slice().to_vec();
        let rescanned = self.add_group(provider, group)?;
        Ok((group_id, rescanned))
    }

    /// Enters F of the current epoch of `group_id` (after a change of
    /// epoch made outside [`OpenMlsMember::receive`]) and rescans the
    /// buffer (MEM-6). FAN-1: the previous epoch stays, older ones go.
    pub fn epoch_changed<P: OpenMlsProvider>(
        &mut self,
        provider: &P,
        group_id: &[u8],
    ) -> Result<Vec<Result<Event>>> {
        self.enter_current(provider, group_id)?;
        Ok(self.rescan(provider))
    }

    fn enter_current<P: OpenMlsProvider>(&mut self, provider: &P, group_id: &[u8]) -> Result<()> {
        let group = self
            .groups
            .get(group_id)
            .ok_or(Error::Profile("unknown group"))?;
        let f = fanout_key(group, provider.crypto())?;
        self.onion
            .enter_epoch(group_id, group.epoch().as_u64(), &f)?;
        Ok(())
    }

    fn rescan<P: OpenMlsProvider>(&mut self, provider: &P) -> Vec<Result<Event>> {
        let mut out = Vec::new();
        while let Some(r) = self.onion.next_rescanned() {
            out.push(match r {
                Ok(opened) => self.process(provider, opened),
                Err(e) => Err(e.into()),
            });
        }
        out
    }

    /// Receives one fan-out message: the onion part opens it, openmls
    /// processes it. The first result is this message's; after a commit,
    /// the results of the rescan follow (MEM-6).
    pub fn receive<P: OpenMlsProvider>(
        &mut self,
        provider: &P,
        bytes: &[u8],
    ) -> Vec<Result<Event>> {
        let first = match self.onion.receive(bytes) {
            Ok(Opening::Opened(opened)) => self.process(provider, opened),
            Ok(Opening::Buffered) => Ok(Event::Buffered),
            Err(e) => Err(e.into()),
        };
        let mut out = vec![first];
        out.extend(self.rescan(provider));
        out
    }

    /// The MLS part of one opened message, with the state of the group
    /// whose keys opened it (MEM-3: the message names that group and
    /// epoch; openmls processes it in that epoch).
    fn process<P: OpenMlsProvider>(&mut self, provider: &P, opened: Opened) -> Result<Event> {
        let group = self
            .groups
            .get_mut(&opened.group_id)
            .ok_or(Error::Profile("unknown group"))?;
        let own_leaf = group.own_leaf_index().u32();
        // The public-handshake profile: handshakes as PublicMessage only.
        let content_type = mimi_onion::mls::message::MessageInfo::parse(&opened.message)?
            .content_type
            .ok_or(Error::Profile("no content type"))?;
        if opened.wire_format == WireFormat::PrivateMessage
            && content_type != ContentType::Application
        {
            return Err(Error::Profile("a handshake as PrivateMessage"));
        }
        if opened.wire_format == WireFormat::PublicMessage && content_type == ContentType::Proposal
        {
            // An own proposal fanned back is already in the proposal queue.
            let pm = PublicMessage::parse(&opened.message)?;
            if pm.content.sender == CoreSender::Member(own_leaf) {
                self.onion.accept(&opened)?;
                return Ok(Event::Own {
                    group_id: opened.group_id,
                    epoch: opened.epoch,
                    message: opened.message,
                });
            }
        }
        let msg = MlsMessageIn::tls_deserialize_exact_bytes(&opened.message).map_err(openmls)?;
        let protocol: ProtocolMessage = msg.try_into_protocol_message().map_err(openmls)?;
        let processed = group.process_message(provider, protocol).map_err(openmls)?;
        let sender_leaf = match processed.sender() {
            Sender::Member(leaf) => Some(leaf.u32()),
            _ => None,
        };
        // MEM-5: recorded once openmls accepted it.
        self.onion.accept(&opened)?;
        let Opened {
            group_id,
            epoch,
            message,
            ..
        } = opened;
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => Ok(Event::Application {
                group_id,
                epoch,
                sender_leaf: sender_leaf.ok_or(Error::Profile("application from a non-member"))?,
                data: app.into_bytes(),
                message,
            }),
            ProcessedMessageContent::ProposalMessage(proposal)
            | ProcessedMessageContent::ExternalJoinProposalMessage(proposal) => {
                group
                    .store_pending_proposal(provider.storage(), *proposal)
                    .map_err(openmls)?;
                Ok(Event::Proposal {
                    group_id,
                    epoch,
                    message,
                })
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                group
                    .merge_staged_commit(provider, *staged)
                    .map_err(openmls)?;
                self.after_commit(provider, group_id, false, message)
            }
            ProcessedMessageContent::OwnPendingCommit => {
                group.merge_pending_commit(provider).map_err(openmls)?;
                self.after_commit(provider, group_id, true, message)
            }
            ProcessedMessageContent::OwnPrivateMessage => Ok(Event::Own {
                group_id,
                epoch,
                message,
            }),
            #[allow(unreachable_patterns)]
            _ => Err(Error::Profile("message kind this crate does not process")),
        }
    }

    fn after_commit<P: OpenMlsProvider>(
        &mut self,
        provider: &P,
        group_id: Vec<u8>,
        own: bool,
        message: Vec<u8>,
    ) -> Result<Event> {
        let active = self.groups.get(&group_id).is_some_and(MlsGroup::is_active);
        if !active {
            // FAN-1: a removed member forgets the group's keys.
            self.onion.leave(&group_id);
            self.groups.remove(&group_id);
            return Ok(Event::Removed { group_id, message });
        }
        self.enter_current(provider, &group_id)?;
        let new_epoch = self.groups[&group_id].epoch().as_u64();
        Ok(Event::Commit {
            group_id,
            new_epoch,
            own,
            message,
        })
    }
}
