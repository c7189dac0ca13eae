//! A hub over TLS (rustls): the configuration and the fixed-size
//! response through a TLS connection that trusts the test certificate
//! (`tests/data/test-cert.pem`, issued by `test-ca.pem` for `localhost` and
//! 127.0.0.1; its key is a test fixture, never a deployment's), and the
//! sending provider from a TLS client certificate (ADM-1):
//! `provider-a.pem` is issued by `client-ca.pem` for `provider-a.example`,
//! `rogue-provider-a.pem` names the same provider under a CA the hub does
//! not trust. All keys there are test fixtures.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;

use common::*;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn exchange(addr: &str, request: &[u8]) -> Vec<u8> {
    exchange_as(addr, request, None)
}

/// [`exchange`] with a client certificate (`name.pem`, `name-key.pem`).
fn exchange_as(addr: &str, request: &[u8], client: Option<&str>) -> Vec<u8> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(data("test-ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(name) => {
            let chain = CertificateDer::pem_file_iter(data(&format!("{name}.pem")))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(data(&format!("{name}-key.pem"))).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    let conn = ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
        .unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut tls = StreamOwned::new(conn, sock);
    // A handshake the hub refuses fails here or in the read: no bytes.
    if tls.write_all(request).is_err() {
        return Vec::new();
    }
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

/// ADM-1: with `--tls-client-ca`, the provider is the DNS name of the
/// connection's client certificate. Its registration in its own namespace
/// is accepted; the same registration without a certificate names no
/// provider and is refused; a certificate from a CA the hub does not trust
/// fails the handshake; a provider header without `--trust-provider-header`
/// names no provider either.
#[test]
fn provider_from_the_client_certificate() {
    use mimi_onion::config::{HubConfigStore, SignedHubConfiguration};
    use mimi_onion::response::{RejectReason, Status};
    use mimi_onion::sender::{SealOptions, Sender};
    use mimi_onion::test_utils::room::Room;
    use mimi_onion_service::keys::read_signing_key;

    let dir = tempfile::tempdir().unwrap();
    let keys = make_keys(dir.path());
    let d = dir.path();
    let mut hub = spawn(
        "mtls-hub",
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
            "--tls-client-ca".into(),
            data("client-ca.pem"),
        ],
    );
    let addr = hub.url.strip_prefix("https://").unwrap().to_string();
    let config = exchange_as(
        &addr,
        b"GET /v1/configuration HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
        Some("provider-a"),
    );
    assert_eq!(status_of(&config), 200);
    let signing = read_signing_key(&d.join("keys/hub-signing-key.hex")).unwrap();
    let mut store = HubConfigStore::new();
    let signed = SignedHubConfiguration::from_bytes(&split_response(&config).1).unwrap();
    store
        .accept(&signed, &signing, mimi_onion_service::unix_now())
        .unwrap();
    let mut sender = Sender::new(store.current().unwrap().clone());
    // Rooms of provider-a.example that shard 0 holds.
    let mut rooms = (0..)
        .map(|i| format!("provider-a.example/mtls room {i}"))
        .filter(|g| shard_of(&keys, g.as_bytes()) == 0);
    let mut register = |client: Option<&str>, extra_header: &str| {
        let g = rooms.next().unwrap();
        let room = Room::with_group_id(1, &signing, Some(g.into_bytes())).unwrap();
        let sealed = sender
            .seal(
                &room.group_info(0).unwrap(),
                SealOptions {
                    fanout_key: Some(room.epoch(0).unwrap().f.clone()),
                    ..SealOptions::default()
                },
            )
            .unwrap();
        let mut post = format!(
            "POST /v1/envelope HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-type: application/mimi-onion-envelope\r\n{extra_header}content-length: {}\r\n\r\n",
            sealed.bytes.len()
        )
        .into_bytes();
        post.extend_from_slice(&sealed.bytes);
        let resp = exchange_as(&addr, &post, client);
        if resp.is_empty() {
            return None;
        }
        assert_eq!(status_of(&resp), 200);
        Some(
            sender
                .open_response(&sealed.pending, &split_response(&resp).1)
                .unwrap()
                .status,
        )
    };
    let refused = Some(Status::Rejected(RejectReason::RegistrationRefused));
    assert_eq!(register(Some("provider-a"), ""), Some(Status::Accepted));
    assert_eq!(register(None, ""), refused);
    assert_eq!(
        register(None, "mimi-onion-provider: provider-a.example\r\n"),
        refused
    );
    assert_eq!(register(Some("rogue-provider-a"), ""), None);
    assert!(hub.alive());
}

/// The provider a certificate names: its one DNS subjectAltName, if that
/// is a provider name.
#[test]
fn provider_name_of_a_certificate() {
    use mimi_onion_service::tls::{provider_of_certificate, PeerProvider};
    let der = |name: &str| {
        CertificateDer::pem_file_iter(data(name))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
    };
    assert_eq!(
        provider_of_certificate(&der("provider-a.pem")),
        Some(PeerProvider("provider-a.example".into()))
    );
    // A CA certificate has no subjectAltName.
    assert_eq!(provider_of_certificate(&der("client-ca.pem")), None);
    assert_eq!(provider_of_certificate(b"not a certificate"), None);
}
