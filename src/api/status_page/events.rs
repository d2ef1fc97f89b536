//! `GET /api/v2/kiln/events`: Server-Sent Events that push the caller's overview when it
//! changes. The store's `Topic::Overview` notices wake the stream (and a backup look every
//! `BACKUP_POLL` catches a change made by other means); a cheap change marker is then read, and
//! only when it moved is the overview rebuilt, at most once per `MIN_GAP`. It is sent only when
//! what the caller sees differs from the last one sent.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::auth::{authenticate, token_from_request};
use crate::api::status_page::page::{build_overview, status_filter};
use crate::app::state::AppState;
use crate::events::{Subscription, Topic};
use crate::model::BuildStatus;
use crate::model::overview::Overview;
use crate::store::ChangeMarker;
use actix_web::http::header;
use actix_web::rt::time::{sleep, timeout};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIN_GAP: Duration = Duration::from_millis(250);
const BACKUP_POLL: Duration = Duration::from_secs(1);
const KEEPALIVE_EVERY: Duration = Duration::from_secs(15);

/// What one events connection remembers between looks.
struct Stream {
    state: Arc<AppState>,
    notices: Subscription,
    token: String,
    filter: Option<BuildStatus>,
    marker: Option<ChangeMarker>,
    last_sent: Option<Overview>,
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
    let mut notices = state.events.subscribe(&Topic::Overview);
    notices.mark_seen();
    let sub = Stream {
        state: state.into_inner(),
        notices,
        token,
        filter,
        marker: None,
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
    let mut first_poll = sub.marker.is_none();
    loop {
        if !first_poll {
            sleep(MIN_GAP).await;
            let _ = timeout(BACKUP_POLL.saturating_sub(MIN_GAP), sub.notices.changed()).await;
        }
        first_poll = false;
        if sub.state.engine.is_stopping() {
            // The server is shutting down: end the stream so it does not hold the shutdown.
            return None;
        }
        let state = sub.state.clone();
        let marker = match web::block(move || state.store.overview_change_marker()).await {
            Ok(Ok(m)) => Some(m),
            Ok(Err(e)) => {
                log::warn!("overview events: reading the change marker: {e}");
                None
            }
            Err(e) => {
                log::warn!("overview events: {e}");
                None
            }
        };
        if let Some(marker) = marker
            && sub.marker.as_ref() != Some(&marker)
        {
            sub.marker = Some(marker);
            match rebuild(&sub).await {
                Ok(overview) => {
                    if !same_view(sub.last_sent.as_ref(), &overview) {
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

/// Authenticates again (the session may have ended) and builds the overview for that caller.
async fn rebuild(sub: &Stream) -> ApiResult<Overview> {
    let state = sub.state.clone();
    let token = sub.token.clone();
    let filter = sub.filter;
    web::block(move || {
        let actor = authenticate(&web::Data::from(state.clone()), Some(token))?;
        build_overview(&state, &actor, filter)
    })
    .await
    .map_err(|e| ApiError::internal("Internal error building the overview.", e))?
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
