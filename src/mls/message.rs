//! Reading the public header of an RFC 9420 `MLSMessage`.
//!
//! A hub that routes MLS traffic must learn a few facts about each message
//! (its wire format, group, epoch, content type, sender type, cipher suite)
//! without holding any group secrets. [`MessageInfo::parse`] reads exactly
//! those facts from untrusted bytes.
//!
//! The reader is a small hand-written, bounds-checked cursor over the input:
//! it never panics, never allocates, and borrows every variable-length field
//! from the input. Every length prefix is checked against the bytes that
//! remain before anything is sliced, so a hostile length costs nothing.
//! Variable-length vectors use the RFC 9420 §2.1.2 variable-size length
//! header; non-minimal encodings and the reserved `0b11` prefix are rejected.

use crate::Error;

const TRUNCATED: Error = Error::Malformed("mls message: truncated");
const TRAILING: Error = Error::Malformed("mls message: trailing bytes");
const BAD_VERSION: Error = Error::Malformed("mls message: unsupported protocol version");
const BAD_WIRE_FORMAT: Error = Error::Malformed("mls message: unknown wire format");
const BAD_CONTENT_TYPE: Error = Error::Malformed("mls message: unknown content type");
const BAD_SENDER_TYPE: Error = Error::Malformed("mls message: unknown sender type");
const NON_MINIMAL_VARINT: Error = Error::Malformed("mls message: non-minimal varint");
const BAD_VARINT_PREFIX: Error = Error::Malformed("mls message: invalid varint prefix");

/// The only protocol version this reader accepts: `mls10` (RFC 9420 §6).
const MLS10: u16 = 1;

/// RFC 9420 `WireFormat` values 1..=5 (§6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WireFormat {
    /// `mls_public_message` (1): a signed, unencrypted handshake or application message.
    PublicMessage,
    /// `mls_private_message` (2): an encrypted message from a group member.
    PrivateMessage,
    /// `mls_welcome` (3): the message that adds new members to a group.
    Welcome,
    /// `mls_group_info` (4): signed public group state, e.g. for external joins.
    GroupInfo,
    /// `mls_key_package` (5): a prospective member's key package.
    KeyPackage,
}

impl WireFormat {
    /// The RFC 9420 code point (1..=5).
    pub fn code(self) -> u16 {
        match self {
            WireFormat::PublicMessage => 1,
            WireFormat::PrivateMessage => 2,
            WireFormat::Welcome => 3,
            WireFormat::GroupInfo => 4,
            WireFormat::KeyPackage => 5,
        }
    }

    /// The wire format with RFC 9420 code point `code`, if it is one of 1..=5.
    pub fn from_code(code: u16) -> Option<Self> {
        match code {
            1 => Some(WireFormat::PublicMessage),
            2 => Some(WireFormat::PrivateMessage),
            3 => Some(WireFormat::Welcome),
            4 => Some(WireFormat::GroupInfo),
            5 => Some(WireFormat::KeyPackage),
            _ => None,
        }
    }

    /// A short lowercase name: `"public_message"`, `"private_message"`,
    /// `"welcome"`, `"group_info"` or `"key_package"`.
    pub fn name(self) -> &'static str {
        match self {
            WireFormat::PublicMessage => "public_message",
            WireFormat::PrivateMessage => "private_message",
            WireFormat::Welcome => "welcome",
            WireFormat::GroupInfo => "group_info",
            WireFormat::KeyPackage => "key_package",
        }
    }
}

/// RFC 9420 `ContentType` values 1..=3 (§6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// `application` (1).
    Application,
    /// `proposal` (2).
    Proposal,
    /// `commit` (3).
    Commit,
}

impl ContentType {
    /// The RFC 9420 code point (1..=3).
    pub fn code(self) -> u8 {
        match self {
            ContentType::Application => 1,
            ContentType::Proposal => 2,
            ContentType::Commit => 3,
        }
    }

    /// The content type with RFC 9420 code point `code`, if it is one of 1..=3.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(ContentType::Application),
            2 => Some(ContentType::Proposal),
            3 => Some(ContentType::Commit),
            _ => None,
        }
    }

    /// A short lowercase name: `"application"`, `"proposal"` or `"commit"`.
    pub fn name(self) -> &'static str {
        match self {
            ContentType::Application => "application",
            ContentType::Proposal => "proposal",
            ContentType::Commit => "commit",
        }
    }
}

/// RFC 9420 `SenderType` values 1..=4 (§6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenderType {
    /// `member` (1): a current member, identified by leaf index.
    Member,
    /// `external` (2): a preconfigured external sender, identified by index.
    External,
    /// `new_member_proposal` (3): a non-member proposing its own addition.
    NewMemberProposal,
    /// `new_member_commit` (4): a non-member joining by external commit.
    NewMemberCommit,
}

impl SenderType {
    /// The RFC 9420 code point (1..=4).
    pub fn code(self) -> u8 {
        match self {
            SenderType::Member => 1,
            SenderType::External => 2,
            SenderType::NewMemberProposal => 3,
            SenderType::NewMemberCommit => 4,
        }
    }

    /// The sender type with RFC 9420 code point `code`, if it is one of 1..=4.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(SenderType::Member),
            2 => Some(SenderType::External),
            3 => Some(SenderType::NewMemberProposal),
            4 => Some(SenderType::NewMemberCommit),
            _ => None,
        }
    }

    /// A short lowercase name: `"member"`, `"external"`,
    /// `"new_member_proposal"` or `"new_member_commit"`.
    pub fn name(self) -> &'static str {
        match self {
            SenderType::Member => "member",
            SenderType::External => "external",
            SenderType::NewMemberProposal => "new_member_proposal",
            SenderType::NewMemberCommit => "new_member_commit",
        }
    }
}

/// What the hub reads from a message: the public header of an `MLSMessage`.
///
/// How much of each wire format is read:
///
/// * `PrivateMessage`, `Welcome`, `GroupInfo`: parsed completely (every
///   field's framing is checked, opaque fields are skipped) and trailing
///   bytes are rejected.
/// * `PublicMessage`: only `FramedContent` up to and including
///   `content_type` is parsed (`group_id`, `epoch`, `sender`,
///   `authenticated_data`, `content_type`). The content body, the
///   signature, the confirmation tag and the membership tag are **not**
///   parsed or checked: their layout depends on proposal and credential
///   types that extensions may define, and checking them needs group
///   secrets anyway. A truncated or padded body is therefore not detected.
/// * `KeyPackage`: only `version`, `cipher_suite` and `init_key<V>` are
///   parsed; the leaf node, extensions and signature are not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo<'a> {
    /// The message's wire format.
    pub wire_format: WireFormat,
    /// The group ID: `Some` for `PublicMessage`, `PrivateMessage` and
    /// `GroupInfo`; `None` for `Welcome` and `KeyPackage`.
    pub group_id: Option<&'a [u8]>,
    /// The epoch: `Some` exactly when `group_id` is.
    pub epoch: Option<u64>,
    /// The content type: `Some` for `PublicMessage` and `PrivateMessage` only.
    pub content_type: Option<ContentType>,
    /// The sender type: `Some` for `PublicMessage` only (a `PrivateMessage`
    /// sender is encrypted).
    pub sender_type: Option<SenderType>,
    /// The cipher suite: `Some` for `Welcome`, `GroupInfo` and `KeyPackage`;
    /// `None` for `PublicMessage` and `PrivateMessage`, which do not carry it.
    pub cipher_suite: Option<u16>,
    /// The authenticated data: `Some` (possibly empty) for `PublicMessage`
    /// and `PrivateMessage`, `None` otherwise.
    pub authenticated_data: Option<&'a [u8]>,
}

impl<'a> MessageInfo<'a> {
    /// Reads the public header of an RFC 9420 `MLSMessage` from untrusted
    /// bytes.
    ///
    /// Requires protocol version `mls10` and a wire format in 1..=5. See the
    /// type's documentation for how much of each wire format is checked.
    /// Never panics and never allocates; the returned slices borrow from
    /// `bytes`.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] when the input is truncated, has trailing bytes
    /// (where the whole message is parsed), uses an unknown version, wire
    /// format, content type or sender type, or a non-minimal or invalid
    /// variable-length header.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        if r.u16()? != MLS10 {
            return Err(BAD_VERSION);
        }
        let wire_format = WireFormat::from_code(r.u16()?).ok_or(BAD_WIRE_FORMAT)?;
        let mut info = MessageInfo {
            wire_format,
            group_id: None,
            epoch: None,
            content_type: None,
            sender_type: None,
            cipher_suite: None,
            authenticated_data: None,
        };
        match wire_format {
            WireFormat::PublicMessage => {
                // FramedContent: group_id<V>, epoch, sender, authenticated_data<V>,
                // content_type, then the body (not parsed).
                info.group_id = Some(r.vec()?);
                info.epoch = Some(r.u64()?);
                let sender_type = SenderType::from_code(r.u8()?).ok_or(BAD_SENDER_TYPE)?;
                match sender_type {
                    // leaf_index / sender_index
                    SenderType::Member | SenderType::External => {
                        r.u32()?;
                    }
                    SenderType::NewMemberProposal | SenderType::NewMemberCommit => {}
                }
                info.sender_type = Some(sender_type);
                info.authenticated_data = Some(r.vec()?);
                info.content_type = Some(r.content_type()?);
            }
            WireFormat::PrivateMessage => {
                info.group_id = Some(r.vec()?);
                info.epoch = Some(r.u64()?);
                info.content_type = Some(r.content_type()?);
                info.authenticated_data = Some(r.vec()?);
                r.vec()?; // encrypted_sender_data
                r.vec()?; // ciphertext
                r.finish()?;
            }
            WireFormat::Welcome => {
                info.cipher_suite = Some(r.u16()?);
                r.vec()?; // secrets<V>, kept opaque
                r.vec()?; // encrypted_group_info
                r.finish()?;
            }
            WireFormat::GroupInfo => {
                // GroupContext
                if r.u16()? != MLS10 {
                    return Err(BAD_VERSION);
                }
                info.cipher_suite = Some(r.u16()?);
                info.group_id = Some(r.vec()?);
                info.epoch = Some(r.u64()?);
                r.vec()?; // tree_hash
                r.vec()?; // confirmed_transcript_hash
                r.vec()?; // GroupContext extensions
                          // GroupInfo proper
                r.vec()?; // extensions
                r.vec()?; // confirmation_tag
                r.u32()?; // signer
                r.vec()?; // signature
                r.finish()?;
            }
            WireFormat::KeyPackage => {
                if r.u16()? != MLS10 {
                    return Err(BAD_VERSION);
                }
                info.cipher_suite = Some(r.u16()?);
                r.vec()?; // init_key; the rest of the key package is not parsed
            }
        }
        Ok(info)
    }

    /// True for the messages a non-member sends: a `PublicMessage` whose
    /// sender type is `NewMemberCommit`, `NewMemberProposal` or `External`,
    /// a `KeyPackage`, or a `GroupInfo`.
    pub fn is_non_member(&self) -> bool {
        match self.wire_format {
            WireFormat::PublicMessage => matches!(
                self.sender_type,
                Some(
                    SenderType::NewMemberCommit
                        | SenderType::NewMemberProposal
                        | SenderType::External
                )
            ),
            WireFormat::KeyPackage | WireFormat::GroupInfo => true,
            WireFormat::PrivateMessage | WireFormat::Welcome => false,
        }
    }

    /// True for a `PrivateMessage` whose content type is `Proposal` or `Commit`.
    pub fn is_private_handshake(&self) -> bool {
        self.wire_format == WireFormat::PrivateMessage
            && matches!(
                self.content_type,
                Some(ContentType::Proposal | ContentType::Commit)
            )
    }

    /// True for the messages whose hub layer carries F (HUB-1's presence
    /// rule): a commit (of either wire format; F of the epoch it opens)
    /// and a registration, that is a `GroupInfo` (F of its epoch). Every
    /// other message's hub layer carries none.
    pub fn carries_fanout_key(&self) -> bool {
        self.content_type == Some(ContentType::Commit) || self.wire_format == WireFormat::GroupInfo
    }

    /// True for a `PublicMessage` commit, whose hub layer carries the
    /// committer's signature over F (PRF-4); every other message's hub
    /// layer carries none.
    pub fn carries_fanout_key_signature(&self) -> bool {
        self.wire_format == WireFormat::PublicMessage
            && self.content_type == Some(ContentType::Commit)
    }

    /// True for the types a member of the group sends, which carry a
    /// membership proof: every PrivateMessage, and a PublicMessage whose
    /// sender is a member.
    pub fn is_member_sent(&self) -> bool {
        match self.wire_format {
            WireFormat::PrivateMessage => true,
            WireFormat::PublicMessage => self.sender_type == Some(SenderType::Member),
            _ => false,
        }
    }
}

/// Decodes an RFC 9420 §2.1.2 variable-size length header at the start of
/// `bytes`, returning `(value, header_length)`.
///
/// Accepts only the minimal encoding of each value (a 2-byte header must
/// encode at least 64, a 4-byte header at least 16384), so the largest value
/// is 2^30 - 1; the reserved `0b11` prefix is rejected.
pub(crate) fn read_varint(bytes: &[u8]) -> Result<(usize, usize), Error> {
    let first = *bytes.first().ok_or(TRUNCATED)?;
    let (value, len) = match first >> 6 {
        0 => (u32::from(first), 1),
        1 => match bytes.get(..2) {
            Some(&[a, b]) => {
                let v = u32::from(a & 0x3f) << 8 | u32::from(b);
                if v < 0x40 {
                    return Err(NON_MINIMAL_VARINT);
                }
                (v, 2)
            }
            _ => return Err(TRUNCATED),
        },
        2 => match bytes.get(..4) {
            Some(&[a, b, c, d]) => {
                let v = u32::from_be_bytes([a & 0x3f, b, c, d]);
                if v < 0x4000 {
                    return Err(NON_MINIMAL_VARINT);
                }
                (v, 4)
            }
            _ => return Err(TRUNCATED),
        },
        _ => return Err(BAD_VARINT_PREFIX),
    };
    let value = usize::try_from(value).map_err(|_| TRUNCATED)?;
    Ok((value, len))
}

/// A bounds-checked cursor over untrusted input.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// Takes the next `n` bytes, or fails without consuming anything.
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.rest.len() {
            return Err(TRUNCATED);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        self.take(N)?.try_into().map_err(|_| TRUNCATED)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A variable-length vector `<V>`: the varint length, then that many bytes.
    fn vec(&mut self) -> Result<&'a [u8], Error> {
        let (len, header) = read_varint(self.rest)?;
        let body = self.rest.get(header..).ok_or(TRUNCATED)?;
        if len > body.len() {
            return Err(TRUNCATED);
        }
        let (head, tail) = body.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn content_type(&mut self) -> Result<ContentType, Error> {
        ContentType::from_code(self.u8()?).ok_or(BAD_CONTENT_TYPE)
    }

    fn finish(&self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(TRAILING)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const MESSAGE_PROTECTION: &str = include_str!("../../test-vectors/mls/message-protection.json");
    const DESERIALIZATION: &str = include_str!("../../test-vectors/mls/deserialization.json");
    const MESSAGES: &str = include_str!("../../test-vectors/mls/messages-excerpt.json");

    fn entries(json: &str) -> Vec<Value> {
        match serde_json::from_str(json).expect("vector file is JSON") {
            Value::Array(v) => v,
            _ => panic!("vector file is not an array"),
        }
    }

    /// Decodes a lowercase/uppercase hex string (kept local so the tests
    /// need no hex crate).
    fn unhex(s: &str) -> Vec<u8> {
        crate::test_utils::from_hex(s).expect("test vectors are hex")
    }

    fn hex_field(entry: &Value, key: &str) -> Vec<u8> {
        unhex(entry[key].as_str().expect("hex string"))
    }

    /// The error message of a result that must be an error. (Compares
    /// messages rather than `Error` values, which need not be `PartialEq`.)
    fn err<T: std::fmt::Debug>(result: Result<T, Error>) -> &'static str {
        match result {
            Err(e) => match e {
                Error::Malformed(m) => m,
                // The crate's `Error` may have other variants.
                #[allow(unreachable_patterns)]
                other => panic!("unexpected error {other:?}"),
            },
            Ok(v) => panic!("expected an error, got {v:?}"),
        }
    }

    fn malformed(bytes: &[u8]) -> &'static str {
        err(MessageInfo::parse(bytes))
    }

    const TRUNC: &str = "mls message: truncated";

    /// Every message in the vector files, with its expected wire format.
    fn all_vector_messages() -> Vec<(String, WireFormat, Vec<u8>)> {
        let mut out = Vec::new();
        for (i, e) in entries(MESSAGE_PROTECTION).iter().enumerate() {
            for (key, wf) in [
                ("proposal_priv", WireFormat::PrivateMessage),
                ("commit_priv", WireFormat::PrivateMessage),
                ("application_priv", WireFormat::PrivateMessage),
                ("proposal_pub", WireFormat::PublicMessage),
                ("commit_pub", WireFormat::PublicMessage),
            ] {
                out.push((
                    format!("message-protection[{i}].{key}"),
                    wf,
                    hex_field(e, key),
                ));
            }
        }
        for (i, e) in entries(MESSAGES).iter().enumerate() {
            for (key, wf) in [
                ("mls_welcome", WireFormat::Welcome),
                ("mls_group_info", WireFormat::GroupInfo),
                ("mls_key_package", WireFormat::KeyPackage),
                ("public_message_application", WireFormat::PublicMessage),
                ("public_message_proposal", WireFormat::PublicMessage),
                ("public_message_commit", WireFormat::PublicMessage),
                ("private_message", WireFormat::PrivateMessage),
            ] {
                out.push((format!("messages[{i}].{key}"), wf, hex_field(e, key)));
            }
        }
        out
    }

    /// Byte offset at which the parsed header of a `PublicMessage` or
    /// `KeyPackage` ends (beyond it, the reader does not look).
    fn header_end(bytes: &[u8], wf: WireFormat) -> usize {
        let mut r = Reader::new(bytes);
        r.take(4).unwrap();
        match wf {
            WireFormat::PublicMessage => {
                r.vec().unwrap();
                r.u64().unwrap();
                let s = r.u8().unwrap();
                if s == 1 || s == 2 {
                    r.u32().unwrap();
                }
                r.vec().unwrap();
                r.u8().unwrap();
            }
            WireFormat::KeyPackage => {
                r.take(4).unwrap();
                r.vec().unwrap();
            }
            _ => return bytes.len(),
        }
        bytes.len() - r.rest.len()
    }

    #[test]
    fn message_protection_vectors() {
        let vectors = entries(MESSAGE_PROTECTION);
        assert_eq!(vectors.len(), 7);
        for (i, e) in vectors.iter().enumerate() {
            let group_id = hex_field(e, "group_id");
            let epoch = e["epoch"].as_u64().expect("epoch");
            for (key, wf, ct) in [
                (
                    "proposal_priv",
                    WireFormat::PrivateMessage,
                    ContentType::Proposal,
                ),
                (
                    "commit_priv",
                    WireFormat::PrivateMessage,
                    ContentType::Commit,
                ),
                (
                    "application_priv",
                    WireFormat::PrivateMessage,
                    ContentType::Application,
                ),
                (
                    "proposal_pub",
                    WireFormat::PublicMessage,
                    ContentType::Proposal,
                ),
                ("commit_pub", WireFormat::PublicMessage, ContentType::Commit),
            ] {
                let bytes = hex_field(e, key);
                let info = MessageInfo::parse(&bytes)
                    .unwrap_or_else(|err| panic!("entry {i} {key}: {err:?}"));
                assert_eq!(info.wire_format, wf, "entry {i} {key}");
                assert_eq!(info.group_id, Some(&group_id[..]), "entry {i} {key}");
                assert_eq!(info.epoch, Some(epoch), "entry {i} {key}");
                assert_eq!(info.content_type, Some(ct), "entry {i} {key}");
                assert_eq!(info.cipher_suite, None, "entry {i} {key}");
                assert!(info.authenticated_data.is_some(), "entry {i} {key}");
                assert!(!info.is_non_member(), "entry {i} {key}");
                if wf == WireFormat::PublicMessage {
                    assert_eq!(
                        info.sender_type,
                        Some(SenderType::Member),
                        "entry {i} {key}"
                    );
                    assert!(!info.is_private_handshake(), "entry {i} {key}");
                } else {
                    assert_eq!(info.sender_type, None, "entry {i} {key}");
                    assert_eq!(
                        info.is_private_handshake(),
                        ct != ContentType::Application,
                        "entry {i} {key}"
                    );
                }
            }
        }
    }

    #[test]
    fn messages_vectors() {
        let vectors = entries(MESSAGES);
        assert!(!vectors.is_empty());
        for (i, e) in vectors.iter().enumerate() {
            let welcome = hex_field(e, "mls_welcome");
            let info = MessageInfo::parse(&welcome).expect("welcome");
            assert_eq!(info.wire_format, WireFormat::Welcome);
            assert_eq!(info.cipher_suite, Some(1), "entry {i}");
            assert_eq!((info.group_id, info.epoch), (None, None));
            assert_eq!((info.content_type, info.sender_type), (None, None));
            assert_eq!(info.authenticated_data, None);
            assert!(!info.is_non_member() && !info.is_private_handshake());
            assert!(!info.carries_fanout_key(), "entry {i}");

            let group_info = hex_field(e, "mls_group_info");
            let gi = MessageInfo::parse(&group_info).expect("group info");
            assert_eq!(gi.wire_format, WireFormat::GroupInfo);
            assert_eq!(gi.cipher_suite, Some(1), "entry {i}");
            assert_eq!(gi.epoch, Some(0), "entry {i}");
            assert_eq!(gi.group_id.map(<[u8]>::len), Some(16), "entry {i}");
            assert_eq!((gi.content_type, gi.sender_type), (None, None));
            assert!(gi.is_non_member() && !gi.is_private_handshake());
            // A registration carries F.
            assert!(gi.carries_fanout_key(), "entry {i}");

            let key_package = hex_field(e, "mls_key_package");
            let info = MessageInfo::parse(&key_package).expect("key package");
            assert_eq!(info.wire_format, WireFormat::KeyPackage);
            assert_eq!(info.cipher_suite, Some(1), "entry {i}");
            assert_eq!((info.group_id, info.epoch), (None, None));
            assert!(info.is_non_member() && !info.is_private_handshake());
            assert!(!info.carries_fanout_key(), "entry {i}");

            // The public and private messages of an entry belong to the
            // same group as its GroupInfo.
            for (key, wf, ct) in [
                (
                    "public_message_application",
                    WireFormat::PublicMessage,
                    ContentType::Application,
                ),
                (
                    "public_message_proposal",
                    WireFormat::PublicMessage,
                    ContentType::Proposal,
                ),
                (
                    "public_message_commit",
                    WireFormat::PublicMessage,
                    ContentType::Commit,
                ),
            ] {
                let bytes = hex_field(e, key);
                let info = MessageInfo::parse(&bytes)
                    .unwrap_or_else(|err| panic!("entry {i} {key}: {err:?}"));
                assert_eq!(info.wire_format, wf, "entry {i} {key}");
                assert_eq!(info.group_id, gi.group_id, "entry {i} {key}");
                assert_eq!(
                    info.authenticated_data,
                    Some(&b"aad"[..]),
                    "entry {i} {key}"
                );
                assert_eq!(info.cipher_suite, None, "entry {i} {key}");
                assert_eq!(info.content_type, Some(ct), "entry {i} {key}");
                assert_eq!(
                    info.sender_type,
                    Some(SenderType::Member),
                    "entry {i} {key}"
                );
                assert!(!info.is_non_member() && !info.is_private_handshake());
                // A commit carries F, of either wire format.
                assert_eq!(
                    info.carries_fanout_key(),
                    ct == ContentType::Commit,
                    "entry {i} {key}"
                );
            }
            let bytes = hex_field(e, "private_message");
            let info = MessageInfo::parse(&bytes).expect("private message");
            assert_eq!(info.wire_format, WireFormat::PrivateMessage);
            assert_eq!(info.group_id, gi.group_id, "entry {i}");
            assert_eq!(info.authenticated_data, Some(&b"aad"[..]), "entry {i}");
            assert_eq!((info.sender_type, info.cipher_suite), (None, None));
            let ct = info.content_type.expect("content type");
            assert_eq!(info.is_private_handshake(), ct != ContentType::Application);
            assert_eq!(info.carries_fanout_key(), ct == ContentType::Commit);
            assert!(!info.is_non_member());
        }
    }

    #[test]
    fn deserialization_varint_vectors() {
        let vectors = entries(DESERIALIZATION);
        assert_eq!(vectors.len(), 14);
        for e in &vectors {
            let header = hex_field(e, "vlbytes_header");
            let length = e["length"].as_u64().expect("length");
            let (value, used) = read_varint(&header).expect("valid header");
            assert_eq!(value as u64, length, "header {header:02x?}");
            assert_eq!(used, header.len(), "header {header:02x?}");
            // Every proper prefix of a header is truncated.
            for cut in 0..header.len() {
                assert_eq!(err(read_varint(&header[..cut])), TRUNC);
            }
        }
    }

    #[test]
    fn varint_rejects_non_minimal_and_reserved_prefix() {
        let ok = |b: &[u8]| read_varint(b).expect("valid varint");
        assert_eq!(ok(&[0x3f]), (63, 1));
        assert_eq!(ok(&[0x40, 0x40, 0xff]), (64, 2));
        assert_eq!(ok(&[0x80, 0x00, 0x40, 0x00]), (16384, 4));
        assert_eq!(ok(&[0xbf, 0xff, 0xff, 0xff]), ((1 << 30) - 1, 4));
        for v in [0u8, 1, 0x3f] {
            assert_eq!(
                err(read_varint(&[0x40, v])),
                "mls message: non-minimal varint"
            );
        }
        for bytes in [[0x80, 0, 0, 0], [0x80, 0, 0, 0x3f], [0x80, 0, 0x3f, 0xff]] {
            assert_eq!(err(read_varint(&bytes)), "mls message: non-minimal varint");
        }
        for first in [0xc0u8, 0xc1, 0xff] {
            assert_eq!(
                err(read_varint(&[first, 0, 0, 0, 0, 0, 0, 0])),
                "mls message: invalid varint prefix"
            );
        }
        assert_eq!(err(read_varint(&[])), TRUNC);
    }

    #[test]
    fn non_minimal_length_inside_message_rejected() {
        let e = &entries(MESSAGE_PROTECTION)[0];
        let bytes = hex_field(e, "application_priv");
        let group_id_len = hex_field(e, "group_id").len();
        assert!(group_id_len < 64);
        assert_eq!(usize::from(bytes[4]), group_id_len);
        // Re-encode the group_id length with a 2-byte header.
        let mut padded = bytes[..4].to_vec();
        padded.extend_from_slice(&[0x40, bytes[4]]);
        padded.extend_from_slice(&bytes[5..]);
        assert_eq!(malformed(&padded), "mls message: non-minimal varint");
    }

    #[test]
    fn every_proper_prefix_is_rejected_without_panic() {
        for (name, wf, bytes) in all_vector_messages() {
            let full = MessageInfo::parse(&bytes).expect(&name);
            assert_eq!(full.wire_format, wf, "{name}");
            let end = header_end(&bytes, wf);
            for cut in 0..bytes.len() {
                let result = MessageInfo::parse(&bytes[..cut]);
                if cut < end {
                    assert_eq!(err(result), TRUNC, "{name} cut at {cut}");
                } else {
                    // Past the header of a PublicMessage / KeyPackage the
                    // reader does not look; the header must be unchanged.
                    assert_eq!(result.expect(&name), full, "{name} cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn mutations_and_noise_never_panic() {
        for (name, _, bytes) in all_vector_messages() {
            for i in 0..bytes.len().min(96) {
                for v in [0x00, 0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xff] {
                    let mut m = bytes.clone();
                    m[i] = v;
                    if let Ok(info) = MessageInfo::parse(&m) {
                        assert!(info.group_id.is_some() == info.epoch.is_some(), "{name}");
                    }
                }
            }
        }
        // Deterministic pseudo-random noise behind a valid header.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..20_000usize {
            let mut m = vec![0, 1, 0, (round % 7) as u8];
            for _ in 0..(round % 61) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                m.push((state >> 24) as u8);
            }
            let _ = MessageInfo::parse(&m);
        }
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut checked = 0;
        for (name, wf, mut bytes) in all_vector_messages() {
            if matches!(
                wf,
                WireFormat::PrivateMessage | WireFormat::Welcome | WireFormat::GroupInfo
            ) {
                bytes.push(0);
                assert_eq!(malformed(&bytes), "mls message: trailing bytes", "{name}");
                checked += 1;
            }
        }
        assert_eq!(checked, 7 * 3 + 3);
    }

    #[test]
    fn version_and_wire_format_checked() {
        let e = &entries(MESSAGE_PROTECTION)[0];
        let good = hex_field(e, "commit_priv");
        for version in [0u16, 2, 0x0100, 0xffff] {
            let mut bad = good.clone();
            bad[..2].copy_from_slice(&version.to_be_bytes());
            assert_eq!(malformed(&bad), "mls message: unsupported protocol version");
        }
        for wire_format in [0u16, 6, 0x0100, 0xffff] {
            let mut bad = good.clone();
            bad[2..4].copy_from_slice(&wire_format.to_be_bytes());
            assert_eq!(malformed(&bad), "mls message: unknown wire format");
        }
        // The GroupInfo's GroupContext and the KeyPackage carry a version too.
        let m = &entries(MESSAGES)[0];
        for key in ["mls_group_info", "mls_key_package"] {
            let mut bad = hex_field(m, key);
            bad[4..6].copy_from_slice(&2u16.to_be_bytes());
            assert_eq!(malformed(&bad), "mls message: unsupported protocol version");
        }
    }

    #[test]
    fn unknown_content_type_rejected() {
        let e = &entries(MESSAGE_PROTECTION)[0];
        let offset = 4 + 1 + hex_field(e, "group_id").len() + 8;
        for key in ["application_priv", "proposal_pub"] {
            let good = hex_field(e, key);
            for ct in [0u8, 4, 0xff] {
                let mut bad = good.clone();
                let at = if key == "proposal_pub" {
                    // sender (member: 1 + 4) and empty authenticated_data
                    assert_eq!(&bad[offset..offset + 6], &[1, 0, 0, 0, 1, 0]);
                    offset + 6
                } else {
                    offset
                };
                bad[at] = ct;
                assert_eq!(
                    malformed(&bad),
                    "mls message: unknown content type",
                    "{key}"
                );
            }
        }
    }

    /// A PublicMessage header; the body is not parsed, so none is needed.
    fn public_header(sender: &[u8], content_type: u8) -> Vec<u8> {
        let mut m = vec![0, 1, 0, 1, 3, b'g', b'i', b'd'];
        m.extend_from_slice(&7u64.to_be_bytes());
        m.extend_from_slice(sender);
        m.extend_from_slice(&[2, b'a', b'd', content_type]);
        m
    }

    #[test]
    fn sender_types_and_non_member() {
        for (sender, expected, non_member) in [
            (&[1u8, 0, 0, 0, 5][..], SenderType::Member, false),
            (&[2u8, 0, 0, 0, 0][..], SenderType::External, true),
            (&[3u8][..], SenderType::NewMemberProposal, true),
            (&[4u8][..], SenderType::NewMemberCommit, true),
        ] {
            let m = public_header(sender, 2);
            let info = MessageInfo::parse(&m).expect("header");
            assert_eq!(info.sender_type, Some(expected));
            assert_eq!(info.group_id, Some(&b"gid"[..]));
            assert_eq!(info.epoch, Some(7));
            assert_eq!(info.authenticated_data, Some(&b"ad"[..]));
            assert_eq!(info.content_type, Some(ContentType::Proposal));
            assert_eq!(info.is_non_member(), non_member);
            assert!(!info.is_private_handshake());
            // Truncating the header is detected.
            for cut in 0..m.len() {
                assert_eq!(malformed(&m[..cut]), TRUNC);
            }
        }
        for bad in [0u8, 5, 0xff] {
            let m = public_header(&[bad, 0, 0, 0, 0], 1);
            assert_eq!(malformed(&m), "mls message: unknown sender type");
        }
    }

    #[test]
    fn huge_lengths_are_truncation_not_allocation() {
        // group_id claims 2^30 - 1 bytes.
        let m = [0, 1, 0, 2, 0xbf, 0xff, 0xff, 0xff, 1, 2, 3];
        assert_eq!(malformed(&m), TRUNC);
        // Welcome secrets claim 2^30 - 1 bytes.
        let m = [0, 1, 0, 3, 0, 1, 0xbf, 0xff, 0xff, 0xff];
        assert_eq!(malformed(&m), TRUNC);
        assert_eq!(malformed(&[]), TRUNC);
    }

    #[test]
    fn minimal_welcome_and_group_info() {
        let welcome = [0, 1, 0, 3, 0, 7, 0, 0];
        let info = MessageInfo::parse(&welcome).expect("welcome");
        assert_eq!(info.cipher_suite, Some(7));
        let mut group_info = vec![0, 1, 0, 4, 0, 1, 0, 3, 1, 0xaa];
        group_info.extend_from_slice(&9u64.to_be_bytes());
        group_info.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let info = MessageInfo::parse(&group_info).expect("group info");
        assert_eq!(info.cipher_suite, Some(3));
        assert_eq!(info.group_id, Some(&[0xaa][..]));
        assert_eq!(info.epoch, Some(9));
    }

    #[test]
    fn codes_and_names_round_trip() {
        let wire_formats = [
            (WireFormat::PublicMessage, 1, "public_message"),
            (WireFormat::PrivateMessage, 2, "private_message"),
            (WireFormat::Welcome, 3, "welcome"),
            (WireFormat::GroupInfo, 4, "group_info"),
            (WireFormat::KeyPackage, 5, "key_package"),
        ];
        for (wf, code, name) in wire_formats {
            assert_eq!((wf.code(), wf.name()), (code, name));
            assert_eq!(WireFormat::from_code(code), Some(wf));
        }
        for code in [0u16, 6, 0xffff] {
            assert_eq!(WireFormat::from_code(code), None);
        }
        for (ct, code, name) in [
            (ContentType::Application, 1, "application"),
            (ContentType::Proposal, 2, "proposal"),
            (ContentType::Commit, 3, "commit"),
        ] {
            assert_eq!((ct.code(), ct.name()), (code, name));
            assert_eq!(ContentType::from_code(code), Some(ct));
        }
        assert_eq!(ContentType::from_code(0), None);
        assert_eq!(ContentType::from_code(4), None);
        for (st, code, name) in [
            (SenderType::Member, 1, "member"),
            (SenderType::External, 2, "external"),
            (SenderType::NewMemberProposal, 3, "new_member_proposal"),
            (SenderType::NewMemberCommit, 4, "new_member_commit"),
        ] {
            assert_eq!((st.code(), st.name()), (code, name));
            assert_eq!(SenderType::from_code(code), Some(st));
        }
        assert_eq!(SenderType::from_code(0), None);
        assert_eq!(SenderType::from_code(5), None);
    }
}
