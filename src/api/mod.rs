//! HTTP in, JSON out: one module per resource. Handlers read the request, gather facts from
//! the store on the blocking pool (`blocking`), take decisions from `crate::domain`, and answer
//! in Coder's shapes (`views.rs`); every error is an `ApiError` (`error.rs`).

pub mod access_log;
mod agents;
pub mod auth;
mod authcheck;
pub mod body;
mod builds;
pub mod csrf;
mod dry_runs;
mod dynamic_parameters;
pub mod error;
mod files;
pub mod http_metrics;
mod log_format;
mod logs;
mod logs_ws;
mod lookup;
mod meta;
pub mod openapi;
pub mod routes;
pub use meta::version as meta_version;

/// The header every answer carries with kiln's version (Coder's `X-Coder-Build-Version`).
pub const BUILD_VERSION_HEADER: &str = "X-Coder-Build-Version";
mod organization_members;
mod organizations;
mod provisioner_daemons;
mod provisioner_jobs;
mod provisioner_keys;
mod provisionerd;
mod query;
pub mod render;
mod status_page;
mod template_changes;
mod templates;
mod templateversions;
mod tokens;
mod user_account;
mod user_status;
mod users;
mod version_parts;
pub mod views;
mod workspace_list;
mod workspace_schedule;
mod workspace_settings;
mod workspace_watch;
mod workspaces;

pub use crate::app::state::AppState;
pub use auth::Actor;
pub use error::{ApiError, ApiResult};

/// What a handler takes to reach the application.
pub type State = web::Data<AppState>;

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, Resource, Responder, web};
use serde::Serialize;

/// Every route. Anything unmatched under `/api/v2` answers the generic JSON 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(res("/healthz").route(web::get().to(meta::healthz)));
    cfg.configure(openapi::routes);
    cfg.configure(status_page::routes);
    cfg.service(routes::scope("/api/v2", |scope| {
        scope
            // Routes are tried in order: the hot build reads first.
            .configure(builds::routes)
            .configure(meta::routes)
            .configure(user_account::routes)
            .configure(users::routes)
            .configure(tokens::routes)
            .configure(authcheck::routes)
            .configure(user_status::routes)
            .configure(organizations::routes)
            .configure(organization_members::routes)
            .configure(provisioner_jobs::routes)
            .configure(provisioner_keys::routes)
            .configure(provisioner_daemons::routes)
            .configure(provisionerd::routes)
            .configure(files::routes)
            .configure(templateversions::routes)
            .configure(dry_runs::routes)
            .configure(dynamic_parameters::routes)
            .configure(version_parts::routes)
            .configure(templates::routes)
            .configure(template_changes::routes)
            .configure(workspaces::routes)
            .configure(workspace_schedule::routes)
            .configure(workspace_settings::routes)
            .configure(agents::routes)
            .default_service(web::to(route_not_found))
    }));
}

/// A resource whose unmatched methods answer the generic 404 (as unknown routes do).
/// Every resource is made here, so `routes::patterns` knows each one.
pub fn res(path: &str) -> Resource {
    routes::record(path);
    web::resource(path).default_service(web::to(route_not_found))
}

async fn route_not_found() -> ApiResult<Reply> {
    Err(ApiError::not_found())
}

/// A response made on a blocking thread (`blocking`) and sent from the async one.
pub struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
}

impl Reply {
    pub fn new(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            content_type,
            body: body.into(),
        }
    }

    pub fn no_content() -> Reply {
        Reply::new(StatusCode::NO_CONTENT, "", Bytes::new())
    }
}

impl Responder for Reply {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        if !self.content_type.is_empty() {
            r.insert_header(("Content-Type", self.content_type));
        }
        r.body(self.body)
    }
}

pub const JSON: &str = "application/json; charset=utf-8";

/// A JSON response with Coder's content type.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Reply {
    Reply::new(status, JSON, serde_json::to_vec(body).unwrap_or_default())
}

pub fn ok<T: Serialize>(body: &T) -> ApiResult<Reply> {
    Ok(json(StatusCode::OK, body))
}

pub fn created<T: Serialize>(body: &T) -> ApiResult<Reply> {
    Ok(json(StatusCode::CREATED, body))
}

/// Runs `f` (store calls, which may wait on the disk or the network) on the blocking pool, so
/// request handling on the async threads never stalls.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    web::block(f)
        .await
        .map_err(|e| ApiError::internal("Internal error: the request could not run.", e))?
}

pub use body::read_json;

/// An optional id from a body: empty and the nil UUID mean "not given", as in Coder.
pub fn given_id(id: &Option<String>) -> Option<&str> {
    id.as_deref()
        .filter(|s| !s.is_empty() && *s != crate::model::NIL_UUID)
}

/// kiln's templates declare no presets (`GET /templateversions/{id}/presets` is `[]`), so a
/// preset id other than none (Go's zero UUID, `""`) names nothing: a validation, never a drop.
pub fn preset_refused(id: &Option<String>, invalid: ApiError) -> ApiError {
    match given_id(id) {
        Some(preset) => invalid.with_validation(
            "template_version_preset_id",
            format!(
                "Template version preset {preset:?} does not exist: kiln's templates declare no presets."
            ),
        ),
        None => invalid,
    }
}

/// A UUID from the path: 400 `Invalid UUID "<raw>".` when it does not parse.
pub fn parse_uuid(raw: &str) -> ApiResult<String> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.to_string())
        .map_err(|e| {
            ApiError::bad_request(format!("Invalid UUID {raw:?}.")).with_detail(e.to_string())
        })
}

/// Coder's username / workspace-name rule: 1-32 alphanumerics in dash-separated groups.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Coder's detail for a failed validation tag.
pub fn tag_failed(tag: &str, value: &str) -> String {
    format!("Validation failed for tag {tag:?} with value: \"{value}\"")
}
