//! Identifiers: random UUID v4 strings, as Coder's.

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Go's zero `uuid.UUID`: what Coder sends for an id it does not have, and what Go's clients
/// send for one they were not given.
pub const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";
