//! HPKE suites this version supports and their sizes.
//!
//! Exactly three (KEM, KDF, AEAD) combinations are defined (spec section
//! "Cipher Suites"); any other combination is rejected (OUT-2).

use hpke_rs::{hpke_types, Hpke, Mode};
use hpke_rs_rust_crypto::HpkeRustCrypto;

use crate::error::{Error, Res};

/// HPKE KEM identifier for DHKEM(X25519, HKDF-SHA256).
pub const KEM_X25519: u16 = 0x0020;
/// HPKE KEM identifier for DHKEM(P-256, HKDF-SHA256).
pub const KEM_P256: u16 = 0x0010;
/// HPKE KDF identifier for HKDF-SHA256.
pub const KDF_HKDF_SHA256: u16 = 0x0001;
/// HPKE AEAD identifier for AES-128-GCM.
pub const AEAD_AES128GCM: u16 = 0x0001;
/// HPKE AEAD identifier for ChaCha20-Poly1305.
pub const AEAD_CHACHA20POLY1305: u16 = 0x0003;

/// One of the HPKE suites of this version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HpkeSuite {
    /// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM. Mandatory to implement.
    X25519Aes128Gcm,
    /// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
    X25519ChaCha20Poly1305,
    /// DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
    P256Aes128Gcm,
}

impl HpkeSuite {
    /// All supported suites, mandatory one first.
    pub const ALL: [HpkeSuite; 3] = [
        HpkeSuite::X25519Aes128Gcm,
        HpkeSuite::X25519ChaCha20Poly1305,
        HpkeSuite::P256Aes128Gcm,
    ];

    /// The mandatory-to-implement suite.
    pub const MANDATORY: HpkeSuite = HpkeSuite::X25519Aes128Gcm;

    /// Looks a suite up by its three identifiers.
    pub fn from_ids(kem: u16, kdf: u16, aead: u16) -> Res<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.ids() == (kem, kdf, aead))
            .ok_or(Error::Unsupported("hpke suite"))
    }

    /// (kem_id, kdf_id, aead_id).
    pub fn ids(self) -> (u16, u16, u16) {
        match self {
            HpkeSuite::X25519Aes128Gcm => (KEM_X25519, KDF_HKDF_SHA256, AEAD_AES128GCM),
            HpkeSuite::X25519ChaCha20Poly1305 => {
                (KEM_X25519, KDF_HKDF_SHA256, AEAD_CHACHA20POLY1305)
            }
            HpkeSuite::P256Aes128Gcm => (KEM_P256, KDF_HKDF_SHA256, AEAD_AES128GCM),
        }
    }

    /// The KEM identifier.
    pub fn kem_id(self) -> u16 {
        self.ids().0
    }

    /// The KDF identifier.
    pub fn kdf_id(self) -> u16 {
        self.ids().1
    }

    /// The AEAD identifier.
    pub fn aead_id(self) -> u16 {
        self.ids().2
    }

    /// Length of the KEM encapsulation `enc` (Nenc).
    pub fn n_enc(self) -> usize {
        kem_n_enc(self.kem_id()).unwrap_or(0)
    }

    /// AEAD key length (Nk).
    pub fn n_k(self) -> usize {
        aead_sizes(self.aead_id()).map(|s| s.0).unwrap_or(0)
    }

    /// AEAD nonce length (Nn).
    pub fn n_n(self) -> usize {
        aead_sizes(self.aead_id()).map(|s| s.1).unwrap_or(0)
    }

    /// AEAD tag length (Nt).
    pub fn n_t(self) -> usize {
        16
    }

    /// A short name for humans.
    pub fn name(self) -> &'static str {
        match self {
            HpkeSuite::X25519Aes128Gcm => "DHKEM(X25519)/HKDF-SHA256/AES-128-GCM",
            HpkeSuite::X25519ChaCha20Poly1305 => "DHKEM(X25519)/HKDF-SHA256/ChaCha20-Poly1305",
            HpkeSuite::P256Aes128Gcm => "DHKEM(P-256)/HKDF-SHA256/AES-128-GCM",
        }
    }

    /// A base-mode hpke-rs instance for this suite, seeded from the OS.
    pub fn hpke(self) -> Res<Hpke<HpkeRustCrypto>> {
        let (kem, kdf, aead) = self.hpke_types();
        Hpke::try_new(Mode::Base, kem, kdf, aead).map_err(|_| Error::Randomness)
    }

    pub(crate) fn hpke_types(
        self,
    ) -> (
        hpke_types::KemAlgorithm,
        hpke_types::KdfAlgorithm,
        hpke_types::AeadAlgorithm,
    ) {
        let kem = match self.kem_id() {
            KEM_P256 => hpke_types::KemAlgorithm::DhKemP256,
            _ => hpke_types::KemAlgorithm::DhKem25519,
        };
        let aead = match self.aead_id() {
            AEAD_CHACHA20POLY1305 => hpke_types::AeadAlgorithm::ChaCha20Poly1305,
            _ => hpke_types::AeadAlgorithm::Aes128Gcm,
        };
        (kem, hpke_types::KdfAlgorithm::HkdfSha256, aead)
    }
}

/// Nenc for a KEM identifier, if supported.
pub fn kem_n_enc(kem_id: u16) -> Option<usize> {
    match kem_id {
        KEM_X25519 => Some(32),
        KEM_P256 => Some(65),
        _ => None,
    }
}

/// (Nk, Nn) for an AEAD identifier, if supported.
pub fn aead_sizes(aead_id: u16) -> Option<(usize, usize)> {
    match aead_id {
        AEAD_AES128GCM => Some((16, 12)),
        AEAD_CHACHA20POLY1305 => Some((32, 12)),
        _ => None,
    }
}

/// The largest Nenc of any supported KEM.
pub const MAX_N_ENC: usize = 65;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for s in HpkeSuite::ALL {
            let (k, d, a) = s.ids();
            assert_eq!(HpkeSuite::from_ids(k, d, a), Ok(s));
        }
        assert!(HpkeSuite::from_ids(KEM_P256, KDF_HKDF_SHA256, AEAD_CHACHA20POLY1305).is_err());
        assert!(HpkeSuite::from_ids(0x0021, 1, 1).is_err());
    }
}
