//! Until the job ends move to `store::sql`: the shared log writes on the writer's transaction.

use super::Tx;
use super::conn::Lite;
use crate::model::Time;
use crate::store::{LogBatch, StoreResult};

pub(super) fn insert_log(
    tx: &Tx,
    job_id: &str,
    at: Time,
    source: &str,
    level: &str,
    stage: &str,
    output: &str,
) -> StoreResult<()> {
    crate::store::sql::logs::insert_log(&mut Lite(tx), job_id, at, source, level, stage, output)
}

pub(super) fn append_lines(tx: &Tx, job_id: &str, batch: &LogBatch) -> StoreResult<()> {
    crate::store::sql::logs::append_lines(&mut Lite(tx), job_id, batch)
}
