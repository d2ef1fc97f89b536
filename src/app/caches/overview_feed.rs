//! What the status pages' event streams watch, done once per server instead of once per
//! stream: one thread takes the store's `Topic::Overview` notices, lets a burst of them settle
//! (`SETTLE`), reads the cheap change marker, and only when it moved bumps a generation every
//! stream waits on (`subscribe`). A backup look every `BACKUP_LOOK` catches a change whose
//! notice was lost. The overview each caller sees is then built once per generation and view
//! (`views`), however many streams show it: with 2,000 streams open, a build costs one marker
//! read and one overview per distinct view, not 2,000 of each.

use super::shared_views::SharedViews;
use crate::events::{LiveEvents, Topic};
use crate::model::overview::Overview;
use crate::store::{ChangeMarker, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;

/// A burst of notices (a build's job taken, logged, ended) is looked at once, this long after
/// its first.
const SETTLE: Duration = Duration::from_millis(250);
/// The marker is read at least this often, notices or not.
const BACKUP_LOOK: Duration = Duration::from_secs(1);

/// Which overview a caller sees: everyone's (`None`: owners and template admins) or their own
/// user's, and the status filter.
pub type ViewKey = (Option<String>, String);

pub struct OverviewFeed {
    generation: watch::Receiver<u64>,
    /// The overviews of the current generation, one per view.
    pub views: SharedViews<ViewKey, Overview>,
    stop: Arc<AtomicBool>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl OverviewFeed {
    pub fn start(store: Arc<dyn Store>, events: Arc<dyn LiveEvents>) -> OverviewFeed {
        let (tx, rx) = watch::channel(0u64);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("overview-feed".into())
            .spawn(move || watch_marker(&*store, &*events, &tx, &stopped))
            .expect("the overview feed's thread");
        OverviewFeed {
            generation: rx,
            views: SharedViews::default(),
            stop,
            thread: std::sync::Mutex::new(Some(thread)),
        }
    }

    /// The generation, bumped each time what the overview shows has changed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.clone()
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

fn watch_marker(
    store: &dyn Store,
    events: &dyn LiveEvents,
    tx: &watch::Sender<u64>,
    stop: &AtomicBool,
) {
    let notices = events.subscribe(&Topic::Overview);
    let mut last: Option<ChangeMarker> = None;
    while !stop.load(Ordering::SeqCst) {
        if notices.wait(BACKUP_LOOK) {
            std::thread::sleep(SETTLE);
            notices.take_change();
        }
        match store.overview_change_marker() {
            Ok(marker) if last.as_ref() != Some(&marker) => {
                last = Some(marker);
                tx.send_modify(|g| *g += 1);
            }
            Ok(_) => {}
            Err(e) => log::debug!("overview feed: reading the change marker: {e}"),
        }
    }
}
