//! The hub response (spec section "Hub Response", RSP-1 to RSP-4).
//!
//! ```text
//! struct {
//!   uint8  status;              /* 0 accepted, 1 rejected */
//!   uint16 reason;              /* 0 when accepted */
//!   opaque tokens[4 * 17];      /* fresh routing tokens */
//! } HubResponseContent;
//!
//! response = response_nonce[Nr] || AEAD-Seal(key, nonce, "", HubResponseContent)
//! ```
//!
//! `Nr = max(Nk, Nn)`; `secret = Export("mimi-onion v1 hub response", Nr)`
//! from the hub layer's HPKE context; `prk = HKDF-Extract(enc ||
//! response_nonce, secret)`; `key = HKDF-Expand(prk, "key", Nk)`; `nonce =
//! HKDF-Expand(prk, "nonce", Nn)`. This is Oblivious HTTP's response
//! construction with this protocol's own labels.

use hkdf::Hkdf;
use hpke_rs_crypto::HpkeCrypto;
use hpke_rs_rust_crypto::HpkeRustCrypto;
use rand::CryptoRng;
use sha2::Sha256;

use crate::error::{Error, Res};
use crate::labels;
use crate::secret::Secret;
use crate::suite::HpkeSuite;
use crate::token::{RoutingToken, TOKEN_LEN};

/// Number of fresh routing tokens in every response.
pub const RESPONSE_TOKENS: usize = 4;
/// Length of the response plaintext.
pub const RESPONSE_CONTENT_LEN: usize = 3 + RESPONSE_TOKENS * TOKEN_LEN;

/// Why the hub rejected an envelope it could open. These codes go on the
/// wire; none of them concerns a cryptographic check of the envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The hub holds no state for the message's group.
    UnknownGroup,
    /// The message's epoch is not one the hub accepts for its type.
    StaleEpoch,
    /// The message is not a well-formed MLSMessage.
    MalformedMessage,
    /// The envelope carries a routing token that was already spent.
    TokenReused,
    /// The handshake message was already accepted, in this envelope's
    /// epoch or as the commit that opened it (HUB-7).
    ReplayedEnvelope,
    /// The membership proof does not verify for the group's epoch.
    MembershipProofFailed,
    /// The hub's policy engine refused the handshake message.
    PolicyRejected,
    /// A registration for a group the hub already holds.
    RegistrationRefused,
    /// The key layer or fan-out key is present where it must be absent, or
    /// the reverse.
    WrongForm,
    /// The hub could not read or write its state (STO-1); nothing of the
    /// envelope was kept, and the same envelope may be sent again later.
    Unavailable,
}

impl RejectReason {
    /// All reasons, in code order.
    pub const ALL: [RejectReason; 10] = [
        RejectReason::UnknownGroup,
        RejectReason::StaleEpoch,
        RejectReason::MalformedMessage,
        RejectReason::TokenReused,
        RejectReason::ReplayedEnvelope,
        RejectReason::MembershipProofFailed,
        RejectReason::PolicyRejected,
        RejectReason::RegistrationRefused,
        RejectReason::WrongForm,
        RejectReason::Unavailable,
    ];

    /// The wire code (1 to 10).
    pub fn code(self) -> u16 {
        match self {
            RejectReason::UnknownGroup => 1,
            RejectReason::StaleEpoch => 2,
            RejectReason::MalformedMessage => 3,
            RejectReason::TokenReused => 4,
            RejectReason::ReplayedEnvelope => 5,
            RejectReason::MembershipProofFailed => 6,
            RejectReason::PolicyRejected => 7,
            RejectReason::RegistrationRefused => 8,
            RejectReason::WrongForm => 9,
            RejectReason::Unavailable => 10,
        }
    }

    /// The reason for a wire code.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// A snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            RejectReason::UnknownGroup => "unknown_group",
            RejectReason::StaleEpoch => "stale_epoch",
            RejectReason::MalformedMessage => "malformed_message",
            RejectReason::TokenReused => "token_reused",
            RejectReason::ReplayedEnvelope => "replayed_envelope",
            RejectReason::MembershipProofFailed => "membership_proof_failed",
            RejectReason::PolicyRejected => "policy_rejected",
            RejectReason::RegistrationRefused => "registration_refused",
            RejectReason::WrongForm => "wrong_form",
            RejectReason::Unavailable => "unavailable",
        }
    }
}

/// Accepted or rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The hub accepted the message.
    Accepted,
    /// The hub rejected the message.
    Rejected(RejectReason),
}

/// A decrypted hub response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubResponse {
    /// The verdict.
    pub status: Status,
    /// Fresh routing tokens for this client and group.
    pub tokens: [RoutingToken; RESPONSE_TOKENS],
}

impl HubResponse {
    /// Encodes the fixed-size content.
    pub fn encode(&self) -> [u8; RESPONSE_CONTENT_LEN] {
        let mut out = [0u8; RESPONSE_CONTENT_LEN];
        let (status, reason) = match self.status {
            Status::Accepted => (0u8, 0u16),
            Status::Rejected(r) => (1, r.code()),
        };
        out[0] = status;
        out[1..3].copy_from_slice(&reason.to_be_bytes());
        for (i, t) in self.tokens.iter().enumerate() {
            out[3 + i * TOKEN_LEN..3 + (i + 1) * TOKEN_LEN].copy_from_slice(&t.0);
        }
        out
    }

    /// Decodes the content strictly: status 0 with reason 0, or status 1
    /// with a known reason.
    pub fn decode(bytes: &[u8]) -> Res<Self> {
        if bytes.len() != RESPONSE_CONTENT_LEN {
            return Err(Error::Malformed("hub response: length"));
        }
        let reason = u16::from_be_bytes([bytes[1], bytes[2]]);
        let status = match (bytes[0], reason) {
            (0, 0) => Status::Accepted,
            (1, code) => Status::Rejected(
                RejectReason::from_code(code).ok_or(Error::Malformed("hub response: reason"))?,
            ),
            _ => return Err(Error::Malformed("hub response: status")),
        };
        let mut tokens = [RoutingToken([0; TOKEN_LEN]); RESPONSE_TOKENS];
        for (i, t) in tokens.iter_mut().enumerate() {
            t.0.copy_from_slice(&bytes[3 + i * TOKEN_LEN..3 + (i + 1) * TOKEN_LEN]);
        }
        Ok(HubResponse { status, tokens })
    }
}

/// `Nr = max(Nk, Nn)`: the length of the response nonce and exported secret.
pub fn response_nonce_len(suite: HpkeSuite) -> usize {
    suite.n_k().max(suite.n_n())
}

/// The fixed size of every response for `suite` (RSP-1).
pub fn response_len(suite: HpkeSuite) -> usize {
    response_nonce_len(suite) + RESPONSE_CONTENT_LEN + suite.n_t()
}

/// The response secret exported from the hub layer's HPKE context.
pub(crate) fn export_secret(ctx: &crate::hpke::Context, suite: HpkeSuite) -> Res<Secret> {
    ctx.export(labels::HUB_RESPONSE, response_nonce_len(suite))
        .map_err(|_| Error::Crypto)
}

/// Response AEAD key and nonce (RSP-3).
pub fn response_key_nonce(
    suite: HpkeSuite,
    secret: &Secret,
    enc: &[u8],
    response_nonce: &[u8],
) -> Res<(Secret, Secret)> {
    let mut salt = Vec::with_capacity(enc.len() + response_nonce.len());
    salt.extend_from_slice(enc);
    salt.extend_from_slice(response_nonce);
    let hk = Hkdf::<Sha256>::new(Some(&salt), secret.expose());
    let mut key = vec![0u8; suite.n_k()];
    let mut nonce = vec![0u8; suite.n_n()];
    hk.expand(labels::RESPONSE_KEY, &mut key)
        .map_err(|_| Error::Crypto)?;
    hk.expand(labels::RESPONSE_NONCE, &mut nonce)
        .map_err(|_| Error::Crypto)?;
    Ok((Secret::new(key), Secret::new(nonce)))
}

/// Seals a response under the exported secret.
pub(crate) fn seal(
    suite: HpkeSuite,
    secret: &Secret,
    enc: &[u8],
    response: &HubResponse,
    rng: &mut impl CryptoRng,
) -> Res<Vec<u8>> {
    let mut response_nonce = vec![0u8; response_nonce_len(suite)];
    rng.fill_bytes(&mut response_nonce);
    seal_with_nonce(suite, secret, enc, response, response_nonce)
}

/// Seals a response with an explicit response nonce (test vectors).
pub fn seal_with_nonce(
    suite: HpkeSuite,
    secret: &Secret,
    enc: &[u8],
    response: &HubResponse,
    response_nonce: Vec<u8>,
) -> Res<Vec<u8>> {
    let (key, nonce) = response_key_nonce(suite, secret, enc, &response_nonce)?;
    let ct = HpkeRustCrypto::aead_seal(
        suite.hpke_types().2,
        key.expose(),
        nonce.expose(),
        &[],
        &response.encode(),
    )
    .map_err(|_| Error::Crypto)?;
    let mut out = response_nonce;
    out.extend_from_slice(&ct);
    debug_assert_eq!(out.len(), response_len(suite));
    Ok(out)
}

/// Opens a response (sender side).
pub fn open(suite: HpkeSuite, secret: &Secret, enc: &[u8], bytes: &[u8]) -> Res<HubResponse> {
    if bytes.len() != response_len(suite) {
        return Err(Error::Crypto);
    }
    let (response_nonce, ct) = bytes.split_at(response_nonce_len(suite));
    let (key, nonce) = response_key_nonce(suite, secret, enc, response_nonce)?;
    let pt = HpkeRustCrypto::aead_open(suite.hpke_types().2, key.expose(), nonce.expose(), &[], ct)
        .map_err(|_| Error::Crypto)?;
    // RSP-5: content that does not decode is treated like a response that
    // does not open.
    HubResponse::decode(&pt).map_err(|_| Error::Crypto)
}

/// Random bytes of a response's size (RSP-2): what the hub answers when it
/// cannot open an envelope.
pub(crate) fn random_response(suite: HpkeSuite, rng: &mut impl CryptoRng) -> Vec<u8> {
    let mut out = vec![0u8; response_len(suite)];
    rng.fill_bytes(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_round_trip_and_strictness() {
        let r = HubResponse {
            status: Status::Rejected(RejectReason::StaleEpoch),
            tokens: [RoutingToken([3; TOKEN_LEN]); RESPONSE_TOKENS],
        };
        assert_eq!(HubResponse::decode(&r.encode()).unwrap(), r);
        let mut bad = r.encode();
        bad[0] = 0; // accepted with a reason
        assert!(HubResponse::decode(&bad).is_err());
        bad[0] = 2;
        assert!(HubResponse::decode(&bad).is_err());
        let mut bad = r.encode();
        bad[2] = 99;
        assert!(HubResponse::decode(&bad).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(response_len(HpkeSuite::X25519Aes128Gcm), 103);
        assert_eq!(response_len(HpkeSuite::P256Aes128Gcm), 103);
        assert_eq!(response_len(HpkeSuite::X25519ChaCha20Poly1305), 119);
    }

    #[test]
    fn reason_codes_round_trip() {
        for r in RejectReason::ALL {
            assert_eq!(RejectReason::from_code(r.code()), Some(r));
        }
        assert_eq!(RejectReason::from_code(0), None);
    }
}
