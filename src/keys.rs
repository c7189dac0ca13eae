//! The hub's HPKE key pairs (hub keys and policy keys) with their
//! published configurations: what the front-end, the policy engine and the
//! key layer share, one level below all three.

use hpke_rs::{HpkePrivateKey, HpkePublicKey};

use crate::config::{KeyConfig, KeyUse, SymmetricAlgorithm};
use crate::error::{Error, Res};
use crate::hpke::InfoContext;
use crate::secret::Secret;
use crate::suite::HpkeSuite;
use crate::token::{RoutingToken, TOKEN_LEN};
use crate::wire::OuterHeader;

/// One HPKE key pair the hub holds, with its published configuration.
pub struct HubKeyPair {
    /// The published configuration of this key.
    pub config: KeyConfig,
    /// The private key, for the hub layer's in-place HPKE.
    secret: Secret,
    /// The same key as hpke-rs holds it, for the key layer.
    private_key: HpkePrivateKey,
    /// The hub layer's `info` of this key for each suite it offers, as the
    /// key schedule's context (computed once, not per envelope).
    info_contexts: Vec<InfoContext>,
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
        let (secret, pk) = crate::hpke::derive_key_pair(first, ikm)
            .map_err(|_| Error::Usage("key derivation failed"))?;
        let config = KeyConfig {
            key_id,
            key_use: key_use.code(),
            kem_id: first.kem_id(),
            public_key: crate::codec::Opaque(pk),
            symmetric: suites
                .iter()
                .map(|s| SymmetricAlgorithm {
                    kdf_id: s.kdf_id(),
                    aead_id: s.aead_id(),
                })
                .collect(),
            not_after,
        };
        let info_contexts = suites
            .iter()
            .map(|&suite| {
                let header = OuterHeader {
                    token: RoutingToken([0; TOKEN_LEN]),
                    key_id,
                    suite,
                };
                InfoContext::new(suite, &header.hpke_info())
            })
            .collect();
        Ok(HubKeyPair {
            config,
            private_key: HpkePrivateKey::new(secret.expose().to_vec()),
            secret,
            info_contexts,
        })
    }

    /// The public key.
    pub fn public_key(&self) -> HpkePublicKey {
        HpkePublicKey::new(self.config.public_key.0.clone())
    }

    pub(crate) fn private_key(&self) -> &HpkePrivateKey {
        &self.private_key
    }

    /// The key schedule context of the hub layer's `info` for this key and
    /// `suite`, if the key offers it.
    pub(crate) fn info_context(&self, suite: HpkeSuite) -> Option<&InfoContext> {
        self.info_contexts.iter().find(|c| c.suite() == suite)
    }

    /// The private key's bytes (the hub layer's HPKE).
    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }
}
