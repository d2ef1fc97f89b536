//! Coder's JSON types (shapes from `coder-swagger-builds.json`), the status words derived from
//! stored facts, and the time format every response uses.

pub mod builds;
pub mod ids;
pub mod manifest;
pub mod manifest_check;
pub mod overview;
pub mod parameters;
pub mod resources;
pub mod status;
pub mod templates;
pub mod time;
pub mod users;
pub mod workspaces;

pub use builds::*;
pub use ids::{NIL_UUID, new_id};
pub use resources::*;
pub use status::{BuildStatus, JobStatus, Transition};
pub use templates::*;
pub use time::Time;
pub use users::*;
pub use workspaces::*;
