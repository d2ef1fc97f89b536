//! Encrypted connections to PostgreSQL, as libpq's `sslmode` and `sslrootcert` ask (the
//! driver parses neither `verify-*` nor `sslrootcert`, so they are taken out of `--database`
//! here and the rest goes to the driver):
//! - `disable`: never TLS; `allow` and `prefer` (the default): TLS when the server offers it,
//!   its certificate unchecked; `require`: TLS or nothing, unchecked (checked as `verify-ca`
//!   when `sslrootcert` is given, as libpq does);
//! - `verify-ca`: the certificate must chain to `sslrootcert`; `verify-full`: and name the
//!   host. `sslrootcert` is a PEM file, or `system` for the system's roots; without it,
//!   `~/.postgresql/root.crt` as libpq.
//!
//! A Unix socket never speaks TLS (as libpq). The TLS is kiln's one stack (`crate::tls`).

use postgres::config::{Host, SslMode};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(text: &str) -> Result<Mode, String> {
        Ok(match text {
            "disable" => Mode::Disable,
            "allow" => Mode::Allow,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode {other:?}: use disable, allow, prefer, require, verify-ca or verify-full"
                ));
            }
        })
    }
}

/// A database to connect to: the driver's settings and the TLS that goes with them.
#[derive(Clone)]
pub struct Connector {
    pub config: postgres::Config,
    tls: MakeRustlsConnect,
    pub mode: Mode,
}

impl Connector {
    /// Reads `--database` (a URL or a libpq `key=value` string).
    pub fn parse(database: &str) -> Result<Connector, String> {
        let (rest, mode, root) = split(database)?;
        let mut config = postgres::Config::from_str(&rest).map_err(|e| {
            format!(
                "--database is not a PostgreSQL connection string: {}",
                super::dialect::error_chain(&e)
            )
        })?;
        let mut mode = mode.unwrap_or(Mode::Prefer);
        if mode == Mode::Require && root.is_some() {
            mode = Mode::VerifyCa;
        }
        let sockets_only = !config.get_hosts().is_empty()
            && config
                .get_hosts()
                .iter()
                .all(|h| matches!(h, Host::Unix(_)));
        config.ssl_mode(match mode {
            _ if sockets_only => SslMode::Disable,
            Mode::Disable => SslMode::Disable,
            Mode::Allow | Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        });
        let tls = MakeRustlsConnect::new(client_config(mode, root)?);
        Ok(Connector { config, tls, mode })
    }

    pub fn connect(&self) -> Result<postgres::Client, postgres::Error> {
        self.config.connect(self.tls.clone())
    }
}

/// The TLS settings for `mode`.
fn client_config(mode: Mode, root: Option<String>) -> Result<rustls::ClientConfig, String> {
    let builder = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        Mode::Disable | Mode::Allow | Mode::Prefer | Mode::Require => {
            Arc::new(Unchecked(crate::tls::provider()))
        }
        Mode::VerifyCa | Mode::VerifyFull => {
            let mut store = rustls::RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(roots(mode, root)?);
            if added == 0 {
                return Err("sslrootcert: no usable CA certificate".into());
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(
                Arc::new(store),
                crate::tls::provider(),
            )
            .build()
            .map_err(|e| format!("sslrootcert: {e}"))?;
            if mode == Mode::VerifyFull {
                webpki
            } else {
                Arc::new(AnyName(webpki))
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The CA certificates `sslrootcert` names (`system`: the system's roots).
fn roots(mode: Mode, root: Option<String>) -> Result<Vec<CertificateDer<'static>>, String> {
    let path = match root.as_deref() {
        Some("system") => return crate::tls::client_roots(None),
        Some(path) => PathBuf::from(path),
        None => {
            let default = std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".postgresql/root.crt"))
                .filter(|p| p.is_file());
            default.ok_or_else(|| {
                format!(
                    "sslmode={} needs sslrootcert: a PEM file of the server's CA, or \"system\" \
                     for the system's roots (libpq's default ~/.postgresql/root.crt does not exist)",
                    if mode == Mode::VerifyFull { "verify-full" } else { "verify-ca" }
                )
            })?
        }
    };
    crate::tls::read_certificates(&path).map_err(|e| format!("sslrootcert: {e}"))
}

/// `--database` without `sslmode` and `sslrootcert`, and their values.
fn split(database: &str) -> Result<(String, Option<Mode>, Option<String>), String> {
    let trimmed = database.trim();
    let pairs = if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        url_params(trimmed)
    } else {
        keyword_params(trimmed)?
    };
    let mut rest = trimmed.to_string();
    let (mut mode, mut root) = (None, None);
    // Cut from the end first, so earlier spans stay where they are.
    for (key, value, span) in pairs.into_iter().rev() {
        match key.as_str() {
            "sslmode" if mode.is_none() => mode = Some(value.parse::<Mode>()?),
            "sslrootcert" if root.is_none() => root = Some(value),
            "sslmode" | "sslrootcert" => {}
            _ => continue,
        }
        rest.replace_range(span, "");
    }
    let rest = rest.trim_end().trim_end_matches(['?', '&']).to_string();
    Ok((rest, mode, root))
}

/// A URL's query parameters: `(key, value, span of "key=value&" in the URL)`.
fn url_params(url: &str) -> Vec<(String, String, std::ops::Range<usize>)> {
    let Some(q) = url.find('?') else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut start = q + 1;
    for part in url[q + 1..].split('&') {
        let end = start + part.len();
        let span_end = (end + 1).min(url.len());
        if let Some((k, v)) = part.split_once('=') {
            out.push((percent_decode(k), percent_decode(v), start..span_end));
        }
        start = end + 1;
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// libpq's `key = value` pairs (a value may be single-quoted, with `\'` and `\\`):
/// `(key, value, span of the pair and the spaces after it)`.
fn keyword_params(text: &str) -> Result<Vec<(String, String, std::ops::Range<usize>)>, String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_spaces = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    i = skip_spaces(i);
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = text[start..i].to_string();
        i = skip_spaces(i);
        if i >= b.len() || b[i] != b'=' {
            // Not a pair: leave it to the driver, which says what is wrong.
            return Ok(out);
        }
        i = skip_spaces(i + 1);
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err(format!("--database: unterminated quote in {key}")),
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < b.len() => {
                        value.push(b[i + 1]);
                        i += 2;
                    }
                    Some(&c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                value.push(b[i]);
                i += 1;
            }
        }
        i = skip_spaces(i);
        out.push((key, String::from_utf8_lossy(&value).into_owned(), start..i));
    }
    Ok(out)
}

/// `require` and weaker: encryption without knowing whom to (libpq's behaviour); the
/// handshake's signatures are still checked.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain is checked, the name is not.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_settings_come_out_of_a_url() {
        let (rest, mode, root) = split(
            "postgres://kiln:pw@db:5432/kiln?sslmode=verify-full&connect_timeout=3&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://kiln:pw@db:5432/kiln?connect_timeout=3");
        assert_eq!(mode, Some(Mode::VerifyFull));
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        let (rest, mode, _) = split("postgresql://db/kiln?sslmode=require").unwrap();
        assert_eq!(
            (rest.as_str(), mode),
            ("postgresql://db/kiln", Some(Mode::Require))
        );
        let (rest, mode, root) = split("postgres://db/kiln").unwrap();
        assert_eq!(
            (rest.as_str(), mode, root),
            ("postgres://db/kiln", None, None)
        );
    }

    #[test]
    fn ssl_settings_come_out_of_keywords() {
        let (rest, mode, root) =
            split("host=db sslmode = verify-ca dbname=kiln sslrootcert='/etc/my ca.pem' user=kiln")
                .unwrap();
        assert_eq!(rest, "host=db dbname=kiln user=kiln");
        assert_eq!(mode, Some(Mode::VerifyCa));
        assert_eq!(root.as_deref(), Some("/etc/my ca.pem"));
        assert!(split("host=db sslmode=sometimes").is_err());
        assert!(split("host=db sslrootcert='open").is_err());
    }

    #[test]
    fn modes_become_the_drivers() {
        let c = Connector::parse("host=db dbname=kiln sslmode=verify-ca sslrootcert=system");
        // The system may have no roots here; either way the mode is read.
        if let Ok(c) = c {
            assert_eq!(c.config.get_ssl_mode(), SslMode::Require);
            assert_eq!(c.mode, Mode::VerifyCa);
        }
        let c = Connector::parse("host=db dbname=kiln sslmode=disable").unwrap();
        assert_eq!(c.config.get_ssl_mode(), SslMode::Disable);
        let c = Connector::parse("host=db dbname=kiln").unwrap();
        assert_eq!(c.config.get_ssl_mode(), SslMode::Prefer);
        // A socket never speaks TLS.
        let c = Connector::parse("host=/run/postgresql dbname=kiln sslmode=require").unwrap();
        assert_eq!(c.config.get_ssl_mode(), SslMode::Disable);
        let e = Connector::parse("host=db sslmode=verify-full sslrootcert=/nonexistent.pem")
            .err()
            .unwrap();
        assert!(
            e.contains("sslrootcert: cannot read /nonexistent.pem"),
            "{e}"
        );
    }
}
