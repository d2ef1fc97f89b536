//! Log lines in Coder's shapes (JSON, SSE, text) and the query every logs request takes:
//! shared by the stored answer (`logs.rs`), the followers (`log_follower.rs`, `logs_ws.rs`)
//! and the shared tail (`log_tail.rs`).

use super::query::QueryParser;
use super::{ApiError, ApiResult};
use crate::model::ProvisionerJobLog;
use crate::store::LogRow;
use actix_web::HttpRequest;

/// Lines read from the store at once: the most a request holds in memory.
pub(super) const PAGE: i64 = 1000;
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Text,
}

pub(super) struct LogQuery {
    pub(super) after: i64,
    pub(super) before: Option<i64>,
    pub(super) follow: bool,
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

pub(super) fn parse_query(req: &HttpRequest) -> ApiResult<LogQuery> {
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

pub(super) fn json_text(r: &LogRow) -> String {
    serde_json::to_string(&log_json(r)).unwrap_or_default()
}
