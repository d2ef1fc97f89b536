//! /healthz and /api/v2/buildinfo: no authentication.

use super::{ApiResult, ok, res};
use crate::model::BuildInfoResponse;
use actix_web::{HttpRequest, HttpResponse, web};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(res("/buildinfo").route(web::get().to(buildinfo)));
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
    let info = req.connection_info();
    let url = format!("{}://{}", info.scheme(), info.host());
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
