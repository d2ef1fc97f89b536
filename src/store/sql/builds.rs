//! Workspace builds, their parameters, resources and state.

use super::job_rows::{JOB_COLUMNS, NewJob, insert_job, job_from_row};
use super::{Conn, Db, Row, Stmt, Value, from_json, params, to_json};
use crate::domain::builds::next_build_number;
use crate::events::Topic;
use crate::model::{Time, WorkspaceResource};
use crate::store::{
    BuildRow, BuildStore, CreateBuildOutcome, FollowUp, JOB_BUILD, NewBuild, StopFacts, StoreError,
    StoreResult, Timing,
};

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

pub fn build_from_row(r: &dyn Row) -> StoreResult<BuildRow> {
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

/// Builds (with their names and job) chosen by `filter`.
fn select(filter: &str) -> String {
    format!("{BUILD_SELECT}, {JOB_COLUMNS} {BUILD_FROM} {filter}")
}

pub static BY_ID: Stmt = Stmt::new(|_| select("WHERE b.id = ?1"));
pub static BY_JOB: Stmt = Stmt::new(|_| select("WHERE b.job_id = ?1"));
pub static BY_NUMBER: Stmt =
    Stmt::new(|_| select("WHERE b.workspace_id = ?1 AND b.build_number = ?2"));
const LATEST_FILTER: &str = "WHERE b.workspace_id = ?1 ORDER BY b.build_number DESC LIMIT 1";
pub static LATEST: Stmt = Stmt::new(|_| select(LATEST_FILTER));
/// The latest build, locked from a check to the update it decides.
pub static LATEST_LOCKED: Stmt =
    Stmt::new(|d| format!("{}{}", select(LATEST_FILTER), (d.for_update)("b")));

/// The latest build of each workspace of `?1` (a list of ids), each found along the
/// `(workspace_id, build_number)` index.
pub static LATEST_OF_MANY: Stmt = Stmt::new(|d| {
    let (ids, id) = (d.texts)("?1", "e");
    let key = d.row_key;
    select(&format!(
        "WHERE b.{key} IN (SELECT (SELECT x.{key} FROM workspace_builds x \
         WHERE x.workspace_id = {id} ORDER BY x.build_number DESC LIMIT 1) FROM {ids})"
    ))
});

/// The resources of the jobs of `?1` (a list of ids).
pub static RESOURCES_OF_MANY: Stmt = Stmt::new(|d| {
    format!(
        "SELECT id, job_id, created_at, workspace_transition, type, name, hide, \
         icon, daily_cost, metadata, agents FROM workspace_resources \
         WHERE {} ORDER BY job_id, {}, {}",
        (d.in_texts)("job_id", "?1"),
        (d.bytes_order)("name"),
        (d.bytes_order)("id")
    )
});

/// A page of a workspace's builds: the page is chosen from the `(workspace_id, build_number)`
/// index alone, so a deep offset skips index entries, not joined rows (nor, without `since`
/// (`?3` NULL), table rows). `?4`: the limit (`Dialect::no_limit`: none).
pub static PAGE: Stmt = Stmt::new(|d| {
    let key = d.row_key;
    select(&format!(
        "WHERE b.{key} IN (SELECT {key} FROM workspace_builds \
         WHERE workspace_id = ?1 AND build_number > ?2 AND ({} IS NULL OR created_at > ?3) \
         ORDER BY build_number DESC LIMIT ?4 OFFSET ?5) \
         ORDER BY b.build_number DESC",
        (d.cast)("?3", "bigint")
    ))
});

/// The latest build of a workspace with its job, read before numbering the next one.
pub static LATEST_FOR_INSERT: Stmt = Stmt::new(|_| {
    format!(
        "SELECT b.build_number, b.state, {JOB_COLUMNS} FROM workspace_builds b \
         JOIN provisioner_jobs j ON j.id = b.job_id WHERE b.workspace_id = ?1 \
         ORDER BY b.build_number DESC LIMIT 1"
    )
});

/// Inserts a build and its pending job in the caller's transaction, numbered by
/// `domain::builds::next_build_number` from the latest build read here. Two transactions
/// (two servers' requests on PostgreSQL) may read the same latest build at once: the unique
/// `(workspace_id, build_number)` then refuses the second insert with `Conflict` (its
/// transaction rolls back, job included), which `create_build` answers as `ActiveBuild`.
pub fn insert_build(c: &mut dyn Conn, b: &NewBuild, now: Time) -> StoreResult<CreateBuildOutcome> {
    let latest = c.query_opt(&LATEST_FOR_INSERT, params![b.workspace_id], |r| {
        // The state is read only when the build starts from it.
        let state: Vec<u8> = match b.state {
            Some(_) => Vec::new(),
            None => r.get(1)?,
        };
        Ok((r.get::<i64>(0)?, state, job_from_row(r, 2)?))
    })?;
    let facts = latest.as_ref().map(|(n, _, job)| (*n, job.status()));
    let Ok(number) = next_build_number(facts, b.previous_number) else {
        return Ok(CreateBuildOutcome::ActiveBuild);
    };
    let state = match b.state {
        Some(s) => s.to_vec(),
        None => latest.map(|(_, state, _)| state).unwrap_or_default(),
    };
    insert_job(
        c,
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
    c.execute(
        "INSERT INTO workspace_builds (id, workspace_id, template_version_id, build_number, \
         transition, initiator_id, job_id, reason, orphan, state, created_at, updated_at, \
         on_success) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)",
        params![
            b.id,
            b.workspace_id,
            b.template_version_id,
            number,
            b.transition,
            b.initiator_id,
            b.job_id,
            b.reason,
            b.orphan,
            state,
            now,
            b.on_success.map(to_json)
        ],
    )?;
    for (i, (name, value)) in b.parameters.iter().enumerate() {
        c.execute(
            "INSERT INTO workspace_build_parameters (build_id, position, name, value) \
             VALUES (?1, ?2, ?3, ?4)",
            params![b.id, i as i64, name, value],
        )?;
    }
    c.execute(
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
pub fn queue_follow_up(c: &mut dyn Conn, job_id: &str, now: Time) -> StoreResult<bool> {
    let found = c.query_opt(
        "SELECT b.workspace_id, b.template_version_id, b.build_number, b.initiator_id, \
         b.on_success, j.organization_id, j.file_id \
         FROM workspace_builds b JOIN provisioner_jobs j ON j.id = b.job_id WHERE b.job_id = ?1",
        params![job_id],
        |r| {
            let stop = StopFacts {
                workspace_id: r.get(0)?,
                template_version_id: r.get(1)?,
                build_number: r.get(2)?,
                initiator_id: r.get(3)?,
                organization_id: r.get(5)?,
                file_id: r.get(6)?,
            };
            Ok((stop, r.get::<Option<String>>(4)?))
        },
    )?;
    let Some((stop, Some(text))) = found else {
        return Ok(false);
    };
    let next: FollowUp = from_json(&text)?;
    Ok(matches!(
        insert_build(c, &next.new_build(&stop), now)?,
        CreateBuildOutcome::Created { .. }
    ))
}

/// Writes a job's timings, in the transaction that ends it.
pub fn insert_timings(c: &mut dyn Conn, job_id: &str, timings: &[Timing]) -> StoreResult<()> {
    for (i, t) in timings.iter().enumerate() {
        c.execute(
            "INSERT INTO provisioner_job_timings (job_id, position, stage, source, action, \
             resource, started_at, ended_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                job_id,
                i as i64,
                t.stage,
                t.source,
                t.action,
                t.resource,
                t.started_at,
                t.ended_at
            ],
        )?;
    }
    Ok(())
}

fn one_build(db: &impl Db, sql: &Stmt, params: &[Value]) -> StoreResult<Option<BuildRow>> {
    db.read(|c| c.query_opt(sql, params, build_from_row))
}

/// Completed builds older than each workspace's `?1` newest, oldest first, at most `?2`:
/// never a workspace's latest build (which holds its state), never one whose job has not ended.
static OLD_BUILDS: Stmt = Stmt::new(|_| {
    "SELECT b.id, b.job_id FROM workspace_builds b JOIN provisioner_jobs j ON j.id = b.job_id \
     WHERE j.completed_at IS NOT NULL \
     AND b.build_number <= (SELECT max(l.build_number) FROM workspace_builds l \
         WHERE l.workspace_id = b.workspace_id) - ?1 \
     ORDER BY b.created_at LIMIT ?2"
        .to_string()
});

/// What a purged build leaves, in an order no reference is left dangling: its job's lines,
/// timings and resources, its parameters, the build, its job. Each over a list `?1` of the
/// jobs (`true`) or of the builds (`false`).
static PURGE_BUILD_ROWS: [(bool, Stmt); 6] = [
    (
        true,
        Stmt::new(|d| {
            format!(
                "DELETE FROM provisioner_job_logs WHERE {}",
                (d.in_texts)("job_id", "?1")
            )
        }),
    ),
    (
        true,
        Stmt::new(|d| {
            format!(
                "DELETE FROM provisioner_job_timings WHERE {}",
                (d.in_texts)("job_id", "?1")
            )
        }),
    ),
    (
        true,
        Stmt::new(|d| {
            format!(
                "DELETE FROM workspace_resources WHERE {}",
                (d.in_texts)("job_id", "?1")
            )
        }),
    ),
    (
        false,
        Stmt::new(|d| {
            format!(
                "DELETE FROM workspace_build_parameters WHERE {}",
                (d.in_texts)("build_id", "?1")
            )
        }),
    ),
    (
        false,
        Stmt::new(|d| {
            format!(
                "DELETE FROM workspace_builds WHERE {}",
                (d.in_texts)("id", "?1")
            )
        }),
    ),
    (
        true,
        Stmt::new(|d| {
            format!(
                "DELETE FROM provisioner_jobs WHERE {}",
                (d.in_texts)("id", "?1")
            )
        }),
    ),
];

impl<D: Db> BuildStore for D {
    fn create_build(&self, b: &NewBuild) -> StoreResult<CreateBuildOutcome> {
        let written = self.write_queueing(
            |c| insert_build(c, b, Time::now()),
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
        one_build(self, &BY_ID, params![id])
    }

    fn build_by_job(&self, job_id: &str) -> StoreResult<Option<BuildRow>> {
        one_build(self, &BY_JOB, params![job_id])
    }

    fn build_by_number(&self, workspace_id: &str, number: i64) -> StoreResult<Option<BuildRow>> {
        one_build(self, &BY_NUMBER, params![workspace_id, number])
    }

    fn latest_build(&self, workspace_id: &str) -> StoreResult<Option<BuildRow>> {
        one_build(self, &LATEST, params![workspace_id])
    }

    fn latest_builds(&self, workspace_ids: &[&str]) -> StoreResult<Vec<BuildRow>> {
        if workspace_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|c| {
            c.query(
                &LATEST_OF_MANY,
                params![Value::Texts(workspace_ids)],
                build_from_row,
            )
        })
    }

    fn builds(
        &self,
        workspace_id: &str,
        after_number: Option<i64>,
        since: Option<Time>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<BuildRow>> {
        self.read(|c| {
            let limit = match limit {
                1.. => Value::Int(limit),
                _ => c.dialect().no_limit,
            };
            c.query(
                &PAGE,
                params![
                    workspace_id,
                    after_number.unwrap_or(0),
                    since,
                    limit,
                    offset
                ],
                build_from_row,
            )
        })
    }

    fn timings(&self, job_id: &str) -> StoreResult<Vec<Timing>> {
        self.read(|c| {
            c.query(
                "SELECT stage, source, action, resource, started_at, ended_at \
                 FROM provisioner_job_timings WHERE job_id = ?1 ORDER BY position",
                params![job_id],
                |r| {
                    Ok(Timing {
                        stage: r.get(0)?,
                        source: r.get(1)?,
                        action: r.get(2)?,
                        resource: r.get(3)?,
                        started_at: r.get(4)?,
                        ended_at: r.get(5)?,
                    })
                },
            )
        })
    }

    fn build_state(&self, build_id: &str) -> StoreResult<Vec<u8>> {
        self.read(|c| {
            c.query_one(
                "SELECT state FROM workspace_builds WHERE id = ?1",
                params![build_id],
                |r| r.get(0),
            )
        })
    }

    fn set_build_state(&self, build_id: &str, state: &[u8]) -> StoreResult<()> {
        self.write(
            |c| {
                c.execute(
                    "UPDATE workspace_builds SET state = ?2, updated_at = ?3 WHERE id = ?1",
                    params![build_id, state, Time::now()],
                )?;
                Ok(())
            },
            |_| vec![Topic::Builds],
        )
    }

    fn build_parameters(&self, build_id: &str) -> StoreResult<Vec<(String, String)>> {
        self.read(|c| {
            c.query(
                "SELECT name, value FROM workspace_build_parameters WHERE build_id = ?1 \
                 ORDER BY position",
                params![build_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }

    fn resources_of(&self, job_ids: &[&str]) -> StoreResult<Vec<WorkspaceResource>> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|c| {
            c.query(&RESOURCES_OF_MANY, params![Value::Texts(job_ids)], |r| {
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
                    metadata: from_json(r.str(9)?)?,
                    agents: from_json(r.str(10)?)?,
                })
            })
        })
    }

    fn purge_old_builds(&self, keep: i64, limit: i64) -> StoreResult<u64> {
        self.write(
            |c| {
                let old = c.query(&OLD_BUILDS, params![keep.max(1), limit], |r| {
                    Ok((r.get::<String>(0)?, r.get::<String>(1)?))
                })?;
                let builds: Vec<&str> = old.iter().map(|(b, _)| b.as_str()).collect();
                let jobs: Vec<&str> = old.iter().map(|(_, j)| j.as_str()).collect();
                if !old.is_empty() {
                    for (of_jobs, stmt) in &PURGE_BUILD_ROWS {
                        let ids = if *of_jobs { &jobs } else { &builds };
                        c.execute(stmt, params![Value::Texts(ids)])?;
                    }
                }
                Ok(old.len() as u64)
            },
            |n| match n {
                0 => vec![],
                _ => vec![Topic::Builds, Topic::Overview],
            },
        )
    }
}
