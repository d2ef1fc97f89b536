//! kiln: Coder's workspace builds API over a local SQLite file, with an in-process provisioner.
//! `open_state` wires the store, the live events, the queue and the workers; `build_server`
//! the HTTP server, for the binary and for tests.
//!
//! Layers, each using only those below it: `api` (HTTP in, JSON out) → `provisioner` (workers
//! and the queue seam) → `store` (storage traits; `store::sqlite` holds all SQL) and `events`
//! (live notices) → `domain` (decisions) → `model` (Coder's types); `metrics` (Prometheus),
//! `tls` (the one TLS stack: certificates, roots, the crypto provider) and `secrets` (hiding
//! what was read from the command line) sit below them all. `cli`, the `kiln` client, stands
//! apart: it talks to a server over HTTP only and uses none of the others but `tls`.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod domain;
pub mod events;
pub mod identity;
pub mod metrics;
pub mod model;
pub mod provisioner;
pub mod secrets;
pub mod startup;
pub mod store;
pub mod tls;
