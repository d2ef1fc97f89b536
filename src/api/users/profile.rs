//! A user's own account, as Coder's dashboard and CLI manage it: the roles one may be given
//! (`GET /users/roles`), how a user signs in (`login-type`), their profile (username and
//! name), their password (with Coder's strength rule, `domain::password`), and a password's
//! strength asked before choosing it (`validate-password`, no session needed).

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::error::forbidden;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, SMALL};
use crate::api::extract::fields::tag_failed;
use crate::api::extract::limits::{Limits, hashing};
use crate::api::extract::lookup::find_user;
use crate::api::present::views::user_json;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::domain::authorization::{Object, allowed};
use crate::domain::permissions::Caller;
use crate::identity;
use crate::model::Role;
use crate::store::StoreError;
use actix_web::web;
use serde::Deserialize;
use serde_json::{Value, json};

/// What each role allows, in Coder's permission words: every `(resource, action)` kiln
/// answers for, as `domain::authorization` decides it for a holder of that role alone.
fn site_permissions(role: Role) -> Vec<Value> {
    const PAIRS: [(&str, &[&str]); 11] = [
        (
            "workspace",
            &["create", "read", "update", "delete", "start", "stop"],
        ),
        ("template", &["create", "read", "update", "delete", "use"]),
        (
            "user",
            &[
                "create",
                "read",
                "update",
                "delete",
                "read_personal",
                "update_personal",
            ],
        ),
        ("organization", &["read"]),
        (
            "organization_member",
            &["create", "read", "update", "delete"],
        ),
        (
            "provisioner_daemon",
            &["create", "read", "update", "delete"],
        ),
        ("provisioner_jobs", &["read"]),
        ("deployment_config", &["read"]),
        ("file", &["create", "read"]),
        ("api_key", &["create", "read", "update", "delete"]),
        ("assign_role", &["read", "assign", "unassign"]),
    ];
    let caller = Caller {
        user_id: "",
        roles: &[role],
    };
    let mut out = Vec::new();
    for (resource_type, actions) in PAIRS {
        let object = Object {
            resource_type,
            owner_id: None,
            in_member_org: true,
        };
        for action in actions {
            if allowed(&caller, &object, action) {
                out.push(
                    json!({"negate": false, "resource_type": resource_type, "action": action}),
                );
            }
        }
    }
    out
}

/// `[]codersdk.AssignableRoles`: kiln's site roles (a member has none), each assignable by
/// whoever may change roles (the owner).
pub async fn assignable_roles(actor: Actor) -> ApiResult<Reply> {
    let assignable = actor.caller().manages_users();
    let roles: Vec<Value> = Role::ALL
        .iter()
        .map(|r| {
            json!({
                "name": r.name(),
                "display_name": r.display_name(),
                "site_permissions": site_permissions(*r),
                "organization_permissions": [],
                "user_permissions": [],
                "assignable": assignable,
                "built_in": true,
            })
        })
        .collect();
    ok(&roles)
}

/// Only one's own (Coder: "not needed" for others, even an owner).
pub async fn login_type(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let user = find_user(&state, &actor, &path)?;
        if user.id != actor.user.id {
            return Err(ApiError::forbidden(
                "You are not authorized to view this user's login type.",
            ));
        }
        ok(&json!({"login_type": user.login_type}))
    })
    .await
}

#[derive(Deserialize)]
struct ProfileRequest {
    #[serde(default)]
    username: String,
    #[serde(default)]
    name: String,
}

/// Coder's `user_real_name`: at most 128 bytes, no space at either end.
fn valid_real_name(name: &str) -> bool {
    name.len() <= 128 && name.trim() == name
}

pub async fn put_profile(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<SMALL>,
) -> ApiResult<Reply> {
    blocking(move || {
        let user = find_user(&state, &actor, &path)?;
        let req: ProfileRequest = read_json(&body)?;
        let mut invalid = ApiError::validation();
        if req.username.is_empty() {
            invalid = invalid.with_validation("username", tag_failed("required", ""));
        } else if !crate::api::extract::fields::valid_name(&req.username) {
            invalid = invalid.with_validation("username", tag_failed("username", &req.username));
        }
        if !valid_real_name(&req.name) {
            invalid = invalid.with_validation("name", tag_failed("user_real_name", &req.name));
        }
        invalid.if_any()?;
        if user.id != actor.user.id && !actor.caller().manages_users() {
            return Err(forbidden());
        }
        let taken = || {
            ApiError::conflict("A user with this username already exists.")
                .with_validation("username", "This username is already in use.")
        };
        if state
            .store
            .user_by_username(&req.username)?
            .is_some_and(|other| other.id != user.id)
        {
            return Err(taken());
        }
        match state
            .store
            .update_user_profile(&user.id, &req.username, &req.name)
        {
            Err(StoreError::Conflict(_)) => return Err(taken()),
            other => other?,
        }
        state.sessions.forget_user(&user.id);
        let updated = state
            .store
            .user_by_id(&user.id)?
            .ok_or_else(ApiError::not_found)?;
        ok(&user_json(&state, &updated)?)
    })
    .await
}

#[derive(Deserialize)]
struct PasswordRequest {
    #[serde(default)]
    old_password: String,
    #[serde(default)]
    password: String,
}

/// Coder's checks, in Coder's order; every API key of the user ends with the change
/// (sessions, the caller's own included, and named tokens).
/// The old and new passwords are hashed on one of the few hash turns (`limits::hashing`).
pub async fn put_password(
    state: State,
    limits: web::Data<Limits>,
    actor: Actor,
    path: web::Path<String>,
    body: Body<SMALL>,
) -> ApiResult<Reply> {
    hashing(&limits, move || {
        let user = find_user(&state, &actor, &path)?;
        let own = user.id == actor.user.id;
        if !own && !actor.caller().manages_users() {
            return Err(ApiError::not_found());
        }
        let req: PasswordRequest = read_json(&body)?;
        if req.password.is_empty() {
            return Err(
                ApiError::validation().with_validation("password", tag_failed("required", ""))
            );
        }
        if user.login_type != "password" {
            return Err(ApiError::bad_request(
                "Users without password login type cannot change their password.",
            ));
        }
        if own && req.old_password.is_empty() {
            return Err(ApiError::bad_request("Old password is required."));
        }
        if let Err(why) = crate::domain::password::validate(&req.password) {
            return Err(ApiError::bad_request("Invalid password.").with_validation("password", why));
        }
        if !req.old_password.is_empty()
            && !identity::verify_password(&user.hashed_password, &req.old_password)
        {
            return Err(ApiError::bad_request("Old password is incorrect.")
                .with_validation("old_password", "Old password is incorrect."));
        }
        if identity::verify_password(&user.hashed_password, &req.password) {
            return Err(ApiError::bad_request(
                "New password cannot match old password.",
            ));
        }
        state
            .store
            .set_user_password(&user.id, &identity::hash_password(&req.password))?;
        state.sessions.forget_user(&user.id);
        Ok(Reply::no_content())
    })
    .await
}

#[derive(Deserialize)]
struct ValidateRequest {
    #[serde(default)]
    password: String,
}

/// No session needed (asked on the first user's form, and before a change).
pub async fn validate_password(body: Body<SMALL>) -> ApiResult<Reply> {
    let req: ValidateRequest = read_json(&body)?;
    if req.password.is_empty() {
        return Err(ApiError::validation().with_validation("password", tag_failed("required", "")));
    }
    let verdict = crate::domain::password::validate(&req.password);
    ok(&json!({
        "valid": verdict.is_ok(),
        "details": verdict.err().unwrap_or_default(),
    }))
}
