//! The HTTP layer: HTTP in, JSON out, and nothing else. One route table (`routes`), handlers
//! grouped by resource (`builds`, `logs`, `templates`, `workspaces`, `users`, `organizations`,
//! `provisioners`, `status_page`, `meta`, `openapi`), what they take from a request
//! (`extract`), how they answer (`reply`, `present`: Coder's shapes), the middleware around
//! them (`middleware`), and the one error type with its mapping to Coder's body (`error`).
//! Handlers gather facts from the store on the blocking pool, take decisions from `domain`,
//! and leave use cases, caches and threads to `app`.

pub mod builds;
pub mod error;
pub mod extract;
pub mod logs;
pub mod meta;
pub mod middleware;
pub mod openapi;
pub mod organizations;
pub mod present;
pub mod provisioners;
pub mod reply;
pub mod routes;
pub mod status_page;
pub mod templates;
pub mod users;
pub mod workspaces;
