//! `GET /workspaces/{workspace}/watch` (Server-Sent Events) and `…/watch-ws` (WebSocket):
//! the workspace now, then again each time it or its latest build changes, in Coder's
//! `ServerSentEvent` shape (`{"type": "data", "data": <Workspace>}`, pings between).
//! The server's overview feed (`app::caches::overview_feed`: any job, build or workspace
//! change, from any server, its marker read once for every watcher) wakes the watcher, and it
//! looks again at least every `PING_EVERY`; the workspace is sent only when it differs from
//! the last one sent. The session is checked again at every look.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::auth::{authenticate, token_from_request};
use crate::api::extract::lookup::find_workspace;
use crate::api::present::render::workspace_json;
use crate::app::state::AppState;
use actix_web::http::header;
use actix_web::rt::time::timeout;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PING_EVERY: Duration = Duration::from_secs(10);

struct Watch {
    state: Arc<AppState>,
    /// The overview feed's generation: it moves when a job, build or workspace changed.
    changes: tokio::sync::watch::Receiver<u64>,
    token: String,
    workspace: String,
    last_sent: Option<String>,
    last_write: Instant,
    ended: bool,
    /// Counted in `kiln_live_followers` while it lives.
    _counted: crate::metrics::Follower,
    /// Its place among the caller's live streams.
    _permit: crate::app::streams::StreamPermit,
}

/// What a look found.
enum Look {
    /// The workspace as the caller sees it now (JSON text).
    Data(String),
    /// The watch ends with this error (signed out, or the workspace is gone).
    Error(Value),
}

impl Watch {
    async fn new(
        state: State,
        actor: &Actor,
        req: &HttpRequest,
        workspace: String,
    ) -> ApiResult<Watch> {
        let permit = state.streams.open(&actor.user.id)?;
        let token = token_from_request(req).unwrap_or_default();
        let mut changes = state.overview_feed.subscribe();
        changes.mark_unchanged();
        let watch = Watch {
            state: state.into_inner(),
            changes,
            token,
            workspace,
            last_sent: None,
            last_write: Instant::now(),
            ended: false,
            _counted: crate::metrics::global().follower(),
            _permit: permit,
        };
        // A workspace the caller cannot read is refused before the stream starts.
        watch.fetch().await?;
        Ok(watch)
    }

    async fn fetch(&self) -> ApiResult<String> {
        let state = self.state.clone();
        let token = self.token.clone();
        let workspace = self.workspace.clone();
        web::block(move || -> ApiResult<String> {
            let actor = authenticate(&web::Data::from(state.clone()), Some(token))?;
            let w = find_workspace(&state, &actor, &workspace)?;
            Ok(serde_json::to_string(&workspace_json(&state, &w)?).unwrap_or_default())
        })
        .await
        .map_err(|e| ApiError::internal("Internal error.", e))?
    }

    async fn look(&self) -> Look {
        match self.fetch().await {
            Ok(text) => Look::Data(text),
            Err(e) => Look::Error(serde_json::to_value(&e.body).unwrap_or_default()),
        }
    }

    /// The next thing to send: `None` at the end, `Some(None)` for a ping.
    async fn next(&mut self) -> Option<Option<Look>> {
        if self.ended {
            return None;
        }
        loop {
            if self.last_sent.is_some() {
                let wait = PING_EVERY.saturating_sub(self.last_write.elapsed());
                if let Ok(Err(_)) = timeout(wait, self.changes.changed()).await {
                    // The feed is gone (the server is stopping): look at the ping's pace.
                    actix_web::rt::time::sleep(wait).await;
                }
            }
            if self.state.engine.is_stopping() {
                return None;
            }
            match self.look().await {
                Look::Data(text) if self.last_sent.as_deref() != Some(text.as_str()) => {
                    self.last_sent = Some(text.clone());
                    self.last_write = Instant::now();
                    return Some(Some(Look::Data(text)));
                }
                Look::Data(_) => {}
                Look::Error(body) => {
                    self.ended = true;
                    return Some(Some(Look::Error(body)));
                }
            }
            if self.last_write.elapsed() >= PING_EVERY {
                self.last_write = Instant::now();
                return Some(None);
            }
        }
    }
}

/// Server-Sent Events, written as Coder's `ServerSentEventSender` writes them.
pub async fn watch(
    state: State,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let watch = Watch::new(state, &actor, &req, path.into_inner()).await?;
    let events = futures_util::stream::unfold(watch, |mut w| async move {
        let event = match w.next().await? {
            None => "event: ping\n\n".to_string(),
            Some(Look::Data(text)) => format!("event: data\ndata: {text}\n\n"),
            Some(Look::Error(body)) => format!("event: error\ndata: {body}\n\n"),
        };
        Some((Ok::<_, actix_web::Error>(web::Bytes::from(event)), w))
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(events))
}

/// The same events as JSON text frames on a WebSocket (`codersdk.ServerSentEvent`).
pub async fn watch_ws(
    state: State,
    actor: Actor,
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let mut watch = Watch::new(state, &actor, &req, path.into_inner()).await?;
    let (response, mut session, mut incoming) = actix_ws::handle(&req, payload).map_err(|e| {
        ApiError::bad_request("Invalid WebSocket upgrade request.").with_detail(e.to_string())
    })?;
    let open = crate::api::middleware::metrics::websocket(&req);
    actix_web::rt::spawn(async move {
        let _open = open;
        loop {
            tokio::select! {
                next = watch.next() => {
                    let frame = match next {
                        None => break,
                        Some(None) => {
                            if session.ping(b"").await.is_err() {
                                return;
                            }
                            continue;
                        }
                        Some(Some(Look::Data(text))) => format!("{{\"type\":\"data\",\"data\":{text}}}"),
                        Some(Some(Look::Error(body))) => json!({"type": "error", "data": body}).to_string(),
                    };
                    if session.text(frame).await.is_err() {
                        return;
                    }
                }
                msg = incoming.next() => {
                    match msg {
                        Some(Ok(actix_ws::Message::Ping(p))) if session.pong(&p).await.is_err() => return,
                        Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => return,
                        _ => {}
                    }
                }
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}
