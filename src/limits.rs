//! Sizes that the wire format, padding and the key layer share (spec
//! sections "Hub Layer", "Key Layer" and "Padding"). They live one level
//! below [`crate::wire`] and [`crate::padding`] so that neither has to
//! import the other's constants.

use crate::suite::MAX_N_ENC;

/// Length of the membership proof.
pub const MEMBERSHIP_PROOF_LEN: usize = 16;
/// Length of the epoch fan-out key F.
pub const FANOUT_KEY_LEN: usize = 32;
/// Length of a key-layer plaintext after its own padding.
pub const KEY_LAYER_PLAINTEXT_LEN: usize = 256;
/// Length of the clear header of a key layer (key id and suite).
pub const KEY_LAYER_HEADER_LEN: usize = 7;
/// The largest key layer: header, the largest `enc`, the padded plaintext
/// and an AEAD tag.
pub const KEY_LAYER_MAX_LEN: usize =
    KEY_LAYER_HEADER_LEN + MAX_N_ENC + KEY_LAYER_PLAINTEXT_LEN + 16;
/// The largest signature over F a PublicMessage commit's hub layer may
/// carry: a DER-encoded ECDSA P-521 signature, the longest signature of
/// the MLS cipher suites (RFC 9420, section 17.1).
pub const FANOUT_KEY_SIGNATURE_MAX_LEN: usize = 139;
/// The largest MLS message an envelope may carry (16 MiB).
pub const MAX_MESSAGE_LEN: usize = 16 << 20;
