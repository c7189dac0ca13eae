//! Padding of the hub layer (spec section "Padding", requirement PAD-1).
//!
//! The padded length of a hub-layer plaintext depends only on the length of
//! the MLS message it carries. A fixed amount of room, [`RESERVED_ROOM`], is
//! always added before rounding, large enough for the largest key layer,
//! fan-out key and (empty) F signature, so that whether a message is a commit, a proposal or an
//! application message never changes the size. The rounding is Padmé, which
//! leaks O(log log L) bits of the length with at most about 12 % overhead.

use crate::limits::{KEY_LAYER_MAX_LEN, MEMBERSHIP_PROOF_LEN};

/// Room reserved in every hub layer on top of the message: the largest
/// varint length prefix of the message (4), the membership proof (16), the
/// key layer with its 2-byte prefix, the fan-out key with its 1-byte
/// prefix (1 + 32), and the 1-byte prefix of an empty F signature. A
/// PublicMessage commit, whose F signature is not empty, has an empty key
/// layer instead and needs less (at most 1 + 33 + 2 + 139 bytes after the
/// proof).
pub const RESERVED_ROOM: usize = 4 + MEMBERSHIP_PROOF_LEN + 2 + KEY_LAYER_MAX_LEN + 1 + 32 + 1;

/// Padmé: rounds `len` up so that only the top bits of its binary form stay
/// free. `padme(0) = 0`, `padme(1) = 1`.
pub const fn padme(len: usize) -> usize {
    if len < 2 {
        return len;
    }
    let e = usize::BITS - 1 - len.leading_zeros(); // floor(log2 len)
    let s = u32::BITS - e.leading_zeros(); // floor(log2 e) + 1
    let z = e - s;
    let mask = (1usize << z) - 1;
    (len + mask) & !mask
}

/// The padded hub-layer plaintext length for a message of `message_len`
/// bytes: `padme(message_len + RESERVED_ROOM)`.
pub fn padded_length(message_len: usize) -> usize {
    padme(message_len + RESERVED_ROOM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        // Worked examples from the spec's padding table.
        assert_eq!(padme(0), 0);
        assert_eq!(padme(1), 1);
        assert_eq!(padme(2), 2);
        assert_eq!(padme(9), 10);
        assert_eq!(padme(100), 104);
        assert_eq!(padme(1000), 1024);
        assert_eq!(padme(1_048_576), 1_048_576);
        assert_eq!(padme(1_048_577), 1_081_344);
        // padded_length: Padmé over message length plus the reserved room.
        assert_eq!(RESERVED_ROOM, 400);
        assert_eq!(padded_length(0), 400);
        assert_eq!(padded_length(100), 512);
        assert_eq!(padded_length(1000), 1408);
        assert_eq!(padded_length(65_536), 67_584);
        assert_eq!(padded_length(1_048_576), 1_081_344);
    }

    proptest! {
        /// PAD-1: never shorter, overhead bounded, monotone.
        #[test]
        fn padme_properties(len in 2usize..(1 << 26)) {
            let p = padme(len);
            prop_assert!(p >= len);
            prop_assert!(p - len <= len / 8 + 1);
            prop_assert!(padme(len + 1) >= p);
            prop_assert_eq!(padme(p), p);
        }
    }
}
