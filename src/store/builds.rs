//! Workspace builds, their parameters, resources and state.

use super::{JobRow, StoreResult};
use crate::domain::lifecycle::LatestBuild;
use crate::model::{Time, Transition, WorkspaceResource};

/// A build joined with the names a response needs.
#[derive(Clone, Debug)]
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

    /// Resources a job produced, by name (agents without their status, which depends on when
    /// they are read).
    fn resources(&self, job_id: &str) -> StoreResult<Vec<WorkspaceResource>>;
}
