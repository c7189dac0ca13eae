//! RFC 9180 HPKE, base mode, one message per context, with the AEAD run
//! in place: the hub layer's seal and open.
//!
//! hpke-rs (with its RustCrypto provider) stays the library for the KEM's
//! group operations (`dh`, `secret_to_public`, the P-256 scalar check) and
//! for the key layer. Its `Context::seal` and `open` take a plaintext slice
//! and return a fresh vector, and its receiver recomputes the recipient's
//! public key from the private key on every open. Here the sender writes
//! the hub-layer plaintext straight into the envelope's buffer and the AEAD
//! encrypts it where it lies, and the hub passes the public key it keeps:
//! one copy of the message per seal and per open, as for a bare HPKE call,
//! and one fixed-base multiplication less per open (ARCHITECTURE.md, "Cost
//! floors"). Cross-checked against hpke-rs in both directions for every
//! suite in the tests below; the envelope vectors pin the bytes.
//!
//! Only what the hub layer uses: mode_base, no PSK, sequence number 0 (the
//! nonce is `base_nonce`), and the secret export.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes128Gcm;
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::{Hkdf, HkdfExtract};
use hpke_rs::hpke_types::KemAlgorithm;
use hpke_rs_crypto::HpkeCrypto;
use hpke_rs_rust_crypto::HpkeRustCrypto;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Res};
use crate::secret::Secret;
use crate::suite::{HpkeSuite, AEAD_CHACHA20POLY1305, KEM_P256};

/// The AEAD tag length of every supported suite.
pub const TAG_LEN: usize = 16;

/// Length of a private key, of DeriveKeyPair's input, and of the
/// ephemeral randomness (`Nsk`) of every supported KEM.
pub const NSK: usize = 32;

const VERSION_LABEL: &[u8] = b"HPKE-v1";
/// `Nh` of HKDF-SHA256: the shared secret and the exporter secret.
const NH: usize = 32;

fn kem_algorithm(suite: HpkeSuite) -> KemAlgorithm {
    match suite.kem_id() {
        KEM_P256 => KemAlgorithm::DhKemP256,
        _ => KemAlgorithm::DhKem25519,
    }
}

/// `"KEM" || I2OSP(kem_id, 2)`.
fn kem_suite_id(suite: HpkeSuite) -> [u8; 5] {
    let k = suite.kem_id().to_be_bytes();
    [b'K', b'E', b'M', k[0], k[1]]
}

/// `"HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) || I2OSP(aead_id, 2)`.
fn hpke_suite_id(suite: HpkeSuite) -> [u8; 10] {
    let (kem, kdf, aead) = suite.ids();
    let (k, f, a) = (kem.to_be_bytes(), kdf.to_be_bytes(), aead.to_be_bytes());
    [b'H', b'P', b'K', b'E', k[0], k[1], f[0], f[1], a[0], a[1]]
}

/// `LabeledExtract(salt, label, ikm)` (RFC 9180, section 4): the PRK.
fn labeled_extract(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; NH]> {
    let mut ex = HkdfExtract::<Sha256>::new(Some(salt));
    ex.input_ikm(VERSION_LABEL);
    ex.input_ikm(suite_id);
    ex.input_ikm(label);
    ex.input_ikm(ikm);
    let (prk, _) = ex.finalize();
    Zeroizing::new(prk.into())
}

/// `LabeledExpand(prk, label, info, L)` into `out` (L = `out.len()`).
fn labeled_expand(
    suite_id: &[u8],
    prk: &[u8],
    label: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Res<()> {
    let l = u16::try_from(out.len()).map_err(|_| Error::Crypto)?;
    let hk = Hkdf::<Sha256>::from_prk(prk).map_err(|_| Error::Crypto)?;
    hk.expand_multi_info(
        &[&l.to_be_bytes(), VERSION_LABEL, suite_id, label, info],
        out,
    )
    .map_err(|_| Error::Crypto)
}

/// DeriveKeyPair(ikm) of the suite's KEM (RFC 9180, section 7.1.3):
/// the private key and the serialized public key.
pub fn derive_key_pair(suite: HpkeSuite, ikm: &[u8]) -> Res<(Secret, Vec<u8>)> {
    let sid = kem_suite_id(suite);
    let alg = kem_algorithm(suite);
    let dkp_prk = labeled_extract(&sid, &[], b"dkp_prk", ikm);
    let mut sk = Zeroizing::new([0u8; NSK]);
    if alg == KemAlgorithm::DhKemP256 {
        // Rejection sampling with bitmask 0xff: a candidate is a scalar in
        // [1, n-1]; the chance that 256 candidates all fail is negligible.
        let mut found = false;
        for counter in 0..=u8::MAX {
            labeled_expand(&sid, &*dkp_prk, b"candidate", &[counter], &mut *sk)?;
            if HpkeRustCrypto::dh_validate_sk(alg, &*sk).is_ok() {
                found = true;
                break;
            }
        }
        if !found {
            return Err(Error::Crypto);
        }
    } else {
        labeled_expand(&sid, &*dkp_prk, b"sk", &[], &mut *sk)?;
    }
    let pk = HpkeRustCrypto::secret_to_public(alg, &*sk).map_err(|_| Error::Crypto)?;
    Ok((Secret::from_slice(&*sk), pk))
}

/// DHKEM's ExtractAndExpand over `dh` with `kem_context = enc || pkRm`.
fn extract_and_expand(suite: HpkeSuite, dh: &[u8], enc: &[u8], pk_r: &[u8]) -> Res<Secret> {
    let sid = kem_suite_id(suite);
    let eae_prk = labeled_extract(&sid, &[], b"eae_prk", dh);
    let mut shared = vec![0u8; NH];
    let hk = Hkdf::<Sha256>::from_prk(&*eae_prk).map_err(|_| Error::Crypto)?;
    let l = (NH as u16).to_be_bytes();
    hk.expand_multi_info(
        &[&l, VERSION_LABEL, &sid, b"shared_secret", enc, pk_r],
        &mut shared,
    )
    .map_err(|_| Error::Crypto)?;
    Ok(Secret::new(shared))
}

/// The keys of one base-mode context at sequence number 0.
pub struct Context {
    suite: HpkeSuite,
    key: Secret,
    nonce: Secret,
    exporter_secret: Secret,
}

impl core::fmt::Debug for Context {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Context")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// The part of KeySchedule(mode_base, ...) that depends only on the suite
/// and `info`: `key_schedule_context`. The hub layer's `info` names the
/// key id and suite only, so the hub computes it once per key and suite.
#[derive(Clone)]
pub struct InfoContext {
    suite: HpkeSuite,
    ks_context: [u8; 1 + 2 * NH],
}

impl core::fmt::Debug for InfoContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InfoContext")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl InfoContext {
    /// `mode_base || LabeledExtract("", "psk_id_hash", "") ||
    /// LabeledExtract("", "info_hash", info)`.
    pub fn new(suite: HpkeSuite, info: &[u8]) -> Self {
        let sid = hpke_suite_id(suite);
        let psk_id_hash = labeled_extract(&sid, &[], b"psk_id_hash", &[]);
        let info_hash = labeled_extract(&sid, &[], b"info_hash", info);
        let mut ks_context = [0u8; 1 + 2 * NH];
        ks_context[1..1 + NH].copy_from_slice(&*psk_id_hash);
        ks_context[1 + NH..].copy_from_slice(&*info_hash);
        InfoContext { suite, ks_context }
    }

    /// The suite.
    pub fn suite(&self) -> HpkeSuite {
        self.suite
    }
}

/// KeySchedule(mode_base, shared_secret, info, "", "") with the
/// info-dependent part already computed.
fn key_schedule(ic: &InfoContext, shared_secret: &Secret) -> Res<Context> {
    let suite = ic.suite;
    let sid = hpke_suite_id(suite);
    let secret = labeled_extract(&sid, shared_secret.expose(), b"secret", &[]);
    // One HMAC key setup for the three expansions of `secret`.
    let hk = Hkdf::<Sha256>::from_prk(&*secret).map_err(|_| Error::Crypto)?;
    let expand = |label: &[u8], len: usize| -> Res<Secret> {
        let mut out = vec![0u8; len];
        let l = u16::try_from(len).map_err(|_| Error::Crypto)?.to_be_bytes();
        hk.expand_multi_info(&[&l, VERSION_LABEL, &sid, label, &ic.ks_context], &mut out)
            .map_err(|_| Error::Crypto)?;
        Ok(Secret::new(out))
    };
    Ok(Context {
        suite,
        key: expand(b"key", suite.n_k())?,
        nonce: expand(b"base_nonce", suite.n_n())?,
        exporter_secret: expand(b"exp", NH)?,
    })
}

/// SetupBaseS(pkR, info) with the ephemeral randomness `ikm_e` (`NSK`
/// bytes, fresh for every envelope; the vector generator fixes it):
/// `enc` and the context.
pub fn setup_sender(
    suite: HpkeSuite,
    pk_r: &[u8],
    info: &[u8],
    ikm_e: &[u8],
) -> Res<(Vec<u8>, Context)> {
    let (sk_e, enc) = derive_key_pair(suite, ikm_e)?;
    let dh = HpkeRustCrypto::dh(kem_algorithm(suite), pk_r, sk_e.expose())
        .map(Zeroizing::new)
        .map_err(|_| Error::Crypto)?;
    let shared = extract_and_expand(suite, &dh, &enc, pk_r)?;
    Ok((enc, key_schedule(&InfoContext::new(suite, info), &shared)?))
}

/// SetupBaseR(enc, skR, info), given the recipient's own public key
/// `pk_r` instead of recomputing it from `sk_r`, and `info` as its
/// [`InfoContext`]. Every failure is [`Error::Crypto`].
pub fn setup_receiver(ic: &InfoContext, sk_r: &Secret, pk_r: &[u8], enc: &[u8]) -> Res<Context> {
    let suite = ic.suite;
    if enc.len() != suite.n_enc() {
        return Err(Error::Crypto);
    }
    let dh = HpkeRustCrypto::dh(kem_algorithm(suite), enc, sk_r.expose())
        .map(Zeroizing::new)
        .map_err(|_| Error::Crypto)?;
    let shared = extract_and_expand(suite, &dh, enc, pk_r)?;
    key_schedule(ic, &shared)
}

enum Cipher {
    Aes(Box<Aes128Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

impl Context {
    fn cipher(&self) -> Res<Cipher> {
        Ok(match self.suite.aead_id() {
            AEAD_CHACHA20POLY1305 => Cipher::ChaCha(Box::new(
                ChaCha20Poly1305::new_from_slice(self.key.expose()).map_err(|_| Error::Crypto)?,
            )),
            _ => Cipher::Aes(Box::new(
                Aes128Gcm::new_from_slice(self.key.expose()).map_err(|_| Error::Crypto)?,
            )),
        })
    }

    fn nonce(&self) -> Res<&aes_gcm::Nonce<aes_gcm::aead::consts::U12>> {
        self.nonce.expose().try_into().map_err(|_| Error::Crypto)
    }

    /// Seal(key, base_nonce, aad, pt) where `buf` holds the plaintext and
    /// receives the ciphertext; returns the tag.
    pub fn seal_in_place(&self, aad: &[u8], buf: &mut [u8]) -> Res<[u8; TAG_LEN]> {
        let nonce = self.nonce()?;
        let tag = match self.cipher()? {
            Cipher::Aes(c) => c.encrypt_inout_detached(nonce, aad, buf.into()),
            Cipher::ChaCha(c) => c.encrypt_inout_detached(nonce, aad, buf.into()),
        }
        .map_err(|_| Error::Crypto)?;
        Ok(tag.into())
    }

    /// Open(key, base_nonce, aad, ct || tag) where `buf` holds the
    /// ciphertext without its tag and receives the plaintext. On failure
    /// `buf` holds no plaintext (the AEAD crates leave the ciphertext).
    pub fn open_in_place(&self, aad: &[u8], buf: &mut [u8], tag: &[u8]) -> Res<()> {
        let nonce = self.nonce()?;
        let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| Error::Crypto)?;
        match self.cipher()? {
            Cipher::Aes(c) => c.decrypt_inout_detached(nonce, aad, buf.into(), tag.into()),
            Cipher::ChaCha(c) => c.decrypt_inout_detached(nonce, aad, buf.into(), tag.into()),
        }
        .map_err(|_| Error::Crypto)
    }

    /// Export(exporter_context, L).
    pub fn export(&self, exporter_context: &[u8], len: usize) -> Res<Secret> {
        let mut out = vec![0u8; len];
        labeled_expand(
            &hpke_suite_id(self.suite),
            self.exporter_secret.expose(),
            b"sec",
            exporter_context,
            &mut out,
        )?;
        Ok(Secret::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpke_rs::{HpkePrivateKey, HpkePublicKey};

    fn ikm(tag: u8) -> [u8; NSK] {
        core::array::from_fn(|i| (i as u8).wrapping_mul(31) ^ tag)
    }

    /// DeriveKeyPair agrees with hpke-rs for every suite's KEM.
    #[test]
    fn derive_key_pair_matches_hpke_rs() {
        for suite in HpkeSuite::ALL {
            for t in 0..8u8 {
                let (sk, pk) = derive_key_pair(suite, &ikm(t)).unwrap();
                let theirs = suite.hpke().unwrap().derive_key_pair(&ikm(t)).unwrap();
                assert_eq!(pk, theirs.public_key().as_slice(), "{suite:?}");
                let (their_sk, _) = theirs.into_keys();
                assert_eq!(HpkePrivateKey::new(sk.expose().to_vec()), their_sk);
            }
        }
    }

    /// Our seal opens with hpke-rs, hpke-rs's seal opens here, and both
    /// export the same secret; a flipped bit anywhere fails the open.
    #[test]
    fn interoperates_with_hpke_rs() {
        for suite in HpkeSuite::ALL {
            let (sk, pk) = derive_key_pair(suite, &ikm(1)).unwrap();
            let sk_rs = HpkePrivateKey::new(sk.expose().to_vec());
            let info = b"info of the test";
            let aad = b"aad";
            let msg: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();

            // Ours -> hpke-rs.
            let (enc, ctx) = setup_sender(suite, &pk, info, &ikm(2)).unwrap();
            let mut buf = msg.clone();
            let tag = ctx.seal_in_place(aad, &mut buf).unwrap();
            buf.extend_from_slice(&tag);
            let mut theirs = suite
                .hpke()
                .unwrap()
                .setup_receiver(&enc, &sk_rs, info, None, None, None)
                .unwrap();
            assert_eq!(theirs.open(aad, &buf).unwrap(), msg, "{suite:?}");
            assert_eq!(
                theirs.export(b"ctx", 17).unwrap(),
                ctx.export(b"ctx", 17).unwrap().expose()
            );

            // hpke-rs -> ours.
            let (enc2, mut sctx) = suite
                .hpke()
                .unwrap()
                .setup_sender(&HpkePublicKey::new(pk.clone()), info, None, None, None)
                .unwrap();
            let ct = sctx.seal(aad, &msg).unwrap();
            let rctx = setup_receiver(&InfoContext::new(suite, info), &sk, &pk, &enc2).unwrap();
            let (body, tag) = ct.split_at(ct.len() - TAG_LEN);
            let mut body = body.to_vec();
            rctx.open_in_place(aad, &mut body, tag).unwrap();
            assert_eq!(body, msg);
            assert_eq!(
                sctx.export(b"x", 32).unwrap(),
                rctx.export(b"x", 32).unwrap().expose()
            );

            // Tampering: ciphertext, tag, aad, info, enc.
            let open = |enc: &[u8], info: &[u8], aad: &[u8], ct: &[u8]| {
                let (body, tag) = ct.split_at(ct.len() - TAG_LEN);
                let mut body = body.to_vec();
                setup_receiver(&InfoContext::new(suite, info), &sk, &pk, enc)
                    .and_then(|c| c.open_in_place(aad, &mut body, tag))
                    .is_ok()
            };
            assert!(open(&enc2, info, aad, &ct));
            for i in [0, ct.len() / 2, ct.len() - 1] {
                let mut bad = ct.clone();
                bad[i] ^= 1;
                assert!(!open(&enc2, info, aad, &bad));
            }
            assert!(!open(&enc2, info, b"aaD", &ct));
            assert!(!open(&enc2, b"other", aad, &ct));
            let mut bad_enc = enc2.clone();
            bad_enc[1] ^= 1;
            assert!(!open(&bad_enc, info, aad, &ct));
            assert!(!open(&enc2[1..], info, aad, &ct));
        }
    }

    #[test]
    fn context_debug_is_redacted() {
        let (_, pk) = derive_key_pair(HpkeSuite::MANDATORY, &ikm(3)).unwrap();
        let (_, ctx) = setup_sender(HpkeSuite::MANDATORY, &pk, b"", &ikm(4)).unwrap();
        let shown = format!("{ctx:?}");
        assert!(!shown.contains("key:") && !shown.contains("nonce"));
    }
}
