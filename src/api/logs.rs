//! A job's logs, for both `/workspacebuilds/{id}/logs` and `/templateversions/{id}/logs`.
//!
//! Without `follow`: the stored lines as a JSON array (or text lines), streamed page by page.
//! With `follow`: every line once, in id order, then the end once the job has completed, over a
//! WebSocket (an upgrade request), Server-Sent Events (`Accept: text/event-stream`) or chunked
//! NDJSON / text lines. A follower subscribes to the job's `Topic::Logs` notices first, then
//! reads the store, and on every "look again" reads the store after the last id it sent:
//! nothing is lost or sent twice between the stored part and the live part.

use super::log_tail::{Line, Tail, Taken};
use super::query::QueryParser;
use super::{ApiError, ApiResult};
use crate::api::State;
use crate::events::{Subscription, Topic};
use crate::model::ProvisionerJobLog;
use crate::store::LogRow;
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::stream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Lines read from the store at once: the most a request holds in memory.
pub(super) const PAGE: i64 = 1000;
/// Lines a follower takes from its job's shared tail at once: what it holds while its
/// connection is slow (about 20 KB of JSON with typical lines).
const CHUNK: usize = 100;
/// A follower whose connection takes nothing for this long is cut off (`KILN_FOLLOW_STALL_MS`
/// overrides it): a WebSocket one at once (its task ends and lets go of what it holds), an
/// SSE / NDJSON one when its connection next takes data (the stream breaks off; until then it
/// holds one chunk and the server's write buffer).
const DEFAULT_SEND_STALL: Duration = Duration::from_secs(10);

pub(super) fn send_stall() -> Duration {
    static STALL: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *STALL.get_or_init(|| {
        std::env::var("KILN_FOLLOW_STALL_MS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&ms| ms > 0)
            .map_or(DEFAULT_SEND_STALL, Duration::from_millis)
    })
}
/// A follower with nothing to send re-checks the job this often, and WebSocket / SSE
/// followers get a keep-alive.
pub(super) const KEEPALIVE: Duration = Duration::from_secs(15);
/// A follower with nothing new looks at the store this often even without a notice (one may
/// have been lost between servers).
const BACKUP_LOOK: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Text,
}

pub(super) struct LogQuery {
    pub(super) after: i64,
    pub(super) before: Option<i64>,
    follow: bool,
    pub(super) format: Format,
}

/// `after` / `before`: an int64 log id, else 400 with Coder's message for that field.
fn id_param(q: &QueryParser, key: &str) -> ApiResult<Option<i64>> {
    match q.first(key) {
        None | Some("") => Ok(None),
        Some(raw) => raw.parse::<i64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!("Query param {key:?} must be an integer."))
                .with_validation(key, "Must be an integer")
        }),
    }
}

fn parse_query(req: &HttpRequest) -> ApiResult<LogQuery> {
    let mut q = QueryParser::new(req);
    let after = id_param(&q, "after")?.unwrap_or(0);
    let before = id_param(&q, "before")?;
    // Coder follows whenever `follow` is present; kiln also reads `follow=false` as "no".
    let follow = q
        .first("follow")
        .is_some_and(|v| !v.eq_ignore_ascii_case("false"));
    let format = match q.one_of("format", &["json", "text"], "json") {
        "text" => Format::Text,
        _ => Format::Json,
    };
    q.finish()?;
    Ok(LogQuery {
        after,
        before,
        follow,
        format,
    })
}

pub fn log_json(r: &LogRow) -> ProvisionerJobLog {
    ProvisionerJobLog {
        id: r.id,
        created_at: r.created_at,
        log_source: r.source.clone(),
        log_level: r.level.clone(),
        stage: r.stage.clone(),
        output: r.output.clone(),
    }
}

/// `<RFC3339 time> [<level>] <stage>: <output>`
pub(super) fn text_line(r: &LogRow) -> String {
    format!(
        "{} [{}] {}: {}\n",
        r.created_at.rfc3339(),
        r.level,
        r.stage,
        r.output
    )
}

fn json_text(r: &LogRow) -> String {
    serde_json::to_string(&log_json(r)).unwrap_or_default()
}

/// Why a follower was cut off (an SSE client may resume with `Last-Event-ID`).
pub(super) const CUT_OFF: &str = "the follower's connection took nothing for too long: cut off";

/// Reads one page of logs after `after` (and, when asked, whether the job has completed,
/// read first: every line of a completed job is already stored) off the async workers.
async fn read_page(
    state: &State,
    job_id: &Arc<str>,
    after: i64,
    before: Option<i64>,
    with_completion: bool,
) -> ApiResult<(bool, Vec<LogRow>)> {
    let (state, job_id) = (state.clone(), job_id.clone());
    web::block(move || -> ApiResult<(bool, Vec<LogRow>)> {
        let completed = with_completion
            && state
                .store
                .job(&job_id)?
                .is_none_or(|j| j.completed_at.is_some());
        let page = state.store.logs(&job_id, after, before, PAGE)?;
        Ok((completed, page))
    })
    .await
    .map_err(|e| ApiError::internal("Internal error reading job logs.", e))?
}

/// Serves a job's logs as the request asks (see the module documentation).
pub async fn serve(
    state: State,
    req: HttpRequest,
    payload: web::Payload,
    job_id: String,
) -> ApiResult<HttpResponse> {
    let q = parse_query(&req)?;
    let job_id: Arc<str> = job_id.into();
    if !q.follow {
        return stored(state, job_id, q).await;
    }
    let wants = |name: header::HeaderName, what: &str| {
        req.headers().get_all(name).any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains(what))
        })
    };
    if wants(header::UPGRADE, "websocket") {
        return super::logs_ws::websocket(state, &req, payload, job_id, q);
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
    let follower = Follower::new(&state, job_id, after, q.before);
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
                Step::Idle if style == Style::Sse => ": keep-alive\n\n".to_string(),
                Step::Idle => continue,
                Step::End if style == Style::Sse => {
                    return Some((
                        Ok::<_, std::io::Error>(Bytes::from_static(b"event: end\ndata: done\n\n")),
                        None,
                    ));
                }
                Step::End => return None,
            };
            return Some((Ok(Bytes::from(chunk)), Some((f, Some(Instant::now())))));
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
    fn encode(self, lines: &[Arc<Line>]) -> String {
        let mut out = String::with_capacity(lines.len() * 200);
        for l in lines {
            match self {
                Style::Sse => {
                    out.push_str("event: log\nid: ");
                    out.push_str(&l.row.id.to_string());
                    out.push_str("\ndata: ");
                    out.push_str(&l.json);
                    out.push_str("\n\n");
                }
                Style::Ndjson => {
                    out.push_str(&l.json);
                    out.push('\n');
                }
                Style::Text => out.push_str(&text_line(&l.row)),
            }
        }
        out
    }
}

/// The stored lines (no follow): a JSON array or text lines, read and sent page by page.
async fn stored(state: State, job_id: Arc<str>, q: LogQuery) -> ApiResult<HttpResponse> {
    // The first page is read before answering, so a store failure is still a clean 500.
    let (_, first) = read_page(&state, &job_id, q.after, q.before, false).await?;
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
            let (rows, last) = match read_page(&state, &job_id, after, q.before, false).await {
                Ok((_, rows)) => {
                    let last = (rows.len() as i64) < PAGE;
                    (rows, last)
                }
                Err(e) => {
                    log::error!("reading the logs of job {job_id}: {}", e.body.detail);
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

/// What a follower has for its transport next.
pub(super) enum Step {
    Logs(Vec<Arc<Line>>),
    /// Nothing new for a while (time for a keep-alive).
    Idle,
    /// Every line was sent and the job has completed.
    End,
}

#[derive(Clone, Copy)]
enum Phase {
    /// Mark the notices as seen, check the job, read the first page.
    Start,
    /// A full page came: read on. `last_pass`: the job had completed when the pass began.
    Paging { last_pass: bool },
    /// The store held nothing more when read.
    Drained { last_pass: bool },
}

/// Follows one job's logs. `next` takes and returns the follower, so a transport can keep
/// one `next` in flight across other events without losing what it read.
pub(super) struct Follower {
    state: State,
    pub(super) job_id: Arc<str>,
    sub: Subscription,
    /// The job's shared tail; none with `before` (such a follower reads the store itself).
    tail: Option<Arc<Tail>>,
    /// The read of the tail that follows the last notice seen.
    want: u64,
    last: i64,
    before: Option<i64>,
    phase: Phase,
    /// When the follower last had something for its transport.
    quiet_since: Instant,
    /// Counted in `kiln_live_followers` while it lives.
    _counted: crate::metrics::Follower,
}

impl Follower {
    /// Subscribes to the job's notices now, before anything is read from the store.
    pub(super) fn new(
        state: &State,
        job_id: Arc<str>,
        after: i64,
        before: Option<i64>,
    ) -> Follower {
        let sub = state.events.subscribe(&Topic::Logs(job_id.to_string()));
        let tail = before.is_none().then(|| state.tails.get(&job_id));
        Follower {
            state: state.clone(),
            job_id,
            sub,
            tail,
            want: 0,
            last: after,
            before,
            phase: Phase::Start,
            quiet_since: Instant::now(),
            _counted: crate::metrics::global().follower(),
        }
    }

    pub(super) async fn next(mut self) -> (Follower, Step) {
        loop {
            let (last_pass, read_completion) = match self.phase {
                Phase::Drained { last_pass: true } => return (self, Step::End),
                Phase::Drained { last_pass: false } => {
                    let keepalive_in = KEEPALIVE.saturating_sub(self.quiet_since.elapsed());
                    let wait = keepalive_in.min(BACKUP_LOOK);
                    let changed = actix_web::rt::time::timeout(wait, self.sub.changed()).await;
                    self.phase = Phase::Start;
                    if changed.is_err() && self.quiet_since.elapsed() >= KEEPALIVE {
                        // Quiet for a while: the transport may send a keep-alive.
                        self.quiet_since = Instant::now();
                        return (self, Step::Idle);
                    }
                    continue;
                }
                Phase::Start => {
                    // Changes from here on wake the next wait.
                    self.sub.mark_seen();
                    if let Some(t) = &self.tail {
                        self.want = t.next_read();
                    }
                    (false, true)
                }
                Phase::Paging { last_pass } => (last_pass, false),
            };
            let (completed, rows, more) = match self.read(read_completion).await {
                Ok(r) => r,
                Err(e) => {
                    log::error!(
                        "following the logs of job {}: {}",
                        self.job_id,
                        e.body.detail
                    );
                    return (self, Step::End);
                }
            };
            let last_pass = last_pass || completed;
            self.phase = if more {
                Phase::Paging { last_pass }
            } else {
                Phase::Drained { last_pass }
            };
            if let Some(l) = rows.last() {
                self.last = l.row.id;
                self.quiet_since = Instant::now();
                return (self, Step::Logs(rows));
            }
        }
    }
}

impl Follower {
    /// Whether the job has completed (when asked; looked at after the last notice seen), then
    /// lines after the last one sent: a chunk from the tail when it holds them, else a page
    /// from the store (a follower behind what the tail holds reads at its own pace), and
    /// whether there may be more right after them.
    async fn read(&mut self, with_completion: bool) -> ApiResult<(bool, Vec<Arc<Line>>, bool)> {
        let Some(tail) = &self.tail else {
            let (completed, rows) = read_page(
                &self.state,
                &self.job_id,
                self.last,
                self.before,
                with_completion,
            )
            .await?;
            let full = rows.len() as i64 == PAGE;
            let lines = rows.into_iter().map(|r| Arc::new(Line::new(r))).collect();
            return Ok((completed, lines, full));
        };
        let completed = with_completion && tail.refresh(&self.state, self.want).await?;
        match tail.take(self.last, CHUNK) {
            Taken::Lines(lines, more) => Ok((completed, lines, more)),
            Taken::Behind => {
                // Older lines than the tail holds (a follower from an old id, or one that fell
                // behind): read on from the store until the tail has them.
                let (_, rows) =
                    read_page(&self.state, &self.job_id, self.last, None, false).await?;
                let full = rows.len() as i64 == PAGE;
                let lines = rows.into_iter().map(|r| Arc::new(Line::new(r))).collect();
                Ok((completed, lines, full))
            }
        }
    }
}
