//! A member's dispute of a commit the hub accepted (spec section
//! "Disputed Commits", DSP-1 to DSP-8).
//!
//! ```text
//! enum { undecryptable(1), unprocessable(2), wrong_fanout_key(3) } DisputeClaim;
//!
//! struct {
//!   opaque commit<V>;          /* the disputed MLSMessage, byte for byte */
//!   uint32 disputer;           /* leaf index in the epoch the commit closed */
//!   DisputeClaim claim;
//!   select (claim) {
//!     case undecryptable:    uint32 generation; opaque key<V>; opaque nonce<V>;
//!     case unprocessable:    struct {};
//!     case wrong_fanout_key: opaque fanout_key<V>;   /* 32 bytes */
//!   };
//! } DisputeTBS;
//!
//! struct { DisputeTBS tbs; opaque signature<V>; } Dispute;
//! ```
//!
//! `signature = SignWithLabel(disputer's leaf signature key,
//! "mimi-onion v1 dispute", DisputeTBS)`.

use zeroize::Zeroizing;

use crate::codec::{put_vec, Reader};
use crate::error::{Error, Res};
use crate::limits::{FANOUT_KEY_LEN, MAX_MESSAGE_LEN};
use crate::mls::suite::MlsSuite;
use crate::secret::Secret;

/// The largest key or nonce a claim may disclose (the largest of the MLS
/// suites' `Nk` and `Nn`).
pub const MAX_DISCLOSED_LEN: usize = 32;
/// The largest signature of the MLS suites (DER ECDSA P-521).
pub const MAX_SIGNATURE_LEN: usize = 139;
/// The largest dispute: the largest message plus the rest.
pub const MAX_DISPUTE_LEN: usize = MAX_MESSAGE_LEN + 512;

/// What the disputing member claims about the commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisputeClaim {
    /// A PrivateMessage commit that does not open (or whose `c` does not
    /// match) under the key and final nonce the member's own ratchet gives
    /// for the committer's leaf and `generation`, which it discloses.
    Undecryptable {
        /// The generation the commit's sender data names.
        generation: u32,
        /// The member's ratchet key for (committer leaf, generation).
        key: Secret,
        /// The member's final nonce (ratchet nonce XOR reuse_guard).
        nonce: Secret,
    },
    /// A commit the member's MLS processing refuses for another reason (a
    /// PublicMessage's membership tag, a confirmation tag, the commit's
    /// content): nothing the hub can check itself.
    Unprocessable,
    /// The member processed the commit, but the F it derives for the epoch
    /// the commit opened is not the one the hub pinned (its envelopes of
    /// that epoch fail HUB-11). Carries the member's F.
    WrongFanoutKey {
        /// F as the member derives it.
        fanout_key: Secret,
    },
}

impl DisputeClaim {
    fn code(&self) -> u8 {
        match self {
            DisputeClaim::Undecryptable { .. } => 1,
            DisputeClaim::Unprocessable => 2,
            DisputeClaim::WrongFanoutKey { .. } => 3,
        }
    }
}

/// A member's signed dispute of one commit (DSP-2). Its Debug output
/// shows no disclosed key, nonce or F.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dispute {
    /// The disputed commit, byte for byte as the member received it.
    pub commit: Vec<u8>,
    /// The disputing member's leaf in the epoch the commit closed.
    pub disputer: u32,
    /// What it claims.
    pub claim: DisputeClaim,
    /// SignWithLabel over the `DisputeTBS`.
    pub signature: Vec<u8>,
}

impl Dispute {
    /// Builds and signs a dispute with the disputer's leaf signature
    /// private key.
    pub fn sign(
        suite: MlsSuite,
        signature_private_key: &Secret,
        commit: &[u8],
        disputer: u32,
        claim: DisputeClaim,
    ) -> Res<Dispute> {
        let mut d = Dispute {
            commit: commit.to_vec(),
            disputer,
            claim,
            signature: Vec::new(),
        };
        d.signature = suite.sign_with_label(
            signature_private_key.expose(),
            crate::labels::DISPUTE,
            &d.tbs()?,
        )?;
        Ok(d)
    }

    /// Verifies the signature under the disputer's leaf key
    /// ([`Error::Crypto`] otherwise).
    pub fn verify(&self, suite: MlsSuite, signature_key: &[u8]) -> Res<()> {
        suite
            .verify_with_label(
                signature_key,
                crate::labels::DISPUTE,
                &self.tbs()?,
                &self.signature,
            )
            .map_err(|_| Error::Crypto)
    }

    /// The encoded `DisputeTBS` (zeroized on drop: it may hold a key or F).
    pub fn tbs(&self) -> Res<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.commit.len() + 64));
        put_vec(&mut out, &self.commit)?;
        out.extend_from_slice(&self.disputer.to_be_bytes());
        out.push(self.claim.code());
        match &self.claim {
            DisputeClaim::Undecryptable {
                generation,
                key,
                nonce,
            } => {
                out.extend_from_slice(&generation.to_be_bytes());
                put_vec(&mut out, key.expose())?;
                put_vec(&mut out, nonce.expose())?;
            }
            DisputeClaim::Unprocessable => {}
            DisputeClaim::WrongFanoutKey { fanout_key } => put_vec(&mut out, fanout_key.expose())?,
        }
        Ok(out)
    }

    /// The encoded `Dispute` (zeroized on drop).
    pub fn encode(&self) -> Res<Zeroizing<Vec<u8>>> {
        let mut out = self.tbs()?;
        put_vec(&mut out, &self.signature)?;
        Ok(out)
    }

    /// Decodes a dispute strictly (DSP-2): minimal length prefixes, a known
    /// claim, a disclosed key and nonce of 1 to 32 bytes, F of exactly 32
    /// bytes, a signature of 1 to 139 bytes, no trailing bytes, at most
    /// [`MAX_DISPUTE_LEN`] bytes. Every failure is [`Error::Malformed`] or
    /// [`Error::TooLarge`]; the signature is not checked here.
    pub fn parse(bytes: &[u8]) -> Res<Dispute> {
        const WHAT: &str = "dispute";
        if bytes.len() > MAX_DISPUTE_LEN {
            return Err(Error::TooLarge("dispute"));
        }
        let mut r = Reader::new(bytes);
        let commit = r.vec(WHAT)?.to_vec();
        if commit.is_empty() {
            return Err(Error::Malformed("dispute: empty commit"));
        }
        let disputer = r.u32(WHAT)?;
        let bounded = |v: &[u8]| !v.is_empty() && v.len() <= MAX_DISCLOSED_LEN;
        let claim = match r.u8(WHAT)? {
            1 => {
                let generation = r.u32(WHAT)?;
                let key = r.vec(WHAT)?;
                let nonce = r.vec(WHAT)?;
                if !bounded(key) || !bounded(nonce) {
                    return Err(Error::Malformed("dispute: disclosed key or nonce length"));
                }
                DisputeClaim::Undecryptable {
                    generation,
                    key: Secret::from_slice(key),
                    nonce: Secret::from_slice(nonce),
                }
            }
            2 => DisputeClaim::Unprocessable,
            3 => {
                let f = r.vec(WHAT)?;
                if f.len() != FANOUT_KEY_LEN {
                    return Err(Error::Malformed("dispute: F length"));
                }
                DisputeClaim::WrongFanoutKey {
                    fanout_key: Secret::from_slice(f),
                }
            }
            _ => return Err(Error::Malformed("dispute: unknown claim")),
        };
        let signature = r.vec(WHAT)?.to_vec();
        if signature.is_empty() || signature.len() > MAX_SIGNATURE_LEN {
            return Err(Error::Malformed("dispute: signature length"));
        }
        r.finish("dispute: trailing bytes")?;
        Ok(Dispute {
            commit,
            disputer,
            claim,
            signature,
        })
    }
}

/// What the hub made of a dispute (DSP-3 to DSP-7), all the disputer
/// learns (DSP-8): a refusal does not say which check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisputeOutcome {
    /// Refused: it does not decode, names no commit that opened the
    /// group's current epoch, is not signed by a leaf of the closed epoch
    /// other than the committer, or its claim does not hold (DSP-3, DSP-4).
    Refused,
    /// Counted; the hub acts once `needed` distinct leaves agree (DSP-5).
    Counted {
        /// Distinct leaves that made this claim.
        votes: usize,
        /// The hub's threshold.
        needed: usize,
    },
    /// This leaf's dispute of the commit was counted before.
    AlreadyCounted,
    /// The group is back in the epoch the commit closed (DSP-6).
    Reverted,
    /// F of the current epoch is now the one the members derive (DSP-7).
    Repinned,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(claim: DisputeClaim) -> Dispute {
        let suite = MlsSuite::from_code(1).unwrap();
        let sk = Secret::new(vec![3; 32]);
        Dispute::sign(suite, &sk, b"a commit", 0, claim).unwrap()
    }

    fn claims() -> Vec<DisputeClaim> {
        vec![
            DisputeClaim::Undecryptable {
                generation: 7,
                key: Secret::new(vec![1; 16]),
                nonce: Secret::new(vec![2; 12]),
            },
            DisputeClaim::Unprocessable,
            DisputeClaim::WrongFanoutKey {
                fanout_key: Secret::new(vec![4; 32]),
            },
        ]
    }

    /// DSP-2: every claim round-trips and verifies under the signer's key;
    /// Debug shows no disclosed key or F.
    #[test]
    fn dsp2_round_trip_and_signature() {
        let suite = MlsSuite::from_code(1).unwrap();
        let public = suite.signature_public_key(&[3; 32]).unwrap();
        for claim in claims() {
            let d = sample(claim);
            let bytes = d.encode().unwrap();
            let back = Dispute::parse(&bytes).unwrap();
            assert_eq!(back, d);
            back.verify(suite, &public).unwrap();
            let shown = format!("{d:?}");
            assert!(!shown.contains("[1, 1") && !shown.contains("[4, 4"));
        }
    }

    /// DSP-2: every truncation and every single-bit flip of a valid dispute
    /// is rejected, by the decoder or by the signature, never with a panic.
    #[test]
    fn dsp2_truncations_and_bit_flips_are_rejected() {
        let suite = MlsSuite::from_code(1).unwrap();
        let public = suite.signature_public_key(&[3; 32]).unwrap();
        for claim in claims() {
            let bytes = sample(claim).encode().unwrap();
            for cut in 0..bytes.len() {
                assert!(Dispute::parse(&bytes[..cut]).is_err(), "cut {cut}");
            }
            let mut trailing = bytes.to_vec();
            trailing.push(0);
            assert!(Dispute::parse(&trailing).is_err());
            for bit in 0..bytes.len() * 8 {
                let mut b = bytes.to_vec();
                b[bit / 8] ^= 1 << (bit % 8);
                if let Ok(d) = Dispute::parse(&b) {
                    assert!(d.verify(suite, &public).is_err(), "bit {bit}");
                }
            }
        }
    }

    /// DSP-2: an unknown claim, a wrong F length, an empty key or
    /// signature are malformed.
    #[test]
    fn dsp2_bad_fields_are_malformed() {
        let mut out = Vec::new();
        put_vec(&mut out, b"c").unwrap();
        out.extend_from_slice(&0u32.to_be_bytes());
        let with = |tail: &[u8]| {
            let mut b = out.clone();
            b.extend_from_slice(tail);
            Dispute::parse(&b)
        };
        assert!(with(&[9, 1, 0xaa]).is_err());
        assert!(with(&[3, 2, 1, 2, 1, 0xaa]).is_err());
        assert!(with(&[1, 0, 0, 0, 0, 0, 1, 1, 1, 0xaa]).is_err());
        assert!(with(&[2, 0]).is_err());
        assert!(with(&[2, 1, 0xaa]).is_ok());
    }
}
