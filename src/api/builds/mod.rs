//! Workspace builds: create (`create.rs`: the body, then `app::builds`), read, list,
//! parameters, resources and state (`read.rs`), timings (`timings.rs`), cancel
//! (`cancel.rs`); their logs are `api/logs`.

pub mod cancel;
pub mod create;
pub mod on_success;
pub mod read;
pub mod timings;
