//! The storage behind [`crate::hub::PublicGroupTracker`]: openmls's
//! [`PublicStorageProvider`] for one group, a small key-value map that is
//! serialized as the hub's tracked state (TRK-4) and read back from it.
//!
//! openmls writes the four parts of a `PublicGroup` (tree, GroupContext,
//! interim transcript hash, confirmation tag) and its queue of proposals
//! through the trait; each value is kept as openmls's serde form in JSON,
//! the encoding its own storage providers use.
//!
//! The serialized form (all lengths big-endian):
//!
//! ```text
//! version (1 byte, 1)
//! group_id: u32 length || bytes
//! 4 times, tree / context / interim transcript hash / confirmation tag:
//!     u32 length || JSON (length 0: absent)
//! u32 count of queued proposals, then per proposal:
//!     u32 length || reference JSON, u32 length || proposal JSON
//! ```
//!
//! Decoding checks every length against what is left of the input, so a
//! corrupt state is an error, never a large allocation.

use std::cell::RefCell;

use openmls_traits::public_storage::PublicStorageProvider;
use openmls_traits::storage::{traits, Entity, Key, CURRENT_VERSION};

/// The format version written first.
const FORMAT: u8 = 1;

/// A storage failure: a value that does not serialize or deserialize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStorageError(pub String);

impl core::fmt::Display for GroupStorageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "group storage: {}", self.0)
    }
}

impl std::error::Error for GroupStorageError {}

/// The parts of one tracked group, as openmls stores them.
#[derive(Default, Clone)]
struct Parts {
    tree: Vec<u8>,
    context: Vec<u8>,
    interim_transcript_hash: Vec<u8>,
    confirmation_tag: Vec<u8>,
    /// Queued proposals: (reference JSON, proposal JSON), in order.
    proposals: Vec<(Vec<u8>, Vec<u8>)>,
}

/// openmls's public storage for one group. The group id openmls passes
/// with each call must be the group's: one storage holds one group.
pub struct GroupStorage {
    group_id: Vec<u8>,
    group_id_key: Vec<u8>,
    parts: RefCell<Parts>,
}

impl core::fmt::Debug for GroupStorage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GroupStorage")
            .field("group_id_len", &self.group_id.len())
            .field("proposals", &self.parts.borrow().proposals.len())
            .finish_non_exhaustive()
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, GroupStorageError> {
    serde_json::to_vec(v).map_err(|e| GroupStorageError(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(v: &[u8]) -> Result<Option<T>, GroupStorageError> {
    if v.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(v)
        .map(Some)
        .map_err(|e| GroupStorageError(e.to_string()))
}

impl GroupStorage {
    /// An empty storage for the group `group_id`.
    pub fn new(group_id: &[u8]) -> Result<Self, GroupStorageError> {
        let group_id_key = to_json(&openmls::group::GroupId::from_slice(group_id))?;
        Ok(GroupStorage {
            group_id: group_id.to_vec(),
            group_id_key,
            parts: RefCell::new(Parts::default()),
        })
    }

    /// The group this storage holds.
    pub fn group_id(&self) -> &[u8] {
        &self.group_id
    }

    /// Refuses a call for another group than this storage's.
    fn check<G: Key<CURRENT_VERSION>>(&self, group_id: &G) -> Result<(), GroupStorageError> {
        if to_json(group_id)? == self.group_id_key {
            Ok(())
        } else {
            Err(GroupStorageError("a call for another group".into()))
        }
    }

    /// The serialized form (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let p = self.parts.borrow();
        let mut out = Vec::with_capacity(
            64 + self.group_id.len()
                + p.tree.len()
                + p.context.len()
                + p.interim_transcript_hash.len()
                + p.confirmation_tag.len(),
        );
        out.push(FORMAT);
        let put = |out: &mut Vec<u8>, b: &[u8]| {
            // Lengths are below 2^32: every part is bounded by the MLS
            // message limits the hub enforces long before.
            out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(b);
        };
        put(&mut out, &self.group_id);
        for part in [
            &p.tree,
            &p.context,
            &p.interim_transcript_hash,
            &p.confirmation_tag,
        ] {
            put(&mut out, part);
        }
        out.extend_from_slice(
            &u32::try_from(p.proposals.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for (r, q) in &p.proposals {
            put(&mut out, r);
            put(&mut out, q);
        }
        out
    }

    /// Reads a serialized form back.
    ///
    /// # Errors
    ///
    /// [`GroupStorageError`] for bytes that are not exactly one
    /// serialized storage.
    pub fn decode(mut bytes: &[u8]) -> Result<Self, GroupStorageError> {
        let bad = |what: &str| GroupStorageError(format!("corrupt state: {what}"));
        let (&version, rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
        if version != FORMAT {
            return Err(bad("unknown format version"));
        }
        bytes = rest;
        let take = |bytes: &mut &[u8]| -> Result<Vec<u8>, GroupStorageError> {
            let (len, rest) = bytes.split_at_checked(4).ok_or_else(|| bad("length"))?;
            let len = u32::from_be_bytes(len.try_into().map_err(|_| bad("length"))?) as usize;
            let (v, rest) = rest.split_at_checked(len).ok_or_else(|| bad("truncated"))?;
            *bytes = rest;
            Ok(v.to_vec())
        };
        let group_id = take(&mut bytes)?;
        let tree = take(&mut bytes)?;
        let context = take(&mut bytes)?;
        let interim_transcript_hash = take(&mut bytes)?;
        let confirmation_tag = take(&mut bytes)?;
        let (count, rest) = bytes
            .split_at_checked(4)
            .ok_or_else(|| bad("proposal count"))?;
        bytes = rest;
        let count = u32::from_be_bytes(count.try_into().map_err(|_| bad("proposal count"))?);
        // Each proposal takes at least 8 bytes: the count cannot make the
        // vector larger than the input.
        if count as usize > bytes.len() / 8 {
            return Err(bad("proposal count"));
        }
        let mut proposals = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let r = take(&mut bytes)?;
            let q = take(&mut bytes)?;
            proposals.push((r, q));
        }
        if !bytes.is_empty() {
            return Err(bad("trailing bytes"));
        }
        let storage = GroupStorage::new(&group_id)?;
        *storage.parts.borrow_mut() = Parts {
            tree,
            context,
            interim_transcript_hash,
            confirmation_tag,
            proposals,
        };
        Ok(storage)
    }
}

/// Which of the four single parts a call is about.
#[derive(Clone, Copy)]
enum Part {
    Tree,
    Context,
    InterimTranscriptHash,
    ConfirmationTag,
}

impl GroupStorage {
    fn write<G: Key<CURRENT_VERSION>, E: Entity<CURRENT_VERSION>>(
        &self,
        group_id: &G,
        part: Part,
        value: &E,
    ) -> Result<(), GroupStorageError> {
        let v = to_json(value)?;
        self.set(group_id, part, v)
    }

    /// Sets a part to `v` (empty: absent).
    fn set<G: Key<CURRENT_VERSION>>(
        &self,
        group_id: &G,
        part: Part,
        v: Vec<u8>,
    ) -> Result<(), GroupStorageError> {
        self.check(group_id)?;
        let mut p = self.parts.borrow_mut();
        *match part {
            Part::Tree => &mut p.tree,
            Part::Context => &mut p.context,
            Part::InterimTranscriptHash => &mut p.interim_transcript_hash,
            Part::ConfirmationTag => &mut p.confirmation_tag,
        } = v;
        Ok(())
    }

    fn read<G: Key<CURRENT_VERSION>, E: Entity<CURRENT_VERSION>>(
        &self,
        group_id: &G,
        part: Part,
    ) -> Result<Option<E>, GroupStorageError> {
        self.check(group_id)?;
        let p = self.parts.borrow();
        from_json(match part {
            Part::Tree => &p.tree,
            Part::Context => &p.context,
            Part::InterimTranscriptHash => &p.interim_transcript_hash,
            Part::ConfirmationTag => &p.confirmation_tag,
        })
    }
}

impl PublicStorageProvider<CURRENT_VERSION> for GroupStorage {
    type PublicError = GroupStorageError;

    fn write_tree<G: traits::GroupId<CURRENT_VERSION>, T: traits::TreeSync<CURRENT_VERSION>>(
        &self,
        group_id: &G,
        tree: &T,
    ) -> Result<(), Self::PublicError> {
        self.write(group_id, Part::Tree, tree)
    }

    fn write_interim_transcript_hash<
        G: traits::GroupId<CURRENT_VERSION>,
        H: traits::InterimTranscriptHash<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        hash: &H,
    ) -> Result<(), Self::PublicError> {
        self.write(group_id, Part::InterimTranscriptHash, hash)
    }

    fn write_context<
        G: traits::GroupId<CURRENT_VERSION>,
        C: traits::GroupContext<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        context: &C,
    ) -> Result<(), Self::PublicError> {
        self.write(group_id, Part::Context, context)
    }

    fn write_confirmation_tag<
        G: traits::GroupId<CURRENT_VERSION>,
        T: traits::ConfirmationTag<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        tag: &T,
    ) -> Result<(), Self::PublicError> {
        self.write(group_id, Part::ConfirmationTag, tag)
    }

    fn queue_proposal<
        G: traits::GroupId<CURRENT_VERSION>,
        R: traits::ProposalRef<CURRENT_VERSION>,
        Q: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        proposal_ref: &R,
        proposal: &Q,
    ) -> Result<(), Self::PublicError> {
        self.check(group_id)?;
        let r = to_json(proposal_ref)?;
        let q = to_json(proposal)?;
        let mut p = self.parts.borrow_mut();
        // The same reference queued again replaces its entry.
        p.proposals.retain(|(old, _)| *old != r);
        p.proposals.push((r, q));
        Ok(())
    }

    fn queued_proposals<
        G: traits::GroupId<CURRENT_VERSION>,
        R: traits::ProposalRef<CURRENT_VERSION>,
        Q: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
    ) -> Result<Vec<(R, Q)>, Self::PublicError> {
        self.check(group_id)?;
        let p = self.parts.borrow();
        p.proposals
            .iter()
            .map(|(r, q)| {
                let missing = || GroupStorageError("empty proposal entry".into());
                Ok((
                    from_json(r)?.ok_or_else(missing)?,
                    from_json(q)?.ok_or_else(missing)?,
                ))
            })
            .collect()
    }

    fn tree<G: traits::GroupId<CURRENT_VERSION>, T: traits::TreeSync<CURRENT_VERSION>>(
        &self,
        group_id: &G,
    ) -> Result<Option<T>, Self::PublicError> {
        self.read(group_id, Part::Tree)
    }

    fn group_context<
        G: traits::GroupId<CURRENT_VERSION>,
        C: traits::GroupContext<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
    ) -> Result<Option<C>, Self::PublicError> {
        self.read(group_id, Part::Context)
    }

    fn interim_transcript_hash<
        G: traits::GroupId<CURRENT_VERSION>,
        H: traits::InterimTranscriptHash<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
    ) -> Result<Option<H>, Self::PublicError> {
        self.read(group_id, Part::InterimTranscriptHash)
    }

    fn confirmation_tag<
        G: traits::GroupId<CURRENT_VERSION>,
        T: traits::ConfirmationTag<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
    ) -> Result<Option<T>, Self::PublicError> {
        self.read(group_id, Part::ConfirmationTag)
    }

    fn delete_tree<G: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &G,
    ) -> Result<(), Self::PublicError> {
        self.set(group_id, Part::Tree, Vec::new())
    }

    fn delete_confirmation_tag<G: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &G,
    ) -> Result<(), Self::PublicError> {
        self.set(group_id, Part::ConfirmationTag, Vec::new())
    }

    fn delete_context<G: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &G,
    ) -> Result<(), Self::PublicError> {
        self.set(group_id, Part::Context, Vec::new())
    }

    fn delete_interim_transcript_hash<G: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &G,
    ) -> Result<(), Self::PublicError> {
        self.set(group_id, Part::InterimTranscriptHash, Vec::new())
    }

    fn remove_proposal<
        G: traits::GroupId<CURRENT_VERSION>,
        R: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
        proposal_ref: &R,
    ) -> Result<(), Self::PublicError> {
        self.check(group_id)?;
        let r = to_json(proposal_ref)?;
        self.parts
            .borrow_mut()
            .proposals
            .retain(|(old, _)| *old != r);
        Ok(())
    }

    fn clear_proposal_queue<
        G: traits::GroupId<CURRENT_VERSION>,
        R: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &G,
    ) -> Result<(), Self::PublicError> {
        self.check(group_id)?;
        self.parts.borrow_mut().proposals.clear();
        Ok(())
    }
}
