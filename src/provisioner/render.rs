//! Placeholder substitution in log texts, metadata values and app URLs: `{{param.NAME}}`,
//! `{{workspace.name}}`, `{{owner.name}}`, `{{build.number}}`. Never applied to `run` commands,
//! which read the same values from `KILN_*` environment variables instead.

use regex::{Captures, Regex};
use std::collections::HashMap;
use std::sync::LazyLock;

/// `{{ key }}`: a key of anything but braces and spaces, with optional spaces around it.
static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{\s*([^{}\s]+)\s*\}\}").expect("placeholder regex"));

/// Replaces each `{{key}}` (spaces allowed inside the braces) whose key is in `vars` by its value.
/// Keys are full dotted names: `param.region`, `workspace.name`, `owner.name`, `build.number`.
/// Unknown keys are left as written. One pass: text coming from a value is never scanned again,
/// so a parameter value holding `{{...}}` stays literal.
pub fn render(text: &str, vars: &HashMap<String, String>) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    PLACEHOLDER
        .replace_all(text, |caps: &Captures| match vars.get(&caps[1]) {
            Some(value) => value.clone(),
            None => caps[0].to_string(),
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> HashMap<String, String> {
        [
            ("param.region", "eu-west"),
            ("param.disk-size", "20"),
            ("workspace.name", "dev"),
            ("owner.name", "alice"),
            ("build.number", "3"),
            ("param.tricky", "{{owner.name}}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn replaces_every_known_placeholder() {
        assert_eq!(
            render(
                "{{owner.name}}/{{workspace.name}} #{{build.number}} in {{param.region}}",
                &vars()
            ),
            "alice/dev #3 in eu-west"
        );
        assert_eq!(render("{{param.disk-size}} GB", &vars()), "20 GB");
    }

    #[test]
    fn spaces_inside_the_braces_are_allowed() {
        assert_eq!(render("{{ param.region }}", &vars()), "eu-west");
        assert_eq!(render("{{\tworkspace.name  }}!", &vars()), "dev!");
    }

    #[test]
    fn unknown_keys_and_non_placeholders_are_left_as_written() {
        assert_eq!(render("{{param.nope}}", &vars()), "{{param.nope}}");
        assert_eq!(render("{{ param.nope }}", &vars()), "{{ param.nope }}");
        assert_eq!(
            render("{{}} {{ }} {single}", &vars()),
            "{{}} {{ }} {single}"
        );
        assert_eq!(render("{{param region}}", &vars()), "{{param region}}");
        assert_eq!(render("no braces", &vars()), "no braces");
        assert_eq!(render("", &vars()), "");
    }

    #[test]
    fn a_substituted_value_is_never_scanned_again() {
        assert_eq!(render("x={{param.tricky}}", &vars()), "x={{owner.name}}");
    }

    #[test]
    fn braces_around_a_placeholder_stay() {
        assert_eq!(render("{{{owner.name}}}", &vars()), "{alice}");
        assert_eq!(render("{{ {{owner.name}} }}", &vars()), "{{ alice }}");
    }

    #[test]
    fn unicode_text_around_placeholders_is_kept() {
        assert_eq!(render("héllo {{owner.name}} ✓", &vars()), "héllo alice ✓");
    }
}
