//! The store contract: the same cases run against every implementation of `kiln::store::Store`:
//! SQLite and PostgreSQL, each as one instance and as two instances on one database (the way
//! two processes, or two servers, share it). Each case is a plain function over a `Pair` of
//! stores on one database; `contract!` runs them all for a backend. The PostgreSQL cases run
//! with `KILN_TEST_STORE=postgres` (a throwaway cluster, `tests/common/pg.rs`), as CI does.

use crate::common::world::{lines, succeed, user, world};
use kiln::domain::{CancelAction, CancelRefusal};
use kiln::events::{Hub, Topic};
use kiln::model::{JobStatus, Time, Transition, WorkspaceResource, new_id};
use kiln::store::{
    BuildCompletion, CreateBuildOutcome, LeaseState, LogBatch, NewApiKey, NewFile, Stale, Store,
    StoreError,
};
use std::collections::HashSet;
use std::sync::{Arc, Barrier};

/// Two stores on one database (possibly the same instance twice), each with its own hub.
struct Pair {
    a: Arc<dyn Store>,
    b: Arc<dyn Store>,
    hub_a: Arc<Hub>,
    _dir: tempfile::TempDir,
}

trait Backend {
    /// `None`: the backend is not available in this run.
    fn pair() -> Option<Pair>;
}

/// One SQLite store, used as both of the pair.
struct Sqlite;
/// Two SQLite stores on one file: two writers, each with its own commits.
struct SqliteTwice;

fn sqlite(dir: &tempfile::TempDir, hub: &Arc<Hub>) -> Arc<dyn Store> {
    Arc::new(
        kiln::store::sqlite::SqliteStore::open(
            &dir.path().join("kiln.db"),
            kiln::store::Durability::Normal,
            hub.clone(),
        )
        .unwrap(),
    )
}

impl Backend for Sqlite {
    fn pair() -> Option<Pair> {
        let dir = tempfile::tempdir().unwrap();
        let hub_a = Arc::new(Hub::new());
        let a = sqlite(&dir, &hub_a);
        Some(Pair {
            b: a.clone(),
            a,
            hub_a,
            _dir: dir,
        })
    }
}

impl Backend for SqliteTwice {
    fn pair() -> Option<Pair> {
        let dir = tempfile::tempdir().unwrap();
        let hub_a = Arc::new(Hub::new());
        let a = sqlite(&dir, &hub_a);
        let b = sqlite(&dir, &Arc::new(Hub::new()));
        Some(Pair {
            a,
            b,
            hub_a,
            _dir: dir,
        })
    }
}

/// One PostgreSQL store on a fresh database, used as both of the pair.
struct Postgres;
/// Two PostgreSQL stores on one database, as two servers: each with its own pool and hub, the
/// notices crossing between them by LISTEN/NOTIFY.
struct PostgresTwice;

fn postgres(database: &str, hub: &Arc<Hub>) -> Arc<dyn Store> {
    Arc::new(kiln::store::postgres::PgStore::open(database, hub.clone()).unwrap())
}

fn postgres_pair(two: bool) -> Option<Pair> {
    if !crate::common::postgres_mode() {
        eprintln!("skipped: the PostgreSQL store runs with KILN_TEST_STORE=postgres");
        return None;
    }
    let database = crate::common::pg::fresh_database();
    let hub_a = Arc::new(Hub::new());
    let a = postgres(&database, &hub_a);
    let b = if two {
        postgres(&database, &Arc::new(Hub::new()))
    } else {
        a.clone()
    };
    Some(Pair {
        a,
        b,
        hub_a,
        _dir: tempfile::tempdir().unwrap(),
    })
}

impl Backend for Postgres {
    fn pair() -> Option<Pair> {
        postgres_pair(false)
    }
}

impl Backend for PostgresTwice {
    fn pair() -> Option<Pair> {
        postgres_pair(true)
    }
}

fn numbering_races(p: Pair) {
    let w = world(&*p.a, "{}");
    let (ws, _, first_job) = w.workspace(&*p.a, "dev");
    p.a.take_next_job("w").unwrap().unwrap();
    assert_eq!(succeed(&*p.a, &first_job, "w"), JobStatus::Succeeded);
    // Twenty requests that all saw build 1 as the latest, half through each store.
    let barrier = Arc::new(Barrier::new(20));
    let world = Arc::new(w);
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let s = if i % 2 == 0 { p.a.clone() } else { p.b.clone() };
            let (barrier, world, ws) = (barrier.clone(), world.clone(), ws.clone());
            std::thread::spawn(move || {
                let (id, job) = (new_id(), new_id());
                barrier.wait();
                s.create_build(&world.build(&id, &job, &ws, Some(1)))
                    .unwrap()
            })
        })
        .collect();
    let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let created: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, CreateBuildOutcome::Created { .. }))
        .collect();
    assert_eq!(created, [&CreateBuildOutcome::Created { build_number: 2 }]);
    let numbers: Vec<i64> =
        p.a.builds(&ws, None, None, 0, 0)
            .unwrap()
            .iter()
            .map(|b| b.build_number)
            .collect();
    assert_eq!(numbers, [2, 1], "unique and gap-free");
    // The active build refuses the next; a caller that saw an older latest is refused too.
    let (id, job) = (new_id(), new_id());
    assert_eq!(
        p.b.create_build(&world.build(&id, &job, &ws, Some(2)))
            .unwrap(),
        CreateBuildOutcome::ActiveBuild
    );
    let second = p.a.latest_build(&ws).unwrap().unwrap();
    p.a.take_next_job("w").unwrap().unwrap();
    succeed(&*p.a, &second.job.id, "w");
    assert_eq!(
        p.b.create_build(&world.build(&id, &job, &ws, Some(1)))
            .unwrap(),
        CreateBuildOutcome::ActiveBuild
    );
    assert_eq!(
        p.b.create_build(&world.build(&id, &job, &ws, Some(2)))
            .unwrap(),
        CreateBuildOutcome::Created { build_number: 3 }
    );
    // A refused build left nothing behind: its job was never queued.
    assert_eq!(p.a.pending_job_count().unwrap(), 1);
}

fn acquisition_by_several_workers(p: Pair) {
    let w = world(&*p.a, "{}");
    let mut jobs = HashSet::new();
    for i in 0..40 {
        jobs.insert(w.workspace(&*p.a, &format!("w{i}")).2);
    }
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let s = if n % 2 == 0 { p.a.clone() } else { p.b.clone() };
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let worker = format!("worker-{n}");
                barrier.wait();
                let mut taken = Vec::new();
                while let Some(job) = s.take_next_job(&worker).unwrap() {
                    assert_eq!(job.worker_id.as_deref(), Some(worker.as_str()));
                    assert_eq!(job.status(), JobStatus::Running);
                    taken.push(job.id);
                }
                taken
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.join().unwrap());
    }
    assert_eq!(all.len(), 40, "every job taken once");
    assert_eq!(all.into_iter().collect::<HashSet<_>>(), jobs);
    assert_eq!(p.a.pending_job_count().unwrap(), 0);
}

fn queue_order_and_positions(p: Pair) {
    let w = world(&*p.a, "{}");
    let jobs: Vec<_> = (0..3)
        .map(|i| w.workspace(&*p.a, &format!("w{i}")).2)
        .collect();
    let positions: Vec<_> = jobs
        .iter()
        .map(|j| {
            let job = p.b.job(j).unwrap().unwrap();
            p.b.queue_position(&job).unwrap()
        })
        .collect();
    assert_eq!(positions, [(1, 3), (2, 3), (3, 3)]);
    let first = p.b.take_next_job("w").unwrap().unwrap();
    assert_eq!(first.id, jobs[0], "oldest first");
    assert_eq!(p.a.queue_position(&first).unwrap(), (0, 0));
    let last = p.a.job(&jobs[2]).unwrap().unwrap();
    assert_eq!(p.a.queue_position(&last).unwrap(), (2, 2));
    // A job given back goes to the head of the queue again.
    p.b.release_job(&first.id, "someone-else").unwrap();
    assert_eq!(
        p.a.pending_job_count().unwrap(),
        2,
        "only its holder gives it back"
    );
    p.b.release_job(&first.id, "w").unwrap();
    assert_eq!(p.a.take_next_job("v").unwrap().unwrap().id, jobs[0]);
}

fn cancel_of_a_pending_job(p: Pair) {
    let w = world(&*p.a, "{}");
    let (_, _, job) = w.workspace(&*p.a, "dev");
    assert_eq!(
        p.b.cancel_job(&job, Some(JobStatus::Running)).unwrap(),
        Err(CancelRefusal::NotExpected)
    );
    assert_eq!(
        p.b.cancel_job(&job, Some(JobStatus::Pending)).unwrap(),
        Ok(CancelAction::CancelPending)
    );
    assert_eq!(
        p.a.job(&job).unwrap().unwrap().status(),
        JobStatus::Canceled
    );
    assert!(p.a.take_next_job("w").unwrap().is_none(), "never taken");
    assert_eq!(
        p.a.cancel_job(&job, None).unwrap(),
        Err(CancelRefusal::AlreadyCompleted)
    );
    assert_eq!(p.a.cancel_job("nope", None), Err(StoreError::NotFound));
}

fn cancel_of_a_running_job(p: Pair) {
    let w = world(&*p.a, "{}");
    let (ws, _, job) = w.workspace(&*p.a, "dev");
    p.a.take_next_job("w").unwrap().unwrap();
    assert_eq!(p.a.heartbeat(&job, "w", true).unwrap(), LeaseState::Held);
    let cancel_notice = p.hub_a.subscribe(&Topic::Cancel(job.clone()));
    assert_eq!(
        p.b.cancel_job(&job, Some(JobStatus::Pending)).unwrap(),
        Err(CancelRefusal::NotExpected)
    );
    assert_eq!(
        p.a.cancel_job(&job, Some(JobStatus::Running)).unwrap(),
        Ok(CancelAction::StopRunning)
    );
    assert!(cancel_notice.has_changed(), "the holder's process is told");
    // Its worker learns it from its lease, wherever it runs; nobody else holds the job.
    assert_eq!(
        p.b.heartbeat(&job, "w", false).unwrap(),
        LeaseState::CancelRequested
    );
    assert_eq!(
        p.b.heartbeat(&job, "other", false).unwrap(),
        LeaseState::Lost
    );
    assert_eq!(
        p.a.job(&job).unwrap().unwrap().status(),
        JobStatus::Canceling
    );
    assert_eq!(
        p.b.cancel_job(&job, None).unwrap(),
        Err(CancelRefusal::AlreadyCanceling)
    );
    p.b.set_build_state(&p.a.latest_build(&ws).unwrap().unwrap().id, b"before")
        .unwrap();
    let done = BuildCompletion {
        new_state: Some(b"after".to_vec()),
        ..Default::default()
    };
    let status = p.b.complete_build(&job, "w", &done, &LogBatch::default());
    assert_eq!(status, Ok(Some(JobStatus::Canceled)));
    let build = p.a.latest_build(&ws).unwrap().unwrap();
    assert_eq!(
        p.a.build_state(&build.id).unwrap(),
        b"before",
        "a canceled build keeps its state"
    );
}

fn leases_expire_and_only_then_are_given_up(p: Pair) {
    let w = world(&*p.a, "{}");
    let (_, _, job) = w.workspace(&*p.a, "dev");
    p.a.take_next_job("alive").unwrap().unwrap();
    assert_eq!(
        p.a.heartbeat(&job, "alive", true).unwrap(),
        LeaseState::Held
    );
    let long_ago = Time::now().plus_millis(-3_600_000);
    assert!(p.b.stale_jobs(long_ago).unwrap().is_empty());
    // Neither an old cutoff nor another holder's name takes a live worker's job.
    assert!(
        !p.b.abandon_job(&job, Stale::HeartbeatBefore(long_ago), "hung")
            .unwrap()
    );
    assert!(
        !p.b.abandon_job(&job, Stale::HeldBy("someone-else"), "gone")
            .unwrap()
    );
    assert_eq!(
        p.a.heartbeat(&job, "alive", false).unwrap(),
        LeaseState::Held
    );
    // Once its heartbeat is older than the cutoff, the lease has expired.
    let later = Time::now().plus_millis(1000);
    assert_eq!(p.b.stale_jobs(later).unwrap().len(), 1);
    assert!(
        p.b.abandon_job(&job, Stale::HeartbeatBefore(later), "hung")
            .unwrap()
    );
    let failed = p.a.job(&job).unwrap().unwrap();
    assert_eq!(failed.status(), JobStatus::Failed);
    assert_eq!(failed.error, "hung");
    // Its old holder can write nothing more.
    assert_eq!(
        p.a.heartbeat(&job, "alive", true).unwrap(),
        LeaseState::Lost
    );
    assert_eq!(
        p.a.append_logs(&job, "alive", &lines(&["late"])).unwrap(),
        LeaseState::Lost
    );
    assert_eq!(
        p.a.complete_build(
            &job,
            "alive",
            &BuildCompletion::default(),
            &LogBatch::default()
        ),
        Ok(None)
    );
    let logs = p.b.logs(&job, 0, None, 100).unwrap();
    assert_eq!(logs.len(), 1, "only the error line: {logs:?}");
    assert_eq!(
        (logs[0].level.as_str(), logs[0].output.as_str()),
        ("error", "hung")
    );
}

fn pending_jobs_nobody_takes_are_given_up(p: Pair) {
    let w = world(&*p.a, "{}");
    let (_, _, waiting) = w.workspace(&*p.a, "waiting");
    let (_, _, second) = w.workspace(&*p.a, "second");
    let long_ago = Time::now().plus_millis(-3_600_000);
    assert!(p.b.pending_jobs_queued_before(long_ago).unwrap().is_empty());
    assert!(
        !p.b.abandon_job(&waiting, Stale::QueuedBefore(long_ago), "late")
            .unwrap()
    );
    let later = Time::now().plus_millis(1000);
    let taken = p.a.take_next_job("w").unwrap().unwrap();
    assert_eq!(taken.id, waiting);
    // A job a worker took is no longer pending, however old.
    assert!(
        !p.b.abandon_job(&waiting, Stale::QueuedBefore(later), "late")
            .unwrap()
    );
    let queued: Vec<_> = p.b.pending_jobs_queued_before(later).unwrap();
    assert_eq!(
        queued.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        [second.as_str()]
    );
    assert!(
        p.b.abandon_job(&second, Stale::QueuedBefore(later), "late")
            .unwrap()
    );
    let failed = p.a.job(&second).unwrap().unwrap();
    assert_eq!(
        (failed.status(), failed.error.as_str()),
        (JobStatus::Failed, "late")
    );
    assert!(p.a.take_next_job("w").unwrap().is_none());
    assert_eq!(
        p.a.job(&waiting).unwrap().unwrap().status(),
        JobStatus::Running
    );
}

fn a_restarted_server_gives_up_its_own_jobs_only(p: Pair) {
    let w = world(&*p.a, "{}");
    let mine = p.a.register_workers("server-a", 2).unwrap();
    let theirs = p.b.register_workers("server-b", 1).unwrap();
    assert_eq!(
        p.a.register_workers("server-a", 2).unwrap(),
        mine,
        "stable across restarts"
    );
    assert_eq!(mine.len(), 2);
    assert!(!mine.contains(&theirs[0]));
    // What `coderd_provisionerd_num_daemons` shows: every server's workers, once each.
    assert_eq!(p.a.daemon_count().unwrap(), 3);
    assert_eq!(p.b.daemon_count().unwrap(), 3);
    let (_, _, j1) = w.workspace(&*p.a, "one");
    let (_, _, j2) = w.workspace(&*p.a, "two");
    p.a.take_next_job(&mine[1]).unwrap().unwrap();
    p.b.take_next_job(&theirs[0]).unwrap().unwrap();
    let held: Vec<_> = p.a.jobs_of_server("server-a").unwrap();
    assert_eq!(
        held.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        [j1.as_str()]
    );
    assert!(
        p.a.abandon_job(&j1, Stale::HeldBy(&mine[1]), "restarted")
            .unwrap()
    );
    assert_eq!(p.b.job(&j2).unwrap().unwrap().status(), JobStatus::Running);
    assert!(p.a.jobs_of_server("server-a").unwrap().is_empty());
}

fn expired_keys_and_silent_daemons_are_purged_as_coders_dbpurge(p: Pair) {
    let w = world(&*p.a, "{}");
    let now = Time::now();
    for (id, expires_at) in [
        ("expired", now.plus_millis(-10_000)),
        ("live", now.plus_millis(3_600_000)),
    ] {
        p.a.insert_api_key(&NewApiKey {
            id,
            hashed_secret: b"secret",
            user_id: &w.user,
            login_type: "password",
            expires_at,
            token_name: "",
            lifetime_seconds: 3600,
            scope: "all",
        })
        .unwrap();
    }
    assert_eq!(
        p.b.purge_expired_api_keys(now.plus_millis(-1_000)).unwrap(),
        1
    );
    assert!(p.a.api_key_with_user("expired").unwrap().is_none());
    assert!(p.a.api_key_with_user("live").unwrap().is_some());
    let mine = p.a.register_workers("server-a", 1).unwrap();
    let theirs = p.b.register_workers("server-b", 1).unwrap();
    let long_ago = Time::now().plus_millis(-60_000);
    assert_eq!(p.a.purge_old_daemons(long_ago, "server-a").unwrap(), 0);
    // Both last seen before a cutoff to come: only the other server's worker goes.
    let to_come = Time::now().plus_millis(1_000);
    assert_eq!(p.a.purge_old_daemons(to_come, "server-a").unwrap(), 1);
    assert!(p.b.daemon(&mine[0]).unwrap().is_some());
    assert!(p.b.daemon(&theirs[0]).unwrap().is_none());
}

fn log_cursors(p: Pair) {
    let w = world(&*p.a, "{}");
    let (_, _, job) = w.workspace(&*p.a, "dev");
    p.a.take_next_job("w").unwrap().unwrap();
    let notice = p.hub_a.subscribe(&Topic::Logs(job.clone()));
    let texts: Vec<String> = (0..25).map(|i| format!("line {i}")).collect();
    for chunk in texts.chunks(10) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let store = if chunk[0] == "line 10" { &p.b } else { &p.a };
        assert_eq!(
            store.append_logs(&job, "w", &lines(&refs)).unwrap(),
            LeaseState::Held
        );
    }
    assert!(notice.has_changed(), "followers are told");
    // Pages of 7 from a cursor: every line once, in order.
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = p.b.logs(&job, after, None, 7).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.windows(2).all(|w| w[0].id < w[1].id));
        after = page.last().unwrap().id;
        seen.extend(page.into_iter().map(|l| l.output));
    }
    assert_eq!(seen, texts);
    let all = p.a.logs(&job, 0, None, 100).unwrap();
    let (third, tenth) = (all[2].id, all[9].id);
    let between = p.a.logs(&job, third, Some(tenth), 100).unwrap();
    let outputs: Vec<_> = between.iter().map(|l| l.output.as_str()).collect();
    assert_eq!(
        outputs,
        ["line 3", "line 4", "line 5", "line 6", "line 7", "line 8"]
    );
    // The completion's last lines come after every earlier one.
    let done = BuildCompletion {
        error: "boom".into(),
        ..Default::default()
    };
    let status = p.b.complete_build(&job, "w", &done, &lines(&["last"]));
    assert_eq!(status, Ok(Some(JobStatus::Failed)));
    let tail: Vec<_> = p.a.logs(&job, after, None, 10).unwrap();
    let tail: Vec<_> = tail
        .iter()
        .map(|l| (l.level.as_str(), l.output.as_str()))
        .collect();
    assert_eq!(tail, [("info", "last"), ("error", "boom")]);
}

fn first_user_and_file_races(p: Pair) {
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = [p.a.clone(), p.b.clone()]
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                s.create_first_user(&user(&new_id(), &format!("first{i}")), &new_id())
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(StoreError::Conflict(_))))
    );
    assert_eq!(p.a.user_count().unwrap(), 1);
    let uid = p.a.list_users().unwrap()[0].id.clone();
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = [p.a.clone(), p.b.clone()]
        .into_iter()
        .map(|s| {
            let (barrier, uid) = (barrier.clone(), uid.clone());
            std::thread::spawn(move || {
                barrier.wait();
                s.insert_file(&NewFile {
                    id: &new_id(),
                    hash: "same",
                    mimetype: "application/x-tar",
                    data: b"same bytes",
                    created_by: &uid,
                })
                .unwrap()
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(results[0].0, results[1].0, "one file for the same bytes");
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
}

fn writes_publish_their_notices(p: Pair) {
    let queued = p.hub_a.subscribe(&Topic::Queue);
    let overview = p.hub_a.subscribe(&Topic::Overview);
    let w = world(&*p.a, "{}");
    assert!(
        queued.take_change() && overview.take_change(),
        "the import was queued"
    );
    let (ws, _, job) = w.workspace(&*p.a, "dev");
    assert!(queued.take_change(), "a build was queued");
    p.a.take_next_job("w").unwrap().unwrap();
    assert!(overview.take_change(), "a job started");
    let builds = p.hub_a.subscribe(&Topic::Builds);
    let build = p.a.latest_build(&ws).unwrap().unwrap();
    p.a.set_build_state(&build.id, b"s").unwrap();
    assert!(builds.has_changed(), "a build's state changed");
    succeed(&*p.a, &job, "w");
    assert!(overview.take_change(), "a job completed");
    assert!(!queued.has_changed());
}

/// A worker's build ends and its next job is taken by one call: both happen, the take as
/// `take_next_job` would make it, and the end stands apart from the take.
fn a_completion_takes_the_next_job(p: Pair) {
    let w = world(&*p.a, "{}");
    let (_, _, first) = w.workspace(&*p.a, "one");
    let (_, _, second) = w.workspace(&*p.a, "two");
    assert_eq!(p.a.take_next_job("w").unwrap().unwrap().id, first);
    let done = BuildCompletion::default();
    let (status, next) =
        p.b.complete_build_and_take(&first, "w", &done, &lines(&["last"]))
            .unwrap();
    assert_eq!(status, Some(JobStatus::Succeeded));
    let next = next.expect("the pending job is taken");
    assert_eq!(next.id, second);
    assert_eq!(next.worker_id.as_deref(), Some("w"));
    assert_eq!(
        p.a.job(&first).unwrap().unwrap().status(),
        JobStatus::Succeeded
    );
    assert_eq!(
        p.a.job(&second).unwrap().unwrap().status(),
        JobStatus::Running
    );
    assert_eq!(
        p.a.heartbeat(&second, "w", false).unwrap(),
        LeaseState::Held
    );
    assert!(p.a.take_next_job("other").unwrap().is_none(), "taken once");
    // Nothing pending: the build ends, nothing is taken.
    let (status, next) =
        p.b.complete_build_and_take(&second, "w", &done, &LogBatch::default())
            .unwrap();
    assert_eq!(
        (status, next.map(|j| j.id)),
        (Some(JobStatus::Succeeded), None)
    );
    // A job the worker no longer holds is not ended, and the take still happens.
    let (_, _, third) = w.workspace(&*p.a, "three");
    let (status, next) =
        p.b.complete_build_and_take(&second, "w", &done, &LogBatch::default())
            .unwrap();
    assert_eq!((status, next.map(|j| j.id)), (None, Some(third)));
}

/// The reads of a page (the latest builds of many workspaces, the resources of many jobs)
/// agree with the reads of one.
fn batched_reads_agree_with_single_ones(p: Pair) {
    let w = world(&*p.a, "{}");
    let (one, _, first) = w.workspace(&*p.a, "one");
    let (two, _, second) = w.workspace(&*p.a, "two");
    let resource = |job: &str, name: &str| WorkspaceResource {
        id: new_id(),
        created_at: Time::now(),
        job_id: job.to_string(),
        workspace_transition: Transition::Start,
        kind: "null_resource".into(),
        name: name.into(),
        hide: false,
        icon: String::new(),
        agents: vec![],
        metadata: vec![],
        daily_cost: 0,
    };
    for job in [&first, &second] {
        assert_eq!(p.a.take_next_job("w").unwrap().unwrap().id, *job);
        let done = BuildCompletion {
            resources: vec![resource(job, "b"), resource(job, "a")],
            ..BuildCompletion::default()
        };
        p.a.complete_build(job, "w", &done, &LogBatch::default())
            .unwrap();
    }
    // `one` gets a second build, still pending: it is the latest.
    let (id, job) = (new_id(), new_id());
    p.a.create_build(&w.build(&id, &job, &one, Some(1)))
        .unwrap();
    let mut latest: Vec<(String, i64, String)> =
        p.b.latest_builds(&[one.as_str(), two.as_str(), "no-such-workspace"])
            .unwrap()
            .into_iter()
            .map(|b| (b.workspace_id, b.build_number, b.id))
            .collect();
    latest.sort();
    let mut single: Vec<(String, i64, String)> = [&one, &two]
        .iter()
        .map(|ws| {
            let b = p.a.latest_build(ws).unwrap().unwrap();
            (b.workspace_id, b.build_number, b.id)
        })
        .collect();
    single.sort();
    assert_eq!(latest, single);
    let number_of = |ws: &str| latest.iter().find(|l| l.0 == ws).map(|l| l.1);
    assert_eq!((number_of(&one), number_of(&two)), (Some(2), Some(1)));
    assert!(p.b.latest_builds(&[]).unwrap().is_empty());

    let many =
        p.b.resources_of(&[second.as_str(), first.as_str()])
            .unwrap();
    for job in [&first, &second] {
        let of_job: Vec<_> = many.iter().filter(|r| r.job_id == *job).cloned().collect();
        assert_eq!(of_job, p.a.resources(job).unwrap());
        let names: Vec<_> = of_job.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"], "by name within a job");
    }
    assert_eq!(many.len(), 4);
    assert!(p.b.resources_of(&[&job]).unwrap().is_empty());
}

/// The count beside a page of everyone's workspaces (a maintained count) and of one owner's
/// (counted) follow creations and deletions, whichever store wrote them.
fn workspace_counts_follow_creates_and_deletes(p: Pair) {
    let w = world(&*p.a, "{}");
    let counts = |s: &dyn Store| {
        let everyone = s.workspace_page(None, 0, 25).unwrap();
        let owners = s.workspace_page(Some(&w.user), 0, 25).unwrap();
        assert_eq!(
            everyone.1.len() as i64,
            everyone.0,
            "the count is of the rows"
        );
        (everyone.0, owners.0)
    };
    assert_eq!(counts(&*p.a), (0, 0));
    let (one, _, first) = w.workspace(&*p.a, "one");
    let (_, _, second) = w.workspace(&*p.b, "two");
    assert_eq!(counts(&*p.a), (2, 2));
    assert_eq!(counts(&*p.b), (2, 2));
    for job in [&first, &second] {
        assert_eq!(p.a.take_next_job("w").unwrap().unwrap().id, *job);
        succeed(&*p.a, job, "w");
    }
    // A delete build that fails leaves the workspace; one that succeeds removes it, once.
    let delete = |number: i64| {
        let (id, job) = (new_id(), new_id());
        let mut build = w.build(&id, &job, &one, Some(number));
        build.transition = Transition::Delete;
        p.b.create_build(&build).unwrap();
        assert_eq!(p.a.take_next_job("w").unwrap().unwrap().id, job);
        job
    };
    let failing = delete(1);
    let failed = BuildCompletion {
        error: "no".into(),
        ..BuildCompletion::default()
    };
    p.a.complete_build(&failing, "w", &failed, &LogBatch::default())
        .unwrap();
    assert_eq!(counts(&*p.a), (2, 2));
    let deleting = delete(2);
    succeed(&*p.b, &deleting, "w");
    assert_eq!(counts(&*p.a), (1, 1));
    assert_eq!(counts(&*p.b), (1, 1));
    // A page past the end still carries the count.
    let past = p.a.workspace_page(None, 1_000_000_000, 25).unwrap();
    assert_eq!((past.0, past.1.len()), (1, 0));
}

macro_rules! contract {
    ($module:ident, $backend:ident, $($case:ident),* $(,)?) => {
        mod $module {
            $(
                #[test]
                fn $case() {
                    if let Some(pair) = <super::$backend as super::Backend>::pair() {
                        super::$case(pair);
                    }
                }
            )*
        }
    };
}

macro_rules! every_case {
    ($module:ident, $backend:ident) => {
        contract!(
            $module,
            $backend,
            numbering_races,
            acquisition_by_several_workers,
            queue_order_and_positions,
            cancel_of_a_pending_job,
            cancel_of_a_running_job,
            leases_expire_and_only_then_are_given_up,
            pending_jobs_nobody_takes_are_given_up,
            a_restarted_server_gives_up_its_own_jobs_only,
            expired_keys_and_silent_daemons_are_purged_as_coders_dbpurge,
            log_cursors,
            first_user_and_file_races,
            writes_publish_their_notices,
            a_completion_takes_the_next_job,
            batched_reads_agree_with_single_ones,
            workspace_counts_follow_creates_and_deletes,
        );
    };
}

every_case!(sqlite, Sqlite);
every_case!(sqlite_two_instances, SqliteTwice);
every_case!(postgres, Postgres);
every_case!(postgres_two_instances, PostgresTwice);
