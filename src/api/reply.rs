//! How a handler answers: a `Reply` made on the blocking pool (`blocking`, where store calls
//! run) and sent from the async thread, JSON with Coder's content type.

use super::error::{ApiError, ApiResult};
use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse, Responder};
use serde::Serialize;

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
