//! The status words of jobs and builds, derived in one place from stored facts (spec section 3).

use super::time::Time;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Succeeded,
    Canceling,
    Canceled,
    Failed,
}

impl JobStatus {
    /// The status of a job from its timestamps and error.
    pub fn derive(
        started_at: Option<Time>,
        completed_at: Option<Time>,
        canceled_at: Option<Time>,
        error: &str,
    ) -> JobStatus {
        match (
            completed_at.is_some(),
            !error.is_empty(),
            canceled_at.is_some(),
        ) {
            (_, true, _) => JobStatus::Failed,
            (true, false, true) => JobStatus::Canceled,
            (true, false, false) => JobStatus::Succeeded,
            (false, false, true) => JobStatus::Canceling,
            (false, false, false) if started_at.is_none() => JobStatus::Pending,
            (false, false, false) => JobStatus::Running,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Canceling => "canceling",
            JobStatus::Canceled => "canceled",
            JobStatus::Failed => "failed",
        }
    }

    /// Pending, running or canceling: the job still holds its workspace.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobStatus::Pending | JobStatus::Running | JobStatus::Canceling
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    Start,
    Stop,
    Delete,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Start => "start",
            Transition::Stop => "stop",
            Transition::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Transition> {
        match s {
            "start" => Some(Transition::Start),
            "stop" => Some(Transition::Stop),
            "delete" => Some(Transition::Delete),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildStatus {
    Pending,
    Starting,
    Running,
    Stopping,
    Stopped,
    Failed,
    Canceling,
    Canceled,
    Deleting,
    Deleted,
}

impl BuildStatus {
    pub const ALL: [BuildStatus; 10] = [
        BuildStatus::Pending,
        BuildStatus::Starting,
        BuildStatus::Running,
        BuildStatus::Stopping,
        BuildStatus::Stopped,
        BuildStatus::Failed,
        BuildStatus::Canceling,
        BuildStatus::Canceled,
        BuildStatus::Deleting,
        BuildStatus::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Pending => "pending",
            BuildStatus::Starting => "starting",
            BuildStatus::Running => "running",
            BuildStatus::Stopping => "stopping",
            BuildStatus::Stopped => "stopped",
            BuildStatus::Failed => "failed",
            BuildStatus::Canceling => "canceling",
            BuildStatus::Canceled => "canceled",
            BuildStatus::Deleting => "deleting",
            BuildStatus::Deleted => "deleted",
        }
    }

    pub fn parse(word: &str) -> Option<BuildStatus> {
        BuildStatus::ALL.into_iter().find(|s| s.as_str() == word)
    }

    /// The status of a build from its job's status and its transition.
    pub fn derive(job: JobStatus, transition: Transition) -> BuildStatus {
        use Transition::*;
        match (job, transition) {
            (JobStatus::Pending, _) => BuildStatus::Pending,
            (JobStatus::Running, Start) => BuildStatus::Starting,
            (JobStatus::Running, Stop) => BuildStatus::Stopping,
            (JobStatus::Running, Delete) => BuildStatus::Deleting,
            (JobStatus::Succeeded, Start) => BuildStatus::Running,
            (JobStatus::Succeeded, Stop) => BuildStatus::Stopped,
            (JobStatus::Succeeded, Delete) => BuildStatus::Deleted,
            (JobStatus::Canceling, _) => BuildStatus::Canceling,
            (JobStatus::Canceled, _) => BuildStatus::Canceled,
            (JobStatus::Failed, _) => BuildStatus::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_status_table_of_the_spec() {
        let t = Some(Time(1));
        let d = JobStatus::derive;
        assert_eq!(d(t, t, None, "boom"), JobStatus::Failed);
        assert_eq!(d(t, t, t, ""), JobStatus::Canceled);
        assert_eq!(d(t, t, None, ""), JobStatus::Succeeded);
        assert_eq!(d(None, None, None, "boom"), JobStatus::Failed);
        assert_eq!(d(t, None, t, ""), JobStatus::Canceling);
        assert_eq!(d(None, None, None, ""), JobStatus::Pending);
        assert_eq!(d(t, None, None, ""), JobStatus::Running);
    }

    #[test]
    fn build_status_words_match_the_json() {
        for s in BuildStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(BuildStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(BuildStatus::parse("Running"), None);
    }

    #[test]
    fn build_status_follows_transition() {
        use BuildStatus as B;
        assert_eq!(B::derive(JobStatus::Running, Transition::Stop), B::Stopping);
        assert_eq!(
            B::derive(JobStatus::Succeeded, Transition::Delete),
            B::Deleted
        );
        assert_eq!(
            B::derive(JobStatus::Canceled, Transition::Start),
            B::Canceled
        );
        assert_eq!(
            B::derive(JobStatus::Pending, Transition::Delete),
            B::Pending
        );
    }
}
