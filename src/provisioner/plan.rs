//! The resources a build leaves behind: the manifest's resources for the transition, with their
//! agents, apps and scripts in Coder's shapes, ids fixed now and placeholders filled.

use super::render::render;
use crate::model::manifest::{Agent, App, Manifest, Script};
use crate::model::{
    Healthcheck, Time, Transition, WorkspaceAgent, WorkspaceAgentHealth, WorkspaceAgentLogSource,
    WorkspaceAgentScript, WorkspaceApp, WorkspaceResource, WorkspaceResourceMetadata, new_id,
};
use std::collections::{BTreeMap, HashMap};

/// The resources that exist after `transition`.
pub fn plan_resources(
    manifest: &Manifest,
    job_id: &str,
    transition: Transition,
    vars: &HashMap<String, String>,
) -> Vec<WorkspaceResource> {
    let now = Time::now();
    manifest
        .resources
        .iter()
        .filter(|r| r.transitions.contains(&transition))
        .map(|r| {
            let id = new_id();
            WorkspaceResource {
                agents: r.agents.iter().map(|a| agent(a, &id, now, vars)).collect(),
                id,
                created_at: now,
                job_id: job_id.to_string(),
                workspace_transition: transition,
                kind: r.kind.clone(),
                name: r.name.clone(),
                hide: r.hide,
                icon: r.icon.clone(),
                metadata: r
                    .metadata
                    .iter()
                    .map(|m| WorkspaceResourceMetadata {
                        key: m.key.clone(),
                        value: render(&m.value, vars),
                        sensitive: m.sensitive,
                    })
                    .collect(),
                daily_cost: r.daily_cost as i64,
            }
        })
        .collect()
}

/// An agent as it is created: not connected (kiln runs no real agents).
fn agent(
    a: &Agent,
    resource_id: &str,
    now: Time,
    vars: &HashMap<String, String>,
) -> WorkspaceAgent {
    let id = new_id();
    let (scripts, log_sources) = a.scripts.iter().map(|s| script(s, &id, now)).unzip();
    WorkspaceAgent {
        created_at: now,
        updated_at: now,
        name: a.name.clone(),
        resource_id: resource_id.to_string(),
        status: None,
        architecture: a.architecture.clone(),
        operating_system: a.operating_system.clone(),
        environment_variables: BTreeMap::new(),
        directory: a.directory.clone(),
        expanded_directory: String::new(),
        version: String::new(),
        api_version: String::new(),
        apps: a.apps.iter().map(|app| workspace_app(app, vars)).collect(),
        scripts,
        log_sources,
        lifecycle_state: "created".into(),
        logs_length: 0,
        logs_overflowed: false,
        connection_timeout_seconds: a.connection_timeout_seconds.into(),
        troubleshooting_url: a.troubleshooting_url.clone(),
        subsystems: vec![],
        health: WorkspaceAgentHealth {
            healthy: false,
            reason: "agent is not running".into(),
        },
        display_apps: vec![],
        startup_script_behavior: "non-blocking".into(),
        parent_id: None,
        id,
    }
}

fn workspace_app(app: &App, vars: &HashMap<String, String>) -> WorkspaceApp {
    WorkspaceApp {
        id: new_id(),
        url: render(&app.url, vars),
        external: app.external,
        slug: app.slug.clone(),
        display_name: app.display_name.clone(),
        command: app.command.clone(),
        icon: app.icon.clone(),
        subdomain: app.subdomain,
        subdomain_name: String::new(),
        sharing_level: app.sharing_level.clone(),
        healthcheck: app
            .healthcheck
            .as_ref()
            .map(|h| Healthcheck {
                url: render(&h.url, vars),
                interval: h.interval.into(),
                threshold: h.threshold.into(),
            })
            .unwrap_or_default(),
        health: if app.healthcheck.is_some() {
            "initializing"
        } else {
            "disabled"
        }
        .into(),
        group: app.group.clone(),
        hidden: app.hidden,
        open_in: app.open_in.clone(),
        tooltip: app.tooltip.clone(),
        statuses: vec![],
    }
}

/// A script and the log source it writes to.
fn script(
    s: &Script,
    agent_id: &str,
    now: Time,
) -> (WorkspaceAgentScript, WorkspaceAgentLogSource) {
    let source = WorkspaceAgentLogSource {
        id: new_id(),
        workspace_agent_id: agent_id.to_string(),
        created_at: now,
        display_name: s.display_name.clone(),
        icon: s.icon.clone(),
    };
    let script = WorkspaceAgentScript {
        id: new_id(),
        log_source_id: source.id.clone(),
        log_path: s.log_path.clone(),
        script: s.script.clone(),
        cron: s.cron.clone(),
        run_on_start: s.run_on_start,
        run_on_stop: s.run_on_stop,
        start_blocks_login: s.start_blocks_login,
        timeout: s.timeout.into(),
        display_name: s.display_name.clone(),
    };
    (script, source)
}
