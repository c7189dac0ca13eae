//! TLS through rustls (ring provider): a server configuration from a PEM
//! certificate chain and a PEM private key.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::{Error, Result};

/// A TLS acceptor for the certificate chain in `cert` and the key in
/// `key` (both PEM), speaking HTTP/1.1 (ALPN `http/1.1`).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|_| Error::Config("cannot read the certificate PEM"))?
        .collect::<core::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::Config("bad certificate PEM"))?;
    if certs.is_empty() {
        return Err(Error::Config("no certificate in the PEM file"));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|_| Error::Config("bad private key PEM"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| Error::Config("TLS versions"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|_| Error::Config("certificate and key do not match"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
