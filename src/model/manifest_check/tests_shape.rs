//! `Manifest::parse`: JSON syntax, unknown fields, JSON types and steps.

use super::problems::param_env_var;
use crate::model::manifest::{Manifest, Step};

fn error_of(json: &str) -> String {
    match Manifest::parse(json) {
        Ok(m) => panic!("expected an error for {json}, got {m:?}"),
        Err(e) => e,
    }
}

fn assert_error(json: &str, expected: &str) {
    let error = error_of(json);
    assert!(
        error.contains(expected),
        "error for {json}\n  was:      {error}\n  expected: {expected}"
    );
}

#[test]
fn an_empty_object_is_a_manifest_with_defaults() {
    let manifest = Manifest::parse("{}").unwrap();
    assert_eq!(manifest, Manifest::default());
}

#[test]
fn a_leading_byte_order_mark_is_ignored() {
    assert!(Manifest::parse("\u{feff}{}").is_ok());
}

#[test]
fn bad_json_is_reported_with_line_and_column() {
    let error = error_of("{\n  \"parameters\": [\n    {\"name\": \"a\"}\n    \"x\"\n");
    assert!(
        error.starts_with("kiln.json is not valid JSON: "),
        "{error}"
    );
    assert!(error.contains("at line 4 column 5"), "{error}");
}

#[test]
fn empty_text_says_it_is_empty() {
    assert_error("  \n", "kiln.json is empty");
}

#[test]
fn the_top_must_be_an_object() {
    assert_error("[]", "kiln.json: must hold a JSON object");
    assert_error("null", "found null");
}

#[test]
fn unknown_fields_are_named_with_their_path_and_the_known_fields() {
    let json = r#"{"parameters": [{"name": "a"}, {"name": "b", "defualt_value": "x"}]}"#;
    assert_error(
        json,
        "parameters[1]: unknown field \"defualt_value\" (did you mean \"default_value\"?); the \
         fields of a parameter are: name, display_name, description, type, default_value",
    );
    assert_error(
        r#"{"paramters": []}"#,
        "kiln.json: unknown field \"paramters\" (did you mean \"parameters\"?); the fields of a \
         manifest are: parameters, resources, steps",
    );
    assert_error(
        r#"{"resources": [{"name": "r", "type": "t", "agents": [{"name": "a",
            "apps": [{"slug": "web", "healthcheck": {"url": "u", "intervl": 1}}]}]}]}"#,
        "resources[0].agents[0].apps[0].healthcheck: unknown field \"intervl\" (did you mean \
         \"interval\"?)",
    );
    assert_error(
        r#"{"parameters": [{"name": "a", "options": [{"name": "x", "value": "y", "colour": 1}]}]}"#,
        "parameters[0].options[0]: unknown field \"colour\"; the fields of an option are: name, \
         value, description, icon",
    );
}

#[test]
fn every_unknown_field_is_reported_one_per_line() {
    let error = error_of(r#"{"parameters": [{"name": "a", "x": 1, "y": 2}], "z": 3}"#);
    assert_eq!(error.lines().count(), 3, "{error}");
}

#[test]
fn wrong_json_types_are_reported_with_their_path() {
    assert_error(
        r#"{"parameters": [{"name": "a", "mutable": "yes"}]}"#,
        "parameters[0].mutable: expected true or false, found \"yes\"",
    );
    assert_error(
        r#"{"parameters": [{"name": 5}]}"#,
        "parameters[0].name: expected text (a JSON string), found 5",
    );
    assert_error(
        r#"{"parameters": [{"name": "a", "validation_min": "1"}]}"#,
        "parameters[0].validation_min: expected a whole number or null, found \"1\"",
    );
    assert_error(
        r#"{"resources": [{"name": "r", "type": "t", "daily_cost": 1.5}]}"#,
        "resources[0].daily_cost: expected a whole number, found 1.5",
    );
    assert_error(
        r#"{"resources": {"name": "r"}}"#,
        "resources: expected a list (a JSON array) of objects, each a resource, found an object",
    );
    assert_error(
        r#"{"parameters": ["a"]}"#,
        "parameters[0]: expected a parameter (a JSON object), found \"a\"",
    );
}

#[test]
fn null_is_accepted_only_where_the_field_is_optional() {
    let json = r#"{"parameters": [{"name": "n", "type": "number", "validation_min": null}],
        "resources": [{"name": "r", "type": "t", "agents": [{"name": "a",
            "apps": [{"slug": "web", "healthcheck": null}]}]}]}"#;
    assert!(Manifest::parse(json).is_ok());
    assert_error(
        r#"{"parameters": [{"name": "a", "description": null}]}"#,
        "parameters[0].description: expected text (a JSON string), found null",
    );
}

#[test]
fn required_fields_must_be_present() {
    assert_error(
        r#"{"parameters": [{}]}"#,
        "parameters[0]: a parameter needs a \"name\" field",
    );
    assert_error(
        r#"{"resources": [{"name": "r"}]}"#,
        "resources[0]: a resource needs a \"type\" field",
    );
    assert_error(
        r#"{"parameters": [{"name": "a", "options": [{"name": "x"}]}]}"#,
        "parameters[0].options[0]: an option needs a \"value\" field",
    );
}

#[test]
fn transitions_are_named_readably() {
    assert_error(
        r#"{"resources": [{"name": "r", "type": "t", "transitions": ["start", "strat"]}]}"#,
        "resources[0].transitions[1]: unknown transition \"strat\"; a transition is one of \
         start, stop, delete",
    );
    assert_error(
        r#"{"resources": [{"name": "r", "type": "t", "transitions": "start"}]}"#,
        "resources[0].transitions: expected a list of transitions such as [\"start\", \"stop\"]",
    );
}

#[test]
fn every_step_form_parses() {
    let json = r#"{"steps": {
        "start": [{"log": "hi"}, {"log": "careful", "level": "warn"}, {"sleep_ms": 0},
                  {"run": "echo hi"}, {"run": "make", "timeout_s": 60}, {"run": "x", "timeout_s": null}],
        "stop": [{"fail": "no"}],
        "delete": []}}"#;
    let manifest = Manifest::parse(json).unwrap();
    assert_eq!(
        manifest.steps.start,
        vec![
            Step::Log {
                log: "hi".into(),
                level: "info".into()
            },
            Step::Log {
                log: "careful".into(),
                level: "warn".into()
            },
            Step::Sleep { sleep_ms: 0 },
            Step::Run {
                run: "echo hi".into(),
                timeout_s: None
            },
            Step::Run {
                run: "make".into(),
                timeout_s: Some(60)
            },
            Step::Run {
                run: "x".into(),
                timeout_s: None
            },
        ]
    );
    assert_eq!(manifest.steps.stop, vec![Step::Fail { fail: "no".into() }]);
}

#[test]
fn an_unknown_step_is_shown_with_the_forms_a_step_takes() {
    assert_error(
        r#"{"steps": {"start": [{"log": "a"}, {"log": "b"}, {"sleeep_ms": 5}]}}"#,
        "steps.start[2]: unknown step {\"sleeep_ms\":5} (did you mean \"sleep_ms\"?); a step is \
         one of {\"log\": ...}, {\"sleep_ms\": ...}, {\"fail\": ...}, {\"run\": ...}",
    );
    assert_error(
        r#"{"steps": {"stop": ["echo hi"]}}"#,
        "steps.stop[0]: unknown step \"echo hi\"; a step is one of",
    );
    assert_error(
        r#"{"steps": {"stop": [{}]}}"#,
        "steps.stop[0]: unknown step {}; a step is",
    );
}

#[test]
fn a_step_does_exactly_one_thing() {
    assert_error(
        r#"{"steps": {"start": [{"log": "a", "run": "b"}]}}"#,
        "steps.start[0]: a step does one thing, but {\"log\":\"a\",\"run\":\"b\"} names log and \
         run",
    );
}

#[test]
fn a_step_has_only_its_own_fields() {
    assert_error(
        r#"{"steps": {"start": [{"log": "a", "levle": "warn"}]}}"#,
        "steps.start[0]: unknown field \"levle\" (did you mean \"level\"?) in a log step; a log \
         step has: log, level",
    );
    assert_error(
        r#"{"steps": {"start": [{"sleep_ms": 5, "level": "warn"}]}}"#,
        "steps.start[0]: unknown field \"level\" in a sleep_ms step; a sleep_ms step has: sleep_ms",
    );
    assert_error(
        r#"{"steps": {"delete": [{"run": "x", "timeout": 5}]}}"#,
        "steps.delete[0]: unknown field \"timeout\" (did you mean \"timeout_s\"?) in a run step",
    );
}

#[test]
fn step_values_are_checked() {
    assert_error(
        r#"{"steps": {"start": [{"log": "a", "level": "warning"}]}}"#,
        "steps.start[0].level: unknown log level \"warning\"; a level is one of debug, info, \
         warn, error",
    );
    assert_error(
        r#"{"steps": {"start": [{"log": 5}]}}"#,
        "steps.start[0].log: expected text (a JSON string), found 5",
    );
    for bad in ["-1", "1.5", "\"10\""] {
        assert_error(
            &format!(r#"{{"steps": {{"start": [{{"sleep_ms": {bad}}}]}}}}"#),
            &format!(
                "steps.start[0].sleep_ms: expected a whole number of milliseconds (0 or more), found {bad}"
            ),
        );
    }
    assert_error(
        r#"{"steps": {"start": [{"fail": " "}]}}"#,
        "steps.start[0].fail: the failure message is empty",
    );
    assert_error(
        r#"{"steps": {"start": [{"run": ""}]}}"#,
        "steps.start[0].run: the command is empty",
    );
    for bad in ["0", "-3", "2.5", "\"60\""] {
        assert_error(
            &format!(r#"{{"steps": {{"start": [{{"run": "x", "timeout_s": {bad}}}]}}}}"#),
            &format!(
                "steps.start[0].timeout_s: expected a positive whole number of seconds, found {bad}"
            ),
        );
    }
}

#[test]
fn steps_has_only_start_stop_and_delete() {
    assert_error(
        r#"{"steps": {"strat": []}}"#,
        "steps: unknown transition \"strat\" (did you mean \"start\"?); steps has only start, \
         stop and delete",
    );
    assert_error(
        r#"{"steps": {"start": {"log": "a"}}}"#,
        "steps.start: expected a list (a JSON array) of steps, found an object",
    );
    assert_error(r#"{"steps": []}"#, "steps: expected an object such as");
}

#[test]
fn long_steps_are_shortened_in_messages() {
    let long = "x".repeat(200);
    let error = error_of(&format!(
        r#"{{"steps": {{"start": [{{"nope": "{long}"}}]}}}}"#
    ));
    assert!(error.contains("...;"), "{error}");
    assert!(error.len() < 250, "{error}");
}

#[test]
fn many_problems_are_capped() {
    let fields: Vec<String> = (0..30).map(|i| format!("\"f{i}\": 1")).collect();
    let error = error_of(&format!("{{{}}}", fields.join(",")));
    assert_eq!(error.lines().count(), 21, "{error}");
    assert!(error.ends_with("... and 10 more problems"), "{error}");
}

#[test]
fn parameter_env_vars_are_upper_case_with_underscores() {
    assert_eq!(param_env_var("disk-size"), "KILN_PARAM_DISK_SIZE");
    assert_eq!(param_env_var("Region_2"), "KILN_PARAM_REGION_2");
}

#[test]
fn the_example_manifests_parse() {
    for (name, text) in [
        ("hello", include_str!("../../../examples/hello/kiln.json")),
        ("shell", include_str!("../../../examples/shell/kiln.json")),
    ] {
        if let Err(e) = Manifest::parse(text) {
            panic!("examples/{name}/kiln.json: {e}");
        }
    }
}
