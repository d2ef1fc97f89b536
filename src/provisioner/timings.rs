//! What a build's job did and when, recorded as it happens: one row per stage (Coder's stage
//! words: `init` for "Setting up", `plan` for "Planning infrastructure", `apply` for the
//! transition's own stage) and one per step (in `apply`). Stored with the job's end and served
//! by `GET /workspacebuilds/{build}/timings`.

use crate::model::Time;
use crate::store::Timing;

/// Coder's timing stage for one of kiln's log stages; `None` for the stages it has no word for
/// ("Cleaning Up", an import's "Parsing template parameters").
pub fn timing_stage(stage: &str) -> Option<&'static str> {
    match stage {
        "Setting up" => Some("init"),
        "Planning infrastructure" => Some("plan"),
        "Starting workspace" | "Stopping workspace" | "Destroying workspace" => Some("apply"),
        _ => None,
    }
}

#[derive(Default)]
pub struct Timings {
    rows: Vec<Timing>,
    open: Option<(usize, Time)>,
}

impl Timings {
    /// A stage begins (and the one before ends) now.
    pub fn stage(&mut self, name: &str) {
        let now = Time::now();
        self.close(now);
        if let Some(stage) = timing_stage(name) {
            self.rows.push(Timing {
                stage: stage.into(),
                source: "kiln".into(),
                action: "stage".into(),
                resource: name.into(),
                started_at: now,
                ended_at: now,
            });
            self.open = Some((self.rows.len() - 1, now));
        }
    }

    /// Step `index` (1-based) of kind `action` ran from `started_at` until now.
    pub fn step(&mut self, index: usize, action: &str, started_at: Time) {
        self.rows.push(Timing {
            stage: "apply".into(),
            source: "kiln".into(),
            action: action.into(),
            resource: format!("step {index}"),
            started_at,
            ended_at: Time::now(),
        });
    }

    fn close(&mut self, now: Time) {
        if let Some((i, _)) = self.open.take() {
            self.rows[i].ended_at = now;
        }
    }

    /// Everything recorded; a stage still open ends now.
    pub fn take(&mut self) -> Vec<Timing> {
        self.close(Time::now());
        std::mem::take(&mut self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_close_in_turn_and_unknown_ones_are_not_rows() {
        let mut t = Timings::default();
        t.stage("Setting up");
        t.stage("Planning infrastructure");
        t.stage("Starting workspace");
        t.step(1, "run", Time::now());
        t.stage("Cleaning Up");
        let rows = t.take();
        let stages: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.stage.as_str(), r.resource.as_str()))
            .collect();
        assert_eq!(
            stages,
            [
                ("init", "Setting up"),
                ("plan", "Planning infrastructure"),
                ("apply", "Starting workspace"),
                ("apply", "step 1")
            ]
        );
        for pair in rows[..3].windows(2) {
            assert!(pair[0].ended_at <= pair[1].started_at);
        }
        assert!(rows.iter().all(|r| r.started_at <= r.ended_at));
    }
}
