//! Creating a workspace build: every check of the spec (section 4, POST builds), in order, then
//! the build and its job in one transaction. Also used for a new workspace's first build.

use crate::api::State;
use crate::api::body::{Body, LARGE};
use crate::api::lookup::find_workspace;
use crate::api::render::build_json;
use crate::api::{
    Actor, ApiError, ApiResult, Reply, blocking, created, given_id, parse_uuid, read_json,
    tag_failed,
};
use crate::domain::builds::{
    BuildIntent, VersionFacts, WorkspaceFacts, check_previous, check_request,
};
use crate::model::parameters;
use crate::model::{Transition, WorkspaceBuildParameter, new_id};
use crate::store::{
    BuildRow, CreateBuildOutcome, FollowUp, NewBuild, NewWorkspace, Store, StoreError, TemplateRow,
    TemplateVersionRow, WorkspaceRow,
};
use actix_web::web;
use base64::Engine as _;
use serde::Deserialize;

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
    #[serde(default)]
    on_success: Option<serde_json::Value>,
    #[serde(default)]
    template_version_preset_id: Option<String>,
    #[serde(default)]
    secrets: Option<serde_json::Value>,
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
    /// The start to queue when this stop succeeds.
    pub on_success: Option<super::on_success::OnSuccess>,
}

/// `[]byte` as Go encodes it (a base64 string), or an array of byte values.
pub(crate) fn decode_state(v: &serde_json::Value) -> Option<Vec<u8>> {
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
    let (mut invalid, on_success) =
        super::on_success::parse(b.on_success.as_ref(), transition, invalid);
    invalid = crate::api::preset_refused(&b.template_version_preset_id, invalid);
    if b.secrets
        .as_ref()
        .is_some_and(|s| !crate::api::body::is_zero(s))
    {
        invalid = invalid.with_validation(
            "secrets",
            "kiln does not support build secrets: the build is refused rather than run without them.",
        );
    }
    invalid.if_any()?;
    Ok(BuildRequest {
        transition: transition.unwrap(),
        template_version_id: given_id(&b.template_version_id).map(str::to_string),
        rich_parameter_values: b.rich_parameter_values,
        state: state.filter(|s| !s.is_empty()),
        orphan: b.orphan,
        debug: b.log_level == "debug",
        reason: if b.reason.is_empty() {
            "initiator".into()
        } else {
            b.reason
        },
        on_success,
    })
}

impl BuildRequest {
    fn intent(&self) -> BuildIntent {
        BuildIntent {
            transition: self.transition,
            orphan: self.orphan,
            custom_state: self.state.is_some(),
            debug: self.debug,
        }
    }
}

/// Check 5: the version exists, belongs to the template, and imported successfully.
pub fn check_version(
    version: Option<TemplateVersionRow>,
    template: &TemplateRow,
) -> ApiResult<TemplateVersionRow> {
    let facts = version.as_ref().map(|v| VersionFacts {
        template_id: v.template_id.as_deref(),
        name: &v.name,
        import_status: v.job.status(),
        import_error: &v.job.error,
    });
    crate::domain::builds::check_version(facts, &template.id)?;
    Ok(version.expect("checked"))
}

/// Resolves the parameters (check 7) and queues the build and its job.
pub fn queue_build(
    store: &dyn Store,
    initiator_id: &str,
    workspace: &WorkspaceRow,
    version: &TemplateVersionRow,
    req: &BuildRequest,
    previous: Option<&BuildRow>,
    first: Option<&NewWorkspace>,
) -> ApiResult<BuildRow> {
    let manifest = version.imported_manifest().unwrap_or_default();
    let previous_params = match previous {
        Some(p) => Some(store.build_parameters(&p.id)?),
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
    let unvalidated = |e: parameters::ParameterError| {
        ApiError::bad_request(format!("Unable to validate parameter {:?}", e.name))
            .with_detail(e.detail)
    };
    // The start a stop carries takes its parameters as a start after this stop would.
    let follow_up = match &req.on_success {
        Some(next) => Some(FollowUp {
            id: new_id(),
            job_id: new_id(),
            transition: Transition::Start,
            parameters: parameters::resolve(
                &manifest.parameters,
                &next.rich_parameter_values,
                Some(&params),
            )
            .map_err(unvalidated)?,
            reason: req.reason.clone(),
            log_level: if req.debug { "debug" } else { "info" }.to_string(),
        }),
        None => None,
    };
    let id = new_id();
    let build = NewBuild {
        id: &id,
        job_id: &new_id(),
        workspace_id: &workspace.id,
        organization_id: &workspace.organization_id,
        template_version_id: &version.id,
        file_id: &version.file_id,
        transition: req.transition,
        initiator_id,
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
        on_success: follow_up.as_ref(),
    };
    match first {
        Some(w) => match store.create_workspace(w, &build) {
            Err(StoreError::Conflict(_)) => {
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
            if store.create_build(&build)? == CreateBuildOutcome::ActiveBuild {
                return Err(ApiError::conflict("A workspace build is already active."));
            }
        }
    }
    store.build(&id)?.ok_or_else(ApiError::not_found)
}

pub async fn post_build(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<LARGE>,
) -> ApiResult<Reply> {
    blocking(move || {
        let workspace = find_workspace(&state, &actor, &path)?;
        // 1. Body and validation.
        let req = parse_request(&body)?;
        // 2 to 4: deleted workspace, orphan, permission.
        let facts = WorkspaceFacts {
            owner_id: &workspace.owner_id,
            deleted: workspace.deleted,
        };
        check_request(actor.caller(), facts, req.intent())?;
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
        // 6. Active build (checked again where the build is inserted).
        check_previous(previous.as_ref().map(|p| p.job.status()))?;
        // 7. Parameters, then queue.
        let build = queue_build(
            &*state.store,
            &actor.user.id,
            &workspace,
            &version,
            &req,
            previous.as_ref(),
            None,
        )?;
        created(&build_json(&state, &build)?)
    })
    .await
}
