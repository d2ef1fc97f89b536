//! A workspace build job: set up, plan, run the transition's steps, clean up, and complete
//! everything in one transaction.

use super::archive;
use super::control::{JobControl, StopReason};
use super::logwriter::{LogWriter, SOURCE_DAEMON};
use super::plan::plan_resources;
use super::procs::{Marks, Record};
use super::queue::{Acquired, BuildWork, JobQueue};
use super::runner::{StepContext, StepsOutcome, run_steps};
use super::step_user::StepUser;
use crate::domain::builds::build_end;
use crate::model::{JobStatus, Transition, WorkspaceResource};
use crate::store::{BuildCompletion, BuildRow, JobRow, StoreResult};
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

/// Runs the build and reports its end; with `take_next`, the end also takes the worker's
/// next job, which is returned.
#[allow(clippy::too_many_arguments)]
pub fn run(
    data_dir: &Path,
    step_user: Option<&StepUser>,
    queue: &dyn JobQueue,
    job: &JobRow,
    worker_id: &str,
    work: BuildWork,
    mut log: LogWriter,
    control: &JobControl,
    take_next: bool,
) -> StoreResult<Option<Acquired>> {
    let work_dir = data_dir.join("jobs").join(&job.id);
    let ws_dir = workspace_dir(data_dir, &work.build.workspace_id);
    let result = execute(&work, &mut log, control, &work_dir, &ws_dir, step_user);
    // Whatever the end (the steps' processes are gone by now), before the job is reported.
    remove_leftovers(&work_dir);
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
    let done = BuildCompletion {
        error,
        new_state,
        resources,
        ttl_ms: work.ttl_ms,
        timings: log.timings.take(),
    };
    // A worker that goes on takes its next job in the same commit as this one's end.
    let (status, next) = if take_next {
        queue.complete_build_and_take(&job.id, worker_id, &done, &log.take())?
    } else {
        (
            queue.complete_build(&job.id, worker_id, &done, &log.take())?,
            None,
        )
    };
    if build_end(work.build.transition, status.unwrap_or(JobStatus::Failed)).deletes_workspace {
        let _ = std::fs::remove_dir_all(ws_dir);
    }
    Ok(next)
}

/// What a job keeps in `<data-dir>/jobs` while it runs: the unpacked template, the state file
/// and the record of its step processes (`procs`).
fn remove_leftovers(work_dir: &Path) {
    let _ = std::fs::remove_dir_all(work_dir);
    for ext in ["state", "procs"] {
        let _ = std::fs::remove_file(work_dir.with_extension(ext));
    }
}

enum Executed {
    Done {
        state: Option<Vec<u8>>,
        resources: Vec<WorkspaceResource>,
    },
    Failed(String),
    Stopped(StopReason),
}

fn execute(
    work: &BuildWork,
    log: &mut LogWriter,
    control: &JobControl,
    work_dir: &Path,
    ws_dir: &Path,
    step_user: Option<&StepUser>,
) -> StoreResult<Executed> {
    let build = &work.build;
    log.stage("Setting up")?;
    let manifest = match &work.manifest {
        Ok(m) => m,
        Err(why) => return Ok(Executed::Failed(why.clone())),
    };
    let mut vars: HashMap<String, String> = work
        .parameters
        .iter()
        .map(|(k, v)| (format!("param.{k}"), v.clone()))
        .collect();
    vars.insert("workspace.name".into(), build.workspace_name.clone());
    vars.insert("owner.name".into(), build.workspace_owner_name.clone());
    vars.insert("build.number".into(), build.build_number.to_string());

    let steps = manifest.steps.for_transition(build.transition);
    let runs_steps = work.runs_steps();
    let state_file = work_dir.with_extension("state");
    let mut record = None;
    if runs_steps {
        let unpacked = std::fs::create_dir_all(work_dir)
            .map_err(|e| e.to_string())
            .and_then(|_| archive::extract(&work.archive, work_dir));
        if let Err(e) = unpacked {
            return Ok(Executed::Failed(format!("cannot unpack the template: {e}")));
        }
        let prepared = std::fs::create_dir_all(ws_dir)
            .and_then(|_| std::fs::write(&state_file, &work.state))
            .and_then(|_| match step_user {
                Some(user) => hand_over(user, work_dir, ws_dir, &state_file),
                None => Ok(()),
            });
        if let Err(e) = prepared {
            return Ok(Executed::Failed(format!(
                "cannot prepare the workspace folder: {e}"
            )));
        }
        match Record::create(work_dir.with_extension("procs"), marks(build)) {
            Ok(r) => record = Some(r),
            Err(e) => {
                return Ok(Executed::Failed(format!(
                    "cannot record the job's processes: {e}"
                )));
            }
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
    if let Some(record) = record {
        let ctx = StepContext {
            env: environment(build, &work.parameters, ws_dir, &state_file),
            vars: vars.clone(),
            dir: work_dir.to_path_buf(),
            record,
            user: step_user.map(|u| (u.uid, u.gid)),
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
        plan_resources(manifest, &build.job.id, build.transition, &vars)
    };
    Ok(Executed::Done {
        state: new_state,
        resources,
    })
}

/// What the steps of a build may change, handed to `--step-user`: the unpacked template (their
/// working folder), the state file, and the workspace's folder (once: later builds find it
/// theirs). `jobs/` itself stays root's, so the state file kiln reads back is the one it made.
fn hand_over(
    user: &StepUser,
    work_dir: &Path,
    ws_dir: &Path,
    state_file: &Path,
) -> std::io::Result<()> {
    user.hand_over(work_dir)?;
    user.hand_over(state_file)?;
    if !user.owns(ws_dir) {
        user.hand_over(ws_dir)?;
    }
    Ok(())
}

/// The entries of `environment` that mark the processes of this build's steps (one build of
/// one workspace), and whatever they start.
fn marks(build: &BuildRow) -> Marks {
    [
        format!("KILN_WORKSPACE_ID={}", build.workspace_id),
        format!("KILN_BUILD_NUMBER={}", build.build_number),
    ]
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
