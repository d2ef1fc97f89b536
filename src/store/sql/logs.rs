//! Job logs: appended in batches by the worker holding the job, read by id ranges. Log ids
//! grow with each line (SQLite's rowid, PostgreSQL's identity column); a job's lines are
//! written by the one worker holding it, one transaction after the other, so within a job ids
//! grow in commit order and a follower's "after this id" cursor never skips a line.
//!
//! Every write of a job's lines goes through `append_lines`, which keeps the log within the
//! cap (`domain::log_budget`) from the accounting stored with the job (its row is locked by
//! the write that checked the job is held): past the cap, the oldest lines of the log's tail
//! are deleted as new ones come and the first line dropped is rewritten into the marker. Ids
//! never come back (SQLite's AUTOINCREMENT, PostgreSQL's identity), so cursors stay right; a
//! follower that already read a line deleted or rewritten since keeps what it read.

use super::{Conn, Db, Stmt, Value, params};
use crate::domain::log_budget::{
    self, LINE_OVERHEAD, LogAccount, LogCap, MARKER_LEVEL, MARKER_SOURCE, Marker, StoredLine,
    StoredLines, cost,
};
use crate::events::Topic;
use crate::model::Time;
use crate::store::{LeaseState, LogBatch, LogRow, LogStore, NewLog, StoreError, StoreResult};

/// A job's lines after id `?2` and before `?3`, at most `?4`.
pub const LOGS_AFTER: &str = "SELECT id, created_at, source, level, stage, output \
     FROM provisioner_job_logs WHERE job_id = ?1 AND id > ?2 AND id < ?3 ORDER BY id LIMIT ?4";

/// Moves the heartbeat of job `?1` to `?3` while worker `?2` holds it: whether a cancel was
/// requested, no row when the worker lost the job.
pub const RENEW_LEASE: &str = "UPDATE provisioner_jobs SET updated_at = ?3 \
     WHERE id = ?1 AND worker_id = ?2 AND completed_at IS NULL \
     RETURNING canceled_at IS NOT NULL";

/// What a worker learns from the answer of `RENEW_LEASE` (or the same read): `None` when it
/// no longer holds the job, else whether a cancel was requested.
pub fn lease(canceled: Option<bool>) -> LeaseState {
    match canceled {
        None => LeaseState::Lost,
        Some(true) => LeaseState::CancelRequested,
        Some(false) => LeaseState::Held,
    }
}

/// Up to `?2` log lines of the builds whose job ended before `?1`, except each workspace's
/// latest build (along `provisioner_job_logs_job` and the builds' unique workspace and number).
const PURGE_BUILD_LOGS: &str = "DELETE FROM provisioner_job_logs WHERE id IN (\
     SELECT l.id FROM workspace_builds b \
     JOIN provisioner_jobs j ON j.id = b.job_id \
     JOIN provisioner_job_logs l ON l.job_id = b.job_id \
     WHERE j.completed_at < ?1 \
     AND b.build_number < (SELECT max(b2.build_number) FROM workspace_builds b2 \
     WHERE b2.workspace_id = b.workspace_id) \
     LIMIT ?2)";

const INSERT_LOG: &str = "INSERT INTO provisioner_job_logs \
     (job_id, created_at, source, level, stage, output) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// A job's log accounting (`domain::log_budget::LogAccount`).
pub const ACCOUNT: &str = "SELECT logs_length, logs_overflowed, logs_marker_id, logs_tail_length, \
     logs_dropped_lines, logs_dropped_bytes FROM provisioner_jobs WHERE id = ?1";
const SET_ACCOUNT: &str = "UPDATE provisioner_jobs SET logs_length = ?2, logs_overflowed = ?3, \
     logs_marker_id = ?4, logs_tail_length = ?5, logs_dropped_lines = ?6, logs_dropped_bytes = ?7 \
     WHERE id = ?1";

/// The first line of job `?1` at which its lines from the first (it included) cost more than
/// `?2`: its id, its output's length, and what the lines up to it cost. (Read once a job's
/// log overflows, over at most the cap's worth of lines.)
pub static FIRST_PAST: Stmt = Stmt::new(|_| {
    format!(
        "SELECT id, len, run FROM (SELECT id, CAST(octet_length(output) AS BIGINT) AS len, \
         CAST(SUM(octet_length(output) + {LINE_OVERHEAD}) OVER (ORDER BY id) AS BIGINT) AS run \
         FROM provisioner_job_logs WHERE job_id = ?1) AS l WHERE run > ?2 ORDER BY id LIMIT 1"
    )
});
/// Up to `?3` lines of job `?1` after line `?2`: their ids and lengths.
pub const LINES_AFTER: &str = "SELECT id, CAST(octet_length(output) AS BIGINT) \
     FROM provisioner_job_logs WHERE job_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
const DELETE_LINES: &str =
    "DELETE FROM provisioner_job_logs WHERE job_id = ?1 AND id > ?2 AND id <= ?3";
/// Line `?1` becomes the marker, or the marker's count changes.
const SET_MARKER: &str =
    "UPDATE provisioner_job_logs SET source = ?2, level = ?3, output = ?4 WHERE id = ?1";
const INSERT_MARKER: &str = "INSERT INTO provisioner_job_logs \
     (job_id, created_at, source, level, stage, output) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
     RETURNING id";

fn insert_log(c: &mut dyn Conn, job_id: &str, l: &NewLog, output: &str) -> StoreResult<()> {
    c.execute(
        INSERT_LOG,
        params![job_id, l.created_at, l.source, l.level, l.stage, output],
    )?;
    Ok(())
}

/// Inserts `lines` in their order, each output cut to the cap's longest line.
fn insert_lines(c: &mut dyn Conn, job_id: &str, lines: &[NewLog], cap: LogCap) -> StoreResult<()> {
    if lines.is_empty() {
        return Ok(());
    }
    match c.dialect().insert_log_lines {
        // The lines in one statement, from one array per column (`?2`..`?6`).
        Some(sql) => {
            let times: Vec<i64> = lines.iter().map(|l| l.created_at.0).collect();
            let sources: Vec<&str> = lines.iter().map(|l| l.source).collect();
            let levels: Vec<&str> = lines.iter().map(|l| l.level.as_str()).collect();
            let stages: Vec<&str> = lines.iter().map(|l| l.stage.as_str()).collect();
            let outputs: Vec<&str> = lines.iter().map(|l| cap.kept(&l.output)).collect();
            c.execute(
                sql,
                params![
                    job_id,
                    Value::Ints(&times),
                    Value::Texts(&sources),
                    Value::Texts(&levels),
                    Value::Texts(&stages),
                    Value::Texts(&outputs),
                ],
            )?;
        }
        None => {
            for l in lines {
                insert_log(c, job_id, l, cap.kept(&l.output))?;
            }
        }
    }
    Ok(())
}

/// What the cap reads of job `.1`'s stored lines, in the caller's transaction.
struct Stored<'a, 'c>(&'a mut (dyn Conn + 'c), &'a str);

impl StoredLines for Stored<'_, '_> {
    type Error = StoreError;

    fn first_past(&mut self, limit: i64) -> StoreResult<Option<(StoredLine, i64)>> {
        self.0.query_opt(&FIRST_PAST, params![self.1, limit], |r| {
            let line = StoredLine {
                id: r.get(0)?,
                len: r.get(1)?,
            };
            let run: i64 = r.get(2)?;
            Ok((line, run - cost(line.len)))
        })
    }

    fn after(&mut self, id: i64, n: i64) -> StoreResult<Vec<StoredLine>> {
        self.0.query(LINES_AFTER, params![self.1, id, n], |r| {
            Ok(StoredLine {
                id: r.get(0)?,
                len: r.get(1)?,
            })
        })
    }
}

/// Appends lines to a job's log inside the caller's transaction, for a job the caller has
/// checked is still held (and locked, on PostgreSQL, by its write of the job's row), under
/// the cap (`domain::log_budget`): the head, the marker and the tail of a log that overflows,
/// and the job's accounting. Counts the lines written and dropped.
pub fn append_lines(
    c: &mut dyn Conn,
    job_id: &str,
    lines: &[NewLog],
    cap: LogCap,
) -> StoreResult<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let account = c.query_one(ACCOUNT, params![job_id], |r| {
        Ok(LogAccount {
            length: r.get(0)?,
            overflowed: r.get(1)?,
            marker_id: r.get(2)?,
            tail_length: r.get(3)?,
            dropped_lines: r.get(4)?,
            dropped_bytes: r.get(5)?,
        })
    })?;
    let lens: Vec<i64> = lines
        .iter()
        .map(|l| cap.kept(&l.output).len() as i64)
        .collect();
    let plan = log_budget::plan(cap, account, &lens, &mut Stored(c, job_id))?;
    insert_lines(c, job_id, &lines[..plan.head], cap)?;
    let mut account = plan.account;
    match plan.marker {
        None => {}
        Some(Marker::Rewrite(id) | Marker::Update(id)) => {
            c.execute(
                SET_MARKER,
                params![id, MARKER_SOURCE, MARKER_LEVEL, plan.marker_text],
            )?;
        }
        Some(Marker::Insert(i)) => {
            let l = &lines[i];
            let id: i64 = c.query_one(
                INSERT_MARKER,
                params![
                    job_id,
                    l.created_at,
                    MARKER_SOURCE,
                    MARKER_LEVEL,
                    l.stage,
                    plan.marker_text
                ],
                |r| r.get(0),
            )?;
            account.marker_id = Some(id);
        }
    }
    insert_lines(c, job_id, &lines[plan.tail_from..], cap)?;
    if let Some((after, through)) = plan.delete {
        c.execute(DELETE_LINES, params![job_id, after, through])?;
    }
    c.execute(
        SET_ACCOUNT,
        params![
            job_id,
            account.length,
            account.overflowed,
            account.marker_id,
            account.tail_length,
            account.dropped_lines,
            account.dropped_bytes
        ],
    )?;
    crate::metrics::global().log_lines(plan.written as u64, plan.dropped as u64);
    Ok(())
}

impl<D: Db> LogStore for D {
    fn append_logs(
        &self,
        job_id: &str,
        worker_id: &str,
        batch: &LogBatch,
    ) -> StoreResult<LeaseState> {
        self.write(
            |c| {
                // The heartbeat moves only while the worker holds the job; otherwise nothing
                // is written.
                let canceled =
                    c.query_opt(RENEW_LEASE, params![job_id, worker_id, Time::now()], |r| {
                        r.get(0)
                    })?;
                let lease = lease(canceled);
                if lease != LeaseState::Lost {
                    append_lines(c, job_id, &batch.lines, self.log_cap().get())?;
                }
                Ok(lease)
            },
            |lease| match lease {
                LeaseState::Lost => vec![],
                _ => vec![Topic::Logs(job_id.into())],
            },
        )
    }

    fn logs(
        &self,
        job_id: &str,
        after: i64,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<LogRow>> {
        self.read(|c| {
            c.query(
                LOGS_AFTER,
                params![job_id, after, before.unwrap_or(i64::MAX), limit],
                |r| {
                    Ok(LogRow {
                        id: r.get(0)?,
                        created_at: r.get(1)?,
                        source: r.get(2)?,
                        level: r.get(3)?,
                        stage: r.get(4)?,
                        output: r.get(5)?,
                    })
                },
            )
        })
    }

    fn set_log_cap(&self, cap: LogCap) {
        self.log_cap().set(cap);
    }

    fn release_memory(&self) {
        self.release_page_caches();
    }

    fn purge_build_logs(&self, ended_before: Time, limit: i64) -> StoreResult<u64> {
        self.write(
            |c| c.execute(PURGE_BUILD_LOGS, params![ended_before, limit]),
            |_| vec![],
        )
    }
}
