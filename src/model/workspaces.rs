//! Workspaces, in Coder's shapes.

use super::builds::{WorkspaceBuild, WorkspaceBuildParameter};
use super::time::Time;
use serde::{Deserialize, Serialize};

/// codersdk.Workspace
#[derive(Clone, Debug, Serialize)]
pub struct Workspace {
    pub id: String,
    pub created_at: Time,
    pub updated_at: Time,
    pub owner_id: String,
    pub owner_name: String,
    pub owner_avatar_url: String,
    pub organization_id: String,
    pub organization_name: String,
    pub template_id: String,
    pub template_name: String,
    pub template_display_name: String,
    pub template_icon: String,
    pub template_allow_user_cancel_workspace_jobs: bool,
    pub template_active_version_id: String,
    pub template_require_active_version: bool,
    pub template_use_classic_parameter_flow: bool,
    pub latest_build: WorkspaceBuild,
    pub outdated: bool,
    pub name: String,
    pub autostart_schedule: Option<String>,
    pub ttl_ms: Option<i64>,
    pub last_used_at: Time,
    pub deleting_at: Option<Time>,
    pub dormant_at: Option<Time>,
    pub health: WorkspaceHealth,
    pub automatic_updates: String,
    pub allow_renames: bool,
    pub favorite: bool,
    pub next_start_at: Option<Time>,
    pub is_prebuild: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkspaceHealth {
    pub healthy: bool,
    pub failing_agents: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct WorkspacesResponse {
    pub workspaces: Vec<Workspace>,
    pub count: usize,
}

#[derive(Debug, Deserialize)]
pub struct CreateWorkspaceRequest {
    #[serde(default)]
    pub template_id: Option<String>,
    #[serde(default)]
    pub template_version_id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub autostart_schedule: Option<String>,
    #[serde(default)]
    pub ttl_ms: Option<i64>,
    #[serde(default)]
    pub rich_parameter_values: Vec<WorkspaceBuildParameter>,
    #[serde(default)]
    pub automatic_updates: Option<String>,
    #[serde(default)]
    pub template_version_preset_id: Option<String>,
}
