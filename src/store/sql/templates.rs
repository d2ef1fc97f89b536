//! Templates and template versions (each version with its import job).

use super::job_rows::{JOB_COLUMNS, NewJob, insert_job, job_from_row};
use super::{Db, Row, Stmt, params};
use crate::events::Topic;
use crate::model::Time;
use crate::store::{
    JOB_IMPORT, NewTemplate, NewTemplateVersion, StoreError, StoreResult, TemplateMeta,
    TemplateRow, TemplateStore, TemplateVersionRow,
};

const TEMPLATE_COLUMNS: &str = "t.id, t.organization_id, t.name, t.display_name, t.description, t.icon, \
    t.active_version_id, t.default_ttl_ms, t.allow_user_cancel_workspace_jobs, t.created_by, \
    u.username, t.created_at, t.updated_at";

const TEMPLATE_FROM: &str = "FROM templates t JOIN users u ON u.id = t.created_by";

fn template_from_row(r: &dyn Row) -> StoreResult<TemplateRow> {
    Ok(TemplateRow {
        id: r.get(0)?,
        organization_id: r.get(1)?,
        name: r.get(2)?,
        display_name: r.get(3)?,
        description: r.get(4)?,
        icon: r.get(5)?,
        active_version_id: r.get(6)?,
        default_ttl_ms: r.get(7)?,
        allow_user_cancel_workspace_jobs: r.get(8)?,
        created_by: r.get(9)?,
        created_by_name: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
    })
}

static TEMPLATE: Stmt = Stmt::new(|d| {
    format!(
        "SELECT {TEMPLATE_COLUMNS} {TEMPLATE_FROM} WHERE t.id = ?1 AND {}",
        (d.is_false)("t.deleted")
    )
});

static TEMPLATE_BY_NAME: Stmt = Stmt::new(|d| {
    format!(
        "SELECT {TEMPLATE_COLUMNS} {TEMPLATE_FROM} \
         WHERE t.organization_id = ?1 AND t.name = ?2 AND {}",
        (d.is_false)("t.deleted")
    )
});

static TEMPLATES: Stmt = Stmt::new(|d| {
    format!(
        "SELECT {TEMPLATE_COLUMNS} {TEMPLATE_FROM} \
         WHERE t.organization_id = ?1 AND {} ORDER BY {}",
        (d.is_false)("t.deleted"),
        (d.bytes_order)("t.name")
    )
});

const VERSION_COLUMNS: &str = "v.id, v.template_id, v.organization_id, v.name, v.message, v.readme, \
    v.file_id, v.manifest, v.created_by, u.username, v.created_at, v.updated_at, v.provisioner, \
    v.archived";

const VERSION_FROM: &str = "FROM template_versions v JOIN users u ON u.id = v.created_by \
    JOIN provisioner_jobs j ON j.id = v.job_id";

fn version_from_row(r: &dyn Row) -> StoreResult<TemplateVersionRow> {
    Ok(TemplateVersionRow {
        id: r.get(0)?,
        template_id: r.get(1)?,
        organization_id: r.get(2)?,
        name: r.get(3)?,
        message: r.get(4)?,
        readme: r.get(5)?,
        file_id: r.get(6)?,
        manifest: r.get(7)?,
        created_by: r.get(8)?,
        created_by_name: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
        provisioner: r.get(12)?,
        archived: r.get(13)?,
        job: job_from_row(r, 14)?,
    })
}

static VERSION: Stmt = Stmt::new(|_| {
    format!("SELECT {VERSION_COLUMNS}, {JOB_COLUMNS} {VERSION_FROM} WHERE v.id = ?1")
});

/// Versions oldest first; versions created in the same microsecond in insertion order.
static VERSIONS: Stmt = Stmt::new(|d| {
    format!(
        "SELECT {VERSION_COLUMNS}, {JOB_COLUMNS} {VERSION_FROM} \
         WHERE v.template_id = ?1 ORDER BY v.created_at, v.{}",
        d.version_order
    )
});

static VERSION_IN_USE: Stmt = Stmt::new(|d| {
    format!(
        "SELECT EXISTS (SELECT 1 FROM workspaces w JOIN workspace_builds b ON b.workspace_id = w.id \
         WHERE {} AND b.template_version_id = ?1 AND b.transition <> 'delete' \
         AND b.build_number = (SELECT max(build_number) FROM workspace_builds WHERE workspace_id = w.id))",
        (d.is_false)("w.deleted")
    )
});

/// Runs one statement that changes a row, in a transaction of its own; then `topics`.
fn update(db: &impl Db, sql: &str, params: &[super::Value], topics: &[Topic]) -> StoreResult<()> {
    db.write(|c| c.execute(sql, params).map(drop), |_| topics.to_vec())
}

impl<D: Db> TemplateStore for D {
    fn create_template_version(&self, v: &NewTemplateVersion) -> StoreResult<()> {
        self.write(
            |c| {
                let now = Time::now();
                insert_job(
                    c,
                    &NewJob {
                        id: v.job_id,
                        organization_id: v.organization_id,
                        initiator_id: v.created_by,
                        file_id: v.file_id,
                        kind: JOB_IMPORT,
                        input: serde_json::json!({ "template_version_id": v.id }),
                        log_level: "info",
                        tags_of_version: None,
                        tags: serde_json::to_string(&v.tags).unwrap_or_default(),
                    },
                    now,
                )?;
                c.execute(
                    "INSERT INTO template_versions (id, template_id, organization_id, name, message, \
                     job_id, file_id, created_by, created_at, updated_at, provisioner) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)",
                    params![
                        v.id,
                        v.template_id,
                        v.organization_id,
                        v.name,
                        v.message,
                        v.job_id,
                        v.file_id,
                        v.created_by,
                        now,
                        v.provisioner
                    ],
                )?;
                Ok(())
            },
            |_| vec![Topic::Queue, Topic::Overview],
        )
    }

    fn template_version(&self, id: &str) -> StoreResult<Option<TemplateVersionRow>> {
        self.read(|c| c.query_opt(&VERSION, params![id], version_from_row))
    }

    fn template_version_by_name(
        &self,
        template_id: &str,
        name: &str,
    ) -> StoreResult<Option<String>> {
        self.read(|c| {
            c.query_opt(
                "SELECT id FROM template_versions WHERE template_id = ?1 AND name = ?2",
                params![template_id, name],
                |r| r.get(0),
            )
        })
    }

    fn template_versions(&self, template_id: &str) -> StoreResult<Vec<TemplateVersionRow>> {
        self.read(|c| c.query(&VERSIONS, params![template_id], version_from_row))
    }

    fn create_template(&self, t: &NewTemplate) -> StoreResult<()> {
        self.write(
            |c| {
                let now = Time::now();
                c.execute(
                    "INSERT INTO templates (id, organization_id, name, display_name, description, \
                     icon, active_version_id, default_ttl_ms, allow_user_cancel_workspace_jobs, \
                     created_by, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                    params![
                        t.id,
                        t.organization_id,
                        t.name,
                        t.display_name,
                        t.description,
                        t.icon,
                        t.version_id,
                        t.default_ttl_ms,
                        t.allow_user_cancel_workspace_jobs,
                        t.created_by,
                        now
                    ],
                )?;
                c.execute(
                    "UPDATE template_versions SET template_id = ?2, updated_at = ?3 WHERE id = ?1",
                    params![t.version_id, t.id, now],
                )?;
                Ok(())
            },
            |_| vec![],
        )
    }

    fn template(&self, id: &str) -> StoreResult<Option<TemplateRow>> {
        self.read(|c| c.query_opt(&TEMPLATE, params![id], template_from_row))
    }

    fn template_by_name(
        &self,
        organization_id: &str,
        name: &str,
    ) -> StoreResult<Option<TemplateRow>> {
        self.read(|c| {
            c.query_opt(
                &TEMPLATE_BY_NAME,
                params![organization_id, name],
                template_from_row,
            )
        })
    }

    fn templates(&self, organization_id: &str) -> StoreResult<Vec<TemplateRow>> {
        self.read(|c| c.query(&TEMPLATES, params![organization_id], template_from_row))
    }

    fn set_active_version(&self, template_id: &str, version_id: &str) -> StoreResult<()> {
        update(
            self,
            "UPDATE templates SET active_version_id = ?2, updated_at = ?3 WHERE id = ?1",
            params![template_id, version_id, Time::now()],
            &[],
        )
    }

    fn update_template_meta(&self, id: &str, m: &TemplateMeta) -> StoreResult<()> {
        update(
            self,
            "UPDATE templates SET name = ?2, display_name = ?3, description = ?4, icon = ?5, \
             default_ttl_ms = ?6, allow_user_cancel_workspace_jobs = ?7, updated_at = ?8 \
             WHERE id = ?1",
            params![
                id,
                m.name,
                m.display_name,
                m.description,
                m.icon,
                m.default_ttl_ms,
                m.allow_user_cancel_workspace_jobs,
                Time::now()
            ],
            &[Topic::Overview],
        )
    }

    fn delete_template(&self, id: &str) -> StoreResult<()> {
        update(
            self,
            "UPDATE templates SET deleted = true, updated_at = ?2 WHERE id = ?1",
            params![id, Time::now()],
            &[Topic::Overview],
        )
    }

    fn update_template_version(&self, id: &str, name: &str, message: &str) -> StoreResult<()> {
        self.write(
            |c| {
                let taken: bool = c.query_one(
                    "SELECT EXISTS (SELECT 1 FROM template_versions o JOIN template_versions v \
                     ON o.template_id = v.template_id \
                     WHERE v.id = ?1 AND o.id <> ?1 AND o.name = ?2)",
                    params![id, name],
                    |r| r.get(0),
                )?;
                if taken {
                    return Err(StoreError::Conflict("template version name".into()));
                }
                c.execute(
                    "UPDATE template_versions SET name = ?2, message = ?3, updated_at = ?4 \
                     WHERE id = ?1",
                    params![id, name, message, Time::now()],
                )?;
                Ok(())
            },
            |_| vec![],
        )
    }

    fn set_version_archived(&self, id: &str, archived: bool) -> StoreResult<()> {
        update(
            self,
            "UPDATE template_versions SET archived = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, archived, Time::now()],
            &[],
        )
    }

    fn version_in_use(&self, version_id: &str) -> StoreResult<bool> {
        self.read(|c| c.query_one(&VERSION_IN_USE, params![version_id], |r| r.get(0)))
    }
}
