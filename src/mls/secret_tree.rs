//! The RFC 9420 secret tree (section 9) and the sender-data keys
//! (section 6.3.2).
//!
//! The `encryption_secret` of an epoch sits at the root of a full binary
//! tree over the group's leaves (array layout of RFC 9420 Appendix C; the
//! number of leaves is a power of two). Each parent node's children are
//! `ExpandWithLabel(parent, "tree", "left" | "right", Nh)`. A leaf secret
//! seeds two hash ratchets, `"handshake"` and `"application"`, each of which
//! yields a key and a nonce per generation:
//!
//! ```text
//! ratchet_secret[0] = ExpandWithLabel(leaf_secret, "handshake" | "application", "", Nh)
//! key[j]            = DeriveTreeSecret(ratchet_secret[j], "key",    j, Nk)
//! nonce[j]          = DeriveTreeSecret(ratchet_secret[j], "nonce",  j, Nn)
//! ratchet_secret[j+1] = DeriveTreeSecret(ratchet_secret[j], "secret", j, Nh)
//! ```
//!
//! This module is stateless: it does not delete consumed secrets (forward
//! secrecy is the caller's duty) and reaching generation `g` from a fresh
//! ratchet costs `g` ratchet steps. A [`HashRatchet`] the caller keeps
//! costs one step per generation it moves; the member keeps one per
//! sender and content type, with the keys of skipped generations
//! (`member`, MEM-8).

use crate::error::{Error, Res};
use crate::mls::message::ContentType;
use crate::mls::suite::MlsSuite;
use crate::secret::Secret;

/// Which of a leaf's two hash ratchets (RFC 9420 9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RatchetKind {
    /// The `"handshake"` ratchet: proposals and commits.
    Handshake,
    /// The `"application"` ratchet: application messages.
    Application,
}

impl RatchetKind {
    /// The ratchet a message of this content type is encrypted with.
    pub fn for_content_type(content_type: ContentType) -> Self {
        match content_type {
            ContentType::Application => RatchetKind::Application,
            ContentType::Proposal | ContentType::Commit => RatchetKind::Handshake,
        }
    }

    /// The ratchet's label: `"handshake"` or `"application"`.
    pub fn label(self) -> &'static str {
        match self {
            RatchetKind::Handshake => "handshake",
            RatchetKind::Application => "application",
        }
    }
}

/// An AEAD key and nonce (`Nk` and `Nn` bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyNonce {
    /// The AEAD key.
    pub key: Secret,
    /// The AEAD nonce (before any `reuse_guard` is applied).
    pub nonce: Secret,
}

/// One hash ratchet of a leaf, positioned at a generation.
#[derive(Clone, Debug)]
pub struct HashRatchet {
    suite: MlsSuite,
    secret: Secret,
    generation: u32,
}

impl HashRatchet {
    /// A ratchet at generation 0 whose secret is `ratchet_secret[0]`.
    pub fn new(suite: MlsSuite, initial_secret: Secret) -> Self {
        HashRatchet {
            suite,
            secret: initial_secret,
            generation: 0,
        }
    }

    /// The ratchet's current generation.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The key and nonce of the current generation.
    ///
    /// # Errors
    ///
    /// As [`MlsSuite::derive_tree_secret`] (only for a secret shorter than
    /// `Nh`).
    pub fn key_nonce(&self) -> Res<KeyNonce> {
        let s = self.suite;
        Ok(KeyNonce {
            key: s.derive_tree_secret(&self.secret, "key", self.generation, s.nk())?,
            nonce: s.derive_tree_secret(&self.secret, "nonce", self.generation, s.nn())?,
        })
    }

    /// Moves to the next generation, replacing (and zeroizing) the current
    /// ratchet secret.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] at generation `u32::MAX`; otherwise as
    /// [`HashRatchet::key_nonce`].
    pub fn advance(&mut self) -> Res<()> {
        let next = self
            .generation
            .checked_add(1)
            .ok_or(Error::Usage("secret tree: generation overflow"))?;
        let s = self.suite;
        self.secret = s.derive_tree_secret(&self.secret, "secret", self.generation, s.nh())?;
        self.generation = next;
        Ok(())
    }

    /// Ratchets forward to `generation` and returns its key and nonce.
    /// Costs `generation - self.generation()` steps.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] if `generation` is behind the ratchet (its secrets
    /// are gone); otherwise as [`HashRatchet::advance`].
    pub fn key_nonce_at(&mut self, generation: u32) -> Res<KeyNonce> {
        if generation < self.generation {
            return Err(Error::Usage("secret tree: generation already consumed"));
        }
        while self.generation < generation {
            self.advance()?;
        }
        self.key_nonce()
    }
}

/// The level of node `x` in the array layout: its number of trailing one
/// bits (RFC 9420 Appendix C).
fn level(x: u64) -> u32 {
    x.trailing_ones()
}

/// The secret of leaf `leaf_index` in a tree of `n_leaves` leaves whose
/// root secret is `encryption_secret` (RFC 9420 9).
///
/// # Errors
///
/// [`Error::Usage`] if `n_leaves` is not a power of two or `leaf_index` is
/// not below it; otherwise as [`MlsSuite::expand_with_label`].
pub fn leaf_secret(
    suite: MlsSuite,
    encryption_secret: &Secret,
    n_leaves: u32,
    leaf_index: u32,
) -> Res<Secret> {
    if !n_leaves.is_power_of_two() {
        return Err(Error::Usage(
            "secret tree: leaf count is not a power of two",
        ));
    }
    if leaf_index >= n_leaves {
        return Err(Error::Usage("secret tree: leaf index out of range"));
    }
    let target = 2 * u64::from(leaf_index);
    let mut node = u64::from(n_leaves) - 1; // the root of a full tree
    let mut secret = encryption_secret.clone();
    while node != target {
        let k = level(node);
        if k == 0 {
            // Unreachable for a full tree; refuse rather than loop.
            return Err(Error::Usage("secret tree: descent failed"));
        }
        let (child, label) = if target < node {
            (node ^ (1u64 << (k - 1)), "left")
        } else {
            (node ^ (3u64 << (k - 1)), "right")
        };
        secret = suite.expand_with_label(&secret, "tree", label.as_bytes(), suite.nh())?;
        node = child;
    }
    Ok(secret)
}

/// The handshake and application ratchets of a leaf, both at generation 0.
///
/// # Errors
///
/// As [`leaf_secret`].
pub fn leaf_ratchets(
    suite: MlsSuite,
    encryption_secret: &Secret,
    n_leaves: u32,
    leaf_index: u32,
) -> Res<(HashRatchet, HashRatchet)> {
    let leaf = leaf_secret(suite, encryption_secret, n_leaves, leaf_index)?;
    let handshake = suite.expand_with_label(&leaf, "handshake", &[], suite.nh())?;
    let application = suite.expand_with_label(&leaf, "application", &[], suite.nh())?;
    Ok((
        HashRatchet::new(suite, handshake),
        HashRatchet::new(suite, application),
    ))
}

/// One of a leaf's two ratchets, at generation 0.
///
/// # Errors
///
/// As [`leaf_secret`].
pub fn leaf_ratchet(
    suite: MlsSuite,
    encryption_secret: &Secret,
    n_leaves: u32,
    leaf_index: u32,
    kind: RatchetKind,
) -> Res<HashRatchet> {
    let leaf = leaf_secret(suite, encryption_secret, n_leaves, leaf_index)?;
    let initial = suite.expand_with_label(&leaf, kind.label(), &[], suite.nh())?;
    Ok(HashRatchet::new(suite, initial))
}

/// The key and nonce of one leaf's `kind` ratchet at `generation`,
/// computed from scratch (costs `generation` ratchet steps). A receiver
/// that processes more than one message of a ratchet keeps the ratchet
/// instead ([`leaf_ratchet`], [`HashRatchet`]; the member does, MEM-8).
///
/// # Errors
///
/// As [`leaf_secret`] and [`HashRatchet::key_nonce_at`].
pub fn leaf_key_nonce(
    suite: MlsSuite,
    encryption_secret: &Secret,
    n_leaves: u32,
    leaf_index: u32,
    kind: RatchetKind,
    generation: u32,
) -> Res<KeyNonce> {
    leaf_ratchet(suite, encryption_secret, n_leaves, leaf_index, kind)?.key_nonce_at(generation)
}

/// The ciphertext sample of RFC 9420 6.3.2: the first `Nh` bytes of the
/// `PrivateMessage` ciphertext, or all of it if it is shorter.
pub fn ciphertext_sample(suite: MlsSuite, ciphertext: &[u8]) -> &[u8] {
    ciphertext.get(..suite.nh()).unwrap_or(ciphertext)
}

/// The sender-data key and nonce (RFC 9420 6.3.2):
/// `ExpandWithLabel(sender_data_secret, "key" | "nonce", ciphertext_sample, Nk | Nn)`.
/// `ciphertext` is the whole `PrivateMessage.ciphertext`; the sample is
/// taken here.
///
/// # Errors
///
/// As [`MlsSuite::expand_with_label`].
pub fn sender_data_key_nonce(
    suite: MlsSuite,
    sender_data_secret: &Secret,
    ciphertext: &[u8],
) -> Res<KeyNonce> {
    let sample = ciphertext_sample(suite, ciphertext);
    Ok(KeyNonce {
        key: suite.expand_with_label(sender_data_secret, "key", sample, suite.nk())?,
        nonce: suite.expand_with_label(sender_data_secret, "nonce", sample, suite.nn())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mls::suite::tests::{entries, hex, num, suite_of};

    const SECRET_TREE: &str = include_str!("../../test-vectors/mls/secret-tree.json");

    #[test]
    fn secret_tree_vectors() {
        let vectors = entries(SECRET_TREE);
        assert_eq!(vectors.len(), 21);
        let (mut leaves_checked, mut generations_checked) = (0, 0);
        for e in &vectors {
            let suite = suite_of(e);
            let sd = &e["sender_data"];
            let kn = sender_data_key_nonce(
                suite,
                &Secret::new(hex(sd, "sender_data_secret")),
                &hex(sd, "ciphertext"),
            )
            .unwrap();
            assert_eq!(kn.key.expose(), hex(sd, "key"), "suite {}", suite.code());
            assert_eq!(
                kn.nonce.expose(),
                hex(sd, "nonce"),
                "suite {}",
                suite.code()
            );

            let secret = Secret::new(hex(e, "encryption_secret"));
            let leaves = e["leaves"].as_array().expect("leaves");
            let n_leaves = u32::try_from(leaves.len()).unwrap();
            for (leaf, gens) in leaves.iter().enumerate() {
                let leaf = u32::try_from(leaf).unwrap();
                let (mut hs, mut app) = leaf_ratchets(suite, &secret, n_leaves, leaf).unwrap();
                for g in gens.as_array().expect("generations") {
                    let generation = u32::try_from(num(g, "generation")).unwrap();
                    let h = hs.key_nonce_at(generation).unwrap();
                    let a = app.key_nonce_at(generation).unwrap();
                    assert_eq!(h.key.expose(), hex(g, "handshake_key"));
                    assert_eq!(h.nonce.expose(), hex(g, "handshake_nonce"));
                    assert_eq!(a.key.expose(), hex(g, "application_key"));
                    assert_eq!(a.nonce.expose(), hex(g, "application_nonce"));
                    // The one-shot function agrees with the ratchet.
                    let one_shot = leaf_key_nonce(
                        suite,
                        &secret,
                        n_leaves,
                        leaf,
                        RatchetKind::Application,
                        generation,
                    )
                    .unwrap();
                    assert_eq!(one_shot, a);
                    generations_checked += 1;
                }
                leaves_checked += 1;
            }
        }
        assert_eq!(leaves_checked, 7 * (1 + 8 + 32));
        assert_eq!(generations_checked, 7 * (1 + 8 + 32) * 2);
    }

    #[test]
    fn bad_tree_shapes_are_usage_errors() {
        let suite = MlsSuite::from_code(1).unwrap();
        let secret = Secret::new(vec![0; 32]);
        for (n, leaf) in [(0u32, 0u32), (3, 0), (4, 4), (1, 1), (u32::MAX, 0)] {
            assert!(matches!(
                leaf_secret(suite, &secret, n, leaf),
                Err(Error::Usage(_))
            ));
        }
        // The largest tree works for its last leaf.
        let n = 1u32 << 31;
        assert!(leaf_secret(suite, &secret, n, n - 1).is_ok());
        let (mut hs, _) = leaf_ratchets(suite, &secret, 2, 1).unwrap();
        hs.key_nonce_at(3).unwrap();
        assert!(matches!(hs.key_nonce_at(2), Err(Error::Usage(_))));
        assert_eq!(hs.generation(), 3);
    }

    #[test]
    fn content_type_selects_ratchet() {
        assert_eq!(
            RatchetKind::for_content_type(ContentType::Application),
            RatchetKind::Application
        );
        for ct in [ContentType::Proposal, ContentType::Commit] {
            assert_eq!(RatchetKind::for_content_type(ct), RatchetKind::Handshake);
        }
        let suite = MlsSuite::from_code(1).unwrap();
        assert_eq!(ciphertext_sample(suite, &[1, 2]), &[1, 2]);
        assert_eq!(ciphertext_sample(suite, &[0; 40]).len(), 32);
    }
}
