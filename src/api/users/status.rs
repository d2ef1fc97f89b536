//! `PUT /users/{user}/status/suspend` and `…/activate`, with Coder's guards: nobody suspends
//! themselves or an owner. A suspended user's sessions stop working at once on this server
//! (its session cache forgets them) and within a second on the others (their caches expire).

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::error::forbidden;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::lookup::find_user;
use crate::api::present::views::user_json;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::model::Role;
use actix_web::web;

pub async fn suspend(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    set_status(state, actor, path.into_inner(), "suspended").await
}

pub async fn activate(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    set_status(state, actor, path.into_inner(), "active").await
}

async fn set_status(
    state: State,
    actor: Actor,
    user: String,
    status: &'static str,
) -> ApiResult<Reply> {
    blocking(move || {
        let user = find_user(&state, &actor, &user)?;
        if !actor.caller().manages_users() {
            return Err(forbidden());
        }
        if status == "suspended" {
            if user.id == actor.user.id {
                return Err(ApiError::bad_request("You cannot suspend yourself."));
            }
            if user.has_role(Role::Owner) {
                return Err(ApiError::bad_request(
                    "You cannot suspend a user with the \"owner\" role. You must remove the role first.",
                ));
            }
        }
        state.store.set_user_status(&user.id, status)?;
        state.sessions.forget_user(&user.id);
        let row = state
            .store
            .user_by_id(&user.id)?
            .ok_or_else(ApiError::not_found)?;
        ok(&user_json(&state, &row)?)
    })
    .await
}
