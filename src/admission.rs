//! Registration admission (spec section "Registration Admission", ADM-1
//! to ADM-4): the hook through which a hub decides, for every
//! registration that passed HUB-6, whether the sending provider may
//! introduce that room, and the rule by which a provider proves a room is
//! its own.
//!
//! The core reads no transport: the caller of
//! [`crate::hub::HubFrontEnd::handle_from`] names the authenticated sending
//! provider, and the [`Admission`] set with
//! [`crate::hub::HubFrontEnd::set_admission`] judges. Quotas and their
//! ledger are the caller's (`mimi-onion-service` keeps one per hub).

/// What the front-end tells its admission policy about one registration.
#[derive(Clone, Copy, Debug)]
pub struct AdmissionRequest<'a> {
    /// The authenticated sending provider (the transport peer that handed
    /// the envelope to the hub), `None` when the transport authenticated
    /// none.
    pub provider: Option<&'a str>,
    /// The group the registration introduces.
    pub group_id: &'a [u8],
    /// The registration's GroupInfo, as carried (its signature and tree
    /// hash already verified, HUB-6).
    pub group_info: &'a [u8],
}

/// A hub's registration admission policy (ADM-1). Called inside the
/// envelope's store transaction, after HUB-6's checks passed and before
/// the group is created; `false` refuses the registration with
/// `registration_refused`. A store may run a transaction twice, so
/// `admit` must not count what it admits: the caller records an admission
/// once the hub's outcome says the registration was accepted.
pub trait Admission: Send + Sync {
    /// Whether the registration may proceed.
    fn admit(&self, request: &AdmissionRequest<'_>) -> bool;
}

/// The byte that ends a provider's namespace in a `group_id` (ADM-2).
pub const NAMESPACE_SEPARATOR: u8 = b'/';

/// True if `provider` is a name a provider can be known by here: 1 to 253
/// bytes of lowercase ASCII letters, digits, `-` and `.` (a DNS name).
pub fn valid_provider_name(provider: &str) -> bool {
    !provider.is_empty()
        && provider.len() <= 253
        && provider
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// ADM-2: a room is `provider`'s own if its `group_id` starts with the
/// provider's name followed by [`NAMESPACE_SEPARATOR`] and at least one
/// more byte, and the name is valid ([`valid_provider_name`]).
pub fn room_of_provider(provider: &str, group_id: &[u8]) -> bool {
    valid_provider_name(provider)
        && group_id.len() > provider.len() + 1
        && group_id.starts_with(provider.as_bytes())
        && group_id[provider.len()] == NAMESPACE_SEPARATOR
}

/// The namespace a `group_id` claims (ADM-2): the bytes before its first
/// [`NAMESPACE_SEPARATOR`], if they form a valid provider name.
pub fn namespace_of(group_id: &[u8]) -> Option<&str> {
    let end = group_id.iter().position(|b| *b == NAMESPACE_SEPARATOR)?;
    let name = core::str::from_utf8(&group_id[..end]).ok()?;
    valid_provider_name(name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ADM-2: the namespace is the provider's name and a slash, nothing
    /// shorter or longer.
    #[test]
    fn namespaces() {
        assert!(room_of_provider("a.example", b"a.example/room"));
        assert!(!room_of_provider("a.example", b"a.example/"));
        assert!(!room_of_provider("a.example", b"a.example.evil/room"));
        assert!(!room_of_provider("a.example", b"b.example/room"));
        assert!(!room_of_provider("a.example", b"a.exampl/room"));
        assert!(!room_of_provider("A.example", b"A.example/room"));
        assert!(!room_of_provider("", b"/room"));
        assert_eq!(namespace_of(b"a.example/room"), Some("a.example"));
        assert_eq!(namespace_of(b"no namespace"), None);
        assert_eq!(namespace_of(b"\xff/x"), None);
    }
}
