//! `GET /workspaceagents/{id}/logs`: kiln runs no agents, so an agent a build made has no logs
//! (an id no readable workspace's build made: Coder's 404). The answer is `[]`, and a follow (a WebSocket, as Coder's clients open it) closes normally at once, so
//! `coder logs` and SDKs that read agent logs after a build end cleanly.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::fields::parse_uuid;
use crate::api::extract::query::QueryParser;
use crate::api::reply::JSON;
use crate::api::reply::blocking;
use actix_web::{HttpRequest, HttpResponse, http::header, web};

pub async fn logs(
    state: State,
    actor: Actor,
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_uuid(&path)?;
    // An agent one of the caller's readable workspaces has; anything else is Coder's 404.
    blocking(move || match state.store.agent_owner(&id)? {
        Some(owner) if actor.caller().can_read_workspace_of(&owner) => Ok(()),
        _ => Err(ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "Agent doesn't exist with that id, or you do not have access to it.",
        )),
    })
    .await?;
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
