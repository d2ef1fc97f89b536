//! The hot statements (`store::sql::hot`) with this store's sample values, and how this
//! database plans them.

use super::SqliteStore;
use super::dialect::DIALECT;
use crate::store::sql::hot::{Samples, hot_queries};
use crate::store::{HotQuery, Sample};

/// A list of ids, as the store passes one.
const IDS: Sample = Sample::Text(
    "[\"00000000-0000-0000-0000-000000000000\", \"00000000-0000-0000-0000-000000000001\"]",
);

impl SqliteStore {
    pub fn hot_queries() -> Vec<HotQuery> {
        let samples = Samples {
            ids: IDS,
            take_key: Sample::Int(1),
        };
        hot_queries(&DIALECT, samples)
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
