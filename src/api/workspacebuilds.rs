//! Workspace builds: read one (by id, or by owner, workspace name and number), list a
//! workspace's builds, cancel, and a build's logs, parameters, resources and state.
//! Creating a build lives in `build_create.rs`.

use super::build_cache;
use super::build_create::{can_read_workspace_of, decode_state};
use super::query::{QueryParser, go_parse_int_error};
use super::views::{build_json, resources_json};
use super::workspaces::{find_workspace, find_workspace_by_name};
use super::{Actor, ApiError, ApiResult, ok, parse_uuid, read_json, res};
use crate::State;
use crate::model::{JobStatus, Response, Time, WorkspaceBuildParameter};
use crate::store::{BuildRow, CancelOutcome};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(res("/workspacebuilds/{workspacebuild}").route(web::get().to(get)))
        .service(res("/workspacebuilds/{workspacebuild}/cancel").route(web::patch().to(cancel)))
        .service(res("/workspacebuilds/{workspacebuild}/logs").route(web::get().to(logs)))
        .service(
            res("/workspacebuilds/{workspacebuild}/parameters").route(web::get().to(parameters)),
        )
        .service(res("/workspacebuilds/{workspacebuild}/resources").route(web::get().to(resources)))
        .service(
            res("/workspacebuilds/{workspacebuild}/state")
                .route(web::get().to(get_state))
                .route(web::put().to(put_state)),
        )
        .service(
            res("/users/{user}/workspace/{workspacename}/builds/{buildnumber}")
                .route(web::get().to(get_by_number)),
        );
}

/// A build the caller may read (builds of deleted workspaces included); the generic 404
/// otherwise.
pub fn find_build(state: &State, actor: &Actor, raw: &str) -> ApiResult<BuildRow> {
    let id = parse_uuid(raw)?;
    state
        .store
        .build(&id)?
        .filter(|b| can_read_workspace_of(actor, &b.workspace_owner_id))
        .ok_or_else(ApiError::not_found)
}

fn json_body(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Content-Type", "application/json; charset=utf-8"))
        .body(body)
}

/// The hot read: a completed build's JSON comes from `build_cache` when it is there.
async fn get(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = parse_uuid(&path)?;
    if let Some(hit) = build_cache::get(&id) {
        if !can_read_workspace_of(&actor, &hit.owner_id) {
            return Err(ApiError::not_found());
        }
        return Ok(json_body(hit.body));
    }
    let build = find_build(&state, &actor, &id)?;
    let json = build_json(&state, &build)?;
    let body = web::Bytes::from(serde_json::to_vec(&json).unwrap_or_default());
    build_cache::put(&json, body.clone());
    Ok(json_body(body))
}

/// Go's `strconv.ParseInt(raw, 10, 32)`.
fn parse_build_number(raw: &str) -> ApiResult<i32> {
    raw.parse::<i32>().map_err(|_| {
        ApiError::bad_request("Failed to parse build number as integer.")
            .with_detail(go_parse_int_error(raw))
    })
}

async fn get_by_number(
    state: State,
    actor: Actor,
    path: web::Path<(String, String, String)>,
) -> ApiResult<HttpResponse> {
    let (user, name, number) = path.into_inner();
    // The user is resolved first (Coder's middleware), then the number, then the workspace.
    super::users::find_user(&state, &actor, &user)?;
    let number = parse_build_number(&number)?;
    // As in Coder, only a live workspace is looked up by name here (a deleted one is 404).
    let workspace = find_workspace_by_name(&state, &actor, &user, &name, false)?;
    let build = state
        .store
        .build_by_number(&workspace.id, number.into())?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("Workspace {name:?} Build {number} does not exist."),
            )
        })?;
    ok(&build_json(&state, &build)?)
}

/// GET /workspaces/{workspace}/builds (routed with POST in `build_create.rs`).
pub async fn list(
    state: State,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let workspace = find_workspace(&state, &actor, &path)?;
    let mut q = QueryParser::new(&req);
    let after_id = q.uuid("after_id");
    let limit = q.positive_int32("limit", 0);
    let offset = q.positive_int32("offset", 0);
    q.finish()?;
    let since = q_since(&req)?;
    let after_number = match after_id {
        Some(id) => Some(
            state
                .store
                .build(&id)?
                .filter(|b| can_read_workspace_of(&actor, &b.workspace_owner_id))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Record at \"after_id\" ({id:?}) does not exist."
                    ))
                })?
                .build_number,
        ),
        None => None,
    };
    let builds = state.store.builds(
        &workspace.id,
        after_number,
        since,
        offset.into(),
        limit.into(),
    )?;
    let out = builds
        .iter()
        .map(|b| build_json(&state, b))
        .collect::<ApiResult<Vec<_>>>()?;
    ok(&out)
}

/// `since`: RFC 3339, else 400 `` bad `since` format, must be RFC3339 ``.
fn q_since(req: &HttpRequest) -> ApiResult<Option<Time>> {
    let q = QueryParser::new(req);
    match q.first("since") {
        None | Some("") => Ok(None),
        Some(raw) => Time::parse_rfc3339(raw).map(Some).ok_or_else(|| {
            ApiError::bad_request("bad `since` format, must be RFC3339").with_detail(format!(
                "parsing time {raw:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {raw:?} as RFC 3339"
            ))
        }),
    }
}

async fn cancel(
    state: State,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let build = find_build(&state, &actor, &path)?;
    // 1. expect_status.
    let expect = match QueryParser::new(&req).first("expect_status") {
        None | Some("") => None,
        Some("running") => Some(JobStatus::Running),
        Some("pending") => Some(JobStatus::Pending),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid expect_status {other:?}. Only 'running' or 'pending' are allowed."
            )));
        }
    };
    // 2. Permission: canceling a pending job is always allowed to those who can read it.
    if expect != Some(JobStatus::Pending) && !build.template_allow_user_cancel && !actor.is_owner()
    {
        return Err(ApiError::forbidden(
            "User is not allowed to cancel workspace builds. Owner role is required.",
        ));
    }
    // 3 and 4, under the job's lock.
    let job_id = build.job.id.clone();
    let outcome = state.store.cancel_job(&job_id, expect)?;
    match outcome {
        CancelOutcome::NotFound => return Err(ApiError::not_found()),
        CancelOutcome::AlreadyCompleted => {
            return Err(ApiError::bad_request("Job has already completed!"));
        }
        CancelOutcome::AlreadyCanceling => {
            return Err(ApiError::bad_request(
                "Job has already been marked as canceled!",
            ));
        }
        CancelOutcome::NotExpected => {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "Job is not in the expected state.",
            ));
        }
        CancelOutcome::CanceledPending => {}
        CancelOutcome::CancelingRunning => state.engine.cancel(&job_id),
    }
    // Followers see the new state (a canceled pending job has ended).
    state.engine.bus.publish(&job_id);
    ok(&Response {
        message: "Job has been marked as canceled...".into(),
        detail: String::new(),
        validations: Vec::new(),
    })
}

async fn logs(
    state: State,
    actor: Actor,
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let build = find_build(&state, &actor, &path)?;
    super::logs::serve(state, req, payload, build.job.id).await
}

async fn parameters(
    state: State,
    actor: Actor,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let build = find_build(&state, &actor, &path)?;
    let params: Vec<WorkspaceBuildParameter> = state
        .store
        .build_parameters(&build.id)?
        .into_iter()
        .map(|(name, value)| WorkspaceBuildParameter { name, value })
        .collect();
    ok(&params)
}

async fn resources(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let build = find_build(&state, &actor, &path)?;
    if build.job.completed_at.is_none() {
        return Err(ApiError::bad_request("Job hasn't completed!"));
    }
    ok(&resources_json(&state, &build.job.id)?)
}

/// A build whose state the caller may read and push: owners and template admins; anyone else
/// gets the generic 404.
fn find_build_for_state(state: &State, actor: &Actor, raw: &str) -> ApiResult<BuildRow> {
    let build = find_build(state, actor, raw)?;
    if !actor.is_template_manager() {
        return Err(ApiError::not_found());
    }
    Ok(build)
}

async fn get_state(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let build = find_build_for_state(&state, &actor, &path)?;
    let bytes = state.store.build_state(&build.id)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Content-Type", "application/json"))
        .body(bytes))
}

#[derive(Deserialize)]
struct UpdateStateBody {
    #[serde(default)]
    state: serde_json::Value,
}

async fn put_state(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let build = find_build_for_state(&state, &actor, &path)?;
    let req: UpdateStateBody = read_json(&body)?;
    let bytes = match &req.state {
        serde_json::Value::Null => Vec::new(),
        v => decode_state(v).ok_or_else(|| {
            ApiError::bad_request("Request body must be valid JSON.")
                .with_detail("state: expected base64-encoded bytes")
        })?,
    };
    state.store.set_build_state(&build.id, &bytes)?;
    build_cache::forget(&build.id);
    Ok(HttpResponse::NoContent().finish())
}
