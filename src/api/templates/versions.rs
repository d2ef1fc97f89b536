//! Template versions: create (queues an import job), read, rich parameters, logs.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::error::forbidden;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, MEDIUM};
use crate::api::extract::fields::given_id;
use crate::api::extract::fields::parse_uuid;
use crate::api::extract::fields::tag_failed;
use crate::api::extract::lookup::{find_organization, find_version};
use crate::api::present::views::version_json;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::created;
use crate::api::reply::ok;
use crate::app::state::AppState;
use crate::model::{self, CreateTemplateVersionRequest, new_id};
use crate::store::NewTemplateVersion;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

/// A friendly random name for a version, as Coder gives one when none is sent.
fn random_name() -> String {
    const ADJECTIVES: [&str; 12] = [
        "amber", "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid",
        "merry", "quiet",
    ];
    const NOUNS: [&str; 12] = [
        "anvil", "bellows", "brick", "clay", "ember", "flame", "forge", "glaze", "hearth", "ingot",
        "oven", "spark",
    ];
    format!(
        "{}_{}{}",
        ADJECTIVES[rand::random_range(0..ADJECTIVES.len())],
        NOUNS[rand::random_range(0..NOUNS.len())],
        rand::random_range(0..100)
    )
}

pub async fn create(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<MEDIUM>,
) -> ApiResult<Reply> {
    blocking(move || create_version(&state, &actor, &path, &body)).await
}

fn create_version(state: &AppState, actor: &Actor, org: &str, body: &[u8]) -> ApiResult<Reply> {
    let org = find_organization(state, org)?;
    let req: CreateTemplateVersionRequest = read_json(body)?;
    let mut invalid = ApiError::validation();
    if req.storage_method != "file" {
        invalid =
            invalid.with_validation("storage_method", tag_failed("oneof", &req.storage_method));
    }
    if req.provisioner != "terraform" && req.provisioner != "echo" {
        invalid = invalid.with_validation("provisioner", tag_failed("oneof", &req.provisioner));
    }
    invalid.if_any()?;
    if !actor.caller().manages_templates() {
        return Err(forbidden());
    }
    // Either provisioner runs the archive's kiln.json (Coder's clients always send
    // "terraform"); the version remembers which one the client chose.
    if !req.example_id.is_empty() {
        return Err(ApiError::bad_request(
            "Examples are not supported; upload a file and send its file_id.",
        ));
    }
    let file_id = match req.file_id.as_deref() {
        Some(raw) if !raw.is_empty() => parse_uuid(raw)?,
        _ => {
            return Err(ApiError::bad_request("A file_id is required.")
                .with_validation("file_id", tag_failed("required", "")));
        }
    };
    if state.store.file(&file_id)?.is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "File not found."));
    }
    let template_id = match given_id(&req.template_id) {
        Some(raw) => {
            let id = parse_uuid(raw)?;
            state.store.template(&id)?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("Template with id {raw:?} doesn't exist."),
                )
            })?;
            Some(id)
        }
        None => None,
    };
    let name = if req.name.is_empty() {
        random_name()
    } else {
        req.name.clone()
    };
    if let Some(tid) = &template_id
        && state.store.template_version_by_name(tid, &name)?.is_some()
    {
        return Err(ApiError::conflict(format!(
            "A template version with name {name:?} already exists for this template."
        ))
        .with_validation("name", "This value is already in use and should be unique."));
    }
    let id = new_id();
    state.store.create_template_version(&NewTemplateVersion {
        provisioner: &req.provisioner,
        id: &id,
        job_id: &new_id(),
        template_id: template_id.as_deref(),
        organization_id: &org.id,
        name: &name,
        message: &req.message,
        file_id: &file_id,
        created_by: &actor.user.id,
        tags: crate::domain::provisioner_tags::normalize(
            req.provisioner_tags.clone(),
            &actor.user.id,
        ),
    })?;
    let version = state
        .store
        .template_version(&id)?
        .ok_or_else(ApiError::not_found)?;
    created(&version_json(state, &version)?)
}

pub async fn get(state: State, _actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let version = find_version(&state, &path)?;
        ok(&version_json(&state, &version)?)
    })
    .await
}

/// The import job's logs (see `api/logs`).
pub async fn logs(
    state: State,
    actor: Actor,
    req: actix_web::HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let s = state.clone();
    let version = blocking(move || find_version(&s, &path)).await?;
    crate::api::logs::answer::serve(state, &actor.user.id, req, payload, version.job.id).await
}

/// The parameters of an imported version; 412 while the import has not completed.
pub async fn rich_parameters(
    state: State,
    _actor: Actor,
    path: web::Path<String>,
) -> ApiResult<Reply> {
    blocking(move || {
        let version = find_version(&state, &path)?;
        if version.job.completed_at.is_none() {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "Job hasn't completed!",
            ));
        }
        let manifest = version.imported_manifest().unwrap_or_default();
        let params: Vec<_> = manifest
            .parameters
            .into_iter()
            .map(parameter_json)
            .collect();
        ok(&params)
    })
    .await
}

fn parameter_json(p: crate::model::manifest::Parameter) -> model::TemplateVersionParameter {
    let form_type = p.form_type();
    model::TemplateVersionParameter {
        description_plaintext: p.description.clone(),
        name: p.name,
        display_name: p.display_name,
        description: p.description,
        kind: p.kind,
        form_type: form_type.into(),
        mutable: p.mutable,
        default_value: p.default_value,
        icon: p.icon,
        options: p
            .options
            .into_iter()
            .map(|o| model::TemplateVersionParameterOption {
                name: o.name,
                description: o.description,
                value: o.value,
                icon: o.icon,
            })
            .collect(),
        validation_regex: p.validation_regex,
        validation_min: p.validation_min,
        validation_max: p.validation_max,
        validation_error: p.validation_error,
        validation_monotonic: p.validation_monotonic,
        required: p.required,
        ephemeral: p.ephemeral,
    }
}
