//! Handshake profiles (spec section "Handshake Profiles", PRF-1 to PRF-3).
//!
//! A room's GroupContext fixes how its proposals and commits travel, in
//! the component [`HANDSHAKE_PROFILE_COMPONENT`] of its
//! `app_data_dictionary`:
//!
//! - [`HandshakeProfile::Public`]: as PublicMessages inside the envelope.
//!   The hub front-end reads them (HUB-12); any RFC 9420 stack can send
//!   them unchanged.
//! - [`HandshakeProfile::Private`]: as PrivateMessages with a key layer
//!   and the key commitment `c` (HUB-8 to HUB-10), for stacks that offer
//!   the hook of the spec's section "Hook for MLS Implementations".
//!
//! The component's `data` is one byte, the profile's code. The hub reads
//! it once, at registration (HUB-6), and refuses a handshake of the other
//! form (PRF-2) and any proposal or commit that changes the component
//! (PRF-3), so that no sender can switch a room's profile.

use crate::config::AppDataDictionary;
use crate::error::{Error, Res};

/// Component id of the handshake profile in the GroupContext's
/// `app_data_dictionary` (private use).
pub const HANDSHAKE_PROFILE_COMPONENT: u16 = 0x8A03;

/// How a room's proposals and commits travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeProfile {
    /// Proposals and commits are PublicMessages (code 1).
    Public,
    /// Proposals and commits are PrivateMessages with a key layer and `c`
    /// (code 2).
    Private,
}

impl HandshakeProfile {
    /// The profile's code, the component's one byte of `data`.
    pub fn code(self) -> u8 {
        match self {
            HandshakeProfile::Public => 1,
            HandshakeProfile::Private => 2,
        }
    }

    /// The profile of a code; `None` for a code this revision does not
    /// define.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(HandshakeProfile::Public),
            2 => Some(HandshakeProfile::Private),
            _ => None,
        }
    }

    /// PRF-1: the profile a GroupContext's `app_data_dictionary` extension
    /// data fixes: exactly one entry with id
    /// [`HANDSHAKE_PROFILE_COMPONENT`], whose data is exactly one byte
    /// holding a defined code.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the dictionary does not decode, has no such
    /// entry, or the entry is not one defined code.
    pub fn from_app_data_dictionary(extension_data: &[u8]) -> Res<Self> {
        let dict = AppDataDictionary::from_bytes(extension_data)?;
        match dict.component(HANDSHAKE_PROFILE_COMPONENT) {
            Some([code]) => {
                Self::from_code(*code).ok_or(Error::Config("handshake profile code not defined"))
            }
            Some(_) => Err(Error::Config("handshake profile component is not one byte")),
            None => Err(Error::Config("group has no handshake profile component")),
        }
    }

    /// True for [`HandshakeProfile::Private`]: the flag a store keeps.
    pub fn is_private(self) -> bool {
        self == HandshakeProfile::Private
    }

    /// The profile of a store's flag ([`Self::is_private`]).
    pub fn from_private(private: bool) -> Self {
        if private {
            HandshakeProfile::Private
        } else {
            HandshakeProfile::Public
        }
    }

    /// The component's `data`.
    pub fn component_data(self) -> Vec<u8> {
        vec![self.code()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Opaque;
    use crate::config::ComponentData;
    use tls_codec::Serialize as _;

    fn dict(entries: &[(u16, &[u8])]) -> Vec<u8> {
        AppDataDictionary {
            component_data: entries
                .iter()
                .map(|(id, data)| ComponentData {
                    component_id: *id,
                    data: Opaque(data.to_vec()),
                })
                .collect(),
        }
        .tls_serialize_detached()
        .unwrap()
    }

    /// PRF-1: exactly one entry of one defined byte.
    #[test]
    fn prf1_profile_component_is_one_defined_byte() {
        for p in [HandshakeProfile::Public, HandshakeProfile::Private] {
            let d = dict(&[(HANDSHAKE_PROFILE_COMPONENT, &p.component_data())]);
            assert_eq!(HandshakeProfile::from_app_data_dictionary(&d).unwrap(), p);
            assert_eq!(HandshakeProfile::from_code(p.code()), Some(p));
        }
        for bad in [
            dict(&[]),
            dict(&[(0x8A01, &[1])]),
            dict(&[(HANDSHAKE_PROFILE_COMPONENT, &[])]),
            dict(&[(HANDSHAKE_PROFILE_COMPONENT, &[0])]),
            dict(&[(HANDSHAKE_PROFILE_COMPONENT, &[3])]),
            dict(&[(HANDSHAKE_PROFILE_COMPONENT, &[1, 0])]),
            vec![0xff],
        ] {
            assert!(HandshakeProfile::from_app_data_dictionary(&bad).is_err());
        }
    }
}
