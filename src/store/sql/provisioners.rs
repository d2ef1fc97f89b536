//! Provisioner keys and daemons (`crate::store::provisioners`).

use super::job_rows::{JOB_COLUMNS, job_from_row};
use super::{Conn, Db, Row, Stmt, params, to_json};
use crate::domain::provisioner_tags::{Tags, from_json};
use crate::events::Topic;
use crate::model::{JobStatus, Time, new_id};
use crate::store::{
    DaemonJob, DaemonRow, JobRow, ProvisionerKeyRow, ProvisionerStore, StoreResult,
};

const KEY_COLUMNS: &str = "id, organization_id, name, tags, created_at";

fn key_from_row(r: &dyn Row) -> StoreResult<ProvisionerKeyRow> {
    Ok(ProvisionerKeyRow {
        id: r.get(0)?,
        organization_id: r.get(1)?,
        name: r.get(2)?,
        tags: from_json(r.str(3)?),
        created_at: r.get(4)?,
    })
}

static KEYS: Stmt = Stmt::new(|_| {
    format!(
        "SELECT {KEY_COLUMNS} FROM provisioner_keys WHERE organization_id = ?1 \
         ORDER BY created_at, name"
    )
});

static KEY_BY_SECRET: Stmt =
    Stmt::new(|_| format!("SELECT {KEY_COLUMNS} FROM provisioner_keys WHERE hashed_secret = ?1"));

/// The key to delete, locked until its daemons are gone.
static KEY_BY_NAME: Stmt = Stmt::new(|d| {
    format!(
        "SELECT {KEY_COLUMNS} FROM provisioner_keys \
         WHERE organization_id = ?1 AND lower(name) = lower(?2){}",
        (d.for_update)("")
    )
});

static JOBS_OF_KEY: Stmt = Stmt::new(|_| {
    format!(
        "SELECT {JOB_COLUMNS} FROM provisioner_jobs j \
         WHERE j.started_at IS NOT NULL AND j.completed_at IS NULL \
         AND j.worker_id IN (SELECT id FROM provisioner_daemons WHERE key_id = ?1)"
    )
});

const DAEMON_COLUMNS: &str = "d.id, d.server_id, d.organization_id, d.key_id, k.name, d.name, \
    d.version, d.tags, d.created_at, d.last_seen_at";
const DAEMON_FROM: &str =
    "FROM provisioner_daemons d LEFT JOIN provisioner_keys k ON k.id = d.key_id";

static DAEMON: Stmt =
    Stmt::new(|_| format!("SELECT {DAEMON_COLUMNS} {DAEMON_FROM} WHERE d.id = ?1"));

static DAEMONS: Stmt = Stmt::new(|_| {
    format!(
        "SELECT {DAEMON_COLUMNS} {DAEMON_FROM} \
         WHERE d.organization_id IN ('', ?1) ORDER BY d.key_id IS NOT NULL, d.server_id, d.name"
    )
});

/// The daemons with the id of the job each runs (one statement, see `daemon_states`). The
/// daemons table is read whole (a row per daemon, however many builds there are); each one's
/// job comes from `provisioner_jobs_worker`.
const DAEMON_STATES: &str = "SELECT d.id, d.server_id, d.organization_id, d.key_id, \
     k.name, d.name, d.version, d.tags, d.created_at, d.last_seen_at, \
     (SELECT j.id FROM provisioner_jobs j WHERE j.worker_id = d.id AND j.completed_at IS NULL \
      AND j.started_at IS NOT NULL LIMIT 1) \
     FROM provisioner_daemons d LEFT JOIN provisioner_keys k ON k.id = d.key_id \
     WHERE d.organization_id IN ('', ?1) ORDER BY d.key_id IS NOT NULL, d.server_id, d.name";

fn daemon_from_row(r: &dyn Row) -> StoreResult<DaemonRow> {
    Ok(DaemonRow {
        id: r.get(0)?,
        server_id: r.get(1)?,
        organization_id: r.get(2)?,
        key_id: r.get(3)?,
        key_name: r.get(4)?,
        name: r.get(5)?,
        version: r.get(6)?,
        tags: from_json(r.str(7)?),
        created_at: r.get(8)?,
        last_seen_at: r.get(9)?,
        current_job: None,
        previous_job: None,
    })
}

/// A daemon's job (`filter`) with its template.
fn daemon_job_sql(filter: &str) -> String {
    format!(
        "SELECT j.id, j.started_at, j.completed_at, j.canceled_at, j.error, \
         coalesce(t.name, ''), coalesce(t.display_name, ''), coalesce(t.icon, '') \
         FROM provisioner_jobs j \
         LEFT JOIN workspace_builds b ON b.job_id = j.id \
         LEFT JOIN template_versions v ON (b.id IS NOT NULL AND v.id = b.template_version_id) \
              OR (b.id IS NULL AND v.job_id = j.id) \
         LEFT JOIN templates t ON t.id = v.template_id \
         WHERE j.worker_id = ?1 AND {filter} LIMIT 1"
    )
}

static CURRENT_JOB: Stmt = Stmt::new(|_| {
    daemon_job_sql("j.started_at IS NOT NULL AND j.completed_at IS NULL ORDER BY j.started_at DESC")
});

static PREVIOUS_JOB: Stmt =
    Stmt::new(|_| daemon_job_sql("j.completed_at IS NOT NULL ORDER BY j.completed_at DESC"));

/// The daemon's unfinished job (`current`) or the last one it ended, with its template.
fn daemon_job(c: &mut dyn Conn, daemon_id: &str, current: bool) -> StoreResult<Option<DaemonJob>> {
    let sql = if current { &CURRENT_JOB } else { &PREVIOUS_JOB };
    c.query_opt(sql, params![daemon_id], |r| {
        Ok(DaemonJob {
            id: r.get(0)?,
            status: JobStatus::derive(r.get(1)?, r.get(2)?, r.get(3)?, r.str(4)?),
            template_name: r.get(5)?,
            template_display_name: r.get(6)?,
            template_icon: r.get(7)?,
        })
    })
}

static STALE_REMOTE_JOBS: Stmt = Stmt::new(|_| {
    format!(
        "SELECT {JOB_COLUMNS} FROM provisioner_jobs j \
         WHERE j.started_at IS NOT NULL AND j.completed_at IS NULL AND j.updated_at < ?1 \
         AND j.worker_id IN (SELECT id FROM provisioner_daemons WHERE key_id IS NOT NULL)"
    )
});

impl<D: Db> ProvisionerStore for D {
    fn insert_provisioner_key(
        &self,
        key: &ProvisionerKeyRow,
        hashed_secret: &[u8],
    ) -> StoreResult<()> {
        self.write(
            |c| {
                c.execute(
                    "INSERT INTO provisioner_keys \
                     (id, organization_id, name, hashed_secret, tags, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        key.id,
                        key.organization_id,
                        key.name,
                        hashed_secret,
                        to_json(&key.tags),
                        key.created_at
                    ],
                )?;
                Ok(())
            },
            |_| vec![],
        )
    }

    fn provisioner_keys(&self, organization_id: &str) -> StoreResult<Vec<ProvisionerKeyRow>> {
        self.read(|c| c.query(&KEYS, params![organization_id], key_from_row))
    }

    fn provisioner_key_by_secret(
        &self,
        hashed_secret: &[u8],
    ) -> StoreResult<Option<ProvisionerKeyRow>> {
        self.read(|c| c.query_opt(&KEY_BY_SECRET, params![hashed_secret], key_from_row))
    }

    fn delete_provisioner_key(
        &self,
        organization_id: &str,
        name: &str,
    ) -> StoreResult<Option<(ProvisionerKeyRow, Vec<JobRow>)>> {
        self.write(
            |c| {
                let key =
                    c.query_opt(&KEY_BY_NAME, params![organization_id, name], key_from_row)?;
                let Some(key) = key else { return Ok(None) };
                let jobs = c.query(&JOBS_OF_KEY, params![key.id], |r| job_from_row(r, 0))?;
                c.execute(
                    "DELETE FROM provisioner_daemons WHERE key_id = ?1",
                    params![key.id],
                )?;
                c.execute(
                    "DELETE FROM provisioner_keys WHERE id = ?1",
                    params![key.id],
                )?;
                Ok(Some((key, jobs)))
            },
            |out| match out {
                Some(_) => vec![Topic::Overview],
                None => vec![],
            },
        )
    }

    fn register_daemon(
        &self,
        key: &ProvisionerKeyRow,
        name: &str,
        tags: &Tags,
        version: &str,
    ) -> StoreResult<String> {
        self.write(
            |c| {
                c.query_one(
                    "INSERT INTO provisioner_daemons (id, server_id, name, created_at, \
                     last_seen_at, key_id, organization_id, tags, version) \
                     VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (server_id, name) DO UPDATE SET \
                     last_seen_at = excluded.last_seen_at, tags = excluded.tags, \
                     version = excluded.version RETURNING id",
                    params![
                        new_id(),
                        format!("remote:{}", key.id),
                        name,
                        Time::now(),
                        key.id,
                        key.organization_id,
                        to_json(tags),
                        version
                    ],
                    |r| r.get(0),
                )
            },
            |_| vec![Topic::Overview],
        )
    }

    fn daemon(&self, id: &str) -> StoreResult<Option<DaemonRow>> {
        self.read(|c| c.query_opt(&DAEMON, params![id], daemon_from_row))
    }

    fn touch_daemon(&self, id: &str) -> StoreResult<()> {
        self.write(
            |c| {
                c.execute(
                    "UPDATE provisioner_daemons SET last_seen_at = ?2 WHERE id = ?1",
                    params![id, Time::now()],
                )?;
                Ok(())
            },
            |_| vec![],
        )
    }

    fn purge_old_daemons(&self, seen_before: Time, keep_server_id: &str) -> StoreResult<u64> {
        self.write(
            |c| {
                c.execute(
                    "DELETE FROM provisioner_daemons WHERE last_seen_at < ?1 AND server_id <> ?2",
                    params![seen_before, keep_server_id],
                )
            },
            |_| vec![],
        )
    }

    fn shared_by_servers(&self) -> bool {
        !self.one_server()
    }

    fn daemons(&self, organization_id: &str) -> StoreResult<Vec<DaemonRow>> {
        self.read(|c| {
            let mut daemons = c.query(&DAEMONS, params![organization_id], daemon_from_row)?;
            for d in &mut daemons {
                d.current_job = daemon_job(c, &d.id, true)?;
                d.previous_job = daemon_job(c, &d.id, false)?;
            }
            Ok(daemons)
        })
    }

    fn daemon_states(&self, organization_id: &str) -> StoreResult<Vec<DaemonRow>> {
        self.read(|c| {
            c.query(DAEMON_STATES, params![organization_id], |r| {
                let mut d = daemon_from_row(r)?;
                d.current_job = r.get::<Option<String>>(10)?.map(DaemonJob::running);
                Ok(d)
            })
        })
    }

    fn stale_remote_jobs(&self, before: Time) -> StoreResult<Vec<JobRow>> {
        self.read(|c| c.query(&STALE_REMOTE_JOBS, params![before], |r| job_from_row(r, 0)))
    }
}
