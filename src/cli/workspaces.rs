//! `kiln create|list|show|start|stop|restart|delete|cancel`.

use super::follow::{self, Job};
use super::http::{CliError, CliResult, Client};
use super::shared::{NameArg, client, organization, parameters, split_name, workspace};
use super::table::{self, Output, s};
use super::term;
use clap::Args;
use serde_json::{Value, json};

#[derive(Args)]
pub struct CreateArgs {
    /// The new workspace: NAME (yours) or OWNER/NAME.
    pub name: String,
    /// The template to build it from.
    #[arg(short = 't', long)]
    pub template: String,
    /// A parameter's value, NAME=VALUE (repeatable).
    #[arg(long = "parameter", value_name = "NAME=VALUE")]
    pub parameters: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Args)]
pub struct ListArgs {
    /// Every workspace you may see, not only yours.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// A filter in Coder's search syntax (owner:, name:, template:, status:, outdated:).
    #[arg(long, default_value = "")]
    pub search: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Args)]
pub struct ShowArgs {
    /// The workspace: NAME (yours) or OWNER/NAME.
    pub name: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Args)]
pub struct BuildArgs {
    /// The workspace: NAME (yours) or OWNER/NAME.
    pub name: String,
    /// A parameter's value for this build, NAME=VALUE (repeatable).
    #[arg(long = "parameter", value_name = "NAME=VALUE")]
    pub parameters: Vec<String>,
    /// delete only: remove the workspace without running its delete steps.
    #[arg(long)]
    pub orphan: bool,
}

/// `owner/name` as the outcome line names a workspace.
fn full_name(w: &Value) -> String {
    format!("{}/{}", s(w, "/owner_name"), s(w, "/name"))
}

/// Follows a build to its end and prints its outcome line; 0 only when it succeeded.
pub fn follow_build(c: &Client, workspace: &str, build: &Value) -> CliResult<i32> {
    let id = s(build, "/id");
    let paint = term::Paint(term::colour());
    let ended = follow::follow(
        c,
        &Job {
            job: build["job"].clone(),
            logs: format!("/api/v2/workspacebuilds/{id}/logs"),
            resource: format!("/api/v2/workspacebuilds/{id}"),
            cancel: Some(format!("/api/v2/workspacebuilds/{id}/cancel")),
        },
        paint,
    )?;
    let b = &ended.resource;
    let what = format!(
        "Build {} of {workspace} ({})",
        s(b, "/build_number"),
        s(b, "/transition")
    );
    match ended.status.as_str() {
        "succeeded" => {
            println!("{}", paint.green(&format!("{what} succeeded.")));
            Ok(0)
        }
        "canceled" => {
            println!("{}", paint.yellow(&format!("{what} was canceled.")));
            Ok(1)
        }
        _ => {
            let error = s(b, "/job/error");
            println!("{}", paint.red(&format!("{what} failed: {error}")));
            Ok(1)
        }
    }
}

/// Asks on the terminal for each required parameter missing from `given`; refuses with the
/// list of missing ones otherwise.
fn fill_parameters(template: &str, wanted: &Value, given: &mut Vec<Value>) -> CliResult<()> {
    let missing: Vec<&Value> = wanted
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["required"] == true && !given.iter().any(|g| g["name"] == p["name"]))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !term::stdin_is_terminal() {
        let names: Vec<String> = missing.iter().map(|p| s(p, "/name")).collect();
        return Err(CliError::new(format!(
            "template {template} needs a value for: {}",
            names.join(", ")
        ))
        .with("pass each with --parameter NAME=VALUE"));
    }
    for p in missing {
        let name = s(p, "/name");
        let display = match s(p, "/display_name") {
            d if d.is_empty() => name.clone(),
            d => d,
        };
        let description = s(p, "/description");
        if !description.is_empty() {
            println!("{description}");
        }
        let options: Vec<String> = p["options"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| s(o, "/value"))
            .collect();
        let question = if options.is_empty() {
            format!("{display} ({name}): ")
        } else {
            format!("{display} ({name}; one of {}): ", options.join(", "))
        };
        let value = term::prompt(&question)?;
        given.push(json!({"name": name, "value": value}));
    }
    Ok(())
}

pub fn create(a: CreateArgs) -> CliResult<i32> {
    let c = client()?;
    let (owner, name) = split_name(&a.name)?;
    let org = organization(&c)?;
    let template = c.get(&format!(
        "/api/v2/organizations/{org}/templates/{}",
        a.template
    ))?;
    let wanted = c.get(&format!(
        "/api/v2/templateversions/{}/rich-parameters",
        s(&template, "/active_version_id")
    ))?;
    let mut values = parameters(&a.parameters)?;
    fill_parameters(&a.template, &wanted, &mut values)?;
    if !a.yes && term::stdin_is_terminal() {
        let answer = term::prompt(&format!(
            "Create workspace {name} from template {}? (yes/no) ",
            a.template
        ))?;
        if !matches!(answer.trim(), "y" | "yes") {
            println!("Nothing was created.");
            return Ok(1);
        }
    }
    let w = c.post(
        &format!("/api/v2/users/{owner}/workspaces"),
        &json!({
            "name": name,
            "template_id": template["id"],
            "rich_parameter_values": values,
        }),
    )?;
    println!("Workspace {} created; its first build:", full_name(&w));
    follow_build(&c, &full_name(&w), &w["latest_build"])
}

pub fn list(a: ListArgs) -> CliResult<i32> {
    let c = client()?;
    let mut q = a.search.trim().to_string();
    if !a.all {
        q = format!("owner:me {q}").trim().to_string();
    }
    let mut path = "/api/v2/workspaces".to_string();
    if !q.is_empty() {
        path = format!("{path}?q={}", encode(&q));
    }
    let page = c.get(&path)?;
    let workspaces = page["workspaces"].clone();
    if a.output == Output::Json {
        table::print_json(&workspaces);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = workspaces
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            vec![
                full_name(w),
                s(w, "/template_name"),
                s(w, "/latest_build/status"),
                format!(
                    "#{} {}",
                    s(w, "/latest_build/build_number"),
                    s(w, "/latest_build/transition")
                ),
                table::time(w, "/latest_build/created_at"),
                s(w, "/outdated"),
            ]
        })
        .collect();
    table::print(
        &[
            "WORKSPACE",
            "TEMPLATE",
            "STATUS",
            "LAST BUILD",
            "LAST BUILT",
            "OUTDATED",
        ],
        &rows,
    );
    Ok(0)
}

/// Percent-encodes a query value.
pub fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub fn show(a: ShowArgs) -> CliResult<i32> {
    let c = client()?;
    let w = workspace(&c, &a.name)?;
    if a.output == Output::Json {
        table::print_json(&w);
        return Ok(0);
    }
    let b = &w["latest_build"];
    let mut rows = vec![
        vec!["Workspace".into(), full_name(&w)],
        vec!["ID".into(), s(&w, "/id")],
        vec![
            "Template".into(),
            format!(
                "{} (version {})",
                s(&w, "/template_name"),
                s(b, "/template_version_name")
            ),
        ],
        vec!["Status".into(), s(b, "/status")],
        vec![
            "Last build".into(),
            format!(
                "#{} {} ({}) at {}",
                s(b, "/build_number"),
                s(b, "/transition"),
                s(b, "/job/status"),
                table::time(b, "/created_at")
            ),
        ],
        vec!["Outdated".into(), s(&w, "/outdated")],
        vec!["Created".into(), table::time(&w, "/created_at")],
    ];
    for r in b["resources"].as_array().into_iter().flatten() {
        rows.push(vec![
            "Resource".into(),
            format!("{} ({})", s(r, "/name"), s(r, "/type")),
        ]);
    }
    table::print(&["FIELD", "VALUE"], &rows);
    Ok(0)
}

pub fn build(a: BuildArgs, transition: &str) -> CliResult<i32> {
    if a.orphan && transition != "delete" {
        return Err(CliError::new("--orphan goes with kiln delete only"));
    }
    let c = client()?;
    let w = workspace(&c, &a.name)?;
    let mut body = json!({
        "transition": transition,
        "rich_parameter_values": parameters(&a.parameters)?,
    });
    if a.orphan {
        body["orphan"] = true.into();
    }
    let b = c.post(
        &format!("/api/v2/workspaces/{}/builds", s(&w, "/id")),
        &body,
    )?;
    follow_build(&c, &full_name(&w), &b)
}

/// A stop whose success queues the start (kiln's `on_success`), then that start.
pub fn restart(a: BuildArgs) -> CliResult<i32> {
    if a.orphan {
        return Err(CliError::new("--orphan goes with kiln delete only"));
    }
    let c = client()?;
    let w = workspace(&c, &a.name)?;
    let id = s(&w, "/id");
    let stop = c.post(
        &format!("/api/v2/workspaces/{id}/builds"),
        &json!({
            "transition": "stop",
            "on_success": {"transition": "start", "rich_parameter_values": parameters(&a.parameters)?},
        }),
    )?;
    let name = full_name(&w);
    if follow_build(&c, &name, &stop)? != 0 {
        return Ok(1);
    }
    let start = c.get(&format!("/api/v2/workspaces/{id}"))?["latest_build"].clone();
    if start["build_number"].as_i64() != stop["build_number"].as_i64().map(|n| n + 1) {
        return Err(CliError::new(
            "the stop succeeded but no start followed it (another build came first)",
        ));
    }
    follow_build(&c, &name, &start)
}

pub fn cancel(a: NameArg) -> CliResult<i32> {
    let c = client()?;
    let w = workspace(&c, &a.name)?;
    let b = &w["latest_build"];
    c.call(
        "PATCH",
        &format!("/api/v2/workspacebuilds/{}/cancel", s(b, "/id")),
        Some(&json!({})),
    )?;
    println!(
        "Canceled build {} of {} ({}).",
        s(b, "/build_number"),
        full_name(&w),
        s(b, "/transition")
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            super::encode("owner:me status:running"),
            "owner%3Ame%20status%3Arunning"
        );
    }
}
