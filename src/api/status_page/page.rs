//! The status page: its files (embedded in the binary from `static/`), and kiln's own overview
//! endpoints it reads: `GET /api/v2/kiln/session`, `GET /api/v2/kiln/overview` and the live
//! `GET /api/v2/kiln/events`.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::auth::serde_urlencoded_pairs;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::app::state::AppState;
use crate::model::overview::{Overview, QueuedJob, Workers};
use crate::model::{BuildStatus, Time};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use rust_embed::Embed;

/// Builds listed in an overview, newest first.
const RECENT_BUILDS: usize = 50;
/// The head of the queue the overview lists (its length is given whole).
pub const QUEUE_SHOWN: i64 = 100;

#[derive(Embed)]
#[folder = "static/"]
struct StaticFiles;

/// What the page shows first, in one request that answers 200 whatever the case (so a first
/// visit logs no failed request): whether a user exists yet, and who is signed in, if anyone.
pub async fn session(state: State, actor: Option<Actor>) -> ApiResult<Reply> {
    blocking(move || {
        let user = match &actor {
            Some(a) => Some(crate::api::present::views::user_json(&state, &a.user)?),
            None => None,
        };
        let has_first_user = user.is_some() || state.store.user_count()? > 0;
        ok(&serde_json::json!({"has_first_user": has_first_user, "user": user}))
    })
    .await
}

pub async fn index(req: HttpRequest) -> ApiResult<HttpResponse> {
    serve_file(&req, "index.html")
}

pub async fn asset(req: HttpRequest, file: web::Path<String>) -> ApiResult<HttpResponse> {
    if file.as_str() == "index.html" {
        return Err(ApiError::not_found());
    }
    serve_file(&req, &file)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// One embedded file. Browsers revalidate every time (`no-cache`) and get a 304 while the
/// file's hash is unchanged, so a new kiln binary never leaves a stale page behind.
fn serve_file(req: &HttpRequest, name: &str) -> ApiResult<HttpResponse> {
    let file = StaticFiles::get(name).ok_or_else(ApiError::not_found)?;
    let hash = file.metadata.sha256_hash();
    let etag = format!(
        "\"{}\"",
        hash[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let unchanged = if_none_match(req, &etag);
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if name.ends_with(".html") {
        response
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; object-src 'none'; \
                 base-uri 'none'; frame-ancestors 'none'",
            ))
            .insert_header((header::REFERRER_POLICY, "no-referrer"));
    }
    if unchanged {
        return Ok(response.finish());
    }
    Ok(response
        .insert_header((header::CONTENT_TYPE, content_type(name)))
        .body(file.data.into_owned()))
}

fn if_none_match(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// The `status` query parameter: `None` when absent or empty; 400 when not a build status.
pub fn status_filter(req: &HttpRequest) -> ApiResult<Option<BuildStatus>> {
    let Some((_, word)) = serde_urlencoded_pairs(req.query_string())
        .into_iter()
        .find(|(k, _)| k == "status")
    else {
        return Ok(None);
    };
    if word.is_empty() {
        return Ok(None);
    }
    BuildStatus::parse(&word).map(Some).ok_or_else(|| {
        ApiError::bad_request("Query parameters have invalid values.").with_validation(
            "status",
            format!(
                "Query param \"status\" must be a build status (pending, starting, running, \
                 stopping, stopped, failed, canceling, canceled, deleting, deleted): {word:?}"
            ),
        )
    })
}

pub async fn overview(state: State, actor: Actor, req: HttpRequest) -> ApiResult<Reply> {
    let filter = status_filter(&req)?;
    blocking(move || ok(&build_overview(&state, &actor, filter)?)).await
}

/// Every daemon of the server's organizations, for the overview.
fn daemon_summaries(state: &AppState) -> ApiResult<Vec<crate::model::overview::DaemonSummary>> {
    let mut out = Vec::new();
    for org in state.store.list_organizations()? {
        for d in crate::app::daemons::listed_daemons(state, &org.id)? {
            let view = crate::api::provisioners::daemons::daemon_view(&d, &org.id);
            if out
                .iter()
                .any(|s: &crate::model::overview::DaemonSummary| s.id == d.row.id)
            {
                continue;
            }
            out.push(crate::model::overview::DaemonSummary {
                id: d.row.id.clone(),
                name: view.name().to_string(),
                kind: if d.row.key_id.is_some() {
                    "external"
                } else {
                    "built-in"
                }
                .into(),
                tags: d.row.tags.clone(),
                status: format!("{:?}", d.status).to_lowercase(),
                current_job_id: d.row.current_job.as_ref().map(|j| j.id.clone()),
                last_seen_at: d.row.last_seen_at,
            });
        }
    }
    Ok(out)
}

/// The overview as `actor` may see it. Blocking: call from `web::block`.
pub fn build_overview(
    state: &AppState,
    actor: &Actor,
    filter: Option<BuildStatus>,
) -> ApiResult<Overview> {
    // The policy that serves the API: whoever reads a workspace sees its builds here.
    let caller = actor.caller();
    let queue: Vec<QueuedJob> = state
        .store
        .pending_queue(QUEUE_SHOWN)?
        .into_iter()
        .filter(|row| caller.sees_queued_job(row.workspace_owner_id.as_deref()))
        .map(|row| row.job)
        .collect();
    // Whoever sees every job sees the whole queue's length; a member only what they see of
    // its head (the length of the others' part is theirs).
    let queue_size = match caller.workspace_owner_filter() {
        None => state.queue_ranks.size(&*state.store)?,
        Some(_) => queue.len() as i64,
    };
    let mut builds = Vec::new();
    state
        .store
        .scan_recent_builds(caller.workspace_owner_filter(), &mut |facts| {
            if filter.is_none_or(|f| facts.status() == f) {
                builds.push(facts.summary());
            }
            builds.len() < RECENT_BUILDS
        })?;
    let now = Time::now();
    Ok(Overview {
        version: crate::api::meta::version(),
        started_at: state.started_at,
        uptime_seconds: ((now.micros() - state.started_at.micros()) / 1_000_000).max(0),
        workers: Workers {
            busy: state.store.busy_job_count()?,
            total: state.config.workers,
        },
        daemons: if caller.manages_templates() {
            daemon_summaries(state)?
        } else {
            Vec::new()
        },
        queue,
        queue_size,
        builds,
        database_bytes: match caller.manages_templates() {
            true => Some(state.store.database_size()?),
            false => None,
        },
    })
}
