//! Creating a workspace build: every check of the spec (section 4, POST builds), in order, then
//! the build and its job in one transaction. Also used for a new workspace's first build.

use super::templateversions::version_manifest;
use super::views::build_json;
use super::{Actor, ApiError, ApiResult, created, parse_uuid, read_json, res, tag_failed};
use crate::State;
use crate::model::parameters;
use crate::model::{JobStatus, Transition, WorkspaceBuildParameter};
use crate::store::{
    BuildRow, CreateBuildOutcome, NewBuild, TemplateRow, TemplateVersionRow, WorkspaceRow,
};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use base64::Engine as _;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        res("/workspaces/{workspace}/builds")
            .route(web::get().to(super::workspacebuilds::list))
            .route(web::post().to(post_build)),
    );
}

const CLIENT_REASONS: [&str; 5] = [
    "dashboard",
    "cli",
    "ssh_connection",
    "vscode_connection",
    "jetbrains_connection",
];

#[derive(Debug, Deserialize)]
struct CreateBuildBody {
    #[serde(default)]
    transition: String,
    #[serde(default)]
    template_version_id: Option<String>,
    #[serde(default)]
    rich_parameter_values: Vec<WorkspaceBuildParameter>,
    #[serde(default)]
    state: Option<serde_json::Value>,
    #[serde(default)]
    orphan: bool,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    log_level: String,
    #[serde(default)]
    reason: String,
}

/// A build request after body validation.
pub struct BuildRequest {
    pub transition: Transition,
    pub template_version_id: Option<String>,
    pub rich_parameter_values: Vec<WorkspaceBuildParameter>,
    pub state: Option<Vec<u8>>,
    pub orphan: bool,
    pub debug: bool,
    pub reason: String,
}

/// `[]byte` as Go encodes it (a base64 string), or an array of byte values.
pub(super) fn decode_state(v: &serde_json::Value) -> Option<Vec<u8>> {
    match v {
        serde_json::Value::String(s) => base64::engine::general_purpose::STANDARD.decode(s).ok(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| i.as_u64().and_then(|n| u8::try_from(n).ok()))
            .collect(),
        _ => None,
    }
}

pub fn parse_request(body: &[u8]) -> ApiResult<BuildRequest> {
    let b: CreateBuildBody = read_json(body)?;
    let _ = b.dry_run;
    let mut invalid = ApiError::validation();
    let transition = Transition::parse(&b.transition);
    if b.transition.is_empty() {
        invalid = invalid.with_validation("transition", tag_failed("required", ""));
    } else if transition.is_none() {
        invalid = invalid.with_validation("transition", tag_failed("oneof", &b.transition));
    }
    if !b.log_level.is_empty() && b.log_level != "debug" {
        invalid = invalid.with_validation("log_level", tag_failed("oneof", &b.log_level));
    }
    if !b.reason.is_empty() && !CLIENT_REASONS.contains(&b.reason.as_str()) {
        invalid = invalid.with_validation("reason", tag_failed("oneof", &b.reason));
    }
    let state = match b.state.as_ref().filter(|v| !v.is_null()) {
        Some(v) => match decode_state(v) {
            Some(bytes) => Some(bytes),
            None => {
                invalid = invalid.with_validation("state", "state must be base64-encoded bytes");
                None
            }
        },
        None => None,
    };
    invalid.if_any()?;
    Ok(BuildRequest {
        transition: transition.unwrap(),
        template_version_id: b.template_version_id.filter(|s| !s.is_empty()),
        rich_parameter_values: b.rich_parameter_values,
        state: state.filter(|s| !s.is_empty()),
        orphan: b.orphan,
        debug: b.log_level == "debug",
        reason: if b.reason.is_empty() {
            "initiator".into()
        } else {
            b.reason
        },
    })
}

/// Whether `actor` may see `workspace` at all (otherwise: the generic 404).
pub fn can_read_workspace(actor: &Actor, w: &WorkspaceRow) -> bool {
    can_read_workspace_of(actor, &w.owner_id)
}

/// Whether `actor` may see the workspaces (and builds) of the user `owner_id`.
pub fn can_read_workspace_of(actor: &Actor, owner_id: &str) -> bool {
    actor.is_template_manager() || actor.user.id == owner_id
}

/// Check 5: the version exists, belongs to the template, and imported successfully.
pub fn check_version(
    version: Option<TemplateVersionRow>,
    template: &TemplateRow,
) -> ApiResult<TemplateVersionRow> {
    let v = version.ok_or_else(|| ApiError::bad_request("template version does not exist"))?;
    if v.template_id.as_deref() != Some(template.id.as_str()) {
        return Err(ApiError::bad_request(
            "template version doesn't match template",
        ));
    }
    match v.job.status() {
        JobStatus::Succeeded => Ok(v),
        s @ (JobStatus::Pending | JobStatus::Running) => Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "The provided template version is {}. Wait for it to complete importing!",
                s.as_str()
            ),
        )),
        _ => Err(ApiError::bad_request(format!(
            "The provided template version {:?} has failed to import: {:?}. You cannot build workspaces with it!",
            v.name, v.job.error
        ))),
    }
}

/// Resolves the parameters (check 7) and queues the build and its job.
pub fn queue_build(
    state: &State,
    actor: &Actor,
    workspace: &WorkspaceRow,
    version: &TemplateVersionRow,
    req: &BuildRequest,
    previous: Option<&BuildRow>,
    first: Option<&crate::store::NewWorkspace>,
) -> ApiResult<BuildRow> {
    let manifest = version_manifest(version).unwrap_or_default();
    let previous_params = match previous {
        Some(p) => Some(state.store.build_parameters(&p.id)?),
        None => None,
    };
    let params = parameters::resolve(
        &manifest.parameters,
        &req.rich_parameter_values,
        previous_params.as_deref(),
    )
    .map_err(|e| {
        ApiError::bad_request(format!("Unable to validate parameter {:?}", e.name))
            .with_detail(e.detail)
    })?;
    let id = super::new_id();
    let build = NewBuild {
        id: &id,
        job_id: &super::new_id(),
        workspace_id: &workspace.id,
        organization_id: &workspace.organization_id,
        template_version_id: &version.id,
        file_id: &version.file_id,
        transition: req.transition,
        initiator_id: &actor.user.id,
        reason: &req.reason,
        orphan: req.orphan,
        state: if req.orphan {
            Some(&[][..])
        } else {
            req.state.as_deref()
        },
        parameters: &params,
        log_level: if req.debug { "debug" } else { "info" },
        previous_number: previous.map(|p| p.build_number),
    };
    match first {
        Some(w) => match state.store.create_workspace(w, &build) {
            Err(crate::store::StoreError::Conflict(_)) => {
                return Err(
                    ApiError::conflict(format!("Workspace {:?} already exists.", w.name))
                        .with_validation(
                            "name",
                            "This value is already in use and should be unique.",
                        ),
                );
            }
            other => other?,
        },
        None => {
            if state.store.create_build(&build)? == CreateBuildOutcome::ActiveBuild {
                return Err(ApiError::conflict("A workspace build is already active."));
            }
        }
    }
    state.engine.notify();
    state.store.build(&id)?.ok_or_else(ApiError::not_found)
}

async fn post_build(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let workspace_id = parse_uuid(&path)?;
    let workspace = state
        .store
        .workspace(&workspace_id)?
        .filter(|w| can_read_workspace(&actor, w))
        .ok_or_else(ApiError::not_found)?;
    // 1. Body and validation.
    let req = parse_request(&body)?;
    // 2. A deleted workspace can only be deleted again.
    if workspace.deleted && req.transition != Transition::Delete {
        return Err(ApiError::conflict(format!(
            "Cannot {} a deleted workspace!",
            req.transition.as_str()
        ))
        .with_detail("This workspace has been deleted and cannot be modified."));
    }
    // 3. Orphan.
    if req.orphan && req.transition != Transition::Delete {
        return Err(ApiError::bad_request(
            "Orphan is only permitted when deleting a workspace.",
        ));
    }
    if req.orphan && req.state.is_some() {
        return Err(ApiError::bad_request(
            "ProvisionerState cannot be set alongside Orphan since state intent is unclear.",
        ));
    }
    // 4. Permission.
    if !actor.is_owner() && actor.user.id != workspace.owner_id {
        let action = if req.transition == Transition::Delete {
            "delete"
        } else {
            "update"
        };
        return Err(ApiError::forbidden(format!(
            "You do not have permission to {action} this workspace."
        )));
    }
    if (req.state.is_some() || req.orphan) && !actor.is_template_manager() {
        return Err(ApiError::forbidden(
            "Only template managers may provide custom state",
        ));
    }
    if req.debug && !actor.is_owner() {
        return Err(ApiError::bad_request(
            "Workspace builds with a custom log level are restricted to administrators only.",
        ));
    }
    // 5. Template version.
    let template = state
        .store
        .template(&workspace.template_id)?
        .ok_or_else(|| {
            ApiError::internal(
                "Internal error fetching template.",
                "the workspace's template is gone",
            )
        })?;
    let previous = state.store.latest_build(&workspace.id)?;
    let version_id = match &req.template_version_id {
        Some(raw) => parse_uuid(raw).ok(),
        None => previous.as_ref().map(|p| p.template_version_id.clone()),
    };
    let version = match version_id {
        Some(id) => state.store.template_version(&id)?,
        None => None,
    };
    let version = check_version(version, &template)?;
    // 6. Active build (checked again atomically when the build is inserted).
    if previous
        .as_ref()
        .is_some_and(|p| p.job.status().is_active())
    {
        return Err(ApiError::conflict("A workspace build is already active."));
    }
    // 7. Parameters, then queue.
    let build = queue_build(
        &state,
        &actor,
        &workspace,
        &version,
        &req,
        previous.as_ref(),
        None,
    )?;
    created(&build_json(&state, &build)?)
}
