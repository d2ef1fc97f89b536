//! `GET /organizations/{organization}/provisionerjobs` (filters `status`, `ids`, `tags`,
//! `limit`, newest first) and `…/provisionerjobs/{job}`, as Coder serves them: owners and
//! template admins only (anyone else gets the generic 404).

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::fields::parse_uuid;
use crate::api::extract::lookup::find_organization;
use crate::api::extract::query::QueryParser;
use crate::api::present::views::{build_metadata, job_json, version_metadata};
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::app::state::AppState;
use crate::model::{ProvisionerJob, ProvisionerJobMetadata};
use crate::store::{JOB_BUILD, JobRow};
use actix_web::{HttpRequest, web};
use std::collections::BTreeMap;

/// The tags every kiln job carries (Coder's defaults for an untagged organization job).
fn job_tags() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("scope".to_string(), "organization".to_string()),
        ("owner".to_string(), String::new()),
    ])
}

struct Filter {
    limit: usize,
    statuses: Vec<String>,
    ids: Vec<String>,
    tags: BTreeMap<String, String>,
}

fn parse_filter(req: &HttpRequest) -> ApiResult<Filter> {
    let mut q = QueryParser::new(req);
    let limit = q.positive_int32("limit", 50) as usize;
    let statuses = q.strings("status");
    let ids = q.uuids("ids");
    let tags_raw = q.first("tags").unwrap_or_default().to_string();
    q.reject_others(&["limit", "status", "ids", "tags"]);
    q.finish_with("Invalid query parameters.")?;
    let tags = if tags_raw.is_empty() {
        BTreeMap::new()
    } else {
        serde_json::from_str(&tags_raw).map_err(|e| {
            ApiError::bad_request("Invalid tags query parameter").with_detail(e.to_string())
        })?
    };
    Ok(Filter {
        limit,
        statuses,
        ids,
        tags,
    })
}

fn metadata(state: &AppState, job: &JobRow) -> ApiResult<ProvisionerJobMetadata> {
    let id = job.input_id();
    if job.kind == JOB_BUILD {
        return Ok(match state.store.build(&id)? {
            Some(b) => build_metadata(&b),
            None => ProvisionerJobMetadata::default(),
        });
    }
    match state.store.template_version(&id)? {
        Some(v) => version_metadata(state, &v),
        None => Ok(ProvisionerJobMetadata::default()),
    }
}

fn find_jobs(state: &AppState, org_id: &str, f: &Filter) -> ApiResult<Vec<ProvisionerJob>> {
    let tags = job_tags();
    if !f.tags.iter().all(|(k, v)| tags.get(k) == Some(v)) {
        return Ok(Vec::new());
    }
    let mut rows = Vec::new();
    state.store.scan_recent_jobs(org_id, &mut |job| {
        let status_ok =
            f.statuses.is_empty() || f.statuses.iter().any(|s| s == job.status().as_str());
        if status_ok && (f.ids.is_empty() || f.ids.contains(&job.id)) {
            rows.push(job);
        }
        f.limit == 0 || rows.len() < f.limit
    })?;
    let order = state.queue_ranks.order_for(&*state.store, &rows)?;
    rows.iter()
        .map(|job| job_json(state, job, metadata(state, job)?, order.as_ref()))
        .collect()
}

pub async fn list(
    state: State,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<String>,
) -> ApiResult<Reply> {
    let filter = parse_filter(&req);
    blocking(move || {
        let org = find_organization(&state, &path)?;
        if !actor.caller().manages_templates() {
            return Err(ApiError::not_found());
        }
        ok(&find_jobs(&state, &org.id, &filter?)?)
    })
    .await
}

pub async fn get(
    state: State,
    actor: Actor,
    path: web::Path<(String, String)>,
) -> ApiResult<Reply> {
    let (org, job) = path.into_inner();
    blocking(move || {
        let job = parse_uuid(&job)?;
        let org = find_organization(&state, &org)?;
        if !actor.caller().manages_templates() {
            return Err(ApiError::not_found());
        }
        let job = state
            .store
            .job(&job)?
            .filter(|j| j.organization_id == org.id)
            .ok_or_else(ApiError::not_found)?;
        ok(&job_json(&state, &job, metadata(&state, &job)?, None)?)
    })
    .await
}
