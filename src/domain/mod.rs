//! kiln's decisions, as plain functions over facts: who may do what (`permissions`), whether a
//! build may be queued and what its completion changes (`builds`), and the cancel rules
//! (`jobs`), Coder's workspace search syntax (`search`), autostart schedules (`schedule`),
//! what the lifecycle executor and the schedule endpoints decide (`lifecycle`) and the cap on a
//! job's stored log (`log_budget`). Nothing here
//! knows HTTP or SQL: the API gathers the facts and maps a refusal to Coder's error body (`api/error.rs`); the store applies a decision inside its transaction.

pub mod authorization;
pub mod builds;
pub mod jobs;
pub mod lifecycle;
pub mod log_budget;
pub mod parameter_preview;
pub mod password;
pub mod permissions;
pub mod provisioner_tags;
pub mod schedule;
pub mod search;

pub use builds::BuildRefusal;
pub use jobs::{CancelAction, CancelRefusal};
pub use permissions::Caller;
