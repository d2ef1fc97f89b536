//! A workspace's schedule, as Coder's `coderd/workspaces.go` serves it: `PUT …/autostart`,
//! `PUT …/ttl`, `PUT …/extend` and `GET …/resolve-autostart`. The lifecycle executor
//! (`app::lifecycle`) acts on what these set.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, MEDIUM};
use crate::api::extract::fields::tag_failed;
use crate::api::extract::lookup::find_workspace;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::api::workspaces::workspace::gone;
use crate::app::state::AppState;
use crate::domain::lifecycle::{self, ExtendRefusal};
use crate::domain::schedule;
use crate::model::{Time, parameters};
use crate::store::WorkspaceRow;
use actix_web::http::StatusCode;
use actix_web::web;
use serde::Deserialize;

/// The workspace, readable by the caller and not deleted.
fn live_workspace(state: &AppState, actor: &Actor, raw: &str) -> ApiResult<WorkspaceRow> {
    let w = find_workspace(state, actor, raw)?;
    if w.deleted {
        return Err(gone());
    }
    Ok(w)
}

/// Changing a workspace's schedule is an update: its owner, or an owner (site admin).
fn check_update(actor: &Actor, w: &WorkspaceRow) -> ApiResult<()> {
    if !actor.caller().can_build_workspace_of(&w.owner_id) {
        return Err(ApiError::forbidden(
            "You do not have permission to update this workspace.",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct AutostartBody {
    #[serde(default)]
    schedule: Option<String>,
}

/// 204; a schedule that is not Coder's weekly cron: 400 `Invalid autostart schedule.` with the
/// parser's message on `schedule`. Empty or null clears it.
pub async fn put_autostart(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<MEDIUM>,
) -> ApiResult<Reply> {
    blocking(move || {
        let w = live_workspace(&state, &actor, &path)?;
        let req: AutostartBody = read_json(&body)?;
        let sched = req.schedule.filter(|s| !s.is_empty());
        if let Some(s) = &sched {
            schedule::weekly(s).map_err(|e| {
                ApiError::bad_request("Invalid autostart schedule.").with_validation("schedule", e)
            })?;
        }
        check_update(&actor, &w)?;
        state
            .store
            .set_autostart_schedule(&w.id, sched.as_deref())?;
        Ok(Reply::no_content())
    })
    .await
}

#[derive(Deserialize)]
struct TtlBody {
    #[serde(default)]
    ttl_ms: Option<i64>,
}

/// 204; the TTL is truncated to whole minutes, at least one, at most 30 days; null or 0 turns
/// autostop off and takes the deadline off a started workspace (a new TTL applies from the
/// next start, as in Coder).
pub async fn put_ttl(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<MEDIUM>,
) -> ApiResult<Reply> {
    blocking(move || {
        let w = live_workspace(&state, &actor, &path)?;
        let req: TtlBody = read_json(&body)?;
        let ttl = lifecycle::workspace_ttl(req.ttl_ms).map_err(|detail| {
            ApiError::bad_request("Error updating workspace time until shutdown.")
                .with_validation("ttl_ms", detail)
        })?;
        check_update(&actor, &w)?;
        state.store.set_workspace_ttl(&w.id, ttl)?;
        Ok(Reply::no_content())
    })
    .await
}

#[derive(Deserialize)]
struct ExtendBody {
    #[serde(default)]
    deadline: Option<String>,
}

/// Go's `time.RFC3339`: whole seconds.
fn rfc3339_seconds(t: Time) -> String {
    let full = t.rfc3339();
    format!("{}Z", &full[..19])
}

/// 200 `{"message": "Deadline updated to <time>."}`, or Coder's refusals (`ExtendRefusal`).
pub async fn put_extend(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<MEDIUM>,
) -> ApiResult<Reply> {
    blocking(move || {
        let w = live_workspace(&state, &actor, &path)?;
        let req: ExtendBody = read_json(&body)?;
        let Some(raw) = req.deadline else {
            return Err(ApiError::validation().with_validation(
                "deadline",
                tag_failed("required", "0001-01-01 00:00:00 +0000 UTC"),
            ));
        };
        let deadline = Time::parse_rfc3339(&raw).ok_or_else(|| {
            ApiError::bad_request("Request body must be valid JSON.")
                .with_detail(format!("parsing time {raw:?} as RFC 3339"))
        })?;
        check_update(&actor, &w)?;
        state.store.extend_deadline(&w.id, deadline)??;
        ok(&crate::model::Response::message(format!(
            "Deadline updated to {}.",
            rfc3339_seconds(deadline)
        )))
    })
    .await
}

/// Coder's `PUT …/extend` refusals.
impl From<ExtendRefusal> for ApiError {
    fn from(r: ExtendRefusal) -> ApiError {
        let cannot = |why: &str| ApiError::bad_request(format!("Cannot extend workspace: {why}"));
        match r {
            ExtendRefusal::NotStarted(t) => ApiError::new(
                StatusCode::CONFLICT,
                format!("Workspace must be started, current status: {}", t.as_str()),
            ),
            ExtendRefusal::StillBuilding => {
                ApiError::new(StatusCode::CONFLICT, "Workspace is still building!")
            }
            ExtendRefusal::ManualShutdown => {
                ApiError::new(StatusCode::CONFLICT, "Workspace shutdown is manual.")
            }
            ExtendRefusal::TooSoon => {
                cannot("new deadline must be at least 30 minutes in the future")
            }
            ExtendRefusal::BeforeStart => {
                cannot("new deadline must be before workspace start time")
            }
            ExtendRefusal::BeyondMaxDeadline => {
                ApiError::bad_request("Cannot extend workspace beyond max deadline.")
            }
        }
    }
}

#[derive(serde::Serialize)]
struct ResolveAutostartResponse {
    parameter_mismatch: bool,
}

/// Whether an autostart would fail on parameters: only when it would move the workspace to
/// the template's active version (`automatic_updates: always`) and the latest build's values
/// do not satisfy that version's parameters.
pub async fn resolve_autostart(
    state: State,
    actor: Actor,
    path: web::Path<String>,
) -> ApiResult<Reply> {
    blocking(move || {
        let w = find_workspace(&state, &actor, &path)?;
        let mut mismatch = false;
        if w.automatic_updates == "always"
            && let Some(template) = state.store.template(&w.template_id)?
            && let Some(latest) = state.store.latest_build(&w.id)?
            && latest.template_version_id != template.active_version_id
            && let Some(version) = state.store.template_version(&template.active_version_id)?
        {
            let manifest = version.imported_manifest().unwrap_or_default();
            let previous = state.store.build_parameters(&latest.id)?;
            mismatch = parameters::resolve(&manifest.parameters, &[], Some(&previous)).is_err();
        }
        ok(&ResolveAutostartResponse {
            parameter_mismatch: mismatch,
        })
    })
    .await
}
