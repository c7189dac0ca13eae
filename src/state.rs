//! The hub's state and the contract every store of it meets (spec section
//! "Hub State", requirements STO-1 to STO-5).
//!
//! The front-end keeps, per group, the shard its tokens route to, the
//! current epoch, F of the live epochs, the leaves' signature keys and the
//! hashes of the handshake messages accepted in it (HUB-7); for the
//! lifetime of each token key, the spent token nonces (TOK-6); for the
//! lifetime of each hub key, every `enc` it opened with the envelope's
//! resend fingerprint, and for a retry window the response it sent (HUB-5,
//! RSP-4).
//!
//! A store is a [`HubStore`]: it runs the front-end's work on one envelope
//! as one transaction ([`HubStore::transact`]) against a [`HubState`], the
//! transaction's view. Every operation can fail with a [`StoreError`]; the
//! front-end then answers with the retryable status `unavailable` and the
//! transaction leaves nothing behind (STO-1). The operations that a race
//! between two front-ends on one store could break are atomic on their own
//! (STO-2): spending a token, inserting an `enc` record, registering a
//! group, advancing an epoch (compare-and-set) and recording a handshake
//! hash each report whether they took effect. Entries expire with the key
//! they belong to, by the clock the caller passes (STO-3). The fan-out of
//! an accepted message is recorded in the transaction that accepts it,
//! numbered in commit order per group, under a store id drawn once, and
//! kept until its follower acknowledged it (STO-5, FAN-7).
//!
//! [`InMemoryHubStore`] serves tests and the demo; the SQLite and
//! PostgreSQL stores live in crates of their own. The conformance suite
//! that every store passes is `test_utils::store_suite` (feature
//! `test-utils`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::profile::HandshakeProfile;
use crate::secret::Secret;
use crate::token::TOKEN_NONCE_LEN;

/// What the hub keeps about one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    /// The shard the group's tokens route to.
    pub shard: u32,
    /// The current epoch.
    pub epoch: u64,
    /// The group's MLS cipher suite.
    pub mls_suite: u16,
    /// The room's handshake profile, fixed by its GroupContext (PRF-1):
    /// with [`HandshakeProfile::Private`] proposals and commits come with a
    /// key layer and `c`, with [`HandshakeProfile::Public`] as
    /// PublicMessages (PRF-2). Stores keep it in the column they call
    /// `commitment_required` (true for private handshakes), the name it had
    /// when the key commitment alone decided it.
    pub profile: HandshakeProfile,
    /// The serialized GroupContext of the current epoch, against which the
    /// policy engine verifies members' signatures. The hub's MLS stack
    /// updates it after it processes an accepted commit; empty while
    /// unknown (the policy engine then rejects handshake messages).
    pub group_context: Vec<u8>,
    /// F pinned per live epoch: the current and the previous one.
    pub fanout_keys: Vec<(u64, Secret)>,
}

impl GroupRecord {
    /// A record at `epoch` with nothing pinned yet.
    pub fn new(shard: u32, epoch: u64, mls_suite: u16) -> Self {
        GroupRecord {
            shard,
            epoch,
            mls_suite,
            profile: HandshakeProfile::Public,
            group_context: Vec::new(),
            fanout_keys: Vec::new(),
        }
    }

    /// F pinned for `epoch`, if any.
    pub fn fanout_key(&self, epoch: u64) -> Option<&Secret> {
        self.fanout_keys
            .iter()
            .find(|(e, _)| *e == epoch)
            .map(|(_, f)| f)
    }

    /// F per epoch as one byte string, for a store's column: per entry the
    /// epoch (8 bytes, big-endian), the length of F (2 bytes, big-endian)
    /// and F. Zeroized on drop.
    pub fn encode_fanout_keys(&self) -> crate::Res<zeroize::Zeroizing<Vec<u8>>> {
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(
            self.fanout_keys.iter().map(|(_, f)| 10 + f.len()).sum(),
        ));
        for (epoch, f) in &self.fanout_keys {
            let len = u16::try_from(f.len())
                .map_err(|_| crate::Error::TooLarge("F longer than 65535 bytes"))?;
            out.extend_from_slice(&epoch.to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(f.expose());
        }
        Ok(out)
    }

    /// The F list of [`GroupRecord::encode_fanout_keys`] back; a truncated
    /// entry (or trailing bytes) is [`crate::Error::Malformed`].
    pub fn decode_fanout_keys(mut bytes: &[u8]) -> crate::Res<Vec<(u64, Secret)>> {
        let corrupt = || crate::Error::Malformed("fanout_keys: truncated entry");
        let mut keys = Vec::new();
        while !bytes.is_empty() {
            let (head, rest) = bytes.split_at_checked(10).ok_or_else(corrupt)?;
            let mut epoch = [0u8; 8];
            epoch.copy_from_slice(&head[..8]);
            let len = usize::from(u16::from_be_bytes([head[8], head[9]]));
            let (f, rest) = rest.split_at_checked(len).ok_or_else(corrupt)?;
            keys.push((u64::from_be_bytes(epoch), Secret::from_slice(f)));
            bytes = rest;
        }
        Ok(keys)
    }

    /// Pins F for `epoch` and forgets those older than `epoch - 1`.
    pub fn pin_fanout_key(&mut self, epoch: u64, f: Secret) {
        self.fanout_keys
            .retain(|(e, _)| *e != epoch && e.saturating_add(1) >= epoch);
        self.fanout_keys.push((epoch, f));
    }
}

/// What became of the disputes of a commit (DSP-6, DSP-7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisputeState {
    /// No dispute has been upheld.
    Open,
    /// The group went back to the epoch the commit closed: the commit and
    /// its fan-out are disputed.
    Reverted,
    /// F of the epoch the commit opened was pinned again.
    Repinned,
}

/// The epoch that the commit which opened a group's current epoch closed,
/// kept so that the commit can be disputed and reverted (DSP-6): the
/// group's record before the commit, the commit's hash, its committer
/// (policy-engine state: the front-end does not read it) and the disputes
/// counted so far, one per leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedEpoch {
    /// The group's record as it stood before the commit (epoch `n`).
    pub record: GroupRecord,
    /// SHA-256 of the commit that opened epoch `n + 1`.
    pub commit_hash: [u8; 32],
    /// The committer's leaf.
    pub committer: u32,
    /// Whether the commit was a PrivateMessage.
    pub private: bool,
    /// What became of its disputes.
    pub state: DisputeState,
    /// The disputes counted: the disputing leaf and a digest of its claim.
    pub votes: Vec<(u32, [u8; 32])>,
}

impl ClosedEpoch {
    /// One byte string for a store's column (zeroized on drop: it holds F).
    pub fn encode(&self) -> crate::Res<zeroize::Zeroizing<Vec<u8>>> {
        let r = &self.record;
        let mut out = zeroize::Zeroizing::new(Vec::new());
        out.extend_from_slice(&r.shard.to_be_bytes());
        out.extend_from_slice(&r.epoch.to_be_bytes());
        out.extend_from_slice(&r.mls_suite.to_be_bytes());
        out.push(u8::from(r.profile.is_private()));
        crate::codec::put_vec(&mut out, &r.group_context)?;
        crate::codec::put_vec(&mut out, &r.encode_fanout_keys()?)?;
        out.extend_from_slice(&self.commit_hash);
        out.extend_from_slice(&self.committer.to_be_bytes());
        out.push(u8::from(self.private));
        out.push(match self.state {
            DisputeState::Open => 0,
            DisputeState::Reverted => 1,
            DisputeState::Repinned => 2,
        });
        let n =
            u32::try_from(self.votes.len()).map_err(|_| crate::Error::TooLarge("dispute votes"))?;
        out.extend_from_slice(&n.to_be_bytes());
        for (leaf, digest) in &self.votes {
            out.extend_from_slice(&leaf.to_be_bytes());
            out.extend_from_slice(digest);
        }
        Ok(out)
    }

    /// [`ClosedEpoch::encode`] back; anything else is
    /// [`crate::Error::Malformed`].
    pub fn decode(bytes: &[u8]) -> crate::Res<ClosedEpoch> {
        const WHAT: &str = "closed epoch";
        let mut r = crate::codec::Reader::new(bytes);
        let shard = r.u32(WHAT)?;
        let epoch = r.u64(WHAT)?;
        let mls_suite = r.u16(WHAT)?;
        let profile = match r.u8(WHAT)? {
            0 => HandshakeProfile::Public,
            1 => HandshakeProfile::Private,
            _ => return Err(crate::Error::Malformed(WHAT)),
        };
        let group_context = r.vec(WHAT)?.to_vec();
        let fanout_keys = GroupRecord::decode_fanout_keys(r.vec(WHAT)?)?;
        let commit_hash = r.array::<32>(WHAT)?;
        let committer = r.u32(WHAT)?;
        let private = match r.u8(WHAT)? {
            0 => false,
            1 => true,
            _ => return Err(crate::Error::Malformed(WHAT)),
        };
        let state = match r.u8(WHAT)? {
            0 => DisputeState::Open,
            1 => DisputeState::Reverted,
            2 => DisputeState::Repinned,
            _ => return Err(crate::Error::Malformed(WHAT)),
        };
        let n = r.u32(WHAT)? as usize;
        if n > r.remaining() / 36 {
            return Err(crate::Error::Malformed(WHAT));
        }
        let mut votes = Vec::with_capacity(n);
        for _ in 0..n {
            votes.push((r.u32(WHAT)?, r.array::<32>(WHAT)?));
        }
        r.finish(WHAT)?;
        Ok(ClosedEpoch {
            record: GroupRecord {
                shard,
                epoch,
                mls_suite,
                profile,
                group_context,
                fanout_keys,
            },
            commit_hash,
            committer,
            private,
            state,
            votes,
        })
    }
}

/// What the hub keeps about an `enc` it opened, as a reader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedResponse {
    /// The resend fingerprint of the envelope it answered (see
    /// [`crate::hub::resend_fingerprint`]).
    pub fingerprint: [u8; 32],
    /// The response bytes; `None` while the envelope is being processed
    /// and once its retry window has passed (HUB-5): a resend then gets
    /// random bytes.
    pub response: Option<Vec<u8>>,
}

/// The length of a store's identifier ([`HubState::store_id`]).
pub const STORE_ID_LEN: usize = 16;

/// A fan-out message to deliver, as the front-end records it in the
/// transaction that accepts the message (FAN-7): one per follower, already
/// sealed for that follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewFanout<'a> {
    /// The follower that gets it (its name in the directory).
    pub follower: &'a str,
    /// Where the follower puts it (opaque to the hub: the recipient queues
    /// the directory names).
    pub address: &'a [u8],
    /// The accepted message's group.
    pub group_id: &'a [u8],
    /// The accepted message's epoch.
    pub epoch: u64,
    /// The sealed fan-out message (FAN-3).
    pub message: &'a [u8],
}

/// A recorded fan-out message waiting for its follower's acknowledgement
/// (FAN-7, STO-5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FanoutEntry {
    /// Its sequence number in the store: never reused, increasing in the
    /// order the transactions that recorded a group's entries committed.
    pub seq: u64,
    /// The follower that gets it.
    pub follower: String,
    /// Where the follower puts it (opaque to the hub).
    pub address: Vec<u8>,
    /// The accepted message's group.
    pub group_id: Vec<u8>,
    /// The accepted message's epoch.
    pub epoch: u64,
    /// The sealed fan-out message.
    pub message: Vec<u8>,
}

impl NewFanout<'_> {
    /// The entry as a store holds it, under `seq`.
    pub fn to_entry(&self, seq: u64) -> FanoutEntry {
        FanoutEntry {
            seq,
            follower: self.follower.to_owned(),
            address: self.address.to_vec(),
            group_id: self.group_id.to_vec(),
            epoch: self.epoch,
            message: self.message.to_vec(),
        }
    }
}

/// How many entries of each kind a store holds (for bounds tests and
/// monitoring).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Groups held.
    pub groups: usize,
    /// Leaf signature keys held.
    pub leaf_keys: usize,
    /// Spent token nonces held.
    pub spent_tokens: usize,
    /// `enc` records held.
    pub envelopes: usize,
    /// `enc` records whose response bytes are still held.
    pub cached_responses: usize,
    /// Handshake hashes held.
    pub handshakes: usize,
    /// Fan-out messages not yet acknowledged (FAN-7).
    pub fanout: usize,
}

/// A store could not do what was asked: the database is unreachable,
/// locked past its timeout, full, or refused the operation. Never caused
/// by a peer's input. The detail is for the local log only (ERR-1): the
/// peer sees the status `unavailable`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    what: &'static str,
    detail: String,
}

impl StoreError {
    /// An error of operation `what`, with the backend's own message.
    pub fn new(what: &'static str, detail: impl Into<String>) -> Self {
        StoreError {
            what,
            detail: detail.into(),
        }
    }

    /// The operation that failed.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The backend's own message (for the local log only).
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "hub store: {}: {}", self.what, self.detail)
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for crate::Error {
    fn from(_: StoreError) -> Self {
        crate::Error::Unavailable("hub store")
    }
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// The hub's state as one transaction sees it. Every method can fail
/// (STO-1); the methods that return `bool` are atomic against concurrent
/// transactions on the same store (STO-2) and say whether they took effect.
/// Times are Unix seconds of the caller's clock.
pub trait HubState {
    /// The record of a group, if the hub holds one.
    fn group(&mut self, group_id: &[u8]) -> StoreResult<Option<GroupRecord>>;
    /// Creates or replaces a group's record (provisioning, and the hub's
    /// MLS stack installing a new GroupContext).
    fn put_group(&mut self, group_id: &[u8], record: &GroupRecord) -> StoreResult<()>;
    /// Creates a group's record only if the hub holds none (a
    /// registration, HUB-6): `false` if another transaction created it
    /// first.
    fn insert_group(&mut self, group_id: &[u8], record: &GroupRecord) -> StoreResult<bool>;
    /// Replaces a group's record only if its epoch is still `from_epoch`
    /// (compare-and-set): `false` if another transaction moved it, so the
    /// first commit for an epoch wins across front-ends.
    fn advance_group(
        &mut self,
        group_id: &[u8],
        from_epoch: u64,
        record: &GroupRecord,
    ) -> StoreResult<bool>;
    /// Marks a token nonce spent until `expires_at` (its token key's
    /// `not_after`): `false` if it already was (TOK-6).
    fn spend_token(
        &mut self,
        codepoint: u8,
        nonce: &[u8; TOKEN_NONCE_LEN],
        expires_at: u64,
    ) -> StoreResult<bool>;
    /// The record of an `enc`, if any, as of `now`: the response bytes only
    /// while its retry window lasts.
    fn envelope(&mut self, enc: &[u8], now: u64) -> StoreResult<Option<CachedResponse>>;
    /// Records an `enc` with its resend fingerprint until `expires_at` (its
    /// hub key's `not_after`), only if absent: `false` if the `enc` is
    /// already recorded, so each envelope is processed once (HUB-5).
    fn insert_envelope(
        &mut self,
        enc: &[u8],
        fingerprint: &[u8; 32],
        expires_at: u64,
    ) -> StoreResult<bool>;
    /// Keeps the response sent for an `enc` until `until` (the retry
    /// window).
    fn set_response(&mut self, enc: &[u8], response: &[u8], until: u64) -> StoreResult<()>;
    /// True if a handshake message with this hash was accepted in the
    /// group's current epoch or is the commit that opened it (HUB-7).
    fn handshake_accepted(&mut self, group_id: &[u8], hash: &[u8; 32]) -> StoreResult<bool>;
    /// Records an accepted handshake message of `epoch`, only if absent.
    fn record_handshake(
        &mut self,
        group_id: &[u8],
        epoch: u64,
        hash: &[u8; 32],
    ) -> StoreResult<bool>;
    /// Forgets the group's handshake hashes of epochs up to `epoch`
    /// (a commit in `epoch` closes it).
    fn forget_handshakes(&mut self, group_id: &[u8], epoch: u64) -> StoreResult<()>;
    /// The signature key of a member's leaf (policy engine, HUB-12).
    fn leaf_signature_key(
        &mut self,
        group_id: &[u8],
        leaf_index: u32,
    ) -> StoreResult<Option<Vec<u8>>>;
    /// Sets (or, with `None`, removes) the signature key of a leaf.
    fn set_leaf_signature_key(
        &mut self,
        group_id: &[u8],
        leaf_index: u32,
        key: Option<&[u8]>,
    ) -> StoreResult<()>;
    /// The closed epoch of the commit that opened the group's current
    /// epoch, if the hub keeps one (DSP-6). In a store shared by several
    /// front-ends, reading it locks it until the transaction ends, so that
    /// two disputes counted at once are both counted (STO-2, DSP-5).
    fn closed_epoch(&mut self, group_id: &[u8]) -> StoreResult<Option<ClosedEpoch>>;
    /// Replaces (or, with `None`, removes) the group's closed epoch.
    fn set_closed_epoch(
        &mut self,
        group_id: &[u8],
        closed: Option<&ClosedEpoch>,
    ) -> StoreResult<()>;
    /// The group tracker's state of a group at `epoch` (TRK-4), if the
    /// hub keeps one. In a store shared by several front-ends, reading it
    /// locks it until the transaction ends, so that two proposals accepted
    /// at once both end up queued in it (STO-2).
    fn tracker_state(&mut self, group_id: &[u8], epoch: u64) -> StoreResult<Option<Vec<u8>>>;
    /// Sets (or, with `None`, removes) the group tracker's state of a
    /// group at `epoch` (TRK-4).
    fn set_tracker_state(
        &mut self,
        group_id: &[u8],
        epoch: u64,
        state: Option<&[u8]>,
    ) -> StoreResult<()>;
    /// This store's identifier: [`STORE_ID_LEN`] random bytes drawn once,
    /// when the store was created (or migrated to hold fan-out), and kept
    /// in it, so every front-end sharing the store reads the same value
    /// (STO-5). With a sequence number it names a fan-out entry across
    /// restarts and front-ends: the idempotency key of FAN-7.
    fn store_id(&mut self) -> StoreResult<[u8; STORE_ID_LEN]>;
    /// Records a fan-out message to deliver, as part of this transaction
    /// (FAN-7, STO-5): it exists exactly when the transaction commits.
    /// Returns its sequence number, never reused. The sequence numbers of
    /// one group's entries increase in the order their transactions
    /// commit: a store shared by several front-ends serializes the
    /// transactions that record entries of the same group.
    fn add_fanout(&mut self, entry: &NewFanout<'_>) -> StoreResult<u64>;
    /// The entries for `follower` with the lowest sequence numbers, at
    /// most `limit`, in increasing order.
    fn fanout_entries(&mut self, follower: &str, limit: usize) -> StoreResult<Vec<FanoutEntry>>;
    /// Deletes an entry once its follower acknowledged it: `false` if it
    /// was gone already (another front-end delivered it).
    fn delete_fanout(&mut self, seq: u64) -> StoreResult<bool>;
    /// Takes or renews the delivery lease of `follower` for `holder` until
    /// `until`, if no other holder's lease lasts past `now`: `false` if
    /// another holder has it (STO-2: atomic, one holder at a time). The
    /// lease only saves duplicate traffic between deliverers of a shard;
    /// FAN-7 does not rely on it (a holder whose lease ran out while it
    /// sent causes a redelivery, which the follower drops by its key).
    fn claim_delivery(
        &mut self,
        follower: &str,
        holder: &[u8; STORE_ID_LEN],
        now: u64,
        until: u64,
    ) -> StoreResult<bool>;
    /// Drops what expired by `now` (STO-3): spent tokens and `enc` records
    /// past their `expires_at`, response bytes past their retry window.
    /// Fan-out entries do not expire: they wait for their follower.
    fn expire(&mut self, now: u64) -> StoreResult<()>;
    /// How many entries of each kind the store holds.
    fn counts(&mut self) -> StoreResult<StoreCounts>;
}

/// A store of the hub's state: several front-ends may share one.
pub trait HubStore {
    /// Runs `f` as one transaction: all its changes take effect together
    /// or, if `f` or the commit fails, none does (STO-1). A store may run
    /// `f` more than once (after a serialization conflict or a lost
    /// connection), so whatever `f` does outside the [`HubState`] it is
    /// given must be harmless to repeat or to keep after a rollback (the
    /// front-end only drops derived keys from a cache there).
    ///
    /// A networked store cannot always know whether its COMMIT took effect
    /// when the connection breaks during it; it then reports an error,
    /// and the hub answers `unavailable` for a transaction that may have
    /// committed. HUB-5 keeps that safe: a resend finds the `enc` recorded
    /// and gets the recorded response.
    fn transact<R>(&self, f: &mut dyn FnMut(&mut dyn HubState) -> StoreResult<R>)
        -> StoreResult<R>;
}

impl<S: HubStore + ?Sized> HubStore for Arc<S> {
    fn transact<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn HubState) -> StoreResult<R>,
    ) -> StoreResult<R> {
        (**self).transact(f)
    }
}

#[derive(Clone, Debug)]
struct EnvelopeEntry {
    fingerprint: [u8; 32],
    expires_at: u64,
    response: Option<(Vec<u8>, u64)>,
}

/// The in-memory state behind [`InMemoryHubStore`].
#[derive(Debug)]
struct MemoryState {
    groups: HashMap<Vec<u8>, GroupRecord>,
    spent: HashMap<(u8, [u8; TOKEN_NONCE_LEN]), u64>,
    envelopes: HashMap<Vec<u8>, EnvelopeEntry>,
    handshakes: HashMap<Vec<u8>, HashMap<[u8; 32], u64>>,
    leaves: HashMap<(Vec<u8>, u32), Vec<u8>>,
    closed: HashMap<Vec<u8>, ClosedEpoch>,
    tracked: HashMap<(Vec<u8>, u64), Vec<u8>>,
    fanout: BTreeMap<u64, FanoutEntry>,
    next_fanout: u64,
    id: [u8; STORE_ID_LEN],
    leases: HashMap<String, ([u8; STORE_ID_LEN], u64)>,
}

impl Default for MemoryState {
    fn default() -> Self {
        let mut id = [0u8; STORE_ID_LEN];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut id);
        MemoryState {
            groups: HashMap::new(),
            spent: HashMap::new(),
            envelopes: HashMap::new(),
            handshakes: HashMap::new(),
            leaves: HashMap::new(),
            closed: HashMap::new(),
            tracked: HashMap::new(),
            fanout: BTreeMap::new(),
            next_fanout: 1,
            id,
            leases: HashMap::new(),
        }
    }
}

/// What undoes one change of a transaction on the in-memory store.
enum Undo {
    Group(Vec<u8>, Option<GroupRecord>),
    Spent((u8, [u8; TOKEN_NONCE_LEN]), Option<u64>),
    Envelope(Vec<u8>, Option<EnvelopeEntry>),
    Handshakes(Vec<u8>, Option<HashMap<[u8; 32], u64>>),
    Leaf((Vec<u8>, u32), Option<Vec<u8>>),
    Closed(Vec<u8>, Option<ClosedEpoch>),
    Tracked((Vec<u8>, u64), Option<Vec<u8>>),
    Fanout(u64, Option<FanoutEntry>),
    Lease(String, Option<([u8; STORE_ID_LEN], u64)>),
}

/// One transaction on the in-memory store: every change logs what undoes
/// it, so a failed transaction is rolled back in time proportional to what
/// it changed.
struct MemoryTx<'s> {
    state: &'s mut MemoryState,
    undo: Vec<Undo>,
}

fn restore<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, old: Option<V>) {
    match old {
        Some(v) => {
            map.insert(key, v);
        }
        None => {
            map.remove(&key);
        }
    }
}

impl MemoryTx<'_> {
    fn set_group(&mut self, group_id: &[u8], record: &GroupRecord) {
        let old = self.state.groups.insert(group_id.to_vec(), record.clone());
        self.undo.push(Undo::Group(group_id.to_vec(), old));
    }

    fn rollback(self) {
        let MemoryTx { state, undo } = self;
        for u in undo.into_iter().rev() {
            match u {
                Undo::Group(k, old) => restore(&mut state.groups, k, old),
                Undo::Spent(k, old) => restore(&mut state.spent, k, old),
                Undo::Envelope(k, old) => restore(&mut state.envelopes, k, old),
                Undo::Handshakes(k, old) => restore(&mut state.handshakes, k, old),
                Undo::Leaf(k, old) => restore(&mut state.leaves, k, old),
                Undo::Closed(k, old) => restore(&mut state.closed, k, old),
                Undo::Tracked(k, old) => restore(&mut state.tracked, k, old),
                Undo::Lease(k, old) => restore(&mut state.leases, k, old),
                Undo::Fanout(k, old) => match old {
                    Some(v) => {
                        state.fanout.insert(k, v);
                    }
                    None => {
                        state.fanout.remove(&k);
                    }
                },
            }
        }
    }
}

impl HubState for MemoryTx<'_> {
    fn group(&mut self, group_id: &[u8]) -> StoreResult<Option<GroupRecord>> {
        Ok(self.state.groups.get(group_id).cloned())
    }

    fn put_group(&mut self, group_id: &[u8], record: &GroupRecord) -> StoreResult<()> {
        self.set_group(group_id, record);
        Ok(())
    }

    fn insert_group(&mut self, group_id: &[u8], record: &GroupRecord) -> StoreResult<bool> {
        if self.state.groups.contains_key(group_id) {
            return Ok(false);
        }
        self.set_group(group_id, record);
        Ok(true)
    }

    fn advance_group(
        &mut self,
        group_id: &[u8],
        from_epoch: u64,
        record: &GroupRecord,
    ) -> StoreResult<bool> {
        match self.state.groups.get(group_id) {
            Some(r) if r.epoch == from_epoch => {
                self.set_group(group_id, record);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn spend_token(
        &mut self,
        codepoint: u8,
        nonce: &[u8; TOKEN_NONCE_LEN],
        expires_at: u64,
    ) -> StoreResult<bool> {
        let key = (codepoint, *nonce);
        if self.state.spent.contains_key(&key) {
            return Ok(false);
        }
        self.state.spent.insert(key, expires_at);
        self.undo.push(Undo::Spent(key, None));
        Ok(true)
    }

    fn envelope(&mut self, enc: &[u8], now: u64) -> StoreResult<Option<CachedResponse>> {
        Ok(self.state.envelopes.get(enc).map(|e| CachedResponse {
            fingerprint: e.fingerprint,
            response: e
                .response
                .as_ref()
                .filter(|(_, until)| *until > now)
                .map(|(r, _)| r.clone()),
        }))
    }

    fn insert_envelope(
        &mut self,
        enc: &[u8],
        fingerprint: &[u8; 32],
        expires_at: u64,
    ) -> StoreResult<bool> {
        if self.state.envelopes.contains_key(enc) {
            return Ok(false);
        }
        let entry = EnvelopeEntry {
            fingerprint: *fingerprint,
            expires_at,
            response: None,
        };
        self.state.envelopes.insert(enc.to_vec(), entry);
        self.undo.push(Undo::Envelope(enc.to_vec(), None));
        Ok(true)
    }

    fn set_response(&mut self, enc: &[u8], response: &[u8], until: u64) -> StoreResult<()> {
        if let Some(e) = self.state.envelopes.get_mut(enc) {
            let old = e.clone();
            e.response = Some((response.to_vec(), until));
            self.undo.push(Undo::Envelope(enc.to_vec(), Some(old)));
        }
        Ok(())
    }

    fn handshake_accepted(&mut self, group_id: &[u8], hash: &[u8; 32]) -> StoreResult<bool> {
        Ok(self
            .state
            .handshakes
            .get(group_id)
            .is_some_and(|set| set.contains_key(hash)))
    }

    fn record_handshake(
        &mut self,
        group_id: &[u8],
        epoch: u64,
        hash: &[u8; 32],
    ) -> StoreResult<bool> {
        let old = self.state.handshakes.get(group_id).cloned();
        if old.as_ref().is_some_and(|set| set.contains_key(hash)) {
            return Ok(false);
        }
        self.state
            .handshakes
            .entry(group_id.to_vec())
            .or_default()
            .insert(*hash, epoch);
        self.undo.push(Undo::Handshakes(group_id.to_vec(), old));
        Ok(true)
    }

    fn forget_handshakes(&mut self, group_id: &[u8], epoch: u64) -> StoreResult<()> {
        if let Some(set) = self.state.handshakes.get_mut(group_id) {
            let old = set.clone();
            set.retain(|_, e| *e > epoch);
            self.undo
                .push(Undo::Handshakes(group_id.to_vec(), Some(old)));
        }
        Ok(())
    }

    fn leaf_signature_key(
        &mut self,
        group_id: &[u8],
        leaf_index: u32,
    ) -> StoreResult<Option<Vec<u8>>> {
        Ok(self
            .state
            .leaves
            .get(&(group_id.to_vec(), leaf_index))
            .cloned())
    }

    fn set_leaf_signature_key(
        &mut self,
        group_id: &[u8],
        leaf_index: u32,
        key: Option<&[u8]>,
    ) -> StoreResult<()> {
        let k = (group_id.to_vec(), leaf_index);
        let old = match key {
            Some(key) => self.state.leaves.insert(k.clone(), key.to_vec()),
            None => self.state.leaves.remove(&k),
        };
        self.undo.push(Undo::Leaf(k, old));
        Ok(())
    }

    fn closed_epoch(&mut self, group_id: &[u8]) -> StoreResult<Option<ClosedEpoch>> {
        Ok(self.state.closed.get(group_id).cloned())
    }

    fn set_closed_epoch(
        &mut self,
        group_id: &[u8],
        closed: Option<&ClosedEpoch>,
    ) -> StoreResult<()> {
        let old = match closed {
            Some(c) => self.state.closed.insert(group_id.to_vec(), c.clone()),
            None => self.state.closed.remove(group_id),
        };
        self.undo.push(Undo::Closed(group_id.to_vec(), old));
        Ok(())
    }

    fn tracker_state(&mut self, group_id: &[u8], epoch: u64) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.state.tracked.get(&(group_id.to_vec(), epoch)).cloned())
    }

    fn set_tracker_state(
        &mut self,
        group_id: &[u8],
        epoch: u64,
        state: Option<&[u8]>,
    ) -> StoreResult<()> {
        let k = (group_id.to_vec(), epoch);
        let old = match state {
            Some(v) => self.state.tracked.insert(k.clone(), v.to_vec()),
            None => self.state.tracked.remove(&k),
        };
        self.undo.push(Undo::Tracked(k, old));
        Ok(())
    }

    fn store_id(&mut self) -> StoreResult<[u8; STORE_ID_LEN]> {
        Ok(self.state.id)
    }

    fn add_fanout(&mut self, entry: &NewFanout<'_>) -> StoreResult<u64> {
        // A rolled-back transaction leaves its number unused: numbers are
        // never reused, not necessarily dense.
        let seq = self.state.next_fanout;
        self.state.next_fanout = seq
            .checked_add(1)
            .ok_or_else(|| StoreError::new("add_fanout", "sequence exhausted"))?;
        self.state.fanout.insert(seq, entry.to_entry(seq));
        self.undo.push(Undo::Fanout(seq, None));
        Ok(seq)
    }

    fn fanout_entries(&mut self, follower: &str, limit: usize) -> StoreResult<Vec<FanoutEntry>> {
        Ok(self
            .state
            .fanout
            .values()
            .filter(|e| e.follower == follower)
            .take(limit)
            .cloned()
            .collect())
    }

    fn delete_fanout(&mut self, seq: u64) -> StoreResult<bool> {
        match self.state.fanout.remove(&seq) {
            Some(old) => {
                self.undo.push(Undo::Fanout(seq, Some(old)));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn claim_delivery(
        &mut self,
        follower: &str,
        holder: &[u8; STORE_ID_LEN],
        now: u64,
        until: u64,
    ) -> StoreResult<bool> {
        let old = self.state.leases.get(follower).copied();
        if old.is_some_and(|(h, u)| h != *holder && u > now) {
            return Ok(false);
        }
        self.state
            .leases
            .insert(follower.to_owned(), (*holder, until));
        self.undo.push(Undo::Lease(follower.to_owned(), old));
        Ok(true)
    }

    fn expire(&mut self, now: u64) -> StoreResult<()> {
        let spent: Vec<_> = self
            .state
            .spent
            .iter()
            .filter(|(_, expires_at)| **expires_at <= now)
            .map(|(k, v)| (*k, *v))
            .collect();
        for (k, v) in spent {
            self.state.spent.remove(&k);
            self.undo.push(Undo::Spent(k, Some(v)));
        }
        let stale: Vec<Vec<u8>> = self
            .state
            .envelopes
            .iter()
            .filter(|(_, e)| {
                e.expires_at <= now || e.response.as_ref().is_some_and(|(_, u)| *u <= now)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            let Some(old) = self.state.envelopes.remove(&k) else {
                continue;
            };
            if old.expires_at > now {
                let mut kept = old.clone();
                kept.response = None;
                self.state.envelopes.insert(k.clone(), kept);
            }
            self.undo.push(Undo::Envelope(k, Some(old)));
        }
        Ok(())
    }

    fn counts(&mut self) -> StoreResult<StoreCounts> {
        let s = &self.state;
        Ok(StoreCounts {
            groups: s.groups.len(),
            leaf_keys: s.leaves.len(),
            spent_tokens: s.spent.len(),
            envelopes: s.envelopes.len(),
            cached_responses: s
                .envelopes
                .values()
                .filter(|e| e.response.is_some())
                .count(),
            handshakes: s.handshakes.values().map(HashMap::len).sum(),
            fanout: s.fanout.len(),
        })
    }
}

/// An in-memory [`HubStore`] for tests and the demo: transactions run one
/// at a time under a lock and roll back from an undo log when they fail.
/// It can be made unavailable ([`InMemoryHubStore::set_available`]) to
/// test a front-end whose store fails. Share one between front-ends with
/// an [`Arc`]. Nothing survives the process: for that, use the SQLite or
/// PostgreSQL store.
#[derive(Debug, Default)]
pub struct InMemoryHubStore {
    state: Mutex<MemoryState>,
    unavailable: AtomicBool,
}

impl InMemoryHubStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later transaction fail with a [`StoreError`] (`false`)
    /// or work again (`true`), as a database that goes down and comes back.
    pub fn set_available(&self, available: bool) {
        self.unavailable.store(!available, Ordering::SeqCst);
    }
}

impl HubStore for InMemoryHubStore {
    fn transact<R>(
        &self,
        f: &mut dyn FnMut(&mut dyn HubState) -> StoreResult<R>,
    ) -> StoreResult<R> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError::new("transaction", "store unavailable"));
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut tx = MemoryTx {
            state: &mut state,
            undo: Vec::new(),
        };
        match f(&mut tx) {
            Ok(r) => Ok(r),
            Err(e) => {
                tx.rollback();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The F list round-trips, values at the top of `u64` included; every
    /// cut that is not at an entry boundary, and a trailing byte, is an
    /// error; an F too long for its length field is refused.
    #[test]
    fn fanout_keys_round_trip_and_corrupt_bytes_are_errors() {
        let mut r = GroupRecord::new(0, 0, 1);
        r.fanout_keys = vec![
            (u64::MAX - 1, Secret::new(vec![1; 32])),
            (u64::MAX, Secret::new(vec![2; 32])),
            (0, Secret::new(Vec::new())),
        ];
        let bytes = r.encode_fanout_keys().unwrap();
        assert_eq!(
            GroupRecord::decode_fanout_keys(&bytes).unwrap(),
            r.fanout_keys
        );
        assert_eq!(GroupRecord::decode_fanout_keys(&[]).unwrap(), Vec::new());
        for cut in 1..bytes.len() {
            if cut != 42 && cut != 84 {
                assert!(
                    GroupRecord::decode_fanout_keys(&bytes[..cut]).is_err(),
                    "{cut}"
                );
            }
        }
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert!(GroupRecord::decode_fanout_keys(&trailing).is_err());
        r.fanout_keys = vec![(1, Secret::new(vec![0; 65_536]))];
        assert!(r.encode_fanout_keys().is_err());
    }

    /// DSP-6: a closed epoch round-trips through its store encoding; every
    /// truncation, a trailing byte and an unknown state are errors.
    #[test]
    fn closed_epoch_round_trips_and_corrupt_bytes_are_errors() {
        let mut record = GroupRecord::new(2, 7, 1);
        record.group_context = vec![1, 2, 3];
        record.pin_fanout_key(7, Secret::new(vec![9; 32]));
        let closed = ClosedEpoch {
            record,
            commit_hash: [4; 32],
            committer: 3,
            private: false,
            state: DisputeState::Repinned,
            votes: vec![(0, [5; 32]), (2, [6; 32])],
        };
        let bytes = closed.encode().unwrap();
        assert_eq!(ClosedEpoch::decode(&bytes).unwrap(), closed);
        for cut in 0..bytes.len() {
            assert!(ClosedEpoch::decode(&bytes[..cut]).is_err(), "{cut}");
        }
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert!(ClosedEpoch::decode(&trailing).is_err());
        let mut bad_state = bytes.to_vec();
        let at = bytes.len() - 4 - 2 * 36 - 1;
        bad_state[at] = 9;
        assert!(ClosedEpoch::decode(&bad_state).is_err());
    }
}
