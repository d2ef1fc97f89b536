//! The shared statements on a rusqlite connection: each one prepared once per connection
//! (`prepare_cached`: rusqlite's `execute` and `query_row` parse and plan their SQL on every
//! call), parameters bound from neutral values, rows read as rusqlite reads them.

use super::dialect::DIALECT;
use crate::store::sql::{Conn, Dialect, Owned, Row, Value, to_json};
use crate::store::{StoreError, StoreResult};
use rusqlite::types::{ToSqlOutput, ValueRef};

/// A connection of the pool, or the writer's inside its open transaction.
pub struct Lite<'a>(pub &'a rusqlite::Connection);

impl Conn for Lite<'_> {
    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    fn each_row(
        &mut self,
        sql: &str,
        params: &[Value],
        _stream: bool,
        each: &mut dyn FnMut(&dyn Row) -> StoreResult<bool>,
    ) -> StoreResult<()> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        while let Some(r) = rows.next()? {
            if !each(r)? {
                break;
            }
        }
        Ok(())
    }

    fn execute_sql(&mut self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        let mut stmt = self.0.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(params))? as u64)
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(n) => ToSqlOutput::from(n),
            Value::Bool(b) => ToSqlOutput::from(b),
            Value::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Value::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::Texts(list) => ToSqlOutput::from(to_json(list)),
            Value::Ints(list) => ToSqlOutput::from(to_json(list)),
        })
    }
}

/// A column of another type than asked, as rusqlite's `FromSql` refuses it.
fn wrong_type(r: &rusqlite::Row, i: usize, found: ValueRef) -> StoreError {
    let name = r.as_ref().column_name(i).unwrap_or("?").to_string();
    rusqlite::Error::InvalidColumnType(i, name, found.data_type()).into()
}

impl Row for rusqlite::Row<'_> {
    fn int(&self, i: usize) -> StoreResult<Option<i64>> {
        Ok(self.get(i)?)
    }

    fn boolean(&self, i: usize) -> StoreResult<Option<bool>> {
        Ok(self.get(i)?)
    }

    fn text(&self, i: usize) -> StoreResult<Option<&str>> {
        match self.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => std::str::from_utf8(t).map(Some).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    i,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
                .into()
            }),
            other => Err(wrong_type(self, i, other)),
        }
    }

    fn blob(&self, i: usize) -> StoreResult<Option<&[u8]>> {
        match self.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(b) => Ok(Some(b)),
            other => Err(wrong_type(self, i, other)),
        }
    }

    fn owned(&self, i: usize) -> StoreResult<Owned> {
        Ok(match self.get_ref(i)? {
            ValueRef::Null => Owned::Null,
            ValueRef::Integer(n) => Owned::Int(n),
            ValueRef::Text(_) => Owned::Text(self.get(i)?),
            ValueRef::Blob(b) => Owned::Blob(b.to_vec()),
            other @ ValueRef::Real(_) => return Err(wrong_type(self, i, other)),
        })
    }
}
