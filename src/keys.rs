//! The hub's HPKE key pairs (hub keys and policy keys) with their
//! published configurations: what the front-end, the policy engine and the
//! key layer share, one level below all three.

use hpke_rs::{HpkePrivateKey, HpkePublicKey};

use crate::config::{KeyConfig, KeyUse, SymmetricAlgorithm};
use crate::error::{Error, Res};
use crate::suite::HpkeSuite;

/// One HPKE key pair the hub holds, with its published configuration.
pub struct HubKeyPair {
    /// The published configuration of this key.
    pub config: KeyConfig,
    private_key: HpkePrivateKey,
}

impl core::fmt::Debug for HubKeyPair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HubKeyPair")
            .field("config", &self.config)
            .field("private_key", &"***")
            .finish()
    }
}

impl HubKeyPair {
    /// Derives a key pair from input keying material with HPKE's
    /// DeriveKeyPair, and its configuration for the given suites.
    pub fn derive(
        key_id: u8,
        key_use: KeyUse,
        suites: &[HpkeSuite],
        ikm: &[u8],
        not_after: u64,
    ) -> Res<Self> {
        let first = *suites.first().ok_or(Error::Usage("no suite"))?;
        if suites.iter().any(|s| s.kem_id() != first.kem_id()) {
            return Err(Error::Usage("all suites of a key share its kem"));
        }
        let kp = first
            .hpke()?
            .derive_key_pair(ikm)
            .map_err(|_| Error::Usage("key derivation failed"))?;
        let (sk, pk) = kp.into_keys();
        let config = KeyConfig {
            key_id,
            key_use: key_use.code(),
            kem_id: first.kem_id(),
            public_key: crate::codec::Opaque(pk.as_slice().to_vec()),
            symmetric: suites
                .iter()
                .map(|s| SymmetricAlgorithm {
                    kdf_id: s.kdf_id(),
                    aead_id: s.aead_id(),
                })
                .collect(),
            not_after,
        };
        Ok(HubKeyPair {
            config,
            private_key: sk,
        })
    }

    /// The public key.
    pub fn public_key(&self) -> HpkePublicKey {
        HpkePublicKey::new(self.config.public_key.0.clone())
    }

    pub(crate) fn private_key(&self) -> &HpkePrivateKey {
        &self.private_key
    }
}
