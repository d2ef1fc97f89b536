//! `POST /workspaces/{id}/builds`: the body read and validated (check 1 of the spec's section
//! 4), then the build use case (`app::builds`: checks 2 to 7, then the build and its job in one
//! transaction).

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, LARGE};
use crate::api::extract::fields::given_id;
use crate::api::extract::fields::tag_failed;
use crate::api::extract::lookup::find_workspace;
use crate::api::present::render::build_json;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::created;
use crate::app::builds::{BuildRequest, create_build};
use crate::model::{Transition, WorkspaceBuildParameter};
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
        crate::api::builds::on_success::parse(b.on_success.as_ref(), transition, invalid);
    invalid = crate::api::extract::fields::preset_refused(&b.template_version_preset_id, invalid);
    if b.secrets
        .as_ref()
        .is_some_and(|s| !crate::api::extract::body::is_zero(s))
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
        let build = create_build(&*state.store, actor.caller(), &workspace, &req)?;
        created(&build_json(&state, &build)?)
    })
    .await
}
