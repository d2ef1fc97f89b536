//! The daemon's HTTP client for kiln's provisioner protocol (`docs/provisioners.md`): one call
//! per function, the key in its header, JSON both ways (`ureq`, on the calling thread).

use super::wire::KEY_HEADER;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::time::Duration;

/// Answers may carry template archives and states.
const MAX_ANSWER: u64 = 256 << 20;

/// How a call ended.
#[derive(Debug)]
pub enum CallError {
    /// The server could not be reached, or answered 5xx: try again later.
    Unreachable(String),
    /// The key was refused (401): it was deleted or is wrong.
    KeyRefused(String),
    /// Any other 4xx: `(status, message)`.
    Refused(u16, String),
    /// The server's certificate is not trusted (or TLS failed otherwise): what to fix.
    Tls(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(why) => write!(f, "the server cannot be reached: {why}"),
            CallError::KeyRefused(why) => write!(f, "the provisioner key was refused: {why}"),
            CallError::Refused(status, why) => write!(f, "refused ({status}): {why}"),
            CallError::Tls(why) => f.write_str(why),
        }
    }
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    key: String,
}

/// What to say of a certificate the daemon does not trust.
const CA_HINT: &str = "trust its CA with --ca-file FILE (or KILN_CA_FILE=FILE)";

fn call_error(e: ureq::Error) -> CallError {
    match crate::tls::ureq_tls_error(&e) {
        Some(tls) => CallError::Tls(crate::tls::explain(tls, CA_HINT)),
        None => CallError::Unreachable(e.to_string()),
    }
}

impl Client {
    /// A client of the kiln server at `url` (`http://host:port` or `https://…`, whose
    /// certificate must chain to the system's roots or to `ca_file`'s certificates).
    pub fn new(url: &str, key: &str, ca_file: Option<&Path>) -> Result<Client, String> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(2)));
        if url.starts_with("https://") {
            config = config.tls_config(crate::tls::ureq_config(ca_file)?);
        }
        Ok(Client {
            agent: config.build().into(),
            base: format!("{}/api/v2/provisionerd", url.trim_end_matches('/')),
            key: key.to_string(),
        })
    }

    /// POSTs `body` to `path` (under `/api/v2/provisionerd`), waiting at most `timeout`;
    /// `Ok(None)` for a 204.
    pub fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        timeout: Duration,
    ) -> Result<Option<T>, CallError> {
        let url = format!("{}{path}", self.base);
        let mut resp = self
            .agent
            .post(&url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header(KEY_HEADER, &self.key)
            .send_json(body)
            .map_err(call_error)?;
        let status = resp.status().as_u16();
        if status == 204 {
            return Ok(None);
        }
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(call_error)?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| CallError::Unreachable(format!("unreadable answer: {e}")));
        }
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        match status {
            401 => Err(CallError::KeyRefused(message)),
            400..=499 => Err(CallError::Refused(status, message)),
            _ => Err(CallError::Unreachable(format!("{status} {message}"))),
        }
    }
}
