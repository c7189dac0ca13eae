//! The hub's load balancer (spec section "Routing Tokens", TOK-1 to TOK-3).
//!
//! It reads the 17 token bytes at offset 1 of an envelope and nothing else:
//! no parsing beyond that fixed prefix, no allocation, one AES block.

use aes::cipher::{BlockCipherDecrypt, KeyInit};
use aes::{Aes128Dec, Block};

use crate::token::{TokenKeys, TOKEN_LEN};
use crate::wire::TOKEN_OFFSET;

/// Where the load balancer sends an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To the front-ends of this shard.
    Shard(u32),
    /// To any front-end.
    Unroutable,
}

/// A load balancer holding the live token keys.
#[derive(Clone)]
pub struct LoadBalancer {
    /// A decryption key schedule per codepoint (three bits), `None` for
    /// the unroutable codepoint and codepoints with no live key: a token's
    /// first byte picks its key without a search.
    by_codepoint: [Option<Aes128Dec>; 8],
    shard_count: u32,
}

impl core::fmt::Debug for LoadBalancer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let live: Vec<usize> = (0..8).filter(|&c| self.by_codepoint[c].is_some()).collect();
        f.debug_struct("LoadBalancer")
            .field("live_codepoints", &live)
            .field("shard_count", &self.shard_count)
            .finish_non_exhaustive()
    }
}

impl LoadBalancer {
    /// A balancer for shards `0..shard_count`.
    pub fn new(keys: TokenKeys, shard_count: u32) -> Self {
        let mut by_codepoint: [Option<Aes128Dec>; 8] = Default::default();
        for (cp, slot) in by_codepoint.iter_mut().enumerate() {
            if let Some(key) = keys.get(cp as u8) {
                *slot = Aes128Dec::new_from_slice(key.key().expose()).ok();
            }
        }
        LoadBalancer {
            by_codepoint,
            shard_count,
        }
    }

    /// Routes raw envelope bytes by their token alone (TOK-1): unroutable
    /// for a short input, the reserved or an unknown codepoint (TOK-2), or a
    /// shard out of range (TOK-3).
    #[inline]
    pub fn route(&self, envelope: &[u8]) -> Route {
        let Some(&[first, ref body @ ..]) = envelope
            .get(TOKEN_OFFSET..TOKEN_OFFSET + TOKEN_LEN)
            .and_then(|t| <&[u8; TOKEN_LEN]>::try_from(t).ok())
        else {
            return Route::Unroutable;
        };
        let Some(cipher) = &self.by_codepoint[usize::from(first >> 5)] else {
            return Route::Unroutable;
        };
        let mut block = Block::from(*body);
        cipher.decrypt_block(&mut block);
        let shard = u32::from_be_bytes([block[0], block[1], block[2], block[3]]);
        if shard < self.shard_count {
            Route::Shard(shard)
        } else {
            Route::Unroutable
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{RoutingToken, TokenKey};

    /// The balancer routes exactly as the hub decodes (TOK-1 to TOK-3).
    #[test]
    fn routes_as_the_hub_decodes() {
        let keys = TokenKeys::new(vec![
            TokenKey::new(1, [1; 16], u64::MAX).unwrap(),
            TokenKey::new(6, [6; 16], u64::MAX).unwrap(),
        ])
        .unwrap();
        let lb = LoadBalancer::new(keys.clone(), 10);
        let mut rng = rand::rng();
        let envelope = |t: RoutingToken| {
            let mut e = vec![1u8];
            e.extend_from_slice(&t.0);
            e.extend_from_slice(&[0; 40]);
            e
        };
        for cp in [1u8, 6] {
            for shard in [0u32, 9, 10, u32::MAX] {
                let t = keys.get(cp).unwrap().issue(shard, &mut rng);
                let want = match keys.decode(&t.0) {
                    Some(d) if d.shard < 10 => Route::Shard(d.shard),
                    _ => Route::Unroutable,
                };
                assert_eq!(lb.route(&envelope(t)), want);
                assert_eq!(want == Route::Unroutable, shard >= 10);
            }
        }
        let other = TokenKey::new(2, [2; 16], u64::MAX).unwrap();
        assert_eq!(
            lb.route(&envelope(other.issue(1, &mut rng))),
            Route::Unroutable
        );
        assert_eq!(
            lb.route(&envelope(RoutingToken::unroutable(&mut rng))),
            Route::Unroutable
        );
        let full = envelope(keys.get(1).unwrap().issue(3, &mut rng));
        for n in 0..=TOKEN_OFFSET + TOKEN_LEN {
            let want = if n == TOKEN_OFFSET + TOKEN_LEN {
                Route::Shard(3)
            } else {
                Route::Unroutable
            };
            assert_eq!(lb.route(&full[..n]), want, "prefix of {n} bytes");
        }
        assert!(!format!("{lb:?}").contains("[1, 1"));
    }
}
