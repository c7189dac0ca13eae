//! The client side's room checks on real openmls groups (PRF-1): a room's
//! GroupContext must carry the hub's key (0x8A01) and the public-handshake
//! profile (0x8A03 = 0x01) for this crate to register it, join it or take
//! it into a member.

use mimi_onion::config::{AppDataDictionary, ComponentData, HubSigningKey};
use mimi_onion::profile::{HandshakeProfile, HANDSHAKE_PROFILE_COMPONENT};
use mimi_onion_openmls::{
    fanout_key, room_capabilities, room_create_config, room_signing_key, Error, OpenMlsMember,
};
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::{
    BasicCredential, Ciphersuite, CredentialWithKey, Extension, Extensions, MlsGroup,
    MlsGroupCreateConfig, UnknownExtension, PURE_PLAINTEXT_WIRE_FORMAT_POLICY,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider as _;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

fn hub_key() -> HubSigningKey {
    HubSigningKey::ed25519(&ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key())
}

fn group_with(
    provider: &OpenMlsRustCrypto,
    config: &MlsGroupCreateConfig,
) -> (MlsGroup, SignatureKeyPair) {
    let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).unwrap();
    signer.store(provider.storage()).unwrap();
    let credential = CredentialWithKey {
        credential: BasicCredential::new(b"alice".to_vec()).into(),
        signature_key: signer.public().into(),
    };
    (
        MlsGroup::new(provider, &signer, config, credential).unwrap(),
        signer,
    )
}

fn config_with(components: Vec<ComponentData>) -> MlsGroupCreateConfig {
    let dict = AppDataDictionary {
        component_data: components,
    };
    MlsGroupCreateConfig::builder()
        .ciphersuite(SUITE)
        .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .capabilities(room_capabilities())
        .with_group_context_extensions(
            Extensions::single(Extension::Unknown(
                0x0006,
                UnknownExtension(dict.to_bytes().unwrap()),
            ))
            .unwrap(),
        )
        .build()
}

/// PRF-1: the room this crate creates reads back as the hub's key and the
/// public profile; its F is openmls's exporter output for the label
/// (FAN-1), 32 bytes, and changes with the epoch.
#[test]
fn a_created_room_carries_the_hub_key_and_the_public_profile() {
    let provider = OpenMlsRustCrypto::default();
    let (mut group, signer) =
        group_with(&provider, &room_create_config(SUITE, &hub_key()).unwrap());
    assert_eq!(room_signing_key(&group).unwrap(), hub_key());
    let f0 = fanout_key(&group, provider.crypto()).unwrap();
    assert_eq!(f0.len(), 32);
    let exported = group
        .export_secret(provider.crypto(), "mimi-onion v1 fanout key", b"", 32)
        .unwrap();
    assert_eq!(f0.expose(), exported.as_slice());
    group
        .self_update(&provider, &signer, Default::default())
        .unwrap();
    group.merge_pending_commit(&provider).unwrap();
    assert_ne!(fanout_key(&group, provider.crypto()).unwrap(), f0);
}

/// PRF-1: a room without the profile component, or of the private
/// profile, or without the hub's key, is refused: not registered, not
/// taken into a member.
#[test]
fn rooms_of_another_profile_are_refused() {
    let key = ComponentData {
        component_id: 0x8A01,
        data: mimi_onion::codec::Opaque(hub_key().tls_serialize_detached().unwrap()),
    };
    let profile = |p: HandshakeProfile| ComponentData {
        component_id: HANDSHAKE_PROFILE_COMPONENT,
        data: mimi_onion::codec::Opaque(p.component_data()),
    };
    for (what, components) in [
        ("no profile", vec![key.clone()]),
        (
            "private profile",
            vec![key.clone(), profile(HandshakeProfile::Private)],
        ),
        ("no hub key", vec![profile(HandshakeProfile::Public)]),
    ] {
        let provider = OpenMlsRustCrypto::default();
        let (group, _) = group_with(&provider, &config_with(components));
        assert!(room_signing_key(&group).is_err(), "{what}");
        let mut member = OpenMlsMember::default();
        assert!(
            matches!(
                member.add_group(&provider, group),
                Err(Error::Profile(_) | Error::Onion(_))
            ),
            "{what}"
        );
        assert_eq!(member.onion().held_epochs(), 0, "{what}");
    }
    // The same components with the public profile: accepted.
    let provider = OpenMlsRustCrypto::default();
    let (group, _) = group_with(
        &provider,
        &config_with(vec![key, profile(HandshakeProfile::Public)]),
    );
    assert_eq!(room_signing_key(&group).unwrap(), hub_key());
}
