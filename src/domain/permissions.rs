//! Who may do what: the roles of the builds contract (spec section 2), in one place for the
//! API and the status page.
//!
//! - `owner`: the site admin; reads and does everything.
//! - `template-admin`: manages templates; reads every workspace and its builds (as Coder's
//!   template-admin role does), reads and pushes build state and may orphan-delete; acts on
//!   other users' workspaces only in those ways.
//! - a member (no role): their own workspaces only.

use crate::model::Role;

/// The authenticated caller, as far as permissions go.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    pub user_id: &'a str,
    pub roles: &'a [Role],
}

impl Caller<'_> {
    pub fn is_owner(&self) -> bool {
        self.roles.contains(&Role::Owner)
    }

    /// Owners and template admins: they manage templates and versions.
    pub fn manages_templates(&self) -> bool {
        self.is_owner() || self.roles.contains(&Role::TemplateAdmin)
    }

    /// Whether the caller reads every user's workspaces and builds.
    pub fn reads_every_workspace(&self) -> bool {
        self.manages_templates()
    }

    /// Whether the caller may see the workspaces (and builds) of the user `owner_id`; anything
    /// else answers the generic 404.
    pub fn can_read_workspace_of(&self, owner_id: &str) -> bool {
        self.reads_every_workspace() || self.user_id == owner_id
    }

    /// The owner whose workspaces a listing shows this caller: `None` for all of them.
    pub fn workspace_owner_filter(&self) -> Option<&str> {
        (!self.reads_every_workspace()).then_some(self.user_id)
    }

    /// Whether the caller may start, stop or delete a workspace of `owner_id` (once they may
    /// read it).
    pub fn can_build_workspace_of(&self, owner_id: &str) -> bool {
        self.is_owner() || self.user_id == owner_id
    }

    /// Whether a build request may carry its own state or be an orphan delete.
    pub fn may_supply_build_state(&self) -> bool {
        self.manages_templates()
    }

    /// Whether the caller may read and replace a build's provisioner state.
    pub fn may_access_build_state(&self) -> bool {
        self.manages_templates()
    }

    /// Whether a build request may ask for `log_level: debug`.
    pub fn may_set_build_log_level(&self) -> bool {
        self.is_owner()
    }

    /// Whether the caller may cancel builds of templates that do not let users cancel.
    pub fn may_always_cancel(&self) -> bool {
        self.is_owner()
    }

    /// Whether the caller may create a workspace owned by `owner_id`.
    pub fn may_create_workspace_for(&self, owner_id: &str) -> bool {
        self.is_owner() || self.user_id == owner_id
    }

    /// Whether the caller may create users, change roles and mint keys for others.
    pub fn manages_users(&self) -> bool {
        self.is_owner()
    }

    /// Whether the caller may read the account of `user_id` (email, roles, last seen), as
    /// Coder's roles have it: members read their own only; template admins and owners read
    /// every user's (template admins to grant template permissions).
    pub fn may_read_user(&self, user_id: &str) -> bool {
        self.manages_templates() || self.user_id == user_id
    }

    /// Whether the caller may download the uploaded file made by `created_by`.
    pub fn may_read_file_of(&self, created_by: &str) -> bool {
        self.manages_templates() || self.user_id == created_by
    }

    /// Whether a queued job shows to the caller: a build of a workspace owned by
    /// `workspace_owner` when they may read that workspace; a template import (no owner)
    /// always, template names being visible to every member.
    pub fn sees_queued_job(&self, workspace_owner: Option<&str>) -> bool {
        workspace_owner.is_none_or(|owner| self.can_read_workspace_of(owner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &[Role] = &[Role::Owner];
    const ADMIN: &[Role] = &[Role::TemplateAdmin];
    const MEMBER: &[Role] = &[];

    fn caller(roles: &'static [Role]) -> Caller<'static> {
        Caller {
            user_id: "me",
            roles,
        }
    }

    #[test]
    fn who_reads_whose_workspaces() {
        for roles in [OWNER, ADMIN] {
            let c = caller(roles);
            assert!(c.can_read_workspace_of("someone-else"));
            assert_eq!(c.workspace_owner_filter(), None);
            assert!(c.sees_queued_job(Some("someone-else")));
        }
        let m = caller(MEMBER);
        assert!(m.can_read_workspace_of("me"));
        assert!(!m.can_read_workspace_of("someone-else"));
        assert_eq!(m.workspace_owner_filter(), Some("me"));
        assert!(m.sees_queued_job(Some("me")));
        assert!(!m.sees_queued_job(Some("someone-else")));
        assert!(m.sees_queued_job(None), "template imports show to everyone");
    }

    #[test]
    fn template_admins_read_but_only_owners_build_other_workspaces() {
        let admin = caller(ADMIN);
        assert!(!admin.can_build_workspace_of("someone-else"));
        assert!(admin.can_build_workspace_of("me"));
        assert!(admin.may_supply_build_state());
        assert!(admin.may_access_build_state());
        assert!(!admin.may_set_build_log_level());
        assert!(!admin.may_always_cancel());
        assert!(!admin.manages_users());
        let owner = caller(OWNER);
        assert!(owner.can_build_workspace_of("someone-else"));
        assert!(owner.may_set_build_log_level() && owner.may_always_cancel());
        assert!(owner.manages_users());
    }

    #[test]
    fn members_act_on_their_own_things_only() {
        let m = caller(MEMBER);
        assert!(m.can_build_workspace_of("me"));
        assert!(!m.can_build_workspace_of("someone-else"));
        assert!(!m.may_supply_build_state());
        assert!(!m.may_access_build_state());
        assert!(!m.manages_templates());
        assert!(m.may_create_workspace_for("me"));
        assert!(!m.may_create_workspace_for("someone-else"));
        assert!(m.may_read_file_of("me"));
        assert!(!m.may_read_file_of("someone-else"));
    }
}
