//! `kiln login` and `kiln logout`.

use super::config::{self, Session};
use super::http::{CliError, CliResult, Client};
use super::term;
use clap::Args;

#[derive(Args)]
pub struct LoginArgs {
    /// The server's address, e.g. http://127.0.0.1:3000.
    pub url: String,
    /// A session token or API key to use instead of signing in with email and password.
    #[arg(long, env = "KILN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

pub fn login(a: LoginArgs) -> CliResult<i32> {
    let url = config::normalize_url(&a.url);
    let token = match a.token.filter(|t| !t.trim().is_empty()) {
        Some(t) => t.trim().to_string(),
        None => {
            if !term::stdin_is_terminal() {
                return Err(CliError::new(
                    "kiln login asks for email and password on a terminal; pass --token (or KILN_TOKEN) otherwise",
                ));
            }
            let email = term::prompt("Email: ")?;
            let password = term::prompt_secret("Password: ")?;
            let mut anon = Client::new(&url, None);
            anon.login_hint = false;
            let r = anon.post(
                "/api/v2/users/login",
                &serde_json::json!({"email": email.trim(), "password": password}),
            )?;
            r["session_token"]
                .as_str()
                .ok_or_else(|| CliError::new("the server's answer holds no session token"))?
                .to_string()
        }
    };
    let c = Client::new(&url, Some(token.clone()));
    let me = c.get("/api/v2/users/me")?;
    let path = config::save(&Session {
        url: url.clone(),
        token,
    })?;
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
        let c = Client::new(&s.url, Some(s.token));
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
