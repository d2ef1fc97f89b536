//! Provisioner keys, Coder's endpoints: `POST/GET /organizations/{organization}/provisionerkeys`
//! and `DELETE …/provisionerkeys/{provisionerkey}` (by name). Owner only. The secret is shown
//! once and kept as its SHA-256. Deleting a key cuts its daemons off at their next call and
//! fails the jobs they run.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::error::forbidden;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, SMALL};
use crate::api::extract::lookup::find_organization;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::created;
use crate::api::reply::ok;
use crate::app::state::AppState;
use crate::domain::provisioner_tags::Tags;
use crate::identity;
use crate::model::{Time, new_id};
use crate::store::{ProvisionerKeyRow, Stale, StoreError};
use actix_web::web;
use serde::{Deserialize, Serialize};

/// Names Coder keeps for its own keys.
pub const RESERVED_NAMES: [&str; 3] = ["built-in", "user-auth", "psk"];

#[derive(Deserialize)]
struct CreateRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    tags: Tags,
}

/// codersdk.ProvisionerKey.
#[derive(Serialize)]
pub struct KeyView {
    id: String,
    created_at: Time,
    organization: String,
    name: String,
    tags: Tags,
}

impl From<&ProvisionerKeyRow> for KeyView {
    fn from(k: &ProvisionerKeyRow) -> KeyView {
        KeyView {
            id: k.id.clone(),
            created_at: k.created_at,
            organization: k.organization_id.clone(),
            name: k.name.clone(),
            tags: k.tags.clone(),
        }
    }
}

fn owner_only(actor: &Actor) -> ApiResult<()> {
    if actor.caller().is_owner() {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// Coder's name rules for a new key.
fn check_name(name: &str) -> ApiResult<()> {
    let refuse = |message: String| {
        let detail = message.clone();
        Err(ApiError::bad_request(message).with_validation("name", detail))
    };
    if name.is_empty() {
        return refuse("Name is required".into());
    }
    if name.chars().count() > 64 {
        return refuse("Name must be at most 64 characters".into());
    }
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return refuse(format!("Name cannot be reserved name '{name}'"));
    }
    Ok(())
}

pub async fn create(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<SMALL>,
) -> ApiResult<Reply> {
    blocking(move || {
        let org = find_organization(&state, &path)?;
        owner_only(&actor)?;
        let req: CreateRequest = read_json(&body)?;
        check_name(&req.name)?;
        for (k, v) in &req.tags {
            if k.is_empty() || v.is_empty() {
                return Err(
                    ApiError::bad_request(format!("Tag {k:?} has an empty key or value"))
                        .with_validation("tags", "Tags must have a non-empty key and value"),
                );
            }
        }
        let secret = identity::new_provisioner_key();
        let key = ProvisionerKeyRow {
            id: new_id(),
            organization_id: org.id,
            name: req.name.clone(),
            tags: req.tags,
            created_at: Time::now(),
        };
        match state
            .store
            .insert_provisioner_key(&key, &identity::hash_secret(&secret))
        {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(ApiError::conflict(format!(
                    "Provisioner key with name '{}' already exists in organization",
                    req.name
                )));
            }
            Err(e) => return Err(e.into()),
        }
        created(&serde_json::json!({ "key": secret }))
    })
    .await
}

pub async fn list(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let org = find_organization(&state, &path)?;
        owner_only(&actor)?;
        let keys = state.store.provisioner_keys(&org.id)?;
        ok(&keys.iter().map(KeyView::from).collect::<Vec<_>>())
    })
    .await
}

pub async fn delete(
    state: State,
    actor: Actor,
    path: web::Path<(String, String)>,
) -> ApiResult<Reply> {
    blocking(move || {
        let (org, name) = path.into_inner();
        let org = find_organization(&state, &org)?;
        owner_only(&actor)?;
        if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(&name)) {
            return Err(ApiError::bad_request(format!(
                "Cannot delete reserved '{name}' provisioner key"
            )));
        }
        let Some((key, jobs)) = state.store.delete_provisioner_key(&org.id, &name)? else {
            return Err(ApiError::not_found());
        };
        cut_off(&state, &key, jobs);
        Ok(Reply::no_content())
    })
    .await
}

/// Fails the jobs the daemons of a deleted key were running (they are told at their next
/// update, and stop).
fn cut_off(state: &AppState, key: &ProvisionerKeyRow, jobs: Vec<crate::store::JobRow>) {
    let error = format!(
        "the provisioner key {:?} was deleted while this job ran on one of its daemons; the job was failed",
        key.name
    );
    for job in jobs {
        let holder = job.worker_id.clone().unwrap_or_default();
        match state
            .store
            .abandon_job(&job.id, Stale::HeldBy(&holder), &error)
        {
            Ok(true) => {
                log::warn!("job {}: {error}", job.id);
                state
                    .events
                    .publish(&crate::events::Topic::Cancel(job.id.clone()));
            }
            Ok(false) => {}
            Err(e) => log::error!("job {}: could not fail it: {e}", job.id),
        }
    }
}
