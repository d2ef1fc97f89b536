//! The query every logs request takes, and a line as text (`format=text`): shared by the
//! stored answer and the streams (`answer.rs`) and the WebSocket (`ws.rs`). A line's JSON
//! and its SSE and WebSocket bytes are made once for all followers (`app::logs::line`).

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::query::QueryParser;
use crate::store::LogRow;
use actix_web::HttpRequest;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Text,
}

pub(crate) struct LogQuery {
    pub(crate) after: i64,
    pub(crate) before: Option<i64>,
    pub(crate) follow: bool,
    pub(crate) format: Format,
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

pub(crate) fn parse_query(req: &HttpRequest) -> ApiResult<LogQuery> {
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

/// `<RFC3339 time> [<level>] <stage>: <output>`
pub(crate) fn text_line(r: &LogRow) -> String {
    format!(
        "{} [{}] {}: {}\n",
        r.created_at.rfc3339(),
        r.level,
        r.stage,
        r.output
    )
}
