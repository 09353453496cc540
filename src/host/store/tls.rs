//! TLS for https image sources: rustls (ring) trusting a PEM CA bundle read
//! from the device (OpenWrt's ca-bundle, Yocto's ca-certificates), not a
//! compiled-in root list, so the fleet's own CA works without a rebuild.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use super::transfer::FetchError;

/// A client config trusting every certificate in the PEM file `bundle`.
pub(crate) fn client_config(bundle: &Path) -> Result<Arc<rustls::ClientConfig>, FetchError> {
    let ca_err = |source| FetchError::CaBundle {
        path: bundle.to_owned(),
        source,
    };
    let f = File::open(bundle).map_err(ca_err)?;
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<_> = rustls_pemfile::certs(&mut BufReader::new(f))
        .collect::<Result<_, _>>()
        .map_err(ca_err)?;
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(ca_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no PEM certificate in it",
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ca_err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}
