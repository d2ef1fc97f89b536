//! Workspaces: create and read (`workspace`), the list and its search (`list`), schedule
//! (`schedule`), settings (`settings`), watching (`watch`), and their agents (`agents`).

pub mod agents;
pub mod list;
pub mod schedule;
pub mod settings;
pub mod watch;
pub mod workspace;
