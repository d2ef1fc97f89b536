//! kiln: Coder's workspace builds API over a local SQLite file (or a PostgreSQL database
//! several servers share), with the provisioner jobs behind the builds run in-process or on
//! provisioner machines. `startup` builds and runs a server, for the binary and the tests;
//! `maintenance` backs up and restores the embedded database.
//!
//! Layers, each using only those below it: `startup` and `maintenance` → `api` (HTTP in, JSON out: routes,
//! handlers by resource, extractors, presenters, middleware, the one error mapping) → `app`
//! (use cases, the lifecycle executor, the log fan-out, caches; no HTTP) → `config` →
//! `provisioner` (the queue seam, workers, the step runner, the daemon) → `store` (storage
//! traits and their SQLite and PostgreSQL implementations) → `domain` (decisions as plain
//! functions) and `data_dir` → `model` (Coder's types), `events` (live notices), `metrics`,
//! `identity`, `tls` and `secrets` at the ground. `cli`, the `kiln` client, stands apart: it
//! talks to a server over HTTP only and uses none of the others but `tls`.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod domain;
pub mod events;
pub mod identity;
pub mod maintenance;
pub mod metrics;
pub mod model;
pub mod provisioner;
pub mod secrets;
pub mod startup;
pub mod store;
pub mod tls;
