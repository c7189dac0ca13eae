//! RFC 9420 message framing (section 6): `GroupContext`, `FramedContent`,
//! `FramedContentTBS`, `FramedContentAuthData`, `PublicMessage` (with its
//! membership tag) and `PrivateMessage` protection (6.3).
//!
//! # Content bodies
//!
//! A `FramedContent`'s body is kept as bytes ([`FramedContent::content`]):
//! the `application_data` itself (without its length prefix) for
//! application messages, and the encoded `Proposal` or `Commit` for
//! handshake messages. To find where a `Proposal` or `Commit` ends, the
//! decoder walks its structure: proposal types 1 to 7 (add, update, remove,
//! psk, reinit, external_init, group_context_extensions), `basic` and
//! `x509` credentials, and `Commit`'s optional `UpdatePath`. Other proposal
//! or credential types are [`Error::Unsupported`], since their length
//! cannot be known. Fields inside are framed but not validated
//! (signatures of key packages and leaf nodes are not checked here).
//!
//! # PrivateMessage
//!
//! Decryption is available in one call ([`decrypt_private_message`]) and
//! step by step, so that a caller can look at (and commit to) the content
//! key and nonce before decrypting:
//!
//! 1. [`PrivateMessage::parse`] the `MLSMessage`;
//! 2. [`decrypt_sender_data`] with the `sender_data_secret` (key and nonce
//!    from the ciphertext sample, AAD = `SenderDataAAD`);
//! 3. derive the ratchet key and nonce for `(leaf_index, generation)` with
//!    [`crate::mls::secret_tree`], and [`apply_reuse_guard`] to the nonce;
//! 4. [`open_content`] with that key and final nonce (AAD =
//!    `PrivateContentAAD`), which also strips and checks the padding.
//!
//! Every AEAD failure is [`Error::Crypto`].

use crate::codec::{check_zero_padding, put_vec, Reader};
use crate::error::{Error, Res};
use crate::mls::message::{ContentType, SenderType, WireFormat};
use crate::mls::secret_tree::{leaf_key_nonce, sender_data_key_nonce, RatchetKind};
use crate::mls::suite::MlsSuite;
use crate::secret::Secret;

/// `ProtocolVersion mls10` (RFC 9420 6).
pub const MLS10: u16 = 1;

/// The largest generation [`decrypt_private_message`] ratchets to
/// (reaching generation `g` costs `g` hash-ratchet steps). Callers that
/// need more use the step-wise API.
pub const MAX_GENERATION: u32 = 1 << 16;

/// The length of `SenderData` on the wire: `uint32 leaf_index`,
/// `uint32 generation`, `opaque reuse_guard[4]`.
pub const SENDER_DATA_LEN: usize = 12;

/// RFC 9420 8.1 `GroupContext`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupContext {
    /// `version` (`mls10` = 1).
    pub version: u16,
    /// `cipher_suite`.
    pub cipher_suite: u16,
    /// `group_id`.
    pub group_id: Vec<u8>,
    /// `epoch`.
    pub epoch: u64,
    /// `tree_hash`.
    pub tree_hash: Vec<u8>,
    /// `confirmed_transcript_hash`.
    pub confirmed_transcript_hash: Vec<u8>,
    /// The contents of `Extension extensions<V>`: the concatenated encoded
    /// extensions, without the vector's length prefix (empty for none).
    pub extensions: Vec<u8>,
}

impl GroupContext {
    /// A `mls10` group context without extensions.
    pub fn new(
        suite: MlsSuite,
        group_id: &[u8],
        epoch: u64,
        tree_hash: &[u8],
        confirmed_transcript_hash: &[u8],
    ) -> Self {
        GroupContext {
            version: MLS10,
            cipher_suite: suite.code(),
            group_id: group_id.to_vec(),
            epoch,
            tree_hash: tree_hash.to_vec(),
            confirmed_transcript_hash: confirmed_transcript_hash.to_vec(),
            extensions: Vec::new(),
        }
    }

    /// The TLS encoding.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] if a vector exceeds 2^30 - 1 bytes.
    pub fn encode(&self) -> Res<Vec<u8>> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.cipher_suite.to_be_bytes());
        put_vec(&mut out, &self.group_id)?;
        out.extend_from_slice(&self.epoch.to_be_bytes());
        put_vec(&mut out, &self.tree_hash)?;
        put_vec(&mut out, &self.confirmed_transcript_hash)?;
        put_vec(&mut out, &self.extensions)?;
        Ok(out)
    }

    /// Decodes a complete `GroupContext` (any version and suite number;
    /// the extensions are kept as bytes).
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] for truncated input or trailing bytes.
    pub fn decode(bytes: &[u8]) -> Res<Self> {
        const WHAT: &str = "group context";
        let mut r = Reader::new(bytes);
        let gc = GroupContext {
            version: r.u16(WHAT)?,
            cipher_suite: r.u16(WHAT)?,
            group_id: r.vec(WHAT)?.to_vec(),
            epoch: r.u64(WHAT)?,
            tree_hash: r.vec(WHAT)?.to_vec(),
            confirmed_transcript_hash: r.vec(WHAT)?.to_vec(),
            extensions: r.vec(WHAT)?.to_vec(),
        };
        r.finish("group context: trailing bytes")?;
        Ok(gc)
    }
}

/// RFC 9420 6 `Sender`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sender {
    /// `member`, with its leaf index.
    Member(u32),
    /// `external`, with its index in the `external_senders` extension.
    External(u32),
    /// `new_member_proposal`.
    NewMemberProposal,
    /// `new_member_commit`.
    NewMemberCommit,
}

impl Sender {
    /// The sender's type.
    pub fn sender_type(self) -> SenderType {
        match self {
            Sender::Member(_) => SenderType::Member,
            Sender::External(_) => SenderType::External,
            Sender::NewMemberProposal => SenderType::NewMemberProposal,
            Sender::NewMemberCommit => SenderType::NewMemberCommit,
        }
    }

    fn encode_into(self, out: &mut Vec<u8>) {
        out.push(self.sender_type().code());
        match self {
            Sender::Member(i) | Sender::External(i) => out.extend_from_slice(&i.to_be_bytes()),
            Sender::NewMemberProposal | Sender::NewMemberCommit => {}
        }
    }

    fn decode(r: &mut Reader<'_>) -> Res<Self> {
        const WHAT: &str = "sender";
        match SenderType::from_code(r.u8(WHAT)?) {
            Some(SenderType::Member) => Ok(Sender::Member(r.u32(WHAT)?)),
            Some(SenderType::External) => Ok(Sender::External(r.u32(WHAT)?)),
            Some(SenderType::NewMemberProposal) => Ok(Sender::NewMemberProposal),
            Some(SenderType::NewMemberCommit) => Ok(Sender::NewMemberCommit),
            None => Err(Error::Malformed("sender: unknown sender type")),
        }
    }
}

/// RFC 9420 6 `FramedContent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramedContent {
    /// `group_id`.
    pub group_id: Vec<u8>,
    /// `epoch`.
    pub epoch: u64,
    /// `sender`.
    pub sender: Sender,
    /// `authenticated_data`.
    pub authenticated_data: Vec<u8>,
    /// `content_type`.
    pub content_type: ContentType,
    /// The body: `application_data` without its length prefix, or the
    /// encoded `Proposal` / `Commit` (see the module documentation).
    pub content: Vec<u8>,
}

impl FramedContent {
    /// The TLS encoding.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] if a vector exceeds 2^30 - 1 bytes.
    pub fn encode(&self) -> Res<Vec<u8>> {
        let mut out = Vec::with_capacity(self.content.len() + self.group_id.len() + 32);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    fn encode_into(&self, out: &mut Vec<u8>) -> Res<()> {
        put_vec(out, &self.group_id)?;
        out.extend_from_slice(&self.epoch.to_be_bytes());
        self.sender.encode_into(out);
        put_vec(out, &self.authenticated_data)?;
        out.push(self.content_type.code());
        encode_body(out, self.content_type, &self.content)
    }

    fn decode(r: &mut Reader<'_>) -> Res<Self> {
        const WHAT: &str = "framed content";
        let group_id = r.vec(WHAT)?.to_vec();
        let epoch = r.u64(WHAT)?;
        let sender = Sender::decode(r)?;
        let authenticated_data = r.vec(WHAT)?.to_vec();
        let content_type = read_content_type(r)?;
        let content = decode_body(r, content_type)?.to_vec();
        Ok(FramedContent {
            group_id,
            epoch,
            sender,
            authenticated_data,
            content_type,
            content,
        })
    }
}

/// The `FramedContentTBS` bytes that a sender signs (RFC 9420 6.1):
/// `version = mls10`, `wire_format`, the `FramedContent`, and the
/// `GroupContext` for `member` and `new_member_commit` senders.
///
/// Sign them with [`sign_framed_content`] and verify a signature with
/// [`verify_framed_content`].
///
/// # Errors
///
/// [`Error::Usage`] if `context` is `None` for a `member` or
/// `new_member_commit` sender, or `Some` for the others;
/// [`Error::TooLarge`] for oversized vectors.
pub fn framed_content_tbs(
    wire_format: WireFormat,
    content: &FramedContent,
    context: Option<&GroupContext>,
) -> Res<Vec<u8>> {
    let mut out = Vec::with_capacity(content.content.len() + 128);
    out.extend_from_slice(&MLS10.to_be_bytes());
    out.extend_from_slice(&wire_format.code().to_be_bytes());
    content.encode_into(&mut out)?;
    match (content.sender, context) {
        (Sender::Member(_) | Sender::NewMemberCommit, Some(gc)) => {
            out.extend_from_slice(&gc.encode()?);
        }
        (Sender::Member(_) | Sender::NewMemberCommit, None) => {
            return Err(Error::Usage(
                "framed content tbs: member senders need the group context",
            ))
        }
        (Sender::External(_) | Sender::NewMemberProposal, None) => {}
        (Sender::External(_) | Sender::NewMemberProposal, Some(_)) => {
            return Err(Error::Usage(
                "framed content tbs: no group context for this sender type",
            ))
        }
    }
    Ok(out)
}

/// The `SignWithLabel` label of a `FramedContent`'s signature (RFC 9420
/// 6.1).
const FRAMED_CONTENT_TBS_LABEL: &str = "FramedContentTBS";

/// The sender's signature over a `FramedContent` (RFC 9420 6.1):
/// `SignWithLabel(signature_private_key, "FramedContentTBS",
/// FramedContentTBS)`, with the [`framed_content_tbs`] of `wire_format`,
/// `content` and `context`. The one place that signs a `FramedContent`.
///
/// # Errors
///
/// As [`framed_content_tbs`] and [`MlsSuite::sign_with_label`].
pub fn sign_framed_content(
    suite: MlsSuite,
    signature_private_key: &[u8],
    wire_format: WireFormat,
    content: &FramedContent,
    context: Option<&GroupContext>,
) -> Res<Vec<u8>> {
    let tbs = framed_content_tbs(wire_format, content, context)?;
    suite.sign_with_label(signature_private_key, FRAMED_CONTENT_TBS_LABEL, &tbs)
}

/// Checks the sender's `signature` over a `FramedContent` (RFC 9420 6.1):
/// `VerifyWithLabel(signature_key, "FramedContentTBS", FramedContentTBS,
/// signature)`, with the [`framed_content_tbs`] of `wire_format`,
/// `content` and `context`. The one place that verifies a
/// `FramedContent`'s signature (members, the policy engine and
/// [`PublicMessage::verify_signature`] all call it).
///
/// # Errors
///
/// [`Error::Crypto`] if it does not verify; otherwise as
/// [`framed_content_tbs`] and [`MlsSuite::verify_with_label`].
pub fn verify_framed_content(
    suite: MlsSuite,
    signature_key: &[u8],
    wire_format: WireFormat,
    content: &FramedContent,
    context: Option<&GroupContext>,
    signature: &[u8],
) -> Res<()> {
    let tbs = framed_content_tbs(wire_format, content, context)?;
    suite.verify_with_label(signature_key, FRAMED_CONTENT_TBS_LABEL, &tbs, signature)
}

/// RFC 9420 6.1 `FramedContentAuthData`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramedContentAuthData {
    /// `signature`.
    pub signature: Vec<u8>,
    /// `confirmation_tag`: present exactly for commits.
    pub confirmation_tag: Option<Vec<u8>>,
}

impl FramedContentAuthData {
    /// The TLS encoding for a message of type `content_type`.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] if the confirmation tag is missing on a commit or
    /// present on anything else; [`Error::TooLarge`] for oversized vectors.
    pub fn encode(&self, content_type: ContentType) -> Res<Vec<u8>> {
        let mut out = Vec::with_capacity(self.signature.len() + 80);
        self.encode_into(&mut out, content_type)?;
        Ok(out)
    }

    fn encode_into(&self, out: &mut Vec<u8>, content_type: ContentType) -> Res<()> {
        put_vec(out, &self.signature)?;
        match (content_type, &self.confirmation_tag) {
            (ContentType::Commit, Some(tag)) => put_vec(out, tag),
            (ContentType::Commit, None) => Err(Error::Usage("auth data: commit needs a tag")),
            (_, Some(_)) => Err(Error::Usage("auth data: tag only on commits")),
            (_, None) => Ok(()),
        }
    }

    fn decode(r: &mut Reader<'_>, content_type: ContentType) -> Res<Self> {
        const WHAT: &str = "framed content auth data";
        let signature = r.vec(WHAT)?.to_vec();
        let confirmation_tag = match content_type {
            ContentType::Commit => Some(r.vec(WHAT)?.to_vec()),
            ContentType::Application | ContentType::Proposal => None,
        };
        Ok(FramedContentAuthData {
            signature,
            confirmation_tag,
        })
    }
}

/// RFC 9420 6.2 `PublicMessage` (the part after the `MLSMessage` header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicMessage {
    /// `content`.
    pub content: FramedContent,
    /// `auth`.
    pub auth: FramedContentAuthData,
    /// `membership_tag`: present exactly for `member` senders.
    pub membership_tag: Option<Vec<u8>>,
}

impl PublicMessage {
    /// Parses a complete `MLSMessage` of wire format `mls_public_message`.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] for a wrong version or wire format, truncated
    /// input, trailing bytes or undecodable fields; [`Error::Unsupported`]
    /// for proposal or credential types whose encoding is unknown.
    pub fn parse(bytes: &[u8]) -> Res<Self> {
        const WHAT: &str = "public message";
        let mut r = Reader::new(bytes);
        read_header(&mut r, WireFormat::PublicMessage)?;
        let content = FramedContent::decode(&mut r)?;
        let auth = FramedContentAuthData::decode(&mut r, content.content_type)?;
        let membership_tag = match content.sender {
            Sender::Member(_) => Some(r.vec(WHAT)?.to_vec()),
            _ => None,
        };
        r.finish("public message: trailing bytes")?;
        Ok(PublicMessage {
            content,
            auth,
            membership_tag,
        })
    }

    /// The complete `MLSMessage` encoding.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] if the membership tag's presence does not match
    /// the sender type (or as [`FramedContentAuthData::encode`]);
    /// [`Error::TooLarge`] for oversized vectors.
    pub fn encode(&self) -> Res<Vec<u8>> {
        let mut out = header(WireFormat::PublicMessage);
        self.content.encode_into(&mut out)?;
        self.auth.encode_into(&mut out, self.content.content_type)?;
        match (self.content.sender, &self.membership_tag) {
            (Sender::Member(_), Some(tag)) => put_vec(&mut out, tag)?,
            (Sender::Member(_), None) => {
                return Err(Error::Usage(
                    "public message: member needs a membership tag",
                ))
            }
            (_, Some(_)) => {
                return Err(Error::Usage(
                    "public message: membership tag only for members",
                ))
            }
            (_, None) => {}
        }
        Ok(out)
    }

    /// The `FramedContentTBS` of this message (wire format
    /// `mls_public_message`); see [`framed_content_tbs`].
    ///
    /// # Errors
    ///
    /// As [`framed_content_tbs`].
    pub fn tbs(&self, context: Option<&GroupContext>) -> Res<Vec<u8>> {
        framed_content_tbs(WireFormat::PublicMessage, &self.content, context)
    }

    /// Checks the sender's signature over `FramedContentTBS` (see
    /// [`verify_framed_content`]).
    ///
    /// # Errors
    ///
    /// As [`verify_framed_content`].
    pub fn verify_signature(
        &self,
        suite: MlsSuite,
        signature_key: &[u8],
        context: Option<&GroupContext>,
    ) -> Res<()> {
        verify_framed_content(
            suite,
            signature_key,
            WireFormat::PublicMessage,
            &self.content,
            context,
            &self.auth.signature,
        )
    }

    /// `AuthenticatedContentTBM = FramedContentTBS || FramedContentAuthData`,
    /// the input of the membership tag (RFC 9420 6.2).
    ///
    /// # Errors
    ///
    /// As [`framed_content_tbs`] and [`FramedContentAuthData::encode`].
    pub fn membership_tag_input(&self, context: &GroupContext) -> Res<Vec<u8>> {
        let mut tbm = self.tbs(Some(context))?;
        self.auth.encode_into(&mut tbm, self.content.content_type)?;
        Ok(tbm)
    }

    /// Checks `membership_tag = MAC(membership_key, AuthenticatedContentTBM)`.
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] if the sender is not a member (there is no tag);
    /// [`Error::Crypto`] if the tag does not match.
    pub fn verify_membership_tag(
        &self,
        suite: MlsSuite,
        membership_key: &Secret,
        context: &GroupContext,
    ) -> Res<()> {
        let tag = self
            .membership_tag
            .as_deref()
            .ok_or(Error::Usage("public message: no membership tag"))?;
        suite.verify_mac(membership_key, &self.membership_tag_input(context)?, tag)
    }
}

/// RFC 9420 6.3 `PrivateMessage` (the part after the `MLSMessage` header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateMessage {
    /// `group_id`.
    pub group_id: Vec<u8>,
    /// `epoch`.
    pub epoch: u64,
    /// `content_type`.
    pub content_type: ContentType,
    /// `authenticated_data`.
    pub authenticated_data: Vec<u8>,
    /// `encrypted_sender_data`.
    pub encrypted_sender_data: Vec<u8>,
    /// `ciphertext`.
    pub ciphertext: Vec<u8>,
}

impl PrivateMessage {
    /// Parses a complete `MLSMessage` of wire format `mls_private_message`.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] for a wrong version or wire format, an unknown
    /// content type, truncated input or trailing bytes.
    pub fn parse(bytes: &[u8]) -> Res<Self> {
        const WHAT: &str = "private message";
        let mut r = Reader::new(bytes);
        read_header(&mut r, WireFormat::PrivateMessage)?;
        let msg = PrivateMessage {
            group_id: r.vec(WHAT)?.to_vec(),
            epoch: r.u64(WHAT)?,
            content_type: read_content_type(&mut r)?,
            authenticated_data: r.vec(WHAT)?.to_vec(),
            encrypted_sender_data: r.vec(WHAT)?.to_vec(),
            ciphertext: r.vec(WHAT)?.to_vec(),
        };
        r.finish("private message: trailing bytes")?;
        Ok(msg)
    }

    /// The complete `MLSMessage` encoding.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for oversized vectors.
    pub fn encode(&self) -> Res<Vec<u8>> {
        let mut out = header(WireFormat::PrivateMessage);
        put_vec(&mut out, &self.group_id)?;
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.push(self.content_type.code());
        put_vec(&mut out, &self.authenticated_data)?;
        put_vec(&mut out, &self.encrypted_sender_data)?;
        put_vec(&mut out, &self.ciphertext)?;
        Ok(out)
    }

    /// `SenderDataAAD = { group_id<V>; epoch; content_type; }`.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for an oversized group id.
    pub fn sender_data_aad(&self) -> Res<Vec<u8>> {
        sender_data_aad(&self.group_id, self.epoch, self.content_type)
    }

    /// `PrivateContentAAD = { group_id<V>; epoch; content_type;
    /// authenticated_data<V>; }`.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for oversized vectors.
    pub fn content_aad(&self) -> Res<Vec<u8>> {
        content_aad(
            &self.group_id,
            self.epoch,
            self.content_type,
            &self.authenticated_data,
        )
    }
}

fn sender_data_aad(group_id: &[u8], epoch: u64, content_type: ContentType) -> Res<Vec<u8>> {
    let mut aad = Vec::with_capacity(group_id.len() + 13);
    put_vec(&mut aad, group_id)?;
    aad.extend_from_slice(&epoch.to_be_bytes());
    aad.push(content_type.code());
    Ok(aad)
}

/// `PrivateContentAAD` (RFC 9420 6.3.1): group_id, epoch, content_type,
/// authenticated_data.
pub fn content_aad(
    group_id: &[u8],
    epoch: u64,
    content_type: ContentType,
    authenticated_data: &[u8],
) -> Res<Vec<u8>> {
    let mut aad = sender_data_aad(group_id, epoch, content_type)?;
    put_vec(&mut aad, authenticated_data)?;
    Ok(aad)
}

/// RFC 9420 6.3.2 `SenderData`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderData {
    /// `leaf_index` of the sender.
    pub leaf_index: u32,
    /// `generation` of the ratchet key used for the content.
    pub generation: u32,
    /// `reuse_guard`, XORed into the first 4 bytes of the content nonce.
    pub reuse_guard: [u8; 4],
}

impl SenderData {
    /// The 12-byte encoding.
    pub fn encode(&self) -> [u8; SENDER_DATA_LEN] {
        let mut out = [0u8; SENDER_DATA_LEN];
        out[..4].copy_from_slice(&self.leaf_index.to_be_bytes());
        out[4..8].copy_from_slice(&self.generation.to_be_bytes());
        out[8..].copy_from_slice(&self.reuse_guard);
        out
    }

    /// Decodes exactly 12 bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] for any other length.
    pub fn decode(bytes: &[u8]) -> Res<Self> {
        const WHAT: &str = "sender data";
        let mut r = Reader::new(bytes);
        let sd = SenderData {
            leaf_index: r.u32(WHAT)?,
            generation: r.u32(WHAT)?,
            reuse_guard: r.array(WHAT)?,
        };
        r.finish("sender data: trailing bytes")?;
        Ok(sd)
    }
}

/// The nonce actually used for the content: the ratchet nonce with its
/// first four bytes XORed with `reuse_guard` (RFC 9420 6.3.1).
///
/// # Errors
///
/// [`Error::Usage`] for a nonce shorter than four bytes.
pub fn apply_reuse_guard(nonce: &Secret, reuse_guard: [u8; 4]) -> Res<Secret> {
    let mut out = nonce.expose().to_vec();
    let head = out
        .get_mut(..4)
        .ok_or(Error::Usage("nonce shorter than the reuse guard"))?;
    for (n, g) in head.iter_mut().zip(reuse_guard) {
        *n ^= g;
    }
    Ok(Secret::new(out))
}

/// Decrypts `encrypted_sender_data` (RFC 9420 6.3.2): key and nonce from
/// `sender_data_secret` and the ciphertext sample, AAD = `SenderDataAAD`.
///
/// # Errors
///
/// [`Error::Crypto`] if decryption fails; [`Error::Malformed`] if the
/// plaintext is not 12 bytes.
pub fn decrypt_sender_data(
    suite: MlsSuite,
    sender_data_secret: &Secret,
    msg: &PrivateMessage,
) -> Res<SenderData> {
    let kn = sender_data_key_nonce(suite, sender_data_secret, &msg.ciphertext)?;
    let pt = suite.aead_open(
        &kn.key,
        &kn.nonce,
        &msg.sender_data_aad()?,
        &msg.encrypted_sender_data,
    )?;
    SenderData::decode(&pt)
}

/// Encrypts `SenderData` for a message whose content `ciphertext` is
/// already known (the sample is taken from it), returning
/// `encrypted_sender_data`.
///
/// # Errors
///
/// As [`MlsSuite::aead_seal`].
pub fn encrypt_sender_data(
    suite: MlsSuite,
    sender_data_secret: &Secret,
    group_id: &[u8],
    epoch: u64,
    content_type: ContentType,
    sender_data: &SenderData,
    ciphertext: &[u8],
) -> Res<Vec<u8>> {
    let kn = sender_data_key_nonce(suite, sender_data_secret, ciphertext)?;
    let aad = sender_data_aad(group_id, epoch, content_type)?;
    suite.aead_seal(&kn.key, &kn.nonce, &aad, &sender_data.encode())
}

/// RFC 9420 6.3.1 `PrivateMessageContent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateMessageContent {
    /// The content type (from the enclosing `PrivateMessage`).
    pub content_type: ContentType,
    /// The body, as in [`FramedContent::content`].
    pub content: Vec<u8>,
    /// `auth`.
    pub auth: FramedContentAuthData,
    /// The number of zero padding bytes.
    pub padding_len: usize,
}

impl PrivateMessageContent {
    /// Decodes a decrypted `PrivateMessageContent`: the body, the auth
    /// data, then padding that must be all zero (RFC 9420 6.3.1).
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] for a truncated body or non-zero padding;
    /// [`Error::Unsupported`] for proposal or credential types whose
    /// encoding is unknown.
    pub fn decode(content_type: ContentType, plaintext: &[u8]) -> Res<Self> {
        let mut r = Reader::new(plaintext);
        let content = decode_body(&mut r, content_type)?.to_vec();
        let auth = FramedContentAuthData::decode(&mut r, content_type)?;
        let padding = r.rest();
        check_zero_padding(padding, "private message content: non-zero padding")?;
        Ok(PrivateMessageContent {
            content_type,
            content,
            auth,
            padding_len: padding.len(),
        })
    }

    /// The encoding, including `padding_len` zero bytes.
    ///
    /// # Errors
    ///
    /// As [`FramedContentAuthData::encode`]; [`Error::TooLarge`] for
    /// oversized vectors.
    pub fn encode(&self) -> Res<Vec<u8>> {
        let mut out = Vec::new();
        out.try_reserve(self.content.len() + self.auth.signature.len() + 80)
            .map_err(|_| Error::TooLarge("private message content"))?;
        encode_body(&mut out, self.content_type, &self.content)?;
        self.auth.encode_into(&mut out, self.content_type)?;
        out.try_reserve(self.padding_len)
            .map_err(|_| Error::TooLarge("private message padding"))?;
        out.resize(out.len() + self.padding_len, 0);
        Ok(out)
    }
}

/// Decrypts `msg.ciphertext` with an explicit key and **final** nonce (the
/// reuse guard already applied, see [`apply_reuse_guard`]), AAD =
/// `PrivateContentAAD`, and decodes the `PrivateMessageContent`.
/// Returns the decoded content and the raw plaintext.
///
/// # Errors
///
/// [`Error::Crypto`] if decryption fails; otherwise as
/// [`PrivateMessageContent::decode`].
pub fn open_content(
    suite: MlsSuite,
    key: &Secret,
    final_nonce: &Secret,
    msg: &PrivateMessage,
) -> Res<(PrivateMessageContent, Vec<u8>)> {
    let pt = suite.aead_open(key, final_nonce, &msg.content_aad()?, &msg.ciphertext)?;
    let content = PrivateMessageContent::decode(msg.content_type, &pt)?;
    Ok((content, pt))
}

/// Encrypts a `PrivateMessageContent` with an explicit key and **final**
/// nonce, AAD = `PrivateContentAAD`, returning the `ciphertext` field.
///
/// # Errors
///
/// As [`PrivateMessageContent::encode`] and [`MlsSuite::aead_seal`].
pub fn seal_content(
    suite: MlsSuite,
    key: &Secret,
    final_nonce: &Secret,
    group_id: &[u8],
    epoch: u64,
    authenticated_data: &[u8],
    content: &PrivateMessageContent,
) -> Res<Vec<u8>> {
    let aad = content_aad(group_id, epoch, content.content_type, authenticated_data)?;
    suite.aead_seal(key, final_nonce, &aad, &content.encode()?)
}

/// A decrypted `PrivateMessage` and everything used to decrypt it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecryptedPrivateMessage {
    /// The message as parsed.
    pub message: PrivateMessage,
    /// The decrypted sender data (leaf index, generation, reuse guard).
    pub sender_data: SenderData,
    /// The content key of `(leaf_index, generation)`.
    pub key: Secret,
    /// The final content nonce (ratchet nonce with the reuse guard
    /// applied).
    pub nonce: Secret,
    /// The decoded `PrivateMessageContent`.
    pub content: PrivateMessageContent,
    /// The raw decrypted `PrivateMessageContent` bytes, padding included.
    pub plaintext: Vec<u8>,
}

impl DecryptedPrivateMessage {
    /// The `FramedContent` this message carries (sender = member
    /// `leaf_index`).
    pub fn framed_content(&self) -> FramedContent {
        FramedContent {
            group_id: self.message.group_id.clone(),
            epoch: self.message.epoch,
            sender: Sender::Member(self.sender_data.leaf_index),
            authenticated_data: self.message.authenticated_data.clone(),
            content_type: self.message.content_type,
            content: self.content.content.clone(),
        }
    }

    /// The `FramedContentTBS` the sender signed (wire format
    /// `mls_private_message`).
    ///
    /// # Errors
    ///
    /// As [`framed_content_tbs`].
    pub fn tbs(&self, context: &GroupContext) -> Res<Vec<u8>> {
        framed_content_tbs(
            WireFormat::PrivateMessage,
            &self.framed_content(),
            Some(context),
        )
    }

    /// Checks the sender's signature over `FramedContentTBS` (see
    /// [`verify_framed_content`]).
    ///
    /// # Errors
    ///
    /// As [`verify_framed_content`].
    pub fn verify_signature(
        &self,
        suite: MlsSuite,
        signature_key: &[u8],
        context: &GroupContext,
    ) -> Res<()> {
        verify_framed_content(
            suite,
            signature_key,
            WireFormat::PrivateMessage,
            &self.framed_content(),
            Some(context),
            &self.content.auth.signature,
        )
    }
}

/// Parses and decrypts a `PrivateMessage` (`MLSMessage` bytes) in one
/// call: sender data, then the content key and nonce of
/// `(leaf_index, generation)` from the secret tree of `n_leaves` leaves
/// rooted at `encryption_secret`, then the content.
///
/// # Errors
///
/// As [`PrivateMessage::parse`], [`decrypt_sender_data`] and
/// [`open_content`]; [`Error::Malformed`] if the sender's leaf index is not
/// below `n_leaves`; [`Error::TooLarge`] for a generation above
/// [`MAX_GENERATION`]; [`Error::Usage`] if `n_leaves` is not a power of two.
pub fn decrypt_private_message(
    suite: MlsSuite,
    encryption_secret: &Secret,
    sender_data_secret: &Secret,
    n_leaves: u32,
    bytes: &[u8],
) -> Res<DecryptedPrivateMessage> {
    let message = PrivateMessage::parse(bytes)?;
    let sender_data = decrypt_sender_data(suite, sender_data_secret, &message)?;
    if sender_data.leaf_index >= n_leaves {
        return Err(Error::Malformed("sender data: leaf index outside the tree"));
    }
    if sender_data.generation > MAX_GENERATION {
        return Err(Error::TooLarge(
            "sender data: generation beyond MAX_GENERATION",
        ));
    }
    let kn = leaf_key_nonce(
        suite,
        encryption_secret,
        n_leaves,
        sender_data.leaf_index,
        RatchetKind::for_content_type(message.content_type),
        sender_data.generation,
    )?;
    let nonce = apply_reuse_guard(&kn.nonce, sender_data.reuse_guard)?;
    let (content, plaintext) = open_content(suite, &kn.key, &nonce, &message)?;
    Ok(DecryptedPrivateMessage {
        message,
        sender_data,
        key: kn.key,
        nonce,
        content,
        plaintext,
    })
}

/// Encrypts a `PrivateMessage` (the inverse of
/// [`decrypt_private_message`]) and returns the `MLSMessage` bytes.
///
/// `key` and `nonce` are the ratchet key and nonce of
/// `(sender_data.leaf_index, sender_data.generation)`; the reuse guard of
/// `sender_data` is applied to `nonce` here. The content type comes from
/// `content`.
///
/// # Errors
///
/// As [`seal_content`] and [`encrypt_sender_data`].
#[allow(clippy::too_many_arguments)]
pub fn encrypt_private_message(
    suite: MlsSuite,
    sender_data_secret: &Secret,
    key: &Secret,
    nonce: &Secret,
    group_id: &[u8],
    epoch: u64,
    authenticated_data: &[u8],
    sender_data: &SenderData,
    content: &PrivateMessageContent,
) -> Res<Vec<u8>> {
    let final_nonce = apply_reuse_guard(nonce, sender_data.reuse_guard)?;
    let ciphertext = seal_content(
        suite,
        key,
        &final_nonce,
        group_id,
        epoch,
        authenticated_data,
        content,
    )?;
    let encrypted_sender_data = encrypt_sender_data(
        suite,
        sender_data_secret,
        group_id,
        epoch,
        content.content_type,
        sender_data,
        &ciphertext,
    )?;
    PrivateMessage {
        group_id: group_id.to_vec(),
        epoch,
        content_type: content.content_type,
        authenticated_data: authenticated_data.to_vec(),
        encrypted_sender_data,
        ciphertext,
    }
    .encode()
}

// ---------------------------------------------------------------------
// MLSMessage header and content bodies.

fn header(wire_format: WireFormat) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&MLS10.to_be_bytes());
    out.extend_from_slice(&wire_format.code().to_be_bytes());
    out
}

fn read_header(r: &mut Reader<'_>, expected: WireFormat) -> Res<()> {
    if r.u16("mls message header")? != MLS10 {
        return Err(Error::Malformed(
            "mls message: unsupported protocol version",
        ));
    }
    if r.u16("mls message header")? != expected.code() {
        return Err(Error::Malformed("mls message: unexpected wire format"));
    }
    Ok(())
}

fn read_content_type(r: &mut Reader<'_>) -> Res<ContentType> {
    ContentType::from_code(r.u8("content type")?)
        .ok_or(Error::Malformed("mls message: unknown content type"))
}

fn encode_body(out: &mut Vec<u8>, content_type: ContentType, body: &[u8]) -> Res<()> {
    match content_type {
        ContentType::Application => put_vec(out, body),
        ContentType::Proposal | ContentType::Commit => {
            out.extend_from_slice(body);
            Ok(())
        }
    }
}

/// Reads a content body, returning the `application_data` (without its
/// prefix) or the exact bytes of the `Proposal` / `Commit`.
fn decode_body<'a>(r: &mut Reader<'a>, content_type: ContentType) -> Res<&'a [u8]> {
    match content_type {
        ContentType::Application => r.vec("application data"),
        ContentType::Proposal => span(r, skip_proposal),
        ContentType::Commit => span(r, skip_commit),
    }
}

/// Runs `skip` and returns the bytes it consumed.
fn span<'a>(r: &mut Reader<'a>, skip: fn(&mut Reader<'a>) -> Res<()>) -> Res<&'a [u8]> {
    let start = r.rest();
    skip(r)?;
    let used = start.len() - r.remaining();
    start.get(..used).ok_or(Error::Malformed("content body"))
}

const BODY: &str = "proposal or commit";

fn skip_proposal(r: &mut Reader<'_>) -> Res<()> {
    match r.u16(BODY)? {
        // add: KeyPackage
        1 => {
            r.u16(BODY)?; // version
            r.u16(BODY)?; // cipher_suite
            r.vec(BODY)?; // init_key
            skip_leaf_node(r)?;
            r.vec(BODY)?; // extensions
            r.vec(BODY)?; // signature
        }
        // update: LeafNode
        2 => skip_leaf_node(r)?,
        // remove: uint32 removed
        3 => {
            r.u32(BODY)?;
        }
        // psk: PreSharedKeyID
        4 => skip_psk_id(r)?,
        // reinit: group_id, version, cipher_suite, extensions
        5 => {
            r.vec(BODY)?;
            r.u16(BODY)?;
            r.u16(BODY)?;
            r.vec(BODY)?;
        }
        // external_init: kem_output; group_context_extensions: extensions
        6 | 7 => {
            r.vec(BODY)?;
        }
        _ => return Err(Error::Unsupported("mls proposal type")),
    }
    Ok(())
}

fn skip_psk_id(r: &mut Reader<'_>) -> Res<()> {
    match r.u8(BODY)? {
        1 => {
            r.vec(BODY)?; // psk_id
        }
        2 => {
            r.u8(BODY)?; // usage
            r.vec(BODY)?; // psk_group_id
            r.u64(BODY)?; // psk_epoch
        }
        _ => return Err(Error::Malformed("psk id: unknown psk type")),
    }
    r.vec(BODY)?; // psk_nonce
    Ok(())
}

fn skip_leaf_node(r: &mut Reader<'_>) -> Res<()> {
    r.vec(BODY)?; // encryption_key
    r.vec(BODY)?; // signature_key
    match r.u16(BODY)? {
        1 | 2 => {
            r.vec(BODY)?; // basic identity / x509 certificates
        }
        _ => return Err(Error::Unsupported("mls credential type")),
    }
    for _ in 0..5 {
        r.vec(BODY)?; // capabilities
    }
    match r.u8(BODY)? {
        1 => {
            r.u64(BODY)?; // lifetime
            r.u64(BODY)?;
        }
        2 => {}
        3 => {
            r.vec(BODY)?; // parent_hash
        }
        _ => return Err(Error::Malformed("leaf node: unknown source")),
    }
    r.vec(BODY)?; // extensions
    r.vec(BODY)?; // signature
    Ok(())
}

fn skip_commit(r: &mut Reader<'_>) -> Res<()> {
    let proposals = r.vec(BODY)?;
    let mut p = Reader::new(proposals);
    while p.remaining() > 0 {
        match p.u8(BODY)? {
            1 => skip_proposal(&mut p)?,
            2 => {
                p.vec(BODY)?; // ProposalRef
            }
            _ => return Err(Error::Malformed("commit: unknown proposal-or-ref type")),
        }
    }
    match r.u8(BODY)? {
        0 => {}
        1 => {
            skip_leaf_node(r)?;
            r.vec(BODY)?; // UpdatePathNode nodes<V>
        }
        _ => return Err(Error::Malformed("commit: bad optional path")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mls::suite::tests::{entries, hex, num, suite_of};

    const MESSAGE_PROTECTION: &str = include_str!("../../test-vectors/mls/message-protection.json");

    fn context(e: &serde_json::Value) -> GroupContext {
        GroupContext::new(
            suite_of(e),
            &hex(e, "group_id"),
            num(e, "epoch"),
            &hex(e, "tree_hash"),
            &hex(e, "confirmed_transcript_hash"),
        )
    }

    const PRIVATE: [(&str, &str, ContentType); 3] = [
        ("proposal_priv", "proposal", ContentType::Proposal),
        ("commit_priv", "commit", ContentType::Commit),
        ("application_priv", "application", ContentType::Application),
    ];

    #[test]
    fn private_message_vectors() {
        let vectors = entries(MESSAGE_PROTECTION);
        assert_eq!(vectors.len(), 7);
        let (mut decrypted, mut signatures, mut reencrypted) = (0, 0, 0);
        for e in &vectors {
            let suite = suite_of(e);
            let enc = Secret::new(hex(e, "encryption_secret"));
            let sds = Secret::new(hex(e, "sender_data_secret"));
            let gc = context(e);
            for (key, plain, ct) in PRIVATE {
                let bytes = hex(e, key);
                let name = format!("suite {} {key}", suite.code());
                let d = decrypt_private_message(suite, &enc, &sds, 2, &bytes)
                    .unwrap_or_else(|err| panic!("{name}: {err:?}"));
                assert_eq!(d.content.content, hex(e, plain), "{name}");
                assert_eq!(d.message.content_type, ct, "{name}");
                assert_eq!((d.sender_data.leaf_index, d.sender_data.generation), (1, 0));
                assert_eq!(d.message.group_id, hex(e, "group_id"));
                assert_eq!(d.message.epoch, num(e, "epoch"));
                assert_eq!(
                    d.content.auth.confirmation_tag.is_some(),
                    ct == ContentType::Commit,
                    "{name}"
                );
                assert_eq!(d.content.encode().unwrap(), d.plaintext, "{name}");
                decrypted += 1;

                // The step-wise API gives the same result.
                let msg = PrivateMessage::parse(&bytes).unwrap();
                assert_eq!(msg.encode().unwrap(), bytes);
                let sd = decrypt_sender_data(suite, &sds, &msg).unwrap();
                assert_eq!(sd, d.sender_data);
                let kn = leaf_key_nonce(
                    suite,
                    &enc,
                    2,
                    sd.leaf_index,
                    RatchetKind::for_content_type(ct),
                    sd.generation,
                )
                .unwrap();
                let nonce = apply_reuse_guard(&kn.nonce, sd.reuse_guard).unwrap();
                assert_eq!((&kn.key, &nonce), (&d.key, &d.nonce));
                let (content, pt) = open_content(suite, &kn.key, &nonce, &msg).unwrap();
                assert_eq!((content, pt), (d.content.clone(), d.plaintext.clone()));
                // The ratchet nonce itself does not open the content
                // (unless the reuse guard happens to be zero).
                if sd.reuse_guard != [0; 4] {
                    assert_eq!(
                        open_content(suite, &kn.key, &kn.nonce, &msg),
                        Err(Error::Crypto)
                    );
                }

                // Signature over FramedContentTBS.
                if suite.signature_scheme().is_supported() {
                    d.verify_signature(suite, &hex(e, "signature_pub"), &gc)
                        .unwrap_or_else(|err| panic!("{name}: {err:?}"));
                    let mut other = gc.clone();
                    other.epoch ^= 1;
                    assert_eq!(
                        d.verify_signature(suite, &hex(e, "signature_pub"), &other),
                        Err(Error::Crypto)
                    );
                    signatures += 1;
                } else {
                    assert!(matches!(
                        d.verify_signature(suite, &hex(e, "signature_pub"), &gc),
                        Err(Error::Unsupported(_))
                    ));
                }

                // Re-encryption with the recovered values is byte-identical.
                let again = encrypt_private_message(
                    suite,
                    &sds,
                    &kn.key,
                    &kn.nonce,
                    &msg.group_id,
                    msg.epoch,
                    &msg.authenticated_data,
                    &d.sender_data,
                    &d.content,
                )
                .unwrap();
                assert_eq!(again, bytes, "{name}");
                reencrypted += 1;
            }
        }
        assert_eq!((decrypted, signatures, reencrypted), (21, 9, 21));
    }

    #[test]
    fn sign_then_encrypt_round_trip() {
        // A fresh application message with padding, signed with the
        // vector's key, for the suites that can sign.
        for e in entries(MESSAGE_PROTECTION) {
            let suite = suite_of(&e);
            if !suite.signature_scheme().is_supported() {
                continue;
            }
            let enc = Secret::new(hex(&e, "encryption_secret"));
            let sds = Secret::new(hex(&e, "sender_data_secret"));
            let gc = context(&e);
            let sender_data = SenderData {
                leaf_index: 0,
                generation: 3,
                reuse_guard: [1, 2, 3, 4],
            };
            let framed = FramedContent {
                group_id: gc.group_id.clone(),
                epoch: gc.epoch,
                sender: Sender::Member(0),
                authenticated_data: b"ad".to_vec(),
                content_type: ContentType::Application,
                content: b"hello".to_vec(),
            };
            let signature = sign_framed_content(
                suite,
                &hex(&e, "signature_priv"),
                WireFormat::PrivateMessage,
                &framed,
                Some(&gc),
            )
            .unwrap();
            let content = PrivateMessageContent {
                content_type: ContentType::Application,
                content: framed.content.clone(),
                auth: FramedContentAuthData {
                    signature,
                    confirmation_tag: None,
                },
                padding_len: 17,
            };
            let kn = leaf_key_nonce(suite, &enc, 2, 0, RatchetKind::Application, 3).unwrap();
            let bytes = encrypt_private_message(
                suite,
                &sds,
                &kn.key,
                &kn.nonce,
                &gc.group_id,
                gc.epoch,
                b"ad",
                &sender_data,
                &content,
            )
            .unwrap();
            let d = decrypt_private_message(suite, &enc, &sds, 2, &bytes).unwrap();
            assert_eq!(d.content, content);
            assert_eq!(d.framed_content(), framed);
            d.verify_signature(suite, &hex(&e, "signature_pub"), &gc)
                .unwrap();
            // A different tree size derives different keys for leaf 0.
            assert!(decrypt_private_message(suite, &enc, &sds, 1, &bytes).is_err());
        }
    }

    #[test]
    fn public_message_vectors() {
        let mut checked = 0;
        for e in entries(MESSAGE_PROTECTION) {
            let suite = suite_of(&e);
            let gc = context(&e);
            let membership_key = Secret::new(hex(&e, "membership_key"));
            for (key, plain, ct) in [
                ("proposal_pub", "proposal", ContentType::Proposal),
                ("commit_pub", "commit", ContentType::Commit),
            ] {
                let bytes = hex(&e, key);
                let name = format!("suite {} {key}", suite.code());
                let m =
                    PublicMessage::parse(&bytes).unwrap_or_else(|err| panic!("{name}: {err:?}"));
                assert_eq!(m.content.content_type, ct);
                assert_eq!(m.content.content, hex(&e, plain), "{name}");
                assert_eq!(m.content.sender, Sender::Member(1), "{name}");
                assert_eq!(m.encode().unwrap(), bytes, "{name}");
                m.verify_membership_tag(suite, &membership_key, &gc)
                    .unwrap_or_else(|err| panic!("{name}: {err:?}"));
                let wrong = Secret::new(vec![0; suite.nh()]);
                assert_eq!(
                    m.verify_membership_tag(suite, &wrong, &gc),
                    Err(Error::Crypto)
                );
                if suite.signature_scheme().is_supported() {
                    m.verify_signature(suite, &hex(&e, "signature_pub"), Some(&gc))
                        .unwrap_or_else(|err| panic!("{name}: {err:?}"));
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 14);
    }

    #[test]
    fn group_context_encoding_matches_key_schedule_vectors() {
        const KEY_SCHEDULE: &str = include_str!("../../test-vectors/mls/key-schedule.json");
        for e in entries(KEY_SCHEDULE) {
            for epoch in e["epochs"].as_array().expect("epochs") {
                let bytes = hex(epoch, "group_context");
                let gc = GroupContext::decode(&bytes).unwrap();
                assert_eq!(gc.encode().unwrap(), bytes);
                assert_eq!(gc.tree_hash, hex(epoch, "tree_hash"));
                assert_eq!(
                    gc.confirmed_transcript_hash,
                    hex(epoch, "confirmed_transcript_hash")
                );
                assert_eq!(u64::from(gc.cipher_suite), num(&e, "cipher_suite"));
            }
        }
    }

    #[test]
    fn truncation_and_bit_flips_are_errors_not_panics() {
        for e in &entries(MESSAGE_PROTECTION) {
            truncation_and_bit_flips(e);
        }
    }

    fn truncation_and_bit_flips(e: &serde_json::Value) {
        let suite = suite_of(e);
        let enc = Secret::new(hex(e, "encryption_secret"));
        let sds = Secret::new(hex(e, "sender_data_secret"));
        for (key, _, _) in PRIVATE {
            let bytes = hex(e, key);
            for cut in 0..bytes.len() {
                assert!(decrypt_private_message(suite, &enc, &sds, 2, &bytes[..cut]).is_err());
            }
            // Every bit of the header, both encrypted fields and the tags.
            for i in 0..bytes.len() {
                for bit in 0..8 {
                    let mut bad = bytes.clone();
                    bad[i] ^= 1 << bit;
                    assert!(
                        decrypt_private_message(suite, &enc, &sds, 2, &bad).is_err(),
                        "{key} byte {i} bit {bit}"
                    );
                }
            }
        }
        for key in ["proposal_pub", "commit_pub"] {
            let bytes = hex(e, key);
            for cut in 0..bytes.len() {
                assert!(PublicMessage::parse(&bytes[..cut]).is_err());
            }
            let gc = context(e);
            let pk = hex(e, "signature_pub");
            for i in 0..bytes.len() {
                let mut bad = bytes.clone();
                bad[i] ^= 0x01;
                if let Ok(m) = PublicMessage::parse(&bad) {
                    let _ = m.verify_signature(suite, &pk, Some(&gc));
                }
            }
        }
    }

    #[test]
    fn padding_must_be_zero_and_auth_shape_checked() {
        let content = PrivateMessageContent {
            content_type: ContentType::Application,
            content: b"x".to_vec(),
            auth: FramedContentAuthData {
                signature: vec![5; 3],
                confirmation_tag: None,
            },
            padding_len: 4,
        };
        let mut pt = content.encode().unwrap();
        assert_eq!(pt, [1, b'x', 3, 5, 5, 5, 0, 0, 0, 0]);
        assert_eq!(
            PrivateMessageContent::decode(ContentType::Application, &pt).unwrap(),
            content
        );
        pt[8] = 1;
        assert!(matches!(
            PrivateMessageContent::decode(ContentType::Application, &pt),
            Err(Error::Malformed(_))
        ));
        let mut commit = content.clone();
        commit.content_type = ContentType::Commit;
        assert!(matches!(commit.encode(), Err(Error::Usage(_))));
        let mut tagged = content;
        tagged.auth.confirmation_tag = Some(vec![1]);
        assert!(matches!(tagged.encode(), Err(Error::Usage(_))));
        // An unknown proposal type cannot be framed.
        assert!(matches!(
            PrivateMessageContent::decode(ContentType::Proposal, &[0, 9, 0]),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(
            apply_reuse_guard(&Secret::new(vec![0; 3]), [0; 4]),
            Err(Error::Usage(_))
        ));
        assert!(SenderData::decode(&[0; 11]).is_err());
        assert!(SenderData::decode(&[0; 13]).is_err());
    }

    #[test]
    fn tbs_context_rules() {
        let mut fc = FramedContent {
            group_id: vec![1],
            epoch: 0,
            sender: Sender::Member(0),
            authenticated_data: vec![],
            content_type: ContentType::Application,
            content: vec![],
        };
        let gc = GroupContext::new(MlsSuite::from_code(1).unwrap(), &[1], 0, &[], &[]);
        assert!(matches!(
            framed_content_tbs(WireFormat::PublicMessage, &fc, None),
            Err(Error::Usage(_))
        ));
        fc.sender = Sender::External(0);
        assert!(matches!(
            framed_content_tbs(WireFormat::PublicMessage, &fc, Some(&gc)),
            Err(Error::Usage(_))
        ));
        let tbs = framed_content_tbs(WireFormat::PublicMessage, &fc, None).unwrap();
        assert_eq!(
            tbs,
            [0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0]
        );
    }

    #[test]
    fn framed_content_signature_round_trip() {
        for code in [1u16, 2, 3] {
            let suite = MlsSuite::from_code(code).unwrap();
            let private = [7u8; 32];
            let public = suite.signature_public_key(&private).unwrap();
            let gc = GroupContext::new(suite, &[1], 4, &[], &[]);
            let fc = FramedContent {
                group_id: vec![1],
                epoch: 4,
                sender: Sender::Member(2),
                authenticated_data: b"ad".to_vec(),
                content_type: ContentType::Application,
                content: b"hi".to_vec(),
            };
            let wf = WireFormat::PrivateMessage;
            let sig = sign_framed_content(suite, &private, wf, &fc, Some(&gc)).unwrap();
            // The label is RFC 9420's "FramedContentTBS".
            let tbs = framed_content_tbs(wf, &fc, Some(&gc)).unwrap();
            suite
                .verify_with_label(&public, "FramedContentTBS", &tbs, &sig)
                .unwrap();
            verify_framed_content(suite, &public, wf, &fc, Some(&gc), &sig).unwrap();
            assert_eq!(
                verify_framed_content(
                    suite,
                    &public,
                    WireFormat::PublicMessage,
                    &fc,
                    Some(&gc),
                    &sig
                ),
                Err(Error::Crypto)
            );
            let mut other = fc.clone();
            other.content = b"ho".to_vec();
            assert_eq!(
                verify_framed_content(suite, &public, wf, &other, Some(&gc), &sig),
                Err(Error::Crypto)
            );
            assert!(matches!(
                verify_framed_content(suite, &public, wf, &fc, None, &sig),
                Err(Error::Usage(_))
            ));
        }
    }
}
