//! Uploaded template archives on PostgreSQL, content-addressed by SHA-256.

use super::PgStore;
use crate::model::Time;
use crate::store::{FileRow, FileStore, NewFile, StoreError, StoreResult};

impl PgStore {
    fn file_by_hash(&self, hash: &str) -> StoreResult<Option<String>> {
        let row = self
            .conn()?
            .query_opt("SELECT id FROM files WHERE hash = $1", &[&hash])?;
        Ok(row.map(|r| r.get(0)))
    }
}

impl FileStore for PgStore {
    fn insert_file(&self, f: &NewFile) -> StoreResult<(String, bool)> {
        if let Some(id) = self.file_by_hash(f.hash)? {
            return Ok((id, false));
        }
        // The unique hash decides: of two uploads of the same bytes racing (on any servers),
        // the second insert is a conflict, and the file that won is read back.
        let inserted = self.write(
            |tx| {
                tx.execute(
                    "INSERT INTO files (id, hash, mimetype, data, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &f.id,
                        &f.hash,
                        &f.mimetype,
                        &f.data,
                        &f.created_by,
                        &Time::now(),
                    ],
                )?;
                Ok(())
            },
            |_| vec![],
        );
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
        let row = self.conn()?.query_opt(
            "SELECT id, mimetype, data, created_by FROM files WHERE id = $1",
            &[&id],
        )?;
        Ok(row.map(|r| FileRow {
            id: r.get(0),
            mimetype: r.get(1),
            data: r.get(2),
            created_by: r.get(3),
        }))
    }
}
