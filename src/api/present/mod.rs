//! Stored rows in Coder's JSON shapes: jobs, versions and templates (`views`), builds and
//! workspaces (`render`).

pub mod render;
pub mod views;
