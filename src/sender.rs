//! The sender (spec sections "Outer Layer", "Hub Layer", "Hub Response",
//! TOK-5): seals an MLS message into an envelope for the hub, keeps a pool
//! of routing tokens per group, and opens the hub's response.

use std::collections::{HashMap, VecDeque};

use hpke_rs::HpkePublicKey;
use rand::Rng;

use crate::config::{HubConfiguration, KeyConfig, KeyUse};
use crate::error::{Error, Res};
use crate::fanout::EpochKeys;
use crate::mls::message::{ContentType, MessageInfo, WireFormat};
use crate::response::{self, HubResponse};
use crate::secret::Secret;
use crate::suite::HpkeSuite;
use crate::token::RoutingToken;
use crate::wire::{Envelope, HubLayerContent, OuterHeader, MEMBERSHIP_PROOF_LEN};

/// Everything the hub layer carries besides the message.
#[derive(Debug, Default)]
pub struct SealOptions<'a> {
    /// HPKE suite; default: the first suite the hub key offers.
    pub suite: Option<HpkeSuite>,
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
    config: HubConfiguration,
    /// Token pools by group; `None` is the lobby pool, for messages that
    /// name no group the hub holds yet (Welcome, KeyPackage, registration).
    pools: HashMap<Option<Vec<u8>>, VecDeque<RoutingToken>>,
}

impl Sender {
    /// A sender for a hub whose configuration was verified through the
    /// group (see [`crate::config::HubConfigStore`]).
    pub fn new(config: HubConfiguration) -> Self {
        Sender {
            config,
            pools: HashMap::new(),
        }
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
        let needs_f = info.content_type == Some(ContentType::Commit)
            || info.wire_format == WireFormat::GroupInfo;
        if opts.fanout_key.is_some() != needs_f {
            return Err(Error::Usage(
                "F goes with exactly the commits and registrations",
            ));
        }
        let (key, suite) = self.choose_key(opts.suite)?;
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
        let mut hpke = suite.hpke()?;
        let pk = HpkePublicKey::new(key.public_key.0.clone());
        let (enc, mut ctx) = hpke
            .setup_sender(&pk, &header.hpke_info(), None, None, None)
            .map_err(|_| Error::Crypto)?;
        let header_bytes = header.to_bytes();
        let membership_proof = match opts.membership {
            Some(keys) => keys.membership_proof(&header_bytes, &enc),
            None => {
                let mut filler = [0u8; MEMBERSHIP_PROOF_LEN];
                rand::rng().fill_bytes(&mut filler);
                filler
            }
        };
        let content = HubLayerContent {
            message,
            membership_proof,
            key_layer: opts.key_layer.unwrap_or_default(),
            fanout_key: opts.fanout_key,
        };
        let plaintext = crate::wire::PlainBuf(content.encode_padded()?);
        let sealed = ctx
            .seal(&header_bytes, &plaintext.0)
            .map_err(|_| Error::Crypto)?;
        let secret = response::export_secret(&ctx, suite)?;
        let bytes = Envelope::encode(&header, &enc, &sealed)?;
        Ok(SealedEnvelope {
            bytes,
            pending: PendingResponse {
                suite,
                enc,
                secret,
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

    /// The hub key and suite to use: the newest hub key offering the
    /// requested suite, or the newest key's first suite.
    fn choose_key(&self, suite: Option<HpkeSuite>) -> Res<(KeyConfig, HpkeSuite)> {
        let mut hub_keys = self
            .config
            .keys
            .iter()
            .rev()
            .filter(|k| k.key_use() == Some(KeyUse::Hub));
        match suite {
            Some(s) => hub_keys
                .find(|k| k.offers(s))
                .map(|k| (k.clone(), s))
                .ok_or(Error::Usage("no hub key offers this suite")),
            None => hub_keys
                .find_map(|k| k.suites().first().map(|s| (k.clone(), *s)))
                .ok_or(Error::Config("no supported hub key")),
        }
    }
}
