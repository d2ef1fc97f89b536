//! Reads for the status page: the queue, busy workers, recent builds, and a cheap marker that
//! moves whenever any of them may have changed.

use super::job_rows::{JOB_COLUMNS, job_from_row};
use super::{Db, Stmt, params};
use crate::model::overview::{BuildFacts, QueuedJob};
use crate::store::{
    ChangeMarker, JobRow, OverviewStore, QueueRow, StoreError, StoreResult, numbered,
};

/// Every value is the end of an index or a count over the small in-flight index.
pub const CHANGE_MARKER: &str = "SELECT (SELECT max(seq) FROM provisioner_jobs), \
     (SELECT count(*) FROM provisioner_jobs WHERE started_at IS NOT NULL AND completed_at IS NULL), \
     (SELECT max(updated_at) FROM provisioner_jobs), \
     (SELECT max(updated_at) FROM workspace_builds), \
     (SELECT max(updated_at) FROM workspaces)";

pub const BUSY_JOBS: &str = "SELECT count(*) FROM provisioner_jobs \
     WHERE started_at IS NOT NULL AND completed_at IS NULL";

/// The head of the queue along the pending index, oldest first: a row's place is its index
/// in the answer plus one (a window's `ROW_NUMBER()` here numbered the whole queue before the
/// limit, which grew with the queue).
pub const PENDING_QUEUE: &str = "SELECT q.id, q.type, q.created_at, w.name, \
     wb.build_number, tv.name, w.owner_id \
     FROM (SELECT id, type, created_at, seq FROM provisioner_jobs \
           WHERE started_at IS NULL AND completed_at IS NULL AND canceled_at IS NULL \
           ORDER BY seq LIMIT ?1) q \
     LEFT JOIN workspace_builds wb ON wb.job_id = q.id \
     LEFT JOIN workspaces w ON w.id = wb.workspace_id \
     LEFT JOIN template_versions tv ON tv.job_id = q.id \
     ORDER BY q.seq";

/// Builds newest first (of owner `?1`, or everyone's when NULL), read backwards along the
/// `created_at` index, ties in creation order; a page (`?2` rows after `?3`) at a time where
/// the dialect reads pages (`Dialect::recent_builds_paged`).
pub static RECENT_BUILDS: Stmt = Stmt::new(|d| {
    let page = if d.recent_builds_paged {
        " LIMIT ?2 OFFSET ?3"
    } else {
        ""
    };
    format!(
        "SELECT wb.id, wb.workspace_id, w.name, \
         coalesce(o.username, ''), wb.build_number, wb.transition, coalesce(i.username, ''), \
         wb.created_at, j.started_at, j.completed_at, j.canceled_at, j.error \
         FROM workspace_builds wb \
         JOIN workspaces w ON w.id = wb.workspace_id \
         JOIN provisioner_jobs j ON j.id = wb.job_id \
         LEFT JOIN users o ON o.id = w.owner_id \
         LEFT JOIN users i ON i.id = wb.initiator_id \
         WHERE {} IS NULL OR w.owner_id = ?1 \
         ORDER BY wb.created_at DESC, {} DESC{page}",
        (d.cast)("?1", "text"),
        d.recent_builds_tie,
    )
});

static RECENT_JOBS: Stmt = Stmt::new(|_| {
    format!(
        "SELECT {JOB_COLUMNS} FROM provisioner_jobs j WHERE j.organization_id = ?1 \
         ORDER BY j.seq DESC"
    )
});

impl<D: Db> OverviewStore for D {
    fn database_reachable(&self) -> bool {
        self.reachable()
    }

    fn database_size(&self) -> StoreResult<i64> {
        self.read(|c| {
            let sql = c.dialect().database_size;
            c.query_one(sql, &[], |r| r.get(0))
        })
    }

    fn overview_change_marker(&self) -> StoreResult<ChangeMarker> {
        self.read(|c| {
            c.query_one(CHANGE_MARKER, &[], |r| {
                Ok(ChangeMarker {
                    last_job: r.get(0)?,
                    jobs_running: r.get(1)?,
                    jobs_updated_at: r.get(2)?,
                    builds_updated_at: r.get(3)?,
                    workspaces_updated_at: r.get(4)?,
                })
            })
        })
    }

    fn busy_job_count(&self) -> StoreResult<i64> {
        self.read(|c| c.query_one(BUSY_JOBS, &[], |r| r.get(0)))
    }

    fn pending_queue(&self, limit: i64) -> StoreResult<Vec<QueueRow>> {
        let rows = self.read(|c| {
            c.query(PENDING_QUEUE, params![limit], |r| {
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
            })
        })?;
        Ok(numbered(rows))
    }

    fn scan_recent_builds(
        &self,
        owner_id: Option<&str>,
        visit: &mut dyn FnMut(BuildFacts) -> bool,
    ) -> StoreResult<()> {
        let mut visited = false;
        self.read(|c| {
            again_unless_visited(visited)?;
            let paged = c.dialect().recent_builds_paged;
            // Pages grow as the caller goes on: a status page reads the first.
            let (mut limit, mut offset) = (64_i64, 0_i64);
            loop {
                let (mut seen, mut more) = (0_i64, true);
                let page = params![owner_id, limit, offset];
                let params = if paged { page } else { &page[..1] };
                c.scan(&RECENT_BUILDS, params, |r| {
                    seen += 1;
                    visited = true;
                    more = visit(BuildFacts {
                        id: r.get(0)?,
                        workspace_id: r.get(1)?,
                        workspace_name: r.get(2)?,
                        owner_name: r.get(3)?,
                        build_number: r.get(4)?,
                        transition: r.get(5)?,
                        initiator_name: r.get(6)?,
                        created_at: r.get(7)?,
                        job_started_at: r.get(8)?,
                        job_completed_at: r.get(9)?,
                        job_canceled_at: r.get(10)?,
                        job_error: r.get(11)?,
                    });
                    Ok(more)
                })?;
                if !paged || !more || seen < limit {
                    return Ok(());
                }
                offset += seen;
                limit = (limit * 4).min(4096);
            }
        })
    }

    fn scan_recent_jobs(
        &self,
        organization_id: &str,
        visit: &mut dyn FnMut(JobRow) -> bool,
    ) -> StoreResult<()> {
        let mut visited = false;
        self.read(|c| {
            again_unless_visited(visited)?;
            c.scan(&RECENT_JOBS, params![organization_id], |r| {
                visited = true;
                Ok(visit(job_from_row(r, 0)?))
            })
        })
    }
}

/// A scan whose connection was lost may run again (`Db::read`) only if its visitor saw no row
/// yet: otherwise it would see rows twice.
fn again_unless_visited(visited: bool) -> StoreResult<()> {
    match visited {
        true => Err(StoreError::Unavailable(
            "the database connection was lost in the middle of a scan".into(),
        )),
        false => Ok(()),
    }
}
