//! Job rows: the columns read with a job and reading one from a row. Shared by the queue
//! (`jobs.rs`) and the builds, templates and reads that show jobs.

use super::{Conn, Row, Stmt, params};
use crate::model::Time;
use crate::store::{JobRow, StoreResult};

pub const JOB_COLUMNS: &str = "j.id, j.seq, j.created_at, j.updated_at, j.started_at, j.completed_at, \
    j.canceled_at, j.error, j.error_code, j.organization_id, j.initiator_id, j.file_id, j.type, \
    j.input, j.worker_id, j.log_level, j.logs_length, j.logs_overflowed, j.tags";

/// Reads a job from `r`, starting at column `at` (so joins can put it anywhere).
pub fn job_from_row(r: &dyn Row, at: usize) -> StoreResult<JobRow> {
    Ok(JobRow {
        id: r.get(at)?,
        seq: r.get(at + 1)?,
        created_at: r.get(at + 2)?,
        updated_at: r.get(at + 3)?,
        started_at: r.get(at + 4)?,
        completed_at: r.get(at + 5)?,
        canceled_at: r.get(at + 6)?,
        error: r.get(at + 7)?,
        error_code: r.get(at + 8)?,
        organization_id: r.get(at + 9)?,
        initiator_id: r.get(at + 10)?,
        file_id: r.get(at + 11)?,
        kind: r.get(at + 12)?,
        input: r.get(at + 13)?,
        worker_id: r.get(at + 14)?,
        log_level: r.get(at + 15)?,
        logs_length: r.get(at + 16)?,
        logs_overflowed: r.get(at + 17)?,
        tags: crate::domain::provisioner_tags::from_json(r.str(at + 18)?),
    })
}

pub struct NewJob<'a> {
    pub id: &'a str,
    pub organization_id: &'a str,
    pub initiator_id: &'a str,
    pub file_id: &'a str,
    pub kind: &'a str,
    pub input: serde_json::Value,
    pub log_level: &'a str,
    /// A build's job takes the tags of its template version's import job.
    pub tags_of_version: Option<&'a str>,
    /// The job's tags (JSON), when not taken from a version.
    pub tags: String,
}

/// A pending job at the end of the queue; its `seq` as the dialect numbers jobs
/// (`Dialect::next_job_seq`).
static INSERT_JOB: Stmt = Stmt::new(|d| {
    let (column, value) = match d.next_job_seq {
        Some(next) => ("seq, ", format!("{next}, ")),
        None => ("", String::new()),
    };
    format!(
        "INSERT INTO provisioner_jobs (id, {column}created_at, updated_at, organization_id, \
         initiator_id, file_id, type, input, log_level, tags) \
         VALUES (?1, {value}?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, \
         coalesce((SELECT vj.tags FROM template_versions v JOIN provisioner_jobs vj ON vj.id = v.job_id \
                   WHERE v.id = ?9), ?10))"
    )
});

/// Inserts a pending job at the end of the queue, inside the caller's transaction.
pub fn insert_job(c: &mut dyn Conn, job: &NewJob, now: Time) -> StoreResult<()> {
    c.execute(
        &INSERT_JOB,
        params![
            job.id,
            now,
            job.organization_id,
            job.initiator_id,
            job.file_id,
            job.kind,
            job.input.to_string(),
            job.log_level,
            job.tags_of_version,
            job.tags
        ],
    )?;
    Ok(())
}
