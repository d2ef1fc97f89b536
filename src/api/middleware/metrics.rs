//! Records every request into `metrics::global().http` (on only with `--prometheus-address`):
//! its route pattern (`match_pattern`, never the raw path), method, status and time to the
//! response head. WebSockets count where their session lives (`websocket`).

use crate::metrics::{self, http::InFlight};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest};
use std::time::Instant;

fn is_websocket_upgrade(req: &ServiceRequest) -> bool {
    req.headers()
        .get_all(actix_web::http::header::UPGRADE)
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let m = &metrics::global().http;
    let started = Instant::now();
    let method = metrics::http::method_index(req.method().as_str());
    let _in_flight = (!is_websocket_upgrade(&req)).then(|| m.request_started());
    let res = next.call(req).await;
    match &res {
        Ok(res) => {
            let pattern = res.request().match_pattern();
            m.record(
                pattern.as_deref(),
                method,
                res.status().as_u16(),
                started.elapsed(),
            );
        }
        Err(e) => m.record(
            None,
            method,
            e.as_response_error().status_code().as_u16(),
            started.elapsed(),
        ),
    }
    res
}

/// Counts an open WebSocket on the request's route while the guard lives (move it into the
/// session's task).
pub fn websocket(req: &HttpRequest) -> Option<InFlight<'static>> {
    metrics::global()
        .http
        .websocket_opened(req.match_pattern().as_deref())
}
