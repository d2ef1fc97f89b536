//! How a job ends on PostgreSQL: the conditional update that decides (`PgStore::end_job`)
//! and what a build's end changes in the same transaction (`apply_build_end`).

use super::PgStore;
use super::dialect::to_json;
use super::logs::{append_lines, insert_log};
use super::pool::Tx;
use crate::domain::builds::{build_end, daily_cost, deadline};
use crate::events::Topic;
use crate::model::{JobStatus, Time, Transition, WorkspaceResource};
use crate::store::{BuildCompletion, LogBatch, Stale, StoreResult};
use postgres::types::ToSql;

/// Who must still hold a job for it to be ended.
pub(super) enum Holder<'a> {
    Worker(&'a str),
    Stale(Stale<'a>),
}

/// How a job ends: see `PgStore::end_job`.
pub(super) struct JobEnd<'a> {
    pub holder: Holder<'a>,
    /// Empty: the job completes (succeeded, or canceled when a cancel was requested).
    pub error: &'a str,
    /// With an error: a requested cancel still wins (the job ends canceled, not failed).
    pub cancel_wins: bool,
    /// The job's last lines, written before its end's own line.
    pub logs: &'a LogBatch,
}

/// The resources a job produced (a build, or a dry run's plan).
pub(super) fn insert_resources(
    tx: &mut Tx,
    job_id: &str,
    resources: &[WorkspaceResource],
) -> StoreResult<()> {
    for r in resources {
        tx.execute(
            "INSERT INTO workspace_resources (id, job_id, created_at, workspace_transition, type, \
             name, hide, icon, daily_cost, metadata, agents) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &r.id,
                &job_id,
                &r.created_at,
                &r.workspace_transition,
                &r.kind,
                &r.name,
                &r.hide,
                &r.icon,
                &r.daily_cost,
                &to_json(&r.metadata),
                &to_json(&r.agents),
            ],
        )?;
    }
    Ok(())
}

/// What a build's end changes, by its job's final status (`domain::builds::build_end`).
pub(super) fn apply_build_end(
    tx: &mut Tx,
    job_id: &str,
    status: JobStatus,
    done: &BuildCompletion,
    now: Time,
) -> StoreResult<bool> {
    let row = tx.query_one(
        "SELECT id, workspace_id, transition FROM workspace_builds WHERE job_id = $1",
        &[&job_id],
    )?;
    let (build_id, workspace_id, transition): (String, String, Transition) =
        (row.get(0), row.get(1), row.get(2));
    let end = build_end(transition, status);
    crate::store::sql::builds::insert_timings(tx, job_id, &done.timings)?;
    if end.keeps_outputs {
        insert_resources(tx, job_id, &done.resources)?;
        if let Some(state) = &done.new_state {
            tx.execute(
                "UPDATE workspace_builds SET state = $2 WHERE id = $1",
                &[&build_id, state],
            )?;
        }
        tx.execute(
            "UPDATE workspace_builds SET deadline = $2, daily_cost = $3, updated_at = $4 WHERE id = $1",
            &[
                &build_id,
                &deadline(transition, now, done.ttl_ms),
                &daily_cost(transition, done.resources.iter().map(|r| r.daily_cost)),
                &now,
            ],
        )?;
    }
    if end.deletes_workspace {
        tx.execute(
            "UPDATE workspaces SET deleted = true, updated_at = $2 WHERE id = $1",
            &[&workspace_id, &now],
        )?;
    }
    if end.queues_follow_up {
        return crate::store::sql::builds::queue_follow_up(tx, job_id, now);
    }
    Ok(false)
}

impl PgStore {
    /// Ends job `job_id` in one transaction if `end.holder` still holds it and it is not
    /// completed: the statement that decides also writes (PostgreSQL re-checks its condition
    /// on the locked row), so a job that moved on since it was read is left alone. Then the
    /// last lines, the end's own line (the error, or a warning when the job ends canceled)
    /// and `then(tx, ended_canceled, now)`; followers and the overview are told. `None` when
    /// the job was not (or no longer) the holder's.
    pub(super) fn end_job<T>(
        &self,
        job_id: &str,
        end: JobEnd,
        then: impl FnOnce(&mut Tx, bool, Time) -> StoreResult<T>,
        queued_a_job: impl FnOnce(&T) -> bool,
    ) -> StoreResult<Option<T>> {
        let (condition, worker, before) = match end.holder {
            Holder::Worker(w) | Holder::Stale(Stale::HeldBy(w)) => {
                ("started_at IS NOT NULL AND worker_id = $5", w, 0)
            }
            Holder::Stale(Stale::HeartbeatBefore(t)) => {
                ("started_at IS NOT NULL AND updated_at < $5", "", t.0)
            }
            Holder::Stale(Stale::QueuedBefore(t)) => (
                "started_at IS NULL AND canceled_at IS NULL AND created_at < $5",
                "",
                t.0,
            ),
        };
        let holder: &(dyn ToSql + Sync) = if condition.ends_with("worker_id = $5") {
            &worker
        } else {
            &before
        };
        let job = job_id.to_string();
        self.write(
            |tx| {
                let now = Time::now();
                let sql = format!(
                    "UPDATE provisioner_jobs SET completed_at = $2, updated_at = $2, \
                     error = CASE WHEN $3 = '' OR ($4 AND canceled_at IS NOT NULL) THEN error ELSE $3 END \
                     WHERE id = $1 AND completed_at IS NULL AND {condition} \
                     RETURNING canceled_at IS NOT NULL"
                );
                let row = tx.query_opt(
                    sql.as_str(),
                    &[&job_id, &now, &end.error, &end.cancel_wins, holder],
                )?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let canceled: bool = row.get(0);
                let ended_canceled = canceled && (end.cancel_wins || end.error.is_empty());
                append_lines(tx, job_id, end.logs)?;
                if !end.error.is_empty() {
                    let level = if ended_canceled { "warn" } else { "error" };
                    insert_log(tx, job_id, now, "provisioner_daemon", level, "Cleaning Up", end.error)?;
                }
                then(tx, ended_canceled, now).map(Some)
            },
            |out| match out {
                Some(t) if queued_a_job(t) => {
                    vec![Topic::Logs(job.clone()), Topic::Overview, Topic::Queue]
                }
                Some(_) => vec![Topic::Logs(job.clone()), Topic::Overview],
                None => vec![],
            },
        )
    }
}
