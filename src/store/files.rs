//! Uploaded template archives, content-addressed by SHA-256.

use super::{Store, StoreResult, optional};
use crate::model::Time;
use rusqlite::params;

pub struct FileRow {
    pub id: String,
    pub mimetype: String,
    pub data: Vec<u8>,
    pub created_by: String,
}

impl Store {
    /// Stores `data` unless a file with the same hash exists. Returns `(id, created)`.
    pub fn insert_file(
        &self,
        new_id: &str,
        hash: &str,
        mimetype: &str,
        data: &[u8],
        created_by: &str,
    ) -> StoreResult<(String, bool)> {
        self.write(|tx| {
            let existing: Option<String> =
                optional(tx.query_row("SELECT id FROM files WHERE hash = ?1", [hash], |r| r.get(0)))?;
            if let Some(id) = existing {
                return Ok((id, false));
            }
            tx.execute(
                "INSERT INTO files (id, hash, mimetype, data, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![new_id, hash, mimetype, data, created_by, Time::now()],
            )?;
            Ok((new_id.to_string(), true))
        })
    }

    pub fn file(&self, id: &str) -> StoreResult<Option<FileRow>> {
        let conn = self.conn()?;
        optional(conn.query_row(
            "SELECT id, mimetype, data, created_by FROM files WHERE id = ?1",
            [id],
            |r| {
                Ok(FileRow {
                    id: r.get(0)?,
                    mimetype: r.get(1)?,
                    data: r.get(2)?,
                    created_by: r.get(3)?,
                })
            },
        ))
    }
}
