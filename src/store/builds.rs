//! Workspace builds, their parameters and resources, and the transaction that completes one.

use super::{
    JOB_BUILD, JOB_COLUMNS, JobRow, NewJob, NewWorkspace, Store, StoreResult, insert_job,
    job_from_row, optional,
};
use crate::model::{JobStatus, Time, Transition};
use rusqlite::{Row, params};

/// A build joined with the names a response needs.
#[derive(Clone, Debug)]
pub struct BuildRow {
    pub id: String,
    pub workspace_id: String,
    pub template_version_id: String,
    pub build_number: i64,
    pub transition: Transition,
    pub initiator_id: String,
    pub reason: String,
    pub orphan: bool,
    pub deadline: Option<Time>,
    pub max_deadline: Option<Time>,
    pub daily_cost: i64,
    pub created_at: Time,
    pub updated_at: Time,
    pub workspace_name: String,
    pub workspace_owner_id: String,
    pub workspace_owner_name: String,
    pub workspace_owner_avatar_url: String,
    pub workspace_deleted: bool,
    pub template_id: String,
    pub template_name: String,
    pub template_display_name: String,
    pub template_icon: String,
    pub template_allow_user_cancel: bool,
    pub template_version_name: String,
    pub initiator_name: String,
    pub job: JobRow,
}

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

fn build_from_row(r: &Row) -> rusqlite::Result<BuildRow> {
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

fn select(filter: &str) -> String {
    format!("{BUILD_SELECT}, {JOB_COLUMNS} {BUILD_FROM} {filter}")
}

pub struct NewBuild<'a> {
    pub id: &'a str,
    pub job_id: &'a str,
    pub workspace_id: &'a str,
    pub organization_id: &'a str,
    pub template_version_id: &'a str,
    pub file_id: &'a str,
    pub transition: Transition,
    pub initiator_id: &'a str,
    pub reason: &'a str,
    pub orphan: bool,
    /// The state the build starts from; `None` carries the previous build's.
    pub state: Option<&'a [u8]>,
    pub parameters: &'a [(String, String)],
    pub log_level: &'a str,
    /// The build number the caller based its checks on (`None`: no build yet).
    pub previous_number: Option<i64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum CreateBuildOutcome {
    Created {
        build_number: i64,
    },
    /// Another build is active (or was created since the caller looked).
    ActiveBuild,
}

fn insert_build(tx: &super::Tx, b: &NewBuild, now: Time) -> StoreResult<CreateBuildOutcome> {
    let latest: Option<(i64, Vec<u8>, JobRow)> = optional(tx.query_row(
        &format!(
            "SELECT b.build_number, b.state, {JOB_COLUMNS} FROM workspace_builds b \
             JOIN provisioner_jobs j ON j.id = b.job_id WHERE b.workspace_id = ?1 \
             ORDER BY b.build_number DESC LIMIT 1"
        ),
        [b.workspace_id],
        |r| Ok((r.get(0)?, r.get(1)?, job_from_row(r, 2)?)),
    ))?;
    let (number, previous_state) = match &latest {
        Some((n, state, job)) => {
            if job.status().is_active() || Some(*n) != b.previous_number {
                return Ok(CreateBuildOutcome::ActiveBuild);
            }
            (n + 1, state.clone())
        }
        None if b.previous_number.is_some() => return Ok(CreateBuildOutcome::ActiveBuild),
        None => (1, Vec::new()),
    };
    let state = b.state.map(<[u8]>::to_vec).unwrap_or(previous_state);
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
        },
        now,
    )?;
    tx.prepare_cached(
        "INSERT INTO workspace_builds (id, workspace_id, template_version_id, build_number, transition, \
         initiator_id, job_id, reason, orphan, state, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
    )?
    .execute(params![b.id, b.workspace_id, b.template_version_id, number, b.transition, b.initiator_id,
        b.job_id, b.reason, b.orphan, state, now])?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO workspace_build_parameters (build_id, position, name, value) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (i, (name, value)) in b.parameters.iter().enumerate() {
        stmt.execute(params![b.id, i as i64, name, value])?;
    }
    tx.execute(
        "UPDATE workspaces SET updated_at = ?2 WHERE id = ?1",
        params![b.workspace_id, now],
    )?;
    Ok(CreateBuildOutcome::Created {
        build_number: number,
    })
}

/// A resource a job produced (stored as it completes).
#[derive(Clone, Debug)]
pub struct ResourceRow {
    pub id: String,
    pub job_id: String,
    pub created_at: Time,
    pub transition: Transition,
    pub kind: String,
    pub name: String,
    pub hide: bool,
    pub icon: String,
    pub daily_cost: i64,
    pub metadata_json: String,
    pub agents_json: String,
}

/// How a build's job ended, written in one transaction by `complete_build`.
pub struct BuildCompletion {
    /// Non-empty: the job failed with this error (logged as its last line too).
    pub error: String,
    /// The new state (success only; a failed or canceled build keeps the state it started from).
    pub new_state: Option<Vec<u8>>,
    pub resources: Vec<ResourceRow>,
    pub deadline: Option<Time>,
    pub daily_cost: i64,
}

impl Store {
    pub fn create_build(&self, b: &NewBuild) -> StoreResult<CreateBuildOutcome> {
        self.write(|tx| insert_build(tx, b, Time::now()))
    }

    /// Creates a workspace and its first build, in one transaction. A duplicate name for the
    /// same owner is a `Conflict`.
    pub fn create_workspace(&self, w: &NewWorkspace, first: &NewBuild) -> StoreResult<()> {
        self.write(|tx| {
            let now = Time::now();
            super::workspaces::insert_workspace(tx, w, now)?;
            insert_build(tx, first, now)?;
            Ok(())
        })
    }

    pub fn build(&self, id: &str) -> StoreResult<Option<BuildRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&select("WHERE b.id = ?1"))?;
        optional(stmt.query_row([id], build_from_row))
    }

    pub fn build_by_job(&self, job_id: &str) -> StoreResult<Option<BuildRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&select("WHERE b.job_id = ?1"))?;
        optional(stmt.query_row([job_id], build_from_row))
    }

    pub fn build_by_number(
        &self,
        workspace_id: &str,
        number: i64,
    ) -> StoreResult<Option<BuildRow>> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached(&select("WHERE b.workspace_id = ?1 AND b.build_number = ?2"))?;
        optional(stmt.query_row(params![workspace_id, number], build_from_row))
    }

    pub fn latest_build(&self, workspace_id: &str) -> StoreResult<Option<BuildRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&select(
            "WHERE b.workspace_id = ?1 ORDER BY b.build_number DESC LIMIT 1",
        ))?;
        optional(stmt.query_row([workspace_id], build_from_row))
    }

    /// Builds of a workspace, newest first: numbers above `after_number`, created after
    /// `since`, then `offset` and `limit` (0 = no limit).
    pub fn builds(
        &self,
        workspace_id: &str,
        after_number: Option<i64>,
        since: Option<Time>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<BuildRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&select(
            "WHERE b.workspace_id = ?1 AND b.build_number > ?2 AND b.created_at > ?3 \
             ORDER BY b.build_number DESC LIMIT ?4 OFFSET ?5",
        ))?;
        let limit = if limit <= 0 { -1 } else { limit };
        let rows = stmt.query_map(
            params![
                workspace_id,
                after_number.unwrap_or(0),
                since.unwrap_or(Time(i64::MIN)),
                limit,
                offset
            ],
            build_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The state the build holds: what it started from, or what it produced once succeeded.
    pub fn build_state(&self, build_id: &str) -> StoreResult<Vec<u8>> {
        let conn = self.conn()?;
        Ok(conn.query_row(
            "SELECT state FROM workspace_builds WHERE id = ?1",
            [build_id],
            |r| r.get(0),
        )?)
    }

    pub fn set_build_state(&self, build_id: &str, state: &[u8]) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE workspace_builds SET state = ?2, updated_at = ?3 WHERE id = ?1",
                params![build_id, state, Time::now()],
            )?;
            Ok(())
        })
    }

    /// The resolved parameter values stored with a build, in template order.
    pub fn build_parameters(&self, build_id: &str) -> StoreResult<Vec<(String, String)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT name, value FROM workspace_build_parameters WHERE build_id = ?1 ORDER BY position",
        )?;
        let rows = stmt.query_map([build_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Resources a job produced, by name.
    pub fn resources(&self, job_id: &str) -> StoreResult<Vec<ResourceRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, job_id, created_at, workspace_transition, type, name, hide, icon, daily_cost, metadata, agents \
             FROM workspace_resources WHERE job_id = ?1 ORDER BY name, id",
        )?;
        let rows = stmt.query_map([job_id], |r| {
            Ok(ResourceRow {
                id: r.get(0)?,
                job_id: r.get(1)?,
                created_at: r.get(2)?,
                transition: r.get(3)?,
                kind: r.get(4)?,
                name: r.get(5)?,
                hide: r.get(6)?,
                icon: r.get(7)?,
                daily_cost: r.get(8)?,
                metadata_json: r.get(9)?,
                agents_json: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Completes a build's job in one transaction: the job's end, and on success the
    /// resources, new state, deadline and daily cost, and for a delete the workspace's
    /// deletion. Returns the job's final status.
    pub fn complete_build(
        &self,
        build: &BuildRow,
        done: &BuildCompletion,
        logs: &super::LogBatch,
    ) -> StoreResult<JobStatus> {
        self.write(|tx| {
            let now = Time::now();
            let job_id = &build.job.id;
            super::append_logs_tx(tx, job_id, logs)?;
            if !done.error.is_empty() {
                super::fail_job_tx(tx, job_id, "Cleaning Up", &done.error)?;
            } else {
                tx.execute(
                    "UPDATE provisioner_jobs SET completed_at = ?2, updated_at = ?2 WHERE id = ?1 AND completed_at IS NULL",
                    params![job_id, now],
                )?;
            }
            let job = tx.query_row(
                &format!("SELECT {JOB_COLUMNS} FROM provisioner_jobs j WHERE j.id = ?1"),
                [job_id],
                |r| job_from_row(r, 0),
            )?;
            let status = job.status();
            if status != JobStatus::Succeeded {
                return Ok(status);
            }
            let mut stmt = tx.prepare_cached(
                "INSERT INTO workspace_resources (id, job_id, created_at, workspace_transition, type, name, hide, \
                 icon, daily_cost, metadata, agents) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for r in &done.resources {
                stmt.execute(params![r.id, job_id, r.created_at, r.transition, r.kind, r.name, r.hide, r.icon,
                    r.daily_cost, r.metadata_json, r.agents_json])?;
            }
            if let Some(state) = &done.new_state {
                tx.execute("UPDATE workspace_builds SET state = ?2 WHERE id = ?1", params![build.id, state])?;
            }
            tx.execute(
                "UPDATE workspace_builds SET deadline = ?2, daily_cost = ?3, updated_at = ?4 WHERE id = ?1",
                params![build.id, done.deadline, done.daily_cost, now],
            )?;
            if build.transition == Transition::Delete {
                tx.execute(
                    "UPDATE workspaces SET deleted = 1, updated_at = ?2 WHERE id = ?1",
                    params![build.workspace_id, now],
                )?;
            }
            Ok(status)
        })
    }
}
