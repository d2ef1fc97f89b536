//! A template version's dry run (`POST /templateversions/{id}/dry-run`, which Coder's CLI
//! makes before `create`, `start` and `restart`): the parameters checked as a workspace's
//! first build would check them, and the resources a start would leave planned, with no step
//! run. Like an import, a pure function of what the server stores (`check`), so the server
//! makes it itself when a daemon reports one.

use super::checked_log::CheckedLog;
use super::logwriter::LogWriter;
use super::plan::plan_resources;
use super::queue::{DryRunWork, JobQueue};
use crate::model::{Transition, WorkspaceResource, parameters};
use crate::store::{JobRow, StoreResult};
use std::collections::HashMap;

/// What a dry run finds: the planned resources or why there are none, and its log.
pub struct Checked {
    pub outcome: Result<Vec<WorkspaceResource>, String>,
    pub log: CheckedLog,
}

pub fn check(job_id: &str, work: &DryRunWork) -> Checked {
    let mut log = CheckedLog::default();
    log.stage("Setting up");
    let outcome = plan(job_id, work, &mut log);
    if outcome.is_ok() {
        log.stage("Cleaning Up");
    }
    Checked { outcome, log }
}

fn plan(
    job_id: &str,
    work: &DryRunWork,
    log: &mut CheckedLog,
) -> Result<Vec<WorkspaceResource>, String> {
    let manifest = work.manifest.as_ref().map_err(Clone::clone)?;
    log.stage("Planning infrastructure");
    log.info(format!(
        "Checking {} parameter value(s) against the template's {} parameter(s), for a workspace \
         {:?} of {}",
        work.parameters.len(),
        manifest.parameters.len(),
        work.workspace_name,
        work.owner_name
    ));
    for sent in &work.parameters {
        if !manifest.parameters.iter().any(|p| p.name == sent.name) {
            log.warn(format!(
                "The template has no parameter {:?}: its value is ignored.",
                sent.name
            ));
        }
    }
    let values = parameters::resolve(&manifest.parameters, &work.parameters, None)
        .map_err(|e| format!("Unable to validate parameter {:?}: {}", e.name, e.detail))?;
    for (name, _) in &values {
        let given = work.parameters.iter().any(|p| p.name == *name);
        let origin = if given { "given" } else { "its default" };
        log.info(format!("Parameter {name:?}: {origin}, valid"));
    }
    let mut vars: HashMap<String, String> = values
        .into_iter()
        .map(|(k, v)| (format!("param.{k}"), v))
        .collect();
    vars.insert("workspace.name".into(), work.workspace_name.clone());
    vars.insert("owner.name".into(), work.owner_name.clone());
    vars.insert("build.number".into(), "1".into());
    let resources = plan_resources(manifest, job_id, Transition::Start, &vars);
    let names: Vec<String> = resources
        .iter()
        .map(|r| format!("{} ({})", r.name, r.kind))
        .collect();
    log.info(format!(
        "A start would leave {} resource(s){}{}; no step was run",
        resources.len(),
        if names.is_empty() { "" } else { ": " },
        names.join(", ")
    ));
    Ok(resources)
}

pub fn run(
    queue: &dyn JobQueue,
    job: &JobRow,
    worker_id: &str,
    work: &DryRunWork,
    mut log: LogWriter,
) -> StoreResult<()> {
    let checked = check(&job.id, work);
    checked.log.write(&mut log)?;
    match &checked.outcome {
        Ok(resources) => queue.complete_dry_run(&job.id, worker_id, resources, &log.take()),
        Err(error) => queue.fail(&job.id, worker_id, error, &log.take()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WorkspaceBuildParameter;

    fn work(manifest: serde_json::Value, sent: &[(&str, &str)]) -> DryRunWork {
        DryRunWork {
            manifest: Ok(serde_json::from_value(manifest).unwrap()),
            parameters: sent
                .iter()
                .map(|(n, v)| WorkspaceBuildParameter {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            workspace_name: "dev".into(),
            owner_name: "alice".into(),
        }
    }

    fn manifest() -> serde_json::Value {
        serde_json::json!({
            "parameters": [{"name": "region", "default_value": "eu",
                "options": [{"name": "EU", "value": "eu"}, {"name": "US", "value": "us"}]}],
            "resources": [{"name": "vm", "type": "kiln_instance",
                "metadata": [{"key": "where", "value": "{{param.region}} for {{owner.name}}"}]},
                {"name": "disk", "type": "kiln_volume", "transitions": ["start", "stop"]}],
            "steps": {"start": [{"run": "exit 1"}]}
        })
    }

    #[test]
    fn a_dry_run_plans_what_a_start_would_leave_with_the_values_given() {
        let c = check("job", &work(manifest(), &[("region", "us"), ("cpu", "64")]));
        let resources = c.outcome.unwrap();
        let names: Vec<_> = resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["vm", "disk"]);
        assert_eq!(resources[0].metadata[0].value, "us for alice");
        assert!(resources.iter().all(|r| r.job_id == "job"));
        let lines: Vec<_> = c.log.batch(0, false).lines;
        let text: Vec<_> = lines.iter().map(|l| l.output.as_str()).collect();
        assert!(
            text.contains(&"The template has no parameter \"cpu\": its value is ignored."),
            "{text:?}"
        );
        assert!(
            text.contains(&"Parameter \"region\": given, valid"),
            "{text:?}"
        );
        assert_eq!(lines.last().unwrap().stage, "Cleaning Up");
    }

    #[test]
    fn an_invalid_value_fails_the_dry_run_with_the_builds_words() {
        let c = check("job", &work(manifest(), &[("region", "mars")]));
        let error = c.outcome.unwrap_err();
        assert!(
            error.starts_with("Unable to validate parameter \"region\": "),
            "{error}"
        );
        let missing = DryRunWork {
            manifest: Err("the template version has no imported manifest".into()),
            ..work(manifest(), &[])
        };
        assert_eq!(
            check("job", &missing).outcome.unwrap_err(),
            "the template version has no imported manifest"
        );
    }
}
