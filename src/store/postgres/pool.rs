//! Pooled connections that prepare each statement once: a connection keeps the statements it
//! prepared, by their text, so a query costs one round trip instead of two. `Client` and `Tx`
//! have the driver's method names; the SQL elsewhere does not know the difference.

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{NoTls, Row, RowIter, Statement, Transaction};
use std::collections::HashMap;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Prepared statements of one connection.
#[derive(Default)]
pub struct Statements(HashMap<String, Statement>);

impl Statements {
    /// At most this many per connection (kiln has fewer): past it, the cache starts over.
    const MAX: usize = 512;

    fn get(
        &mut self,
        sql: &str,
        prepare: impl FnOnce(&str) -> Result<Statement, postgres::Error>,
    ) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.0.get(sql) {
            return Ok(s.clone());
        }
        let s = prepare(sql)?;
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

pub struct Client {
    client: postgres::Client,
    statements: Statements,
}

impl Client {
    pub fn query(&mut self, sql: &str, params: Params) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statements.get(sql, |q| self.client.prepare(q))?;
        self.client.query(&s, params)
    }

    pub fn query_opt(&mut self, sql: &str, params: Params) -> Result<Option<Row>, postgres::Error> {
        let s = self.statements.get(sql, |q| self.client.prepare(q))?;
        self.client.query_opt(&s, params)
    }

    pub fn query_one(&mut self, sql: &str, params: Params) -> Result<Row, postgres::Error> {
        let s = self.statements.get(sql, |q| self.client.prepare(q))?;
        self.client.query_one(&s, params)
    }

    /// Rows as they come from the server.
    pub fn query_each(
        &mut self,
        sql: &str,
        params: Params,
        mut visit: impl FnMut(&Row) -> bool,
    ) -> Result<(), postgres::Error> {
        let s = self.statements.get(sql, |q| self.client.prepare(q))?;
        let mut rows: RowIter = self.client.query_raw(&s, params.iter().copied())?;
        while let Some(r) = rows.next()? {
            if !visit(&r) {
                break;
            }
        }
        Ok(())
    }

    pub fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.client.batch_execute(sql)
    }

    pub fn transaction(&mut self) -> Result<Tx<'_>, postgres::Error> {
        Ok(Tx {
            tx: self.client.transaction()?,
            statements: &mut self.statements,
        })
    }
}

/// A transaction on a pooled connection, with its statement cache.
pub struct Tx<'a> {
    tx: Transaction<'a>,
    statements: &'a mut Statements,
}

impl Tx<'_> {
    pub fn execute(&mut self, sql: &str, params: Params) -> Result<u64, postgres::Error> {
        let s = self.statements.get(sql, |q| self.tx.prepare(q))?;
        self.tx.execute(&s, params)
    }

    pub fn query_opt(&mut self, sql: &str, params: Params) -> Result<Option<Row>, postgres::Error> {
        let s = self.statements.get(sql, |q| self.tx.prepare(q))?;
        self.tx.query_opt(&s, params)
    }

    pub fn query_one(&mut self, sql: &str, params: Params) -> Result<Row, postgres::Error> {
        let s = self.statements.get(sql, |q| self.tx.prepare(q))?;
        self.tx.query_one(&s, params)
    }

    pub fn commit(self) -> Result<(), postgres::Error> {
        self.tx.commit()
    }
}

/// r2d2's manager for `Client`.
pub struct Manager {
    config: postgres::Config,
}

impl Manager {
    pub fn new(config: postgres::Config) -> Manager {
        Manager { config }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Client;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Client, postgres::Error> {
        Ok(Client {
            client: self.config.connect(NoTls)?,
            statements: Statements::default(),
        })
    }

    fn is_valid(&self, conn: &mut Client) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(drop)
    }

    fn has_broken(&self, conn: &mut Client) -> bool {
        conn.client.is_closed()
    }
}
