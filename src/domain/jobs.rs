//! The cancel rules of `PATCH /workspacebuilds/{id}/cancel` (spec section 4): who may cancel,
//! and what a cancel does to a job in each state.

use super::permissions::Caller;
use crate::model::JobStatus;

/// Why a cancel is refused. `api/error.rs` gives each its status and Coder's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelRefusal {
    /// Check 2: the template does not let users cancel, and the caller is no owner.
    NotAllowed,
    /// Check 3.
    AlreadyCompleted,
    AlreadyCanceling,
    /// `expect_status` was given and the job is in another state.
    NotExpected,
}

/// What a cancel does (check 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelAction {
    /// A pending job is canceled at once (`canceled_at` and `completed_at` now): it never runs.
    CancelPending,
    /// A running job is marked canceling (`canceled_at` now): its worker stops its work.
    StopRunning,
}

/// Check 2, for a caller who may read the build of a workspace owned by `workspace_owner`.
/// Canceling is acting on the workspace, as Coder's RBAC has it (an update of the workspace):
/// only its owner or an `owner` may, so a template admin, who reads every build, cancels
/// none of other users'. Then: with `expect_status=pending` they may; otherwise the template
/// must allow users to cancel, or the caller is an owner.
pub fn may_cancel(
    caller: Caller,
    workspace_owner: &str,
    expect: Option<JobStatus>,
    template_allows_user_cancel: bool,
) -> Result<(), CancelRefusal> {
    if !caller.can_build_workspace_of(workspace_owner) {
        return Err(CancelRefusal::NotAllowed);
    }
    if expect == Some(JobStatus::Pending)
        || template_allows_user_cancel
        || caller.may_always_cancel()
    {
        Ok(())
    } else {
        Err(CancelRefusal::NotAllowed)
    }
}

/// Checks 3 and 4: what canceling a job whose status is `status` does. The store decides this
/// with the job's row held, and applies the action only if the row is still in that status.
pub fn cancel_decision(
    status: JobStatus,
    expect: Option<JobStatus>,
) -> Result<CancelAction, CancelRefusal> {
    match status {
        JobStatus::Succeeded | JobStatus::Failed | JobStatus::Canceled => {
            return Err(CancelRefusal::AlreadyCompleted);
        }
        JobStatus::Canceling => return Err(CancelRefusal::AlreadyCanceling),
        JobStatus::Pending | JobStatus::Running => {}
    }
    if expect.is_some_and(|e| e != status) {
        return Err(CancelRefusal::NotExpected);
    }
    Ok(if status == JobStatus::Pending {
        CancelAction::CancelPending
    } else {
        CancelAction::StopRunning
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;
    use JobStatus::*;

    #[test]
    fn who_may_cancel() {
        let member = Caller {
            user_id: "m",
            roles: &[],
        };
        let owner = Caller {
            user_id: "o",
            roles: &[Role::Owner],
        };
        let admin = Caller {
            user_id: "a",
            roles: &[Role::TemplateAdmin],
        };
        assert_eq!(may_cancel(member, "m", None, true), Ok(()));
        assert_eq!(
            may_cancel(member, "m", None, false),
            Err(CancelRefusal::NotAllowed)
        );
        assert_eq!(
            may_cancel(member, "m", Some(Running), false),
            Err(CancelRefusal::NotAllowed)
        );
        assert_eq!(may_cancel(member, "m", Some(Pending), false), Ok(()));
        assert_eq!(may_cancel(owner, "m", None, false), Ok(()));
        // A template admin cancels their own builds only, whatever the template allows.
        assert_eq!(may_cancel(admin, "a", None, true), Ok(()));
        for expect in [None, Some(Pending), Some(Running)] {
            assert_eq!(
                may_cancel(admin, "m", expect, true),
                Err(CancelRefusal::NotAllowed)
            );
        }
    }

    #[test]
    fn what_a_cancel_does_in_each_state() {
        assert_eq!(
            cancel_decision(Pending, None),
            Ok(CancelAction::CancelPending)
        );
        assert_eq!(
            cancel_decision(Pending, Some(Pending)),
            Ok(CancelAction::CancelPending)
        );
        assert_eq!(
            cancel_decision(Running, None),
            Ok(CancelAction::StopRunning)
        );
        assert_eq!(
            cancel_decision(Running, Some(Pending)),
            Err(CancelRefusal::NotExpected)
        );
        assert_eq!(
            cancel_decision(Pending, Some(Running)),
            Err(CancelRefusal::NotExpected)
        );
        // Completed and canceling come before the expected-status check.
        for done in [Succeeded, Failed, Canceled] {
            assert_eq!(
                cancel_decision(done, Some(Running)),
                Err(CancelRefusal::AlreadyCompleted)
            );
        }
        assert_eq!(
            cancel_decision(Canceling, Some(Pending)),
            Err(CancelRefusal::AlreadyCanceling)
        );
    }
}
