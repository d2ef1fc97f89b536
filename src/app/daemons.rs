//! Provisioner daemons as the API lists them: each one's status (offline, idle, busy) from
//! its heartbeat, or, for this server's own workers, from being alive here; and the daemons
//! that could take a job now (what `matched_provisioners` counts).

use crate::app::state::AppState;
use crate::domain::provisioner_tags::untagged;
use crate::model::Time;
use crate::store::{DaemonRow, StoreResult};
use serde::Serialize;
use std::time::Duration;

/// A built-in worker of another server counts as online when its server touched it this
/// recently (every server touches its own workers with each sweep, at least every 30 s).
const BUILT_IN_SEEN_WITHIN_MS: i64 = 75_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonStatus {
    Offline,
    Idle,
    Busy,
}

/// A daemon with what the listing decides of it.
pub struct Listed {
    pub row: DaemonRow,
    pub status: DaemonStatus,
}

/// Every daemon of the organization with its status; a built-in worker of this server is
/// seen now.
pub fn listed_daemons(state: &AppState, organization_id: &str) -> StoreResult<Vec<Listed>> {
    Ok(with_status(state, state.store.daemons(organization_id)?))
}

/// Each daemon's status: online by its heartbeat (or, for this server's workers, by being
/// alive here), busy when it holds a job.
fn with_status(state: &AppState, rows: Vec<DaemonRow>) -> Vec<Listed> {
    let now = Time::now();
    let lease_ms = state.config.provisioner_lease.as_millis() as i64;
    let own = state.engine.worker_ids();
    let stopping = state.engine.is_stopping();
    let mut out = Vec::new();
    for mut row in rows {
        if row.tags.is_empty() {
            row.tags = untagged();
        }
        let online = if row.key_id.is_some() {
            row.last_seen_at.0 >= now.plus_millis(-lease_ms).0
        } else if row.server_id == state.data_dir.server_id {
            let mine = own.contains(&row.id) && !stopping;
            if mine {
                row.last_seen_at = now;
            }
            mine
        } else {
            row.last_seen_at.0 >= now.plus_millis(-BUILT_IN_SEEN_WITHIN_MS).0
        };
        let status = match (online, row.current_job.is_some()) {
            (false, _) => DaemonStatus::Offline,
            (true, true) => DaemonStatus::Busy,
            (true, false) => DaemonStatus::Idle,
        };
        out.push(Listed { row, status });
    }
    out
}

/// The daemons that could take a job now (not offline).
pub fn live_daemons(state: &AppState, organization_id: &str) -> Vec<DaemonRow> {
    let rows = state
        .store
        .daemon_states(organization_id)
        .unwrap_or_default();
    with_status(state, rows)
        .into_iter()
        .filter(|d| d.status != DaemonStatus::Offline)
        .map(|d| d.row)
        .collect()
}

/// Marks a daemon as seen, at most every quarter of the lease (at most every 5 s): idle
/// daemons poll every second, and each mark is a write.
pub fn mark_seen(state: &AppState, daemon_id: &str) -> StoreResult<()> {
    let every = (state.config.provisioner_lease / 4).min(Duration::from_secs(5));
    if !state.seen_daemons.due(daemon_id, every) {
        return Ok(());
    }
    state.store.touch_daemon(daemon_id)
}
