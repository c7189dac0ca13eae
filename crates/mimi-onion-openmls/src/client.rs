//! The client side for openmls: the room's GroupContext components, F from
//! openmls's exporter, and the sealing of every openmls output into an
//! envelope through [`mimi_onion::sender::Sender`] with the
//! [`SealOptions`] the spec's table of forms gives (spec sections "Outer
//! Layer", "Hub Layer", "Fan-out Key", "The Configuration-Signing Key in
//! the GroupContext").

use mimi_onion::codec::Opaque;
use mimi_onion::config::{
    find_app_data_dictionary, AppDataDictionary, ComponentData, HubSigningKey,
    VerifiedHubConfiguration, APP_DATA_DICTIONARY_EXTENSION, HUB_SIGNING_KEY_COMPONENT,
};
use mimi_onion::fanout::{fanout_key_sign_content, EpochKeys};
use mimi_onion::mls::message::{ContentType, MessageInfo, WireFormat};
use mimi_onion::profile::HandshakeProfile;
use mimi_onion::secret::Secret;
use mimi_onion::sender::{SealOptions, SealedEnvelope, Sender};
use openmls::prelude::{
    Capabilities, Ciphersuite, Extension, ExtensionType, Extensions, GroupContext, MlsGroup,
    MlsGroupCreateConfig, MlsGroupJoinConfig, MlsMessageOut, UnknownExtension,
    PURE_PLAINTEXT_WIRE_FORMAT_POLICY,
};
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::signatures::Signer;
use tls_codec::{Serialize as _, Size as _};

use crate::{openmls, Error, Result};

/// The exporter label of F (spec section "Fan-out Key"): F =
/// `MLS-Exporter("mimi-onion v1 fanout key", "", 32)`.
pub const FANOUT_KEY_LABEL: &str = "mimi-onion v1 fanout key";

/// Length of F.
const FANOUT_KEY_LEN: usize = 32;

pub use mimi_onion::profile::HANDSHAKE_PROFILE_COMPONENT;

/// The handshake profile of openmls rooms: proposals and commits as
/// PublicMessage (see the crate documentation for why not
/// [`HandshakeProfile::Private`]).
pub const PROFILE: HandshakeProfile = HandshakeProfile::Public;

/// The GroupContext extensions of a mimi-onion room at the hub whose
/// configuration-signing key is `hub`: one `app_data_dictionary`
/// (extension type `0x0006`) with the hub's key (component `0x8A01`) and
/// the public-handshake profile (component `0x8A03` = `0x01`).
///
/// openmls 0.9.2 names the dictionary only behind its `extensions-draft`
/// feature; this crate writes it as an extension of type `0x0006` with
/// the dictionary's encoding, the same bytes, without that feature.
pub fn room_extensions(hub: &HubSigningKey) -> Result<Extensions<GroupContext>> {
    let dict = AppDataDictionary {
        component_data: vec![
            ComponentData {
                component_id: HUB_SIGNING_KEY_COMPONENT,
                data: Opaque(hub.tls_serialize_detached().map_err(openmls)?),
            },
            ComponentData {
                component_id: HANDSHAKE_PROFILE_COMPONENT,
                data: Opaque(PROFILE.component_data()),
            },
        ],
    };
    Extensions::single(Extension::Unknown(
        APP_DATA_DICTIONARY_EXTENSION,
        UnknownExtension(dict.to_bytes()?),
    ))
    .map_err(openmls)
}

/// The leaf capabilities every member of a room needs (in its KeyPackage
/// and its leaf): the `app_data_dictionary` extension type.
pub fn room_capabilities() -> Capabilities {
    Capabilities::new(
        None,
        None,
        Some(&[ExtensionType::Unknown(APP_DATA_DICTIONARY_EXTENSION)]),
        None,
        None,
    )
}

/// Past epochs whose message secrets openmls keeps: one, as the member's
/// onion part holds the previous epoch (FAN-1) and the hub accepts
/// application messages of the previous epoch (HUB-4).
const PAST_EPOCHS: usize = 1;

/// The configuration to create a room with openmls: the room's
/// components ([`room_extensions`]), the capabilities
/// ([`room_capabilities`]), public handshakes in and out, the ratchet
/// tree in the Welcome, and the previous epoch kept.
pub fn room_create_config(
    ciphersuite: Ciphersuite,
    hub: &HubSigningKey,
) -> Result<MlsGroupCreateConfig> {
    Ok(MlsGroupCreateConfig::builder()
        .ciphersuite(ciphersuite)
        .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .capabilities(room_capabilities())
        .with_group_context_extensions(room_extensions(hub)?)
        .use_ratchet_tree_extension(true)
        .max_past_epochs(PAST_EPOCHS)
        .build())
}

/// The configuration to join a room from a Welcome: public handshakes in
/// and out, the previous epoch kept.
pub fn room_join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        .max_past_epochs(PAST_EPOCHS)
        .build()
}

/// The hub's configuration-signing key that the room's GroupContext
/// carries (component `0x8A01`), the key under which a joining client
/// verifies the hub's configuration
/// ([`mimi_onion::config::HubConfigStore::accept`]). Fails unless the
/// room is of the public-handshake profile (component `0x8A03` = `0x01`).
pub fn room_signing_key(group: &MlsGroup) -> Result<HubSigningKey> {
    // The extensions as on the wire (`extension_type`, `extension_data`),
    // whichever variant openmls's features decode type 0x0006 into, read
    // with the hub's own parser: exactly one dictionary.
    let mut encoded = Vec::new();
    for ext in group.extensions().iter() {
        if u16::from(ext.extension_type()) == APP_DATA_DICTIONARY_EXTENSION {
            ext.tls_serialize(&mut encoded).map_err(openmls)?;
        }
    }
    let data = find_app_data_dictionary(&encoded)
        .ok_or(Error::Profile("room without one app_data_dictionary"))?;
    if HandshakeProfile::from_app_data_dictionary(data)? != PROFILE {
        return Err(Error::Profile(
            "room is not of the public-handshake profile",
        ));
    }
    Ok(HubSigningKey::from_app_data_dictionary(data)?)
}

/// The MLS cipher suite of a group, as the core names it.
pub(crate) fn suite_of(group: &MlsGroup) -> Result<mimi_onion::mls::suite::MlsSuite> {
    mimi_onion::mls::suite::MlsSuite::from_code(u16::from(group.ciphersuite()))
        .ok_or(Error::Profile("cipher suite the core does not implement"))
}

/// F of the group's current epoch, from openmls's exporter (FAN-1).
pub fn fanout_key(group: &MlsGroup, crypto: &impl OpenMlsCrypto) -> Result<Secret> {
    group
        .export_secret(crypto, FANOUT_KEY_LABEL, b"", FANOUT_KEY_LEN)
        .map(Secret::new)
        .map_err(openmls)
}

/// The fan-out keys of the group's current epoch (from [`fanout_key`]).
pub fn epoch_keys(group: &MlsGroup, crypto: &impl OpenMlsCrypto) -> Result<EpochKeys> {
    Ok(EpochKeys::derive(
        &fanout_key(group, crypto)?,
        group.epoch().as_u64(),
    )?)
}

/// F of the epoch the group's pending commit opens (FAN-1: from the
/// staged commit's exporter secret), with that epoch's number.
fn pending_fanout_key(group: &MlsGroup, crypto: &impl OpenMlsCrypto) -> Result<(u64, Secret)> {
    let staged = group
        .pending_commit()
        .ok_or(Error::Profile("no pending commit"))?;
    let f = staged
        .export_secret(crypto, FANOUT_KEY_LABEL, b"", FANOUT_KEY_LEN)
        .map_err(openmls)?;
    Ok((staged.group_context().epoch().as_u64(), Secret::new(f)))
}

/// The bytes of an openmls output.
fn bytes_of(message: &MlsMessageOut) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(message.tls_serialized_len());
    message.tls_serialize(&mut out).map_err(openmls)?;
    Ok(out)
}

/// A sealed openmls output: the envelope and the MLS message in it.
#[derive(Debug)]
pub struct Sealed {
    /// The envelope and the state to open the hub's response.
    pub envelope: SealedEnvelope,
    /// The MLS message the envelope carries, byte for byte.
    pub message: Vec<u8>,
}

/// A client on openmls: a [`Sender`] for one hub (one verified
/// configuration, token pools) and the sealing of each kind of openmls
/// output. Every seal checks that the message is of the form the room's
/// profile allows (public handshakes), so that no message picks another.
#[derive(Debug)]
pub struct OpenMlsClient {
    sender: Sender,
}

impl OpenMlsClient {
    /// A client for the hub of `config`, verified through the room's
    /// component (see [`room_signing_key`]).
    pub fn new(config: VerifiedHubConfiguration) -> Self {
        OpenMlsClient {
            sender: Sender::new(config),
        }
    }

    /// The core's sender (token pools, responses).
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// The core's sender, to pool tokens and open responses.
    pub fn sender_mut(&mut self) -> &mut Sender {
        &mut self.sender
    }

    /// Seals an application message from `MlsGroup::create_message`: an
    /// unmodified openmls PrivateMessage (no `c`), with the membership
    /// proof under F of its epoch.
    pub fn seal_application(
        &mut self,
        group: &MlsGroup,
        crypto: &impl OpenMlsCrypto,
        message: &MlsMessageOut,
    ) -> Result<Sealed> {
        let bytes = bytes_of(message)?;
        expect_form(&bytes, WireFormat::PrivateMessage, ContentType::Application)?;
        let keys = epoch_keys(group, crypto)?;
        let envelope = self.sender.seal(
            &bytes,
            SealOptions {
                membership: Some(&keys),
                ..SealOptions::default()
            },
        )?;
        Ok(Sealed {
            envelope,
            message: bytes,
        })
    }

    /// Seals a proposal (`MlsGroup::propose_*`): a PublicMessage, with the
    /// membership proof under F of its epoch.
    pub fn seal_proposal(
        &mut self,
        group: &MlsGroup,
        crypto: &impl OpenMlsCrypto,
        message: &MlsMessageOut,
    ) -> Result<Sealed> {
        let bytes = bytes_of(message)?;
        expect_form(&bytes, WireFormat::PublicMessage, ContentType::Proposal)?;
        let keys = epoch_keys(group, crypto)?;
        let envelope = self.sender.seal(
            &bytes,
            SealOptions {
                membership: Some(&keys),
                ..SealOptions::default()
            },
        )?;
        Ok(Sealed {
            envelope,
            message: bytes,
        })
    }

    /// Seals a commit the group holds as its pending commit (from
    /// `MlsGroup::commit_to_pending_proposals`, `add_members`, the commit
    /// builder...): a PublicMessage with F of the epoch it opens (from the
    /// staged commit's exporter), the committer's signature over F (PRF-4:
    /// `signer`, the leaf's openmls signer, signs
    /// [`fanout_key_sign_content`]) and the membership proof under F of its
    /// own epoch. The pending commit is merged when it comes back by
    /// fan-out ([`crate::member::OpenMlsMember::receive`]); if the hub
    /// refuses it, `MlsGroup::clear_pending_commit` drops it.
    pub fn seal_commit(
        &mut self,
        group: &MlsGroup,
        crypto: &impl OpenMlsCrypto,
        signer: &impl Signer,
        message: &MlsMessageOut,
    ) -> Result<Sealed> {
        let bytes = bytes_of(message)?;
        expect_form(&bytes, WireFormat::PublicMessage, ContentType::Commit)?;
        let keys = epoch_keys(group, crypto)?;
        let (new_epoch, f) = pending_fanout_key(group, crypto)?;
        // PRF-4: the committer's signature over F, made by openmls's signer
        // over the exact SignContent bytes the core defines.
        let content =
            fanout_key_sign_content(suite_of(group)?, group.group_id().as_slice(), new_epoch, &f)?;
        let signature = signer.sign(&content).map_err(openmls)?;
        let envelope = self.sender.seal(
            &bytes,
            SealOptions {
                fanout_key: Some(f),
                membership: Some(&keys),
                fanout_key_signature: Some(&signature),
                ..SealOptions::default()
            },
        )?;
        Ok(Sealed {
            envelope,
            message: bytes,
        })
    }

    /// Seals a Welcome (from a commit that adds members).
    pub fn seal_welcome(&mut self, message: &MlsMessageOut) -> Result<Sealed> {
        let bytes = bytes_of(message)?;
        expect_wire_format(&bytes, WireFormat::Welcome)?;
        let envelope = self.sender.seal(&bytes, SealOptions::default())?;
        Ok(Sealed {
            envelope,
            message: bytes,
        })
    }

    /// Seals a KeyPackage (`KeyPackageBundle::key_package`, as an
    /// `MlsMessageOut`).
    pub fn seal_key_package(&mut self, message: &MlsMessageOut) -> Result<Sealed> {
        let bytes = bytes_of(message)?;
        expect_wire_format(&bytes, WireFormat::KeyPackage)?;
        let envelope = self.sender.seal(&bytes, SealOptions::default())?;
        Ok(Sealed {
            envelope,
            message: bytes,
        })
    }

    /// Seals the registration of a room (HUB-6): the group's GroupInfo with
    /// its ratchet tree, signed by `signer`, and F of the current epoch.
    /// Checks first that the room is of this crate's profile
    /// ([`room_signing_key`]).
    pub fn seal_registration(
        &mut self,
        group: &MlsGroup,
        crypto: &impl OpenMlsCrypto,
        signer: &impl Signer,
    ) -> Result<Sealed> {
        room_signing_key(group)?;
        let group_info = group
            .export_group_info(crypto, signer, true)
            .map_err(openmls)?;
        let bytes = bytes_of(&group_info)?;
        expect_wire_format(&bytes, WireFormat::GroupInfo)?;
        let envelope = self.sender.seal(
            &bytes,
            SealOptions {
                fanout_key: Some(fanout_key(group, crypto)?),
                ..SealOptions::default()
            },
        )?;
        Ok(Sealed {
            envelope,
            message: bytes,
        })
    }
}

fn expect_wire_format(bytes: &[u8], wire_format: WireFormat) -> Result<()> {
    let info = MessageInfo::parse(bytes)?;
    if info.wire_format != wire_format {
        return Err(Error::Profile("message of another wire format"));
    }
    Ok(())
}

/// The public-handshake profile: handshakes as PublicMessage, application
/// messages as PrivateMessage; nothing else is sealed as such.
fn expect_form(bytes: &[u8], wire_format: WireFormat, content_type: ContentType) -> Result<()> {
    let info = MessageInfo::parse(bytes)?;
    if info.wire_format != wire_format || info.content_type != Some(content_type) {
        return Err(Error::Profile(
            "message not of the form the public-handshake profile gives",
        ));
    }
    Ok(())
}
