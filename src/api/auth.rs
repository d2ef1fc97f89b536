//! Who is calling: the session token from cookie, query, header or Bearer (spec section 2).

use super::{ApiError, ApiResult};
use crate::State;
use crate::identity;
use crate::model::{Role, Time};
use crate::store::UserRow;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use std::future::{Ready, ready};

pub const SESSION_COOKIE: &str = "coder_session_token";
pub const SESSION_HEADER: &str = "Coder-Session-Token";

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user: UserRow,
    pub key_id: String,
}

impl Actor {
    pub fn is_owner(&self) -> bool {
        self.user.has_role(Role::Owner)
    }

    /// Owners and template admins manage templates, read build state and push it.
    pub fn is_template_manager(&self) -> bool {
        self.is_owner() || self.user.has_role(Role::TemplateAdmin)
    }

    /// Whether this caller may see resources owned by `owner_id`.
    pub fn can_read_owned_by(&self, owner_id: &str) -> bool {
        self.is_owner() || self.user.id == owner_id
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

/// Checks a token against the store.
pub fn authenticate(state: &State, token: Option<String>) -> ApiResult<Actor> {
    let Some(token) = token else {
        return Err(ApiError::unauthorized(format!(
            "Cookie {SESSION_COOKIE:?} or query parameter must be provided."
        )));
    };
    let (id, secret) = identity::split_token(&token)
        .map_err(|why| ApiError::unauthorized(format!("Invalid API key format: {why}")))?;
    let (key, user) = match state.sessions.get(id) {
        Some(hit) => hit,
        None => {
            let found = state
                .store
                .api_key_with_user(id)?
                .ok_or_else(|| ApiError::unauthorized("API key is invalid."))?;
            state.sessions.put(&found.0, &found.1);
            found
        }
    };
    if !identity::constant_time_eq(&identity::hash_secret(secret), &key.hashed_secret) {
        return Err(ApiError::unauthorized("API key secret is invalid."));
    }
    if key.expires_at <= Time::now() {
        return Err(ApiError::unauthorized(format!(
            "API key expired at {:?}.",
            key.expires_at.rfc3339()
        )));
    }
    Ok(Actor {
        user,
        key_id: key.id,
    })
}

impl FromRequest for Actor {
    type Error = ApiError;
    type Future = Ready<ApiResult<Actor>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<State>() else {
            return ready(Err(ApiError::internal("No application state.", "")));
        };
        ready(authenticate(state, token_from_request(req)))
    }
}
