//! Reading and extracting template archives, with the unsafe cases built header by header.

use super::*;
use std::os::unix::fs::PermissionsExt;
use tar::{Builder, Header};

const MANIFEST: &str = r#"{"steps": {"start": [{"log": "hi"}]}}"#;

/// One entry to put in a test archive; `path` and `link` are written into the header as raw
/// bytes, so `..` and absolute paths can be built.
struct Item<'a> {
    path: &'a str,
    kind: EntryType,
    data: &'a [u8],
    link: &'a str,
    mode: u32,
}

fn file<'a>(path: &'a str, data: &'a [u8]) -> Item<'a> {
    Item {
        path,
        kind: EntryType::Regular,
        data,
        link: "",
        mode: 0o644,
    }
}

fn folder(path: &str) -> Item<'_> {
    Item {
        path,
        kind: EntryType::Directory,
        data: b"",
        link: "",
        mode: 0o755,
    }
}

fn link<'a>(kind: EntryType, path: &'a str, target: &'a str) -> Item<'a> {
    Item {
        path,
        kind,
        data: b"",
        link: target,
        mode: 0o777,
    }
}

fn special(kind: EntryType, path: &str) -> Item<'_> {
    Item {
        path,
        kind,
        data: b"",
        link: "",
        mode: 0o644,
    }
}

fn tar_of(items: &[Item]) -> Vec<u8> {
    let mut builder = Builder::new(Vec::new());
    for item in items {
        let mut header = Header::new_gnu();
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..item.path.len()].copy_from_slice(item.path.as_bytes());
        gnu.linkname[..item.link.len()].copy_from_slice(item.link.as_bytes());
        if item.kind == EntryType::GNUSparse {
            gnu.set_real_size(item.data.len() as u64);
        }
        header.set_entry_type(item.kind);
        header.set_mode(item.mode);
        header.set_size(item.data.len() as u64);
        header.set_cksum();
        builder.append(&header, item.data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn read_error(items: &[Item]) -> String {
    match read_manifest(&tar_of(items)) {
        Ok(_) => panic!("the archive was accepted"),
        Err(e) => e,
    }
}

fn assert_contains(text: &str, expected: &str) {
    assert!(
        text.contains(expected),
        "\n  was:      {text}\n  expected: {expected}"
    );
}

#[test]
fn reads_the_manifest_and_readme_at_the_root() {
    let archive = tar_of(&[
        file("kiln.json", MANIFEST.as_bytes()),
        file("README.md", b"# Hello"),
    ]);
    let (manifest, readme) = read_manifest(&archive).unwrap();
    assert_eq!(manifest.steps.start.len(), 1);
    assert_eq!(readme, "# Hello");
}

#[test]
fn entries_may_start_with_dot_slash() {
    let archive = tar_of(&[
        folder("./"),
        file("./kiln.json", MANIFEST.as_bytes()),
        folder("./sub/"),
        file("./sub/README.md", b"not the root readme"),
    ]);
    let (_, readme) = read_manifest(&archive).unwrap();
    assert_eq!(readme, "", "only a README.md at the root counts");
}

#[test]
fn a_missing_manifest_lists_what_was_found() {
    let error = read_error(&[folder("dir/"), file("a.txt", b"a"), file("dir/b.txt", b"b")]);
    assert_eq!(
        error,
        "the template has no kiln.json at its root; found: a.txt, dir/b.txt"
    );
    let many: Vec<String> = (0..8).map(|i| format!("f{i}")).collect();
    let items: Vec<Item> = many.iter().map(|p| file(p, b"")).collect();
    assert_contains(&read_error(&items), "found: f0, f1, f2, f3, f4 and 3 more");
    assert_contains(&read_error(&[folder("d/")]), "the archive holds no files");
}

#[test]
fn a_manifest_in_a_subfolder_gets_a_hint() {
    let error = read_error(&[file("hello/kiln.json", MANIFEST.as_bytes())]);
    assert_contains(
        &error,
        "It is at hello/kiln.json: pack the folder's contents instead, e.g. tar -C hello -cf \
         template.tar .",
    );
}

#[test]
fn what_is_not_a_tar_is_refused() {
    assert_contains(
        &read_manifest(&[]).unwrap_err(),
        "the template is empty (0 bytes)",
    );
    assert_contains(
        &read_manifest(&[0x1f, 0x8b, 8, 0]).unwrap_err(),
        "the template is gzip-compressed; upload a plain tar archive",
    );
    assert_contains(
        &read_manifest(b"PK\x03\x04rest").unwrap_err(),
        "the template is a zip archive",
    );
    assert_contains(
        &read_manifest(&[b'x'; 1024]).unwrap_err(),
        "the template is not a valid tar archive",
    );
    assert_contains(
        &read_manifest(b"{\"steps\": {}}").unwrap_err(),
        "the template is not a valid tar archive",
    );
}

#[test]
fn the_manifest_must_be_utf8_small_and_a_file() {
    assert_contains(
        &read_error(&[file("kiln.json", &[b'{', 0xff, b'}'])]),
        "kiln.json is not UTF-8 text",
    );
    let big = vec![b' '; MAX_MANIFEST_BYTES as usize + 1];
    assert_contains(
        &read_error(&[file("kiln.json", &big)]),
        "kiln.json is 1048577 bytes; the limit is 1048576 bytes (1 MiB)",
    );
    assert_contains(
        &read_error(&[folder("kiln.json/")]),
        "kiln.json at the template's root must be a regular file, but it is a folder",
    );
    assert_contains(
        &read_error(&[
            file("real.json", b"{}"),
            link(EntryType::Symlink, "kiln.json", "real.json"),
        ]),
        "but it is a symbolic link",
    );
    assert_contains(
        &read_error(&[file("kiln.json", b"{}"), file("./kiln.json", b"{}")]),
        "the template holds kiln.json twice at its root",
    );
}

#[test]
fn manifest_errors_come_through() {
    assert_contains(
        &read_error(&[file("kiln.json", br#"{"stepz": {}}"#)]),
        "kiln.json: unknown field \"stepz\"",
    );
}

#[test]
fn paths_outside_the_archive_refuse_it() {
    let manifest = file("kiln.json", MANIFEST.as_bytes());
    for bad in ["../evil", "a/../../evil", "sub/../x", "/etc/evil"] {
        let error = read_error(&[file(bad, b"x"), file("kiln.json", MANIFEST.as_bytes())]);
        assert_contains(&error, &format!("the template's entry \"{bad}\""));
        assert_contains(&error, "the archive is refused");
    }
    assert_contains(
        &read_error(&[
            Item {
                ..file("kiln.json", MANIFEST.as_bytes())
            },
            file("../x", b""),
        ]),
        "the template's entry \"../x\" leaves the archive's folder through \"..\"",
    );
    assert_contains(
        &read_error(&[manifest, file("/abs", b"")]),
        "the template's entry \"/abs\" has an absolute path",
    );
}

#[test]
fn links_pointing_outside_refuse_the_archive() {
    let cases = [
        (
            link(EntryType::Symlink, "l", "/etc/passwd"),
            "is a symbolic link to \"/etc/passwd\", outside",
        ),
        (
            link(EntryType::Symlink, "l", ".."),
            "is a symbolic link to \"..\", outside",
        ),
        (
            link(EntryType::Symlink, "d/l", "../../x"),
            "is a symbolic link to \"../../x\", outside",
        ),
        (
            link(EntryType::Symlink, "t", "s/.."),
            "is a symbolic link to \"s/..\", which uses \"..\" after a name",
        ),
        (
            link(EntryType::Symlink, "l", ""),
            "is a link without a target",
        ),
        (
            link(EntryType::Link, "h", "../x"),
            "is a hard link to \"../x\", outside",
        ),
        (
            link(EntryType::Link, "h", "/etc/passwd"),
            "is a hard link to \"/etc/passwd\", outside",
        ),
    ];
    for (item, expected) in cases {
        let path = item.path.to_string();
        let error = read_error(&[file("kiln.json", MANIFEST.as_bytes()), item]);
        assert_contains(
            &error,
            &format!("the template's entry \"{path}\" {expected}"),
        );
    }
}

#[test]
fn links_inside_are_accepted() {
    let archive = tar_of(&[
        file("kiln.json", MANIFEST.as_bytes()),
        file("a.txt", b"a"),
        link(EntryType::Symlink, "d/l", "../a.txt"),
        link(EntryType::Symlink, "d/e/l", "../../a.txt"),
        link(EntryType::Symlink, "here", "."),
        link(EntryType::Link, "d/hard", "a.txt"),
    ]);
    assert!(read_manifest(&archive).is_ok());
}

#[test]
fn sparse_files_are_refused() {
    assert_contains(
        &read_error(&[
            file("kiln.json", MANIFEST.as_bytes()),
            special(EntryType::GNUSparse, "s"),
        ]),
        "is a sparse file",
    );
}

#[test]
fn extract_writes_files_folders_links_and_modes() {
    let dest = tempfile::tempdir().unwrap();
    let archive = tar_of(&[
        folder("./"),
        file("./kiln.json", MANIFEST.as_bytes()),
        Item {
            mode: 0o755,
            ..file("run.sh", b"#!/bin/sh\necho hi\n")
        },
        file("deep/er/data.txt", b"data"),
        Item {
            mode: 0o555,
            ..folder("ro/")
        },
        file("ro/inside.txt", b"in a read-only folder"),
        link(EntryType::Symlink, "deep/link", "../run.sh"),
        link(EntryType::Link, "hard.sh", "run.sh"),
        special(EntryType::Fifo, "fifo"),
        special(EntryType::Char, "chardev"),
    ]);
    extract(&archive, dest.path()).unwrap();
    let root = dest.path();
    let mode = |p: &str| fs::metadata(root.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        fs::read_to_string(root.join("kiln.json")).unwrap(),
        MANIFEST
    );
    assert_eq!(mode("run.sh"), 0o755);
    assert_eq!(mode("kiln.json"), 0o644);
    assert_eq!(
        fs::read_to_string(root.join("deep/er/data.txt")).unwrap(),
        "data"
    );
    assert_eq!(
        mode("ro"),
        0o755,
        "folders keep full access for their owner"
    );
    assert_eq!(
        fs::read_to_string(root.join("ro/inside.txt")).unwrap(),
        "in a read-only folder"
    );
    assert_eq!(
        fs::read_link(root.join("deep/link")).unwrap(),
        Path::new("../run.sh")
    );
    assert_eq!(
        fs::read_to_string(root.join("hard.sh")).unwrap(),
        "#!/bin/sh\necho hi\n"
    );
    assert!(!root.join("fifo").exists() && !root.join("chardev").exists());
}

#[test]
fn extract_refuses_an_unsafe_archive_before_writing_anything() {
    let dest = tempfile::tempdir().unwrap();
    let archive = tar_of(&[
        file("kiln.json", MANIFEST.as_bytes()),
        file("../evil", b"x"),
    ]);
    let error = extract(&archive, &dest.path().join("out")).unwrap_err();
    assert_contains(&error, "the template's entry \"../evil\"");
    assert!(!dest.path().join("out").exists());
    assert!(!dest.path().join("evil").exists());
}

#[test]
fn extract_never_writes_through_a_link() {
    let outside = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    // "sub" links inside, so the archive passes the checks, but writing "sub/file" would follow it.
    let archive = tar_of(&[
        folder("real/"),
        link(EntryType::Symlink, "sub", "real"),
        file("sub/file", b"x"),
    ]);
    let error = extract(&archive, dest.path()).unwrap_err();
    assert_contains(&error, "cannot extract the template's entry \"sub/file\"");
    assert_contains(&error, "is not a folder (a file or a link)");
    assert!(!dest.path().join("real/file").exists());
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn extract_replaces_a_link_instead_of_writing_through_it() {
    let dest = tempfile::tempdir().unwrap();
    let archive = tar_of(&[
        file("target.txt", b"original"),
        link(EntryType::Symlink, "l", "target.txt"),
        file("l", b"new"),
    ]);
    extract(&archive, dest.path()).unwrap();
    assert_eq!(
        fs::read_to_string(dest.path().join("target.txt")).unwrap(),
        "original"
    );
    assert_eq!(fs::read_to_string(dest.path().join("l")).unwrap(), "new");
    assert!(
        !fs::symlink_metadata(dest.path().join("l"))
            .unwrap()
            .is_symlink()
    );
}

#[test]
fn extract_refuses_a_hard_link_to_a_missing_file() {
    let dest = tempfile::tempdir().unwrap();
    let archive = tar_of(&[link(EntryType::Link, "h", "nothing")]);
    assert_contains(
        &extract(&archive, dest.path()).unwrap_err(),
        "it is a hard link to \"nothing\", which is not a file extracted before it",
    );
}

/// The archive `tar -C examples/NAME -cf NAME.tar .` would give.
fn example_archive(name: &str) -> Vec<u8> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    let mut builder = Builder::new(Vec::new());
    builder.append_dir_all(".", &folder).unwrap();
    builder.into_inner().unwrap()
}

#[test]
fn the_examples_pack_into_valid_templates() {
    for name in ["hello", "shell"] {
        let archive = example_archive(name);
        let (manifest, readme) =
            read_manifest(&archive).unwrap_or_else(|e| panic!("examples/{name}: {e}"));
        assert!(!manifest.steps.start.is_empty(), "examples/{name}");
        assert!(readme.starts_with(&format!("# {name}")), "examples/{name}");
    }
}

#[test]
fn the_shell_example_keeps_its_scripts_executable() {
    let dest = tempfile::tempdir().unwrap();
    extract(&example_archive("shell"), dest.path()).unwrap();
    for script in ["start.sh", "stop.sh"] {
        let mode = fs::metadata(dest.path().join(script))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "{script} is executable");
    }
}
