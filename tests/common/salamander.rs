//! An AES-128-GCM "invisible salamander": a single `(nonce, aad,
//! ciphertext || tag)` that authenticates under two different keys, and
//! so decrypts to two different plaintexts.
//!
//! AES-GCM is not key-committing. The tag is
//!
//! ```text
//! T = E_K(J0) + GHASH_H(A, C),   H = E_K(0^128),   J0 = N || 0^31 || 1
//! GHASH_H(A, C) = B_1 H^L + B_2 H^(L-1) + ... + B_L H
//! ```
//!
//! over GF(2^128), where `B_1 .. B_L` are the zero-padded AAD blocks, the
//! zero-padded ciphertext blocks and finally the length block
//! `[bitlen(A)]_64 || [bitlen(C)]_64`. With `c` ciphertext blocks, the
//! ciphertext block with 0-based index `i` is multiplied by `H^(c - i + 1)`
//! (the last ciphertext block by `H^2`, the length block by `H^1`).
//!
//! Everything is fixed except one "free" ciphertext block `X` at index
//! `i`; with `e = c - i + 1` the two tags agree iff
//!
//! ```text
//! X (H1^e + H2^e) = E_K1(J0) + E_K2(J0) + GHASH_H1(A, C|X=0) + GHASH_H2(A, C|X=0)
//! ```
//!
//! which is one field inversion away from `X`. Addition in GF(2^128) is
//! XOR. The keystream for plaintext block `i` is `E_K(N || [i + 2]_32)`.
//!
//! Bit order: GCM writes field elements "reflected": bit 0 of byte 0 (its
//! most significant bit) is the coefficient of `x^0`. [`Gf`] keeps a block
//! as a big-endian `u128`, so the most significant bit of the `u128` is the
//! coefficient of `x^0` and the least significant is that of `x^127`;
//! multiplication follows Algorithm 1 of NIST SP 800-38D.
//!
//! This module is test-only code: nothing here is constant time.

use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes::Aes128;
use hpke_rs_crypto::types::AeadAlgorithm;
use hpke_rs_crypto::HpkeCrypto;
use hpke_rs_rust_crypto::HpkeRustCrypto;

/// Size in bytes of an AES block, a GHASH block and a GCM tag.
pub const BLOCK_LEN: usize = 16;

/// Size in bytes of the AES-128-GCM authentication tag.
pub const TAG_LEN: usize = 16;

/// An element of GF(2^128) with the GCM polynomial
/// `x^128 + x^7 + x^2 + x + 1`, stored in GCM bit order: the 16-byte block
/// read as a big-endian `u128`, whose most significant bit is the
/// coefficient of `x^0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gf(pub u128);

impl Gf {
    /// The additive identity.
    pub const ZERO: Gf = Gf(0);
    /// The multiplicative identity: the polynomial `1`, i.e. block
    /// `80 00 .. 00`.
    pub const ONE: Gf = Gf(1 << 127);
    /// The reduction constant `R = 11100001 || 0^120` from SP 800-38D:
    /// `x^128 = 1 + x + x^2 + x^7` in GCM bit order.
    const R: u128 = 0xe1 << 120;

    /// The element a 16-byte block stands for.
    pub fn from_bytes(block: &[u8; BLOCK_LEN]) -> Gf {
        Gf(u128::from_be_bytes(*block))
    }

    /// The 16-byte block standing for this element.
    pub fn to_bytes(self) -> [u8; BLOCK_LEN] {
        self.0.to_be_bytes()
    }

    /// The element for a block of up to 16 bytes, zero-padded on the right
    /// as GHASH pads its input.
    pub fn from_partial(bytes: &[u8]) -> Gf {
        assert!(
            bytes.len() <= BLOCK_LEN,
            "a GHASH block has at most 16 bytes"
        );
        let mut block = [0u8; BLOCK_LEN];
        block[..bytes.len()].copy_from_slice(bytes);
        Gf::from_bytes(&block)
    }

    /// `self^exponent` by left-to-right square-and-multiply.
    pub fn pow(self, exponent: u128) -> Gf {
        let mut acc = Gf::ONE;
        for bit in (0..128).rev() {
            acc = acc * acc;
            if (exponent >> bit) & 1 == 1 {
                acc = acc * self;
            }
        }
        acc
    }

    /// Multiplicative inverse, `None` for zero. The multiplicative group
    /// has order `2^128 - 1`, so `a^-1 = a^(2^128 - 2)`.
    pub fn inv(self) -> Option<Gf> {
        if self == Gf::ZERO {
            None
        } else {
            Some(self.pow(u128::MAX - 1))
        }
    }
}

/// Sum (= difference) of two elements: XOR.
impl std::ops::Add for Gf {
    type Output = Gf;

    // In characteristic 2, adding polynomials is XOR of their coefficients.
    #[allow(clippy::suspicious_arithmetic_impl)]
    fn add(self, other: Gf) -> Gf {
        Gf(self.0 ^ other.0)
    }
}

impl std::ops::Mul for Gf {
    type Output = Gf;

    /// Product of two elements (SP 800-38D, Algorithm 1): walk the bits of
    /// `self` from `x^0` up, adding `other * x^j` for every set bit `j`;
    /// multiplying by `x` is a right shift in this bit order, and a bit
    /// shifted out past `x^127` is reduced by adding `R`.
    fn mul(self, other: Gf) -> Gf {
        let mut z = 0u128;
        let mut v = other.0; // other * x^j
        for j in 0..128 {
            if (self.0 >> (127 - j)) & 1 == 1 {
                z ^= v;
            }
            let carry = v & 1 == 1; // coefficient of x^127
            v >>= 1;
            if carry {
                v ^= Self::R;
            }
        }
        Gf(z)
    }
}

/// One AES-128 block encryption.
pub fn aes128_block(key: &[u8; 16], block: [u8; BLOCK_LEN]) -> [u8; BLOCK_LEN] {
    let cipher = Aes128::new(&(*key).into());
    let mut block = aes::Block::from(block);
    cipher.encrypt_block(&mut block);
    block.into()
}

/// The GCM counter block `nonce || [counter]_32`; counter 1 is `J0`
/// (which masks the tag), plaintext block `i` uses counter `i + 2`.
pub fn counter_block(nonce: &[u8; 12], counter: u32) -> [u8; BLOCK_LEN] {
    let mut block = [0u8; BLOCK_LEN];
    block[..12].copy_from_slice(nonce);
    block[12..].copy_from_slice(&counter.to_be_bytes());
    block
}

/// The GHASH key `H = E_K(0^128)`.
pub fn hash_key(key: &[u8; 16]) -> Gf {
    Gf::from_bytes(&aes128_block(key, [0u8; BLOCK_LEN]))
}

/// The first `len` bytes of the AES-128-GCM keystream for `key` and
/// `nonce` (counter blocks 2, 3, ...).
pub fn keystream(key: &[u8; 16], nonce: &[u8; 12], len: usize) -> Vec<u8> {
    let cipher = Aes128::new(&(*key).into());
    let mut out = Vec::with_capacity(len.next_multiple_of(BLOCK_LEN));
    for i in 0..len.div_ceil(BLOCK_LEN) {
        let counter = u32::try_from(i + 2).expect("message too long for GCM");
        let mut block = aes::Block::from(counter_block(nonce, counter));
        cipher.encrypt_block(&mut block);
        out.extend_from_slice(&block);
    }
    out.truncate(len);
    out
}

/// `data` XOR the keystream: GCM encryption and decryption (no tag).
pub fn ctr_xor(key: &[u8; 16], nonce: &[u8; 12], data: &[u8]) -> Vec<u8> {
    keystream(key, nonce, data.len())
        .iter()
        .zip(data)
        .map(|(k, d)| k ^ d)
        .collect()
}

/// `GHASH_H(aad, ciphertext)`, including the length block.
pub fn ghash(h: Gf, aad: &[u8], ciphertext: &[u8]) -> Gf {
    let mut acc = Gf::ZERO;
    for chunk in aad.chunks(BLOCK_LEN).chain(ciphertext.chunks(BLOCK_LEN)) {
        acc = (acc + Gf::from_partial(chunk)) * h;
    }
    let bits = |n: usize| u64::try_from(n).expect("length fits in u64") * 8;
    let lengths = (u128::from(bits(aad.len())) << 64) | u128::from(bits(ciphertext.len()));
    (acc + Gf(lengths)) * h
}

/// The AES-128-GCM tag of `ciphertext` (without tag) and `aad`.
pub fn gcm_tag(key: &[u8; 16], nonce: &[u8; 12], aad: &[u8], ciphertext: &[u8]) -> [u8; TAG_LEN] {
    let mask = Gf::from_bytes(&aes128_block(key, counter_block(nonce, 1)));
    (ghash(hash_key(key), aad, ciphertext) + mask).to_bytes()
}

/// Reference AES-128-GCM encryption: `ciphertext || tag`.
pub fn seal(key: &[u8; 16], nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut out = ctr_xor(key, nonce, plaintext);
    let tag = gcm_tag(key, nonce, aad, &out);
    out.extend_from_slice(&tag);
    out
}

/// Reference AES-128-GCM decryption of `ciphertext || tag` (not constant
/// time); `None` if the input is shorter than a tag or the tag is wrong.
pub fn open(key: &[u8; 16], nonce: &[u8; 12], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let body_len = sealed.len().checked_sub(TAG_LEN)?;
    let (body, tag) = sealed.split_at(body_len);
    (gcm_tag(key, nonce, aad, body) == tag).then(|| ctr_xor(key, nonce, body))
}

/// AES-128-GCM decryption by the real implementation the crate uses
/// (`hpke-rs-rust-crypto`); `None` on any error.
pub fn open_rust_crypto(
    key: &[u8; 16],
    nonce: &[u8; 12],
    aad: &[u8],
    sealed: &[u8],
) -> Option<Vec<u8>> {
    HpkeRustCrypto::aead_open(AeadAlgorithm::Aes128Gcm, key, nonce, aad, sealed).ok()
}

/// A ciphertext that is valid AES-128-GCM under two keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Salamander {
    /// The first key.
    pub key1: [u8; 16],
    /// The second key, different from `key1`.
    pub key2: [u8; 16],
    /// The 96-bit nonce shared by both decryptions.
    pub nonce: [u8; 12],
    /// The associated data shared by both decryptions.
    pub aad: Vec<u8>,
    /// The ciphertext followed by the 16-byte tag, as `aead_open` takes it.
    pub ciphertext: Vec<u8>,
}

impl Salamander {
    /// The ciphertext without the tag.
    pub fn body(&self) -> &[u8] {
        &self.ciphertext[..self.ciphertext.len() - TAG_LEN]
    }

    /// The shared tag.
    pub fn tag(&self) -> [u8; TAG_LEN] {
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&self.ciphertext[self.ciphertext.len() - TAG_LEN..]);
        tag
    }

    /// The plaintext under `key1` (computed, not authenticated).
    pub fn plaintext1(&self) -> Vec<u8> {
        ctr_xor(&self.key1, &self.nonce, self.body())
    }

    /// The plaintext under `key2` (computed, not authenticated).
    pub fn plaintext2(&self) -> Vec<u8> {
        ctr_xor(&self.key2, &self.nonce, self.body())
    }

    /// Opens the ciphertext with the real AES-128-GCM of
    /// `hpke-rs-rust-crypto` under both keys and returns the two
    /// plaintexts; panics if either fails. A cheap sanity check for a test
    /// to run before relying on the fixture.
    pub fn open_both(&self) -> (Vec<u8>, Vec<u8>) {
        let p1 = open_rust_crypto(&self.key1, &self.nonce, &self.aad, &self.ciphertext)
            .expect("salamander does not open under key1");
        let p2 = open_rust_crypto(&self.key2, &self.nonce, &self.aad, &self.ciphertext)
            .expect("salamander does not open under key2");
        (p1, p2)
    }
}

/// The salamander for a ciphertext body (no tag) of any length in which
/// block `free_block` (0-based, a whole 16-byte block) is overwritten with
/// the value that makes the tags under `key1` and `key2` equal. All other
/// ciphertext bytes are kept as given.
///
/// Panics if the keys are equal, if `free_block` is not a whole block of
/// `body`, or in the (probability ~2^-128 for random keys) degenerate case
/// `H1^e == H2^e`, where no or every value works.
pub fn from_ciphertext(
    key1: [u8; 16],
    key2: [u8; 16],
    nonce: [u8; 12],
    aad: &[u8],
    mut body: Vec<u8>,
    free_block: usize,
) -> Salamander {
    assert_ne!(key1, key2, "a salamander needs two different keys");
    let start = free_block * BLOCK_LEN;
    assert!(
        start + BLOCK_LEN <= body.len(),
        "free block {free_block} is not a whole block of a {}-byte ciphertext",
        body.len()
    );
    body[start..start + BLOCK_LEN].fill(0);

    // Both tags with X = 0; their difference is what X must cancel.
    let t1 = Gf::from_bytes(&gcm_tag(&key1, &nonce, aad, &body));
    let t2 = Gf::from_bytes(&gcm_tag(&key2, &nonce, aad, &body));
    let exponent = u128::try_from(body.len().div_ceil(BLOCK_LEN) - free_block + 1)
        .expect("exponent fits in u128");
    let coefficient = hash_key(&key1).pow(exponent) + hash_key(&key2).pow(exponent);
    let x = (t1 + t2) * coefficient.inv().expect("degenerate keys: H1^e == H2^e");
    body[start..start + BLOCK_LEN].copy_from_slice(&x.to_bytes());

    let tag = gcm_tag(&key1, &nonce, aad, &body);
    assert_eq!(
        tag,
        gcm_tag(&key2, &nonce, aad, &body),
        "tag collision failed"
    );
    body.extend_from_slice(&tag);
    Salamander {
        key1,
        key2,
        nonce,
        aad: aad.to_vec(),
        ciphertext: body,
    }
}

/// The salamander with a ciphertext of `blocks` whole blocks (at least
/// one), whose blocks other than `free_block` are `fill` repeated
/// cyclically (zeros if `fill` is empty). The two plaintexts are whatever
/// the two keystreams make of that; see [`build_with_plaintext`] to fix
/// the plaintext under `key1` instead.
pub fn build(
    key1: [u8; 16],
    key2: [u8; 16],
    nonce: [u8; 12],
    aad: &[u8],
    blocks: usize,
    free_block: usize,
    fill: &[u8],
) -> Salamander {
    assert!(
        free_block < blocks,
        "free block {free_block} out of {blocks} blocks"
    );
    let body = if fill.is_empty() {
        vec![0u8; blocks * BLOCK_LEN]
    } else {
        fill.iter()
            .copied()
            .cycle()
            .take(blocks * BLOCK_LEN)
            .collect()
    };
    from_ciphertext(key1, key2, nonce, aad, body, free_block)
}

/// The salamander whose plaintext under `key1` is `plaintext1` (any
/// length) except in the 16 bytes of block `free_block`, which must be a
/// whole block of it; those 16 bytes, and all of the plaintext under
/// `key2`, are pseudorandom.
pub fn build_with_plaintext(
    key1: [u8; 16],
    key2: [u8; 16],
    nonce: [u8; 12],
    aad: &[u8],
    plaintext1: &[u8],
    free_block: usize,
) -> Salamander {
    let body = ctr_xor(&key1, &nonce, plaintext1);
    from_ciphertext(key1, key2, nonce, aad, body, free_block)
}
