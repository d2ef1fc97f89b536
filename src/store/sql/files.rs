//! Uploaded template archives, content-addressed by SHA-256 per uploader (as Coder's
//! `GetFileByHashAndCreator`): the same bytes uploaded again by the same user are the same file;
//! by another user, a file of their own.

use super::{Db, params};
use crate::model::Time;
use crate::store::{FileRow, FileStore, NewFile, StoreError, StoreResult};

fn file_by_hash(db: &impl Db, hash: &str, created_by: &str) -> StoreResult<Option<String>> {
    db.read(|c| {
        c.query_opt(
            "SELECT id FROM files WHERE hash = ?1 AND created_by = ?2",
            params![hash, created_by],
            |r| r.get(0),
        )
    })
}

impl<D: Db> FileStore for D {
    fn insert_file(&self, f: &NewFile) -> StoreResult<(String, bool)> {
        if let Some(id) = file_by_hash(self, f.hash, f.created_by)? {
            return Ok((id, false));
        }
        // The unique (hash, uploader) decides: of two uploads of the same bytes by one user
        // racing (on any servers), the second insert is a conflict, and the file that won is
        // read back.
        let inserted = self.write(
            |c| {
                c.execute(
                    "INSERT INTO files (id, hash, mimetype, data, created_by, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![f.id, f.hash, f.mimetype, f.data, f.created_by, Time::now()],
                )?;
                Ok(())
            },
            |_| vec![],
        );
        match inserted {
            Ok(()) => Ok((f.id.to_string(), true)),
            Err(StoreError::Conflict(_)) => {
                let id = file_by_hash(self, f.hash, f.created_by)?.ok_or(StoreError::NotFound)?;
                Ok((id, false))
            }
            Err(e) => Err(e),
        }
    }

    fn file(&self, id: &str) -> StoreResult<Option<FileRow>> {
        self.read(|c| {
            c.query_opt(
                "SELECT id, mimetype, data, created_by FROM files WHERE id = ?1",
                params![id],
                |r| {
                    Ok(FileRow {
                        id: r.get(0)?,
                        mimetype: r.get(1)?,
                        data: r.get(2)?,
                        created_by: r.get(3)?,
                    })
                },
            )
        })
    }
}
