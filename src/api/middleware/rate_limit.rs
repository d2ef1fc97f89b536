//! Coder's rate limits (`coderd/httpmw/ratelimit.go`, applied in `coderd/coderd.go`), before
//! a request's body is read or its handler runs:
//! - every request under `/api/v2`: `--api-rate-limit` (512) a window;
//! - sign-in, password checks and password changes (`POST /users/login`,
//!   `POST /users/validate-password`, `PUT /users/{user}/password`): `--login-rate-limit` (60);
//! - files (`POST /files`, `GET /files/{file}`), for signed-in callers (the others are
//!   answered 401): `--files-rate-limit` (12).
//!
//! Each counts per caller and path (httprate's `KeyByEndpoint`): the caller is the user when
//! the request carries a valid token, else the client's address (an IPv6 address by its /64,
//! as httprate does). A refusal is Coder's 429 with `Retry-After`; every answer under a limit
//! carries `X-Ratelimit-Limit`, `-Remaining` and `-Reset`. An owner skips every limit with
//! `X-Coder-Bypass-Ratelimit: true` (any of Go's true words); another user sending it is
//! refused with 428, as in Coder. The sign-in handler also counts per account
//! (`users::accounts::login`).

use crate::api::error::ApiError;
use crate::api::extract::auth::{self, Actor};
use crate::api::extract::limits::{Limits, set_headers, too_many_requests};
use crate::app::rate_limiter::{RateLimiter, Verdict};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web;
use std::hash::Hash;
use std::net::IpAddr;

/// The header with which an owner skips the rate limits (Coder's `BypassRatelimitHeader`).
pub const BYPASS_HEADER: &str = "X-Coder-Bypass-Ratelimit";

/// Who a request is counted for.
#[derive(Hash)]
enum Who<'a> {
    User(&'a str),
    Address(Option<IpAddr>),
}

/// The client's address as httprate keys it: IPv4 whole, IPv6 by its /64.
fn address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

/// Go's `strconv.ParseBool` true words; anything else is no bypass asked.
fn go_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "TRUE" | "true" | "True")
}

/// The route-specific limit of a request, if any: sign-in or files.
fn route_limit<'a>(
    limits: &'a Limits,
    method: &Method,
    path: &str,
) -> Option<(&'a RateLimiter, bool)> {
    let rest = path.strip_prefix("/api/v2/")?;
    let login = match (method, rest) {
        (&Method::POST, "users/login" | "users/validate-password") => true,
        (&Method::PUT, _) => rest
            .strip_prefix("users/")
            .and_then(|r| r.strip_suffix("/password"))
            .is_some_and(|user| !user.is_empty() && !user.contains('/')),
        _ => false,
    };
    if login {
        return limits.login.as_ref().map(|l| (l, false));
    }
    let files = match (method, rest) {
        (&Method::POST, "files") => true,
        (&Method::GET, _) => rest
            .strip_prefix("files/")
            .is_some_and(|f| !f.is_empty() && !f.contains('/')),
        _ => false,
    };
    // Files are limited after authentication, as in Coder: for signed-in callers only.
    match files {
        true => limits.files.as_ref().map(|l| (l, true)),
        false => None,
    }
}

fn is_api(path: &str) -> bool {
    path == "/api/v2" || path.starts_with("/api/v2/")
}

/// The middleware (on only when a rate limit is).
pub async fn limit<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let limits = req.app_data::<web::Data<Limits>>().cloned();
    let path = req.path().to_string();
    let (api, route) = match &limits {
        Some(l) if is_api(&path) => (l.api.as_ref(), route_limit(l, req.method(), &path)),
        _ => (None, None),
    };
    if api.is_none() && route.is_none() {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    // The user, when the request carries a valid token (never refused here: the handler
    // answers for a bad one).
    let actor: Option<Actor> = match auth::token_from_request(req.request()) {
        Some(_) => auth::caller(req.request()).await.ok(),
        None => None,
    };
    let bypass = req
        .headers()
        .get(BYPASS_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(go_true);
    if bypass && let Some(actor) = &actor {
        if actor.caller().is_owner() {
            return Ok(next.call(req).await?.map_into_left_body());
        }
        let refusal = ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            format!("{BYPASS_HEADER:?} provided but user is not owner"),
        );
        return Ok(req.error_response(refusal).map_into_right_body());
    }
    let who = match &actor {
        Some(a) => Who::User(&a.user.id),
        None => Who::Address(req.peer_addr().map(|a| address(a.ip()))),
    };
    let route = route.filter(|(_, signed_in_only)| !signed_in_only || actor.is_some());
    let mut last: Option<Verdict> = None;
    for limiter in api.into_iter().chain(route.map(|(l, _)| l)) {
        let v = limiter.check(Key(&who, &path));
        if v.retry_after.is_some() {
            let res = too_many_requests(limiter, &v);
            return Ok(req.into_response(res).map_into_right_body());
        }
        last = Some(v);
    }
    let mut res = next.call(req).await?;
    // A limit counted further in (sign-in per account) has said its own.
    if let Some(v) = last
        && !res.headers().contains_key("x-ratelimit-limit")
    {
        set_headers(res.headers_mut(), &v);
    }
    Ok(res.map_into_left_body())
}

/// A caller on a path (httprate's key: the caller's key, then the endpoint).
#[derive(Hash)]
struct Key<'a>(&'a Who<'a>, &'a str);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateLimits;

    #[test]
    fn ipv6_callers_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(address(a), address(b));
        assert_eq!(address(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(address(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn routes_with_limits_of_their_own() {
        let l = Limits::new(&RateLimits::CODER);
        let which = |m: Method, p: &str| route_limit(&l, &m, p).map(|(l, s)| (l.limit(), s));
        assert_eq!(
            which(Method::POST, "/api/v2/users/login"),
            Some((60, false))
        );
        assert_eq!(
            which(Method::POST, "/api/v2/users/validate-password"),
            Some((60, false))
        );
        assert_eq!(
            which(Method::PUT, "/api/v2/users/me/password"),
            Some((60, false))
        );
        assert_eq!(which(Method::PUT, "/api/v2/users/me/profile"), None);
        assert_eq!(which(Method::POST, "/api/v2/files"), Some((12, true)));
        assert_eq!(which(Method::GET, "/api/v2/files/abc"), Some((12, true)));
        assert_eq!(which(Method::GET, "/api/v2/users/login"), None);
        assert_eq!(which(Method::GET, "/api/v2/workspaces"), None);
    }

    #[test]
    fn bypass_takes_gos_true_words() {
        for yes in ["1", "t", "T", "TRUE", "true", "True"] {
            assert!(go_true(yes));
        }
        for no in ["", "yes", "0", "false", "tRuE"] {
            assert!(!go_true(no));
        }
    }
}
