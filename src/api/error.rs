//! The API's one error type, and the one place it becomes Coder's error body.

use crate::model::{Response, ValidationError};
use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

pub const NOT_FOUND: &str = "Resource not found or you do not have access to this resource";
pub const SIGNED_OUT: &str =
    "You are signed out or your session has expired. Please sign in again to continue.";

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Response,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: Response::message(message),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> ApiError {
        self.body.detail = detail.into();
        self
    }

    pub fn with_validation(mut self, field: impl Into<String>, detail: impl Into<String>) -> Self {
        self.body.validations.push(ValidationError {
            field: field.into(),
            detail: detail.into(),
        });
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// The generic 404: also what a caller gets for anything it may not read.
    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, NOT_FOUND)
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, SIGNED_OUT).with_detail(detail)
    }

    /// 400 `Validation failed.` with no validations yet; add them with `with_validation`.
    pub fn validation() -> ApiError {
        ApiError::bad_request("Validation failed.")
    }

    /// For a `validation()` error being filled in: `Err(self)` once it holds any validation.
    pub fn if_any(self) -> ApiResult<()> {
        if self.body.validations.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    pub fn internal(message: impl Into<String>, detail: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message).with_detail(detail.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.body.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_server_error() {
            log::error!("{}: {}", self.body.message, self.body.detail);
        }
        HttpResponse::build(self.status)
            .insert_header(("Content-Type", "application/json; charset=utf-8"))
            .body(serde_json::to_string(&self.body).unwrap_or_default())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::internal("Internal error talking to the database.", e)
    }
}
