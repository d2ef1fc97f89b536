//! The access log: one line per request, with any secret in the query string replaced by
//! `[redacted]` (a session token may come as `?coder_session_token=`). Headers and cookies,
//! where tokens usually travel, are never logged.

use actix_web::dev::ServiceRequest;
use actix_web::middleware::Logger;

/// The server's request logger (target `kiln::http`).
pub fn logger() -> Logger {
    Logger::new("%{request}xi %s %Dms")
        .custom_request_replace("request", request_line)
        .log_target("kiln::http")
}

fn request_line(req: &ServiceRequest) -> String {
    format!(
        "{} {} {:?}",
        req.method(),
        redacted_target(req.path(), req.query_string()),
        req.version()
    )
}

/// A query parameter whose name says it carries a secret.
fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["token", "password", "secret", "key"]
        .iter()
        .any(|word| name.contains(word))
}

/// `path?query` with the values of secret parameters replaced.
pub fn redacted_target(path: &str, query: &str) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret(&percent_decoded(name)) => format!("{name}=[redacted]"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// A query name with `%XX` escapes and `+` decoded (enough to see what it is).
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::redacted_target;

    #[test]
    fn secrets_in_the_query_are_redacted() {
        assert_eq!(
            redacted_target("/api/v2/users/me", "coder_session_token=abc-def&x=1"),
            "/api/v2/users/me?coder_session_token=[redacted]&x=1"
        );
        assert_eq!(
            redacted_target("/p", "follow=true&Coder_Session%5FToken=s3cret"),
            "/p?follow=true&Coder_Session%5FToken=[redacted]"
        );
        assert_eq!(redacted_target("/p", "after=3"), "/p?after=3");
        assert_eq!(redacted_target("/p", ""), "/p");
        assert_eq!(redacted_target("/p", "%zz&%"), "/p?%zz&%");
    }
}
