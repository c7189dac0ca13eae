//! A test-only HPKE crypto provider whose PRNG replays fixed bytes, so
//! that the vector generator reproduces `enc` exactly: DHKEM encapsulation
//! draws Nsk bytes and runs DeriveKeyPair on them, so replaying `ikm_e`
//! gives RFC 9180's `enc` for that `ikm_e`. Everything but the PRNG is
//! delegated to the RustCrypto provider. Compiled only for tests and with
//! the `vectors` feature; never use it to protect real traffic.

use std::string::String;
use std::vec::Vec;

use hpke_rs_crypto::error::Error;
use hpke_rs_crypto::types::{
    AeadAlgorithm, KdfAlgorithm, KemAlgorithm, SingleStageKdfAlgorithm, TwoStageKdfAlgorithm,
};
use hpke_rs_crypto::HpkeCrypto;
use hpke_rs_rust_crypto::HpkeRustCrypto;

/// A PRNG that hands out the bytes it was given, then fails.
#[derive(Debug, Default)]
pub struct ReplayRng {
    bytes: Vec<u8>,
    pos: usize,
}

impl ReplayRng {
    /// A PRNG replaying `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        ReplayRng {
            bytes: bytes.to_vec(),
            pos: 0,
        }
    }

    /// Bytes not yet handed out.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
}

/// Error of an exhausted [`ReplayRng`].
#[derive(Debug)]
pub struct Exhausted;

impl core::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("replay rng exhausted")
    }
}

impl core::error::Error for Exhausted {}

impl rand::TryRng for ReplayRng {
    type Error = Exhausted;

    fn try_next_u32(&mut self) -> Result<u32, Exhausted> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Exhausted> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Exhausted> {
        if dst.len() > self.remaining() {
            return Err(Exhausted);
        }
        dst.copy_from_slice(&self.bytes[self.pos..self.pos + dst.len()]);
        self.pos += dst.len();
        Ok(())
    }
}

impl rand::TryCryptoRng for ReplayRng {}

/// The RustCrypto provider with a [`ReplayRng`].
#[derive(Debug)]
pub struct ReplayCrypto;

impl HpkeCrypto for ReplayCrypto {
    type HpkePrng = ReplayRng;

    fn name() -> String {
        "RustCrypto with replayed randomness (test only)".into()
    }

    fn supports_kdf(alg: KdfAlgorithm) -> Result<(), Error> {
        HpkeRustCrypto::supports_kdf(alg)
    }

    fn supports_kem(alg: KemAlgorithm) -> Result<(), Error> {
        HpkeRustCrypto::supports_kem(alg)
    }

    fn supports_aead(alg: AeadAlgorithm) -> Result<(), Error> {
        HpkeRustCrypto::supports_aead(alg)
    }

    fn kdf_extract(alg: TwoStageKdfAlgorithm, salt: &[u8], ikm: &[u8]) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::kdf_extract(alg, salt, ikm)
    }

    fn kdf_expand(
        alg: TwoStageKdfAlgorithm,
        prk: &[u8],
        info: &[u8],
        output_size: usize,
    ) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::kdf_expand(alg, prk, info, output_size)
    }

    fn kdf_derive(alg: SingleStageKdfAlgorithm, ikm: &[u8], l: usize) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::kdf_derive(alg, ikm, l)
    }

    fn dh(alg: KemAlgorithm, pk: &[u8], sk: &[u8]) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::dh(alg, pk, sk)
    }

    fn secret_to_public(alg: KemAlgorithm, sk: &[u8]) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::secret_to_public(alg, sk)
    }

    fn kem_key_gen(
        alg: KemAlgorithm,
        prng: &mut Self::HpkePrng,
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let mut seed = vec![0u8; alg.private_key_len()];
        rand::TryRng::try_fill_bytes(prng, &mut seed).map_err(|_| Error::InsufficientRandomness)?;
        HpkeRustCrypto::kem_key_gen_derand(alg, &seed)
    }

    fn kem_key_gen_derand(alg: KemAlgorithm, seed: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
        HpkeRustCrypto::kem_key_gen_derand(alg, seed)
    }

    fn kem_encaps(
        _alg: KemAlgorithm,
        _pk_r: &[u8],
        _prng: &mut Self::HpkePrng,
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        Err(Error::UnsupportedKemOperation)
    }

    fn kem_encaps_derand(
        alg: KemAlgorithm,
        pk_r: &[u8],
        randomness: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        HpkeRustCrypto::kem_encaps_derand(alg, pk_r, randomness)
    }

    fn kem_decaps(alg: KemAlgorithm, ct: &[u8], sk_r: &[u8]) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::kem_decaps(alg, ct, sk_r)
    }

    fn dh_validate_sk(alg: KemAlgorithm, sk: &[u8]) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::dh_validate_sk(alg, sk)
    }

    fn aead_seal(
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        msg: &[u8],
    ) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::aead_seal(alg, key, nonce, aad, msg)
    }

    fn aead_open(
        alg: AeadAlgorithm,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        msg: &[u8],
    ) -> Result<Vec<u8>, Error> {
        HpkeRustCrypto::aead_open(alg, key, nonce, aad, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::{from_hex, to_hex};
    use hpke_rs::{Hpke, HpkePublicKey, Mode};

    /// RFC 9180 Appendix A.1.1 (DHKEM(X25519), HKDF-SHA256, AES-128-GCM,
    /// base mode): replaying ikmE yields the RFC's enc.
    #[test]
    fn replaying_ikm_e_reproduces_rfc9180_enc() {
        let ikm_e =
            from_hex("7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234").unwrap();
        let pk_r =
            from_hex("3948cfe0ad1ddb695d780e59077195da6c56506b207d3b5ff0451b6cd4d7b5d8").unwrap();
        let mut hpke = Hpke::<ReplayCrypto>::new_with_rng(
            Mode::Base,
            KemAlgorithm::DhKem25519,
            KdfAlgorithm::HkdfSha256,
            AeadAlgorithm::Aes128Gcm,
            ReplayRng::new(&ikm_e),
        );
        let (enc, _ctx) = hpke
            .setup_sender(&HpkePublicKey::new(pk_r), b"info", None, None, None)
            .unwrap();
        assert_eq!(
            to_hex(&enc),
            "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431"
        );
    }
}
