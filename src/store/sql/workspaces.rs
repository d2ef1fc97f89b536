//! Workspaces. Names compare without case per owner among live workspaces (a unique index).

use super::builds::{LATEST_LOCKED, build_from_row, insert_build};
use super::{Conn, Db, Row, Stmt, Value, params};
use crate::domain::lifecycle::{ExtendRefusal, check_extend};
use crate::events::Topic;
use crate::model::{Time, Transition};
use crate::store::{NewBuild, NewWorkspace, StoreError, StoreResult, WorkspaceRow, WorkspaceStore};

const WORKSPACE_COLUMNS: &str = "w.id, w.organization_id, w.owner_id, u.username, u.avatar_url, \
    w.template_id, w.name, w.ttl_ms, w.autostart_schedule, w.automatic_updates, w.deleted, \
    w.created_at, w.updated_at, w.last_used_at";

fn workspace_from_row(r: &dyn Row) -> StoreResult<WorkspaceRow> {
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

fn insert_workspace(c: &mut dyn Conn, w: &NewWorkspace, now: Time) -> StoreResult<()> {
    c.execute(
        "INSERT INTO workspaces (id, organization_id, owner_id, template_id, name, ttl_ms, \
         autostart_schedule, automatic_updates, created_at, updated_at, last_used_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?9)",
        params![
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

/// Workspaces not deleted, of one owner (`?1`) or of everyone, by owner name then name
/// (without case, as Coder's `lower()` does): two statements, so the owner's list is read
/// from the owner index rather than by scanning every workspace. Both read along the indexes
/// in that order (`Dialect::workspace_list_from`), so a page stops after its rows, sorting
/// nothing, however many workspaces there are.
fn list(d: &super::Dialect, of_owner: bool) -> String {
    let owner = if of_owner { "AND w.owner_id = ?1" } else { "" };
    format!(
        "SELECT {WORKSPACE_COLUMNS} FROM {} WHERE {} {owner} ORDER BY {}",
        d.workspace_list_from,
        (d.is_false)("w.deleted"),
        d.workspace_list_order
    )
}

pub static LIST_OF_OWNER: Stmt = Stmt::new(|d| list(d, true));
pub static LIST: Stmt = Stmt::new(|d| list(d, false));
/// A page of `list`: its parameters after the owner's are the limit (`Dialect::no_limit`:
/// none) and offset.
pub static PAGE_OF_OWNER: Stmt = Stmt::new(|d| format!("{} LIMIT ?2 OFFSET ?3", list(d, true)));
pub static PAGE: Stmt = Stmt::new(|d| format!("{} LIMIT ?1 OFFSET ?2", list(d, false)));

/// How many live workspaces one owner has (along the owner's index entries) and everyone has
/// (one row, kept by the `live_workspaces` triggers of migration 8). Two statements:
/// `?1 IS NULL OR owner_id = ?1` in one made SQLite count every workspace's index entry for
/// one owner (2.9 ms against 0.04 ms at 10,000 workspaces), and leaves PostgreSQL a generic
/// plan counting every live workspace.
pub static COUNT_OF_OWNER: Stmt = Stmt::new(|d| {
    format!(
        "SELECT count(*) FROM workspaces WHERE owner_id = ?1 AND {}",
        (d.is_false)("deleted")
    )
});
const COUNT_ALL: &str = "SELECT count FROM live_workspaces WHERE id = 1";

pub static BY_ID: Stmt = Stmt::new(|_| {
    format!(
        "SELECT {WORKSPACE_COLUMNS} FROM workspaces w JOIN users u ON u.id = w.owner_id \
         WHERE w.id = ?1"
    )
});

static BY_NAME: Stmt = Stmt::new(|d| {
    format!(
        "SELECT {WORKSPACE_COLUMNS} FROM workspaces w JOIN users u ON u.id = w.owner_id \
         WHERE w.owner_id = ?1 AND {} AND ({} OR ?3) \
         ORDER BY w.deleted, w.created_at DESC LIMIT 1",
        (d.nocase_eq)("w.name", "?2"),
        (d.is_false)("w.deleted")
    )
});

static AGENT_OWNERS: Stmt = Stmt::new(|d| {
    format!(
        "SELECT w.owner_id, r.agents FROM workspace_resources r \
         JOIN workspace_builds b ON b.job_id = r.job_id JOIN workspaces w ON w.id = b.workspace_id \
         WHERE {}(r.agents, ?1) > 0",
        d.text_position
    )
});

static RENAME: Stmt = Stmt::new(|d| {
    format!(
        "UPDATE workspaces SET name = ?2, updated_at = ?3 WHERE id = ?1 AND {}",
        (d.is_false)("deleted")
    )
});

/// Runs one statement that changes a workspace, in a transaction of its own, and tells the
/// overview.
fn update(db: &impl Db, sql: &(impl super::Sql + ?Sized), params: &[Value]) -> StoreResult<()> {
    db.write(
        |c| c.execute(sql, params).map(drop),
        |_| vec![Topic::Overview],
    )
}

impl<D: Db> WorkspaceStore for D {
    fn agent_owner(&self, agent_id: &str) -> StoreResult<Option<String>> {
        self.read(|c| {
            let mut owner = None;
            c.scan(&AGENT_OWNERS, params![agent_id], |r| {
                if crate::store::holds_agent(r.str(1)?, agent_id) {
                    owner = Some(r.get(0)?);
                }
                Ok(owner.is_none())
            })?;
            Ok(owner)
        })
    }

    fn workspace(&self, id: &str) -> StoreResult<Option<WorkspaceRow>> {
        self.read(|c| c.query_opt(&BY_ID, params![id], workspace_from_row))
    }

    fn workspace_by_name(
        &self,
        owner_id: &str,
        name: &str,
        include_deleted: bool,
    ) -> StoreResult<Option<WorkspaceRow>> {
        self.read(|c| {
            c.query_opt(
                &BY_NAME,
                params![owner_id, name, include_deleted],
                workspace_from_row,
            )
        })
    }

    fn workspaces(&self, owner_id: Option<&str>) -> StoreResult<Vec<WorkspaceRow>> {
        self.read(|c| match owner_id {
            Some(owner) => c.query(&LIST_OF_OWNER, params![owner], workspace_from_row),
            None => c.query(&LIST, &[], workspace_from_row),
        })
    }

    fn workspace_page(
        &self,
        owner_id: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(i64, Vec<WorkspaceRow>)> {
        self.read(|c| {
            let limit = match limit {
                1.. => Value::Int(limit),
                _ => c.dialect().no_limit,
            };
            let count: i64 = match owner_id {
                Some(owner) => c.query_one(&COUNT_OF_OWNER, params![owner], |r| r.get(0))?,
                None => c.query_one(COUNT_ALL, &[], |r| r.get(0))?,
            };
            if offset >= count {
                // Past the end: nothing to walk the indexes for.
                return Ok((count, Vec::new()));
            }
            let rows = match owner_id {
                Some(owner) => c.query(
                    &PAGE_OF_OWNER,
                    params![owner, limit, offset],
                    workspace_from_row,
                )?,
                None => c.query(&PAGE, params![limit, offset], workspace_from_row)?,
            };
            Ok((count, rows))
        })
    }

    fn create_workspace(&self, w: &NewWorkspace, first: &NewBuild) -> StoreResult<()> {
        self.write_queueing(
            |c| {
                let now = Time::now();
                insert_workspace(c, w, now)?;
                insert_build(c, first, now)?;
                Ok(())
            },
            |_| vec![Topic::Queue, Topic::Overview],
        )
    }

    fn set_autostart_schedule(&self, id: &str, schedule: Option<&str>) -> StoreResult<()> {
        update(
            self,
            "UPDATE workspaces SET autostart_schedule = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, schedule, Time::now()],
        )
    }

    fn rename_workspace(&self, id: &str, name: &str) -> StoreResult<()> {
        update(self, &RENAME, params![id, name, Time::now()])
    }

    fn set_automatic_updates(&self, id: &str, value: &str) -> StoreResult<()> {
        update(
            self,
            "UPDATE workspaces SET automatic_updates = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, value, Time::now()],
        )
    }

    fn start_parameters_of(
        &self,
        owner_id: &str,
        template_id: &str,
    ) -> StoreResult<Vec<(String, String, Time)>> {
        self.read(|c| {
            c.query(
                "SELECT p.name, p.value, b.created_at FROM workspace_build_parameters p \
                 JOIN workspace_builds b ON b.id = p.build_id \
                 JOIN workspaces w ON w.id = b.workspace_id \
                 WHERE w.owner_id = ?1 AND w.template_id = ?2 AND b.transition = 'start' \
                 ORDER BY b.created_at DESC, p.position",
                params![owner_id, template_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
    }

    fn set_workspace_ttl(&self, id: &str, ttl_ms: Option<i64>) -> StoreResult<()> {
        self.write(
            |c| {
                let now = Time::now();
                c.execute(
                    "UPDATE workspaces SET ttl_ms = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, ttl_ms.unwrap_or(0), now],
                )?;
                if ttl_ms.is_none() {
                    c.execute(
                        "UPDATE workspace_builds SET deadline = NULL, updated_at = ?2 \
                         WHERE id = (SELECT id FROM workspace_builds WHERE workspace_id = ?1 \
                         ORDER BY build_number DESC LIMIT 1) AND transition = ?3",
                        params![id, now, Transition::Start],
                    )?;
                }
                Ok(())
            },
            |_| vec![Topic::Builds, Topic::Overview],
        )
    }

    fn extend_deadline(&self, id: &str, deadline: Time) -> StoreResult<Result<(), ExtendRefusal>> {
        self.write(
            |c| {
                // The latest build is locked from the check to the update (SQLite's one
                // writer holds the whole database): a concurrent extend or TTL change waits,
                // and a build queued meanwhile makes this one no longer the latest, which the
                // next extend sees.
                let latest = c
                    .query_opt(&LATEST_LOCKED, params![id], build_from_row)?
                    .ok_or(StoreError::NotFound)?;
                let now = Time::now();
                if let Err(refusal) = check_extend(&latest.schedule_facts(), deadline, now) {
                    return Ok(Err(refusal));
                }
                c.execute(
                    "UPDATE workspace_builds SET deadline = ?2, updated_at = ?3 WHERE id = ?1",
                    params![latest.id, deadline, now],
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
