//! The API tests: everything a client sees of kiln over real HTTP and WebSockets, one module per
//! area. Each test starts kiln in-process (`common::TestApp`: the library's start-up, on a free
//! port of 127.0.0.1, with a fresh data dir, and in PostgreSQL mode a database of its own), or
//! several sharing one database, and speaks to it as any client would.
//!
//! Tests that need kiln as a process of its own (killed or restarted, its log read, its /proc
//! entry, environment variables or process-wide settings of its own, the CLI, daemons,
//! metrics) are in `tests/process`; those that use the store as a library in `tests/library`.

#[path = "../common/mod.rs"]
mod common;

mod bodies;
mod builds;
mod cancel;
mod coder_clients;
mod endpoints;
mod engine;
mod identity;
mod leases;
mod lifecycle;
mod limits;
mod log_caps;
mod logs;
mod members;
mod openapi;
mod outages;
mod provisioner_jobs;
mod provisioners;
mod queue;
mod replicas;
mod restart;
mod retention;
mod search;
mod status_page;
mod streams;
mod templates;
mod timings;
mod upgrades;
mod watch;
mod workspaces;
