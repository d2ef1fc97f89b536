//! The process tests: kiln as a real `kiln server` process (`common::TestServer`), for what an
//! in-process server (`tests/api`) cannot show. Each module's documentation ends with what its
//! tests need a process for:
//! - the server is killed (SIGKILL) and started again on its data, or stopped by SIGTERM:
//!   `disk`, `engine`, `identity`, `leases`, `outages`, `processes`, `provisioner_faults`,
//!   `replicas`, `startup`;
//! - its log is read: `disk`, `engine`, `identity`, `metrics`, `provisioner_faults`,
//!   `replicas`, `startup`;
//! - it is looked at in /proc (what it hides of its command line and environment), or its
//!   steps are, or run as another OS user: `engine`, `processes`, `provisioners`, `startup`;
//! - environment variables it reads once per process: `follow_cutoff`, `logs`;
//! - the metrics registry, which is process-wide: `metrics`;
//! - other processes: the `kiln` client (`cli`, `cli_workspaces`), `kiln backup` and `kiln
//!   restore` (`backup`), provisioner daemons
//!   (`provisioners`, `provisioner_faults`), a second `kiln server` run to be refused
//!   (`leases`, `replicas`, `startup`).

#[path = "../common/mod.rs"]
mod common;

mod backup;
mod cli;
mod cli_workspaces;
mod disk;
mod engine;
mod follow_cutoff;
mod identity;
mod leases;
mod logs;
mod metrics;
mod outages;
mod processes;
mod provisioner_faults;
mod provisioners;
mod replicas;
mod startup;
