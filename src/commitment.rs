//! Key commitment (spec section "Key Commitment", HUB-9).
//!
//! ```text
//! struct {
//!   opaque label<V>;             /* "mimi-onion v1 key commitment" */
//!   CipherSuite cipher_suite;
//!   opaque group_id<V>;
//!   uint64 epoch;
//!   uint32 leaf_index;
//!   opaque key<V>;
//!   opaque final_nonce<V>;
//! } KeyCommitmentInput;
//! c = Hash(KeyCommitmentInput)     /* the MLS suite's hash, Nh bytes */
//! ```
//!
//! `c` travels as the SafeAAD item [`KEY_COMMITMENT_COMPONENT`] in the
//! `authenticated_data` of every PrivateMessage proposal and commit of a
//! room with private handshakes (draft-ietf-mls-extensions); an
//! application PrivateMessage may carry it and need not (KCM-1):
//!
//! ```text
//! struct { ComponentID component_id; opaque aad_item_data<V>; } SafeAADItem;
//! struct { SafeAADItem aad_items<V>; } SafeAAD;
//! ```
//!
//! When `authenticated_data` is not empty it is exactly one SafeAAD
//! structure: no byte may follow it (KCM-2). The hub's policy engine and
//! the members parse it with the one strict parser here,
//! [`commitment_item`] (an item is required) or [`optional_commitment_item`]
//! (application messages).

use crate::codec::{put_vec, Reader};
use crate::error::{Error, Res};
use crate::labels;
use crate::mls::suite::MlsSuite;
use crate::secret::ct_eq;

/// Component id of the key-commitment SafeAAD item (private use).
pub const KEY_COMMITMENT_COMPONENT: u16 = 0x8A02;
/// Component id of the SafeAAD component in the GroupContext's
/// `app_data_dictionary`, whose data lists the required SafeAAD items.
pub const SAFE_AAD_COMPONENT: u16 = 0x0002;

/// Inputs of the commitment.
#[derive(Debug, Clone, Copy)]
pub struct CommitmentInput<'a> {
    /// The group's MLS cipher suite.
    pub suite: MlsSuite,
    /// The group.
    pub group_id: &'a [u8],
    /// The epoch.
    pub epoch: u64,
    /// The sender's leaf index (not node index).
    pub leaf_index: u32,
    /// The AEAD key of the message.
    pub key: &'a [u8],
    /// The final AEAD nonce (ratchet nonce XOR reuse_guard).
    pub final_nonce: &'a [u8],
}

impl CommitmentInput<'_> {
    /// The serialized `KeyCommitmentInput`.
    pub fn encode(&self) -> Res<Vec<u8>> {
        let mut out = Vec::with_capacity(64 + self.group_id.len());
        put_vec(&mut out, labels::KEY_COMMITMENT)?;
        out.extend_from_slice(&self.suite.code().to_be_bytes());
        put_vec(&mut out, self.group_id)?;
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.leaf_index.to_be_bytes());
        put_vec(&mut out, self.key)?;
        put_vec(&mut out, self.final_nonce)?;
        Ok(out)
    }

    /// `c`: the suite's hash of the input, full length.
    pub fn commitment(&self) -> Res<Vec<u8>> {
        Ok(self.suite.hash(&self.encode()?))
    }

    /// Recomputes `c` and compares it in constant time with the item in
    /// `authenticated_data` (strictly parsed). Any failure is
    /// [`Error::Crypto`].
    pub fn verify(&self, authenticated_data: &[u8]) -> Res<()> {
        let item =
            commitment_item(authenticated_data, self.suite.nh()).map_err(|_| Error::Crypto)?;
        self.compare(item)
    }

    /// KCM-1, for an application PrivateMessage: with no commitment item
    /// (empty `authenticated_data`, or a SafeAAD without one) there is
    /// nothing to check; an item that is present is checked as by
    /// [`Self::verify`]. A malformed SafeAAD, or one with bytes after it, is
    /// refused either way. Any failure is [`Error::Crypto`].
    pub fn verify_optional(&self, authenticated_data: &[u8]) -> Res<()> {
        match optional_commitment_item(authenticated_data, self.suite.nh()) {
            Ok(None) => Ok(()),
            Ok(Some(item)) => self.compare(item),
            Err(_) => Err(Error::Crypto),
        }
    }

    fn compare(&self, item: &[u8]) -> Res<()> {
        if ct_eq(item, &self.commitment()?) {
            Ok(())
        } else {
            Err(Error::Crypto)
        }
    }
}

/// One SafeAAD item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SafeAadItem<'a> {
    /// Its component id.
    pub component_id: u16,
    /// Its data.
    pub data: &'a [u8],
}

/// Parses the SafeAAD structure at the start of `authenticated_data`:
/// items with strictly increasing component ids. Returns the items and the
/// bytes after the structure, which this protocol's rules refuse (KCM-2):
/// [`commitment_item`] and [`optional_commitment_item`] require them
/// empty.
pub fn parse_safe_aad(authenticated_data: &[u8]) -> Res<(Vec<SafeAadItem<'_>>, &[u8])> {
    let mut outer = Reader::new(authenticated_data);
    let items_bytes = outer.vec("safe aad: items")?;
    let mut r = Reader::new(items_bytes);
    let mut items: Vec<SafeAadItem<'_>> = Vec::new();
    while r.remaining() > 0 {
        let component_id = r.u16("safe aad: component id")?;
        let data = r.vec("safe aad: item data")?;
        if items.last().is_some_and(|p| p.component_id >= component_id) {
            return Err(Error::Malformed("safe aad: ids not strictly increasing"));
        }
        items.push(SafeAadItem { component_id, data });
    }
    Ok((items, outer.rest()))
}

/// The strict parser shared by hub and members (KCM-2), for the messages
/// that must carry `c`: the SafeAAD decodes, nothing follows it, ids
/// strictly increase, exactly one item has [`KEY_COMMITMENT_COMPONENT`],
/// and it is exactly `nh` bytes. Returns that item's data.
pub fn commitment_item(authenticated_data: &[u8], nh: usize) -> Res<&[u8]> {
    optional_commitment_item(authenticated_data, nh)?
        .ok_or(Error::Malformed("safe aad: no key commitment"))
}

/// The same strict parser for a message that may go without `c` (an
/// application PrivateMessage, KCM-1): empty `authenticated_data` carries
/// no item; otherwise the SafeAAD decodes with nothing after it, ids
/// strictly increase, at most one item has [`KEY_COMMITMENT_COMPONENT`],
/// and that one is exactly `nh` bytes. Returns the item's data, if any.
pub fn optional_commitment_item(authenticated_data: &[u8], nh: usize) -> Res<Option<&[u8]>> {
    if authenticated_data.is_empty() {
        return Ok(None);
    }
    let (items, rest) = parse_safe_aad(authenticated_data)?;
    if !rest.is_empty() {
        return Err(Error::Malformed("safe aad: bytes after the structure"));
    }
    let mut ours = items
        .iter()
        .filter(|i| i.component_id == KEY_COMMITMENT_COMPONENT);
    let Some(item) = ours.next() else {
        return Ok(None);
    };
    if ours.next().is_some() {
        return Err(Error::Malformed("safe aad: two key commitments"));
    }
    if item.data.len() != nh {
        return Err(Error::Malformed("safe aad: key commitment length"));
    }
    Ok(Some(item.data))
}

/// Builds `authenticated_data`: the SafeAAD structure with `c` and the
/// caller's other items (sorted by id; the commitment is placed in order),
/// and nothing after it (KCM-2).
pub fn build_authenticated_data(c: &[u8], other_items: &[SafeAadItem<'_>]) -> Res<Vec<u8>> {
    if other_items
        .iter()
        .any(|i| i.component_id == KEY_COMMITMENT_COMPONENT)
    {
        return Err(Error::Usage("the key commitment item is added here"));
    }
    let mut items: Vec<SafeAadItem<'_>> = other_items.to_vec();
    items.push(SafeAadItem {
        component_id: KEY_COMMITMENT_COMPONENT,
        data: c,
    });
    encode_safe_aad(&items)
}

/// Encodes a SafeAAD structure of `items`, sorted by component id; two
/// items with one id are refused. With an application message that goes
/// without `c` (KCM-1), this is its `authenticated_data` when it has other
/// items.
pub fn encode_safe_aad(items: &[SafeAadItem<'_>]) -> Res<Vec<u8>> {
    let mut items: Vec<SafeAadItem<'_>> = items.to_vec();
    items.sort_by_key(|i| i.component_id);
    if items
        .windows(2)
        .any(|w| w[0].component_id == w[1].component_id)
    {
        return Err(Error::Usage("duplicate SafeAAD component id"));
    }
    let mut inner = Vec::new();
    for i in &items {
        inner.extend_from_slice(&i.component_id.to_be_bytes());
        put_vec(&mut inner, i.data)?;
    }
    let mut out = Vec::with_capacity(inner.len() + 4);
    put_vec(&mut out, &inner)?;
    Ok(out)
}

/// The `data` of a SafeAAD component requiring the key commitment (and the
/// caller's other ids).
pub fn safe_aad_component_data(other_required: &[u16]) -> Res<Vec<u8>> {
    let mut ids: Vec<u16> = other_required.to_vec();
    ids.push(KEY_COMMITMENT_COMPONENT);
    ids.sort_unstable();
    ids.dedup();
    let inner: Vec<u8> = ids.iter().flat_map(|i| i.to_be_bytes()).collect();
    let mut out = Vec::new();
    put_vec(&mut out, &inner)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(suite: MlsSuite) -> CommitmentInput<'static> {
        CommitmentInput {
            suite,
            group_id: b"group",
            epoch: 7,
            leaf_index: 1,
            key: &[1; 16],
            final_nonce: &[2; 12],
        }
    }

    fn raw_safe_aad(items: &[(u16, &[u8])], rest: &[u8]) -> Vec<u8> {
        let mut inner = Vec::new();
        for (id, data) in items {
            inner.extend_from_slice(&id.to_be_bytes());
            put_vec(&mut inner, data).unwrap();
        }
        let mut out = Vec::new();
        put_vec(&mut out, &inner).unwrap();
        out.extend_from_slice(rest);
        out
    }

    #[test]
    fn commitment_is_full_length_and_binds_every_input() {
        for code in 1..=7u16 {
            let suite = MlsSuite::from_code(code).unwrap();
            let c = input(suite).commitment().unwrap();
            assert_eq!(c.len(), suite.nh());
            let mut other = input(suite);
            other.leaf_index = 2;
            assert_ne!(other.commitment().unwrap(), c);
            let mut other = input(suite);
            other.final_nonce = &[3; 12];
            assert_ne!(other.commitment().unwrap(), c);
            let mut other = input(suite);
            other.epoch = 8;
            assert_ne!(other.commitment().unwrap(), c);
        }
    }

    #[test]
    fn build_and_verify() {
        let suite = MlsSuite::from_code(1).unwrap();
        let c = input(suite).commitment().unwrap();
        let other = [SafeAadItem {
            component_id: 0x0005,
            data: b"x",
        }];
        let ad = build_authenticated_data(&c, &other).unwrap();
        input(suite).verify(&ad).unwrap();
        input(suite).verify_optional(&ad).unwrap();
        let (items, rest) = parse_safe_aad(&ad).unwrap();
        assert_eq!(items.len(), 2);
        assert!(rest.is_empty());
        let mut wrong = input(suite);
        wrong.key = &[9; 16];
        assert_eq!(wrong.verify(&ad), Err(Error::Crypto));
    }

    /// The strict parser: missing, duplicated, out-of-order or wrongly
    /// sized commitment items are rejected.
    #[test]
    fn strict_parser() {
        let c = [5u8; 32];
        let ours = KEY_COMMITMENT_COMPONENT;
        assert!(commitment_item(&raw_safe_aad(&[(ours, &c)], b""), 32).is_ok());
        // KCM-2: nothing may follow the SafeAAD structure.
        assert!(commitment_item(&raw_safe_aad(&[(ours, &c)], b"rest"), 32).is_err());
        assert!(commitment_item(&raw_safe_aad(&[(ours, &c)], &[0]), 32).is_err());
        assert!(commitment_item(&raw_safe_aad(&[], b""), 32).is_err());
        assert!(commitment_item(&raw_safe_aad(&[(ours, &c), (ours, &c)], b""), 32).is_err());
        assert!(commitment_item(&raw_safe_aad(&[(0x9000, b"z"), (ours, &c)], b""), 32).is_err());
        assert!(commitment_item(&raw_safe_aad(&[(ours, &c[..31])], b""), 32).is_err());
        assert!(commitment_item(&raw_safe_aad(&[(ours, &c)], b""), 48).is_err());
        assert!(commitment_item(&[], 32).is_err());
        let good = raw_safe_aad(&[(1, b"a"), (ours, &c)], b"");
        for n in 0..good.len() {
            assert!(commitment_item(&good[..n], 32).is_err());
        }
    }

    /// KCM-1: an application message may go without `c` (empty
    /// `authenticated_data`, or a SafeAAD without the item), but what is
    /// there is parsed as strictly as for a handshake (KCM-2).
    #[test]
    fn kcm1_optional_item_is_parsed_strictly() {
        let suite = MlsSuite::from_code(1).unwrap();
        let c = input(suite).commitment().unwrap();
        let ours = KEY_COMMITMENT_COMPONENT;
        assert_eq!(optional_commitment_item(&[], 32).unwrap(), None);
        assert_eq!(
            optional_commitment_item(&raw_safe_aad(&[], b""), 32).unwrap(),
            None
        );
        assert_eq!(
            optional_commitment_item(&raw_safe_aad(&[(1, b"a")], b""), 32).unwrap(),
            None
        );
        input(suite).verify_optional(&[]).unwrap();
        input(suite)
            .verify_optional(&raw_safe_aad(&[(ours, &c)], b""))
            .unwrap();
        for bad in [
            raw_safe_aad(&[(ours, &[7; 32])], b""),
            raw_safe_aad(&[(ours, &c)], b"x"),
            raw_safe_aad(&[], b"x"),
            raw_safe_aad(&[(ours, &c[..31])], b""),
            raw_safe_aad(&[(ours, &c), (ours, &c)], b""),
            b"not a safe aad".to_vec(),
        ] {
            assert_eq!(input(suite).verify_optional(&bad), Err(Error::Crypto));
        }
    }
}
