//! Recently checked API keys, kept for a second so a burst of requests with one token costs
//! one store read. An entry is dropped at once when its key is deleted (logout) or its user's
//! roles change; a change made to the database file by other means shows within `TTL`.

use crate::store::{ApiKeyRow, UserRow};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(1);
const MAX_ENTRIES: usize = 4096;

#[derive(Default)]
pub struct SessionCache {
    map: Mutex<HashMap<String, (ApiKeyRow, UserRow, Instant)>>,
}

impl SessionCache {
    pub fn get(&self, key_id: &str) -> Option<(ApiKeyRow, UserRow)> {
        let map = self.map.lock().unwrap();
        let (key, user, at) = map.get(key_id)?;
        (at.elapsed() < TTL).then(|| (key.clone(), user.clone()))
    }

    pub fn put(&self, key: &ApiKeyRow, user: &UserRow) {
        let mut map = self.map.lock().unwrap();
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (_, _, at)| at.elapsed() < TTL);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key.id.clone(), (key.clone(), user.clone(), Instant::now()));
    }

    pub fn forget_key(&self, key_id: &str) {
        self.map.lock().unwrap().remove(key_id);
    }

    pub fn forget_user(&self, user_id: &str) {
        self.map
            .lock()
            .unwrap()
            .retain(|_, (_, u, _)| u.id != user_id);
    }
}
