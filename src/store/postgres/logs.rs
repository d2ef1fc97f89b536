//! Until the job ends move to `store::sql`: the shared log writes on a transaction.

use super::pool::Tx;
use crate::model::Time;
use crate::store::{LogBatch, StoreResult};

pub(super) fn insert_log(
    tx: &mut Tx,
    job_id: &str,
    at: Time,
    source: &str,
    level: &str,
    stage: &str,
    output: &str,
) -> StoreResult<()> {
    crate::store::sql::logs::insert_log(tx, job_id, at, source, level, stage, output)
}

pub(super) fn append_lines(tx: &mut Tx, job_id: &str, batch: &LogBatch) -> StoreResult<()> {
    crate::store::sql::logs::append_lines(tx, job_id, batch)
}
