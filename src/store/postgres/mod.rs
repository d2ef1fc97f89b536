//! The store over a PostgreSQL database, shared by every kiln server that names it with
//! `--database`. Each write is a transaction on a pooled connection; concurrent writers are
//! the normal case here, so every decision is a conditional statement, a row lock or a unique
//! constraint (see `store::sql`, whose statements and transactions run here on the pool's
//! connections, `conn.rs`, as this dialect spells them, `dialect.rs`).
//!
//! Live notices cross servers with LISTEN/NOTIFY: a write sends its notices with
//! `pg_notify` inside its own transaction (so they are delivered only if, and only once, it
//! commits) and publishes them on this server's hub as it commits; `relay.rs` listens on one
//! connection and publishes the other servers' notices here.
//!
//! The `postgres` crate is synchronous (it drives its own Tokio runtime on the calling thread),
//! which fits the store's callers: worker threads and the actix blocking pool, never an async
//! executor thread. Each pooled connection prepares a statement once (`pool.rs`).

mod conn;
mod dialect;
mod hot;
mod migrate;
mod pool;
mod relay;
mod tls;

use crate::events::{LiveEvents, Topic};
use crate::store::sql::LogCapCell;
use crate::store::sql::{Conn, Db};
use crate::store::{StoreError, StoreResult};
use pool::{Pool, PoolError, Pooled};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a statement or transaction that met a lost connection is tried again on fresh
/// connections before its caller hears that the database cannot be reached: long enough for a
/// restart's or a failover's dropped connections, short enough that an API request answers.
const RETRY_FOR: Duration = Duration::from_secs(3);
const RETRY_PAUSE_MIN: Duration = Duration::from_millis(50);
const RETRY_PAUSE_MAX: Duration = Duration::from_millis(1000);

pub struct PgStore {
    /// Always `Some` until the store is dropped (see `Drop`).
    pool: Option<Pool>,
    events: Arc<dyn LiveEvents>,
    /// This process, in the notices it sends (the relay skips its own).
    origin: String,
    relay: relay::Relay,
    /// Cleared when a statement gives up because the database cannot be reached, set again
    /// when one reaches it (`OverviewStore::database_reachable`).
    reachable: AtomicBool,
    log_cap: LogCapCell,
}

impl PgStore {
    /// Connects to `database` (a `postgres://` URL or a libpq `key=value` string), brings the
    /// schema up to date and starts relaying other servers' notices onto `events`. Errors are
    /// one line naming what failed.
    pub fn open(database: &str, events: Arc<dyn LiveEvents>) -> StoreResult<PgStore> {
        let mut connector = tls::Connector::parse(database).map_err(StoreError::Unavailable)?;
        if connector.config.get_connect_timeout().is_none() {
            connector.config.connect_timeout(Duration::from_secs(5));
        }
        let target = describe(&connector);
        let mut first = connector.connect().map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL ({target}): {}",
                dialect::error_chain(&e)
            ))
        })?;
        migrate::migrate(&mut first)?;
        drop(first);
        let pool = Pool::new(connector.clone(), 16, Duration::from_secs(10));
        let origin = crate::model::new_id();
        let relay = relay::Relay::start(connector, origin.clone(), events.clone());
        Ok(PgStore {
            pool: Some(pool),
            events,
            origin,
            relay,
            reachable: AtomicBool::new(true),
            log_cap: LogCapCell::default(),
        })
    }

    fn pool(&self) -> &Pool {
        self.pool
            .as_ref()
            .expect("the pool lives as long as the store")
    }

    fn conn(&self) -> StoreResult<Pooled<'_>> {
        self.pool().get().map_err(|e| match e {
            PoolError::Connect(e) => StoreError::Unreachable(format!(
                "cannot connect to PostgreSQL: {}",
                dialect::error_chain(&e)
            )),
            PoolError::Timeout(t) => {
                StoreError::Unavailable(format!("database pool: no connection free within {t:?}"))
            }
        })
    }

    /// Runs `attempt` on a pooled connection; while it fails because the connection is gone
    /// or none can be opened (`Unreachable`: nothing of it was applied), runs it again on a
    /// fresh one, at once and then with a growing pause, for up to `RETRY_FOR`. Go's
    /// `database/sql`, which Coder uses, likewise retries a statement that met a dead
    /// connection.
    fn retrying<T>(
        &self,
        mut attempt: impl FnMut(&mut Pooled<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let mut pause = Duration::ZERO;
        let mut tries = 0u32;
        loop {
            let result = self.conn().and_then(|mut conn| attempt(&mut conn));
            match result {
                Err(StoreError::Unreachable(why)) if started.elapsed() + pause < RETRY_FOR => {
                    if tries == 0 {
                        log::warn!("database: {why}; trying again on a fresh connection");
                    }
                    tries += 1;
                    self.pool().discard_idle();
                    std::thread::sleep(pause);
                    pause = (pause * 2).clamp(RETRY_PAUSE_MIN, RETRY_PAUSE_MAX);
                }
                Err(e) => {
                    if tries > 0 {
                        log::warn!("database: gave up after {tries} retries: {e}");
                    }
                    if e.is_transient() {
                        self.reachable.store(false, Ordering::Relaxed);
                    }
                    return Err(e);
                }
                Ok(out) => {
                    if tries > 0 {
                        log::info!("database: reached again after {tries} retries");
                    }
                    self.reachable.store(true, Ordering::Relaxed);
                    return Ok(out);
                }
            }
        }
    }

    /// Benchmarks only: commits `n` single-row transactions into a scratch table through the
    /// pool (`store::sql::commit_probe`) and returns how long they took.
    pub fn commit_probe(&self, n: usize) -> StoreResult<Duration> {
        crate::store::sql::commit_probe(self, n)
    }

    /// Whether the connection relaying other servers' notices is up.
    pub fn relay_connected(&self) -> bool {
        self.relay.connected()
    }
}

impl Db for PgStore {
    fn log_cap(&self) -> &LogCapCell {
        &self.log_cap
    }

    fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    fn read<T>(&self, mut f: impl FnMut(&mut dyn Conn) -> StoreResult<T>) -> StoreResult<T> {
        self.retrying(|conn| f(&mut **conn))
    }

    /// Runs `f` in a transaction; once it succeeded, sends the notices `topics` names (inside
    /// the transaction), commits, and publishes them on this server. A transaction whose
    /// connection was lost before its commit was rolled back by PostgreSQL, so it is run
    /// again (`retrying`). One lost during its commit is looked up by its transaction id on a
    /// fresh connection (`txid_status`): committed, it stands; aborted, it is run again; when
    /// nobody can tell (the database stays away), its caller hears `Unavailable`.
    fn write<T>(
        &self,
        mut f: impl FnMut(&mut dyn Conn) -> StoreResult<T>,
        mut topics: impl FnMut(&T) -> Vec<Topic>,
    ) -> StoreResult<T> {
        let (out, topics) = self.retrying(|conn| {
            let mut tx = conn.transaction()?;
            let out = f(&mut tx)?;
            let topics = topics(&out);
            // The transaction's id, when it wrote anything (read with the notice, when there
            // is one: one round trip).
            let xid: Option<i64> = if topics.is_empty() {
                tx.query_one("SELECT txid_current_if_assigned()", &[])?
                    .get(0)
            } else {
                // One notice for the whole transaction: `<origin> <topic>`, a line per topic.
                let lines: Vec<String> = topics.iter().map(relay::encode).collect();
                let payload = format!("{} {}", self.origin, lines.join("\n"));
                tx.query_one(
                    "SELECT txid_current_if_assigned() FROM (SELECT pg_notify($1, $2)) n",
                    &[&relay::CHANNEL, &payload],
                )?
                .get(0)
            };
            let commit_started = Instant::now();
            match tx.commit().map_err(StoreError::from) {
                Ok(()) => {}
                Err(StoreError::Unreachable(why)) => match xid {
                    // Nothing was written: running it again is safe.
                    None => return Err(StoreError::Unreachable(why)),
                    Some(xid) => self.committed(xid, &why)?,
                },
                Err(e) => return Err(e),
            }
            crate::metrics::global().commit("postgres", commit_started.elapsed(), 1);
            Ok((out, topics))
        })?;
        for t in &topics {
            self.events.publish(t);
        }
        Ok(out)
    }
}

impl PgStore {
    /// After the connection was lost during the commit of transaction `xid`: `Ok` when it
    /// committed; `Unreachable` (run it again) when it did not; `Unavailable` when the
    /// database cannot say within `RETRY_FOR`.
    fn committed(&self, xid: i64, why: &str) -> StoreResult<()> {
        let started = Instant::now();
        loop {
            let status = self.conn().and_then(|mut c| {
                let rows = c.query("SELECT txid_status($1)", &[&xid])?;
                Ok(rows.first().and_then(|r| r.get::<_, Option<String>>(0)))
            });
            match status.as_ref().map(|s| s.as_deref()) {
                Ok(Some("committed")) => return Ok(()),
                Ok(Some("aborted")) => return Err(StoreError::Unreachable(why.to_string())),
                // In progress (its backend is still ending), or the database is away: ask
                // again.
                Ok(Some(_)) | Err(StoreError::Unreachable(_)) if started.elapsed() < RETRY_FOR => {
                    self.pool().discard_idle();
                    std::thread::sleep(RETRY_PAUSE_MIN);
                }
                _ => {
                    return Err(StoreError::Unavailable(format!(
                        "the connection to PostgreSQL was lost during a commit ({why}), and \
                         whether it was stored cannot be told"
                    )));
                }
            }
        }
    }
}

/// The server a connection string names, for error messages (never the password).
fn describe(connector: &tls::Connector) -> String {
    let config = &connector.config;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let host = if hosts.is_empty() {
        "localhost".to_string()
    } else {
        hosts.join(",")
    };
    format!(
        "host {host}, database {}, user {}, sslmode {:?}",
        config.get_dbname().unwrap_or("(default)"),
        config.get_user().unwrap_or("(default)"),
        connector.mode
    )
}

impl Drop for PgStore {
    /// The driver's connections block on a runtime of their own as they close, which must not
    /// happen on an async executor thread (the last owner of the store may be one, at
    /// shutdown): they are closed on a thread of their own.
    fn drop(&mut self) {
        self.relay.stop();
        if let Some(pool) = self.pool.take() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}
