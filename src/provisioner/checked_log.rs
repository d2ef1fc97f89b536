//! The log of a job the server can do itself (an import, a dry run: pure functions of what it
//! stores): its lines, written by a worker through its `LogWriter`, or by the server as one
//! batch when a provisioner daemon reports the job, so a daemon's word never becomes its log.

use super::logwriter::{LogWriter, SOURCE_DAEMON, SOURCE_PROVISIONER};
use crate::model::Time;
use crate::store::{LogBatch, NewLog, StoreResult};

enum Line {
    /// A stage's marker: later lines carry its name.
    Stage(&'static str),
    /// A line of the current stage, at this level.
    Text(&'static str, String),
}

#[derive(Default)]
pub struct CheckedLog(Vec<Line>);

impl CheckedLog {
    pub fn stage(&mut self, name: &'static str) {
        self.0.push(Line::Stage(name));
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.0.push(Line::Text("info", text.into()));
    }

    pub fn warn(&mut self, text: impl Into<String>) {
        self.0.push(Line::Text("warn", text.into()));
    }

    /// Through a worker's log (which keeps its accounting and lease).
    pub fn write(&self, log: &mut LogWriter) -> StoreResult<()> {
        for line in &self.0 {
            match line {
                Line::Stage(name) => log.stage(name)?,
                Line::Text(level, text) => log.line(SOURCE_PROVISIONER, level, text.clone())?,
            }
        }
        Ok(())
    }

    /// As one batch, as a worker's `LogWriter` writes the lines: a stage opens with an empty
    /// line of the daemon. (The job's log accounting its callers pass is the store's now,
    /// which applies the cap as it writes the batch: both are unused.)
    pub fn batch(&self, _logs_length: i64, _overflowed: bool) -> LogBatch {
        let mut stage = "";
        let lines = self
            .0
            .iter()
            .map(|line| {
                let (source, level, output) = match line {
                    Line::Stage(name) => {
                        stage = name;
                        (SOURCE_DAEMON, "info", String::new())
                    }
                    Line::Text(level, text) => (SOURCE_PROVISIONER, *level, text.clone()),
                };
                NewLog {
                    created_at: Time::now(),
                    source,
                    level: level.to_string(),
                    stage: stage.to_string(),
                    output,
                }
            })
            .collect();
        LogBatch { lines }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_has_the_lines_a_worker_writes() {
        let mut log = CheckedLog::default();
        log.stage("Setting up");
        log.stage("Planning infrastructure");
        log.info("one");
        log.warn("two");
        log.stage("Cleaning Up");
        let batch = log.batch(10, false);
        let lines: Vec<_> = batch
            .lines
            .iter()
            .map(|l| {
                (
                    l.source,
                    l.level.as_str(),
                    l.stage.as_str(),
                    l.output.as_str(),
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                (SOURCE_DAEMON, "info", "Setting up", ""),
                (SOURCE_DAEMON, "info", "Planning infrastructure", ""),
                (SOURCE_PROVISIONER, "info", "Planning infrastructure", "one"),
                (SOURCE_PROVISIONER, "warn", "Planning infrastructure", "two"),
                (SOURCE_DAEMON, "info", "Cleaning Up", ""),
            ]
        );
    }
}
