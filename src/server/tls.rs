//! The rustls acceptor of the https listener, with ALPN for HTTP/2 and HTTP/1.1.

use crate::config::TlsFiles;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

pub(crate) fn acceptor(files: TlsFiles) -> Result<TlsAcceptor, rustls::Error> {
    let mut config =
        rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(files.cert_chain, files.key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
