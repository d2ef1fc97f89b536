//! Provisioner keys and daemons (`crate::store::provisioners`).

use super::dialect::{exec, optional, to_json};
use super::job_rows::{JOB_COLUMNS, job_from_row};
use super::{SqliteStore, Tx};
use crate::domain::provisioner_tags::from_json;
use crate::events::Topic;
use crate::model::{JobStatus, Time, new_id};
use crate::store::{
    DaemonJob, DaemonRow, JobRow, ProvisionerKeyRow, ProvisionerStore, StoreResult,
};
use rusqlite::{Row, params};

const KEY_COLUMNS: &str = "id, organization_id, name, tags, created_at";

fn key_from_row(r: &Row) -> rusqlite::Result<ProvisionerKeyRow> {
    Ok(ProvisionerKeyRow {
        id: r.get(0)?,
        organization_id: r.get(1)?,
        name: r.get(2)?,
        tags: from_json(&r.get::<_, String>(3)?),
        created_at: r.get(4)?,
    })
}

const DAEMON_COLUMNS: &str = "d.id, d.server_id, d.organization_id, d.key_id, k.name, d.name, \
    d.version, d.tags, d.created_at, d.last_seen_at";
const DAEMON_FROM: &str =
    "FROM provisioner_daemons d LEFT JOIN provisioner_keys k ON k.id = d.key_id";

/// The daemons with the id of the job each runs (one statement, see `daemon_states`). The
/// daemons table is read whole (a row per daemon, however many builds there are); each one's
/// job comes from `provisioner_jobs_worker`.
const DAEMON_STATES: &str = "SELECT d.id, d.server_id, d.organization_id, d.key_id, \
     k.name, d.name, d.version, d.tags, d.created_at, d.last_seen_at, \
     (SELECT j.id FROM provisioner_jobs j WHERE j.worker_id = d.id AND j.completed_at IS NULL \
      AND j.started_at IS NOT NULL LIMIT 1) \
     FROM provisioner_daemons d LEFT JOIN provisioner_keys k ON k.id = d.key_id \
     WHERE d.organization_id IN ('', ?1) ORDER BY d.key_id IS NOT NULL, d.server_id, d.name";

fn daemon_from_row(r: &Row) -> rusqlite::Result<DaemonRow> {
    Ok(DaemonRow {
        id: r.get(0)?,
        server_id: r.get(1)?,
        organization_id: r.get(2)?,
        key_id: r.get(3)?,
        key_name: r.get(4)?,
        name: r.get(5)?,
        version: r.get(6)?,
        tags: from_json(&r.get::<_, String>(7)?),
        created_at: r.get(8)?,
        last_seen_at: r.get(9)?,
        current_job: None,
        previous_job: None,
    })
}

/// The daemon's unfinished job (`current`) or the last one it ended, with its template.
fn daemon_job(conn: &Tx, daemon_id: &str, current: bool) -> StoreResult<Option<DaemonJob>> {
    let filter = if current {
        "j.started_at IS NOT NULL AND j.completed_at IS NULL ORDER BY j.started_at DESC"
    } else {
        "j.completed_at IS NOT NULL ORDER BY j.completed_at DESC"
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT j.id, j.started_at, j.completed_at, j.canceled_at, j.error, \
         coalesce(t.name, ''), coalesce(t.display_name, ''), coalesce(t.icon, '') \
         FROM provisioner_jobs j \
         LEFT JOIN workspace_builds b ON b.job_id = j.id \
         LEFT JOIN template_versions v ON (b.id IS NOT NULL AND v.id = b.template_version_id) \
              OR (b.id IS NULL AND v.job_id = j.id) \
         LEFT JOIN templates t ON t.id = v.template_id \
         WHERE j.worker_id = ?1 AND {filter} LIMIT 1"
    ))?;
    optional(stmt.query_row([daemon_id], |r| {
        Ok(DaemonJob {
            id: r.get(0)?,
            status: JobStatus::derive(r.get(1)?, r.get(2)?, r.get(3)?, &r.get::<_, String>(4)?),
            template_name: r.get(5)?,
            template_display_name: r.get(6)?,
            template_icon: r.get(7)?,
        })
    }))
}

impl ProvisionerStore for SqliteStore {
    fn insert_provisioner_key(
        &self,
        key: &ProvisionerKeyRow,
        hashed_secret: &[u8],
    ) -> StoreResult<()> {
        self.write(|tx| {
            exec(tx,
                "INSERT INTO provisioner_keys (id, organization_id, name, hashed_secret, tags, created_at) \
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
        })
    }

    fn provisioner_keys(&self, organization_id: &str) -> StoreResult<Vec<ProvisionerKeyRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM provisioner_keys WHERE organization_id = ?1 ORDER BY created_at, name"
        ))?;
        let rows = stmt.query_map([organization_id], key_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn provisioner_key_by_secret(
        &self,
        hashed_secret: &[u8],
    ) -> StoreResult<Option<ProvisionerKeyRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM provisioner_keys WHERE hashed_secret = ?1"
        ))?;
        optional(stmt.query_row([hashed_secret], key_from_row))
    }

    fn delete_provisioner_key(
        &self,
        organization_id: &str,
        name: &str,
    ) -> StoreResult<Option<(ProvisionerKeyRow, Vec<JobRow>)>> {
        let out = self.write(|tx| {
            let key = optional(
                tx.prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM provisioner_keys \
                     WHERE organization_id = ?1 AND lower(name) = lower(?2)"
                ))?
                .query_row(params![organization_id, name], key_from_row),
            )?;
            let Some(key) = key else { return Ok(None) };
            let jobs = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM provisioner_jobs j \
                     WHERE j.started_at IS NOT NULL AND j.completed_at IS NULL \
                     AND j.worker_id IN (SELECT id FROM provisioner_daemons WHERE key_id = ?1)"
                ))?;
                let rows = stmt.query_map([&key.id], |r| job_from_row(r, 0))?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            exec(
                tx,
                "DELETE FROM provisioner_daemons WHERE key_id = ?1",
                [&key.id],
            )?;
            exec(tx, "DELETE FROM provisioner_keys WHERE id = ?1", [&key.id])?;
            Ok(Some((key, jobs)))
        })?;
        if out.is_some() {
            self.publish(&[Topic::Overview]);
        }
        Ok(out)
    }

    fn register_daemon(
        &self,
        key: &ProvisionerKeyRow,
        name: &str,
        tags: &crate::domain::provisioner_tags::Tags,
        version: &str,
    ) -> StoreResult<String> {
        let id = self.write(|tx| {
            let now = Time::now();
            Ok(tx
                .prepare_cached(
                    "INSERT INTO provisioner_daemons (id, server_id, name, created_at, last_seen_at, \
                     key_id, organization_id, tags, version) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (server_id, name) DO UPDATE SET last_seen_at = excluded.last_seen_at, \
                     tags = excluded.tags, version = excluded.version RETURNING id",
                )?
                .query_row(
                    params![
                        new_id(),
                        format!("remote:{}", key.id),
                        name,
                        now,
                        key.id,
                        key.organization_id,
                        to_json(tags),
                        version
                    ],
                    |r| r.get(0),
                )?)
        })?;
        self.publish(&[Topic::Overview]);
        Ok(id)
    }

    fn daemon(&self, id: &str) -> StoreResult<Option<DaemonRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {DAEMON_COLUMNS} {DAEMON_FROM} WHERE d.id = ?1"
        ))?;
        optional(stmt.query_row([id], daemon_from_row))
    }

    /// One server uses a SQLite file (the data folder's lock), and it shows its own workers
    /// online whenever it lists them: marking them seen would be a write every 30 s that
    /// nobody reads.
    fn shared_by_servers(&self) -> bool {
        false
    }

    fn touch_daemon(&self, id: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE provisioner_daemons SET last_seen_at = ?2 WHERE id = ?1")?
                .execute(params![id, Time::now()])?;
            Ok(())
        })
    }

    fn daemons(&self, organization_id: &str) -> StoreResult<Vec<DaemonRow>> {
        let conn = self.conn()?;
        let mut daemons: Vec<DaemonRow> = {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DAEMON_COLUMNS} {DAEMON_FROM} \
                 WHERE d.organization_id IN ('', ?1) ORDER BY d.key_id IS NOT NULL, d.server_id, d.name"
            ))?;
            let rows = stmt.query_map([organization_id], daemon_from_row)?;
            rows.collect::<Result<_, _>>()?
        };
        for d in &mut daemons {
            d.current_job = daemon_job(&conn, &d.id, true)?;
            d.previous_job = daemon_job(&conn, &d.id, false)?;
        }
        Ok(daemons)
    }

    fn daemon_states(&self, organization_id: &str) -> StoreResult<Vec<DaemonRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(DAEMON_STATES)?;
        let rows = stmt.query_map([organization_id], |r| {
            let mut d = daemon_from_row(r)?;
            d.current_job = r.get::<_, Option<String>>(10)?.map(DaemonJob::running);
            Ok(d)
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn stale_remote_jobs(&self, before: Time) -> StoreResult<Vec<JobRow>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM provisioner_jobs j \
             WHERE j.started_at IS NOT NULL AND j.completed_at IS NULL AND j.updated_at < ?1 \
             AND j.worker_id IN (SELECT id FROM provisioner_daemons WHERE key_id IS NOT NULL)"
        ))?;
        let rows = stmt.query_map([before], |r| job_from_row(r, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
