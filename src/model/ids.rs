//! Identifiers: random UUID v4 strings, as Coder's.

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
