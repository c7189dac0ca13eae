//! The envelope and the hub layer on the wire (spec sections "Outer Layer"
//! and "Hub Layer").
//!
//! ```text
//! struct {
//!   uint8  version;              /* offset 0, = 1 */
//!   opaque routing_token[17];    /* offset 1, in every version (TOK-1) */
//!   uint8  key_id;
//!   uint16 kem_id; uint16 kdf_id; uint16 aead_id;
//! } OuterHeader;                 /* 25 bytes */
//!
//! struct {
//!   OuterHeader header;
//!   opaque enc[Nenc];
//!   opaque sealed_hub_layer<V>;
//! } Envelope;
//!
//! struct {
//!   opaque message<V>;
//!   opaque membership_proof[16];
//!   opaque key_layer<V>;
//!   opaque fanout_key<V>;
//!   opaque fanout_key_signature<V>;
//! } HubLayerContent;             /* followed by zero padding */
//! ```
//!
//! Decoding borrows from the input and checks every length against the
//! bytes present before using it.

use zeroize::Zeroize;

use crate::codec::{check_zero_padding, put_varint, put_vec, varint_len, Reader};
use crate::error::{Error, Res};
use crate::padding::padded_length;
use crate::secret::Secret;
use crate::suite::{kem_n_enc, HpkeSuite, MAX_N_ENC};
use crate::token::{RoutingToken, TOKEN_LEN};

/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Offset of the routing token in every envelope, in every version (TOK-1).
pub const TOKEN_OFFSET: usize = 1;
/// Offset of the hub key id.
pub const KEY_ID_OFFSET: usize = TOKEN_OFFSET + TOKEN_LEN;
/// Offset of the HPKE suite: `kem_id`, `kdf_id`, `aead_id`, two bytes each.
pub const SUITE_OFFSET: usize = KEY_ID_OFFSET + 1;
/// Length of the outer header.
pub const HEADER_LEN: usize = SUITE_OFFSET + 6;
pub use crate::limits::{
    FANOUT_KEY_LEN, FANOUT_KEY_SIGNATURE_MAX_LEN, KEY_LAYER_HEADER_LEN, KEY_LAYER_MAX_LEN,
    KEY_LAYER_PLAINTEXT_LEN, MAX_MESSAGE_LEN, MEMBERSHIP_PROOF_LEN,
};
/// The largest sealed hub layer (OUT-5): the padded length of the largest
/// message plus the AEAD tag.
pub const MAX_SEALED_HUB_LAYER_LEN: usize =
    crate::padding::padme(MAX_MESSAGE_LEN + crate::padding::RESERVED_ROOM) + 16;
/// The largest legal envelope: header, the largest `enc`, the 4-byte
/// length prefix and the largest sealed hub layer. A reader of untrusted
/// envelopes (a server's body limit, a file) needs no more bytes than this.
pub const MAX_ENVELOPE_LEN: usize = HEADER_LEN + MAX_N_ENC + 4 + MAX_SEALED_HUB_LAYER_LEN;

/// The clear outer header of an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterHeader {
    /// The routing token.
    pub token: RoutingToken,
    /// The hub key id.
    pub key_id: u8,
    /// The HPKE suite of the hub layer.
    pub suite: HpkeSuite,
}

impl OuterHeader {
    /// The header's 25 bytes: the HPKE `aad` of the hub layer (OUT-4).
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = VERSION;
        out[TOKEN_OFFSET..TOKEN_OFFSET + TOKEN_LEN].copy_from_slice(&self.token.0);
        out[KEY_ID_OFFSET] = self.key_id;
        let (kem, kdf, aead) = self.suite.ids();
        out[SUITE_OFFSET..SUITE_OFFSET + 2].copy_from_slice(&kem.to_be_bytes());
        out[SUITE_OFFSET + 2..SUITE_OFFSET + 4].copy_from_slice(&kdf.to_be_bytes());
        out[SUITE_OFFSET + 4..SUITE_OFFSET + 6].copy_from_slice(&aead.to_be_bytes());
        out
    }

    /// The suite an envelope's header names, read at its fixed offset
    /// without decoding anything else: `None` if the header is incomplete
    /// or names no supported suite. The hub sizes its random answer by it
    /// (RSP-2).
    pub fn peek_suite(envelope: &[u8]) -> Option<HpkeSuite> {
        let ids = envelope.get(SUITE_OFFSET..HEADER_LEN)?;
        let id = |i: usize| u16::from_be_bytes([ids[i], ids[i + 1]]);
        HpkeSuite::from_ids(id(0), id(2), id(4)).ok()
    }

    /// Decodes a header from the start of `r` (OUT-1, OUT-2).
    fn read(r: &mut Reader<'_>) -> Res<Self> {
        let version = r.u8("envelope: truncated header")?;
        if version != VERSION {
            return Err(Error::Unsupported("envelope version"));
        }
        let token = RoutingToken(r.array("envelope: truncated header")?);
        let key_id = r.u8("envelope: truncated header")?;
        let kem = r.u16("envelope: truncated header")?;
        let kdf = r.u16("envelope: truncated header")?;
        let aead = r.u16("envelope: truncated header")?;
        let suite = HpkeSuite::from_ids(kem, kdf, aead)?;
        Ok(OuterHeader {
            token,
            key_id,
            suite,
        })
    }

    /// The HPKE `info` of the hub layer (OUT-4):
    /// `"mimi-onion v1 hub layer" || 0x00 || version || key_id || kem || kdf || aead`.
    pub fn hpke_info(&self) -> Vec<u8> {
        let h = self.to_bytes();
        let mut info = Vec::with_capacity(crate::labels::HUB_LAYER.len() + 9);
        info.extend_from_slice(crate::labels::HUB_LAYER);
        info.push(0);
        info.push(h[0]);
        info.extend_from_slice(&h[KEY_ID_OFFSET..HEADER_LEN]);
        info
    }
}

/// A decoded envelope, borrowing from the bytes it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The outer header.
    pub header: OuterHeader,
    /// The exact header bytes as received.
    pub header_bytes: &'a [u8],
    /// The HPKE encapsulation.
    pub enc: &'a [u8],
    /// The HPKE ciphertext of the hub layer.
    pub sealed_hub_layer: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// Decodes an envelope (OUT-1 to OUT-3): known version and suite, `enc`
    /// of exactly Nenc bytes, a minimal length prefix and no trailing bytes.
    pub fn parse(bytes: &'a [u8]) -> Res<Self> {
        let mut r = Reader::new(bytes);
        let header = OuterHeader::read(&mut r)?;
        let n_enc = kem_n_enc(header.suite.kem_id()).ok_or(Error::Unsupported("kem"))?;
        let enc = r.bytes(n_enc, "envelope: truncated enc")?;
        let sealed_hub_layer = r.vec("envelope: sealed hub layer")?;
        if sealed_hub_layer.len() > MAX_SEALED_HUB_LAYER_LEN {
            return Err(Error::TooLarge("sealed hub layer (OUT-5)"));
        }
        r.finish("envelope: trailing bytes")?;
        Ok(Envelope {
            header,
            header_bytes: &bytes[..HEADER_LEN],
            enc,
            sealed_hub_layer,
        })
    }

    /// Encodes an envelope.
    pub fn encode(header: &OuterHeader, enc: &[u8], sealed_hub_layer: &[u8]) -> Res<Vec<u8>> {
        let mut out = Vec::with_capacity(Self::encoded_len(enc.len(), sealed_hub_layer.len()));
        Self::put_prefix(header, enc, sealed_hub_layer.len(), &mut out)?;
        out.extend_from_slice(sealed_hub_layer);
        Ok(out)
    }

    /// The length of an envelope with an `enc` of `enc_len` bytes and a
    /// sealed hub layer of `sealed_len` bytes.
    pub fn encoded_len(enc_len: usize, sealed_len: usize) -> usize {
        HEADER_LEN + enc_len + varint_len(sealed_len) + sealed_len
    }

    /// Appends everything of an envelope before its sealed hub layer: the
    /// header, `enc` and the length of a sealed hub layer of `sealed_len`
    /// bytes, which the caller appends (or seals in place) next.
    pub fn put_prefix(
        header: &OuterHeader,
        enc: &[u8],
        sealed_len: usize,
        out: &mut Vec<u8>,
    ) -> Res<()> {
        if enc.len() != header.suite.n_enc() {
            return Err(Error::Usage("enc length does not match the suite"));
        }
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(enc);
        put_varint(out, sealed_len)
    }
}

/// Reads the routing token of an envelope without decoding anything else
/// (TOK-1). `None` if the input is shorter than the token's end.
pub fn peek_token(envelope: &[u8]) -> Option<&[u8; TOKEN_LEN]> {
    envelope
        .get(TOKEN_OFFSET..TOKEN_OFFSET + TOKEN_LEN)
        .and_then(|s| s.try_into().ok())
}

/// The content of the hub layer, borrowing the message and key layer from
/// the decrypted plaintext.
#[derive(Debug, PartialEq, Eq)]
pub struct HubLayerContent<'a> {
    /// The MLS message, byte for byte.
    pub message: &'a [u8],
    /// The membership proof, or random filler.
    pub membership_proof: [u8; MEMBERSHIP_PROOF_LEN],
    /// The sealed key layer; empty when absent.
    pub key_layer: &'a [u8],
    /// F: for a commit, F of the epoch it opens; for a registration, F of
    /// the GroupInfo's epoch.
    pub fanout_key: Option<Secret>,
    /// For a PublicMessage commit, the committer's signature over F
    /// (`SignWithLabel` over `FanoutKeyTBS`, PRF-4); empty otherwise.
    pub fanout_key_signature: &'a [u8],
}

impl<'a> HubLayerContent<'a> {
    /// Encodes the content and pads it with zeros to
    /// `padded_length(message.len())` (HUB-2, PAD-1).
    pub fn encode_padded(&self) -> Res<Vec<u8>> {
        let mut out = Vec::with_capacity(self.padded_len()?);
        self.put_padded(&mut out)?;
        Ok(out)
    }

    /// The length of the padded encoding, once the content's own bounds
    /// are checked.
    pub fn padded_len(&self) -> Res<usize> {
        if self.message.len() > MAX_MESSAGE_LEN {
            return Err(Error::TooLarge("message longer than 16 MiB"));
        }
        if self.key_layer.len() > KEY_LAYER_MAX_LEN {
            return Err(Error::TooLarge("key layer"));
        }
        if let Some(f) = &self.fanout_key {
            if f.len() != FANOUT_KEY_LEN {
                return Err(Error::Usage("fan-out key must be 32 bytes"));
            }
        }
        if self.fanout_key_signature.len() > FANOUT_KEY_SIGNATURE_MAX_LEN {
            return Err(Error::TooLarge("fan-out key signature"));
        }
        if !self.fanout_key_signature.is_empty() && !self.key_layer.is_empty() {
            return Err(Error::Usage(
                "a key layer and an F signature never travel together",
            ));
        }
        Ok(padded_length(self.message.len()))
    }

    /// Appends the padded encoding to `out` (the sender writes it straight
    /// into the envelope's buffer and seals it there).
    pub fn put_padded(&self, out: &mut Vec<u8>) -> Res<()> {
        let padded = self.padded_len()?;
        let start = out.len();
        put_vec(out, self.message)?;
        out.extend_from_slice(&self.membership_proof);
        put_vec(out, self.key_layer)?;
        match &self.fanout_key {
            Some(f) => put_vec(out, f.expose())?,
            None => out.push(0),
        }
        put_vec(out, self.fanout_key_signature)?;
        debug_assert!(out.len() - start <= padded);
        out.resize(start + padded, 0);
        Ok(())
    }

    /// Decodes a padded hub-layer plaintext (HUB-1, HUB-2): lengths within
    /// bounds, total length exactly the padded length of the message, every
    /// padding byte zero.
    pub fn parse_padded(plaintext: &'a [u8]) -> Res<Self> {
        let mut r = Reader::new(plaintext);
        let message = r.vec("hub layer: message")?;
        if message.len() > MAX_MESSAGE_LEN {
            return Err(Error::TooLarge("message longer than 16 MiB"));
        }
        let membership_proof = r.array("hub layer: membership proof")?;
        let key_layer = r.vec("hub layer: key layer")?;
        if key_layer.len() > KEY_LAYER_MAX_LEN {
            return Err(Error::Malformed("hub layer: key layer too long"));
        }
        let fanout = r.vec("hub layer: fan-out key")?;
        let fanout_key = match fanout.len() {
            0 => None,
            FANOUT_KEY_LEN => Some(Secret::from_slice(fanout)),
            _ => return Err(Error::Malformed("hub layer: fan-out key length")),
        };
        let fanout_key_signature = r.vec("hub layer: fan-out key signature")?;
        if fanout_key_signature.len() > FANOUT_KEY_SIGNATURE_MAX_LEN {
            return Err(Error::Malformed(
                "hub layer: fan-out key signature too long",
            ));
        }
        // HUB-1: the two never travel together (a PublicMessage commit has
        // no key layer), so that what decodes also encodes.
        if !fanout_key_signature.is_empty() && !key_layer.is_empty() {
            return Err(Error::Malformed(
                "hub layer: key layer and fan-out key signature",
            ));
        }
        if plaintext.len() != padded_length(message.len()) {
            return Err(Error::Malformed("hub layer: padded length"));
        }
        // HUB-2: every padding byte zero.
        check_zero_padding(r.rest(), "hub layer: non-zero padding")?;
        Ok(HubLayerContent {
            message,
            membership_proof,
            key_layer,
            fanout_key,
            fanout_key_signature,
        })
    }
}

/// A plaintext buffer that is zeroized when dropped, except for a range
/// holding public bytes (the MLS message of a hub layer, which is itself a
/// ciphertext the front-end may see): wiping a 1 MiB message byte by byte
/// would cost more than decrypting it, and protects nothing.
///
/// The third field is where the plaintext starts in the buffer: the hub
/// decrypts a hub layer where it lies in the envelope it owns, behind the
/// header and `enc` (which are public too, and zeroized with the rest).
#[derive(Default)]
pub(crate) struct PlainBuf(pub Vec<u8>, core::ops::Range<usize>, usize);

impl PlainBuf {
    /// A buffer zeroized entirely on drop.
    pub(crate) fn secret(bytes: Vec<u8>) -> Self {
        PlainBuf(bytes, 0..0, 0)
    }

    /// The plaintext: the buffer from the plaintext's start.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.get(self.2..).unwrap_or_default()
    }

    /// A padded hub-layer plaintext at `start..` of `buf` (the envelope
    /// the hub decrypted it in): as [`Self::with_public_message`].
    pub(crate) fn hub_layer_in(buf: Vec<u8>, start: usize) -> Self {
        let start = start.min(buf.len());
        let mut r = Reader::new(&buf[start..]);
        let public = match r.varint("message") {
            Ok(n) => {
                let from = buf.len() - r.remaining();
                from..from.saturating_add(n).min(buf.len())
            }
            Err(_) => 0..0,
        };
        PlainBuf(buf, public, start)
    }

    /// A padded hub-layer or fan-out plaintext: the `message<V>` at its
    /// start is public; everything after it (membership proof, key layer,
    /// F, padding) is zeroized on drop.
    pub(crate) fn with_public_message(bytes: Vec<u8>) -> Self {
        let mut r = Reader::new(&bytes);
        let public = match r.varint("message") {
            Ok(n) => {
                let start = bytes.len() - r.remaining();
                start..start.saturating_add(n).min(bytes.len())
            }
            Err(_) => 0..0,
        };
        PlainBuf(bytes, public, 0)
    }
}

impl PlainBuf {
    /// The public message of a hub-layer or fan-out plaintext, keeping the
    /// buffer it lies in: everything else (membership proof, key layer, F,
    /// padding) is zeroized first. No copy of the message.
    pub(crate) fn into_message(mut self) -> MessageBytes {
        let range = self.1.clone();
        let mut buf = core::mem::take(&mut self.0);
        let len = buf.len();
        let start = range.start.min(len);
        let end = range.end.clamp(start, len);
        buf[..start].zeroize();
        buf[end..].zeroize();
        MessageBytes {
            buf,
            range: start..end,
        }
    }
}

/// An MLS message as the hub recovered it from a hub layer, in the buffer
/// it was decrypted into (whose other bytes are zeroed): derefs to the
/// message's bytes.
#[derive(Clone, Default)]
pub struct MessageBytes {
    buf: Vec<u8>,
    range: core::ops::Range<usize>,
}

impl MessageBytes {
    /// The message's bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }

    /// The message as a vector of its own (one copy).
    pub fn to_vec(&self) -> Vec<u8> {
        self.as_slice().to_vec()
    }
}

impl core::ops::Deref for MessageBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for MessageBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Vec<u8>> for MessageBytes {
    fn from(buf: Vec<u8>) -> Self {
        let range = 0..buf.len();
        MessageBytes { buf, range }
    }
}

impl core::fmt::Debug for MessageBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "MessageBytes({} bytes)", self.range.len())
    }
}

impl PartialEq for MessageBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for MessageBytes {}

impl PartialEq<[u8]> for MessageBytes {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<u8>> for MessageBytes {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<MessageBytes> for Vec<u8> {
    fn eq(&self, other: &MessageBytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Drop for PlainBuf {
    fn drop(&mut self) {
        let public = self.1.clone();
        let len = self.0.len();
        let (head, rest) = self.0.split_at_mut(public.start.min(len));
        head.zeroize();
        let tail_from = public.end.saturating_sub(public.start).min(rest.len());
        rest[tail_from..].zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> OuterHeader {
        OuterHeader {
            token: RoutingToken([0xab; TOKEN_LEN]),
            key_id: 3,
            suite: HpkeSuite::X25519Aes128Gcm,
        }
    }

    #[test]
    fn tok1_token_at_fixed_offset() {
        let env = Envelope::encode(&header(), &[9; 32], &[1, 2, 3]).unwrap();
        assert_eq!(peek_token(&env), Some(&[0xab; TOKEN_LEN]));
        assert_eq!(peek_token(&env[..17]), None);
    }

    #[test]
    fn envelope_round_trip_and_trailing_bytes() {
        let env = Envelope::encode(&header(), &[9; 32], &[1, 2, 3]).unwrap();
        let parsed = Envelope::parse(&env).unwrap();
        assert_eq!(parsed.header, header());
        assert_eq!(parsed.enc, &[9; 32]);
        assert_eq!(parsed.sealed_hub_layer, &[1, 2, 3]);
        let mut longer = env.clone();
        longer.push(0);
        assert!(Envelope::parse(&longer).is_err());
        for n in 0..env.len() {
            assert!(Envelope::parse(&env[..n]).is_err());
        }
    }

    #[test]
    fn out1_out2_version_and_suite() {
        let mut env = Envelope::encode(&header(), &[9; 32], &[1]).unwrap();
        env[0] = 2;
        assert_eq!(
            Envelope::parse(&env),
            Err(Error::Unsupported("envelope version"))
        );
        let mut env = Envelope::encode(&header(), &[9; 32], &[1]).unwrap();
        env[24] = 2; // AES-256-GCM: not one of the three suites
        assert!(matches!(Envelope::parse(&env), Err(Error::Unsupported(_))));
    }

    #[test]
    fn hub2_padding_must_be_zero_and_exact() {
        let content = HubLayerContent {
            message: b"hello",
            membership_proof: [7; 16],
            key_layer: &[],
            fanout_key: None,
            fanout_key_signature: &[],
        };
        let mut pt = content.encode_padded().unwrap();
        assert_eq!(pt.len(), padded_length(5));
        assert_eq!(HubLayerContent::parse_padded(&pt).unwrap(), content);
        let last = pt.len() - 1;
        pt[last] = 1;
        assert!(HubLayerContent::parse_padded(&pt).is_err());
        pt[last] = 0;
        pt.push(0);
        assert!(HubLayerContent::parse_padded(&pt).is_err());
    }

    /// The largest private commit (largest key layer, F, no F signature)
    /// and the largest public commit (no key layer, F, the longest F
    /// signature) both fit the room reserved for every message.
    #[test]
    fn largest_content_fits_the_reserved_room() {
        let big_key_layer = vec![1u8; KEY_LAYER_MAX_LEN];
        let big_signature = vec![2u8; FANOUT_KEY_SIGNATURE_MAX_LEN];
        for len in [0usize, 63, 64, 16383, 16384, 70000] {
            let msg = vec![0u8; len];
            for (key_layer, signature) in [(&big_key_layer[..], &[][..]), (&[], &big_signature)] {
                let content = HubLayerContent {
                    message: &msg,
                    membership_proof: [0; 16],
                    key_layer,
                    fanout_key: Some(Secret::from_slice(&[5; 32])),
                    fanout_key_signature: signature,
                };
                let pt = content.encode_padded().unwrap();
                assert_eq!(pt.len(), padded_length(len));
                assert_eq!(HubLayerContent::parse_padded(&pt).unwrap(), content);
            }
        }
        // Both at once is refused when sealing, and too long a signature.
        let both = HubLayerContent {
            message: b"m",
            membership_proof: [0; 16],
            key_layer: &big_key_layer,
            fanout_key: None,
            fanout_key_signature: &big_signature,
        };
        assert!(both.encode_padded().is_err());
        let long = vec![0u8; FANOUT_KEY_SIGNATURE_MAX_LEN + 1];
        let too_long = HubLayerContent {
            key_layer: &[],
            fanout_key_signature: &long,
            ..both
        };
        assert!(too_long.encode_padded().is_err());
        // The decoder refuses both at once too (found by the hub_layer
        // fuzz target: it decoded what the encoder refuses).
        let mut pt = Vec::new();
        put_vec(&mut pt, b"m").unwrap();
        pt.extend_from_slice(&[0; 16]);
        put_vec(&mut pt, &[1; 40]).unwrap();
        pt.push(0);
        put_vec(&mut pt, &[2; 64]).unwrap();
        pt.resize(padded_length(1), 0);
        assert!(HubLayerContent::parse_padded(&pt).is_err());
    }
}
