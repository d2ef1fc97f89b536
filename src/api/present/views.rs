//! Stored rows to Coder's JSON shapes: jobs, versions, templates (builds and workspaces:
//! `render`).

use crate::api::error::ApiResult;
use crate::app::caches::queue_ranks::QueueOrder;
use crate::app::state::AppState;
use crate::model::{self, JobStatus, MatchedProvisioners, SlimRole};
use crate::store::{BuildRow, DaemonRow, JobRow, TemplateRow, TemplateVersionRow, UserRow};
use serde_json::{Value, json};

/// A job in Coder's shape, ranked by `order` when given (one read of the queue for a list),
/// else on its own.
pub fn job_json(
    state: &AppState,
    job: &JobRow,
    metadata: model::ProvisionerJobMetadata,
    order: Option<&QueueOrder>,
) -> ApiResult<model::ProvisionerJob> {
    let (queue_position, queue_size) = match order {
        Some(order) => order.rank(job),
        None => state.queue_ranks.rank(&*state.store, job)?,
    };
    Ok(model::ProvisionerJob {
        id: job.id.clone(),
        created_at: job.created_at,
        started_at: job.started_at,
        completed_at: job.completed_at,
        canceled_at: job.canceled_at,
        error: job.error.clone(),
        error_code: job.error_code.clone(),
        file_id: job.file_id.clone(),
        worker_id: job.worker_id.clone(),
        status: job.status(),
        tags: json!(if job.tags.is_empty() {
            crate::domain::provisioner_tags::untagged()
        } else {
            job.tags.clone()
        }),
        queue_position,
        queue_size,
        organization_id: job.organization_id.clone(),
        initiator_id: job.initiator_id.clone(),
        input: job_input(job),
        kind: job.kind.clone(),
        metadata,
        logs_overflowed: job.logs_overflowed,
    })
}

/// `codersdk.ProvisionerJobInput`: the ids the job is about, nothing else of what it stores
/// (a dry run keeps its workspace name and parameters there too).
fn job_input(job: &JobRow) -> Value {
    let input = job.input_json();
    let ids: serde_json::Map<String, Value> = ["template_version_id", "workspace_build_id"]
        .into_iter()
        .filter_map(|k| input.get(k).map(|v| (k.to_string(), v.clone())))
        .collect();
    Value::Object(ids)
}

/// The daemons (built-in workers included) whose tags match a pending job's: how many, how
/// many are idle, and when the last of them was seen; zeros and null otherwise (spec section
/// 3).
pub fn matched_provisioners(state: &AppState, job: &JobRow) -> MatchedProvisioners {
    if job.status() != JobStatus::Pending {
        return matched_among(&[], job);
    }
    let daemons = crate::app::daemons::live_daemons(state, &job.organization_id);
    matched_among(&daemons, job)
}

/// `matched_provisioners` among `daemons`, the live daemons of the job's organization.
pub fn matched_among(daemons: &[DaemonRow], job: &JobRow) -> MatchedProvisioners {
    if job.status() != JobStatus::Pending {
        return MatchedProvisioners {
            count: 0,
            available: 0,
            most_recently_seen: None,
        };
    }
    matching_daemons(daemons, job)
}

/// The daemons among `daemons` whose tags match the job's, whatever its status (a dry run's
/// `matched-provisioners` counts them so).
pub fn matching_daemons(daemons: &[DaemonRow], job: &JobRow) -> MatchedProvisioners {
    let matched: Vec<_> = daemons
        .iter()
        .filter(|d| crate::domain::provisioner_tags::matches(&d.tags, &job.tags))
        .collect();
    MatchedProvisioners {
        count: matched.len() as i64,
        available: matched.iter().filter(|d| d.current_job.is_none()).count() as i64,
        most_recently_seen: matched.iter().map(|d| d.last_seen_at).max(),
    }
}

/// What a build's job is about.
pub fn build_metadata(b: &BuildRow) -> model::ProvisionerJobMetadata {
    model::ProvisionerJobMetadata {
        template_version_name: b.template_version_name.clone(),
        template_id: b.template_id.clone(),
        template_name: b.template_name.clone(),
        template_display_name: b.template_display_name.clone(),
        template_icon: b.template_icon.clone(),
        workspace_id: Some(b.workspace_id.clone()),
        workspace_name: Some(b.workspace_name.clone()),
    }
}

/// What an import job is about.
pub fn version_metadata(
    state: &AppState,
    v: &TemplateVersionRow,
) -> ApiResult<model::ProvisionerJobMetadata> {
    let template = match &v.template_id {
        Some(id) => state.store.template(id)?,
        None => None,
    };
    Ok(model::ProvisionerJobMetadata {
        template_version_name: v.name.clone(),
        // A version not yet attached to a template: Go's zero UUID, as Coder sends (codersdk
        // decodes `template_id` into a uuid.UUID, which refuses "").
        template_id: v
            .template_id
            .clone()
            .unwrap_or_else(|| crate::model::NIL_UUID.to_string()),
        template_name: template
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default(),
        template_display_name: template
            .as_ref()
            .map(|t| t.display_name.clone())
            .unwrap_or_default(),
        template_icon: template
            .as_ref()
            .map(|t| t.icon.clone())
            .unwrap_or_default(),
        workspace_id: None,
        workspace_name: None,
    })
}

pub fn version_json(state: &AppState, v: &TemplateVersionRow) -> ApiResult<model::TemplateVersion> {
    let metadata = version_metadata(state, v)?;
    Ok(model::TemplateVersion {
        id: v.id.clone(),
        template_id: v.template_id.clone(),
        organization_id: v.organization_id.clone(),
        created_at: v.created_at,
        updated_at: v.updated_at,
        name: v.name.clone(),
        message: v.message.clone(),
        job: job_json(state, &v.job, metadata, None)?,
        readme: v.readme.clone(),
        created_by: model::MinimalUser {
            id: v.created_by.clone(),
            username: v.created_by_name.clone(),
            name: String::new(),
            avatar_url: String::new(),
        },
        archived: v.archived,
        warnings: vec![],
        matched_provisioners: matched_provisioners(state, &v.job),
        has_external_agent: false,
    })
}

pub fn template_json(state: &AppState, t: &TemplateRow) -> ApiResult<model::Template> {
    let org = state.store.organization(&t.organization_id)?;
    Ok(model::Template {
        id: t.id.clone(),
        created_at: t.created_at,
        updated_at: t.updated_at,
        organization_id: t.organization_id.clone(),
        organization_name: org.as_ref().map(|o| o.name.clone()).unwrap_or_default(),
        organization_display_name: org
            .as_ref()
            .map(|o| o.display_name.clone())
            .unwrap_or_default(),
        organization_icon: org.as_ref().map(|o| o.icon.clone()).unwrap_or_default(),
        name: t.name.clone(),
        display_name: t.display_name.clone(),
        provisioner: state
            .store
            .template_version(&t.active_version_id)?
            .map(|v| v.provisioner)
            .unwrap_or_else(|| "echo".into()),
        active_version_id: t.active_version_id.clone(),
        active_user_count: 0,
        build_time_stats: json!({
            "start": {"P50": null, "P95": null},
            "stop": {"P50": null, "P95": null},
            "delete": {"P50": null, "P95": null}
        }),
        description: t.description.clone(),
        deprecated: false,
        deprecation_message: String::new(),
        icon: t.icon.clone(),
        default_ttl_ms: t.default_ttl_ms,
        activity_bump_ms: 3_600_000,
        autostop_requirement: json!({"days_of_week": [], "weeks": 1}),
        autostart_requirement: json!({"days_of_week": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]}),
        created_by_id: t.created_by.clone(),
        created_by_name: t.created_by_name.clone(),
        allow_user_autostart: true,
        allow_user_autostop: true,
        allow_user_cancel_workspace_jobs: t.allow_user_cancel_workspace_jobs,
        failure_ttl_ms: 0,
        time_til_dormant_ms: 0,
        time_til_dormant_autodelete_ms: 0,
        require_active_version: false,
        max_port_share_level: "public".into(),
        cors_behavior: "simple".into(),
        use_classic_parameter_flow: false,
    })
}

pub fn user_json(state: &AppState, u: &UserRow) -> ApiResult<model::User> {
    Ok(model::User {
        id: u.id.clone(),
        username: u.username.clone(),
        name: u.name.clone(),
        email: u.email.clone(),
        created_at: u.created_at,
        updated_at: u.updated_at,
        last_seen_at: u.last_seen_at,
        status: u.status.clone(),
        login_type: u.login_type.clone(),
        theme_preference: String::new(),
        organization_ids: state.store.user_organization_ids(&u.id)?,
        roles: u.roles.iter().map(|r| SlimRole::from(*r)).collect(),
        avatar_url: u.avatar_url.clone(),
    })
}
