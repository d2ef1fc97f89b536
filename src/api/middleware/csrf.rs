//! Requests forged by other pages (CSRF) and cross-site WebSockets.
//!
//! A browser attaches the session cookie to every request to kiln, whichever page makes it, so
//! a request that is authenticated by the cookie alone must prove that kiln's own page made
//! it. The proof is what the browser itself says about the page, which no page can forge:
//! `Sec-Fetch-Site: same-origin`, or else an `Origin` whose host is the one the request was
//! sent to (`Host`, or `X-Forwarded-Host` behind a proxy). The rules (docs/deployment.md,
//! "Cookies and other pages"):
//! - an unsafe method (anything but GET, HEAD, OPTIONS, TRACE) signed in by the cookie is
//!   refused without that proof;
//! - an unsafe method with no credentials at all is refused when the browser says another
//!   origin's page sent it (a page claiming a fresh server's first user, or signing a browser in);
//! - a WebSocket upgrade signed in by the cookie is refused when its `Origin` is another host
//!   (as Coder's WebSocket library does); one without an `Origin` is not a browser's;
//! - a request that carries its token in the `Coder-Session-Token` header, `Authorization` or
//!   the query (the CLI, SDKs, curl) needs no proof: another page cannot set those headers
//!   without kiln's consent (kiln answers no CORS preflight), nor know the token. A header
//!   equal to the cookie counts as the header, as in Coder.
//!
//! A request signed in by the cookie must also send its body as JSON (`application/json` or
//! `+json`), which no HTML form can produce: 415 otherwise. Only `POST /api/v2/files` takes
//! another type (a tar archive). Requests that carry their token in a header keep sending any
//! type, as Coder accepts (`curl -d` sends a form type).

use crate::api::error::ApiError;
use crate::api::extract::auth::{SESSION_COOKIE, SESSION_HEADER, serde_urlencoded_pairs};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;

/// How a request carries its credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// None at all.
    None,
    /// The session cookie, and no header or query token equal to it.
    Cookie,
    /// A token in a header or the query, which another page cannot send.
    Explicit,
}

/// What the browser says of the page that sent a request: `Some(true)` kiln's own page,
/// `Some(false)` another origin's, `None` nothing (not a browser, or a very old one).
pub fn same_origin(headers: &HeaderMap) -> Option<bool> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    match text("Sec-Fetch-Site") {
        Some(site) if site.eq_ignore_ascii_case("same-origin") => return Some(true),
        Some(site) if !site.eq_ignore_ascii_case("none") => return Some(false),
        _ => {}
    }
    let origin = text("Origin")?;
    let Some(authority) = origin_authority(origin) else {
        // `null` (a sandboxed frame, a file, a redirect across origins) or nonsense.
        return Some(false);
    };
    let forwarded = text("X-Forwarded-Host").and_then(|v| v.split(',').next().map(str::trim));
    let matches = [text("Host"), forwarded]
        .into_iter()
        .flatten()
        .any(|host| host.eq_ignore_ascii_case(authority));
    Some(matches)
}

/// `http://host:port` → `host:port` (browsers leave out a default port, as `Host` does).
fn origin_authority(origin: &str) -> Option<&str> {
    let (scheme, rest) = origin.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    (!authority.is_empty() && !authority.contains(['/', '?', '#', '@'])).then_some(authority)
}

/// How the request carries its credentials (kiln reads the cookie first, as Coder does).
pub fn credentials(headers: &HeaderMap, cookie: Option<&str>, query: &str) -> Credentials {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let bearer = header("Authorization").and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let query_token = serde_urlencoded_pairs(query)
        .into_iter()
        .find(|(k, v)| k == SESSION_COOKIE && !v.is_empty())
        .map(|(_, v)| v);
    let explicit = [header(SESSION_HEADER), bearer, query_token.as_deref()];
    match cookie.filter(|c| !c.is_empty()) {
        Some(cookie) if explicit.contains(&Some(cookie)) => Credentials::Explicit,
        Some(_) => Credentials::Cookie,
        None if explicit.iter().any(Option::is_some) => Credentials::Explicit,
        None => Credentials::None,
    }
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(HeaderName::from_static("upgrade"))
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// The decision for one request: `Ok(by_cookie)`, or the refusal.
pub fn check(
    method: &Method,
    headers: &HeaderMap,
    cookie: Option<&str>,
    query: &str,
) -> Result<bool, ApiError> {
    let creds = credentials(headers, cookie, query);
    let origin = same_origin(headers);
    if is_unsafe(method) {
        match (creds, origin) {
            (Credentials::Cookie, Some(true)) => Ok(true),
            (Credentials::Cookie, _) => Err(forged(
                "Cross-site request refused: a request signed in by the session cookie must \
                 come from kiln's own page.",
            )),
            (Credentials::None, Some(false)) => Err(forged(
                "Cross-site request refused: this request came from another site's page.",
            )),
            _ => Ok(false),
        }
    } else if is_websocket_upgrade(headers) && creds == Credentials::Cookie && origin == Some(false)
    {
        Err(forged(
            "Cross-site WebSocket refused: its Origin is not this server, and it is signed in \
             by the session cookie.",
        ))
    } else {
        Ok(creds == Credentials::Cookie)
    }
}

fn forged(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, message).with_detail(format!(
        "The browser says another origin's page sent it (Origin, Sec-Fetch-Site), or says \
         nothing. Pages of kiln's own origin are accepted; other clients send the token in the \
         {SESSION_HEADER} header instead of the cookie."
    ))
}

/// The one route whose body is not JSON.
const UPLOADS: &str = "/api/v2/files";

/// 415 for a body that is not JSON (an empty body is no body).
fn json_body(headers: &HeaderMap, path: &str) -> Result<(), ApiError> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let has_body = headers.contains_key("transfer-encoding")
        || text("content-length").is_some_and(|n| n.trim() != "0");
    let content_type = text("content-type").unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if !has_body || json || path == UPLOADS {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("Unsupported content type header {content_type:?}."),
    )
    .with_detail(
        "A request signed in by the session cookie must send its body as \
         Content-Type: application/json.",
    ))
}

/// The middleware: refuses what `check` refuses, and bodies signed in by the cookie that are
/// not JSON.
pub async fn guard<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let cookie = req.cookie(SESSION_COOKIE);
    let verdict = check(
        req.method(),
        req.headers(),
        cookie.as_ref().map(|c| c.value()),
        req.query_string(),
    )
    .and_then(|by_cookie| match by_cookie && is_unsafe(req.method()) {
        true => json_body(req.headers(), req.path()),
        false => Ok(()),
    });
    match verdict {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        // An answer, not an error: the middlewares around (the access log, the version
        // header) see it as any other.
        Err(e) => Ok(req.error_response(e).map_into_right_body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    const HOST: (&str, &str) = ("host", "127.0.0.1:3000");

    #[test]
    fn the_browser_says_which_page_sent_it() {
        let same = headers(&[HOST, ("origin", "http://127.0.0.1:3000")]);
        assert_eq!(same_origin(&same), Some(true));
        let other_port = headers(&[HOST, ("origin", "http://127.0.0.1:8080")]);
        assert_eq!(same_origin(&other_port), Some(false));
        let null = headers(&[HOST, ("origin", "null")]);
        assert_eq!(same_origin(&null), Some(false));
        let fetch_site = headers(&[HOST, ("sec-fetch-site", "same-site")]);
        assert_eq!(same_origin(&fetch_site), Some(false));
        let proxied = headers(&[
            ("host", "127.0.0.1:3000"),
            ("x-forwarded-host", "kiln.example.com"),
            ("origin", "https://kiln.example.com"),
        ]);
        assert_eq!(same_origin(&proxied), Some(true));
        assert_eq!(same_origin(&headers(&[HOST])), None);
        let typed = headers(&[HOST, ("sec-fetch-site", "none")]);
        assert_eq!(same_origin(&typed), None);
    }

    #[test]
    fn credentials_from_the_cookie_alone_need_proof() {
        let post = Method::POST;
        let bare = headers(&[HOST]);
        assert!(check(&post, &bare, Some("tok"), "").is_err());
        let foreign = headers(&[HOST, ("origin", "http://127.0.0.1:8080")]);
        assert!(check(&post, &foreign, Some("tok"), "").is_err());
        let own = headers(&[HOST, ("origin", "http://127.0.0.1:3000")]);
        assert!(check(&post, &own, Some("tok"), "").unwrap());
        // The header (equal to the cookie) is the header's credentials.
        let header = headers(&[HOST, ("coder-session-token", "tok")]);
        assert!(!check(&post, &header, Some("tok"), "").unwrap());
        // A header that differs from the cookie proves nothing: the cookie is what is used.
        let other = headers(&[HOST, ("coder-session-token", "other")]);
        assert!(check(&post, &other, Some("tok"), "").is_err());
        assert!(!check(&post, &bare, Some("tok"), "coder_session_token=tok").unwrap());
        // Reads are never refused.
        assert!(check(&Method::GET, &foreign, Some("tok"), "").is_ok());
    }

    #[test]
    fn anonymous_posts_from_other_pages_are_refused() {
        let post = Method::POST;
        let foreign = headers(&[HOST, ("origin", "http://evil.example")]);
        assert!(check(&post, &foreign, None, "").is_err());
        assert!(check(&post, &headers(&[HOST]), None, "").is_ok());
        let with_token = headers(&[
            HOST,
            ("origin", "http://evil.example"),
            ("authorization", "Bearer abc"),
        ]);
        assert!(check(&post, &with_token, None, "").is_ok());
    }

    #[test]
    fn bodies_signed_in_by_the_cookie_are_json() {
        let body = |content_type: &str| {
            headers(&[
                HOST,
                ("content-length", "2"),
                ("content-type", content_type),
            ])
        };
        assert!(json_body(&body("application/json"), "/api/v2/users").is_ok());
        assert!(json_body(&body("application/json; charset=utf-8"), "/api/v2/users").is_ok());
        assert!(json_body(&body("application/merge-patch+json"), "/api/v2/users").is_ok());
        for form in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            let e = json_body(&body(form), "/api/v2/users").unwrap_err();
            assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
        assert!(json_body(&headers(&[HOST, ("content-length", "2")]), "/x").is_err());
        assert!(json_body(&headers(&[HOST, ("content-length", "0")]), "/x").is_ok());
        assert!(json_body(&headers(&[HOST]), "/x").is_ok());
        assert!(json_body(&body("application/x-tar"), UPLOADS).is_ok());
    }

    #[test]
    fn websockets_by_cookie_from_other_hosts_are_refused() {
        let get = Method::GET;
        let ws = |origin: &str| headers(&[HOST, ("upgrade", "websocket"), ("origin", origin)]);
        assert!(check(&get, &ws("http://127.0.0.1:8080"), Some("tok"), "").is_err());
        assert!(check(&get, &ws("http://127.0.0.1:3000"), Some("tok"), "").is_ok());
        assert!(
            check(
                &get,
                &headers(&[HOST, ("upgrade", "websocket")]),
                Some("tok"),
                ""
            )
            .is_ok()
        );
        let by_header = ws("http://127.0.0.1:8080");
        assert!(check(&get, &by_header, None, "coder_session_token=x").is_ok());
    }
}
