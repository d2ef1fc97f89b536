//! Workspaces: create (with the first start build), read by id or by owner and name, list.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::auth::serde_urlencoded_pairs;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, MEDIUM};
use crate::api::extract::fields::given_id;
use crate::api::extract::fields::parse_uuid;
use crate::api::extract::fields::tag_failed;
use crate::api::extract::fields::valid_name;
use crate::api::extract::lookup::{
    find_organization, find_user, find_workspace, find_workspace_by_name,
};
use crate::api::present::render::workspace_json;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::created;
use crate::api::reply::ok;
use crate::app::builds::{BuildRequest, check_version, queue_build};
use crate::app::state::AppState;
use crate::model::{CreateWorkspaceRequest, Transition, new_id};
use crate::store::{NewWorkspace, UserRow, WorkspaceRow};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};

fn include_deleted(req: &HttpRequest) -> bool {
    serde_urlencoded_pairs(req.query_string())
        .iter()
        .any(|(k, v)| k == "include_deleted" && v == "true")
}

pub(crate) fn gone() -> ApiError {
    ApiError::new(StatusCode::GONE, "Workspace was deleted.")
        .with_detail("Add ?include_deleted=true to read it anyway.")
}

pub async fn get(
    state: State,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<String>,
) -> ApiResult<Reply> {
    let include_deleted = include_deleted(&req);
    blocking(move || {
        let w = find_workspace(&state, &actor, &path)?;
        if w.deleted && !include_deleted {
            return Err(gone());
        }
        ok(&workspace_json(&state, &w)?)
    })
    .await
}

pub async fn get_by_name(
    state: State,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> ApiResult<Reply> {
    let (user, name) = path.into_inner();
    let include_deleted = include_deleted(&req);
    blocking(move || {
        let w = find_workspace_by_name(&state, &actor, &user, &name, include_deleted)?;
        ok(&workspace_json(&state, &w)?)
    })
    .await
}

pub async fn create_for_user(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<MEDIUM>,
) -> ApiResult<Reply> {
    blocking(move || {
        let owner = find_user(&state, &actor, &path)?;
        create(&state, &actor, owner, None, &body)
    })
    .await
}

pub async fn create_in_org(
    state: State,
    actor: Actor,
    path: web::Path<(String, String)>,
    body: Body<MEDIUM>,
) -> ApiResult<Reply> {
    let (org, user) = path.into_inner();
    blocking(move || {
        let org = find_organization(&state, &org)?;
        let owner = find_user(&state, &actor, &user)?;
        create(&state, &actor, owner, Some(org.id), &body)
    })
    .await
}

fn create(
    state: &AppState,
    actor: &Actor,
    owner: UserRow,
    org_id: Option<String>,
    body: &[u8],
) -> ApiResult<Reply> {
    let req: CreateWorkspaceRequest = read_json(body)?;
    crate::api::extract::fields::preset_refused(
        &req.template_version_preset_id,
        ApiError::validation(),
    )
    .if_any()?;
    if !actor.caller().may_create_workspace_for(&owner.id) {
        return Err(ApiError::forbidden(
            "You do not have permission to create workspaces for other users.",
        ));
    }
    let template_id = given_id(&req.template_id);
    let version_id = given_id(&req.template_version_id);
    let (template, version) = match (template_id, version_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "Only one of TemplateID or TemplateVersionID can be specified.",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "Either TemplateID or TemplateVersionID must be specified.",
            ));
        }
        (Some(tid), None) => {
            let tid = parse_uuid(tid)?;
            let template = state.store.template(&tid)?.ok_or_else(|| {
                ApiError::bad_request(format!("Template {tid:?} doesn't exist."))
                    .with_validation("template_id", "template not found")
            })?;
            let version = state.store.template_version(&template.active_version_id)?;
            (template, version)
        }
        (None, Some(vid)) => {
            let vid = parse_uuid(vid)?;
            let version = state.store.template_version(&vid)?.ok_or_else(|| {
                ApiError::bad_request(format!("Template version {vid:?} doesn't exist."))
                    .with_validation("template_version_id", "template version not found")
            })?;
            let template = version
                .template_id
                .as_deref()
                .map(|t| state.store.template(t))
                .transpose()?
                .flatten()
                .ok_or_else(|| {
                    ApiError::bad_request("The template version is not attached to a template.")
                })?;
            (template, Some(version))
        }
    };
    if org_id
        .as_ref()
        .is_some_and(|o| *o != template.organization_id)
    {
        return Err(ApiError::bad_request(
            "The template does not belong to this organization.",
        ));
    }
    if req.name.is_empty() || !valid_name(&req.name) {
        let tag = if req.name.is_empty() {
            "required"
        } else {
            "workspace_name"
        };
        return Err(ApiError::validation().with_validation("name", tag_failed(tag, &req.name)));
    }
    let autostart = req.autostart_schedule.as_deref().filter(|s| !s.is_empty());
    if let Some(s) = autostart {
        crate::domain::schedule::weekly(s).map_err(|e| {
            ApiError::bad_request("Invalid Autostart Schedule.").with_validation("schedule", e)
        })?;
    }
    // Null or 0: the template's default applies (at each start).
    let ttl_ms = crate::domain::lifecycle::workspace_ttl(req.ttl_ms).map_err(|detail| {
        ApiError::bad_request("Invalid Workspace Time To Shutdown.")
            .with_validation("ttl_ms", detail)
    })?;
    if state
        .store
        .workspace_by_name(&owner.id, &req.name, false)?
        .is_some()
    {
        return Err(
            ApiError::conflict(format!("Workspace {:?} already exists.", req.name))
                .with_validation("name", "This value is already in use and should be unique."),
        );
    }
    let version = check_version(version, &template)?;
    let workspace_id = new_id();
    let new = NewWorkspace {
        id: &workspace_id,
        organization_id: &template.organization_id,
        owner_id: &owner.id,
        template_id: &template.id,
        name: &req.name,
        ttl_ms,
        autostart_schedule: autostart,
        // As Coder: `always` or else `never` (Go sends `""` for a field it was not given).
        automatic_updates: match req.automatic_updates.as_deref() {
            Some("always") => "always",
            _ => "never",
        },
    };
    let row = WorkspaceRow {
        id: workspace_id.clone(),
        organization_id: template.organization_id.clone(),
        owner_id: owner.id.clone(),
        owner_name: owner.username.clone(),
        owner_avatar_url: owner.avatar_url.clone(),
        template_id: template.id.clone(),
        name: req.name.clone(),
        ttl_ms: new.ttl_ms,
        autostart_schedule: None,
        automatic_updates: new.automatic_updates.to_string(),
        deleted: false,
        created_at: crate::model::Time::now(),
        updated_at: crate::model::Time::now(),
        last_used_at: crate::model::Time::now(),
    };
    let build = BuildRequest {
        transition: Transition::Start,
        template_version_id: Some(version.id.clone()),
        rich_parameter_values: req.rich_parameter_values,
        state: None,
        orphan: false,
        debug: false,
        reason: "initiator".into(),
        on_success: None,
    };
    queue_build(
        &*state.store,
        &actor.user.id,
        &row,
        &version,
        &build,
        None,
        Some(&new),
    )?;
    let stored = state
        .store
        .workspace(&workspace_id)?
        .ok_or_else(ApiError::not_found)?;
    created(&workspace_json(state, &stored)?)
}
