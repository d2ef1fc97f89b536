//! A job's log followed over a WebSocket (see `logs.rs`).

use super::log_follower::{CUT_OFF, Follower, KEEPALIVE, Step, send_stall};
use super::log_format::{Format, LogQuery, text_line};
use super::{ApiError, ApiResult};
use crate::api::State;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use std::sync::Arc;

/// Coder's way: one JSON log per text frame, a ping every 15 s, then close 1000 `done`.
pub(super) fn websocket(
    state: State,
    req: &HttpRequest,
    payload: web::Payload,
    job_id: Arc<str>,
    q: LogQuery,
) -> ApiResult<HttpResponse> {
    use actix_web::rt::time::timeout;
    use actix_ws::{CloseCode, CloseReason, Message};
    let (response, mut session, mut incoming) = actix_ws::handle(req, payload).map_err(|e| {
        ApiError::bad_request("Invalid WebSocket upgrade request.").with_detail(e.to_string())
    })?;
    let follower = Follower::new(&state, job_id, q.after, q.before);
    let format = q.format;
    let open = super::http_metrics::websocket(req);
    actix_web::rt::spawn(async move {
        let _open = open;
        let mut ping = actix_web::rt::time::interval(KEEPALIVE);
        ping.tick().await;
        let mut next = Box::pin(follower.next());
        loop {
            tokio::select! {
                (f, step) = &mut next => {
                    match step {
                        Step::Logs(lines) => {
                            for l in &lines {
                                let frame: bytestring::ByteString = match format {
                                    Format::Json => l.json.clone(),
                                    Format::Text => {
                                        text_line(&l.row).trim_end_matches('\n').into()
                                    }
                                };
                                // A connection that takes nothing for a while is let go.
                                let sent = timeout(send_stall(), session.text(frame)).await;
                                if !matches!(sent, Ok(Ok(()))) {
                                    if sent.is_err() {
                                        log::info!("{CUT_OFF} (job {})", f.job_id);
                                    }
                                    return;
                                }
                            }
                        }

                        Step::Idle => {}
                        Step::End => {
                            let reason = CloseReason {
                                code: CloseCode::Normal,
                                description: Some("done".into()),
                            };
                            let _ = timeout(send_stall(), session.close(Some(reason))).await;
                            return;
                        }
                    }
                    next = Box::pin(f.next());
                }
                _ = ping.tick() => {
                    if !matches!(timeout(send_stall(), session.ping(b"")).await, Ok(Ok(()))) {
                        return;
                    }
                }
                msg = incoming.recv() => match msg {
                    Some(Ok(Message::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                        let _ = session.close(None).await;
                        return;
                    }
                    Some(Ok(_)) => {}
                },
            }
        }
    });
    Ok(response)
}
