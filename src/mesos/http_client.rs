//! HTTP clients for the sources, with TLS roots chosen so plain-HTTP setups never depend on
//! the host's CA store (minimal hosts and containers often have none).

use reqwest::{Certificate, ClientBuilder};

/// A client builder: with `ca`, exactly those roots (a cluster's private CA); else, for HTTPS,
/// the system's roots; for plain HTTP, none at all.
pub fn builder(https: bool, ca: &[Certificate]) -> ClientBuilder {
    // Hostnames resolve through the host's original resolvers, never through this daemon.
    let b = reqwest::Client::builder()
        .user_agent(concat!("mesos-dns-sidecar/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(crate::lookup::HttpResolver);
    if !ca.is_empty() {
        b.tls_certs_only(ca.iter().cloned())
    } else if https {
        b
    } else {
        b.tls_certs_only(Vec::new())
    }
}
