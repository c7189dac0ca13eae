//! A room hosted by the demo hub, with two members, built from the
//! official RFC 9420 vectors: the group id, transcript hashes,
//! init and commit secrets of `key-schedule.json`, the proposal and commit
//! contents and the sender's signature key pair of
//! `message-protection.json`. The GroupContext carries this protocol's
//! `app_data_dictionary` (the hub's configuration-signing key and the
//! SafeAAD requirement of the key commitment), and the key schedule of
//! RFC 9420 runs over it, so every secret here is derived, not copied.
//!
//! The key-schedule vectors of suites 1 to 3 share one group id, so each
//! room appends its suite (two bytes) to it.
//!
//! The GroupContext's `tree_hash` is the real tree hash (RFC 9420 7.8) of
//! the two-leaf ratchet tree that [`Room::group_info`] carries, in both
//! epochs (the commit does not change the leaves).
//!
//! What is not real: the members do not run TreeKEM. The commit's content
//! is the vectors' commit, and the next epoch's commit secret and
//! transcript hash are taken from the key-schedule vector rather than
//! computed from it.

use rand::Rng;
use serde_json::Value;

use crate::codec::Opaque;
use crate::commitment::{safe_aad_component_data, SAFE_AAD_COMPONENT};
use crate::config::{
    app_data_dictionary_extension, AppDataDictionary, ComponentData, HubSigningKey,
    HUB_SIGNING_KEY_COMPONENT,
};
use crate::error::{Error, Res};
use crate::fanout::{fanout_key, EpochKeys};
use crate::member::EpochState;
use crate::mls::framing::{
    framed_content_tbs, FramedContent, FramedContentAuthData, GroupContext, PublicMessage,
    Sender as MlsSender,
};
use crate::mls::group_info::{build_ratchet_tree, tree_hash, GroupInfoBuilder};
use crate::mls::key_schedule::EpochSecrets;
use crate::mls::message::{ContentType, WireFormat};
use crate::mls::secret_tree::{leaf_key_nonce, RatchetKind};
use crate::mls::suite::MlsSuite;
use crate::profile::{HandshakeProfile, HANDSHAKE_PROFILE_COMPONENT};
use crate::secret::Secret;
use crate::sender::{protect_private_message, MlsSendState, PrivateContent, ProtectedMessage};
use crate::state::GroupRecord;
use crate::test_utils::{from_hex, message_protection_vectors};
use tls_codec::Serialize as _;

const KEY_SCHEDULE: &str = include_str!("../../test-vectors/mls/key-schedule.json");

/// Number of leaves of the demo room's tree.
pub const N_LEAVES: u32 = 2;
/// The sending member's leaf (the vectors' sender).
pub const SENDER_LEAF: u32 = 1;

/// One member's leaf.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// Leaf index.
    pub index: u32,
    /// Signature private key.
    pub signature_private: Secret,
    /// Signature public key.
    pub signature_public: Vec<u8>,
}

/// One epoch of the room.
#[derive(Debug, Clone)]
pub struct RoomEpoch {
    /// The GroupContext.
    pub context: GroupContext,
    /// The key schedule's secrets.
    pub secrets: EpochSecrets,
    /// F of the epoch (MLS-Exporter).
    pub f: Secret,
}

/// What a test message's `authenticated_data` holds.
enum Aad {
    /// The SafeAAD with `c` (the protocol's own sender).
    Commitment,
    /// Nothing: no `c` (KCM-1, application messages only).
    Omit,
    /// These bytes.
    Raw(Vec<u8>),
    /// The SafeAAD with `c`, then one byte (KCM-2).
    Trailing,
}

/// The demo room.
#[derive(Debug)]
pub struct Room {
    /// MLS cipher suite.
    pub suite: MlsSuite,
    /// The group id.
    pub group_id: Vec<u8>,
    /// Leaf 0 and leaf 1.
    pub leaves: Vec<Leaf>,
    /// Epochs 0 and 1.
    pub epochs: Vec<RoomEpoch>,
    /// A proposal's content (the vectors' `proposal`).
    pub proposal: Vec<u8>,
    /// A commit's content (the vectors' `commit`).
    pub commit: Vec<u8>,
    /// The room's handshake profile (in its GroupContext).
    pub profile: HandshakeProfile,
    generations: Vec<(u64, RatchetKind, u32, u32)>,
}

fn hex(v: &Value, key: &str) -> Res<Vec<u8>> {
    from_hex(
        v.get(key)
            .and_then(Value::as_str)
            .ok_or(Error::Malformed("demo vector field"))?,
    )
}

/// The GroupContext extensions of a room on the demo hub: one
/// `app_data_dictionary` holding the hub's configuration-signing key, the
/// room's handshake profile and, with private handshakes (whose sender
/// puts `c` in every PrivateMessage), the SafeAAD requirement of the key
/// commitment.
pub fn room_extensions(hub_signing_key: &HubSigningKey, profile: HandshakeProfile) -> Res<Vec<u8>> {
    let mut component_data = Vec::new();
    if profile == HandshakeProfile::Private {
        component_data.push(ComponentData {
            component_id: SAFE_AAD_COMPONENT,
            data: Opaque(safe_aad_component_data(&[])?),
        });
    }
    component_data.push(ComponentData {
        component_id: HUB_SIGNING_KEY_COMPONENT,
        data: Opaque(hub_signing_key.tls_serialize_detached()?),
    });
    component_data.push(ComponentData {
        component_id: HANDSHAKE_PROFILE_COMPONENT,
        data: Opaque(profile.component_data()),
    });
    app_data_dictionary_extension(&AppDataDictionary { component_data })
}

/// The `(signature private key, identity)` of each leaf, as
/// [`GroupInfoBuilder`] and [`build_ratchet_tree`] take them.
fn builder_leaves(leaves: &[Leaf]) -> Vec<(Vec<u8>, Vec<u8>)> {
    leaves
        .iter()
        .map(|l| {
            (
                l.signature_private.expose().to_vec(),
                format!("demo member {}", l.index).into_bytes(),
            )
        })
        .collect()
}

impl Room {
    /// The room for MLS suite `code` (1, 2 or 3), with the hub's signing key
    /// in its GroupContext.
    pub fn new(code: u16, hub_signing_key: &HubSigningKey) -> Res<Self> {
        Self::with_group_id(code, hub_signing_key, None)
    }

    /// [`Room::new`] with another group id (a second room of the same
    /// suite, for example one that registers itself).
    pub fn with_group_id(
        code: u16,
        hub_signing_key: &HubSigningKey,
        group_id: Option<Vec<u8>>,
    ) -> Res<Self> {
        Self::with_profile(code, hub_signing_key, group_id, HandshakeProfile::Private)
    }

    /// [`Room::with_group_id`] with the given handshake profile (the rooms
    /// above have private handshakes).
    pub fn with_profile(
        code: u16,
        hub_signing_key: &HubSigningKey,
        group_id: Option<Vec<u8>>,
        profile: HandshakeProfile,
    ) -> Res<Self> {
        let suite = MlsSuite::from_code(code).ok_or(Error::Unsupported("mls suite"))?;
        let ks: Vec<Value> =
            serde_json::from_str(KEY_SCHEDULE).map_err(|_| Error::Malformed("embedded vectors"))?;
        let by_suite =
            |v: &Value| v.get("cipher_suite").and_then(Value::as_u64) == Some(u64::from(code));
        let ks = ks
            .iter()
            .find(|v| by_suite(v))
            .ok_or(Error::Malformed("embedded vectors"))?;
        let mp = message_protection_vectors()?;
        let mp = mp
            .iter()
            .find(|v| by_suite(v))
            .ok_or(Error::Malformed("embedded vectors"))?;
        // The key-schedule vectors of suites 1 to 3 share one group id; the
        // suite is appended so that the demo's three rooms differ.
        let group_id = match group_id {
            Some(g) => g,
            None => {
                let mut g = hex(ks, "group_id")?;
                g.extend_from_slice(&code.to_be_bytes());
                g
            }
        };
        let extensions = room_extensions(hub_signing_key, profile)?;
        let vector_epochs = ks
            .get("epochs")
            .and_then(Value::as_array)
            .ok_or(Error::Malformed("embedded vectors"))?;
        let sender_private = Secret::new(hex(mp, "signature_priv")?);
        let other_private = Secret::new(
            crate::test_utils::sha256(format!("mimi-onion demo leaf 0 suite {code}").as_bytes())
                .to_vec(),
        );
        let leaf = |index, sk: Secret| -> Res<Leaf> {
            Ok(Leaf {
                index,
                signature_public: suite.signature_public_key(sk.expose())?,
                signature_private: sk,
            })
        };
        let leaves = vec![leaf(0, other_private)?, leaf(SENDER_LEAF, sender_private)?];
        // The tree `group_info` carries, and its hash for the GroupContexts.
        let tree_hash = tree_hash(suite, &build_ratchet_tree(suite, &builder_leaves(&leaves))?)?;
        let mut init = Secret::new(hex(ks, "initial_init_secret")?);
        let mut epochs = Vec::new();
        for (n, ve) in vector_epochs.iter().take(2).enumerate() {
            let mut context = GroupContext::new(
                suite,
                &group_id,
                n as u64,
                &tree_hash,
                &hex(ve, "confirmed_transcript_hash")?,
            );
            context.extensions = extensions.clone();
            let secrets = EpochSecrets::derive(
                suite,
                &init,
                &Secret::new(hex(ve, "commit_secret")?),
                &Secret::new(hex(ve, "psk_secret")?),
                &context.encode()?,
            )?;
            init = secrets.init_secret.clone();
            let f = fanout_key(suite, &secrets.exporter_secret)?;
            epochs.push(RoomEpoch {
                context,
                secrets,
                f,
            });
        }
        Ok(Room {
            suite,
            group_id,
            leaves,
            epochs,
            proposal: hex(mp, "proposal")?,
            commit: hex(mp, "commit")?,
            profile,
            generations: Vec::new(),
        })
    }

    /// The epoch record, or an error past the last epoch.
    pub fn epoch(&self, epoch: u64) -> Res<&RoomEpoch> {
        usize::try_from(epoch)
            .ok()
            .and_then(|e| self.epochs.get(e))
            .ok_or(Error::Usage("the demo room has epochs 0 and 1"))
    }

    /// What the hub's state holds for the room at `epoch`.
    pub fn record(&self, epoch: u64) -> Res<GroupRecord> {
        let e = self.epoch(epoch)?;
        let mut record = GroupRecord::new(0, epoch, self.suite.code());
        record.profile = self.profile;
        record.group_context = e.context.encode()?;
        record.pin_fanout_key(epoch, e.f.clone());
        Ok(record)
    }

    /// What a member holds for `epoch`.
    pub fn member_state(&self, epoch: u64) -> Res<EpochState> {
        let e = self.epoch(epoch)?;
        Ok(EpochState {
            group_context: e.context.clone(),
            encryption_secret: e.secrets.encryption_secret.clone(),
            sender_data_secret: e.secrets.sender_data_secret.clone(),
            membership_key: e.secrets.membership_key.clone(),
            n_leaves: N_LEAVES,
            fanout: EpochKeys::derive(&e.f, epoch)?,
            leaf_keys: self
                .leaves
                .iter()
                .map(|l| (l.index, l.signature_public.clone()))
                .collect(),
        })
    }

    /// A registration for the room at `epoch` (HUB-6): a GroupInfo signed
    /// by the sender's leaf, with the ratchet tree of both leaves (whose
    /// tree hash is the GroupContext's) and the confirmation tag of the
    /// epoch.
    pub fn group_info(&self, epoch: u64) -> Res<Vec<u8>> {
        let e = self.epoch(epoch)?;
        let leaves = builder_leaves(&self.leaves);
        GroupInfoBuilder {
            suite: self.suite,
            group_context: &e.context,
            leaves: &leaves,
            confirmation_tag: self.suite.mac(
                &e.secrets.confirmation_key,
                &e.context.confirmed_transcript_hash,
            )?,
            signer: SENDER_LEAF,
        }
        .build()
    }

    /// The membership keys of `epoch`.
    pub fn membership_keys(&self, epoch: u64) -> Res<EpochKeys> {
        EpochKeys::derive(&self.epoch(epoch)?.f, epoch)
    }

    fn next_generation(&mut self, epoch: u64, kind: RatchetKind, leaf: u32) -> u32 {
        match self
            .generations
            .iter_mut()
            .find(|(e, k, l, _)| *e == epoch && *k == kind && *l == leaf)
        {
            Some((_, _, _, g)) => {
                *g += 1;
                *g
            }
            None => {
                self.generations.push((epoch, kind, leaf, 0));
                0
            }
        }
    }

    /// The sender (leaf 1) frames a PublicMessage proposal (the vectors'
    /// proposal) or commit (the vectors' commit, with the confirmation tag
    /// of the epoch it opens) of `epoch`, signed and with its membership
    /// tag, with `aad` as `authenticated_data`.
    pub fn protect_public(
        &mut self,
        epoch: u64,
        content_type: ContentType,
        aad: &[u8],
    ) -> Res<Vec<u8>> {
        self.protect_public_as(SENDER_LEAF, epoch, content_type, aad)
    }

    /// [`Room::protect_public`] sent by leaf `leaf` (0 or 1).
    pub fn protect_public_as(
        &mut self,
        leaf: u32,
        epoch: u64,
        content_type: ContentType,
        aad: &[u8],
    ) -> Res<Vec<u8>> {
        if leaf >= N_LEAVES {
            return Err(Error::Usage("the demo room has leaves 0 and 1"));
        }
        let e = self.epoch(epoch)?;
        let suite = self.suite;
        let (body, confirmation_tag) = match content_type {
            ContentType::Commit => {
                let next = self.epoch(epoch + 1)?;
                let tag = suite.mac(
                    &next.secrets.confirmation_key,
                    &next.context.confirmed_transcript_hash,
                )?;
                (self.commit.clone(), Some(tag))
            }
            ContentType::Proposal => (self.proposal.clone(), None),
            ContentType::Application => {
                return Err(Error::Usage(
                    "a PublicMessage is never an application message",
                ))
            }
        };
        let content = FramedContent {
            group_id: self.group_id.clone(),
            epoch,
            sender: MlsSender::Member(leaf),
            authenticated_data: aad.to_vec(),
            content_type,
            content: body,
        };
        let tbs = framed_content_tbs(WireFormat::PublicMessage, &content, Some(&e.context))?;
        let signer = &self.leaves[leaf as usize];
        let signature =
            suite.sign_with_label(signer.signature_private.expose(), "FramedContentTBS", &tbs)?;
        let mut pm = PublicMessage {
            content,
            auth: FramedContentAuthData {
                signature,
                confirmation_tag,
            },
            membership_tag: None,
        };
        pm.membership_tag = Some(suite.mac(
            &e.secrets.membership_key,
            &pm.membership_tag_input(&e.context)?,
        )?);
        pm.encode()
    }

    /// The sending leaf's signature over F of epoch `epoch + 1` (PRF-4), as
    /// a PublicMessage commit of `epoch` carries it in its hub layer.
    pub fn fanout_key_signature(&self, epoch: u64) -> Res<Vec<u8>> {
        self.sign_fanout_key(SENDER_LEAF, epoch + 1, &self.epoch(epoch + 1)?.f)
    }

    /// Leaf `leaf`'s signature over `f` as the F of `new_epoch` (PRF-4).
    pub fn sign_fanout_key(&self, leaf: u32, new_epoch: u64, f: &Secret) -> Res<Vec<u8>> {
        let signer = self
            .leaves
            .get(leaf as usize)
            .ok_or(Error::Usage("the demo room has leaves 0 and 1"))?;
        crate::fanout::sign_fanout_key(
            self.suite,
            signer.signature_private.expose(),
            &self.group_id,
            new_epoch,
            f,
        )
    }

    /// The sender (leaf 1) protects a message of `epoch`: application data,
    /// the vectors' proposal, or the vectors' commit (which opens the next
    /// epoch, with its confirmation tag and F signature).
    pub fn protect(
        &mut self,
        epoch: u64,
        content_type: ContentType,
        app_data: &[u8],
    ) -> Res<ProtectedMessage> {
        let mut reuse_guard = [0u8; 4];
        rand::rng().fill_bytes(&mut reuse_guard);
        self.protect_with(epoch, content_type, app_data, reuse_guard)
    }

    /// [`Room::protect`] with an explicit reuse guard (test vectors).
    pub fn protect_with(
        &mut self,
        epoch: u64,
        content_type: ContentType,
        app_data: &[u8],
        reuse_guard: [u8; 4],
    ) -> Res<ProtectedMessage> {
        self.protect_as(SENDER_LEAF, epoch, content_type, app_data, reuse_guard)
    }

    /// An application message of `epoch` without `c` (KCM-1), as an RFC
    /// 9420 stack without the hook sends it: empty `authenticated_data`.
    pub fn protect_unmodified(&mut self, epoch: u64, app_data: &[u8]) -> Res<ProtectedMessage> {
        self.protect_inner(
            SENDER_LEAF,
            epoch,
            ContentType::Application,
            app_data,
            [5; 4],
            Aad::Omit,
        )
    }

    /// A message of `epoch` whose `authenticated_data` is `aad`, whatever
    /// it holds (malformed SafeAAD, no `c`, bytes after the structure).
    pub fn protect_raw_aad(
        &mut self,
        epoch: u64,
        content_type: ContentType,
        aad: &[u8],
    ) -> Res<ProtectedMessage> {
        self.protect_inner(
            SENDER_LEAF,
            epoch,
            content_type,
            b"raw",
            [6; 4],
            Aad::Raw(aad.to_vec()),
        )
    }

    /// An application message of `epoch` whose `authenticated_data` is the
    /// right `c` followed by one byte (refused by KCM-2).
    pub fn protect_trailing_byte(&mut self, epoch: u64) -> Res<ProtectedMessage> {
        self.protect_inner(
            SENDER_LEAF,
            epoch,
            ContentType::Application,
            b"trailing",
            [7; 4],
            Aad::Trailing,
        )
    }

    /// [`Room::protect_with`] sent by leaf `leaf` (0 or 1) instead of the
    /// sending leaf, from that leaf's own ratchet.
    pub fn protect_as(
        &mut self,
        leaf: u32,
        epoch: u64,
        content_type: ContentType,
        app_data: &[u8],
        reuse_guard: [u8; 4],
    ) -> Res<ProtectedMessage> {
        self.protect_inner(
            leaf,
            epoch,
            content_type,
            app_data,
            reuse_guard,
            Aad::Commitment,
        )
    }

    fn protect_inner(
        &mut self,
        leaf: u32,
        epoch: u64,
        content_type: ContentType,
        app_data: &[u8],
        reuse_guard: [u8; 4],
        aad: Aad,
    ) -> Res<ProtectedMessage> {
        if leaf >= N_LEAVES {
            return Err(Error::Usage("the demo room has leaves 0 and 1"));
        }
        let kind = RatchetKind::for_content_type(content_type);
        let generation = self.next_generation(epoch, kind, leaf);
        let e = self.epoch(epoch)?;
        let kn = leaf_key_nonce(
            self.suite,
            &e.secrets.encryption_secret,
            N_LEAVES,
            leaf,
            kind,
            generation,
        )?;

        let (content, confirmation_tag, next_f) = match content_type {
            ContentType::Application => (app_data.to_vec(), None, None),
            ContentType::Proposal => (self.proposal.clone(), None, None),
            ContentType::Commit => {
                let next = self.epoch(epoch + 1)?;
                let tag = self.suite.mac(
                    &next.secrets.confirmation_key,
                    &next.context.confirmed_transcript_hash,
                )?;
                (self.commit.clone(), Some(tag), Some(next.f.clone()))
            }
        };
        let signer = &self.leaves[leaf as usize];
        let state = MlsSendState {
            suite: self.suite,
            group_context: &e.context,
            sender_data_secret: &e.secrets.sender_data_secret,
            leaf_index: leaf,
            generation,
            key: &kn.key,
            nonce: &kn.nonce,
            reuse_guard,
            signature_private_key: &signer.signature_private,
        };
        let content = PrivateContent {
            content_type,
            content: &content,
            confirmation_tag,
            padding_len: 0,
            other_safe_aad: &[],
            omit_commitment: matches!(aad, Aad::Omit),
        };
        let raw = match aad {
            Aad::Commitment | Aad::Omit => {
                return protect_private_message(&state, &content, next_f.as_ref())
            }
            Aad::Raw(raw) => raw,
            Aad::Trailing => {
                let final_nonce = crate::mls::framing::apply_reuse_guard(&kn.nonce, reuse_guard)?;
                let c = crate::commitment::CommitmentInput {
                    suite: self.suite,
                    group_id: &self.group_id,
                    epoch,
                    leaf_index: leaf,
                    key: kn.key.expose(),
                    final_nonce: final_nonce.expose(),
                }
                .commitment()?;
                let mut ad = crate::commitment::build_authenticated_data(&c, &[])?;
                ad.push(0);
                ad
            }
        };
        crate::sender::protect_with_authenticated_data(&state, &content, next_f.as_ref(), raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mls::group_info::GroupInfoIn;

    fn hub_key() -> HubSigningKey {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        HubSigningKey::ed25519(&sk.verifying_key())
    }

    #[test]
    fn group_info_tree_matches_the_group_context() {
        for code in 1..=3 {
            let room = Room::new(code, &hub_key()).unwrap();
            let th = &room.epochs[0].context.tree_hash;
            assert_eq!(th.len(), room.suite.nh());
            assert_eq!(&room.epochs[1].context.tree_hash, th);
            for epoch in [0, 1] {
                let gi = GroupInfoIn::parse(&room.group_info(epoch).unwrap()).unwrap();
                gi.verify(room.suite).unwrap();
                assert!(
                    gi.tree_hash_matches().unwrap(),
                    "suite {code} epoch {epoch}"
                );
                assert_eq!(gi.group_context, room.epochs[epoch as usize].context);
                assert_eq!(
                    tree_hash(room.suite, &gi.ratchet_tree().unwrap()).unwrap(),
                    *th
                );
            }
        }
    }
}
