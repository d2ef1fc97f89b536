//! A template version import job: read and validate the archive's kiln.json.
//!
//! The check is a pure function of the archive (`check`), so the server makes it itself even
//! when a provisioner daemon ran the import: what a daemon reports can fail an import, never
//! choose the manifest or README that later builds use (`api/provisioners/protocol.rs`).

use super::archive;
use super::checked_log::CheckedLog;
use super::logwriter::LogWriter;
use super::queue::JobQueue;
use crate::store::{ImportOutcome, JobRow, StoreResult};

/// What an import finds in an archive: its outcome, and the log lines that say so.
pub struct Checked {
    pub outcome: ImportOutcome,
    pub log: CheckedLog,
}

/// Reads and validates the archive's kiln.json.
pub fn check(archive_bytes: &[u8]) -> Checked {
    let mut log = CheckedLog::default();
    log.stage("Setting up");
    log.stage("Parsing template parameters");
    let outcome = match archive::read_manifest(archive_bytes) {
        Ok((manifest, readme)) => {
            log.info(format!(
                "kiln.json is valid: {} parameter(s), {} resource(s), steps: start {}, stop {}, delete {}",
                manifest.parameters.len(),
                manifest.resources.len(),
                manifest.steps.start.len(),
                manifest.steps.stop.len(),
                manifest.steps.delete.len()
            ));
            log.stage("Cleaning Up");
            ImportOutcome::Valid {
                manifest: serde_json::to_string(&manifest).expect("manifest serializes"),
                readme,
            }
        }
        // Fails the job: the error goes to job.error and, as an error line, to its logs.
        Err(error) => ImportOutcome::Invalid(format!("The template is not valid: {error}")),
    };
    Checked { outcome, log }
}

pub fn run(
    queue: &dyn JobQueue,
    job: &JobRow,
    worker_id: &str,
    archive_bytes: &[u8],
    mut log: LogWriter,
) -> StoreResult<()> {
    let checked = check(archive_bytes);
    checked.log.write(&mut log)?;
    // The last lines are written with the job's end, in one transaction.
    queue.complete_import(&job.id, worker_id, &checked.outcome, &log.take())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_archive_is_checked_with_its_counts() {
        let manifest = br#"{"resources": [], "steps": {"start": [{"run": "true"}]}}"#;
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(manifest.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, "kiln.json", &manifest[..])
            .unwrap();
        let checked = check(&tar.into_inner().unwrap());
        assert!(
            matches!(checked.outcome, ImportOutcome::Valid { .. }),
            "{:?}",
            checked.outcome.parts().0
        );
        let batch = checked.log.batch(0, false);
        assert!(
            batch.lines[2]
                .output
                .starts_with("kiln.json is valid: 0 parameter(s)"),
            "{:?}",
            batch.lines
        );
        assert_eq!(batch.lines.last().unwrap().stage, "Cleaning Up");
    }
}
