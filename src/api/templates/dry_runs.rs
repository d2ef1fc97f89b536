//! Template-version dry runs, as Coder's CLI makes one before `create`, `start` and `restart`:
//! `POST /templateversions/{id}/dry-run` queues a job of type `template_version_dry_run`
//! (`provisioner/dry_run_job.rs`: any worker or daemon takes it; it checks the parameters and
//! plans the resources a start would leave, running no step), and the job's own routes read
//! it, its logs (followed like a build's), its resources and matched provisioners, or cancel
//! it. Coder's checks, in Coder's order, with Coder's messages.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, MEDIUM};
use crate::api::extract::lookup::find_version;
use crate::api::present::views::{job_json, matching_daemons};
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::created;
use crate::api::reply::ok;
use crate::app::state::AppState;
use crate::domain::CancelRefusal;
use crate::model::{self, ProvisionerJobMetadata, Response, WorkspaceBuildParameter, new_id};
use crate::store::{JOB_DRY_RUN, JobRow, NewDryRun, TemplateVersionRow};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

/// `codersdk.CreateTemplateVersionDryRunRequest` (`user_variable_values`, which Coder's
/// handler ignores too, is read and dropped: kiln templates have no Terraform variables).
#[derive(Deserialize)]
struct DryRunRequest {
    #[serde(default)]
    workspace_name: String,
    #[serde(default)]
    rich_parameter_values: Vec<WorkspaceBuildParameter>,
}

pub async fn start(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<MEDIUM>,
) -> ApiResult<Reply> {
    blocking(move || {
        let version = find_version(&state, &path)?;
        // Coder checks that the caller may create a workspace of their own.
        if !actor.caller().may_create_workspace_for(&actor.user.id) {
            return Err(ApiError::not_found());
        }
        let req: DryRunRequest = read_json(&body)?;
        if version.job.completed_at.is_none() {
            return Err(ApiError::new(
                StatusCode::from_u16(425).expect("425 Too Early"),
                "Template version import job hasn't completed!",
            ));
        }
        let id = new_id();
        state.store.insert_dry_run(&NewDryRun {
            id: &id,
            version_id: &version.id,
            organization_id: &version.organization_id,
            initiator_id: &actor.user.id,
            file_id: &version.file_id,
            input: serde_json::json!({
                "template_version_id": version.id,
                "workspace_name": req.workspace_name,
                "rich_parameter_values": req.rich_parameter_values,
            }),
        })?;
        let job = state.store.job(&id)?.ok_or_else(ApiError::not_found)?;
        // As Coder's answer: no queue position in the creation's answer.
        let mut json = job_json(&state, &job, metadata(&version), None)?;
        json.queue_position = 0;
        json.queue_size = 0;
        created(&json)
    })
    .await
}

/// What the job of a dry run says it is about: its version (Coder fills no more here).
fn metadata(version: &TemplateVersionRow) -> ProvisionerJobMetadata {
    ProvisionerJobMetadata {
        template_version_name: version.name.clone(),
        template_id: version
            .template_id
            .clone()
            .unwrap_or_else(|| model::NIL_UUID.to_string()),
        ..Default::default()
    }
}

/// The version and its dry run `job`, as Coder's checks find them: 400 for a job id that is
/// no UUID, 404 for an unknown job, 403 for a job that is not a dry run of this version or
/// that was started by someone whose workspaces the caller cannot read.
fn find(
    state: &AppState,
    actor: &Actor,
    version: &str,
    job: &str,
) -> ApiResult<(TemplateVersionRow, JobRow)> {
    let version = find_version(state, version)?;
    let job_id = uuid::Uuid::parse_str(job).map_err(|e| {
        ApiError::bad_request(format!("Job ID {job:?} must be a valid UUID."))
            .with_detail(e.to_string())
    })?;
    let job = state.store.job(&job_id.to_string())?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Provisioner job {:?} not found.", job_id.to_string()),
        )
    })?;
    let forbidden = || ApiError::forbidden("Forbidden.");
    if job.kind != JOB_DRY_RUN || !actor.caller().can_read_workspace_of(&job.initiator_id) {
        return Err(forbidden());
    }
    if job.input_json()["template_version_id"].as_str() != Some(version.id.as_str()) {
        return Err(forbidden());
    }
    Ok((version, job))
}

type JobPath = web::Path<(String, String)>;

pub async fn get(state: State, actor: Actor, path: JobPath) -> ApiResult<Reply> {
    blocking(move || {
        let (version, job) = find(&state, &actor, &path.0, &path.1)?;
        ok(&job_json(&state, &job, metadata(&version), None)?)
    })
    .await
}

pub async fn logs(
    state: State,
    actor: Actor,
    req: HttpRequest,
    payload: web::Payload,
    path: JobPath,
) -> ApiResult<HttpResponse> {
    let s = state.clone();
    let user = actor.user.id.clone();
    let (_, job) = blocking(move || find(&s, &actor, &path.0, &path.1)).await?;
    crate::api::logs::answer::serve(state, &user, req, payload, job.id).await
}

pub async fn resources(state: State, actor: Actor, path: JobPath) -> ApiResult<Reply> {
    blocking(move || {
        let (_, job) = find(&state, &actor, &path.0, &path.1)?;
        if job.completed_at.is_none() {
            return Err(ApiError::bad_request("Job hasn't completed!"));
        }
        ok(&crate::api::present::render::resources_json(
            &state, &job.id,
        )?)
    })
    .await
}

/// Every live daemon (built-in workers included) whose tags match the job's, whatever its
/// status, as Coder counts them for a dry run.
pub async fn matched_provisioners(state: State, actor: Actor, path: JobPath) -> ApiResult<Reply> {
    blocking(move || {
        let (_, job) = find(&state, &actor, &path.0, &path.1)?;
        let daemons = crate::app::daemons::live_daemons(&state, &job.organization_id);
        ok(&matching_daemons(&daemons, &job))
    })
    .await
}

/// Coder's words for a dry run's cancel end with a period.
pub async fn cancel(state: State, actor: Actor, path: JobPath) -> ApiResult<Reply> {
    blocking(move || {
        let (_, job) = find(&state, &actor, &path.0, &path.1)?;
        if !actor.caller().can_build_workspace_of(&job.initiator_id) {
            return Err(ApiError::not_found());
        }
        match state.queue.cancel(&job.id, None)? {
            Ok(_) => ok(&Response::message("Job has been marked as canceled.")),
            Err(CancelRefusal::AlreadyCanceling) => Err(ApiError::bad_request(
                "Job has already been marked as canceled.",
            )),
            Err(_) => Err(ApiError::bad_request("Job has already completed.")),
        }
    })
    .await
}
