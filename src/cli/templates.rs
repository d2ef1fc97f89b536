//! `kiln templates push|list|versions`.

use super::follow::{self, Job};
use super::http::{CliError, CliResult, Client};
use super::shared::{client, organization};
use super::table::{self, Output, s};
use super::term;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum TemplatesCommand {
    /// Upload a template folder as a new version, follow its import, and make it the
    /// template's active version (creating the template the first time).
    #[command(after_help = "Example:\n  kiln templates push hello -d examples/hello")]
    Push(PushArgs),
    /// List the templates.
    #[command(after_help = "Example:\n  kiln templates list -o json")]
    List(ListArgs),
    /// List a template's versions, newest first.
    #[command(after_help = "Example:\n  kiln templates versions hello")]
    Versions(VersionsArgs),
}

#[derive(Args)]
pub struct PushArgs {
    /// The template's name.
    pub name: String,
    /// The folder to upload (its kiln.json at the root).
    #[arg(short = 'd', long = "directory", default_value = ".")]
    pub directory: PathBuf,
    /// The new version's name (a random one otherwise).
    #[arg(long)]
    pub version_name: Option<String>,
    /// A message kept with the version.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
}

#[derive(Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Args)]
pub struct VersionsArgs {
    /// The template's name.
    pub name: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

pub fn run(cmd: TemplatesCommand) -> CliResult<i32> {
    let c = client()?;
    match cmd {
        TemplatesCommand::Push(a) => push(&c, a),
        TemplatesCommand::List(a) => list(&c, a),
        TemplatesCommand::Versions(a) => versions(&c, a),
    }
}

/// A tar archive of `dir`'s contents (paths relative to it).
fn pack(dir: &Path) -> CliResult<Vec<u8>> {
    if !dir.join("kiln.json").is_file() {
        return Err(CliError::new(format!(
            "{} holds no kiln.json: a template folder has its manifest at the root",
            dir.display()
        )));
    }
    fn add(b: &mut tar::Builder<Vec<u8>>, root: &Path, dir: &Path) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap();
            if path.is_dir() {
                b.append_dir(rel, &path)?;
                add(b, root, &path)?;
            } else if path.is_file() {
                b.append_path_with_name(&path, rel)?;
            }
        }
        Ok(())
    }
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, dir, dir)
        .and_then(|_| b.finish())
        .map_err(|e| CliError::new(format!("cannot pack {}: {e}", dir.display())))?;
    Ok(b.into_inner()?)
}

fn push(c: &Client, a: PushArgs) -> CliResult<i32> {
    let archive = pack(&a.directory)?;
    let org = organization(c)?;
    let existing = c.get_opt(&format!("/api/v2/organizations/{org}/templates/{}", a.name))?;
    let a_upload = c.raw(
        "POST",
        "/api/v2/files",
        Some(("application/x-tar", archive)),
    )?;
    let file = c.check(a_upload)?.json()?;
    let mut body = json!({
        "storage_method": "file",
        "file_id": file["hash"],
        "provisioner": "echo",
    });
    if let Some(t) = &existing {
        body["template_id"] = t["id"].clone();
    }
    if let Some(n) = &a.version_name {
        body["name"] = n.clone().into();
    }
    if let Some(m) = &a.message {
        body["message"] = m.clone().into();
    }
    let version = c.post(
        &format!("/api/v2/organizations/{org}/templateversions"),
        &body,
    )?;
    let id = s(&version, "/id");
    let name = s(&version, "/name");
    let paint = term::Paint(term::colour());
    println!("Importing version {name} of template {}.", a.name);
    let ended = follow::follow(
        c,
        &Job {
            job: version["job"].clone(),
            logs: format!("/api/v2/templateversions/{id}/logs"),
            resource: format!("/api/v2/templateversions/{id}"),
            cancel: Some(format!("/api/v2/templateversions/{id}/cancel")),
        },
        paint,
    )?;
    if ended.status != "succeeded" {
        let mut line = format!("The import of version {name} {}", ended.status);
        let error = s(&ended.resource, "/job/error");
        if !error.is_empty() {
            line = format!("{line}: {error}");
        }
        println!("{}", paint.red(&line));
        return Ok(1);
    }
    match existing {
        Some(t) => {
            c.call(
                "PATCH",
                &format!("/api/v2/templates/{}/versions", s(&t, "/id")),
                Some(&json!({"id": id})),
            )?;
            println!(
                "{}",
                paint.green(&format!("Template {} now uses version {name}.", a.name))
            );
        }
        None => {
            c.post(
                &format!("/api/v2/organizations/{org}/templates"),
                &json!({"name": a.name, "template_version_id": id}),
            )?;
            println!(
                "{}",
                paint.green(&format!("Template {} created with version {name}.", a.name))
            );
        }
    }
    Ok(0)
}

fn list(c: &Client, a: ListArgs) -> CliResult<i32> {
    let org = organization(c)?;
    let templates = c.get(&format!("/api/v2/organizations/{org}/templates"))?;
    if a.output == Output::Json {
        table::print_json(&templates);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = templates
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            vec![
                s(t, "/name"),
                s(t, "/organization_name"),
                s(t, "/active_version_id"),
                s(t, "/active_user_count"),
                table::time(t, "/created_at"),
            ]
        })
        .collect();
    table::print(
        &[
            "NAME",
            "ORGANIZATION",
            "ACTIVE VERSION ID",
            "USED BY",
            "CREATED AT",
        ],
        &rows,
    );
    Ok(0)
}

fn versions(c: &Client, a: VersionsArgs) -> CliResult<i32> {
    let org = organization(c)?;
    let t: Value = c.get(&format!("/api/v2/organizations/{org}/templates/{}", a.name))?;
    let versions = c.get(&format!("/api/v2/templates/{}/versions", s(&t, "/id")))?;
    if a.output == Output::Json {
        table::print_json(&versions);
        return Ok(0);
    }
    let active = s(&t, "/active_version_id");
    let mut rows: Vec<Vec<String>> = versions
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            vec![
                s(v, "/name"),
                table::time(v, "/created_at"),
                s(v, "/created_by/username"),
                s(v, "/job/status"),
                if s(v, "/id") == active { "Active" } else { "" }.to_string(),
            ]
        })
        .collect();
    // The API lists oldest first; newest first reads better.
    rows.reverse();
    table::print(
        &["NAME", "CREATED AT", "CREATED BY", "STATUS", "ACTIVE"],
        &rows,
    );
    Ok(0)
}
