//! A job's logs, for both `/workspacebuilds/{id}/logs` and `/templateversions/{id}/logs`.
//!
//! Without `follow`: the stored lines as a JSON array (or text lines), streamed page by page.
//! With `follow`: every line once, in id order, then the end once the job has completed, over a
//! WebSocket (an upgrade request), Server-Sent Events (`Accept: text/event-stream`) or chunked
//! NDJSON / text lines. A follower subscribes to the job's `Topic::Logs` notices first, then
//! reads the store, and on every "look again" reads the store after the last id it sent:
//! nothing is lost or sent twice between the stored part and the live part.

use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::logs::format::{Format, LogQuery, parse_query, text_line};
use crate::app::logs::PAGE;
use crate::app::logs::follower::{CUT_OFF, Follower, Step, read_page, send_stall};
use crate::app::logs::line::json_text;
use crate::app::logs::line::{Line, join};
use crate::store::LogRow;
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::stream;
use std::sync::Arc;
use std::time::Instant;

/// Serves a job's logs as the request asks (see the module documentation); a follow holds
/// one of `user_id`'s live streams while it lasts.
pub async fn serve(
    state: State,
    user_id: &str,
    req: HttpRequest,
    payload: web::Payload,
    job_id: String,
) -> ApiResult<HttpResponse> {
    let q = parse_query(&req)?;
    let job_id: Arc<str> = job_id.into();
    if !q.follow {
        return stored(state, job_id, q).await;
    }
    let permit = state.streams.open(user_id)?;
    let wants = |name: header::HeaderName, what: &str| {
        req.headers().get_all(name).any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains(what))
        })
    };
    if wants(header::UPGRADE, "websocket") {
        return crate::api::logs::ws::websocket(state, &req, payload, job_id, q, permit);
    }
    let sse = wants(header::ACCEPT, "text/event-stream");
    let mut after = q.after;
    if sse
        && let Some(id) = req
            .headers()
            .get("Last-Event-ID")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    {
        after = after.max(id);
    }
    // Subscribe before the first read of the store.
    let follower = Follower::new(
        &state.store,
        &*state.events,
        &state.tails,
        job_id,
        after,
        q.before,
    )
    .holding(permit);
    let (content_type, style) = match (sse, q.format) {
        (true, _) => ("text/event-stream", Style::Sse),
        (false, Format::Json) => ("application/x-ndjson", Style::Ndjson),
        (false, Format::Text) => ("text/plain; charset=utf-8", Style::Text),
    };
    // The follower and when it last handed a chunk to the connection.
    let body = stream::unfold(Some((follower, None)), move |f| async move {
        let (mut f, handed): (Follower, Option<Instant>) = f?;
        if handed.is_some_and(|t| t.elapsed() >= send_stall()) {
            log::info!("{CUT_OFF} (job {})", f.job_id);
            return Some((Err(std::io::Error::other(CUT_OFF)), None));
        }
        loop {
            let (next, step) = f.next().await;
            f = next;
            let chunk = match step {
                Step::Logs(lines) => style.encode(&lines),
                Step::Idle if style == Style::Sse => Bytes::from_static(b": keep-alive\n\n"),
                Step::Idle => continue,
                Step::End if style == Style::Sse => {
                    return Some((
                        Ok::<_, std::io::Error>(Bytes::from_static(b"event: end\ndata: done\n\n")),
                        None,
                    ));
                }
                Step::End => return None,
            };
            return Some((Ok(chunk), Some((f, Some(Instant::now())))));
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Sse,
    Ndjson,
    Text,
}

impl Style {
    /// A chunk of lines for the connection: the lines' shared bytes joined (see `app::logs::line`).
    fn encode(self, lines: &[Arc<Line>]) -> Bytes {
        match self {
            Style::Sse => join(lines.iter().map(|l| l.sse()), b""),
            Style::Ndjson => join(lines.iter().map(|l| l.json.as_bytes()), b"\n"),
            Style::Text => Bytes::from(lines.iter().map(|l| text_line(&l.row)).collect::<String>()),
        }
    }
}

/// The stored lines (no follow): a JSON array or text lines, read and sent page by page.
async fn stored(state: State, job_id: Arc<str>, q: LogQuery) -> ApiResult<HttpResponse> {
    // The first page is read before answering, so a store failure is still a clean 500.
    let (_, first) = read_page(&state.store, &job_id, (q.after, q.before, PAGE), false).await?;
    let format = q.format;
    let encode = move |rows: &[LogRow], first: bool, last: bool| {
        let mut out = String::new();
        if format == Format::Json && first {
            out.push('[');
        }
        for (i, r) in rows.iter().enumerate() {
            match format {
                Format::Json => {
                    if i > 0 || !first {
                        out.push(',');
                    }
                    out.push_str(&json_text(r));
                }
                Format::Text => out.push_str(&text_line(r)),
            }
        }
        if format == Format::Json && last {
            out.push(']');
        }
        Bytes::from(out)
    };
    let first_last = (first.len() as i64) < PAGE;
    let head = encode(&first, true, first_last);
    let after = first.last().map_or(q.after, |r| r.id);
    let rest = stream::unfold((!first_last).then_some(after), move |cursor| {
        let (state, job_id) = (state.clone(), job_id.clone());
        async move {
            let after = cursor?;
            let (rows, last) =
                match read_page(&state.store, &job_id, (after, q.before, PAGE), false).await {
                    Ok((_, rows)) => {
                        let last = (rows.len() as i64) < PAGE;
                        (rows, last)
                    }
                    Err(e) => {
                        log::error!("reading the logs of job {job_id}: {e}");
                        (Vec::new(), true)
                    }
                };
            let next = rows.last().map_or(after, |r| r.id);
            let chunk = encode(&rows, false, last);
            Some((
                Ok::<_, std::convert::Infallible>(chunk),
                (!last).then_some(next),
            ))
        }
    });
    let body = futures_util::StreamExt::chain(
        stream::once(async move { Ok::<_, std::convert::Infallible>(head) }),
        rest,
    );
    let content_type = match q.format {
        Format::Json => "application/json; charset=utf-8",
        Format::Text => "text/plain; charset=utf-8",
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .streaming(body))
}
