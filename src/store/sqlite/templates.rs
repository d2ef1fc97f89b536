//! Templates and template versions.

use super::SqliteStore;
use super::dialect::{exec, optional, query_one};
use super::job_rows::{JOB_COLUMNS, NewJob, insert_job, job_from_row};
use crate::events::Topic;
use crate::model::Time;
use crate::store::{
    JOB_IMPORT, NewTemplate, NewTemplateVersion, StoreResult, TemplateMeta, TemplateRow,
    TemplateStore, TemplateVersionRow,
};
use rusqlite::{Row, params};

const TEMPLATE_COLUMNS: &str = "t.id, t.organization_id, t.name, t.display_name, t.description, t.icon, \
    t.active_version_id, t.default_ttl_ms, t.allow_user_cancel_workspace_jobs, t.created_by, \
    u.username, t.created_at, t.updated_at";

fn template_from_row(r: &Row) -> rusqlite::Result<TemplateRow> {
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

const VERSION_COLUMNS: &str = "v.id, v.template_id, v.organization_id, v.name, v.message, v.readme, \
    v.file_id, v.manifest, v.created_by, u.username, v.created_at, v.updated_at, v.provisioner, \
    v.archived";

fn version_from_row(r: &Row) -> rusqlite::Result<TemplateVersionRow> {
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

impl TemplateStore for SqliteStore {
    fn create_template_version(&self, v: &NewTemplateVersion) -> StoreResult<()> {
        self.write(|tx| {
            let now = Time::now();
            insert_job(
                tx,
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
            exec(tx,
                "INSERT INTO template_versions (id, template_id, organization_id, name, message, job_id, \
                 file_id, created_by, created_at, updated_at, provisioner) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)",
                params![v.id, v.template_id, v.organization_id, v.name, v.message, v.job_id, v.file_id, v.created_by, now, v.provisioner],
            )?;
            Ok(())
        })?;
        self.publish(&[Topic::Queue, Topic::Overview]);
        Ok(())
    }

    fn template_version(&self, id: &str) -> StoreResult<Option<TemplateVersionRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS}, {JOB_COLUMNS} FROM template_versions v \
             JOIN users u ON u.id = v.created_by JOIN provisioner_jobs j ON j.id = v.job_id WHERE v.id = ?1"
        ))?;
        optional(stmt.query_row([id], version_from_row))
    }

    fn template_version_by_name(
        &self,
        template_id: &str,
        name: &str,
    ) -> StoreResult<Option<String>> {
        let conn = self.conn()?;
        optional(query_one(
            &conn,
            "SELECT id FROM template_versions WHERE template_id = ?1 AND name = ?2",
            [template_id, name],
            |r| r.get(0),
        ))
    }

    fn template_versions(&self, template_id: &str) -> StoreResult<Vec<TemplateVersionRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS}, {JOB_COLUMNS} FROM template_versions v \
             JOIN users u ON u.id = v.created_by JOIN provisioner_jobs j ON j.id = v.job_id \
             WHERE v.template_id = ?1 ORDER BY v.created_at, v.rowid"
        ))?;
        let rows = stmt.query_map([template_id], version_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn create_template(&self, t: &NewTemplate) -> StoreResult<()> {
        self.write(|tx| {
            let now = Time::now();
            exec(tx,
                "INSERT INTO templates (id, organization_id, name, display_name, description, icon, \
                 active_version_id, default_ttl_ms, allow_user_cancel_workspace_jobs, created_by, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                params![t.id, t.organization_id, t.name, t.display_name, t.description, t.icon, t.version_id,
                    t.default_ttl_ms, t.allow_user_cancel_workspace_jobs, t.created_by, now],
            )?;
            exec(tx,
                "UPDATE template_versions SET template_id = ?2, updated_at = ?3 WHERE id = ?1",
                params![t.version_id, t.id, now],
            )?;
            Ok(())
        })
    }

    fn template(&self, id: &str) -> StoreResult<Option<TemplateRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates t JOIN users u ON u.id = t.created_by \
             WHERE t.id = ?1 AND t.deleted = 0"
        ))?;
        optional(stmt.query_row([id], template_from_row))
    }

    fn template_by_name(
        &self,
        organization_id: &str,
        name: &str,
    ) -> StoreResult<Option<TemplateRow>> {
        let conn = self.conn()?;
        optional(query_one(
            &conn,
            &format!(
                "SELECT {TEMPLATE_COLUMNS} FROM templates t JOIN users u ON u.id = t.created_by \
                 WHERE t.organization_id = ?1 AND t.name = ?2 AND t.deleted = 0"
            ),
            [organization_id, name],
            template_from_row,
        ))
    }

    fn templates(&self, organization_id: &str) -> StoreResult<Vec<TemplateRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates t JOIN users u ON u.id = t.created_by \
             WHERE t.organization_id = ?1 AND t.deleted = 0 ORDER BY t.name"
        ))?;
        let rows = stmt.query_map([organization_id], template_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_active_version(&self, template_id: &str, version_id: &str) -> StoreResult<()> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE templates SET active_version_id = ?2, updated_at = ?3 WHERE id = ?1",
                params![template_id, version_id, Time::now()],
            )?;
            Ok(())
        })
    }

    fn update_template_meta(&self, id: &str, m: &TemplateMeta) -> StoreResult<()> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE templates SET name = ?2, display_name = ?3, description = ?4, icon = ?5, \
                 default_ttl_ms = ?6, allow_user_cancel_workspace_jobs = ?7, updated_at = ?8 WHERE id = ?1",
                params![id, m.name, m.display_name, m.description, m.icon, m.default_ttl_ms,
                    m.allow_user_cancel_workspace_jobs, Time::now()],
            )?;
            Ok(())
        })?;
        self.publish(&[Topic::Overview]);
        Ok(())
    }

    fn delete_template(&self, id: &str) -> StoreResult<()> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE templates SET deleted = 1, updated_at = ?2 WHERE id = ?1",
                params![id, Time::now()],
            )?;
            Ok(())
        })?;
        self.publish(&[Topic::Overview]);
        Ok(())
    }

    fn update_template_version(&self, id: &str, name: &str, message: &str) -> StoreResult<()> {
        self.write(|tx| {
            let taken: bool = tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM template_versions o JOIN template_versions v \
                     ON o.template_id = v.template_id WHERE v.id = ?1 AND o.id <> ?1 AND o.name = ?2)",
                )?
                .query_row(params![id, name], |r| r.get(0))?;
            if taken {
                return Err(crate::store::StoreError::Conflict("template version name".into()));
            }
            exec(
                tx,
                "UPDATE template_versions SET name = ?2, message = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, name, message, Time::now()],
            )?;
            Ok(())
        })
    }

    fn set_version_archived(&self, id: &str, archived: bool) -> StoreResult<()> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE template_versions SET archived = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, archived, Time::now()],
            )?;
            Ok(())
        })
    }

    fn version_in_use(&self, version_id: &str) -> StoreResult<bool> {
        let conn = self.conn()?;
        Ok(query_one(
            &conn,
            "SELECT EXISTS (SELECT 1 FROM workspaces w JOIN workspace_builds b ON b.workspace_id = w.id \
             WHERE w.deleted = 0 AND b.template_version_id = ?1 AND b.transition <> 'delete' \
             AND b.build_number = (SELECT max(build_number) FROM workspace_builds WHERE workspace_id = w.id))",
            [version_id],
            |r| r.get(0),
        )?)
    }
}
