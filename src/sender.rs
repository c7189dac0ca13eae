//! The sender (spec sections "Outer Layer", "Hub Layer", "Hub Response",
//! TOK-5): seals an MLS message into an envelope for the hub, keeps a pool
//! of routing tokens per group, and opens the hub's response.

use std::collections::{HashMap, VecDeque};

use rand::Rng;
use zeroize::Zeroize;

use crate::commitment::{build_authenticated_data, encode_safe_aad, CommitmentInput, SafeAadItem};
use crate::config::{KeyConfig, KeyUse, VerifiedHubConfiguration};
use crate::error::{Error, Res};
use crate::fanout::{sign_fanout_key, EpochKeys};
use crate::hpke;
use crate::keylayer::KeyLayerContent;
use crate::mls::framing::{
    apply_reuse_guard, encrypt_private_message, sign_framed_content, FramedContent,
    FramedContentAuthData, GroupContext, PrivateMessageContent, Sender as MlsSender, SenderData,
};
use crate::mls::message::{ContentType, MessageInfo, WireFormat};
use crate::mls::suite::MlsSuite;
use crate::response::{self, HubResponse};
use crate::secret::Secret;
use crate::suite::HpkeSuite;
use crate::token::RoutingToken;
use crate::wire::{Envelope, HubLayerContent, OuterHeader, MEMBERSHIP_PROOF_LEN};

/// Everything the hub layer carries besides the message.
#[derive(Debug, Default)]
pub struct SealOptions<'a> {
    /// The sealed key layer: required for a PrivateMessage proposal or
    /// commit, forbidden otherwise.
    pub key_layer: Option<&'a [u8]>,
    /// F: required for a commit (F of the epoch it opens) and for a
    /// registration (message = GroupInfo), forbidden otherwise.
    pub fanout_key: Option<Secret>,
    /// The keys of the message's epoch, for the membership proof: required
    /// for the types members send (PrivateMessage; PublicMessage from a
    /// member); the other types carry 16 random bytes instead.
    pub membership: Option<&'a EpochKeys>,
    /// The committer's signature over F (PRF-4): required for a
    /// PublicMessage commit, forbidden otherwise. A stack that holds the
    /// signature key in a signer of its own signs
    /// [`crate::fanout::fanout_key_sign_content`]; with the key at hand,
    /// [`crate::fanout::sign_fanout_key`] does both.
    pub fanout_key_signature: Option<&'a [u8]>,
}

/// The fields of the hub layer besides the message and the membership
/// proof, as [`seal_envelope`] writes them (empty where absent).
#[derive(Debug, Default)]
pub struct HubLayerFields<'a> {
    /// The sealed key layer.
    pub key_layer: &'a [u8],
    /// F.
    pub fanout_key: Option<Secret>,
    /// The committer's signature over F.
    pub fanout_key_signature: &'a [u8],
}

/// What a sender keeps to open the response to an envelope.
#[derive(Debug)]
pub struct PendingResponse {
    suite: HpkeSuite,
    enc: Vec<u8>,
    secret: Secret,
    pool: Option<Vec<u8>>,
}

/// A sealed envelope and the state to open its response.
#[derive(Debug)]
pub struct SealedEnvelope {
    /// The envelope bytes to send.
    pub bytes: Vec<u8>,
    /// Keep this to open the response.
    pub pending: PendingResponse,
}

/// A sender holding a verified hub configuration and token pools.
#[derive(Debug)]
pub struct Sender {
    config: VerifiedHubConfiguration,
    /// The hub key and suite of every envelope to this hub (CFG-5);
    /// `None` when no hub key offers a suite this sender implements.
    key: Option<(KeyConfig, HpkeSuite)>,
    /// Token pools by group; `None` is the lobby pool, for messages that
    /// name no group the hub holds yet (Welcome, KeyPackage, registration).
    pools: HashMap<Option<Vec<u8>>, VecDeque<RoutingToken>>,
}

impl Sender {
    /// A sender for a hub whose configuration was verified through the
    /// group (see [`crate::config::HubConfigStore::accept`] and
    /// [`crate::config::SignedHubConfiguration::verify`], the only ways to
    /// get a [`VerifiedHubConfiguration`]).
    ///
    /// CFG-5: every envelope of this sender, whatever its room or message
    /// type, uses one hub key and one suite: the newest hub key of the
    /// configuration, and of the suites it offers the first in this
    /// crate's order of preference ([`HpkeSuite::ALL`]: the mandatory
    /// suite first).
    pub fn new(config: VerifiedHubConfiguration) -> Self {
        let key = Self::pick(&config, &HpkeSuite::ALL);
        Sender {
            config,
            key,
            pools: HashMap::new(),
        }
    }

    /// [`Self::new`] for a client that implements only `suites` (in its
    /// order of preference): the newest hub key offering one of them, and
    /// the first of them it offers (CFG-5). A client without AES hardware,
    /// say, passes `[HpkeSuite::X25519ChaCha20Poly1305]`. Fails when no
    /// hub key of the configuration offers one of them.
    pub fn with_suites(config: VerifiedHubConfiguration, suites: &[HpkeSuite]) -> Res<Self> {
        let key = Self::pick(&config, suites).ok_or(Error::Config(
            "no hub key offers a suite this client implements",
        ))?;
        Ok(Sender {
            config,
            key: Some(key),
            pools: HashMap::new(),
        })
    }

    fn pick(
        config: &VerifiedHubConfiguration,
        suites: &[HpkeSuite],
    ) -> Option<(KeyConfig, HpkeSuite)> {
        config
            .configuration()
            .keys
            .iter()
            .rev()
            .filter(|k| k.key_use() == Some(KeyUse::Hub))
            .find_map(|k| {
                let offered = k.suites();
                suites
                    .iter()
                    .find(|s| offered.contains(s))
                    .map(|s| (k.clone(), *s))
            })
    }

    /// The HPKE suite of every envelope of this sender (CFG-5), `None` if
    /// no hub key offers one it implements.
    pub fn suite(&self) -> Option<HpkeSuite> {
        self.key.as_ref().map(|(_, s)| *s)
    }

    /// The id of the hub key every envelope of this sender uses (CFG-5).
    pub fn key_id(&self) -> Option<u8> {
        self.key.as_ref().map(|(k, _)| k.key_id)
    }

    /// The verified configuration this sender uses.
    pub fn configuration(&self) -> &VerifiedHubConfiguration {
        &self.config
    }

    /// Adds routing tokens for a group (`None`: the lobby pool). The hub's
    /// response gives four. Unroutable tokens are not pooled.
    pub fn add_tokens(&mut self, group_id: Option<&[u8]>, tokens: &[RoutingToken]) {
        let pool = self.pools.entry(group_id.map(<[u8]>::to_vec)).or_default();
        pool.extend(
            tokens
                .iter()
                .filter(|t| t.codepoint() != crate::token::UNROUTABLE_CODEPOINT),
        );
    }

    /// Tokens left for a group (`None`: the lobby pool).
    pub fn pool_len(&self, group_id: Option<&[u8]>) -> usize {
        self.pools
            .get(&group_id.map(<[u8]>::to_vec))
            .map_or(0, VecDeque::len)
    }

    /// TOK-5: takes a token from the pool, or an unroutable one.
    fn take_token(&mut self, pool: &Option<Vec<u8>>) -> RoutingToken {
        self.pools
            .get_mut(pool)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| RoutingToken::unroutable(&mut rand::rng()))
    }

    /// Seals `message` (a serialized MLSMessage) into an envelope.
    pub fn seal(&mut self, message: &[u8], opts: SealOptions<'_>) -> Res<SealedEnvelope> {
        let info = MessageInfo::parse(message)?;
        let needs_key_layer = info.is_private_handshake();
        if opts.key_layer.is_some_and(|k| !k.is_empty()) != needs_key_layer {
            return Err(Error::Usage(
                "a key layer goes with exactly the PrivateMessage proposals and commits",
            ));
        }
        if opts.fanout_key.is_some() != info.carries_fanout_key() {
            return Err(Error::Usage(
                "F goes with exactly the commits and registrations",
            ));
        }
        if opts.fanout_key_signature.is_some_and(|s| !s.is_empty())
            != info.carries_fanout_key_signature()
        {
            return Err(Error::Usage(
                "a signature over F goes with exactly the PublicMessage commits",
            ));
        }
        let (key, suite) = self.key.clone().ok_or(Error::Config(
            "no hub key offers a suite this client implements",
        ))?;
        if info.is_member_sent() != opts.membership.is_some() {
            return Err(Error::Usage(
                "membership keys go with exactly the message types members send",
            ));
        }
        // A registration names a group the hub does not hold yet: it spends
        // a lobby token, and the response's tokens are for the new group.
        let pool = info.group_id.map(<[u8]>::to_vec);
        let spend_from = match info.wire_format {
            WireFormat::GroupInfo => None,
            _ => pool.clone(),
        };
        let header = OuterHeader {
            token: self.take_token(&spend_from),
            key_id: key.key_id,
            suite,
        };
        let membership = match opts.membership {
            Some(keys) => Membership::Keys(keys),
            None => {
                let mut filler = [0u8; MEMBERSHIP_PROOF_LEN];
                rand::rng().fill_bytes(&mut filler);
                Membership::Filler(filler)
            }
        };
        let mut ikm_e = zeroize::Zeroizing::new([0u8; hpke::NSK]);
        rand::rng().fill_bytes(&mut *ikm_e);
        let parts = seal_envelope(
            &*ikm_e,
            &key,
            header,
            message,
            membership,
            HubLayerFields {
                key_layer: opts.key_layer.unwrap_or_default(),
                fanout_key: opts.fanout_key,
                fanout_key_signature: opts.fanout_key_signature.unwrap_or_default(),
            },
        )?;
        Ok(SealedEnvelope {
            bytes: parts.bytes,
            pending: PendingResponse {
                suite,
                enc: parts.enc,
                secret: parts.response_secret,
                pool,
            },
        })
    }

    /// Opens the hub's response to an envelope and pools its tokens for the
    /// envelope's group. Anything that does not open is [`Error::Crypto`].
    pub fn open_response(&mut self, pending: &PendingResponse, bytes: &[u8]) -> Res<HubResponse> {
        let resp = response::open(pending.suite, &pending.secret, &pending.enc, bytes)?;
        self.add_tokens(pending.pool.as_deref(), &resp.tokens);
        Ok(resp)
    }
}

/// Where the membership proof comes from.
#[derive(Debug, Clone, Copy)]
pub enum Membership<'a> {
    /// A member-sent type: the MAC under the epoch's membership key.
    Keys(&'a EpochKeys),
    /// Another type: these 16 random bytes.
    Filler([u8; MEMBERSHIP_PROOF_LEN]),
}

/// Every intermediate of sealing one envelope (test vectors use them all).
#[derive(Debug)]
pub struct EnvelopeParts {
    /// The outer header.
    pub header: OuterHeader,
    /// The HPKE `info`.
    pub info: Vec<u8>,
    /// The HPKE `enc`.
    pub enc: Vec<u8>,
    /// The membership proof placed in the hub layer.
    pub membership_proof: [u8; MEMBERSHIP_PROOF_LEN],
    /// The envelope.
    pub bytes: Vec<u8>,
    /// The response secret exported from the HPKE context.
    pub response_secret: Secret,
}

/// Seals one envelope with the ephemeral randomness `ikm_e` ([`hpke::NSK`]
/// bytes: fresh random bytes for every envelope; the vector generator
/// fixes them). The padded hub-layer plaintext is written once, straight
/// into the envelope's buffer behind the header and `enc`, and encrypted
/// where it lies: one copy of the message, as for a bare HPKE seal.
pub fn seal_envelope(
    ikm_e: &[u8],
    key: &KeyConfig,
    header: OuterHeader,
    message: &[u8],
    membership: Membership<'_>,
    fields: HubLayerFields<'_>,
) -> Res<EnvelopeParts> {
    let info = header.hpke_info();
    let (enc, ctx) = hpke::setup_sender(header.suite, &key.public_key.0, &info, ikm_e)?;
    let header_bytes = header.to_bytes();
    let membership_proof = match membership {
        Membership::Keys(keys) => keys.membership_proof(&header_bytes, &enc),
        Membership::Filler(f) => f,
    };
    let content = HubLayerContent {
        message,
        membership_proof,
        key_layer: fields.key_layer,
        fanout_key: fields.fanout_key,
        fanout_key_signature: fields.fanout_key_signature,
    };
    let sealed_len = content.padded_len()? + hpke::TAG_LEN;
    let mut bytes = Vec::with_capacity(Envelope::encoded_len(enc.len(), sealed_len));
    Envelope::put_prefix(&header, &enc, sealed_len, &mut bytes)?;
    let start = bytes.len();
    content.put_padded(&mut bytes)?;
    // The plaintext holds F: it never leaves this function unencrypted.
    let tag = match ctx.seal_in_place(&header_bytes, &mut bytes[start..]) {
        Ok(tag) => tag,
        Err(e) => {
            bytes.zeroize();
            return Err(e);
        }
    };
    bytes.extend_from_slice(&tag);
    let response_secret = response::export_secret(&ctx, header.suite)?;
    Ok(EnvelopeParts {
        header,
        info,
        enc,
        membership_proof,
        bytes,
        response_secret,
    })
}

/// What the sender's MLS stack hands over to protect one PrivateMessage:
/// the hook of the spec's section "Hook for MLS Implementations" (the key
/// and nonce are known before `authenticated_data` is fixed).
pub struct MlsSendState<'a> {
    /// The group's MLS cipher suite.
    pub suite: MlsSuite,
    /// The GroupContext of the current epoch.
    pub group_context: &'a GroupContext,
    /// The epoch's sender-data secret.
    pub sender_data_secret: &'a Secret,
    /// The sender's leaf index.
    pub leaf_index: u32,
    /// The ratchet generation of this message.
    pub generation: u32,
    /// The ratchet key of (leaf, generation) for this content type.
    pub key: &'a Secret,
    /// The ratchet nonce of (leaf, generation), before the reuse guard.
    pub nonce: &'a Secret,
    /// The fresh reuse guard.
    pub reuse_guard: [u8; 4],
    /// The leaf's signature private key.
    pub signature_private_key: &'a Secret,
}

impl core::fmt::Debug for MlsSendState<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MlsSendState")
            .field("suite", &self.suite)
            .field("leaf_index", &self.leaf_index)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// The content to protect.
#[derive(Debug, Clone)]
pub struct PrivateContent<'a> {
    /// Application, proposal or commit.
    pub content_type: ContentType,
    /// The application data, or the encoded `Proposal` / `Commit`.
    pub content: &'a [u8],
    /// The commit's confirmation tag (from the MLS stack); `None` otherwise.
    pub confirmation_tag: Option<Vec<u8>>,
    /// Zero bytes of MLS padding.
    pub padding_len: usize,
    /// Other SafeAAD items of the application.
    pub other_safe_aad: &'a [SafeAadItem<'a>],
    /// Leave `c` out (KCM-1): allowed for an application message only,
    /// as an RFC 9420 stack without the hook sends it. Its
    /// `authenticated_data` is then empty, or the SafeAAD of the other
    /// items.
    pub omit_commitment: bool,
}

/// A protected PrivateMessage and, for a proposal or commit, the content of
/// its key layer.
#[derive(Debug)]
pub struct ProtectedMessage {
    /// The serialized `MLSMessage`.
    pub message: Vec<u8>,
    /// The key layer's content (proposals and commits only).
    pub key_layer: Option<KeyLayerContent>,
}

/// Protects a PrivateMessage for a group that uses this protocol: computes
/// `c` from the leaf, key and final nonce, puts it in the SafeAAD of
/// `authenticated_data`, signs the FramedContentTBS, encrypts (RFC 9420),
/// and for a proposal or commit prepares the key layer; a commit also signs
/// `fanout_key` (F of the epoch the commit opens).
pub fn protect_private_message(
    state: &MlsSendState<'_>,
    content: &PrivateContent<'_>,
    fanout_key: Option<&Secret>,
) -> Res<ProtectedMessage> {
    let gc = state.group_context;
    let final_nonce = apply_reuse_guard(state.nonce, state.reuse_guard)?;
    let c = CommitmentInput {
        suite: state.suite,
        group_id: &gc.group_id,
        epoch: gc.epoch,
        leaf_index: state.leaf_index,
        key: state.key.expose(),
        final_nonce: final_nonce.expose(),
    }
    .commitment()?;
    let authenticated_data = match (content.omit_commitment, content.content_type) {
        (false, _) => build_authenticated_data(&c, content.other_safe_aad)?,
        (true, ContentType::Application) if content.other_safe_aad.is_empty() => Vec::new(),
        (true, ContentType::Application) => encode_safe_aad(content.other_safe_aad)?,
        (true, _) => {
            return Err(Error::Usage(
                "a proposal or commit always carries the key commitment",
            ))
        }
    };
    protect_with_authenticated_data(state, content, fanout_key, authenticated_data)
}

/// [`protect_private_message`] with `authenticated_data` as given, whatever
/// it holds (the tests' and vectors' malformed messages).
pub(crate) fn protect_with_authenticated_data(
    state: &MlsSendState<'_>,
    content: &PrivateContent<'_>,
    fanout_key: Option<&Secret>,
    authenticated_data: Vec<u8>,
) -> Res<ProtectedMessage> {
    let gc = state.group_context;
    let final_nonce = apply_reuse_guard(state.nonce, state.reuse_guard)?;
    let framed = FramedContent {
        group_id: gc.group_id.clone(),
        epoch: gc.epoch,
        sender: MlsSender::Member(state.leaf_index),
        authenticated_data: authenticated_data.clone(),
        content_type: content.content_type,
        content: content.content.to_vec(),
    };
    let signature = sign_framed_content(
        state.suite,
        state.signature_private_key.expose(),
        WireFormat::PrivateMessage,
        &framed,
        Some(gc),
    )?;
    let pmc = PrivateMessageContent {
        content_type: content.content_type,
        content: content.content.to_vec(),
        auth: FramedContentAuthData {
            signature,
            confirmation_tag: content.confirmation_tag.clone(),
        },
        padding_len: content.padding_len,
    };
    let message = encrypt_private_message(
        state.suite,
        state.sender_data_secret,
        state.key,
        state.nonce,
        &gc.group_id,
        gc.epoch,
        &authenticated_data,
        &SenderData {
            leaf_index: state.leaf_index,
            generation: state.generation,
            reuse_guard: state.reuse_guard,
        },
        &pmc,
    )?;
    let key_layer = match content.content_type {
        ContentType::Application => None,
        ContentType::Proposal | ContentType::Commit => {
            let f_signature = match (content.content_type, fanout_key) {
                (ContentType::Commit, Some(f)) => sign_fanout_key(
                    state.suite,
                    state.signature_private_key.expose(),
                    &gc.group_id,
                    gc.epoch
                        .checked_add(1)
                        .ok_or(Error::Usage("epoch overflow"))?,
                    f,
                )?,
                (ContentType::Commit, None) => return Err(Error::Usage("a commit needs F")),
                _ => Vec::new(),
            };
            Some(KeyLayerContent {
                leaf_index: state.leaf_index,
                key: state.key.clone(),
                nonce: final_nonce,
                f_signature,
            })
        }
    };
    Ok(ProtectedMessage { message, key_layer })
}
