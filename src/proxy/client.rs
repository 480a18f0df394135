//! Builds the upstream connection pool from `[origin]`: TCP, or TLS verified against the
//! system's CA store plus `origin.ca_file`.

use super::pool::Pool;
use crate::config::Origin;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use std::sync::Arc;
use tokio_rustls::TlsConnector;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("origin.ca_file: {0}")]
    CaFile(String),
    #[error("origin TLS: {0}")]
    Tls(#[from] rustls::Error),
}

pub(super) fn build(origin: &Origin) -> Result<Pool, ClientError> {
    let tls = if origin.url.scheme_str() == Some("https") {
        let mut config =
            rustls::ClientConfig::builder().with_root_certificates(root_store(origin)?).with_no_client_auth();
        // The upstream side speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Some(TlsConnector::from(Arc::new(config)))
    } else {
        None
    };
    Ok(Pool::new(origin, tls))
}

fn root_store(origin: &Origin) -> Result<RootCertStore, ClientError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 && origin.ca_file.is_none() {
        tracing::warn!("no system CA certificates found; set origin.ca_file to trust the origin");
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
