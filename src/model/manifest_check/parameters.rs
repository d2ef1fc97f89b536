//! The rules on rich parameters, after the shape pass: names, types, defaults, options and
//! validation, following Coder's rules for `coder_parameter`.
//!
//! Parameter names may hold ASCII letters, digits, `_` and `-` (`^[a-zA-Z0-9_-]+$`): a name is
//! used in `{{param.NAME}}` placeholders and, upper-cased with `-` turned into `_`, in the
//! `KILN_PARAM_NAME` environment variable of `run` steps, so two names giving the same variable
//! are refused too. Numbers are whole numbers (64 bits), as Coder's validation parses them.

use super::problems::{Problems, bracket_list, field_path, index_path, param_env_var};
use crate::model::manifest::Parameter;
use regex::Regex;
use std::collections::HashMap;
use std::sync::LazyLock;

pub(super) const PARAMETER_TYPES: [&str; 4] = ["string", "number", "bool", "list(string)"];

static PARAMETER_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[a-zA-Z0-9_-]+$").expect("parameter name regex"));

pub(super) fn check_parameters(parameters: &[Parameter], out: &mut Problems) {
    let mut first_by_name: HashMap<&str, usize> = HashMap::new();
    let mut first_by_env_var: HashMap<String, usize> = HashMap::new();
    for (i, parameter) in parameters.iter().enumerate() {
        let path = index_path("parameters", i);
        let name = parameter.name.as_str();
        let name_path = field_path(&path, "name");
        if name.is_empty() {
            out.add(&name_path, "the parameter's name is empty");
        } else if !PARAMETER_NAME.is_match(name) {
            out.add(
                &name_path,
                format!(
                    "parameter name \"{name}\" may only hold letters (a-z, A-Z), digits, \"_\" \
                     and \"-\""
                ),
            );
        } else if let Some(first) = first_by_name.get(name) {
            out.add(
                &name_path,
                format!("parameter \"{name}\" is declared twice (first at parameters[{first}])"),
            );
        } else if let Some(first) = first_by_env_var.get(&param_env_var(name)) {
            out.add(
                &name_path,
                format!(
                    "parameters \"{}\" and \"{name}\" would both reach commands as {}; rename one",
                    parameters[*first].name,
                    param_env_var(name)
                ),
            );
        }
        first_by_name.entry(name).or_insert(i);
        first_by_env_var.entry(param_env_var(name)).or_insert(i);
        check_parameter(parameter, &path, out);
    }
}

fn check_parameter(p: &Parameter, path: &str, out: &mut Problems) {
    let name = &p.name;
    if p.required && !p.default_value.is_empty() {
        out.add(
            path,
            format!(
                "parameter \"{name}\" is required, so it cannot have a default_value (required \
                 means the value must be given); remove \"default_value\" or \"required\""
            ),
        );
    }
    if p.ephemeral && !p.mutable {
        out.add(
            path,
            format!(
                "parameter \"{name}\" is ephemeral, so it must also be mutable (\"mutable\": true)"
            ),
        );
    }
    if !PARAMETER_TYPES.contains(&p.kind.as_str()) {
        out.add(
            &field_path(path, "type"),
            format!(
                "unknown type \"{}\"; a type is one of {}",
                p.kind,
                PARAMETER_TYPES.join(", ")
            ),
        );
        return;
    }
    if !p.default_value.is_empty() {
        check_default_type(p, path, out);
    }
    check_options(p, path, out);
    check_regex(p, path, out);
    check_number_rules(p, path, out);
}

fn check_default_type(p: &Parameter, path: &str, out: &mut Problems) {
    let (name, value) = (&p.name, &p.default_value);
    let problem = match p.kind.as_str() {
        "bool" if value != "true" && value != "false" => Some(format!(
            "default value \"{value}\" of bool parameter \"{name}\" must be true or false"
        )),
        "number" if value.parse::<i64>().is_err() => Some(format!(
            "default value \"{value}\" of number parameter \"{name}\" is not a whole number"
        )),
        "list(string)" if list_items(value).is_none() => Some(format!(
            "default value {value:?} of list(string) parameter \"{name}\" must be a JSON array \
             of strings written as a string, e.g. \"[\\\"a\\\",\\\"b\\\"]\""
        )),
        _ => None,
    };
    if let Some(problem) = problem {
        out.add(&field_path(path, "default_value"), problem);
    }
}

/// The strings of a `list(string)` value (`["a","b"]`), or `None` when it is not one.
pub(crate) fn list_items(value: &str) -> Option<Vec<String>> {
    serde_json::from_str::<Vec<String>>(value).ok()
}

fn check_options(p: &Parameter, path: &str, out: &mut Problems) {
    if p.options.is_empty() {
        return;
    }
    let options_path = field_path(path, "options");
    if p.kind == "bool" {
        out.add(
            &options_path,
            format!(
                "bool parameter \"{}\" cannot have options (its values are true and false)",
                p.name
            ),
        );
        return;
    }
    let mut first_by_name: HashMap<&str, usize> = HashMap::new();
    let mut first_by_value: HashMap<&str, usize> = HashMap::new();
    for (i, option) in p.options.iter().enumerate() {
        let option_path = index_path(&options_path, i);
        if option.name.is_empty() {
            out.add(
                &field_path(&option_path, "name"),
                "the option's name is empty",
            );
        } else if let Some(first) = first_by_name.get(option.name.as_str()) {
            out.add(
                &field_path(&option_path, "name"),
                format!(
                    "option name \"{}\" is used twice (first at {options_path}[{first}])",
                    option.name
                ),
            );
        }
        if let Some(first) = first_by_value.get(option.value.as_str()) {
            out.add(
                &field_path(&option_path, "value"),
                format!(
                    "option value \"{}\" is used twice (first at {options_path}[{first}])",
                    option.value
                ),
            );
        } else if p.kind == "number" && option.value.parse::<i64>().is_err() {
            out.add(
                &field_path(&option_path, "value"),
                format!(
                    "option value \"{}\" of number parameter \"{}\" is not a whole number",
                    option.value, p.name
                ),
            );
        }
        first_by_name.entry(&option.name).or_insert(i);
        first_by_value.entry(&option.value).or_insert(i);
    }
    if p.default_value.is_empty() {
        return;
    }
    let values: Vec<&str> = p.options.iter().map(|o| o.value.as_str()).collect();
    let defaults = if p.kind == "list(string)" {
        list_items(&p.default_value).unwrap_or_default()
    } else {
        vec![p.default_value.clone()]
    };
    for default in defaults {
        if !values.contains(&default.as_str()) {
            out.add(
                &field_path(path, "default_value"),
                format!(
                    "default value \"{default}\" of parameter \"{}\" must be one of the options: \
                     {}",
                    p.name,
                    bracket_list(&values)
                ),
            );
        }
    }
}

fn check_regex(p: &Parameter, path: &str, out: &mut Problems) {
    if p.validation_regex.is_empty() {
        return;
    }
    let regex_path = field_path(path, "validation_regex");
    if p.kind != "string" {
        out.add(
            &regex_path,
            format!(
                "only string parameters can have a validation_regex; \"{}\" is {}",
                p.name, p.kind
            ),
        );
        return;
    }
    let regex = match Regex::new(&p.validation_regex) {
        Ok(regex) => regex,
        Err(e) => {
            out.add(
                &regex_path,
                format!(
                    "the validation_regex {:?} of parameter \"{}\" does not compile: {}",
                    p.validation_regex,
                    p.name,
                    regex_error_summary(&e)
                ),
            );
            return;
        }
    };
    if p.validation_error.is_empty() {
        out.add(
            &field_path(path, "validation_error"),
            format!(
                "parameter \"{}\" has a validation_regex, so it needs a validation_error: the \
                 message people see when a value does not match",
                p.name
            ),
        );
    }
    if !p.default_value.is_empty() && !regex.is_match(&p.default_value) {
        out.add(
            &field_path(path, "default_value"),
            format!(
                "default value \"{}\" of parameter \"{}\" does not match its validation_regex {:?}",
                p.default_value, p.name, p.validation_regex
            ),
        );
    }
}

/// The one line of a regex error that says what is wrong (the full text spans several lines).
fn regex_error_summary(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .find_map(|line| line.strip_prefix("error: "))
        .unwrap_or(text.trim())
        .to_string()
}

fn check_number_rules(p: &Parameter, path: &str, out: &mut Problems) {
    let name = &p.name;
    let is_number = p.kind == "number";
    for (field, present) in [
        ("validation_min", p.validation_min.is_some()),
        ("validation_max", p.validation_max.is_some()),
        ("validation_monotonic", !p.validation_monotonic.is_empty()),
    ] {
        if present && !is_number {
            out.add(
                &field_path(path, field),
                format!(
                    "only number parameters can have a {field}; \"{name}\" is {}",
                    p.kind
                ),
            );
        }
    }
    if !p.validation_monotonic.is_empty()
        && !matches!(p.validation_monotonic.as_str(), "increasing" | "decreasing")
    {
        out.add(
            &field_path(path, "validation_monotonic"),
            format!(
                "unknown value \"{}\"; validation_monotonic is \"increasing\", \"decreasing\" or \
                 empty",
                p.validation_monotonic
            ),
        );
    }
    if !is_number {
        return;
    }
    if let (Some(min), Some(max)) = (p.validation_min, p.validation_max)
        && min > max
    {
        out.add(
            path,
            format!(
                "validation_min {min} of parameter \"{name}\" is greater than its \
                 validation_max {max}"
            ),
        );
    }
    let Ok(default) = p.default_value.parse::<i64>() else {
        return;
    };
    let default_path = field_path(path, "default_value");
    if let Some(min) = p.validation_min.filter(|min| default < *min) {
        out.add(
            &default_path,
            format!(
                "default value {default} of parameter \"{name}\" is less than the minimum {min}"
            ),
        );
    }
    if let Some(max) = p.validation_max.filter(|max| default > *max) {
        out.add(
            &default_path,
            format!(
                "default value {default} of parameter \"{name}\" is more than the maximum {max}"
            ),
        );
    }
}
