//! kiln used as a library, with no server: the store contract over every store, the plans of
//! the stores' hot queries, and the queue seam with real workers.

#[path = "../common/mod.rs"]
mod common;

mod query_plans;
mod queue;
mod store_contract;
