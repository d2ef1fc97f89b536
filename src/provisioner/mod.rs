//! The provisioner: the job queue over SQLite, the worker pool, and the step runner.

pub mod archive;
pub mod render;
