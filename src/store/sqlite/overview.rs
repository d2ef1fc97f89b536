//! Reads for the status page: the queue, busy workers, recent builds, and a cheap marker that
//! moves whenever any of them may have changed.

use super::SqliteStore;
use super::job_rows::{JOB_COLUMNS, job_from_row};
use crate::model::Time;
use crate::model::overview::{BuildFacts, QueuedJob};
use crate::store::{ChangeMarker, JobRow, OverviewStore, QueueRow, StoreResult, numbered};
use rusqlite::params;

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
           ORDER BY seq LIMIT ?1) q \
     LEFT JOIN workspace_builds wb ON wb.job_id = q.id \
     LEFT JOIN workspaces w ON w.id = wb.workspace_id \
     LEFT JOIN template_versions tv ON tv.job_id = q.id \
     ORDER BY q.seq";

/// Newest first, read backwards along the `created_at` index (its rowid breaks ties in
/// creation order) and stepped only as far as the caller visits.
pub(super) const RECENT_BUILDS: &str = "SELECT wb.id, wb.workspace_id, w.name, \
     coalesce(o.username, ''), wb.build_number, wb.transition, coalesce(i.username, ''), \
     wb.created_at, j.started_at, j.completed_at, j.canceled_at, j.error \
     FROM workspace_builds wb \
     JOIN workspaces w ON w.id = wb.workspace_id \
     JOIN provisioner_jobs j ON j.id = wb.job_id \
     LEFT JOIN users o ON o.id = w.owner_id \
     LEFT JOIN users i ON i.id = wb.initiator_id \
     WHERE ?1 IS NULL OR w.owner_id = ?1 \
     ORDER BY wb.created_at DESC, wb.rowid DESC";

impl OverviewStore for SqliteStore {
    fn overview_change_marker(&self) -> StoreResult<ChangeMarker> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(CHANGE_MARKER)?;
        Ok(stmt.query_row([], |r| {
            Ok(ChangeMarker {
                last_job: r.get(0)?,
                jobs_running: r.get(1)?,
                jobs_updated_at: r.get(2)?,
                builds_updated_at: r.get(3)?,
                workspaces_updated_at: r.get(4)?,
            })
        })?)
    }

    fn busy_job_count(&self) -> StoreResult<i64> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(BUSY_JOBS)?;
        Ok(stmt.query_row([], |r| r.get(0))?)
    }

    fn pending_queue(&self, limit: i64) -> StoreResult<Vec<QueueRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(PENDING_QUEUE)?;
        let rows = stmt.query_map([limit], |r| {
            Ok(QueueRow {
                job: QueuedJob {
                    job_id: r.get(0)?,
                    job_type: r.get(1)?,
                    position: 0,
                    created_at: r.get(2)?,
                    workspace_name: r.get(3)?,
                    build_number: r.get(4)?,
                    template_version_name: r.get(5)?,
                },
                workspace_owner_id: r.get(6)?,
            })
        })?;
        Ok(numbered(rows.collect::<Result<_, _>>()?))
    }

    fn scan_recent_builds(
        &self,
        owner_id: Option<&str>,
        visit: &mut dyn FnMut(BuildFacts) -> bool,
    ) -> StoreResult<()> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(RECENT_BUILDS)?;
        let mut rows = stmt.query(params![owner_id])?;
        while let Some(r) = rows.next()? {
            let facts = BuildFacts {
                id: r.get(0)?,
                workspace_id: r.get(1)?,
                workspace_name: r.get(2)?,
                owner_name: r.get(3)?,
                build_number: r.get(4)?,
                transition: r.get(5)?,
                initiator_name: r.get(6)?,
                created_at: r.get(7)?,
                job_started_at: r.get::<_, Option<Time>>(8)?,
                job_completed_at: r.get(9)?,
                job_canceled_at: r.get(10)?,
                job_error: r.get(11)?,
            };
            if !visit(facts) {
                break;
            }
        }
        Ok(())
    }

    fn scan_recent_jobs(
        &self,
        organization_id: &str,
        visit: &mut dyn FnMut(JobRow) -> bool,
    ) -> StoreResult<()> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM provisioner_jobs j WHERE j.organization_id = ?1 \
             ORDER BY j.seq DESC"
        ))?;
        let mut rows = stmt.query(params![organization_id])?;
        while let Some(r) = rows.next()? {
            if !visit(job_from_row(r, 0)?) {
                break;
            }
        }
        Ok(())
    }
}
