//! The JSON of completed builds, kept briefly so hot `GET /workspacebuilds/{id}` reads skip the
//! store. A completed build's JSON changes only when its state is replaced (which drops the
//! entry) and when an agent's status turns from `connecting` to `timeout` (entries never
//! outlive that moment); every entry also expires after `TTL`, so a change made another way
//! shows within that time.

use crate::model::{Time, WorkspaceBuild};
use actix_web::web::Bytes;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(1);
const MAX_ENTRIES: usize = 4096;

#[derive(Clone)]
pub struct Cached {
    /// The workspace owner, for the read check.
    pub owner_id: String,
    pub body: Bytes,
    expires: Instant,
}

/// Keyed by build id (random UUIDs: one map serves every server of the process).
fn map() -> &'static Mutex<HashMap<String, Cached>> {
    static MAP: OnceLock<Mutex<HashMap<String, Cached>>> = OnceLock::new();
    MAP.get_or_init(Default::default)
}

pub fn get(build_id: &str) -> Option<Cached> {
    let map = map().lock().unwrap();
    map.get(build_id)
        .filter(|c| c.expires > Instant::now())
        .cloned()
}

/// Keeps the body of a build whose job has completed.
pub fn put(build: &WorkspaceBuild, body: Bytes) {
    if build.job.completed_at.is_none() {
        return;
    }
    let now = Instant::now();
    let mut expires = now + TTL;
    // The next agent status change (`connecting` until created_at + connection timeout).
    let now_t = Time::now();
    for agent in build.resources.iter().flat_map(|r| r.agents.iter()) {
        if agent["status"] != "connecting" {
            continue;
        }
        let created = agent["created_at"].as_str().and_then(Time::parse_rfc3339);
        let timeout_s = agent["connection_timeout_seconds"].as_i64().unwrap_or(0);
        let Some(created) = created else {
            return;
        };
        let change = created.plus_millis(timeout_s * 1000);
        let left =
            Duration::from_micros(change.micros().saturating_sub(now_t.micros()).max(0) as u64);
        expires = expires.min(now + left);
    }
    let mut map = map().lock().unwrap();
    if map.len() >= MAX_ENTRIES {
        map.retain(|_, c| c.expires > now);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
    }
    map.insert(
        build.id.clone(),
        Cached {
            owner_id: build.workspace_owner_id.clone(),
            body,
            expires,
        },
    );
}

/// The build changed (its state was replaced).
pub fn forget(build_id: &str) {
    map().lock().unwrap().remove(build_id);
}
