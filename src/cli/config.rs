//! Where `kiln login` keeps the server's URL and the session token:
//! `$XDG_CONFIG_HOME/kiln/session.json` (else `~/.config/kiln/session.json`), mode 0600 in a
//! folder of mode 0700. `KILN_URL` and `KILN_TOKEN` override what the file says.

use super::http::{CliError, CliResult};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

#[derive(Serialize, Deserialize, Default, Clone)]
pub struct Session {
    pub url: String,
    pub token: String,
    /// A CA file an `https://` server's certificate may chain to, besides the system's roots
    /// (`kiln login --ca-file`; `KILN_CA_FILE` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl Session {
    /// A client of this session's server.
    pub fn client(&self) -> CliResult<super::http::Client> {
        let token = Some(self.token.clone()).filter(|t| !t.is_empty());
        super::http::Client::new(&self.url, token, self.ca_file.as_deref())
    }
}

/// The folder of kiln's client settings.
pub fn dir() -> CliResult<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".config"),
            None => {
                return Err(CliError::new(
                    "neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the session",
                ));
            }
        },
    };
    Ok(base.join("kiln"))
}

pub fn path() -> CliResult<PathBuf> {
    Ok(dir()?.join("session.json"))
}

/// The stored session, if any.
pub fn load() -> CliResult<Option<Session>> {
    let p = path()?;
    match std::fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            CliError::new(format!("{} is not a kiln session file: {e}", p.display()))
                .with("run kiln login to write it again")
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::new(format!("cannot read {}: {e}", p.display()))),
    }
}

/// Writes the session (to a new file of mode 0600, renamed over the old one).
pub fn save(s: &Session) -> CliResult<PathBuf> {
    let d = dir()?;
    let fail = |what: &str, e: std::io::Error| CliError::new(format!("cannot {what}: {e}"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)
        .map_err(|e| fail(&format!("create {}", d.display()), e))?;
    let p = d.join("session.json");
    let tmp = d.join(".session.json.new");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail(&format!("write {}", tmp.display()), e))?;
    f.write_all(&serde_json::to_vec_pretty(s).unwrap())
        .and_then(|_| f.sync_all())
        .map_err(|e| fail(&format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, &p).map_err(|e| fail(&format!("write {}", p.display()), e))?;
    Ok(p)
}

/// Removes the stored session; whether there was one.
pub fn remove() -> CliResult<bool> {
    let p = path()?;
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CliError::new(format!("cannot remove {}: {e}", p.display()))),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The server and token a command uses: `KILN_URL` / `KILN_TOKEN` first, then the file.
pub fn current() -> CliResult<Session> {
    let stored = load()?.unwrap_or_default();
    let mut s = pick(stored, env("KILN_URL"), env("KILN_TOKEN"))?;
    if let Some(ca) = env("KILN_CA_FILE") {
        s.ca_file = Some(PathBuf::from(ca));
    }
    Ok(s)
}

/// The stored session under the environment's overrides. The stored token goes only to the
/// stored server: with `KILN_URL` naming another one, only `KILN_TOKEN` is sent.
pub fn pick(stored: Session, url: Option<String>, token: Option<String>) -> CliResult<Session> {
    let stored_url = normalize_url(&stored.url);
    let url = url.map(|u| normalize_url(&u)).unwrap_or(stored_url.clone());
    if url.is_empty() {
        return Err(CliError::new(
            "no kiln server: run kiln login URL (or set KILN_URL)",
        ));
    }
    let same = url == stored_url;
    let token = match token {
        Some(t) => t,
        None if same => stored.token,
        None => String::new(),
    };
    let ca_file = stored.ca_file.filter(|_| same);
    Ok(Session {
        url,
        token,
        ca_file,
    })
}

/// `host:port` becomes `http://host:port`; no trailing slash.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.is_empty() || url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    }
}

#[cfg(test)]
mod tests {
    use super::{Session, normalize_url, pick};

    fn stored() -> Session {
        Session {
            url: "http://a:3000/".into(),
            token: "secret".into(),
            ca_file: None,
        }
    }

    #[test]
    fn the_stored_token_goes_only_to_the_stored_server() {
        let s = pick(stored(), None, None).unwrap();
        assert_eq!(
            (s.url.as_str(), s.token.as_str()),
            ("http://a:3000", "secret")
        );
        let s = pick(stored(), Some("a:3000".into()), None).unwrap();
        assert_eq!(s.token, "secret");
        let s = pick(stored(), Some("http://b:3000".into()), None).unwrap();
        assert_eq!((s.url.as_str(), s.token.as_str()), ("http://b:3000", ""));
        let s = pick(stored(), Some("http://b:3000".into()), Some("t2".into())).unwrap();
        assert_eq!(s.token, "t2");
        let s = pick(stored(), None, Some("t3".into())).unwrap();
        assert_eq!((s.url.as_str(), s.token.as_str()), ("http://a:3000", "t3"));
        assert!(pick(Session::default(), None, Some("t".into())).is_err());
        assert_eq!(normalize_url(" https://x/ "), "https://x");
    }
}
