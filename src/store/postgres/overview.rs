//! Reads for the status page on PostgreSQL: the queue, busy workers, recent builds, and the
//! change marker.

use super::PgStore;
use super::job_rows::{JOB_COLUMNS, job_from_row};
use crate::model::overview::{BuildFacts, QueuedJob};
use crate::store::{ChangeMarker, JobRow, OverviewStore, QueueRow, StoreResult, numbered};

/// Every value is the end of an index or a count over the small in-flight index.
pub(super) const CHANGE_MARKER: &str = "SELECT (SELECT max(seq) FROM provisioner_jobs), \
     (SELECT count(*) FROM provisioner_jobs WHERE started_at IS NOT NULL AND completed_at IS NULL), \
     (SELECT max(updated_at) FROM provisioner_jobs), \
     (SELECT max(updated_at) FROM workspace_builds), \
     (SELECT max(updated_at) FROM workspaces)";

pub(super) const BUSY_JOBS: &str = "SELECT count(*) FROM provisioner_jobs \
     WHERE started_at IS NOT NULL AND completed_at IS NULL";

/// The head of the queue along the pending index, oldest first: a row's place is its index
/// in the answer plus one (a window's `ROW_NUMBER()` here numbered the whole queue before the
/// limit, which grew with the queue).
pub(super) const PENDING_QUEUE: &str = "SELECT q.id, q.type, q.created_at, w.name, \
     wb.build_number, tv.name, w.owner_id \
     FROM (SELECT id, type, created_at, seq FROM provisioner_jobs \
           WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL \
           ORDER BY seq LIMIT $1) q \
     LEFT JOIN workspace_builds wb ON wb.job_id = q.id \
     LEFT JOIN workspaces w ON w.id = wb.workspace_id \
     LEFT JOIN template_versions tv ON tv.job_id = q.id \
     ORDER BY q.seq";

/// Newest first, a page (`$2` rows after `$3`) at a time.
pub(super) const RECENT_BUILDS: &str = "SELECT wb.id, wb.workspace_id, w.name, \
     coalesce(o.username, ''), wb.build_number, wb.transition, coalesce(i.username, ''), \
     wb.created_at, j.started_at, j.completed_at, j.canceled_at, j.error \
     FROM workspace_builds wb \
     JOIN workspaces w ON w.id = wb.workspace_id \
     JOIN provisioner_jobs j ON j.id = wb.job_id \
     LEFT JOIN users o ON o.id = w.owner_id \
     LEFT JOIN users i ON i.id = wb.initiator_id \
     WHERE $1::text IS NULL OR w.owner_id = $1 \
     ORDER BY wb.created_at DESC, j.seq DESC LIMIT $2 OFFSET $3";

impl OverviewStore for PgStore {
    fn overview_change_marker(&self) -> StoreResult<ChangeMarker> {
        let r = self.conn()?.query_one(CHANGE_MARKER, &[])?;
        Ok(ChangeMarker {
            last_job: r.get(0),
            jobs_running: r.get(1),
            jobs_updated_at: r.get(2),
            builds_updated_at: r.get(3),
            workspaces_updated_at: r.get(4),
        })
    }

    fn busy_job_count(&self) -> StoreResult<i64> {
        Ok(self.conn()?.query_one(BUSY_JOBS, &[])?.get(0))
    }

    fn pending_queue(&self, limit: i64) -> StoreResult<Vec<QueueRow>> {
        let rows = self.conn()?.query(PENDING_QUEUE, &[&limit])?;
        Ok(numbered(
            rows.iter()
                .map(|r| QueueRow {
                    job: QueuedJob {
                        job_id: r.get(0),
                        job_type: r.get(1),
                        position: 0,
                        created_at: r.get(2),
                        workspace_name: r.get(3),
                        build_number: r.get(4),
                        template_version_name: r.get(5),
                    },
                    workspace_owner_id: r.get(6),
                })
                .collect(),
        ))
    }

    fn scan_recent_builds(
        &self,
        owner_id: Option<&str>,
        visit: &mut dyn FnMut(BuildFacts) -> bool,
    ) -> StoreResult<()> {
        let mut conn = self.conn()?;
        // Pages (growing) rather than one unbounded statement: with a LIMIT the planner walks
        // the `created_at` index backwards instead of sorting every build.
        let (mut limit, mut offset) = (64_i64, 0_i64);
        loop {
            let (mut seen, mut more) = (0_i64, true);
            conn.query_each(RECENT_BUILDS, &[&owner_id, &limit, &offset], |r| {
                seen += 1;
                more = visit(BuildFacts {
                    id: r.get(0),
                    workspace_id: r.get(1),
                    workspace_name: r.get(2),
                    owner_name: r.get(3),
                    build_number: r.get(4),
                    transition: r.get(5),
                    initiator_name: r.get(6),
                    created_at: r.get(7),
                    job_started_at: r.get(8),
                    job_completed_at: r.get(9),
                    job_canceled_at: r.get(10),
                    job_error: r.get(11),
                });
                more
            })?;
            if !more || seen < limit {
                break;
            }
            offset += seen;
            limit = (limit * 4).min(4096);
        }
        Ok(())
    }

    fn scan_recent_jobs(
        &self,
        organization_id: &str,
        visit: &mut dyn FnMut(JobRow) -> bool,
    ) -> StoreResult<()> {
        let mut conn = self.conn()?;
        conn.query_each(
            &format!(
                "SELECT {JOB_COLUMNS} FROM provisioner_jobs j WHERE j.organization_id = $1 \
                 ORDER BY j.seq DESC"
            ),
            &[&organization_id],
            |r| visit(job_from_row(r, 0)),
        )?;
        Ok(())
    }
}
