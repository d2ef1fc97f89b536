//! The organization (kiln has one, `coder`) and its members.

pub mod members;
pub mod organization;
