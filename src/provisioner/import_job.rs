//! A template version import job: read and validate the archive's kiln.json.

use super::archive;
use super::logwriter::{LogWriter, SOURCE_PROVISIONER};
use super::queue::JobQueue;
use crate::store::{ImportOutcome, JobRow, StoreResult};

pub fn run(
    queue: &dyn JobQueue,
    job: &JobRow,
    worker_id: &str,
    archive_bytes: &[u8],
    mut log: LogWriter,
) -> StoreResult<()> {
    log.stage("Setting up")?;
    log.stage("Parsing template parameters")?;
    let outcome = match archive::read_manifest(archive_bytes) {
        Ok((manifest, readme)) => {
            log.line(
                SOURCE_PROVISIONER,
                "info",
                format!(
                    "kiln.json is valid: {} parameter(s), {} resource(s), steps: start {}, stop {}, delete {}",
                    manifest.parameters.len(),
                    manifest.resources.len(),
                    manifest.steps.start.len(),
                    manifest.steps.stop.len(),
                    manifest.steps.delete.len()
                ),
            )?;
            log.stage("Cleaning Up")?;
            ImportOutcome::Valid {
                manifest: serde_json::to_string(&manifest).expect("manifest serializes"),
                readme,
            }
        }
        // Fails the job: the error goes to job.error and, as an error line, to its logs.
        Err(error) => ImportOutcome::Invalid(format!("The template is not valid: {error}")),
    };
    // The last lines are written with the job's end, in one transaction.
    queue.complete_import(&job.id, worker_id, &outcome, &log.take())
}
