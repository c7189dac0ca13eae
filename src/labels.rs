//! Every label of this version, one per layer and purpose (spec section
//! "Labels"). No label is a prefix of another.

/// HPKE `info` prefix of the hub layer.
pub const HUB_LAYER: &[u8] = b"mimi-onion v1 hub layer";
/// HPKE exporter context for the hub response secret.
pub const HUB_RESPONSE: &[u8] = b"mimi-onion v1 hub response";
/// HKDF-Expand label of the response AEAD key.
pub const RESPONSE_KEY: &[u8] = b"key";
/// HKDF-Expand label of the response AEAD nonce.
pub const RESPONSE_NONCE: &[u8] = b"nonce";
/// Signature label of a hub configuration.
pub const HUB_CONFIGURATION: &[u8] = b"mimi-onion v1 hub configuration";
/// HPKE `info` prefix of the key layer.
pub const KEY_LAYER: &[u8] = b"mimi-onion v1 key layer";
/// MLS-Exporter label of the epoch's fan-out key F.
pub const FANOUT_KEY: &[u8] = b"mimi-onion v1 fanout key";
/// SignWithLabel label of the signature over F in a commit's key layer.
pub const FANOUT_KEY_SIGNATURE: &[u8] = b"mimi-onion v1 signed fanout key";
/// HKDF-Expand label of the membership key (from F).
pub const MEMBERSHIP_KEY: &[u8] = b"mimi-onion v1 membership key";
/// HKDF-Expand label of the fan-out hint key (from F).
pub const HINT_KEY: &[u8] = b"mimi-onion v1 fanout hint key";
/// HKDF-Expand label of the fan-out check key (from F).
pub const CHECK_KEY: &[u8] = b"mimi-onion v1 fanout check key";
/// HKDF-Expand label of the fan-out body key (from F).
pub const BODY_KEY: &[u8] = b"mimi-onion v1 fanout body key";
/// Label of the key-commitment input.
pub const KEY_COMMITMENT: &[u8] = b"mimi-onion v1 key commitment";
/// SignWithLabel label of a member's dispute of a commit (DSP-2).
pub const DISPUTE: &[u8] = b"mimi-onion v1 dispute";

#[cfg(test)]
mod tests {
    #[test]
    fn labels_are_distinct_and_prefix_free() {
        let all = [
            super::HUB_LAYER,
            super::HUB_RESPONSE,
            super::HUB_CONFIGURATION,
            super::KEY_LAYER,
            super::FANOUT_KEY,
            super::FANOUT_KEY_SIGNATURE,
            super::KEY_COMMITMENT,
            super::DISPUTE,
            super::MEMBERSHIP_KEY,
            super::HINT_KEY,
            super::CHECK_KEY,
            super::BODY_KEY,
        ];
        for (i, a) in all.iter().enumerate() {
            for (j, b) in all.iter().enumerate() {
                if i != j {
                    assert!(!b.starts_with(a), "{i} is a prefix of {j}");
                }
            }
        }
    }
}
