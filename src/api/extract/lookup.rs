//! Path parameters to the rows they name, as the caller may see them: an unknown row, or one
//! the caller may not read, is the generic 404 (existence never leaks). Blocking: call from
//! `blocking`.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::auth::Actor;
use crate::api::extract::fields::parse_uuid;
use crate::app::state::AppState;
use crate::store::{
    BuildRow, OrganizationRow, TemplateRow, TemplateVersionRow, UserRow, WorkspaceRow,
};

/// `{user}`: `me`, a UUID, or a username.
pub fn find_user(state: &AppState, actor: &Actor, raw: &str) -> ApiResult<UserRow> {
    if raw == "me" {
        return Ok(actor.user.clone());
    }
    let found = match uuid::Uuid::parse_str(raw) {
        Ok(id) => state.store.user_by_id(&id.to_string())?,
        Err(_) => state.store.user_by_username(raw)?,
    };
    found.ok_or_else(ApiError::not_found)
}

/// `{user}` for a read of their account: a user the caller may not read
/// (`Caller::may_read_user`) is not found, as in Coder.
pub fn find_readable_user(state: &AppState, actor: &Actor, raw: &str) -> ApiResult<UserRow> {
    let user = find_user(state, actor, raw)?;
    if actor.caller().may_read_user(&user.id) {
        Ok(user)
    } else {
        Err(ApiError::not_found())
    }
}

/// `{organization}` by id or name.
pub fn find_organization(state: &AppState, raw: &str) -> ApiResult<OrganizationRow> {
    state
        .store
        .organization(raw)?
        .ok_or_else(ApiError::not_found)
}

/// `{workspace}` by id, deleted ones too.
pub fn find_workspace(state: &AppState, actor: &Actor, raw: &str) -> ApiResult<WorkspaceRow> {
    let id = parse_uuid(raw)?;
    state
        .store
        .workspace(&id)?
        .filter(|w| actor.caller().can_read_workspace_of(&w.owner_id))
        .ok_or_else(ApiError::not_found)
}

/// `{user}`'s live workspace `{name}` (with `deleted`, the newest deleted one when no live one
/// exists).
pub fn find_workspace_by_name(
    state: &AppState,
    actor: &Actor,
    user: &str,
    name: &str,
    deleted: bool,
) -> ApiResult<WorkspaceRow> {
    let owner = find_user(state, actor, user)?;
    state
        .store
        .workspace_by_name(&owner.id, name, deleted)?
        .filter(|w| actor.caller().can_read_workspace_of(&w.owner_id))
        .ok_or_else(ApiError::not_found)
}

/// `{workspacebuild}` (builds of deleted workspaces included).
pub fn find_build(state: &AppState, actor: &Actor, raw: &str) -> ApiResult<BuildRow> {
    let id = parse_uuid(raw)?;
    state
        .store
        .build(&id)?
        .filter(|b| actor.caller().can_read_workspace_of(&b.workspace_owner_id))
        .ok_or_else(ApiError::not_found)
}

/// `{template}` (not deleted).
pub fn find_template(state: &AppState, raw: &str) -> ApiResult<TemplateRow> {
    let id = parse_uuid(raw)?;
    state.store.template(&id)?.ok_or_else(ApiError::not_found)
}

/// `{templateversion}`.
pub fn find_version(state: &AppState, raw: &str) -> ApiResult<TemplateVersionRow> {
    let id = parse_uuid(raw)?;
    state
        .store
        .template_version(&id)?
        .ok_or_else(ApiError::not_found)
}
