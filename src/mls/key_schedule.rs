//! The RFC 9420 key schedule (section 8) and `MLS-Exporter` (8.5).
//!
//! [`mls_exporter`] is what the rest of the crate needs; [`EpochSecrets`]
//! derives a whole epoch from the previous `init_secret`, the
//! `commit_secret`, the `psk_secret` and the serialized `GroupContext`
//! (the HPKE `external_pub` derivation is not implemented).

use crate::error::Res;
use crate::mls::suite::MlsSuite;
use crate::secret::Secret;

/// `MLS-Exporter(label, context, len) = ExpandWithLabel(DeriveSecret(
/// exporter_secret, label), "exported", Hash(context), len)` (RFC 9420 8.5).
///
/// `label` is taken as bytes (the RFC writes it as a string).
///
/// # Errors
///
/// As [`MlsSuite::expand_with_label`] (a `len` above 65535 or
/// `255 * Nh`, or an `exporter_secret` shorter than `Nh`).
pub fn mls_exporter(
    suite: MlsSuite,
    exporter_secret: &Secret,
    label: impl AsRef<[u8]>,
    context: &[u8],
    len: usize,
) -> Res<Secret> {
    let derived = suite.derive_secret(exporter_secret, label)?;
    suite.expand_with_label(&derived, "exported", &suite.hash(context), len)
}

/// All secrets of one epoch (RFC 9420 8, Table 4), except `external_pub`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochSecrets {
    /// `joiner_secret`.
    pub joiner_secret: Secret,
    /// `welcome_secret`.
    pub welcome_secret: Secret,
    /// `epoch_secret`.
    pub epoch_secret: Secret,
    /// `sender_data_secret` (label `"sender data"`).
    pub sender_data_secret: Secret,
    /// `encryption_secret` (label `"encryption"`), the secret tree's root.
    pub encryption_secret: Secret,
    /// `exporter_secret` (label `"exporter"`).
    pub exporter_secret: Secret,
    /// `external_secret` (label `"external"`).
    pub external_secret: Secret,
    /// `confirmation_key` (label `"confirm"`).
    pub confirmation_key: Secret,
    /// `membership_key` (label `"membership"`).
    pub membership_key: Secret,
    /// `resumption_psk` (label `"resumption"`).
    pub resumption_psk: Secret,
    /// `epoch_authenticator` (label `"authentication"`).
    pub epoch_authenticator: Secret,
    /// `init_secret` of the next epoch (label `"init"`).
    pub init_secret: Secret,
}

impl EpochSecrets {
    /// Runs the key schedule of RFC 9420 8 for one epoch.
    ///
    /// `init_secret` is the previous epoch's (or a fresh random one for the
    /// first epoch), `commit_secret` and `psk_secret` are all-zero `Nh`
    /// bytes when absent, and `group_context` is the serialized
    /// `GroupContext` of the new epoch.
    ///
    /// # Errors
    ///
    /// As [`MlsSuite::expand_with_label`].
    pub fn derive(
        suite: MlsSuite,
        init_secret: &Secret,
        commit_secret: &Secret,
        psk_secret: &Secret,
        group_context: &[u8],
    ) -> Res<Self> {
        let nh = suite.nh();
        let joiner_prk = suite.extract(init_secret.expose(), commit_secret.expose());
        let joiner_secret = suite.expand_with_label(&joiner_prk, "joiner", group_context, nh)?;
        let member_prk = suite.extract(joiner_secret.expose(), psk_secret.expose());
        let welcome_secret = suite.derive_secret(&member_prk, "welcome")?;
        let epoch_secret = suite.expand_with_label(&member_prk, "epoch", group_context, nh)?;
        let d = |label: &str| suite.derive_secret(&epoch_secret, label);
        Ok(EpochSecrets {
            sender_data_secret: d("sender data")?,
            encryption_secret: d("encryption")?,
            exporter_secret: d("exporter")?,
            external_secret: d("external")?,
            confirmation_key: d("confirm")?,
            membership_key: d("membership")?,
            resumption_psk: d("resumption")?,
            epoch_authenticator: d("authentication")?,
            init_secret: d("init")?,
            joiner_secret,
            welcome_secret,
            epoch_secret,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mls::suite::tests::{entries, hex, num, suite_of, text};

    const KEY_SCHEDULE: &str = include_str!("../../test-vectors/mls/key-schedule.json");

    #[test]
    fn exporter_vectors() {
        let vectors = entries(KEY_SCHEDULE);
        assert_eq!(vectors.len(), 7);
        let mut checked = 0;
        for e in &vectors {
            let suite = suite_of(e);
            for epoch in e["epochs"].as_array().expect("epochs") {
                let x = &epoch["exporter"];
                // The vector's `label` looks like hex but is used as the
                // label string itself (openmls and mls-rs do the same);
                // decoding it first does not reproduce `secret`.
                let out = mls_exporter(
                    suite,
                    &Secret::new(hex(epoch, "exporter_secret")),
                    text(x, "label"),
                    &hex(x, "context"),
                    num(x, "length") as usize,
                )
                .unwrap();
                assert_eq!(out.expose(), hex(x, "secret"), "suite {}", suite.code());
                checked += 1;
            }
        }
        assert_eq!(checked, 7 * 5);
    }

    #[test]
    fn full_key_schedule_vectors() {
        let mut checked = 0;
        for e in &entries(KEY_SCHEDULE) {
            let suite = suite_of(e);
            let mut init = Secret::new(hex(e, "initial_init_secret"));
            for epoch in e["epochs"].as_array().expect("epochs") {
                let s = EpochSecrets::derive(
                    suite,
                    &init,
                    &Secret::new(hex(epoch, "commit_secret")),
                    &Secret::new(hex(epoch, "psk_secret")),
                    &hex(epoch, "group_context"),
                )
                .unwrap();
                for (name, got) in [
                    ("joiner_secret", &s.joiner_secret),
                    ("welcome_secret", &s.welcome_secret),
                    ("sender_data_secret", &s.sender_data_secret),
                    ("encryption_secret", &s.encryption_secret),
                    ("exporter_secret", &s.exporter_secret),
                    ("external_secret", &s.external_secret),
                    ("confirmation_key", &s.confirmation_key),
                    ("membership_key", &s.membership_key),
                    ("resumption_psk", &s.resumption_psk),
                    ("epoch_authenticator", &s.epoch_authenticator),
                    ("init_secret", &s.init_secret),
                ] {
                    assert_eq!(
                        got.expose(),
                        hex(epoch, name),
                        "{name} suite {}",
                        suite.code()
                    );
                }
                init = s.init_secret.clone();
                checked += 1;
            }
        }
        assert_eq!(checked, 7 * 5);
    }
}
