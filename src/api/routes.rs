//! The route table: every path kiln serves, its methods and their handlers, in the order the
//! router tries them (the hot build reads first). `configure` registers exactly these, and
//! `ROUTES` lists them for the metrics' `path` label and the OpenAPI test. A path's unlisted
//! methods, and any unknown path under `/api/v2`, answer Coder's generic 404. A new route is
//! one line here; its operations go in `openapi/kiln.json` (or Coder's document).

use super::error::{ApiError, ApiResult};
use super::reply::Reply;
use super::{builds, meta, openapi, organizations, provisioners, status_page};
use super::{templates, users, workspaces};
use actix_web::http::Method;
use actix_web::{Resource, web};

/// One served path and its methods.
pub struct Route {
    pub path: &'static str,
    pub methods: &'static [&'static str],
}

macro_rules! route_table {
    ($( $path:literal => [ $( $method:ident $handler:path; )+ ] )*) => {
        /// Every route, in the order the router tries them.
        pub const ROUTES: &[Route] = &[
            $( Route { path: $path, methods: &[$( stringify!($method) ),+] } ),*
        ];

        /// Registers every route of `ROUTES`, in that order, then Coder's 404 for the rest
        /// of `/api/v2`.
        pub fn configure(cfg: &mut web::ServiceConfig) {
            $( cfg.service(res($path) $( .route(web::method(Method::$method).to($handler)) )+); )*
            cfg.service(web::scope("/api/v2").default_service(web::to(route_not_found)));
        }
    };
}

route_table! {
    // Builds: the hot reads first.
    "/api/v2/workspacebuilds/{workspacebuild}" => [GET builds::read::get;]
    "/api/v2/workspacebuilds/{workspacebuild}/cancel" => [PATCH builds::cancel::cancel;]
    "/api/v2/workspacebuilds/{workspacebuild}/logs" => [GET builds::read::logs;]
    "/api/v2/workspacebuilds/{workspacebuild}/parameters" => [GET builds::read::parameters;]
    "/api/v2/workspacebuilds/{workspacebuild}/resources" => [GET builds::read::resources;]
    "/api/v2/workspacebuilds/{workspacebuild}/timings" => [GET builds::timings::timings;]
    "/api/v2/workspacebuilds/{workspacebuild}/state" => [
        GET builds::read::get_state;
        PUT builds::read::put_state;
    ]
    "/api/v2/users/{user}/workspace/{workspacename}/builds/{buildnumber}" => [
        GET builds::read::get_by_number;
    ]
    "/api/v2/workspaces/{workspace}/builds" => [
        GET builds::read::list;
        POST builds::create::post_build;
    ]

    // Outside the API: health, the OpenAPI document, the status page.
    "/healthz" => [GET meta::healthz;]
    "/swagger" => [GET openapi::redirect;]
    "/swagger/doc.json" => [GET openapi::doc;]
    "/" => [GET status_page::page::index;]
    "/static/{file}" => [GET status_page::page::asset;]
    "/api/v2/kiln/session" => [GET status_page::page::session;]
    "/api/v2/kiln/overview" => [GET status_page::page::overview;]
    "/api/v2/kiln/events" => [GET status_page::events::events;]

    // The deployment.
    "/api/v2/buildinfo" => [GET meta::buildinfo;]
    "/api/v2/regions" => [GET meta::regions;]
    "/api/v2/deployment/config" => [GET meta::deployment_config;]

    // Users, sessions, API keys and tokens.
    "/api/v2/users/roles" => [GET users::profile::assignable_roles;]
    "/api/v2/users/validate-password" => [POST users::profile::validate_password;]
    "/api/v2/users/{user}/login-type" => [GET users::profile::login_type;]
    "/api/v2/users/{user}/profile" => [PUT users::profile::put_profile;]
    "/api/v2/users/{user}/password" => [PUT users::profile::put_password;]
    "/api/v2/users/first" => [
        GET users::accounts::get_first_user;
        POST users::accounts::post_first_user;
    ]
    "/api/v2/users/login" => [POST users::accounts::login;]
    "/api/v2/users/authmethods" => [GET users::accounts::auth_methods;]
    "/api/v2/users/logout" => [POST users::accounts::logout;]
    "/api/v2/users" => [
        GET users::accounts::list_users;
        POST users::accounts::create_user;
    ]
    "/api/v2/users/{user}" => [
        GET users::accounts::get_user;
        DELETE users::accounts::delete_user;
    ]
    "/api/v2/users/{user}/roles" => [
        GET users::accounts::get_user;
        PUT users::accounts::put_roles;
    ]
    "/api/v2/users/{user}/keys" => [POST users::accounts::create_key;]
    "/api/v2/users/{user}/keys/tokens" => [
        GET users::tokens::list;
        POST users::tokens::create;
    ]
    "/api/v2/users/{user}/keys/tokens/tokenconfig" => [GET users::tokens::config;]
    "/api/v2/users/{user}/keys/tokens/{keyname}" => [GET users::tokens::by_name;]
    "/api/v2/users/{user}/keys/{keyid}" => [
        GET users::tokens::by_id;
        DELETE users::tokens::delete;
    ]
    "/api/v2/authcheck" => [POST users::authcheck::check;]
    "/api/v2/users/{user}/status/suspend" => [PUT users::status::suspend;]
    "/api/v2/users/{user}/status/activate" => [PUT users::status::activate;]

    // The organization and its members.
    "/api/v2/organizations" => [GET organizations::organization::list;]
    "/api/v2/organizations/{organization}" => [GET organizations::organization::get;]
    "/api/v2/users/{user}/organizations" => [GET organizations::organization::of_user;]
    "/api/v2/organizations/{organization}/members" => [GET organizations::members::list;]
    "/api/v2/organizations/{organization}/members/roles" => [GET organizations::members::roles;]
    "/api/v2/organizations/{organization}/members/{user}" => [GET organizations::members::get;]
    "/api/v2/organizations/{organization}/members/{user}/roles" => [
        PUT organizations::members::put_roles;
    ]

    // Provisioners: jobs, keys, daemons and kiln's daemon protocol.
    "/api/v2/organizations/{organization}/provisionerjobs" => [GET provisioners::jobs::list;]
    "/api/v2/organizations/{organization}/provisionerjobs/{job}" => [
        GET provisioners::jobs::get;
    ]
    "/api/v2/organizations/{organization}/provisionerkeys" => [
        GET provisioners::keys::list;
        POST provisioners::keys::create;
    ]
    "/api/v2/organizations/{organization}/provisionerkeys/{provisionerkey}" => [
        DELETE provisioners::keys::delete;
    ]
    "/api/v2/organizations/{organization}/provisionerdaemons" => [
        GET provisioners::daemons::list;
    ]
    "/api/v2/provisionerd/register" => [POST provisioners::protocol::register;]
    "/api/v2/provisionerd/acquire" => [POST provisioners::protocol::acquire;]
    "/api/v2/provisionerd/jobs/{job}/update" => [POST provisioners::protocol::update;]
    "/api/v2/provisionerd/jobs/{job}/complete" => [POST provisioners::protocol::complete;]
    "/api/v2/provisionerd/jobs/{job}/fail" => [POST provisioners::protocol::fail;]
    "/api/v2/provisionerd/jobs/{job}/release" => [POST provisioners::protocol::release;]

    // Files, template versions (imports, dry runs, parameters) and templates.
    "/api/v2/files" => [POST templates::files::upload;]
    "/api/v2/files/{file}" => [GET templates::files::download;]
    "/api/v2/organizations/{organization}/templateversions" => [
        POST templates::versions::create;
    ]
    "/api/v2/templateversions/{version}" => [
        GET templates::versions::get;
        PATCH templates::changes::patch_version;
    ]
    "/api/v2/templateversions/{version}/rich-parameters" => [
        GET templates::versions::rich_parameters;
    ]
    "/api/v2/templateversions/{version}/logs" => [GET templates::versions::logs;]
    "/api/v2/templateversions/{version}/dry-run" => [POST templates::dry_runs::start;]
    "/api/v2/templateversions/{version}/dry-run/{job}" => [GET templates::dry_runs::get;]
    "/api/v2/templateversions/{version}/dry-run/{job}/logs" => [GET templates::dry_runs::logs;]
    "/api/v2/templateversions/{version}/dry-run/{job}/resources" => [
        GET templates::dry_runs::resources;
    ]
    "/api/v2/templateversions/{version}/dry-run/{job}/matched-provisioners" => [
        GET templates::dry_runs::matched_provisioners;
    ]
    "/api/v2/templateversions/{version}/dry-run/{job}/cancel" => [
        PATCH templates::dry_runs::cancel;
    ]
    "/api/v2/templateversions/{version}/dynamic-parameters" => [
        GET templates::dynamic_parameters::websocket;
    ]
    "/api/v2/templateversions/{version}/dynamic-parameters/evaluate" => [
        POST templates::dynamic_parameters::evaluate;
    ]
    "/api/v2/templateversions/{version}/cancel" => [PATCH templates::version_parts::cancel;]
    "/api/v2/templateversions/{version}/resources" => [
        GET templates::version_parts::resources;
    ]
    "/api/v2/templateversions/{version}/variables" => [
        GET templates::version_parts::completed_empty;
    ]
    "/api/v2/templateversions/{version}/external-auth" => [
        GET templates::version_parts::empty;
    ]
    "/api/v2/templateversions/{version}/presets" => [GET templates::version_parts::empty;]
    "/api/v2/organizations/{organization}/templates" => [
        GET templates::template::list;
        POST templates::template::create;
    ]
    "/api/v2/templates" => [GET templates::template::list_all;]
    // Before the routes whose last part is a name or an id: "examples" is neither.
    "/api/v2/templates/examples" => [GET templates::template::examples;]
    "/api/v2/organizations/{organization}/templates/examples" => [
        GET templates::template::examples;
    ]
    "/api/v2/organizations/{organization}/templates/{templatename}" => [
        GET templates::template::by_name;
    ]
    "/api/v2/organizations/{organization}/templates/{templatename}/versions/{templateversionname}" => [
        GET templates::template::version_by_name;
    ]
    "/api/v2/templates/{template}" => [
        GET templates::template::get;
        PATCH templates::changes::patch_template;
        DELETE templates::changes::delete_template;
    ]
    "/api/v2/templates/{template}/versions" => [
        GET templates::template::versions;
        PATCH templates::template::promote;
    ]
    "/api/v2/organizations/{organization}/templates/{templatename}/versions/{templateversionname}/previous" => [
        GET templates::changes::previous;
    ]
    "/api/v2/templateversions/{version}/archive" => [POST templates::changes::archive;]
    "/api/v2/templateversions/{version}/unarchive" => [POST templates::changes::unarchive;]

    // Workspaces.
    "/api/v2/users/{user}/workspaces" => [POST workspaces::workspace::create_for_user;]
    "/api/v2/organizations/{organization}/members/{user}/workspaces" => [
        POST workspaces::workspace::create_in_org;
    ]
    "/api/v2/users/{user}/workspace/{name}" => [GET workspaces::workspace::get_by_name;]
    "/api/v2/workspaces" => [GET workspaces::list::list;]
    "/api/v2/workspaces/{workspace}" => [
        GET workspaces::workspace::get;
        PATCH workspaces::settings::rename;
    ]
    "/api/v2/workspaces/{workspace}/watch" => [GET workspaces::watch::watch;]
    "/api/v2/workspaces/{workspace}/watch-ws" => [GET workspaces::watch::watch_ws;]
    "/api/v2/workspaces/{workspace}/autostart" => [PUT workspaces::schedule::put_autostart;]
    "/api/v2/workspaces/{workspace}/ttl" => [PUT workspaces::schedule::put_ttl;]
    "/api/v2/workspaces/{workspace}/extend" => [PUT workspaces::schedule::put_extend;]
    "/api/v2/workspaces/{workspace}/resolve-autostart" => [
        GET workspaces::schedule::resolve_autostart;
    ]
    "/api/v2/workspaces/{workspace}/autoupdates" => [PUT workspaces::settings::autoupdates;]
    "/api/v2/users/{user}/autofill-parameters" => [GET workspaces::settings::autofill;]
    "/api/v2/workspaceagents/{agent}/logs" => [GET workspaces::agents::logs;]
}

/// A resource whose unlisted methods answer the generic 404 (as unknown routes do).
fn res(path: &str) -> Resource {
    web::resource(path).default_service(web::to(route_not_found))
}

async fn route_not_found() -> ApiResult<Reply> {
    Err(ApiError::not_found())
}

/// Every route pattern the router serves (`/api/v2/workspacebuilds/{workspacebuild}`, ...), in
/// the order they are tried.
pub fn patterns() -> Vec<String> {
    ROUTES.iter().map(|r| r.path.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::ROUTES;

    #[test]
    fn patterns_are_full_and_unique() {
        let p = super::patterns();
        assert!(p.contains(&"/healthz".to_string()));
        assert!(p.contains(&"/api/v2/workspacebuilds/{workspacebuild}".to_string()));
        assert!(p.contains(&"/api/v2/kiln/overview".to_string()));
        let mut sorted = p.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), p.len());
    }

    #[test]
    fn every_route_names_its_methods_once() {
        for r in ROUTES {
            let mut m = r.methods.to_vec();
            m.sort();
            m.dedup();
            assert_eq!(m.len(), r.methods.len(), "{}", r.path);
        }
    }
}
