//! The process tests: kiln as a real `kiln server` process (`common::TestServer`), for what an
//! in-process server cannot show. Each module says what its tests need a process for:
//! - it is killed (SIGKILL) or restarted on its data, or stopped by SIGTERM: `engine`,
//!   `identity`, `leases`, `processes`, `provisioner_faults`, `replicas`, `startup`;
//! - its log is read: `identity`, `replicas`, `startup`, `metrics`, `disk`;
//! - it is looked at in /proc (what it hides, its files' modes) or its steps run as another
//!   OS user: `engine`, `processes`, `provisioners`, `startup`;
//! - environment variables it reads once per process: `logs`, `follow_cutoff`;
//! - the metrics registry, which is process-wide: `metrics`;
//! - other processes: the CLI (`cli`, `cli_workspaces`), provisioner daemons (`provisioners`,
//!   `provisioner_faults`), a second `kiln server` (`leases`, `replicas`), filled disks (`disk`).

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod cli_workspaces;
mod disk;
mod engine;
mod follow_cutoff;
mod identity;
mod leases;
mod logs;
mod metrics;
mod processes;
mod provisioner_faults;
mod provisioners;
mod replicas;
mod startup;
