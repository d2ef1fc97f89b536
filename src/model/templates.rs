//! Templates and template versions, in Coder's shapes.

use super::builds::{MatchedProvisioners, ProvisionerJob};
use super::time::Time;
use super::users::MinimalUser;
use serde::{Deserialize, Serialize};

/// codersdk.TemplateVersion
#[derive(Clone, Debug, Serialize)]
pub struct TemplateVersion {
    pub id: String,
    pub template_id: Option<String>,
    pub organization_id: String,
    pub created_at: Time,
    pub updated_at: Time,
    pub name: String,
    pub message: String,
    pub job: ProvisionerJob,
    pub readme: String,
    pub created_by: MinimalUser,
    pub archived: bool,
    pub warnings: Vec<String>,
    pub matched_provisioners: MatchedProvisioners,
    pub has_external_agent: bool,
}

/// codersdk.Template (the fields kiln keeps; the rest carry Coder's defaults).
#[derive(Clone, Debug, Serialize)]
pub struct Template {
    pub id: String,
    pub created_at: Time,
    pub updated_at: Time,
    pub organization_id: String,
    pub organization_name: String,
    pub organization_display_name: String,
    pub organization_icon: String,
    pub name: String,
    pub display_name: String,
    pub provisioner: String,
    pub active_version_id: String,
    pub active_user_count: i64,
    pub build_time_stats: serde_json::Value,
    pub description: String,
    pub deprecated: bool,
    pub deprecation_message: String,
    pub icon: String,
    pub default_ttl_ms: i64,
    pub activity_bump_ms: i64,
    pub autostop_requirement: serde_json::Value,
    pub autostart_requirement: serde_json::Value,
    pub created_by_id: String,
    pub created_by_name: String,
    pub allow_user_autostart: bool,
    pub allow_user_autostop: bool,
    pub allow_user_cancel_workspace_jobs: bool,
    pub failure_ttl_ms: i64,
    pub time_til_dormant_ms: i64,
    pub time_til_dormant_autodelete_ms: i64,
    pub require_active_version: bool,
    pub max_port_share_level: String,
    pub cors_behavior: String,
    pub use_classic_parameter_flow: bool,
}

/// codersdk.TemplateVersionParameter
#[derive(Clone, Debug, Serialize)]
pub struct TemplateVersionParameter {
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub description_plaintext: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub form_type: String,
    pub mutable: bool,
    pub default_value: String,
    pub icon: String,
    pub options: Vec<TemplateVersionParameterOption>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub validation_regex: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_min: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_max: Option<i64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub validation_error: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub validation_monotonic: String,
    pub required: bool,
    pub ephemeral: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct TemplateVersionParameterOption {
    pub name: String,
    pub description: String,
    pub value: String,
    pub icon: String,
}

#[derive(Debug, Deserialize)]
pub struct CreateTemplateVersionRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub template_id: Option<String>,
    #[serde(default)]
    pub storage_method: String,
    #[serde(default)]
    pub file_id: Option<String>,
    #[serde(default)]
    pub example_id: String,
    #[serde(default)]
    pub provisioner: String,
    /// The import job's tags (and the version's builds'): Coder's `provisioner_tags`.
    #[serde(default)]
    pub provisioner_tags: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct CreateTemplateRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub icon: String,
    #[serde(default)]
    pub template_version_id: String,
    #[serde(default)]
    pub default_ttl_ms: Option<i64>,
    #[serde(default)]
    pub allow_user_cancel_workspace_jobs: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct UpdateActiveTemplateVersion {
    #[serde(default)]
    pub id: String,
}

#[derive(Debug, Serialize)]
pub struct UploadResponse {
    pub hash: String,
}
