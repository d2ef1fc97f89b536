//! TLS, one stack for every connection kiln takes or makes (rustls, with ring's primitives):
//! the server's HTTPS listener (`--tls-*`), and the roots the client (`kiln login https://…`),
//! the provisioner daemon and PostgreSQL connections verify servers against: the system's
//! roots plus a CA file the operator names.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// The crypto kiln uses everywhere (installed as the process default on first use, so every
/// library that asks rustls for the default gets the same).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    if let Some(p) = rustls::crypto::CryptoProvider::get_default() {
        return p.clone();
    }
    // Two threads may race here: the loser's install fails, and both use the winner's.
    // ring, not aws-lc-rs: it builds from a small amount of C and assembly with no CMake and
    // in seconds; what it lacks is the post-quantum key exchange (X25519MLKEM768), which
    // rustls marks by deprecating this function. X25519 and the NIST curves remain.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    rustls::crypto::CryptoProvider::get_default()
        .expect("a crypto provider is installed")
        .clone()
}

/// The oldest TLS version the HTTPS listener accepts (`--tls-min-version`, Coder's words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinVersion {
    Tls12,
    Tls13,
}

impl std::str::FromStr for MinVersion {
    type Err = String;
    fn from_str(text: &str) -> Result<MinVersion, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "tls12" => Ok(MinVersion::Tls12),
            "tls13" => Ok(MinVersion::Tls13),
            "tls10" | "tls11" => Err(format!(
                "{text:?}: kiln speaks TLS 1.2 and 1.3 only (TLS 1.0 and 1.1 are broken); use tls12 or tls13"
            )),
            _ => Err(format!("{text:?} is not a TLS version: use tls12 or tls13")),
        }
    }
}

/// Reads every certificate of a PEM file; a file with none is an error.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The HTTPS listener's settings: its certificate chain and key (PEM files) and the oldest
/// version it speaks. HTTP/1.1 only, as the plain listener.
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
    min: MinVersion,
) -> Result<rustls::ServerConfig, String> {
    let chain = read_certificates(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("cannot read a private key from {}: {e}", key_file.display()))?;
    let versions: &[&rustls::SupportedProtocolVersion] = match min {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "{} and {} do not make a certificate and its key: {e}",
                cert_file.display(),
                key_file.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificates a client trusts: the system's roots (`SSL_CERT_FILE` / `SSL_CERT_DIR`
/// replace them, as for OpenSSL) plus every certificate of `ca_file`. Unreadable system roots
/// are skipped; an unreadable `ca_file` is an error.
pub fn client_roots(ca_file: Option<&Path>) -> Result<Vec<CertificateDer<'static>>, String> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        log::debug!("system root certificates: {e}");
    }
    let mut roots = found.certs;
    if let Some(path) = ca_file {
        roots.extend(read_certificates(path)?);
    }
    Ok(roots)
}

/// A client's settings trusting `client_roots(ca_file)`.
pub fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut store = rustls::RootCertStore::empty();
    let (_, skipped) = store.add_parsable_certificates(client_roots(ca_file)?);
    if skipped > 0 {
        log::debug!("{skipped} root certificate(s) could not be parsed and are not trusted");
    }
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(store).with_no_client_auth())
        .map_err(|e| format!("TLS versions: {e}"))
}

/// ureq's settings trusting `client_roots(ca_file)`, for the client and the daemon.
pub fn ureq_config(ca_file: Option<&Path>) -> Result<ureq::tls::TlsConfig, String> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let roots: Vec<Certificate<'static>> = client_roots(ca_file)?
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .unversioned_rustls_crypto_provider(provider())
        .build())
}

/// The TLS error inside a ureq error, if that is what it is.
pub fn ureq_tls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(e) => Some(e),
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

/// Words for a failed TLS connection, for the one who can fix it: an untrusted certificate
/// names the way to trust it.
pub fn explain(e: &rustls::Error, ca_hint: &str) -> String {
    match e {
        rustls::Error::InvalidCertificate(why) => {
            format!("the server's certificate is not trusted ({why:?}); {ca_hint}")
        }
        other => format!("TLS: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_versions_as_coder_names_them() {
        assert_eq!("tls12".parse(), Ok(MinVersion::Tls12));
        assert_eq!("TLS13".parse(), Ok(MinVersion::Tls13));
        let e = "tls10".parse::<MinVersion>().unwrap_err();
        assert!(e.contains("TLS 1.2 and 1.3 only"), "{e}");
        assert!("ssl3".parse::<MinVersion>().is_err());
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = client_roots(Some(&path)).unwrap_err();
        assert!(e.contains("holds no certificate"), "{e}");
        let e = client_roots(Some(&dir.path().join("missing.pem"))).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }
}
