//! Templates and template versions (each version with its import job).

use super::error::StoreResult;
use super::jobs::JobRow;
use crate::model::manifest::Manifest;
use crate::model::{JobStatus, Time};

#[derive(Clone, Debug)]
pub struct TemplateRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub icon: String,
    pub active_version_id: String,
    pub default_ttl_ms: i64,
    pub allow_user_cancel_workspace_jobs: bool,
    pub created_by: String,
    pub created_by_name: String,
    pub created_at: Time,
    pub updated_at: Time,
}

/// A template version with its import job.
#[derive(Clone, Debug)]
pub struct TemplateVersionRow {
    pub id: String,
    pub template_id: Option<String>,
    pub organization_id: String,
    pub name: String,
    pub message: String,
    pub readme: String,
    pub file_id: String,
    /// The validated kiln.json, as JSON text, once the import succeeded.
    pub manifest: Option<String>,
    pub created_by: String,
    pub created_by_name: String,
    pub created_at: Time,
    pub updated_at: Time,
    /// `echo` or `terraform`, as the client chose it.
    pub provisioner: String,
    /// Hidden from its template's versions list, and not built from.
    pub archived: bool,
    pub job: JobRow,
}

impl TemplateVersionRow {
    /// The manifest of a version whose import succeeded.
    pub fn imported_manifest(&self) -> Option<Manifest> {
        if self.job.status() != JobStatus::Succeeded {
            return None;
        }
        serde_json::from_str(self.manifest.as_deref()?).ok()
    }
}

pub struct NewTemplateVersion<'a> {
    pub id: &'a str,
    pub job_id: &'a str,
    pub template_id: Option<&'a str>,
    pub organization_id: &'a str,
    pub name: &'a str,
    pub message: &'a str,
    pub file_id: &'a str,
    pub created_by: &'a str,
    /// `echo` or `terraform`, as the client sent it.
    pub provisioner: &'a str,
    /// The import job's tags (normalized): the version's builds get them too.
    pub tags: crate::domain::provisioner_tags::Tags,
}

pub struct NewTemplate<'a> {
    pub id: &'a str,
    pub organization_id: &'a str,
    pub name: &'a str,
    pub display_name: &'a str,
    pub description: &'a str,
    pub icon: &'a str,
    pub version_id: &'a str,
    pub default_ttl_ms: i64,
    pub allow_user_cancel_workspace_jobs: bool,
    pub created_by: &'a str,
}

pub trait TemplateStore {
    /// Creates a version and its pending import job, in one transaction, and wakes a worker.
    fn create_template_version(&self, v: &NewTemplateVersion) -> StoreResult<()>;

    fn template_version(&self, id: &str) -> StoreResult<Option<TemplateVersionRow>>;

    /// The id of `template_id`'s version named `name`.
    fn template_version_by_name(
        &self,
        template_id: &str,
        name: &str,
    ) -> StoreResult<Option<String>>;

    /// Versions of a template, oldest first.
    fn template_versions(&self, template_id: &str) -> StoreResult<Vec<TemplateVersionRow>>;

    /// Creates a template whose active version is `version_id`, and attaches the version to
    /// it. `Conflict` when the organization has a template of that name.
    fn create_template(&self, t: &NewTemplate) -> StoreResult<()>;

    /// A template that is not deleted.
    fn template(&self, id: &str) -> StoreResult<Option<TemplateRow>>;

    fn template_by_name(
        &self,
        organization_id: &str,
        name: &str,
    ) -> StoreResult<Option<TemplateRow>>;

    /// An organization's templates, by name.
    fn templates(&self, organization_id: &str) -> StoreResult<Vec<TemplateRow>>;

    fn set_active_version(&self, template_id: &str, version_id: &str) -> StoreResult<()>;

    /// Sets what `PATCH /templates/{id}` may change. `Conflict` when another template of the
    /// organization has the name.
    fn update_template_meta(&self, id: &str, meta: &TemplateMeta) -> StoreResult<()>;

    /// Marks a template deleted (its versions stay, for the builds that used them).
    fn delete_template(&self, id: &str) -> StoreResult<()>;

    /// Sets a version's name and message. `Conflict` when another version of its template
    /// has the name.
    fn update_template_version(&self, id: &str, name: &str, message: &str) -> StoreResult<()>;

    /// Archives or unarchives a version.
    fn set_version_archived(&self, id: &str, archived: bool) -> StoreResult<()>;

    /// Whether the latest build of a live workspace (other than a delete) uses the version.
    fn version_in_use(&self, version_id: &str) -> StoreResult<bool>;
}

/// What `PATCH /templates/{id}` sets.
#[derive(Clone, Debug)]
pub struct TemplateMeta {
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub icon: String,
    pub default_ttl_ms: i64,
    pub allow_user_cancel_workspace_jobs: bool,
}
