//! What the checks share: the problems found, each with its JSON path, and the words of
//! their messages.

use std::fmt::Display;

/// At most this many problems are listed; the rest are counted.
const MAX_REPORTED_PROBLEMS: usize = 20;

/// The environment variable a `run` step sees a parameter's value in: `KILN_PARAM_` followed by
/// the name upper-cased, with `-` turned into `_` (`disk-size` gives `KILN_PARAM_DISK_SIZE`).
pub fn param_env_var(name: &str) -> String {
    format!("KILN_PARAM_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// The problems found so far, each already prefixed with its JSON path.
#[derive(Default)]
pub(crate) struct Problems(Vec<String>);

impl Problems {
    /// Records `message` at `path` (`parameters[0].name`); an empty path means the whole file.
    pub(crate) fn add(&mut self, path: &str, message: impl Display) {
        let at = if path.is_empty() { "kiln.json" } else { path };
        self.0.push(format!("{at}: {message}"));
    }

    pub(crate) fn into_result(self) -> Result<(), String> {
        let Problems(list) = self;
        if list.is_empty() {
            return Ok(());
        }
        let mut lines: Vec<String> = list.iter().take(MAX_REPORTED_PROBLEMS).cloned().collect();
        if list.len() > MAX_REPORTED_PROBLEMS {
            lines.push(format!(
                "... and {} more problems",
                list.len() - MAX_REPORTED_PROBLEMS
            ));
        }
        Err(lines.join("\n"))
    }
}

/// `parent.field`, or `field` at the top.
pub(crate) fn field_path(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_string()
    } else {
        format!("{parent}.{field}")
    }
}

/// `parent[index]`.
pub(crate) fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The known word closest to `word`, when it looks like a typo of it (edit distance 1 or 2).
pub(crate) fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (edit_distance(word, k), k))
        .filter(|(d, k)| *d <= 2 && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over chars, counting a swap of two neighbours as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// `[a, b, c]`, the way Coder lists option values in its messages.
pub(crate) fn bracket_list<S: AsRef<str>>(items: &[S]) -> String {
    let joined: Vec<&str> = items.iter().map(|s| s.as_ref()).collect();
    format!("[{}]", joined.join(", "))
}
