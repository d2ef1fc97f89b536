//! Workspace builds: the checks of `POST /workspaces/{id}/builds` (spec section 4, checks 2 to 6,
//! in order), the next build number, and what a build's end changes.

use super::permissions::Caller;
use crate::model::{JobStatus, Time, Transition};

/// Why a build may not be queued. `api/error.rs` gives each its status and Coder's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildRefusal {
    /// Check 2: only a delete is allowed on a deleted workspace.
    DeletedWorkspace(Transition),
    /// Check 3.
    OrphanWithoutDelete,
    OrphanWithState,
    /// Check 4: the caller may read the workspace but not act on it (`update` or `delete`).
    NotPermitted {
        action: &'static str,
    },
    CustomStateNotAllowed,
    CustomLogLevelNotAllowed,
    /// Check 5.
    VersionMissing,
    VersionOfAnotherTemplate,
    VersionImporting(JobStatus),
    VersionFailed {
        name: String,
        error: String,
    },
    /// Check 6: the latest build is still active (or another build was queued meanwhile).
    ActiveBuild,
}

/// What a build request asks for, as far as the checks go.
#[derive(Clone, Copy, Debug)]
pub struct BuildIntent {
    pub transition: Transition,
    pub orphan: bool,
    /// The request carries its own provisioner state.
    pub custom_state: bool,
    /// `log_level: debug`.
    pub debug: bool,
}

/// The workspace a build is asked for.
#[derive(Clone, Copy, Debug)]
pub struct WorkspaceFacts<'a> {
    pub owner_id: &'a str,
    pub deleted: bool,
}

/// Checks 2 to 4, in the contract's order, for a caller who may read the workspace.
pub fn check_request(
    caller: Caller,
    workspace: WorkspaceFacts,
    intent: BuildIntent,
) -> Result<(), BuildRefusal> {
    let delete = intent.transition == Transition::Delete;
    if workspace.deleted && !delete {
        return Err(BuildRefusal::DeletedWorkspace(intent.transition));
    }
    if intent.orphan && !delete {
        return Err(BuildRefusal::OrphanWithoutDelete);
    }
    if intent.orphan && intent.custom_state {
        return Err(BuildRefusal::OrphanWithState);
    }
    if !caller.can_build_workspace_of(workspace.owner_id) {
        let action = if delete { "delete" } else { "update" };
        return Err(BuildRefusal::NotPermitted { action });
    }
    if (intent.custom_state || intent.orphan) && !caller.may_supply_build_state() {
        return Err(BuildRefusal::CustomStateNotAllowed);
    }
    if intent.debug && !caller.may_set_build_log_level() {
        return Err(BuildRefusal::CustomLogLevelNotAllowed);
    }
    Ok(())
}

/// The template version a build would use.
#[derive(Clone, Copy, Debug)]
pub struct VersionFacts<'a> {
    pub template_id: Option<&'a str>,
    pub name: &'a str,
    pub import_status: JobStatus,
    pub import_error: &'a str,
}

/// Check 5: the version exists, belongs to `template_id` and imported successfully.
pub fn check_version(version: Option<VersionFacts>, template_id: &str) -> Result<(), BuildRefusal> {
    let v = version.ok_or(BuildRefusal::VersionMissing)?;
    if v.template_id != Some(template_id) {
        return Err(BuildRefusal::VersionOfAnotherTemplate);
    }
    match v.import_status {
        JobStatus::Succeeded => Ok(()),
        s @ (JobStatus::Pending | JobStatus::Running) => Err(BuildRefusal::VersionImporting(s)),
        _ => Err(BuildRefusal::VersionFailed {
            name: v.name.to_string(),
            error: v.import_error.to_string(),
        }),
    }
}

/// Check 6: a workspace takes a new build only once its latest one is no longer active.
pub fn check_previous(latest_job: Option<JobStatus>) -> Result<(), BuildRefusal> {
    match latest_job {
        Some(s) if s.is_active() => Err(BuildRefusal::ActiveBuild),
        _ => Ok(()),
    }
}

/// The number of the build to insert, decided where the store inserts it: `latest` is the
/// workspace's latest build (number and job status) as the inserting transaction reads it, and
/// `expected` the latest number the caller's checks were based on. A build queued in between,
/// or an active latest build, refuses.
pub fn next_build_number(
    latest: Option<(i64, JobStatus)>,
    expected: Option<i64>,
) -> Result<i64, BuildRefusal> {
    match latest {
        Some((n, status)) if !status.is_active() && Some(n) == expected => Ok(n + 1),
        None if expected.is_none() => Ok(1),
        _ => Err(BuildRefusal::ActiveBuild),
    }
}

/// What a build's end changes, by its job's final status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildEnd {
    /// The job succeeded: its resources, new state, deadline and daily cost are kept. A failed
    /// or canceled build keeps the state it started from and has no resources.
    pub keeps_outputs: bool,
    /// A delete that succeeded: the workspace is deleted.
    pub deletes_workspace: bool,
    /// The build queues the one it carries (`on_success`), if any: only when it succeeded.
    /// A failed or canceled stop queues nothing.
    pub queues_follow_up: bool,
}

pub fn build_end(transition: Transition, job: JobStatus) -> BuildEnd {
    let succeeded = job == JobStatus::Succeeded;
    BuildEnd {
        keeps_outputs: succeeded,
        deletes_workspace: succeeded && transition == Transition::Delete,
        queues_follow_up: succeeded,
    }
}

/// The TTL of a workspace's start builds: its own, else the template's default; none when
/// neither is set.
pub fn ttl_ms(workspace_ttl_ms: Option<i64>, template_default_ttl_ms: i64) -> Option<i64> {
    let ttl = workspace_ttl_ms.unwrap_or(template_default_ttl_ms);
    (ttl > 0).then_some(ttl)
}

/// A succeeded build's deadline: completion time + TTL for a start; none otherwise.
pub fn deadline(transition: Transition, completed_at: Time, ttl_ms: Option<i64>) -> Option<Time> {
    match transition {
        Transition::Start => ttl_ms.map(|ttl| completed_at.plus_millis(ttl)),
        _ => None,
    }
}

/// A succeeded build's daily cost: the sum of its resources' for start and stop; 0 for delete.
pub fn daily_cost(transition: Transition, resource_costs: impl IntoIterator<Item = i64>) -> i64 {
    match transition {
        Transition::Delete => 0,
        _ => resource_costs.into_iter().sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    const MEMBER: Caller = Caller {
        user_id: "m",
        roles: &[],
    };
    const ADMIN: Caller = Caller {
        user_id: "a",
        roles: &[Role::TemplateAdmin],
    };
    const OWNER: Caller = Caller {
        user_id: "o",
        roles: &[Role::Owner],
    };

    fn intent(transition: Transition) -> BuildIntent {
        BuildIntent {
            transition,
            orphan: false,
            custom_state: false,
            debug: false,
        }
    }

    fn ws(owner_id: &str, deleted: bool) -> WorkspaceFacts<'_> {
        WorkspaceFacts { owner_id, deleted }
    }

    #[test]
    fn the_checks_come_in_the_contracts_order() {
        use BuildRefusal::*;
        let stop = intent(Transition::Stop);
        // A deleted workspace is refused before orphan and permission.
        let orphan_stop = BuildIntent {
            orphan: true,
            ..stop
        };
        assert_eq!(
            check_request(MEMBER, ws("other", true), orphan_stop),
            Err(DeletedWorkspace(Transition::Stop))
        );
        assert_eq!(
            check_request(MEMBER, ws("other", false), orphan_stop),
            Err(OrphanWithoutDelete)
        );
        let orphan_delete_with_state = BuildIntent {
            transition: Transition::Delete,
            orphan: true,
            custom_state: true,
            debug: false,
        };
        assert_eq!(
            check_request(OWNER, ws("o", false), orphan_delete_with_state),
            Err(OrphanWithState)
        );
        assert_eq!(
            check_request(MEMBER, ws("other", false), stop),
            Err(NotPermitted { action: "update" })
        );
        assert_eq!(
            check_request(ADMIN, ws("other", true), intent(Transition::Delete)),
            Err(NotPermitted { action: "delete" })
        );
        let with_state = BuildIntent {
            custom_state: true,
            ..stop
        };
        assert_eq!(
            check_request(MEMBER, ws("m", false), with_state),
            Err(CustomStateNotAllowed)
        );
        assert_eq!(check_request(ADMIN, ws("a", false), with_state), Ok(()));
        let debug = BuildIntent {
            debug: true,
            ..stop
        };
        assert_eq!(
            check_request(ADMIN, ws("a", false), debug),
            Err(CustomLogLevelNotAllowed)
        );
        assert_eq!(check_request(OWNER, ws("m", false), debug), Ok(()));
        assert_eq!(
            check_request(MEMBER, ws("m", true), intent(Transition::Delete)),
            Ok(())
        );
    }

    #[test]
    fn the_version_must_belong_to_the_template_and_have_imported() {
        let v = |template_id, import_status| VersionFacts {
            template_id,
            name: "v1",
            import_status,
            import_error: "boom",
        };
        assert_eq!(check_version(None, "t"), Err(BuildRefusal::VersionMissing));
        assert_eq!(
            check_version(Some(v(None, JobStatus::Succeeded)), "t"),
            Err(BuildRefusal::VersionOfAnotherTemplate)
        );
        assert_eq!(
            check_version(Some(v(Some("u"), JobStatus::Succeeded)), "t"),
            Err(BuildRefusal::VersionOfAnotherTemplate)
        );
        assert_eq!(
            check_version(Some(v(Some("t"), JobStatus::Running)), "t"),
            Err(BuildRefusal::VersionImporting(JobStatus::Running))
        );
        for failed in [JobStatus::Failed, JobStatus::Canceled, JobStatus::Canceling] {
            assert_eq!(
                check_version(Some(v(Some("t"), failed)), "t"),
                Err(BuildRefusal::VersionFailed {
                    name: "v1".into(),
                    error: "boom".into()
                })
            );
        }
        assert_eq!(
            check_version(Some(v(Some("t"), JobStatus::Succeeded)), "t"),
            Ok(())
        );
    }

    #[test]
    fn numbers_follow_the_latest_inactive_build_the_caller_saw() {
        use JobStatus::*;
        assert_eq!(next_build_number(None, None), Ok(1));
        assert_eq!(next_build_number(Some((4, Succeeded)), Some(4)), Ok(5));
        assert_eq!(next_build_number(Some((4, Failed)), Some(4)), Ok(5));
        for active in [Pending, Running, Canceling] {
            assert_eq!(
                next_build_number(Some((4, active)), Some(4)),
                Err(BuildRefusal::ActiveBuild)
            );
            assert_eq!(check_previous(Some(active)), Err(BuildRefusal::ActiveBuild));
        }
        // Another build was queued after the caller looked.
        assert_eq!(
            next_build_number(Some((5, Succeeded)), Some(4)),
            Err(BuildRefusal::ActiveBuild)
        );
        assert_eq!(
            next_build_number(Some((1, Succeeded)), None),
            Err(BuildRefusal::ActiveBuild)
        );
        assert_eq!(
            next_build_number(None, Some(1)),
            Err(BuildRefusal::ActiveBuild)
        );
        assert_eq!(check_previous(Some(Canceled)), Ok(()));
        assert_eq!(check_previous(None), Ok(()));
    }

    #[test]
    fn a_build_keeps_its_outputs_only_when_it_succeeded() {
        use JobStatus::*;
        let end = build_end(Transition::Delete, Succeeded);
        assert!(end.keeps_outputs && end.deletes_workspace);
        let end = build_end(Transition::Delete, Canceled);
        assert!(!end.keeps_outputs && !end.deletes_workspace);
        assert!(!build_end(Transition::Stop, Succeeded).deletes_workspace);
        assert!(!build_end(Transition::Start, Failed).keeps_outputs);
        assert!(build_end(Transition::Stop, Succeeded).queues_follow_up);
        assert!(!build_end(Transition::Stop, Failed).queues_follow_up);
        assert!(!build_end(Transition::Stop, Canceled).queues_follow_up);
    }

    #[test]
    fn deadline_ttl_and_cost() {
        assert_eq!(ttl_ms(Some(60_000), 5), Some(60_000));
        assert_eq!(ttl_ms(None, 120_000), Some(120_000));
        assert_eq!(ttl_ms(None, 0), None);
        assert_eq!(ttl_ms(Some(0), 120_000), None);
        let done = Time(1_000_000);
        assert_eq!(
            deadline(Transition::Start, done, Some(60_000)),
            Some(Time(61_000_000))
        );
        assert_eq!(deadline(Transition::Stop, done, Some(60_000)), None);
        assert_eq!(deadline(Transition::Start, done, None), None);
        assert_eq!(daily_cost(Transition::Start, [3, 1]), 4);
        assert_eq!(daily_cost(Transition::Delete, [3, 1]), 0);
    }
}
