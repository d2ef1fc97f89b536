//! What bounds the cost of requests, one `Limits` per server (in the app data, see
//! `startup::build_server`): the rate limits (`rate_limiter`, applied by
//! `middleware::rate_limit` and, per account, by the sign-in handler), how many password
//! hashes run at once (`hashing`), and how many large bodies are read at once (`large_body`).
//!
//! Each server counts on its own: servers sharing one database each allow the limits (as each
//! of Coder's replicas does).

use crate::api::error::{ApiError, ApiResult};
use crate::app::rate_limiter::{RateLimiter, Verdict, go_duration};
use crate::config::RateLimits;
use actix_web::HttpResponse;
use actix_web::ResponseError;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a password check waits for a turn before it is answered 503.
pub const HASH_WAIT: Duration = Duration::from_secs(30);
/// How long a large body waits for a turn to be read before it is answered 503.
pub const LARGE_BODY_WAIT: Duration = Duration::from_secs(5);

pub struct Limits {
    /// Every API request, per user (per client address when signed out) and path.
    pub api: Option<RateLimiter>,
    /// Sign-in, password checks and changes, per user or client address and path.
    pub login: Option<RateLimiter>,
    /// Sign-in per account (kiln's: Coder counts per address only).
    pub accounts: Option<RateLimiter>,
    /// File uploads and downloads, per user and path.
    pub files: Option<RateLimiter>,
    hashes: Arc<Semaphore>,
    large_bodies: Arc<Semaphore>,
}

impl Limits {
    pub fn new(rates: &RateLimits) -> Limits {
        let limiter = |n: Option<u32>| n.map(|n| RateLimiter::new(n, rates.window));
        Limits {
            api: limiter(rates.api),
            login: limiter(rates.login),
            accounts: limiter(rates.login),
            files: limiter(rates.files),
            hashes: Arc::new(Semaphore::new(hash_permits())),
            large_bodies: Arc::new(Semaphore::new(large_body_permits())),
        }
    }

    /// Whether any rate limit is on.
    pub fn rate_limited(&self) -> bool {
        self.api.is_some() || self.login.is_some() || self.files.is_some()
    }

    /// A turn to read one large body, waited for asynchronously: 503 after `LARGE_BODY_WAIT`.
    pub async fn large_body(&self) -> ApiResult<OwnedSemaphorePermit> {
        let turn = self.large_bodies.clone().acquire_owned();
        match actix_web::rt::time::timeout(LARGE_BODY_WAIT, turn).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is reading too many large request bodies at once.",
            )
            .with_detail("Try again shortly.")),
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Password hashes at once: half the cores (at least one), so a flood of sign-ins leaves
/// cores to everyone else.
pub fn hash_permits() -> usize {
    (cores() / 2).max(1)
}

/// Bodies over `body::SMALL` read at once: 4 plus the cores.
pub fn large_body_permits() -> usize {
    4 + cores()
}

/// Runs `f`, which hashes a password, on the blocking pool once one of the few hash turns is
/// free. Waiting takes no thread; after `HASH_WAIT` the answer is 503.
pub async fn hashing<T: Send + 'static>(
    limits: &Limits,
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let turn = actix_web::rt::time::timeout(HASH_WAIT, limits.hashes.acquire()).await;
    let Ok(Ok(_turn)) = turn else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is busy checking other passwords.",
        )
        .with_detail("Try again shortly."));
    };
    crate::api::reply::blocking(f).await
}

/// Coder's rate-limit headers (go-chi/httprate's): the limit, what is left of it, when the
/// window ends, and on a refusal how long to wait.
pub fn set_headers(headers: &mut HeaderMap, v: &Verdict) {
    let mut set = |name: &'static str, n: u64| {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(n));
    };
    set("x-ratelimit-limit", v.limit.into());
    set("x-ratelimit-remaining", v.remaining.into());
    set("x-ratelimit-reset", v.reset);
    if let Some(wait) = v.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(wait));
    }
}

/// Coder's 429 (`httpmw.RateLimit`): its message names the limit and the window, as Go
/// writes durations.
pub fn too_many_requests(limiter: &RateLimiter, v: &Verdict) -> HttpResponse {
    let e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "You've been rate limited for sending more than {} requests in {}.",
            limiter.limit(),
            go_duration(limiter.window())
        ),
    );
    let mut res = e.error_response();
    set_headers(res.headers_mut(), v);
    res
}
