//! Coder's workspace search syntax (`GET /workspaces?q=`): `key:value` terms separated by
//! spaces, values in double quotes may hold spaces, bare words are a name search (`owner/name`
//! searches both), everything lower-cased. The keys kiln understands are below; any other is
//! refused as Coder refuses an unknown one.

use crate::model::ValidationError;

/// A parsed workspace search. Empty fields do not filter.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WorkspaceSearch {
    /// A username, or `me`.
    pub owner: Option<String>,
    /// A part of the workspace's name.
    pub name: Option<String>,
    /// The template's name, exactly.
    pub template: Option<String>,
    /// One of Coder's workspace status words.
    pub status: Option<String>,
    /// Whether the workspace's latest build is not on the template's active version.
    pub outdated: Option<bool>,
    /// Workspace ids.
    pub ids: Vec<String>,
    /// An organization, by name or id.
    pub organization: Option<String>,
    /// `dormant:true` matches nothing: kiln has no dormant workspaces.
    pub dormant: bool,
}

/// Coder's workspace status words (database.WorkspaceStatus).
pub const STATUSES: [&str; 10] = [
    "pending",
    "starting",
    "running",
    "stopping",
    "stopped",
    "failed",
    "canceling",
    "canceled",
    "deleting",
    "deleted",
];

fn invalid(field: &str, detail: String) -> ValidationError {
    ValidationError {
        field: field.to_string(),
        detail,
    }
}

/// Splits on `delimiter` outside double quotes, dropping empty parts (Go's `FieldsFunc`).
fn split_outside_quotes(s: &str, delimiter: char, keep_quotes: bool) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in s.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && c == delimiter {
            if !current.is_empty() {
                parts.push(std::mem::take(&mut current));
            }
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    if !keep_quotes {
        for p in &mut parts {
            *p = p.trim_matches('"').to_string();
        }
    }
    parts
}

/// The terms of `query` as (key, value) pairs, in order (Coder's `searchTerms`).
fn terms(query: &str) -> Result<Vec<(String, String)>, Vec<ValidationError>> {
    let tokens = split_outside_quotes(query, ' ', true);
    let (fields, words): (Vec<String>, Vec<String>) =
        tokens.into_iter().partition(|t| t.contains(':'));
    let mut elements = fields;
    if !words.is_empty() {
        elements.push(words.join(" "));
    }
    let mut out = Vec::new();
    for element in elements {
        if element.starts_with(':') || element.ends_with(':') {
            return Err(vec![invalid(
                "q",
                format!("Query element {element:?} cannot start or end with ':'"),
            )]);
        }
        let parts = split_outside_quotes(&element, ':', false);
        match parts.as_slice() {
            [word] => {
                let halves = split_outside_quotes(word, '/', false);
                match halves.as_slice() {
                    [name] => out.push(("name".into(), name.clone())),
                    [owner, name] => {
                        out.push(("owner".into(), owner.clone()));
                        out.push(("name".into(), name.clone()));
                    }
                    _ => {
                        return Err(vec![invalid(
                            "q",
                            format!("Query element {word:?} can only contain 1 '/'"),
                        )]);
                    }
                }
            }
            [key, value] => out.push((key.to_lowercase(), value.clone())),
            _ => {
                return Err(vec![invalid(
                    "q",
                    format!("Query element {element:?} can only contain 1 ':'"),
                )]);
            }
        }
    }
    Ok(out)
}

/// Parses a workspace search; every problem is reported, as Coder's parser does.
pub fn workspace_search(query: &str) -> Result<WorkspaceSearch, Vec<ValidationError>> {
    let mut search = WorkspaceSearch::default();
    if query.is_empty() {
        return Ok(search);
    }
    let query = query.to_lowercase();
    let pairs = terms(&query)?;
    let mut errors = Vec::new();
    let mut keys: Vec<&str> = Vec::new();
    for (key, _) in &pairs {
        if !keys.contains(&key.as_str()) {
            keys.push(key);
        }
    }
    for key in keys {
        let values: Vec<&str> = pairs
            .iter()
            .filter(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect();
        let single = |errors: &mut Vec<ValidationError>| -> Option<String> {
            match values.as_slice() {
                [] => None,
                [one] => Some(one.to_string()),
                many => {
                    errors.push(invalid(
                        key,
                        format!(
                            "Query param {key:?} provided more than once, found {} times. Only provide 1 instance of this query param.",
                            many.len()
                        ),
                    ));
                    None
                }
            }
        };
        let boolean = |errors: &mut Vec<ValidationError>, raw: Option<String>| -> Option<bool> {
            let raw = raw?;
            match go_parse_bool(&raw) {
                Some(b) => Some(b),
                None => {
                    errors.push(invalid(
                        key,
                        format!(
                            "Query param {key:?} must be a valid boolean: strconv.ParseBool: parsing {raw:?}: invalid syntax"
                        ),
                    ));
                    None
                }
            }
        };
        match key {
            "owner" => search.owner = single(&mut errors),
            "name" => search.name = single(&mut errors),
            "template" => search.template = single(&mut errors),
            "organization" => search.organization = single(&mut errors),
            "status" => {
                if let Some(s) = single(&mut errors) {
                    if STATUSES.contains(&s.as_str()) {
                        search.status = Some(s);
                    } else {
                        errors.push(invalid(
                            key,
                            format!(
                                "Query param {key:?} has invalid value: {s:?} is not a valid value"
                            ),
                        ));
                    }
                }
            }
            "outdated" => {
                let raw = single(&mut errors);
                search.outdated = boolean(&mut errors, raw);
            }
            "dormant" => {
                let raw = single(&mut errors);
                search.dormant = boolean(&mut errors, raw).unwrap_or(false);
            }
            "id" => {
                let mut bad = Vec::new();
                for v in values.iter().flat_map(|v| v.split(',')) {
                    match uuid::Uuid::parse_str(v.trim()) {
                        Ok(u) => search.ids.push(u.to_string()),
                        Err(_) if v.trim().len() != 36 => {
                            bad.push(format!("invalid UUID length: {}", v.trim().len()))
                        }
                        Err(_) => bad.push("invalid UUID format".to_string()),
                    }
                }
                if !bad.is_empty() {
                    errors.push(invalid(
                        key,
                        format!("Query param {key:?} has invalid values: {}", bad.join("\n")),
                    ));
                }
            }
            other => errors.push(invalid(
                other,
                format!("{other:?} is not a valid query param"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(search)
    } else {
        Err(errors)
    }
}

/// A parsed template search (`GET /templates?q=`, as `coder create -t NAME` asks it).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TemplateSearch {
    /// The template's name, exactly (without case).
    pub exact_name: Option<String>,
    /// A part of its name or display name.
    pub name: Option<String>,
    /// An organization, by name or id.
    pub organization: Option<String>,
    /// `deprecated:true` matches nothing (kiln deprecates no template); `has-ai-task:true`
    /// neither.
    pub matches_nothing: bool,
}

/// Parses a template search: Coder's keys `exact_name`, `name` (and bare words),
/// `organization`, `deprecated` and `has-ai-task`; any other is refused.
pub fn template_search(query: &str) -> Result<TemplateSearch, Vec<ValidationError>> {
    let mut search = TemplateSearch::default();
    let mut errors = Vec::new();
    for (key, value) in terms(&query.to_lowercase())? {
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "exact_name" => search.exact_name = Some(value),
            "name" => search.name = Some(value),
            "organization" => search.organization = Some(value),
            "deprecated" | "has-ai-task" => match go_parse_bool(&value) {
                Some(b) => search.matches_nothing |= b,
                None => errors.push(invalid(
                    &key,
                    format!(
                        "Query param {key:?} must be a valid boolean: strconv.ParseBool: parsing {value:?}: invalid syntax"
                    ),
                )),
            },
            other => errors.push(invalid(other, format!("{other:?} is not a valid query param"))),
        }
    }
    if errors.is_empty() {
        Ok(search)
    } else {
        Err(errors)
    }
}

/// Go's `strconv.ParseBool`.
fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_searches_as_coders_cli_sends_them() {
        let s = template_search("exact_name:\"base\"").unwrap();
        assert_eq!(s.exact_name.as_deref(), Some("base"));
        assert_eq!(template_search("").unwrap(), TemplateSearch::default());
        assert_eq!(
            template_search("docker").unwrap().name.as_deref(),
            Some("docker")
        );
        assert!(template_search("deprecated:true").unwrap().matches_nothing);
        let e = template_search("owner:me").unwrap_err();
        assert_eq!(e[0].detail, "\"owner\" is not a valid query param");
    }

    fn ok(q: &str) -> WorkspaceSearch {
        workspace_search(q).unwrap_or_else(|e| panic!("{q}: {e:?}"))
    }

    fn details(q: &str) -> Vec<(String, String)> {
        workspace_search(q)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.field, e.detail))
            .collect()
    }

    #[test]
    fn terms_keys_and_bare_words() {
        assert_eq!(ok(""), WorkspaceSearch::default());
        let s = ok("owner:me template:Base status:running outdated:true");
        assert_eq!(s.owner.as_deref(), Some("me"));
        assert_eq!(s.template.as_deref(), Some("base"), "lower-cased");
        assert_eq!(s.status.as_deref(), Some("running"));
        assert_eq!(s.outdated, Some(true));
        let s = ok("alice/dev");
        assert_eq!(
            (s.owner.as_deref(), s.name.as_deref()),
            (Some("alice"), Some("dev"))
        );
    }

    #[test]
    fn quoted_values_and_words_joined() {
        let s = ok("template:\"my base\"");
        assert_eq!(s.template.as_deref(), Some("my base"));
        let s = ok("dev box");
        assert_eq!(s.name.as_deref(), Some("dev box"));
    }

    #[test]
    fn errors_as_coder_words_them() {
        assert_eq!(
            details("color:blue"),
            [(
                "color".into(),
                "\"color\" is not a valid query param".into()
            )]
        );
        assert_eq!(
            details("status:sleeping"),
            [(
                "status".into(),
                "Query param \"status\" has invalid value: \"sleeping\" is not a valid value"
                    .into()
            )]
        );
        assert_eq!(
            details("owner:"),
            [(
                "q".into(),
                "Query element \"owner:\" cannot start or end with ':'".into()
            )]
        );
        assert_eq!(
            details("a:b:c"),
            [(
                "q".into(),
                "Query element \"a:b:c\" can only contain 1 ':'".into()
            )]
        );
        assert_eq!(
            details("a/b/c"),
            [(
                "q".into(),
                "Query element \"a/b/c\" can only contain 1 '/'".into()
            )]
        );
        assert_eq!(
            details("outdated:maybe"),
            [(
                "outdated".into(),
                "Query param \"outdated\" must be a valid boolean: strconv.ParseBool: parsing \"maybe\": invalid syntax".into()
            )]
        );
        assert_eq!(details("owner:a owner:b")[0].0, "owner");
    }
}
