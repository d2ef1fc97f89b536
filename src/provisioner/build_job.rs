//! A workspace build job: set up, plan, run the transition's steps, clean up, and complete
//! everything in one transaction.

use super::control::{JobControl, StopReason};
use super::logwriter::{LogWriter, SOURCE_DAEMON};
use super::render::render;
use super::runner::{StepContext, StepsOutcome, run_steps};
use super::{Engine, archive};
use crate::model::manifest::{Agent, Manifest};
use crate::model::{Time, Transition};
use crate::store::{BuildCompletion, BuildRow, JobRow, ResourceRow, StoreResult};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub fn stage_name(t: Transition) -> &'static str {
    match t {
        Transition::Start => "Starting workspace",
        Transition::Stop => "Stopping workspace",
        Transition::Delete => "Destroying workspace",
    }
}

/// The folder kept for a workspace across builds.
pub fn workspace_dir(data_dir: &Path, workspace_id: &str) -> PathBuf {
    data_dir.join("workspaces").join(workspace_id)
}

pub fn run(engine: &Engine, job: &JobRow, control: &JobControl) -> StoreResult<()> {
    let store = &engine.store;
    let Some(build) = store.build_by_job(&job.id)? else {
        return store.abandon_job(&job.id, "the job's workspace build does not exist");
    };
    let mut log = engine.log_writer(job);
    let work_dir = engine.config.data_dir.join("jobs").join(&job.id);
    let result = execute(engine, &build, &mut log, control, &work_dir);
    let _ = std::fs::remove_dir_all(&work_dir);
    let (error, new_state, resources) = match result? {
        Executed::Done { state, resources } => (String::new(), state, resources),
        Executed::Failed(error) => (error, None, vec![]),
        Executed::Stopped(StopReason::Cancel) => {
            log.line(
                SOURCE_DAEMON,
                "warn",
                "The build was canceled: its work was stopped.",
            )?;
            (String::new(), None, vec![])
        }
        Executed::Stopped(StopReason::Shutdown) => (
            "kiln was shut down before this job finished; the job was canceled".to_string(),
            None,
            vec![],
        ),
        Executed::Stopped(StopReason::Abandoned) => (
            "the job made no progress for longer than the hung-job timeout".to_string(),
            None,
            vec![],
        ),
    };
    let now = Time::now();
    let daily_cost = resources.iter().map(|r| r.daily_cost).sum();
    let deadline = if build.transition == Transition::Start && error.is_empty() {
        ttl_ms(engine, &build)?.map(|ttl| now.plus_millis(ttl))
    } else {
        None
    };
    let status = store.complete_build(
        &build,
        &BuildCompletion {
            error,
            new_state,
            resources,
            deadline,
            daily_cost: if build.transition == Transition::Delete {
                0
            } else {
                daily_cost
            },
        },
        &log.take(),
    )?;
    if build.transition == Transition::Delete && status == crate::model::JobStatus::Succeeded {
        let _ =
            std::fs::remove_dir_all(workspace_dir(&engine.config.data_dir, &build.workspace_id));
    }
    Ok(())
}

/// The workspace's TTL, else the template's default; `None` when neither is set.
fn ttl_ms(engine: &Engine, build: &BuildRow) -> StoreResult<Option<i64>> {
    let ws_ttl = engine
        .store
        .workspace(&build.workspace_id)?
        .and_then(|w| w.ttl_ms);
    let ttl = match ws_ttl {
        Some(t) => t,
        None => engine
            .store
            .template(&build.template_id)?
            .map_or(0, |t| t.default_ttl_ms),
    };
    Ok((ttl > 0).then_some(ttl))
}

enum Executed {
    Done {
        state: Option<Vec<u8>>,
        resources: Vec<ResourceRow>,
    },
    Failed(String),
    Stopped(StopReason),
}

fn execute(
    engine: &Engine,
    build: &BuildRow,
    log: &mut LogWriter,
    control: &JobControl,
    work_dir: &Path,
) -> StoreResult<Executed> {
    let store = &engine.store;
    log.stage("Setting up")?;
    let Some(version) = store.template_version(&build.template_version_id)? else {
        return Ok(Executed::Failed(
            "the build's template version no longer exists".into(),
        ));
    };
    let manifest: Manifest = match version.manifest.as_deref().map(serde_json::from_str) {
        Some(Ok(m)) => m,
        _ => {
            return Ok(Executed::Failed(
                "the template version has no imported manifest".into(),
            ));
        }
    };
    let params = store.build_parameters(&build.id)?;
    let mut vars: HashMap<String, String> = params
        .iter()
        .map(|(k, v)| (format!("param.{k}"), v.clone()))
        .collect();
    vars.insert("workspace.name".into(), build.workspace_name.clone());
    vars.insert("owner.name".into(), build.workspace_owner_name.clone());
    vars.insert("build.number".into(), build.build_number.to_string());

    let steps = manifest.steps.for_transition(build.transition);
    let runs_steps = !build.orphan && !steps.is_empty();
    let ws_dir = workspace_dir(&engine.config.data_dir, &build.workspace_id);
    let state_file = work_dir.with_extension("state");
    if runs_steps {
        let archive_bytes = store
            .file(&version.file_id)?
            .map(|f| f.data)
            .unwrap_or_default();
        let state = store.build_state(&build.id)?;
        let unpacked = std::fs::create_dir_all(work_dir)
            .map_err(|e| e.to_string())
            .and_then(|_| archive::extract(&archive_bytes, work_dir));
        if let Err(e) = unpacked {
            return Ok(Executed::Failed(format!("cannot unpack the template: {e}")));
        }
        let prepared =
            std::fs::create_dir_all(&ws_dir).and_then(|_| std::fs::write(&state_file, state));
        if let Err(e) = prepared {
            return Ok(Executed::Failed(format!(
                "cannot prepare the workspace folder: {e}"
            )));
        }
    }
    log.stage("Planning infrastructure")?;
    if build.orphan {
        log.line(
            SOURCE_DAEMON,
            "info",
            "Orphan delete: no steps run; the resources are forgotten.",
        )?;
    }
    log.stage(stage_name(build.transition))?;
    let mut new_state = None;
    if runs_steps {
        let ctx = StepContext {
            env: environment(build, &params, &ws_dir, &state_file),
            vars: vars.clone(),
            dir: work_dir.to_path_buf(),
        };
        let outcome = run_steps(steps, &ctx, log, control)?;
        let state = std::fs::read(&state_file).unwrap_or_default();
        let _ = std::fs::remove_file(&state_file);
        match outcome {
            StepsOutcome::Done => new_state = Some(state),
            StepsOutcome::Failed(e) => return Ok(Executed::Failed(e)),
            StepsOutcome::Stopped(r) => return Ok(Executed::Stopped(r)),
        }
    } else if let Some(reason) = control.stopped() {
        return Ok(Executed::Stopped(reason));
    }
    log.stage("Cleaning Up")?;
    let resources = if build.orphan {
        vec![]
    } else {
        plan_resources(&manifest, &build.job.id, build.transition, &vars)
    };
    Ok(Executed::Done {
        state: new_state,
        resources,
    })
}

/// The clean environment of `run` steps.
fn environment(
    build: &BuildRow,
    params: &[(String, String)],
    ws_dir: &Path,
    state_file: &Path,
) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "PATH".to_string(),
            "/usr/local/bin:/usr/bin:/bin".to_string(),
        ),
        ("HOME".to_string(), ws_dir.display().to_string()),
        ("LANG".to_string(), "C.UTF-8".to_string()),
        ("KILN_WORKSPACE_ID".to_string(), build.workspace_id.clone()),
        (
            "KILN_WORKSPACE_NAME".to_string(),
            build.workspace_name.clone(),
        ),
        (
            "KILN_OWNER_NAME".to_string(),
            build.workspace_owner_name.clone(),
        ),
        (
            "KILN_TRANSITION".to_string(),
            build.transition.as_str().to_string(),
        ),
        (
            "KILN_BUILD_NUMBER".to_string(),
            build.build_number.to_string(),
        ),
        (
            "KILN_WORKSPACE_DIR".to_string(),
            ws_dir.display().to_string(),
        ),
        (
            "KILN_STATE_FILE".to_string(),
            state_file.display().to_string(),
        ),
    ];
    for (name, value) in params {
        env.push((
            crate::model::manifest_check::param_env_var(name),
            value.clone(),
        ));
    }
    env
}

/// The resources that exist after `transition`, with ids fixed now and placeholders filled.
pub fn plan_resources(
    manifest: &Manifest,
    job_id: &str,
    transition: Transition,
    vars: &HashMap<String, String>,
) -> Vec<ResourceRow> {
    let now = Time::now();
    manifest
        .resources
        .iter()
        .filter(|r| r.transitions.contains(&transition))
        .map(|r| {
            let id = crate::api::new_id();
            let metadata: Vec<_> = r
                .metadata
                .iter()
                .map(|m| json!({"key": m.key, "value": render(&m.value, vars), "sensitive": m.sensitive}))
                .collect();
            let agents: Vec<_> = r.agents.iter().map(|a| agent_json(a, &id, now, vars)).collect();
            ResourceRow {
                id,
                job_id: job_id.to_string(),
                created_at: now,
                transition,
                kind: r.kind.clone(),
                name: r.name.clone(),
                hide: r.hide,
                icon: r.icon.clone(),
                daily_cost: r.daily_cost as i64,
                metadata_json: serde_json::Value::from(metadata).to_string(),
                agents_json: serde_json::Value::from(agents).to_string(),
            }
        })
        .collect()
}

/// A WorkspaceAgent in Coder's shape, without `status` (derived from the time when read).
fn agent_json(
    a: &Agent,
    resource_id: &str,
    now: Time,
    vars: &HashMap<String, String>,
) -> serde_json::Value {
    let agent_id = crate::api::new_id();
    let apps: Vec<_> = a
        .apps
        .iter()
        .map(|app| {
            json!({
                "id": crate::api::new_id(),
                "url": render(&app.url, vars),
                "external": app.external,
                "slug": app.slug,
                "display_name": app.display_name,
                "command": app.command,
                "icon": app.icon,
                "subdomain": app.subdomain,
                "subdomain_name": "",
                "sharing_level": app.sharing_level,
                "healthcheck": app.healthcheck.as_ref().map_or(json!({"url": "", "interval": 0, "threshold": 0}),
                    |h| json!({"url": render(&h.url, vars), "interval": h.interval, "threshold": h.threshold})),
                "health": if app.healthcheck.is_some() { "initializing" } else { "disabled" },
                "group": app.group,
                "hidden": app.hidden,
                "open_in": app.open_in,
                "tooltip": app.tooltip,
                "statuses": [],
            })
        })
        .collect();
    let mut log_sources = Vec::new();
    let scripts: Vec<_> = a
        .scripts
        .iter()
        .map(|s| {
            let source_id = crate::api::new_id();
            log_sources.push(json!({
                "id": source_id, "workspace_agent_id": agent_id, "created_at": now,
                "display_name": s.display_name, "icon": s.icon,
            }));
            json!({
                "id": crate::api::new_id(),
                "log_source_id": source_id,
                "log_path": s.log_path,
                "script": s.script,
                "cron": s.cron,
                "run_on_start": s.run_on_start,
                "run_on_stop": s.run_on_stop,
                "start_blocks_login": s.start_blocks_login,
                "timeout": s.timeout,
                "display_name": s.display_name,
            })
        })
        .collect();
    json!({
        "id": agent_id,
        "created_at": now,
        "updated_at": now,
        "name": a.name,
        "resource_id": resource_id,
        "architecture": a.architecture,
        "operating_system": a.operating_system,
        "environment_variables": {},
        "directory": a.directory,
        "expanded_directory": "",
        "version": "",
        "api_version": "",
        "apps": apps,
        "scripts": scripts,
        "log_sources": log_sources,
        "lifecycle_state": "created",
        "logs_length": 0,
        "logs_overflowed": false,
        "connection_timeout_seconds": a.connection_timeout_seconds,
        "troubleshooting_url": a.troubleshooting_url,
        "subsystems": [],
        "health": {"healthy": false, "reason": "agent is not running"},
        "display_apps": [],
        "startup_script_behavior": "non-blocking",
        "parent_id": null,
    })
}
