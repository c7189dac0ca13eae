//! The hub's load balancer (spec section "Routing Tokens", TOK-1 to TOK-3).
//!
//! It reads the 17 token bytes at offset 1 of an envelope and nothing else:
//! no parsing beyond that fixed prefix, no allocation, one AES block.

use crate::token::TokenKeys;
use crate::wire::peek_token;

/// Where the load balancer sends an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To the front-ends of this shard.
    Shard(u32),
    /// To any front-end.
    Unroutable,
}

/// A load balancer holding the live token keys.
#[derive(Clone, Debug)]
pub struct LoadBalancer {
    keys: TokenKeys,
    shard_count: u32,
}

impl LoadBalancer {
    /// A balancer for shards `0..shard_count`.
    pub fn new(keys: TokenKeys, shard_count: u32) -> Self {
        LoadBalancer { keys, shard_count }
    }

    /// Routes raw envelope bytes by their token alone (TOK-1): unroutable
    /// for a short input, the reserved or an unknown codepoint (TOK-2), or a
    /// shard out of range (TOK-3).
    pub fn route(&self, envelope: &[u8]) -> Route {
        let Some(token) = peek_token(envelope) else {
            return Route::Unroutable;
        };
        match self.keys.decode(token) {
            Some(d) if d.shard < self.shard_count => Route::Shard(d.shard),
            _ => Route::Unroutable,
        }
    }
}
