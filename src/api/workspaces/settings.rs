//! A workspace's settings beside its schedule (`schedule.rs`), as Coder's dashboard
//! changes them: its name (`PATCH /workspaces/{id}`, with `--allow-workspace-renames`), whether
//! starts follow the template's active version (`autoupdates`), and the values a user gave a
//! template's parameters last (`autofill-parameters`, which the create form fills in).

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::error::forbidden;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, MEDIUM};
use crate::api::extract::fields::tag_failed;
use crate::api::extract::fields::valid_name;
use crate::api::extract::lookup::{find_template, find_user, find_workspace};
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::store::{StoreError, WorkspaceRow};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashSet;

/// The workspace, if the caller may change it (read it, and build it).
fn changeable(state: &State, actor: &Actor, raw: &str) -> ApiResult<WorkspaceRow> {
    let w = find_workspace(state, actor, raw)?;
    if !actor.caller().can_build_workspace_of(&w.owner_id) {
        return Err(forbidden());
    }
    Ok(w)
}

#[derive(Deserialize)]
struct Rename {
    #[serde(default)]
    name: String,
}

pub async fn rename(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<MEDIUM>,
) -> ApiResult<Reply> {
    blocking(move || {
        let w = changeable(&state, &actor, &path)?;
        let req: Rename = read_json(&body)?;
        // Coder's `validate:"username"` has no omitempty: an empty name fails it too.
        if req.name.is_empty() || !valid_name(&req.name) {
            return Err(
                ApiError::validation().with_validation("name", tag_failed("username", &req.name))
            );
        }
        if req.name == w.name {
            return Ok(Reply::no_content());
        }
        if !state.config.allow_workspace_renames {
            return Err(ApiError::bad_request("Workspace renames are not allowed."));
        }
        if w.deleted {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("Workspace {:?} is deleted and cannot be updated.", w.name),
            ));
        }
        match state.store.rename_workspace(&w.id, &req.name) {
            Err(StoreError::Conflict(_)) => Err(ApiError::conflict(format!(
                "Workspace {:?} already exists.",
                req.name
            ))
            .with_validation("name", "This value is already in use and should be unique.")),
            Err(e) => Err(e.into()),
            Ok(()) => Ok(Reply::no_content()),
        }
    })
    .await
}

#[derive(Deserialize)]
struct AutoUpdates {
    #[serde(default)]
    automatic_updates: String,
}

pub async fn autoupdates(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<MEDIUM>,
) -> ApiResult<Reply> {
    blocking(move || {
        let w = changeable(&state, &actor, &path)?;
        let req: AutoUpdates = read_json(&body)?;
        if !matches!(req.automatic_updates.as_str(), "always" | "never") {
            return Err(ApiError::bad_request("Invalid request")
                .with_validation("automatic_updates", "must be always or never"));
        }
        state
            .store
            .set_automatic_updates(&w.id, &req.automatic_updates)?;
        Ok(Reply::no_content())
    })
    .await
}

/// For each parameter name, the value of the newest start build of any of the user's
/// workspaces of the template; ephemeral parameters aside; newest first, at most 100.
pub async fn autofill(
    state: State,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<String>,
) -> ApiResult<Reply> {
    let mut q = crate::api::extract::query::QueryParser::new(&req);
    let template_id = q.required_uuid("template_id");
    q.reject_others(&["template_id"]);
    q.finish_with("Invalid query parameters.")?;
    let template_id = template_id.unwrap_or_default();
    blocking(move || {
        let user = find_user(&state, &actor, &path)?;
        if !actor.caller().can_read_workspace_of(&user.id) {
            return Err(ApiError::not_found());
        }
        let ephemeral: HashSet<String> = find_template(&state, &template_id)
            .ok()
            .and_then(|t| {
                state
                    .store
                    .template_version(&t.active_version_id)
                    .ok()
                    .flatten()
            })
            .and_then(|v| v.imported_manifest())
            .map(|m| {
                m.parameters
                    .into_iter()
                    .filter(|p| p.ephemeral)
                    .map(|p| p.name)
                    .collect()
            })
            .unwrap_or_default();
        let mut seen = HashSet::new();
        let mut values: Vec<(String, String, crate::model::Time)> = state
            .store
            .start_parameters_of(&user.id, &template_id)?
            .into_iter()
            .filter(|(name, _, _)| !ephemeral.contains(name) && seen.insert(name.clone()))
            .collect();
        values.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        values.truncate(100);
        let out: Vec<_> = values
            .into_iter()
            .map(|(name, value, _)| json!({"name": name, "value": value}))
            .collect();
        ok(&out)
    })
    .await
}
