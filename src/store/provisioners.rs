//! Provisioner keys and the daemons that take jobs: the built-in workers of each server and
//! the external daemons (`kiln provisioner start`) that registered with a key.

use super::error::StoreResult;
use super::jobs::JobRow;
use crate::domain::provisioner_tags::Tags;
use crate::model::{JobStatus, Time};

#[derive(Clone, Debug)]
pub struct ProvisionerKeyRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub tags: Tags,
    pub created_at: Time,
}

/// A job a daemon holds or held, with the template it is for.
#[derive(Clone, Debug)]
pub struct DaemonJob {
    pub id: String,
    pub status: JobStatus,
    pub template_name: String,
    pub template_display_name: String,
    pub template_icon: String,
}

impl DaemonJob {
    /// A running job known only by its id (`ProvisionerStore::daemon_states`).
    pub fn running(id: String) -> DaemonJob {
        DaemonJob {
            id,
            status: JobStatus::Running,
            template_name: String::new(),
            template_display_name: String::new(),
            template_icon: String::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct DaemonRow {
    pub id: String,
    /// The server a built-in worker belongs to (`remote:<key id>` for external daemons).
    pub server_id: String,
    pub organization_id: String,
    pub key_id: Option<String>,
    pub key_name: Option<String>,
    pub name: String,
    pub version: String,
    pub tags: Tags,
    pub created_at: Time,
    pub last_seen_at: Time,
    /// The unfinished job it holds, and the last one it ended (listing only).
    pub current_job: Option<DaemonJob>,
    pub previous_job: Option<DaemonJob>,
}

pub trait ProvisionerStore {
    /// Stores a new key; `Conflict` when its name (case-insensitive) is taken in the
    /// organization.
    fn insert_provisioner_key(
        &self,
        key: &ProvisionerKeyRow,
        hashed_secret: &[u8],
    ) -> StoreResult<()>;

    fn provisioner_keys(&self, organization_id: &str) -> StoreResult<Vec<ProvisionerKeyRow>>;

    fn provisioner_key_by_secret(
        &self,
        hashed_secret: &[u8],
    ) -> StoreResult<Option<ProvisionerKeyRow>>;

    /// Deletes the key named `name` (case-insensitive) and the daemons registered with it;
    /// returns the key and the unfinished jobs its daemons held (the caller fails them).
    fn delete_provisioner_key(
        &self,
        organization_id: &str,
        name: &str,
    ) -> StoreResult<Option<(ProvisionerKeyRow, Vec<JobRow>)>>;

    /// Registers (or finds again, by key and name) an external daemon; returns its id.
    fn register_daemon(
        &self,
        key: &ProvisionerKeyRow,
        name: &str,
        tags: &Tags,
        version: &str,
    ) -> StoreResult<String>;

    /// A daemon by id, without its jobs.
    fn daemon(&self, id: &str) -> StoreResult<Option<DaemonRow>>;

    /// Marks a daemon as seen now.
    fn touch_daemon(&self, id: &str) -> StoreResult<()>;

    /// Removes the daemons last seen before `seen_before` (Coder's dbpurge), except the
    /// built-in workers of server `keep_server_id` (the caller's own, alive); returns how many.
    fn purge_old_daemons(&self, seen_before: Time, keep_server_id: &str) -> StoreResult<u64>;

    /// Whether other servers list this store's daemons, so that each server must mark its
    /// built-in workers as seen now and then (`touch_daemon`) for the others to show them
    /// online. True unless a store has one server only.
    fn shared_by_servers(&self) -> bool {
        true
    }

    /// Every daemon of the organization (built-in workers included), with its jobs.
    fn daemons(&self, organization_id: &str) -> StoreResult<Vec<DaemonRow>>;

    /// The same daemons in one read, for matching jobs to them: `current_job` holds only the
    /// id of the job it runs (status `running`, no template), and `previous_job` is empty.
    fn daemon_states(&self, organization_id: &str) -> StoreResult<Vec<DaemonRow>>;

    /// Started, unfinished jobs held by external daemons whose heartbeat is older than
    /// `before` (their lease ran out).
    fn stale_remote_jobs(&self, before: Time) -> StoreResult<Vec<JobRow>>;
}
