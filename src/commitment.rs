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
//! `c` travels as the SafeAAD item [`KEY_COMMITMENT_COMPONENT`] at the start
//! of the `authenticated_data` of every PrivateMessage of a group that uses
//! this protocol (draft-ietf-mls-extensions):
//!
//! ```text
//! struct { ComponentID component_id; opaque aad_item_data<V>; } SafeAADItem;
//! struct { SafeAADItem aad_items<V>; } SafeAAD;
//! ```
//!
//! The hub's policy engine and the members parse it with the one strict
//! parser here, [`commitment_item`].

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
/// bytes after the structure.
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

/// The strict parser shared by hub and members: the SafeAAD decodes, ids
/// strictly increase, exactly one item has [`KEY_COMMITMENT_COMPONENT`],
/// and it is exactly `nh` bytes. Returns that item's data.
pub fn commitment_item(authenticated_data: &[u8], nh: usize) -> Res<&[u8]> {
    let (items, _) = parse_safe_aad(authenticated_data)?;
    let mut ours = items
        .iter()
        .filter(|i| i.component_id == KEY_COMMITMENT_COMPONENT);
    let item = ours
        .next()
        .ok_or(Error::Malformed("safe aad: no key commitment"))?;
    if ours.next().is_some() {
        return Err(Error::Malformed("safe aad: two key commitments"));
    }
    if item.data.len() != nh {
        return Err(Error::Malformed("safe aad: key commitment length"));
    }
    Ok(item.data)
}

/// Builds `authenticated_data`: the SafeAAD structure with `c` and the
/// caller's other items (sorted by id; the commitment is placed in order),
/// followed by `rest`.
pub fn build_authenticated_data(
    c: &[u8],
    other_items: &[SafeAadItem<'_>],
    rest: &[u8],
) -> Res<Vec<u8>> {
    let mut items: Vec<SafeAadItem<'_>> = other_items.to_vec();
    if items
        .iter()
        .any(|i| i.component_id == KEY_COMMITMENT_COMPONENT)
    {
        return Err(Error::Usage("the key commitment item is added here"));
    }
    items.push(SafeAadItem {
        component_id: KEY_COMMITMENT_COMPONENT,
        data: c,
    });
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
    let mut out = Vec::with_capacity(inner.len() + 4 + rest.len());
    put_vec(&mut out, &inner)?;
    out.extend_from_slice(rest);
    Ok(out)
}

/// True if the `app_data_dictionary` extension data of a GroupContext
/// lists [`KEY_COMMITMENT_COMPONENT`] among the required SafeAAD items
/// (component [`SAFE_AAD_COMPONENT`], data `ComponentID component_ids<V>`).
pub fn group_requires_commitment(app_data_dictionary: &[u8]) -> bool {
    let Ok(dict) = crate::config::AppDataDictionary::from_bytes(app_data_dictionary) else {
        return false;
    };
    let Some(entry) = dict
        .component_data
        .iter()
        .find(|c| c.component_id == SAFE_AAD_COMPONENT)
    else {
        return false;
    };
    let mut r = Reader::new(&entry.data.0);
    let Ok(ids) = r.vec("components list") else {
        return false;
    };
    if r.finish("components list").is_err() || ids.len() % 2 != 0 {
        return false;
    }
    ids.chunks_exact(2)
        .any(|c| u16::from_be_bytes([c[0], c[1]]) == KEY_COMMITMENT_COMPONENT)
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
        let ad = build_authenticated_data(&c, &other, b"app bytes").unwrap();
        input(suite).verify(&ad).unwrap();
        let (items, rest) = parse_safe_aad(&ad).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(rest, b"app bytes");
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
        assert!(commitment_item(&raw_safe_aad(&[(ours, &c)], b"rest"), 32).is_ok());
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

    #[test]
    fn group_requirement() {
        let data = safe_aad_component_data(&[0x0005]).unwrap();
        let dict = crate::config::AppDataDictionary {
            component_data: vec![crate::config::ComponentData {
                component_id: SAFE_AAD_COMPONENT,
                data: crate::codec::Opaque(data),
            }],
        };
        assert!(group_requires_commitment(&dict.to_bytes().unwrap()));
        let empty = crate::config::AppDataDictionary {
            component_data: vec![],
        };
        assert!(!group_requires_commitment(&empty.to_bytes().unwrap()));
    }
}
