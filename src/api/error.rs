//! The API's one error type, and the one place it becomes Coder's error body.

use crate::app::builds::BuildError;
use crate::domain::{BuildRefusal, CancelRefusal};
use crate::model::{Response, ValidationError};
use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

pub const NOT_FOUND: &str = "Resource not found or you do not have access to this resource";
/// 507: the store's disk is full (the request's write was not stored).
pub const DISK_FULL: &str = "The server's disk is full.";
pub const DATABASE_UNREACHABLE: &str = "The database cannot be reached.";
pub const DATABASE_BUSY: &str = "The database is busy.";
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
        match e {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::DiskFull(why) => ApiError::new(StatusCode::INSUFFICIENT_STORAGE, DISK_FULL)
                .with_detail(format!(
                    "Nothing was stored ({why}); free space on the server."
                )),
            StoreError::Unreachable(why) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, DATABASE_UNREACHABLE)
                    .with_detail(format!("{why}; try again shortly."))
            }
            StoreError::Busy(why) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, DATABASE_BUSY)
                .with_detail(format!("Nothing was stored ({why}); try again shortly.")),
            e => ApiError::internal("Internal error talking to the database.", e),
        }
    }
}

/// Why the build use case queued nothing, with Coder's statuses and messages.
impl From<BuildError> for ApiError {
    fn from(e: BuildError) -> ApiError {
        match e {
            BuildError::Refused(r) => r.into(),
            BuildError::Parameter(e) => {
                ApiError::bad_request(format!("Unable to validate parameter {:?}", e.name))
                    .with_detail(e.detail)
            }
            BuildError::WorkspaceExists(name) => {
                ApiError::conflict(format!("Workspace {name:?} already exists."))
                    .with_validation("name", "This value is already in use and should be unique.")
            }
            BuildError::TemplateGone => ApiError::internal(
                "Internal error fetching template.",
                "the workspace's template is gone",
            ),
            BuildError::Store(e) => e.into(),
        }
    }
}

/// The checks of POST builds (spec section 4), with Coder's statuses and messages.
impl From<BuildRefusal> for ApiError {
    fn from(r: BuildRefusal) -> ApiError {
        match r {
            BuildRefusal::DeletedWorkspace(t) => {
                ApiError::conflict(format!("Cannot {} a deleted workspace!", t.as_str()))
                    .with_detail("This workspace has been deleted and cannot be modified.")
            }
            BuildRefusal::OrphanWithoutDelete => {
                ApiError::bad_request("Orphan is only permitted when deleting a workspace.")
            }
            BuildRefusal::OrphanWithState => ApiError::bad_request(
                "ProvisionerState cannot be set alongside Orphan since state intent is unclear.",
            ),
            BuildRefusal::NotPermitted { action } => ApiError::forbidden(format!(
                "You do not have permission to {action} this workspace."
            )),
            BuildRefusal::CustomStateNotAllowed => {
                ApiError::forbidden("Only template managers may provide custom state")
            }
            BuildRefusal::CustomLogLevelNotAllowed => ApiError::bad_request(
                "Workspace builds with a custom log level are restricted to administrators only.",
            ),
            BuildRefusal::VersionMissing => {
                ApiError::bad_request("template version does not exist")
            }
            BuildRefusal::VersionOfAnotherTemplate => {
                ApiError::bad_request("template version doesn't match template")
            }
            BuildRefusal::VersionImporting(status) => ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                format!(
                    "The provided template version is {}. Wait for it to complete importing!",
                    status.as_str()
                ),
            ),
            BuildRefusal::VersionFailed { name, error } => ApiError::bad_request(format!(
                "The provided template version {name:?} has failed to import: {error:?}. You cannot build workspaces with it!"
            )),
            BuildRefusal::ActiveBuild => ApiError::conflict("A workspace build is already active."),
        }
    }
}

/// The cancel rules (spec section 4), with Coder's statuses and messages.
impl From<CancelRefusal> for ApiError {
    fn from(r: CancelRefusal) -> ApiError {
        match r {
            CancelRefusal::NotAllowed => ApiError::forbidden(
                "User is not allowed to cancel workspace builds. Owner role is required.",
            ),
            CancelRefusal::AlreadyCompleted => ApiError::bad_request("Job has already completed!"),
            CancelRefusal::AlreadyCanceling => {
                ApiError::bad_request("Job has already been marked as canceled!")
            }
            CancelRefusal::NotExpected => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "Job is not in the expected state.",
            ),
        }
    }
}

/// A live stream refused: 429 when the caller holds too many, 503 when the server does.
impl From<crate::app::streams::StreamRefusal> for ApiError {
    fn from(r: crate::app::streams::StreamRefusal) -> ApiError {
        use crate::app::streams::StreamRefusal;
        match r {
            StreamRefusal::User { limit } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("You have too many live streams open (at most {limit} at once)."),
            )
            .with_detail(
                "Close some log follows, watches or status pages (each browser tab holds a few) \
                 and try again.",
            ),
            StreamRefusal::Server { limit } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "The server holds as many live streams as it serves ({limit}); try again later."
                ),
            ),
        }
    }
}

/// Coder's generic 403 for actions the caller's role does not allow.
pub fn forbidden() -> ApiError {
    ApiError::forbidden("Forbidden.").with_detail(
        "You don't have permission to view this content. If you believe this is a mistake, \
         please contact your administrator or try signing in with different credentials.",
    )
}
