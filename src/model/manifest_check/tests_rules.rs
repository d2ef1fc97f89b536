//! `Manifest::parse`: the rules on parameters and resources.

use crate::model::manifest::Manifest;
use serde_json::{Value, json};

/// A manifest with these parameters.
fn with_parameters(parameters: Value) -> String {
    json!({ "parameters": parameters }).to_string()
}

/// A manifest with one parameter.
fn with_parameter(parameter: Value) -> String {
    with_parameters(json!([parameter]))
}

/// A manifest with one resource holding this agent.
fn with_agent(agent: Value) -> String {
    json!({"resources": [{"name": "r", "type": "t", "agents": [agent]}]}).to_string()
}

fn assert_ok(json: &str) {
    if let Err(e) = Manifest::parse(json) {
        panic!("{json} was refused: {e}");
    }
}

fn assert_error(json: &str, expected: &str) {
    match Manifest::parse(json) {
        Ok(_) => panic!("{json} was accepted; expected {expected}"),
        Err(error) => assert!(
            error.contains(expected),
            "error for {json}\n  was:      {error}\n  expected: {expected}"
        ),
    }
}

#[test]
fn a_full_parameter_is_accepted() {
    assert_ok(&with_parameters(json!([
        {"name": "region", "display_name": "Region", "type": "string", "default_value": "eu",
         "mutable": true, "options": [{"name": "Europe", "value": "eu"}, {"name": "US", "value": "us"}]},
        {"name": "cpus", "type": "number", "default_value": "2", "validation_min": 1,
         "validation_max": 8, "validation_monotonic": "increasing", "mutable": true},
        {"name": "debug", "type": "bool", "default_value": "false"},
        {"name": "groups", "type": "list(string)", "default_value": "[\"a\",\"b\"]"},
        {"name": "token", "required": true, "ephemeral": true, "mutable": true},
        {"name": "user_name", "validation_regex": "^[a-z]+$", "validation_error": "lower case",
         "default_value": "bob"},
    ])));
}

#[test]
fn parameter_names_are_checked() {
    assert_error(
        &with_parameter(json!({"name": ""})),
        "parameters[0].name: the parameter's name is empty",
    );
    assert_error(
        &with_parameter(json!({"name": "my param"})),
        "parameters[0].name: parameter name \"my param\" may only hold letters (a-z, A-Z), \
         digits, \"_\" and \"-\"",
    );
    assert_error(
        &with_parameters(json!([{"name": "a"}, {"name": "b"}, {"name": "a"}])),
        "parameters[2].name: parameter \"a\" is declared twice (first at parameters[0])",
    );
    assert_error(
        &with_parameters(json!([{"name": "disk-size"}, {"name": "DISK_SIZE"}])),
        "parameters[1].name: parameters \"disk-size\" and \"DISK_SIZE\" would both reach \
         commands as KILN_PARAM_DISK_SIZE; rename one",
    );
}

#[test]
fn parameter_types_are_known() {
    assert_error(
        &with_parameter(json!({"name": "a", "type": "int"})),
        "parameters[0].type: unknown type \"int\"; a type is one of string, number, bool, \
         list(string)",
    );
}

#[test]
fn defaults_must_fit_the_type() {
    assert_error(
        &with_parameter(json!({"name": "b", "type": "bool", "default_value": "yes"})),
        "parameters[0].default_value: default value \"yes\" of bool parameter \"b\" must be true \
         or false",
    );
    assert_error(
        &with_parameter(json!({"name": "n", "type": "number", "default_value": "two"})),
        "parameters[0].default_value: default value \"two\" of number parameter \"n\" is not a \
         whole number",
    );
    assert_error(
        &with_parameter(json!({"name": "n", "type": "number", "default_value": "2.5"})),
        "is not a whole number",
    );
    for bad in ["a,b", "[1,2]", "\"a\""] {
        assert_error(
            &with_parameter(json!({"name": "l", "type": "list(string)", "default_value": bad})),
            "of list(string) parameter \"l\" must be a JSON array of strings written as a string",
        );
    }
    assert_ok(&with_parameter(
        json!({"name": "l", "type": "list(string)", "default_value": "[]"}),
    ));
    assert_ok(&with_parameter(
        json!({"name": "n", "type": "number", "default_value": "-4"}),
    ));
    assert_ok(&with_parameter(json!({"name": "b", "type": "bool"})));
}

#[test]
fn options_are_checked() {
    assert_error(
        &with_parameter(
            json!({"name": "b", "type": "bool", "options": [{"name": "y", "value": "true"}]}),
        ),
        "parameters[0].options: bool parameter \"b\" cannot have options",
    );
    assert_error(
        &with_parameter(json!({"name": "p", "options": [{"name": "", "value": "x"}]})),
        "parameters[0].options[0].name: the option's name is empty",
    );
    assert_error(
        &with_parameter(json!({"name": "p", "options": [
            {"name": "A", "value": "a"}, {"name": "A", "value": "b"}]})),
        "parameters[0].options[1].name: option name \"A\" is used twice (first at \
         parameters[0].options[0])",
    );
    assert_error(
        &with_parameter(json!({"name": "p", "options": [
            {"name": "A", "value": "a"}, {"name": "B", "value": "a"}]})),
        "parameters[0].options[1].value: option value \"a\" is used twice (first at \
         parameters[0].options[0])",
    );
    assert_error(
        &with_parameter(
            json!({"name": "n", "type": "number", "options": [{"name": "A", "value": "x"}]}),
        ),
        "parameters[0].options[0].value: option value \"x\" of number parameter \"n\" is not a \
         whole number",
    );
}

#[test]
fn a_default_must_be_one_of_the_options() {
    let options = json!([{"name": "A", "value": "a"}, {"name": "B", "value": "b"}]);
    assert_error(
        &with_parameter(json!({"name": "p", "default_value": "x", "options": options})),
        "parameters[0].default_value: default value \"x\" of parameter \"p\" must be one of the \
         options: [a, b]",
    );
    assert_ok(&with_parameter(
        json!({"name": "p", "default_value": "b", "options": options}),
    ));
    assert_ok(&with_parameter(json!({"name": "p", "options": options})));
    assert_error(
        &with_parameter(
            json!({"name": "l", "type": "list(string)", "default_value": "[\"a\",\"c\"]",
            "options": options}),
        ),
        "default value \"c\" of parameter \"l\" must be one of the options: [a, b]",
    );
    assert_ok(&with_parameter(json!({"name": "l", "type": "list(string)",
        "default_value": "[\"b\",\"a\"]", "options": options})));
}

#[test]
fn validation_regex_is_checked() {
    assert_error(
        &with_parameter(json!({"name": "p", "validation_regex": "([a-z", "validation_error": "e"})),
        "parameters[0].validation_regex: the validation_regex \"([a-z\" of parameter \"p\" does \
         not compile: unclosed character class",
    );
    assert_error(
        &with_parameter(
            json!({"name": "n", "type": "number", "validation_regex": "^1$",
            "validation_error": "e"}),
        ),
        "parameters[0].validation_regex: only string parameters can have a validation_regex; \
         \"n\" is number",
    );
    assert_error(
        &with_parameter(json!({"name": "p", "validation_regex": "^a"})),
        "parameters[0].validation_error: parameter \"p\" has a validation_regex, so it needs a \
         validation_error",
    );
    assert_error(
        &with_parameter(
            json!({"name": "p", "validation_regex": "^a", "validation_error": "e",
            "default_value": "b"}),
        ),
        "parameters[0].default_value: default value \"b\" of parameter \"p\" does not match its \
         validation_regex \"^a\"",
    );
}

#[test]
fn min_and_max_are_for_numbers_and_ordered() {
    assert_error(
        &with_parameter(json!({"name": "s", "validation_min": 1})),
        "parameters[0].validation_min: only number parameters can have a validation_min; \"s\" \
         is string",
    );
    assert_error(
        &with_parameter(json!({"name": "s", "type": "bool", "validation_max": 1})),
        "parameters[0].validation_max: only number parameters can have a validation_max",
    );
    assert_error(
        &with_parameter(
            json!({"name": "n", "type": "number", "validation_min": 5, "validation_max": 2}),
        ),
        "parameters[0]: validation_min 5 of parameter \"n\" is greater than its validation_max 2",
    );
    assert_error(
        &with_parameter(json!({"name": "n", "type": "number", "default_value": "0",
            "validation_min": 1})),
        "parameters[0].default_value: default value 0 of parameter \"n\" is less than the \
         minimum 1",
    );
    assert_error(
        &with_parameter(json!({"name": "n", "type": "number", "default_value": "9",
            "validation_max": 8})),
        "parameters[0].default_value: default value 9 of parameter \"n\" is more than the \
         maximum 8",
    );
    assert_ok(&with_parameter(
        json!({"name": "n", "type": "number", "validation_min": 3,
        "validation_max": 3, "default_value": "3"}),
    ));
}

#[test]
fn monotonic_is_increasing_or_decreasing_and_for_numbers() {
    assert_error(
        &with_parameter(json!({"name": "n", "type": "number", "validation_monotonic": "up"})),
        "parameters[0].validation_monotonic: unknown value \"up\"; validation_monotonic is \
         \"increasing\", \"decreasing\" or empty",
    );
    assert_error(
        &with_parameter(json!({"name": "s", "validation_monotonic": "increasing"})),
        "parameters[0].validation_monotonic: only number parameters can have a \
         validation_monotonic",
    );
    assert_ok(&with_parameter(json!({"name": "n", "type": "number",
        "validation_monotonic": "decreasing"})));
}

#[test]
fn ephemeral_requires_mutable() {
    assert_error(
        &with_parameter(json!({"name": "e", "ephemeral": true})),
        "parameters[0]: parameter \"e\" is ephemeral, so it must also be mutable",
    );
}

#[test]
fn required_means_no_default() {
    assert_error(
        &with_parameter(json!({"name": "r", "required": true, "default_value": "x"})),
        "parameters[0]: parameter \"r\" is required, so it cannot have a default_value",
    );
}

#[test]
fn resources_are_checked() {
    let doc = |resources: Value| json!({ "resources": resources }).to_string();
    assert_ok(&doc(
        json!([{"name": "a", "type": "t", "transitions": ["start", "stop"],
        "daily_cost": 3, "metadata": [{"key": "k", "value": "v", "sensitive": true}]}]),
    ));
    assert_error(
        &doc(json!([{"name": "", "type": "t"}])),
        "resources[0].name: the resource's name is empty",
    );
    assert_error(
        &doc(json!([{"name": "a", "type": "t"}, {"name": "a", "type": "t"}])),
        "resources[1].name: resource \"a\" is declared twice (first at resources[0])",
    );
    assert_error(
        &doc(json!([{"name": "a", "type": " "}])),
        "resources[0].type: the resource's type is empty",
    );
    assert_error(
        &doc(json!([{"name": "a", "type": "t", "transitions": []}])),
        "resources[0].transitions: the list is empty; name the transitions after which the \
         resource exists",
    );
    assert_error(
        &doc(json!([{"name": "a", "type": "t", "transitions": ["stop", "stop"]}])),
        "resources[0].transitions[1]: transition \"stop\" is listed twice",
    );
    assert_error(
        &doc(json!([{"name": "a", "type": "t", "daily_cost": -1}])),
        "resources[0].daily_cost: daily_cost -1 is negative",
    );
    assert_error(
        &doc(json!([{"name": "a", "type": "t", "metadata": [{"key": ""}]}])),
        "resources[0].metadata[0].key: the metadata key is empty",
    );
    assert_error(
        &doc(json!([{"name": "a", "type": "t", "metadata": [{"key": "k"}, {"key": "k"}]}])),
        "resources[0].metadata[1].key: metadata key \"k\" is used twice (first at \
         resources[0].metadata[0])",
    );
}

#[test]
fn a_resource_without_transitions_exists_after_start() {
    let manifest =
        Manifest::parse(&json!({"resources": [{"name": "a", "type": "t"}]}).to_string()).unwrap();
    assert_eq!(
        manifest.resources[0].transitions,
        vec![crate::model::Transition::Start]
    );
}

#[test]
fn agents_are_checked() {
    assert_error(
        &with_agent(json!({"name": ""})),
        "resources[0].agents[0].name: the agent's name is empty",
    );
    assert_error(
        &json!({"resources": [{"name": "r", "type": "t", "agents": [{"name": "main"}]},
            {"name": "s", "type": "t", "agents": [{"name": "main"}]}]})
        .to_string(),
        "resources[1].agents[0].name: agent \"main\" is declared twice (first at \
         resources[0].agents[0])",
    );
    assert_error(
        &with_agent(json!({"name": "a", "connection_timeout_seconds": -1})),
        "resources[0].agents[0].connection_timeout_seconds: connection_timeout_seconds -1 is \
         negative",
    );
}

#[test]
fn apps_are_checked() {
    let app = |fields: Value| with_agent(json!({"name": "a", "apps": [fields]}));
    assert_ok(&app(
        json!({"slug": "code-server", "url": "http://localhost:8080",
        "sharing_level": "public", "open_in": "tab",
        "healthcheck": {"url": "http://localhost:8080/healthz", "interval": 5, "threshold": 3}}),
    ));
    for bad in ["", "Web", "web-", "-web", "we--b", "web_app"] {
        assert_error(
            &app(json!({"slug": bad})),
            &format!("resources[0].agents[0].apps[0].slug: app slug \"{bad}\" must be lower-case"),
        );
    }
    assert_error(
        &with_agent(json!({"name": "a", "apps": [{"slug": "web"}, {"slug": "web"}]})),
        "resources[0].agents[0].apps[1].slug: app slug \"web\" is used twice in agent \"a\" \
         (first at resources[0].agents[0].apps[0])",
    );
    assert_error(
        &app(json!({"slug": "web", "sharing_level": "everyone"})),
        "resources[0].agents[0].apps[0].sharing_level: unknown sharing_level \"everyone\"; it is \
         one of owner, authenticated, organization, public",
    );
    assert_error(
        &app(json!({"slug": "web", "open_in": "window"})),
        "resources[0].agents[0].apps[0].open_in: unknown open_in \"window\"; it is one of \
         slim-window, tab",
    );
    assert_error(
        &app(json!({"slug": "web", "healthcheck": {"url": "", "interval": -1}})),
        "resources[0].agents[0].apps[0].healthcheck.url: the healthcheck url is empty",
    );
    assert_error(
        &app(json!({"slug": "web", "healthcheck": {"url": "u", "threshold": -1}})),
        "resources[0].agents[0].apps[0].healthcheck.threshold: threshold -1 is negative",
    );
}

#[test]
fn slugs_may_repeat_in_different_agents() {
    assert_ok(
        &json!({"resources": [{"name": "r", "type": "t", "agents": [
        {"name": "a", "apps": [{"slug": "web"}]}, {"name": "b", "apps": [{"slug": "web"}]}]}]})
        .to_string(),
    );
}

#[test]
fn scripts_are_checked() {
    let script = |fields: Value| with_agent(json!({"name": "a", "scripts": [fields]}));
    assert_ok(&script(
        json!({"display_name": "Setup", "script": "echo hi", "run_on_start": true,
        "timeout": 30}),
    ));
    assert_error(
        &script(json!({"display_name": "", "script": "x"})),
        "resources[0].agents[0].scripts[0].display_name: the script's display_name is empty",
    );
    assert_error(
        &script(json!({"display_name": "s", "script": " "})),
        "resources[0].agents[0].scripts[0].script: the script is empty",
    );
    assert_error(
        &script(json!({"display_name": "s", "script": "x", "timeout": -5})),
        "resources[0].agents[0].scripts[0].timeout: timeout -5 is negative",
    );
}
