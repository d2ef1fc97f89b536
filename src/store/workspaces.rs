//! Workspaces.

use super::builds::NewBuild;
use super::error::StoreResult;
use crate::domain::lifecycle::ExtendRefusal;
use crate::model::Time;

#[derive(Clone, Debug)]
pub struct WorkspaceRow {
    pub id: String,
    pub organization_id: String,
    pub owner_id: String,
    pub owner_name: String,
    pub owner_avatar_url: String,
    pub template_id: String,
    pub name: String,
    pub ttl_ms: Option<i64>,
    pub autostart_schedule: Option<String>,
    pub automatic_updates: String,
    pub deleted: bool,
    pub created_at: Time,
    pub updated_at: Time,
    pub last_used_at: Time,
}

pub struct NewWorkspace<'a> {
    pub id: &'a str,
    pub organization_id: &'a str,
    pub owner_id: &'a str,
    pub template_id: &'a str,
    pub name: &'a str,
    pub ttl_ms: Option<i64>,
    pub autostart_schedule: Option<&'a str>,
    pub automatic_updates: &'a str,
}

/// Whether a resource's `agents` (Coder's JSON) hold an agent of id `agent_id`.
pub fn holds_agent(agents: &str, agent_id: &str) -> bool {
    serde_json::from_str::<Vec<serde_json::Value>>(agents)
        .is_ok_and(|list| list.iter().any(|a| a["id"] == agent_id))
}

pub trait WorkspaceStore {
    /// The owner of the workspace one of whose builds made agent `agent_id` (a UUID), if
    /// any. Rare (agent logs), so a scan of the resources is fine.
    fn agent_owner(&self, agent_id: &str) -> StoreResult<Option<String>>;

    /// A workspace by id, deleted or not.
    fn workspace(&self, id: &str) -> StoreResult<Option<WorkspaceRow>>;

    /// The live workspace of `owner_id` named `name` (without case); with `include_deleted`,
    /// the newest one of that name when no live one exists.
    fn workspace_by_name(
        &self,
        owner_id: &str,
        name: &str,
        include_deleted: bool,
    ) -> StoreResult<Option<WorkspaceRow>>;

    /// Live workspaces, of one owner or of everyone, by owner name then name.
    fn workspaces(&self, owner_id: Option<&str>) -> StoreResult<Vec<WorkspaceRow>>;

    /// One page of those (`limit` 0: all after `offset`), read along the indexes so that a
    /// page costs its rows however many there are, and how many there are in all.
    fn workspace_page(
        &self,
        owner_id: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(i64, Vec<WorkspaceRow>)>;

    /// Creates a workspace and its first build, in one transaction, and wakes a worker.
    /// `Conflict` when its owner has a live workspace of that name.
    fn create_workspace(&self, w: &NewWorkspace, first: &NewBuild) -> StoreResult<()>;

    /// Replaces the autostart schedule (`None` clears it).
    fn set_autostart_schedule(&self, id: &str, schedule: Option<&str>) -> StoreResult<()>;

    /// Renames a live workspace. `Conflict` when its owner has a live one of that name.
    fn rename_workspace(&self, id: &str, name: &str) -> StoreResult<()>;

    /// `always` or `never`: whether starts use the template's active version.
    fn set_automatic_updates(&self, id: &str, value: &str) -> StoreResult<()>;

    /// The parameter values of every start build of `owner_id`'s workspaces (deleted ones
    /// too) of `template_id`: `(name, value, build time)`, newest build first.
    fn start_parameters_of(
        &self,
        owner_id: &str,
        template_id: &str,
    ) -> StoreResult<Vec<(String, String, Time)>>;

    /// Replaces the TTL; `None` turns autostop off (stored as 0, so the template's default no
    /// longer applies) and, in the same transaction, clears the deadline of the latest build
    /// when it is a start, as Coder does. A TTL that is set leaves a running deadline alone.
    fn set_workspace_ttl(&self, id: &str, ttl_ms: Option<i64>) -> StoreResult<()>;

    /// Moves the deadline of the workspace's latest build to `deadline` once
    /// `domain::lifecycle::check_extend` allows it, checked on the build as the same
    /// transaction reads it (locked on PostgreSQL).
    fn extend_deadline(&self, id: &str, deadline: Time) -> StoreResult<Result<(), ExtendRefusal>>;
}
