//! Users, roles, organizations and the small identity responses.

use super::time::Time;
use serde::{Deserialize, Serialize};

/// A site role. A user with no role is a plain member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Owner,
    TemplateAdmin,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Owner, Role::TemplateAdmin];

    pub fn name(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::TemplateAdmin => "template-admin",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::TemplateAdmin => "Template Admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SlimRole {
    pub name: String,
    pub display_name: String,
    pub organization_id: String,
}

impl From<Role> for SlimRole {
    fn from(r: Role) -> Self {
        SlimRole {
            name: r.name().into(),
            display_name: r.display_name().into(),
            organization_id: String::new(),
        }
    }
}

/// codersdk.User
#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub name: String,
    pub email: String,
    pub created_at: Time,
    pub updated_at: Time,
    pub last_seen_at: Time,
    pub status: String,
    pub login_type: String,
    pub theme_preference: String,
    pub organization_ids: Vec<String>,
    pub roles: Vec<SlimRole>,
    pub avatar_url: String,
}

/// codersdk.MinimalUser: `name` is left out when empty (Go's omitempty); `avatar_url` is
/// always there, as Coder's clients expect (empty when the user has none, as in `User`).
#[derive(Clone, Debug, Serialize)]
pub struct MinimalUser {
    pub id: String,
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub avatar_url: String,
}

#[derive(Debug, Serialize)]
pub struct GetUsersResponse {
    pub users: Vec<User>,
    pub count: usize,
}

/// codersdk.Organization
#[derive(Clone, Debug, Serialize)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub icon: String,
    pub created_at: Time,
    pub updated_at: Time,
    pub is_default: bool,
}

#[derive(Debug, Deserialize)]
pub struct CreateFirstUserRequest {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub password: String,
}

#[derive(Debug, Serialize)]
pub struct CreateFirstUserResponse {
    pub user_id: String,
    pub organization_id: String,
}

#[derive(Debug, Deserialize)]
pub struct CreateUserRequest {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub login_type: String,
    #[serde(default)]
    pub organization_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginWithPasswordRequest {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
}

#[derive(Debug, Serialize)]
pub struct LoginWithPasswordResponse {
    pub session_token: String,
}

#[derive(Debug, Deserialize)]
pub struct UpdateRoles {
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct GenerateApiKeyResponse {
    pub key: String,
}

#[derive(Debug, Serialize)]
pub struct BuildInfoResponse {
    pub external_url: String,
    pub version: String,
    pub dashboard_url: String,
    pub telemetry: bool,
    pub workspace_proxy: bool,
    pub agent_api_version: String,
    pub provisioner_api_version: String,
    pub upgrade_message: String,
    pub deployment_id: String,
    pub webpush_public_key: String,
}

/// codersdk.Response: the body of every error and of plain acknowledgements.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Response {
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validations: Vec<ValidationError>,
}

impl Response {
    /// A plain acknowledgement: `{"message": ...}`.
    pub fn message(text: impl Into<String>) -> Response {
        Response {
            message: text.into(),
            detail: String::new(),
            validations: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ValidationError {
    pub field: String,
    pub detail: String,
}
