//! Workspace builds: read. (The full set of build endpoints is being written.)

use super::build_create::can_read_workspace;
use super::views::build_json;
use super::{Actor, ApiError, ApiResult, ok, parse_uuid, res};
use crate::State;
use actix_web::{HttpResponse, web};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(res("/workspacebuilds/{workspacebuild}").route(web::get().to(get)));
}

async fn get(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = parse_uuid(&path)?;
    let build = state.store.build(&id)?.ok_or_else(ApiError::not_found)?;
    let ws = state
        .store
        .workspace(&build.workspace_id)?
        .ok_or_else(ApiError::not_found)?;
    if !can_read_workspace(&actor, &ws) {
        return Err(ApiError::not_found());
    }
    ok(&build_json(&state, &build)?)
}
