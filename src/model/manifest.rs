//! The `kiln.json` manifest at the root of a template archive: parameters, resources and the
//! steps each transition runs. `Manifest::parse` (in `manifest_check`) validates it;
//! docs/templates.md documents it.

use super::status::Transition;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(default)]
    pub steps: Steps,
}

/// A rich parameter, with Coder's fields.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Parameter {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    /// `string` | `number` | `bool` | `list(string)`
    #[serde(default = "default_param_type", rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub default_value: String,
    #[serde(default)]
    pub mutable: bool,
    #[serde(default)]
    pub ephemeral: bool,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub icon: String,
    #[serde(default)]
    pub options: Vec<ParameterOption>,
    #[serde(default)]
    pub validation_regex: String,
    #[serde(default)]
    pub validation_error: String,
    #[serde(default)]
    pub validation_min: Option<i64>,
    #[serde(default)]
    pub validation_max: Option<i64>,
    /// `increasing` | `decreasing` | empty
    #[serde(default)]
    pub validation_monotonic: String,
}

impl Parameter {
    /// Coder's form type for a parameter that names none: `checkbox` for a bool, `multi-select`
    /// or `tag-select` for a list (with or without options), `radio` with options, `input`.
    pub fn form_type(&self) -> &'static str {
        match (self.kind.as_str(), self.options.is_empty()) {
            ("bool", _) => "checkbox",
            ("list(string)", false) => "multi-select",
            ("list(string)", true) => "tag-select",
            (_, false) => "radio",
            _ => "input",
        }
    }
}

fn default_param_type() -> String {
    "string".into()
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ParameterOption {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub icon: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Resource {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The transitions after which the resource exists.
    #[serde(default = "default_transitions")]
    pub transitions: Vec<Transition>,
    #[serde(default)]
    pub hide: bool,
    #[serde(default)]
    pub icon: String,
    #[serde(default)]
    pub daily_cost: i32,
    #[serde(default)]
    pub metadata: Vec<Metadata>,
    #[serde(default)]
    pub agents: Vec<Agent>,
}

fn default_transitions() -> Vec<Transition> {
    vec![Transition::Start]
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Metadata {
    pub key: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub sensitive: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Agent {
    pub name: String,
    #[serde(default = "default_os")]
    pub operating_system: String,
    #[serde(default = "default_arch")]
    pub architecture: String,
    #[serde(default)]
    pub directory: String,
    #[serde(default = "default_connection_timeout")]
    pub connection_timeout_seconds: i32,
    #[serde(default)]
    pub troubleshooting_url: String,
    #[serde(default)]
    pub apps: Vec<App>,
    #[serde(default)]
    pub scripts: Vec<Script>,
}

fn default_os() -> String {
    "linux".into()
}
fn default_arch() -> String {
    "amd64".into()
}
fn default_connection_timeout() -> i32 {
    120
}

/// A workspace app, with Coder's fields.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct App {
    pub slug: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub icon: String,
    #[serde(default)]
    pub subdomain: bool,
    /// `owner` | `authenticated` | `organization` | `public`
    #[serde(default = "default_sharing_level")]
    pub sharing_level: String,
    #[serde(default)]
    pub external: bool,
    #[serde(default)]
    pub hidden: bool,
    /// `slim-window` | `tab`
    #[serde(default = "default_open_in")]
    pub open_in: String,
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub tooltip: String,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
}

fn default_sharing_level() -> String {
    "owner".into()
}
fn default_open_in() -> String {
    "slim-window".into()
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Healthcheck {
    pub url: String,
    #[serde(default)]
    pub interval: i32,
    #[serde(default)]
    pub threshold: i32,
}

/// An agent script, with Coder's fields.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Script {
    pub display_name: String,
    pub script: String,
    #[serde(default)]
    pub icon: String,
    #[serde(default)]
    pub cron: String,
    #[serde(default)]
    pub run_on_start: bool,
    #[serde(default)]
    pub run_on_stop: bool,
    #[serde(default)]
    pub start_blocks_login: bool,
    /// Seconds.
    #[serde(default)]
    pub timeout: i32,
    #[serde(default)]
    pub log_path: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Steps {
    #[serde(default)]
    pub start: Vec<Step>,
    #[serde(default)]
    pub stop: Vec<Step>,
    #[serde(default)]
    pub delete: Vec<Step>,
}

impl Steps {
    pub fn for_transition(&self, t: Transition) -> &[Step] {
        match t {
            Transition::Start => &self.start,
            Transition::Stop => &self.stop,
            Transition::Delete => &self.delete,
        }
    }
}

/// One step of a transition.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Step {
    /// Write a log line (`level`: debug | info | warn | error; default info).
    Log {
        log: String,
        #[serde(default = "default_level")]
        level: String,
    },
    /// Wait.
    Sleep { sleep_ms: u64 },
    /// Fail the job with this message.
    Fail { fail: String },
    /// Run a shell command (`/bin/sh -c`); `timeout_s` defaults to 3600.
    Run {
        run: String,
        #[serde(default)]
        timeout_s: Option<u64>,
    },
}

fn default_level() -> String {
    "info".into()
}
