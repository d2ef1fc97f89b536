//! What a build's end writes beyond its job: timings, resources and state, the deadline and
//! cost, a deleted workspace, the follow-up build (`domain::builds::build_end`).

use super::Tx;
use super::conn::Lite;
use super::dialect::{exec, to_json};
use crate::domain::builds::{build_end, daily_cost, deadline};
use crate::model::{JobStatus, Time, Transition, WorkspaceResource};
use crate::store::{BuildCompletion, StoreResult};
use rusqlite::params;

/// The resources a job produced (a build, or a dry run's plan).
pub(super) fn insert_resources(
    tx: &Tx,
    job_id: &str,
    resources: &[WorkspaceResource],
) -> StoreResult<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO workspace_resources (id, job_id, created_at, workspace_transition, type, name, hide, \
         icon, daily_cost, metadata, agents) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for r in resources {
        stmt.execute(params![
            r.id,
            job_id,
            r.created_at,
            r.workspace_transition,
            r.kind,
            r.name,
            r.hide,
            r.icon,
            r.daily_cost,
            to_json(&r.metadata),
            to_json(&r.agents)
        ])?;
    }
    Ok(())
}

/// What a build's end changes, by its job's final status (`domain::builds::build_end`).
pub(super) fn apply_build_end(
    tx: &Tx,
    job_id: &str,
    status: JobStatus,
    done: &BuildCompletion,
    now: Time,
) -> StoreResult<bool> {
    let (build_id, workspace_id, transition): (String, String, Transition) = tx
        .prepare_cached(
            "SELECT id, workspace_id, transition FROM workspace_builds WHERE job_id = ?1",
        )?
        .query_row([job_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let end = build_end(transition, status);
    crate::store::sql::builds::insert_timings(&mut Lite(tx), job_id, &done.timings)?;
    if end.keeps_outputs {
        insert_resources(tx, job_id, &done.resources)?;
        if let Some(state) = &done.new_state {
            exec(
                tx,
                "UPDATE workspace_builds SET state = ?2 WHERE id = ?1",
                params![build_id, state],
            )?;
        }
        exec(
            tx,
            "UPDATE workspace_builds SET deadline = ?2, daily_cost = ?3, updated_at = ?4 WHERE id = ?1",
            params![
                build_id,
                deadline(transition, now, done.ttl_ms),
                daily_cost(transition, done.resources.iter().map(|r| r.daily_cost)),
                now
            ],
        )?;
    }
    if end.deletes_workspace {
        exec(
            tx,
            "UPDATE workspaces SET deleted = 1, updated_at = ?2 WHERE id = ?1",
            params![workspace_id, now],
        )?;
    }
    if end.queues_follow_up {
        return crate::store::sql::builds::queue_follow_up(&mut Lite(tx), job_id, now);
    }
    Ok(false)
}
