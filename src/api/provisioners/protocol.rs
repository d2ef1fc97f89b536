//! kiln's provisioner protocol, server side (`docs/provisioners.md`): external daemons
//! (`kiln provisioner start`) register, long-poll for a job, send log batches and heartbeats,
//! and complete or fail their jobs, all under `/api/v2/provisionerd/`. Every call carries a
//! provisioner key (`Coder-Provisioner-Daemon-Key`); user tokens are not accepted. The key is
//! checked before any of the body is read: a caller without a valid key is answered 401 at
//! once, whatever body it announces or sends. The queue's decisions stay in `LocalQueue`:
//! this module only checks who calls and translates.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::body::{SMALL, read_body, read_json};
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::app::state::AppState;
use crate::domain::provisioner_tags::{Tags, normalize};
use crate::events::Topic;
use crate::identity;
use crate::model::JobStatus;
use crate::provisioner::queue::JobQueue;
use crate::provisioner::remote::wire::*;
use crate::provisioner::{dry_run_job, import_job};
use crate::store::{
    DaemonRow, ImportOutcome, JOB_DRY_RUN, JOB_IMPORT, LeaseState, LogBatch, ProvisionerKeyRow,
};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use std::time::{Duration, Instant};

/// The longest an acquire waits for a job.
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// How often a waiting acquire looks whether the server is stopping.
const STOP_CHECK: Duration = Duration::from_millis(500);
/// Completions carry the new state and resources (read only from a daemon whose key is
/// valid, at most `limits::large_body_permits` at once).
const LARGE: usize = 16 << 20;

fn key_from(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The caller's key, checked before the body is read (a store read on the blocking pool; none
/// when no key is sent).
async fn caller_key(state: &State, req: &HttpRequest) -> ApiResult<ProvisionerKeyRow> {
    let key = key_from(req);
    if key.is_none() {
        return authenticate(state, key);
    }
    let state = state.clone();
    blocking(move || authenticate(&state, key)).await
}

/// The caller's key: 401 without one (a user token is no key) or with one that does not
/// exist (any more).
fn authenticate(state: &AppState, key: Option<String>) -> ApiResult<ProvisionerKeyRow> {
    let Some(key) = key else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Provisioner daemon key required.",
        )
        .with_detail(format!(
            "Only provisioner daemons may call this endpoint: send a provisioner key in the {KEY_HEADER} header (user tokens are not accepted)."
        )));
    };
    state
        .store
        .provisioner_key_by_secret(&identity::hash_secret(&key))?
        .ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, "Provisioner daemon key invalid.")
                .with_detail("The key does not exist: it is mistyped, or it was deleted.")
        })
}

/// The key and the daemon it registered: 403 when the daemon is not this key's.
fn daemon_of(state: &AppState, key: &ProvisionerKeyRow, daemon_id: &str) -> ApiResult<DaemonRow> {
    match state.store.daemon(daemon_id)? {
        Some(d) if d.key_id.as_deref() == Some(&key.id) => Ok(d),
        _ => Err(
            ApiError::forbidden("This provisioner daemon is not registered with this key.")
                .with_detail("Register first (POST /api/v2/provisionerd/register).")
                .with_validation("daemon_id", "unknown daemon"),
        ),
    }
}

fn not_held() -> ApiError {
    ApiError::conflict(NOT_HELD)
}

fn job_id(raw: &str) -> ApiResult<String> {
    crate::api::extract::fields::parse_uuid(raw)
}

pub async fn register(state: State, req: HttpRequest, payload: web::Payload) -> ApiResult<Reply> {
    let key = caller_key(&state, &req).await?;
    let body = read_body(&req, payload, SMALL).await?;
    blocking(move || {
        let r: RegisterRequest = read_json(&body)?;
        if r.name.is_empty() || r.name.len() > 64 {
            return Err(ApiError::validation()
                .with_validation("name", "A daemon name of 1 to 64 characters is required."));
        }
        // A daemon authenticated by a key carries exactly the key's tags, as in Coder: one that
        // names tags of its own is refused, so no key reaches another pool's jobs.
        if !r.tags.is_empty() {
            return Err(ApiError::forbidden(format!(
                "You aren't allowed to create provisioner daemons with scope {:?}",
                r.tags.get("scope").map_or("", String::as_str)
            ))
            .with_detail("tags are not allowed when using a provisioner key"));
        }
        let tags: Tags = key.tags.clone();
        let tags = normalize(tags, "");
        let id = state
            .store
            .register_daemon(&key, &r.name, &tags, &r.version)?;
        log::info!(
            "provisioner daemon {:?} registered (key {:?})",
            r.name,
            key.name
        );
        ok(&RegisterResponse {
            daemon_id: id,
            organization_id: key.organization_id,
            tags,
            lease_ms: state.config.provisioner_lease.as_millis() as u64,
            api_version: crate::api::provisioners::daemons::API_VERSION.into(),
        })
    })
    .await
}

pub async fn acquire(state: State, req: HttpRequest, payload: web::Payload) -> ApiResult<Reply> {
    let key = caller_key(&state, &req).await?;
    let body = read_body(&req, payload, SMALL).await?;
    let st = state.clone();
    let (daemon_id, wait) = blocking(move || {
        let r: AcquireRequest = read_json(&body)?;
        let daemon = daemon_of(&st, &key, &r.daemon_id)?;
        crate::app::daemons::mark_seen(&st, &daemon.id)?;
        Ok((daemon.id, Duration::from_millis(r.wait_ms).min(MAX_WAIT)))
    })
    .await?;
    // The long poll waits here, asynchronously, and looks for a job on the blocking pool only
    // when one was queued: a waiting daemon holds no thread. (actix goes on with a handler
    // whose client went away, so a daemon killed while it waits may still be handed the next
    // job; that job is failed by the lease: docs/provisioners.md, "Limits".)
    let deadline = Instant::now() + wait;
    loop {
        if state.engine.is_stopping() {
            return Ok(Reply::no_content());
        }
        // Subscribed before the look, so a job queued after it ends the wait.
        let mut queued = state.events.subscribe(&Topic::Queue);
        let (st, id) = (state.clone(), daemon_id.clone());
        if let Some(a) = blocking(move || Ok(st.queue.acquire(&id, Duration::ZERO)?)).await? {
            return ok(&AcquiredJob::from(a));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Reply::no_content());
        }
        // A look at the engine at least every STOP_CHECK: a server stopping answers at once.
        let _ = actix_web::rt::time::timeout(left.min(STOP_CHECK), queued.changed()).await;
    }
}

fn lease_word(state: LeaseState) -> ApiResult<Reply> {
    let word = match state {
        LeaseState::Held => "held",
        LeaseState::CancelRequested => "canceled",
        LeaseState::Lost => return Err(not_held()),
    };
    ok(&UpdateResponse { state: word.into() })
}

/// What every call about a job begins with (once the caller's key is checked): the job from
/// the path, the body, and the daemon the body names (registered with that key).
fn job_call<R: serde::de::DeserializeOwned + DaemonCall>(
    state: &AppState,
    key: &ProvisionerKeyRow,
    path: &str,
    body: &[u8],
) -> ApiResult<(String, DaemonRow, R)> {
    let job = job_id(path)?;
    let r: R = read_json(body)?;
    let daemon = daemon_of(state, key, r.daemon_id())?;
    Ok((job, daemon, r))
}

/// The log lines a call carries, as the queue takes them.
fn batch_of(logs: &WireLogs) -> ApiResult<LogBatch> {
    logs.to_batch()
        .map_err(|e| ApiError::validation().with_validation("logs", e))
}

/// The answer to a completion or failure that was stored: the job's final status.
fn final_status(state: &AppState, job_id: &str) -> ApiResult<Reply> {
    let status = state
        .store
        .job(job_id)?
        .map_or(JobStatus::Failed, |j| j.status());
    ok(&CompleteResponse { status })
}

pub async fn update(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> ApiResult<Reply> {
    let key = caller_key(&state, &req).await?;
    let body = read_body(&req, payload, LARGE).await?;
    blocking(move || {
        let (job, daemon, r): (_, _, UpdateRequest) = job_call(&state, &key, &path, &body)?;
        let row = state.store.job(&job)?.ok_or_else(ApiError::not_found)?;
        let mut batch = batch_of(&r.logs)?;
        if row.kind == JOB_IMPORT || row.kind == JOB_DRY_RUN {
            // An import's or a dry run's log is the server's own check (`complete`): a
            // daemon's lines would only be its word.
            batch.lines.clear();
        }
        let lease = if batch.lines.is_empty() {
            state.queue.heartbeat(&job, &daemon.id, r.renew)?
        } else {
            state.queue.append_logs(&job, &daemon.id, &batch)?
        };
        crate::app::daemons::mark_seen(&state, &daemon.id)?;
        lease_word(lease)
    })
    .await
}

/// A completion the job already has: the daemon's retry of one that was stored.
fn already_ended(
    state: &AppState,
    job_id: &str,
    daemon_id: &str,
    ok_if: impl Fn(JobStatus, &str) -> bool,
) -> ApiResult<Reply> {
    let job = state.store.job(job_id)?.ok_or_else(ApiError::not_found)?;
    let status = job.status();
    if job.completed_at.is_some()
        && job.worker_id.as_deref() == Some(daemon_id)
        && ok_if(status, &job.error)
    {
        return ok(&CompleteResponse { status });
    }
    Err(not_held())
}

pub async fn complete(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> ApiResult<Reply> {
    let key = caller_key(&state, &req).await?;
    let body = read_body(&req, payload, LARGE).await?;
    blocking(move || {
        let (job, daemon, r): (_, _, CompleteRequest) = job_call(&state, &key, &path, &body)?;
        let logs = batch_of(&r.logs)?;
        match r.result {
            WireResult::Import { outcome } => {
                let (outcome, logs) = import_outcome(&state, &job, outcome, logs)?;
                let held = state
                    .store
                    .complete_import(&job, &daemon.id, &outcome, &logs)?;
                if held {
                    return final_status(&state, &job);
                }
                already_ended(&state, &job, &daemon.id, |status, error| match &outcome {
                    ImportOutcome::Valid { .. } => status == JobStatus::Succeeded,
                    ImportOutcome::Invalid(e) => status == JobStatus::Failed && error == e,
                })
            }
            WireResult::DryRun { .. } => {
                let (status, held) = dry_run_end(&state, &job, &daemon.id)?;
                if held {
                    return final_status(&state, &job);
                }
                already_ended(&state, &job, &daemon.id, |ended, _| {
                    ended == status || ended == JobStatus::Canceled
                })
            }
            WireResult::Build {
                error,
                new_state,
                resources,
                ttl_ms,
                timings,
            } => {
                let done = build_completion(error, new_state, resources, ttl_ms, timings)
                    .map_err(|e| ApiError::validation().with_validation("result", e))?;
                if let Some(status) = state.queue.complete_build(&job, &daemon.id, &done, &logs)? {
                    return ok(&CompleteResponse { status });
                }
                already_ended(&state, &job, &daemon.id, |status, error| {
                    if done.error.is_empty() {
                        matches!(status, JobStatus::Succeeded | JobStatus::Canceled)
                    } else {
                        (status == JobStatus::Failed && error == done.error)
                            || status == JobStatus::Canceled
                    }
                })
            }
        }
    })
    .await
}

/// What a daemon's import completion stores. A daemon may fail an import (its error and lines
/// are kept), but what a valid version runs comes only from the uploaded archive: the server
/// reads and checks the archive's kiln.json itself, keeps its own manifest and README, and
/// writes its own lines; whatever manifest or README the daemon sent is ignored.
fn import_outcome(
    state: &AppState,
    job_id: &str,
    reported: ImportOutcome,
    logs: LogBatch,
) -> ApiResult<(ImportOutcome, LogBatch)> {
    let job = state.store.job(job_id)?.ok_or_else(ApiError::not_found)?;
    if job.kind != JOB_IMPORT {
        return Err(ApiError::validation()
            .with_validation("result", "an import result for a job that is not an import"));
    }
    if let ImportOutcome::Invalid(_) = reported {
        return Ok((reported, logs));
    }
    let archive = state
        .store
        .file(&job.file_id)?
        .map(|f| f.data)
        .unwrap_or_default();
    let checked = import_job::check(&archive);
    let batch = checked.log.batch(job.logs_length, job.logs_overflowed);
    Ok((checked.outcome, batch))
}

/// A daemon's dry run, ended with the server's own plan of it (the resources a daemon sends
/// are ignored, as an import's manifest is): the status it ends with, and whether the daemon
/// still held it.
fn dry_run_end(state: &AppState, job_id: &str, daemon_id: &str) -> ApiResult<(JobStatus, bool)> {
    let job = state.store.job(job_id)?.ok_or_else(ApiError::not_found)?;
    if job.kind != JOB_DRY_RUN {
        return Err(ApiError::validation().with_validation(
            "result",
            "a dry run's result for a job that is not a dry run",
        ));
    }
    let work = state.queue.dry_run_work(&job)?;
    let checked = dry_run_job::check(&job.id, &work);
    let logs = checked.log.batch(job.logs_length, job.logs_overflowed);
    Ok(match checked.outcome {
        Ok(resources) => (
            JobStatus::Succeeded,
            state
                .store
                .complete_dry_run(job_id, daemon_id, &resources, &logs)?,
        ),
        Err(error) => (
            JobStatus::Failed,
            state.store.fail_job(job_id, daemon_id, &error, &logs)?,
        ),
    })
}

pub async fn fail(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> ApiResult<Reply> {
    let key = caller_key(&state, &req).await?;
    let body = read_body(&req, payload, LARGE).await?;
    blocking(move || {
        let (job, daemon, r): (_, _, FailRequest) = job_call(&state, &key, &path, &body)?;
        if r.error.is_empty() {
            return Err(ApiError::validation().with_validation("error", "an error is required"));
        }
        let logs = batch_of(&r.logs)?;
        if state.store.fail_job(&job, &daemon.id, &r.error, &logs)? {
            return final_status(&state, &job);
        }
        already_ended(&state, &job, &daemon.id, |status, error| {
            (status == JobStatus::Failed && error == r.error) || status == JobStatus::Canceled
        })
    })
    .await
}

pub async fn release(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> ApiResult<Reply> {
    let key = caller_key(&state, &req).await?;
    let body = read_body(&req, payload, SMALL).await?;
    blocking(move || {
        let (job, daemon, _): (_, _, ReleaseRequest) = job_call(&state, &key, &path, &body)?;
        let found = state.store.job(&job)?.ok_or_else(ApiError::not_found)?;
        if found.worker_id.as_deref() != Some(&daemon.id) || found.completed_at.is_some() {
            return Err(not_held());
        }
        state.queue.release(&job, &daemon.id)?;
        Ok(Reply::no_content())
    })
    .await
}
