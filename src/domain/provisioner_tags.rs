//! Coder's provisioner tag rules. Every daemon and every job carries `scope` (`organization` or
//! `user`) and `owner` (the user id for `user` scope, empty otherwise). An untagged job (just
//! `scope=organization, owner=""`) goes only to an untagged daemon; a tagged job needs a daemon
//! whose tags include all of its tags.

use std::collections::BTreeMap;

pub type Tags = BTreeMap<String, String>;

pub const TAG_SCOPE: &str = "scope";
pub const TAG_OWNER: &str = "owner";
pub const SCOPE_ORGANIZATION: &str = "organization";
pub const SCOPE_USER: &str = "user";

/// Coder's `MutateTags`: fills in `scope` and `owner`. `user_id` is the owner of a `user`
/// scope (the one who made the job, or nobody for a daemon).
pub fn normalize(mut tags: Tags, user_id: &str) -> Tags {
    match tags.get(TAG_SCOPE).map(String::as_str) {
        Some(SCOPE_USER) => {
            tags.insert(TAG_OWNER.into(), user_id.into());
        }
        _ => {
            tags.insert(TAG_SCOPE.into(), SCOPE_ORGANIZATION.into());
            tags.insert(TAG_OWNER.into(), String::new());
        }
    }
    tags
}

/// The tags of an untagged daemon or job.
pub fn untagged() -> Tags {
    normalize(Tags::new(), "")
}

/// Whether a daemon with `daemon` tags may take a job with `job` tags (both normalized; an
/// empty map counts as untagged).
pub fn matches(daemon: &Tags, job: &Tags) -> bool {
    let plain = untagged();
    let daemon = if daemon.is_empty() { &plain } else { daemon };
    let job = if job.is_empty() { &plain } else { job };
    if *job == plain {
        return *daemon == plain;
    }
    job.iter().all(|(k, v)| daemon.get(k) == Some(v))
}

/// Tags from their JSON column; anything unreadable counts as untagged.
pub fn from_json(text: &str) -> Tags {
    serde_json::from_str(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pairs: &[(&str, &str)]) -> Tags {
        normalize(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            "u1",
        )
    }

    #[test]
    fn coders_rules() {
        assert_eq!(t(&[]), untagged());
        assert_eq!(t(&[("scope", "user")])["owner"], "u1");
        assert_eq!(t(&[("scope", "bogus")])["scope"], "organization");
        // Untagged jobs only to untagged daemons.
        assert!(matches(&t(&[]), &t(&[])));
        assert!(matches(&Tags::new(), &Tags::new()));
        assert!(!matches(&t(&[("os", "linux")]), &t(&[])));
        // A tagged job needs all of its tags.
        assert!(matches(
            &t(&[("os", "linux"), ("gpu", "1")]),
            &t(&[("os", "linux")])
        ));
        assert!(!matches(
            &t(&[("os", "linux")]),
            &t(&[("os", "linux"), ("gpu", "1")])
        ));
        assert!(!matches(&t(&[]), &t(&[("os", "linux")])));
        assert!(!matches(&t(&[("os", "mac")]), &t(&[("os", "linux")])));
    }
}
