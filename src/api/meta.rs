//! /healthz and /api/v2/buildinfo: no authentication.

use crate::api::error::ApiResult;
use crate::api::extract::State;
use crate::api::reply::ok;
use crate::model::BuildInfoResponse;
use actix_web::{HttpRequest, HttpResponse};

/// `codersdk.DeploymentConfig`: kiln's settings, owners only (Coder's `deployment_config`
/// read: 403 otherwise). `config` fills the fields of Coder's `DeploymentValues` kiln has;
/// `options` lists every `kiln server` flag as it was set (`--database` blanked, as Coder
/// blanks secrets).
pub async fn deployment_config(
    state: crate::api::extract::State,
    actor: crate::api::extract::auth::Actor,
    req: HttpRequest,
) -> ApiResult<crate::api::reply::Reply> {
    if !actor.caller().is_owner() {
        return Err(crate::api::error::forbidden());
    }
    let value = |flag: &str| {
        state
            .config
            .options
            .iter()
            .find(|o| o.flag == flag)
            .map(|o| o.value.clone())
            .unwrap_or_default()
    };
    let host_port = |address: String| {
        let (host, port) = address.rsplit_once(':').unwrap_or((address.as_str(), ""));
        serde_json::json!({"host": host, "port": port})
    };
    let info = req.connection_info();
    let files = |flag: &str| {
        let v = value(flag);
        if v.is_empty() { vec![] } else { vec![v] }
    };
    let config = serde_json::json!({
        "access_url": {"scheme": info.scheme(), "host": info.host(), "path": ""},
        "http_address": value("address"),
        "tls": {
            "enable": value("tls-enable") == "true",
            "address": host_port(value("tls-address")),
            "cert_file": files("tls-cert-file"),
            "key_file": files("tls-key-file"),
            "min_version": value("tls-min-version"),
        },
        "prometheus": {
            "enable": state.config.prometheus_address.is_some(),
            "address": host_port(state.config.prometheus_address.clone().unwrap_or_default()),
        },
        "provisioner": {"daemons": state.config.workers},
        "allow_workspace_renames": state.config.allow_workspace_renames,
        "pg_connection_url": "",
    });
    let options: Vec<serde_json::Value> = state
        .config
        .options
        .iter()
        .map(|o| {
            serde_json::json!({
                "name": o.flag,
                "description": o.description,
                "flag": o.flag,
                "env": o.env,
                "default": o.default,
                "value": o.value,
                "value_source": o.source,
            })
        })
        .collect();
    ok(&serde_json::json!({"config": config, "options": options}))
}

/// The address clients reach this server at, as the request came (scheme and host).
fn access_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// `codersdk.RegionsResponse`: kiln is one region, Coder's primary one, without workspace
/// proxies or a wildcard app host.
pub async fn regions(
    _actor: crate::api::extract::auth::Actor,
    req: HttpRequest,
) -> ApiResult<crate::api::reply::Reply> {
    ok(&serde_json::json!({"regions": [{
        "id": crate::model::NIL_UUID,
        "name": "primary",
        "display_name": "Default",
        "icon_url": "/emojis/1f3e1.png",
        "healthy": true,
        "path_app_url": access_url(&req),
        "wildcard_hostname": "",
    }]}))
}

/// `OK`, or, while the database cannot be reached, 503 saying so (a load balancer takes the
/// server out of rotation meanwhile).
pub async fn healthz(state: State) -> HttpResponse {
    let (mut answer, body) = match state.store.database_reachable() {
        true => (HttpResponse::Ok(), "OK"),
        false => (
            HttpResponse::ServiceUnavailable(),
            "the database cannot be reached",
        ),
    };
    answer
        .insert_header(("Content-Type", "text/plain; charset=utf-8"))
        .body(body)
}

/// The header every answer carries with kiln's version (Coder's `X-Coder-Build-Version`).
pub const BUILD_VERSION_HEADER: &str = "X-Coder-Build-Version";

pub fn version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

pub async fn buildinfo(req: HttpRequest) -> ApiResult<crate::api::reply::Reply> {
    let url = access_url(&req);
    ok(&BuildInfoResponse {
        external_url: url.clone(),
        version: version(),
        dashboard_url: url,
        telemetry: false,
        workspace_proxy: false,
        agent_api_version: "2.0".into(),
        provisioner_api_version: "1.0".into(),
        upgrade_message: String::new(),
        deployment_id: String::new(),
        webpush_public_key: String::new(),
    })
}
