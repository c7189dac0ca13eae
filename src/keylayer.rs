//! The key layer's framing (spec section "Key Layer"): HPKE base mode to
//! the hub's policy key, carrying the sender leaf, the AEAD key and final
//! nonce of one handshake message and, for a commit, the leaf's signature
//! over F.
//!
//! ```text
//! struct {
//!   uint8 key_id; uint16 kem_id; uint16 kdf_id; uint16 aead_id;
//!   opaque enc[Nenc];
//!   opaque ciphertext[256 + 16];          /* rest of the key layer */
//! } KeyLayer;
//!
//! struct {
//!   uint32 leaf_index;
//!   opaque key<V>;
//!   opaque nonce<V>;
//!   opaque f_signature<V>;               /* empty unless a commit */
//! } KeyLayerContent;                     /* zero-padded to 256 bytes */
//!
//! struct {
//!   uint8 version; uint16 mls_suite; uint8 content_type;
//!   opaque group_id<V>; uint64 epoch; opaque message_hash<V>;
//! } KeyLayerAad;                         /* message_hash = SHA-256(message) */
//! ```
//!
//! `info = "mimi-onion v1 key layer" || 0x00 || version || key_id || kem_id
//! || kdf_id || aead_id`. The padded content has a fixed size so that the
//! MLS suite (key, nonce and signature sizes) does not show. What the
//! policy engine checks after opening (the key commitment, the MLS
//! signature, the F signature) builds on this framing.

use hpke_rs::{Hpke, HpkePublicKey};
use hpke_rs_crypto::HpkeCrypto;
use sha2::{Digest, Sha256};

use crate::codec::{check_zero_padding, put_vec, Reader};
use crate::config::KeyConfig;
use crate::error::{Error, Res};
use crate::keys::HubKeyPair;
use crate::labels;
use crate::mls::message::{MessageInfo, WireFormat};
use crate::secret::Secret;
use crate::suite::{kem_n_enc, HpkeSuite};
use crate::wire::{PlainBuf, KEY_LAYER_HEADER_LEN, KEY_LAYER_PLAINTEXT_LEN, VERSION};

/// What the key layer discloses to the policy engine.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyLayerContent {
    /// The sender's leaf index (not node index).
    pub leaf_index: u32,
    /// The AEAD key of the handshake message.
    pub key: Secret,
    /// The final AEAD nonce (ratchet nonce XOR reuse_guard).
    pub nonce: Secret,
    /// For a commit: SignWithLabel over the new epoch's F; else empty.
    pub f_signature: Vec<u8>,
}

impl KeyLayerContent {
    /// The 256-byte padded plaintext (test vectors).
    pub fn padded_bytes(&self) -> Res<Vec<u8>> {
        Ok(self.encode_padded()?.0.clone())
    }

    fn encode_padded(&self) -> Res<PlainBuf> {
        let mut out = PlainBuf::secret(Vec::with_capacity(KEY_LAYER_PLAINTEXT_LEN));
        out.0.extend_from_slice(&self.leaf_index.to_be_bytes());
        put_vec(&mut out.0, self.key.expose())?;
        put_vec(&mut out.0, self.nonce.expose())?;
        put_vec(&mut out.0, &self.f_signature)?;
        if out.0.len() > KEY_LAYER_PLAINTEXT_LEN {
            return Err(Error::TooLarge("key layer content"));
        }
        out.0.resize(KEY_LAYER_PLAINTEXT_LEN, 0);
        Ok(out)
    }

    fn parse_padded(pt: &[u8]) -> Res<Self> {
        if pt.len() != KEY_LAYER_PLAINTEXT_LEN {
            return Err(Error::Malformed("key layer: length"));
        }
        let mut r = Reader::new(pt);
        let leaf_index = r.u32("key layer: leaf")?;
        let key = Secret::from_slice(r.vec("key layer: key")?);
        let nonce = Secret::from_slice(r.vec("key layer: nonce")?);
        let f_signature = r.vec("key layer: f signature")?.to_vec();
        check_zero_padding(r.rest(), "key layer: non-zero padding")?;
        Ok(KeyLayerContent {
            leaf_index,
            key,
            nonce,
            f_signature,
        })
    }
}

/// The HPKE `aad` of a key layer: binds it to one message of one group,
/// epoch and MLS suite.
pub fn key_layer_aad(mls_suite: u16, message: &[u8]) -> Res<Vec<u8>> {
    let info = MessageInfo::parse(message)?;
    let (Some(group_id), Some(epoch), Some(ct), WireFormat::PrivateMessage) = (
        info.group_id,
        info.epoch,
        info.content_type,
        info.wire_format,
    ) else {
        return Err(Error::Usage("a key layer is for a PrivateMessage"));
    };
    let mut aad = Vec::with_capacity(group_id.len() + 64);
    aad.push(VERSION);
    aad.extend_from_slice(&mls_suite.to_be_bytes());
    aad.push(ct.code());
    put_vec(&mut aad, group_id)?;
    aad.extend_from_slice(&epoch.to_be_bytes());
    put_vec(&mut aad, &Sha256::digest(message))?;
    Ok(aad)
}

/// The HPKE `info` of a key layer.
pub fn key_layer_info(key_id: u8, suite: HpkeSuite) -> Vec<u8> {
    let (kem, kdf, aead) = suite.ids();
    let mut info = labels::KEY_LAYER.to_vec();
    info.push(0);
    info.push(VERSION);
    info.push(key_id);
    for id in [kem, kdf, aead] {
        info.extend_from_slice(&id.to_be_bytes());
    }
    info
}

/// Seals a key layer for `message` to the policy key `key`.
pub fn seal(
    key: &KeyConfig,
    suite: HpkeSuite,
    mls_suite: u16,
    message: &[u8],
    content: &KeyLayerContent,
) -> Res<Vec<u8>> {
    if !key.offers(suite) {
        return Err(Error::Usage("suite not offered by the policy key"));
    }
    seal_with(&mut suite.hpke()?, key, suite, mls_suite, message, content)
}

/// [`seal`] with a given HPKE instance (the vector generator replays the
/// ephemeral key through it).
pub fn seal_with<C: HpkeCrypto>(
    hpke: &mut Hpke<C>,
    key: &KeyConfig,
    suite: HpkeSuite,
    mls_suite: u16,
    message: &[u8],
    content: &KeyLayerContent,
) -> Res<Vec<u8>> {
    let pt = content.encode_padded()?;
    seal_plaintext_with(hpke, key, suite, mls_suite, message, &pt.0)
}

/// [`seal_with`] of a plaintext given as bytes (the padded content; any
/// bytes for the fuzzing harness that reaches the policy engine's decoder
/// behind the AEAD).
pub(crate) fn seal_plaintext_with<C: HpkeCrypto>(
    hpke: &mut Hpke<C>,
    key: &KeyConfig,
    suite: HpkeSuite,
    mls_suite: u16,
    message: &[u8],
    pt: &[u8],
) -> Res<Vec<u8>> {
    if !key.offers(suite) {
        return Err(Error::Usage("suite not offered by the policy key"));
    }
    let aad = key_layer_aad(mls_suite, message)?;
    let (enc, ct) = hpke
        .seal(
            &HpkePublicKey::new(key.public_key.0.clone()),
            &key_layer_info(key.key_id, suite),
            &aad,
            pt,
            None,
            None,
            None,
        )
        .map_err(|_| Error::Crypto)?;
    let mut out = Vec::with_capacity(KEY_LAYER_HEADER_LEN + enc.len() + ct.len());
    out.push(key.key_id);
    let (kem, kdf, aead) = suite.ids();
    for id in [kem, kdf, aead] {
        out.extend_from_slice(&id.to_be_bytes());
    }
    out.extend_from_slice(&enc);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens a key layer with the policy key pairs, for `message` of a group
/// using `mls_suite`. Every failure after framing is [`Error::Crypto`].
pub fn open<'k>(
    keys: impl IntoIterator<Item = &'k HubKeyPair>,
    mls_suite: u16,
    message: &[u8],
    key_layer: &[u8],
) -> Res<KeyLayerContent> {
    let mut r = Reader::new(key_layer);
    let key_id = r.u8("key layer: header")?;
    let kem = r.u16("key layer: header")?;
    let kdf = r.u16("key layer: header")?;
    let aead = r.u16("key layer: header")?;
    let suite = HpkeSuite::from_ids(kem, kdf, aead)?;
    let enc = r.bytes(
        kem_n_enc(kem).ok_or(Error::Unsupported("kem"))?,
        "key layer: enc",
    )?;
    let ct = r.rest();
    if ct.len() != KEY_LAYER_PLAINTEXT_LEN + suite.n_t() {
        return Err(Error::Malformed("key layer: ciphertext length"));
    }
    let pair = keys
        .into_iter()
        .find(|k| k.config.key_id == key_id && k.config.offers(suite))
        .ok_or(Error::Crypto)?;
    let aad = key_layer_aad(mls_suite, message).map_err(|_| Error::Crypto)?;
    let hpke = suite.hpke()?;
    let pt = hpke
        .open(
            enc,
            pair.private_key(),
            &key_layer_info(key_id, suite),
            &aad,
            ct,
            None,
            None,
            None,
        )
        .map_err(|_| Error::Crypto)?;
    let pt = PlainBuf::secret(pt);
    KeyLayerContent::parse_padded(pt.bytes())
}
