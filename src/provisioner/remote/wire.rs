//! The bodies of kiln's provisioner protocol (`docs/provisioners.md`), shared by the server
//! side (`api/provisioners/protocol.rs`) and the daemon (`remote::RemoteQueue`). Byte strings travel as
//! base64.

use crate::domain::provisioner_tags::Tags;
use crate::model::Time;
use crate::model::manifest::Manifest;
use crate::provisioner::logwriter::{SOURCE_DAEMON, SOURCE_PROVISIONER};
use crate::provisioner::queue::{Acquired, BuildWork, DryRunWork, Work};
use crate::store::{BuildCompletion, BuildRow, ImportOutcome, JobRow, LogBatch, NewLog, Timing};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

/// The header every call carries the provisioner key in (Coder's).
pub const KEY_HEADER: &str = "Coder-Provisioner-Daemon-Key";
/// The answer to a call about a job this daemon does not hold (any more).
pub const NOT_HELD: &str = "job is not held by this provisioner";

#[derive(Serialize, Deserialize)]
pub struct RegisterRequest {
    pub name: String,
    #[serde(default)]
    pub tags: Tags,
    #[serde(default)]
    pub version: String,
}

#[derive(Serialize, Deserialize)]
pub struct RegisterResponse {
    pub daemon_id: String,
    pub organization_id: String,
    pub tags: Tags,
    /// The daemon stops a job it could not update for this long (the server fails it then).
    pub lease_ms: u64,
    pub api_version: String,
}

#[derive(Serialize, Deserialize)]
pub struct AcquireRequest {
    pub daemon_id: String,
    /// How long to wait for a job (the server caps it).
    #[serde(default)]
    pub wait_ms: u64,
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(text: &str) -> Result<Vec<u8>, String> {
    B64.decode(text).map_err(|e| format!("bad base64: {e}"))
}

// One per job, moved once: the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireWork {
    Import {
        archive: String,
    },
    Build {
        build: Box<BuildRow>,
        manifest: Option<Manifest>,
        manifest_error: String,
        parameters: Vec<(String, String)>,
        archive: String,
        state: String,
        ttl_ms: Option<i64>,
    },
    DryRun {
        work: Box<DryRunWork>,
    },
    Broken {
        error: String,
    },
}

/// A job handed to a daemon, with everything it needs to run it.
#[derive(Serialize, Deserialize)]
pub struct AcquiredJob {
    pub job: JobRow,
    pub work: WireWork,
    /// The provisioner its template version names (`echo` or `terraform`).
    #[serde(default)]
    pub provisioner: String,
}

impl From<Acquired> for AcquiredJob {
    fn from(a: Acquired) -> AcquiredJob {
        let work = match a.work {
            Work::Import { archive } => WireWork::Import {
                archive: b64(&archive),
            },
            Work::Broken(error) => WireWork::Broken { error },
            Work::DryRun(work) => WireWork::DryRun { work },
            Work::Build(w) => {
                let (manifest, manifest_error) = match w.manifest {
                    Ok(m) => (Some(m), String::new()),
                    Err(e) => (None, e),
                };
                WireWork::Build {
                    build: Box::new(w.build),
                    manifest,
                    manifest_error,
                    parameters: w.parameters,
                    archive: b64(&w.archive),
                    state: b64(&w.state),
                    ttl_ms: w.ttl_ms,
                }
            }
        };
        AcquiredJob {
            job: a.job,
            work,
            provisioner: a.provisioner,
        }
    }
}

impl AcquiredJob {
    pub fn into_acquired(self) -> Result<Acquired, String> {
        let work = match self.work {
            WireWork::Import { archive } => Work::Import {
                archive: unb64(&archive)?,
            },
            WireWork::Broken { error } => Work::Broken(error),
            WireWork::DryRun { work } => Work::DryRun(work),
            WireWork::Build {
                build,
                manifest,
                manifest_error,
                parameters,
                archive,
                state,
                ttl_ms,
            } => Work::Build(Box::new(BuildWork {
                build: *build,
                manifest: manifest.ok_or(manifest_error),
                parameters,
                archive: unb64(&archive)?,
                state: unb64(&state)?,
                ttl_ms,
            })),
        };
        Ok(Acquired {
            job: self.job,
            work,
            provisioner: self.provisioner,
        })
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct WireLog {
    pub created_at: Time,
    pub source: String,
    pub level: String,
    pub stage: String,
    pub output: String,
}

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct WireLogs {
    #[serde(default)]
    pub lines: Vec<WireLog>,
    /// What daemons before the server kept the accounting sent (their log's length so far and
    /// whether it overflowed): read and ignored, and sent as 0 and false. The server keeps the
    /// accounting and applies the cap itself (`domain::log_budget`).
    #[serde(default)]
    pub length: i64,
    #[serde(default)]
    pub overflowed: bool,
}

impl From<&LogBatch> for WireLogs {
    fn from(b: &LogBatch) -> WireLogs {
        WireLogs {
            lines: b
                .lines
                .iter()
                .map(|l| WireLog {
                    created_at: l.created_at,
                    source: l.source.to_string(),
                    level: l.level.clone(),
                    stage: l.stage.clone(),
                    output: l.output.clone(),
                })
                .collect(),
            length: 0,
            overflowed: false,
        }
    }
}

impl WireLogs {
    /// The batch to store; a source other than kiln's two is refused.
    pub fn to_batch(&self) -> Result<LogBatch, String> {
        let mut lines = Vec::with_capacity(self.lines.len());
        for l in &self.lines {
            let source = match l.source.as_str() {
                SOURCE_DAEMON => SOURCE_DAEMON,
                SOURCE_PROVISIONER => SOURCE_PROVISIONER,
                other => return Err(format!("unknown log source {other:?}")),
            };
            if !matches!(
                l.level.as_str(),
                "trace" | "debug" | "info" | "warn" | "error"
            ) {
                return Err(format!("unknown log level {:?}", l.level));
            }
            lines.push(NewLog {
                created_at: l.created_at,
                source,
                level: l.level.clone(),
                stage: l.stage.clone(),
                output: l.output.clone(),
            });
        }
        Ok(LogBatch { lines })
    }
}

#[derive(Serialize, Deserialize)]
pub struct UpdateRequest {
    pub daemon_id: String,
    /// Keep the lease (move the job's heartbeat to now).
    #[serde(default)]
    pub renew: bool,
    #[serde(default)]
    pub logs: WireLogs,
}

/// `held`, `canceled` (stop the work: the job ends canceled) or `lost`.
#[derive(Serialize, Deserialize)]
pub struct UpdateResponse {
    pub state: String,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireResult {
    Import {
        outcome: ImportOutcome,
    },
    /// A dry run that planned its resources (a failed one is a `fail`). The server plans them
    /// again itself, from what it stores, and keeps its own plan.
    DryRun {
        resources: Vec<crate::model::WorkspaceResource>,
    },
    Build {
        error: String,
        new_state: Option<String>,
        resources: Vec<crate::model::WorkspaceResource>,
        ttl_ms: Option<i64>,
        timings: Vec<Timing>,
    },
}

#[derive(Serialize, Deserialize)]
pub struct CompleteRequest {
    pub daemon_id: String,
    pub result: WireResult,
    #[serde(default)]
    pub logs: WireLogs,
}

impl WireResult {
    pub fn build(done: &BuildCompletion) -> WireResult {
        WireResult::Build {
            error: done.error.clone(),
            new_state: done.new_state.as_deref().map(b64),
            resources: done.resources.clone(),
            ttl_ms: done.ttl_ms,
            timings: done.timings.clone(),
        }
    }

    pub fn import(outcome: &ImportOutcome) -> WireResult {
        WireResult::Import {
            outcome: match outcome {
                ImportOutcome::Valid { manifest, readme } => ImportOutcome::Valid {
                    manifest: manifest.clone(),
                    readme: readme.clone(),
                },
                ImportOutcome::Invalid(e) => ImportOutcome::Invalid(e.clone()),
            },
        }
    }
}

/// The build's completion from its wire form.
pub fn build_completion(
    error: String,
    new_state: Option<String>,
    resources: Vec<crate::model::WorkspaceResource>,
    ttl_ms: Option<i64>,
    timings: Vec<Timing>,
) -> Result<BuildCompletion, String> {
    Ok(BuildCompletion {
        error,
        new_state: new_state.as_deref().map(unb64).transpose()?,
        resources,
        ttl_ms,
        timings,
    })
}

#[derive(Serialize, Deserialize)]
pub struct CompleteResponse {
    /// The job's final status.
    pub status: crate::model::JobStatus,
}

#[derive(Serialize, Deserialize)]
pub struct FailRequest {
    pub daemon_id: String,
    pub error: String,
    #[serde(default)]
    pub logs: WireLogs,
}

#[derive(Serialize, Deserialize)]
pub struct ReleaseRequest {
    pub daemon_id: String,
}

/// A protocol call made by a registered daemon: it names itself.
pub trait DaemonCall {
    fn daemon_id(&self) -> &str;
}

macro_rules! daemon_call {
    ($($t:ty),*) => {$(
        impl DaemonCall for $t {
            fn daemon_id(&self) -> &str {
                &self.daemon_id
            }
        }
    )*};
}
daemon_call!(UpdateRequest, CompleteRequest, FailRequest, ReleaseRequest);
