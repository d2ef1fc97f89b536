//! `POST /authcheck` in Coder's RBAC words: may the caller do `action` on an object? Answered
//! from kiln's own rules (`permissions.rs`), so the answer is what the API then does, for the
//! objects kiln has; any other resource type or action is `false`, even for an owner (the
//! dashboard then hides what kiln does not serve).

use super::permissions::Caller;

/// The object of a check, as the client described it (or as the stored object it named by
/// `resource_id` says: its real owner and organization).
#[derive(Clone, Debug, Default)]
pub struct Object<'a> {
    pub resource_type: &'a str,
    /// The user owning it (`me` already replaced by the caller's id).
    pub owner_id: Option<&'a str>,
    /// Whether the caller belongs to the object's organization, when it names one (kiln has
    /// one organization, which every user belongs to).
    pub in_member_org: bool,
}

/// Whether `caller` may do `action` on `object`.
pub fn allowed(caller: &Caller, object: &Object, action: &str) -> bool {
    if !object.in_member_org {
        return false;
    }
    let own = object.owner_id.is_some_and(|o| o == caller.user_id);
    let owner = object.owner_id;
    match (object.resource_type, action) {
        ("workspace", "create") => {
            owner.map_or(caller.is_owner(), |o| caller.may_create_workspace_for(o))
        }
        ("workspace", "read") => owner.map_or(caller.reads_every_workspace(), |o| {
            caller.can_read_workspace_of(o)
        }),
        ("workspace", "update" | "start" | "stop" | "delete") => owner
            .map_or(caller.is_owner(), |o| {
                caller.can_read_workspace_of(o) && caller.can_build_workspace_of(o)
            }),
        ("template", "read" | "use") => true,
        ("template", "create" | "update" | "delete") => caller.manages_templates(),
        ("user", "read") => true,
        ("user", "read_personal" | "update_personal") => own || caller.manages_users(),
        ("user", "create" | "update" | "delete") => caller.manages_users(),
        ("organization", "read") => true,
        ("organization_member", "read") => true,
        ("organization_member", "create" | "update" | "delete") => caller.manages_users(),
        ("provisioner_daemon", "read") => caller.manages_templates(),
        ("provisioner_daemon", "create" | "update" | "delete") => caller.is_owner(),
        ("provisioner_jobs", "read") => caller.manages_templates(),
        ("deployment_config", "read") => caller.is_owner(),
        ("file", "create") => true,
        ("file", "read") => {
            owner.map_or(caller.manages_templates(), |o| caller.may_read_file_of(o))
        }
        ("api_key", "create" | "read" | "update" | "delete") => own || caller.manages_users(),
        ("assign_role", "read") => true,
        ("assign_role", "assign" | "unassign") => caller.manages_users(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn check(roles: &[Role], resource_type: &str, owner: Option<&str>, action: &str) -> bool {
        let caller = Caller {
            user_id: "me",
            roles,
        };
        let object = Object {
            resource_type,
            owner_id: owner,
            in_member_org: true,
        };
        allowed(&caller, &object, action)
    }

    #[test]
    fn the_dashboards_checks_as_kiln_does_them() {
        let owner = &[Role::Owner][..];
        let admin = &[Role::TemplateAdmin][..];
        let member = &[][..];
        for (roles, want) in [(owner, true), (admin, false), (member, false)] {
            assert_eq!(check(roles, "user", None, "create"), want);
            assert_eq!(check(roles, "deployment_config", None, "read"), want);
        }
        for (roles, want) in [(owner, true), (admin, true), (member, false)] {
            assert_eq!(check(roles, "template", None, "create"), want);
            assert_eq!(check(roles, "workspace", Some("other"), "read"), want);
        }
        // Kiln has no groups, licenses or insights: false, even for an owner.
        for (t, a) in [
            ("group", "read"),
            ("license", "read"),
            ("template", "view_insights"),
            ("nope", "read"),
        ] {
            assert!(!check(owner, t, None, a), "{t} {a}");
        }
    }

    #[test]
    fn own_objects_and_others() {
        let member = &[][..];
        assert!(check(member, "workspace", Some("me"), "create"));
        assert!(check(member, "workspace", Some("me"), "stop"));
        assert!(!check(member, "workspace", Some("other"), "stop"));
        assert!(!check(
            &[Role::TemplateAdmin],
            "workspace",
            Some("other"),
            "stop"
        ));
        assert!(check(member, "api_key", Some("me"), "create"));
        assert!(!check(member, "api_key", Some("other"), "read"));
        assert!(check(member, "user", Some("me"), "update_personal"));
        assert!(!check(member, "user", Some("me"), "update"));
        let caller = Caller {
            user_id: "me",
            roles: &[Role::Owner],
        };
        let elsewhere = Object {
            resource_type: "template",
            owner_id: None,
            in_member_org: false,
        };
        assert!(
            !allowed(&caller, &elsewhere, "read"),
            "another organization"
        );
    }
}
