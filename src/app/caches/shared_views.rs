//! A value built once per generation and key, shared by every reader of that key: the first
//! reader of a new generation builds it while the others of the same key wait for it (no
//! stampede of identical builds), readers of other keys go on meanwhile.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use tokio::sync::Mutex as AsyncMutex;

type Slot<V> = Arc<AsyncMutex<Option<(u64, Arc<V>)>>>;

/// Past this many keys, slots nobody is reading are forgotten.
const PRUNE_AT: usize = 1024;

pub struct SharedViews<K, V> {
    slots: Mutex<HashMap<K, Slot<V>>>,
}

impl<K, V> Default for SharedViews<K, V> {
    fn default() -> Self {
        SharedViews {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, V> SharedViews<K, V> {
    /// The value of `key` for `generation` (or a newer one), built by `build` if nobody has.
    pub async fn get<E, F, Fut>(&self, key: &K, generation: u64, build: F) -> Result<Arc<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if slots.len() >= PRUNE_AT {
                slots.retain(|_, s| Arc::strong_count(s) > 1);
            }
            slots.entry(key.clone()).or_default().clone()
        };
        let mut held = slot.lock().await;
        if let Some((built, value)) = &*held
            && *built >= generation
        {
            return Ok(value.clone());
        }
        let value = Arc::new(build().await?);
        *held = Some((generation, value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[actix_web::test]
    async fn built_once_per_generation_and_key() {
        let views: SharedViews<&str, usize> = SharedViews::default();
        let builds = AtomicUsize::new(0);
        let build = |v| {
            builds.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, ()>(v) }
        };
        assert_eq!(*views.get(&"a", 1, || build(10)).await.unwrap(), 10);
        assert_eq!(*views.get(&"a", 1, || build(11)).await.unwrap(), 10);
        assert_eq!(*views.get(&"b", 1, || build(20)).await.unwrap(), 20);
        assert_eq!(*views.get(&"a", 2, || build(12)).await.unwrap(), 12);
        assert_eq!(builds.load(Ordering::SeqCst), 3);
        // A failed build stores nothing: the next reader builds again.
        assert!(views.get(&"c", 1, || async { Err(()) }).await.is_err());
        assert_eq!(*views.get(&"c", 1, || build(30)).await.unwrap(), 30);
    }
}
