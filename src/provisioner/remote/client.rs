//! The daemon's HTTP client for kiln's provisioner protocol (`docs/provisioners.md`): one call
//! per function, the key in its header, JSON both ways (`ureq`, on the calling thread).

use super::wire::KEY_HEADER;
use serde::Serialize;
use serde::de::DeserializeOwned;
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
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(why) => write!(f, "the server cannot be reached: {why}"),
            CallError::KeyRefused(why) => write!(f, "the provisioner key was refused: {why}"),
            CallError::Refused(status, why) => write!(f, "refused ({status}): {why}"),
        }
    }
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    key: String,
}

impl Client {
    /// A client of the kiln server at `url` (`http://host:port`).
    pub fn new(url: &str, key: &str) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(2)))
            .build()
            .into();
        Client {
            agent,
            base: format!("{}/api/v2/provisionerd", url.trim_end_matches('/')),
            key: key.to_string(),
        }
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
            .map_err(|e| CallError::Unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        if status == 204 {
            return Ok(None);
        }
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| CallError::Unreachable(e.to_string()))?;
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
