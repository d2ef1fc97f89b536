//! `kiln login` and `kiln logout`. As `coder login`, a login to a server with no user yet
//! creates the first one (the owner), from prompts on a terminal or the `--first-user-*` flags.

use super::config::{self, Session};
use super::http::{CliError, CliResult, Client};
use super::term;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
pub struct LoginArgs {
    /// The server's address, e.g. http://127.0.0.1:3000.
    pub url: String,
    /// A session token or API key to use instead of signing in with email and password.
    #[arg(long, env = "KILN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A server without users: the first user's username (asked on a terminal otherwise).
    #[arg(long, env = "KILN_FIRST_USER_USERNAME")]
    pub first_user_username: Option<String>,
    /// A server without users: the first user's email (asked on a terminal otherwise).
    #[arg(long, env = "KILN_FIRST_USER_EMAIL")]
    pub first_user_email: Option<String>,
    /// A server without users: the first user's password (asked on a terminal otherwise).
    #[arg(long, env = "KILN_FIRST_USER_PASSWORD", hide_env_values = true)]
    pub first_user_password: Option<String>,
    /// An https:// server: a PEM file of CA certificates its certificate may chain to, trusted
    /// besides the system's roots, and kept with the session for later commands.
    #[arg(long, env = "KILN_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

/// A flag's value, else the answer to a prompt on a terminal, else the refusal naming it.
fn given_or_asked(given: Option<String>, flag: &str, question: &str) -> CliResult<String> {
    if let Some(v) = given.filter(|v| !v.trim().is_empty()) {
        return Ok(v);
    }
    if !term::stdin_is_terminal() {
        return Err(CliError::new(format!(
            "this server has no user yet: pass {flag} (or run kiln login on a terminal)"
        )));
    }
    if question.starts_with("Password") {
        term::prompt_secret(question)
    } else {
        term::prompt(question).map(|a| a.trim().to_string())
    }
}

/// Signs in with email and password; the session token.
fn password_login(anon: &Client, email: &str, password: &str) -> CliResult<String> {
    let r = anon.post(
        "/api/v2/users/login",
        &json!({"email": email, "password": password}),
    )?;
    r["session_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| CliError::new("the server's answer holds no session token"))
}

pub fn login(a: LoginArgs) -> CliResult<i32> {
    let url = config::normalize_url(&a.url);
    // Kept as an absolute path: later commands may run from another folder.
    let ca_file = match a.ca_file.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => Some(
            std::path::absolute(&p)
                .map_err(|e| CliError::new(format!("--ca-file {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let mut anon = Client::new(&url, None, ca_file.as_deref())?;
    anon.login_hint = false;
    let token = match a.token.filter(|t| !t.trim().is_empty()) {
        Some(t) => t.trim().to_string(),
        None if anon.get_opt("/api/v2/users/first")?.is_none() => {
            println!("{url} has no user yet: creating the first one, the owner.");
            let username =
                given_or_asked(a.first_user_username, "--first-user-username", "Username: ")?;
            let email = given_or_asked(a.first_user_email, "--first-user-email", "Email: ")?;
            let password =
                given_or_asked(a.first_user_password, "--first-user-password", "Password: ")?;
            anon.post(
                "/api/v2/users/first",
                &json!({"username": username, "email": email, "password": password}),
            )?;
            password_login(&anon, &email, &password)?
        }
        None => {
            if !term::stdin_is_terminal() {
                return Err(CliError::new(
                    "kiln login asks for email and password on a terminal; pass --token (or KILN_TOKEN) otherwise",
                ));
            }
            let email = term::prompt("Email: ")?;
            let password = term::prompt_secret("Password: ")?;
            password_login(&anon, email.trim(), &password)?
        }
    };
    let session = Session {
        url: url.clone(),
        token,
        ca_file,
    };
    let me = session.client()?.get("/api/v2/users/me")?;
    let path = config::save(&session)?;
    println!(
        "Welcome to kiln, {}! You are signed in to {url}.",
        me["username"].as_str().unwrap_or("")
    );
    println!("The session is kept in {}.", path.display());
    Ok(0)
}

pub fn logout() -> CliResult<i32> {
    let s = config::current()?;
    if !s.token.is_empty() {
        let c = s.client()?;
        let a = c.raw("POST", "/api/v2/users/logout", None)?;
        // A session that has already ended (401) is as good as ended now.
        if a.status != 401 {
            c.check(a)?;
        }
    }
    config::remove()?;
    println!("You are signed out of {}.", s.url);
    Ok(0)
}
