//! The statements this store runs on hot paths, by name, with sample parameters: the same
//! text the store sends (built by the same functions), for `tests/query_plans.rs` to plan.

use super::SqliteStore;
use super::dialect::DIALECT;
use crate::store::sql::{Sql, builds, jobs, logs, overview, users, workspaces};
use crate::store::{HotQuery, Sample};

const ID: Sample = Sample::Text("00000000-0000-0000-0000-000000000000");
/// A list of ids, as the store passes one.
const IDS: Sample = Sample::Text(
    "[\"00000000-0000-0000-0000-000000000000\", \"00000000-0000-0000-0000-000000000001\"]",
);

impl SqliteStore {
    pub fn hot_queries() -> Vec<HotQuery> {
        use Sample::{Int, Null};
        vec![
            HotQuery::new("build by id", builds::BY_ID.text(&DIALECT), &[ID]),
            HotQuery::new("build by job", builds::BY_JOB.text(&DIALECT), &[ID]),
            HotQuery::new(
                "build by number",
                builds::BY_NUMBER.text(&DIALECT),
                &[ID, Int(3)],
            ),
            HotQuery::new("latest build", builds::LATEST.text(&DIALECT), &[ID]),
            HotQuery::new(
                "latest builds of a page of workspaces",
                builds::LATEST_OF_MANY.text(&DIALECT),
                &[IDS],
            ),
            HotQuery::new(
                "resources of a page of builds",
                builds::RESOURCES_OF_MANY.text(&DIALECT),
                &[IDS],
            ),
            HotQuery::new(
                "latest build before numbering the next",
                builds::LATEST_FOR_INSERT.text(&DIALECT),
                &[ID],
            ),
            HotQuery::new(
                "page of a workspace's builds (deep offset)",
                builds::PAGE.text(&DIALECT),
                &[ID, Int(0), Null, Int(25), Int(1_000_000_000)],
            ),
            HotQuery::new("workspace by id", workspaces::BY_ID.text(&DIALECT), &[ID]),
            HotQuery::new(
                "workspaces of an owner",
                workspaces::LIST_OF_OWNER.text(&DIALECT),
                &[ID],
            ),
            HotQuery::new(
                "a page of an owner's workspaces",
                workspaces::PAGE_OF_OWNER.text(&DIALECT),
                &[ID, Int(25), Int(0)],
            ),
            HotQuery::new(
                "a page of everyone's workspaces",
                workspaces::PAGE.text(&DIALECT),
                &[Int(25), Int(0)],
            ),
            HotQuery::new(
                "an owner's workspace count",
                workspaces::COUNT_OF_OWNER.text(&DIALECT),
                &[ID],
            ),
            HotQuery::new("job by id", jobs::JOB_BY_ID.text(&DIALECT), &[ID]),
            HotQuery::new("any job pending", jobs::ANY_PENDING, &[]),
            HotQuery::new(
                "the oldest pending jobs to take",
                jobs::TAKE_CANDIDATES.text(&DIALECT),
                &[],
            ),
            HotQuery::new(
                "take a job",
                jobs::TAKE_JOB.text(&DIALECT),
                &[Int(1), ID, Int(1)],
            ),
            HotQuery::new("queue position", DIALECT.queue_position, &[Int(5000)]),
            HotQuery::new("the queue's order", jobs::PENDING_SEQS, &[]),
            HotQuery::new(
                "log lines after an id",
                logs::LOGS_AFTER,
                &[ID, Int(0), Int(i64::MAX), Int(1000)],
            ),
            HotQuery::new(
                "api key with its user",
                users::API_KEY_WITH_USER.text(&DIALECT),
                &[ID],
            ),
            HotQuery::new("status page change marker", overview::CHANGE_MARKER, &[]),
            HotQuery::new("busy workers", overview::BUSY_JOBS, &[]),
            HotQuery::new("status page queue", overview::PENDING_QUEUE, &[Int(100)]),
            HotQuery::new(
                "recent builds",
                overview::RECENT_BUILDS.text(&DIALECT),
                &[Null],
            ),
            HotQuery::new(
                "recent builds of an owner",
                overview::RECENT_BUILDS.text(&DIALECT),
                &[ID],
            ),
        ]
    }

    /// `EXPLAIN QUERY PLAN` of `q` on this store's database: one line per step (`detail`).
    pub fn query_plan(&self, q: &HotQuery) -> crate::store::StoreResult<Vec<String>> {
        let conn = self.conn()?;
        let params: Vec<rusqlite::types::Value> = q
            .params
            .iter()
            .map(|p| match p {
                Sample::Text(t) => rusqlite::types::Value::Text(t.to_string()),
                Sample::Int(n) => rusqlite::types::Value::Integer(*n),
                Sample::Null => rusqlite::types::Value::Null,
            })
            .collect();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", q.sql))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
            r.get::<_, String>(3)
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
