//! `GET /organizations/{organization}/provisionerdaemons`: every daemon, the built-in workers
//! of the servers included, in Coder's shape, with its status (idle / busy / offline) and its
//! current and previous job. `live_daemons` is what `matched_provisioners` counts.

use super::lookup::find_organization;
use super::users::forbidden;
use super::{Actor, ApiResult, Reply, blocking, ok, res};
use crate::api::{AppState, State};
use crate::domain::provisioner_tags::{Tags, untagged};
use crate::model::{JobStatus, Time};
use crate::store::{DaemonJob, DaemonRow};
use actix_web::web;
use serde::Serialize;

/// A built-in worker of another server counts as online when its server touched it this
/// recently (every server touches its own workers with each sweep, at least every 30 s).
const BUILT_IN_SEEN_WITHIN_MS: i64 = 75_000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(res("/organizations/{organization}/provisionerdaemons").route(web::get().to(list)));
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonStatus {
    Offline,
    Idle,
    Busy,
}

/// codersdk.ProvisionerDaemonJob.
#[derive(Serialize)]
struct JobView {
    id: String,
    status: JobStatus,
    template_name: String,
    template_icon: String,
    template_display_name: String,
}

fn job_view(j: &Option<DaemonJob>) -> Option<JobView> {
    j.as_ref().map(|j| JobView {
        id: j.id.clone(),
        status: j.status,
        template_name: j.template_name.clone(),
        template_icon: j.template_icon.clone(),
        template_display_name: j.template_display_name.clone(),
    })
}

/// codersdk.ProvisionerDaemon.
#[derive(Serialize)]
pub struct DaemonView {
    id: String,
    organization_id: String,
    key_id: String,
    key_name: String,
    created_at: Time,
    last_seen_at: Time,
    name: String,
    version: String,
    api_version: String,
    provisioners: Vec<String>,
    tags: Tags,
    status: DaemonStatus,
    current_job: Option<JobView>,
    previous_job: Option<JobView>,
}

/// A daemon with what the listing decides of it.
pub struct Listed {
    pub row: DaemonRow,
    pub status: DaemonStatus,
}

/// Every daemon of the organization with its status; a built-in worker of this server is
/// seen now.
pub fn listed_daemons(state: &AppState, organization_id: &str) -> ApiResult<Vec<Listed>> {
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

pub fn daemon_view(d: &Listed, organization_id: &str) -> DaemonView {
    let r = &d.row;
    DaemonView {
        id: r.id.clone(),
        organization_id: if r.organization_id.is_empty() {
            organization_id.to_string()
        } else {
            r.organization_id.clone()
        },
        key_id: r
            .key_id
            .clone()
            .unwrap_or_else(|| "00000000-0000-0000-0000-000000000001".into()),
        key_name: r.key_name.clone().unwrap_or_else(|| "built-in".into()),
        created_at: r.created_at,
        last_seen_at: r.last_seen_at,
        name: if r.key_id.is_some() {
            r.name.clone()
        } else {
            format!("{}-{}", short(&r.server_id), r.name)
        },
        version: if r.version.is_empty() {
            super::meta_version().to_string()
        } else {
            r.version.clone()
        },
        api_version: API_VERSION.into(),
        provisioners: vec!["echo".into(), "terraform".into()],
        tags: r.tags.clone(),
        status: d.status,
        current_job: job_view(&r.current_job),
        previous_job: job_view(&r.previous_job),
    }
}

impl DaemonView {
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The version of kiln's provisioner protocol (`docs/provisioners.md`).
pub const API_VERSION: &str = "1.0";

fn short(server_id: &str) -> &str {
    &server_id[..server_id.len().min(8)]
}

async fn list(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
    blocking(move || {
        let org = find_organization(&state, &path)?;
        if !actor.caller().manages_templates() {
            return Err(forbidden());
        }
        let daemons = listed_daemons(&state, &org.id)?;
        ok(&daemons
            .iter()
            .map(|d| daemon_view(d, &org.id))
            .collect::<Vec<_>>())
    })
    .await
}
