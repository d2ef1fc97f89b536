//! The lifecycle executor (Coder's `coderd/autobuild`): a thread that, every
//! `--autobuild-poll-interval`, stops the workspaces whose deadline has passed (reason
//! `autostop`) and starts those whose autostart schedule has come (reason `autostart`), as
//! `domain::lifecycle::autobuild` decides. Builds are queued by `queue_build` (`builds.rs`), the
//! path of `POST /workspaces/{id}/builds`, with the workspace's owner as initiator.

use super::builds::{BuildError, BuildRequest, BuildResult, check_version, queue_build};
use crate::domain::BuildRefusal;
use crate::domain::lifecycle::{Autobuild, WorkspaceTick, autobuild};
use crate::model::Time;
use crate::provisioner::sweeper::Ticker;
use crate::store::{BuildRow, Store, StoreResult, WorkspaceRow};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub struct Autobuilder(Ticker);

impl Autobuilder {
    /// Ticks every `every`, the first time one `every` after the start.
    pub fn start(store: Arc<dyn Store>, every: Duration) -> Autobuilder {
        Autobuilder(Ticker::start("kiln-autobuild", every, move || {
            if let Err(e) = tick(&*store, Time::now()) {
                log::error!("autobuild: listing workspaces: {e}");
            }
        }))
    }

    /// Stops ticking (a tick under way ends first).
    pub fn stop(&self) {
        self.0.stop();
    }
}

/// One pass over the live workspaces, each looked at once; returns how many builds it queued.
pub fn tick(store: &dyn Store, now: Time) -> StoreResult<usize> {
    let mut suspended: HashMap<String, bool> = HashMap::new();
    let mut queued = 0;
    for w in store.workspaces(None)? {
        let owner_suspended = match suspended.get(&w.owner_id) {
            Some(s) => *s,
            None => {
                let s = store
                    .user_by_id(&w.owner_id)?
                    .is_none_or(|u| u.status == "suspended");
                suspended.insert(w.owner_id.clone(), s);
                s
            }
        };
        let latest = store.latest_build(&w.id)?;
        let facts = WorkspaceTick {
            now,
            deleted: w.deleted,
            owner_suspended,
            autostart_schedule: w.autostart_schedule.as_deref(),
            latest: latest.as_ref().map(BuildRow::schedule_facts),
        };
        let (Some(action), Some(latest)) = (autobuild(&facts), latest) else {
            continue;
        };
        match queue(store, &w, &latest, action) {
            Ok(build) => {
                queued += 1;
                log::info!(
                    "autobuild: {} workspace {}/{} (build {})",
                    action.reason(),
                    w.owner_name,
                    w.name,
                    build.build_number
                );
            }
            // Another server (or a user) queued a build since we looked: theirs stands.
            Err(BuildError::Refused(BuildRefusal::ActiveBuild)) => {
                log::debug!("autobuild: workspace {} already has a newer build", w.id);
            }
            Err(e) => log::warn!(
                "autobuild: {} of workspace {}/{} refused: {e}",
                action.reason(),
                w.owner_name,
                w.name
            ),
        }
    }
    Ok(queued)
}

/// Queues the build `action` asks for, on the latest build's version (the template's active
/// one for an autostart with `automatic_updates: always`), with the checks of POST builds.
///
/// Several servers on one database tick at once, and users build meanwhile: the build is
/// queued based on `latest`'s number (`previous_number`), and the store's insert reads the
/// latest build again in its own transaction and refuses when it is no longer that one (a
/// build queued since, by anyone); two transactions that both read the same latest build
/// collide on the unique `(workspace_id, build_number)` and the loser rolls back. Either way
/// the loser gets `ActiveBuild` and no second build exists, so a workspace is
/// stopped or started at most once for one decision, across all servers.
///
/// What the guard does not cover is a change that makes no new build: a deadline extended
/// (or a schedule cleared) between this tick's read and its insert still lets the build go
/// (the next tick cannot undo it: the stop stands, and the user starts the workspace again).
fn queue(
    store: &dyn Store,
    w: &WorkspaceRow,
    latest: &BuildRow,
    action: Autobuild,
) -> BuildResult<BuildRow> {
    let template = store
        .template(&w.template_id)?
        .ok_or(BuildError::TemplateGone)?;
    let version_id = if action == Autobuild::Start && w.automatic_updates == "always" {
        template.active_version_id.clone()
    } else {
        latest.template_version_id.clone()
    };
    let version = check_version(store.template_version(&version_id)?, &template)?;
    let req = BuildRequest {
        transition: action.transition(),
        template_version_id: Some(version.id.clone()),
        rich_parameter_values: Vec::new(),
        state: None,
        orphan: false,
        debug: false,
        reason: action.reason().into(),
        on_success: None,
    };
    queue_build(store, &w.owner_id, w, &version, &req, Some(latest), None)
}
