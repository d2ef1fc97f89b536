//! Rows written straight into a test server's SQLite file, consistent with schema.sql: a
//! template with its imported version, workspaces, builds and their jobs.
#![allow(dead_code)]

use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A job's stored facts; the status the API shows is derived from them.
#[derive(Clone, Copy, Debug, Default)]
pub struct JobFacts {
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub failed: bool,
}

impl JobFacts {
    pub fn pending() -> JobFacts {
        JobFacts::default()
    }

    pub fn running(started_at: i64) -> JobFacts {
        JobFacts {
            started_at: Some(started_at),
            ..JobFacts::default()
        }
    }

    pub fn succeeded(started_at: i64, completed_at: i64) -> JobFacts {
        JobFacts {
            started_at: Some(started_at),
            completed_at: Some(completed_at),
            ..JobFacts::default()
        }
    }

    pub fn failed(started_at: i64, completed_at: i64) -> JobFacts {
        JobFacts {
            failed: true,
            ..JobFacts::succeeded(started_at, completed_at)
        }
    }

    /// Canceled before a worker took it.
    pub fn canceled_while_pending(at: i64) -> JobFacts {
        JobFacts {
            completed_at: Some(at),
            canceled_at: Some(at),
            ..JobFacts::default()
        }
    }
}

pub struct Rows {
    pub conn: Connection,
    pub org_id: String,
    file_id: Option<String>,
}

pub struct Template {
    pub id: String,
    pub version_id: String,
}

pub struct Build {
    pub id: String,
    pub job_id: String,
}

impl Rows {
    pub fn open(db: &Path) -> Rows {
        let conn = Connection::open(db).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
        let org_id = conn
            .query_row(
                "SELECT id FROM organizations WHERE is_default = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        Rows {
            conn,
            org_id,
            file_id: None,
        }
    }

    pub fn user_id(&self, username: &str) -> String {
        self.conn
            .query_row(
                "SELECT id FROM users WHERE username = ?1",
                [username],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn file(&mut self, created_by: &str) -> String {
        if let Some(id) = &self.file_id {
            return id.clone();
        }
        let id = new_id();
        self.conn
            .execute(
                "INSERT INTO files (id, hash, mimetype, data, created_by, created_at) \
                 VALUES (?1, ?2, 'application/x-tar', x'00', ?3, ?4)",
                params![id, new_id(), created_by, now_micros()],
            )
            .unwrap();
        self.file_id = Some(id.clone());
        id
    }

    /// A job; `seq` fixes its place in the queue.
    pub fn job(&mut self, job_type: &str, input: &str, initiator: &str, facts: JobFacts) -> String {
        let id = new_id();
        let file = self.file(initiator);
        let now = now_micros();
        self.conn
            .execute(
                "INSERT INTO provisioner_jobs (id, seq, created_at, updated_at, started_at, \
                 completed_at, canceled_at, error, organization_id, initiator_id, file_id, type, input) \
                 VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM provisioner_jobs), ?2, ?2, ?3, \
                 ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    id,
                    now,
                    facts.started_at,
                    facts.completed_at,
                    facts.canceled_at,
                    if facts.failed { "boom: exit status 1" } else { "" },
                    self.org_id,
                    initiator,
                    file,
                    job_type,
                    input,
                ],
            )
            .unwrap();
        id
    }

    /// A template whose version `name` imported with `import` facts.
    pub fn template(&mut self, name: &str, created_by: &str, import: JobFacts) -> Template {
        let id = new_id();
        let version_id = new_id();
        let input = format!(r#"{{"template_version_id":"{version_id}"}}"#);
        let job = self.job("template_version_import", &input, created_by, import);
        let file = self.file(created_by);
        let now = now_micros();
        self.conn
            .execute(
                "INSERT INTO template_versions (id, template_id, organization_id, name, job_id, \
                 file_id, created_by, created_at, updated_at) VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                params![version_id, self.org_id, format!("{name}-v1"), job, file, created_by, now],
            )
            .unwrap();
        self.conn
            .execute(
                "INSERT INTO templates (id, organization_id, name, active_version_id, created_by, \
                 created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![id, self.org_id, name, version_id, created_by, now],
            )
            .unwrap();
        self.conn
            .execute(
                "UPDATE template_versions SET template_id = ?1 WHERE id = ?2",
                params![id, version_id],
            )
            .unwrap();
        Template { id, version_id }
    }

    pub fn workspace(&mut self, owner_id: &str, template: &Template, name: &str) -> String {
        let id = new_id();
        let now = now_micros();
        self.conn
            .execute(
                "INSERT INTO workspaces (id, organization_id, owner_id, template_id, name, \
                 created_at, updated_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6)",
                params![id, self.org_id, owner_id, template.id, name, now],
            )
            .unwrap();
        id
    }

    /// The next build of `workspace_id` (number = previous + 1), with its job.
    pub fn build(
        &mut self,
        workspace_id: &str,
        template: &Template,
        transition: &str,
        initiator: &str,
        facts: JobFacts,
    ) -> Build {
        // One transaction, as kiln writes a build with its job: no reader sees one without the other.
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let id = new_id();
        let input = format!(r#"{{"workspace_build_id":"{id}"}}"#);
        let job_id = self.job("workspace_build", &input, initiator, facts);
        let number: i64 = self
            .conn
            .query_row(
                "SELECT coalesce(max(build_number), 0) + 1 FROM workspace_builds WHERE workspace_id = ?1",
                [workspace_id],
                |r| r.get(0),
            )
            .unwrap();
        let now = now_micros();
        self.conn
            .execute(
                "INSERT INTO workspace_builds (id, workspace_id, template_version_id, build_number, \
                 transition, initiator_id, job_id, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                params![id, workspace_id, template.version_id, number, transition, initiator, job_id, now],
            )
            .unwrap();
        self.conn.execute_batch("COMMIT").unwrap();
        Build { id, job_id }
    }

    /// Marks a job as taken by a worker now.
    pub fn start_job(&self, job_id: &str) {
        let now = now_micros();
        self.conn
            .execute(
                "UPDATE provisioner_jobs SET started_at = ?2, updated_at = ?2 WHERE id = ?1",
                params![job_id, now],
            )
            .unwrap();
    }

    pub fn job_seq(&self, job_id: &str) -> Option<i64> {
        self.conn
            .query_row(
                "SELECT seq FROM provisioner_jobs WHERE id = ?1",
                [job_id],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
    }
}
