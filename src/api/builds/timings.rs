//! `GET /workspacebuilds/{build}/timings`: Coder's `WorkspaceBuildTimings`, with the stages
//! and steps the build's job recorded as they happened (`provisioner::timings`); kiln runs no
//! agents, so the agent lists are empty. Empty lists until the job has ended.

use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::lookup::find_build;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use actix_web::web;
use serde_json::json;

pub async fn timings(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let build = find_build(&state, &actor, &path)?;
        let rows: Vec<_> = state
            .store
            .timings(&build.job.id)?
            .into_iter()
            .map(|t| {
                json!({
                    "job_id": build.job.id,
                    "started_at": t.started_at,
                    "ended_at": t.ended_at,
                    "stage": t.stage,
                    "source": t.source,
                    "action": t.action,
                    "resource": t.resource,
                })
            })
            .collect();
        ok(&json!({
            "provisioner_timings": rows,
            "agent_script_timings": [],
            "agent_connection_timings": [],
        }))
    })
    .await
}
