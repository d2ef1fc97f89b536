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
    /// The database failed (I/O error, corrupt file, a newer schema, a connection lost while
    /// a commit was under way); `why` says what happened.
    Unavailable(String),
    /// The database cannot be reached, or the connection to it was lost before the operation
    /// was applied: nothing of it was stored, and the same operation may succeed later. The
    /// store has already tried again on fresh connections for a few seconds.
    Unreachable(String),
    /// The database is busy: another process held its write lock past the wait (SQLite's
    /// busy timeout), or a transient I/O error stopped the write. Nothing of the operation was
    /// stored, and the same operation may succeed later.
    Busy(String),
}

impl StoreError {
    /// Whether trying the same operation again later may succeed, with nothing stored twice.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unreachable(_) | StoreError::Busy(_))
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("not found"),
            StoreError::Conflict(what) => write!(f, "conflict: {what}"),
            StoreError::DiskFull(why) => write!(f, "the server's disk is full ({why})"),
            StoreError::Unavailable(why) => f.write_str(why),
            StoreError::Unreachable(why) => write!(f, "the database cannot be reached ({why})"),
            StoreError::Busy(why) => write!(f, "the database is busy ({why})"),
        }
    }
}

impl std::error::Error for StoreError {}

pub type StoreResult<T> = Result<T, StoreError>;
