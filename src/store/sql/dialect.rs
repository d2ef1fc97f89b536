//! What the two databases spell differently, and statements built once per dialect.
//!
//! The shared statements are written in SQLite's syntax, placeholders numbered `?N`. What
//! differs is a field of `Dialect`, each backend's value in its own `dialect.rs`: a fragment
//! (a cast PostgreSQL needs to type a parameter, a list parameter, case-insensitive text, row
//! locks) or, for the few statements that differ as a whole, the statement itself.

use super::value::Value;
use std::borrow::Cow;
use std::sync::OnceLock;

/// How one database spells what the shared statements need.
pub struct Dialect {
    // How placeholders are written.
    /// This dialect's slot in each statement's cache (`Stmt`): 0 or 1.
    pub index: usize,
    /// Placeholders are written `$N` (PostgreSQL) rather than `?N`.
    pub dollar_placeholders: bool,

    // Fragments: how the shared statements spell what the databases spell differently.
    /// Parameter `param` (`?N`) cast to SQL type `ty`, where the statement does not tell its
    /// type (`?1 IS NULL`) and the database must know it.
    pub cast: fn(param: &str, ty: &str) -> String,
    /// Text column `column` equal to `param` without case.
    pub nocase_eq: fn(column: &str, param: &str) -> String,
    /// The order of text column `column` without case (in an `ORDER BY`).
    pub nocase_order: fn(column: &str) -> String,
    /// The order of text column `column` by its bytes (in an `ORDER BY`).
    pub bytes_order: fn(column: &str) -> String,
    /// Boolean column `column` is false (in a `WHERE`, as the partial indexes say it).
    pub is_false: fn(column: &str) -> String,
    /// What locks the rows a `SELECT` read (of the tables of aliases `of`, all when empty)
    /// until the transaction ends, appended to it: empty where a transaction holds the whole
    /// database.
    pub for_update: fn(of: &str) -> String,
    /// A short key of a row to join a table back to itself by (`rowid`, or the primary key).
    pub row_key: &'static str,
    /// The rows of list parameter `param` (`Value::Texts`) as a table aliased `alias`, and
    /// the expression of an element: `(from_item, value)`.
    pub texts: fn(param: &str, alias: &str) -> (String, String),
    /// Text column `column` is one of list parameter `param` (`Value::Texts`).
    pub in_texts: fn(column: &str, param: &str) -> String,
    /// Where the text of the second argument starts in the first (1-based; 0: nowhere).
    pub text_position: &'static str,
    /// The LIMIT parameter that sets no limit.
    pub no_limit: Value<'static>,

    // How the database runs transactions.
    /// Write transactions run one at a time, each seeing every write committed before it
    /// (SQLite): what a write read stays true until it commits.
    pub writes_serialized: bool,

    // What differs in one statement, or the whole statement where it differs throughout.
    /// The value (a statement) of a new job's `seq`; `None`: the database numbers jobs itself.
    pub next_job_seq: Option<&'static str>,
    /// The column a take names the job it chose by (`jobs::TAKE_JOB`).
    pub take_key: &'static str,
    /// How many jobs wait.
    pub pending_count: &'static str,
    /// `(position, size)` of the pending job whose `seq` is `?1`: its 1-based place in the
    /// queue, and the queue's length.
    pub queue_position: &'static str,
    /// A batch of log lines in one statement: `?1` the job, `?2`..`?6` one array per column
    /// (times, sources, levels, stages, outputs), the lines inserted in their order. `None`:
    /// a statement per line.
    pub insert_log_lines: Option<&'static str>,
    /// The column of `template_versions` that orders versions created in the same
    /// microsecond by insertion.
    pub version_order: &'static str,
    /// The list of workspaces (`workspaces::list`): its `FROM` (`w` and their owners `u`)
    /// and `ORDER BY` (owner name, then name, without case).
    pub workspace_list_from: &'static str,
    pub workspace_list_order: &'static str,
    /// The status page's recent builds (`overview::RECENT_BUILDS`): what orders builds created
    /// in the same microsecond (descending), and whether they are read a page at a time.
    pub recent_builds_tie: &'static str,
    pub recent_builds_paged: bool,
    /// Creates the scratch table of `commit_probe` (`id`, and `at`: an integer).
    pub commit_probe_table: &'static str,
    /// The database's size on disk, in bytes (one row, one column).
    pub database_size: &'static str,
}

impl Dialect {
    /// `sql` as this database reads it: `?N` turned into `$N` where placeholders are written
    /// so. (Connections do it once per prepared statement; hot-query listings show it.)
    pub fn native<'s>(&self, sql: &'s str) -> Cow<'s, str> {
        if self.dollar_placeholders && sql.contains('?') {
            Cow::Owned(dollar_placeholders(sql))
        } else {
            Cow::Borrowed(sql)
        }
    }
}

/// `sql` with each placeholder `?N` written `$N`, outside quoted text and names.
pub fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('$');
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

/// Statement text: a `&str` as it is, a `Stmt` as built for the connection's dialect.
pub trait Sql {
    fn text(&self, d: &'static Dialect) -> &str;
}

impl Sql for str {
    fn text(&self, _: &'static Dialect) -> &str {
        self
    }
}

impl Sql for String {
    fn text(&self, _: &'static Dialect) -> &str {
        self
    }
}

/// A statement made of dialect fragments, built on first use for each dialect and kept: its
/// text costs nothing after that, and is the same `&str` each time (the key of the
/// connections' statement caches).
pub struct Stmt {
    build: fn(&Dialect) -> String,
    built: [OnceLock<String>; 2],
}

impl Stmt {
    pub const fn new(build: fn(&Dialect) -> String) -> Stmt {
        Stmt {
            build,
            built: [OnceLock::new(), OnceLock::new()],
        }
    }
}

impl Sql for Stmt {
    fn text(&self, d: &'static Dialect) -> &str {
        self.built[d.index].get_or_init(|| (self.build)(d))
    }
}

#[cfg(test)]
mod tests {
    use super::dollar_placeholders;

    #[test]
    fn placeholders_become_dollars_outside_quotes() {
        assert_eq!(
            dollar_placeholders("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND \"?3\" = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND \"?3\" = $12"
        );
        assert_eq!(
            dollar_placeholders("x = 'it''s ?1' OR y = ?2"),
            "x = 'it''s ?1' OR y = $2"
        );
        assert_eq!(dollar_placeholders("a ? b"), "a ? b");
    }
}
