//! A hub's key material on disk (`mimi-onion-service init`): what a hub
//! process, a balancer and a client each read.
//!
//! - `hub-keys.json` (mode 0600, the hub only): the input keying material
//!   of the hub and policy HPKE keys, the token keys, the seed of the
//!   configuration-signing key, the shard count and the lobby shard.
//! - `balancer-keys.json` (the balancers only): the token keys and the
//!   shard count, nothing else.
//! - `hub-signing-key.hex`: the public configuration-signing key, which a
//!   room's creator puts in the GroupContext (component 0x8A01) and from
//!   which every client verifies the served configuration (CFG-1).

use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use mimi_onion::config::{HubSigningKey, KeyUse, SignedHubConfiguration};
use mimi_onion::hub::HubFrontEnd;
use mimi_onion::keys::HubKeyPair;
use mimi_onion::state::HubStore;
use mimi_onion::suite::HpkeSuite;
use mimi_onion::test_utils::{from_hex, to_hex};
use mimi_onion::token::{TokenKey, TokenKeys};
use rand::Rng as _;
use serde_json::{json, Value};

use crate::{Error, Result};

/// File names inside a key directory.
pub const HUB_KEYS_FILE: &str = "hub-keys.json";
/// The balancers' file.
pub const BALANCER_KEYS_FILE: &str = "balancer-keys.json";
/// The public configuration-signing key, hex.
pub const SIGNING_KEY_FILE: &str = "hub-signing-key.hex";

/// One HPKE key of the hub: derived from `ikm` (HPKE DeriveKeyPair).
#[derive(Clone, Debug)]
pub struct KeySpec {
    /// Its key id.
    pub key_id: u8,
    /// Hub or policy.
    pub key_use: KeyUse,
    /// The suites it offers (one KEM).
    pub suites: Vec<HpkeSuite>,
    /// Input keying material.
    pub ikm: Vec<u8>,
    /// Last second of use.
    pub not_after: u64,
}

/// A token key.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    /// Its codepoint (0 to 6).
    pub codepoint: u8,
    /// The AES-128 key.
    pub key: [u8; 16],
    /// Last second of use.
    pub not_after: u64,
}

/// Everything `hub-keys.json` holds.
#[derive(Clone, Debug)]
pub struct HubKeys {
    /// Number of shards.
    pub shard_count: u32,
    /// The shard for messages that name no group.
    pub lobby_shard: u32,
    /// Serial of the configuration.
    pub serial: u64,
    /// Hub and policy keys.
    pub hpke_keys: Vec<KeySpec>,
    /// Token keys.
    pub token_keys: Vec<TokenSpec>,
    /// Seed of the Ed25519 configuration-signing key.
    pub signing_seed: [u8; 32],
}

/// What the balancers hold.
#[derive(Clone, Debug)]
pub struct BalancerKeys {
    /// Number of shards.
    pub shard_count: u32,
    /// Token keys.
    pub token_keys: Vec<TokenSpec>,
}

fn suite_ids(s: HpkeSuite) -> Value {
    let (k, d, a) = s.ids();
    json!([k, d, a])
}

fn token_json(t: &TokenSpec) -> Value {
    json!({"codepoint": t.codepoint, "key": to_hex(&t.key), "not_after": t.not_after})
}

impl HubKeys {
    /// Fresh random key material: hub key 1 (X25519 with AES-128-GCM and
    /// ChaCha20-Poly1305), policy key 1 (X25519, AES-128-GCM), token key 0,
    /// each live for `lifetime` seconds from `now`.
    pub fn generate(shard_count: u32, lobby_shard: u32, now: u64, lifetime: u64) -> Result<Self> {
        if shard_count == 0 || lobby_shard >= shard_count {
            return Err(Error::Usage("lobby shard must be below the shard count"));
        }
        let mut rng = rand::rng();
        let not_after = now.saturating_add(lifetime);
        let ikm = |rng: &mut rand::rngs::ThreadRng| {
            let mut b = vec![0u8; 32];
            rng.fill_bytes(&mut b);
            b
        };
        let hpke_keys = vec![
            KeySpec {
                key_id: 1,
                key_use: KeyUse::Hub,
                suites: vec![
                    HpkeSuite::X25519Aes128Gcm,
                    HpkeSuite::X25519ChaCha20Poly1305,
                ],
                ikm: ikm(&mut rng),
                not_after,
            },
            KeySpec {
                key_id: 1,
                key_use: KeyUse::Policy,
                suites: vec![HpkeSuite::X25519Aes128Gcm],
                ikm: ikm(&mut rng),
                not_after,
            },
        ];
        let mut key = [0u8; 16];
        rng.fill_bytes(&mut key);
        let mut signing_seed = [0u8; 32];
        rng.fill_bytes(&mut signing_seed);
        Ok(HubKeys {
            shard_count,
            lobby_shard,
            serial: 1,
            hpke_keys,
            token_keys: vec![TokenSpec {
                codepoint: 0,
                key,
                not_after,
            }],
            signing_seed,
        })
    }

    /// Writes the three files into `dir` (created if missing).
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let keys: Vec<Value> = self
            .hpke_keys
            .iter()
            .map(|k| {
                json!({
                    "key_id": k.key_id,
                    "key_use": if k.key_use == KeyUse::Hub { "hub" } else { "policy" },
                    "suites": k.suites.iter().map(|s| suite_ids(*s)).collect::<Vec<_>>(),
                    "ikm": to_hex(&k.ikm),
                    "not_after": k.not_after,
                })
            })
            .collect();
        let tokens: Vec<Value> = self.token_keys.iter().map(token_json).collect();
        let hub = json!({
            "shard_count": self.shard_count,
            "lobby_shard": self.lobby_shard,
            "serial": self.serial,
            "hpke_keys": keys,
            "token_keys": tokens,
            "signing_seed": to_hex(&self.signing_seed),
        });
        write_private(&dir.join(HUB_KEYS_FILE), &pretty(&hub)?)?;
        let balancer = json!({"shard_count": self.shard_count, "token_keys": tokens});
        write_private(&dir.join(BALANCER_KEYS_FILE), &pretty(&balancer)?)?;
        let public = self.signing_component()?;
        std::fs::write(
            dir.join(SIGNING_KEY_FILE),
            format!("{}\n", to_hex(&public.public_key.0)),
        )?;
        Ok(())
    }

    /// Reads `hub-keys.json`.
    pub fn read(path: &Path) -> Result<Self> {
        let v = read_json(path)?;
        let hpke_keys = arr(&v, "hpke_keys")?
            .iter()
            .map(|k| {
                let key_use = match k.get("key_use").and_then(Value::as_str) {
                    Some("hub") => KeyUse::Hub,
                    Some("policy") => KeyUse::Policy,
                    _ => return Err(Error::Config("key_use")),
                };
                let suites = arr(k, "suites")?
                    .iter()
                    .map(|s| {
                        let id = |i: usize| {
                            s.get(i)
                                .and_then(Value::as_u64)
                                .and_then(|x| u16::try_from(x).ok())
                                .ok_or(Error::Config("suite ids"))
                        };
                        HpkeSuite::from_ids(id(0)?, id(1)?, id(2)?)
                            .map_err(|_| Error::Config("unknown suite"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(KeySpec {
                    key_id: u8::try_from(num(k, "key_id")?).map_err(|_| Error::Config("key_id"))?,
                    key_use,
                    suites,
                    ikm: hex(k, "ikm")?,
                    not_after: num(k, "not_after")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let seed = hex(&v, "signing_seed")?;
        Ok(HubKeys {
            shard_count: u32::try_from(num(&v, "shard_count")?)
                .map_err(|_| Error::Config("shard_count"))?,
            lobby_shard: u32::try_from(num(&v, "lobby_shard")?)
                .map_err(|_| Error::Config("lobby_shard"))?,
            serial: num(&v, "serial")?,
            hpke_keys,
            token_keys: read_tokens(&v)?,
            signing_seed: seed.try_into().map_err(|_| Error::Config("signing_seed"))?,
        })
    }

    /// The configuration-signing key.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_bytes(&self.signing_seed)
    }

    /// Its public half as the GroupContext component carries it.
    pub fn signing_component(&self) -> Result<HubSigningKey> {
        Ok(HubSigningKey::ed25519(&self.signing_key().verifying_key()))
    }

    /// The token keys.
    pub fn tokens(&self) -> Result<TokenKeys> {
        token_keys(&self.token_keys)
    }

    /// A front-end over `store` with these keys, its signing key set.
    pub fn front_end<S: HubStore>(&self, store: S) -> Result<HubFrontEnd<S>> {
        let pairs = self
            .hpke_keys
            .iter()
            .map(|k| HubKeyPair::derive(k.key_id, k.key_use, &k.suites, &k.ikm, k.not_after))
            .collect::<mimi_onion::Res<Vec<_>>>()?;
        let mut hub = HubFrontEnd::new(
            pairs,
            self.tokens()?,
            self.shard_count,
            self.lobby_shard,
            store,
        )?;
        hub.set_signing_key(self.signing_component()?);
        Ok(hub)
    }

    /// The signed configuration the hub serves.
    pub fn signed_configuration<S: HubStore>(
        &self,
        hub: &HubFrontEnd<S>,
    ) -> Result<SignedHubConfiguration> {
        Ok(hub.configuration(self.serial).sign(&self.signing_key())?)
    }
}

impl BalancerKeys {
    /// Reads `balancer-keys.json` (or `hub-keys.json`, whose token part is
    /// the same).
    pub fn read(path: &Path) -> Result<Self> {
        let v = read_json(path)?;
        Ok(BalancerKeys {
            shard_count: u32::try_from(num(&v, "shard_count")?)
                .map_err(|_| Error::Config("shard_count"))?,
            token_keys: read_tokens(&v)?,
        })
    }

    /// The token keys.
    pub fn tokens(&self) -> Result<TokenKeys> {
        token_keys(&self.token_keys)
    }
}

/// Reads `hub-signing-key.hex`: the configuration-signing key a client
/// takes from its room's GroupContext.
pub fn read_signing_key(path: &Path) -> Result<HubSigningKey> {
    let text = std::fs::read_to_string(path)?;
    let bytes: [u8; 32] = from_hex(text.trim())
        .map_err(|_| Error::Config("signing key hex"))?
        .try_into()
        .map_err(|_| Error::Config("signing key length"))?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| Error::Config("signing key"))?;
    Ok(HubSigningKey::ed25519(&key))
}

fn token_keys(specs: &[TokenSpec]) -> Result<TokenKeys> {
    let keys = specs
        .iter()
        .map(|t| TokenKey::new(t.codepoint, t.key, t.not_after))
        .collect::<mimi_onion::Res<Vec<_>>>()?;
    Ok(TokenKeys::new(keys)?)
}

fn read_tokens(v: &Value) -> Result<Vec<TokenSpec>> {
    arr(v, "token_keys")?
        .iter()
        .map(|t| {
            Ok(TokenSpec {
                codepoint: u8::try_from(num(t, "codepoint")?)
                    .map_err(|_| Error::Config("codepoint"))?,
                key: hex(t, "key")?
                    .try_into()
                    .map_err(|_| Error::Config("token key length"))?,
                not_after: num(t, "not_after")?,
            })
        })
        .collect()
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|_| Error::Config("key file is not JSON"))
}

fn pretty(v: &Value) -> Result<String> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|_| Error::Config("json"))
}

fn arr<'a>(v: &'a Value, key: &'static str) -> Result<&'a Vec<Value>> {
    v.get(key)
        .and_then(Value::as_array)
        .ok_or(Error::Config(key))
}

fn num(v: &Value, key: &'static str) -> Result<u64> {
    v.get(key).and_then(Value::as_u64).ok_or(Error::Config(key))
}

fn hex(v: &Value, key: &'static str) -> Result<Vec<u8>> {
    v.get(key)
        .and_then(Value::as_str)
        .and_then(|s| from_hex(s).ok())
        .ok_or(Error::Config(key))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
