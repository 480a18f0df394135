//! The pooled keep-alive client that talks to the origin (HTTP/1.1, plain or TLS).

use crate::config::Origin;
use crate::response::Body;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

pub type OriginClient = Client<HttpsConnector<HttpConnector>, Body>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("origin.ca_file: {0}")]
    CaFile(String),
    #[error("origin TLS: {0}")]
    Tls(#[from] rustls::Error),
}

pub fn build(origin: &Origin) -> Result<OriginClient, ClientError> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(origin.connect_timeout.0));
    http.set_nodelay(true);
    // The https connector below decides by scheme; the TCP layer must accept both.
    http.enforce_http(false);

    let tls = rustls::ClientConfig::builder().with_root_certificates(root_store(origin)?).with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);

    Ok(Client::builder(TokioExecutor::new())
        // Without a pool timer, idle connections are never reaped (see shared pitfalls).
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(origin.pool_idle_timeout.0)
        .pool_max_idle_per_host(origin.pool_max_idle)
        .build(connector))
}

fn root_store(origin: &Origin) -> Result<RootCertStore, ClientError> {
    let mut roots = RootCertStore::empty();
    if origin.url.scheme_str() == Some("https") {
        // The system store matters only for https origins; a plain-http setup should not
        // pay for reading it (nor warn when a slim container has none).
        let native = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        if added == 0 && origin.ca_file.is_none() {
            tracing::warn!("no system CA certificates found; set origin.ca_file to trust the origin");
        }
    }
    if let Some(path) = &origin.ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| ClientError::CaFile(format!("cannot read {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(ClientError::CaFile(format!("no certificate in {}", path.display())));
        }
        for cert in certs {
            roots.add(cert)?;
        }
    }
    Ok(roots)
}
