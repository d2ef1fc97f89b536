//! Workspaces on PostgreSQL. Names compare without case per owner among live workspaces (a
//! unique index on `lower(name)`).

use super::PgStore;
use super::pool::Tx;
use crate::events::Topic;
use crate::model::Time;
use crate::store::{NewBuild, NewWorkspace, StoreResult, WorkspaceRow, WorkspaceStore};
use postgres::Row;

const WORKSPACE_COLUMNS: &str = "w.id, w.organization_id, w.owner_id, u.username, u.avatar_url, \
    w.template_id, w.name, w.ttl_ms, w.autostart_schedule, w.automatic_updates, w.deleted, \
    w.created_at, w.updated_at, w.last_used_at";

fn workspace_from_row(r: &Row) -> WorkspaceRow {
    WorkspaceRow {
        id: r.get(0),
        organization_id: r.get(1),
        owner_id: r.get(2),
        owner_name: r.get(3),
        owner_avatar_url: r.get(4),
        template_id: r.get(5),
        name: r.get(6),
        ttl_ms: r.get(7),
        autostart_schedule: r.get(8),
        automatic_updates: r.get(9),
        deleted: r.get(10),
        created_at: r.get(11),
        updated_at: r.get(12),
        last_used_at: r.get(13),
    }
}

fn insert_workspace(tx: &mut Tx, w: &NewWorkspace, now: Time) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO workspaces (id, organization_id, owner_id, template_id, name, ttl_ms, \
         autostart_schedule, automatic_updates, created_at, updated_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9)",
        &[
            &w.id,
            &w.organization_id,
            &w.owner_id,
            &w.template_id,
            &w.name,
            &w.ttl_ms,
            &w.autostart_schedule,
            &w.automatic_updates,
            &now,
        ],
    )?;
    Ok(())
}

impl WorkspaceStore for PgStore {
    fn workspace(&self, id: &str) -> StoreResult<Option<WorkspaceRow>> {
        let row = self.conn()?.query_opt(
            format!(
                "SELECT {WORKSPACE_COLUMNS} FROM workspaces w JOIN users u ON u.id = w.owner_id \
                 WHERE w.id = $1"
            )
            .as_str(),
            &[&id],
        )?;
        Ok(row.map(|r| workspace_from_row(&r)))
    }

    fn workspace_by_name(
        &self,
        owner_id: &str,
        name: &str,
        include_deleted: bool,
    ) -> StoreResult<Option<WorkspaceRow>> {
        let row = self.conn()?.query_opt(
            format!(
                "SELECT {WORKSPACE_COLUMNS} FROM workspaces w JOIN users u ON u.id = w.owner_id \
                 WHERE w.owner_id = $1 AND lower(w.name) = lower($2) AND (NOT w.deleted OR $3) \
                 ORDER BY w.deleted, w.created_at DESC LIMIT 1"
            )
            .as_str(),
            &[&owner_id, &name, &include_deleted],
        )?;
        Ok(row.map(|r| workspace_from_row(&r)))
    }

    fn workspaces(&self, owner_id: Option<&str>) -> StoreResult<Vec<WorkspaceRow>> {
        let rows = self.conn()?.query(
            format!(
                "SELECT {WORKSPACE_COLUMNS} FROM workspaces w JOIN users u ON u.id = w.owner_id \
                 WHERE NOT w.deleted AND ($1::text IS NULL OR w.owner_id = $1) \
                 ORDER BY lower(u.username) COLLATE \"C\", w.name COLLATE \"C\""
            )
            .as_str(),
            &[&owner_id],
        )?;
        Ok(rows.iter().map(workspace_from_row).collect())
    }

    fn create_workspace(&self, w: &NewWorkspace, first: &NewBuild) -> StoreResult<()> {
        self.write(
            |tx| {
                let now = Time::now();
                insert_workspace(tx, w, now)?;
                super::builds::insert_build(tx, first, now)?;
                Ok(())
            },
            |_| vec![Topic::Queue, Topic::Overview],
        )
    }
}
