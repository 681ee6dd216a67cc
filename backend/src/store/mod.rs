//! Persistence (sqlx, SQLite or PostgreSQL), one file per concern, each an `impl Store` block:
//! [`events`] (the watcher's cursor, the recent blocks and the events it read, applied to the records
//! and rolled back after a fork), [`agreements`] (terms, agreements, settled sessions, signed stops),
//! [`conferences`] (what the reconciler ran and the monitor's probes), [`outbox`] (the operator's
//! calls with every transaction signed for each, sent in batches), [`orders`] (customers' signed orders),
//! [`participants`] (who may join), [`sessions`]
//! (sign-in nonces and sessions) and [`lease`] (leadership among replicas); [`feed`] tells whoever
//! follows the records what changed, here and in the other replicas. Every query is written once, in
//! SQL both databases understand.

use std::{str::FromStr, sync::Arc};

use sqlx::{AnyConnection, AnyPool, Executor, Row, any::AnyPoolOptions};
use tokio::sync::broadcast;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::warn;

use crate::{Error, Result, error::redact_url};

pub mod agreements;
pub mod conferences;
pub mod events;
pub mod feed;
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
    /// Where reads go.
    pool: AnyPool,
    /// Where writes go. On SQLite, one connection of its own: SQLite lets one connection write at a
    /// time, and a second writer waits in its busy handler, asleep for 1, 2, 5, 10, ... ms between tries
    /// (a p99 of 34 ms and pauses of 430 ms for one-row writes at 170 agreements a second, with an fsync
    /// per commit). Here writers queue for the connection instead and each goes on the moment the one
    /// before commits; reads go on beside them (write-ahead logging). On PostgreSQL, the same pool.
    writer: AnyPool,
    dialect: Dialect,
    /// The change feed ([`feed`]): what this store and, on PostgreSQL, the other stores of the database
    /// changed, for whoever follows it here ([`Store::subscribe`]).
    changes: broadcast::Sender<Heard>,
    /// This store's name in what it publishes.
    origin: Origin,
    /// Stops the PostgreSQL listener once the last clone of this store is dropped.
    _listening: Option<Arc<DropGuard>>,
}

pub use feed::{Change, Heard, Origin};

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
        let options = |connections: u32| {
            AnyPoolOptions::new().max_connections(connections).after_connect(move |conn, _| {
                Box::pin(async move {
                    // `synchronous = NORMAL`: the write-ahead log is flushed to the disk at each checkpoint,
                    // not at each commit (`FULL`, an fsync per commit: 168-169 agreements a second through
                    // the whole loop here against 217-248). A commit still survives the backend's crash or
                    // SIGKILL (the crash tests' kill) and the file is never corrupted; a power cut or a
                    // kernel crash may take the last commits before it. Those are read again or judged by
                    // the chain: the watcher reads again from the cursor it kept, and a call or order no
                    // longer on record as sent is sent again only while still due on-chain (a second one
                    // in flight fails harmlessly in its batch). An order or a stop accepted just before the
                    // cut may be gone (it then reads 404) and is posted again by its customer (a signed stop
                    // keeps its time). PostgreSQL, for replicas, keeps its own durability settings.
                    if dialect == Dialect::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; \
                             PRAGMA foreign_keys = ON",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
        };
        let (pool, writer) = match dialect {
            Dialect::Sqlite => {
                // The writer first: it creates the file and switches it to write-ahead logging.
                let writer = options(1).connect(&url).await?;
                (options(4).connect(&url).await?, writer)
            }
            Dialect::Postgres => {
                let pool = options(10).connect(&url).await?;
                (pool.clone(), pool)
            }
        };
        migrations.run(&writer).await?;
        let (changes, origin) = (broadcast::Sender::new(CHANGES_BUFFERED), Origin::random());
        // Listening before the store is handed out: a change committed after `open` returns is heard.
        let listening = match dialect {
            Dialect::Sqlite => None,
            Dialect::Postgres => {
                let listener = feed::listen(&url).await?;
                let stop = CancellationToken::new();
                tokio::spawn(feed::follow(listener, url, origin, changes.clone(), stop.clone()));
                Some(Arc::new(stop.drop_guard()))
            }
        };
        Ok(Self { pool, writer, dialect, changes, origin, _listening: listening })
    }

    /// The changes committed from now on, by this store and (PostgreSQL) by every other store of the
    /// database. A receiver that falls behind gets `RecvError::Lagged`: it should read everything it
    /// follows again.
    pub fn subscribe(&self) -> broadcast::Receiver<Heard> {
        self.changes.subscribe()
    }

    /// Tells this process's followers that `change` was committed (nobody may be listening); the other
    /// processes hear of it by [`Store::publish`] in the transaction, or [`Store::committed`].
    fn changed(&self, change: Change) {
        let _ = self.changes.send(Heard { change, remote: false });
    }

    /// Publishes `changes` to the other processes on the database when the transaction `conn` is in
    /// commits (PostgreSQL; nothing on SQLite). Call it before the commit, and [`Store::changed`] after.
    async fn publish(&self, conn: &mut AnyConnection, changes: &[Change]) -> Result<()> {
        match self.dialect {
            Dialect::Sqlite => Ok(()),
            Dialect::Postgres => feed::publish(conn, self.origin, changes).await,
        }
    }

    /// After a write of one statement (committed by itself): tells this process's followers, and on
    /// PostgreSQL publishes it in a statement of its own. The write stands whatever happens to that
    /// statement, so a failure is logged, not returned (the other replicas' followers then hear of the
    /// agreement at its next change, or read everything when their listener reconnects).
    async fn committed(&self, change: Change) {
        self.changed(change);
        if self.dialect == Dialect::Postgres {
            let published = match self.pool.acquire().await {
                Ok(mut conn) => feed::publish(&mut conn, self.origin, &[change]).await,
                Err(err) => Err(err.into()),
            };
            if let Err(err) = published {
                warn!(?change, error = %err, kind = err.label(), "change feed: could not publish a change");
            }
        }
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
