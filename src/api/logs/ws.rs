//! A job's log followed over a WebSocket (see `answer.rs`), Coder's way: one JSON log per text
//! frame, a ping every 15 s, then close 1000 `done`.
//!
//! kiln writes the frames itself (actix-http's handshake and frame codec) instead of through
//! actix-ws's session: a chunk of lines goes to the connection as one buffer of frames, each
//! line's frame encoded once for all its followers (`app::logs::line`), rather than one message,
//! one encoding and one fresh buffer per line per follower.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::logs::format::{Format, LogQuery, text_line};
use crate::app::logs::follower::{CUT_OFF, Follower, KEEPALIVE, Step, send_stall};
use crate::app::logs::line::{Line, join, ws_text};
use actix_http::ws::{CloseCode, CloseReason, OpCode, Parser};
use actix_web::body::{BodyStream, MessageBody};
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Chunks of frames waiting for the connection: a follower holds at most this many.
const QUEUED: usize = 2;
/// The largest frame a client may send (actix-ws's default).
const MAX_FRAME: usize = 64 * 1024;

pub(crate) fn websocket(
    state: State,
    req: &HttpRequest,
    payload: web::Payload,
    job_id: Arc<str>,
    q: LogQuery,
    permit: crate::app::streams::StreamPermit,
) -> ApiResult<HttpResponse> {
    let mut handshake = actix_http::ws::handshake(req.head()).map_err(|e| {
        ApiError::bad_request("Invalid WebSocket upgrade request.").with_detail(e.to_string())
    })?;
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUED);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    let response = handshake
        .message_body(BodyStream::new(body).boxed())
        .map_err(|e| ApiError::internal("Internal error upgrading to a WebSocket.", e))?;
    let follower = Follower::new(
        &state.store,
        &*state.events,
        &state.tails,
        job_id,
        q.after,
        q.before,
    )
    .holding(permit);
    let open = crate::api::middleware::metrics::websocket(req);
    actix_web::rt::spawn(async move {
        let _open = open;
        serve(follower, q.format, Out(tx), payload).await;
    });
    Ok(response.into())
}

/// The connection's side of the channel; when it is dropped the response ends.
struct Out(mpsc::Sender<Bytes>);

impl Out {
    /// Queues bytes for the connection; false when it is gone or took nothing for too long.
    async fn send(&self, bytes: Bytes, job_id: &str) -> bool {
        match actix_web::rt::time::timeout(send_stall(), self.0.send(bytes)).await {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                log::info!("{CUT_OFF} (job {job_id})");
                false
            }
        }
    }

    async fn control(&self, op: OpCode, payload: &[u8], job_id: &str) -> bool {
        let mut out = BytesMut::new();
        Parser::write_message(&mut out, payload, op, true, false);
        self.send(out.freeze(), job_id).await
    }

    async fn close(&self, reason: Option<CloseReason>, job_id: &str) {
        let mut out = BytesMut::new();
        Parser::write_close(&mut out, reason, false);
        self.send(out.freeze(), job_id).await;
    }
}

/// The lines as text frames, one buffer.
fn frames(lines: &[Arc<Line>], format: Format) -> Bytes {
    match format {
        Format::Json => join(lines.iter().map(|l| l.ws_frame()), b""),
        Format::Text => {
            let mut out = BytesMut::new();
            for l in lines {
                ws_text(&mut out, text_line(&l.row).trim_end_matches('\n'));
            }
            out.freeze()
        }
    }
}

/// Sends the follower's lines and a ping every `KEEPALIVE`, answers the client's pings, and
/// ends on the job's end, the client's close, or a connection that takes nothing for too long.
async fn serve(follower: Follower, format: Format, out: Out, mut payload: web::Payload) {
    let job_id = follower.job_id.clone();
    let mut ping = actix_web::rt::time::interval(KEEPALIVE);
    ping.tick().await;
    let mut next = Box::pin(follower.next());
    let mut incoming = BytesMut::new();
    loop {
        tokio::select! {
            (f, step) = &mut next => {
                match step {
                    Step::Logs(lines) => {
                        if !out.send(frames(&lines, format), &job_id).await {
                            return;
                        }
                    }
                    Step::Idle => {}
                    Step::End => {
                        let done = CloseReason {
                            code: CloseCode::Normal,
                            description: Some("done".into()),
                        };
                        out.close(Some(done), &job_id).await;
                        return;
                    }
                }
                next = Box::pin(f.next());
            }
            _ = ping.tick() => {
                if !out.control(OpCode::Ping, b"", &job_id).await {
                    return;
                }
            }
            read = payload.next() => {
                let Some(Ok(bytes)) = read else {
                    out.close(None, &job_id).await;
                    return;
                };
                incoming.extend_from_slice(&bytes);
                loop {
                    match Parser::parse(&mut incoming, true, MAX_FRAME) {
                        Ok(None) => break,
                        Ok(Some((_, OpCode::Ping, data))) => {
                            let data = data.unwrap_or_default();
                            if !out.control(OpCode::Pong, &data, &job_id).await {
                                return;
                            }
                        }
                        Ok(Some((_, OpCode::Close, _))) | Err(_) => {
                            out.close(None, &job_id).await;
                            return;
                        }
                        Ok(Some(_)) => {}
                    }
                }
            }
        }
    }
}
