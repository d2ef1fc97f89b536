//! The queue seam with real workers, as two processes sharing one database would see it: two
//! SQLite stores on one file, each with its own live-events hub (so no notice crosses between
//! them), and the engine's workers on one of them. What must still cross: a job queued by the
//! other process is taken, and a cancel requested there reaches the running job through its
//! lease check within a second.

use crate::common::world::{World, world};
use kiln::events::Hub;
use kiln::model::JobStatus;
use kiln::provisioner::queue::LocalQueue;
use kiln::provisioner::{Engine, EngineConfig};
use kiln::store::{Durability, Store, sqlite::SqliteStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Farm {
    /// The other process: it queues and cancels; it runs no workers.
    front: Arc<dyn Store>,
    /// The process whose engine runs the jobs.
    runner: Arc<dyn Store>,
    engine: Arc<Engine>,
    world: World,
    _dir: tempfile::TempDir,
}

fn farm(manifest: &str) -> Farm {
    let dir = tempfile::tempdir().unwrap();
    let open = |hub: Arc<Hub>| -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&dir.path().join("kiln.db"), Durability::Normal, hub).unwrap())
    };
    let front = open(Arc::new(Hub::new()));
    let world = world(&*front, manifest);
    let runner_hub = Arc::new(Hub::new());
    let runner = open(runner_hub.clone());
    let queue = Arc::new(LocalQueue::new(runner.clone(), runner_hub));
    let engine = Engine::start(
        queue,
        EngineConfig {
            worker_ids: runner.register_workers("runner", 1).unwrap(),
            data_dir: dir.path().to_path_buf(),
            hung_timeout: Duration::from_secs(300),
            step_user: None,
        },
    );
    Farm {
        front,
        runner,
        engine,
        world,
        _dir: dir,
    }
}

fn wait_status(s: &dyn Store, job: &str, want: JobStatus, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let status = s.job(job).unwrap().unwrap().status();
        if status == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "job still {status:?} after {within:?}, waiting for {want:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_job_queued_by_another_process_is_taken_and_runs() {
    let f = farm(r#"{"steps": {"start": [{"log": "hello"}]}}"#);
    let (_, _, job) = f.world.workspace(&*f.front, "dev");
    // No notice reaches the runner: its idle workers find the job at their next look.
    let took = wait_status(
        &*f.front,
        &job,
        JobStatus::Succeeded,
        Duration::from_secs(5),
    );
    println!("taken and run {took:?} after it was queued elsewhere");
    let logs = f.runner.logs(&job, 0, None, 100).unwrap();
    assert!(logs.iter().any(|l| l.output == "hello"), "{logs:?}");
    f.engine.shutdown(Duration::ZERO);
}

#[test]
fn a_cancel_from_another_process_reaches_the_running_job_within_a_second() {
    let f = farm(r#"{"steps": {"start": [{"sleep_ms": 30000}]}}"#);
    let (_, _, job) = f.world.workspace(&*f.front, "dev");
    wait_status(&*f.front, &job, JobStatus::Running, Duration::from_secs(5));
    let asked = Instant::now();
    assert_eq!(
        f.front.cancel_job(&job, None).unwrap(),
        Ok(kiln::domain::CancelAction::StopRunning)
    );
    let took = wait_status(&*f.front, &job, JobStatus::Canceled, Duration::from_secs(5));
    println!("canceled {took:?} after the request");
    // The lease is looked at every second; allow for a loaded machine.
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    let logs = f.front.logs(&job, 0, None, 100).unwrap();
    assert_eq!(
        logs.last().unwrap().output,
        "The build was canceled: its work was stopped."
    );
    f.engine.shutdown(Duration::ZERO);
}

#[test]
fn a_cancel_in_the_same_process_stops_the_job_at_once() {
    let f = farm(r#"{"steps": {"start": [{"sleep_ms": 30000}]}}"#);
    let (_, _, job) = f.world.workspace(&*f.runner, "dev");
    wait_status(&*f.runner, &job, JobStatus::Running, Duration::from_secs(5));
    let asked = Instant::now();
    f.runner.cancel_job(&job, None).unwrap().unwrap();
    wait_status(
        &*f.runner,
        &job,
        JobStatus::Canceled,
        Duration::from_secs(5),
    );
    let took = asked.elapsed();
    println!("canceled {took:?} after the request (notice)");
    // The notice wakes the worker; no lease check (1 s) is needed.
    assert!(took < Duration::from_millis(800), "{took:?}");
    f.engine.shutdown(Duration::ZERO);
}
