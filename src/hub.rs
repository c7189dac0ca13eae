//! The hub front-end (spec sections "Hub Layer", "Hub Response", "Hub
//! State"): chooses the hub key by key id, opens the hub layer, applies the
//! processing rules and answers every envelope with exactly one response of
//! fixed size.

use hpke_rs::Hpke;
use hpke_rs_rust_crypto::HpkeRustCrypto;
use sha2::{Digest, Sha256};

use crate::commitment::group_requires_commitment;
use crate::config::{find_app_data_dictionary, HubConfiguration, HubSigningKey, KeyUse};
use crate::error::{Error, Res};
use crate::fanout::EpochKeys;
use crate::keys::HubKeyPair;
use crate::mls::framing::{GroupContext, PublicMessage, Sender as MlsSender};
use crate::mls::group_info::GroupInfoIn;
use crate::mls::message::{ContentType, MessageInfo, WireFormat};
use crate::mls::suite::MlsSuite;
use crate::policy::{PolicyEngine, PolicyRequest};
use crate::response::{self, HubResponse, RejectReason, Status, RESPONSE_TOKENS};
use crate::secret::Secret;
use crate::state::{CachedResponse, GroupRecord, HubState};
use crate::suite::HpkeSuite;
use crate::token::{DecodedToken, RoutingToken, TokenKeys};
use crate::wire::{Envelope, HubLayerContent, OuterHeader, PlainBuf};

/// Number of epochs whose F subkeys the front-end keeps derived.
const EPOCH_KEY_CACHE: usize = 4096;

/// What the front-end learned from an envelope it opened: exactly the
/// contract's "hub front-end" row, no key and no plaintext of the MLS
/// content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubView {
    /// The message as recovered, byte for byte.
    pub message: Vec<u8>,
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

/// The hub front-end.
pub struct HubFrontEnd<S: HubState> {
    keys: Vec<HubKeyPair>,
    /// One HPKE receiver per suite, made once.
    receivers: Vec<(HpkeSuite, Hpke<HpkeRustCrypto>)>,
    #[allow(clippy::type_complexity)]
    epoch_keys: std::sync::Mutex<std::collections::HashMap<(Vec<u8>, u64), ([u8; 32], EpochKeys)>>,
    signing_key: Option<HubSigningKey>,
    policy: PolicyEngine,
    tokens: TokenKeys,
    lobby_shard: u32,
    shard_count: u32,
    state: S,
}

impl<S: HubState> core::fmt::Debug for HubFrontEnd<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HubFrontEnd")
            .field("keys", &self.keys)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl<S: HubState> HubFrontEnd<S> {
    /// A front-end with its hub and policy key pairs, token keys, the shard
    /// count and the shard that answers group-less messages (Welcome,
    /// KeyPackage).
    pub fn new(
        keys: Vec<HubKeyPair>,
        tokens: TokenKeys,
        shard_count: u32,
        lobby_shard: u32,
        state: S,
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
        let receivers = HpkeSuite::ALL
            .into_iter()
            .map(|s| Ok((s, s.hpke()?)))
            .collect::<Res<Vec<_>>>()?;
        Ok(HubFrontEnd {
            keys,
            receivers,
            epoch_keys: Default::default(),
            signing_key: None,
            policy: PolicyEngine::new(policy_keys),
            tokens,
            lobby_shard,
            shard_count,
            state,
        })
    }

    /// Sets the public half of the hub's configuration-signing key, which a
    /// registration's GroupContext must carry (HUB-6).
    pub fn set_signing_key(&mut self, key: HubSigningKey) {
        self.signing_key = Some(key);
    }

    /// The configuration to sign and serve: every key this hub holds.
    pub fn configuration(&self, serial: u64) -> HubConfiguration {
        HubConfiguration {
            serial,
            keys: self
                .keys
                .iter()
                .chain(self.policy.keys())
                .map(|k| k.config.clone())
                .collect(),
        }
    }

    /// The state.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The state, mutably (for provisioning groups).
    pub fn state_mut(&mut self) -> &mut S {
        &mut self.state
    }

    /// The policy engine (its own log of what it read is there, not in
    /// the front-end's views).
    pub fn policy(&self) -> &PolicyEngine {
        &self.policy
    }

    /// The live hub key with `key_id` offering `suite` at time `now` (OUT-2):
    /// an expired key (`not_after` passed) opens nothing.
    fn hub_key(&self, key_id: u8, suite: HpkeSuite, now: u64) -> Option<&HubKeyPair> {
        self.keys.iter().find(|k| {
            k.config.key_use() == Some(KeyUse::Hub)
                && k.config.key_id == key_id
                && k.config.offers(suite)
                && k.config.not_after > now
        })
    }

    /// Handles one envelope (the processing rules of the spec in order) at
    /// time `now` (Unix seconds, from the caller's clock: key expiry is
    /// judged against it). Never fails: every input gets a response.
    pub fn handle(&mut self, envelope: &[u8], now: u64) -> HubOutcome {
        let mut rng = rand::rng();
        // RSP-2: an unopenable envelope gets random bytes of the response
        // size of the suite its header names.
        let suite_hint = OuterHeader::peek_suite(envelope).unwrap_or(HpkeSuite::MANDATORY);
        let unopenable = |rng: &mut rand::rngs::ThreadRng| HubOutcome {
            response: response::random_response(suite_hint, rng),
            view: None,
            from_cache: false,
        };
        let Ok(env) = Envelope::parse(envelope) else {
            return unopenable(&mut rng);
        };
        // OUT-2: a live hub key with this id offers the header's suite.
        let Some(key) = self.hub_key(env.header.key_id, env.header.suite, now) else {
            return unopenable(&mut rng);
        };
        let digest = resend_fingerprint(&env);
        // HUB-5 / RSP-4: an `enc` seen before.
        if let Some(cached) = self.state.cached_response(env.enc) {
            if crate::secret::ct_eq(&cached.fingerprint, &digest) {
                if let Some(response) = cached.response {
                    return HubOutcome {
                        response,
                        view: None,
                        from_cache: true,
                    };
                }
            }
            return unopenable(&mut rng);
        }
        let Some(hpke) = self
            .receivers
            .iter()
            .find(|(s, _)| *s == env.header.suite)
            .map(|(_, h)| h)
        else {
            return unopenable(&mut rng);
        };
        let Ok((secret, plaintext)) = open_hub_layer_with(hpke, key, &env) else {
            return unopenable(&mut rng);
        };
        let (status, view, shard) = self.judge(&env, &plaintext, now);
        let tokens = self.fresh_tokens(shard, &mut rng);
        let resp = HubResponse { status, tokens };
        let Ok(bytes) = response::seal(env.header.suite, &secret, env.enc, &resp, &mut rng) else {
            return unopenable(&mut rng);
        };
        self.state.cache_response(
            env.enc,
            CachedResponse {
                fingerprint: digest,
                response: Some(bytes.clone()),
            },
        );
        HubOutcome {
            response: bytes,
            view,
            from_cache: false,
        }
    }

    /// Applies the processing rules (HUB-1 to HUB-11, TOK-6) to an opened
    /// hub layer, asking the policy engine where needed. Returns the
    /// verdict, the view and the shard for the fresh tokens (`None`: issue
    /// unroutable tokens).
    fn judge(
        &mut self,
        env: &Envelope<'_>,
        plaintext: &PlainBuf,
        now: u64,
    ) -> (Status, Option<HubView>, Option<u32>) {
        let reject = |r| (Status::Rejected(r), None, None);
        let Ok(content) = HubLayerContent::parse_padded(&plaintext.0) else {
            return reject(RejectReason::MalformedMessage);
        };
        let Ok(info) = MessageInfo::parse(content.message) else {
            return reject(RejectReason::MalformedMessage);
        };
        // HUB-3: RFC 9420 never sends application data as a PublicMessage.
        if info.wire_format == WireFormat::PublicMessage
            && info.content_type == Some(ContentType::Application)
        {
            return reject(RejectReason::MalformedMessage);
        }
        let token = self.tokens.decode(&env.header.token.0);
        let mut view = HubView {
            message: content.message.to_vec(),
            wire_format: info.wire_format,
            group_id: info.group_id.map(<[u8]>::to_vec),
            epoch: info.epoch,
            content_type: info.content_type,
            token,
            key_id: env.header.key_id,
            suite: env.header.suite,
            key_layer_len: content.key_layer.len(),
            has_fanout_key: content.fanout_key.is_some(),
            status: Status::Accepted,
        };
        let (status, shard) = self.decide(env, &info, &content, token, now);
        if status == Status::Accepted
            && info
                .content_type
                .is_some_and(|c| c != ContentType::Application)
        {
            if let Some(g) = info.group_id {
                let hash = Sha256::digest(content.message).into();
                self.state.record_handshake(
                    g,
                    hash,
                    info.content_type == Some(ContentType::Commit),
                );
            }
        }
        view.status = status;
        (status, Some(view), shard)
    }

    fn decide(
        &mut self,
        env: &Envelope<'_>,
        info: &MessageInfo<'_>,
        content: &HubLayerContent<'_>,
        token: Option<DecodedToken>,
        now: u64,
    ) -> (Status, Option<u32>) {
        let is_commit = info.content_type == Some(ContentType::Commit);
        let is_group_info = info.wire_format == WireFormat::GroupInfo;
        // HUB-1: presence rules.
        let key_layer_ok = content.key_layer.is_empty() != info.is_private_handshake();
        let fanout_ok = content.fanout_key.is_some() == (is_commit || is_group_info);
        let record = info.group_id.and_then(|g| self.state.group(g));
        let shard = record.as_ref().map(|r| r.shard).or(match info.group_id {
            None => Some(self.lobby_shard),
            Some(_) => None,
        });
        if !key_layer_ok || !fanout_ok {
            return (Status::Rejected(RejectReason::WrongForm), shard);
        }
        // TOK-6: a routable token is spent once. TOK-7: spent only here,
        // after HUB-1 to HUB-3 and the presence rules.
        if let Some(t) = token {
            if !self.state.spend_token(t.codepoint, &t.nonce) {
                return (Status::Rejected(RejectReason::TokenReused), shard);
            }
        }
        let (Some(group_id), Some(epoch)) = (info.group_id, info.epoch) else {
            // Welcome and KeyPackage name no group: delivered by the
            // application layer, answered from the lobby shard.
            return (Status::Accepted, shard);
        };
        let Some(record) = record else {
            if is_group_info {
                // Registration: GroupInfo plus F for a group the hub does not hold.
                return match self.register(group_id, epoch, content) {
                    Ok(shard) => (Status::Accepted, Some(shard)),
                    Err(_) => (Status::Rejected(RejectReason::RegistrationRefused), None),
                };
            }
            return (Status::Rejected(RejectReason::UnknownGroup), None);
        };
        if is_group_info {
            return (Status::Rejected(RejectReason::RegistrationRefused), shard);
        }
        let handshake = info.content_type != Some(ContentType::Application);
        // HUB-7: a handshake message accepted before, re-sealed.
        if handshake
            && self
                .state
                .handshake_accepted(group_id, &Sha256::digest(content.message).into())
        {
            return (Status::Rejected(RejectReason::ReplayedEnvelope), shard);
        }
        // HUB-4: epoch rules.
        let epoch_ok = if handshake {
            epoch == record.epoch
        } else {
            epoch == record.epoch || epoch.checked_add(1) == Some(record.epoch)
        };
        if !epoch_ok {
            return (Status::Rejected(RejectReason::StaleEpoch), shard);
        }
        // HUB-11: the membership proof of a member-sent type, under the F
        // pinned for the message's epoch. The hub learns "a member of the
        // group", not which one.
        if info.is_member_sent() {
            let proven = record
                .fanout_key(epoch)
                .and_then(|f| self.epoch_keys_for(group_id, f, epoch))
                .is_some_and(|k| {
                    k.verify_membership_proof(env.header_bytes, env.enc, &content.membership_proof)
                });
            if !proven {
                return (Status::Rejected(RejectReason::MembershipProofFailed), shard);
            }
        }
        // HUB-12: a PublicMessage proposal or commit must carry a valid
        // signature; this hub verifies member senders (their keys are in
        // its state) and refuses non-member senders, whose keys sit in the
        // commit's path or a KeyPackage it does not parse.
        if info.wire_format == WireFormat::PublicMessage && handshake {
            let state = &self.state;
            if !public_message_verifies(content.message, &record, |leaf| {
                state.leaf_signature_key(group_id, leaf)
            }) {
                return (Status::Rejected(RejectReason::PolicyRejected), shard);
            }
        }
        // HUB-8 to HUB-10: PrivateMessage proposals and commits go to the
        // policy engine; the front-end learns only its decision.
        if info.is_private_handshake() {
            let state = &self.state;
            let lookup = |leaf: u32| state.leaf_signature_key(group_id, leaf);
            let decision = self.policy.judge(&PolicyRequest {
                message: content.message,
                key_layer: content.key_layer,
                fanout_key: content.fanout_key.as_ref(),
                record: &record,
                leaf_signature_key: &lookup,
                now,
            });
            if !decision.is_accepted() {
                return (Status::Rejected(RejectReason::PolicyRejected), shard);
            }
        }
        if is_commit {
            // The first commit for the current epoch wins and opens the next.
            let mut next = record.clone();
            next.epoch = record.epoch.saturating_add(1);
            if let Some(f) = &content.fanout_key {
                next.pin_fanout_key(next.epoch, f.clone());
            }
            self.forget_epoch_keys(group_id, record.epoch);
            self.state.put_group(group_id, next);
        }
        (Status::Accepted, shard)
    }

    /// Provisions a group from a full record (its shard is assigned here).
    pub fn provision(&mut self, group_id: &[u8], mut record: GroupRecord) -> u32 {
        record.shard = self.shard_for(group_id);
        self.state.put_group(group_id, record.clone());
        record.shard
    }

    /// Fresh tokens for a client of `group_id` (`None`: the lobby shard),
    /// as handed out when a client joins; unroutable ones for a group the
    /// hub does not hold.
    pub fn issue_tokens(&self, group_id: Option<&[u8]>) -> [RoutingToken; RESPONSE_TOKENS] {
        let shard = match group_id {
            None => Some(self.lobby_shard),
            Some(g) => self.state.group(g).map(|r| r.shard),
        };
        self.fresh_tokens(shard, &mut rand::rng())
    }

    /// The subkeys of F pinned for (group, epoch), derived once and kept
    /// while that epoch is live: entries are checked against F (so a
    /// changed F never reuses stale keys) and dropped when a commit moves
    /// the group on (see `forget_epoch_keys`).
    fn epoch_keys_for(&self, group_id: &[u8], f: &Secret, epoch: u64) -> Option<EpochKeys> {
        let id: [u8; 32] = Sha256::digest(f.expose()).into();
        let mut cache = self.epoch_keys.lock().ok()?;
        let key = (group_id.to_vec(), epoch);
        if let Some((fid, k)) = cache.get(&key) {
            if crate::secret::ct_eq(fid, &id) {
                return Some(k.clone());
            }
        }
        let keys = EpochKeys::derive(f, epoch).ok()?;
        if cache.len() >= EPOCH_KEY_CACHE {
            cache.clear();
        }
        cache.insert(key, (id, keys.clone()));
        Some(keys)
    }

    /// Drops the cached subkeys of a group's epochs older than `live_from`.
    fn forget_epoch_keys(&self, group_id: &[u8], live_from: u64) {
        if let Ok(mut cache) = self.epoch_keys.lock() {
            cache.retain(|(g, e), _| g.as_slice() != group_id || *e >= live_from);
        }
    }

    /// HUB-6: a registration for a group the hub does not hold. The
    /// GroupInfo's signature must verify under the signer's leaf in its
    /// `ratchet_tree`, and its GroupContext must carry this hub's
    /// configuration-signing key. The hub then holds the group at the
    /// GroupInfo's epoch with the carried F pinned, the members' signature
    /// keys, and whether the GroupContext requires the key commitment.
    fn register(&mut self, group_id: &[u8], epoch: u64, content: &HubLayerContent<'_>) -> Res<u32> {
        let gi = GroupInfoIn::parse(content.message)?;
        let suite = gi.suite()?;
        gi.verify(suite)?;
        if !gi.tree_hash_matches()? {
            return Err(Error::Usage(
                "registration whose ratchet tree does not match its tree hash",
            ));
        }
        let leaves = gi.leaf_signature_keys()?;
        if leaves.is_empty() {
            return Err(Error::Usage("registration without a ratchet tree"));
        }
        let dict = find_app_data_dictionary(&gi.group_context.extensions)
            .ok_or(Error::Usage("registration without the hub's component"))?;
        let key = HubSigningKey::from_app_data_dictionary(dict)?;
        if self.signing_key.as_ref() != Some(&key) {
            return Err(Error::Usage("registration names another hub's signing key"));
        }
        let f = content
            .fanout_key
            .clone()
            .ok_or(Error::Usage("registration without F"))?;
        let shard = self.shard_for(group_id);
        let mut record = GroupRecord::new(shard, epoch, suite.code());
        record.commitment_required = group_requires_commitment(dict);
        record.group_context = gi.group_context_bytes.clone();
        record.pin_fanout_key(epoch, f);
        self.state.put_group(group_id, record);
        for (leaf, key) in leaves {
            self.state.set_leaf_signature_key(group_id, leaf, Some(key));
        }
        Ok(shard)
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
            .state
            .group(group_id)
            .ok_or(Error::Usage("unknown group"))?;
        let f = record
            .fanout_key(epoch)
            .ok_or(Error::Usage("no F pinned for that epoch"))?;
        let keys = self
            .epoch_keys_for(group_id, f, epoch)
            .ok_or(Error::Usage("F does not derive"))?;
        let mut rng = rand::rng();
        (0..followers)
            .map(|_| keys.seal(message, &mut rng))
            .collect()
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

/// HUB-12 for a PublicMessage: a member sender's signature over
/// FramedContentTBS verifies under the leaf's key and the GroupContext the
/// hub holds. Non-member senders are refused.
fn public_message_verifies(
    message: &[u8],
    record: &GroupRecord,
    leaf_key: impl Fn(u32) -> Option<Vec<u8>>,
) -> bool {
    let check = || -> Res<()> {
        let pm = PublicMessage::parse(message)?;
        let MlsSender::Member(leaf) = pm.content.sender else {
            return Err(Error::Unsupported("non-member PublicMessage sender"));
        };
        let suite = MlsSuite::from_code(record.mls_suite).ok_or(Error::Unsupported("suite"))?;
        let context = GroupContext::decode(&record.group_context)?;
        let key = leaf_key(leaf).ok_or(Error::Crypto)?;
        pm.verify_signature(suite, &key, Some(&context))
    };
    check().is_ok()
}

/// Opens an envelope's hub layer with one hub key pair (OUT-4): returns the
/// response secret and the padded plaintext. Every failure is
/// [`Error::Crypto`].
#[cfg(any(test, feature = "vectors"))]
pub(crate) fn open_hub_layer(key: &HubKeyPair, env: &Envelope<'_>) -> Res<(Secret, PlainBuf)> {
    let hpke = env.header.suite.hpke().map_err(|_| Error::Crypto)?;
    open_hub_layer_with(&hpke, key, env)
}

/// [`open_hub_layer`] with an HPKE instance the caller keeps (a receiver
/// draws no randomness, so one instance per suite serves every envelope).
fn open_hub_layer_with(
    hpke: &Hpke<HpkeRustCrypto>,
    key: &HubKeyPair,
    env: &Envelope<'_>,
) -> Res<(Secret, PlainBuf)> {
    let mut ctx = hpke
        .setup_receiver(
            env.enc,
            key.private_key(),
            &env.header.hpke_info(),
            None,
            None,
            None,
        )
        .map_err(|_| Error::Crypto)?;
    let pt = ctx
        .open(env.header_bytes, env.sealed_hub_layer)
        .map_err(|_| Error::Crypto)?;
    let pt = PlainBuf::with_public_message(pt);
    let secret = response::export_secret(&ctx, env.header.suite)?;
    Ok((secret, pt))
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
        let mut world = DemoWorld::new().unwrap();
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
            gc.extensions = room_extensions(&key).unwrap();
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
        };

        let bad = registration(&wrong);
        let gi = GroupInfoIn::parse(&bad).unwrap();
        gi.verify(suite).unwrap();
        assert!(!gi.tree_hash_matches().unwrap());
        assert!(world.hub.register(group_id, 0, &content(&bad)).is_err());
        assert!(world.hub.state().group(group_id).is_none());

        let good = registration(&right);
        assert!(world.hub.register(group_id, 0, &content(&good)).is_ok());
        assert!(world.hub.state().group(group_id).is_some());
    }
}
