//! Workspace builds, their parameters, resources and state.

use super::error::StoreResult;
use super::jobs::{JobRow, Timing};
use crate::domain::lifecycle::LatestBuild;
use crate::model::{Time, Transition, WorkspaceResource};

/// A build joined with the names a response needs.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BuildRow {
    pub id: String,
    pub workspace_id: String,
    pub template_version_id: String,
    pub build_number: i64,
    pub transition: Transition,
    pub initiator_id: String,
    pub reason: String,
    pub orphan: bool,
    pub deadline: Option<Time>,
    pub max_deadline: Option<Time>,
    pub daily_cost: i64,
    pub created_at: Time,
    pub updated_at: Time,
    pub workspace_name: String,
    pub workspace_owner_id: String,
    pub workspace_owner_name: String,
    pub workspace_owner_avatar_url: String,
    pub workspace_deleted: bool,
    pub template_id: String,
    pub template_name: String,
    pub template_display_name: String,
    pub template_icon: String,
    pub template_allow_user_cancel: bool,
    pub template_version_name: String,
    pub initiator_name: String,
    pub job: JobRow,
}

impl BuildRow {
    /// What the schedule decisions (`domain::lifecycle`) read of a latest build.
    pub fn schedule_facts(&self) -> LatestBuild {
        LatestBuild {
            transition: self.transition,
            job: self.job.status(),
            completed_at: self.job.completed_at,
            created_at: self.created_at,
            deadline: self.deadline,
            max_deadline: self.max_deadline,
        }
    }
}

pub struct NewBuild<'a> {
    pub id: &'a str,
    pub job_id: &'a str,
    pub workspace_id: &'a str,
    pub organization_id: &'a str,
    pub template_version_id: &'a str,
    pub file_id: &'a str,
    pub transition: Transition,
    pub initiator_id: &'a str,
    pub reason: &'a str,
    pub orphan: bool,
    /// The state the build starts from; `None` carries the previous build's.
    pub state: Option<&'a [u8]>,
    pub parameters: &'a [(String, String)],
    pub log_level: &'a str,
    /// The latest build number the caller based its checks on (`None`: no build yet).
    pub previous_number: Option<i64>,
    /// A build to queue when this one succeeds, in the same transaction as its completion.
    pub on_success: Option<&'a FollowUp>,
}

/// The build a stop queues when it succeeds (Coder's restart), prepared when the stop is
/// queued. The rest (workspace, version, initiator) is the stop's.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FollowUp {
    pub id: String,
    pub job_id: String,
    pub transition: Transition,
    pub parameters: Vec<(String, String)>,
    pub reason: String,
    pub log_level: String,
}

/// The facts of the stop that a follow-up build takes over.
pub struct StopFacts {
    pub workspace_id: String,
    pub template_version_id: String,
    pub build_number: i64,
    pub initiator_id: String,
    pub organization_id: String,
    pub file_id: String,
}

impl FollowUp {
    /// The build to insert after `stop`: same workspace, version and initiator, numbered after
    /// it, starting from its state.
    pub fn new_build<'a>(&'a self, stop: &'a StopFacts) -> NewBuild<'a> {
        NewBuild {
            id: &self.id,
            job_id: &self.job_id,
            workspace_id: &stop.workspace_id,
            organization_id: &stop.organization_id,
            template_version_id: &stop.template_version_id,
            file_id: &stop.file_id,
            transition: self.transition,
            initiator_id: &stop.initiator_id,
            reason: &self.reason,
            orphan: false,
            state: None,
            parameters: &self.parameters,
            log_level: &self.log_level,
            previous_number: Some(stop.build_number),
            on_success: None,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum CreateBuildOutcome {
    Created {
        build_number: i64,
    },
    /// The latest build is active, or another build was created since the caller looked.
    ActiveBuild,
}

pub trait BuildStore {
    /// Queues a build and its job, numbered after the latest build (`domain::builds::
    /// next_build_number`), and wakes a worker.
    fn create_build(&self, b: &NewBuild) -> StoreResult<CreateBuildOutcome>;

    fn build(&self, id: &str) -> StoreResult<Option<BuildRow>>;

    fn build_by_job(&self, job_id: &str) -> StoreResult<Option<BuildRow>>;

    fn build_by_number(&self, workspace_id: &str, number: i64) -> StoreResult<Option<BuildRow>>;

    fn latest_build(&self, workspace_id: &str) -> StoreResult<Option<BuildRow>>;

    /// The latest build of each of `workspace_ids` that has one, in no order: one read for a
    /// page of workspaces.
    fn latest_builds(&self, workspace_ids: &[&str]) -> StoreResult<Vec<BuildRow>>;

    /// Builds of a workspace, newest first: numbers above `after_number`, created after
    /// `since`, then `offset` and `limit` (0 = no limit).
    fn builds(
        &self,
        workspace_id: &str,
        after_number: Option<i64>,
        since: Option<Time>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<BuildRow>>;

    /// The state the build holds: what it started from, or what it produced once succeeded.
    /// `NotFound` for an unknown build.
    fn build_state(&self, build_id: &str) -> StoreResult<Vec<u8>>;

    fn set_build_state(&self, build_id: &str, state: &[u8]) -> StoreResult<()>;

    /// The resolved parameter values stored with a build, in template order.
    fn build_parameters(&self, build_id: &str) -> StoreResult<Vec<(String, String)>>;

    /// What a build's job did and when, in order (empty until it ended).
    fn timings(&self, job_id: &str) -> StoreResult<Vec<Timing>>;

    /// Resources a job produced, by name (agents without their status, which depends on when
    /// they are read).
    fn resources(&self, job_id: &str) -> StoreResult<Vec<WorkspaceResource>> {
        self.resources_of(&[job_id])
    }

    /// The resources of each of `job_ids`: grouped by job (in no order of jobs), by name
    /// within a job. One read for a page of builds.
    fn resources_of(&self, job_ids: &[&str]) -> StoreResult<Vec<WorkspaceResource>>;

    /// Removes up to `limit` completed builds older than each workspace's `keep` newest (at
    /// least the latest, which holds the workspace's state), oldest first, with their jobs,
    /// log lines, timings, resources and parameters, in one transaction. Returns how many.
    fn purge_old_builds(&self, keep: i64, limit: i64) -> StoreResult<u64>;
}
