//! What handlers take from a request: the caller (`auth`), the body (`body`), the query
//! (`query`), path ids and names (`fields`), the rows the path names as the caller may see
//! them (`lookup`), and what bounds a request's cost (`limits`, over `app::rate_limiter`).

pub mod auth;
pub mod body;
pub mod fields;
pub mod limits;
pub mod lookup;
pub mod query;

use crate::app::state::AppState;
use actix_web::web;

/// What a handler takes to reach the application.
pub type State = web::Data<AppState>;
