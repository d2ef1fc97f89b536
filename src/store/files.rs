//! Uploaded template archives, content-addressed by SHA-256.

use super::error::StoreResult;

pub struct FileRow {
    pub id: String,
    pub mimetype: String,
    pub data: Vec<u8>,
    pub created_by: String,
}

/// A file to store.
pub struct NewFile<'a> {
    pub id: &'a str,
    /// Hex SHA-256 of `data`.
    pub hash: &'a str,
    pub mimetype: &'a str,
    pub data: &'a [u8],
    pub created_by: &'a str,
}

pub trait FileStore {
    /// Stores the file unless its uploader stored one with the same hash. Returns
    /// `(id, created)`: the new file's id, or the uploader's existing one's.
    fn insert_file(&self, file: &NewFile) -> StoreResult<(String, bool)>;

    fn file(&self, id: &str) -> StoreResult<Option<FileRow>>;
}
