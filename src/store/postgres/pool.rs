//! A small pool of connections that prepare each statement once: a connection keeps the
//! statements it prepared, by their text, so a query costs one round trip instead of two.
//! `Client` and `Tx` run the shared statements (`conn.rs`), and have the driver's method names
//! for this backend's own.

use super::dialect::DIALECT;
use super::tls::Connector;
use postgres::types::ToSql;
use postgres::{Row, Statement, Transaction};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Prepared statements of one connection.
#[derive(Default)]
pub struct Statements(HashMap<String, Statement>);

impl Statements {
    /// At most this many per connection (kiln has fewer): past it, the cache starts over.
    const MAX: usize = 512;

    /// The statement prepared for `sql`, prepared now if it was not (its `?N` placeholders
    /// written `$N`).
    pub fn get(
        &mut self,
        sql: &str,
        prepare: impl FnOnce(&str) -> Result<Statement, postgres::Error>,
    ) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.0.get(sql) {
            return Ok(s.clone());
        }
        let s = prepare(&DIALECT.native(sql))?;
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

    pub fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.client.batch_execute(sql)
    }

    pub(super) fn parts(&mut self) -> (&mut postgres::Client, &mut Statements) {
        (&mut self.client, &mut self.statements)
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

impl<'a> Tx<'a> {
    pub fn query_one(&mut self, sql: &str, params: Params) -> Result<Row, postgres::Error> {
        let s = self.statements.get(sql, |q| self.tx.prepare(q))?;
        self.tx.query_one(&s, params)
    }

    pub fn commit(self) -> Result<(), postgres::Error> {
        self.tx.commit()
    }

    pub(super) fn parts(&mut self) -> (&mut Transaction<'a>, &mut Statements) {
        (&mut self.tx, self.statements)
    }
}

/// A pool of `Client`s: connections open on demand up to `max`, are handed to one caller at a
/// time, and go back when the `Pooled` is dropped (a connection the server closed is dropped
/// instead). A caller waits up to `timeout` for a free one.
pub struct Pool {
    connector: Connector,
    max: usize,
    timeout: Duration,
    state: Mutex<Slots>,
    freed: Condvar,
}

struct Slots {
    idle: Vec<Client>,
    /// Connections open, idle or lent.
    open: usize,
}

impl Pool {
    pub fn new(connector: Connector, max: usize, timeout: Duration) -> Pool {
        Pool {
            connector,
            max,
            timeout,
            state: Mutex::new(Slots {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    pub fn get(&self) -> Result<Pooled<'_>, PoolError> {
        let deadline = Instant::now() + self.timeout;
        let mut slots = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(client) = slots.idle.pop() {
                return Ok(Pooled {
                    pool: self,
                    client: Some(client),
                });
            }
            if slots.open < self.max {
                slots.open += 1;
                drop(slots);
                return match self.connector.connect() {
                    Ok(client) => Ok(Pooled {
                        pool: self,
                        client: Some(Client {
                            client,
                            statements: Statements::default(),
                        }),
                    }),
                    Err(e) => {
                        self.release_slot();
                        Err(PoolError::Connect(e))
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PoolError::Timeout(self.timeout));
            }
            slots = self
                .freed
                .wait_timeout(slots, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Closes every idle connection: one was found dead, and the others, opened to the same
    /// server, most likely are too (a restart or a terminated session ends them all). The
    /// next callers open fresh ones.
    pub fn discard_idle(&self) {
        let idle = {
            let mut slots = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let idle = std::mem::take(&mut slots.idle);
            slots.open -= idle.len();
            self.freed.notify_all();
            idle
        };
        drop(idle);
    }

    fn release_slot(&self) {
        let mut slots = self.state.lock().unwrap_or_else(|e| e.into_inner());
        slots.open -= 1;
        self.freed.notify_one();
    }

    fn give_back(&self, client: Client) {
        if client.client.is_closed() {
            drop(client);
            return self.release_slot();
        }
        let mut slots = self.state.lock().unwrap_or_else(|e| e.into_inner());
        slots.idle.push(client);
        self.freed.notify_one();
    }
}

pub enum PoolError {
    Connect(postgres::Error),
    Timeout(Duration),
}

/// A connection lent by the pool; it goes back when dropped.
pub struct Pooled<'a> {
    pool: &'a Pool,
    client: Option<Client>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.client.as_ref().expect("lent until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("lent until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            self.pool.give_back(client);
        }
    }
}
