//! Template archives (plain tar): reading `kiln.json` and `README.md` from the root, and
//! extracting the files for `run` steps.
//!
//! Every entry is checked before anything is used, and one unsafe entry refuses the whole
//! archive: paths must stay below the archive's folder (no absolute paths, no `..`), symbolic
//! links must be relative, stay inside and use `..` only at the start of their target, hard links
//! must name a path inside. Extraction also never writes through a link or over a folder, so it
//! cannot write outside its destination. Device files and fifos are skipped; sparse files are
//! refused (a small archive could otherwise expand to fill the disk).

use crate::model::manifest::Manifest;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use tar::EntryType;

/// The largest `kiln.json` accepted.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;
/// The largest `README.md` accepted.
pub const MAX_README_BYTES: u64 = 1024 * 1024;
const MANIFEST_NAME: &str = "kiln.json";
const README_NAME: &str = "README.md";
/// How many entries the "no kiln.json" message lists.
const LISTED_ENTRIES: usize = 5;

/// What a checked entry is, with its checked link target.
#[derive(Debug, PartialEq)]
enum EntryKind {
    Folder,
    File,
    /// Symbolic link with its target as written (relative, checked to stay inside).
    Symlink(PathBuf),
    /// Hard link to this path below the archive's root.
    Hardlink(PathBuf),
    /// Device files, fifos and archive-wide headers: nothing to extract.
    Skipped,
}

impl EntryKind {
    fn describe(&self) -> &'static str {
        match self {
            EntryKind::Folder => "a folder",
            EntryKind::File => "a file",
            EntryKind::Symlink(_) => "a symbolic link",
            EntryKind::Hardlink(_) => "a hard link",
            EntryKind::Skipped => "a special file",
        }
    }
}

/// Reads the template's `kiln.json` (parsed and checked) and the text of its root `README.md`
/// (empty when there is none). Refuses the archive when any entry is unsafe.
pub fn read_manifest(archive: &[u8]) -> Result<(Manifest, String), String> {
    let mut manifest_text: Option<String> = None;
    let mut readme = String::new();
    let mut files: Vec<String> = Vec::new();
    let mut nested_manifest: Option<PathBuf> = None;
    walk(archive, |entry, path, kind| {
        if !matches!(kind, EntryKind::Folder | EntryKind::Skipped) {
            files.push(path.display().to_string());
        }
        if path == Path::new(MANIFEST_NAME) {
            if *kind != EntryKind::File {
                return Err(format!(
                    "kiln.json at the template's root must be a regular file, but it is {}",
                    kind.describe()
                ));
            }
            if manifest_text.is_some() {
                return Err("the template holds kiln.json twice at its root".into());
            }
            let bytes = read_limited(entry, MAX_MANIFEST_BYTES, MANIFEST_NAME)?;
            let text = String::from_utf8(bytes)
                .map_err(|e| format!("kiln.json is not UTF-8 text: {}", e.utf8_error()))?;
            manifest_text = Some(text);
        } else if path == Path::new(README_NAME) && *kind == EntryKind::File {
            let bytes = read_limited(entry, MAX_README_BYTES, README_NAME)?;
            readme = String::from_utf8_lossy(&bytes).into_owned();
        } else if path.file_name() == Some(MANIFEST_NAME.as_ref()) && nested_manifest.is_none() {
            nested_manifest = Some(path.to_path_buf());
        }
        Ok(())
    })?;
    let Some(text) = manifest_text else {
        return Err(no_manifest_message(&files, nested_manifest.as_deref()));
    };
    let manifest = Manifest::parse(&text)?;
    Ok((manifest, readme))
}

/// Extracts folders, regular files (with their permission bits, so scripts stay executable),
/// symbolic and hard links under `dest`, which is created if needed. The whole archive is
/// checked before anything is written.
pub fn extract(archive: &[u8], dest: &Path) -> Result<(), String> {
    walk(archive, |_, _, _| Ok(()))?;
    fs::create_dir_all(dest)
        .map_err(|e| format!("cannot create the folder {}: {e}", dest.display()))?;
    let mut folder_modes: Vec<(PathBuf, u32)> = Vec::new();
    walk(archive, |entry, path, kind| {
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        write_entry(entry, path, kind, mode, dest, &mut folder_modes).map_err(|e| {
            format!(
                "cannot extract the template's entry \"{}\": {e}",
                path.display()
            )
        })
    })?;
    // Folders get their modes last, so a read-only folder can still be filled first; the owner
    // keeps full access so the workspace can be cleaned up.
    for (path, mode) in folder_modes.iter().rev() {
        fs::set_permissions(path, fs::Permissions::from_mode(mode | 0o700))
            .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
    }
    Ok(())
}

type Entry<'e, 'a> = tar::Entry<'e, &'a [u8]>;

/// Visits every entry with its checked path (below the root, never empty) and kind. Stops at
/// the first unsafe entry or visitor error.
fn walk(
    archive: &[u8],
    mut visit: impl FnMut(&mut Entry<'_, '_>, &Path, &EntryKind) -> Result<(), String>,
) -> Result<(), String> {
    if let Some(problem) = not_a_plain_tar(archive) {
        return Err(problem);
    }
    let mut reader = tar::Archive::new(archive);
    let entries = reader
        .entries()
        .map_err(|e| format!("the template is not a tar archive: {e}"))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| format!("the template is not a valid tar archive: {e}"))?;
        let raw = entry
            .path()
            .map_err(|e| format!("the template holds an entry with an unreadable path: {e}"))?
            .into_owned();
        let path = below_root(&raw).map_err(|why| refused(&raw, why))?;
        let kind = entry_kind(&entry, &path).map_err(|why| refused(&raw, &why))?;
        if path.as_os_str().is_empty() {
            if kind == EntryKind::Folder || kind == EntryKind::Skipped {
                continue; // the root folder itself ("./")
            }
            return Err(refused(&raw, "has an empty path"));
        }
        visit(&mut entry, &path, &kind)?;
    }
    Ok(())
}

fn refused(raw: &Path, why: &str) -> String {
    format!(
        "the template's entry \"{}\" {why}; the archive is refused",
        raw.display()
    )
}

/// Recognises the uploads people get wrong most often.
fn not_a_plain_tar(archive: &[u8]) -> Option<String> {
    if archive.is_empty() {
        Some("the template is empty (0 bytes); upload a tar archive".into())
    } else if archive.starts_with(&[0x1f, 0x8b]) {
        Some(
            "the template is gzip-compressed; upload a plain tar archive (tar -cf, not tar -czf)"
                .into(),
        )
    } else if archive.starts_with(b"PK\x03\x04") {
        Some("the template is a zip archive; upload a tar archive (tar -cf)".into())
    } else {
        None
    }
}

/// The path's components below the archive's root, refusing absolute paths and `..`.
fn below_root(raw: &Path) -> Result<PathBuf, &'static str> {
    let mut path = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => return Err("has an absolute path"),
            Component::ParentDir => return Err("leaves the archive's folder through \"..\""),
            Component::CurDir => {}
            Component::Normal(name) => path.push(name),
        }
    }
    Ok(path)
}

fn entry_kind(entry: &Entry<'_, '_>, path: &Path) -> Result<EntryKind, String> {
    let kind = entry.header().entry_type();
    match kind {
        EntryType::Directory => Ok(EntryKind::Folder),
        EntryType::Regular | EntryType::Continuous => Ok(EntryKind::File),
        EntryType::Symlink | EntryType::Link => {
            let target = entry
                .link_name()
                .map_err(|e| format!("has an unreadable link target: {e}"))?
                .filter(|t| !t.as_os_str().is_empty())
                .ok_or("is a link without a target")?
                .into_owned();
            if kind == EntryType::Symlink {
                check_symlink_target(path, &target)?;
                Ok(EntryKind::Symlink(target))
            } else {
                let inside = below_root(&target)
                    .ok()
                    .filter(|t| !t.as_os_str().is_empty())
                    .ok_or_else(|| {
                        format!(
                            "is a hard link to \"{}\", outside the archive's folder",
                            target.display()
                        )
                    })?;
                Ok(EntryKind::Hardlink(inside))
            }
        }
        EntryType::GNUSparse => Err(
            "is a sparse file, which kiln does not extract; pack the template without --sparse"
                .into(),
        ),
        _ => Ok(EntryKind::Skipped),
    }
}

/// A symbolic link at `link` (below the root) may point to `target` when the target is relative,
/// uses `..` only at its start and does not climb above the root.
fn check_symlink_target(link: &Path, target: &Path) -> Result<(), String> {
    let outside = || {
        format!(
            "is a symbolic link to \"{}\", outside the archive's folder",
            target.display()
        )
    };
    let depth = link.components().count().saturating_sub(1);
    let mut climbs = 0;
    let mut named = false;
    for component in target.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => return Err(outside()),
            Component::CurDir => {}
            Component::Normal(_) => named = true,
            Component::ParentDir if named => {
                return Err(format!(
                    "is a symbolic link to \"{}\", which uses \"..\" after a name; links may use \
                     \"..\" only at the start of their target",
                    target.display()
                ));
            }
            Component::ParentDir => {
                climbs += 1;
                if climbs > depth {
                    return Err(outside());
                }
            }
        }
    }
    Ok(())
}

fn read_limited(entry: &mut Entry<'_, '_>, limit: u64, name: &str) -> Result<Vec<u8>, String> {
    if entry.size() > limit {
        return Err(format!(
            "{name} is {} bytes; the limit is {} bytes (1 MiB)",
            entry.size(),
            limit
        ));
    }
    let mut bytes = Vec::new();
    entry
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {name} from the template: {e}"))?;
    Ok(bytes)
}

fn no_manifest_message(files: &[String], nested: Option<&Path>) -> String {
    let mut message = String::from("the template has no kiln.json at its root; ");
    if files.is_empty() {
        message.push_str("the archive holds no files");
    } else {
        let listed: Vec<&str> = files
            .iter()
            .take(LISTED_ENTRIES)
            .map(String::as_str)
            .collect();
        message.push_str(&format!("found: {}", listed.join(", ")));
        if files.len() > LISTED_ENTRIES {
            message.push_str(&format!(" and {} more", files.len() - LISTED_ENTRIES));
        }
    }
    if files
        .iter()
        .any(|f| f.ends_with(".tf") || f.ends_with(".tf.json"))
    {
        message.push_str(
            ". kiln runs kiln.json templates, not Terraform files: docs/templates.md describes \
             the manifest",
        );
    }
    if let Some(nested) = nested {
        let folder = nested.parent().unwrap_or(Path::new("."));
        message.push_str(&format!(
            ". It is at {}: pack the folder's contents instead, e.g. tar -C {} -cf template.tar .",
            nested.display(),
            folder.display()
        ));
    }
    message
}

fn write_entry(
    entry: &mut Entry<'_, '_>,
    path: &Path,
    kind: &EntryKind,
    mode: u32,
    dest: &Path,
    folder_modes: &mut Vec<(PathBuf, u32)>,
) -> io::Result<()> {
    if *kind == EntryKind::Skipped {
        return Ok(());
    }
    make_parent_folders(dest, path)?;
    let full = dest.join(path);
    match kind {
        EntryKind::Folder => {
            match fs::symlink_metadata(&full) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(conflict("a folder", &full)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&full)?,
                Err(e) => return Err(e),
            }
            folder_modes.push((full, mode));
        }
        EntryKind::File => {
            remove_non_folder(&full)?;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&full)?;
            io::copy(entry, &mut file)?;
            fs::set_permissions(&full, fs::Permissions::from_mode(mode))?;
        }
        EntryKind::Symlink(target) => {
            remove_non_folder(&full)?;
            std::os::unix::fs::symlink(target, &full)?;
        }
        EntryKind::Hardlink(target) => {
            check_real_folders(dest, target)?;
            let source = dest.join(target);
            if !fs::symlink_metadata(&source).is_ok_and(|m| m.is_file()) {
                return Err(io::Error::other(format!(
                    "it is a hard link to \"{}\", which is not a file extracted before it",
                    target.display()
                )));
            }
            remove_non_folder(&full)?;
            fs::hard_link(&source, &full)?;
        }
        EntryKind::Skipped => {}
    }
    Ok(())
}

fn conflict(what: &str, full: &Path) -> io::Error {
    io::Error::other(format!(
        "it is {what}, but {} already exists as something else",
        full.display()
    ))
}

/// Creates the folders above `path` that are missing; refuses to go through anything that is
/// not a real folder (a link could lead outside `dest`).
fn make_parent_folders(dest: &Path, path: &Path) -> io::Result<()> {
    let mut current = dest.to_path_buf();
    let parents: Vec<Component> = path.components().collect();
    for component in &parents[..parents.len().saturating_sub(1)] {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(not_a_folder(&current)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&current)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Every folder above `path` exists and is a real folder, not a link.
fn check_real_folders(dest: &Path, path: &Path) -> io::Result<()> {
    let mut current = dest.to_path_buf();
    let parents: Vec<Component> = path.components().collect();
    for component in &parents[..parents.len().saturating_sub(1)] {
        current.push(component);
        if !fs::symlink_metadata(&current)?.is_dir() {
            return Err(not_a_folder(&current));
        }
    }
    Ok(())
}

fn not_a_folder(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} is not a folder (a file or a link), so nothing is written through it",
        path.display()
    ))
}

/// Removes a file or link at `full` so an entry can take its place; a folder stays and is an
/// error.
fn remove_non_folder(full: &Path) -> io::Result<()> {
    match fs::symlink_metadata(full) {
        Ok(meta) if meta.is_dir() => Err(conflict("not a folder", full)),
        Ok(_) => fs::remove_file(full),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
