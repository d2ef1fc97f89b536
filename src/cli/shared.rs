//! What the commands share: the signed-in client, workspace names, the organization, and
//! `--parameter` values.

use super::config;
use super::http::{CliError, CliResult, Client};
use clap::Args;
use serde_json::Value;

#[derive(Args)]
pub struct NameArg {
    /// The workspace: NAME (yours) or OWNER/NAME.
    pub name: String,
}

/// A client for the signed-in server (or `KILN_URL` / `KILN_TOKEN`).
pub(crate) fn client() -> CliResult<Client> {
    config::current()?.client()
}

/// `OWNER/NAME` or `NAME` (the caller's: `me`).
pub(crate) fn split_name(name: &str) -> CliResult<(String, String)> {
    match name.split_once('/') {
        Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => {
            Ok((o.to_string(), n.to_string()))
        }
        None if !name.is_empty() => Ok(("me".into(), name.to_string())),
        _ => Err(CliError::new(format!(
            "{name:?} is not a workspace name: NAME or OWNER/NAME"
        ))),
    }
}

/// A workspace by `OWNER/NAME` or `NAME`.
pub(crate) fn workspace(c: &Client, name: &str) -> CliResult<Value> {
    let (owner, ws) = split_name(name)?;
    c.get(&format!("/api/v2/users/{owner}/workspace/{ws}"))
}

/// The caller's first organization's name (the default one, `coder`, on kiln).
pub(crate) fn organization(c: &Client) -> CliResult<String> {
    let orgs = c.get("/api/v2/users/me/organizations")?;
    orgs[0]["name"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| CliError::new("you are a member of no organization"))
}

/// `k=v` pairs as Coder's rich parameter values.
pub(crate) fn parameters(pairs: &[String]) -> CliResult<Vec<Value>> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok(serde_json::json!({"name": k.trim(), "value": v}))
            }
            _ => Err(CliError::new(format!(
                "--parameter {p:?}: expected NAME=VALUE"
            ))),
        })
        .collect()
}
