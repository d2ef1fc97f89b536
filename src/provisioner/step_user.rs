//! `--step-user`: when kiln runs as root, the `run` steps of builds run as another, unprivileged
//! OS user, who can reach the job's folder, its state file and the workspace's folder, and
//! nothing else of kiln's: the database, the server's id, the TLS key, other files of the data
//! folder, kiln's own memory and `/proc` entries.
//!
//! The data folder becomes 0711 (others may pass through it, not list it), as do `jobs/` and
//! `workspaces/`; a job's unpacked template, its state file and the workspace's folder are
//! handed to the step user. kiln, as root, never writes where the step user could have placed
//! a link: the folders it writes in stay root's, and it reads the state file only from
//! `jobs/`, where the step user cannot replace it.

use std::ffi::CString;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// The user steps run as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl StepUser {
    /// Looks `name` up (`/etc/passwd` or what the system's name service says). kiln must run
    /// as root to change user, and the step user must not be root.
    pub fn lookup(name: &str) -> Result<StepUser, String> {
        // SAFETY: a plain system call.
        if unsafe { libc::geteuid() } != 0 {
            return Err(format!(
                "--step-user {name:?}: kiln must run as root to run steps as another user"
            ));
        }
        let c = CString::new(name).map_err(|_| format!("--step-user {name:?}: not a user name"))?;
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buf = vec![0 as libc::c_char; 16 << 10];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: getpwnam_r writes into `pwd` and `buf`, both ours and large enough (it
        // reports ERANGE otherwise).
        let rc = unsafe {
            libc::getpwnam_r(
                c.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        if rc != 0 || found.is_null() {
            return Err(format!("--step-user {name:?}: there is no such user"));
        }
        if pwd.pw_uid == 0 {
            return Err(format!(
                "--step-user {name:?} is root: name an unprivileged user"
            ));
        }
        Ok(StepUser {
            name: name.to_string(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        })
    }

    /// Opens the data folder to the step user as far as its jobs and workspaces: the folder,
    /// `jobs/` and `workspaces/` are 0711 (root's, passable, not listable).
    pub fn open_data_dir(&self, data_dir: &Path) -> io::Result<()> {
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o711))?;
        for sub in ["jobs", "workspaces"] {
            let dir = data_dir.join(sub);
            std::fs::create_dir_all(&dir)?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))?;
        }
        Ok(())
    }

    /// Gives `path` (a file, or a folder and everything in it) to the step user. Children
    /// first, the folder itself last: until then the step user cannot change anything inside
    /// it, so no link placed meanwhile can lead the walk elsewhere. Links are never followed.
    pub fn hand_over(&self, path: &Path) -> io::Result<()> {
        let meta = std::fs::symlink_metadata(path)?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(path)? {
                self.hand_over(&entry?.path())?;
            }
        }
        if meta.uid() != self.uid || meta.gid() != self.gid {
            std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid))?;
        }
        Ok(())
    }

    /// Whether `path` (followed, as a workspace folder is) belongs to the step user.
    pub fn owns(&self, path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok_and(|m| m.uid() == self.uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_unknown_users_are_refused() {
        if unsafe { libc::geteuid() } != 0 {
            let e = StepUser::lookup("nobody").unwrap_err();
            assert!(e.contains("must run as root"), "{e}");
            return;
        }
        let e = StepUser::lookup("root").unwrap_err();
        assert!(e.contains("is root"), "{e}");
        let e = StepUser::lookup("no-such-user-here").unwrap_err();
        assert!(e.contains("no such user"), "{e}");
    }

    #[test]
    fn a_tree_is_handed_over_without_following_links() {
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let Ok(user) = StepUser::lookup("nobody") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "root's").unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(tree.join("sub/file"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();
        user.hand_over(&tree).unwrap();
        for p in [
            tree.clone(),
            tree.join("sub"),
            tree.join("sub/file"),
            tree.join("link"),
        ] {
            let m = std::fs::symlink_metadata(&p).unwrap();
            assert_eq!((m.uid(), m.gid()), (user.uid, user.gid), "{}", p.display());
        }
        assert_eq!(std::fs::metadata(&outside).unwrap().uid(), 0);
    }
}
