//! `PUT /users/{user}/status/suspend` and `…/activate`, with Coder's guards: nobody suspends
//! themselves or an owner. A suspended user's sessions stop working at once on this server
//! (its session cache forgets them) and within a second on the others (their caches expire).

use super::lookup::find_user;
use super::users::{forbidden, user_json};
use super::{Actor, ApiError, ApiResult, Reply, blocking, ok, res};
use crate::api::State;
use crate::model::Role;
use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(res("/users/{user}/status/suspend").route(web::put().to(suspend)))
        .service(res("/users/{user}/status/activate").route(web::put().to(activate)));
}

async fn suspend(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    set_status(state, actor, path.into_inner(), "suspended").await
}

async fn activate(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
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
