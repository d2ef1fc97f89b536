//! `POST /authcheck`: Coder's dashboard asks it right after sign-in which features to show.
//! Each check names an object (`resource_type`, optionally `owner_id`, `organization_id`,
//! `resource_id`, `any_org`) and an action; the answer maps every key to whether kiln's rules
//! allow it (`domain::authorization`). Coder's request checks and messages; a `resource_id` the
//! caller cannot read, or that does not exist, is `false`.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, MEDIUM};
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::app::state::AppState;
use crate::domain::authorization::{Object, allowed};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Coder's limit on checks that name a stored object.
const MAX_RESOURCE_IDS: usize = 10;

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    checks: BTreeMap<String, Check>,
}

#[derive(Deserialize)]
struct Check {
    #[serde(default)]
    object: CheckObject,
    #[serde(default)]
    action: String,
}

#[derive(Deserialize, Default)]
struct CheckObject {
    #[serde(default)]
    resource_type: String,
    #[serde(default)]
    owner_id: String,
    #[serde(default)]
    organization_id: String,
    #[serde(default)]
    resource_id: String,
    #[serde(default)]
    #[allow(dead_code)]
    any_org: bool,
}

pub async fn check(state: State, actor: Actor, body: Body<MEDIUM>) -> ApiResult<Reply> {
    blocking(move || {
        let req: Request = read_json(&body)?;
        let with_ids = req
            .checks
            .values()
            .filter(|c| !c.object.resource_id.is_empty())
            .count();
        if with_ids > MAX_RESOURCE_IDS {
            return Err(ApiError::bad_request(format!(
                "Endpoint only supports using \"resource_id\" field {MAX_RESOURCE_IDS} times, found \
                 {with_ids} usages. Remove {} objects with this field set.",
                with_ids - MAX_RESOURCE_IDS
            )));
        }
        let org_id = state
            .store
            .organization("coder")?
            .map(|o| o.id)
            .unwrap_or_default();
        let mut answers = BTreeMap::new();
        for (key, c) in &req.checks {
            answers.insert(key.clone(), decide(&state, &actor, &org_id, key, c)?);
        }
        ok(&answers)
    })
    .await
}

fn decide(state: &AppState, actor: &Actor, org_id: &str, key: &str, c: &Check) -> ApiResult<bool> {
    let o = &c.object;
    if o.resource_type.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object's \"resource_type\" field must be defined for key {key:?}."
        )));
    }
    let mut owner = match o.owner_id.as_str() {
        "" => None,
        "me" => Some(actor.user.id.clone()),
        id => Some(id.to_string()),
    };
    let mut org = o.organization_id.clone();
    if !o.resource_id.is_empty() {
        let id = uuid::Uuid::parse_str(&o.resource_id)
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "Object {:?} id is not a valid uuid.",
                    o.resource_id
                ))
                .with_validation("resource_id", e.to_string())
            })?
            .to_string();
        // The stored object's own owner and organization replace what the client sent; one
        // the caller cannot read, or that does not exist, is answered `false`.
        let found = match o.resource_type.as_str() {
            "workspace" => state
                .store
                .workspace(&id)?
                .filter(|w| !w.deleted && actor.caller().can_read_workspace_of(&w.owner_id))
                .map(|w| (Some(w.owner_id), w.organization_id)),
            "template" => state
                .store
                .template(&id)?
                .map(|t| (None, t.organization_id)),
            "user" => state
                .store
                .user_by_id(&id)?
                .map(|u| (Some(u.id), String::new())),
            "group" => None,
            other => {
                let msg = format!("Object type {other:?} does not support \"resource_id\" field.");
                return Err(ApiError::bad_request(&msg).with_validation("resource_type", msg));
            }
        };
        let Some((found_owner, found_org)) = found else {
            return Ok(false);
        };
        owner = found_owner;
        org = found_org;
    }
    let object = Object {
        resource_type: &o.resource_type,
        owner_id: owner.as_deref(),
        in_member_org: org.is_empty() || org == org_id,
    };
    Ok(allowed(&actor.caller(), &object, &c.action))
}
