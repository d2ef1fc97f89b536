//! The steps of `kiln.json` in the shape pass: each step is exactly one of `{"log": text,
//! "level"?}`, `{"sleep_ms": n}`, `{"fail": message}` or `{"run": command, "timeout_s"?}`, and
//! `steps` has only `start`, `stop` and `delete`. (The `Step` enum is untagged, so serde alone
//! would accept `{"log": "a", "run": "b"}` as a log step and ignore misspelt fields.)

use super::problems::{Problems, closest, field_path, index_path};
use super::values::{TRANSITIONS, check_text, compact, describe};
use serde_json::Value;

const LOG_LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];
const STEP_KINDS: [&str; 4] = ["log", "sleep_ms", "fail", "run"];
const STEP_FORMS: &str =
    r#"a step is one of {"log": ...}, {"sleep_ms": ...}, {"fail": ...}, {"run": ...}"#;

pub(super) fn check_steps(value: &Value, path: &str, out: &mut Problems) {
    let Some(map) = value.as_object() else {
        out.add(
            path,
            format!(
                "expected an object such as {{\"start\": [...], \"stop\": [...], \"delete\": \
                 [...]}}, found {}",
                describe(value)
            ),
        );
        return;
    };
    for (key, list) in map {
        let list_path = field_path(path, key);
        if !TRANSITIONS.contains(&key.as_str()) {
            let hint = closest(key, TRANSITIONS)
                .map(|k| format!(" (did you mean \"{k}\"?)"))
                .unwrap_or_default();
            out.add(
                path,
                format!(
                    "unknown transition \"{key}\"{hint}; steps has only start, stop and delete"
                ),
            );
            continue;
        }
        let Some(steps) = list.as_array() else {
            out.add(
                &list_path,
                format!(
                    "expected a list (a JSON array) of steps, found {}",
                    describe(list)
                ),
            );
            continue;
        };
        for (i, step) in steps.iter().enumerate() {
            check_step(step, &index_path(&list_path, i), out);
        }
    }
}

fn check_step(step: &Value, path: &str, out: &mut Problems) {
    let Some(map) = step.as_object() else {
        out.add(
            path,
            format!("unknown step {}; {STEP_FORMS}", compact(step)),
        );
        return;
    };
    let kinds: Vec<&str> = STEP_KINDS
        .into_iter()
        .filter(|k| map.contains_key(*k))
        .collect();
    let kind = match kinds.as_slice() {
        [kind] => *kind,
        [] => {
            let hint = map
                .keys()
                .find_map(|k| closest(k, STEP_KINDS))
                .map(|k| format!(" (did you mean \"{k}\"?)"))
                .unwrap_or_default();
            out.add(
                path,
                format!("unknown step {}{hint}; {STEP_FORMS}", compact(step)),
            );
            return;
        }
        several => {
            out.add(
                path,
                format!(
                    "a step does one thing, but {} names {}; {STEP_FORMS}",
                    compact(step),
                    several.join(" and ")
                ),
            );
            return;
        }
    };
    let extra: &[&str] = match kind {
        "log" => &["level"],
        "run" => &["timeout_s"],
        _ => &[],
    };
    for key in map
        .keys()
        .filter(|k| *k != kind && !extra.contains(&k.as_str()))
    {
        let fields: Vec<&str> = std::iter::once(kind).chain(extra.iter().copied()).collect();
        let hint = closest(key, extra.iter().copied())
            .map(|k| format!(" (did you mean \"{k}\"?)"))
            .unwrap_or_default();
        out.add(
            path,
            format!(
                "unknown field \"{key}\"{hint} in a {kind} step; a {kind} step has: {}",
                fields.join(", ")
            ),
        );
    }
    let main = &map[kind];
    let main_path = field_path(path, kind);
    match kind {
        "log" => {
            check_text(main, &main_path, out);
            if let Some(level) = map.get("level")
                && !level.as_str().is_some_and(|l| LOG_LEVELS.contains(&l))
            {
                out.add(
                    &field_path(path, "level"),
                    format!(
                        "unknown log level {}; a level is one of debug, info, warn, error",
                        describe(level)
                    ),
                );
            }
        }
        "sleep_ms" => {
            if main.as_u64().is_none() {
                out.add(
                    &main_path,
                    format!(
                        "expected a whole number of milliseconds (0 or more), found {}",
                        describe(main)
                    ),
                );
            }
        }
        "fail" => match main.as_str() {
            None => check_text(main, &main_path, out),
            Some(message) if message.trim().is_empty() => out.add(
                &main_path,
                "the failure message is empty; write why the build fails",
            ),
            Some(_) => {}
        },
        _ => {
            match main.as_str() {
                None => check_text(main, &main_path, out),
                Some(command) if command.trim().is_empty() => {
                    out.add(&main_path, "the command is empty")
                }
                Some(_) => {}
            }
            if let Some(timeout) = map.get("timeout_s")
                && !timeout.is_null()
                && timeout.as_u64().is_none_or(|t| t == 0)
            {
                out.add(
                    &field_path(path, "timeout_s"),
                    format!(
                        "expected a positive whole number of seconds, found {}",
                        describe(timeout)
                    ),
                );
            }
        }
    }
}
