//! Organization members, as Coder's dashboard and CLI read them. kiln has one organization,
//! which every user belongs to, and no organization roles: a member's `roles` are always
//! empty (Coder's `organization-member` is implied and never listed), the assignable
//! organization roles are none, and a change of roles can only be to none.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::error::forbidden;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, SMALL};
use crate::api::extract::lookup::{find_organization, find_user};
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::app::state::AppState;
use crate::model::{SlimRole, Time};
use crate::store::{OrganizationRow, UserRow};
use actix_web::web;
use serde::Deserialize;
use serde_json::{Value, json};

/// `codersdk.OrganizationMember` (`with_user`: `OrganizationMemberWithUserData`).
fn member_json(org: &OrganizationRow, user: &UserRow, joined: Time, with_user: bool) -> Value {
    let mut m = json!({
        "user_id": user.id,
        "organization_id": org.id,
        "created_at": joined,
        "updated_at": joined,
        "roles": [],
    });
    if with_user {
        let global: Vec<SlimRole> = user.roles.iter().map(|r| SlimRole::from(*r)).collect();
        m["username"] = json!(user.username);
        m["name"] = json!(user.name);
        m["avatar_url"] = json!(user.avatar_url);
        m["email"] = json!(user.email);
        m["global_roles"] = json!(global);
    }
    m
}

/// The member `raw` names, with when they joined; 404 for a user who is no member.
fn find_member(
    state: &AppState,
    actor: &Actor,
    org: &OrganizationRow,
    raw: &str,
) -> ApiResult<(UserRow, Time)> {
    let user = find_user(state, actor, raw)?;
    state
        .store
        .organization_members(&org.id)?
        .into_iter()
        .find(|(u, _)| u.id == user.id)
        .ok_or_else(ApiError::not_found)
}

/// The members the caller may read: a member sees their own membership only (Coder's
/// organization-member role).
pub async fn list(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let org = find_organization(&state, &path)?;
        let members: Vec<Value> = state
            .store
            .organization_members(&org.id)?
            .iter()
            .filter(|(u, _)| actor.caller().may_read_user(&u.id))
            .map(|(u, joined)| member_json(&org, u, *joined, true))
            .collect();
        ok(&members)
    })
    .await
}

/// `[]codersdk.AssignableRoles`: kiln has no organization roles.
pub async fn roles(state: State, _actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        find_organization(&state, &path)?;
        ok(&Vec::<Value>::new())
    })
    .await
}

pub async fn get(
    state: State,
    actor: Actor,
    path: web::Path<(String, String)>,
) -> ApiResult<Reply> {
    blocking(move || {
        let org = find_organization(&state, &path.0)?;
        let (user, joined) = find_member(&state, &actor, &org, &path.1)?;
        if !actor.caller().may_read_user(&user.id) {
            return Err(ApiError::not_found());
        }
        ok(&member_json(&org, &user, joined, true))
    })
    .await
}

#[derive(Deserialize)]
struct UpdateRoles {
    #[serde(default)]
    roles: Vec<String>,
}

/// Coder's checks: not one's own roles (before the body is read), then who may assign; the
/// only roles kiln knows are none (`organization-member`, implied, is dropped as Coder does).
pub async fn put_roles(
    state: State,
    actor: Actor,
    path: web::Path<(String, String)>,
    body: Body<SMALL>,
) -> ApiResult<Reply> {
    blocking(move || {
        let org = find_organization(&state, &path.0)?;
        let (user, joined) = find_member(&state, &actor, &org, &path.1)?;
        if user.id == actor.user.id {
            return Err(
                ApiError::bad_request("You cannot change your own organization roles.")
                    .with_detail(
                        "Another user with the appropriate permissions must change your roles.",
                    ),
            );
        }
        let req: UpdateRoles = read_json(&body)?;
        if !actor.caller().manages_users() {
            return Err(forbidden());
        }
        if let Some(role) = req
            .roles
            .iter()
            .find(|r| r.as_str() != "organization-member")
        {
            if role.contains(':') {
                return Err(ApiError::bad_request(format!(
                    "attempt to assign a role {role:?}, remove the ':<organization_id> suffix"
                )));
            }
            return Err(ApiError::bad_request(format!(
                "{role:?} is not a supported organization role"
            ))
            .with_detail(
                "kiln has no organization roles; site roles are set with PUT /users/{user}/roles.",
            ));
        }
        ok(&member_json(&org, &user, joined, false))
    })
    .await
}
