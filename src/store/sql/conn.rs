//! What the shared statements run on: a connection or an open transaction (`Conn`), taking
//! neutral parameters (`value.rs`) and giving neutral rows (`Row`). Each backend implements
//! `Conn` and `Row` over its driver, preparing each statement once per connection (SQLite's
//! statement cache, the PostgreSQL pool's).

use super::dialect::{Dialect, Sql};
use super::value::{Owned, Value};
use crate::model::{Time, Transition};
use crate::store::{StoreError, StoreResult};

/// A row of a result, column by column (`None`: NULL). A column of another type than asked
/// is an error, as each driver reports it.
pub trait Row {
    fn int(&self, i: usize) -> StoreResult<Option<i64>>;
    /// A boolean: an integer on SQLite (0 is false), a `boolean` on PostgreSQL.
    fn boolean(&self, i: usize) -> StoreResult<Option<bool>>;
    fn text(&self, i: usize) -> StoreResult<Option<&str>>;
    fn blob(&self, i: usize) -> StoreResult<Option<&[u8]>>;
    fn owned(&self, i: usize) -> StoreResult<Owned>;
}

impl dyn Row + '_ {
    /// Column `i` as a `T` (an `Option` for a column that may be NULL).
    pub fn get<T: Column>(&self, i: usize) -> StoreResult<T> {
        T::column(self, i)
    }

    /// Text column `i`, not NULL, borrowed from the row.
    pub fn str(&self, i: usize) -> StoreResult<&str> {
        self.text(i)?.ok_or_else(|| null(i))
    }
}

/// A type a column is read as.
pub trait Column: Sized {
    fn column(r: &dyn Row, i: usize) -> StoreResult<Self>;
}

fn null(i: usize) -> StoreError {
    StoreError::Unavailable(format!("database: column {i} is NULL"))
}

/// `T` and `Option<T>` read with `$read` (`None`: NULL).
macro_rules! column {
    ($t:ty, |$r:ident, $i:ident| $read:expr) => {
        impl Column for Option<$t> {
            fn column($r: &dyn Row, $i: usize) -> StoreResult<Self> {
                $read
            }
        }

        impl Column for $t {
            fn column(r: &dyn Row, i: usize) -> StoreResult<Self> {
                Option::<$t>::column(r, i)?.ok_or_else(|| null(i))
            }
        }
    };
}

column!(i64, |r, i| r.int(i));
column!(bool, |r, i| r.boolean(i));
column!(String, |r, i| Ok(r.text(i)?.map(str::to_string)));
column!(Vec<u8>, |r, i| Ok(r.blob(i)?.map(<[u8]>::to_vec)));
column!(Time, |r, i| Ok(r.int(i)?.map(Time)));
column!(Transition, |r, i| {
    r.text(i)?
        .map(|s| {
            Transition::parse(s).ok_or_else(|| {
                StoreError::Unavailable(format!("database: column {i}: not a transition: {s:?}"))
            })
        })
        .transpose()
});

/// A connection of a backend, or its open transaction.
pub trait Conn {
    fn dialect(&self) -> &'static Dialect;

    /// Runs `sql` with `params` and hands `each` its rows in order until it returns `false`.
    /// `stream`: the rows may be many and the caller may stop early, so they are fetched as
    /// they are visited (PostgreSQL otherwise fetches them all in one reply).
    fn each_row(
        &mut self,
        sql: &str,
        params: &[Value],
        stream: bool,
        each: &mut dyn FnMut(&dyn Row) -> StoreResult<bool>,
    ) -> StoreResult<()>;

    /// Runs a statement that returns no rows: how many rows it changed.
    fn execute_sql(&mut self, sql: &str, params: &[Value]) -> StoreResult<u64>;
}

impl dyn Conn + '_ {
    /// Every row, each read with `f`.
    pub fn query<T>(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: &[Value],
        mut f: impl FnMut(&dyn Row) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let sql = sql.text(self.dialect());
        let mut out = Vec::new();
        self.each_row(sql, params, false, &mut |r| {
            out.push(f(r)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// The first row, read with `f`; `None` when there is none.
    pub fn query_opt<T>(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: &[Value],
        f: impl FnOnce(&dyn Row) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let sql = sql.text(self.dialect());
        let mut f = Some(f);
        let mut out = None;
        self.each_row(sql, params, false, &mut |r| {
            if let Some(f) = f.take() {
                out = Some(f(r)?);
            }
            Ok(false)
        })?;
        Ok(out)
    }

    /// The first row, read with `f`; `NotFound` when there is none.
    pub fn query_one<T>(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: &[Value],
        f: impl FnOnce(&dyn Row) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.query_opt(sql, params, f)?.ok_or(StoreError::NotFound)
    }

    /// Steps through the rows as `visit` reads them, until it returns `false`.
    pub fn scan(
        &mut self,
        sql: &(impl Sql + ?Sized),
        params: &[Value],
        mut visit: impl FnMut(&dyn Row) -> StoreResult<bool>,
    ) -> StoreResult<()> {
        let sql = sql.text(self.dialect());
        self.each_row(sql, params, true, &mut visit)
    }

    /// Runs a statement that returns no rows: how many rows it changed.
    pub fn execute(&mut self, sql: &(impl Sql + ?Sized), params: &[Value]) -> StoreResult<u64> {
        let sql = sql.text(self.dialect());
        self.execute_sql(sql, params)
    }
}

/// A JSON column: `value` as text.
pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// A JSON column back as `T`.
pub fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Unavailable(format!("database: a JSON column does not parse: {e}"))
    })
}
