//! What a store operation can fail with.

/// An error from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The row the operation needs does not exist.
    NotFound,
    /// A uniqueness rule refused the write (a duplicate name, a number taken by a racing
    /// request); `what` says which, for logs.
    Conflict(String),
    /// The disk the database writes to is full: the write was rolled back whole (nothing of it
    /// was stored), and writes work again once space is freed, without a restart. `why` is the
    /// database's own word for it.
    DiskFull(String),
    /// The database failed or cannot be reached (I/O error, corrupt file, a newer schema); `why`
    /// says what happened.
    Unavailable(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("not found"),
            StoreError::Conflict(what) => write!(f, "conflict: {what}"),
            StoreError::DiskFull(why) => write!(f, "the server's disk is full ({why})"),
            StoreError::Unavailable(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for StoreError {}

pub type StoreResult<T> = Result<T, StoreError>;
