//! The server's data folder: held by one kiln at a time (a lock file), and home of the
//! server's id, which names its built-in workers across restarts.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

const LOCK_FILE: &str = "kiln.lock";
/// The embedded store's database, when no PostgreSQL database is named.
pub const DATABASE_FILE: &str = "kiln.db";
const SERVER_ID_FILE: &str = "server-id";

/// An open data folder; the lock is held until it is dropped (or the process dies).
pub struct DataDir {
    pub path: PathBuf,
    pub server_id: String,
    _lock: File,
}

impl DataDir {
    /// Creates the folder when missing, takes its lock (another kiln using it is an error),
    /// and reads the server id, making one on first use.
    pub fn open(path: &Path) -> Result<DataDir, String> {
        private_dir(path)?;
        let lock_path = path.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| {
                // A read-only folder (or disk) fails here first: say which folder, and why.
                format!(
                    "cannot use the data directory {}: cannot open {LOCK_FILE} for writing: {e}",
                    path.display()
                )
            })?;
        // SAFETY: flock on a file descriptor we own; released when the file closes.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(format!(
                "another kiln server is using the data directory {}",
                path.display()
            ));
        }
        let id_path = path.join(SERVER_ID_FILE);
        let server_id = match std::fs::read_to_string(&id_path) {
            Ok(text) if uuid::Uuid::parse_str(text.trim()).is_ok() => text.trim().to_string(),
            Ok(_) => return Err(format!("{} does not hold a server id", id_path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = crate::model::new_id();
                write_durably(&id_path, format!("{id}\n").as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", id_path.display()))?;
                id
            }
            Err(e) => return Err(format!("cannot read {}: {e}", id_path.display())),
        };
        Ok(DataDir {
            path: path.to_path_buf(),
            server_id,
            _lock: lock,
        })
    }
}

/// Creates `path` (and its parents) when missing, and makes it the owner's alone (0700): it
/// holds the database (password hashes, tokens' hashes, states, logs), the workspaces' folders
/// and the jobs' templates. A folder that other users could list or write in is closed, with
/// a warning.
pub fn private_dir(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| format!("cannot create the data directory {}: {e}", path.display()))?;
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the data directory {}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    // Passing through (x, as `--step-user` needs) shows nothing; listing or writing does.
    if mode & 0o066 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700)).map_err(
            |e| {
                format!(
                    "cannot make the data directory {} private: {e}",
                    path.display()
                )
            },
        )?;
        log::warn!(
            "the data directory {} was open to other users (mode {mode:o}); it is now {:o}",
            path.display(),
            mode & 0o700
        );
    }
    Ok(())
}

/// Writes `file` whole or not at all, and durably: a temporary file beside it, flushed, then
/// renamed over it, and the folder flushed. A crash at any moment (a kill, a power loss) leaves
/// either no file or the whole one, never an empty one.
fn write_durably(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = file.with_extension("tmp");
    let mut f = File::options()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, file)?;
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
    File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_server_at_a_time_and_the_same_id_after_a_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let first = DataDir::open(tmp.path()).unwrap();
        let err = DataDir::open(tmp.path()).err().unwrap();
        assert!(err.contains("another kiln server"), "{err}");
        let id = first.server_id.clone();
        drop(first);
        let again = DataDir::open(tmp.path()).unwrap();
        assert_eq!(again.server_id, id);
    }

    #[test]
    fn the_folder_and_its_files_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let fresh = tmp.path().join("new");
        let d = DataDir::open(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        assert_eq!(mode(&fresh.join(SERVER_ID_FILE)), 0o600);
        assert_eq!(mode(&fresh.join(LOCK_FILE)), 0o600);
        drop(d);
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        DataDir::open(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
    }
}
