//! Workspace builds, their parameters, resources and state.

use super::dialect::{exec, from_json, optional, query_one, to_json};
use super::job_rows::{JOB_COLUMNS, NewJob, insert_job, job_from_row};
use super::{SqliteStore, Tx};
use crate::domain::builds::next_build_number;
use crate::events::Topic;
use crate::model::{Time, WorkspaceResource};
use crate::store::{
    BuildRow, BuildStore, CreateBuildOutcome, FollowUp, JOB_BUILD, JobRow, NewBuild, StopFacts,
    StoreError, StoreResult, Timing,
};
use rusqlite::{Row, params};

const BUILD_SELECT: &str = "SELECT b.id, b.workspace_id, b.template_version_id, b.build_number, b.transition, \
    b.initiator_id, b.reason, b.orphan, b.deadline, b.max_deadline, b.daily_cost, b.created_at, b.updated_at, \
    w.name, w.owner_id, o.username, o.avatar_url, w.deleted, \
    t.id, t.name, t.display_name, t.icon, t.allow_user_cancel_workspace_jobs, \
    v.name, i.username";

const BUILD_FROM: &str = "FROM workspace_builds b \
    JOIN workspaces w ON w.id = b.workspace_id \
    JOIN users o ON o.id = w.owner_id \
    JOIN templates t ON t.id = w.template_id \
    JOIN template_versions v ON v.id = b.template_version_id \
    JOIN users i ON i.id = b.initiator_id \
    JOIN provisioner_jobs j ON j.id = b.job_id";

pub(super) fn build_from_row(r: &Row) -> rusqlite::Result<BuildRow> {
    Ok(BuildRow {
        id: r.get(0)?,
        workspace_id: r.get(1)?,
        template_version_id: r.get(2)?,
        build_number: r.get(3)?,
        transition: r.get(4)?,
        initiator_id: r.get(5)?,
        reason: r.get(6)?,
        orphan: r.get(7)?,
        deadline: r.get(8)?,
        max_deadline: r.get(9)?,
        daily_cost: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        workspace_name: r.get(13)?,
        workspace_owner_id: r.get(14)?,
        workspace_owner_name: r.get(15)?,
        workspace_owner_avatar_url: r.get(16)?,
        workspace_deleted: r.get(17)?,
        template_id: r.get(18)?,
        template_name: r.get(19)?,
        template_display_name: r.get(20)?,
        template_icon: r.get(21)?,
        template_allow_user_cancel: r.get(22)?,
        template_version_name: r.get(23)?,
        initiator_name: r.get(24)?,
        job: job_from_row(r, 25)?,
    })
}

/// The filters of the build reads (`select(..)`), by name for `hot.rs`.
pub(super) const BY_ID: &str = "WHERE b.id = ?1";
pub(super) const BY_JOB: &str = "WHERE b.job_id = ?1";
pub(super) const BY_NUMBER: &str = "WHERE b.workspace_id = ?1 AND b.build_number = ?2";
pub(super) const LATEST: &str = "WHERE b.workspace_id = ?1 ORDER BY b.build_number DESC LIMIT 1";
/// The latest build of each workspace of `?1` (a JSON array of ids), each found along the
/// `(workspace_id, build_number)` index.
pub(super) const LATEST_OF_MANY: &str = "WHERE b.rowid IN (SELECT (SELECT x.rowid FROM workspace_builds x \
     WHERE x.workspace_id = e.value ORDER BY x.build_number DESC LIMIT 1) FROM json_each(?1) e)";
/// The resources of the jobs of `?1` (a JSON array of ids).
pub(super) const RESOURCES_OF_MANY: &str = "SELECT id, job_id, created_at, workspace_transition, type, name, hide, \
     icon, daily_cost, metadata, agents FROM workspace_resources \
     WHERE job_id IN (SELECT value FROM json_each(?1)) ORDER BY job_id, name, id";
/// A page of a workspace's builds: the page is chosen from the `(workspace_id, build_number)`
/// index alone, so a deep offset skips index entries, not joined rows (nor, without `since`
/// (`?3` NULL), table rows).
pub(super) const PAGE: &str = "WHERE b.rowid IN (SELECT rowid FROM workspace_builds \
     WHERE workspace_id = ?1 AND build_number > ?2 AND (?3 IS NULL OR created_at > ?3) \
     ORDER BY build_number DESC LIMIT ?4 OFFSET ?5) \
     ORDER BY b.build_number DESC";
/// The latest build of a workspace with its job, read before numbering the next one.
pub(super) fn latest_for_insert() -> String {
    format!(
        "SELECT b.build_number, b.state, {JOB_COLUMNS} FROM workspace_builds b \
         JOIN provisioner_jobs j ON j.id = b.job_id WHERE b.workspace_id = ?1 \
         ORDER BY b.build_number DESC LIMIT 1"
    )
}

pub(super) fn select(filter: &str) -> String {
    format!("{BUILD_SELECT}, {JOB_COLUMNS} {BUILD_FROM} {filter}")
}

/// Inserts a build and its pending job in the caller's transaction, numbered by
/// `domain::builds::next_build_number` from the latest build read here. On a database that
/// runs such transactions side by side, two of them may read the same latest build: the unique
/// `(workspace_id, build_number)` then refuses the second insert with `Conflict` (and the
/// transaction rolls back), which `create_build` answers as `ActiveBuild`.
pub(super) fn insert_build(tx: &Tx, b: &NewBuild, now: Time) -> StoreResult<CreateBuildOutcome> {
    let latest: Option<(i64, Vec<u8>, JobRow)> = optional(
        tx.prepare_cached(&latest_for_insert())?
            .query_row([b.workspace_id], |r| {
                Ok((r.get(0)?, r.get(1)?, job_from_row(r, 2)?))
            }),
    )?;
    let facts = latest.as_ref().map(|(n, _, job)| (*n, job.status()));
    let Ok(number) = next_build_number(facts, b.previous_number) else {
        return Ok(CreateBuildOutcome::ActiveBuild);
    };
    let state = match b.state {
        Some(s) => s.to_vec(),
        None => latest.map(|(_, state, _)| state).unwrap_or_default(),
    };
    insert_job(
        tx,
        &NewJob {
            id: b.job_id,
            organization_id: b.organization_id,
            initiator_id: b.initiator_id,
            file_id: b.file_id,
            kind: JOB_BUILD,
            input: serde_json::json!({ "workspace_build_id": b.id }),
            log_level: b.log_level,
            tags_of_version: Some(b.template_version_id),
            tags: "{}".into(),
        },
        now,
    )?;
    tx.prepare_cached(
            "INSERT INTO workspace_builds (id, workspace_id, template_version_id, build_number, transition, \
             initiator_id, job_id, reason, orphan, state, created_at, updated_at, on_success) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)",
        )?
        .execute(params![b.id, b.workspace_id, b.template_version_id, number, b.transition, b.initiator_id,
            b.job_id, b.reason, b.orphan, state, now, b.on_success.map(to_json)])?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO workspace_build_parameters (build_id, position, name, value) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (i, (name, value)) in b.parameters.iter().enumerate() {
        stmt.execute(params![b.id, i as i64, name, value])?;
    }
    exec(
        tx,
        "UPDATE workspaces SET updated_at = ?2 WHERE id = ?1",
        params![b.workspace_id, now],
    )?;
    Ok(CreateBuildOutcome::Created {
        build_number: number,
    })
}

/// Queues the build that the build of `job_id` carries (`on_success`), in the caller's
/// transaction: the one that completes it, so a restart finishes even if its client has gone.
/// Whether one was queued.
pub(super) fn queue_follow_up(tx: &Tx, job_id: &str, now: Time) -> StoreResult<bool> {
    let found: Option<(StopFacts, Option<String>)> = optional(
        tx.prepare_cached(
            "SELECT b.workspace_id, b.template_version_id, b.build_number, b.initiator_id, \
             b.on_success, j.organization_id, j.file_id \
             FROM workspace_builds b JOIN provisioner_jobs j ON j.id = b.job_id WHERE b.job_id = ?1",
        )?
        .query_row([job_id], |r| {
            let stop = StopFacts {
                workspace_id: r.get(0)?,
                template_version_id: r.get(1)?,
                build_number: r.get(2)?,
                initiator_id: r.get(3)?,
                organization_id: r.get(5)?,
                file_id: r.get(6)?,
            };
            Ok((stop, r.get(4)?))
        }),
    )?;
    let Some((stop, Some(text))) = found else {
        return Ok(false);
    };
    let next: FollowUp = from_json(4, &text)?;
    Ok(matches!(
        insert_build(tx, &next.new_build(&stop), now)?,
        CreateBuildOutcome::Created { .. }
    ))
}

/// Writes a job's timings, in the transaction that ends it.
pub(super) fn insert_timings(tx: &Tx, job_id: &str, timings: &[Timing]) -> StoreResult<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO provisioner_job_timings (job_id, position, stage, source, action, resource, \
         started_at, ended_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (i, t) in timings.iter().enumerate() {
        stmt.execute(params![
            job_id,
            i as i64,
            t.stage,
            t.source,
            t.action,
            t.resource,
            t.started_at,
            t.ended_at
        ])?;
    }
    Ok(())
}

impl BuildStore for SqliteStore {
    fn create_build(&self, b: &NewBuild) -> StoreResult<CreateBuildOutcome> {
        let outcome = match self.write_and_hand_off(|tx| insert_build(tx, b, Time::now())) {
            Err(StoreError::Conflict(_)) => CreateBuildOutcome::ActiveBuild,
            other => other?,
        };
        if outcome != CreateBuildOutcome::ActiveBuild {
            self.publish(&[Topic::Queue, Topic::Overview]);
        }
        Ok(outcome)
    }

    fn build(&self, id: &str) -> StoreResult<Option<BuildRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&select(BY_ID))?;
        optional(stmt.query_row([id], build_from_row))
    }

    fn build_by_job(&self, job_id: &str) -> StoreResult<Option<BuildRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&select(BY_JOB))?;
        optional(stmt.query_row([job_id], build_from_row))
    }

    fn build_by_number(&self, workspace_id: &str, number: i64) -> StoreResult<Option<BuildRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&select(BY_NUMBER))?;
        optional(stmt.query_row(params![workspace_id, number], build_from_row))
    }

    fn latest_build(&self, workspace_id: &str) -> StoreResult<Option<BuildRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&select(LATEST))?;
        optional(stmt.query_row([workspace_id], build_from_row))
    }

    fn latest_builds(&self, workspace_ids: &[&str]) -> StoreResult<Vec<BuildRow>> {
        if workspace_ids.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&select(LATEST_OF_MANY))?;
        let rows = stmt.query_map([to_json(&workspace_ids)], build_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn builds(
        &self,
        workspace_id: &str,
        after_number: Option<i64>,
        since: Option<Time>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<BuildRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&select(PAGE))?;
        let limit = if limit <= 0 { -1 } else { limit };
        let rows = stmt.query_map(
            params![
                workspace_id,
                after_number.unwrap_or(0),
                since,
                limit,
                offset
            ],
            build_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn timings(&self, job_id: &str) -> StoreResult<Vec<Timing>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT stage, source, action, resource, started_at, ended_at \
             FROM provisioner_job_timings WHERE job_id = ?1 ORDER BY position",
        )?;
        let rows = stmt.query_map([job_id], |r| {
            Ok(Timing {
                stage: r.get(0)?,
                source: r.get(1)?,
                action: r.get(2)?,
                resource: r.get(3)?,
                started_at: r.get(4)?,
                ended_at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn build_state(&self, build_id: &str) -> StoreResult<Vec<u8>> {
        let conn = self.conn()?;
        Ok(query_one(
            &conn,
            "SELECT state FROM workspace_builds WHERE id = ?1",
            [build_id],
            |r| r.get(0),
        )?)
    }

    fn set_build_state(&self, build_id: &str, state: &[u8]) -> StoreResult<()> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE workspace_builds SET state = ?2, updated_at = ?3 WHERE id = ?1",
                params![build_id, state, Time::now()],
            )?;
            Ok(())
        })?;
        self.publish(&[Topic::Builds]);
        Ok(())
    }

    fn build_parameters(&self, build_id: &str) -> StoreResult<Vec<(String, String)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT name, value FROM workspace_build_parameters WHERE build_id = ?1 ORDER BY position",
        )?;
        let rows = stmt.query_map([build_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn resources_of(&self, job_ids: &[&str]) -> StoreResult<Vec<WorkspaceResource>> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(RESOURCES_OF_MANY)?;
        let rows = stmt.query_map([to_json(&job_ids)], |r| {
            Ok(WorkspaceResource {
                id: r.get(0)?,
                job_id: r.get(1)?,
                created_at: r.get(2)?,
                workspace_transition: r.get(3)?,
                kind: r.get(4)?,
                name: r.get(5)?,
                hide: r.get(6)?,
                icon: r.get(7)?,
                daily_cost: r.get(8)?,
                metadata: from_json(9, &r.get::<_, String>(9)?)?,
                agents: from_json(10, &r.get::<_, String>(10)?)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
