//! A template version import job: read and validate the archive's kiln.json.
//!
//! The check is a pure function of the archive (`check`), so the server makes it itself even
//! when a provisioner daemon ran the import: what a daemon reports can fail an import, never
//! choose the manifest or README that later builds use (`api/provisionerd.rs`).

use super::archive;
use super::logwriter::{LogWriter, SOURCE_DAEMON, SOURCE_PROVISIONER};
use super::queue::JobQueue;
use crate::model::Time;
use crate::store::{ImportOutcome, JobRow, LogBatch, NewLog, StoreResult};

/// One line of an import's log: a stage's marker, or an info line in the current stage.
enum Line {
    Stage(&'static str),
    Info(String),
}

/// What an import finds in an archive: its outcome, and the log lines that say so.
pub struct Checked {
    pub outcome: ImportOutcome,
    lines: Vec<Line>,
}

/// Reads and validates the archive's kiln.json.
pub fn check(archive_bytes: &[u8]) -> Checked {
    let mut lines = vec![
        Line::Stage("Setting up"),
        Line::Stage("Parsing template parameters"),
    ];
    let outcome = match archive::read_manifest(archive_bytes) {
        Ok((manifest, readme)) => {
            lines.push(Line::Info(format!(
                "kiln.json is valid: {} parameter(s), {} resource(s), steps: start {}, stop {}, delete {}",
                manifest.parameters.len(),
                manifest.resources.len(),
                manifest.steps.start.len(),
                manifest.steps.stop.len(),
                manifest.steps.delete.len()
            )));
            lines.push(Line::Stage("Cleaning Up"));
            ImportOutcome::Valid {
                manifest: serde_json::to_string(&manifest).expect("manifest serializes"),
                readme,
            }
        }
        // Fails the job: the error goes to job.error and, as an error line, to its logs.
        Err(error) => ImportOutcome::Invalid(format!("The template is not valid: {error}")),
    };
    Checked { outcome, lines }
}

impl Checked {
    /// The lines as one batch for a job's log that holds `logs_length` bytes so far, as a
    /// worker's `LogWriter` writes them: a stage opens with an empty line of the daemon.
    pub fn batch(&self, logs_length: i64, overflowed: bool) -> LogBatch {
        let mut stage = "";
        let mut length = logs_length;
        let lines = self
            .lines
            .iter()
            .map(|line| {
                let (source, output) = match line {
                    Line::Stage(name) => {
                        stage = name;
                        (SOURCE_DAEMON, String::new())
                    }
                    Line::Info(text) => (SOURCE_PROVISIONER, text.clone()),
                };
                length += output.len() as i64;
                NewLog {
                    created_at: Time::now(),
                    source,
                    level: "info".to_string(),
                    stage: stage.to_string(),
                    output,
                }
            })
            .collect();
        LogBatch {
            lines,
            length,
            overflowed,
        }
    }
}

pub fn run(
    queue: &dyn JobQueue,
    job: &JobRow,
    worker_id: &str,
    archive_bytes: &[u8],
    mut log: LogWriter,
) -> StoreResult<()> {
    let checked = check(archive_bytes);
    for line in &checked.lines {
        match line {
            Line::Stage(name) => log.stage(name)?,
            Line::Info(text) => log.line(SOURCE_PROVISIONER, "info", text.clone())?,
        }
    }
    // The last lines are written with the job's end, in one transaction.
    queue.complete_import(&job.id, worker_id, &checked.outcome, &log.take())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_has_the_lines_a_worker_writes() {
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
        let batch = checked.batch(10, false);
        let stages: Vec<_> = batch.lines.iter().map(|l| l.stage.as_str()).collect();
        assert_eq!(
            stages,
            [
                "Setting up",
                "Parsing template parameters",
                "Parsing template parameters",
                "Cleaning Up"
            ]
        );
        assert_eq!(batch.lines[2].source, SOURCE_PROVISIONER);
        assert!(
            batch.lines[2]
                .output
                .starts_with("kiln.json is valid: 0 parameter(s)")
        );
        assert_eq!(batch.length, 10 + batch.lines[2].output.len() as i64);
    }
}
