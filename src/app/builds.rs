//! Queueing a workspace build, the use case behind `POST /workspaces/{id}/builds`, a new
//! workspace's first build and the lifecycle executor's builds: the checks of the spec (section
//! 4, checks 2 to 7, in order, decided by `domain::builds`), then the build and its job in one
//! transaction. The HTTP layer reads and validates the body (check 1) and gives each
//! `BuildError` its status and Coder's message (`api/error.rs`).

use crate::domain::Caller;
use crate::domain::builds::{
    BuildIntent, BuildRefusal, VersionFacts, WorkspaceFacts, check_previous, check_request,
};
use crate::model::parameters::{self, ParameterError};
use crate::model::{Transition, WorkspaceBuildParameter, new_id};
use crate::store::{
    BuildRow, CreateBuildOutcome, FollowUp, NewBuild, NewWorkspace, Store, StoreError, TemplateRow,
    TemplateVersionRow, WorkspaceRow,
};

/// A build request after its body was read and validated.
pub struct BuildRequest {
    pub transition: Transition,
    /// The version asked for, as sent (none: the latest build's).
    pub template_version_id: Option<String>,
    pub rich_parameter_values: Vec<WorkspaceBuildParameter>,
    pub state: Option<Vec<u8>>,
    pub orphan: bool,
    pub debug: bool,
    pub reason: String,
    /// The start to queue when this stop succeeds.
    pub on_success: Option<OnSuccess>,
}

/// The start a stop build carries (Coder's server-side restart): queued by the store in the
/// same transaction as the stop's success.
#[derive(Debug, Clone)]
pub struct OnSuccess {
    pub rich_parameter_values: Vec<WorkspaceBuildParameter>,
}

/// Why a build was not queued.
#[derive(Debug)]
pub enum BuildError {
    /// One of the spec's checks refused it (`ActiveBuild` also when another build was queued
    /// since the latest one was read).
    Refused(BuildRefusal),
    /// Check 7: a parameter value the template refuses.
    Parameter(ParameterError),
    /// A new workspace's name is taken.
    WorkspaceExists(String),
    /// The workspace's template is gone.
    TemplateGone,
    Store(StoreError),
}

impl From<BuildRefusal> for BuildError {
    fn from(r: BuildRefusal) -> BuildError {
        BuildError::Refused(r)
    }
}

impl From<StoreError> for BuildError {
    fn from(e: StoreError) -> BuildError {
        BuildError::Store(e)
    }
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Refused(r) => write!(f, "{r:?}"),
            BuildError::Parameter(e) => write!(f, "parameter {:?}: {}", e.name, e.detail),
            BuildError::WorkspaceExists(name) => write!(f, "workspace {name:?} already exists"),
            BuildError::TemplateGone => f.write_str("the workspace's template is gone"),
            BuildError::Store(e) => write!(f, "{e}"),
        }
    }
}

pub type BuildResult<T> = Result<T, BuildError>;

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

/// Checks 2 to 7 for `caller`, who may read `workspace`, then queues the build.
pub fn create_build(
    store: &dyn Store,
    caller: Caller,
    workspace: &WorkspaceRow,
    req: &BuildRequest,
) -> BuildResult<BuildRow> {
    // 2 to 4: deleted workspace, orphan, permission.
    let facts = WorkspaceFacts {
        owner_id: &workspace.owner_id,
        deleted: workspace.deleted,
    };
    check_request(caller, facts, req.intent())?;
    // 5. Template version.
    let template = store
        .template(&workspace.template_id)?
        .ok_or(BuildError::TemplateGone)?;
    let previous = store.latest_build(&workspace.id)?;
    let version_id = match &req.template_version_id {
        Some(raw) => uuid::Uuid::parse_str(raw).ok().map(|u| u.to_string()),
        None => previous.as_ref().map(|p| p.template_version_id.clone()),
    };
    let version = match version_id {
        Some(id) => store.template_version(&id)?,
        None => None,
    };
    let version = check_version(version, &template)?;
    // 6. Active build (checked again where the build is inserted).
    check_previous(previous.as_ref().map(|p| p.job.status()))?;
    // 7. Parameters, then queue.
    queue_build(
        store,
        caller.user_id,
        workspace,
        &version,
        req,
        previous.as_ref(),
        None,
    )
}

/// Check 5: the version exists, belongs to the template, and imported successfully.
pub fn check_version(
    version: Option<TemplateVersionRow>,
    template: &TemplateRow,
) -> BuildResult<TemplateVersionRow> {
    let facts = version.as_ref().map(|v| VersionFacts {
        template_id: v.template_id.as_deref(),
        name: &v.name,
        import_status: v.job.status(),
        import_error: &v.job.error,
    });
    crate::domain::builds::check_version(facts, &template.id)?;
    Ok(version.expect("checked"))
}

/// Resolves the parameters (check 7) and queues the build and its job; with `first`, the
/// new workspace is created in the same transaction.
pub fn queue_build(
    store: &dyn Store,
    initiator_id: &str,
    workspace: &WorkspaceRow,
    version: &TemplateVersionRow,
    req: &BuildRequest,
    previous: Option<&BuildRow>,
    first: Option<&NewWorkspace>,
) -> BuildResult<BuildRow> {
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
    .map_err(BuildError::Parameter)?;
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
            .map_err(BuildError::Parameter)?,
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
                return Err(BuildError::WorkspaceExists(w.name.to_string()));
            }
            other => other?,
        },
        None => {
            if store.create_build(&build)? == CreateBuildOutcome::ActiveBuild {
                return Err(BuildRefusal::ActiveBuild.into());
            }
        }
    }
    Ok(store.build(&id)?.ok_or(StoreError::NotFound)?)
}
