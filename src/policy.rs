//! The hub's policy engine (spec section "Processing by the Policy
//! Engine", HUB-8 to HUB-10).
//!
//! It opens the key layer of a PrivateMessage proposal or commit, checks
//! the key commitment **before** it decrypts anything, decrypts the one
//! message the key layer names, verifies the member's MLS signature against
//! the leaf's key in the hub state, and for a commit verifies the leaf's
//! signature over F. The front-end receives only a [`PolicyDecision`]:
//! accept or reject, and for an accepted commit the epoch it opens. Keys
//! and plaintext stay in this module; what the engine read is kept in its
//! own [`PolicyAudit`] log.

use crate::commitment::CommitmentInput;
use crate::error::{Error, Res};
use crate::fanout::verify_fanout_key;
use crate::keylayer;
use crate::keys::HubKeyPair;
use crate::mls::framing::{
    open_content, verify_framed_content, FramedContent, GroupContext, PrivateMessage, Sender,
};
use crate::mls::message::{ContentType, WireFormat};
use crate::mls::suite::MlsSuite;
use crate::profile::HandshakeProfile;
use crate::secret::Secret;
use crate::state::GroupRecord;

/// What the policy engine tells the front-end. It carries no key and no
/// plaintext, and can only be made by the policy engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyDecision {
    accepted: bool,
    opens_epoch: Option<u64>,
    sender_leaf: Option<u32>,
}

impl PolicyDecision {
    fn reject() -> Self {
        PolicyDecision {
            accepted: false,
            opens_epoch: None,
            sender_leaf: None,
        }
    }

    /// For an accepted commit, its sender's leaf: policy-engine state that
    /// the hub keeps with the closed epoch (DSP-6), never in a view.
    pub(crate) fn committer(&self) -> Option<u32> {
        self.opens_epoch.and(self.sender_leaf)
    }

    /// True if the policy engine accepted the message.
    pub fn is_accepted(&self) -> bool {
        self.accepted
    }

    /// For an accepted commit, the epoch it opens (F of that epoch is the
    /// one the hub layer carried).
    pub fn opens_epoch(&self) -> Option<u64> {
        self.opens_epoch
    }
}

/// What the policy engine read from one accepted handshake message: its
/// own log, never handed to the front-end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyAudit {
    /// The sender's leaf index.
    pub sender_leaf: u32,
    /// Proposal or commit.
    pub content_type: ContentType,
    /// The decrypted content: the encoded `Proposal` or `Commit`.
    pub content: Vec<u8>,
}

/// One handshake message for the policy engine to judge.
pub struct PolicyRequest<'a> {
    /// The MLS message (a PrivateMessage proposal or commit).
    pub message: &'a [u8],
    /// The sealed key layer from the hub layer.
    pub key_layer: &'a [u8],
    /// For a commit: F of the epoch it opens, from the hub layer.
    pub fanout_key: Option<&'a Secret>,
    /// The group's state.
    pub record: &'a GroupRecord,
    /// The signature key of the leaf the key layer names, looked up in the
    /// hub state by leaf index.
    pub leaf_signature_key: &'a dyn Fn(u32) -> Option<Vec<u8>>,
    /// The time (Unix seconds, the caller's clock) that policy-key expiry
    /// is judged against.
    pub now: u64,
}

impl core::fmt::Debug for PolicyRequest<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PolicyRequest")
            .field("message_len", &self.message.len())
            .field("key_layer_len", &self.key_layer.len())
            .finish_non_exhaustive()
    }
}

/// How many entries the policy engine's own log keeps (STO-3: the audit
/// is bounded).
pub const AUDIT_LEN: usize = 1024;

/// The policy engine: holds the policy key pairs.
pub struct PolicyEngine {
    keys: Vec<HubKeyPair>,
    audit: std::sync::Mutex<std::collections::VecDeque<PolicyAudit>>,
}

impl core::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// An engine with its policy key pairs.
    pub fn new(keys: Vec<HubKeyPair>) -> Self {
        PolicyEngine {
            keys,
            audit: Default::default(),
        }
    }

    /// The policy key pairs.
    pub fn keys(&self) -> &[HubKeyPair] {
        &self.keys
    }

    /// What the engine read from the handshake messages it accepted, oldest
    /// first (the engine's own log).
    ///
    /// The log is bounded: it holds the last [`AUDIT_LEN`] entries. An
    /// entry is written when the engine accepts a message, inside the
    /// hub's store transaction; if that transaction then fails or loses a
    /// race (another front-end's commit won), the entry stays: the engine
    /// did read that message.
    pub fn audit(&self) -> Vec<PolicyAudit> {
        self.audit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Judges one handshake message (HUB-8 to HUB-10). Every failure is a
    /// plain reject: the front-end answers `policy_rejected`.
    pub fn judge(&self, req: &PolicyRequest<'_>) -> PolicyDecision {
        match self.check(req) {
            Ok((audit, opens_epoch)) => {
                let sender_leaf = Some(audit.sender_leaf);
                let mut log = self
                    .audit
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if log.len() >= AUDIT_LEN {
                    log.pop_front();
                }
                log.push_back(audit);
                PolicyDecision {
                    accepted: true,
                    opens_epoch,
                    sender_leaf,
                }
            }
            Err(_) => PolicyDecision::reject(),
        }
    }

    fn check(&self, req: &PolicyRequest<'_>) -> Res<(PolicyAudit, Option<u64>)> {
        let record = req.record;
        let suite = MlsSuite::from_code(record.mls_suite).ok_or(Error::Unsupported("mls suite"))?;
        // HUB-9 (second part), PRF-2: key layers only in rooms with
        // private handshakes (the front-end refused the others already).
        if record.profile != HandshakeProfile::Private {
            return Err(Error::PeerMisbehaved(
                "key layer for a room with public handshakes",
            ));
        }
        // HUB-8: the key layer.
        // Only live policy keys open key layers (HUB-8, OUT-2's rule), by
        // the caller's clock.
        let now = req.now;
        let kl = keylayer::open(
            self.keys.iter().filter(|k| k.config.not_after > now),
            record.mls_suite,
            req.message,
            req.key_layer,
        )?;
        if kl.key.len() != suite.nk() || kl.nonce.len() != suite.nn() {
            return Err(Error::Malformed("key layer: key or nonce length"));
        }
        let msg = PrivateMessage::parse(req.message)?;
        let is_commit = msg.content_type == ContentType::Commit;
        if msg.content_type == ContentType::Application || kl.f_signature.is_empty() == is_commit {
            return Err(Error::Malformed("key layer: F signature presence"));
        }
        // HUB-9: the commitment, checked before anything is decrypted.
        CommitmentInput {
            suite,
            group_id: &msg.group_id,
            epoch: msg.epoch,
            leaf_index: kl.leaf_index,
            key: kl.key.expose(),
            final_nonce: kl.nonce.expose(),
        }
        .verify(&msg.authenticated_data)?;
        // HUB-10: decrypt, then the member's signature.
        let (content, _) = open_content(suite, &kl.key, &kl.nonce, &msg)?;
        let context = GroupContext::decode(&record.group_context)?;
        if context.group_id != msg.group_id || context.epoch != msg.epoch {
            return Err(Error::PeerMisbehaved(
                "message of another epoch than the group context",
            ));
        }
        let signature_key = (req.leaf_signature_key)(kl.leaf_index)
            .ok_or(Error::PeerMisbehaved("key layer names an unknown leaf"))?;
        let framed = FramedContent {
            group_id: msg.group_id.clone(),
            epoch: msg.epoch,
            sender: Sender::Member(kl.leaf_index),
            authenticated_data: msg.authenticated_data.clone(),
            content_type: msg.content_type,
            content: content.content.clone(),
        };
        verify_framed_content(
            suite,
            &signature_key,
            WireFormat::PrivateMessage,
            &framed,
            Some(&context),
            &content.auth.signature,
        )?;
        let opens_epoch = if is_commit {
            let new_epoch = msg
                .epoch
                .checked_add(1)
                .ok_or(Error::PeerMisbehaved("epoch overflow"))?;
            let f = req
                .fanout_key
                .ok_or(Error::PeerMisbehaved("commit without F"))?;
            // HUB-10: the leaf's signature over F of the epoch it opens.
            verify_fanout_key(
                suite,
                &signature_key,
                &msg.group_id,
                new_epoch,
                f,
                &kl.f_signature,
            )?;
            Some(new_epoch)
        } else {
            None
        };
        Ok((
            PolicyAudit {
                sender_leaf: kl.leaf_index,
                content_type: msg.content_type,
                content: content.content,
            },
            opens_epoch,
        ))
    }
}

/// What a disclosure of a member's key and final nonce for a disputed
/// PrivateMessage commit shows (DSP-4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Disclosure {
    /// `c` matches the disclosed key: it is the key the policy engine read
    /// (the commitment binds it), so the claim does not hold.
    SameKey,
    /// The disclosed key opens the ciphertext to a content the committer
    /// signed: one ciphertext under two keys, a proof against the
    /// committer.
    TwoKeys,
    /// `c` does not match and the key does not open the commit to a signed
    /// content: what the member claims, which the hub cannot check.
    Unverifiable,
}

/// DSP-4: judges a disclosed key and final nonce for `commit`, a
/// PrivateMessage commit of the closed epoch `closed` sent by `committer`
/// whose signature key is `committer_key`. Malformed input is an error.
pub(crate) fn judge_disclosure(
    closed: &GroupRecord,
    commit: &[u8],
    committer: u32,
    committer_key: &[u8],
    key: &Secret,
    nonce: &Secret,
) -> Res<Disclosure> {
    let suite = MlsSuite::from_code(closed.mls_suite).ok_or(Error::Unsupported("mls suite"))?;
    if key.len() != suite.nk() || nonce.len() != suite.nn() {
        return Err(Error::Malformed("disclosure: key or nonce length"));
    }
    let msg = PrivateMessage::parse(commit)?;
    let same = CommitmentInput {
        suite,
        group_id: &msg.group_id,
        epoch: msg.epoch,
        leaf_index: committer,
        key: key.expose(),
        final_nonce: nonce.expose(),
    }
    .verify(&msg.authenticated_data)
    .is_ok();
    if same {
        return Ok(Disclosure::SameKey);
    }
    let opened = (|| -> Res<()> {
        let (content, _) = open_content(suite, key, nonce, &msg)?;
        let context = GroupContext::decode(&closed.group_context)?;
        let framed = FramedContent {
            group_id: msg.group_id.clone(),
            epoch: msg.epoch,
            sender: Sender::Member(committer),
            authenticated_data: msg.authenticated_data.clone(),
            content_type: msg.content_type,
            content: content.content.clone(),
        };
        verify_framed_content(
            suite,
            committer_key,
            WireFormat::PrivateMessage,
            &framed,
            Some(&context),
            &content.auth.signature,
        )
    })();
    Ok(if opened.is_ok() {
        Disclosure::TwoKeys
    } else {
        Disclosure::Unverifiable
    })
}
