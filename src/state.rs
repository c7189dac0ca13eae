//! The hub's state (spec section "Hub State").
//!
//! A real hub backs [`HubState`] with its own store; [`InMemoryHubState`]
//! serves tests and the demo. The front-end keeps, per group, the shard its
//! tokens route to, the current epoch and the hashes of the handshake
//! messages accepted in it (HUB-7); for the lifetime of each token key, the
//! spent token nonces (TOK-6); for the lifetime of each hub key, every
//! `enc` it opened with the digest of the envelope and the response it sent
//! (HUB-5, RSP-4).

use std::collections::{HashMap, HashSet};

use crate::token::TOKEN_NONCE_LEN;

/// What the hub keeps about one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    /// The shard the group's tokens route to.
    pub shard: u32,
    /// The current epoch.
    pub epoch: u64,
}

/// A response the hub sent, kept so that an identical resend gets it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedResponse {
    /// SHA-256 of the whole envelope it answered.
    pub envelope_digest: [u8; 32],
    /// The response bytes.
    pub response: Vec<u8>,
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
    /// True if a handshake message with this hash was accepted in the
    /// group's current epoch or is the commit that opened it (HUB-7).
    fn handshake_accepted(&self, group_id: &[u8], hash: &[u8; 32]) -> bool;
    /// Records an accepted handshake message. For a commit, the hashes of
    /// the epoch it closes are forgotten first.
    fn record_handshake(&mut self, group_id: &[u8], hash: [u8; 32], is_commit: bool);
}

/// An in-memory [`HubState`].
#[derive(Debug, Default)]
pub struct InMemoryHubState {
    groups: HashMap<Vec<u8>, GroupRecord>,
    spent: HashSet<(u8, [u8; TOKEN_NONCE_LEN])>,
    responses: HashMap<Vec<u8>, CachedResponse>,
    handshakes: HashMap<Vec<u8>, HashSet<[u8; 32]>>,
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
}
