//! Workspace builds: create (`create.rs`), read, list, parameters, resources and state
//! (`read.rs`), timings (`timings.rs`), cancel (`cancel.rs`); their logs are `api/logs.rs`.

mod cancel;
pub mod create;
mod on_success;
mod read;
mod timings;

use super::res;
use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(res("/workspacebuilds/{workspacebuild}").route(web::get().to(read::get)))
        .service(
            res("/workspacebuilds/{workspacebuild}/cancel").route(web::patch().to(cancel::cancel)),
        )
        .service(res("/workspacebuilds/{workspacebuild}/logs").route(web::get().to(read::logs)))
        .service(
            res("/workspacebuilds/{workspacebuild}/parameters")
                .route(web::get().to(read::parameters)),
        )
        .service(
            res("/workspacebuilds/{workspacebuild}/resources")
                .route(web::get().to(read::resources)),
        )
        .service(
            res("/workspacebuilds/{workspacebuild}/timings").route(web::get().to(timings::timings)),
        )
        .service(
            res("/workspacebuilds/{workspacebuild}/state")
                .route(web::get().to(read::get_state))
                .route(web::put().to(read::put_state)),
        )
        .service(
            res("/users/{user}/workspace/{workspacename}/builds/{buildnumber}")
                .route(web::get().to(read::get_by_number)),
        )
        .service(
            res("/workspaces/{workspace}/builds")
                .route(web::get().to(read::list))
                .route(web::post().to(create::post_build)),
        );
}
