//! The shared statements on a pooled connection or its transaction: each one prepared once
//! per connection (`pool.rs`, its `?N` placeholders written `$N` then), parameters sent from
//! neutral values (type-checked against what the server expects, as the driver checks its
//! own), rows read as the driver reads them.

use super::dialect::DIALECT;
use super::pool::{Client, Statements, Tx};
use crate::store::StoreResult;
use crate::store::sql::{Conn, Dialect, Owned, Row, Value};
use postgres::GenericClient;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{IsNull, ToSql, Type};

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Value<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(n) => n.to_sql(ty, out),
            Value::Bool(b) => b.to_sql(ty, out),
            Value::Text(t) => t.to_sql(ty, out),
            Value::Blob(b) => b.to_sql(ty, out),
            Value::Texts(list) => list.to_sql(ty, out),
            Value::Ints(list) => list.to_sql(ty, out),
        }
    }

    /// Each value is checked as its own type would be (`to_sql_checked`).
    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(n) => n.to_sql_checked(ty, out),
            Value::Bool(b) => b.to_sql_checked(ty, out),
            Value::Text(t) => t.to_sql_checked(ty, out),
            Value::Blob(b) => b.to_sql_checked(ty, out),
            Value::Texts(list) => list.to_sql_checked(ty, out),
            Value::Ints(list) => list.to_sql_checked(ty, out),
        }
    }
}

impl Row for postgres::Row {
    fn int(&self, i: usize) -> StoreResult<Option<i64>> {
        Ok(self.try_get(i)?)
    }

    fn boolean(&self, i: usize) -> StoreResult<Option<bool>> {
        Ok(self.try_get(i)?)
    }

    fn text(&self, i: usize) -> StoreResult<Option<&str>> {
        Ok(self.try_get(i)?)
    }

    fn blob(&self, i: usize) -> StoreResult<Option<&[u8]>> {
        Ok(self.try_get(i)?)
    }

    fn owned(&self, i: usize) -> StoreResult<Owned> {
        let ty = self.columns().get(i).map(|c| c.type_().clone());
        let value = if ty == Some(Type::BOOL) {
            self.try_get::<_, Option<bool>>(i)?.map(Owned::Bool)
        } else if ty == Some(Type::BYTEA) {
            self.try_get::<_, Option<Vec<u8>>>(i)?.map(Owned::Blob)
        } else if ty == Some(Type::TEXT) || ty == Some(Type::VARCHAR) {
            self.try_get::<_, Option<String>>(i)?.map(Owned::Text)
        } else {
            self.try_get::<_, Option<i64>>(i)?.map(Owned::Int)
        };
        Ok(value.unwrap_or(Owned::Null))
    }
}

fn each_row(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    sql: &str,
    params: &[Value],
    stream: bool,
    each: &mut dyn FnMut(&dyn Row) -> StoreResult<bool>,
) -> StoreResult<()> {
    let statement = statements.get(sql, |q| client.prepare(q))?;
    if stream {
        let mut rows = client.query_raw(&statement, params.iter())?;
        while let Some(r) = rows.next()? {
            if !each(&r)? {
                break;
            }
        }
    } else {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as _).collect();
        for r in client.query(&statement, &params)? {
            if !each(&r)? {
                break;
            }
        }
    }
    Ok(())
}

fn execute(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    sql: &str,
    params: &[Value],
) -> StoreResult<u64> {
    let statement = statements.get(sql, |q| client.prepare(q))?;
    let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as _).collect();
    Ok(client.execute(&statement, &params)?)
}

impl Conn for Client {
    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    fn each_row(
        &mut self,
        sql: &str,
        params: &[Value],
        stream: bool,
        each: &mut dyn FnMut(&dyn Row) -> StoreResult<bool>,
    ) -> StoreResult<()> {
        let (client, statements) = self.parts();
        each_row(client, statements, sql, params, stream, each)
    }

    fn execute_sql(&mut self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        let (client, statements) = self.parts();
        execute(client, statements, sql, params)
    }
}

impl Conn for Tx<'_> {
    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    fn each_row(
        &mut self,
        sql: &str,
        params: &[Value],
        stream: bool,
        each: &mut dyn FnMut(&dyn Row) -> StoreResult<bool>,
    ) -> StoreResult<()> {
        let (tx, statements) = self.parts();
        each_row(tx, statements, sql, params, stream, each)
    }

    fn execute_sql(&mut self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        let (tx, statements) = self.parts();
        execute(tx, statements, sql, params)
    }
}
