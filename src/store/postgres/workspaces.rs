//! Workspaces on PostgreSQL. Names compare without case per owner among live workspaces (a
//! unique index on `lower(name)`).

use super::PgStore;
use super::builds::{BUILD_FROM, BUILD_SELECT, build_from_row};
use super::job_rows::JOB_COLUMNS;
use super::pool::Tx;
use crate::domain::lifecycle::{ExtendRefusal, check_extend};
use crate::events::Topic;
use crate::model::{Time, Transition};
use crate::store::{NewBuild, NewWorkspace, StoreError, StoreResult, WorkspaceRow, WorkspaceStore};
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

/// Workspaces not deleted, of one owner (`$1`) or of everyone: two statements, so the owner's
/// list is read from the owner index rather than by scanning every workspace.
/// A page of `list`: its parameters after the owner's are the limit (NULL: none) and offset.
pub(super) fn page(of_owner: bool) -> String {
    let (limit, offset) = if of_owner { (2, 3) } else { (1, 2) };
    format!("{} LIMIT ${limit} OFFSET ${offset}", list(of_owner))
}

/// How many live workspaces one owner has (along the owner's index entries) and everyone has
/// (one row, kept by the `live_workspaces` triggers of migration 8).
/// Two statements, as on SQLite: `$1 IS NULL OR owner_id = $1` in one leaves a generic plan
/// nothing but counting every live workspace for one owner.
pub(super) const COUNT_OF_OWNER: &str =
    "SELECT count(*) FROM workspaces WHERE owner_id = $1 AND NOT deleted";
pub(super) const COUNT_ALL: &str = "SELECT count FROM live_workspaces WHERE id = 1";

pub(super) fn list(of_owner: bool) -> String {
    let owner = if of_owner { "AND w.owner_id = $1" } else { "" };
    format!(
        "SELECT {WORKSPACE_COLUMNS} FROM workspaces w JOIN users u ON u.id = w.owner_id \
         WHERE NOT w.deleted {owner} \
         ORDER BY lower(u.username) COLLATE \"C\", lower(w.name) COLLATE \"C\""
    )
}

pub(super) fn by_id() -> String {
    format!(
        "SELECT {WORKSPACE_COLUMNS} FROM workspaces w JOIN users u ON u.id = w.owner_id \
         WHERE w.id = $1"
    )
}

impl WorkspaceStore for PgStore {
    fn agent_owner(&self, agent_id: &str) -> StoreResult<Option<String>> {
        let rows = self.conn()?.query(
            "SELECT w.owner_id, r.agents FROM workspace_resources r \
             JOIN workspace_builds b ON b.job_id = r.job_id JOIN workspaces w ON w.id = b.workspace_id \
             WHERE strpos(r.agents, $1) > 0",
            &[&agent_id],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
            .find(|(_, agents)| crate::store::holds_agent(agents, agent_id))
            .map(|(owner, _)| owner))
    }

    fn workspace(&self, id: &str) -> StoreResult<Option<WorkspaceRow>> {
        let row = self.conn()?.query_opt(by_id().as_str(), &[&id])?;
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
        let mut conn = self.conn()?;
        let rows = match owner_id {
            Some(owner) => conn.query(list(true).as_str(), &[&owner])?,
            None => conn.query(list(false).as_str(), &[])?,
        };
        Ok(rows.iter().map(workspace_from_row).collect())
    }

    fn workspace_page(
        &self,
        owner_id: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(i64, Vec<WorkspaceRow>)> {
        let mut conn = self.conn()?;
        let limit = (limit > 0).then_some(limit);
        let count: i64 = match owner_id {
            Some(owner) => conn.query_one(COUNT_OF_OWNER, &[&owner])?.get(0),
            None => conn.query_one(COUNT_ALL, &[])?.get(0),
        };
        if offset >= count {
            // Past the end: nothing to walk the indexes for.
            return Ok((count, Vec::new()));
        }
        let rows = match owner_id {
            Some(owner) => conn.query(page(true).as_str(), &[&owner, &limit, &offset])?,
            None => conn.query(page(false).as_str(), &[&limit, &offset])?,
        };
        Ok((count, rows.iter().map(workspace_from_row).collect()))
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

    fn set_autostart_schedule(&self, id: &str, schedule: Option<&str>) -> StoreResult<()> {
        self.write(
            |tx| {
                tx.execute(
                    "UPDATE workspaces SET autostart_schedule = $2, updated_at = $3 WHERE id = $1",
                    &[&id, &schedule, &Time::now()],
                )?;
                Ok(())
            },
            |_| vec![Topic::Overview],
        )
    }

    fn rename_workspace(&self, id: &str, name: &str) -> StoreResult<()> {
        self.write(
            |tx| {
                tx.execute(
                    "UPDATE workspaces SET name = $2, updated_at = $3 WHERE id = $1 AND NOT deleted",
                    &[&id, &name, &Time::now()],
                )?;
                Ok(())
            },
            |_| vec![Topic::Overview],
        )
    }

    fn set_automatic_updates(&self, id: &str, value: &str) -> StoreResult<()> {
        self.write(
            |tx| {
                tx.execute(
                    "UPDATE workspaces SET automatic_updates = $2, updated_at = $3 WHERE id = $1",
                    &[&id, &value, &Time::now()],
                )?;
                Ok(())
            },
            |_| vec![Topic::Overview],
        )
    }

    fn start_parameters_of(
        &self,
        owner_id: &str,
        template_id: &str,
    ) -> StoreResult<Vec<(String, String, Time)>> {
        let rows = self.conn()?.query(
            "SELECT p.name, p.value, b.created_at FROM workspace_build_parameters p \
             JOIN workspace_builds b ON b.id = p.build_id JOIN workspaces w ON w.id = b.workspace_id \
             WHERE w.owner_id = $1 AND w.template_id = $2 AND b.transition = 'start' \
             ORDER BY b.created_at DESC, p.position",
            &[&owner_id, &template_id],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn set_workspace_ttl(&self, id: &str, ttl_ms: Option<i64>) -> StoreResult<()> {
        self.write(
            |tx| {
                let now = Time::now();
                tx.execute(
                    "UPDATE workspaces SET ttl_ms = $2, updated_at = $3 WHERE id = $1",
                    &[&id, &ttl_ms.unwrap_or(0), &now],
                )?;
                if ttl_ms.is_none() {
                    tx.execute(
                        "UPDATE workspace_builds SET deadline = NULL, updated_at = $2 \
                         WHERE id = (SELECT id FROM workspace_builds WHERE workspace_id = $1 \
                         ORDER BY build_number DESC LIMIT 1) AND transition = $3",
                        &[&id, &now, &Transition::Start],
                    )?;
                }
                Ok(())
            },
            |_| vec![Topic::Builds, Topic::Overview],
        )
    }

    fn extend_deadline(&self, id: &str, deadline: Time) -> StoreResult<Result<(), ExtendRefusal>> {
        self.write(
            |tx| {
                // The latest build is locked from the check to the update: a concurrent
                // extend or TTL change waits, and a build queued meanwhile makes this one no
                // longer the latest, which the next extend sees.
                let row = tx
                    .query_opt(
                        format!(
                            "{BUILD_SELECT}, {JOB_COLUMNS} {BUILD_FROM} WHERE b.workspace_id = $1 \
                             ORDER BY b.build_number DESC LIMIT 1 FOR UPDATE OF b"
                        )
                        .as_str(),
                        &[&id],
                    )?
                    .ok_or(StoreError::NotFound)?;
                let latest = build_from_row(&row);
                let now = Time::now();
                if let Err(refusal) = check_extend(&latest.schedule_facts(), deadline, now) {
                    return Ok(Err(refusal));
                }
                tx.execute(
                    "UPDATE workspace_builds SET deadline = $2, updated_at = $3 WHERE id = $1",
                    &[&latest.id, &deadline, &now],
                )?;
                Ok(Ok(()))
            },
            |out| match out {
                Ok(()) => vec![Topic::Builds, Topic::Overview],
                Err(_) => vec![],
            },
        )
    }
}
