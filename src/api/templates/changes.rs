//! Changing templates and their versions, as Coder's dashboard and `coder templates edit /
//! delete / archive` do: a template's settings (those kiln has: name, display name,
//! description, icon, the default TTL and whether users may cancel their builds), its deletion
//! (refused while workspaces use it), a version's name and message, the version before one,
//! and archiving. Coder's checks and messages.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::error::forbidden;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, MEDIUM};
use crate::api::extract::fields::tag_failed;
use crate::api::extract::fields::valid_name;
use crate::api::extract::lookup::{find_organization, find_template, find_version};
use crate::api::present::views::{template_json, version_json};
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::json;
use crate::api::reply::ok;
use crate::model::{JobStatus, Response};
use crate::store::{StoreError, TemplateMeta};
use actix_web::http::StatusCode;
use actix_web::web;
use serde_json::{Map, Value};

/// The settings `PATCH /templates/{id}` changes here; any other field of Coder's
/// `UpdateTemplateMeta` is accepted when it says what the template already shows (the
/// dashboard sends its whole form back), and refused otherwise.
const SETTINGS: [&str; 6] = [
    "name",
    "display_name",
    "description",
    "icon",
    "default_ttl_ms",
    "allow_user_cancel_workspace_jobs",
];

pub async fn patch_template(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<MEDIUM>,
) -> ApiResult<Reply> {
    blocking(move || {
        let template = find_template(&state, &path)?;
        let req: Map<String, Value> = read_json(&body)?;
        if !actor.caller().manages_templates() {
            return Err(forbidden());
        }
        let shown = serde_json::to_value(template_json(&state, &template)?).unwrap_or_default();
        let text = |key: &str, current: &str| -> String {
            req.get(key)
                .and_then(Value::as_str)
                .map_or_else(|| current.to_string(), str::to_string)
        };
        let name = match text("name", &template.name) {
            n if n.is_empty() => template.name.clone(),
            n => n,
        };
        let meta = TemplateMeta {
            display_name: text("display_name", &template.display_name),
            description: text("description", &template.description),
            icon: text("icon", &template.icon),
            default_ttl_ms: req
                .get("default_ttl_ms")
                .and_then(Value::as_i64)
                .unwrap_or(template.default_ttl_ms),
            allow_user_cancel_workspace_jobs: req
                .get("allow_user_cancel_workspace_jobs")
                .and_then(Value::as_bool)
                .unwrap_or(template.allow_user_cancel_workspace_jobs),
            name,
        };
        let mut tags = ApiError::validation();
        if !valid_name(&meta.name) {
            tags = tags.with_validation("name", tag_failed("template_name", &meta.name));
        }
        if meta.display_name.len() > 64 || meta.display_name.trim() != meta.display_name {
            tags = tags.with_validation(
                "display_name",
                tag_failed("template_display_name", &meta.display_name),
            );
        }
        if meta.description.len() > 128 {
            tags = tags.with_validation("description", tag_failed("lt", &meta.description));
        }
        tags.if_any()?;
        let mut invalid = ApiError::bad_request("Invalid request to update template metadata!");
        if meta.default_ttl_ms < 0 {
            invalid = invalid.with_validation("default_ttl_ms", "Must be a positive integer.");
        }
        for (key, value) in req.iter().filter(|(k, _)| !SETTINGS.contains(&k.as_str())) {
            let unchanged = shown.get(key).is_some_and(|s| s == value)
                || crate::api::extract::body::is_zero(value);
            if !unchanged {
                invalid = invalid.with_validation(
                    key.as_str(),
                    "kiln does not support changing this template setting.",
                );
            }
        }
        invalid.if_any()?;
        let unchanged = meta.name == template.name
            && meta.display_name == template.display_name
            && meta.description == template.description
            && meta.icon == template.icon
            && meta.default_ttl_ms == template.default_ttl_ms
            && meta.allow_user_cancel_workspace_jobs == template.allow_user_cancel_workspace_jobs;
        if unchanged {
            return Ok(Reply::new(StatusCode::NOT_MODIFIED, "", Vec::new()));
        }
        match state.store.update_template_meta(&template.id, &meta) {
            Err(StoreError::Conflict(_)) => {
                return Err(ApiError::conflict(format!(
                    "Template with name {:?} already exists.",
                    meta.name
                ))
                .with_validation("name", "This value is already in use and should be unique."));
            }
            other => other?,
        }
        let updated = find_template(&state, &template.id)?;
        ok(&template_json(&state, &updated)?)
    })
    .await
}

/// Refused while any workspace (anyone's) uses the template.
pub async fn delete_template(
    state: State,
    actor: Actor,
    path: web::Path<String>,
) -> ApiResult<Reply> {
    blocking(move || {
        let template = find_template(&state, &path)?;
        if !actor.caller().manages_templates() {
            return Err(forbidden());
        }
        let used = state
            .store
            .workspaces(None)?
            .iter()
            .any(|w| w.template_id == template.id);
        if used {
            return Err(ApiError::bad_request(
                "All workspaces must be deleted before a template can be removed.",
            ));
        }
        state.store.delete_template(&template.id)?;
        ok(&Response::message("Template has been deleted!"))
    })
    .await
}

#[derive(serde::Deserialize)]
struct PatchVersion {
    #[serde(default)]
    name: String,
    #[serde(default)]
    message: Option<String>,
}

/// A name (when one is given) and a message (when present, `""` too).
pub async fn patch_version(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<MEDIUM>,
) -> ApiResult<Reply> {
    blocking(move || {
        let version = find_version(&state, &path)?;
        let req: PatchVersion = read_json(&body)?;
        if !req.name.is_empty() && !valid_version_name(&req.name) {
            return Err(ApiError::validation()
                .with_validation("name", tag_failed("template_version_name", &req.name)));
        }
        if req.message.as_ref().is_some_and(|m| m.len() > 1 << 20) {
            return Err(ApiError::validation().with_validation("message", tag_failed("lt", "")));
        }
        if !actor.caller().manages_templates() {
            return Err(forbidden());
        }
        let name = if req.name.is_empty() {
            version.name.clone()
        } else {
            req.name.clone()
        };
        let message = req.message.unwrap_or_else(|| version.message.clone());
        match state
            .store
            .update_template_version(&version.id, &name, &message)
        {
            Err(StoreError::Conflict(_)) => {
                return Err(ApiError::bad_request(
                    "template version name must be unique for a template",
                )
                .with_validation("name", "Name is already used"));
            }
            other => other?,
        }
        let updated = find_version(&state, &version.id)?;
        ok(&version_json(&state, &updated)?)
    })
    .await
}

/// Coder's `template_version_name`: up to 64 characters of letters, digits, `-`, `_`, `.`,
/// starting and ending with a letter or digit.
fn valid_version_name(name: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    name.len() <= 64
        && name.chars().all(ok_char)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// The version of the same template made just before the one named.
pub async fn previous(
    state: State,
    _actor: Actor,
    path: web::Path<(String, String, String)>,
) -> ApiResult<Reply> {
    blocking(move || {
        let (org, template_name, version_name) = path.into_inner();
        let org = find_organization(&state, &org)?;
        let template = state
            .store
            .template_by_name(&org.id, &template_name)?
            .ok_or_else(ApiError::not_found)?;
        let versions = state.store.template_versions(&template.id)?;
        let named = versions
            .iter()
            .find(|v| v.name == version_name)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("No template version found by name {version_name:?}."),
                )
            })?;
        let before = versions
            .iter()
            .filter(|v| v.created_at < named.created_at)
            .max_by_key(|v| v.created_at)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("No previous template version found for {version_name:?}."),
                )
            })?;
        ok(&version_json(&state, before)?)
    })
    .await
}

pub async fn archive(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    set_archived(state, actor, path.into_inner(), true).await
}

pub async fn unarchive(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    set_archived(state, actor, path.into_inner(), false).await
}

/// Coder's rules: a version of a template only; an archive never of the active version, of
/// one a workspace's latest build uses, or of one still importing. The answer is a JSON
/// string, as Coder writes it.
async fn set_archived(state: State, actor: Actor, raw: String, archived: bool) -> ApiResult<Reply> {
    blocking(move || {
        let version = find_version(&state, &raw)?;
        if !actor.caller().manages_templates() {
            return Err(forbidden());
        }
        let verb = if archived { "archived" } else { "unarchived" };
        if version.archived == archived {
            return Err(ApiError::bad_request(format!(
                "Template version already {verb}"
            )));
        }
        let Some(template_id) = &version.template_id else {
            return Err(ApiError::bad_request(
                "Cannot archive template versions not associate with a template.",
            ));
        };
        if archived {
            let active = find_template(&state, template_id)?.active_version_id == version.id;
            let importing = matches!(
                version.job.status(),
                JobStatus::Pending | JobStatus::Running
            );
            if active || importing || state.store.version_in_use(&version.id)? {
                return Err(
                    ApiError::bad_request("Internal error fetching template version.").with_detail(
                        "Unable to archive specified version, the version is likely in use by a \
                         workspace or currently set to the active version",
                    ),
                );
            }
        }
        state.store.set_version_archived(&version.id, archived)?;
        Ok(json(
            StatusCode::OK,
            &format!("template version {:?} {verb}", version.id),
        ))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_as_coder_checks_them() {
        for good in ["v1", "v1.2.3", "amber_anvil42", "a-b"] {
            assert!(valid_version_name(good), "{good}");
        }
        for bad in ["-v1", "v1.", "has space", &"x".repeat(65)] {
            assert!(!valid_version_name(bad), "{bad}");
        }
    }
}
