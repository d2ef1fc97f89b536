//! Templates: create from an imported version, read, list, versions, promote.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::error::forbidden;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, MEDIUM};
use crate::api::extract::fields::parse_uuid;
use crate::api::extract::fields::tag_failed;
use crate::api::extract::fields::valid_name;
use crate::api::extract::lookup::{find_organization, find_template, find_version};
use crate::api::present::views::{template_json, version_json};
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::created;
use crate::api::reply::ok;
use crate::app::state::AppState;
use crate::model::{
    CreateTemplateRequest, JobStatus, Response, UpdateActiveTemplateVersion, new_id,
};
use crate::store::{NewTemplate, StoreError, TemplateRow};
use actix_web::http::StatusCode;
use actix_web::web;

/// Coder's starter templates: kiln ships none (its examples are folders in the repository,
/// `examples/`), so the list is empty, as Coder's is for a deployment without examples.
pub async fn examples(_actor: Actor) -> ApiResult<Reply> {
    ok(&Vec::<serde_json::Value>::new())
}

pub async fn create(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<MEDIUM>,
) -> ApiResult<Reply> {
    blocking(move || {
        let org = find_organization(&state, &path)?;
        let req: CreateTemplateRequest = read_json(&body)?;
        let mut invalid = ApiError::validation();
        if req.name.is_empty() {
            invalid = invalid.with_validation("name", tag_failed("required", ""));
        } else if !valid_name(&req.name) {
            invalid = invalid.with_validation("name", tag_failed("template_name", &req.name));
        }
        if req.template_version_id.is_empty() {
            invalid = invalid.with_validation("template_version_id", tag_failed("required", ""));
        }
        invalid.if_any()?;
        if !actor.caller().manages_templates() {
            return Err(forbidden());
        }
        let version_id = parse_uuid(&req.template_version_id)?;
        let version = state.store.template_version(&version_id)?.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("Template version {version_id:?} not found."),
            )
        })?;
        if version.template_id.is_some() {
            return Err(ApiError::bad_request(
                "The template version already belongs to a template.",
            ));
        }
        if state.store.template_by_name(&org.id, &req.name)?.is_some() {
            return Err(template_exists(&req.name));
        }
        let ttl = req.default_ttl_ms.unwrap_or(0);
        if ttl < 0 {
            return Err(ApiError::bad_request("Invalid create template request.")
                .with_validation("default_ttl_ms", "Must be a positive integer."));
        }
        let id = new_id();
        let result = state.store.create_template(&NewTemplate {
            id: &id,
            organization_id: &org.id,
            name: &req.name,
            display_name: &req.display_name,
            description: &req.description,
            icon: &req.icon,
            version_id: &version.id,
            default_ttl_ms: ttl,
            allow_user_cancel_workspace_jobs: req.allow_user_cancel_workspace_jobs.unwrap_or(true),
            created_by: &actor.user.id,
        });
        match result {
            Err(StoreError::Conflict(_)) => return Err(template_exists(&req.name)),
            other => other?,
        }
        let template = state.store.template(&id)?.ok_or_else(ApiError::not_found)?;
        created(&template_json(&state, &template)?)
    })
    .await
}

fn template_exists(name: &str) -> ApiError {
    ApiError::conflict(format!("Template with name {name:?} already exists."))
        .with_validation("name", "This value is already in use and should be unique.")
}

pub async fn list(state: State, _actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let org = find_organization(&state, &path)?;
        let templates = state
            .store
            .templates(&org.id)?
            .iter()
            .map(|t| template_json(&state, t))
            .collect::<ApiResult<Vec<_>>>()?;
        ok(&templates)
    })
    .await
}

/// Every template the caller may see: kiln's one organization's.
/// Every organization's templates, searched with Coder's `q` (`exact_name:` is how
/// `coder create -t NAME` finds its template).
pub async fn list_all(
    state: State,
    _actor: Actor,
    req: actix_web::HttpRequest,
) -> ApiResult<Reply> {
    let query = crate::api::extract::query::QueryParser::new(&req)
        .first("q")
        .unwrap_or_default()
        .to_string();
    let search = crate::domain::search::template_search(&query).map_err(|errors| {
        let mut e = ApiError::bad_request("Invalid template search query.");
        e.body.validations = errors;
        e
    })?;
    blocking(move || {
        let mut templates = Vec::new();
        if search.matches_nothing {
            return ok(&templates);
        }
        for org in state.store.list_organizations()? {
            if let Some(o) = &search.organization
                && *o != org.id
                && !o.eq_ignore_ascii_case(&org.name)
            {
                continue;
            }
            for t in state.store.templates(&org.id)? {
                let exact = search
                    .exact_name
                    .as_ref()
                    .is_none_or(|n| n.eq_ignore_ascii_case(&t.name));
                let part = search.name.as_ref().is_none_or(|n| {
                    t.name.to_lowercase().contains(n.as_str())
                        || t.display_name.to_lowercase().contains(n.as_str())
                });
                if exact && part {
                    templates.push(template_json(&state, &t)?);
                }
            }
        }
        ok(&templates)
    })
    .await
}

fn find_by_name(state: &AppState, org: &str, name: &str) -> ApiResult<TemplateRow> {
    let org = find_organization(state, org)?;
    state
        .store
        .template_by_name(&org.id, name)?
        .ok_or_else(ApiError::not_found)
}

pub async fn by_name(
    state: State,
    _actor: Actor,
    path: web::Path<(String, String)>,
) -> ApiResult<Reply> {
    let (org, name) = path.into_inner();
    blocking(move || ok(&template_json(&state, &find_by_name(&state, &org, &name)?)?)).await
}

pub async fn version_by_name(
    state: State,
    _actor: Actor,
    path: web::Path<(String, String, String)>,
) -> ApiResult<Reply> {
    let (org, name, version) = path.into_inner();
    blocking(move || {
        let template = find_by_name(&state, &org, &name)?;
        let missing = || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("No template version found by name {version:?}."),
            )
        };
        let id = state
            .store
            .template_version_by_name(&template.id, &version)?
            .ok_or_else(missing)?;
        let v = state.store.template_version(&id)?.ok_or_else(missing)?;
        ok(&version_json(&state, &v)?)
    })
    .await
}

pub async fn get(state: State, _actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || ok(&template_json(&state, &find_template(&state, &path)?)?)).await
}

/// The template's versions; archived ones only with `include_archived=true`, as Coder.
pub async fn versions(
    state: State,
    _actor: Actor,
    req: actix_web::HttpRequest,
    path: web::Path<String>,
) -> ApiResult<Reply> {
    let include_archived = crate::api::extract::query::QueryParser::new(&req)
        .first("include_archived")
        .is_some_and(|v| v == "true");
    blocking(move || {
        let template = find_template(&state, &path)?;
        let versions = state
            .store
            .template_versions(&template.id)?
            .iter()
            .filter(|v| include_archived || !v.archived)
            .map(|v| version_json(&state, v))
            .collect::<ApiResult<Vec<_>>>()?;
        ok(&versions)
    })
    .await
}

pub async fn promote(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<MEDIUM>,
) -> ApiResult<Reply> {
    blocking(move || {
        let template = find_template(&state, &path)?;
        let req: UpdateActiveTemplateVersion = read_json(&body)?;
        if !actor.caller().manages_templates() {
            return Err(forbidden());
        }
        let version = find_version(&state, &req.id)?;
        if version.template_id.as_deref() != Some(template.id.as_str()) {
            return Err(ApiError::bad_request(
                "The provided template version doesn't belong to the specified template.",
            ));
        }
        match version.job.status() {
            JobStatus::Succeeded => {}
            JobStatus::Pending | JobStatus::Running => {
                return Err(ApiError::bad_request(
                    "The provided template version is still being imported.",
                )
                .with_detail(format!(
                    "Its import job is {}.",
                    version.job.status().as_str()
                )));
            }
            _ => {
                return Err(ApiError::bad_request(
                    "Only versions that imported successfully can be promoted.",
                ));
            }
        }
        state.store.set_active_version(&template.id, &version.id)?;
        ok(&Response::message("Updated the active template version!"))
    })
    .await
}
