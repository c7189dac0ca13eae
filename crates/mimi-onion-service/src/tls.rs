//! TLS through rustls (ring provider): a server configuration from a PEM
//! certificate chain and a PEM private key, and, with a client CA, the
//! sending provider's identity from its client certificate (ADM-1).
//!
//! With a client CA, a client certificate is optional: a client without
//! one is served as before, but no provider is authenticated for its
//! requests, so its registrations are refused (ADM-1). A certificate that
//! does not chain to the CA, or is not valid for client authentication,
//! fails the handshake. The provider is the one DNS name of the
//! certificate's subjectAltName, in lowercase; a certificate with none, or
//! with several, or whose name is not a provider name (ADM-2), names no
//! provider.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig, ServerConnection};
use tokio_rustls::TlsAcceptor;

use crate::{Error, Result};

/// The sending provider that a connection's client certificate names,
/// set on every request of that connection (see [`crate::http::serve`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerProvider(pub String);

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|_| Error::Config("cannot read the certificate PEM"))?
        .collect::<core::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::Config("bad certificate PEM"))?;
    if certs.is_empty() {
        return Err(Error::Config("no certificate in the PEM file"));
    }
    Ok(certs)
}

/// A TLS acceptor for the certificate chain in `cert` and the key in
/// `key` (both PEM), speaking HTTP/1.1 (ALPN `http/1.1`); with
/// `client_ca` (PEM), it asks for client certificates issued by those
/// CAs (see the module documentation).
pub fn acceptor(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<TlsAcceptor> {
    let certs = certificates(cert)?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|_| Error::Config("bad private key PEM"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|_| Error::Config("TLS versions"))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certificates(ca)? {
                roots
                    .add(c)
                    .map_err(|_| Error::Config("bad client CA certificate"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|_| Error::Config("client certificate verifier"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|_| Error::Config("certificate and key do not match"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The provider a verified client certificate names, if any: its one
/// subjectAltName DNS name, lowercased, if that is a provider name.
/// rustls has verified the chain before this runs.
pub fn peer_provider(conn: &ServerConnection) -> Option<PeerProvider> {
    let der = conn.peer_certificates()?.first()?;
    provider_of_certificate(der)
}

/// [`peer_provider`] on one DER certificate.
pub fn provider_of_certificate(der: &[u8]) -> Option<PeerProvider> {
    use x509_parser::extensions::GeneralName;
    let (rest, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let san = cert.subject_alternative_name().ok()??;
    let mut names = san.value.general_names.iter().filter_map(|n| match n {
        GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
        _ => None,
    });
    let name = names.next()?;
    if names.next().is_some() || !mimi_onion::admission::valid_provider_name(&name) {
        return None;
    }
    Some(PeerProvider(name))
}
