//! Workspace builds, their parameters, resources and state on PostgreSQL.

use super::PgStore;
use super::dialect::{from_json, to_json};
use super::job_rows::{JOB_COLUMNS, NewJob, insert_job, job_from_row};
use super::pool::Tx;
use crate::domain::builds::next_build_number;
use crate::events::Topic;
use crate::model::{Time, WorkspaceResource};
use crate::store::{
    BuildRow, BuildStore, CreateBuildOutcome, FollowUp, JOB_BUILD, NewBuild, StopFacts, StoreError,
    StoreResult, Timing,
};
use postgres::Row;
use postgres::types::ToSql;

pub(super) const BUILD_SELECT: &str = "SELECT b.id, b.workspace_id, b.template_version_id, b.build_number, b.transition, \
    b.initiator_id, b.reason, b.orphan, b.deadline, b.max_deadline, b.daily_cost, b.created_at, b.updated_at, \
    w.name, w.owner_id, o.username, o.avatar_url, w.deleted, \
    t.id, t.name, t.display_name, t.icon, t.allow_user_cancel_workspace_jobs, \
    v.name, i.username";

pub(super) const BUILD_FROM: &str = "FROM workspace_builds b \
    JOIN workspaces w ON w.id = b.workspace_id \
    JOIN users o ON o.id = w.owner_id \
    JOIN templates t ON t.id = w.template_id \
    JOIN template_versions v ON v.id = b.template_version_id \
    JOIN users i ON i.id = b.initiator_id \
    JOIN provisioner_jobs j ON j.id = b.job_id";

pub(super) fn build_from_row(r: &Row) -> BuildRow {
    BuildRow {
        id: r.get(0),
        workspace_id: r.get(1),
        template_version_id: r.get(2),
        build_number: r.get(3),
        transition: r.get(4),
        initiator_id: r.get(5),
        reason: r.get(6),
        orphan: r.get(7),
        deadline: r.get(8),
        max_deadline: r.get(9),
        daily_cost: r.get(10),
        created_at: r.get(11),
        updated_at: r.get(12),
        workspace_name: r.get(13),
        workspace_owner_id: r.get(14),
        workspace_owner_name: r.get(15),
        workspace_owner_avatar_url: r.get(16),
        workspace_deleted: r.get(17),
        template_id: r.get(18),
        template_name: r.get(19),
        template_display_name: r.get(20),
        template_icon: r.get(21),
        template_allow_user_cancel: r.get(22),
        template_version_name: r.get(23),
        initiator_name: r.get(24),
        job: job_from_row(r, 25),
    }
}

/// The filters of the build reads (`select(..)`), by name for `hot.rs`.
pub(super) const BY_ID: &str = "WHERE b.id = $1";
pub(super) const BY_JOB: &str = "WHERE b.job_id = $1";
pub(super) const BY_NUMBER: &str = "WHERE b.workspace_id = $1 AND b.build_number = $2";
pub(super) const LATEST: &str = "WHERE b.workspace_id = $1 ORDER BY b.build_number DESC LIMIT 1";
/// The latest build of each workspace of `$1`, each found along the `(workspace_id,
/// build_number)` index.
pub(super) const LATEST_OF_MANY: &str = "WHERE b.id IN (SELECT (SELECT x.id FROM workspace_builds x \
     WHERE x.workspace_id = e ORDER BY x.build_number DESC LIMIT 1) FROM unnest($1::text[]) e)";
/// The resources of the jobs of `$1`.
pub(super) const RESOURCES_OF_MANY: &str = "SELECT id, job_id, created_at, workspace_transition, type, name, \
     hide, icon, daily_cost, metadata, agents FROM workspace_resources WHERE job_id = ANY($1::text[]) \
     ORDER BY job_id, name COLLATE \"C\", id COLLATE \"C\"";
/// A page of a workspace's builds: the page is chosen from the `(workspace_id, build_number)`
/// index alone, so a deep offset skips index entries, not joined rows. `LIMIT NULL`: all.
pub(super) const PAGE: &str = "WHERE b.id IN (SELECT id FROM workspace_builds \
     WHERE workspace_id = $1 AND build_number > $2 AND ($3::bigint IS NULL OR created_at > $3) \
     ORDER BY build_number DESC LIMIT $4 OFFSET $5) \
     ORDER BY b.build_number DESC";

pub(super) fn select(filter: &str) -> String {
    format!("{BUILD_SELECT}, {JOB_COLUMNS} {BUILD_FROM} {filter}")
}

/// The latest build of a workspace with its job, read before numbering the next one.
pub(super) fn latest_for_insert() -> String {
    format!(
        "SELECT b.build_number, b.state, {JOB_COLUMNS} FROM workspace_builds b \
         JOIN provisioner_jobs j ON j.id = b.job_id WHERE b.workspace_id = $1 \
         ORDER BY b.build_number DESC LIMIT 1"
    )
}

/// Inserts a build and its pending job in the caller's transaction, numbered by
/// `domain::builds::next_build_number` from the latest build read here. Two servers' requests
/// may read the same latest build at once: the unique `(workspace_id, build_number)` then
/// refuses the second insert with `Conflict` (its transaction rolls back, job included), which
/// `create_build` answers as `ActiveBuild`.
pub(super) fn insert_build(
    tx: &mut Tx,
    b: &NewBuild,
    now: Time,
) -> StoreResult<CreateBuildOutcome> {
    let latest = tx.query_opt(latest_for_insert().as_str(), &[&b.workspace_id])?;
    let facts = latest
        .as_ref()
        .map(|r| (r.get::<_, i64>(0), job_from_row(r, 2).status()));
    let Ok(number) = next_build_number(facts, b.previous_number) else {
        return Ok(CreateBuildOutcome::ActiveBuild);
    };
    let state: Vec<u8> = match b.state {
        Some(s) => s.to_vec(),
        None => latest.map(|r| r.get(1)).unwrap_or_default(),
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
    tx.execute(
        "INSERT INTO workspace_builds (id, workspace_id, template_version_id, build_number, transition, \
         initiator_id, job_id, reason, orphan, state, created_at, updated_at, on_success) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)",
        &[
            &b.id,
            &b.workspace_id,
            &b.template_version_id,
            &number,
            &b.transition,
            &b.initiator_id,
            &b.job_id,
            &b.reason,
            &b.orphan,
            &state,
            &now,
            &b.on_success.map(to_json),
        ],
    )?;
    for (i, (name, value)) in b.parameters.iter().enumerate() {
        tx.execute(
            "INSERT INTO workspace_build_parameters (build_id, position, name, value) VALUES ($1, $2, $3, $4)",
            &[&b.id, &(i as i64), name, value],
        )?;
    }
    tx.execute(
        "UPDATE workspaces SET updated_at = $2 WHERE id = $1",
        &[&b.workspace_id, &now],
    )?;
    Ok(CreateBuildOutcome::Created {
        build_number: number,
    })
}

impl PgStore {
    fn builds_where(
        &self,
        filter: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<Vec<BuildRow>> {
        let rows = self.conn()?.query(select(filter).as_str(), params)?;
        Ok(rows.iter().map(build_from_row).collect())
    }
}

/// Queues the build that the build of `job_id` carries (`on_success`), in the caller's
/// transaction: the one that completes it, so a restart finishes even if its client has gone.
/// Whether one was queued.
pub(super) fn queue_follow_up(tx: &mut Tx, job_id: &str, now: Time) -> StoreResult<bool> {
    let row = tx.query_opt(
        "SELECT b.workspace_id, b.template_version_id, b.build_number, b.initiator_id, \
         b.on_success, j.organization_id, j.file_id \
         FROM workspace_builds b JOIN provisioner_jobs j ON j.id = b.job_id WHERE b.job_id = $1",
        &[&job_id],
    )?;
    let Some(row) = row else {
        return Ok(false);
    };
    let Some(text) = row.get::<_, Option<String>>(4) else {
        return Ok(false);
    };
    let next: FollowUp = from_json(&text)?;
    let stop = StopFacts {
        workspace_id: row.get(0),
        template_version_id: row.get(1),
        build_number: row.get(2),
        initiator_id: row.get(3),
        organization_id: row.get(5),
        file_id: row.get(6),
    };
    let b = next.new_build(&stop);
    Ok(matches!(
        insert_build(tx, &b, now)?,
        CreateBuildOutcome::Created { .. }
    ))
}

/// Writes a job's timings, in the transaction that ends it.
pub(super) fn insert_timings(tx: &mut Tx, job_id: &str, timings: &[Timing]) -> StoreResult<()> {
    for (i, t) in timings.iter().enumerate() {
        tx.execute(
            "INSERT INTO provisioner_job_timings (job_id, position, stage, source, action, \
             resource, started_at, ended_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &job_id,
                &(i as i64),
                &t.stage,
                &t.source,
                &t.action,
                &t.resource,
                &t.started_at,
                &t.ended_at,
            ],
        )?;
    }
    Ok(())
}

impl BuildStore for PgStore {
    fn create_build(&self, b: &NewBuild) -> StoreResult<CreateBuildOutcome> {
        let written = self.write(
            |tx| insert_build(tx, b, Time::now()),
            |outcome| match outcome {
                CreateBuildOutcome::Created { .. } => vec![Topic::Queue, Topic::Overview],
                CreateBuildOutcome::ActiveBuild => vec![],
            },
        );
        match written {
            Err(StoreError::Conflict(_)) => Ok(CreateBuildOutcome::ActiveBuild),
            other => other,
        }
    }

    fn build(&self, id: &str) -> StoreResult<Option<BuildRow>> {
        Ok(self.builds_where(BY_ID, &[&id])?.pop())
    }

    fn build_by_job(&self, job_id: &str) -> StoreResult<Option<BuildRow>> {
        Ok(self.builds_where(BY_JOB, &[&job_id])?.pop())
    }

    fn build_by_number(&self, workspace_id: &str, number: i64) -> StoreResult<Option<BuildRow>> {
        Ok(self
            .builds_where(BY_NUMBER, &[&workspace_id, &number])?
            .pop())
    }

    fn latest_build(&self, workspace_id: &str) -> StoreResult<Option<BuildRow>> {
        Ok(self.builds_where(LATEST, &[&workspace_id])?.pop())
    }

    fn latest_builds(&self, workspace_ids: &[&str]) -> StoreResult<Vec<BuildRow>> {
        if workspace_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.builds_where(LATEST_OF_MANY, &[&workspace_ids])
    }

    fn builds(
        &self,
        workspace_id: &str,
        after_number: Option<i64>,
        since: Option<Time>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<BuildRow>> {
        // LIMIT NULL: no limit.
        let limit = (limit > 0).then_some(limit);
        self.builds_where(
            PAGE,
            &[
                &workspace_id,
                &after_number.unwrap_or(0),
                &since,
                &limit,
                &offset,
            ],
        )
    }

    fn timings(&self, job_id: &str) -> StoreResult<Vec<Timing>> {
        let rows = self.conn()?.query(
            "SELECT stage, source, action, resource, started_at, ended_at \
             FROM provisioner_job_timings WHERE job_id = $1 ORDER BY position",
            &[&job_id],
        )?;
        Ok(rows
            .iter()
            .map(|r| Timing {
                stage: r.get(0),
                source: r.get(1),
                action: r.get(2),
                resource: r.get(3),
                started_at: r.get(4),
                ended_at: r.get(5),
            })
            .collect())
    }

    fn build_state(&self, build_id: &str) -> StoreResult<Vec<u8>> {
        let row = self
            .conn()?
            .query_opt(
                "SELECT state FROM workspace_builds WHERE id = $1",
                &[&build_id],
            )?
            .ok_or(StoreError::NotFound)?;
        Ok(row.get(0))
    }

    fn set_build_state(&self, build_id: &str, state: &[u8]) -> StoreResult<()> {
        self.write(
            |tx| {
                tx.execute(
                    "UPDATE workspace_builds SET state = $2, updated_at = $3 WHERE id = $1",
                    &[&build_id, &state, &Time::now()],
                )?;
                Ok(())
            },
            |_| vec![Topic::Builds],
        )
    }

    fn build_parameters(&self, build_id: &str) -> StoreResult<Vec<(String, String)>> {
        let rows = self.conn()?.query(
            "SELECT name, value FROM workspace_build_parameters WHERE build_id = $1 ORDER BY position",
            &[&build_id],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn resources_of(&self, job_ids: &[&str]) -> StoreResult<Vec<WorkspaceResource>> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.conn()?.query(RESOURCES_OF_MANY, &[&job_ids])?;
        rows.iter()
            .map(|r| {
                Ok(WorkspaceResource {
                    id: r.get(0),
                    job_id: r.get(1),
                    created_at: r.get(2),
                    workspace_transition: r.get(3),
                    kind: r.get(4),
                    name: r.get(5),
                    hide: r.get(6),
                    icon: r.get(7),
                    daily_cost: r.get(8),
                    metadata: from_json(r.get(9))?,
                    agents: from_json(r.get(10))?,
                })
            })
            .collect()
    }
}
