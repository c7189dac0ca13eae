//! The hub's key configurations and their authentication through the group
//! (spec section "Hub Configuration", CFG-1 to CFG-3).
//!
//! ```text
//! enum { hub(1), policy(2), (255) } KeyUse;
//! struct { uint16 kdf_id; uint16 aead_id; } SymmetricAlgorithm;
//! struct {
//!   uint8 key_id; KeyUse key_use; uint16 kem_id; opaque public_key<V>;
//!   SymmetricAlgorithm symmetric<V>; uint64 not_after;
//! } KeyConfig;
//! struct { uint64 serial; KeyConfig keys<V>; } HubConfiguration;
//! struct { HubConfiguration configuration; opaque signature<V>; } SignedHubConfiguration;
//! struct { uint16 signature_scheme; opaque public_key<V>; } HubSigningKey;
//! ```
//!
//! The signature is Ed25519 over
//! `struct { opaque label<V>; opaque content<V>; }` with label
//! `"mimi-onion v1 hub configuration"` and content the encoded
//! `HubConfiguration`. The signing key reaches clients in the group's
//! GroupContext, as component [`HUB_SIGNING_KEY_COMPONENT`] of the
//! `app_data_dictionary` extension (draft-ietf-mls-extensions).

use std::collections::HashMap;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use tls_codec::{DeserializeBytes, Serialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

use crate::codec::{put_vec, Opaque};
use crate::error::{Error, Res};
use crate::labels;
use crate::suite::{kem_n_enc, HpkeSuite, KEM_P256, KEM_X25519};

/// Component id (private-use range) of the hub configuration-signing key.
pub const HUB_SIGNING_KEY_COMPONENT: u16 = 0x8A01;
/// TLS SignatureScheme value of Ed25519.
pub const SIGNATURE_SCHEME_ED25519: u16 = 0x0807;
/// At most this many keys per key use are live at once.
pub const MAX_KEYS_PER_USE: usize = 2;

/// What a key is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyUse {
    /// The hub key: the hub layer is sealed to it.
    Hub,
    /// The policy key: the key layer is sealed to it.
    Policy,
}

impl KeyUse {
    /// Wire code.
    pub fn code(self) -> u8 {
        match self {
            KeyUse::Hub => 1,
            KeyUse::Policy => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(KeyUse::Hub),
            2 => Some(KeyUse::Policy),
            _ => None,
        }
    }
}

/// A KDF/AEAD pair offered for a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserializeBytes)]
pub struct SymmetricAlgorithm {
    /// HPKE KDF id.
    pub kdf_id: u16,
    /// HPKE AEAD id.
    pub aead_id: u16,
}

/// One HPKE key configuration.
#[derive(Clone, Debug, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserializeBytes)]
pub struct KeyConfig {
    /// The key id senders put in the header.
    pub key_id: u8,
    /// [`KeyUse`] code.
    pub key_use: u8,
    /// HPKE KEM id.
    pub kem_id: u16,
    /// The encoded public key (`SerializePublicKey`).
    pub public_key: Opaque,
    /// KDF/AEAD pairs senders may use with this key.
    pub symmetric: Vec<SymmetricAlgorithm>,
    /// Seconds since the Unix epoch after which the key must not be used.
    pub not_after: u64,
}

impl KeyConfig {
    /// The key use, if known.
    pub fn key_use(&self) -> Option<KeyUse> {
        KeyUse::from_code(self.key_use)
    }

    /// The offered suites this implementation supports, in the order listed.
    pub fn suites(&self) -> Vec<HpkeSuite> {
        self.symmetric
            .iter()
            .filter_map(|s| HpkeSuite::from_ids(self.kem_id, s.kdf_id, s.aead_id).ok())
            .collect()
    }

    /// True if `suite` is offered for this key (OUT-2).
    pub fn offers(&self, suite: HpkeSuite) -> bool {
        suite.kem_id() == self.kem_id
            && self
                .symmetric
                .iter()
                .any(|s| (s.kdf_id, s.aead_id) == (suite.kdf_id(), suite.aead_id()))
    }

    fn check(&self, now: u64) -> Res<()> {
        if self.key_use().is_none() {
            return Err(Error::Config("unknown key use"));
        }
        let n_pk = match self.kem_id {
            KEM_X25519 => 32,
            KEM_P256 => 65,
            _ => return Err(Error::Config("unknown kem")),
        };
        debug_assert_eq!(kem_n_enc(self.kem_id), Some(n_pk));
        if self.public_key.0.len() != n_pk {
            return Err(Error::Config("malformed public key"));
        }
        // P-256: an uncompressed point on the curve, not the identity.
        if self.kem_id == KEM_P256
            && (self.public_key.0[0] != 4
                || p256::PublicKey::from_sec1_bytes(&self.public_key.0).is_err())
        {
            return Err(Error::Config("malformed public key"));
        }
        if self.suites().is_empty() {
            return Err(Error::Config("no supported kdf/aead pair"));
        }
        if self.not_after <= now {
            return Err(Error::Config("key expired"));
        }
        Ok(())
    }
}

/// The set of keys a hub serves.
#[derive(Clone, Debug, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserializeBytes)]
pub struct HubConfiguration {
    /// Increases with every new configuration.
    pub serial: u64,
    /// The keys.
    pub keys: Vec<KeyConfig>,
}

impl HubConfiguration {
    /// Checks CFG-2 at time `now` (Unix seconds): at most two keys per use,
    /// distinct key ids per use, known suites, well-formed keys, none
    /// expired, at least one key of each use.
    pub fn check(&self, now: u64) -> Res<()> {
        for use_ in [KeyUse::Hub, KeyUse::Policy] {
            let keys: Vec<&KeyConfig> = self
                .keys
                .iter()
                .filter(|k| k.key_use() == Some(use_))
                .collect();
            if keys.is_empty() {
                return Err(Error::Config("a key use has no key"));
            }
            if keys.len() > MAX_KEYS_PER_USE {
                return Err(Error::Config("more than two keys for one use"));
            }
            if keys.len() == 2 && keys[0].key_id == keys[1].key_id {
                return Err(Error::Config("duplicate key id"));
            }
        }
        self.keys.iter().try_for_each(|k| k.check(now))
    }

    /// The key with `key_id` for `key_use`.
    pub fn key(&self, key_use: KeyUse, key_id: u8) -> Option<&KeyConfig> {
        self.keys
            .iter()
            .find(|k| k.key_use() == Some(key_use) && k.key_id == key_id)
    }

    /// The newest key for `key_use` (the last one listed).
    pub fn current(&self, key_use: KeyUse) -> Option<&KeyConfig> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.key_use() == Some(key_use))
    }

    fn to_be_signed(&self) -> Res<Vec<u8>> {
        let content = self.tls_serialize_detached()?;
        let mut tbs = Vec::with_capacity(content.len() + 40);
        put_vec(&mut tbs, labels::HUB_CONFIGURATION)?;
        put_vec(&mut tbs, &content)?;
        Ok(tbs)
    }

    /// Signs the configuration with the hub's configuration-signing key.
    pub fn sign(self, key: &SigningKey) -> Res<SignedHubConfiguration> {
        let sig = key.sign(&self.to_be_signed()?);
        Ok(SignedHubConfiguration {
            configuration: self,
            signature: Opaque(sig.to_bytes().to_vec()),
        })
    }
}

/// A configuration with the hub's signature, as served to clients.
#[derive(Clone, Debug, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserializeBytes)]
pub struct SignedHubConfiguration {
    /// The configuration.
    pub configuration: HubConfiguration,
    /// Ed25519 signature.
    pub signature: Opaque,
}

impl SignedHubConfiguration {
    /// Encodes for serving.
    pub fn to_bytes(&self) -> Res<Vec<u8>> {
        Ok(self.tls_serialize_detached()?)
    }

    /// Decodes, rejecting trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Res<Self> {
        Ok(Self::tls_deserialize_exact_bytes(bytes)?)
    }

    /// CFG-1 and CFG-2: verifies the signature under `signing_key` (taken
    /// from the group's component) and checks the content at time `now`
    /// (Unix seconds, from the caller's clock).
    pub fn verify(&self, signing_key: &HubSigningKey, now: u64) -> Res<VerifiedHubConfiguration> {
        let vk = signing_key.verifying_key()?;
        let sig = Signature::from_slice(&self.signature.0).map_err(|_| Error::Crypto)?;
        vk.verify_strict(&self.configuration.to_be_signed()?, &sig)
            .map_err(|_| Error::Crypto)?;
        self.configuration.check(now)?;
        Ok(VerifiedHubConfiguration(self.configuration.clone()))
    }
}

/// A hub configuration whose signature verified under the signing key a
/// group names, and whose content passed CFG-2 when it was verified. Only
/// [`SignedHubConfiguration::verify`] makes one, so a [`crate::sender::Sender`],
/// which requires one, never seals to keys nobody checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedHubConfiguration(HubConfiguration);

impl VerifiedHubConfiguration {
    /// The configuration.
    pub fn configuration(&self) -> &HubConfiguration {
        &self.0
    }
}

impl core::ops::Deref for VerifiedHubConfiguration {
    type Target = HubConfiguration;

    fn deref(&self) -> &HubConfiguration {
        &self.0
    }
}

/// The GroupContext component that carries the hub's configuration-signing
/// key.
#[derive(Clone, Debug, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserializeBytes)]
pub struct HubSigningKey {
    /// TLS SignatureScheme; only Ed25519 (0x0807) is defined.
    pub signature_scheme: u16,
    /// The public key.
    pub public_key: Opaque,
}

impl HubSigningKey {
    /// The component for an Ed25519 key.
    pub fn ed25519(key: &VerifyingKey) -> Self {
        HubSigningKey {
            signature_scheme: SIGNATURE_SCHEME_ED25519,
            public_key: Opaque(key.to_bytes().to_vec()),
        }
    }

    fn verifying_key(&self) -> Res<VerifyingKey> {
        if self.signature_scheme != SIGNATURE_SCHEME_ED25519 {
            return Err(Error::Unsupported("signature scheme"));
        }
        let bytes: [u8; 32] = self
            .public_key
            .0
            .as_slice()
            .try_into()
            .map_err(|_| Error::Malformed("ed25519 public key length"))?;
        VerifyingKey::from_bytes(&bytes).map_err(|_| Error::Malformed("ed25519 public key"))
    }

    /// Reads the component from the `extension_data` of a GroupContext's
    /// `app_data_dictionary` extension.
    pub fn from_app_data_dictionary(extension_data: &[u8]) -> Res<Self> {
        let dict = AppDataDictionary::from_bytes(extension_data)?;
        let data = dict
            .component(HUB_SIGNING_KEY_COMPONENT)
            .ok_or(Error::Config("group has no hub signing key component"))?;
        let key = Self::tls_deserialize_exact_bytes(data)?;
        key.verifying_key()?;
        Ok(key)
    }
}

/// One entry of the `app_data_dictionary` extension.
#[derive(Clone, Debug, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserializeBytes)]
pub struct ComponentData {
    /// The component id (`uint16` since draft-ietf-mls-extensions-09).
    pub component_id: u16,
    /// The component's data.
    pub data: Opaque,
}

/// The `app_data_dictionary` GroupContext extension of
/// draft-ietf-mls-extensions: entries sorted by strictly increasing
/// component id.
#[derive(Clone, Debug, PartialEq, Eq, TlsSize, TlsSerialize, TlsDeserializeBytes)]
pub struct AppDataDictionary {
    /// The entries.
    pub component_data: Vec<ComponentData>,
}

impl AppDataDictionary {
    /// A dictionary holding only the hub signing key component.
    pub fn with_hub_signing_key(key: &HubSigningKey) -> Res<Self> {
        Ok(AppDataDictionary {
            component_data: vec![ComponentData {
                component_id: HUB_SIGNING_KEY_COMPONENT,
                data: Opaque(key.tls_serialize_detached()?),
            }],
        })
    }

    /// Encodes as extension data.
    pub fn to_bytes(&self) -> Res<Vec<u8>> {
        Ok(self.tls_serialize_detached()?)
    }

    /// The data of the entry with `component_id`, if any (ids are
    /// strictly increasing, so there is at most one).
    pub fn component(&self, component_id: u16) -> Option<&[u8]> {
        self.component_data
            .iter()
            .find(|c| c.component_id == component_id)
            .map(|c| c.data.0.as_slice())
    }

    /// Decodes extension data; ids must be strictly increasing.
    pub fn from_bytes(bytes: &[u8]) -> Res<Self> {
        let dict = Self::tls_deserialize_exact_bytes(bytes)?;
        if dict
            .component_data
            .windows(2)
            .any(|w| w[0].component_id >= w[1].component_id)
        {
            return Err(Error::Malformed("app_data_dictionary: ids not increasing"));
        }
        Ok(dict)
    }
}

/// Extension type of `app_data_dictionary` (draft-ietf-mls-extensions).
pub const APP_DATA_DICTIONARY_EXTENSION: u16 = 0x0006;

/// Encodes one GroupContext `Extension` (`uint16 extension_type; opaque
/// extension_data<V>`) carrying an `app_data_dictionary`.
pub fn app_data_dictionary_extension(dict: &AppDataDictionary) -> Res<Vec<u8>> {
    let mut out = APP_DATA_DICTIONARY_EXTENSION.to_be_bytes().to_vec();
    put_vec(&mut out, &dict.to_bytes()?)?;
    Ok(out)
}

/// Finds the `extension_data` of the `app_data_dictionary` extension in
/// the contents of a GroupContext's `extensions` vector (the concatenated
/// `Extension` items). `None` if absent or if the list does not decode.
pub fn find_app_data_dictionary(extensions: &[u8]) -> Option<&[u8]> {
    let mut r = crate::codec::Reader::new(extensions);
    let mut found = None;
    while r.remaining() > 0 {
        let ty = r.u16("extension type").ok()?;
        let data = r.vec("extension data").ok()?;
        if ty == APP_DATA_DICTIONARY_EXTENSION {
            if found.is_some() {
                return None;
            }
            found = Some(data);
        }
    }
    found
}

/// A client's view of one hub's configuration (CFG-3): one configuration
/// set per hub, shared by all the client's rooms on that hub, so that the
/// clear key id in an envelope cannot become a per-room pseudonym.
#[derive(Debug, Default)]
pub struct HubConfigStore {
    /// (key use, key id) -> public key, for every key accepted so far and
    /// not yet expired.
    bindings: HashMap<(u8, u8), (Vec<u8>, u64)>,
    current: Option<VerifiedHubConfiguration>,
}

impl HubConfigStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts a signed configuration fetched for a room whose GroupContext
    /// carries `signing_key` (CFG-1, CFG-2), and refuses one that binds a
    /// live key id to a different public key than the store holds (CFG-3).
    pub fn accept(
        &mut self,
        signed: &SignedHubConfiguration,
        signing_key: &HubSigningKey,
        now: u64,
    ) -> Res<&VerifiedHubConfiguration> {
        let config = signed.verify(signing_key, now)?;
        self.bindings.retain(|_, (_, not_after)| *not_after > now);
        for k in &config.keys {
            if let Some((pk, _)) = self.bindings.get(&(k.key_use, k.key_id)) {
                if *pk != k.public_key.0 {
                    return Err(Error::Config("key id bound to a different public key"));
                }
            }
        }
        if let Some(cur) = &self.current {
            if config.serial < cur.serial {
                return Err(Error::Config("configuration older than the one held"));
            }
        }
        for k in &config.keys {
            self.bindings
                .insert((k.key_use, k.key_id), (k.public_key.0.clone(), k.not_after));
        }
        Ok(self.current.insert(config))
    }

    /// The configuration currently held.
    pub fn current(&self) -> Option<&VerifiedHubConfiguration> {
        self.current.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pk: [u8; 32]) -> HubConfiguration {
        let sym = vec![SymmetricAlgorithm {
            kdf_id: 1,
            aead_id: 1,
        }];
        HubConfiguration {
            serial: 1,
            keys: vec![
                KeyConfig {
                    key_id: 1,
                    key_use: 1,
                    kem_id: KEM_X25519,
                    public_key: Opaque(pk.to_vec()),
                    symmetric: sym.clone(),
                    not_after: 2_000_000_000,
                },
                KeyConfig {
                    key_id: 1,
                    key_use: 2,
                    kem_id: KEM_X25519,
                    public_key: Opaque(vec![2; 32]),
                    symmetric: sym,
                    not_after: 2_000_000_000,
                },
            ],
        }
    }

    #[test]
    fn cfg1_signature_must_verify_under_group_key() {
        let hub = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let signed = config([1; 32]).sign(&hub).unwrap();
        let bytes = signed.to_bytes().unwrap();
        let signed = SignedHubConfiguration::from_bytes(&bytes).unwrap();
        let good = HubSigningKey::ed25519(&hub.verifying_key());
        let bad = HubSigningKey::ed25519(&other.verifying_key());
        assert!(signed.verify(&good, 1_000).is_ok());
        assert_eq!(signed.verify(&bad, 1_000), Err(Error::Crypto));
        let forged = config([9; 32]).sign(&other).unwrap();
        assert_eq!(forged.verify(&good, 1_000), Err(Error::Crypto));
    }

    /// CFG-2: key counts, distinct ids, known suites, valid keys, expiry.
    #[test]
    fn cfg2_content_rules() {
        let hub = SigningKey::from_bytes(&[7; 32]);
        let key = HubSigningKey::ed25519(&hub.verifying_key());
        let signed = config([1; 32]).sign(&hub).unwrap();
        assert_eq!(
            signed.verify(&key, 2_000_000_000),
            Err(Error::Config("key expired"))
        );
        let mut three = config([1; 32]);
        for id in [2, 3] {
            let mut k = three.keys[0].clone();
            k.key_id = id;
            three.keys.push(k);
        }
        assert!(three.check(0).is_err());
        let mut bad_pk = config([1; 32]);
        bad_pk.keys[0].public_key.0.pop();
        assert!(bad_pk.check(0).is_err());
    }

    /// CFG-3: a live key id never binds another public key.
    #[test]
    fn cfg3_key_id_bound_to_one_public_key_per_hub() {
        let hub = SigningKey::from_bytes(&[7; 32]);
        let key = HubSigningKey::ed25519(&hub.verifying_key());
        let mut store = HubConfigStore::new();
        store
            .accept(&config([1; 32]).sign(&hub).unwrap(), &key, 0)
            .unwrap();
        // Same key id, other public key: a per-room key, refused.
        let other = config([3; 32]).sign(&hub).unwrap();
        assert!(store.accept(&other, &key, 0).is_err());
    }

    /// CFG-4: a configuration whose serial is lower than the one held is
    /// refused.
    #[test]
    fn cfg4_serial_never_goes_backwards() {
        let hub = SigningKey::from_bytes(&[7; 32]);
        let key = HubSigningKey::ed25519(&hub.verifying_key());
        let mut store = HubConfigStore::new();
        let mut newer = config([1; 32]);
        newer.serial = 5;
        store.accept(&newer.sign(&hub).unwrap(), &key, 0).unwrap();
        let older = config([1; 32]);
        assert_eq!(
            store.accept(&older.sign(&hub).unwrap(), &key, 0),
            Err(Error::Config("configuration older than the one held"))
        );
    }

    #[test]
    fn component_round_trip() {
        let hub = SigningKey::from_bytes(&[7; 32]);
        let key = HubSigningKey::ed25519(&hub.verifying_key());
        let dict = AppDataDictionary::with_hub_signing_key(&key).unwrap();
        let bytes = dict.to_bytes().unwrap();
        assert_eq!(
            HubSigningKey::from_app_data_dictionary(&bytes).unwrap(),
            key
        );
        for n in 0..bytes.len() {
            assert!(HubSigningKey::from_app_data_dictionary(&bytes[..n]).is_err());
        }
    }
}
