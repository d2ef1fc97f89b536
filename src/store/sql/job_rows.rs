//! Job rows: the columns read with a job and reading one from a row. Shared by the queue
//! (`jobs.rs`) and the builds, templates and reads that show jobs.

use super::Row;
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
