//! /files: template archives, content-addressed by SHA-256.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::fields::parse_uuid;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::json;
use crate::model::{UploadResponse, new_id};
use crate::store::NewFile;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

const ACCEPTED_TYPES: [&str; 2] = ["application/x-tar", "application/zip"];

pub async fn upload(
    state: State,
    actor: Actor,
    req: HttpRequest,
    mut body: web::Payload,
) -> ApiResult<Reply> {
    let content_type = req
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mimetype = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if !ACCEPTED_TYPES.contains(&mimetype.as_str()) {
        return Err(ApiError::bad_request(format!(
            "Unsupported content type header {content_type:?}."
        ))
        .with_detail("Upload a tar archive with Content-Type: application/x-tar."));
    }
    let limit = state.config.max_upload_bytes;
    let mut data = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("Failed to read file from request.").with_detail(e.to_string())
        })?;
        if data.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("File is too large: the limit is {limit} bytes."),
            )
            .with_detail("Start the server with a larger --max-upload-bytes to accept it."));
        }
        data.extend_from_slice(&chunk);
    }
    blocking(move || {
        let hash: String = Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let (id, created) = state.store.insert_file(&NewFile {
            id: &new_id(),
            hash: &hash,
            mimetype: &mimetype,
            data: &data,
            created_by: &actor.user.id,
        })?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok(json(status, &UploadResponse { hash: id }))
    })
    .await
}

pub async fn download(
    state: State,
    actor: Actor,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_uuid(&path)?;
    let file = blocking(move || {
        let file = state.store.file(&id)?.ok_or_else(ApiError::not_found)?;
        if !actor.caller().may_read_file_of(&file.created_by) {
            return Err(ApiError::not_found());
        }
        Ok(file)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Content-Type", file.mimetype))
        .body(file.data))
}
