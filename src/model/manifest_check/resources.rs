//! The rules on resources, their metadata, agents, apps and scripts, after the shape pass.
//! Resource and agent names are unique in the whole template; app slugs are unique per agent and
//! follow Coder's slug rule `^[a-z0-9](-?[a-z0-9])*$`.

use super::problems::{Problems, field_path, index_path};
use crate::model::manifest::{Agent, App, Resource};
use regex::Regex;
use std::collections::HashMap;
use std::sync::LazyLock;

static APP_SLUG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[a-z0-9](-?[a-z0-9])*$").expect("app slug regex"));

pub(super) const SHARING_LEVELS: [&str; 4] = ["owner", "authenticated", "organization", "public"];
pub(super) const OPEN_IN: [&str; 2] = ["slim-window", "tab"];

pub(super) fn check_resources(resources: &[Resource], out: &mut Problems) {
    let mut first_resource: HashMap<&str, usize> = HashMap::new();
    let mut first_agent: HashMap<&str, String> = HashMap::new();
    for (i, resource) in resources.iter().enumerate() {
        let path = index_path("resources", i);
        let name = resource.name.as_str();
        if name.is_empty() {
            out.add(&field_path(&path, "name"), "the resource's name is empty");
        } else if let Some(first) = first_resource.get(name) {
            out.add(
                &field_path(&path, "name"),
                format!("resource \"{name}\" is declared twice (first at resources[{first}])"),
            );
        } else {
            first_resource.insert(name, i);
        }
        check_resource(resource, &path, out);
        for (j, agent) in resource.agents.iter().enumerate() {
            let agent_path = index_path(&field_path(&path, "agents"), j);
            let agent_name = agent.name.as_str();
            if agent_name.is_empty() {
                out.add(
                    &field_path(&agent_path, "name"),
                    "the agent's name is empty",
                );
            } else if let Some(first) = first_agent.get(agent_name) {
                out.add(
                    &field_path(&agent_path, "name"),
                    format!(
                        "agent \"{agent_name}\" is declared twice (first at {first}); agent \
                         names are unique in a template"
                    ),
                );
            } else {
                first_agent.insert(agent_name, agent_path.clone());
            }
            check_agent(agent, &agent_path, out);
        }
    }
}

fn check_resource(resource: &Resource, path: &str, out: &mut Problems) {
    if resource.kind.trim().is_empty() {
        out.add(
            &field_path(path, "type"),
            "the resource's type is empty; any word will do, e.g. \"kiln_instance\"",
        );
    }
    let transitions_path = field_path(path, "transitions");
    if resource.transitions.is_empty() {
        out.add(
            &transitions_path,
            "the list is empty; name the transitions after which the resource exists, e.g. \
             [\"start\"]",
        );
    }
    for (i, transition) in resource.transitions.iter().enumerate() {
        if resource.transitions[..i].contains(transition) {
            out.add(
                &index_path(&transitions_path, i),
                format!("transition \"{}\" is listed twice", transition.as_str()),
            );
        }
    }
    if resource.daily_cost < 0 {
        out.add(
            &field_path(path, "daily_cost"),
            format!("daily_cost {} is negative", resource.daily_cost),
        );
    }
    let mut first_key: HashMap<&str, usize> = HashMap::new();
    for (i, item) in resource.metadata.iter().enumerate() {
        let key_path = field_path(&index_path(&field_path(path, "metadata"), i), "key");
        if item.key.is_empty() {
            out.add(&key_path, "the metadata key is empty");
        } else if let Some(first) = first_key.get(item.key.as_str()) {
            out.add(
                &key_path,
                format!(
                    "metadata key \"{}\" is used twice (first at {path}.metadata[{first}])",
                    item.key
                ),
            );
        } else {
            first_key.insert(&item.key, i);
        }
    }
}

fn check_agent(agent: &Agent, path: &str, out: &mut Problems) {
    if agent.connection_timeout_seconds < 0 {
        out.add(
            &field_path(path, "connection_timeout_seconds"),
            format!(
                "connection_timeout_seconds {} is negative",
                agent.connection_timeout_seconds
            ),
        );
    }
    let mut first_slug: HashMap<&str, usize> = HashMap::new();
    for (i, app) in agent.apps.iter().enumerate() {
        let app_path = index_path(&field_path(path, "apps"), i);
        if let Some(first) = first_slug.get(app.slug.as_str()) {
            out.add(
                &field_path(&app_path, "slug"),
                format!(
                    "app slug \"{}\" is used twice in agent \"{}\" (first at {path}.apps[{first}])",
                    app.slug, agent.name
                ),
            );
        } else {
            first_slug.insert(&app.slug, i);
        }
        check_app(app, &app_path, out);
    }
    for (i, script) in agent.scripts.iter().enumerate() {
        let script_path = index_path(&field_path(path, "scripts"), i);
        if script.display_name.trim().is_empty() {
            out.add(
                &field_path(&script_path, "display_name"),
                "the script's display_name is empty",
            );
        }
        if script.script.trim().is_empty() {
            out.add(&field_path(&script_path, "script"), "the script is empty");
        }
        if script.timeout < 0 {
            out.add(
                &field_path(&script_path, "timeout"),
                format!("timeout {} is negative", script.timeout),
            );
        }
    }
}

fn check_app(app: &App, path: &str, out: &mut Problems) {
    if !APP_SLUG.is_match(&app.slug) {
        out.add(
            &field_path(path, "slug"),
            format!(
                "app slug \"{}\" must be lower-case letters and digits, optionally parted by \
                 single \"-\" (Coder's rule ^[a-z0-9](-?[a-z0-9])*$)",
                app.slug
            ),
        );
    }
    if !SHARING_LEVELS.contains(&app.sharing_level.as_str()) {
        out.add(
            &field_path(path, "sharing_level"),
            format!(
                "unknown sharing_level \"{}\"; it is one of {}",
                app.sharing_level,
                SHARING_LEVELS.join(", ")
            ),
        );
    }
    if !OPEN_IN.contains(&app.open_in.as_str()) {
        out.add(
            &field_path(path, "open_in"),
            format!(
                "unknown open_in \"{}\"; it is one of {}",
                app.open_in,
                OPEN_IN.join(", ")
            ),
        );
    }
    if let Some(check) = &app.healthcheck {
        let check_path = field_path(path, "healthcheck");
        if check.url.trim().is_empty() {
            out.add(
                &field_path(&check_path, "url"),
                "the healthcheck url is empty",
            );
        }
        for (field, value) in [("interval", check.interval), ("threshold", check.threshold)] {
            if value < 0 {
                out.add(
                    &field_path(&check_path, field),
                    format!("{field} {value} is negative"),
                );
            }
        }
    }
}
