//! `GET /organizations/{organization}/provisionerdaemons`: every daemon, the built-in workers
//! of the servers included, in Coder's shape, with its status (idle / busy / offline) and its
//! current and previous job (the status is decided in `app::daemons`).

use crate::api::error::ApiResult;
use crate::api::error::forbidden;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::lookup::find_organization;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::app::daemons::{DaemonStatus, Listed, listed_daemons};
use crate::domain::provisioner_tags::Tags;
use crate::model::{JobStatus, Time};
use crate::store::DaemonJob;
use actix_web::web;
use serde::Serialize;

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
            crate::api::meta::version().to_string()
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

pub async fn list(state: State, actor: Actor, path: web::Path<String>) -> ApiResult<Reply> {
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
