//! `GET /workspaceagents/{id}/logs`: kiln runs no agents, so an agent has no logs. The answer
//! is `[]`, and a follow (a WebSocket, as Coder's clients open it) closes normally at once, so
//! `coder logs` and SDKs that read agent logs after a build end cleanly.

use super::query::QueryParser;
use super::{Actor, ApiError, ApiResult, JSON, parse_uuid, res};
use actix_web::{HttpRequest, HttpResponse, http::header, web};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(res("/workspaceagents/{agent}/logs").route(web::get().to(logs)));
}

async fn logs(
    _actor: Actor,
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    parse_uuid(&path)?;
    let follow = QueryParser::new(&req)
        .first("follow")
        .is_some_and(|v| v.is_empty() || v == "true" || v == "1");
    let upgrade = req.headers().get_all(header::UPGRADE).any(|v| {
        v.to_str()
            .is_ok_and(|v| v.eq_ignore_ascii_case("websocket"))
    });
    if follow && upgrade {
        let (response, session, _incoming) = actix_ws::handle(&req, payload).map_err(|e| {
            ApiError::bad_request("Invalid WebSocket upgrade request.").with_detail(e.to_string())
        })?;
        actix_web::rt::spawn(async move {
            let reason = actix_ws::CloseReason {
                code: actix_ws::CloseCode::Normal,
                description: Some("done".into()),
            };
            let _ = session.close(Some(reason)).await;
        });
        return Ok(response);
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, JSON))
        .body("[]"))
}
