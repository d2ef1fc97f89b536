//! What a build produces: resources with their metadata and agents (with apps, scripts and log
//! sources), in Coder's shapes. The engine makes them, the store keeps them, the API sends them.

use super::status::Transition;
use super::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// codersdk.WorkspaceResource
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceResource {
    pub id: String,
    pub created_at: Time,
    pub job_id: String,
    pub workspace_transition: Transition,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub hide: bool,
    pub icon: String,
    pub agents: Vec<WorkspaceAgent>,
    pub metadata: Vec<WorkspaceResourceMetadata>,
    pub daily_cost: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceResourceMetadata {
    pub key: String,
    pub value: String,
    pub sensitive: bool,
}

/// codersdk.WorkspaceAgentStatus, as far as kiln goes: it runs no real agents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Connecting,
    Timeout,
}

/// codersdk.WorkspaceAgent. `status` is never stored: it depends on the time it is read
/// (`with_status`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceAgent {
    pub id: String,
    pub created_at: Time,
    pub updated_at: Time,
    pub name: String,
    pub resource_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AgentStatus>,
    pub architecture: String,
    pub operating_system: String,
    pub environment_variables: BTreeMap<String, String>,
    pub directory: String,
    pub expanded_directory: String,
    pub version: String,
    pub api_version: String,
    pub apps: Vec<WorkspaceApp>,
    pub scripts: Vec<WorkspaceAgentScript>,
    pub log_sources: Vec<WorkspaceAgentLogSource>,
    pub lifecycle_state: String,
    pub logs_length: i64,
    pub logs_overflowed: bool,
    pub connection_timeout_seconds: i64,
    pub troubleshooting_url: String,
    pub subsystems: Vec<String>,
    pub health: WorkspaceAgentHealth,
    pub display_apps: Vec<String>,
    pub startup_script_behavior: String,
    pub parent_id: Option<String>,
}

impl WorkspaceAgent {
    /// The moment its status turns from `connecting` to `timeout`: its connection timeout after
    /// it was created.
    pub fn times_out_at(&self) -> Time {
        self.created_at
            .plus_millis(self.connection_timeout_seconds.saturating_mul(1000))
    }

    /// Its status at `now`: `connecting` until the connection timeout has passed since it was
    /// created, then `timeout`.
    pub fn status_at(&self, now: Time) -> AgentStatus {
        if self.connection_timeout_seconds > 0 && now < self.times_out_at() {
            AgentStatus::Connecting
        } else {
            AgentStatus::Timeout
        }
    }

    pub fn with_status(mut self, now: Time) -> WorkspaceAgent {
        self.status = Some(self.status_at(now));
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceAgentHealth {
    pub healthy: bool,
    pub reason: String,
}

/// codersdk.WorkspaceApp
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceApp {
    pub id: String,
    pub url: String,
    pub external: bool,
    pub slug: String,
    pub display_name: String,
    pub command: String,
    pub icon: String,
    pub subdomain: bool,
    pub subdomain_name: String,
    pub sharing_level: String,
    pub healthcheck: Healthcheck,
    pub health: String,
    pub group: String,
    pub hidden: bool,
    pub open_in: String,
    pub tooltip: String,
    /// Apps report no statuses in kiln: always empty.
    pub statuses: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    pub url: String,
    pub interval: i64,
    pub threshold: i64,
}

/// codersdk.WorkspaceAgentScript
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceAgentScript {
    pub id: String,
    pub log_source_id: String,
    pub log_path: String,
    pub script: String,
    pub cron: String,
    pub run_on_start: bool,
    pub run_on_stop: bool,
    pub start_blocks_login: bool,
    pub timeout: i64,
    pub display_name: String,
}

/// codersdk.WorkspaceAgentLogSource
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceAgentLogSource {
    pub id: String,
    pub workspace_agent_id: String,
    pub created_at: Time,
    pub display_name: String,
    pub icon: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(created: Time, timeout_s: i64) -> WorkspaceAgent {
        WorkspaceAgent {
            id: "a".into(),
            created_at: created,
            updated_at: created,
            name: "main".into(),
            resource_id: "r".into(),
            status: None,
            architecture: "amd64".into(),
            operating_system: "linux".into(),
            environment_variables: BTreeMap::new(),
            directory: String::new(),
            expanded_directory: String::new(),
            version: String::new(),
            api_version: String::new(),
            apps: vec![],
            scripts: vec![],
            log_sources: vec![],
            lifecycle_state: "created".into(),
            logs_length: 0,
            logs_overflowed: false,
            connection_timeout_seconds: timeout_s,
            troubleshooting_url: String::new(),
            subsystems: vec![],
            health: WorkspaceAgentHealth {
                healthy: false,
                reason: "agent is not running".into(),
            },
            display_apps: vec![],
            startup_script_behavior: "non-blocking".into(),
            parent_id: None,
        }
    }

    #[test]
    fn connecting_until_the_connection_timeout_then_timeout() {
        let a = agent(Time(10_000_000), 2);
        assert_eq!(a.status_at(Time(10_000_000)), AgentStatus::Connecting);
        assert_eq!(a.status_at(Time(11_999_999)), AgentStatus::Connecting);
        assert_eq!(a.status_at(Time(12_000_000)), AgentStatus::Timeout);
        assert_eq!(agent(Time(0), 0).status_at(Time(0)), AgentStatus::Timeout);
    }

    #[test]
    fn the_status_is_sent_but_never_stored() {
        let a = agent(Time(0), 1);
        let stored = serde_json::to_value(&a).unwrap();
        assert!(stored.get("status").is_none());
        let back: WorkspaceAgent = serde_json::from_value(stored).unwrap();
        assert_eq!(back, a);
        let sent = serde_json::to_value(a.with_status(Time(0))).unwrap();
        assert_eq!(sent["status"], "connecting");
        assert_eq!(sent["created_at"], "1970-01-01T00:00:00.000000Z");
    }
}
