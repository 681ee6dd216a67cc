//! Persistence (sqlx, SQLite or PostgreSQL), one file per concern, each an `impl Store` block:
//! [`events`] (the watcher's cursor, the recent blocks and the events it read, applied to the records
//! and rolled back after a fork), [`agreements`] (terms, agreements, settled sessions, signed stops),
//! [`conferences`] (what the reconciler ran and the monitor's probes), [`outbox`] (the operator's
//! calls with every transaction signed for each, sent in batches), [`orders`] (customers' signed orders),
//! [`participants`] (who may join), [`sessions`]
//! (sign-in nonces and sessions) and [`lease`] (leadership among replicas). Every query is written
//! once, in SQL both databases understand.

use std::str::FromStr;

use sqlx::{AnyPool, Executor, Row, any::AnyPoolOptions};
use tokio::sync::broadcast;

use crate::{Error, Result, error::redact_url};

pub mod agreements;
pub mod conferences;
pub mod events;
pub mod lease;
pub mod orders;
pub mod outbox;
pub mod participants;
pub mod sessions;

/// One set of migrations per database, kept in step: the same numbered files, the same tables and
/// columns (checked by a test), each in its own dialect.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// The backend's database: SQLite (the embedded default) or PostgreSQL (production), chosen by the
/// URL's scheme. Every query is written once, in SQL both understand, with `$1`-style parameters.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// What this process changed, for whoever follows it here ([`Store::subscribe`]).
    changes: broadcast::Sender<Change>,
}

/// A change this process made to what an agreement's record shows (its chain state, conference,
/// probes, outbox, stop or participants), sent after the change is committed. Other processes sharing
/// a PostgreSQL database do not hear of it: their followers read again on a timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Agreement(u64),
    /// Anything may have changed: a rollback, or the chain's clock (which every record shows) moved.
    All,
}

/// How many changes a follower may fall behind before it is told to read everything again.
const CHANGES_BUFFERED: usize = 4096;

/// The databases the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The dialect a database URL names by its scheme.
    pub fn of_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Dialect::Postgres)
        } else {
            Err(Error::Config(format!("database URL {}: expected sqlite://… or postgres://…", redact_url(url))))
        }
    }
}

/// The wall clock in unix seconds.
pub fn now_wall() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The wall clock in unix milliseconds.
pub fn now_wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Store {
    /// Opens the database at `url` (`sqlite://path`, created if missing, or `postgres://…`) and applies
    /// the migrations.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url)?;
        let (url, migrations) = match dialect {
            // Created if missing; write-ahead logging (below) lets the API read while the loops write.
            Dialect::Sqlite if url.contains('?') => (url.to_owned(), &SQLITE_MIGRATIONS),
            Dialect::Sqlite => (format!("{url}?mode=rwc"), &SQLITE_MIGRATIONS),
            Dialect::Postgres => (url.to_owned(), &POSTGRES_MIGRATIONS),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { 4 } else { 10 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        migrations.run(&pool).await?;
        Ok(Self { pool, dialect, changes: broadcast::Sender::new(CHANGES_BUFFERED) })
    }

    /// The changes this process makes from now on. A receiver that falls behind gets
    /// `RecvError::Lagged`: it should read everything it follows again.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Tells followers that `change` was committed (nobody may be listening).
    fn changed(&self, change: Change) {
        let _ = self.changes.send(change);
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Every (table, column) of the schema the migrations made, sorted: the two migration sets must
    /// give the same list.
    pub async fn columns(&self) -> Result<Vec<(String, String)>> {
        let query = match self.dialect {
            Dialect::Sqlite => {
                "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            }
            Dialect::Postgres => {
                "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%' ESCAPE '\\'"
            }
        };
        let mut columns: Vec<(String, String)> =
            sqlx::query(query).fetch_all(&self.pool).await?.iter().map(|r| (r.get(0), r.get(1))).collect();
        columns.sort();
        Ok(columns)
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Unix seconds as a BIGINT column holds them: up to 2^63 - 1 (the API refuses anything later first).
pub(super) fn stored_seconds(seconds: u64) -> Result<i64> {
    i64::try_from(seconds).map_err(|_| Error::Config(format!("{seconds} seconds do not fit a BIGINT column")))
}

/// A decimal amount as the store keeps it (base units of the token, too wide for 64 bits).
pub(super) fn stored_wei(text: &str) -> Result<alloy::primitives::U256> {
    alloy::primitives::U256::from_str(text).map_err(|e| Error::Config(format!("stored amount {text:?}: {e}")))
}
