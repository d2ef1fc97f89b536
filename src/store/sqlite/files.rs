//! Uploaded template archives, content-addressed by SHA-256.

use super::SqliteStore;
use super::dialect::{exec, optional, query_one};
use crate::model::Time;
use crate::store::{FileRow, FileStore, NewFile, StoreError, StoreResult};
use rusqlite::params;

impl FileStore for SqliteStore {
    fn insert_file(&self, f: &NewFile) -> StoreResult<(String, bool)> {
        if let Some(id) = self.file_by_hash(f.hash)? {
            return Ok((id, false));
        }
        // The unique hash decides: of two uploads of the same bytes racing, the second insert
        // is a conflict, and the file that won is read back.
        let inserted = self.write(|tx| {
            exec(tx,
                "INSERT INTO files (id, hash, mimetype, data, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![f.id, f.hash, f.mimetype, f.data, f.created_by, Time::now()],
            )?;
            Ok(())
        });
        match inserted {
            Ok(()) => Ok((f.id.to_string(), true)),
            Err(StoreError::Conflict(_)) => {
                let id = self.file_by_hash(f.hash)?.ok_or(StoreError::NotFound)?;
                Ok((id, false))
            }
            Err(e) => Err(e),
        }
    }

    fn file(&self, id: &str) -> StoreResult<Option<FileRow>> {
        let conn = self.conn()?;
        optional(query_one(
            &conn,
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

impl SqliteStore {
    fn file_by_hash(&self, hash: &str) -> StoreResult<Option<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT id FROM files WHERE hash = ?1")?;
        optional(stmt.query_row([hash], |r| r.get(0)))
    }
}
