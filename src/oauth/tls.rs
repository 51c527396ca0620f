//! The crypto under rustls, on the platforms that use rustls (Linux and the BSDs; macOS and
//! Windows use their own TLS through native-tls, see Cargo.toml).
//!
//! rustls' default provider, aws-lc-rs, is a large C library: most of the daemon's code was
//! hers, and the kernel maps a program's code around every page it touches, so it was most
//! of an idle daemon's memory too (docs/benchmarks.md). `ring` covers everything a provider
//! endpoint needs (TLS 1.2 and 1.3; ECDHE over X25519, P-256 and P-384; RSA and ECDSA
//! certificates) in a fraction of the code. Certificates are still checked against the
//! system's CA bundle by `rustls-platform-verifier`, as before.
//!
//! reqwest is built without a provider of its own (`rustls-no-provider`) and takes rustls'
//! process-wide default: [`client_builder`] installs `ring` as that default before any
//! client is built. Every HTTP client goes through it (or calls [`install_provider`]).

/// Makes `ring` rustls' process-wide crypto provider. Idempotent; on macOS and Windows
/// (native-tls) it does nothing.
pub fn install_provider() {
    #[cfg(not(any(target_os = "macos", target_os = "windows")))]
    {
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED.call_once(|| {
            // The only other way to have a default is someone installing one first; the
            // binary compiles in no other provider, so that one is ring too.
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
    }
}

/// A `reqwest` client builder whose client will find its TLS provider.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_provider();
    reqwest::Client::builder()
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
