//! /healthz and /api/v2/buildinfo: no authentication.

use super::{ApiResult, ok, res};
use crate::model::BuildInfoResponse;
use actix_web::{HttpRequest, HttpResponse, web};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(res("/buildinfo").route(web::get().to(buildinfo)))
        .service(res("/regions").route(web::get().to(regions)));
}

/// The address clients reach this server at, as the request came (scheme and host).
fn access_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// `codersdk.RegionsResponse`: kiln is one region, Coder's primary one, without workspace
/// proxies or a wildcard app host.
async fn regions(_actor: super::Actor, req: HttpRequest) -> ApiResult<super::Reply> {
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

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Content-Type", "text/plain; charset=utf-8"))
        .body("OK")
}

pub fn version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

async fn buildinfo(req: HttpRequest) -> ApiResult<super::Reply> {
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
