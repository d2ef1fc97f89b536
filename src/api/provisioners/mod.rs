//! Provisioners as Coder's API shows them (jobs, keys, daemons) and kiln's protocol for
//! external daemons (`protocol`).

pub mod daemons;
pub mod jobs;
pub mod keys;
pub mod protocol;
