//! HTTP in, JSON out: one module per resource. No SQL here; handlers call the store.

pub mod auth;
mod build_cache;
mod build_create;
pub mod error;
mod files;
mod logs;
mod meta;
pub use meta::version as meta_version;
mod organizations;
mod query;
pub mod session_cache;
mod status_page;
mod templates;
mod templateversions;
mod users;
pub mod views;
mod workspacebuilds;
mod workspaces;

pub use auth::Actor;
pub use error::{ApiError, ApiResult};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, Resource, web};
use serde::Serialize;

/// Every route. Anything unmatched under `/api/v2` answers the generic JSON 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(res("/healthz").route(web::get().to(meta::healthz)));
    cfg.configure(status_page::routes);
    cfg.service(
        web::scope("/api/v2")
            // Routes are tried in order: the hot build reads first.
            .configure(workspacebuilds::routes)
            .configure(meta::routes)
            .configure(users::routes)
            .configure(organizations::routes)
            .configure(files::routes)
            .configure(templateversions::routes)
            .configure(templates::routes)
            .configure(workspaces::routes)
            .configure(build_create::routes)
            .default_service(web::to(route_not_found)),
    );
}

/// A resource whose unmatched methods answer the generic 404 (as unknown routes do).
pub fn res(path: &str) -> Resource {
    web::resource(path).default_service(web::to(route_not_found))
}

async fn route_not_found() -> ApiResult<HttpResponse> {
    Err(ApiError::not_found())
}

/// A JSON response with Coder's content type.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Content-Type", "application/json; charset=utf-8"))
        .body(serde_json::to_vec(body).unwrap_or_default())
}

pub fn ok<T: Serialize>(body: &T) -> ApiResult<HttpResponse> {
    Ok(json(StatusCode::OK, body))
}

pub fn created<T: Serialize>(body: &T) -> ApiResult<HttpResponse> {
    Ok(json(StatusCode::CREATED, body))
}

/// Reads a JSON body whatever its Content-Type (Coder does the same).
pub fn read_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("Request body must be valid JSON.").with_detail(e.to_string())
    })
}

/// A UUID from the path: 400 `Invalid UUID "<raw>".` when it does not parse.
pub fn parse_uuid(raw: &str) -> ApiResult<String> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.to_string())
        .map_err(|e| {
            ApiError::bad_request(format!("Invalid UUID {raw:?}.")).with_detail(e.to_string())
        })
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
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
