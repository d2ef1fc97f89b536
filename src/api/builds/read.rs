//! Reading builds: one (by id, or by owner, workspace name and number), a workspace's list,
//! and a build's logs, parameters, resources and state (read and replaced).

use crate::api::builds::create::decode_state;
use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, LARGE};
use crate::api::extract::lookup::{find_build, find_user, find_workspace, find_workspace_by_name};
use crate::api::extract::query::{QueryParser, go_parse_int_error};
use crate::api::present::render::{Renderer, build_json, resources_json};
use crate::api::reply::JSON;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::app::state::AppState;
use crate::model::{Time, WorkspaceBuildParameter};
use crate::store::BuildRow;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;

/// The hot read: a completed build's JSON comes from the build cache when it is there, with
/// no store call (and no hop to the blocking pool, nor the allocation that path needs).
pub async fn get(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    let id = crate::api::extract::fields::parse_uuid(&path)?;
    if let Some(hit) = state.builds.get(&id) {
        if !actor.caller().can_read_workspace_of(&hit.owner_id) {
            return Err(ApiError::not_found());
        }
        return Ok(Reply::new(StatusCode::OK, JSON, hit.body));
    }
    read_build(state, actor, id).await
}

/// A build read from the store (and kept in the cache when it is complete).
fn read_build(state: State, actor: Actor, id: String) -> LocalBoxFuture<'static, ApiResult<Reply>> {
    Box::pin(blocking(move || {
        let build = find_build(&state, &actor, &id)?;
        let json = build_json(&state, &build)?;
        let body = web::Bytes::from(serde_json::to_vec(&json).unwrap_or_default());
        state.builds.put(&json, body.clone());
        Ok(Reply::new(StatusCode::OK, JSON, body))
    }))
}

/// Go's `strconv.ParseInt(raw, 10, 32)`.
fn parse_build_number(raw: &str) -> ApiResult<i32> {
    raw.parse::<i32>().map_err(|_| {
        ApiError::bad_request("Failed to parse build number as integer.")
            .with_detail(go_parse_int_error(raw))
    })
}

pub async fn get_by_number(
    state: State,
    actor: Actor,
    path: web::Path<(String, String, String)>,
) -> ApiResult<Reply> {
    let (user, name, number) = path.into_inner();
    blocking(move || {
        // The user is resolved first (Coder's middleware), then the number, then the workspace.
        find_user(&state, &actor, &user)?;
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
    })
    .await
}

/// GET /workspaces/{workspace}/builds
pub async fn list(
    state: State,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<String>,
) -> ApiResult<Reply> {
    let mut q = QueryParser::new(&req);
    let after_id = q.uuid("after_id");
    let limit = q.positive_int32("limit", 0);
    let offset = q.positive_int32("offset", 0);
    let since = q_since(&q);
    blocking(move || {
        let workspace = find_workspace(&state, &actor, &path)?;
        q.finish()?;
        let since = since?;
        let after_number = match after_id {
            Some(id) => Some(
                state
                    .store
                    .build(&id)?
                    .filter(|b| actor.caller().can_read_workspace_of(&b.workspace_owner_id))
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
        ok(&Renderer::new(&state).builds(&builds)?)
    })
    .await
}

/// `since`: RFC 3339, else 400 `` bad `since` format, must be RFC3339 ``.
fn q_since(q: &QueryParser) -> ApiResult<Option<Time>> {
    match q.first("since") {
        None | Some("") => Ok(None),
        Some(raw) => Time::parse_rfc3339(raw).map(Some).ok_or_else(|| {
            ApiError::bad_request("bad `since` format, must be RFC3339").with_detail(format!(
                "parsing time {raw:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {raw:?} as RFC 3339"
            ))
        }),
    }
}

pub async fn logs(
    state: State,
    actor: Actor,
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let s = state.clone();
    let user = actor.user.id.clone();
    let build = blocking(move || find_build(&s, &actor, &path)).await?;
    crate::api::logs::answer::serve(state, &user, req, payload, build.job.id).await
}

pub async fn parameters(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let build = find_build(&state, &actor, &path)?;
        let params: Vec<WorkspaceBuildParameter> = state
            .store
            .build_parameters(&build.id)?
            .into_iter()
            .map(|(name, value)| WorkspaceBuildParameter { name, value })
            .collect();
        ok(&params)
    })
    .await
}

pub async fn resources(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let build = find_build(&state, &actor, &path)?;
        if build.job.completed_at.is_none() {
            return Err(ApiError::bad_request("Job hasn't completed!"));
        }
        ok(&resources_json(&state, &build.job.id)?)
    })
    .await
}

/// A build whose state the caller may read and push: owners and template admins; anyone else
/// gets the generic 404.
fn find_build_for_state(state: &AppState, actor: &Actor, raw: &str) -> ApiResult<BuildRow> {
    let build = find_build(state, actor, raw)?;
    if !actor.caller().may_access_build_state() {
        return Err(ApiError::not_found());
    }
    Ok(build)
}

pub async fn get_state(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let build = find_build_for_state(&state, &actor, &path)?;
        let bytes = state.store.build_state(&build.id)?;
        Ok(Reply::new(StatusCode::OK, "application/json", bytes))
    })
    .await
}

#[derive(Deserialize)]
struct UpdateStateBody {
    #[serde(default)]
    state: serde_json::Value,
}

pub async fn put_state(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<LARGE>,
) -> ApiResult<Reply> {
    blocking(move || {
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
        Ok(Reply::no_content())
    })
    .await
}
