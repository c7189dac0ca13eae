//! RFC 9420 `GroupInfo` (section 12.4.3) with its `ratchet_tree`
//! extension (12.4.3.3): reading and verifying one for a hub registration
//! (spec requirement HUB-6), and building one for a demo or test group.
//!
//! # Reading
//!
//! [`GroupInfoIn::parse`] reads a complete `MLSMessage` of wire format
//! `mls_group_info`. It checks the framing of every field, that both
//! extension lists (the GroupContext's and the GroupInfo's) are well formed
//! and free of duplicate types, and keeps the exact `GroupInfoTBS` bytes.
//! [`GroupInfoIn::ratchet_tree`] decodes the `ratchet_tree` extension,
//! walking every `LeafNode` (`basic` and `x509` credentials; other
//! credential types are [`Error::Unsupported`], since their length cannot
//! be known; each leaf's extension list must be well formed and free of
//! duplicate types too; the `uint16` capability lists and the `uint32`
//! `unmerged_leaves` must have whole elements) and `ParentNode`.
//! [`GroupInfoIn::verify`] checks the signature of the signer leaf over
//! `GroupInfoTBS`.
//!
//! [`GroupInfoIn::tree_hash_matches`] checks that the GroupContext's
//! `tree_hash` is the tree hash (RFC 9420 7.8, [`tree_hash`]) of the
//! ratchet tree.
//!
//! What is **not** checked here: the `parent_hash` chain, the leaf nodes' own
//! signatures (see [`LeafNodeIn::verify_signature`]), lifetimes,
//! capabilities, or that keys are unique among members. The GroupInfo
//! signature binds the whole tree to the signer, which is a member of it.
//!
//! # Building
//!
//! [`GroupInfoBuilder`] makes a signed `GroupInfo` whose ratchet tree holds
//! one leaf per given signature key and blank parents. Its encryption keys
//! are derived from the identities and are not usable for HPKE: the result
//! is meant for registering a demo or test group with a hub, not for
//! joining an MLS group.

use std::collections::{BTreeMap, BTreeSet};

use crate::codec::{put_vec, varint_len, Reader};
use crate::error::{Error, Res};
use crate::mls::framing::{GroupContext, MLS10};
use crate::mls::message::WireFormat;
use crate::mls::suite::MlsSuite;

/// The `ratchet_tree` extension type (RFC 9420 17.3).
pub const EXT_RATCHET_TREE: u16 = 0x0002;

/// `CredentialType basic` (RFC 9420 5.3).
pub const CREDENTIAL_BASIC: u16 = 1;

/// `CredentialType x509` (RFC 9420 5.3).
pub const CREDENTIAL_X509: u16 = 2;

/// `LeafNodeSource key_package` (RFC 9420 7.2).
pub const SOURCE_KEY_PACKAGE: u8 = 1;

/// `LeafNodeSource update` (RFC 9420 7.2).
pub const SOURCE_UPDATE: u8 = 2;

/// `LeafNodeSource commit` (RFC 9420 7.2).
pub const SOURCE_COMMIT: u8 = 3;

const GROUP_INFO: &str = "group info";
const TREE: &str = "ratchet tree";
const LEAF: &str = "leaf node";
const PARENT: &str = "parent node";
const EXTENSIONS: &str = "extension list";

/// A parsed `GroupInfo` (RFC 9420 12.4.3), as received from an untrusted
/// party: nothing in it is authenticated until [`GroupInfoIn::verify`]
/// succeeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfoIn {
    /// `group_context`.
    pub group_context: GroupContext,
    /// The exact encoding of `group_context` as received.
    pub group_context_bytes: Vec<u8>,
    /// The GroupInfo's `extensions`, in order: `(extension_type,
    /// extension_data)`. No type occurs twice.
    pub extensions: Vec<(u16, Vec<u8>)>,
    /// `confirmation_tag`.
    pub confirmation_tag: Vec<u8>,
    /// `signer`: the leaf index of the member that signed.
    pub signer: u32,
    /// `signature`.
    pub signature: Vec<u8>,
    /// The exact `GroupInfoTBS` bytes (`group_context`, `extensions`,
    /// `confirmation_tag`, `signer`) as received.
    pub tbs: Vec<u8>,
}

/// One non-blank node of a ratchet tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreeNode {
    /// A `LeafNode` (at an even node index).
    Leaf(LeafNodeIn),
    /// A `ParentNode` (at an odd node index), kept as its exact encoding.
    Parent(Vec<u8>),
}

/// A parsed `LeafNode` (RFC 9420 7.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafNodeIn {
    /// `encryption_key`.
    pub encryption_key: Vec<u8>,
    /// `signature_key`.
    pub signature_key: Vec<u8>,
    /// The exact encoding of the whole `LeafNode`, signature included.
    pub raw: Vec<u8>,
    /// The credential type ([`CREDENTIAL_BASIC`] or [`CREDENTIAL_X509`]).
    pub credential_type: u16,
    /// For `basic`, the `identity`; for `x509`, the contents of
    /// `certificates<V>` (the concatenated `CertificateData`, each with its
    /// length prefix).
    pub credential: Vec<u8>,
    /// `leaf_node_source`: [`SOURCE_KEY_PACKAGE`], [`SOURCE_UPDATE`] or
    /// [`SOURCE_COMMIT`].
    pub leaf_node_source: u8,
    /// `signature`.
    pub signature: Vec<u8>,
}

impl LeafNodeIn {
    /// Decodes one complete `LeafNode`.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] for truncated input, trailing bytes, an
    /// unknown leaf node source or a badly framed field;
    /// [`Error::Unsupported`] for a credential type other than `basic` and
    /// `x509`.
    pub fn decode(bytes: &[u8]) -> Res<Self> {
        let mut r = Reader::new(bytes);
        let leaf = read_leaf_node(&mut r)?;
        r.finish("leaf node: trailing bytes")?;
        Ok(leaf)
    }

    /// The `LeafNodeTBS` bytes (RFC 9420 7.2): the leaf node's content
    /// fields, followed, for the `update` and `commit` sources only, by
    /// `group_id<V>` and `uint32 leaf_index` (which are ignored for the
    /// `key_package` source).
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] if `raw` does not end with `signature<V>` (a
    /// hand-made value); [`Error::TooLarge`] for an oversized group id.
    pub fn tbs(&self, group_id: &[u8], leaf_index: u32) -> Res<Vec<u8>> {
        let content_len = self
            .raw
            .len()
            .checked_sub(varint_len(self.signature.len()) + self.signature.len())
            .ok_or(Error::Malformed("leaf node: raw encoding too short"))?;
        let content = self
            .raw
            .get(..content_len)
            .ok_or(Error::Malformed("leaf node: raw encoding too short"))?;
        let mut out = Vec::with_capacity(content_len + group_id.len() + 8);
        out.extend_from_slice(content);
        match self.leaf_node_source {
            SOURCE_KEY_PACKAGE => {}
            SOURCE_UPDATE | SOURCE_COMMIT => {
                put_vec(&mut out, group_id)?;
                out.extend_from_slice(&leaf_index.to_be_bytes());
            }
            _ => return Err(Error::Malformed("leaf node: unknown source")),
        }
        Ok(out)
    }

    /// Checks the leaf node's own signature: `VerifyWithLabel(signature_key,
    /// "LeafNodeTBS", LeafNodeTBS, signature)`, with `group_id` and
    /// `leaf_index` as in [`LeafNodeIn::tbs`].
    ///
    /// # Errors
    ///
    /// [`Error::Crypto`] if it does not verify; otherwise as
    /// [`LeafNodeIn::tbs`] and [`MlsSuite::verify_with_label`].
    pub fn verify_signature(&self, suite: MlsSuite, group_id: &[u8], leaf_index: u32) -> Res<()> {
        let tbs = self.tbs(group_id, leaf_index)?;
        suite.verify_with_label(&self.signature_key, "LeafNodeTBS", &tbs, &self.signature)
    }
}

impl GroupInfoIn {
    /// Parses a complete `MLSMessage` (version `mls10`, wire format
    /// `mls_group_info`) holding a `GroupInfo`.
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] for a wrong version or wire format, truncated
    /// input, trailing bytes, a GroupContext version other than `mls10`, or
    /// an extension list that does not decode or repeats a type.
    pub fn parse(mls_message: &[u8]) -> Res<Self> {
        let mut r = Reader::new(mls_message);
        if r.u16(GROUP_INFO)? != MLS10 {
            return Err(Error::Malformed(
                "mls message: unsupported protocol version",
            ));
        }
        if r.u16(GROUP_INFO)? != WireFormat::GroupInfo.code() {
            return Err(Error::Malformed("mls message: unexpected wire format"));
        }
        let tbs_start = r.rest();

        // GroupContext: version, cipher_suite, group_id<V>, epoch,
        // tree_hash<V>, confirmed_transcript_hash<V>, extensions<V>.
        r.u16(GROUP_INFO)?;
        r.u16(GROUP_INFO)?;
        r.vec(GROUP_INFO)?;
        r.u64(GROUP_INFO)?;
        r.vec(GROUP_INFO)?;
        r.vec(GROUP_INFO)?;
        r.vec(GROUP_INFO)?;
        let group_context_bytes = consumed(tbs_start, &r)?;
        let group_context = GroupContext::decode(group_context_bytes)?;
        if group_context.version != MLS10 {
            return Err(Error::Malformed("group context: unsupported version"));
        }
        read_extensions(&group_context.extensions)?;

        let extensions = read_extensions(r.vec(GROUP_INFO)?)?
            .into_iter()
            .map(|(t, d)| (t, d.to_vec()))
            .collect();
        let confirmation_tag = r.vec(GROUP_INFO)?.to_vec();
        let signer = r.u32(GROUP_INFO)?;
        let tbs = consumed(tbs_start, &r)?.to_vec();
        let signature = r.vec(GROUP_INFO)?.to_vec();
        r.finish("group info: trailing bytes")?;
        Ok(GroupInfoIn {
            group_context,
            group_context_bytes: group_context_bytes.to_vec(),
            extensions,
            confirmation_tag,
            signer,
            signature,
            tbs,
        })
    }

    /// The cipher suite named by the GroupContext.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for a code outside 1..=7.
    pub fn suite(&self) -> Res<MlsSuite> {
        MlsSuite::from_code(self.group_context.cipher_suite)
            .ok_or(Error::Unsupported("mls cipher suite"))
    }

    /// The `extension_data` of the GroupContext extension of type
    /// `ext_type`, if present.
    pub fn group_context_extension(&self, ext_type: u16) -> Option<&[u8]> {
        // The list was checked by `parse`; a hand-made value that does not
        // decode has no extensions.
        read_extensions(&self.group_context.extensions)
            .ok()?
            .into_iter()
            .find_map(|(t, d)| (t == ext_type).then_some(d))
    }

    /// The `extension_data` of the GroupInfo extension of type `ext_type`,
    /// if present.
    pub fn extension(&self, ext_type: u16) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|(t, _)| *t == ext_type)
            .map(|(_, d)| d.as_slice())
    }

    /// Decodes the `ratchet_tree` extension (see [`decode_ratchet_tree`]).
    ///
    /// # Errors
    ///
    /// [`Error::Malformed`] if the extension is absent or does not decode;
    /// [`Error::Unsupported`] for an unknown credential type.
    pub fn ratchet_tree(&self) -> Res<Vec<Option<TreeNode>>> {
        let data = self
            .extension(EXT_RATCHET_TREE)
            .ok_or(Error::Malformed("group info: no ratchet_tree extension"))?;
        decode_ratchet_tree(data)
    }

    /// The `signature_key` of every non-blank leaf of the ratchet tree, by
    /// leaf index (leaf `i` is node `2i`).
    ///
    /// # Errors
    ///
    /// As [`GroupInfoIn::ratchet_tree`].
    pub fn leaf_signature_keys(&self) -> Res<BTreeMap<u32, Vec<u8>>> {
        leaf_signature_keys(&self.ratchet_tree()?)
    }

    /// Whether the GroupContext's `tree_hash` equals the tree hash
    /// ([`tree_hash`]) of the `ratchet_tree` extension, under the
    /// GroupContext's suite.
    ///
    /// # Errors
    ///
    /// As [`GroupInfoIn::suite`] and [`GroupInfoIn::ratchet_tree`].
    pub fn tree_hash_matches(&self) -> Res<bool> {
        let suite = self.suite()?;
        let tree = self.ratchet_tree()?;
        Ok(tree_hash(suite, &tree)? == self.group_context.tree_hash)
    }

    /// Checks the GroupInfo signature: `VerifyWithLabel(signature_key of
    /// leaf signer, "GroupInfoTBS", GroupInfoTBS, signature)`. Pass the
    /// GroupContext's suite ([`GroupInfoIn::suite`]).
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] if `suite` is not the GroupContext's suite;
    /// [`Error::Malformed`] if the ratchet tree is absent or does not
    /// decode, or the signer is not a non-blank leaf of it, or its
    /// signature key does not decode; [`Error::Unsupported`] for an unknown
    /// credential type or a suite whose signatures are not implemented;
    /// [`Error::Crypto`] if the signature does not verify.
    pub fn verify(&self, suite: MlsSuite) -> Res<()> {
        if suite.code() != self.group_context.cipher_suite {
            return Err(Error::Usage(
                "group info: suite differs from the group context's",
            ));
        }
        let tree = self.ratchet_tree()?;
        let signer = usize::try_from(u64::from(self.signer) * 2)
            .ok()
            .and_then(|i| tree.get(i));
        let Some(Some(TreeNode::Leaf(leaf))) = signer else {
            return Err(Error::Malformed("group info: signer is not a member"));
        };
        suite.verify_with_label(
            &leaf.signature_key,
            "GroupInfoTBS",
            &self.tbs,
            &self.signature,
        )
    }
}

/// The `signature_key` of every non-blank leaf of a decoded ratchet tree,
/// by leaf index (leaf `i` is node `2i`).
///
/// # Errors
///
/// [`Error::Malformed`] if a leaf index does not fit a `u32`.
pub fn leaf_signature_keys(tree: &[Option<TreeNode>]) -> Res<BTreeMap<u32, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for (node, entry) in tree.iter().enumerate().step_by(2) {
        if let Some(TreeNode::Leaf(leaf)) = entry {
            let index =
                u32::try_from(node / 2).map_err(|_| Error::Malformed("ratchet tree: too large"))?;
            out.insert(index, leaf.signature_key.clone());
        }
    }
    Ok(out)
}

/// `NodeType leaf` (RFC 9420 7.8).
const NODE_TYPE_LEAF: u8 = 1;

/// `NodeType parent` (RFC 9420 7.8).
const NODE_TYPE_PARENT: u8 = 2;

/// The tree hash of the root of a ratchet tree (RFC 9420 7.8), as carried
/// in a GroupContext's `tree_hash`.
///
/// `tree` is in array order (node `i` at index `i`, leaves at even
/// indices), as [`decode_ratchet_tree`] returns it. The tree is the
/// left-balanced binary tree (RFC 9420 appendix C) with the smallest
/// power-of-two number of leaves that holds every entry; nodes beyond the
/// list are blank. The hash of each node is `Hash(TreeHashInput)`:
///
/// ```text
/// struct {
///     NodeType node_type;
///     select (TreeHashInput.node_type) {
///         case leaf:   uint32 leaf_index; optional<LeafNode> leaf_node;
///         case parent: optional<ParentNode> parent_node;
///                      opaque left_hash<V>; opaque right_hash<V>;
///     };
/// } TreeHashInput;
/// ```
///
/// with the leaf and parent nodes in their exact received encodings.
///
/// # Errors
///
/// [`Error::Malformed`] for an empty tree, a leaf at an odd or a parent at
/// an even index, or a tree too large for `u32` leaf indices;
/// [`Error::TooLarge`] for oversized fields.
pub fn tree_hash(suite: MlsSuite, tree: &[Option<TreeNode>]) -> Res<Vec<u8>> {
    if tree.is_empty() {
        return Err(Error::Malformed("ratchet tree: empty"));
    }
    // Leaves needed to hold every entry, rounded up to a power of two.
    let n_leaves = tree
        .len()
        .div_ceil(2)
        .checked_next_power_of_two()
        .filter(|n| u32::try_from(*n).is_ok())
        .ok_or(Error::Malformed("ratchet tree: too large"))?;
    // width = 2 * n_leaves - 1; root = (1 << log2(width)) - 1 = n_leaves - 1.
    let root = n_leaves - 1;
    node_hash(suite, tree, root, n_leaves.trailing_zeros())
}

/// The tree hash of node `x` at `level` (the number of trailing one bits
/// of `x`, RFC 9420 appendix C).
fn node_hash(suite: MlsSuite, tree: &[Option<TreeNode>], x: usize, level: u32) -> Res<Vec<u8>> {
    let node = tree.get(x).and_then(Option::as_ref);
    let mut input = Vec::new();
    if level == 0 {
        let leaf_index =
            u32::try_from(x / 2).map_err(|_| Error::Malformed("ratchet tree: too large"))?;
        input.push(NODE_TYPE_LEAF);
        input.extend_from_slice(&leaf_index.to_be_bytes());
        match node {
            None => input.push(0),
            Some(TreeNode::Leaf(leaf)) => {
                input.push(1);
                input.extend_from_slice(&leaf.raw);
            }
            Some(TreeNode::Parent(_)) => {
                return Err(Error::Malformed("ratchet tree: parent at a leaf index"))
            }
        }
    } else {
        // left(x) = x ^ (0x01 << (k - 1)), right(x) = x ^ (0x03 << (k - 1)).
        let left = node_hash(suite, tree, x ^ (1 << (level - 1)), level - 1)?;
        let right = node_hash(suite, tree, x ^ (3 << (level - 1)), level - 1)?;
        input.push(NODE_TYPE_PARENT);
        match node {
            None => input.push(0),
            Some(TreeNode::Parent(raw)) => {
                input.push(1);
                input.extend_from_slice(raw);
            }
            Some(TreeNode::Leaf(_)) => {
                return Err(Error::Malformed("ratchet tree: leaf at a parent index"))
            }
        }
        put_vec(&mut input, &left)?;
        put_vec(&mut input, &right)?;
    }
    Ok(suite.hash(&input))
}

/// Decodes the `extension_data` of a `ratchet_tree` extension: `optional<Node>
/// ratchet_tree<V>` (RFC 9420 12.4.3.3), one entry per node in array
/// order, `None` for a blank node.
///
/// The tree must be non-empty, end with a non-blank leaf (trailing blank
/// nodes trimmed, as RFC 9420 requires), and hold leaves only at even and
/// parent nodes only at odd node indices.
///
/// # Errors
///
/// [`Error::Malformed`] for anything that does not decode or violates the
/// shape above; [`Error::Unsupported`] for an unknown credential type.
pub fn decode_ratchet_tree(extension_data: &[u8]) -> Res<Vec<Option<TreeNode>>> {
    let mut outer = Reader::new(extension_data);
    let nodes = outer.vec(TREE)?;
    outer.finish("ratchet tree: trailing bytes")?;

    // Every entry takes at least one byte, so the vector never grows
    // beyond the input's length.
    let mut tree = Vec::new();
    let mut r = Reader::new(nodes);
    while r.remaining() > 0 {
        let is_leaf_position = tree.len() % 2 == 0;
        let entry = match r.u8(TREE)? {
            0 => None,
            1 => match (r.u8(TREE)?, is_leaf_position) {
                (1, true) => Some(TreeNode::Leaf(read_leaf_node(&mut r)?)),
                (2, false) => Some(TreeNode::Parent(read_parent_node(&mut r)?.to_vec())),
                (1 | 2, _) => {
                    return Err(Error::Malformed("ratchet tree: node type at wrong index"))
                }
                _ => return Err(Error::Malformed("ratchet tree: unknown node type")),
            },
            _ => return Err(Error::Malformed("ratchet tree: bad optional")),
        };
        tree.push(entry);
    }
    match tree.last() {
        None => Err(Error::Malformed("ratchet tree: empty")),
        Some(None) => Err(Error::Malformed("ratchet tree: trailing blank node")),
        // The last node is at an even index: a leaf.
        Some(Some(_)) if tree.len() % 2 == 1 => Ok(tree),
        Some(Some(_)) => Err(Error::Malformed("ratchet tree: ends with a parent")),
    }
}

/// The bytes `r` has consumed since `start` (a `rest()` of the same reader).
fn consumed<'a>(start: &'a [u8], r: &Reader<'a>) -> Res<&'a [u8]> {
    start
        .len()
        .checked_sub(r.remaining())
        .and_then(|n| start.get(..n))
        .ok_or(Error::Malformed("group info: span"))
}

/// Reads a vector whose elements are `width` bytes wide.
fn read_fixed_list<'a>(r: &mut Reader<'a>, width: usize, what: &'static str) -> Res<&'a [u8]> {
    let v = r.vec(what)?;
    if v.len() % width != 0 {
        return Err(Error::Malformed(what));
    }
    Ok(v)
}

/// Decodes the contents of an `Extension extensions<V>` vector (without
/// its length prefix), rejecting repeated types.
fn read_extensions(list: &[u8]) -> Res<Vec<(u16, &[u8])>> {
    let mut r = Reader::new(list);
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    while r.remaining() > 0 {
        let ext_type = r.u16(EXTENSIONS)?;
        let data = r.vec(EXTENSIONS)?;
        if !seen.insert(ext_type) {
            return Err(Error::Malformed("extension list: repeated type"));
        }
        out.push((ext_type, data));
    }
    Ok(out)
}

fn read_leaf_node(r: &mut Reader<'_>) -> Res<LeafNodeIn> {
    let start = r.rest();
    let encryption_key = r.vec(LEAF)?;
    let signature_key = r.vec(LEAF)?;
    let credential_type = r.u16(LEAF)?;
    let credential = match credential_type {
        CREDENTIAL_BASIC => r.vec(LEAF)?,
        CREDENTIAL_X509 => {
            let certificates = r.vec(LEAF)?;
            let mut c = Reader::new(certificates);
            while c.remaining() > 0 {
                c.vec("leaf node: certificate")?;
            }
            certificates
        }
        _ => return Err(Error::Unsupported("mls credential type")),
    };
    // Capabilities: versions, cipher_suites, extensions, proposals,
    // credentials (all uint16 lists).
    for _ in 0..5 {
        read_fixed_list(r, 2, "leaf node: capabilities")?;
    }
    let leaf_node_source = r.u8(LEAF)?;
    match leaf_node_source {
        SOURCE_KEY_PACKAGE => {
            r.u64(LEAF)?; // not_before
            r.u64(LEAF)?; // not_after
        }
        SOURCE_UPDATE => {}
        SOURCE_COMMIT => {
            r.vec(LEAF)?; // parent_hash
        }
        _ => return Err(Error::Malformed("leaf node: unknown source")),
    }
    read_extensions(r.vec(LEAF)?)?;
    let signature = r.vec(LEAF)?;
    Ok(LeafNodeIn {
        encryption_key: encryption_key.to_vec(),
        signature_key: signature_key.to_vec(),
        raw: consumed(start, r)?.to_vec(),
        credential_type,
        credential: credential.to_vec(),
        leaf_node_source,
        signature: signature.to_vec(),
    })
}

fn read_parent_node<'a>(r: &mut Reader<'a>) -> Res<&'a [u8]> {
    let start = r.rest();
    r.vec(PARENT)?; // encryption_key
    r.vec(PARENT)?; // parent_hash
    read_fixed_list(r, 4, "parent node: unmerged leaves")?;
    consumed(start, r)
}

/// Builds a signed `GroupInfo` for a demo or test group (see the module
/// documentation): one `LeafNode` per entry of `leaves` at leaf `i` (node
/// `2i`), blank parent nodes, no blank nodes at the end.
///
/// Each `LeafNode` has a deterministic encryption key derived from the
/// identity (32 bytes for X25519 suites, an uncompressed P-256 point for
/// suite 2; not a key anyone holds), the public signature key, a `basic`
/// credential with the identity, capabilities listing version `mls10`,
/// the suite and the `basic` credential type, source `key_package` with
/// lifetime `(0, u64::MAX)`, no extensions, and a `LeafNodeTBS` signature.
/// The GroupInfo carries exactly one extension, `ratchet_tree`, and is
/// signed by leaf `signer`.
#[derive(Clone, Debug)]
pub struct GroupInfoBuilder<'a> {
    /// The cipher suite (must be the GroupContext's; signatures must be
    /// implemented: suites 1 to 3).
    pub suite: MlsSuite,
    /// The GroupContext, copied into the GroupInfo as is (its extensions
    /// must be a well-formed extension list).
    pub group_context: &'a GroupContext,
    /// One `(signature private key, identity)` per leaf, in leaf order.
    pub leaves: &'a [(Vec<u8>, Vec<u8>)],
    /// `confirmation_tag`.
    pub confirmation_tag: Vec<u8>,
    /// The leaf index of the signer (an index into `leaves`).
    pub signer: u32,
}

impl GroupInfoBuilder<'_> {
    /// The ratchet tree [`GroupInfoBuilder::build`] puts into the GroupInfo
    /// (see [`build_ratchet_tree`]); its [`tree_hash`] is what the
    /// GroupContext's `tree_hash` must be for the GroupInfo to pass
    /// [`GroupInfoIn::tree_hash_matches`].
    ///
    /// # Errors
    ///
    /// As [`build_ratchet_tree`].
    pub fn tree(&self) -> Res<Vec<Option<TreeNode>>> {
        build_ratchet_tree(self.suite, self.leaves)
    }

    /// The complete `MLSMessage` (wire format `mls_group_info`).
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] for no leaves, a signer outside `leaves`, a suite
    /// other than the GroupContext's, GroupContext extensions that do not
    /// decode, or a bad private key; [`Error::Unsupported`] for suites 4
    /// to 7; [`Error::TooLarge`] for oversized fields.
    pub fn build(&self) -> Res<Vec<u8>> {
        let suite = self.suite;
        if self.leaves.is_empty() {
            return Err(Error::Usage("group info builder: no leaves"));
        }
        if u32::try_from(self.leaves.len()).is_err() {
            return Err(Error::Usage("group info builder: too many leaves"));
        }
        if suite.code() != self.group_context.cipher_suite {
            return Err(Error::Usage(
                "group info builder: suite differs from the group context's",
            ));
        }
        if read_extensions(&self.group_context.extensions).is_err() {
            return Err(Error::Usage(
                "group info builder: group context extensions do not decode",
            ));
        }
        let signer_key = usize::try_from(self.signer)
            .ok()
            .and_then(|i| self.leaves.get(i))
            .map(|(sk, _)| sk)
            .ok_or(Error::Usage("group info builder: signer is not a leaf"))?;

        let tree = encode_ratchet_tree(&self.tree()?)?;
        let mut extensions = Vec::with_capacity(tree.len() + 8);
        extensions.extend_from_slice(&EXT_RATCHET_TREE.to_be_bytes());
        put_vec(&mut extensions, &tree)?;

        let mut tbs = self.group_context.encode()?;
        put_vec(&mut tbs, &extensions)?;
        put_vec(&mut tbs, &self.confirmation_tag)?;
        tbs.extend_from_slice(&self.signer.to_be_bytes());
        let signature = suite.sign_with_label(signer_key, "GroupInfoTBS", &tbs)?;

        let mut out = Vec::with_capacity(tbs.len() + signature.len() + 8);
        out.extend_from_slice(&MLS10.to_be_bytes());
        out.extend_from_slice(&WireFormat::GroupInfo.code().to_be_bytes());
        out.extend_from_slice(&tbs);
        put_vec(&mut out, &signature)?;
        Ok(out)
    }
}

/// The ratchet tree of a demo or test group (see [`GroupInfoBuilder`]):
/// one `LeafNode` per `(signature private key, identity)` of `leaves` at
/// leaf `i` (node `2i`), blank parent nodes, no blank nodes at the end.
/// Deterministic: the same leaves give the same tree.
///
/// # Errors
///
/// [`Error::Usage`] for no leaves, too many leaves or a bad private key;
/// [`Error::Unsupported`] for suites 4 to 7; [`Error::TooLarge`] for
/// oversized fields.
pub fn build_ratchet_tree(
    suite: MlsSuite,
    leaves: &[(Vec<u8>, Vec<u8>)],
) -> Res<Vec<Option<TreeNode>>> {
    if leaves.is_empty() {
        return Err(Error::Usage("group info builder: no leaves"));
    }
    if u32::try_from(leaves.len()).is_err() {
        return Err(Error::Usage("group info builder: too many leaves"));
    }
    let mut tree = Vec::with_capacity(2 * leaves.len());
    for (i, (private_key, identity)) in leaves.iter().enumerate() {
        if i > 0 {
            tree.push(None); // blank parent node
        }
        let raw = build_leaf_node(suite, private_key, identity)?;
        tree.push(Some(TreeNode::Leaf(LeafNodeIn::decode(&raw)?)));
    }
    Ok(tree)
}

/// The `extension_data` of a `ratchet_tree` extension holding `tree` (the
/// inverse of [`decode_ratchet_tree`]).
fn encode_ratchet_tree(tree: &[Option<TreeNode>]) -> Res<Vec<u8>> {
    let mut nodes = Vec::new();
    for entry in tree {
        match entry {
            None => nodes.push(0),
            Some(TreeNode::Leaf(leaf)) => {
                nodes.extend_from_slice(&[1, NODE_TYPE_LEAF]);
                nodes.extend_from_slice(&leaf.raw);
            }
            Some(TreeNode::Parent(raw)) => {
                nodes.extend_from_slice(&[1, NODE_TYPE_PARENT]);
                nodes.extend_from_slice(raw);
            }
        }
    }
    let mut out = Vec::with_capacity(nodes.len() + 4);
    put_vec(&mut out, &nodes)?;
    Ok(out)
}

/// A deterministic HPKE public key of the suite's KEM, derived from the
/// identity.
fn demo_encryption_key(suite: MlsSuite, identity: &[u8]) -> Res<Vec<u8>> {
    let mut input = b"mimi-onion group_info demo encryption_key".to_vec();
    put_vec(&mut input, identity)?;
    let digest = suite.hash(&input);
    let seed = digest
        .get(..32)
        .ok_or(Error::Unsupported("mls cipher suite"))?;
    match suite.code() {
        // DHKEM(X25519): any 32 bytes are a public key.
        1 | 3 => Ok(seed.to_vec()),
        // DHKEM(P-256): a real point, the public key of scalar `seed`.
        2 => suite.signature_public_key(seed),
        _ => Err(Error::Unsupported("mls cipher suite")),
    }
}

fn build_leaf_node(suite: MlsSuite, private_key: &[u8], identity: &[u8]) -> Res<Vec<u8>> {
    let mut out = Vec::with_capacity(identity.len() + 256);
    put_vec(&mut out, &demo_encryption_key(suite, identity)?)?;
    put_vec(&mut out, &suite.signature_public_key(private_key)?)?;
    out.extend_from_slice(&CREDENTIAL_BASIC.to_be_bytes());
    put_vec(&mut out, identity)?;
    // Capabilities.
    put_vec(&mut out, &MLS10.to_be_bytes())?; // versions
    put_vec(&mut out, &suite.code().to_be_bytes())?; // cipher_suites
    put_vec(&mut out, &[])?; // extensions
    put_vec(&mut out, &[])?; // proposals
    put_vec(&mut out, &CREDENTIAL_BASIC.to_be_bytes())?; // credentials
    out.push(SOURCE_KEY_PACKAGE);
    out.extend_from_slice(&0u64.to_be_bytes()); // not_before
    out.extend_from_slice(&u64::MAX.to_be_bytes()); // not_after
    put_vec(&mut out, &[])?; // extensions
                             // LeafNodeTBS for the key_package source: the content fields only.
    let signature = suite.sign_with_label(private_key, "LeafNodeTBS", &out)?;
    put_vec(&mut out, &signature)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mls::suite::tests::{entries, hex, suite_of};

    const MESSAGES: &str = include_str!("../../test-vectors/mls/messages-excerpt.json");
    const MESSAGE_PROTECTION: &str = include_str!("../../test-vectors/mls/message-protection.json");

    fn suite(code: u16) -> MlsSuite {
        MlsSuite::from_code(code).unwrap()
    }

    /// `(suite, [first key from message-protection.json, a fixed key])`
    /// for suites 1 to 3.
    fn suites_and_keys() -> Vec<(MlsSuite, [Vec<u8>; 2])> {
        entries(MESSAGE_PROTECTION)
            .iter()
            .map(|e| (suite_of(e), hex(e, "signature_priv")))
            .filter(|(s, _)| s.signature_scheme().is_supported())
            .map(|(s, k)| (s, [k, vec![0x42; 32]]))
            .collect()
    }

    fn context(suite: MlsSuite) -> GroupContext {
        let mut gc = GroupContext::new(suite, b"demo room", 7, &[1; 32], &[2; 32]);
        // One private-use extension standing in for the hub's component.
        gc.extensions = vec![0x8a, 0x01, 3, b'h', b'u', b'b'];
        gc
    }

    fn build(suite: MlsSuite, keys: &[Vec<u8>; 2], signer: u32) -> Vec<u8> {
        let leaves = [
            (keys[0].clone(), b"alice@a.example".to_vec()),
            (keys[1].clone(), b"bob@b.example".to_vec()),
        ];
        GroupInfoBuilder {
            suite,
            group_context: &context(suite),
            leaves: &leaves,
            confirmation_tag: vec![9; suite.nh()],
            signer,
        }
        .build()
        .unwrap()
    }

    fn rejected(suite: MlsSuite, bytes: &[u8]) -> bool {
        GroupInfoIn::parse(bytes)
            .and_then(|gi| gi.verify(suite))
            .is_err()
    }

    #[test]
    fn official_group_info() {
        let e = &entries(MESSAGES)[0];
        let gi = GroupInfoIn::parse(&hex(e, "mls_group_info")).unwrap();
        let s = gi.suite().unwrap();
        assert_eq!(s.code(), 1);
        assert_eq!(gi.group_context.version, MLS10);
        assert_eq!(gi.group_context.epoch, 0);
        assert_eq!(
            gi.extension(EXT_RATCHET_TREE),
            Some(&hex(e, "ratchet_tree")[..])
        );
        // required_capabilities with three empty lists.
        assert_eq!(gi.group_context_extension(0x0003), Some(&[0u8, 0, 0][..]));
        assert_eq!(gi.group_context_extension(EXT_RATCHET_TREE), None);
        assert_eq!(
            GroupContext::decode(&gi.group_context_bytes)
                .unwrap()
                .encode()
                .unwrap(),
            gi.group_context_bytes
        );

        let tree = gi.ratchet_tree().unwrap();
        assert!(tree.len() % 2 == 1);
        let keys = gi.leaf_signature_keys().unwrap();
        assert!(!keys.is_empty());
        assert!(keys.contains_key(&gi.signer));
        gi.verify(s).unwrap();
        // The same signature scheme under another suite number is refused.
        assert!(matches!(gi.verify(suite(3)), Err(Error::Usage(_))));

        // The official leaf nodes decode standalone and carry valid
        // LeafNodeTBS signatures.
        for (node, entry) in tree.iter().enumerate() {
            if let Some(TreeNode::Leaf(leaf)) = entry {
                assert_eq!(&LeafNodeIn::decode(&leaf.raw).unwrap(), leaf);
                assert_eq!(leaf.credential_type, CREDENTIAL_BASIC);
                let index = u32::try_from(node / 2).unwrap();
                leaf.verify_signature(s, &gi.group_context.group_id, index)
                    .unwrap();
            }
        }

        // A bad signature is the crypto error.
        let mut bad = gi.clone();
        bad.signature[0] ^= 1;
        assert_eq!(bad.verify(s), Err(Error::Crypto));
        let mut bad = gi.clone();
        bad.tbs[10] ^= 1;
        assert_eq!(bad.verify(s), Err(Error::Crypto));
    }

    #[test]
    fn official_tree_hash_matches() {
        let e = &entries(MESSAGES)[0];
        let gi = GroupInfoIn::parse(&hex(e, "mls_group_info")).unwrap();
        let s = gi.suite().unwrap();
        assert_eq!(gi.group_context.tree_hash.len(), s.nh());
        let tree = decode_ratchet_tree(&hex(e, "ratchet_tree")).unwrap();
        assert_eq!(tree_hash(s, &tree).unwrap(), gi.group_context.tree_hash);
        assert!(gi.tree_hash_matches().unwrap());
        assert_eq!(encode_ratchet_tree(&tree).unwrap(), hex(e, "ratchet_tree"));

        // Another tree hash in the GroupContext does not match.
        let mut bad = gi.clone();
        bad.group_context.tree_hash[0] ^= 1;
        assert!(!bad.tree_hash_matches().unwrap());
        // Nor does the tree under another hash function.
        assert_ne!(
            tree_hash(suite(7), &tree).unwrap(),
            gi.group_context.tree_hash
        );
    }

    /// The tree hash by the formulas of RFC 9420 7.8, spelled out for
    /// small trees.
    #[test]
    fn tree_hash_by_hand() {
        let (s, keys) = suites_and_keys().remove(0);
        let leaves = [
            (keys[0].clone(), b"a".to_vec()),
            (keys[1].clone(), b"b".to_vec()),
            (keys[0].clone(), b"c".to_vec()),
        ];
        let tree = build_ratchet_tree(s, &leaves).unwrap();
        assert_eq!(tree.len(), 5);
        let raw = |i: usize| match &tree[i] {
            Some(TreeNode::Leaf(l)) => l.raw.clone(),
            _ => unreachable!(),
        };
        let leaf = |index: u32, node: Option<Vec<u8>>| {
            let mut input = vec![1];
            input.extend_from_slice(&index.to_be_bytes());
            match node {
                None => input.push(0),
                Some(raw) => {
                    input.push(1);
                    input.extend_from_slice(&raw);
                }
            }
            s.hash(&input)
        };
        let parent = |node: Option<&[u8]>, l: &[u8], r: &[u8]| {
            let mut input = vec![2];
            match node {
                None => input.push(0),
                Some(raw) => {
                    input.push(1);
                    input.extend_from_slice(raw);
                }
            }
            put_vec(&mut input, l).unwrap();
            put_vec(&mut input, r).unwrap();
            s.hash(&input)
        };

        // One leaf: the root is the leaf.
        assert_eq!(tree_hash(s, &tree[..1]).unwrap(), leaf(0, Some(raw(0))));
        // Two leaves: root 1.
        let h01 = parent(None, &leaf(0, Some(raw(0))), &leaf(1, Some(raw(2))));
        assert_eq!(tree_hash(s, &tree[..3]).unwrap(), h01);
        // Three leaves: a tree of four leaves, root 3, node 5 over leaf 2
        // and the blank leaf 3 (node 6, beyond the list).
        let h23 = parent(None, &leaf(2, Some(raw(4))), &leaf(3, None));
        assert_eq!(tree_hash(s, &tree).unwrap(), parent(None, &h01, &h23));
        // A parent node's encoding enters as is: at the root (node 3), and
        // at node 5 (past the end of the trimmed list, so appended here).
        let p = vec![1, 7, 0, 4, 0, 0, 0, 1];
        let mut with_parent = tree.clone();
        with_parent[3] = Some(TreeNode::Parent(p.clone()));
        assert_eq!(
            tree_hash(s, &with_parent).unwrap(),
            parent(Some(&p), &h01, &h23)
        );
        let mut with_parent = tree.clone();
        with_parent.push(Some(TreeNode::Parent(p.clone())));
        let h23p = parent(Some(&p), &leaf(2, Some(raw(4))), &leaf(3, None));
        assert_eq!(
            tree_hash(s, &with_parent).unwrap(),
            parent(None, &h01, &h23p)
        );
        // A blank leaf between members.
        let mut gap = tree.clone();
        gap[2] = None;
        let h01g = parent(None, &leaf(0, Some(raw(0))), &leaf(1, None));
        assert_eq!(tree_hash(s, &gap).unwrap(), parent(None, &h01g, &h23));

        // Misplaced nodes and the empty tree are malformed.
        let mut misplaced = tree.clone();
        misplaced[1] = tree[0].clone();
        assert!(matches!(tree_hash(s, &misplaced), Err(Error::Malformed(_))));
        let mut misplaced = tree.clone();
        misplaced[2] = Some(TreeNode::Parent(p));
        assert!(matches!(tree_hash(s, &misplaced), Err(Error::Malformed(_))));
        assert!(matches!(tree_hash(s, &[]), Err(Error::Malformed(_))));
    }

    #[test]
    fn built_tree_hash_round_trips() {
        for (s, keys) in suites_and_keys() {
            let leaves = [
                (keys[0].clone(), b"alice@a.example".to_vec()),
                (keys[1].clone(), b"bob@b.example".to_vec()),
            ];
            let gc = context(s);
            let builder = GroupInfoBuilder {
                suite: s,
                group_context: &gc,
                leaves: &leaves,
                confirmation_tag: vec![9; s.nh()],
                signer: 1,
            };
            let tree = builder.tree().unwrap();
            assert_eq!(tree, build_ratchet_tree(s, &leaves).unwrap());
            let th = tree_hash(s, &tree).unwrap();
            assert_eq!(th.len(), s.nh());

            // The fixed tree hash of `context` does not match.
            let gi = GroupInfoIn::parse(&builder.build().unwrap()).unwrap();
            assert_eq!(gi.ratchet_tree().unwrap(), tree);
            assert!(!gi.tree_hash_matches().unwrap());

            // With the tree's hash in the GroupContext, it does.
            let mut matching = gc.clone();
            matching.tree_hash = th.clone();
            let builder = GroupInfoBuilder {
                group_context: &matching,
                ..builder
            };
            let gi = GroupInfoIn::parse(&builder.build().unwrap()).unwrap();
            gi.verify(s).unwrap();
            assert_eq!(gi.ratchet_tree().unwrap(), tree);
            assert_eq!(tree_hash(s, &gi.ratchet_tree().unwrap()).unwrap(), th);
            assert!(gi.tree_hash_matches().unwrap());
            // Deterministic.
            assert_eq!(tree_hash(s, &builder.tree().unwrap()).unwrap(), th);
        }
    }

    #[test]
    fn modified_tree_changes_the_hash() {
        let (s, keys) = suites_and_keys().remove(0);
        let leaves = [
            (keys[0].clone(), b"alice@a.example".to_vec()),
            (keys[1].clone(), b"bob@b.example".to_vec()),
        ];
        let tree = build_ratchet_tree(s, &leaves).unwrap();
        let th = tree_hash(s, &tree).unwrap();

        // Every byte of either leaf's encoding counts.
        for node in [0, 2] {
            let Some(TreeNode::Leaf(leaf)) = &tree[node] else {
                unreachable!()
            };
            for i in 0..leaf.raw.len() {
                let mut changed = leaf.clone();
                changed.raw[i] ^= 1;
                let mut t = tree.clone();
                t[node] = Some(TreeNode::Leaf(changed));
                assert_ne!(tree_hash(s, &t).unwrap(), th, "node {node} byte {i}");
            }
        }
        // Another identity, swapped leaves, a blank leaf, a non-blank
        // parent, a missing leaf.
        let other = build_ratchet_tree(
            s,
            &[
                leaves[0].clone(),
                (keys[1].clone(), b"eve@b.example".to_vec()),
            ],
        )
        .unwrap();
        assert_ne!(tree_hash(s, &other).unwrap(), th);
        let swapped = vec![tree[2].clone(), None, tree[0].clone()];
        assert_ne!(tree_hash(s, &swapped).unwrap(), th);
        let mut blank = tree.clone();
        blank[0] = None;
        assert_ne!(tree_hash(s, &blank).unwrap(), th);
        let mut parent = tree.clone();
        parent[1] = Some(TreeNode::Parent(vec![0, 0, 0]));
        assert_ne!(tree_hash(s, &parent).unwrap(), th);
        assert_ne!(tree_hash(s, &tree[..1]).unwrap(), th);

        // A signed GroupInfo over a changed tree no longer matches its
        // GroupContext's tree hash.
        let mut gc = context(s);
        gc.tree_hash = tree_hash(s, &other).unwrap();
        let gi = GroupInfoIn::parse(
            &GroupInfoBuilder {
                suite: s,
                group_context: &gc,
                leaves: &leaves,
                confirmation_tag: vec![9; s.nh()],
                signer: 0,
            }
            .build()
            .unwrap(),
        )
        .unwrap();
        gi.verify(s).unwrap();
        assert!(!gi.tree_hash_matches().unwrap());
    }

    #[test]
    fn build_parse_verify_round_trip() {
        let sets = suites_and_keys();
        assert_eq!(
            sets.iter().map(|(s, _)| s.code()).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        for (s, keys) in &sets {
            let public: Vec<Vec<u8>> = keys
                .iter()
                .map(|k| s.signature_public_key(k).unwrap())
                .collect();
            for signer in [0, 1] {
                let bytes = build(*s, keys, signer);
                let gi = GroupInfoIn::parse(&bytes).unwrap();
                gi.verify(*s).unwrap();
                assert_eq!(gi.signer, signer);
                assert_eq!(gi.group_context, context(*s));
                assert_eq!(gi.group_context_extension(0x8a01), Some(&b"hub"[..]));
                assert_eq!(gi.confirmation_tag, vec![9; s.nh()]);
                assert_eq!(gi.extensions.len(), 1);

                let tree = gi.ratchet_tree().unwrap();
                assert_eq!(tree.len(), 3);
                assert!(tree[1].is_none());
                let expected: BTreeMap<u32, Vec<u8>> =
                    [(0, public[0].clone()), (1, public[1].clone())].into();
                assert_eq!(gi.leaf_signature_keys().unwrap(), expected);

                // Deterministic: building twice gives the same bytes.
                assert_eq!(build(*s, keys, signer), bytes);
            }
        }
    }

    #[test]
    fn built_leaf_nodes_are_signed() {
        for (s, keys) in suites_and_keys() {
            let gi = GroupInfoIn::parse(&build(s, &keys, 0)).unwrap();
            let tree = gi.ratchet_tree().unwrap();
            let leaves: Vec<&LeafNodeIn> = tree
                .iter()
                .filter_map(|n| match n {
                    Some(TreeNode::Leaf(l)) => Some(l),
                    _ => None,
                })
                .collect();
            assert_eq!(leaves.len(), 2);
            for (i, leaf) in leaves.iter().enumerate() {
                assert_eq!(
                    leaf.signature_key,
                    s.signature_public_key(&keys[i]).unwrap()
                );
                assert_eq!(leaf.credential_type, CREDENTIAL_BASIC);
                assert_eq!(leaf.leaf_node_source, SOURCE_KEY_PACKAGE);
                let expected_len = if s.code() == 2 { 65 } else { 32 };
                assert_eq!(leaf.encryption_key.len(), expected_len);
                if s.code() == 2 {
                    assert!(p256::PublicKey::from_sec1_bytes(&leaf.encryption_key).is_ok());
                }
                // LeafNodeTBS for key_package: the content fields only.
                let sig_len = varint_len(leaf.signature.len()) + leaf.signature.len();
                let tbs = &leaf.raw[..leaf.raw.len() - sig_len];
                s.verify_with_label(&leaf.signature_key, "LeafNodeTBS", tbs, &leaf.signature)
                    .unwrap();
                assert_eq!(leaf.tbs(b"ignored", 99).unwrap(), tbs);
                leaf.verify_signature(s, b"", 0).unwrap();
                let mut bad = (*leaf).clone();
                bad.signature_key = s.signature_public_key(&keys[1 - i]).unwrap();
                assert_eq!(bad.verify_signature(s, b"", 0), Err(Error::Crypto));
            }
            assert_eq!(leaves[0].credential, b"alice@a.example");
            assert_eq!(leaves[1].credential, b"bob@b.example");
            assert_ne!(leaves[0].encryption_key, leaves[1].encryption_key);
        }
    }

    #[test]
    fn every_bit_flip_and_prefix_is_rejected() {
        for (s, keys) in suites_and_keys() {
            let bytes = build(s, &keys, 1);
            assert!(!rejected(s, &bytes));
            for i in 0..bytes.len() {
                for bit in 0..8 {
                    let mut bad = bytes.clone();
                    bad[i] ^= 1 << bit;
                    assert!(rejected(s, &bad), "suite {} byte {i} bit {bit}", s.code());
                }
            }
            for cut in 0..bytes.len() {
                assert!(
                    GroupInfoIn::parse(&bytes[..cut]).is_err(),
                    "suite {} prefix {cut}",
                    s.code()
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(GroupInfoIn::parse(&longer).is_err());
        }
    }

    #[test]
    fn official_group_info_bit_flips_are_rejected() {
        let bytes = hex(&entries(MESSAGES)[0], "mls_group_info");
        let s = suite(1);
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(rejected(s, &bad), "byte {i} bit {bit}");
            }
        }
        for cut in 0..bytes.len() {
            assert!(GroupInfoIn::parse(&bytes[..cut]).is_err(), "prefix {cut}");
        }
    }

    #[test]
    fn builder_usage_errors() {
        let (s, keys) = suites_and_keys().remove(0);
        let gc = context(s);
        let leaves = [(keys[0].clone(), b"a".to_vec())];
        let ok = GroupInfoBuilder {
            suite: s,
            group_context: &gc,
            leaves: &leaves,
            confirmation_tag: vec![0; 32],
            signer: 0,
        };
        let one = GroupInfoIn::parse(&ok.build().unwrap()).unwrap();
        one.verify(s).unwrap();
        assert_eq!(one.ratchet_tree().unwrap().len(), 1);

        let mut b = ok.clone();
        b.signer = 1;
        assert!(matches!(b.build(), Err(Error::Usage(_))));
        let mut b = ok.clone();
        b.leaves = &[];
        assert!(matches!(b.build(), Err(Error::Usage(_))));
        let mut b = ok.clone();
        b.suite = suite(3);
        assert!(matches!(b.build(), Err(Error::Usage(_))));
        let mut bad_gc = gc.clone();
        bad_gc.extensions = vec![0, 1, 5];
        let mut b = ok.clone();
        b.group_context = &bad_gc;
        assert!(matches!(b.build(), Err(Error::Usage(_))));
        let bad_leaves = [(vec![0; 31], b"a".to_vec())];
        let mut b = ok.clone();
        b.leaves = &bad_leaves;
        assert!(matches!(b.build(), Err(Error::Usage(_))));
        let gc4 = GroupContext::new(suite(4), b"g", 0, &[], &[]);
        let mut b = ok;
        b.suite = suite(4);
        b.group_context = &gc4;
        assert!(matches!(b.build(), Err(Error::Unsupported(_))));
    }

    /// Re-signs `tbs` as a GroupInfo by `key` (to test checks that come
    /// after the signature's framing).
    fn signed(s: MlsSuite, key: &[u8], tbs: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 1, 0, 4];
        out.extend_from_slice(tbs);
        let sig = s.sign_with_label(key, "GroupInfoTBS", tbs).unwrap();
        put_vec(&mut out, &sig).unwrap();
        out
    }

    fn tbs_with(s: MlsSuite, extensions: &[u8], signer: u32) -> Vec<u8> {
        let mut tbs = context(s).encode().unwrap();
        put_vec(&mut tbs, extensions).unwrap();
        put_vec(&mut tbs, &[9; 32]).unwrap();
        tbs.extend_from_slice(&signer.to_be_bytes());
        tbs
    }

    #[test]
    fn structural_rejections() {
        let (s, keys) = suites_and_keys().remove(0);
        let good = GroupInfoIn::parse(&build(s, &keys, 0)).unwrap();
        let tree_data = good.extension(EXT_RATCHET_TREE).unwrap().to_vec();

        // No ratchet_tree extension: parses, does not verify.
        let gi = GroupInfoIn::parse(&signed(s, &keys[0], &tbs_with(s, &[], 0))).unwrap();
        assert!(matches!(gi.verify(s), Err(Error::Malformed(_))));
        assert!(gi.leaf_signature_keys().is_err());

        // Signer beyond the tree, or on a blank leaf.
        let mut ext = EXT_RATCHET_TREE.to_be_bytes().to_vec();
        put_vec(&mut ext, &tree_data).unwrap();
        for signer in [2, u32::MAX] {
            let gi = GroupInfoIn::parse(&signed(s, &keys[0], &tbs_with(s, &ext, signer))).unwrap();
            assert!(matches!(gi.verify(s), Err(Error::Malformed(_))));
        }

        // A duplicate GroupInfo extension type.
        let mut twice = ext.clone();
        twice.extend_from_slice(&ext);
        assert!(GroupInfoIn::parse(&signed(s, &keys[0], &tbs_with(s, &twice, 0))).is_err());

        // Ratchet tree shapes.
        let leaf = match &good.ratchet_tree().unwrap()[0] {
            Some(TreeNode::Leaf(l)) => l.raw.clone(),
            _ => unreachable!(),
        };
        let tree = |entries: &[&[u8]]| {
            let mut nodes = Vec::new();
            for e in entries {
                nodes.extend_from_slice(e);
            }
            let mut data = Vec::new();
            put_vec(&mut data, &nodes).unwrap();
            data
        };
        let l = [&[1u8, 1][..], &leaf].concat();
        let parent = [1u8, 2, 1, 7, 0, 4, 0, 0, 0, 1];
        let blank = [0u8];
        assert_eq!(decode_ratchet_tree(&tree(&[&l])).unwrap().len(), 1);
        let three = decode_ratchet_tree(&tree(&[&l, &parent, &l])).unwrap();
        assert_eq!(three[1], Some(TreeNode::Parent(parent[2..].to_vec())));
        assert_eq!(
            decode_ratchet_tree(&tree(&[&l, &blank, &blank, &blank, &l]))
                .unwrap()
                .len(),
            5
        );
        for bad in [
            tree(&[]),
            tree(&[&blank]),
            tree(&[&l, &blank]),
            tree(&[&l, &blank, &blank]),
            tree(&[&l, &parent]),
            tree(&[&l, &l]),
            tree(&[&parent]),
            tree(&[&[2]]),
            tree(&[&[1, 3]]),
            tree(&[&l, &[1, 2, 1, 7, 0, 3, 0, 0, 0], &l]),
        ] {
            assert!(
                matches!(decode_ratchet_tree(&bad), Err(Error::Malformed(_))),
                "{bad:02x?}"
            );
        }
        let mut trailing = tree(&[&l]);
        trailing.push(0);
        assert!(decode_ratchet_tree(&trailing).is_err());

        // An unknown credential type is unsupported.
        let mut other = leaf.clone();
        // The leaf's fields: encryption_key<V>, signature_key<V> (both with
        // one-byte prefixes here), then the credential type.
        let enc_len = usize::from(other[0]);
        let sig_len = usize::from(other[1 + enc_len]);
        let cred_at = 2 + enc_len + sig_len;
        assert_eq!(&other[cred_at..cred_at + 2], &[0, 1]);
        other[cred_at + 1] = 9;
        assert!(matches!(
            LeafNodeIn::decode(&other),
            Err(Error::Unsupported(_))
        ));
        // An x509 credential is walked: one certificate of 2 bytes.
        let ident_len = usize::from(leaf[cred_at + 2]);
        let mut x509 = leaf[..cred_at].to_vec();
        x509.extend_from_slice(&[0, 2, 3, 2, 0xaa, 0xbb]);
        x509.extend_from_slice(&leaf[cred_at + 3 + ident_len..]);
        let parsed = LeafNodeIn::decode(&x509).unwrap();
        assert_eq!(parsed.credential_type, CREDENTIAL_X509);
        assert_eq!(parsed.credential, [2, 0xaa, 0xbb]);
        x509[cred_at + 3] = 3; // certificate length beyond its vector
        assert!(LeafNodeIn::decode(&x509).is_err());
    }
}
