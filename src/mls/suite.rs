//! RFC 9420 cipher suites (section 5.1): hash, KDF, AEAD and signature
//! primitives, and the labelled helpers built on them (`ExpandWithLabel`,
//! `DeriveSecret`, `DeriveTreeSecret`, `RefHash`, `SignWithLabel`,
//! `VerifyWithLabel`, the MAC).
//!
//! All seven suites registered by RFC 9420 (codes 1 to 7) are recognised
//! for hashing, HKDF and AEAD. Signatures are implemented for suites 1 to 3
//! only (Ed25519 and ECDSA P-256 with SHA-256); suites 4 to 7 report
//! [`Error::Unsupported`] from [`MlsSuite::sign_with_label`] and
//! [`MlsSuite::verify_with_label`]. The HPKE parts of the suites
//! (`EncryptWithLabel`) are not implemented here.

use hkdf::hmac::{Hmac, KeyInit, Mac};
use hkdf::Hkdf;
use hpke_rs_crypto::types::AeadAlgorithm;
use hpke_rs_crypto::HpkeCrypto;
use hpke_rs_rust_crypto::HpkeRustCrypto;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::codec::put_vec;
use crate::error::{Error, Res};
use crate::secret::{ct_eq, Secret};

/// The prefix RFC 9420 puts in front of every label (section 5.1.2, 5.1.3).
pub const LABEL_PREFIX: &[u8] = b"MLS 1.0 ";

/// The hash function of an MLS cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MlsHash {
    /// SHA-256 (Nh = 32).
    Sha256,
    /// SHA-384 (Nh = 48).
    Sha384,
    /// SHA-512 (Nh = 64).
    Sha512,
}

/// The AEAD of an MLS cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MlsAead {
    /// AES-128-GCM (Nk = 16, Nn = 12).
    Aes128Gcm,
    /// AES-256-GCM (Nk = 32, Nn = 12).
    Aes256Gcm,
    /// ChaCha20-Poly1305 (Nk = 32, Nn = 12).
    ChaCha20Poly1305,
}

/// The signature scheme of an MLS cipher suite (TLS `SignatureScheme`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureScheme {
    /// `ed25519` (0x0807), RFC 8032. Implemented.
    Ed25519,
    /// `ecdsa_secp256r1_sha256` (0x0403). Implemented; signatures are DER.
    EcdsaP256Sha256,
    /// `ecdsa_secp384r1_sha384` (0x0503). Not implemented.
    EcdsaP384Sha384,
    /// `ecdsa_secp521r1_sha512` (0x0603). Not implemented.
    EcdsaP521Sha512,
    /// `ed448` (0x0808). Not implemented.
    Ed448,
}

impl SignatureScheme {
    /// The TLS `SignatureScheme` code point.
    pub fn code(self) -> u16 {
        match self {
            SignatureScheme::Ed25519 => 0x0807,
            SignatureScheme::EcdsaP256Sha256 => 0x0403,
            SignatureScheme::EcdsaP384Sha384 => 0x0503,
            SignatureScheme::EcdsaP521Sha512 => 0x0603,
            SignatureScheme::Ed448 => 0x0808,
        }
    }

    /// True for the schemes this crate can sign and verify with.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            SignatureScheme::Ed25519 | SignatureScheme::EcdsaP256Sha256
        )
    }
}

/// One of the seven cipher suites registered by RFC 9420 (section 17.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MlsSuite {
    /// 1: `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519`.
    X25519Aes128GcmSha256Ed25519,
    /// 2: `MLS_128_DHKEMP256_AES128GCM_SHA256_P256`.
    P256Aes128GcmSha256P256,
    /// 3: `MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519`.
    X25519ChaCha20Poly1305Sha256Ed25519,
    /// 4: `MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448`.
    X448Aes256GcmSha512Ed448,
    /// 5: `MLS_256_DHKEMP521_AES256GCM_SHA512_P521`.
    P521Aes256GcmSha512P521,
    /// 6: `MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448`.
    X448ChaCha20Poly1305Sha512Ed448,
    /// 7: `MLS_256_DHKEMP384_AES256GCM_SHA384_P384`.
    P384Aes256GcmSha384P384,
}

/// Every suite, in code order.
pub const ALL_SUITES: [MlsSuite; 7] = [
    MlsSuite::X25519Aes128GcmSha256Ed25519,
    MlsSuite::P256Aes128GcmSha256P256,
    MlsSuite::X25519ChaCha20Poly1305Sha256Ed25519,
    MlsSuite::X448Aes256GcmSha512Ed448,
    MlsSuite::P521Aes256GcmSha512P521,
    MlsSuite::X448ChaCha20Poly1305Sha512Ed448,
    MlsSuite::P384Aes256GcmSha384P384,
];

impl MlsSuite {
    /// The suite with RFC 9420 code `code`, if it is one of 1..=7.
    pub fn from_code(code: u16) -> Option<Self> {
        let index = usize::from(code).checked_sub(1)?;
        ALL_SUITES.get(index).copied()
    }

    /// The RFC 9420 code point (1..=7).
    pub fn code(self) -> u16 {
        match self {
            MlsSuite::X25519Aes128GcmSha256Ed25519 => 1,
            MlsSuite::P256Aes128GcmSha256P256 => 2,
            MlsSuite::X25519ChaCha20Poly1305Sha256Ed25519 => 3,
            MlsSuite::X448Aes256GcmSha512Ed448 => 4,
            MlsSuite::P521Aes256GcmSha512P521 => 5,
            MlsSuite::X448ChaCha20Poly1305Sha512Ed448 => 6,
            MlsSuite::P384Aes256GcmSha384P384 => 7,
        }
    }

    /// The suite's hash function (also the HKDF and MAC hash).
    pub fn hash_algorithm(self) -> MlsHash {
        match self {
            MlsSuite::X25519Aes128GcmSha256Ed25519
            | MlsSuite::P256Aes128GcmSha256P256
            | MlsSuite::X25519ChaCha20Poly1305Sha256Ed25519 => MlsHash::Sha256,
            MlsSuite::X448Aes256GcmSha512Ed448
            | MlsSuite::P521Aes256GcmSha512P521
            | MlsSuite::X448ChaCha20Poly1305Sha512Ed448 => MlsHash::Sha512,
            MlsSuite::P384Aes256GcmSha384P384 => MlsHash::Sha384,
        }
    }

    /// The suite's AEAD.
    pub fn aead(self) -> MlsAead {
        match self {
            MlsSuite::X25519Aes128GcmSha256Ed25519 | MlsSuite::P256Aes128GcmSha256P256 => {
                MlsAead::Aes128Gcm
            }
            MlsSuite::X25519ChaCha20Poly1305Sha256Ed25519
            | MlsSuite::X448ChaCha20Poly1305Sha512Ed448 => MlsAead::ChaCha20Poly1305,
            MlsSuite::X448Aes256GcmSha512Ed448
            | MlsSuite::P521Aes256GcmSha512P521
            | MlsSuite::P384Aes256GcmSha384P384 => MlsAead::Aes256Gcm,
        }
    }

    /// The suite's signature scheme (only some are implemented, see
    /// [`SignatureScheme::is_supported`]).
    pub fn signature_scheme(self) -> SignatureScheme {
        match self {
            MlsSuite::X25519Aes128GcmSha256Ed25519
            | MlsSuite::X25519ChaCha20Poly1305Sha256Ed25519 => SignatureScheme::Ed25519,
            MlsSuite::P256Aes128GcmSha256P256 => SignatureScheme::EcdsaP256Sha256,
            MlsSuite::X448Aes256GcmSha512Ed448 | MlsSuite::X448ChaCha20Poly1305Sha512Ed448 => {
                SignatureScheme::Ed448
            }
            MlsSuite::P521Aes256GcmSha512P521 => SignatureScheme::EcdsaP521Sha512,
            MlsSuite::P384Aes256GcmSha384P384 => SignatureScheme::EcdsaP384Sha384,
        }
    }

    /// `Nh`: the hash (and KDF) output length in bytes.
    pub fn nh(self) -> usize {
        match self.hash_algorithm() {
            MlsHash::Sha256 => 32,
            MlsHash::Sha384 => 48,
            MlsHash::Sha512 => 64,
        }
    }

    /// `Nk`: the AEAD key length in bytes.
    pub fn nk(self) -> usize {
        match self.aead() {
            MlsAead::Aes128Gcm => 16,
            MlsAead::Aes256Gcm | MlsAead::ChaCha20Poly1305 => 32,
        }
    }

    /// `Nn`: the AEAD nonce length in bytes.
    pub fn nn(self) -> usize {
        12
    }

    /// `Hash(data)`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self.hash_algorithm() {
            MlsHash::Sha256 => Sha256::digest(data).to_vec(),
            MlsHash::Sha384 => Sha384::digest(data).to_vec(),
            MlsHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `KDF.Extract(salt, ikm)` (HKDF-Extract with the suite's hash); the
    /// result is `Nh` bytes.
    pub fn extract(self, salt: &[u8], ikm: &[u8]) -> Secret {
        match self.hash_algorithm() {
            MlsHash::Sha256 => Secret::new(Hkdf::<Sha256>::extract(Some(salt), ikm).0.to_vec()),
            MlsHash::Sha384 => Secret::new(Hkdf::<Sha384>::extract(Some(salt), ikm).0.to_vec()),
            MlsHash::Sha512 => Secret::new(Hkdf::<Sha512>::extract(Some(salt), ikm).0.to_vec()),
        }
    }

    /// `KDF.Expand(prk, info, len)` (HKDF-Expand with the suite's hash).
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] if `prk` is shorter than `Nh` or `len` exceeds
    /// `255 * Nh`.
    pub fn expand(self, prk: &Secret, info: &[u8], len: usize) -> Res<Secret> {
        const SHORT: Error = Error::Usage("hkdf: prk shorter than Nh");
        const LONG: Error = Error::Usage("hkdf: output longer than 255 * Nh");
        // HKDF checks the length before writing, so on error `okm` is still
        // all zero; on success it moves into the zeroizing `Secret`.
        let mut okm = vec![0u8; len];
        let out = okm.as_mut_slice();
        match self.hash_algorithm() {
            MlsHash::Sha256 => Hkdf::<Sha256>::from_prk(prk.expose())
                .map_err(|_| SHORT)?
                .expand(info, out)
                .map_err(|_| LONG)?,
            MlsHash::Sha384 => Hkdf::<Sha384>::from_prk(prk.expose())
                .map_err(|_| SHORT)?
                .expand(info, out)
                .map_err(|_| LONG)?,
            MlsHash::Sha512 => Hkdf::<Sha512>::from_prk(prk.expose())
                .map_err(|_| SHORT)?
                .expand(info, out)
                .map_err(|_| LONG)?,
        }
        Ok(Secret::new(okm))
    }

    /// `ExpandWithLabel(secret, label, context, len)` (RFC 9420 5.1.3):
    /// `KDF.Expand(secret, KDFLabel, len)` with
    /// `KDFLabel = { uint16 length; opaque label<V> = "MLS 1.0 " + label;
    /// opaque context<V>; }`.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] if `len` does not fit in a `uint16` or HKDF refuses
    /// it (see [`MlsSuite::expand`]), [`Error::TooLarge`] if a vector does
    /// not fit a varint.
    pub fn expand_with_label(
        self,
        secret: &Secret,
        label: impl AsRef<[u8]>,
        context: &[u8],
        len: usize,
    ) -> Res<Secret> {
        let length = u16::try_from(len).map_err(|_| Error::Usage("expand length above 65535"))?;
        let label = label.as_ref();
        let mut info =
            Vec::with_capacity(2 + 2 + LABEL_PREFIX.len() + label.len() + 4 + context.len());
        info.extend_from_slice(&length.to_be_bytes());
        let mut full_label = Vec::with_capacity(LABEL_PREFIX.len() + label.len());
        full_label.extend_from_slice(LABEL_PREFIX);
        full_label.extend_from_slice(label);
        put_vec(&mut info, &full_label)?;
        put_vec(&mut info, context)?;
        self.expand(secret, &info, len)
    }

    /// `DeriveSecret(secret, label) = ExpandWithLabel(secret, label, "", Nh)`
    /// (RFC 9420 5.1.3).
    ///
    /// # Errors
    ///
    /// As [`MlsSuite::expand_with_label`].
    pub fn derive_secret(self, secret: &Secret, label: impl AsRef<[u8]>) -> Res<Secret> {
        self.expand_with_label(secret, label, &[], self.nh())
    }

    /// `DeriveTreeSecret(secret, label, generation, len) =
    /// ExpandWithLabel(secret, label, uint32 generation, len)` (RFC 9420 9).
    ///
    /// # Errors
    ///
    /// As [`MlsSuite::expand_with_label`].
    pub fn derive_tree_secret(
        self,
        secret: &Secret,
        label: impl AsRef<[u8]>,
        generation: u32,
        len: usize,
    ) -> Res<Secret> {
        self.expand_with_label(secret, label, &generation.to_be_bytes(), len)
    }

    /// `RefHash(label, value) = Hash(RefHashInput)` with
    /// `RefHashInput = { opaque label<V>; opaque value<V>; }` (RFC 9420 5.2).
    /// The label is used as given (callers pass e.g.
    /// `"MLS 1.0 KeyPackage Reference"`).
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] if a vector does not fit a varint.
    pub fn ref_hash(self, label: impl AsRef<[u8]>, value: &[u8]) -> Res<Vec<u8>> {
        let label = label.as_ref();
        let mut input = Vec::with_capacity(label.len() + value.len() + 8);
        put_vec(&mut input, label)?;
        put_vec(&mut input, value)?;
        Ok(self.hash(&input))
    }

    /// `MAC(key, data)`: HMAC with the suite's hash (RFC 9420 5.1).
    ///
    /// # Errors
    ///
    /// Never in practice (HMAC accepts any key length); kept fallible for
    /// the crate's conventions.
    pub fn mac(self, key: &Secret, data: &[u8]) -> Res<Vec<u8>> {
        const KEY: Error = Error::Usage("hmac key");
        Ok(match self.hash_algorithm() {
            MlsHash::Sha256 => {
                let mut m =
                    <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose()).map_err(|_| KEY)?;
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            MlsHash::Sha384 => {
                let mut m =
                    <Hmac<Sha384> as KeyInit>::new_from_slice(key.expose()).map_err(|_| KEY)?;
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            MlsHash::Sha512 => {
                let mut m =
                    <Hmac<Sha512> as KeyInit>::new_from_slice(key.expose()).map_err(|_| KEY)?;
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        })
    }

    /// Checks `tag == MAC(key, data)` in constant time.
    ///
    /// # Errors
    ///
    /// [`Error::Crypto`] if the tag does not match.
    pub fn verify_mac(self, key: &Secret, data: &[u8], tag: &[u8]) -> Res<()> {
        let expected = self.mac(key, data)?;
        if ct_eq(&expected, tag) {
            Ok(())
        } else {
            Err(Error::Crypto)
        }
    }

    fn hpke_aead(self) -> AeadAlgorithm {
        match self.aead() {
            MlsAead::Aes128Gcm => AeadAlgorithm::Aes128Gcm,
            MlsAead::Aes256Gcm => AeadAlgorithm::Aes256Gcm,
            MlsAead::ChaCha20Poly1305 => AeadAlgorithm::ChaCha20Poly1305,
        }
    }

    fn check_key_nonce(self, key: &Secret, nonce: &Secret) -> Res<()> {
        if key.len() != self.nk() {
            return Err(Error::Usage("aead key length is not Nk"));
        }
        if nonce.len() != self.nn() {
            return Err(Error::Usage("aead nonce length is not Nn"));
        }
        Ok(())
    }

    /// `AEAD.Seal(key, nonce, aad, plaintext)`; the result is the
    /// ciphertext followed by the 16-byte tag.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] if the key is not `Nk` or the nonce not `Nn` bytes;
    /// [`Error::Crypto`] if the AEAD implementation fails.
    pub fn aead_seal(self, key: &Secret, nonce: &Secret, aad: &[u8], pt: &[u8]) -> Res<Vec<u8>> {
        self.check_key_nonce(key, nonce)?;
        HpkeRustCrypto::aead_seal(self.hpke_aead(), key.expose(), nonce.expose(), aad, pt)
            .map_err(|_| Error::Crypto)
    }

    /// `AEAD.Open(key, nonce, aad, ciphertext)`.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] if the key is not `Nk` or the nonce not `Nn` bytes;
    /// [`Error::Crypto`] for any authentication failure (including a
    /// ciphertext shorter than the tag).
    pub fn aead_open(self, key: &Secret, nonce: &Secret, aad: &[u8], ct: &[u8]) -> Res<Vec<u8>> {
        self.check_key_nonce(key, nonce)?;
        HpkeRustCrypto::aead_open(self.hpke_aead(), key.expose(), nonce.expose(), aad, ct)
            .map_err(|_| Error::Crypto)
    }

    /// The `SignContent` bytes that are signed (RFC 9420 5.1.2):
    /// `{ opaque label<V> = "MLS 1.0 " + label; opaque content<V>; }`.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] if a vector does not fit a varint.
    pub fn sign_content(label: impl AsRef<[u8]>, content: &[u8]) -> Res<Vec<u8>> {
        let label = label.as_ref();
        let mut full_label = Vec::with_capacity(LABEL_PREFIX.len() + label.len());
        full_label.extend_from_slice(LABEL_PREFIX);
        full_label.extend_from_slice(label);
        let mut out = Vec::with_capacity(full_label.len() + content.len() + 8);
        put_vec(&mut out, &full_label)?;
        put_vec(&mut out, content)?;
        Ok(out)
    }

    /// `SignWithLabel(private_key, label, content)` (RFC 9420 5.1.2).
    ///
    /// Private keys: Ed25519 takes the 32-byte RFC 8032 seed; ECDSA P-256
    /// the 32-byte big-endian scalar. ECDSA signatures are deterministic
    /// (RFC 6979) and DER-encoded; Ed25519 signatures are 64 bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for suites 4 to 7; [`Error::Usage`] for a
    /// private key of the wrong length or value; [`Error::Crypto`] if
    /// signing fails.
    pub fn sign_with_label(
        self,
        private_key: &[u8],
        label: impl AsRef<[u8]>,
        content: &[u8],
    ) -> Res<Vec<u8>> {
        let msg = Self::sign_content(label, content)?;
        match self.signature_scheme() {
            SignatureScheme::Ed25519 => {
                use ed25519_dalek::Signer;
                let seed: &[u8; 32] = private_key
                    .try_into()
                    .map_err(|_| Error::Usage("ed25519 private key is not 32 bytes"))?;
                let key = ed25519_dalek::SigningKey::from_bytes(seed);
                Ok(key.sign(&msg).to_bytes().to_vec())
            }
            SignatureScheme::EcdsaP256Sha256 => {
                use p256::ecdsa::signature::Signer;
                let key = p256::ecdsa::SigningKey::from_slice(private_key)
                    .map_err(|_| Error::Usage("invalid p-256 private key"))?;
                let sig: p256::ecdsa::Signature = key.try_sign(&msg).map_err(|_| Error::Crypto)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            _ => Err(Error::Unsupported("mls signature scheme")),
        }
    }

    /// `VerifyWithLabel(public_key, label, content, signature)` (RFC 9420
    /// 5.1.2).
    ///
    /// Public keys: Ed25519 takes the 32-byte RFC 8032 encoding (verified
    /// with `verify_strict`); ECDSA P-256 a SEC1 point (uncompressed as in
    /// MLS, compressed also accepted) and a DER signature.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for suites 4 to 7; [`Error::Malformed`] for a
    /// public key that does not decode; [`Error::Crypto`] for any signature
    /// that does not verify (including one that does not decode).
    pub fn verify_with_label(
        self,
        public_key: &[u8],
        label: impl AsRef<[u8]>,
        content: &[u8],
        signature: &[u8],
    ) -> Res<()> {
        let msg = Self::sign_content(label, content)?;
        match self.signature_scheme() {
            SignatureScheme::Ed25519 => {
                let key: &[u8; 32] = public_key
                    .try_into()
                    .map_err(|_| Error::Malformed("ed25519 public key is not 32 bytes"))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(key)
                    .map_err(|_| Error::Malformed("ed25519 public key"))?;
                let sig =
                    ed25519_dalek::Signature::from_slice(signature).map_err(|_| Error::Crypto)?;
                key.verify_strict(&msg, &sig).map_err(|_| Error::Crypto)
            }
            SignatureScheme::EcdsaP256Sha256 => {
                use p256::ecdsa::signature::Verifier;
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| Error::Malformed("p-256 public key"))?;
                let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| Error::Crypto)?;
                key.verify(&msg, &sig).map_err(|_| Error::Crypto)
            }
            _ => Err(Error::Unsupported("mls signature scheme")),
        }
    }

    /// The public key for a private key, in the encodings
    /// [`MlsSuite::verify_with_label`] accepts (P-256: uncompressed SEC1).
    ///
    /// # Errors
    ///
    /// As [`MlsSuite::sign_with_label`].
    pub fn signature_public_key(self, private_key: &[u8]) -> Res<Vec<u8>> {
        match self.signature_scheme() {
            SignatureScheme::Ed25519 => {
                let seed: &[u8; 32] = private_key
                    .try_into()
                    .map_err(|_| Error::Usage("ed25519 private key is not 32 bytes"))?;
                let key = ed25519_dalek::SigningKey::from_bytes(seed);
                Ok(key.verifying_key().to_bytes().to_vec())
            }
            SignatureScheme::EcdsaP256Sha256 => {
                let key = p256::ecdsa::SigningKey::from_slice(private_key)
                    .map_err(|_| Error::Usage("invalid p-256 private key"))?;
                Ok(key.verifying_key().to_sec1_point(false).as_bytes().to_vec())
            }
            _ => Err(Error::Unsupported("mls signature scheme")),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::Value;

    const CRYPTO_BASICS: &str = include_str!("../../test-vectors/mls/crypto-basics.json");

    pub(crate) fn entries(json: &str) -> Vec<Value> {
        match serde_json::from_str(json).expect("vector file is JSON") {
            Value::Array(v) => v,
            _ => panic!("vector file is not an array"),
        }
    }

    pub(crate) fn unhex(s: &str) -> Vec<u8> {
        crate::test_utils::from_hex(s).expect("test vectors are hex")
    }

    pub(crate) fn hex(v: &Value, key: &str) -> Vec<u8> {
        unhex(v[key].as_str().unwrap_or_else(|| panic!("hex field {key}")))
    }

    pub(crate) fn num(v: &Value, key: &str) -> u64 {
        v[key]
            .as_u64()
            .unwrap_or_else(|| panic!("number field {key}"))
    }

    pub(crate) fn text<'a>(v: &'a Value, key: &str) -> &'a str {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("string field {key}"))
    }

    pub(crate) fn suite_of(v: &Value) -> MlsSuite {
        MlsSuite::from_code(num(v, "cipher_suite") as u16).expect("known suite")
    }

    #[test]
    fn codes_round_trip() {
        for code in 1..=7u16 {
            assert_eq!(MlsSuite::from_code(code).map(MlsSuite::code), Some(code));
        }
        for code in [0u16, 8, 0xffff] {
            assert_eq!(MlsSuite::from_code(code), None);
        }
        let s = MlsSuite::from_code(7).unwrap();
        assert_eq!((s.nh(), s.nk(), s.nn()), (48, 32, 12));
        assert!(!s.signature_scheme().is_supported());
    }

    #[test]
    fn crypto_basics_vectors() {
        let vectors = entries(CRYPTO_BASICS);
        assert_eq!(vectors.len(), 7);
        let mut signatures_checked = 0;
        for e in &vectors {
            let suite = suite_of(e);

            let r = &e["ref_hash"];
            let out = suite.ref_hash(text(r, "label"), &hex(r, "value")).unwrap();
            assert_eq!(out, hex(r, "out"), "ref_hash suite {}", suite.code());

            let x = &e["expand_with_label"];
            let out = suite
                .expand_with_label(
                    &Secret::new(hex(x, "secret")),
                    text(x, "label"),
                    &hex(x, "context"),
                    num(x, "length") as usize,
                )
                .unwrap();
            assert_eq!(out.expose(), hex(x, "out"), "expand suite {}", suite.code());

            let d = &e["derive_secret"];
            let out = suite
                .derive_secret(&Secret::new(hex(d, "secret")), text(d, "label"))
                .unwrap();
            assert_eq!(out.expose(), hex(d, "out"), "derive suite {}", suite.code());

            let t = &e["derive_tree_secret"];
            let out = suite
                .derive_tree_secret(
                    &Secret::new(hex(t, "secret")),
                    text(t, "label"),
                    u32::try_from(num(t, "generation")).unwrap(),
                    num(t, "length") as usize,
                )
                .unwrap();
            assert_eq!(out.expose(), hex(t, "out"), "tree suite {}", suite.code());

            let s = &e["sign_with_label"];
            let (private, public) = (hex(s, "priv"), hex(s, "pub"));
            let (label, content) = (text(s, "label"), hex(s, "content"));
            let given = hex(s, "signature");
            if suite.signature_scheme().is_supported() {
                suite
                    .verify_with_label(&public, label, &content, &given)
                    .unwrap();
                assert_eq!(suite.signature_public_key(&private).unwrap(), public);
                let mine = suite.sign_with_label(&private, label, &content).unwrap();
                suite
                    .verify_with_label(&public, label, &content, &mine)
                    .unwrap();
                // Wrong label, content or signature: the single crypto error.
                assert_eq!(
                    suite.verify_with_label(&public, "other", &content, &given),
                    Err(Error::Crypto)
                );
                let mut bad = content.clone();
                bad[0] ^= 1;
                assert_eq!(
                    suite.verify_with_label(&public, label, &bad, &given),
                    Err(Error::Crypto)
                );
                for i in 0..given.len() {
                    let mut bad = given.clone();
                    bad[i] ^= 0x10;
                    assert_eq!(
                        suite.verify_with_label(&public, label, &content, &bad),
                        Err(Error::Crypto),
                        "suite {} byte {i}",
                        suite.code()
                    );
                }
                for cut in 0..given.len() {
                    assert_eq!(
                        suite.verify_with_label(&public, label, &content, &given[..cut]),
                        Err(Error::Crypto)
                    );
                }
                signatures_checked += 1;
            } else {
                assert!(matches!(
                    suite.verify_with_label(&public, label, &content, &given),
                    Err(Error::Unsupported(_))
                ));
                assert!(matches!(
                    suite.sign_with_label(&private, label, &content),
                    Err(Error::Unsupported(_))
                ));
            }
        }
        assert_eq!(signatures_checked, 3);
    }

    #[test]
    fn aead_round_trip_and_failure() {
        for suite in ALL_SUITES {
            let key = Secret::new(vec![7; suite.nk()]);
            let nonce = Secret::new(vec![9; suite.nn()]);
            let ct = suite.aead_seal(&key, &nonce, b"aad", b"hello").unwrap();
            assert_eq!(ct.len(), 5 + 16);
            let pt = suite.aead_open(&key, &nonce, b"aad", &ct).unwrap();
            assert_eq!(pt, b"hello");
            assert_eq!(
                suite.aead_open(&key, &nonce, b"aaD", &ct),
                Err(Error::Crypto)
            );
            for cut in 0..ct.len() {
                assert_eq!(
                    suite.aead_open(&key, &nonce, b"aad", &ct[..cut]),
                    Err(Error::Crypto)
                );
            }
            let short = Secret::new(vec![7; suite.nk() - 1]);
            assert!(matches!(
                suite.aead_open(&short, &nonce, b"aad", &ct),
                Err(Error::Usage(_))
            ));
        }
    }

    #[test]
    fn mac_and_bad_lengths() {
        let suite = MlsSuite::from_code(1).unwrap();
        let key = Secret::new(vec![1; 32]);
        let tag = suite.mac(&key, b"data").unwrap();
        assert_eq!(tag.len(), 32);
        suite.verify_mac(&key, b"data", &tag).unwrap();
        assert_eq!(suite.verify_mac(&key, b"datA", &tag), Err(Error::Crypto));
        assert_eq!(
            suite.verify_mac(&key, b"data", &tag[..31]),
            Err(Error::Crypto)
        );
        let prk = Secret::new(vec![0; 31]);
        assert!(matches!(
            suite.expand_with_label(&prk, "x", &[], 16),
            Err(Error::Usage(_))
        ));
        let prk = Secret::new(vec![0; 32]);
        assert!(matches!(
            suite.expand_with_label(&prk, "x", &[], 70_000),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            suite.expand_with_label(&prk, "x", &[], 255 * 32 + 1),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            suite.sign_with_label(&[0; 31], "x", b""),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            suite.verify_with_label(&[0; 31], "x", b"", &[0; 64]),
            Err(Error::Malformed(_))
        ));
    }
}
