//! A template version import job: read and validate the archive's kiln.json.

use super::logwriter::SOURCE_PROVISIONER;
use super::{Engine, archive};
use crate::store::{JobRow, StoreResult};

pub fn run(engine: &Engine, job: &JobRow) -> StoreResult<()> {
    let store = &engine.store;
    let version_id = job.input_id();
    let mut log = engine.log_writer(job);
    log.stage("Setting up")?;
    let archive_bytes = store
        .file(&job.file_id)?
        .map(|f| f.data)
        .unwrap_or_default();
    log.stage("Parsing template parameters")?;
    match archive::read_manifest(&archive_bytes) {
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
            log.flush()?;
            let text = serde_json::to_string(&manifest).expect("manifest serializes");
            store.complete_import(&version_id, &job.id, &text, &readme)?;
        }
        Err(error) => {
            log.flush()?;
            // Fails the job: the error goes to job.error and, as an error line, to its logs.
            store.abandon_job(&job.id, &format!("The template is not valid: {error}"))?;
        }
    }
    engine.bus.publish(&job.id);
    Ok(())
}
