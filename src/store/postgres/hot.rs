//! The statements this store runs on hot paths, by name, with sample parameters: the same
//! text the store sends (built by the same functions), for `tests/query_plans.rs` to plan.

use super::PgStore;
use super::dialect::DIALECT;
use crate::store::sql::{Sql, builds, jobs, logs, overview, users, workspaces};
use crate::store::{HotQuery, Sample, StoreResult};

const ID: Sample = Sample::Text("00000000-0000-0000-0000-000000000000");
/// A list of ids, as the store passes one.
const IDS: Sample =
    Sample::Text("{00000000-0000-0000-0000-000000000000,00000000-0000-0000-0000-000000000001}");

impl PgStore {
    pub fn hot_queries() -> Vec<HotQuery> {
        use Sample::{Int, Null};
        vec![
            HotQuery::new(
                "build by id",
                DIALECT.native(builds::BY_ID.text(&DIALECT)),
                &[ID],
            ),
            HotQuery::new(
                "build by job",
                DIALECT.native(builds::BY_JOB.text(&DIALECT)),
                &[ID],
            ),
            HotQuery::new(
                "build by number",
                DIALECT.native(builds::BY_NUMBER.text(&DIALECT)),
                &[ID, Int(3)],
            ),
            HotQuery::new(
                "latest build",
                DIALECT.native(builds::LATEST.text(&DIALECT)),
                &[ID],
            ),
            HotQuery::new(
                "latest builds of a page of workspaces",
                DIALECT.native(builds::LATEST_OF_MANY.text(&DIALECT)),
                &[IDS],
            ),
            HotQuery::new(
                "resources of a page of builds",
                DIALECT.native(builds::RESOURCES_OF_MANY.text(&DIALECT)),
                &[IDS],
            ),
            HotQuery::new(
                "latest build before numbering the next",
                DIALECT.native(builds::LATEST_FOR_INSERT.text(&DIALECT)),
                &[ID],
            ),
            HotQuery::new(
                "page of a workspace's builds (deep offset)",
                DIALECT.native(builds::PAGE.text(&DIALECT)),
                &[ID, Int(0), Null, Int(25), Int(1_000_000_000)],
            ),
            HotQuery::new(
                "workspace by id",
                DIALECT.native(workspaces::BY_ID.text(&DIALECT)),
                &[ID],
            ),
            HotQuery::new(
                "workspaces of an owner",
                DIALECT.native(workspaces::LIST_OF_OWNER.text(&DIALECT)),
                &[ID],
            ),
            HotQuery::new(
                "a page of an owner's workspaces",
                DIALECT.native(workspaces::PAGE_OF_OWNER.text(&DIALECT)),
                &[ID, Int(25), Int(0)],
            ),
            HotQuery::new(
                "a page of everyone's workspaces",
                DIALECT.native(workspaces::PAGE.text(&DIALECT)),
                &[Int(25), Int(0)],
            ),
            HotQuery::new(
                "an owner's workspace count",
                DIALECT.native(workspaces::COUNT_OF_OWNER.text(&DIALECT)),
                &[ID],
            ),
            HotQuery::new(
                "job by id",
                DIALECT.native(jobs::JOB_BY_ID.text(&DIALECT)),
                &[ID],
            ),
            HotQuery::new("any job pending", DIALECT.native(jobs::ANY_PENDING), &[]),
            HotQuery::new(
                "the oldest pending jobs to take",
                DIALECT.native(jobs::TAKE_CANDIDATES.text(&DIALECT)),
                &[],
            ),
            HotQuery::new(
                "take a job",
                DIALECT.native(jobs::TAKE_JOB.text(&DIALECT)),
                &[Int(1), ID, ID],
            ),
            HotQuery::new(
                "queue position",
                DIALECT.native(DIALECT.queue_position),
                &[Int(5000)],
            ),
            HotQuery::new("the queue's order", DIALECT.native(jobs::PENDING_SEQS), &[]),
            HotQuery::new(
                "log lines after an id",
                DIALECT.native(logs::LOGS_AFTER),
                &[ID, Int(0), Int(i64::MAX), Int(1000)],
            ),
            HotQuery::new(
                "api key with its user",
                DIALECT.native(users::API_KEY_WITH_USER.text(&DIALECT)),
                &[ID],
            ),
            HotQuery::new(
                "status page change marker",
                DIALECT.native(overview::CHANGE_MARKER),
                &[],
            ),
            HotQuery::new("busy workers", DIALECT.native(overview::BUSY_JOBS), &[]),
            HotQuery::new(
                "status page queue",
                DIALECT.native(overview::PENDING_QUEUE),
                &[Int(100)],
            ),
            HotQuery::new(
                "recent builds",
                DIALECT.native(overview::RECENT_BUILDS.text(&DIALECT)),
                &[Null, Int(64), Int(0)],
            ),
            HotQuery::new(
                "recent builds of an owner",
                DIALECT.native(overview::RECENT_BUILDS.text(&DIALECT)),
                &[ID, Int(64), Int(0)],
            ),
        ]
    }

    /// `EXPLAIN` of `q` on this store's database (its sample values written in as literals,
    /// so the plan is the one a bound statement gets), with sequential scans priced out
    /// (`enable_seqscan = off`): a `Seq Scan` left in the plan has no index to use. One line
    /// per plan line.
    pub fn query_plan(&self, q: &HotQuery) -> StoreResult<Vec<String>> {
        let mut sql = q.sql.clone();
        for (i, p) in q.params.iter().enumerate().rev() {
            let literal = match p {
                Sample::Text(t) => format!("'{}'", t.replace('\'', "''")),
                Sample::Int(n) => format!("({n})::bigint"),
                Sample::Null => "NULL".to_string(),
            };
            sql = sql.replace(&format!("${}", i + 1), &literal);
        }
        let mut conn = self.conn()?;
        conn.batch_execute("SET enable_seqscan = off")?;
        let plan = conn.query(&format!("EXPLAIN {sql}"), &[]);
        conn.batch_execute("RESET enable_seqscan")?;
        Ok(plan?.iter().map(|r| r.get::<_, String>(0)).collect())
    }
}
