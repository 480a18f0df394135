//! Loading the TLS certificate chain and private key (PEM) of the https listener.

use super::ConfigErrors;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

/// The parsed PEM files, ready to build a rustls server config from.
#[derive(Debug)]
pub struct TlsFiles {
    pub cert_chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl TlsFiles {
    pub fn load(cert: &Path, key: &Path) -> Result<Self, ConfigErrors> {
        let mut problems = Vec::new();
        let cert_chain =
            match CertificateDer::pem_file_iter(cert).and_then(|certs| certs.collect::<Result<Vec<_>, _>>()) {
                Ok(chain) if chain.is_empty() => {
                    problems.push(format!("listen.tls_cert: no certificate found in {}", cert.display()));
                    Vec::new()
                }
                Ok(chain) => chain,
                Err(e) => {
                    problems.push(format!("listen.tls_cert: cannot read {}: {e}", cert.display()));
                    Vec::new()
                }
            };
        let key = match PrivateKeyDer::from_pem_file(key) {
            Ok(k) => Some(k),
            Err(e) => {
                problems.push(format!("listen.tls_key: cannot read a private key from {}: {e}", key.display()));
                None
            }
        };
        match key {
            Some(key) if problems.is_empty() => Ok(Self { cert_chain, key }),
            _ => Err(ConfigErrors(problems)),
        }
    }
}
