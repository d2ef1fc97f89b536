//! The status page (`page`: its files and the overview it reads) and its live events
//! (`events`).

pub mod events;
pub mod page;
