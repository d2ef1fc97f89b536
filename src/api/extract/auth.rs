//! Who is calling: the session token from cookie, query, header or Bearer (spec section 2).

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::domain::Caller;
use crate::identity;
use crate::model::Time;
use crate::store::{ApiKeyRow, UserRow};
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::future::{Either, LocalBoxFuture};
use std::future::{Ready, ready};
use std::rc::Rc;

pub const SESSION_COOKIE: &str = "coder_session_token";
pub const SESSION_HEADER: &str = "Coder-Session-Token";

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user: UserRow,
    pub key_id: String,
}

impl Actor {
    /// The caller, for the permission policy (`domain::permissions`).
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            user_id: &self.user.id,
            roles: &self.user.roles,
        }
    }
}

/// The token as sent, in Coder's order of precedence; `None` when none was sent.
pub fn token_from_request(req: &HttpRequest) -> Option<String> {
    if let Some(c) = req.cookie(SESSION_COOKIE)
        && !c.value().is_empty()
    {
        return Some(c.value().to_string());
    }
    let query = web_query(req.query_string());
    if let Some(v) = query
        .into_iter()
        .find(|(k, v)| k == SESSION_COOKIE && !v.is_empty())
    {
        return Some(v.1);
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    if let Some(v) = header(SESSION_HEADER) {
        return Some(v);
    }
    header("Authorization").and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
            .then(|| token.trim().to_string())
    })
}

fn web_query(qs: &str) -> Vec<(String, String)> {
    serde_urlencoded_pairs(qs)
}

/// Decodes `a=1&b=2` into pairs (percent-decoding, `+` as space).
pub fn serde_urlencoded_pairs(qs: &str) -> Vec<(String, String)> {
    actix_web::web::Query::<Vec<(String, String)>>::from_query(qs)
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// The token split and checked for its form (no store read).
fn parse_token(token: Option<String>) -> ApiResult<(String, String)> {
    let Some(token) = token else {
        return Err(ApiError::unauthorized(format!(
            "Cookie {SESSION_COOKIE:?} or query parameter must be provided."
        )));
    };
    let (id, secret) = identity::split_token(&token)
        .map_err(|why| ApiError::unauthorized(format!("Invalid API key format: {why}")))?;
    Ok((id.to_string(), secret.to_string()))
}

/// Checks the secret and expiry of a found key.
fn check_key(key: ApiKeyRow, user: UserRow, secret: &str) -> ApiResult<Actor> {
    if !identity::constant_time_eq(&identity::hash_secret(secret), &key.hashed_secret) {
        return Err(ApiError::unauthorized("API key secret is invalid."));
    }
    if key.expires_at <= Time::now() {
        return Err(ApiError::unauthorized(format!(
            "API key expired at {:?}.",
            key.expires_at.rfc3339()
        )));
    }
    if user.status != "active" {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "User is not active (status = {:?}). Contact an admin to reactivate your account.",
                user.status
            ),
        ));
    }
    Ok(Actor {
        user,
        key_id: key.id,
    })
}

/// Checks a token against the store. Blocking (a store read when the key is not cached).
pub fn authenticate(state: &State, token: Option<String>) -> ApiResult<Actor> {
    let (id, secret) = parse_token(token)?;
    let (key, user) = match state.sessions.get(&id) {
        Some(hit) => hit,
        None => lookup_key(state, &id)?,
    };
    check_key(key, user, &secret)
}

fn lookup_key(state: &State, id: &str) -> ApiResult<(ApiKeyRow, UserRow)> {
    let found = state
        .store
        .api_key_with_user(id)?
        .ok_or_else(|| ApiError::unauthorized("API key is invalid."))?;
    state.sessions.put(&found.0, &found.1);
    Ok(found)
}

/// The caller as checked once for this request: the rate limiter, the `Actor` extractor and
/// the body extractor may each ask, in any order or at once, and the store is read once.
#[derive(Clone, Default)]
struct Checked(Rc<tokio::sync::OnceCell<ApiResult<Actor>>>);

type CallerFuture = Either<Ready<ApiResult<Actor>>, LocalBoxFuture<'static, ApiResult<Actor>>>;

/// The request's caller. A key checked within the last second is answered at once (no
/// allocation, no hop); any other is read from the store on the blocking pool, once per
/// request.
pub fn caller(req: &HttpRequest) -> CallerFuture {
    let checked = req.extensions().get::<Checked>().cloned();
    if let Some(done) = checked.as_ref().and_then(|c| c.0.get()) {
        return Either::Left(ready(done.clone()));
    }
    let Some(state) = req.app_data::<State>() else {
        return Either::Left(ready(Err(ApiError::internal("No application state.", ""))));
    };
    let (id, secret) = match parse_token(token_from_request(req)) {
        Ok(parsed) => parsed,
        Err(e) => return Either::Left(ready(Err(e))),
    };
    if let Some((key, user)) = state.sessions.get(&id) {
        return Either::Left(ready(check_key(key, user, &secret)));
    }
    let checked = checked.unwrap_or_else(|| {
        let c = Checked::default();
        req.extensions_mut().insert(c.clone());
        c
    });
    let state = state.clone();
    Either::Right(Box::pin(async move {
        checked
            .0
            .get_or_init(|| async move {
                let (key, user) =
                    crate::api::reply::blocking(move || lookup_key(&state, &id)).await?;
                check_key(key, user, &secret)
            })
            .await
            .clone()
    }))
}

impl FromRequest for Actor {
    type Error = ApiError;
    type Future = CallerFuture;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        caller(req)
    }
}
