//! The parts of a template version that Coder's clients read beside it: the resources its
//! import found, its cancel, and the lists kiln has nothing for (Terraform variables,
//! external auth, presets), which answer `[]` as Coder does for a template without them.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::error::forbidden;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::lookup::find_version;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::model::{Response, Transition, WorkspaceResource};
use crate::provisioner::plan::plan_resources;
use crate::store::TemplateVersionRow;
use actix_web::http::StatusCode;
use actix_web::web;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

fn not_completed() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "Job hasn't completed!")
}

/// Cancels the import: Coder's rules and messages (a completed or canceled job → 400).
pub async fn cancel(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let version = find_version(&state, &path)?;
        if !actor.caller().manages_templates() {
            return Err(forbidden());
        }
        state
            .queue
            .cancel(&version.job.id, None)?
            .map_err(ApiError::from)?;
        ok(&Response::message("Job has been marked as canceled..."))
    })
    .await
}

/// The resources a workspace of this version has after start and after stop, as the import
/// planned them with the parameters' defaults; 403 while the import has not completed.
pub async fn resources(state: State, _actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let version = find_version(&state, &path)?;
        if version.job.completed_at.is_none() {
            return Err(not_completed());
        }
        ok(&planned_resources(&version))
    })
    .await
}

fn planned_resources(version: &TemplateVersionRow) -> Value {
    let Some(manifest) = version.imported_manifest() else {
        return Value::Array(Vec::new());
    };
    let mut vars: HashMap<String, String> = manifest
        .parameters
        .iter()
        .map(|p| (format!("param.{}", p.name), p.default_value.clone()))
        .collect();
    for key in ["workspace.name", "owner.name"] {
        vars.insert(key.into(), String::new());
    }
    vars.insert("build.number".into(), "0".into());
    let job = &version.job.id;
    // Its agents were made when the import completed; their status is Coder's for an agent
    // that never connects (`connecting`, then `timeout`), which Coder's type requires.
    let made = version
        .job
        .completed_at
        .unwrap_or_else(crate::model::Time::now);
    let now = crate::model::Time::now();
    let planned: Vec<WorkspaceResource> = [Transition::Start, Transition::Stop]
        .into_iter()
        .flat_map(|t| plan_resources(&manifest, job, t, &vars))
        .map(|mut r| {
            for a in &mut r.agents {
                a.created_at = made;
                a.status = Some(a.status_at(now));
            }
            r
        })
        .collect();
    let mut value = serde_json::to_value(&planned).unwrap_or_default();
    // The same answer every time: ids derived from the job's, times from its completion.
    let created = version
        .job
        .completed_at
        .map(|t| serde_json::to_value(t).unwrap_or_default())
        .unwrap_or_default();
    let mut ids = HashMap::new();
    settle(&mut value, job, &created, &mut ids);
    value
}

fn settle(v: &mut Value, job: &str, created: &Value, ids: &mut HashMap<String, String>) {
    match v {
        Value::Object(map) => {
            for (key, member) in map.iter_mut() {
                match member {
                    Value::String(_) if key == "created_at" || key == "updated_at" => {
                        *member = created.clone()
                    }
                    Value::String(s) if s != job && uuid::Uuid::parse_str(s).is_ok() => {
                        let n = ids.len();
                        let stable = ids
                            .entry(s.clone())
                            .or_insert_with(|| stable_id(job, n))
                            .clone();
                        *s = stable;
                    }
                    _ => settle(member, job, created, ids),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| settle(i, job, created, ids)),
        _ => {}
    }
}

/// A UUID (version 4 layout) made from the job's id and a counter.
fn stable_id(job: &str, n: usize) -> String {
    let digest = Sha256::digest(format!("{job}/{n}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// `[]` once the import has completed (Coder's 403 before).
pub async fn completed_empty(
    state: State,
    _actor: Actor,
    path: web::Path<String>,
) -> ApiResult<Reply> {
    blocking(move || {
        let version = find_version(&state, &path)?;
        if version.job.completed_at.is_none() {
            return Err(not_completed());
        }
        ok(&Vec::<Value>::new())
    })
    .await
}

pub async fn empty(state: State, _actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        find_version(&state, &path)?;
        ok(&Vec::<Value>::new())
    })
    .await
}
