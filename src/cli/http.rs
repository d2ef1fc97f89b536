//! A small synchronous client for kiln's API over `ureq`: the session token on every request,
//! Coder's error body turned into lines, and a server that cannot be reached named by its URL.

use serde_json::Value;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

/// What a command prints on failure: one line each (the server's message, its detail, each
/// validation), exit code 1.
#[derive(Debug)]
pub struct CliError {
    pub lines: Vec<String>,
}

impl CliError {
    pub fn new(line: impl Into<String>) -> CliError {
        CliError {
            lines: vec![line.into()],
        }
    }

    pub fn with(mut self, line: impl Into<String>) -> CliError {
        self.lines.push(line.into());
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines.join("\n"))
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        CliError::new(e.to_string())
    }
}

pub type CliResult<T> = Result<T, CliError>;

/// The lines of a Coder error body (`message`, `detail`, `validations`), or of a body that is
/// not one (its status and text).
pub fn error_lines(status: u16, body: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body).trim().to_string();
        return vec![format!("the server answered {status}: {text}")];
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().trim().to_string();
    let mut lines = vec![];
    let message = text(&v["message"]);
    lines.push(if message.is_empty() {
        format!("the server answered {status}")
    } else {
        message
    });
    let detail = text(&v["detail"]);
    if !detail.is_empty() {
        lines.push(detail);
    }
    for val in v["validations"].as_array().into_iter().flatten() {
        lines.push(format!("{}: {}", text(&val["field"]), text(&val["detail"])));
    }
    lines
}

pub struct Client {
    agent: ureq::Agent,
    /// The server's address, without a trailing slash.
    pub url: String,
    pub token: Option<String>,
    /// Whether a 401 adds "run kiln login" (not while signing in).
    pub login_hint: bool,
}

/// An answer: its status and body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> CliResult<Value> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| CliError::new(format!("the server's answer is not JSON: {e}")))
    }
}

/// What to say of a certificate the client does not trust.
pub const CA_HINT: &str = "trust its CA with kiln login URL --ca-file FILE (or KILN_CA_FILE=FILE)";

impl Client {
    /// A client of `url`; an `https://` server's certificate is checked against the system's
    /// roots and `ca_file`'s certificates.
    pub fn new(url: &str, token: Option<String>, ca_file: Option<&Path>) -> CliResult<Client> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .max_redirects(0)
            .user_agent(concat!("kiln-cli/", env!("CARGO_PKG_VERSION")));
        if url.starts_with("https://") {
            config = config.tls_config(crate::tls::ureq_config(ca_file).map_err(CliError::new)?);
        }
        Ok(Client {
            agent: config.build().into(),
            url: url.trim_end_matches('/').to_string(),
            token,
            login_hint: true,
        })
    }

    fn full(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    fn unreachable(&self, url: &str, e: ureq::Error) -> CliError {
        let cause = match crate::tls::ureq_tls_error(&e) {
            Some(tls) => crate::tls::explain(tls, CA_HINT),
            None => match e {
                ureq::Error::Io(io) => io.to_string(),
                other => other.to_string(),
            },
        };
        CliError::new(format!("cannot reach {url}: {cause}"))
    }

    /// Sends a request and reads the whole answer, whatever its status.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> CliResult<Answer> {
        let url = self.full(path);
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Accept", "application/json");
        if let Some(t) = &self.token {
            req = req.header("Coder-Session-Token", t);
        }
        let result = match body {
            Some((content_type, bytes)) => {
                let req = req
                    .header("Content-Type", content_type)
                    .body(bytes)
                    .map_err(|e| CliError::new(format!("bad request for {url}: {e}")))?;
                self.agent.run(req)
            }
            None => {
                let req = req
                    .body(())
                    .map_err(|e| CliError::new(format!("bad request for {url}: {e}")))?;
                self.agent.run(req)
            }
        };
        let mut res = result.map_err(|e| self.unreachable(&url, e))?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .map_err(|e| self.unreachable(&url, e))?;
        Ok(Answer { status, body })
    }

    /// Turns a refusal into its error lines (a 401 also says how to sign in, but for the
    /// sign-in itself).
    pub fn check(&self, a: Answer) -> CliResult<Answer> {
        if a.status < 400 {
            return Ok(a);
        }
        let mut e = CliError {
            lines: error_lines(a.status, &a.body),
        };
        if a.status == 401 && self.login_hint {
            e = e.with(format!("run kiln login {} to sign in", self.url));
        }
        Err(e)
    }

    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> CliResult<Value> {
        let body = body.map(|b| ("application/json", serde_json::to_vec(b).unwrap()));
        let a = self.raw(method, path, body)?;
        self.check(a)?.json()
    }

    pub fn get(&self, path: &str) -> CliResult<Value> {
        self.call("GET", path, None)
    }

    /// GET that reads a 404 as "none".
    pub fn get_opt(&self, path: &str) -> CliResult<Option<Value>> {
        let a = self.raw("GET", path, None)?;
        if a.status == 404 {
            return Ok(None);
        }
        self.check(a)?.json().map(Some)
    }

    pub fn get_bytes(&self, path: &str) -> CliResult<Vec<u8>> {
        let a = self.raw("GET", path, None)?;
        Ok(self.check(a)?.body)
    }

    pub fn post(&self, path: &str, body: &Value) -> CliResult<Value> {
        self.call("POST", path, Some(body))
    }

    /// A streaming GET (a log follow): the answer's lines as they arrive.
    pub fn stream(&self, path: &str) -> CliResult<Box<dyn BufRead + Send>> {
        let url = self.full(path);
        let mut req = self
            .agent
            .get(&url)
            .header("Accept", "application/x-ndjson");
        if let Some(t) = &self.token {
            req = req.header("Coder-Session-Token", t);
        }
        let mut res = req.call().map_err(|e| self.unreachable(&url, e))?;
        let status = res.status().as_u16();
        if status >= 400 {
            let body = res.body_mut().read_to_vec().unwrap_or_default();
            self.check(Answer { status, body })?;
        }
        Ok(Box::new(BufReader::new(res.into_body().into_reader())))
    }
}
