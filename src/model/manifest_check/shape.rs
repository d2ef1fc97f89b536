//! The first pass over `kiln.json`: the raw JSON against the fields each object may have, so that
//! typos (`defualt_value`), wrong JSON types and malformed steps are reported with their path
//! before serde's less precise messages could be.

use super::problems::{Problems, closest, field_path, index_path};
use super::values::{TRANSITIONS, check_text, describe};
use serde_json::Value;

/// What a field's value must be.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Flag,
    /// A whole number that fits 32 bits (sign is checked by the rules pass).
    WholeNumber,
    /// A whole number (64 bits) or `null`.
    OptionalWholeNumber,
    /// A list of `start` | `stop` | `delete`.
    Transitions,
    ListOf(&'static Shape),
    /// An object or `null`.
    OptionalObject(&'static Shape),
    /// The `steps` object.
    Steps,
}

pub(super) struct Field {
    name: &'static str,
    kind: Kind,
    required: bool,
}

/// The fields a JSON object of one type may have.
pub(super) struct Shape {
    /// What the object is, for messages: "a parameter".
    what: &'static str,
    fields: &'static [Field],
}

const fn optional(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: false,
    }
}

const fn required(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: true,
    }
}

use Kind::*;

static MANIFEST: Shape = Shape {
    what: "a manifest",
    fields: &[
        optional("parameters", ListOf(&PARAMETER)),
        optional("resources", ListOf(&RESOURCE)),
        optional("steps", Steps),
    ],
};

static PARAMETER: Shape = Shape {
    what: "a parameter",
    fields: &[
        required("name", Text),
        optional("display_name", Text),
        optional("description", Text),
        optional("type", Text),
        optional("default_value", Text),
        optional("mutable", Flag),
        optional("ephemeral", Flag),
        optional("required", Flag),
        optional("icon", Text),
        optional("options", ListOf(&PARAMETER_OPTION)),
        optional("validation_regex", Text),
        optional("validation_error", Text),
        optional("validation_min", OptionalWholeNumber),
        optional("validation_max", OptionalWholeNumber),
        optional("validation_monotonic", Text),
    ],
};

static PARAMETER_OPTION: Shape = Shape {
    what: "an option",
    fields: &[
        required("name", Text),
        required("value", Text),
        optional("description", Text),
        optional("icon", Text),
    ],
};

static RESOURCE: Shape = Shape {
    what: "a resource",
    fields: &[
        required("name", Text),
        required("type", Text),
        optional("transitions", Transitions),
        optional("hide", Flag),
        optional("icon", Text),
        optional("daily_cost", WholeNumber),
        optional("metadata", ListOf(&METADATA)),
        optional("agents", ListOf(&AGENT)),
    ],
};

static METADATA: Shape = Shape {
    what: "a metadata item",
    fields: &[
        required("key", Text),
        optional("value", Text),
        optional("sensitive", Flag),
    ],
};

static AGENT: Shape = Shape {
    what: "an agent",
    fields: &[
        required("name", Text),
        optional("operating_system", Text),
        optional("architecture", Text),
        optional("directory", Text),
        optional("connection_timeout_seconds", WholeNumber),
        optional("troubleshooting_url", Text),
        optional("apps", ListOf(&APP)),
        optional("scripts", ListOf(&SCRIPT)),
    ],
};

static APP: Shape = Shape {
    what: "an app",
    fields: &[
        required("slug", Text),
        optional("display_name", Text),
        optional("url", Text),
        optional("command", Text),
        optional("icon", Text),
        optional("subdomain", Flag),
        optional("sharing_level", Text),
        optional("external", Flag),
        optional("hidden", Flag),
        optional("open_in", Text),
        optional("group", Text),
        optional("tooltip", Text),
        optional("healthcheck", OptionalObject(&HEALTHCHECK)),
    ],
};

static HEALTHCHECK: Shape = Shape {
    what: "a healthcheck",
    fields: &[
        required("url", Text),
        optional("interval", WholeNumber),
        optional("threshold", WholeNumber),
    ],
};

static SCRIPT: Shape = Shape {
    what: "a script",
    fields: &[
        required("display_name", Text),
        required("script", Text),
        optional("icon", Text),
        optional("cron", Text),
        optional("run_on_start", Flag),
        optional("run_on_stop", Flag),
        optional("start_blocks_login", Flag),
        optional("timeout", WholeNumber),
        optional("log_path", Text),
    ],
};

/// Checks the whole document.
pub(super) fn check_manifest(value: &Value, out: &mut Problems) {
    if !value.is_object() {
        out.add(
            "",
            format!(
                "must hold a JSON object such as {{\"parameters\": [], \"resources\": [], \
                 \"steps\": {{}}}}, found {}",
                describe(value)
            ),
        );
        return;
    }
    check_object(value, &MANIFEST, "", out);
}

fn check_object(value: &Value, shape: &Shape, path: &str, out: &mut Problems) {
    let Some(map) = value.as_object() else {
        out.add(
            path,
            format!(
                "expected {} (a JSON object), found {}",
                shape.what,
                describe(value)
            ),
        );
        return;
    };
    for (key, field_value) in map {
        match shape.fields.iter().find(|f| f.name == key) {
            Some(field) => check_kind(field_value, field.kind, &field_path(path, key), out),
            None => out.add(path, unknown_field(key, shape)),
        }
    }
    for field in shape.fields.iter().filter(|f| f.required) {
        if !map.contains_key(field.name) {
            out.add(
                path,
                format!("{} needs a \"{}\" field", shape.what, field.name),
            );
        }
    }
}

fn unknown_field(key: &str, shape: &Shape) -> String {
    let names: Vec<&str> = shape.fields.iter().map(|f| f.name).collect();
    let hint = closest(key, names.iter().copied())
        .map(|k| format!(" (did you mean \"{k}\"?)"))
        .unwrap_or_default();
    format!(
        "unknown field \"{key}\"{hint}; the fields of {} are: {}",
        shape.what,
        names.join(", ")
    )
}

fn check_kind(value: &Value, kind: Kind, path: &str, out: &mut Problems) {
    match kind {
        Text => check_text(value, path, out),
        Flag => {
            if !value.is_boolean() {
                out.add(
                    path,
                    format!("expected true or false, found {}", describe(value)),
                );
            }
        }
        WholeNumber => {
            if value.as_i64().is_none_or(|n| i32::try_from(n).is_err()) {
                out.add(
                    path,
                    format!("expected a whole number, found {}", describe(value)),
                );
            }
        }
        OptionalWholeNumber => {
            if !value.is_null() && value.as_i64().is_none() {
                out.add(
                    path,
                    format!("expected a whole number or null, found {}", describe(value)),
                );
            }
        }
        Transitions => check_transitions(value, path, out),
        ListOf(shape) => {
            let Some(items) = value.as_array() else {
                out.add(
                    path,
                    format!(
                        "expected a list (a JSON array) of objects, each {}, found {}",
                        shape.what,
                        describe(value)
                    ),
                );
                return;
            };
            for (i, item) in items.iter().enumerate() {
                check_object(item, shape, &index_path(path, i), out);
            }
        }
        OptionalObject(shape) => {
            if !value.is_null() {
                check_object(value, shape, path, out);
            }
        }
        Steps => super::steps::check_steps(value, path, out),
    }
}

fn check_transitions(value: &Value, path: &str, out: &mut Problems) {
    let Some(items) = value.as_array() else {
        out.add(
            path,
            format!(
                "expected a list of transitions such as [\"start\", \"stop\"], found {}",
                describe(value)
            ),
        );
        return;
    };
    for (i, item) in items.iter().enumerate() {
        if !item.as_str().is_some_and(|t| TRANSITIONS.contains(&t)) {
            out.add(
                &index_path(path, i),
                format!(
                    "unknown transition {}; a transition is one of start, stop, delete",
                    describe(item)
                ),
            );
        }
    }
}
