//! HTTPS through [`super::client_builder`] against a real TLS server on loopback (rustls'
//! own server, in a thread): the handshake, the server's ECDSA signature and its certificate
//! chain are checked with `ring`. The certificates in `testdata/` are made for this test
//! only: a CA and a `localhost` certificate it signed (P-256, valid for a century).

#![cfg(not(any(target_os = "macos", target_os = "windows")))]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::*;

const CA: &[u8] = include_bytes!("testdata/ca.pem");
const SERVER_CERT: &[u8] = include_bytes!("testdata/server.pem");
const SERVER_KEY: &[u8] = include_bytes!("testdata/server.key");

/// Serves one HTTPS connection on loopback (an `ok` to any request); returns its port.
fn serve_once() -> u16 {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(SERVER_CERT)
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        let connection = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(connection, socket);
        let mut reader = BufReader::new(&mut tls);
        let mut line = String::new();
        // A client that rejects the certificate ends the handshake here: nothing to answer.
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
            line.clear();
        }
        let _ =
            tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        let _ = tls.flush();
    });
    port
}

#[test]
fn the_installed_provider_is_ring() {
    install_provider();
    let installed = rustls::crypto::CryptoProvider::get_default().expect("a default provider");
    let ring = rustls::crypto::ring::default_provider();
    let names = |p: &rustls::crypto::CryptoProvider| {
        p.cipher_suites
            .iter()
            .map(rustls::SupportedCipherSuite::suite)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(installed), names(&ring));
}

#[tokio::test]
async fn https_works_with_a_trusted_certificate() {
    let port = serve_once();
    let ca = reqwest::Certificate::from_pem(CA).unwrap();
    let client = client_builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(20))
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let reply = client
        .get(format!("https://localhost:{port}/"))
        .send()
        .await
        .expect("the HTTPS request succeeds");
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().await.unwrap(), "ok");
}

/// The system's roots are consulted and do not hold the test CA: the certificate is refused.
#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let port = serve_once();
    let client = client_builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    let error = client
        .get(format!("https://localhost:{port}/"))
        .send()
        .await
        .expect_err("an unknown issuer must be refused");
    let chain = format!("{:?}", anyhow_chain(&error));
    assert!(chain.contains("UnknownIssuer"), "{chain}");
}

/// The error and its sources, for the message's whole chain.
fn anyhow_chain(error: &dyn std::error::Error) -> Vec<String> {
    let mut out = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        out.push(format!("{e:?}"));
        source = e.source();
    }
    out
}
