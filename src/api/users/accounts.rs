//! Users, sessions and API keys: /users/first, /users/login, /users/logout, /users, /users/{user}.

use crate::api::error::ApiResult;
use crate::api::error::{ApiError, forbidden};
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, SMALL};
use crate::api::extract::fields::tag_failed;
use crate::api::extract::fields::valid_name;
use crate::api::extract::limits::{Limits, hashing, too_many_requests};
use crate::api::extract::lookup::{find_readable_user, find_user};
use crate::api::present::views::user_json;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::created;
use crate::api::reply::ok;
use crate::app::state::AppState;
use crate::identity;
use crate::model::{self, Role, Time, new_id};
use crate::store::{NewApiKey, NewUser, StoreError};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// A session from password login lasts a day; an API key from /keys, a week (Coder's defaults).
const SESSION_LIFETIME_MS: i64 = 24 * 3600 * 1000;
const API_KEY_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(char::is_whitespace)
}

/// Coder's `required,email` / `required,username` / `required` checks, in field order.
fn validate_identity(email: &str, username: Option<&str>, password: Option<&str>) -> ApiResult<()> {
    let mut err = ApiError::validation();
    if email.is_empty() {
        err = err.with_validation("email", tag_failed("required", email));
    } else if !valid_email(email) {
        err = err.with_validation("email", tag_failed("email", email));
    }
    if let Some(username) = username {
        if username.is_empty() {
            err = err.with_validation("username", tag_failed("required", username));
        } else if !valid_name(username) {
            err = err.with_validation("username", tag_failed("username", username));
        }
    }
    if let Some(password) = password
        && password.is_empty()
    {
        err = err.with_validation("password", tag_failed("required", ""));
    }
    err.if_any()
}

/// Coder's strength rule (`domain::password`) for a new user's password.
fn check_password_strength(password: &str) -> ApiResult<()> {
    crate::domain::password::validate(password).map_err(|why| {
        ApiError::bad_request("Password not strong enough!").with_validation("password", why)
    })
}

pub async fn get_first_user(state: State) -> ApiResult<Reply> {
    blocking(move || {
        if state.store.user_count()? == 0 {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "The initial user has not been created!",
            ));
        }
        ok(&model::Response::message(
            "The initial user has already been created!",
        ))
    })
    .await
}

/// How one may sign in (asked before signing in, so no session is needed): a password only.
pub async fn auth_methods() -> ApiResult<Reply> {
    ok(&serde_json::json!({
        "terms_of_service_url": "",
        "password": {"enabled": true},
        "github": {"enabled": false, "default_provider_configured": false},
        "oidc": {"enabled": false, "signInText": "", "iconUrl": ""},
    }))
}

pub async fn post_first_user(
    state: State,
    limits: web::Data<Limits>,
    body: Body<SMALL>,
) -> ApiResult<Reply> {
    let already = || ApiError::conflict("The initial user has already been created.");
    let st = state.clone();
    let req = blocking(move || {
        let req: model::CreateFirstUserRequest = read_json(&body)?;
        validate_identity(&req.email, Some(&req.username), Some(&req.password))?;
        if st.store.user_count()? > 0 {
            return Err(already());
        }
        check_password_strength(&req.password)?;
        Ok(req)
    })
    .await?;
    // Hashed only when the server has no user yet.
    let password = req.password.clone();
    let hashed_password = hashing(&limits, move || Ok(identity::hash_password(&password))).await?;
    blocking(move || {
        let user = NewUser {
            id: new_id(),
            email: req.email,
            username: req.username,
            name: req.name,
            hashed_password,
            login_type: "password".into(),
            roles: vec![Role::Owner],
        };
        let org_id = new_id();
        match state.store.create_first_user(&user, &org_id) {
            Err(StoreError::Conflict(_)) => return Err(already()),
            other => other?,
        }
        let org = state
            .store
            .organization("coder")?
            .ok_or_else(|| ApiError::internal("Internal error creating user.", "no default org"))?;
        log::info!("first user {:?} created (owner)", user.username);
        created(&model::CreateFirstUserResponse {
            user_id: user.id,
            organization_id: org.id,
        })
    })
    .await
}

/// Makes an API key for `user_id` and returns the token, shown this once.
fn issue_token(
    state: &AppState,
    user_id: &str,
    login_type: &str,
    lifetime_ms: i64,
) -> ApiResult<(String, Time)> {
    let t = identity::new_token();
    let expires_at = Time::now().plus_millis(lifetime_ms);
    state.store.insert_api_key(&NewApiKey {
        id: &t.id,
        hashed_secret: &t.hashed_secret,
        user_id,
        login_type,
        expires_at,
        token_name: "",
        lifetime_seconds: lifetime_ms / 1000,
        scope: "all",
    })?;
    Ok((t.token, expires_at))
}

/// The session cookie, `Secure` when the answer goes over HTTPS (or `--secure-auth-cookie`
/// says a proxy in front ends TLS): a browser then never sends it over plain HTTP.
fn session_cookie(req: &HttpRequest, value: String, max_age_secs: i64) -> Cookie<'static> {
    let secure = req.app_config().secure()
        || req
            .app_data::<State>()
            .is_some_and(|s| s.config.secure_auth_cookie);
    Cookie::build(crate::api::extract::auth::SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}

/// Sign-in. The client's address was counted before the body was read
/// (`middleware::rate_limit`); the account is counted here, before its password is hashed,
/// and the hash waits for one of the few turns (`limits::hashing`).
pub async fn login(
    state: State,
    limits: web::Data<Limits>,
    req: HttpRequest,
    body: Body<SMALL>,
) -> ApiResult<HttpResponse> {
    let login: model::LoginWithPasswordRequest = read_json(&body)?;
    validate_identity(&login.email, None, Some(&login.password))?;
    if let Some(accounts) = &limits.accounts {
        let verdict = accounts.check(login.email.to_lowercase());
        if verdict.retry_after.is_some() {
            return Ok(too_many_requests(accounts, &verdict));
        }
    }
    let token = hashing(&limits, move || check_login(&state, &login)).await?;
    Ok(HttpResponse::Created()
        .cookie(session_cookie(
            &req,
            token.clone(),
            SESSION_LIFETIME_MS / 1000,
        ))
        .insert_header(("Content-Type", "application/json; charset=utf-8"))
        .body(
            serde_json::to_vec(&model::LoginWithPasswordResponse {
                session_token: token,
            })
            .unwrap(),
        ))
}

/// Checks an email and password (the slow hash runs here); returns a new session token.
fn check_login(state: &AppState, req: &model::LoginWithPasswordRequest) -> ApiResult<String> {
    let user = state.store.user_by_email(&req.email)?;
    let valid = match &user {
        Some(u) => identity::verify_password(&u.hashed_password, &req.password),
        None => {
            // Spend the same time as a real check, so response time does not tell
            // whether the email exists.
            identity::verify_password(DUMMY_HASH, &req.password);
            false
        }
    };
    let Some(user) = user.filter(|_| valid) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Incorrect email or password.",
        ));
    };
    if user.status != "active" {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Your account is suspended. Contact an admin to reactivate your account.",
        ));
    }
    let (token, _) = issue_token(state, &user.id, "password", SESSION_LIFETIME_MS)?;
    Ok(token)
}

const DUMMY_HASH: &str =
    "$pbkdf2-sha256$65535$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

pub async fn logout(state: State, req: HttpRequest, actor: Actor) -> ApiResult<HttpResponse> {
    blocking(move || {
        state.store.delete_api_key(&actor.key_id)?;
        state.sessions.forget_key(&actor.key_id);
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok()
        .cookie(session_cookie(&req, String::new(), 0))
        .insert_header(("Content-Type", "application/json; charset=utf-8"))
        .body(serde_json::to_vec(&model::Response::message("Logged out!")).unwrap_or_default()))
}

/// Every user the caller may read: a member sees their own account only (Coder's member role
/// reads no other user).
pub async fn list_users(state: State, actor: Actor) -> ApiResult<Reply> {
    blocking(move || {
        let users = state
            .store
            .list_users()?
            .iter()
            .filter(|u| actor.caller().may_read_user(&u.id))
            .map(|u| user_json(&state, u))
            .collect::<ApiResult<Vec<_>>>()?;
        ok(&model::GetUsersResponse {
            count: users.len(),
            users,
        })
    })
    .await
}

pub async fn create_user(
    state: State,
    limits: web::Data<Limits>,
    actor: Actor,
    body: Body<SMALL>,
) -> ApiResult<Reply> {
    let st = state.clone();
    let (mut user, org_ids, password) = blocking(move || checked_user(&st, &actor, &body)).await?;
    if let Some(password) = password {
        user.hashed_password =
            hashing(&limits, move || Ok(identity::hash_password(&password))).await?;
    }
    blocking(move || add_user(&state, &user, &org_ids)).await
}

/// A new user as the request describes it, once every check passed: the user (its password not
/// hashed yet), its organizations, and its password when it signs in with one.
fn checked_user(
    state: &AppState,
    actor: &Actor,
    body: &[u8],
) -> ApiResult<(NewUser, Vec<String>, Option<String>)> {
    let req: model::CreateUserRequest = read_json(body)?;
    validate_identity(&req.email, Some(&req.username), None)?;
    if !actor.caller().manages_users() {
        return Err(ApiError::forbidden(
            "You are not authorized to create users.",
        ));
    }
    let login_type = if req.login_type.is_empty() {
        "password"
    } else {
        req.login_type.as_str()
    };
    if login_type != "password" && !req.password.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Password cannot be set for non-password ({login_type:?}) authentication."
        )));
    }
    if login_type != "password" && login_type != "none" {
        return Err(ApiError::bad_request(format!(
            "Unsupported login type {login_type:?} for manually creating new users."
        )));
    }
    if req.organization_ids.is_empty() {
        return Err(ApiError::bad_request(
            "No organization specified to place the user as a member of. It is required to specify at least one organization id to place the user in.",
        )
        .with_detail("required at least 1 value for the array 'organization_ids'")
        .with_validation("organization_ids", "Missing values, this cannot be empty"));
    }
    if state.store.user_exists(&req.email, &req.username)? {
        return Err(ApiError::conflict("User already exists."));
    }
    let mut org_ids = Vec::new();
    for raw in &req.organization_ids {
        let lookup = if raw == crate::model::NIL_UUID {
            "coder"
        } else {
            raw
        };
        let org = state.store.organization(lookup)?.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("Organization does not exist with the provided id {raw:?}."),
            )
        })?;
        org_ids.push(org.id);
    }
    if login_type == "password" {
        check_password_strength(&req.password)?;
    }
    let password = (login_type == "password").then_some(req.password);
    let user = NewUser {
        id: new_id(),
        email: req.email,
        username: req.username,
        name: req.name,
        hashed_password: String::new(),
        login_type: login_type.into(),
        roles: vec![],
    };
    Ok((user, org_ids, password))
}

fn add_user(state: &AppState, user: &NewUser, org_ids: &[String]) -> ApiResult<Reply> {
    match state.store.create_user(user, org_ids) {
        Err(StoreError::Conflict(_)) => return Err(ApiError::conflict("User already exists.")),
        other => other?,
    }
    let row = state
        .store
        .user_by_id(&user.id)?
        .ok_or_else(ApiError::not_found)?;
    created(&user_json(state, &row)?)
}

pub async fn get_user(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let user = find_readable_user(&state, &actor, &path)?;
        ok(&user_json(&state, &user)?)
    })
    .await
}

pub async fn put_roles(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<SMALL>,
) -> ApiResult<Reply> {
    blocking(move || {
        let user = find_user(&state, &actor, &path)?;
        let req: model::UpdateRoles = read_json(&body)?;
        if !actor.caller().manages_users() {
            return Err(forbidden());
        }
        if user.id == actor.user.id {
            return Err(ApiError::bad_request("You cannot change your own roles."));
        }
        let mut roles = Vec::new();
        for name in &req.roles {
            if name == "member" {
                continue;
            }
            let role = Role::parse(name).ok_or_else(|| {
                ApiError::bad_request(format!("Invalid role name {name:?}.")).with_detail(format!(
                    "site roles are {:?} and \"member\"",
                    Role::ALL.map(Role::name)
                ))
            })?;
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        state.store.set_user_roles(&user.id, &roles)?;
        state.sessions.forget_user(&user.id);
        let row = state
            .store
            .user_by_id(&user.id)?
            .ok_or_else(ApiError::not_found)?;
        ok(&user_json(&state, &row)?)
    })
    .await
}

pub async fn create_key(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let user = find_user(&state, &actor, &path)?;
        if user.id != actor.user.id && !actor.caller().manages_users() {
            return Err(ApiError::not_found());
        }
        let (key, _) = issue_token(&state, &user.id, "token", API_KEY_LIFETIME_MS)?;
        created(&model::GenerateApiKeyResponse { key })
    })
    .await
}

/// `DELETE /users/{user}`, refused for oneself and while the user owns workspaces, as in
/// Coder.
pub async fn delete_user(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let user = find_user(&state, &actor, &path)?;
        if !actor.caller().manages_users() {
            return Err(forbidden());
        }
        if user.id == actor.user.id {
            return Err(ApiError::forbidden("You cannot delete yourself!"));
        }
        if !state.store.workspaces(Some(&user.id))?.is_empty() {
            return Err(ApiError::new(
                StatusCode::EXPECTATION_FAILED,
                "You cannot delete a user that has workspaces. Delete their workspaces and try again!",
            ));
        }
        state.store.delete_user(&user.id)?;
        state.sessions.forget_user(&user.id);
        ok(&model::Response::message("User has been deleted!"))
    })
    .await
}
