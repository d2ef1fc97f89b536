//! Jobs, logs, builds and resources, in Coder's shapes.

use super::resources::WorkspaceResource;
use super::status::{BuildStatus, JobStatus, Transition};
use super::time::Time;
use serde::Serialize;

/// codersdk.ProvisionerJob. Unset times, worker and error are left out (Go's omitempty).
#[derive(Clone, Debug, Serialize)]
pub struct ProvisionerJob {
    pub id: String,
    pub created_at: Time,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canceled_at: Option<Time>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error_code: String,
    pub file_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    pub status: JobStatus,
    pub tags: serde_json::Value,
    pub queue_position: i64,
    pub queue_size: i64,
    pub organization_id: String,
    pub initiator_id: String,
    pub input: serde_json::Value,
    #[serde(rename = "type")]
    pub kind: String,
    pub metadata: ProvisionerJobMetadata,
    pub logs_overflowed: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ProvisionerJobMetadata {
    pub template_version_name: String,
    pub template_id: String,
    pub template_name: String,
    pub template_display_name: String,
    pub template_icon: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_name: Option<String>,
}

/// codersdk.ProvisionerJobLog
#[derive(Clone, Debug, Serialize)]
pub struct ProvisionerJobLog {
    pub id: i64,
    pub created_at: Time,
    pub log_source: String,
    pub log_level: String,
    pub stage: String,
    pub output: String,
}

/// codersdk.MatchedProvisioners: never null.
#[derive(Clone, Debug, Serialize)]
pub struct MatchedProvisioners {
    pub count: i64,
    pub available: i64,
    pub most_recently_seen: Option<Time>,
}

/// codersdk.WorkspaceBuild
#[derive(Clone, Debug, Serialize)]
pub struct WorkspaceBuild {
    pub id: String,
    pub created_at: Time,
    pub updated_at: Time,
    pub workspace_id: String,
    pub workspace_name: String,
    pub workspace_owner_id: String,
    pub workspace_owner_name: String,
    pub workspace_owner_avatar_url: String,
    pub template_version_id: String,
    pub template_version_name: String,
    pub build_number: i64,
    pub transition: Transition,
    pub initiator_id: String,
    pub initiator_name: String,
    pub job: ProvisionerJob,
    pub reason: String,
    pub resources: Vec<WorkspaceResource>,
    pub deadline: Option<Time>,
    pub max_deadline: Option<Time>,
    pub status: BuildStatus,
    pub daily_cost: i64,
    pub matched_provisioners: MatchedProvisioners,
    pub template_version_preset_id: Option<String>,
}

/// `{"name": ..., "value": ...}`: a parameter value sent with or stored for a build.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkspaceBuildParameter {
    pub name: String,
    pub value: String,
}
