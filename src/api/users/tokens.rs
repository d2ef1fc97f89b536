//! Named API tokens, as `coder tokens create/list/view/remove` use them: create with a
//! lifetime (Go nanoseconds) and a name, list one's own (or, for an owner, everyone's with
//! `include_all`), read by name or id, delete by id, and the longest lifetime one may ask
//! (`tokenconfig`). Coder's defaults: 168 h when none is asked; at most 876,600 h, and 168 h
//! for owners. kiln grants one scope, `all`: a token asked for a narrower scope is refused
//! rather than made with more rights than asked.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, SMALL};
use crate::api::extract::lookup::find_user;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::created;
use crate::api::reply::ok;
use crate::identity;
use crate::model::Time;
use crate::store::{ApiKeyInfo, KeyFilter, NewApiKey, StoreError, UserRow};
use actix_web::{HttpRequest, web};
use serde::Deserialize;
use serde_json::{Value, json};

const HOUR_NS: i64 = 3_600_000_000_000;
/// Coder's `--default-token-lifetime`.
const DEFAULT_LIFETIME_NS: i64 = 168 * HOUR_NS;
/// Coder's `--max-token-lifetime`.
const MAX_LIFETIME_NS: i64 = 876_600 * HOUR_NS;
/// Coder's `--max-admin-token-lifetime`, for owners.
const MAX_ADMIN_LIFETIME_NS: i64 = 168 * HOUR_NS;

/// The longest lifetime `user` may ask for a token.
fn max_lifetime_ns(user: &UserRow) -> i64 {
    if user.has_role(crate::model::Role::Owner) {
        MAX_ADMIN_LIFETIME_NS
    } else {
        MAX_LIFETIME_NS
    }
}

/// A Go `time.Duration` of whole seconds as Go prints it (`168h0m0s`).
fn go_duration(ns: i64) -> String {
    let s = ns / 1_000_000_000;
    format!("{}h{}m{}s", s / 3600, s / 60 % 60, s % 60)
}

/// `codersdk.APIKey`, and `username` for the listings (`APIKeyWithOwner`).
fn key_json(k: &ApiKeyInfo, with_owner: bool) -> Value {
    let mut v = json!({
        "id": k.id,
        "user_id": k.user_id,
        "last_used": k.last_used,
        "expires_at": k.expires_at,
        "created_at": k.created_at,
        "updated_at": k.created_at,
        "login_type": k.login_type,
        "scope": k.scope,
        "scopes": [format!("coder:{}", k.scope)],
        "token_name": k.token_name,
        "lifetime_seconds": k.lifetime_seconds,
        "allow_list": [{"type": "*", "id": "*"}],
    });
    if with_owner {
        v["username"] = json!(k.username);
    }
    v
}

/// The user of the path, if the caller may manage their keys (themselves, or an owner).
fn keys_user(state: &State, actor: &Actor, raw: &str) -> ApiResult<UserRow> {
    let user = find_user(state, actor, raw)?;
    if user.id != actor.user.id && !actor.caller().manages_users() {
        return Err(ApiError::not_found());
    }
    Ok(user)
}

#[derive(Deserialize)]
struct CreateToken {
    #[serde(default)]
    lifetime: i64,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    token_name: String,
    #[serde(default)]
    allow_list: Vec<Value>,
}

fn unsupported(detail: String) -> ApiError {
    ApiError::bad_request("Failed to create API key.").with_detail(detail)
}

pub async fn create(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<SMALL>,
) -> ApiResult<Reply> {
    blocking(move || {
        let user = keys_user(&state, &actor, &path)?;
        let req: CreateToken = read_json(&body)?;
        let scopes: Vec<&str> = match (req.scopes.is_empty(), req.scope.as_str()) {
            (false, _) => req.scopes.iter().map(String::as_str).collect(),
            (true, "") => vec!["all"],
            (true, one) => vec![one],
        };
        for scope in scopes {
            if !matches!(scope, "all" | "coder:all") {
                return Err(unsupported(format!(
                    "invalid or unsupported API key scope: {scope:?} (kiln grants only \"all\")"
                )));
            }
        }
        let everything = json!({"type": "*", "id": "*"});
        if req.allow_list.iter().any(|e| *e != everything) {
            return Err(unsupported(
                "kiln's tokens reach everything their user may: an allow list other than \
                 [{\"type\": \"*\", \"id\": \"*\"}] is not supported"
                    .into(),
            ));
        }
        let lifetime = match req.lifetime {
            0 => DEFAULT_LIFETIME_NS,
            n if n < 0 => {
                return Err(
                    ApiError::bad_request("Failed to validate create API key request.")
                        .with_detail("lifetime must be positive number greater than 0"),
                );
            }
            n if n > max_lifetime_ns(&user) => {
                return Err(
                    ApiError::bad_request("Failed to validate create API key request.")
                        .with_detail(format!(
                            "lifetime must be less than {}",
                            go_duration(max_lifetime_ns(&user))
                        )),
                );
            }
            n => n,
        };
        let name = if req.token_name.is_empty() {
            random_name()
        } else {
            req.token_name.clone()
        };
        let t = identity::new_token();
        let inserted = state.store.insert_api_key(&NewApiKey {
            id: &t.id,
            hashed_secret: &t.hashed_secret,
            user_id: &user.id,
            login_type: "token",
            expires_at: Time::now().plus_millis(lifetime / 1_000_000),
            token_name: &name,
            lifetime_seconds: lifetime / 1_000_000_000,
            scope: "all",
        });
        match inserted {
            Err(StoreError::Conflict(_)) => Err(ApiError::conflict(format!(
                "A token with name {name:?} already exists."
            ))
            .with_validation("name", "This value is already in use and should be unique.")),
            Err(e) => Err(e.into()),
            Ok(()) => created(&json!({"key": t.token})),
        }
    })
    .await
}

/// A name as Coder makes one when none is given: `adjective_surname`.
fn random_name() -> String {
    const LEFT: [&str; 12] = [
        "admiring", "bold", "clever", "dazzling", "eager", "focused", "gifted", "hopeful", "keen",
        "lucid", "nifty", "quirky",
    ];
    const RIGHT: [&str; 12] = [
        "babbage", "curie", "dijkstra", "euler", "franklin", "hopper", "kepler", "lovelace",
        "noether", "pascal", "ritchie", "turing",
    ];
    format!(
        "{}_{}",
        LEFT[rand::random_range(0..LEFT.len())],
        RIGHT[rand::random_range(0..RIGHT.len())]
    )
}

/// One's own named tokens; `include_all`: everyone's, for an owner (only one's own for
/// anyone else, as Coder's filter leaves them).
pub async fn list(
    state: State,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<String>,
) -> ApiResult<Reply> {
    let include_all = crate::api::extract::auth::serde_urlencoded_pairs(req.query_string())
        .into_iter()
        .find(|(k, _)| k == "include_all")
        .is_some_and(|(_, v)| matches!(v.as_str(), "1" | "t" | "T" | "TRUE" | "true" | "True"));
    blocking(move || {
        let user = find_user(&state, &actor, &path)?;
        let filter = if include_all {
            KeyFilter::AllTokens
        } else {
            KeyFilter::TokensOf(&user.id)
        };
        let keys: Vec<Value> = state
            .store
            .api_keys(filter)?
            .iter()
            .filter(|k| k.user_id == actor.user.id || actor.caller().manages_users())
            .map(|k| key_json(k, true))
            .collect();
        ok(&keys)
    })
    .await
}

pub async fn config(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let user = keys_user(&state, &actor, &path)?;
        ok(&json!({"max_token_lifetime": max_lifetime_ns(&user)}))
    })
    .await
}

pub async fn by_name(
    state: State,
    actor: Actor,
    path: web::Path<(String, String)>,
) -> ApiResult<Reply> {
    blocking(move || {
        let user = keys_user(&state, &actor, &path.0)?;
        let key = state
            .store
            .api_keys(KeyFilter::Named(&user.id, &path.1))?
            .into_iter()
            .next()
            .ok_or_else(ApiError::not_found)?;
        ok(&key_json(&key, false))
    })
    .await
}

/// A key by its id (any kind), if the caller may read it: its user, or an owner. As in Coder,
/// the path's user is not compared with the key's.
fn readable_key(state: &State, actor: &Actor, user: &str, id: &str) -> ApiResult<ApiKeyInfo> {
    find_user(state, actor, user)?;
    state
        .store
        .api_keys(KeyFilter::Id(id))?
        .into_iter()
        .find(|k| k.user_id == actor.user.id || actor.caller().manages_users())
        .ok_or_else(ApiError::not_found)
}

pub async fn by_id(
    state: State,
    actor: Actor,
    path: web::Path<(String, String)>,
) -> ApiResult<Reply> {
    blocking(move || {
        let key = readable_key(&state, &actor, &path.0, &path.1)?;
        ok(&key_json(&key, false))
    })
    .await
}

pub async fn delete(
    state: State,
    actor: Actor,
    path: web::Path<(String, String)>,
) -> ApiResult<Reply> {
    blocking(move || {
        let key = readable_key(&state, &actor, &path.0, &path.1)?;
        state.store.delete_api_key(&key.id)?;
        state.sessions.forget_key(&key.id);
        Ok(Reply::no_content())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_prints_them() {
        assert_eq!(go_duration(MAX_ADMIN_LIFETIME_NS), "168h0m0s");
        assert_eq!(go_duration(MAX_LIFETIME_NS), "876600h0m0s");
        assert_eq!(
            go_duration(90 * 60 * 1_000_000_000 + 5_000_000_000),
            "1h30m5s"
        );
    }
}
