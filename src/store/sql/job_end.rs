//! How a job ends, inside a transaction: who must still hold it, its error, its last log lines,
//! and what the end writes beside them (`end_in`); and what a build's end changes beyond its
//! job (`apply_build_end`: timings, resources and state, the deadline and cost, a deleted
//! workspace, the follow-up build of `domain::builds::build_end`).

use super::builds::{insert_timings, queue_follow_up};
use super::logs::append_lines;
use super::{Conn, Stmt, Value, params, to_json};
use crate::domain::builds::{build_end, daily_cost, deadline};
use crate::domain::log_budget::LogCap;
use crate::model::{JobStatus, Time, Transition, WorkspaceResource};
use crate::store::{BuildCompletion, LogBatch, NewLog, Stale, StoreResult};

/// Who must still hold a job for it to be ended.
pub enum Holder<'a> {
    Worker(&'a str),
    Stale(Stale<'a>),
}

/// How a job ends: see `end_in`.
pub struct JobEnd<'a> {
    pub holder: Holder<'a>,
    /// Empty: the job completes (succeeded, or canceled when a cancel was requested).
    pub error: &'a str,
    /// With an error: a requested cancel still wins (the job ends canceled, not failed).
    pub cancel_wins: bool,
    /// The job's last lines, written before its end's own line.
    pub logs: &'a LogBatch,
}

/// Ends job `?1` at `?2` with error `?3` (`?4`: a requested cancel wins) if it is not
/// completed and `condition` (over `?5`) still holds; whether a cancel was requested.
fn end(condition: &str) -> String {
    format!(
        "UPDATE provisioner_jobs SET completed_at = ?2, updated_at = ?2, \
         error = CASE WHEN ?3 = '' OR (?4 AND canceled_at IS NOT NULL) THEN error ELSE ?3 END \
         WHERE id = ?1 AND completed_at IS NULL AND {condition} \
         RETURNING canceled_at IS NOT NULL"
    )
}

static END_HELD_BY: Stmt = Stmt::new(|_| end("started_at IS NOT NULL AND worker_id = ?5"));
static END_HEARTBEAT_BEFORE: Stmt =
    Stmt::new(|_| end("started_at IS NOT NULL AND updated_at < ?5"));
static END_QUEUED_BEFORE: Stmt =
    Stmt::new(|_| end("started_at IS NULL AND canceled_at IS NULL AND created_at < ?5"));

/// Ends job `job_id` in the caller's transaction if `end.holder` still holds it and it is not
/// completed: the statement that decides also writes (`completed_at`, and the error unless the
/// job ends canceled; PostgreSQL re-checks its condition on the locked row), so a job that
/// moved on since it was read is left alone. Then the last lines and the end's own line (the
/// error, or a warning when the job ends canceled), under the log's `cap` (the end's line is
/// the log's last: it is kept), and `then(c, ended_canceled, now)`. `None` when the job was
/// not (or no longer) the holder's.
pub fn end_in<T>(
    c: &mut dyn Conn,
    job_id: &str,
    end: &JobEnd,
    cap: LogCap,
    then: impl FnOnce(&mut dyn Conn, bool, Time) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let (sql, holder) = match &end.holder {
        Holder::Worker(w) | Holder::Stale(Stale::HeldBy(w)) => (&END_HELD_BY, Value::Text(w)),
        Holder::Stale(Stale::HeartbeatBefore(t)) => (&END_HEARTBEAT_BEFORE, Value::Int(t.0)),
        Holder::Stale(Stale::QueuedBefore(t)) => (&END_QUEUED_BEFORE, Value::Int(t.0)),
    };
    let now = Time::now();
    let canceled: Option<bool> = c.query_opt(
        sql,
        params![job_id, now, end.error, end.cancel_wins, holder],
        |r| r.get(0),
    )?;
    let Some(canceled) = canceled else {
        return Ok(None);
    };
    let ended_canceled = canceled && (end.cancel_wins || end.error.is_empty());
    if end.error.is_empty() {
        append_lines(c, job_id, &end.logs.lines, cap)?;
    } else {
        let mut lines = end.logs.lines.clone();
        lines.push(NewLog {
            created_at: now,
            source: "provisioner_daemon",
            level: if ended_canceled { "warn" } else { "error" }.into(),
            stage: "Cleaning Up".into(),
            output: end.error.to_string(),
        });
        append_lines(c, job_id, &lines, cap)?;
    }
    then(c, ended_canceled, now).map(Some)
}

/// A build job's end (`complete_build`) in the caller's transaction: its final status and
/// whether a follow-up build was queued; `None` when the worker no longer held it.
pub fn complete_build_in(
    c: &mut dyn Conn,
    job_id: &str,
    worker_id: &str,
    done: &BuildCompletion,
    logs: &LogBatch,
    cap: LogCap,
) -> StoreResult<Option<(JobStatus, bool)>> {
    let end = JobEnd {
        holder: Holder::Worker(worker_id),
        error: &done.error,
        cancel_wins: false,
        logs,
    };
    end_in(c, job_id, &end, cap, |c, canceled, now| {
        let status = done.final_status(canceled);
        let queued = apply_build_end(c, job_id, status, done, now)?;
        Ok((status, queued))
    })
}

/// The resources a job produced (a build, or a dry run's plan).
pub fn insert_resources(
    c: &mut dyn Conn,
    job_id: &str,
    resources: &[WorkspaceResource],
) -> StoreResult<()> {
    for r in resources {
        c.execute(
            "INSERT INTO workspace_resources (id, job_id, created_at, workspace_transition, type, \
             name, hide, icon, daily_cost, metadata, agents) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
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
            ],
        )?;
    }
    Ok(())
}

/// What a build's end changes, by its job's final status (`domain::builds::build_end`).
/// Whether a follow-up build was queued.
fn apply_build_end(
    c: &mut dyn Conn,
    job_id: &str,
    status: JobStatus,
    done: &BuildCompletion,
    now: Time,
) -> StoreResult<bool> {
    let (build_id, workspace_id, transition): (String, String, Transition) = c.query_one(
        "SELECT id, workspace_id, transition FROM workspace_builds WHERE job_id = ?1",
        params![job_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let end = build_end(transition, status);
    insert_timings(c, job_id, &done.timings)?;
    if end.keeps_outputs {
        insert_resources(c, job_id, &done.resources)?;
        if let Some(state) = &done.new_state {
            c.execute(
                "UPDATE workspace_builds SET state = ?2 WHERE id = ?1",
                params![build_id, state],
            )?;
        }
        c.execute(
            "UPDATE workspace_builds SET deadline = ?2, daily_cost = ?3, updated_at = ?4 \
             WHERE id = ?1",
            params![
                build_id,
                deadline(transition, now, done.ttl_ms),
                daily_cost(transition, done.resources.iter().map(|r| r.daily_cost)),
                now
            ],
        )?;
    }
    if end.deletes_workspace {
        c.execute(
            "UPDATE workspaces SET deleted = true, updated_at = ?2 WHERE id = ?1",
            params![workspace_id, now],
        )?;
    }
    if end.queues_follow_up {
        return queue_follow_up(c, job_id, now);
    }
    Ok(false)
}
