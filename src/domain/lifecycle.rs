//! Workspace schedules, as Coder's `coderd/workspaces.go` and `coderd/autobuild` decide them:
//! the TTL rules of `PUT …/ttl`, the checks of `PUT …/extend`, and what the lifecycle executor
//! does with a workspace on a tick.

use super::schedule;
use crate::model::{JobStatus, Time, Transition};

const MINUTE_MS: i64 = 60_000;
const TTL_MAX_MS: i64 = 30 * 24 * 60 * MINUTE_MS;

/// `PUT …/ttl`: the TTL to store (truncated to whole minutes, as Coder does), `None` when null
/// or 0 (autostop off), or Coder's validation detail for `ttl_ms`.
pub fn workspace_ttl(ttl_ms: Option<i64>) -> Result<Option<i64>, &'static str> {
    let Some(ms) = ttl_ms.filter(|ms| *ms != 0) else {
        return Ok(None);
    };
    // Go's Duration.Truncate rounds toward zero.
    let truncated = ms - ms % MINUTE_MS;
    if truncated < MINUTE_MS {
        return Err("time until shutdown must be at least one minute");
    }
    if truncated > TTL_MAX_MS {
        return Err("time until shutdown must be less than 30 days");
    }
    Ok(Some(truncated))
}

/// The latest build of a workspace, as far as its schedule goes.
#[derive(Clone, Copy, Debug)]
pub struct LatestBuild {
    pub transition: Transition,
    pub job: JobStatus,
    pub completed_at: Option<Time>,
    pub created_at: Time,
    pub deadline: Option<Time>,
    pub max_deadline: Option<Time>,
}

/// Why `PUT …/extend` refuses; `api/error.rs` gives Coder's status and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtendRefusal {
    NotStarted(Transition),
    StillBuilding,
    ManualShutdown,
    TooSoon,
    BeforeStart,
    BeyondMaxDeadline,
}

/// Coder's checks of `PUT …/extend`, in its order: a completed start build with a deadline, a
/// new deadline at least 29 minutes away (Coder's message says 30), not before the build's
/// completion and never past its `max_deadline`.
pub fn check_extend(
    latest: &LatestBuild,
    new_deadline: Time,
    now: Time,
) -> Result<(), ExtendRefusal> {
    if latest.transition != Transition::Start {
        return Err(ExtendRefusal::NotStarted(latest.transition));
    }
    let Some(completed_at) = latest.completed_at else {
        return Err(ExtendRefusal::StillBuilding);
    };
    if latest.deadline.is_none() {
        return Err(ExtendRefusal::ManualShutdown);
    }
    if new_deadline < now.plus_millis(29 * MINUTE_MS) {
        return Err(ExtendRefusal::TooSoon);
    }
    if new_deadline < completed_at {
        return Err(ExtendRefusal::BeforeStart);
    }
    if latest.max_deadline.is_some_and(|max| new_deadline > max) {
        return Err(ExtendRefusal::BeyondMaxDeadline);
    }
    Ok(())
}

/// What the lifecycle executor knows of a workspace on a tick.
#[derive(Clone, Copy, Debug)]
pub struct WorkspaceTick<'a> {
    pub now: Time,
    pub deleted: bool,
    pub owner_suspended: bool,
    pub autostart_schedule: Option<&'a str>,
    pub latest: Option<LatestBuild>,
}

/// A build the lifecycle executor queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Autobuild {
    /// A stop build, reason `autostop`.
    Stop,
    /// A start build, reason `autostart`.
    Start,
}

impl Autobuild {
    pub fn transition(self) -> Transition {
        match self {
            Autobuild::Stop => Transition::Stop,
            Autobuild::Start => Transition::Start,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Autobuild::Stop => "autostop",
            Autobuild::Start => "autostart",
        }
    }
}

/// Coder's `isEligibleForAutostop` / `isEligibleForAutostart`: a succeeded start whose
/// deadline (or max deadline) has come stops; a succeeded stop whose schedule has a time after
/// the stop's creation that has come starts. A workspace with an active, failed or canceled
/// latest build, a deleted one and a suspended user's are left alone.
pub fn autobuild(w: &WorkspaceTick) -> Option<Autobuild> {
    let latest = w.latest?;
    if w.deleted || w.owner_suspended || latest.job != JobStatus::Succeeded {
        return None;
    }
    match latest.transition {
        Transition::Start => {
            let due = |t: Option<Time>| t.is_some_and(|t| t <= w.now);
            (due(latest.deadline) || due(latest.max_deadline)).then_some(Autobuild::Stop)
        }
        Transition::Stop => {
            let sched = schedule::weekly(w.autostart_schedule?).ok()?;
            let next = sched.next(latest.created_at)?;
            (next <= w.now).then_some(Autobuild::Start)
        }
        Transition::Delete => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Time {
        Time::parse_rfc3339(s).unwrap()
    }

    fn build(transition: Transition, job: JobStatus) -> LatestBuild {
        LatestBuild {
            transition,
            job,
            completed_at: Some(at("2026-12-01T10:00:00Z")),
            created_at: at("2026-12-01T09:59:00Z"),
            deadline: None,
            max_deadline: None,
        }
    }

    fn tick(
        now: &str,
        latest: LatestBuild,
        schedule: Option<&'static str>,
    ) -> WorkspaceTick<'static> {
        WorkspaceTick {
            now: at(now),
            deleted: false,
            owner_suspended: false,
            autostart_schedule: schedule,
            latest: Some(latest),
        }
    }

    #[test]
    fn ttl_rules() {
        assert_eq!(workspace_ttl(None), Ok(None));
        assert_eq!(workspace_ttl(Some(0)), Ok(None));
        assert_eq!(workspace_ttl(Some(90_000)), Ok(Some(60_000)));
        assert_eq!(workspace_ttl(Some(TTL_MAX_MS)), Ok(Some(TTL_MAX_MS)));
        let min = Err("time until shutdown must be at least one minute");
        assert_eq!(workspace_ttl(Some(59_999)), min);
        assert_eq!(workspace_ttl(Some(-60_000)), min);
        assert_eq!(
            workspace_ttl(Some(TTL_MAX_MS + MINUTE_MS)),
            Err("time until shutdown must be less than 30 days")
        );
    }

    #[test]
    fn autostop_at_the_deadline() {
        let mut b = build(Transition::Start, JobStatus::Succeeded);
        assert_eq!(autobuild(&tick("2026-12-01T11:00:00Z", b, None)), None);
        b.deadline = Some(at("2026-12-01T11:00:00Z"));
        assert_eq!(autobuild(&tick("2026-12-01T10:59:59Z", b, None)), None);
        assert_eq!(
            autobuild(&tick("2026-12-01T11:00:00Z", b, None)),
            Some(Autobuild::Stop)
        );
        b.deadline = None;
        b.max_deadline = Some(at("2026-12-01T10:30:00Z"));
        assert_eq!(
            autobuild(&tick("2026-12-01T11:00:00Z", b, None)),
            Some(Autobuild::Stop)
        );
    }

    #[test]
    fn autostart_when_the_schedule_came_after_the_stop() {
        let b = build(Transition::Stop, JobStatus::Succeeded);
        let every_day = Some("30 10 * * *");
        assert_eq!(autobuild(&tick("2026-12-01T10:29:59Z", b, every_day)), None);
        assert_eq!(
            autobuild(&tick("2026-12-01T10:30:00Z", b, every_day)),
            Some(Autobuild::Start)
        );
        // The stop's own minute, or an earlier one, is not "after the stop".
        assert_eq!(
            autobuild(&tick("2026-12-01T10:30:00Z", b, Some("59 9 * * *"))),
            None
        );
        assert_eq!(autobuild(&tick("2026-12-01T10:30:00Z", b, None)), None);
        assert_eq!(
            autobuild(&tick("2026-12-01T10:30:00Z", b, Some("bad"))),
            None
        );
    }

    #[test]
    fn failed_active_and_suspended_are_left_alone() {
        let mut stopped = build(Transition::Stop, JobStatus::Succeeded);
        let mut started = build(Transition::Start, JobStatus::Failed);
        started.deadline = Some(at("2026-12-01T10:00:00Z"));
        let now = "2026-12-02T12:00:00Z";
        for job in [
            JobStatus::Failed,
            JobStatus::Canceled,
            JobStatus::Running,
            JobStatus::Pending,
        ] {
            started.job = job;
            stopped.job = job;
            assert_eq!(autobuild(&tick(now, started, None)), None);
            assert_eq!(autobuild(&tick(now, stopped, Some("0 0 * * *"))), None);
        }
        stopped.job = JobStatus::Succeeded;
        let mut t = tick(now, stopped, Some("0 0 * * *"));
        assert_eq!(autobuild(&t), Some(Autobuild::Start));
        t.owner_suspended = true;
        assert_eq!(autobuild(&t), None);
        t.owner_suspended = false;
        t.deleted = true;
        assert_eq!(autobuild(&t), None);
    }

    #[test]
    fn extend_checks_in_coder_order() {
        let now = at("2026-12-01T10:00:00Z");
        let later = at("2026-12-01T11:00:00Z");
        let mut b = build(Transition::Stop, JobStatus::Succeeded);
        assert_eq!(
            check_extend(&b, later, now),
            Err(ExtendRefusal::NotStarted(Transition::Stop))
        );
        b.transition = Transition::Start;
        b.completed_at = None;
        assert_eq!(
            check_extend(&b, later, now),
            Err(ExtendRefusal::StillBuilding)
        );
        b.completed_at = Some(at("2026-12-01T09:00:00Z"));
        assert_eq!(
            check_extend(&b, later, now),
            Err(ExtendRefusal::ManualShutdown)
        );
        b.deadline = Some(at("2026-12-01T10:10:00Z"));
        assert_eq!(
            check_extend(&b, at("2026-12-01T10:28:59Z"), now),
            Err(ExtendRefusal::TooSoon)
        );
        assert_eq!(check_extend(&b, at("2026-12-01T10:29:00Z"), now), Ok(()));
        b.max_deadline = Some(at("2026-12-01T10:45:00Z"));
        assert_eq!(
            check_extend(&b, later, now),
            Err(ExtendRefusal::BeyondMaxDeadline)
        );
        assert_eq!(check_extend(&b, at("2026-12-01T10:45:00Z"), now), Ok(()));
    }
}
