//! kiln's own overview of the server (`GET /api/v2/kiln/overview`, and the `overview` events of
//! `GET /api/v2/kiln/events`): version, uptime, workers, the queue and the recent builds.

use super::status::{BuildStatus, JobStatus, Transition};
use super::time::Time;
use serde::Serialize;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Overview {
    pub version: String,
    pub started_at: Time,
    pub uptime_seconds: i64,
    pub workers: Workers,
    /// The provisioner daemons, built-in workers first (owners and template admins only).
    pub daemons: Vec<DaemonSummary>,
    /// Pending jobs the caller may see among the first `api::status_page::QUEUE_SHOWN` of the
    /// queue, oldest first.
    pub queue: Vec<QueuedJob>,
    /// Pending jobs in all (the queue's length, however many are listed) for a caller who sees
    /// every job; for one who sees only some, how many of them `queue` lists.
    pub queue_size: i64,
    /// Builds the caller may see, newest first.
    pub builds: Vec<BuildSummary>,
    /// The database's size on disk, in bytes (owners and template admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_bytes: Option<i64>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Workers {
    /// Jobs a worker has started and not completed.
    pub busy: i64,
    pub total: usize,
}

/// One provisioner daemon: a built-in worker of a server, or an external daemon.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DaemonSummary {
    pub id: String,
    pub name: String,
    /// `built-in` or `external`.
    pub kind: String,
    pub tags: std::collections::BTreeMap<String, String>,
    /// `idle`, `busy` or `offline`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_job_id: Option<String>,
    pub last_seen_at: Time,
}

impl DaemonSummary {
    /// What the page shows of it, but the time it was last seen (which moves by itself).
    pub fn view(&self) -> (&str, &str, &str, &Option<String>) {
        (&self.id, &self.name, &self.status, &self.current_job_id)
    }
}

/// A pending job. `position` is its 1-based rank among all pending jobs, by creation order.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct QueuedJob {
    pub job_id: String,
    #[serde(rename = "type")]
    pub job_type: String,
    pub position: i64,
    pub created_at: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_number: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_version_name: Option<String>,
}

/// One row of the recent builds list.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BuildSummary {
    pub id: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub owner_name: String,
    pub build_number: i64,
    pub transition: Transition,
    pub status: BuildStatus,
    pub initiator_name: String,
    pub created_at: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// From the job's start to its completion; left out until both are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

/// The stored facts of a build and its job, as the store reads them.
#[derive(Clone, Debug)]
pub struct BuildFacts {
    pub id: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub owner_name: String,
    pub build_number: i64,
    pub transition: Transition,
    pub initiator_name: String,
    pub created_at: Time,
    pub job_started_at: Option<Time>,
    pub job_completed_at: Option<Time>,
    pub job_canceled_at: Option<Time>,
    pub job_error: String,
}

impl BuildFacts {
    /// The build's status word, derived in the one place statuses are derived.
    pub fn status(&self) -> BuildStatus {
        let job = JobStatus::derive(
            self.job_started_at,
            self.job_completed_at,
            self.job_canceled_at,
            &self.job_error,
        );
        BuildStatus::derive(job, self.transition)
    }

    pub fn summary(self) -> BuildSummary {
        let status = self.status();
        let duration_ms = match (self.job_started_at, self.job_completed_at) {
            (Some(start), Some(end)) => Some((end.micros() - start.micros()).max(0) / 1000),
            _ => None,
        };
        BuildSummary {
            id: self.id,
            workspace_id: self.workspace_id,
            workspace_name: self.workspace_name,
            owner_name: self.owner_name,
            build_number: self.build_number,
            transition: self.transition,
            status,
            initiator_name: self.initiator_name,
            created_at: self.created_at,
            started_at: self.job_started_at,
            completed_at: self.job_completed_at,
            duration_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_derives_status_and_duration() {
        let facts = BuildFacts {
            id: "b".into(),
            workspace_id: "w".into(),
            workspace_name: "dev".into(),
            owner_name: "alice".into(),
            build_number: 2,
            transition: Transition::Stop,
            initiator_name: "alice".into(),
            created_at: Time(1_000_000),
            job_started_at: Some(Time(2_000_000)),
            job_completed_at: Some(Time(4_500_000)),
            job_canceled_at: None,
            job_error: String::new(),
        };
        let s = facts.clone().summary();
        assert_eq!(s.status, BuildStatus::Stopped);
        assert_eq!(s.duration_ms, Some(2500));
        let running = BuildFacts {
            job_completed_at: None,
            ..facts
        }
        .summary();
        assert_eq!(running.status, BuildStatus::Stopping);
        assert_eq!(running.duration_ms, None);
    }
}
