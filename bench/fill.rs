//! Fills a kiln database through kiln's own store code (`kiln::store::Store`, the same calls
//! the API and the workers make), many threads at once so that the store's group commit puts
//! many builds in each transaction: users, workspaces, builds that ran (each with its log
//! lines), and builds left pending. Nothing here writes SQL.

use kiln::model::{Time, Transition, new_id};
use kiln::store::{
    BuildCompletion, CreateBuildOutcome, LogBatch, NewBuild, NewLog, NewUser, NewWorkspace, Store,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// How much to write (`full()` is the year of data).
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub users: usize,
    pub workspaces: usize,
    /// Builds in all, `pending` of them left in the queue; `focus_builds` of them in the
    /// measured workspace.
    pub builds: usize,
    pub pending: usize,
    pub focus_builds: usize,
    pub lines_per_build: usize,
}

impl Sizes {
    pub fn scaled(fraction: f64) -> Sizes {
        let n = |full: f64| ((full * fraction).round() as usize).max(1);
        Sizes {
            users: n(1_000.0),
            workspaces: n(100_000.0),
            builds: n(1_000_000.0),
            pending: n(10_000.0),
            focus_builds: n(5_000.0),
            lines_per_build: 10,
        }
    }
}

/// What the fill builds on: the measured workspace and what every new build points at.
#[derive(Clone)]
pub struct Base {
    pub organization_id: String,
    pub template_id: String,
    pub version_id: String,
    pub file_id: String,
    /// The bench user (owner of the measured workspace and of its share of the others).
    pub owner_id: String,
    pub focus_workspace: String,
}

const THREADS: usize = 8;

fn build<'a>(
    ids: &'a (String, String),
    ws: &'a str,
    base: &'a Base,
    transition: Transition,
    initiator: &'a str,
    previous: Option<i64>,
) -> NewBuild<'a> {
    NewBuild {
        id: &ids.0,
        job_id: &ids.1,
        workspace_id: ws,
        organization_id: &base.organization_id,
        template_version_id: &base.version_id,
        file_id: &base.file_id,
        transition,
        initiator_id: initiator,
        reason: "initiator",
        orphan: false,
        state: None,
        parameters: &[],
        log_level: "info",
        previous_number: previous,
        on_success: None,
    }
}

fn lines(n: usize) -> LogBatch {
    let lines: Vec<NewLog> = (0..n)
        .map(|i| NewLog {
            created_at: Time::now(),
            source: "provisioner",
            level: "info".into(),
            stage: "Applying".into(),
            output: format!("step output line {i}: nothing to change"),
        })
        .collect();
    LogBatch { lines }
}

/// Runs the oldest pending job to success as `worker` (the workers' own calls); false when
/// none was taken (none pending, or, on PostgreSQL, the only one locked by another taker).
fn run_one(store: &dyn Store, worker: &str, lines_per_build: usize) -> bool {
    let Some(job) = store.take_next_job(worker).expect("take a job") else {
        return false;
    };
    store
        .complete_build(
            &job.id,
            worker,
            &BuildCompletion::default(),
            &lines(lines_per_build),
        )
        .expect("complete a build");
    true
}

/// Queues the next build of `ws` (numbered after `previous`), retrying while the one before is
/// still pending or being completed by another thread (and running pending jobs meanwhile, as
/// `worker`, so that none is left behind); returns its number. No `worker`: just wait.
fn next_build(
    store: &dyn Store,
    ws: &str,
    base: &Base,
    initiator: &str,
    previous: i64,
    transition: Transition,
    worker: Option<(&str, usize)>,
) -> i64 {
    let since = Instant::now();
    loop {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "workspace {ws}: build #{previous} stayed active for a minute"
        );
        let ids = (new_id(), new_id());
        match store
            .create_build(&build(
                &ids,
                ws,
                base,
                transition,
                initiator,
                Some(previous),
            ))
            .expect("create a build")
        {
            CreateBuildOutcome::Created { build_number } => return build_number,
            CreateBuildOutcome::ActiveBuild => {
                if !worker.is_some_and(|(w, lines)| run_one(store, w, lines)) {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
}

fn flip(t: Transition) -> Transition {
    if t == Transition::Start {
        Transition::Stop
    } else {
        Transition::Start
    }
}

/// Fills `store` (whose server is stopped) with `sizes` of data on top of `base`.
pub fn fill(store: Arc<dyn Store>, base: &Base, sizes: Sizes) {
    let started = Instant::now();
    let workers = store
        .register_workers("bench-fill", THREADS)
        .expect("register the fill's workers");
    // Users: the bench user owns a share of the workspaces too.
    let mut users = vec![base.owner_id.clone()];
    for i in 0..sizes.users.saturating_sub(1) {
        let id = new_id();
        store
            .create_user(
                &NewUser {
                    id: id.clone(),
                    email: format!("user{i}@scale.example.com"),
                    username: format!("user{i}"),
                    name: format!("User {i}"),
                    hashed_password: String::new(),
                    login_type: "password".into(),
                    roles: vec![],
                },
                std::slice::from_ref(&base.organization_id),
            )
            .expect("create a user");
        users.push(id);
    }
    let others = sizes.workspaces.saturating_sub(1);
    let other_builds = sizes.builds.saturating_sub(sizes.focus_builds);
    let per_workspace = (other_builds / others.max(1)).max(1);
    println!(
        "   fill: {} users, {others} workspaces of {per_workspace} builds, {} builds in the measured workspace, \
         {} lines a build, then {} pending builds",
        users.len(),
        sizes.focus_builds,
        sizes.lines_per_build,
        sizes.pending
    );
    let done = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let users = Arc::new(users);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, base, done, barrier, users) = (
                store.clone(),
                base.clone(),
                done.clone(),
                barrier.clone(),
                users.clone(),
            );
            let worker = workers[t].clone();
            std::thread::spawn(move || {
                let mut last: Vec<(String, String, i64, Transition)> = Vec::new();
                if t == 0 {
                    // The measured workspace: its builds one after another.
                    let latest = store
                        .latest_build(&base.focus_workspace)
                        .expect("read the measured workspace")
                        .expect("the measured workspace has a build");
                    let (mut n, mut tr) = (latest.build_number, latest.transition);
                    for _ in 0..sizes.focus_builds {
                        tr = flip(tr);
                        n = next_build(
                            &*store,
                            &base.focus_workspace,
                            &base,
                            &base.owner_id,
                            n,
                            tr,
                            Some((&worker, sizes.lines_per_build)),
                        );
                        run_one(&*store, &worker, sizes.lines_per_build);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
                for i in (t..others).step_by(THREADS) {
                    let owner = &users[i % users.len()];
                    let ws = new_id();
                    let ids = (new_id(), new_id());
                    store
                        .create_workspace(
                            &NewWorkspace {
                                id: &ws,
                                organization_id: &base.organization_id,
                                owner_id: owner,
                                template_id: &base.template_id,
                                name: &format!("ws-{i}"),
                                ttl_ms: None,
                                autostart_schedule: None,
                                automatic_updates: "never",
                            },
                            &build(&ids, &ws, &base, Transition::Start, owner, None),
                        )
                        .expect("create a workspace");
                    run_one(&*store, &worker, sizes.lines_per_build);
                    let (mut n, mut tr) = (1, Transition::Start);
                    for _ in 1..per_workspace {
                        tr = flip(tr);
                        n = next_build(
                            &*store,
                            &ws,
                            &base,
                            owner,
                            n,
                            tr,
                            Some((&worker, sizes.lines_per_build)),
                        );
                        run_one(&*store, &worker, sizes.lines_per_build);
                    }
                    done.fetch_add(per_workspace, Ordering::Relaxed);
                    last.push((ws, owner.clone(), n, tr));
                }
                // Nothing of this thread's is left pending (a job another taker had locked when
                // this one looked is run now), then the queue is filled, and nobody takes from it.
                while run_one(&*store, &worker, sizes.lines_per_build) {}
                barrier.wait();
                last
            })
        })
        .collect();
    let progress = {
        let done = done.clone();
        let total = sizes.focus_builds + others * per_workspace;
        std::thread::spawn(move || {
            while done.load(Ordering::Relaxed) < total {
                std::thread::sleep(Duration::from_secs(15));
                let d = done.load(Ordering::Relaxed);
                println!(
                    "   fill: {d} of {total} builds after {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
        })
    };
    barrier.wait();
    let mut lasts: Vec<(String, String, i64, Transition)> = Vec::new();
    for h in handles {
        lasts.extend(h.join().expect("a fill thread"));
    }
    let _ = progress.join();
    // The pending builds, spread over workspaces (several threads: group commit again).
    let lasts = Arc::new(lasts);
    let pending: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, base, lasts) = (store.clone(), base.clone(), lasts.clone());
            std::thread::spawn(move || {
                for (ws, owner, n, tr) in lasts
                    .iter()
                    .skip(t)
                    .step_by(THREADS)
                    .take(sizes.pending / THREADS + usize::from(t < sizes.pending % THREADS))
                {
                    next_build(&*store, ws, &base, owner, *n, flip(*tr), None);
                }
            })
        })
        .collect();
    for p in pending {
        p.join().expect("a pending-build thread");
    }
    println!(
        "   fill: done in {:.1} s; {} jobs pending",
        started.elapsed().as_secs_f64(),
        store.pending_job_count().expect("count the queue")
    );
}
