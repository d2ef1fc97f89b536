//! The statements the stores run on hot paths, by name, with sample parameters: the same text
//! each store sends (the shared statements as its dialect builds them, placeholders written
//! as it reads them), for `tests/library/query_plans.rs` to plan.

use super::{Dialect, Sql, builds, jobs, logs, overview, users, workspaces};
use crate::store::{HotQuery, Sample};

const ID: Sample = Sample::Text("00000000-0000-0000-0000-000000000000");

/// The sample values that a backend spells its own way.
pub struct Samples {
    /// A list of ids, as the store passes one (`Value::Texts`).
    pub ids: Sample,
    /// A job's key, as a take names it (`Dialect::take_key`).
    pub take_key: Sample,
}

pub fn hot_queries(d: &'static Dialect, s: Samples) -> Vec<HotQuery> {
    use Sample::{Int, Null, Text};
    let q = |name: &'static str, sql: &str, params: &[Sample]| {
        HotQuery::new(name, d.native(sql), params)
    };
    let recent = |owner: Sample| match d.recent_builds_paged {
        true => vec![owner, Int(64), Int(0)],
        false => vec![owner],
    };
    vec![
        q("build by id", builds::BY_ID.text(d), &[ID]),
        q("build by job", builds::BY_JOB.text(d), &[ID]),
        q("build by number", builds::BY_NUMBER.text(d), &[ID, Int(3)]),
        q("latest build", builds::LATEST.text(d), &[ID]),
        q(
            "latest builds of a page of workspaces",
            builds::LATEST_OF_MANY.text(d),
            &[s.ids],
        ),
        q(
            "resources of a page of builds",
            builds::RESOURCES_OF_MANY.text(d),
            &[s.ids],
        ),
        q(
            "latest build before numbering the next",
            builds::LATEST_FOR_INSERT.text(d),
            &[ID],
        ),
        q(
            "page of a workspace's builds (deep offset)",
            builds::PAGE.text(d),
            &[ID, Int(0), Null, Int(25), Int(1_000_000_000)],
        ),
        q("workspace by id", workspaces::BY_ID.text(d), &[ID]),
        q(
            "workspaces of an owner",
            workspaces::LIST_OF_OWNER.text(d),
            &[ID],
        ),
        q(
            "a page of an owner's workspaces",
            workspaces::PAGE_OF_OWNER.text(d),
            &[ID, Int(25), Int(0)],
        ),
        q(
            "a page of everyone's workspaces",
            workspaces::PAGE.text(d),
            &[Int(25), Int(0)],
        ),
        q(
            "an owner's workspace count",
            workspaces::COUNT_OF_OWNER.text(d),
            &[ID],
        ),
        q("job by id", jobs::JOB_BY_ID.text(d), &[ID]),
        q("any job pending", jobs::ANY_PENDING, &[]),
        q(
            "the next tag set of the pending jobs",
            jobs::NEXT_PENDING_TAGS,
            &[Text("{}")],
        ),
        q(
            "the oldest pending job of a tag set",
            jobs::OLDEST_WITH_TAGS.text(d),
            &[Text("{}")],
        ),
        q(
            "take a job",
            jobs::TAKE_JOB.text(d),
            &[Int(1), ID, s.take_key],
        ),
        q("queue position", d.queue_position, &[Int(5000)]),
        q("the queue's order", jobs::PENDING_SEQS, &[]),
        q(
            "log lines after an id",
            logs::LOGS_AFTER,
            &[ID, Int(0), Int(i64::MAX), Int(1000)],
        ),
        q("a job's log accounting", logs::ACCOUNT, &[ID]),
        q(
            "where an overflowing log's head ends",
            logs::FIRST_PAST.text(d),
            &[ID, Int(786_176)],
        ),
        q(
            "the oldest lines of a log's tail",
            logs::LINES_AFTER,
            &[ID, Int(0), Int(100)],
        ),
        q(
            "api key with its user",
            users::API_KEY_WITH_USER.text(d),
            &[ID],
        ),
        q("status page change marker", overview::CHANGE_MARKER, &[]),
        q("busy workers", overview::BUSY_JOBS, &[]),
        q("status page queue", overview::PENDING_QUEUE, &[Int(100)]),
        q(
            "recent builds",
            overview::RECENT_BUILDS.text(d),
            &recent(Null),
        ),
        q(
            "recent builds of an owner",
            overview::RECENT_BUILDS.text(d),
            &recent(ID),
        ),
    ]
}
