//! A hub over TLS (rustls): the configuration and the fixed-size
//! response through a TLS connection that trusts the test certificate
//! (`tests/data/test-cert.pem`, issued by `test-ca.pem` for `localhost` and
//! 127.0.0.1; its key is a test fixture, never a deployment's).

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;

use common::*;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn exchange(addr: &str, request: &[u8]) -> Vec<u8> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(data("test-ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn = ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
        .unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut tls = StreamOwned::new(conn, sock);
    tls.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    out
}

#[test]
fn hub_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    make_keys(dir.path());
    let d = dir.path();
    let mut hub = spawn(
        "tls-hub",
        d,
        &[
            "hub".into(),
            "--keys".into(),
            path(&d.join("keys/hub-keys.json")),
            "--shard".into(),
            "0".into(),
            "--data".into(),
            path(&d.join("data")),
            "--tls-cert".into(),
            data("test-cert.pem"),
            "--tls-key".into(),
            data("test-key.pem"),
        ],
    );
    assert!(hub.url.starts_with("https://"), "{}", hub.url);
    let addr = hub.url.strip_prefix("https://").unwrap().to_string();
    let config = exchange(
        &addr,
        b"GET /v1/configuration HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&config), 200);
    let (head, body) = split_response(&config);
    assert!(head.contains(&"content-type: application/mimi-onion-hub-config".to_string()));
    assert!(mimi_onion::config::SignedHubConfiguration::from_bytes(&body).is_ok());
    let mut post = b"POST /v1/envelope HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-type: application/mimi-onion-envelope\r\ncontent-length: 40\r\n\r\n".to_vec();
    post.extend_from_slice(&[9; 40]);
    let resp = exchange(&addr, &post);
    assert_eq!(status_of(&resp), 200);
    assert_eq!(split_response(&resp).1.len(), 103);
    // Plain HTTP on the TLS port gets nothing and harms nothing.
    let plain = raw(
        &addr,
        b"GET /v1/configuration HTTP/1.1\r\nhost: x\r\n\r\n",
        false,
        std::time::Duration::from_secs(2),
    );
    assert_ne!(status_of(&plain), 200);
    assert!(hub.alive());
}
