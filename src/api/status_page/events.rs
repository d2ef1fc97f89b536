//! `GET /api/v2/kiln/events`: Server-Sent Events that push the caller's overview when it
//! changes. The server's overview feed (`app::caches::overview_feed`) wakes the stream when
//! what overviews show has changed (it reads the change marker once for every stream); the
//! caller's overview is then taken from the feed's shared views, built once per change and
//! view however many streams show it, at most once per `MIN_GAP` per stream. It is sent only
//! when what the caller sees differs from the last one sent.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::auth::{authenticate, token_from_request};
use crate::api::status_page::page::{build_overview, status_filter};
use crate::app::caches::overview_feed::ViewKey;
use crate::app::state::AppState;
use crate::model::BuildStatus;
use crate::model::overview::Overview;
use actix_web::http::header;
use actix_web::rt::time::{sleep, timeout};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIN_GAP: Duration = Duration::from_millis(250);
const KEEPALIVE_EVERY: Duration = Duration::from_secs(15);

/// What one events connection remembers between looks.
struct Stream {
    state: Arc<AppState>,
    /// The feed's generation: it moves when what overviews show has changed.
    changes: tokio::sync::watch::Receiver<u64>,
    token: String,
    filter: Option<BuildStatus>,
    /// Which shared overview the caller sees.
    view: ViewKey,
    /// Whether the first overview went out.
    started: bool,
    last_sent: Option<Arc<Overview>>,
    last_write: Instant,
    /// Set once the session ended: the stream says so and closes.
    closed: bool,
    /// Counted in `kiln_live_followers` while it lives.
    _counted: crate::metrics::Follower,
    /// Its place among the caller's live streams.
    _permit: crate::app::streams::StreamPermit,
}

pub async fn events(state: State, caller: Actor, req: HttpRequest) -> ApiResult<HttpResponse> {
    let filter = status_filter(&req)?;
    let permit = state.streams.open(&caller.user.id)?;
    // The Actor extractor has accepted this token; it is checked again as the stream goes on,
    // so a signed-out session stops receiving.
    let token = token_from_request(&req).unwrap_or_default();
    let mut changes = state.overview_feed.subscribe();
    changes.mark_unchanged();
    let c = caller.caller();
    let view = (
        (!c.reads_every_workspace()).then(|| caller.user.id.clone()),
        format!("{filter:?}"),
    );
    let sub = Stream {
        state: state.into_inner(),
        changes,
        token,
        filter,
        view,
        started: false,
        last_sent: None,
        last_write: Instant::now(),
        closed: false,
        _counted: crate::metrics::global().follower(),
        _permit: permit,
    };
    let retry = futures_util::stream::once(async { web::Bytes::from_static(b"retry: 2000\n\n") });
    let stream = retry
        .chain(futures_util::stream::unfold(sub, next_event))
        .map(Ok::<_, actix_web::Error>);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

/// Waits for the next thing to send: an overview, a keepalive comment, or the end.
async fn next_event(mut sub: Stream) -> Option<(web::Bytes, Stream)> {
    if sub.closed {
        return None;
    }
    loop {
        let look = if sub.started {
            sleep(MIN_GAP).await;
            let wait = KEEPALIVE_EVERY.saturating_sub(sub.last_write.elapsed());
            matches!(timeout(wait, sub.changes.changed()).await, Ok(Ok(())))
        } else {
            sub.started = true;
            true
        };
        if sub.state.engine.is_stopping() {
            // The server is shutting down: end the stream so it does not hold the shutdown.
            return None;
        }
        if look {
            let generation = *sub.changes.borrow_and_update();
            match rebuild(&sub, generation).await {
                Ok(overview) => {
                    if !same_view(sub.last_sent.as_deref(), &overview) {
                        let bytes = overview_event(&overview);
                        sub.last_sent = Some(overview);
                        sub.last_write = Instant::now();
                        return Some((bytes, sub));
                    }
                }
                Err(e) if e.status == actix_web::http::StatusCode::UNAUTHORIZED => {
                    return Some((signed_out(&mut sub), sub));
                }
                Err(e) => log::warn!("overview events: {e}"),
            }
        }
        if sub.last_write.elapsed() >= KEEPALIVE_EVERY {
            if still_signed_in(&sub).await == Some(false) {
                return Some((signed_out(&mut sub), sub));
            }
            sub.last_write = Instant::now();
            return Some((web::Bytes::from_static(b": keepalive\n\n"), sub));
        }
    }
}

/// Authenticates again (the session may have ended), then takes the caller's overview of
/// `generation` from the feed's shared views, building it if no stream of that view has.
async fn rebuild(sub: &Stream, generation: u64) -> ApiResult<Arc<Overview>> {
    let state = sub.state.clone();
    let token = sub.token.clone();
    let actor = web::block(move || authenticate(&web::Data::from(state), Some(token)))
        .await
        .map_err(|e| ApiError::internal("Internal error building the overview.", e))??;
    let state = sub.state.clone();
    let filter = sub.filter;
    sub.state
        .overview_feed
        .views
        .get(&sub.view, generation, || async move {
            web::block(move || build_overview(&state, &actor, filter))
                .await
                .map_err(|e| ApiError::internal("Internal error building the overview.", e))?
        })
        .await
}

/// `Some(false)` when the session is gone; `None` when that could not be checked.
async fn still_signed_in(sub: &Stream) -> Option<bool> {
    let state = sub.state.clone();
    let token = sub.token.clone();
    let checked = web::block(move || authenticate(&web::Data::from(state), Some(token))).await;
    match checked {
        Ok(Ok(_)) => Some(true),
        Ok(Err(e)) if e.status == actix_web::http::StatusCode::UNAUTHORIZED => Some(false),
        _ => None,
    }
}

fn signed_out(sub: &mut Stream) -> web::Bytes {
    sub.closed = true;
    web::Bytes::from_static(b"event: signed-out\ndata: {}\n\n")
}

/// Whether `next` shows the caller the same as `last` (uptime moves on by itself).
fn same_view(last: Option<&Overview>, next: &Overview) -> bool {
    last.is_some_and(|last| {
        last.workers == next.workers
            && last.queue == next.queue
            && last.queue_size == next.queue_size
            && last.builds == next.builds
            && last
                .daemons
                .iter()
                .map(|d| d.view())
                .eq(next.daemons.iter().map(|d| d.view()))
    })
}

fn overview_event(overview: &Overview) -> web::Bytes {
    let data = serde_json::to_string(overview).unwrap_or_else(|_| "{}".into());
    web::Bytes::from(format!("event: overview\ndata: {data}\n\n"))
}
