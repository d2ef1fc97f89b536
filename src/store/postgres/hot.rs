//! The hot statements (`store::sql::hot`) with this store's sample values, and how this
//! database plans them.

use super::PgStore;
use super::dialect::DIALECT;
use crate::store::sql::hot::{Samples, hot_queries};
use crate::store::{HotQuery, Sample, StoreResult};

const ID: Sample = Sample::Text("00000000-0000-0000-0000-000000000000");
/// A list of ids, as the store passes one.
const IDS: Sample =
    Sample::Text("{00000000-0000-0000-0000-000000000000,00000000-0000-0000-0000-000000000001}");

impl PgStore {
    pub fn hot_queries() -> Vec<HotQuery> {
        let samples = Samples {
            ids: IDS,
            take_key: ID,
        };
        hot_queries(&DIALECT, samples)
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
