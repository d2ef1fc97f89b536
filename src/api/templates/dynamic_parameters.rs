//! Coder's dynamic parameters, which its create form and parameter edits use: a version's
//! parameters rendered for an owner with the values typed so far
//! (`domain::parameter_preview`), over a WebSocket (`GET /templateversions/{id}/dynamic-
//! parameters`: an answer with id -1 at once, then one per request `{id, owner_id, inputs}`,
//! pings every 15 s, closed after 30 minutes) or as one request (`POST …/evaluate`, id 0).
//! Before the version's import has finished: 425, as Coder.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::extract::auth::Actor;
use crate::api::extract::body::read_json;
use crate::api::extract::body::{Body, MEDIUM};
use crate::api::extract::lookup::find_version;
use crate::api::reply::Reply;
use crate::api::reply::blocking;
use crate::api::reply::ok;
use crate::app::state::AppState;
use crate::domain::parameter_preview::{diagnostic, preview};
use crate::model::NIL_UUID;
use crate::model::manifest::Parameter;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

const PING_EVERY: Duration = Duration::from_secs(15);
const LIFETIME: Duration = Duration::from_secs(30 * 60);

/// `codersdk.DynamicParametersRequest`.
#[derive(Deserialize, Default)]
struct Request {
    #[serde(default)]
    id: i64,
    #[serde(default)]
    owner_id: Option<String>,
    #[serde(default)]
    inputs: HashMap<String, String>,
}

/// The version's parameters; 425 until its import has finished.
fn parameters_of(state: &AppState, version: &str) -> ApiResult<Vec<Parameter>> {
    let version = find_version(state, version)?;
    if version.job.completed_at.is_none() {
        return Err(ApiError::new(
            StatusCode::from_u16(425).expect("425 Too Early"),
            "Template version job has not finished",
        ));
    }
    Ok(version
        .imported_manifest()
        .map(|m| m.parameters)
        .unwrap_or_default())
}

/// `codersdk.DynamicParametersResponse` for `owner`: an owner that does not exist gets
/// Coder's one diagnostic and no parameters.
fn render(
    state: &AppState,
    params: &[Parameter],
    id: i64,
    owner: &str,
    inputs: &HashMap<String, String>,
) -> ApiResult<Value> {
    if state.store.user_by_id(owner)?.is_none() {
        return Ok(
            json!({"id": id, "parameters": null, "diagnostics": [diagnostic(
                "error",
                "Failed to fetch workspace owner",
                "Please check your permissions or the user may not exist.",
                "owner_not_found",
            )]}),
        );
    }
    Ok(json!({"id": id, "parameters": preview(params, inputs), "diagnostics": []}))
}

/// The owner a request names: its `owner_id`, else `fallback` (Go's zero UUID is none).
fn owner_of(req: &Request, fallback: &str) -> String {
    req.owner_id
        .as_deref()
        .filter(|o| !o.is_empty() && *o != NIL_UUID)
        .unwrap_or(fallback)
        .to_string()
}

pub async fn evaluate(
    state: State,
    actor: Actor,
    path: web::Path<String>,
    body: Body<MEDIUM>,
) -> ApiResult<Reply> {
    blocking(move || {
        let req: Request = read_json(&body)?;
        let params = parameters_of(&state, &path)?;
        let owner = owner_of(&req, &actor.user.id);
        ok(&render(&state, &params, 0, &owner, &req.inputs)?)
    })
    .await
}

/// The id of the next answer: the request's, unless that would not follow the last one sent
/// (Coder's answers' ids only grow).
fn next_id(last: i64, requested: i64) -> i64 {
    if requested <= last {
        last + 1
    } else {
        requested
    }
}

pub async fn websocket(
    state: State,
    actor: Actor,
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let mut owner = actor.user.id.clone();
    let query = crate::api::extract::query::QueryParser::new(&req);
    if let Some(user) = query
        .first("user_id")
        .filter(|u| !u.is_empty() && *u != "me")
    {
        owner = uuid::Uuid::parse_str(user)
            .map_err(|e| {
                ApiError::bad_request("Invalid user_id query parameter").with_detail(e.to_string())
            })?
            .to_string();
    }
    let s = state.clone();
    let params = blocking(move || parameters_of(&s, &path)).await?;
    let permit = state.streams.open(&actor.user.id)?;
    let (response, mut session, mut incoming) = actix_ws::handle(&req, payload).map_err(|e| {
        ApiError::new(StatusCode::UPGRADE_REQUIRED, "Failed to accept WebSocket.")
            .with_detail(e.to_string())
    })?;
    let open = crate::api::middleware::metrics::websocket(&req);
    actix_web::rt::spawn(async move {
        let (_open, _permit) = (open, permit);
        let answer = |id: i64, owner: String, inputs: HashMap<String, String>| {
            let (state, params) = (state.clone(), params.clone());
            web::block(move || render(&state, &params, id, &owner, &inputs))
        };
        let mut last = -1;
        let first = match answer(last, owner.clone(), HashMap::new()).await {
            Ok(Ok(v)) => v,
            _ => return,
        };
        if session.text(first.to_string()).await.is_err() {
            return;
        }
        let deadline = actix_web::rt::time::sleep(LIFETIME);
        tokio::pin!(deadline);
        let mut ping = actix_web::rt::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = ping.tick() => {
                    if session.ping(b"").await.is_err() {
                        return;
                    }
                }
                msg = incoming.next() => {
                    let text = match msg {
                        Some(Ok(actix_ws::Message::Text(text))) => text,
                        Some(Ok(actix_ws::Message::Ping(p))) => {
                            if session.pong(&p).await.is_err() {
                                return;
                            }
                            continue;
                        }
                        Some(Ok(actix_ws::Message::Pong(_))) => continue,
                        // Anything but a request ends the stream, as Coder's does.
                        Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => return,
                        Some(Ok(_)) => break,
                    };
                    let Ok(request) = serde_json::from_str::<Request>(&text) else {
                        break;
                    };
                    owner = owner_of(&request, &owner);
                    last = next_id(last, request.id);
                    let Ok(Ok(v)) = answer(last, owner.clone(), request.inputs).await else {
                        return;
                    };
                    if session.text(v.to_string()).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = session
            .close(Some(actix_ws::CloseReason {
                code: actix_ws::CloseCode::Away,
                description: None,
            }))
            .await;
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn answer_ids_only_grow() {
        assert_eq!(super::next_id(-1, 1), 1);
        assert_eq!(super::next_id(1, 1), 2);
        assert_eq!(super::next_id(5, 3), 6);
        assert_eq!(super::next_id(5, 9), 9);
    }
}
