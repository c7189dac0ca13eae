//! The hub front-end (spec sections "Hub Layer", "Hub Response", "Hub
//! State"): chooses the hub key by key id, opens the hub layer, applies the
//! processing rules and answers every envelope with exactly one response of
//! fixed size.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use sha2::{Digest, Sha256};

use crate::config::{find_app_data_dictionary, HubConfiguration, HubSigningKey, KeyUse};
use crate::dispute::{Dispute, DisputeClaim, DisputeOutcome};
use crate::error::{Error, Res};
use crate::fanout::EpochKeys;
use crate::keys::HubKeyPair;
use crate::mls::framing::{GroupContext, PublicMessage, Sender as MlsSender};
use crate::mls::group_info::GroupInfoIn;
use crate::mls::message::{ContentType, MessageInfo, WireFormat};
use crate::mls::suite::MlsSuite;
use crate::policy::{judge_disclosure, Disclosure, PolicyEngine, PolicyRequest};
use crate::profile::HandshakeProfile;
use crate::response::{self, HubResponse, RejectReason, Status, RESPONSE_TOKENS};
use crate::secret::Secret;
use crate::state::{
    CachedResponse, ClosedEpoch, DisputeState, GroupRecord, HubState, HubStore, StoreCounts,
    StoreError, StoreResult,
};
use crate::suite::HpkeSuite;
use crate::token::{DecodedToken, RoutingToken, TokenKeys};
use crate::tracker::{GroupTracker, TrackedEpoch, VerifiedHandshake};
use crate::wire::{Envelope, HubLayerContent, MessageBytes, OuterHeader, PlainBuf, HEADER_LEN};

/// Number of epochs whose F subkeys the front-end keeps derived.
const EPOCH_KEY_CACHE: usize = 4096;

/// The F subkeys the front-end keeps derived, per group: each epoch's with
/// the F it came from (zeroized on drop, like the keys).
#[derive(Default)]
struct EpochKeyCache {
    groups: std::collections::HashMap<Vec<u8>, Vec<CachedEpochKeys>>,
    len: usize,
}

/// One cached epoch: its number, the F it was derived from, its subkeys.
type CachedEpochKeys = (u64, Secret, std::sync::Arc<EpochKeys>);

/// What the front-end learned from an envelope it opened: exactly the
/// contract's "hub front-end" row, no key and no plaintext of the MLS
/// content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubView {
    /// The message as recovered, byte for byte (in the buffer it was
    /// decrypted into: no copy).
    pub message: MessageBytes,
    /// Its wire format.
    pub wire_format: WireFormat,
    /// Its group, if it names one.
    pub group_id: Option<Vec<u8>>,
    /// Its epoch, if it names one.
    pub epoch: Option<u64>,
    /// Its content type (Public/PrivateMessage).
    pub content_type: Option<ContentType>,
    /// The decoded routing token, `None` if unroutable.
    pub token: Option<DecodedToken>,
    /// The hub key id used.
    pub key_id: u8,
    /// The HPKE suite used.
    pub suite: HpkeSuite,
    /// Length of the sealed key layer (0 when absent).
    pub key_layer_len: usize,
    /// Whether the hub layer carried F.
    pub has_fanout_key: bool,
    /// The verdict sent back.
    pub status: Status,
}

/// The front-end's answer to one envelope.
#[derive(Clone, Debug)]
pub struct HubOutcome {
    /// The response bytes to send back: always present, always of the
    /// fixed size for the envelope's suite (RSP-1).
    pub response: Vec<u8>,
    /// What the front-end saw; `None` when the envelope could not be opened
    /// or was an identical resend answered from the cache.
    pub view: Option<HubView>,
    /// True when the response came from the cache (RSP-4).
    pub from_cache: bool,
}

/// How long the response to an envelope is kept for an identical resend,
/// unless [`HubFrontEnd::set_retry_window`] says otherwise (seconds).
pub const DEFAULT_RETRY_WINDOW: u64 = 300;

/// [`HubFrontEnd::handle`] drops expired entries from the store at most
/// once per this many seconds of the caller's clock (STO-3).
pub const EXPIRY_INTERVAL: u64 = 60;

/// The hub front-end: its keys and rules over a [`HubStore`] that other
/// front-ends of the same shard may share.
pub struct HubFrontEnd<S: HubStore> {
    core: FrontEnd,
    store: S,
}

/// Everything of a front-end but its store: what the closure of a store
/// transaction borrows.
struct FrontEnd {
    keys: Vec<HubKeyPair>,
    #[allow(clippy::type_complexity)]
    epoch_keys: std::sync::Mutex<EpochKeyCache>,
    signing_key: Option<HubSigningKey>,
    policy: PolicyEngine,
    tokens: TokenKeys,
    lobby_shard: u32,
    shard_count: u32,
    retry_window: u64,
    /// DSP-5: distinct leaves that must agree before a dispute is upheld.
    dispute_threshold: usize,
    /// The caller's time from which the next [`HubState::expire`] is due.
    next_expiry: AtomicU64,
    /// HPKE decapsulations run, real or dummy (RSP-6).
    decaps: AtomicU64,
    /// ADM-1: the registration admission policy, if any.
    admission: Option<Box<dyn crate::admission::Admission>>,
    /// ADM-1: the authenticated sending provider of the envelope being
    /// handled ([`HubFrontEnd::handle_from`]).
    provider: Option<String>,
    /// The shard this front-end serves, if it checks (see
    /// [`HubFrontEnd::set_own_shard`]).
    own_shard: Option<u32>,
    /// The shard of the last envelope not processed here, or `u64::MAX`.
    misrouted: AtomicU64,
    /// TRK-1: the MLS stack that tracks each group's public state, if any.
    tracker: Option<Box<dyn GroupTracker>>,
    /// FAN-7: whom the fan-out recorded in the accepting transaction goes
    /// to; `None`: no fan-out is recorded.
    fanout: Option<Box<dyn crate::fanout::FanoutDirectory>>,
}

impl<S: HubStore> core::fmt::Debug for HubFrontEnd<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HubFrontEnd")
            .field("keys", &self.core.keys)
            .field("tokens", &self.core.tokens)
            .finish_non_exhaustive()
    }
}

impl<S: HubStore> HubFrontEnd<S> {
    /// A front-end with its hub and policy key pairs, token keys, the shard
    /// count, the shard that answers group-less messages (Welcome,
    /// KeyPackage), and the store of its state, which other front-ends of
    /// the same shard may share.
    pub fn new(
        keys: Vec<HubKeyPair>,
        tokens: TokenKeys,
        shard_count: u32,
        lobby_shard: u32,
        store: S,
    ) -> Res<Self> {
        if shard_count == 0 || lobby_shard >= shard_count {
            return Err(Error::Usage("lobby shard out of range"));
        }
        if tokens.current().is_none() {
            return Err(Error::Usage("no token key"));
        }
        let (policy_keys, keys): (Vec<_>, Vec<_>) = keys
            .into_iter()
            .partition(|k| k.config.key_use() == Some(KeyUse::Policy));
        Ok(HubFrontEnd {
            core: FrontEnd {
                keys,
                epoch_keys: Default::default(),
                signing_key: None,
                policy: PolicyEngine::new(policy_keys),
                tokens,
                lobby_shard,
                shard_count,
                retry_window: DEFAULT_RETRY_WINDOW,
                dispute_threshold: 1,
                next_expiry: AtomicU64::new(0),
                decaps: AtomicU64::new(0),
                admission: None,
                provider: None,
                own_shard: None,
                misrouted: AtomicU64::new(u64::MAX),
                tracker: None,
                fanout: None,
            },
            store,
        })
    }

    /// Sets the registration admission policy (ADM-1): every registration
    /// that passes HUB-6 is then also put to it, with the sending provider
    /// that [`Self::handle_from`] names.
    pub fn set_admission(&mut self, admission: Box<dyn crate::admission::Admission>) {
        self.core.admission = Some(admission);
    }

    /// Installs a group tracker (TRK-1, spec section "Group Tracking"):
    /// from then on every registration is also checked by it and every
    /// group it registered is followed through its PublicMessage
    /// proposals and commits, the GroupContext and leaf keys of each new
    /// epoch coming from it. Groups registered or provisioned before stay
    /// under the hub's own checks. Without a tracker the hub runs its own
    /// checks only (HUB-6, HUB-12).
    pub fn set_tracker(&mut self, tracker: Box<dyn GroupTracker>) {
        self.core.tracker = Some(tracker);
    }

    /// The tracked state the hub keeps for a group at an epoch (TRK-4).
    pub fn tracker_state(
        &self,
        group_id: &[u8],
        epoch: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.store
            .transact(&mut |tx| tx.tracker_state(group_id, epoch))
    }

    /// FAN-7: from now on, every accepted PublicMessage and PrivateMessage
    /// leaves, in the store transaction that accepts it, one sealed fan-out
    /// message per follower that `directory` names for its group
    /// ([`HubState::add_fanout`]), for a deliverer to send and delete.
    /// Without a directory nothing is recorded; [`Self::fan_out`] seals on
    /// demand.
    pub fn set_fanout_directory(&mut self, directory: Box<dyn crate::fanout::FanoutDirectory>) {
        self.core.fanout = Some(directory);
    }

    /// [`Self::handle_owned`] for an envelope that the authenticated
    /// sending provider `provider` (the transport peer; `None`: none was
    /// authenticated) handed to the hub, for the admission policy (ADM-1).
    pub fn handle_from(
        &mut self,
        envelope: Vec<u8>,
        now: u64,
        provider: Option<&str>,
    ) -> HubOutcome {
        self.core.provider = provider.map(str::to_owned);
        let outcome = self.handle_owned(envelope, now);
        self.core.provider = None;
        outcome
    }

    /// Makes this front-end serve only `shard` (spec "Decoding at the Load
    /// Balancer"): an envelope whose group lives on another shard (a
    /// registration sent with a lobby token, an unroutable token) is then
    /// opened but not processed, the store is not touched, and
    /// [`Self::take_misrouted`] names the shard to forward it to.
    pub fn set_own_shard(&mut self, shard: Option<u32>) {
        self.core.own_shard = shard;
    }

    /// The shard of the last envelope [`Self::handle`] did not process
    /// because its group lives there (its outcome is then random bytes,
    /// not to be sent), once.
    pub fn take_misrouted(&self) -> Option<u32> {
        let v = self.core.misrouted.swap(u64::MAX, AtomicOrdering::Relaxed);
        u32::try_from(v).ok()
    }

    /// The shard a group is placed on (at registration and provisioning).
    pub fn shard_of(&self, group_id: &[u8]) -> u32 {
        self.core.shard_for(group_id)
    }

    /// Sets the public half of the hub's configuration-signing key, which a
    /// registration's GroupContext must carry (HUB-6).
    pub fn set_signing_key(&mut self, key: HubSigningKey) {
        self.core.signing_key = Some(key);
    }

    /// Sets how long (seconds) the response to an envelope is kept for an
    /// identical resend (HUB-5, STO-3); [`DEFAULT_RETRY_WINDOW`] unless
    /// set. After it, a resend gets random bytes.
    pub fn set_retry_window(&mut self, seconds: u64) {
        self.core.retry_window = seconds;
    }

    /// Sets how many distinct leaves (other than the committer) must make
    /// the same claim before the hub upholds a dispute that it cannot check
    /// itself (DSP-5); 1 unless set, and never less than 1.
    pub fn set_dispute_threshold(&mut self, leaves: usize) {
        self.core.dispute_threshold = leaves.max(1);
    }

    /// Handles a member's dispute of the commit that opened a group's
    /// current epoch (DSP-3 to DSP-7), as one store transaction: it is
    /// refused, counted, or upheld, and an upheld dispute reverts the group
    /// to the epoch the commit closed or pins F of the current epoch again.
    /// The dispute reaches the hub over the member's own confidential
    /// channel to it (DSP-2), not in an envelope. A store failure changes
    /// nothing (STO-1).
    pub fn handle_dispute(&self, dispute: &[u8]) -> Result<DisputeOutcome, StoreError> {
        let Ok(d) = Dispute::parse(dispute) else {
            return Ok(DisputeOutcome::Refused);
        };
        let core = &self.core;
        self.store.transact(&mut |tx| core.dispute(tx, &d))
    }

    /// The configuration to sign and serve: every key this hub holds.
    pub fn configuration(&self, serial: u64) -> HubConfiguration {
        HubConfiguration {
            serial,
            keys: self
                .core
                .keys
                .iter()
                .chain(self.core.policy.keys())
                .map(|k| k.config.clone())
                .collect(),
        }
    }

    /// How many HPKE decapsulations this front-end has run: exactly one per
    /// envelope handled, whether it opened, failed to open, or was refused
    /// before opening and got the dummy one (RSP-6).
    pub fn decapsulations(&self) -> u64 {
        self.core.decaps.load(AtomicOrdering::Relaxed)
    }

    /// The store of the hub's state.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Puts another store in place of this front-end's (a restart on a
    /// fresh or another database) and returns the old one.
    pub fn replace_store(&mut self, store: S) -> S {
        std::mem::replace(&mut self.store, store)
    }

    /// The policy engine (its own log of what it read is there, not in
    /// the front-end's views).
    pub fn policy(&self) -> &PolicyEngine {
        &self.core.policy
    }

    /// Handles one envelope (the processing rules of the spec in order) at
    /// time `now` (Unix seconds, from the caller's clock: key expiry is
    /// judged against it). Never fails: every input gets a response.
    ///
    /// The work on the hub's state is one transaction of the store
    /// (STO-1): an envelope is processed once, by whichever front-end
    /// records its `enc` first (STO-2); when the store fails, the sender
    /// gets `unavailable` and nothing of the envelope is kept, so a resend
    /// is processed afresh.
    pub fn handle(&mut self, envelope: &[u8], now: u64) -> HubOutcome {
        self.handle_owned(envelope.to_vec(), now)
    }

    /// [`Self::handle`] for an envelope the caller hands over (a request
    /// body it read into a buffer): the hub layer is decrypted where it
    /// lies in that buffer, and the view's message stays there, so the
    /// message is not copied at all.
    pub fn handle_owned(&mut self, mut envelope: Vec<u8>, now: u64) -> HubOutcome {
        let mut rng = rand::rng();
        // RSP-2: an unopenable envelope gets random bytes of the response
        // size of the suite its header names.
        let suite_hint = OuterHeader::peek_suite(&envelope).unwrap_or(HpkeSuite::MANDATORY);
        let unopenable = |rng: &mut rand::rngs::ThreadRng| HubOutcome {
            response: response::random_response(suite_hint, rng),
            view: None,
            from_cache: false,
        };
        let (header, digest, sealed_start) = match Envelope::parse(&envelope) {
            Ok(env) => (
                env.header,
                resend_fingerprint(&env),
                envelope.len() - env.sealed_hub_layer.len(),
            ),
            Err(_) => {
                // RSP-6: the same work as an envelope that fails to open.
                self.core.dummy_open(&mut envelope, suite_hint, now);
                return unopenable(&mut rng);
            }
        };
        let core = &self.core;
        // OUT-2: a live hub key with this id offers the header's suite.
        let Some(key) = core.hub_key(header.key_id, header.suite, now) else {
            core.dummy_open(&mut envelope, suite_hint, now);
            return unopenable(&mut rng);
        };
        // The header, `enc` and length stay readable beside the plaintext.
        let prefix = envelope[..sealed_start].to_vec();
        core.decaps.fetch_add(1, AtomicOrdering::Relaxed);
        let Ok(secret) = open_hub_layer_in_place(key, header, &prefix, &mut envelope) else {
            return unopenable(&mut rng);
        };
        let plaintext = PlainBuf::hub_layer_in(envelope, sealed_start);
        if let Some(shard) = core.misrouted_to(&plaintext) {
            core.misrouted
                .store(u64::from(shard), AtomicOrdering::Relaxed);
            return unopenable(&mut rng);
        }
        let env = Envelope {
            header,
            header_bytes: &prefix[..HEADER_LEN],
            enc: &prefix[HEADER_LEN..HEADER_LEN + header.suite.n_enc()],
            // Decrypted in place: only the opening above reads it.
            sealed_hub_layer: &[],
        };
        let not_after = key.config.not_after;
        // STO-3: expiry rides along at most once per interval; the next
        // one is due only once a transaction that ran it committed.
        let expire = now >= core.next_expiry.load(AtomicOrdering::Relaxed);
        let done = self.store.transact(&mut |tx| {
            if expire {
                tx.expire(now)?;
            }
            core.process(tx, &env, &secret, &plaintext, &digest, not_after, now)
        });
        if expire && done.is_ok() {
            core.next_expiry
                .store(now.saturating_add(EXPIRY_INTERVAL), AtomicOrdering::Relaxed);
        }
        match done {
            Ok(Processed::Fresh { response, view }) => HubOutcome {
                response,
                view: view.map(|mut v| {
                    v.message = plaintext.into_message();
                    v
                }),
                from_cache: false,
            },
            // HUB-5 / RSP-4: an `enc` seen before gets the cached response
            // if the envelope is the same and the retry window lasts, else
            // random bytes.
            Ok(Processed::Seen(cached)) => match cached.response {
                Some(response) if crate::secret::ct_eq(&cached.fingerprint, &digest) => {
                    HubOutcome {
                        response,
                        view: None,
                        from_cache: true,
                    }
                }
                _ => unopenable(&mut rng),
            },
            Ok(Processed::Unsealable) => unopenable(&mut rng),
            // STO-1: the store failed; nothing was kept. The sender learns
            // to retry (`unavailable`, with unroutable tokens).
            Err(_) => {
                let resp = HubResponse {
                    status: Status::Rejected(RejectReason::Unavailable),
                    tokens: core.fresh_tokens(None, &mut rng),
                };
                match response::seal(env.header.suite, &secret, env.enc, &resp, &mut rng) {
                    Ok(response) => HubOutcome {
                        response,
                        view: None,
                        from_cache: false,
                    },
                    Err(_) => unopenable(&mut rng),
                }
            }
        }
    }

    /// Drops what expired by `now` from the store (STO-3). [`Self::handle`]
    /// does this on its own at most once every [`EXPIRY_INTERVAL`] seconds
    /// of the caller's clock; a hub with little traffic calls it itself.
    pub fn expire(&self, now: u64) -> Result<(), StoreError> {
        self.store.transact(&mut |tx| tx.expire(now))
    }

    /// How many entries of each kind the store holds.
    pub fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.store.transact(&mut |tx| tx.counts())
    }

    /// The record of a group, if the hub holds one.
    pub fn group(&self, group_id: &[u8]) -> Result<Option<GroupRecord>, StoreError> {
        self.store.transact(&mut |tx| tx.group(group_id))
    }

    /// Creates or replaces a group's record, as the hub's MLS stack does
    /// after it processed an accepted commit (a new GroupContext).
    pub fn put_group(&self, group_id: &[u8], record: &GroupRecord) -> Result<(), StoreError> {
        self.store
            .transact(&mut |tx| tx.put_group(group_id, record))
    }

    /// The signature key the hub holds for a leaf of a group.
    pub fn leaf_signature_key(
        &self,
        group_id: &[u8],
        leaf_index: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.store
            .transact(&mut |tx| tx.leaf_signature_key(group_id, leaf_index))
    }

    /// Sets (or, with `None`, removes) the signature key of a leaf.
    pub fn set_leaf_signature_key(
        &self,
        group_id: &[u8],
        leaf_index: u32,
        key: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        self.store
            .transact(&mut |tx| tx.set_leaf_signature_key(group_id, leaf_index, key))
    }

    /// Provisions a group from a full record (its shard is assigned here),
    /// as the hub does when it creates a room itself.
    pub fn provision(&self, group_id: &[u8], mut record: GroupRecord) -> Result<u32, StoreError> {
        record.shard = self.core.shard_for(group_id);
        self.store
            .transact(&mut |tx| tx.put_group(group_id, &record))?;
        Ok(record.shard)
    }

    /// Fresh tokens for a client of `group_id` (`None`: the lobby shard),
    /// as handed out when a client joins; unroutable ones for a group the
    /// hub does not hold or when the store cannot say.
    pub fn issue_tokens(&self, group_id: Option<&[u8]>) -> [RoutingToken; RESPONSE_TOKENS] {
        let shard = match group_id {
            None => Some(self.core.lobby_shard),
            Some(g) => self.group(g).ok().flatten().map(|r| r.shard),
        };
        self.core.fresh_tokens(shard, &mut rand::rng())
    }

    /// Fan-out messages for an accepted message, one per follower, each
    /// under the F pinned for the message's epoch with a fresh nonce.
    pub fn fan_out(
        &self,
        group_id: &[u8],
        epoch: u64,
        message: &[u8],
        followers: usize,
    ) -> Res<Vec<Vec<u8>>> {
        let record = self
            .group(group_id)
            .map_err(|_| Error::Unavailable("hub store"))?
            .ok_or(Error::Usage("unknown group"))?;
        let f = record
            .fanout_key(epoch)
            .ok_or(Error::Usage("no F pinned for that epoch"))?;
        let keys = self
            .core
            .epoch_keys_for(group_id, f, epoch)
            .ok_or(Error::Usage("F does not derive"))?;
        let mut rng = rand::rng();
        (0..followers)
            .map(|_| keys.seal(message, &mut rng))
            .collect()
    }
}

/// What one transaction made of an opened envelope.
enum Processed {
    /// Processed now: the response to send and what the front-end saw.
    Fresh {
        response: Vec<u8>,
        view: Option<HubView>,
    },
    /// Its `enc` was recorded before (a resend, or a twin processed by
    /// another front-end).
    Seen(CachedResponse),
    /// Processed, but the response could not be sealed.
    Unsealable,
}

impl FrontEnd {
    /// The store's part of [`HubFrontEnd::handle`], inside one transaction:
    /// the `enc` record (HUB-5, first writer wins), the processing rules,
    /// the response kept for the retry window. Has no effect outside `tx`
    /// (a store may run it again).
    #[allow(clippy::too_many_arguments)]
    fn process(
        &self,
        tx: &mut dyn HubState,
        env: &Envelope<'_>,
        secret: &Secret,
        plaintext: &PlainBuf,
        digest: &[u8; 32],
        not_after: u64,
        now: u64,
    ) -> StoreResult<Processed> {
        // STO-2, STO-3: record the `enc` (kept as long as its hub key lives)
        // unless it is recorded already: a resend, or a twin that another
        // front-end processed first. One statement either way.
        if !tx.insert_envelope(env.enc, digest, not_after)? {
            let seen = tx.envelope(env.enc, now)?.unwrap_or(CachedResponse {
                fingerprint: [0; 32],
                response: None,
            });
            return Ok(Processed::Seen(seen));
        }
        let (status, view, shard) = self.judge(tx, env, plaintext, now)?;
        if let (Status::Accepted, Some(view)) = (status, &view) {
            self.record_fanout(tx, view, plaintext)?;
        }
        let mut rng = rand::rng();
        let resp = HubResponse {
            status,
            tokens: self.fresh_tokens(shard, &mut rng),
        };
        let Ok(response) = response::seal(env.header.suite, secret, env.enc, &resp, &mut rng)
        else {
            return Ok(Processed::Unsealable);
        };
        tx.set_response(env.enc, &response, now.saturating_add(self.retry_window))?;
        Ok(Processed::Fresh { response, view })
    }

    /// FAN-7: the fan-out of an accepted PublicMessage or PrivateMessage,
    /// recorded in the transaction that accepts it: one fan-out message per
    /// follower of the directory, sealed under F of the message's epoch
    /// (still pinned: a commit keeps F of the epoch it closes). Nothing
    /// without a directory. An F that is missing fails the transaction (the
    /// sender gets `unavailable`), so that no accepted message is without
    /// its fan-out.
    fn record_fanout(
        &self,
        tx: &mut dyn HubState,
        view: &HubView,
        plaintext: &PlainBuf,
    ) -> StoreResult<()> {
        let Some(directory) = &self.fanout else {
            return Ok(());
        };
        let group_message = matches!(
            view.wire_format,
            WireFormat::PublicMessage | WireFormat::PrivateMessage
        );
        let (true, Some(group_id), Some(epoch)) = (group_message, &view.group_id, view.epoch)
        else {
            return Ok(());
        };
        let targets = directory.targets(group_id);
        if targets.is_empty() {
            return Ok(());
        }
        let fail = |detail| StoreError::new("fan-out", detail);
        let message = decode_hub_layer(plaintext)
            .map_err(|_| fail("accepted hub layer does not decode"))?
            .message;
        let record = tx.group(group_id)?.ok_or_else(|| fail("group gone"))?;
        let keys = record
            .fanout_key(epoch)
            .and_then(|f| self.epoch_keys_for(group_id, f, epoch))
            .ok_or_else(|| fail("no F pinned for the message's epoch"))?;
        let mut rng = rand::rng();
        for t in &targets {
            let sealed = keys
                .seal(message, &mut rng)
                .map_err(|_| fail("fan-out message does not seal"))?;
            tx.add_fanout(&crate::state::NewFanout {
                follower: &t.follower,
                address: &t.address,
                group_id,
                epoch,
                message: &sealed,
            })?;
        }
        Ok(())
    }

    /// The live hub key with `key_id` offering `suite` at time `now` (OUT-2):
    /// an expired key (`not_after` passed) opens nothing.
    /// RSP-6: the work of an HPKE open that fails, for an envelope that is
    /// refused before any open (it does not decode, or names no live hub
    /// key): one DH with a live hub key, its key schedule, and the AEAD's
    /// tag check over the envelope's bytes, which fails (so nothing is
    /// decrypted). An unopenable envelope then costs about what one with a
    /// bad tag costs, whatever made it unopenable.
    ///
    /// The key is the newest live hub key offering the suite the header
    /// names (`suite`: its hint, the mandatory suite when it names none),
    /// so that the dummy costs what an envelope of that suite would (a
    /// P-256 decapsulation costs several X25519 ones).
    fn dummy_open(&self, envelope: &mut [u8], suite: HpkeSuite, now: u64) {
        let live = |s: HpkeSuite| {
            self.keys.iter().rev().find(|k| {
                k.config.key_use() == Some(KeyUse::Hub)
                    && k.config.not_after > now
                    && k.config.offers(s)
            })
        };
        let Some((key, suite)) = live(suite)
            .map(|k| (k, suite))
            .or_else(|| live(HpkeSuite::MANDATORY).map(|k| (k, HpkeSuite::MANDATORY)))
        else {
            return;
        };
        let header = OuterHeader {
            token: RoutingToken([0; crate::token::TOKEN_LEN]),
            key_id: key.config.key_id,
            suite,
        };
        let pk = &key.config.public_key.0;
        self.decaps.fetch_add(1, AtomicOrdering::Relaxed);
        let opened = with_info_context(key, &header, |ic| {
            // The key's own public key is a valid point to "decapsulate".
            crate::hpke::setup_receiver(ic, key.secret(), pk, pk)
        })
        .and_then(|ctx| ctx.open_in_place(&[], envelope, &[0; crate::hpke::TAG_LEN]));
        std::hint::black_box(opened.is_ok());
    }

    fn hub_key(&self, key_id: u8, suite: HpkeSuite, now: u64) -> Option<&HubKeyPair> {
        self.keys.iter().find(|k| {
            k.config.key_use() == Some(KeyUse::Hub)
                && k.config.key_id == key_id
                && k.config.offers(suite)
                && k.config.not_after > now
        })
    }

    /// Steps 4 to 14 of the front-end's processing order (spec section
    /// "Hub Front-end") on an opened hub layer: decodes and classifies it,
    /// then runs the checks of [`HubFrontEnd::decide`]. Returns the
    /// verdict, the view (`None` when the hub layer or the message does
    /// not decode) and the shard for the fresh tokens (`None`: issue
    /// unroutable tokens).
    fn judge(
        &self,
        tx: &mut dyn HubState,
        env: &Envelope<'_>,
        plaintext: &PlainBuf,
        now: u64,
    ) -> StoreResult<(Status, Option<HubView>, Option<u32>)> {
        let reject = |r| Ok((Status::Rejected(r), None, None));
        let content = match decode_hub_layer(plaintext) {
            Ok(content) => content,
            Err(r) => return reject(r),
        };
        let info = match classify(content.message) {
            Ok(info) => info,
            Err(r) => return reject(r),
        };
        let token = self.tokens.decode(&env.header.token.0);
        let (status, shard) = self.decide(tx, env, &info, &content, token, now)?;
        let view = HubView {
            // Filled in from the plaintext once the transaction is over.
            message: MessageBytes::default(),
            wire_format: info.wire_format,
            group_id: info.group_id.map(<[u8]>::to_vec),
            epoch: info.epoch,
            content_type: info.content_type,
            token,
            key_id: env.header.key_id,
            suite: env.header.suite,
            key_layer_len: content.key_layer.len(),
            has_fanout_key: content.fanout_key.is_some(),
            status,
        };
        Ok((status, Some(view), shard))
    }

    /// Steps 6 to 14 for a classified message: runs the checks of
    /// [`HubFrontEnd::check`] and, if they all pass, applies what the
    /// message changes ([`HubFrontEnd::apply`]). Returns the verdict and
    /// the shard of the fresh tokens.
    fn decide(
        &self,
        tx: &mut dyn HubState,
        env: &Envelope<'_>,
        info: &MessageInfo<'_>,
        content: &HubLayerContent<'_>,
        token: Option<DecodedToken>,
        now: u64,
    ) -> StoreResult<(Status, Option<u32>)> {
        let record = match info.group_id {
            Some(g) => tx.group(g)?,
            None => None,
        };
        let shard = self.response_shard(info.group_id, record.as_ref());
        let verdict = self
            .check(tx, env, info, content, token, record, now)
            .and_then(|accepted| self.apply(tx, accepted));
        match verdict {
            Ok(shard) => Ok((Status::Accepted, Some(shard))),
            Err(Refusal::Reject(reason)) => Ok((Status::Rejected(reason), shard)),
            Err(Refusal::Store(e)) => Err(e),
        }
    }

    /// RSP-5: the shard of the tokens in a response, as the hub's state
    /// stands before the message is applied: the group's shard when the
    /// hub holds the group the message names, the lobby shard when the
    /// message names no group, `None` (unroutable tokens) otherwise. An
    /// accepted message gets the shard [`HubFrontEnd::apply`] returns
    /// instead (the new group's shard for a registration).
    fn response_shard(&self, group_id: Option<&[u8]>, record: Option<&GroupRecord>) -> Option<u32> {
        match (group_id, record) {
            (None, _) => Some(self.lobby_shard),
            (Some(_), record) => record.map(|r| r.shard),
        }
    }

    /// Steps 6 to 13 of the processing order, each a method named after
    /// its rule; the first failing check decides the reason. `record` is
    /// the hub's record of the group the message names, if any. Changes
    /// nothing but the spent token (TOK-7) and the policy engine's own log
    /// of what it read: what an accepted message changes in the hub's
    /// state comes back as [`Accepted`], for [`HubFrontEnd::apply`].
    #[allow(clippy::too_many_arguments)]
    fn check<'a>(
        &self,
        tx: &mut dyn HubState,
        env: &Envelope<'_>,
        info: &MessageInfo<'a>,
        content: &'a HubLayerContent<'_>,
        token: Option<DecodedToken>,
        record: Option<GroupRecord>,
        now: u64,
    ) -> Result<Accepted<'a>, Refusal> {
        check_presence(info, content)?;
        self.spend_token(tx, token)?;
        let (Some(group_id), Some(epoch)) = (info.group_id, info.epoch) else {
            // Step 8, HUB-4: a Welcome or KeyPackage names no group and is
            // accepted here.
            return Ok(Accepted::Lobby);
        };
        if info.wire_format == WireFormat::GroupInfo {
            return Ok(Accepted::Registration(self.check_registration(
                group_id,
                epoch,
                content,
                record.is_some(),
            )?));
        }
        let record = check_group(record)?;
        let handshake_hash = info
            .content_type
            .is_some_and(|c| c != ContentType::Application)
            .then(|| Sha256::digest(content.message).into());
        self.check_replay(tx, group_id, handshake_hash.as_ref())?;
        check_epoch(info, epoch, &record)?;
        self.check_membership_proof(env, info, content, group_id, epoch, &record)?;
        check_profile(info, &record)?;
        let tracked = self.check_public_handshake(tx, info, content, group_id, epoch, &record)?;
        let private_committer =
            self.ask_policy_engine(tx, info, content, group_id, &record, now)?;
        let is_commit = info.content_type == Some(ContentType::Commit);
        // DSP-6: the committer's leaf is kept with the closed epoch (for a
        // PrivateMessage commit it is the policy engine's to know).
        let committer = match info.wire_format {
            WireFormat::PrivateMessage => private_committer,
            _ => public_message_sender(content.message),
        };
        Ok(Accepted::Message(GroupMessage {
            group_id,
            record,
            handshake_hash,
            is_commit,
            committer: committer.filter(|_| is_commit),
            private: info.wire_format == WireFormat::PrivateMessage,
            fanout_key: content.fanout_key.as_ref(),
            tracked,
        }))
    }

    /// Step 7, TOK-6: a routable token whose nonce is already spent under
    /// its (live) codepoint is refused with `token_reused`. TOK-7: the
    /// token is spent here, once the envelope has passed HUB-1 to HUB-3 and
    /// the presence rules, whatever the later checks decide. An unroutable
    /// token (`None`) spends nothing.
    fn spend_token(
        &self,
        tx: &mut dyn HubState,
        token: Option<DecodedToken>,
    ) -> Result<(), Refusal> {
        let Some(t) = token else {
            return Ok(());
        };
        // STO-3: the spent nonce is kept as long as its token key lives.
        let expires_at = self.tokens.not_after(t.codepoint).unwrap_or(0);
        if tx.spend_token(t.codepoint, &t.nonce, expires_at)? {
            Ok(())
        } else {
            Err(Refusal::Reject(RejectReason::TokenReused))
        }
    }

    /// Step 9, HUB-6: a GroupInfo is a registration. It is refused with
    /// `registration_refused` if the hub already holds the group (`held`)
    /// or if it fails [`HubFrontEnd::validate_registration`]; the detailed
    /// reason stays local (ERR-1).
    fn check_registration<'a>(
        &self,
        group_id: &'a [u8],
        epoch: u64,
        content: &HubLayerContent<'_>,
        held: bool,
    ) -> Result<Registration<'a>, RejectReason> {
        if held {
            return Err(RejectReason::RegistrationRefused);
        }
        let registration = self
            .validate_registration(group_id, epoch, content)
            .map_err(|_| RejectReason::RegistrationRefused)?;
        // ADM-1, ADM-4: the admission policy judges every registration
        // that passed HUB-6; a refusal is HUB-6's `registration_refused`.
        let request = crate::admission::AdmissionRequest {
            provider: self.provider.as_deref(),
            group_id,
            group_info: content.message,
        };
        match &self.admission {
            Some(admission) if !admission.admit(&request) => Err(RejectReason::RegistrationRefused),
            _ => Ok(registration),
        }
    }

    /// HUB-6: the rules a registration for a group the hub does not hold
    /// must meet. The GroupInfo's signature must verify under the signer's
    /// leaf in its `ratchet_tree`, the GroupContext's `tree_hash` must be
    /// the hash of that tree, and the GroupContext must carry this hub's
    /// configuration-signing key (component `0x8A01`). Returns the group's
    /// state to create: the GroupInfo's epoch with the carried F pinned
    /// (FAN-1), the members' signature keys, and the room's handshake
    /// profile (PRF-1), which the GroupContext must name. Changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Crypto`] if the signature does not verify;
    /// [`Error::PeerMisbehaved`] for a well-formed GroupInfo that breaks
    /// HUB-6 (its tree hash, its tree, the hub's component or F);
    /// [`Error::Usage`] if this hub has no configuration-signing key
    /// ([`HubFrontEnd::set_signing_key`]); otherwise as
    /// [`GroupInfoIn::parse`], [`GroupInfoIn::suite`] and
    /// [`HubSigningKey::from_app_data_dictionary`].
    fn validate_registration<'a>(
        &self,
        group_id: &'a [u8],
        epoch: u64,
        content: &HubLayerContent<'_>,
    ) -> Res<Registration<'a>> {
        let gi = GroupInfoIn::parse(content.message)?;
        let suite = gi.suite()?;
        gi.verify(suite)?;
        if !gi.tree_hash_matches()? {
            return Err(Error::PeerMisbehaved(
                "registration whose ratchet tree does not match its tree hash",
            ));
        }
        let leaves = gi.leaf_signature_keys()?;
        if leaves.is_empty() {
            return Err(Error::PeerMisbehaved("registration without a ratchet tree"));
        }
        let dict = find_app_data_dictionary(&gi.group_context.extensions).ok_or(
            Error::PeerMisbehaved("registration without the hub's component"),
        )?;
        let key = HubSigningKey::from_app_data_dictionary(dict)?;
        let own = self
            .signing_key
            .as_ref()
            .ok_or(Error::Usage("hub without a configuration-signing key"))?;
        if *own != key {
            return Err(Error::PeerMisbehaved(
                "registration names another hub's signing key",
            ));
        }
        let f = content
            .fanout_key
            .clone()
            .ok_or(Error::PeerMisbehaved("registration without F"))?;
        // PRF-1: the room's handshake profile is fixed here, once.
        let profile = HandshakeProfile::from_app_data_dictionary(dict)
            .map_err(|_| Error::PeerMisbehaved("registration without a handshake profile"))?;
        let mut record = GroupRecord::new(self.shard_for(group_id), epoch, suite.code());
        record.profile = profile;
        record.group_context = gi.group_context_bytes.clone();
        record.pin_fanout_key(epoch, f);
        let mut registration = Registration {
            group_id,
            record,
            leaves,
            tracked: None,
        };
        // TRK-2: a tracker checks the whole GroupInfo and tree; the leaf
        // keys and GroupContext then come from its view of the group.
        // TRK-5: its state is kept for rooms with public handshakes only;
        // a room with private handshakes commits in PrivateMessages, which
        // a tracker cannot read, and stays under the hub's own checks.
        if let Some(tracker) = &self.tracker {
            let tracked = tracker
                .register(content.message)
                .map_err(|_| Error::PeerMisbehaved("registration refused by the group tracker"))?;
            if tracked.group_context != registration.record.group_context {
                return Err(Error::PeerMisbehaved(
                    "group tracker's GroupContext differs from the GroupInfo's",
                ));
            }
            registration.leaves = tracked.leaves.clone();
            registration.tracked =
                (registration.record.profile == HandshakeProfile::Public).then_some(tracked.state);
        }
        Ok(registration)
    }

    /// Step 10, HUB-7: a handshake message (`handshake_hash` is its hash;
    /// `None` for an application message) that was accepted before, a
    /// proposal in the current epoch or the commit that opened it, is
    /// refused with `replayed_envelope`. Comes before the epoch rules, so
    /// that a resent commit is reported as replayed, not as stale.
    fn check_replay(
        &self,
        tx: &mut dyn HubState,
        group_id: &[u8],
        handshake_hash: Option<&[u8; 32]>,
    ) -> Result<(), Refusal> {
        match handshake_hash {
            Some(hash) if tx.handshake_accepted(group_id, hash)? => {
                Err(Refusal::Reject(RejectReason::ReplayedEnvelope))
            }
            _ => Ok(()),
        }
    }

    /// Step 12, HUB-11: the membership proof of a member-sent type must
    /// verify, in constant time, under the membership key of the F pinned
    /// for the message's group and epoch; otherwise, or with no F pinned
    /// for that epoch, `membership_proof_failed`. Other types carry random
    /// filler and are not checked. The hub learns "a member of the group",
    /// not which one.
    fn check_membership_proof(
        &self,
        env: &Envelope<'_>,
        info: &MessageInfo<'_>,
        content: &HubLayerContent<'_>,
        group_id: &[u8],
        epoch: u64,
        record: &GroupRecord,
    ) -> Result<(), RejectReason> {
        if !info.is_member_sent() {
            return Ok(());
        }
        let proven = record
            .fanout_key(epoch)
            .and_then(|f| self.epoch_keys_for(group_id, f, epoch))
            .is_some_and(|k| {
                k.verify_membership_proof(env.header_bytes, env.enc, &content.membership_proof)
            });
        if proven {
            Ok(())
        } else {
            Err(RejectReason::MembershipProofFailed)
        }
    }

    /// Step 13, HUB-12: a PublicMessage proposal or commit must carry a
    /// valid signature, and a commit a valid signature over the F it
    /// carries (PRF-4, by the same key), else `policy_rejected`.
    ///
    /// In a group the tracker follows (the hub keeps its tracked state for
    /// the current epoch), the tracker verifies the message (TRK-3): the
    /// signature under the key RFC 9420 prescribes for its sender type, so
    /// external commits and new members' proposals are verified too, and
    /// the proposal's or commit's validity; the F signature is verified
    /// under the same key (the committer's leaf, or an external commit's
    /// path leaf node). Its result, with the state to keep if the message
    /// is accepted, comes back for [`HubFrontEnd::apply`].
    ///
    /// Otherwise the hub verifies member senders (their keys are in its
    /// state) and refuses non-member senders, whose keys sit in the
    /// commit's path or a KeyPackage it does not parse.
    fn check_public_handshake(
        &self,
        tx: &mut dyn HubState,
        info: &MessageInfo<'_>,
        content: &HubLayerContent<'_>,
        group_id: &[u8],
        epoch: u64,
        record: &GroupRecord,
    ) -> Result<Option<VerifiedHandshake>, Refusal> {
        let handshake = info.content_type != Some(ContentType::Application);
        if !handshake {
            return Ok(None);
        }
        let tracked = match &self.tracker {
            Some(tracker) => tx
                .tracker_state(group_id, record.epoch)?
                .map(|state| (tracker, state)),
            None => None,
        };
        if let Some((tracker, state)) = tracked {
            if info.wire_format != WireFormat::PublicMessage {
                return Err(Refusal::Reject(RejectReason::PolicyRejected));
            }
            return match tracker.verify_handshake(&state, content.message) {
                Ok(verified)
                    if verified.next_epoch.is_some() == info.carries_fanout_key()
                        && keeps_components(record, &verified)
                        && (!info.carries_fanout_key_signature()
                            || public_fanout_key_verifies(
                                content,
                                group_id,
                                epoch,
                                record,
                                Some(&verified.signature_key),
                            )) =>
                {
                    Ok(Some(verified))
                }
                _ => Err(Refusal::Reject(RejectReason::PolicyRejected)),
            };
        }
        if info.wire_format != WireFormat::PublicMessage {
            return Ok(None);
        }
        let sender_key = match public_message_sender(content.message) {
            Some(leaf) => tx.leaf_signature_key(group_id, leaf)?,
            None => None,
        };
        let signed = public_message_verifies(content.message, record, sender_key.as_deref());
        let f_signed = !info.carries_fanout_key_signature()
            || public_fanout_key_verifies(content, group_id, epoch, record, sender_key.as_deref());
        if signed && f_signed {
            Ok(None)
        } else {
            Err(Refusal::Reject(RejectReason::PolicyRejected))
        }
    }

    /// Step 13, HUB-8 to HUB-10: a PrivateMessage proposal or commit goes
    /// with its key layer to the policy engine, which opens the key layer,
    /// checks the key commitment before decrypting, and verifies the MLS
    /// signature and, for a commit, the signature over F. The front-end
    /// learns only the decision: `policy_rejected` for any failure (ERR-1).
    fn ask_policy_engine(
        &self,
        tx: &mut dyn HubState,
        info: &MessageInfo<'_>,
        content: &HubLayerContent<'_>,
        group_id: &[u8],
        record: &GroupRecord,
        now: u64,
    ) -> Result<Option<u32>, Refusal> {
        if !info.is_private_handshake() {
            return Ok(None);
        }
        // The policy engine looks up the key of the leaf its key layer
        // names; a store failure during the lookup aborts the transaction.
        let store_error = std::cell::RefCell::new(None);
        let tx = std::cell::RefCell::new(tx);
        let lookup = |leaf: u32| match tx.borrow_mut().leaf_signature_key(group_id, leaf) {
            Ok(key) => key,
            Err(e) => {
                *store_error.borrow_mut() = Some(e);
                None
            }
        };
        let decision = self.policy.judge(&PolicyRequest {
            message: content.message,
            key_layer: content.key_layer,
            fanout_key: content.fanout_key.as_ref(),
            record,
            leaf_signature_key: &lookup,
            now,
        });
        if let Some(e) = store_error.into_inner() {
            return Err(Refusal::Store(e));
        }
        if decision.is_accepted() {
            Ok(decision.committer())
        } else {
            Err(Refusal::Reject(RejectReason::PolicyRejected))
        }
    }

    /// Step 14: applies what an accepted message changes (spec section
    /// "Hub State"), the one place where an accepted message changes the
    /// hub's state. A registration creates the group's state (HUB-6). A
    /// commit in epoch `n` moves the group to `n + 1`, pins the F it
    /// carries to `n + 1` and forgets F and the derived subkeys of `n - 1`
    /// (FAN-1). A handshake message's hash is recorded as accepted (HUB-7);
    /// for a commit, the hashes of the epoch it closes are forgotten.
    /// Returns the shard of the fresh tokens (RSP-5).
    fn apply(&self, tx: &mut dyn HubState, accepted: Accepted<'_>) -> Result<u32, Refusal> {
        match accepted {
            Accepted::Lobby => Ok(self.lobby_shard),
            Accepted::Registration(Registration {
                group_id,
                record,
                leaves,
                tracked,
            }) => {
                // STO-2: the first registration of a group wins, across
                // front-ends.
                if !tx.insert_group(group_id, &record)? {
                    return Err(Refusal::Reject(RejectReason::RegistrationRefused));
                }
                for (leaf, key) in leaves {
                    tx.set_leaf_signature_key(group_id, leaf, Some(&key))?;
                }
                // TRK-4: the tracked state of the registered epoch.
                if let Some(state) = tracked {
                    tx.set_tracker_state(group_id, record.epoch, Some(&state))?;
                }
                Ok(record.shard)
            }
            Accepted::Message(GroupMessage {
                group_id,
                record,
                handshake_hash,
                is_commit,
                committer,
                private,
                fanout_key,
                tracked,
            }) => {
                let (tracked_state, tracked_next, blanked) = match tracked {
                    Some(v) => (v.state, v.next_epoch, v.blanked_leaves),
                    None => (None, None, Vec::new()),
                };
                if is_commit {
                    // STO-2: the first commit for the current epoch wins
                    // and opens the next; a commit that lost the race to
                    // another front-end finds the epoch moved.
                    let mut next = record.clone();
                    next.epoch = record.epoch.saturating_add(1);
                    if let Some(f) = fanout_key {
                        next.pin_fanout_key(next.epoch, f.clone());
                    }
                    // TRK-4: the tracker's GroupContext of the new epoch.
                    if let Some(t) = &tracked_next {
                        next.group_context = t.group_context.clone();
                    }
                    if !tx.advance_group(group_id, record.epoch, &next)? {
                        return Err(Refusal::Reject(RejectReason::StaleEpoch));
                    }
                    if let Some(t) = tracked_next {
                        self.install_tracked_epoch(tx, group_id, next.epoch, &t, &blanked)?;
                    }
                    tx.forget_handshakes(group_id, record.epoch)?;
                    self.forget_epoch_keys(group_id, record.epoch);
                    // DSP-6: the epoch the commit closed is kept, so that
                    // the commit can be disputed and reverted.
                    let closed = match (committer, handshake_hash) {
                        (Some(committer), Some(commit_hash)) => Some(ClosedEpoch {
                            record: record.clone(),
                            commit_hash,
                            committer,
                            private,
                            state: DisputeState::Open,
                            votes: Vec::new(),
                        }),
                        _ => None,
                    };
                    tx.set_closed_epoch(group_id, closed.as_ref())?;
                }
                // TRK-4: a proposal's queued state, for the commit that
                // references it.
                if let Some(state) = tracked_state {
                    tx.set_tracker_state(group_id, record.epoch, Some(&state))?;
                }
                if let Some(hash) = handshake_hash {
                    // STO-2: recorded once; a twin accepted concurrently by
                    // another front-end makes this one a replay.
                    if !tx.record_handshake(group_id, record.epoch, &hash)? {
                        return Err(Refusal::Reject(RejectReason::ReplayedEnvelope));
                    }
                }
                Ok(record.shard)
            }
        }
    }

    /// TRK-4: stores the tracked state of the epoch a commit opened
    /// (`epoch`) and the leaf keys of its tree (`blanked`: the leaves the
    /// commit emptied), and drops the tracked state of the epoch before
    /// the one the commit closed (the closed one stays, for DSP-7).
    fn install_tracked_epoch(
        &self,
        tx: &mut dyn HubState,
        group_id: &[u8],
        epoch: u64,
        tracked: &TrackedEpoch,
        blanked: &[u32],
    ) -> StoreResult<()> {
        tx.set_tracker_state(group_id, epoch, Some(&tracked.state))?;
        if let Some(old) = epoch.checked_sub(2) {
            tx.set_tracker_state(group_id, old, None)?;
        }
        for leaf in blanked {
            tx.set_leaf_signature_key(group_id, *leaf, None)?;
        }
        for (leaf, key) in &tracked.leaves {
            tx.set_leaf_signature_key(group_id, *leaf, Some(key))?;
        }
        Ok(())
    }

    /// DSP-3 to DSP-7 in one transaction (see [`HubFrontEnd::handle_dispute`]).
    fn dispute(&self, tx: &mut dyn HubState, d: &Dispute) -> StoreResult<DisputeOutcome> {
        use DisputeOutcome::Refused;
        // DSP-3: the dispute names, byte for byte, the commit that opened
        // the group's current epoch, and that epoch's disputes are open.
        let Ok(info) = MessageInfo::parse(&d.commit) else {
            return Ok(Refused);
        };
        let (Some(group_id), Some(epoch), Some(ContentType::Commit)) =
            (info.group_id, info.epoch, info.content_type)
        else {
            return Ok(Refused);
        };
        let (Some(record), Some(mut closed)) = (tx.group(group_id)?, tx.closed_epoch(group_id)?)
        else {
            return Ok(Refused);
        };
        let hash: [u8; 32] = Sha256::digest(&d.commit).into();
        if closed.record.epoch != epoch
            || epoch.checked_add(1) != Some(record.epoch)
            || !crate::secret::ct_eq(&closed.commit_hash, &hash)
            || closed.state != DisputeState::Open
            || d.disputer == closed.committer
        {
            return Ok(Refused);
        }
        // DSP-3: signed by the disputer's leaf.
        let Some(suite) = MlsSuite::from_code(closed.record.mls_suite) else {
            return Ok(Refused);
        };
        let Some(key) = self.closed_leaf_key(tx, group_id, epoch, d.disputer)? else {
            return Ok(Refused);
        };
        if d.verify(suite, &key).is_err() {
            return Ok(Refused);
        }
        // DSP-5: one vote per leaf; a resend is judged against the tally
        // again (the threshold may have changed) but not counted again.
        let already = closed.votes.iter().any(|(leaf, _)| *leaf == d.disputer);
        let reject: [u8; 32] = Sha256::digest(crate::labels::DISPUTE).into();
        let digest = match &d.claim {
            DisputeClaim::Undecryptable { key, nonce, .. } => {
                // DSP-4: the disclosure, judged by the policy engine.
                let Some(committer_key) =
                    self.closed_leaf_key(tx, group_id, epoch, closed.committer)?
                else {
                    return Ok(Refused);
                };
                if !closed.private {
                    return Ok(Refused);
                }
                match judge_disclosure(
                    &closed.record,
                    &d.commit,
                    closed.committer,
                    &committer_key,
                    key,
                    nonce,
                ) {
                    Ok(Disclosure::TwoKeys) => {
                        if !already {
                            closed.votes.push((d.disputer, reject));
                        }
                        return self.revert(tx, group_id, &record, closed);
                    }
                    Ok(Disclosure::Unverifiable) => reject,
                    Ok(Disclosure::SameKey) | Err(_) => return Ok(Refused),
                }
            }
            DisputeClaim::Unprocessable => reject,
            DisputeClaim::WrongFanoutKey { fanout_key } => {
                // DSP-7: the member's F differs from the pinned one.
                if record.fanout_key(record.epoch) == Some(fanout_key) {
                    return Ok(Refused);
                }
                let mut h = Sha256::new();
                h.update(crate::labels::DISPUTE);
                h.update([0]);
                h.update(fanout_key.expose());
                h.finalize().into()
            }
        };
        if !already {
            closed.votes.push((d.disputer, digest));
        }
        let votes = closed.votes.iter().filter(|(_, v)| *v == digest).count();
        if votes < self.dispute_threshold {
            if already {
                return Ok(DisputeOutcome::AlreadyCounted);
            }
            tx.set_closed_epoch(group_id, Some(&closed))?;
            return Ok(DisputeOutcome::Counted {
                votes,
                needed: self.dispute_threshold,
            });
        }
        match &d.claim {
            DisputeClaim::WrongFanoutKey { fanout_key } => {
                // DSP-7: pin the members' F for the current epoch, by
                // compare-and-set on the epoch (STO-2).
                let mut next = record.clone();
                next.pin_fanout_key(record.epoch, fanout_key.clone());
                if !tx.advance_group(group_id, record.epoch, &next)? {
                    return Ok(Refused);
                }
                closed.state = DisputeState::Repinned;
                tx.set_closed_epoch(group_id, Some(&closed))?;
                Ok(DisputeOutcome::Repinned)
            }
            _ => self.revert(tx, group_id, &record, closed),
        }
    }

    /// DSP-6: the group goes back to the epoch the commit closed (its
    /// record: epoch, GroupContext, F pinned), by compare-and-set from the
    /// epoch the commit opened; the commit stays recorded (HUB-7) and its
    /// closed epoch is marked reverted.
    fn revert(
        &self,
        tx: &mut dyn HubState,
        group_id: &[u8],
        record: &GroupRecord,
        mut closed: ClosedEpoch,
    ) -> StoreResult<DisputeOutcome> {
        if !tx.advance_group(group_id, record.epoch, &closed.record)? {
            return Ok(DisputeOutcome::Refused);
        }
        self.revert_tracked(tx, group_id, record.epoch, closed.record.epoch)?;
        closed.state = DisputeState::Reverted;
        tx.set_closed_epoch(group_id, Some(&closed))?;
        Ok(DisputeOutcome::Reverted)
    }

    /// DSP-3 with TRK-4: the signature key of `leaf` in the closed epoch
    /// `epoch` of a group. In a tracked group the hub's leaf keys are
    /// already those of the epoch the commit opened (a member the commit
    /// removed has none), so the key comes from the tracked state of the
    /// closed epoch; otherwise from the hub's leaf keys.
    fn closed_leaf_key(
        &self,
        tx: &mut dyn HubState,
        group_id: &[u8],
        epoch: u64,
        leaf: u32,
    ) -> StoreResult<Option<Vec<u8>>> {
        let tracked = match &self.tracker {
            Some(tracker) => tx.tracker_state(group_id, epoch)?.map(|s| (tracker, s)),
            None => None,
        };
        match tracked {
            Some((tracker, state)) => {
                let view = tracker
                    .epoch_of(&state)
                    .map_err(|e| StoreError::new("tracker state", e.to_string()))?;
                Ok(view.leaves.get(&leaf).cloned())
            }
            None => tx.leaf_signature_key(group_id, leaf),
        }
    }

    /// TRK-4 with DSP-6: a tracked group that goes back from epoch `from`
    /// to `to` gets the leaf keys of `to` again, and the tracked state of
    /// `from` is dropped (the next commit in `to` writes it anew).
    fn revert_tracked(
        &self,
        tx: &mut dyn HubState,
        group_id: &[u8],
        from: u64,
        to: u64,
    ) -> StoreResult<()> {
        let Some(tracker) = &self.tracker else {
            return Ok(());
        };
        let (Some(current), Some(earlier)) = (
            tx.tracker_state(group_id, from)?,
            tx.tracker_state(group_id, to)?,
        ) else {
            return Ok(());
        };
        let corrupt =
            |e: crate::tracker::TrackerError| StoreError::new("tracker state", e.to_string());
        let current = tracker.epoch_of(&current).map_err(corrupt)?;
        let earlier = tracker.epoch_of(&earlier).map_err(corrupt)?;
        for leaf in current.leaves.keys() {
            if !earlier.leaves.contains_key(leaf) {
                tx.set_leaf_signature_key(group_id, *leaf, None)?;
            }
        }
        for (leaf, key) in &earlier.leaves {
            tx.set_leaf_signature_key(group_id, *leaf, Some(key))?;
        }
        tx.set_tracker_state(group_id, from, None)
    }

    /// The subkeys of F pinned for (group, epoch), derived once and kept
    /// while that epoch is live: entries are checked against F (so a
    /// changed F never reuses stale keys) and dropped when a commit moves
    /// the group on (see `forget_epoch_keys`).
    fn epoch_keys_for(
        &self,
        group_id: &[u8],
        f: &Secret,
        epoch: u64,
    ) -> Option<std::sync::Arc<EpochKeys>> {
        let mut cache = self.epoch_keys.lock().ok()?;
        // The entry is used only for the same F, compared in constant
        // time: a record whose F changed derives afresh.
        if let Some(k) = cache
            .groups
            .get(group_id)
            .and_then(|epochs| {
                epochs
                    .iter()
                    .find(|(e, cached, _)| *e == epoch && cached == f)
            })
            .map(|(_, _, k)| k.clone())
        {
            return Some(k);
        }
        let keys = std::sync::Arc::new(EpochKeys::derive(f, epoch).ok()?);
        if cache.len >= EPOCH_KEY_CACHE {
            cache.groups.clear();
            cache.len = 0;
        }
        let epochs = cache.groups.entry(group_id.to_vec()).or_default();
        epochs.retain(|(e, _, _)| *e != epoch);
        epochs.push((epoch, f.clone(), keys.clone()));
        cache.len = cache.groups.values().map(Vec::len).sum();
        Some(keys)
    }

    /// Drops the cached subkeys of a group's epochs older than `live_from`.
    fn forget_epoch_keys(&self, group_id: &[u8], live_from: u64) {
        if let Ok(mut cache) = self.epoch_keys.lock() {
            if let Some(epochs) = cache.groups.get_mut(group_id) {
                epochs.retain(|(e, _, _)| *e >= live_from);
                if epochs.is_empty() {
                    cache.groups.remove(group_id);
                }
            }
            cache.len = cache.groups.values().map(Vec::len).sum();
        }
    }

    /// The shard whose state a decoded hub layer needs, if this front-end
    /// serves another one ([`HubFrontEnd::set_own_shard`]): the group's
    /// shard, or the lobby shard for a message that names no group. `None`
    /// also when the content does not decode (answered here, alike).
    fn misrouted_to(&self, plaintext: &PlainBuf) -> Option<u32> {
        let own = self.own_shard?;
        let content = decode_hub_layer(plaintext).ok()?;
        let info = classify(content.message).ok()?;
        let target = info
            .group_id
            .map_or(self.lobby_shard, |g| self.shard_for(g));
        (target != own).then_some(target)
    }

    /// The shard a newly registered group is placed on.
    fn shard_for(&self, group_id: &[u8]) -> u32 {
        let d = Sha256::digest(group_id);
        u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % self.shard_count
    }

    fn fresh_tokens(
        &self,
        shard: Option<u32>,
        rng: &mut rand::rngs::ThreadRng,
    ) -> [RoutingToken; RESPONSE_TOKENS] {
        core::array::from_fn(|_| match (shard, self.tokens.current()) {
            (Some(s), Some(k)) => k.issue(s, rng),
            _ => RoutingToken::unroutable(rng),
        })
    }
}

/// What an envelope that passed every check changes, kept until
/// [`HubFrontEnd::apply`] applies it (step 14 of the processing order).
enum Accepted<'a> {
    /// A Welcome or KeyPackage (HUB-4: it names no group): nothing to
    /// change; the response carries tokens for the lobby shard.
    Lobby,
    /// A registration that passed HUB-6: the group's state to create.
    Registration(Registration<'a>),
    /// A PublicMessage or PrivateMessage of a group the hub holds.
    Message(GroupMessage<'a>),
}

/// A registration that passed HUB-6, not yet applied.
struct Registration<'a> {
    /// The group it introduces.
    group_id: &'a [u8],
    /// The group's new record: its shard, the GroupInfo's epoch with F
    /// pinned, its suite, GroupContext and key-commitment requirement.
    record: GroupRecord,
    /// The signature key of every non-blank leaf, by leaf index.
    leaves: BTreeMap<u32, Vec<u8>>,
    /// The tracker's state of the group at the registered epoch (TRK-2),
    /// when a tracker is installed.
    tracked: Option<crate::tracker::TrackedState>,
}

/// An accepted PublicMessage or PrivateMessage, not yet applied.
struct GroupMessage<'a> {
    /// The group it names.
    group_id: &'a [u8],
    /// The group's record as the checks saw it.
    record: GroupRecord,
    /// The message's hash if it is a handshake message (HUB-7); `None`
    /// for an application message.
    handshake_hash: Option<[u8; 32]>,
    /// Whether it is a commit, which opens the next epoch.
    is_commit: bool,
    /// For a commit, its sender's leaf (DSP-6).
    committer: Option<u32>,
    /// Whether it is a PrivateMessage.
    private: bool,
    /// The F it carries: for a commit, that of the epoch it opens.
    fanout_key: Option<&'a Secret>,
    /// What the group tracker verified (TRK-3), in a tracked group.
    tracked: Option<VerifiedHandshake>,
}

/// Steps 4 and 5 of the processing order, HUB-1 (decoding) and HUB-2:
/// the hub-layer plaintext must decode as a `HubLayerContent` within the
/// limits of HUB-1, followed by exactly the zero padding of
/// `padded_length(len(message))`; otherwise `malformed_message`.
fn decode_hub_layer(plaintext: &PlainBuf) -> Result<HubLayerContent<'_>, RejectReason> {
    HubLayerContent::parse_padded(plaintext.bytes()).map_err(|_| RejectReason::MalformedMessage)
}

/// Step 5, HUB-3: `message` must be an `mls10` MLSMessage of a known wire
/// format, decoded to the extent HUB-3 gives, and a PublicMessage must not
/// carry application data (RFC 9420 never sends it so); otherwise
/// `malformed_message`.
fn classify(message: &[u8]) -> Result<MessageInfo<'_>, RejectReason> {
    let info = MessageInfo::parse(message).map_err(|_| RejectReason::MalformedMessage)?;
    if info.wire_format == WireFormat::PublicMessage
        && info.content_type == Some(ContentType::Application)
    {
        return Err(RejectReason::MalformedMessage);
    }
    Ok(info)
}

/// Step 6, HUB-1 (presence rules): `key_layer` is present exactly for a
/// PrivateMessage proposal or commit, `fanout_key` exactly for a commit or
/// a GroupInfo (a registration), and `fanout_key_signature` exactly for a
/// PublicMessage commit, as the table of forms gives; otherwise
/// `wrong_form`.
fn check_presence(
    info: &MessageInfo<'_>,
    content: &HubLayerContent<'_>,
) -> Result<(), RejectReason> {
    let key_layer_ok = content.key_layer.is_empty() != info.is_private_handshake();
    let fanout_ok = content.fanout_key.is_some() == info.carries_fanout_key();
    let signature_ok =
        content.fanout_key_signature.is_empty() != info.carries_fanout_key_signature();
    if key_layer_ok && fanout_ok && signature_ok {
        Ok(())
    } else {
        Err(RejectReason::WrongForm)
    }
}

/// Step 12, PRF-2: a proposal or commit must travel in the form of the
/// room's handshake profile: in a room with public handshakes a
/// PrivateMessage proposal or commit, and in a room with private
/// handshakes a PublicMessage proposal or commit from a member, is refused
/// with `wrong_form`. A sender cannot pick the profile per message. (A
/// non-member has no keys for a PrivateMessage: its external commits and
/// proposals are PublicMessages in either profile.)
fn check_profile(info: &MessageInfo<'_>, record: &GroupRecord) -> Result<(), RejectReason> {
    let handshake = matches!(
        info.content_type,
        Some(ContentType::Proposal | ContentType::Commit)
    );
    let wrong = handshake
        && match record.profile {
            HandshakeProfile::Public => info.wire_format == WireFormat::PrivateMessage,
            HandshakeProfile::Private => {
                info.is_member_sent() && info.wire_format == WireFormat::PublicMessage
            }
        };
    if wrong {
        Err(RejectReason::WrongForm)
    } else {
        Ok(())
    }
}

/// PRF-3 and HUB-12 with a tracker (TRK-3): the components `0x8A01` (the
/// hub's configuration-signing key) and `0x8A03` (the handshake profile)
/// of the group's current GroupContext stay as they are in the next
/// GroupContext of a commit and in the extensions a GroupContextExtensions
/// proposal proposes, and the next GroupContext is the group's, at the
/// epoch after the current one. Anything that does not decode counts as a
/// change.
fn keeps_components(record: &GroupRecord, verified: &VerifiedHandshake) -> bool {
    let components = |extensions: &[u8]| -> Option<(HubSigningKey, HandshakeProfile)> {
        let dict = find_app_data_dictionary(extensions)?;
        Some((
            HubSigningKey::from_app_data_dictionary(dict).ok()?,
            HandshakeProfile::from_app_data_dictionary(dict).ok()?,
        ))
    };
    let current = GroupContext::decode(&record.group_context)
        .ok()
        .and_then(|c| components(&c.extensions));
    let Some(current) = current else {
        return false;
    };
    // The next GroupContext must also be the group's, one epoch on.
    let next = verified.next_epoch.as_ref().map(|e| {
        GroupContext::decode(&e.group_context).and_then(|c| {
            let fits = c.epoch.checked_sub(1) == Some(record.epoch)
                && GroupContext::decode(&record.group_context)
                    .is_ok_and(|now| now.group_id == c.group_id);
            if fits {
                Ok(c.extensions)
            } else {
                Err(Error::PeerMisbehaved(
                    "next GroupContext of another group or epoch",
                ))
            }
        })
    });
    let keeps = |extensions: &[u8]| components(extensions).as_ref() == Some(&current);
    match (next, &verified.proposed_extensions) {
        (Some(Ok(extensions)), _) => keeps(&extensions),
        (Some(Err(_)), _) => false,
        (None, Some(proposed)) => keeps(proposed),
        (None, None) => true,
    }
}

/// Step 9, the first rule of HUB-4: a PublicMessage or PrivateMessage
/// whose group the hub does not hold (`record` is `None`) is refused with
/// `unknown_group`.
fn check_group(record: Option<GroupRecord>) -> Result<GroupRecord, RejectReason> {
    record.ok_or(RejectReason::UnknownGroup)
}

/// Step 11, the epoch rules of HUB-4: a handshake message must be of the
/// current epoch `n`, an application message of `n` or `n - 1`; any other
/// epoch, above `n` included, is refused with `stale_epoch`.
fn check_epoch(
    info: &MessageInfo<'_>,
    epoch: u64,
    record: &GroupRecord,
) -> Result<(), RejectReason> {
    let handshake = info.content_type != Some(ContentType::Application);
    let epoch_ok = if handshake {
        epoch == record.epoch
    } else {
        epoch == record.epoch || epoch.checked_add(1) == Some(record.epoch)
    };
    if epoch_ok {
        Ok(())
    } else {
        Err(RejectReason::StaleEpoch)
    }
}

/// Why a check did not pass: a reason for the sender, or a store failure
/// that aborts the transaction.
enum Refusal {
    /// The envelope is refused with this reason.
    Reject(RejectReason),
    /// The store failed (STO-1).
    Store(StoreError),
}

impl From<RejectReason> for Refusal {
    fn from(r: RejectReason) -> Self {
        Refusal::Reject(r)
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Store(e)
    }
}

/// The leaf of a PublicMessage's member sender, `None` for any other
/// sender or a message that does not decode.
fn public_message_sender(message: &[u8]) -> Option<u32> {
    match PublicMessage::parse(message).ok()?.content.sender {
        MlsSender::Member(leaf) => Some(leaf),
        _ => None,
    }
}

/// HUB-12 for a PublicMessage: a member sender's signature over
/// FramedContentTBS verifies under the leaf's key (`sender_key`, from the
/// hub's state) and the GroupContext the hub holds. Non-member senders are
/// refused.
/// PRF-4: the signature over F that a PublicMessage commit's hub layer
/// carries verifies under the committer's key, over the group, the epoch
/// the commit opens and the F of the hub layer.
fn public_fanout_key_verifies(
    content: &HubLayerContent<'_>,
    group_id: &[u8],
    epoch: u64,
    record: &GroupRecord,
    sender_key: Option<&[u8]>,
) -> bool {
    let (Some(suite), Some(key), Some(f)) = (
        MlsSuite::from_code(record.mls_suite),
        sender_key,
        content.fanout_key.as_ref(),
    ) else {
        return false;
    };
    let Some(new_epoch) = epoch.checked_add(1) else {
        return false;
    };
    crate::fanout::verify_fanout_key(
        suite,
        key,
        group_id,
        new_epoch,
        f,
        content.fanout_key_signature,
    )
    .is_ok()
}

fn public_message_verifies(
    message: &[u8],
    record: &GroupRecord,
    sender_key: Option<&[u8]>,
) -> bool {
    let check = || -> Res<()> {
        let pm = PublicMessage::parse(message)?;
        let MlsSender::Member(_) = pm.content.sender else {
            return Err(Error::Unsupported("non-member PublicMessage sender"));
        };
        let suite = MlsSuite::from_code(record.mls_suite).ok_or(Error::Unsupported("suite"))?;
        let context = GroupContext::decode(&record.group_context)?;
        let key = sender_key.ok_or(Error::Crypto)?;
        pm.verify_signature(suite, key, Some(&context))
    };
    check().is_ok()
}

/// Opens a borrowed envelope's hub layer with one hub key pair (OUT-4),
/// in one copy of the envelope: returns the response secret and the
/// padded plaintext. Every failure is [`Error::Crypto`]. The front-end's
/// own path is [`open_hub_layer_in_place`], on the envelope it owns.
#[cfg(any(test, feature = "vectors"))]
pub(crate) fn open_hub_layer(key: &HubKeyPair, env: &Envelope<'_>) -> Res<(Secret, PlainBuf)> {
    let prefix = [env.header_bytes, env.enc].concat();
    let mut buf = Vec::with_capacity(prefix.len() + env.sealed_hub_layer.len());
    buf.extend_from_slice(&prefix);
    buf.extend_from_slice(env.sealed_hub_layer);
    let secret = open_hub_layer_in_place(key, env.header, &prefix, &mut buf)?;
    Ok((secret, PlainBuf::hub_layer_in(buf, prefix.len())))
}

/// The key schedule context of `key` for `suite` (computed once per key),
/// or computed now for a suite the key does not list.
fn with_info_context<T>(
    key: &HubKeyPair,
    header: &OuterHeader,
    f: impl FnOnce(&crate::hpke::InfoContext) -> T,
) -> T {
    match key.info_context(header.suite) {
        Some(ic) => f(ic),
        None => f(&crate::hpke::InfoContext::new(
            header.suite,
            &header.hpke_info(),
        )),
    }
}

/// Opens the hub layer at the end of `buf` in place: `buf` is an envelope
/// whose first `prefix.len()` bytes (header, `enc`, length) are `prefix`;
/// on success the sealed hub layer's bytes are the padded plaintext and
/// the tag is cut off. The hub passes its own public key to the KEM
/// instead of recomputing it. Every failure is [`Error::Crypto`]; a failed
/// open leaves no plaintext in `buf`.
fn open_hub_layer_in_place(
    key: &HubKeyPair,
    header: OuterHeader,
    prefix: &[u8],
    buf: &mut Vec<u8>,
) -> Res<Secret> {
    let n_enc = header.suite.n_enc();
    let enc = prefix
        .get(HEADER_LEN..HEADER_LEN + n_enc)
        .ok_or(Error::Crypto)?;
    let aad = prefix.get(..HEADER_LEN).ok_or(Error::Crypto)?;
    let ctx = with_info_context(key, &header, |ic| {
        crate::hpke::setup_receiver(ic, key.secret(), &key.config.public_key.0, enc)
    })
    .map_err(|_| Error::Crypto)?;
    let body_end = buf
        .len()
        .checked_sub(crate::hpke::TAG_LEN)
        .filter(|&end| end >= prefix.len())
        .ok_or(Error::Crypto)?;
    let (head, tag) = buf.split_at_mut(body_end);
    let tag: [u8; crate::hpke::TAG_LEN] = (&*tag).try_into().map_err(|_| Error::Crypto)?;
    ctx.open_in_place(aad, &mut head[prefix.len()..], &tag)
        .map_err(|_| Error::Crypto)?;
    buf.truncate(body_end);
    response::export_secret(&ctx, header.suite)
}

/// The resend fingerprint of an envelope (HUB-5): SHA-256 over its outer
/// header, the length of its sealed hub layer and the last 16 bytes of it
/// (the AEAD tag). Under one `enc`, that tag authenticates the whole
/// ciphertext, so two envelopes with the same `enc` and fingerprint are the
/// same envelope unless someone forged a tag; a forged variant gets the
/// cached response, which tells its sender nothing a replay would not. It
/// costs one hash of 60 bytes instead of one over a whole message.
pub fn resend_fingerprint(env: &Envelope<'_>) -> [u8; 32] {
    let sealed = env.sealed_hub_layer;
    let tag = &sealed[sealed.len().saturating_sub(16)..];
    let mut h = Sha256::new();
    h.update(env.header_bytes);
    h.update((sealed.len() as u64).to_be_bytes());
    h.update(tag);
    h.finalize().into()
}

/// The header of an envelope as the sender's provider reads it.
pub fn read_header(envelope: &[u8]) -> Res<OuterHeader> {
    Envelope::parse(envelope).map(|e| e.header)
}

#[cfg(test)]
mod tests {
    use crate::mls::framing::GroupContext;
    use crate::mls::group_info::{build_ratchet_tree, tree_hash, GroupInfoBuilder};
    use crate::mls::suite::MlsSuite;
    use crate::test_utils::room::room_extensions;
    use crate::test_utils::DemoWorld;
    use crate::wire::{HubLayerContent, MEMBERSHIP_PROOF_LEN};

    use super::*;

    /// HUB-6: a registration whose GroupContext's `tree_hash` is not the
    /// hash of its ratchet tree is refused, though its signature verifies
    /// and it names the hub's signing key; the same GroupInfo with the
    /// right tree hash is accepted.
    #[test]
    fn registration_requires_a_matching_tree_hash() {
        let world = DemoWorld::new().unwrap();
        let key = HubSigningKey::from_app_data_dictionary(&world.app_data_dictionary).unwrap();
        let suite = MlsSuite::from_code(1).unwrap();
        let leaves = [
            (vec![0x11; 32], b"alice".to_vec()),
            (vec![0x22; 32], b"bob".to_vec()),
        ];
        let right = tree_hash(suite, &build_ratchet_tree(suite, &leaves).unwrap()).unwrap();
        let mut wrong = right.clone();
        wrong[0] ^= 1;
        let group_id = b"tree hash test room";
        let registration = |th: &[u8]| {
            let mut gc = GroupContext::new(suite, group_id, 0, th, &[5; 32]);
            gc.extensions =
                room_extensions(&key, crate::profile::HandshakeProfile::Private).unwrap();
            GroupInfoBuilder {
                suite,
                group_context: &gc,
                leaves: &leaves,
                confirmation_tag: vec![0; 32],
                signer: 0,
            }
            .build()
            .unwrap()
        };
        let content = |message| HubLayerContent {
            message,
            membership_proof: [0; MEMBERSHIP_PROOF_LEN],
            key_layer: &[],
            fanout_key: Some(Secret::new(vec![7; 32])),
            fanout_key_signature: &[],
        };

        let bad = registration(&wrong);
        let gi = GroupInfoIn::parse(&bad).unwrap();
        gi.verify(suite).unwrap();
        assert!(!gi.tree_hash_matches().unwrap());
        let hub = &world.hub;
        assert_eq!(
            hub.core
                .validate_registration(group_id, 0, &content(&bad))
                .err(),
            Some(Error::PeerMisbehaved(
                "registration whose ratchet tree does not match its tree hash"
            ))
        );
        assert_eq!(
            hub.core
                .check_registration(group_id, 0, &content(&bad), false)
                .err(),
            Some(RejectReason::RegistrationRefused)
        );
        assert!(hub.group(group_id).unwrap().is_none());

        let good = registration(&right);
        let reg = hub
            .core
            .check_registration(group_id, 0, &content(&good), false)
            .unwrap();
        assert!(hub.group(group_id).unwrap().is_none());
        let shard = hub
            .store
            .transact(&mut |tx| {
                let reg = Registration {
                    group_id: reg.group_id,
                    record: reg.record.clone(),
                    leaves: reg.leaves.clone(),
                    tracked: reg.tracked.clone(),
                };
                match hub.core.apply(tx, Accepted::Registration(reg)) {
                    Ok(shard) => Ok(shard),
                    Err(Refusal::Store(e)) => Err(e),
                    Err(Refusal::Reject(r)) => panic!("refused: {r:?}"),
                }
            })
            .unwrap();
        assert_eq!(hub.group(group_id).unwrap().map(|r| r.shard), Some(shard));
        // A second registration of a group the hub now holds is refused.
        assert_eq!(
            hub.core
                .check_registration(group_id, 0, &content(&good), true)
                .err(),
            Some(RejectReason::RegistrationRefused)
        );
    }
}
