//! F's subkeys, the membership proof and the fan-out message (spec
//! sections "Fan-out Key", "Membership Proof", "Fan-out Message").
//!
//! F is the epoch's fan-out key, `MLS-Exporter("mimi-onion v1 fanout key",
//! "", 32)`. From it, with HKDF-Expand (SHA-256, F as the pseudorandom
//! key) and one label each:
//!
//! | key | label | length |
//! |---|---|---|
//! | membership key | "mimi-onion v1 membership key" | 32 |
//! | hint key | "mimi-onion v1 fanout hint key" | 16 |
//! | check key | "mimi-onion v1 fanout check key" | 32 |
//! | body key | "mimi-onion v1 fanout body key" | 32 |
//!
//! ```text
//! membership_proof = HMAC-SHA256(membership_key, OuterHeader || enc)[0..16]
//!
//! struct {
//!   opaque nonce[12];             /* fresh random */
//!   opaque hint[8];               /* AES-128(hint_key, nonce || 0^4)[0..8] */
//!   opaque check[32];             /* HMAC-SHA256(check_key, nonce) */
//!   opaque body[..];              /* AES-256-GCM-SIV(body_key, nonce,
//!                                    aad = nonce || hint || check,
//!                                    FanoutContent || zero padding) */
//! } FanoutMessage;
//! struct { opaque message<V>; } FanoutContent;  /* padded to Padmé(len + 4) */
//! ```

use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Block};
use aes_gcm_siv::aead::{Aead, Payload};
use aes_gcm_siv::Aes256GcmSiv;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::CryptoRng;
use sha2::Sha256;

use crate::codec::{check_zero_padding, put_vec, Reader};
use crate::error::{Error, Res};
use crate::mls::key_schedule::mls_exporter;
use crate::mls::suite::MlsSuite;
use crate::padding::padme;
use crate::secret::{ct_eq, Secret};
use crate::wire::{PlainBuf, FANOUT_KEY_LEN, MEMBERSHIP_PROOF_LEN};

/// F of an epoch: `MLS-Exporter("mimi-onion v1 fanout key", "", 32)` from
/// the epoch's exporter secret (FAN-1: derived exactly so, by hub and
/// members alike).
pub fn fanout_key(suite: MlsSuite, exporter_secret: &Secret) -> Res<Secret> {
    mls_exporter(
        suite,
        exporter_secret,
        crate::labels::FANOUT_KEY,
        b"",
        FANOUT_KEY_LEN,
    )
}

/// `struct { opaque group_id<V>; uint64 new_epoch; opaque fanout_key_hash<V>; } FanoutKeyTBS;`
/// (spec section "Key Layer"): what a commit's sender signs to vouch for
/// F of the epoch the commit opens, with `fanout_key_hash` = Hash(F) under
/// the MLS cipher suite.
pub fn fanout_key_tbs(
    suite: MlsSuite,
    group_id: &[u8],
    new_epoch: u64,
    f: &Secret,
) -> Res<Vec<u8>> {
    let mut out = Vec::with_capacity(group_id.len() + 80);
    put_vec(&mut out, group_id)?;
    out.extend_from_slice(&new_epoch.to_be_bytes());
    put_vec(&mut out, &suite.hash(f.expose()))?;
    Ok(out)
}

/// The bytes a signer signs for the signature over F: RFC 9420's
/// `SignContent` with the label "mimi-onion v1 signed fanout key" and
/// [`fanout_key_tbs`] as content, that is what `SignWithLabel` signs
/// (RFC 9420, section 5.1.2). For a stack that keeps the leaf's signature
/// key in a signer of its own (openmls's `Signer`, a hardware token): it
/// signs these bytes with the suite's signature scheme, and the result is
/// the signature [`verify_fanout_key`] checks.
pub fn fanout_key_sign_content(
    suite: MlsSuite,
    group_id: &[u8],
    new_epoch: u64,
    f: &Secret,
) -> Res<Vec<u8>> {
    MlsSuite::sign_content(
        crate::labels::FANOUT_KEY_SIGNATURE,
        &fanout_key_tbs(suite, group_id, new_epoch, f)?,
    )
}

/// Signs F for a commit with the sender leaf's signature key
/// (`SignWithLabel(key, "mimi-onion v1 signed fanout key", FanoutKeyTBS)`,
/// see [`fanout_key_tbs`]). The sender puts the signature in the key layer
/// (a PrivateMessage commit) or in the hub layer (a PublicMessage commit,
/// PRF-4).
pub fn sign_fanout_key(
    suite: MlsSuite,
    signature_private_key: &[u8],
    group_id: &[u8],
    new_epoch: u64,
    f: &Secret,
) -> Res<Vec<u8>> {
    suite.sign_with_label(
        signature_private_key,
        crate::labels::FANOUT_KEY_SIGNATURE,
        &fanout_key_tbs(suite, group_id, new_epoch, f)?,
    )
}

/// Verifies a leaf's signature over F (`VerifyWithLabel(key, "mimi-onion
/// v1 signed fanout key", FanoutKeyTBS, signature)`, see
/// [`fanout_key_tbs`]): the policy engine's check of a commit's F
/// (HUB-10). [`Error::Crypto`] if it does not verify.
pub fn verify_fanout_key(
    suite: MlsSuite,
    signature_key: &[u8],
    group_id: &[u8],
    new_epoch: u64,
    f: &Secret,
    signature: &[u8],
) -> Res<()> {
    suite.verify_with_label(
        signature_key,
        crate::labels::FANOUT_KEY_SIGNATURE,
        &fanout_key_tbs(suite, group_id, new_epoch, f)?,
        signature,
    )
}

/// Length of the fan-out nonce.
pub const FANOUT_NONCE_LEN: usize = 12;
/// Length of the hint.
pub const HINT_LEN: usize = 8;
/// Length of the check value: a full SHA-256 HMAC, so that finding two
/// keys with the same check value costs 2^128 work (collision resistance).
pub const CHECK_LEN: usize = 32;
/// Length of the fixed fan-out header (nonce, hint, check).
pub const FANOUT_HEADER_LEN: usize = FANOUT_NONCE_LEN + HINT_LEN + CHECK_LEN;
/// Label of the membership key.
pub const MEMBERSHIP_KEY_LABEL: &[u8] = crate::labels::MEMBERSHIP_KEY;
/// Label of the hint key.
pub const HINT_KEY_LABEL: &[u8] = crate::labels::HINT_KEY;
/// Label of the check key.
pub const CHECK_KEY_LABEL: &[u8] = crate::labels::CHECK_KEY;
/// Label of the body key.
pub const BODY_KEY_LABEL: &[u8] = crate::labels::BODY_KEY;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with a 32-byte subkey.
fn hmac(key: &Secret) -> HmacSha256 {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key.expose());
    // HMAC pads keys shorter than the block with zeros, so this is HMAC
    // under the 32-byte key itself.
    let mac = HmacSha256::new(&block.into());
    zeroize::Zeroize::zeroize(&mut block);
    mac
}

/// The keys derived from one epoch's F.
#[derive(Clone)]
pub struct EpochKeys {
    epoch: u64,
    membership: Secret,
    hint: Aes128,
    check: Secret,
    body: Aes256GcmSiv,
}

impl core::fmt::Debug for EpochKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "EpochKeys(epoch {}, ***)", self.epoch)
    }
}

fn expand(f: &Secret, label: &[u8], len: usize) -> Res<Secret> {
    let hk =
        Hkdf::<Sha256>::from_prk(f.expose()).map_err(|_| Error::Usage("F must be 32 bytes"))?;
    let mut out = vec![0u8; len];
    hk.expand(label, &mut out).map_err(|_| Error::Crypto)?;
    Ok(Secret::new(out))
}

impl EpochKeys {
    /// Derives the subkeys of F for `epoch`. FAN-1: HKDF-Expand with SHA-256,
    /// F itself as the pseudorandom key, the label alone as `info`.
    pub fn derive(f: &Secret, epoch: u64) -> Res<Self> {
        if f.len() != FANOUT_KEY_LEN {
            return Err(Error::Usage("F must be 32 bytes"));
        }
        let hint_key = expand(f, HINT_KEY_LABEL, 16)?;
        let body_key = expand(f, BODY_KEY_LABEL, 32)?;
        Ok(EpochKeys {
            epoch,
            membership: expand(f, MEMBERSHIP_KEY_LABEL, 32)?,
            hint: Aes128::new_from_slice(hint_key.expose()).map_err(|_| Error::Crypto)?,
            check: expand(f, CHECK_KEY_LABEL, 32)?,
            body: Aes256GcmSiv::new_from_slice(body_key.expose()).map_err(|_| Error::Crypto)?,
        })
    }

    /// The epoch these keys belong to.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// True if `other` holds the same keys for the same epoch (compared in
    /// constant time): derived from the same F.
    pub(crate) fn same_keys(&self, other: &EpochKeys) -> bool {
        self.epoch == other.epoch
            && ct_eq(self.membership.expose(), other.membership.expose())
            && ct_eq(self.check.expose(), other.check.expose())
    }

    /// The membership proof over an envelope's outer header and `enc`.
    pub fn membership_proof(&self, header: &[u8], enc: &[u8]) -> [u8; MEMBERSHIP_PROOF_LEN] {
        let mut mac = hmac(&self.membership);
        mac.update(header);
        mac.update(enc);
        let tag = mac.finalize().into_bytes();
        let mut out = [0u8; MEMBERSHIP_PROOF_LEN];
        out.copy_from_slice(&tag[..MEMBERSHIP_PROOF_LEN]);
        out
    }

    /// Verifies a membership proof in constant time.
    pub fn verify_membership_proof(&self, header: &[u8], enc: &[u8], proof: &[u8]) -> bool {
        ct_eq(&self.membership_proof(header, enc), proof)
    }

    /// The 8-byte hint for a nonce: one AES block.
    pub fn hint(&self, nonce: &[u8; FANOUT_NONCE_LEN]) -> [u8; HINT_LEN] {
        let mut block = Block::default();
        block[..FANOUT_NONCE_LEN].copy_from_slice(nonce);
        self.hint.encrypt_block(&mut block);
        let mut out = [0u8; HINT_LEN];
        out.copy_from_slice(&block[..HINT_LEN]);
        out
    }

    /// The key-committing check value for a nonce.
    pub fn check(&self, nonce: &[u8; FANOUT_NONCE_LEN]) -> [u8; CHECK_LEN] {
        let mut mac = hmac(&self.check);
        mac.update(nonce);
        mac.finalize().into_bytes().into()
    }

    /// Seals a fan-out message for one follower, with a fresh nonce.
    /// FAN-2: the hub calls it once per follower (`HubFrontEnd::fan_out`),
    /// and each call draws its own random nonce, so no two followers
    /// receive the same bytes.
    pub fn seal(&self, message: &[u8], rng: &mut impl CryptoRng) -> Res<Vec<u8>> {
        let mut nonce = [0u8; FANOUT_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        self.seal_with_nonce(message, nonce)
    }

    /// Seals with an explicit nonce (test vectors). FAN-3: hint, check value
    /// and body exactly as specified, the `FanoutContent` followed by zero
    /// bytes up to exactly `Padmé(len(message) + 4)` bytes.
    pub fn seal_with_nonce(&self, message: &[u8], nonce: [u8; FANOUT_NONCE_LEN]) -> Res<Vec<u8>> {
        let mut pt = Vec::with_capacity(fanout_padded_len(message.len()));
        put_vec(&mut pt, message)?;
        pt.resize(fanout_padded_len(message.len()), 0);
        self.seal_body(&PlainBuf::with_public_message(pt).0, nonce)
    }

    /// A fan-out message whose body is the AEAD of `pt` as given (the
    /// padded `FanoutContent` for [`Self::seal_with_nonce`]; any bytes for
    /// the fuzzing harness that reaches the member's rules behind the
    /// AEAD).
    pub(crate) fn seal_body(&self, pt: &[u8], nonce: [u8; FANOUT_NONCE_LEN]) -> Res<Vec<u8>> {
        let mut out = Vec::with_capacity(FANOUT_HEADER_LEN + pt.len() + 16);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&self.hint(&nonce));
        out.extend_from_slice(&self.check(&nonce));
        let body = self
            .body
            .encrypt((&nonce).into(), Payload { msg: pt, aad: &out })
            .map_err(|_| Error::Crypto)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// True if the hint of `msg` matches these keys. Callers scan every
    /// held epoch without stopping at the first match (MEM-1: compared in
    /// constant time).
    pub fn hint_matches(&self, msg: &FanoutMessage<'_>) -> bool {
        ct_eq(&self.hint(msg.nonce), msg.hint)
    }

    /// Verifies the check value, then opens the body. Returns the message.
    /// Every failure is [`Error::Crypto`] (FAN-5: the same failure for
    /// every check).
    pub fn open(&self, msg: &FanoutMessage<'_>) -> Res<Vec<u8>> {
        // FAN-5: the check value, in constant time, before the body is opened.
        if !ct_eq(&self.check(msg.nonce), msg.check) {
            return Err(Error::Crypto);
        }
        let pt = PlainBuf::with_public_message(
            self.body
                .decrypt(
                    msg.nonce.into(),
                    Payload {
                        msg: msg.body,
                        aad: msg.header,
                    },
                )
                .map_err(|_| Error::Crypto)?,
        );
        // FAN-5: a `FanoutContent` with its length prefix in the shortest
        // form (`Reader::vec`), exactly `Padmé(len(message) + 4)` bytes in
        // all, every byte after it zero.
        let mut r = Reader::new(&pt.0);
        let message = r.vec("fan-out: message").map_err(|_| Error::Crypto)?;
        if pt.0.len() != fanout_padded_len(message.len()) {
            return Err(Error::Crypto);
        }
        check_zero_padding(r.rest(), "fan-out: non-zero padding").map_err(|_| Error::Crypto)?;
        Ok(message.to_vec())
    }
}

/// The padded length of a fan-out plaintext: `Padmé(len(message) + 4)`
/// (FAN-3, FAN-5).
pub fn fanout_padded_len(message_len: usize) -> usize {
    padme(message_len + 4)
}

/// A decoded fan-out message, borrowing from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanoutMessage<'a> {
    /// The nonce.
    pub nonce: &'a [u8; FANOUT_NONCE_LEN],
    /// The hint.
    pub hint: &'a [u8],
    /// The check value.
    pub check: &'a [u8],
    /// nonce || hint || check: the AEAD's associated data.
    pub header: &'a [u8],
    /// The AES-256-GCM-SIV ciphertext.
    pub body: &'a [u8],
}

impl<'a> FanoutMessage<'a> {
    /// Splits a fan-out message into its fields. The body must hold at
    /// least a tag and the smallest padded content (FAN-5: a fan-out
    /// message shorter than 72 bytes is malformed).
    pub fn parse(bytes: &'a [u8]) -> Res<Self> {
        if bytes.len() < FANOUT_HEADER_LEN + fanout_padded_len(0) + 16 {
            return Err(Error::Malformed("fan-out message: too short"));
        }
        let (header, body) = bytes.split_at(FANOUT_HEADER_LEN);
        let nonce: &[u8; FANOUT_NONCE_LEN] = header[..FANOUT_NONCE_LEN]
            .try_into()
            .map_err(|_| Error::Malformed("fan-out message: nonce"))?;
        Ok(FanoutMessage {
            nonce,
            hint: &header[FANOUT_NONCE_LEN..FANOUT_NONCE_LEN + HINT_LEN],
            check: &header[FANOUT_NONCE_LEN + HINT_LEN..],
            header,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(b: u8, epoch: u64) -> EpochKeys {
        EpochKeys::derive(&Secret::from_slice(&[b; 32]), epoch).unwrap()
    }

    #[test]
    fn seal_open_round_trip() {
        let k = keys(1, 5);
        for len in [0usize, 1, 100, 5000] {
            let m = vec![7u8; len];
            let f = k.seal(&m, &mut rand::rng()).unwrap();
            let parsed = FanoutMessage::parse(&f).unwrap();
            assert!(k.hint_matches(&parsed));
            assert_eq!(k.open(&parsed).unwrap(), m);
        }
    }

    #[test]
    fn other_group_fails_at_check_value() {
        let a = keys(1, 5);
        let b = keys(2, 5);
        let f = a.seal(b"hello", &mut rand::rng()).unwrap();
        let parsed = FanoutMessage::parse(&f).unwrap();
        assert!(!b.hint_matches(&parsed));
        assert_eq!(b.open(&parsed), Err(Error::Crypto));
    }

    #[test]
    fn membership_proof_binds_header_and_enc() {
        let k = keys(3, 1);
        let p = k.membership_proof(b"header", b"enc");
        assert!(k.verify_membership_proof(b"header", b"enc", &p));
        assert!(!k.verify_membership_proof(b"header", b"enC", &p));
        assert!(!keys(4, 1).verify_membership_proof(b"header", b"enc", &p));
    }

    #[test]
    fn fanout_key_signature_binds_group_epoch_and_f() {
        let suite = MlsSuite::from_code(1).unwrap();
        let private = [9u8; 32];
        let public = suite.signature_public_key(&private).unwrap();
        let f = Secret::from_slice(&[1; 32]);
        let sig = sign_fanout_key(suite, &private, b"g", 3, &f).unwrap();
        verify_fanout_key(suite, &public, b"g", 3, &f, &sig).unwrap();
        let tbs = fanout_key_tbs(suite, b"g", 3, &f).unwrap();
        assert_eq!(tbs[..10], [1, b'g', 0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(tbs.len(), 2 + 8 + 1 + 32);
        let other = Secret::from_slice(&[2; 32]);
        for (g, e, f) in [(&b"h"[..], 3, &f), (b"g", 4, &f), (b"g", 3, &other)] {
            assert_eq!(
                verify_fanout_key(suite, &public, g, e, f, &sig),
                Err(Error::Crypto)
            );
        }
    }

    #[test]
    fn every_bit_flip_fails() {
        let k = keys(5, 9);
        let f = k.seal(b"a fan-out body", &mut rand::rng()).unwrap();
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 1;
            let p = FanoutMessage::parse(&g).unwrap();
            assert!(k.open(&p).is_err(), "byte {i}");
        }
    }
}
