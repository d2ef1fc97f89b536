use super::*;
use std::process::Child;

fn marks() -> Marks {
    [
        format!("KILN_WORKSPACE_ID={}", crate::model::new_id()),
        "KILN_BUILD_NUMBER=7".to_string(),
    ]
}

/// `sleep 30` leading a process group of its own, with `env` as its whole environment.
fn sleeper(env: &[String]) -> Child {
    let mut cmd = Command::new("/bin/sleep");
    cmd.arg("30").env_clear().process_group(0);
    for e in env {
        let (k, v) = e.split_once('=').unwrap();
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn ended(c: &mut Child) -> bool {
    c.try_wait().unwrap().is_some()
}

/// Whether `c` ends within a few seconds (a signal sent by another process lands soon after).
fn ends(c: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if ended(c) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn a_record_lists_its_marks_and_groups_and_ignores_a_line_cut_short() {
    let t = parse_record("mark A=1\nmark B=2\ngroup 123 456\ngroup 77 88\ngroup 9");
    assert_eq!(t.marks, vec!["A=1", "B=2"]);
    assert_eq!(t.groups, vec![(123, 456), (77, 88)]);
    assert_eq!(parse_record("mark A\ngroup 1 5\n"), Target::default());
}

#[test]
fn recovery_kills_only_what_is_still_the_steps_and_empties_the_jobs_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(jobs.join("job-1/sub")).unwrap();
    std::fs::write(jobs.join("job-1.state"), "{}").unwrap();
    let m = marks();
    // A recorded group whose leader is still the one started: killed, marks or not.
    let mut group = sleeper(&[]);
    // A marked process in a group of its own that the record does not name (it left the
    // step's group): killed.
    let mut escaped = sleeper(&m);
    // A recorded group id whose leader is another process now (its start time differs, as
    // when the pid was reused), and a process with only one of the marks: both left alone.
    let mut reused = sleeper(&[]);
    let mut unrelated = sleeper(&m[..1]);
    let record = Record::create(jobs.join("job-1.procs"), m.clone()).unwrap();
    let (g, r) = (group.id() as i32, reused.id() as i32);
    record.add_group(g, start_time(g).unwrap());
    record.add_group(r, start_time(r).unwrap() + 1);

    assert_eq!(recover(&jobs), 1);
    assert!(ended(&mut group), "the recorded group was killed");
    assert!(ended(&mut escaped), "the marked process was killed");
    assert!(!ended(&mut reused), "a reused group id is not the step's");
    assert!(!ended(&mut unrelated), "one mark is not enough");
    assert_eq!(std::fs::read_dir(&jobs).unwrap().count(), 0);
    for mut c in [reused, unrelated] {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    assert_eq!(recover(&tmp.path().join("missing")), 0);
}

#[test]
fn a_guard_kills_its_group_when_kiln_goes_and_nothing_once_released() {
    let m = marks();
    let mut released = sleeper(&[]);
    let mut guard = Guard::spawn(&m).unwrap();
    guard.watch(released.id() as i32);
    guard.release();
    assert!(!ended(&mut released));
    // The pipe closes without "done": what a dead kiln leaves.
    let mut orphaned = sleeper(&[]);
    let mut marked = sleeper(&m);
    let mut guard = Guard::spawn(&m).unwrap();
    guard.watch(orphaned.id() as i32);
    drop(guard.child.stdin.take());
    guard.child.wait().unwrap();
    assert!(ends(&mut orphaned), "the group was killed");
    assert!(ends(&mut marked), "the marked process was killed");
    // kiln died before it could tell the step's group: the marks still find the step's own.
    let mut untold = sleeper(&[]);
    let mut marked = sleeper(&m);
    let mut guard = Guard::spawn(&m).unwrap();
    drop(guard.child.stdin.take());
    guard.child.wait().unwrap();
    assert!(ends(&mut marked), "the marked process was killed");
    assert!(!ended(&mut untold), "no group was told, so none was killed");
    untold.kill().unwrap();
    untold.wait().unwrap();
    released.kill().unwrap();
    released.wait().unwrap();
}
