//! The hub's state (spec section "Hub State").
//!
//! A real hub backs [`HubState`] with its own store; [`InMemoryHubState`]
//! serves tests and the demo. The front-end keeps, per group, the shard its
//! tokens route to, the current epoch and the hashes of the handshake
//! messages accepted in it (HUB-7); for the lifetime of each token key, the
//! spent token nonces (TOK-6); for the lifetime of each hub key, every
//! `enc` it opened with the envelope's resend fingerprint and the response it sent
//! (HUB-5, RSP-4).

use std::collections::{HashMap, HashSet};

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
    /// Whether the GroupContext requires the key-commitment SafeAAD item
    /// (HUB-9: without it the hub refuses key layers).
    pub commitment_required: bool,
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
            commitment_required: false,
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

    /// Pins F for `epoch` and forgets those older than `epoch - 1`.
    pub fn pin_fanout_key(&mut self, epoch: u64, f: Secret) {
        self.fanout_keys
            .retain(|(e, _)| *e != epoch && e.saturating_add(1) >= epoch);
        self.fanout_keys.push((epoch, f));
    }
}

/// A response the hub sent, kept so that an identical resend gets it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedResponse {
    /// The resend fingerprint of the envelope it answered (see
    /// [`crate::hub::resend_fingerprint`]).
    pub fingerprint: [u8; 32],
    /// The response bytes; `None` once the hub dropped them after its
    /// retry window (HUB-5): a resend then gets random bytes.
    pub response: Option<Vec<u8>>,
}

/// The hub's per-group and replay state.
pub trait HubState {
    /// The record of a group, if the hub holds one.
    fn group(&self, group_id: &[u8]) -> Option<GroupRecord>;
    /// Creates or replaces a group's record.
    fn put_group(&mut self, group_id: &[u8], record: GroupRecord);
    /// Marks a token nonce spent; `false` if it already was.
    fn spend_token(&mut self, codepoint: u8, nonce: &[u8; TOKEN_NONCE_LEN]) -> bool;
    /// The response cached for an `enc`, if any.
    fn cached_response(&self, enc: &[u8]) -> Option<CachedResponse>;
    /// Caches the response sent for an `enc`.
    fn cache_response(&mut self, enc: &[u8], cached: CachedResponse);
    /// Drops the response cached for an `enc` after the retry window,
    /// keeping the `enc` and its fingerprint (HUB-5).
    fn drop_response(&mut self, enc: &[u8]);
    /// True if a handshake message with this hash was accepted in the
    /// group's current epoch or is the commit that opened it (HUB-7).
    fn handshake_accepted(&self, group_id: &[u8], hash: &[u8; 32]) -> bool;
    /// Records an accepted handshake message. For a commit, the hashes of
    /// the epoch it closes are forgotten first.
    fn record_handshake(&mut self, group_id: &[u8], hash: [u8; 32], is_commit: bool);
    /// The signature key of a member's leaf (policy engine).
    fn leaf_signature_key(&self, group_id: &[u8], leaf_index: u32) -> Option<Vec<u8>>;
    /// Sets (or, with `None`, removes) the signature key of a leaf.
    fn set_leaf_signature_key(&mut self, group_id: &[u8], leaf_index: u32, key: Option<Vec<u8>>);
}

/// An in-memory [`HubState`].
#[derive(Debug, Default)]
pub struct InMemoryHubState {
    groups: HashMap<Vec<u8>, GroupRecord>,
    spent: HashSet<(u8, [u8; TOKEN_NONCE_LEN])>,
    responses: HashMap<Vec<u8>, CachedResponse>,
    handshakes: HashMap<Vec<u8>, HashSet<[u8; 32]>>,
    leaves: HashMap<(Vec<u8>, u32), Vec<u8>>,
}

impl InMemoryHubState {
    /// Empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current epoch of a group, if held.
    pub fn group_epoch(&self, group_id: &[u8]) -> Option<u64> {
        self.groups.get(group_id).map(|r| r.epoch)
    }

    /// Number of spent token nonces.
    pub fn spent_tokens(&self) -> usize {
        self.spent.len()
    }
}

impl HubState for InMemoryHubState {
    fn group(&self, group_id: &[u8]) -> Option<GroupRecord> {
        self.groups.get(group_id).cloned()
    }

    fn put_group(&mut self, group_id: &[u8], record: GroupRecord) {
        self.groups.insert(group_id.to_vec(), record);
    }

    fn spend_token(&mut self, codepoint: u8, nonce: &[u8; TOKEN_NONCE_LEN]) -> bool {
        self.spent.insert((codepoint, *nonce))
    }

    fn cached_response(&self, enc: &[u8]) -> Option<CachedResponse> {
        self.responses.get(enc).cloned()
    }

    fn cache_response(&mut self, enc: &[u8], cached: CachedResponse) {
        self.responses.insert(enc.to_vec(), cached);
    }

    fn drop_response(&mut self, enc: &[u8]) {
        if let Some(c) = self.responses.get_mut(enc) {
            c.response = None;
        }
    }

    fn handshake_accepted(&self, group_id: &[u8], hash: &[u8; 32]) -> bool {
        self.handshakes
            .get(group_id)
            .is_some_and(|set| set.contains(hash))
    }

    fn record_handshake(&mut self, group_id: &[u8], hash: [u8; 32], is_commit: bool) {
        let set = self.handshakes.entry(group_id.to_vec()).or_default();
        if is_commit {
            set.clear();
        }
        set.insert(hash);
    }

    fn leaf_signature_key(&self, group_id: &[u8], leaf_index: u32) -> Option<Vec<u8>> {
        self.leaves.get(&(group_id.to_vec(), leaf_index)).cloned()
    }

    fn set_leaf_signature_key(&mut self, group_id: &[u8], leaf_index: u32, key: Option<Vec<u8>>) {
        let k = (group_id.to_vec(), leaf_index);
        match key {
            Some(key) => {
                self.leaves.insert(k, key);
            }
            None => {
                self.leaves.remove(&k);
            }
        }
    }
}
