//! Routing tokens (spec section "Routing Tokens", requirements TOK-1 to TOK-6).
//!
//! A token is 17 bytes, QUIC-LB single-pass style: one config byte whose top
//! three bits are the codepoint of the token key (0 to 6; 7 is reserved for
//! "unroutable") and whose low five bits are random, followed by one AES-128
//! block encrypting `shard_id (uint32) || nonce (12 bytes)` under the token
//! key of that codepoint. The hub issues tokens; its load balancers hold the
//! same keys and recover the shard with one block decryption.

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Block};
use rand::CryptoRng;

use crate::error::{Error, Res};
use crate::secret::Secret;

/// Length of a routing token in bytes.
pub const TOKEN_LEN: usize = 17;
/// Length of the token nonce.
pub const TOKEN_NONCE_LEN: usize = 12;
/// The reserved codepoint meaning "unroutable: any front-end".
pub const UNROUTABLE_CODEPOINT: u8 = 7;
/// At most this many token keys are live at once (TOK-4).
pub const MAX_LIVE_TOKEN_KEYS: usize = 2;

/// A routing token as it appears on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoutingToken(pub [u8; TOKEN_LEN]);

impl RoutingToken {
    /// The codepoint in the config byte's top three bits.
    pub fn codepoint(&self) -> u8 {
        self.0[0] >> 5
    }

    /// A fresh unroutable token: codepoint 7, every other bit random
    /// (TOK-5, used when a sender's pool for a group is empty).
    pub fn unroutable(rng: &mut impl CryptoRng) -> Self {
        let mut t = [0u8; TOKEN_LEN];
        rng.fill_bytes(&mut t);
        t[0] = (UNROUTABLE_CODEPOINT << 5) | (t[0] & 0x1f);
        RoutingToken(t)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; TOKEN_LEN] {
        &self.0
    }
}

impl core::fmt::Debug for RoutingToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RoutingToken(cp={}, ", self.codepoint())?;
        for b in &self.0[1..] {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// What a token decodes to under a live key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedToken {
    /// The codepoint of the key that decoded it.
    pub codepoint: u8,
    /// The shard id.
    pub shard: u32,
    /// The single-use nonce.
    pub nonce: [u8; TOKEN_NONCE_LEN],
}

/// One token key with its codepoint. The key is shared by the hub and its
/// load balancers only.
#[derive(Clone)]
pub struct TokenKey {
    codepoint: u8,
    not_after: u64,
    key: Secret,
    cipher: Aes128,
}

impl core::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "TokenKey(cp={}, ***)", self.codepoint)
    }
}

impl TokenKey {
    /// A token key for `codepoint` (0 to 6), used until `not_after` (Unix
    /// seconds): the hub keeps the nonces of its spent tokens until then
    /// (STO-3), so a key's lifetime bounds that part of the hub's state.
    pub fn new(codepoint: u8, key: [u8; 16], not_after: u64) -> Res<Self> {
        if codepoint >= UNROUTABLE_CODEPOINT {
            return Err(Error::Usage("token codepoint must be 0 to 6"));
        }
        let cipher = Aes128::new(&key.into());
        Ok(TokenKey {
            codepoint,
            not_after,
            key: Secret::from_slice(&key),
            cipher,
        })
    }

    /// The codepoint.
    pub fn codepoint(&self) -> u8 {
        self.codepoint
    }

    /// The end of the key's lifetime (Unix seconds).
    pub fn not_after(&self) -> u64 {
        self.not_after
    }

    /// The key bytes (for provisioning load balancers).
    pub fn key(&self) -> &Secret {
        &self.key
    }

    /// Issues a token for `shard` with a fresh random nonce.
    pub fn issue(&self, shard: u32, rng: &mut impl CryptoRng) -> RoutingToken {
        let mut nonce = [0u8; TOKEN_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut config = [0u8; 1];
        rng.fill_bytes(&mut config);
        self.issue_with(shard, nonce, config[0])
    }

    /// Issues a token from explicit inputs (test vectors). Only the low five
    /// bits of `config_random` are used.
    pub fn issue_with(
        &self,
        shard: u32,
        nonce: [u8; TOKEN_NONCE_LEN],
        config_random: u8,
    ) -> RoutingToken {
        let mut block = Block::default();
        block[..4].copy_from_slice(&shard.to_be_bytes());
        block[4..].copy_from_slice(&nonce);
        self.cipher.encrypt_block(&mut block);
        let mut t = [0u8; TOKEN_LEN];
        t[0] = (self.codepoint << 5) | (config_random & 0x1f);
        t[1..].copy_from_slice(&block);
        RoutingToken(t)
    }

    fn decode_block(&self, block_bytes: &[u8; 16]) -> (u32, [u8; TOKEN_NONCE_LEN]) {
        let mut block = Block::from(*block_bytes);
        self.cipher.decrypt_block(&mut block);
        let mut shard = [0u8; 4];
        shard.copy_from_slice(&block[..4]);
        let mut nonce = [0u8; TOKEN_NONCE_LEN];
        nonce.copy_from_slice(&block[4..]);
        (u32::from_be_bytes(shard), nonce)
    }
}

/// The live token keys: at most two, with distinct codepoints (TOK-4).
#[derive(Clone, Debug, Default)]
pub struct TokenKeys {
    keys: Vec<TokenKey>,
}

impl TokenKeys {
    /// A key set from at most two keys with distinct codepoints.
    pub fn new(keys: Vec<TokenKey>) -> Res<Self> {
        if keys.len() > MAX_LIVE_TOKEN_KEYS {
            return Err(Error::Usage("at most two live token keys"));
        }
        if keys.len() == 2 && keys[0].codepoint == keys[1].codepoint {
            return Err(Error::Usage("token key codepoints must differ"));
        }
        Ok(TokenKeys { keys })
    }

    /// The key for a codepoint, if live.
    pub fn get(&self, codepoint: u8) -> Option<&TokenKey> {
        self.keys.iter().find(|k| k.codepoint == codepoint)
    }

    /// The end of the lifetime of the live key with `codepoint`.
    pub fn not_after(&self, codepoint: u8) -> Option<u64> {
        self.get(codepoint).map(TokenKey::not_after)
    }

    /// The newest key (the last one given), used for issuing.
    pub fn current(&self) -> Option<&TokenKey> {
        self.keys.last()
    }

    /// The shard a token names, `None` for the unroutable codepoint or a
    /// codepoint with no live key (TOK-2): the load balancer's one AES
    /// block, with nothing else decoded or copied.
    #[inline]
    pub fn shard(&self, token: &[u8; TOKEN_LEN]) -> Option<u32> {
        let codepoint = token[0] >> 5;
        let key = self.keys.iter().find(|k| k.codepoint == codepoint)?;
        let (_, body) = token.split_first()?;
        let mut block = Block::from(<[u8; 16]>::try_from(body).ok()?);
        key.cipher.decrypt_block(&mut block);
        Some(u32::from_be_bytes([block[0], block[1], block[2], block[3]]))
    }

    /// Decodes a token: `None` for the unroutable codepoint or a codepoint
    /// with no live key (TOK-2).
    pub fn decode(&self, token: &[u8; TOKEN_LEN]) -> Option<DecodedToken> {
        let codepoint = token[0] >> 5;
        let key = self.get(codepoint)?;
        let mut block = [0u8; 16];
        block.copy_from_slice(&token[1..]);
        let (shard, nonce) = key.decode_block(&block);
        Some(DecodedToken {
            codepoint,
            shard,
            nonce,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(vec![
            TokenKey::new(1, [1; 16], u64::MAX).unwrap(),
            TokenKey::new(2, [2; 16], u64::MAX).unwrap(),
        ])
        .unwrap()
    }

    #[test]
    fn issue_and_decode() {
        let keys = keys();
        let mut rng = rand::rng();
        for cp in [1u8, 2] {
            let t = keys.get(cp).unwrap().issue(4242, &mut rng);
            assert_eq!(t.codepoint(), cp);
            let d = keys.decode(&t.0).unwrap();
            assert_eq!(d.shard, 4242);
            assert_eq!(d.codepoint, cp);
        }
    }

    /// TOK-2: codepoint 7 and codepoints without a live key are unroutable.
    #[test]
    fn tok2_unroutable_and_unknown_codepoints() {
        let keys = keys();
        let mut rng = rand::rng();
        assert_eq!(keys.decode(&RoutingToken::unroutable(&mut rng).0), None);
        let other = TokenKey::new(3, [3; 16], u64::MAX)
            .unwrap()
            .issue(1, &mut rng);
        assert_eq!(keys.decode(&other.0), None);
    }

    /// TOK-4: at most two live codepoints.
    #[test]
    fn tok4_at_most_two_keys() {
        let k = |cp| TokenKey::new(cp, [cp; 16], u64::MAX).unwrap();
        assert!(TokenKeys::new(vec![k(0), k(1), k(2)]).is_err());
        assert!(TokenKeys::new(vec![k(1), k(1)]).is_err());
        assert!(TokenKey::new(7, [0; 16], u64::MAX).is_err());
    }

    #[test]
    fn fresh_tokens_differ() {
        let keys = keys();
        let mut rng = rand::rng();
        let k = keys.current().unwrap();
        let a = k.issue(5, &mut rng);
        let b = k.issue(5, &mut rng);
        assert_ne!(a.0[1..], b.0[1..]);
    }
}
