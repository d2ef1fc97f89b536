//! What the fixtures are and where they go: the files in `tests/fixtures/upgrades/`, a fresh
//! store holding one, and what a failed migration must leave as it was.

use crate::common::{TestApp, pg, postgres_mode};
use serde_json::Value;
use sha2::Digest;
use std::path::{Path, PathBuf};

pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upgrades");
pub const SQLITE_SCHEMA: &str = include_str!("../../../schema.sql");
pub const POSTGRES_SCHEMA: &str = include_str!("../../../src/store/postgres/schema.sql");

/// The store under test: its fixtures' prefix and file extension, and its schema.
pub fn store() -> (&'static str, &'static str, &'static str) {
    if postgres_mode() {
        ("postgres", "sql", POSTGRES_SCHEMA)
    } else {
        ("sqlite", "db", SQLITE_SCHEMA)
    }
}

/// The `-- migration N` blocks of a schema file, in order: (N, the block's text).
pub fn blocks(schema: &str) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = Vec::new();
    for line in schema.lines() {
        if let Some(n) = line.trim().strip_prefix("-- migration ") {
            out.push((n.trim().parse().expect("a migration number"), String::new()));
        } else if let Some((_, block)) = out.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

/// A block's SQL as it runs, for comparing blocks: a SHA-256 of its lines, trimmed, without
/// empty lines and comment lines (a comment may change; what runs may not).
pub fn block_hash(block: &str) -> String {
    let mut code = String::new();
    for line in block.lines().map(str::trim) {
        if !line.is_empty() && !line.starts_with("--") {
            code.push_str(line);
            code.push('\n');
        }
    }
    sha2::Sha256::digest(code.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn latest() -> u32 {
    blocks(store().2).last().map_or(0, |(n, _)| *n)
}

pub struct Fixture {
    pub name: String,
    pub version: u32,
    /// The database: kiln.db, or the SQL of a `pg_dump`.
    pub db: PathBuf,
    /// What the old kiln answered (`<name>.json`).
    pub record: Value,
}

/// This store's fixtures `<store>-v<N>.<ext>`, by version.
pub fn fixtures() -> Vec<Fixture> {
    fixtures_named(false)
}

/// This store's fixtures `<store>-v<N>.<ext>`, or with `between` those named
/// `<store>-v<N>-<commit>.<ext>`: made by a commit that had an earlier text of block N.
pub fn fixtures_named(between: bool) -> Vec<Fixture> {
    let (prefix, ext, _) = store();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(DIR).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = file
            .strip_prefix(&format!("{prefix}-v"))
            .and_then(|rest| rest.strip_suffix(&format!(".{ext}")))
        else {
            continue;
        };
        let (number, commit) = stem.split_once('-').unwrap_or((stem, ""));
        let Ok(version) = number.parse::<u32>() else {
            continue;
        };
        if between == commit.is_empty() {
            continue;
        }
        let name = file.strip_suffix(&format!(".{ext}")).unwrap().to_string();
        let record: Value = serde_json::from_slice(
            &std::fs::read(Path::new(DIR).join(format!("{name}.json")))
                .unwrap_or_else(|e| panic!("{name}.json: {e}")),
        )
        .unwrap();
        assert_eq!(record["schema_version"], version, "{name}.json");
        assert_eq!(record["store"], prefix, "{name}.json");
        out.push(Fixture {
            db: Path::new(DIR).join(&file),
            name,
            version,
            record,
        });
    }
    out.sort_by_key(|f| f.version);
    out
}

/// A fresh store holding the fixture's database: `dir/kiln.db` (SQLite), or a new database of
/// the test cluster the dump is restored into (PostgreSQL; its connection string is returned).
pub fn place(f: &Fixture, dir: &Path) -> Option<String> {
    if !postgres_mode() {
        std::fs::copy(&f.db, dir.join("kiln.db")).unwrap();
        return None;
    }
    let conn = pg::fresh_database();
    let out = std::process::Command::new(Path::new(pg::BIN).join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &conn, "-f"])
        .arg(&f.db)
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "restoring {}: {}",
        f.name,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(conn)
}

pub fn start(dir: &Path, conn: &Option<String>) -> TestApp {
    match conn {
        Some(c) => TestApp::start_in(dir, &["--database", c]),
        None => TestApp::start_in(dir, &[]),
    }
}

/// What makes the newest migration block fail part-way: a name its last `CREATE [UNIQUE]
/// TABLE|INDEX name` (not `IF NOT EXISTS`) or `ALTER TABLE t ADD [COLUMN] c` will find taken,
/// when every earlier block and every earlier statement of this block has run.
pub struct Obstacle {
    /// What the name is (a table or index name, or `t.c`), to find in the error.
    pub name: String,
    /// The SQL that takes the name, and the SQL that frees it again.
    pub add: String,
    pub remove: String,
}

pub fn obstacle() -> Obstacle {
    let (_, last) = blocks(store().2).pop().unwrap();
    let mut found = None;
    for stmt in last.split(';') {
        let words: Vec<String> = stmt
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .flat_map(|l| l.split_whitespace())
            .map(|w| w.to_uppercase().trim_matches(['"', '(']).to_string())
            .collect();
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["CREATE", "UNIQUE", "INDEX", name, ..] | ["CREATE", "TABLE" | "INDEX", name, ..]
                if *name != "IF" =>
            {
                let name = name.to_lowercase();
                found = Some(Obstacle {
                    add: format!("CREATE TABLE {name} (x INTEGER)"),
                    remove: format!("DROP TABLE {name}"),
                    name,
                });
            }
            ["ALTER", "TABLE", table, "ADD", rest @ ..] => {
                let column = match rest {
                    ["COLUMN", "IF", ..] | [] => continue,
                    ["COLUMN", column, ..] | [column, ..] => column.to_lowercase(),
                };
                let table = table.to_lowercase();
                found = Some(Obstacle {
                    add: format!("ALTER TABLE {table} ADD COLUMN {column} INTEGER"),
                    remove: format!("ALTER TABLE {table} DROP COLUMN {column}"),
                    name: column,
                });
            }
            _ => {}
        }
    }
    found.expect("the newest migration block creates a table or an index, or adds a column")
}

/// Everything the store holds, to compare before and after: SQLite, the file's bytes and, read
/// through SQLite (WAL included), its version, schema and every table's rows; PostgreSQL, a
/// `pg_dump` of the database.
pub fn snapshot(dir: &Path, conn: &Option<String>) -> (Vec<u8>, String) {
    if let Some(c) = conn {
        // pg_dump names a random key in its `\restrict` and `\unrestrict` lines.
        let dump = String::from_utf8(pg::dump(pg::database_name(c))).unwrap();
        let kept: Vec<&str> = dump
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect();
        return (kept.join("\n").into_bytes(), String::new());
    }
    let path = dir.join("kiln.db");
    let bytes = std::fs::read(&path).unwrap();
    let db = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let mut text = format!("user_version {version}\n");
    let mut tables = Vec::new();
    let mut q = db
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    let rows = q
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (kind, name, sql) = row.unwrap();
        text.push_str(&format!("{kind} {name}: {}\n", sql.unwrap_or_default()));
        if kind == "table" {
            tables.push(name);
        }
    }
    for t in tables {
        let mut q = db.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = q.column_count();
        let mut rows = q.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let vals: Vec<String> = (0..n)
                .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                .collect();
            text.push_str(&format!("{t}: {}\n", vals.join(", ")));
        }
    }
    (bytes, text)
}
