//! Builds and workspaces in Coder's JSON shapes. A `Renderer` reads what many of them share
//! once: each template, organization and list of live daemons, and, for a page, the latest
//! builds of all its workspaces and the resources of all its builds in one read each. One
//! workspace or build is rendered the same way, by a renderer used once.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::present::views::{job_json, matched_among};
use crate::app::caches::queue_ranks::QueueOrder;
use crate::app::daemons::live_daemons;
use crate::app::state::AppState;
use crate::model::{self, BuildStatus, JobStatus, Time};
use crate::store::{BuildRow, DaemonRow, TemplateRow, WorkspaceRow};
use std::collections::HashMap;

pub struct Renderer<'a> {
    state: &'a AppState,
    now: Time,
    templates: HashMap<String, Option<TemplateRow>>,
    organizations: HashMap<String, String>,
    daemons: HashMap<String, Vec<DaemonRow>>,
    /// Read ahead by `prefetch_*`: the latest build of each workspace and the resources of
    /// each completed job (an absent job: not read ahead, read when rendered).
    latest: HashMap<String, BuildRow>,
    resources: HashMap<String, Vec<model::WorkspaceResource>>,
    /// For a page with two or more pending jobs: the queue's order, read once for them all.
    order: Option<QueueOrder>,
}

impl<'a> Renderer<'a> {
    pub fn new(state: &'a AppState) -> Renderer<'a> {
        Renderer {
            state,
            now: Time::now(),
            templates: HashMap::new(),
            organizations: HashMap::new(),
            daemons: HashMap::new(),
            latest: HashMap::new(),
            resources: HashMap::new(),
            order: None,
        }
    }

    /// Reads the latest builds of `rows` and their resources, two reads for the lot.
    fn prefetch_workspaces(&mut self, rows: &[WorkspaceRow]) -> ApiResult<()> {
        let ids: Vec<&str> = rows.iter().map(|w| w.id.as_str()).collect();
        let builds = self.state.store.latest_builds(&ids)?;
        self.prefetch_builds(&builds)?;
        self.latest
            .extend(builds.into_iter().map(|b| (b.workspace_id.clone(), b)));
        Ok(())
    }

    /// Reads the resources of the completed jobs of `builds`, one read for the lot, and the
    /// queue's order when more than one of them is pending.
    fn prefetch_builds(&mut self, builds: &[BuildRow]) -> ApiResult<()> {
        let ranks = &self.state.queue_ranks;
        self.order = ranks.order_for(&*self.state.store, builds.iter().map(|b| &b.job))?;
        let jobs: Vec<&str> = builds
            .iter()
            .filter(|b| b.job.completed_at.is_some())
            .map(|b| b.job.id.as_str())
            .collect();
        for job in &jobs {
            self.resources.insert(job.to_string(), Vec::new());
        }
        for r in self.state.store.resources_of(&jobs)? {
            if let Some(list) = self.resources.get_mut(&r.job_id) {
                list.push(r);
            }
        }
        Ok(())
    }

    /// A job's resources, sorted by name, with their agents' status as of now.
    pub fn resources(&mut self, job_id: &str) -> ApiResult<Vec<model::WorkspaceResource>> {
        let stored = match self.resources.remove(job_id) {
            Some(r) => r,
            None => self.state.store.resources(job_id)?,
        };
        let now = self.now;
        Ok(stored
            .into_iter()
            .map(|mut r| {
                r.agents = std::mem::take(&mut r.agents)
                    .into_iter()
                    .map(|a| a.with_status(now))
                    .collect();
                r
            })
            .collect())
    }

    pub fn build(&mut self, b: &BuildRow) -> ApiResult<model::WorkspaceBuild> {
        let metadata = crate::api::present::views::build_metadata(b);
        let job = job_json(self.state, &b.job, metadata, self.order.as_ref())?;
        let resources = if b.job.completed_at.is_some() {
            self.resources(&b.job.id)?
        } else {
            Vec::new()
        };
        // Only a pending job is matched: the daemons are read for nothing else.
        let daemons: &[_] = if job.status == JobStatus::Pending {
            let state = self.state;
            self.daemons
                .entry(b.job.organization_id.clone())
                .or_insert_with(|| live_daemons(state, &b.job.organization_id))
        } else {
            &[]
        };
        let matched_provisioners = matched_among(daemons, &b.job);
        Ok(model::WorkspaceBuild {
            id: b.id.clone(),
            created_at: b.created_at,
            updated_at: b.updated_at,
            workspace_id: b.workspace_id.clone(),
            workspace_name: b.workspace_name.clone(),
            workspace_owner_id: b.workspace_owner_id.clone(),
            workspace_owner_name: b.workspace_owner_name.clone(),
            workspace_owner_avatar_url: b.workspace_owner_avatar_url.clone(),
            template_version_id: b.template_version_id.clone(),
            template_version_name: b.template_version_name.clone(),
            build_number: b.build_number,
            transition: b.transition,
            initiator_id: b.initiator_id.clone(),
            initiator_name: b.initiator_name.clone(),
            status: BuildStatus::derive(job.status, b.transition),
            matched_provisioners,
            job,
            reason: b.reason.clone(),
            resources,
            deadline: b.deadline,
            max_deadline: b.max_deadline,
            daily_cost: b.daily_cost,
            template_version_preset_id: None,
        })
    }

    fn template(&mut self, id: &str) -> ApiResult<Option<TemplateRow>> {
        if let Some(t) = self.templates.get(id) {
            return Ok(t.clone());
        }
        let t = self.state.store.template(id)?;
        self.templates.insert(id.to_string(), t.clone());
        Ok(t)
    }

    fn organization_name(&mut self, id: &str) -> ApiResult<String> {
        if let Some(name) = self.organizations.get(id) {
            return Ok(name.clone());
        }
        let name = self
            .state
            .store
            .organization(id)?
            .map(|o| o.name)
            .unwrap_or_default();
        self.organizations.insert(id.to_string(), name.clone());
        Ok(name)
    }

    pub fn workspace(&mut self, w: &WorkspaceRow) -> ApiResult<model::Workspace> {
        let latest = match self.latest.remove(&w.id) {
            Some(b) => b,
            None => self.state.store.latest_build(&w.id)?.ok_or_else(|| {
                ApiError::internal("Internal error fetching workspace build.", "no build")
            })?,
        };
        let template = self.template(&w.template_id)?;
        let organization_name = self.organization_name(&w.organization_id)?;
        let t = |f: fn(&TemplateRow) -> String| template.as_ref().map(f).unwrap_or_default();
        let active_version_id = t(|t| t.active_version_id.clone());
        let latest_build = self.build(&latest)?;
        let failing_agents: Vec<String> = latest_build
            .resources
            .iter()
            .flat_map(|r| r.agents.iter())
            .map(|a| a.id.clone())
            .collect();
        Ok(model::Workspace {
            id: w.id.clone(),
            created_at: w.created_at,
            updated_at: w.updated_at,
            owner_id: w.owner_id.clone(),
            owner_name: w.owner_name.clone(),
            owner_avatar_url: w.owner_avatar_url.clone(),
            organization_id: w.organization_id.clone(),
            organization_name,
            template_id: w.template_id.clone(),
            template_name: t(|t| t.name.clone()),
            template_display_name: t(|t| t.display_name.clone()),
            template_icon: t(|t| t.icon.clone()),
            template_allow_user_cancel_workspace_jobs: template
                .as_ref()
                .is_none_or(|t| t.allow_user_cancel_workspace_jobs),
            outdated: active_version_id != latest.template_version_id,
            template_active_version_id: active_version_id,
            template_require_active_version: false,
            template_use_classic_parameter_flow: false,
            latest_build,
            name: w.name.clone(),
            autostart_schedule: w.autostart_schedule.clone(),
            // 0: autostop turned off (`PUT …/ttl` with null), which Coder sends as null.
            ttl_ms: w.ttl_ms.filter(|t| *t > 0),
            last_used_at: w.last_used_at,
            deleting_at: None,
            dormant_at: None,
            health: model::WorkspaceHealth {
                healthy: failing_agents.is_empty(),
                failing_agents,
            },
            automatic_updates: w.automatic_updates.clone(),
            allow_renames: self.state.config.allow_workspace_renames,
            favorite: false,
            // The schedule's next time (Coder's `next_start_at`), whatever the workspace is doing.
            next_start_at: w
                .autostart_schedule
                .as_deref()
                .and_then(|raw| crate::domain::schedule::weekly(raw).ok())
                .and_then(|s| s.next(self.now)),
            is_prebuild: false,
        })
    }

    /// A page of workspaces, in the order of `rows`.
    pub fn workspaces(&mut self, rows: &[WorkspaceRow]) -> ApiResult<Vec<model::Workspace>> {
        self.prefetch_workspaces(rows)?;
        rows.iter().map(|w| self.workspace(w)).collect()
    }

    /// A page of builds, in the order of `rows`.
    pub fn builds(&mut self, rows: &[BuildRow]) -> ApiResult<Vec<model::WorkspaceBuild>> {
        self.prefetch_builds(rows)?;
        rows.iter().map(|b| self.build(b)).collect()
    }
}

pub fn build_json(state: &AppState, b: &BuildRow) -> ApiResult<model::WorkspaceBuild> {
    Renderer::new(state).build(b)
}

pub fn workspace_json(state: &AppState, w: &WorkspaceRow) -> ApiResult<model::Workspace> {
    Renderer::new(state).workspace(w)
}

pub fn resources_json(state: &AppState, job_id: &str) -> ApiResult<Vec<model::WorkspaceResource>> {
    Renderer::new(state).resources(job_id)
}
