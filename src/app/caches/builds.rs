//! The JSON of completed builds, kept briefly so hot `GET /workspacebuilds/{id}` reads skip the
//! store. A completed build's JSON changes only when its state is replaced, which the store
//! announces (`Topic::Builds`, from any process sharing it) and which empties the cache, and
//! when an agent's status turns from `connecting` to `timeout` (entries never outlive that
//! moment). Every entry also expires after `TTL`, so a change made another way (an edit of the
//! database file) shows within that time.

use crate::events::{LiveEvents, Subscription, Topic};
use crate::model::{AgentStatus, Time, WorkspaceBuild};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;
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

pub struct BuildCache {
    map: Mutex<HashMap<String, Cached>>,
    changes: Subscription,
}

impl BuildCache {
    pub fn new(events: &dyn LiveEvents) -> BuildCache {
        BuildCache {
            map: Mutex::default(),
            changes: events.subscribe(&Topic::Builds),
        }
    }

    pub fn get(&self, build_id: &str) -> Option<Cached> {
        let mut map = self.map.lock().unwrap();
        if self.changes.take_change() {
            map.clear();
        }
        map.get(build_id)
            .filter(|c| c.expires > Instant::now())
            .cloned()
    }

    /// Keeps the body of a build whose job has completed.
    pub fn put(&self, build: &WorkspaceBuild, body: Bytes) {
        if build.job.completed_at.is_none() {
            return;
        }
        let now = Instant::now();
        let now_t = Time::now();
        let mut expires = now + TTL;
        // The next agent status change.
        for agent in build.resources.iter().flat_map(|r| r.agents.iter()) {
            if agent.status != Some(AgentStatus::Connecting) {
                continue;
            }
            let left = agent.times_out_at().micros().saturating_sub(now_t.micros());
            expires = expires.min(now + Duration::from_micros(left.max(0) as u64));
        }
        let mut map = self.map.lock().unwrap();
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
}
