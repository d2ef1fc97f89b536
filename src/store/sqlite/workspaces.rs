//! Workspaces.

use super::dialect::{exec, optional, query_one};
use super::{SqliteStore, Tx};
use crate::domain::lifecycle::{ExtendRefusal, check_extend};
use crate::events::Topic;
use crate::model::{Time, Transition};
use crate::store::{NewBuild, NewWorkspace, StoreError, StoreResult, WorkspaceRow, WorkspaceStore};
use rusqlite::Row;

const WORKSPACE_COLUMNS: &str = "w.id, w.organization_id, w.owner_id, u.username, u.avatar_url, \
    w.template_id, w.name, w.ttl_ms, w.autostart_schedule, w.automatic_updates, w.deleted, \
    w.created_at, w.updated_at, w.last_used_at";

fn workspace_from_row(r: &Row) -> rusqlite::Result<WorkspaceRow> {
    Ok(WorkspaceRow {
        id: r.get(0)?,
        organization_id: r.get(1)?,
        owner_id: r.get(2)?,
        owner_name: r.get(3)?,
        owner_avatar_url: r.get(4)?,
        template_id: r.get(5)?,
        name: r.get(6)?,
        ttl_ms: r.get(7)?,
        autostart_schedule: r.get(8)?,
        automatic_updates: r.get(9)?,
        deleted: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        last_used_at: r.get(13)?,
    })
}

fn insert_workspace(tx: &Tx, w: &NewWorkspace, now: Time) -> StoreResult<()> {
    exec(
        tx,
        "INSERT INTO workspaces (id, organization_id, owner_id, template_id, name, ttl_ms, \
         autostart_schedule, automatic_updates, created_at, updated_at, last_used_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?9)",
        rusqlite::params![
            w.id,
            w.organization_id,
            w.owner_id,
            w.template_id,
            w.name,
            w.ttl_ms,
            w.autostart_schedule,
            w.automatic_updates,
            now
        ],
    )?;
    Ok(())
}

/// Workspaces not deleted, of one owner (`?1`) or of everyone: two statements, so the owner's
/// list is read from the owner index rather than by scanning every workspace.
pub(super) fn list(of_owner: bool) -> String {
    let owner = if of_owner { "AND w.owner_id = ?1" } else { "" };
    // Users first, along their name index (CROSS JOIN keeps that order), then each user's
    // workspaces along `workspaces_owner_name` (names compared without case, as Coder's
    // `lower()` does): a page stops after its rows, sorting nothing, however many workspaces
    // an owner has.
    format!(
        "SELECT {WORKSPACE_COLUMNS} FROM users u CROSS JOIN workspaces w ON u.id = w.owner_id \
         WHERE w.deleted = 0 {owner} ORDER BY u.username, w.name COLLATE NOCASE"
    )
}

/// A page of `list`: its parameters after the owner's are the limit (-1: none) and offset.
pub(super) fn page(of_owner: bool) -> String {
    let (limit, offset) = if of_owner { (2, 3) } else { (1, 2) };
    format!("{} LIMIT ?{limit} OFFSET ?{offset}", list(of_owner))
}

/// How many live workspaces one owner has (along the owner's index entries) and everyone has
/// (one row, kept by the `live_workspaces` triggers of migration 8).
/// Two statements: `?1 IS NULL OR owner_id = ?1` in one made SQLite count every workspace's
/// index entry for one owner (2.9 ms against 0.04 ms at 10,000 workspaces).
pub(super) const COUNT_OF_OWNER: &str =
    "SELECT count(*) FROM workspaces WHERE owner_id = ?1 AND deleted = 0";
pub(super) const COUNT_ALL: &str = "SELECT count FROM live_workspaces WHERE id = 1";

pub(super) fn by_id() -> String {
    format!(
        "SELECT {WORKSPACE_COLUMNS} FROM workspaces w JOIN users u ON u.id = w.owner_id WHERE w.id = ?1"
    )
}

impl WorkspaceStore for SqliteStore {
    fn agent_owner(&self, agent_id: &str) -> StoreResult<Option<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT w.owner_id, r.agents FROM workspace_resources r \
             JOIN workspace_builds b ON b.job_id = r.job_id JOIN workspaces w ON w.id = b.workspace_id \
             WHERE instr(r.agents, ?1) > 0",
        )?;
        let rows = stmt.query_map([agent_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (owner, agents) = row?;
            if crate::store::holds_agent(&agents, agent_id) {
                return Ok(Some(owner));
            }
        }
        Ok(None)
    }

    fn workspace(&self, id: &str) -> StoreResult<Option<WorkspaceRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&by_id())?;
        optional(stmt.query_row([id], workspace_from_row))
    }

    fn workspace_by_name(
        &self,
        owner_id: &str,
        name: &str,
        include_deleted: bool,
    ) -> StoreResult<Option<WorkspaceRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {WORKSPACE_COLUMNS} FROM workspaces w JOIN users u ON u.id = w.owner_id \
             WHERE w.owner_id = ?1 AND w.name = ?2 COLLATE NOCASE AND (w.deleted = 0 OR ?3) \
             ORDER BY w.deleted, w.created_at DESC LIMIT 1"
        ))?;
        optional(stmt.query_row(
            rusqlite::params![owner_id, name, include_deleted],
            workspace_from_row,
        ))
    }

    fn workspaces(&self, owner_id: Option<&str>) -> StoreResult<Vec<WorkspaceRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&list(owner_id.is_some()))?;
        let rows = match owner_id {
            Some(owner) => stmt.query_map([owner], workspace_from_row)?,
            None => stmt.query_map([], workspace_from_row)?,
        };
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn workspace_page(
        &self,
        owner_id: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(i64, Vec<WorkspaceRow>)> {
        let conn = self.conn()?;
        let limit = if limit == 0 { -1 } else { limit };
        let count = match owner_id {
            Some(owner) => conn
                .prepare_cached(COUNT_OF_OWNER)?
                .query_row([owner], |r| r.get(0))?,
            None => conn
                .prepare_cached(COUNT_ALL)?
                .query_row([], |r| r.get(0))?,
        };
        if offset >= count {
            // Past the end: nothing to walk the indexes for.
            return Ok((count, Vec::new()));
        }
        let mut stmt = conn.prepare_cached(&page(owner_id.is_some()))?;
        let rows = match owner_id {
            Some(owner) => {
                stmt.query_map(rusqlite::params![owner, limit, offset], workspace_from_row)?
            }
            None => stmt.query_map([limit, offset], workspace_from_row)?,
        };
        Ok((count, rows.collect::<Result<_, _>>()?))
    }

    fn create_workspace(&self, w: &NewWorkspace, first: &NewBuild) -> StoreResult<()> {
        self.write_and_hand_off(|tx| {
            let now = Time::now();
            insert_workspace(tx, w, now)?;
            super::builds::insert_build(tx, first, now)?;
            Ok(())
        })?;
        self.publish(&[Topic::Queue, Topic::Overview]);
        Ok(())
    }

    fn set_autostart_schedule(&self, id: &str, schedule: Option<&str>) -> StoreResult<()> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE workspaces SET autostart_schedule = ?2, updated_at = ?3 WHERE id = ?1",
                rusqlite::params![id, schedule, Time::now()],
            )?;
            Ok(())
        })?;
        self.publish(&[Topic::Overview]);
        Ok(())
    }

    fn rename_workspace(&self, id: &str, name: &str) -> StoreResult<()> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE workspaces SET name = ?2, updated_at = ?3 WHERE id = ?1 AND deleted = 0",
                rusqlite::params![id, name, Time::now()],
            )?;
            Ok(())
        })?;
        self.publish(&[Topic::Overview]);
        Ok(())
    }

    fn set_automatic_updates(&self, id: &str, value: &str) -> StoreResult<()> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE workspaces SET automatic_updates = ?2, updated_at = ?3 WHERE id = ?1",
                rusqlite::params![id, value, Time::now()],
            )?;
            Ok(())
        })?;
        self.publish(&[Topic::Overview]);
        Ok(())
    }

    fn start_parameters_of(
        &self,
        owner_id: &str,
        template_id: &str,
    ) -> StoreResult<Vec<(String, String, Time)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT p.name, p.value, b.created_at FROM workspace_build_parameters p \
             JOIN workspace_builds b ON b.id = p.build_id JOIN workspaces w ON w.id = b.workspace_id \
             WHERE w.owner_id = ?1 AND w.template_id = ?2 AND b.transition = 'start' \
             ORDER BY b.created_at DESC, p.position",
        )?;
        let rows = stmt.query_map([owner_id, template_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_workspace_ttl(&self, id: &str, ttl_ms: Option<i64>) -> StoreResult<()> {
        self.write(|tx| {
            let now = Time::now();
            exec(
                tx,
                "UPDATE workspaces SET ttl_ms = ?2, updated_at = ?3 WHERE id = ?1",
                rusqlite::params![id, ttl_ms.unwrap_or(0), now],
            )?;
            if ttl_ms.is_none() {
                exec(
                    tx,
                    "UPDATE workspace_builds SET deadline = NULL, updated_at = ?2 \
                     WHERE id = (SELECT id FROM workspace_builds WHERE workspace_id = ?1 \
                     ORDER BY build_number DESC LIMIT 1) AND transition = ?3",
                    rusqlite::params![id, now, Transition::Start],
                )?;
            }
            Ok(())
        })?;
        self.publish(&[Topic::Builds, Topic::Overview]);
        Ok(())
    }

    fn extend_deadline(&self, id: &str, deadline: Time) -> StoreResult<Result<(), ExtendRefusal>> {
        // The single writer runs one transaction at a time: nothing changes the build between
        // the check and the update.
        let out = self.write(|tx| {
            let latest = optional(query_one(
                tx,
                &super::builds::select(
                    "WHERE b.workspace_id = ?1 ORDER BY b.build_number DESC LIMIT 1",
                ),
                [id],
                super::builds::build_from_row,
            ))?
            .ok_or(StoreError::NotFound)?;
            let now = Time::now();
            if let Err(refusal) = check_extend(&latest.schedule_facts(), deadline, now) {
                return Ok(Err(refusal));
            }
            exec(
                tx,
                "UPDATE workspace_builds SET deadline = ?2, updated_at = ?3 WHERE id = ?1",
                rusqlite::params![latest.id, deadline, now],
            )?;
            Ok(Ok(()))
        })?;
        if out.is_ok() {
            self.publish(&[Topic::Builds, Topic::Overview]);
        }
        Ok(out)
    }
}
