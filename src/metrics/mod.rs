//! Prometheus metrics, at the bottom of the layers: the API, the provisioner and the stores
//! record into `global()` (atomics and, for what happens once per job or commit, the
//! `prometheus-client` types), and `encode()` writes them in the Prometheus text format (0.0.4,
//! what Coder's `/metrics` serves). Names and labels follow Coder's where Coder has the metric;
//! kiln's own start with `kiln_`.

pub mod histogram;
pub mod http;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

pub use prometheus_text::CONTENT_TYPE;

/// Label pairs; every value is one of a bounded set (no ids, tokens or raw paths).
pub type Labels = Vec<(&'static str, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// `coderd_provisioner_job_queue_wait_seconds`'s buckets (Coder's).
const QUEUE_WAIT_BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
];
/// Coder's buckets for job and workspace build timings.
const JOB_BUCKETS: [f64; 8] = [1.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0];
/// kiln's store commit latency.
const COMMIT_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];
const WRITES_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

fn queue_wait_histogram() -> Histogram {
    Histogram::new(QUEUE_WAIT_BUCKETS)
}
fn job_histogram() -> Histogram {
    Histogram::new(JOB_BUCKETS)
}

pub struct Metrics {
    pub http: http::HttpMetrics,
    queue_wait: HistogramFamily,
    jobs_current: Family<Labels, Gauge>,
    job_timings: HistogramFamily,
    num_daemons: Gauge,
    workspace_builds: Family<Labels, Counter>,
    build_timings: HistogramFamily,
    commit_latency: Family<Labels, Histogram, fn() -> Histogram>,
    writes_per_commit: Family<Labels, Histogram, fn() -> Histogram>,
    log_lines_written: Counter,
    log_lines_dropped: Counter,
    live_followers: Gauge,
    uptime: Gauge<f64, std::sync::atomic::AtomicU64>,
    started: Instant,
    /// Counts the store's daemons at each scrape (set by the server once its store is open).
    daemon_counter: std::sync::OnceLock<Box<dyn Fn() -> Option<i64> + Send + Sync>>,
}

fn commit_histogram() -> Histogram {
    Histogram::new(COMMIT_BUCKETS)
}
fn writes_histogram() -> Histogram {
    Histogram::new(WRITES_BUCKETS)
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    http: http::HttpMetrics::new(),
    queue_wait: Family::new_with_constructor(queue_wait_histogram),
    jobs_current: Family::default(),
    job_timings: Family::new_with_constructor(job_histogram),
    num_daemons: Gauge::default(),
    workspace_builds: Family::default(),
    build_timings: Family::new_with_constructor(job_histogram),
    commit_latency: Family::new_with_constructor(commit_histogram),
    writes_per_commit: Family::new_with_constructor(writes_histogram),
    log_lines_written: Counter::default(),
    log_lines_dropped: Counter::default(),
    live_followers: Gauge::default(),
    uptime: Gauge::default(),
    started: Instant::now(),
    daemon_counter: std::sync::OnceLock::new(),
});

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let m = global();
    let mut r = Registry::default();
    r.register_collector(Box::new(http::HttpCollector(&m.http)));
    r.register(
        "coderd_provisioner_job_queue_wait_seconds",
        "Time from job creation to acquisition by a provisioner daemon",
        m.queue_wait.clone(),
    );
    r.register(
        "coderd_provisionerd_jobs_current",
        "The number of currently running provisioner jobs",
        m.jobs_current.clone(),
    );
    r.register(
        "coderd_provisionerd_job_timings_seconds",
        "The provisioner job time duration in seconds",
        m.job_timings.clone(),
    );
    r.register(
        "coderd_provisionerd_num_daemons",
        "The number of provisioner daemons",
        m.num_daemons.clone(),
    );
    r.register(
        "coderd_workspace_builds",
        "The number of workspaces started, updated, or deleted",
        m.workspace_builds.clone(),
    );
    r.register(
        "coderd_provisionerd_workspace_build_timings_seconds",
        "The time taken for a workspace to build",
        m.build_timings.clone(),
    );
    r.register(
        "kiln_store_commit_seconds",
        "Time from the start of a store transaction (or group commit) to its durable commit",
        m.commit_latency.clone(),
    );
    r.register(
        "kiln_store_writes_per_commit",
        "Writes that shared one commit (SQLite's group commit; 1 a transaction on PostgreSQL)",
        m.writes_per_commit.clone(),
    );
    r.register(
        "kiln_job_log_lines_written",
        "Job log lines stored (a line of an overflowing log's tail is stored, then dropped as later lines take its place)",
        m.log_lines_written.clone(),
    );
    r.register(
        "kiln_job_log_lines_dropped",
        "Job log lines dropped by the per-job log cap (--max-job-log-bytes): never stored, or removed from an overflowing log's tail",
        m.log_lines_dropped.clone(),
    );
    r.register(
        "kiln_live_followers",
        "Live followers open now: log follows (NDJSON, SSE, WebSocket), workspace watches and status page event streams",
        m.live_followers.clone(),
    );
    r.register(
        "kiln_uptime_seconds",
        "Seconds since this kiln process started",
        m.uptime.clone(),
    );
    r
});

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// Every metric in the Prometheus text format.
pub fn encode() -> String {
    let m = global();
    m.uptime.set(m.started.elapsed().as_secs_f64());
    if let Some(n) = m.daemon_counter.get().and_then(|count| count()) {
        m.num_daemons.set(n);
    }
    let mut out = String::new();
    let _ = prometheus_text::encode(&mut out, &REGISTRY);
    out
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// What the provisioner metrics need to know of a job.
pub struct JobFacts<'a> {
    /// `workspace_build` or `template_version_import`.
    pub job_type: &'a str,
    /// The provisioner (`echo`, as the template versions say).
    pub provisioner: &'a str,
    /// A build's: `start`, `stop`, `delete`; empty for an import.
    pub transition: &'a str,
    /// A build's reason (`initiator`, `autostart`, ...); empty for an import.
    pub build_reason: &'a str,
}

impl Metrics {
    /// The store's daemons, counted at each scrape.
    pub fn count_daemons_with(&self, count: Box<dyn Fn() -> Option<i64> + Send + Sync>) {
        let _ = self.daemon_counter.set(count);
    }

    /// A worker took a job that was queued for `waited`.
    pub fn job_acquired(&self, job: &JobFacts, waited: Duration) {
        self.queue_wait
            .get_or_create(&labels(&[
                ("provisioner_type", job.provisioner),
                ("job_type", job.job_type),
                ("transition", job.transition),
                ("build_reason", job.build_reason),
            ]))
            .observe(waited.as_secs_f64());
        self.jobs_current
            .get_or_create(&labels(&[("provisioner", job.provisioner)]))
            .inc();
    }

    /// A job ended after `took`: `success` or `failed` (Coder's words; a canceled job failed).
    pub fn job_ended(&self, job: &JobFacts, status: &str, took: Duration) {
        self.jobs_current
            .get_or_create(&labels(&[("provisioner", job.provisioner)]))
            .dec();
        self.job_timings
            .get_or_create(&labels(&[
                ("provisioner", job.provisioner),
                ("status", status),
            ]))
            .observe(took.as_secs_f64());
    }

    /// A workspace build ended: Coder's `coderd_workspace_builds_total` and build timings.
    pub fn build_ended(&self, build: &BuildFacts, status: &str, took: Duration) {
        self.workspace_builds
            .get_or_create(&labels(&[
                ("workspace_owner", build.workspace_owner),
                ("workspace_name", build.workspace_name),
                ("template_name", build.template_name),
                ("template_version", build.template_version),
                ("workspace_transition", build.transition),
                ("status", status),
            ]))
            .inc();
        self.build_timings
            .get_or_create(&labels(&[
                ("template_name", build.template_name),
                ("template_version", build.template_version),
                ("workspace_transition", build.transition),
                ("status", status),
            ]))
            .observe(took.as_secs_f64());
    }

    /// A store commit: which store, how long, how many writes it carried.
    pub fn commit(&self, store: &'static str, took: Duration, writes: usize) {
        let l = vec![("store", store.to_string())];
        self.commit_latency
            .get_or_create(&l)
            .observe(took.as_secs_f64());
        self.writes_per_commit
            .get_or_create(&l)
            .observe(writes as f64);
    }

    pub fn log_lines(&self, written: u64, dropped: u64) {
        if written > 0 {
            self.log_lines_written.inc_by(written);
        }
        if dropped > 0 {
            self.log_lines_dropped.inc_by(dropped);
        }
    }

    /// A live follower is open until the guard drops.
    pub fn follower(&self) -> Follower {
        self.live_followers.inc();
        Follower(())
    }
}

/// What `coderd_workspace_builds_total` labels a build with (names, bounded by what exists).
pub struct BuildFacts<'a> {
    pub workspace_owner: &'a str,
    pub workspace_name: &'a str,
    pub template_name: &'a str,
    pub template_version: &'a str,
    pub transition: &'a str,
}

/// Counts one live follower while it lives.
pub struct Follower(());

impl Drop for Follower {
    fn drop(&mut self) {
        global().live_followers.dec();
    }
}
