//! The application layer, below HTTP and free of it (no actix type appears here): what every
//! request can reach (`state`), the build use case the API and the lifecycle executor share
//! (`builds`), the lifecycle executor itself (`lifecycle`), the daemons' status (`daemons`),
//! the fan-out of a job's log to its followers (`logs`), the read caches (`caches`), the
//! removal of what the database does not keep for ever (`retention`), the rate limits'
//! counters (`rate_limiter`) and the live streams each user holds (`streams`). It uses the
//! provisioner, the store, the live events and the domain's decisions.

pub mod builds;
pub mod caches;
pub mod daemons;
pub mod lifecycle;
pub mod logs;
pub mod rate_limiter;
pub mod retention;
pub mod state;
pub mod streams;
