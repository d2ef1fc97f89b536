//! `PATCH /workspacebuilds/{id}/cancel`: the cancel rules of `domain::jobs`, in the contract's
//! order; the queue delivers the cancel to the job's worker.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::lookup::find_build;
use crate::api::extract::query::QueryParser;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::domain::jobs::may_cancel;
use crate::model::{JobStatus, Response};
use actix_web::{HttpRequest, web};

pub async fn cancel(
    state: State,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<String>,
) -> ApiResult<Reply> {
    let expect = QueryParser::new(&req)
        .first("expect_status")
        .map(str::to_string);
    blocking(move || {
        let build = find_build(&state, &actor, &path)?;
        // 1. expect_status.
        let expect = match expect.as_deref() {
            None | Some("") => None,
            Some("running") => Some(JobStatus::Running),
            Some("pending") => Some(JobStatus::Pending),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid expect_status {other:?}. Only 'running' or 'pending' are allowed."
                )));
            }
        };
        // 2. Permission.
        may_cancel(
            actor.caller(),
            &build.workspace_owner_id,
            expect,
            build.template_allow_user_cancel,
        )?;
        // 3 and 4, decided and applied atomically.
        state
            .queue
            .cancel(&build.job.id, expect)?
            .map_err(ApiError::from)?;
        ok(&Response::message("Job has been marked as canceled..."))
    })
    .await
}
