//! Listings: an aligned table (upper-case headers, columns two spaces apart) by default, or the
//! API's JSON with `-o json`.

use serde_json::Value;

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Output {
    /// An aligned table.
    Table,
    /// The API's JSON, indented.
    Json,
}

/// The lines of a table, each without trailing spaces.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(c);
            if i + 1 < cells.len() {
                s.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count()));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = vec![line(headers.to_vec())];
    for row in rows {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub fn print(headers: &[&str], rows: &[Vec<String>]) {
    for l in render(headers, rows) {
        println!("{l}");
    }
}

pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap());
}

/// A string member, or "" (numbers and booleans as JSON writes them).
pub fn s(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM:SS` (UTC), or "" when absent.
pub fn time(v: &Value, pointer: &str) -> String {
    let raw = s(v, pointer);
    match raw.parse::<jiff::Timestamp>() {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => raw,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up_and_lines_have_no_trailing_spaces() {
        let rows = vec![
            vec!["a".to_string(), "long value".to_string(), "x".to_string()],
            vec!["bbbb".to_string(), "".to_string(), "".to_string()],
        ];
        assert_eq!(
            super::render(&["ONE", "TWO", "THREE"], &rows),
            vec!["ONE   TWO         THREE", "a     long value  x", "bbbb",]
        );
    }
}
