//! `kiln backup` and `kiln restore`: a consistent copy of the embedded store's database, taken
//! while its server runs and builds go on, and that copy put back into a data folder no server
//! uses, with the jobs that were running at the backup failed (they did not finish there).
//! A PostgreSQL database is backed up with PostgreSQL's own tools (`pg_dump`).

use crate::data_dir::{DATABASE_FILE, DataDir};
use crate::events::{Hub, LiveEvents};
use crate::model::Time;
use crate::store::sqlite::{SqliteStore, backup, schema_version};
use crate::store::{Durability, JobStore, Stale};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The error of a job that was running when the backup it was restored from was taken.
pub const RESTORED_ERROR: &str =
    "kiln was restored from a backup taken while this job ran; the job did not finish there";

/// Copies `data_dir`'s database to `to` (a new file); says what it did.
pub fn backup(data_dir: &Path, to: &Path) -> Result<String, String> {
    let db = data_dir.join(DATABASE_FILE);
    if !db.is_file() {
        return Err(format!(
            "{} has no {DATABASE_FILE}: kiln backup copies the embedded database; a PostgreSQL \
             database (--database) is backed up with pg_dump",
            data_dir.display()
        ));
    }
    let started = Instant::now();
    let bytes = backup::backup(&db, to).map_err(|e| e.to_string())?;
    Ok(format!(
        "backed up {} to {} ({bytes} bytes in {:.1?})",
        db.display(),
        to.display(),
        started.elapsed()
    ))
}

/// Puts backup `from` in place of `data_dir`'s database (no server may be using the folder:
/// its lock is taken meanwhile), brings its schema up to date, and fails the jobs that were
/// running when it was taken; says what it did.
pub fn restore(from: &Path, data_dir: &Path) -> Result<String, String> {
    let dir = DataDir::open(data_dir)?;
    let version = backup::check_copy(from, schema_version()).map_err(|e| e.to_string())?;
    let db = dir.path.join(DATABASE_FILE);
    backup::put_in_place(from, &db).map_err(|e| e.to_string())?;
    let events: Arc<dyn LiveEvents> = Arc::new(Hub::new());
    let store = SqliteStore::open(&db, Durability::Full, events).map_err(|e| e.to_string())?;
    // Every started, unfinished job: none of them runs now.
    let all = Stale::HeartbeatBefore(Time(i64::MAX));
    let mut failed = 0;
    for job in store
        .stale_jobs(Time(i64::MAX))
        .map_err(|e| e.to_string())?
    {
        if store
            .abandon_job(&job.id, all, RESTORED_ERROR)
            .map_err(|e| e.to_string())?
        {
            failed += 1;
        }
    }
    Ok(format!(
        "restored {} into {} (schema version {version}); {failed} job(s) running at the backup \
         were failed",
        from.display(),
        db.display()
    ))
}
