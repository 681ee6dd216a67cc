//! Persistence (sqlx, SQLite): the watcher's cursor and the agreements it read, the conferences the
//! reconciler ran, the probes behind each availability figure, and the operator's outbox.

use std::str::FromStr;

use serde::Serialize;
use sqlx::{
    AnyConnection, AnyPool, Executor, Row,
    any::{AnyPoolOptions, AnyRow},
};

use crate::{
    Error, Result,
    agreement::{Agreement, ConferenceState, Model},
    chain::{OperatorCall, SignedStop, SignedTx},
    watcher::ChainEvent,
};

/// One set of migrations per database, kept in step: the same numbered files, the same tables and
/// columns (checked by a test), each in its own dialect.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Agreements with the customer's signed stop of their current conference, if any, then `$tail`.
macro_rules! agreements_where {
    ($tail:literal) => {
        concat!(
            "SELECT a.*, s.started_at AS stop_started_at, s.stopped_at AS stop_stopped_at, ",
            "s.deadline AS stop_deadline, s.signature AS stop_signature FROM agreements a ",
            "LEFT JOIN signed_stops s ON s.agreement_id = a.id AND s.session = a.session ",
            $tail
        )
    };
}

/// Outbox rows with the signed stop a stopAndSettle call submits, then `$tail`.
macro_rules! outbox_where {
    ($tail:literal) => {
        concat!(
            "SELECT o.*, s.started_at AS stop_started_at, s.stopped_at AS stop_stopped_at, ",
            "s.deadline AS stop_deadline, s.signature AS stop_signature FROM outbox o ",
            "LEFT JOIN signed_stops s ON s.agreement_id = o.agreement_id AND s.session = o.session ",
            $tail
        )
    };
}

/// The backend's database: SQLite (the embedded default) or PostgreSQL (production), chosen by the
/// URL's scheme. Every query is written once, in SQL both understand, with `$1`-style parameters.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
}

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
            Err(Error::Config(format!("database URL {url:?}: expected sqlite://… or postgres://…")))
        }
    }
}

/// A terms version as published on-chain: what a customer signs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Terms {
    pub id: u64,
    pub offer_id: u64,
    pub model: Model,
    pub token_id: u8,
    /// Per unit of the model: the conference (fixedPrice), a second (dynamicPrice, flexiblePeriod) or a
    /// minute (timeLimited), before any constraint surcharge.
    pub price: String,
    pub max_duration: u64,
    pub minimum_charge: String,
    /// What signing costs with no constraints, for the models whose deposit is fixed by the terms.
    pub deposit: Option<String>,
    pub regions: u32,
    pub gdpr: bool,
    pub open: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    /// Not signed yet.
    Pending,
    /// Signed and stored, broadcast at least once; waiting for its receipt.
    Sent,
    /// Mined, or found already done on-chain.
    Done,
    /// Could not be sent (it would revert); `outcome` says why.
    Failed,
}

/// One intended operator transaction.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxItem {
    pub id: i64,
    pub agreement_id: u64,
    pub session: u64,
    #[serde(skip)]
    pub call: OperatorCall,
    #[serde(rename = "call")]
    pub call_name: &'static str,
    pub state: OutboxState,
    pub nonce: Option<u64>,
    pub tx_hash: Option<String>,
    #[serde(skip)]
    pub raw_tx: Option<Vec<u8>>,
    pub outcome: Option<String>,
}

/// Probe counts of one conference (an agreement's session).
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeTally {
    pub probes: u64,
    pub probes_ok: u64,
}

impl ProbeTally {
    /// Availability in basis points; full when nothing was measured (no evidence of an outage).
    #[allow(clippy::manual_checked_ops)]
    pub fn availability_bps(&self) -> u16 {
        if self.probes == 0 { 10_000 } else { (self.probes_ok * 10_000 / self.probes) as u16 }
    }
}

pub fn now_wall() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
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
        Ok(Self { pool, dialect })
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

    /// The next block the watcher reads, if it has read any.
    pub async fn cursor(&self) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT next_block FROM chain_cursor WHERE id = 1").fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.get::<i64, _>(0) as u64))
    }

    /// The newest block timestamp the watcher saw.
    pub async fn chain_time(&self) -> Result<Option<u64>> {
        let row =
            sqlx::query("SELECT head_timestamp FROM chain_cursor WHERE id = 1").fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.get::<i64, _>(0) as u64))
    }

    /// Records the effects of `events` and moves the cursor to `next_block`, in one transaction: either
    /// both happen or neither, so no event is lost or applied twice across a crash.
    pub async fn apply_events(&self, events: &[ChainEvent], next_block: u64, head_timestamp: u64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for event in events {
            apply_event(&mut tx, event).await?;
        }
        sqlx::query(
            "INSERT INTO chain_cursor (id, next_block, head_timestamp) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET next_block = excluded.next_block, head_timestamp = excluded.head_timestamp",
        )
        .bind(next_block as i64)
        .bind(head_timestamp as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every terms version, newest first.
    pub async fn terms(&self) -> Result<Vec<Terms>> {
        let rows = sqlx::query("SELECT * FROM terms ORDER BY id DESC").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let model: Model = r.get::<String, _>("model").parse()?;
                let price: String = r.get("price");
                let max_duration = r.get::<i64, _>("max_duration") as u64;
                let deposit = match model {
                    Model::FixedPrice => Some(price.clone()),
                    Model::DynamicPrice => Some(wei_product(&price, max_duration)?),
                    Model::TimeLimited | Model::FlexiblePeriod => None,
                };
                Ok(Terms {
                    id: r.get::<i64, _>("id") as u64,
                    offer_id: r.get::<i64, _>("offer_id") as u64,
                    model,
                    token_id: r.get::<i64, _>("token_id") as u8,
                    deposit,
                    price,
                    max_duration,
                    minimum_charge: r.get("minimum_charge"),
                    regions: r.get::<i64, _>("regions") as u32,
                    gdpr: r.get::<i64, _>("gdpr") != 0,
                    open: r.get::<i64, _>("open") != 0,
                })
            })
            .collect()
    }

    pub async fn agreement(&self, id: u64) -> Result<Option<Agreement>> {
        let row = sqlx::query(agreements_where!("WHERE a.id = $1")).bind(id as i64).fetch_optional(&self.pool).await?;
        row.as_ref().map(agreement_from_row).transpose()
    }

    /// Agreements that still need the backend: not finished on-chain, or with a conference to remove.
    pub async fn open_agreements(&self) -> Result<Vec<Agreement>> {
        let rows = sqlx::query(agreements_where!(
            "WHERE a.chain_status NOT IN ('settled', 'refunded') \
             OR a.conference_state IN ('running', 'deploying') ORDER BY a.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(agreement_from_row).collect()
    }

    /// Marks a deploy as started, before the orchestrator is asked, so a crash leaves a trace.
    pub async fn conference_deploying(&self, id: u64) -> Result<()> {
        sqlx::query("UPDATE agreements SET conference_state = 'deploying' WHERE id = $1")
            .bind(id as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a running conference; `fresh` counts it as a new deployment (not an adopted one).
    pub async fn conference_running(&self, id: u64, join_url: &str, fresh: bool) -> Result<()> {
        sqlx::query(
            "UPDATE agreements SET conference_state = 'running', join_url = $1, \
             deploy_count = deploy_count + $2, deployed_wall_at = COALESCE(deployed_wall_at, $3) WHERE id = $4",
        )
        .bind(join_url)
        .bind(fresh as i64)
        .bind(now_wall())
        .bind(id as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn conference_removed(&self, id: u64) -> Result<()> {
        sqlx::query("UPDATE agreements SET conference_state = 'removed', removed_wall_at = $1 WHERE id = $2")
            .bind(now_wall())
            .bind(id as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn record_probe(&self, id: u64, session: u64, ok: bool, detail: Option<&str>) -> Result<()> {
        sqlx::query("INSERT INTO probes (agreement_id, session, wall_at, ok, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(id as i64)
            .bind(session as i64)
            .bind(now_wall())
            .bind(ok as i64)
            .bind(detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn probe_tally(&self, id: u64, session: u64) -> Result<ProbeTally> {
        let row =
            sqlx::query("SELECT COUNT(*), CAST(COALESCE(SUM(ok), 0) AS BIGINT) FROM probes WHERE agreement_id = $1 AND session = $2")
                .bind(id as i64)
                .bind(session as i64)
                .fetch_one(&self.pool)
                .await?;
        Ok(ProbeTally { probes: row.get::<i64, _>(0) as u64, probes_ok: row.get::<i64, _>(1) as u64 })
    }

    /// Queues an operator call; queuing the same call for the same session of an agreement again
    /// changes nothing. Returns whether the call was new.
    pub async fn enqueue(&self, call: &OperatorCall) -> Result<bool> {
        let (started_at, argument) = call_parts(call);
        let inserted = sqlx::query(
            "INSERT INTO outbox (agreement_id, session, call, started_at, argument, created_wall_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (agreement_id, session, call) DO NOTHING",
        )
        .bind(call.agreement() as i64)
        .bind(call.session() as i64)
        .bind(call.name())
        .bind(started_at as i64)
        .bind(argument)
        .bind(now_wall())
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Calls not finished yet, oldest first.
    pub async fn unfinished_outbox(&self) -> Result<Vec<OutboxItem>> {
        let rows = sqlx::query(outbox_where!("WHERE o.state IN ('pending', 'sent') ORDER BY o.id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// Records a customer's signed stop for the agreement's current conference; the first one received
    /// counts. Returns whether this one was new.
    pub async fn record_signed_stop(&self, agreement: u64, session: u64, stop: &SignedStop) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO signed_stops (agreement_id, session, started_at, stopped_at, deadline, signature, \
             received_wall_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (agreement_id, session) DO NOTHING",
        )
        .bind(agreement as i64)
        .bind(session as i64)
        .bind(stop.started_at as i64)
        .bind(stop.stopped_at as i64)
        .bind(stop.deadline as i64)
        .bind(stop.signature.as_ref())
        .bind(now_wall())
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Every settled conference of an agreement, oldest first.
    pub async fn sessions_of(&self, agreement: u64) -> Result<Vec<Session>> {
        let rows = sqlx::query("SELECT * FROM sessions WHERE agreement_id = $1 ORDER BY session")
            .bind(agreement as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Session {
                session: r.get::<i64, _>("session") as u64,
                started_at: r.get::<Option<i64>, _>("started_at").map(|v| v as u64),
                ended_at: r.get::<Option<i64>, _>("ended_at").map(|v| v as u64),
                availability_bps: r.get::<i64, _>("availability_bps") as u16,
                charge: r.get("charge"),
                settle_tx: r.get("settle_tx"),
            })
            .collect())
    }

    pub async fn outbox_of(&self, agreement: u64) -> Result<Vec<OutboxItem>> {
        let rows = sqlx::query(outbox_where!("WHERE o.agreement_id = $1 ORDER BY o.id"))
            .bind(agreement as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// Stores a signed transaction before it is broadcast. Returns false if the call was signed already
    /// (by a replica that led before): then this transaction must not be broadcast.
    pub async fn outbox_signed(&self, id: i64, tx: &SignedTx) -> Result<bool> {
        let stored = sqlx::query(
            "UPDATE outbox SET state = 'sent', nonce = $1, tx_hash = $2, raw_tx = $3 WHERE id = $4 AND state = 'pending'",
        )
        .bind(tx.nonce as i64)
        .bind(tx.hash.to_string())
        .bind(&tx.raw)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(stored.rows_affected() == 1)
    }

    /// Takes the lease `name` for `holder` for `ttl_ms`, or renews it, if it is free, expired or already
    /// `holder`'s: one atomic statement, so two replicas can never both hold it. Returns the lease's term
    /// (it grows with every change of holder) if `holder` holds it now.
    pub async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: u64) -> Result<Option<u64>> {
        // Expiry is measured by the database's clock, the one clock every replica shares.
        let now = self.now_ms().await? as i64;
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at_ms, term) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms, \
             term = leases.term + CASE WHEN leases.holder = excluded.holder THEN 0 ELSE 1 END \
             WHERE leases.holder = excluded.holder OR leases.expires_at_ms < $4 RETURNING term",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl_ms as i64)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.get::<i64, _>(0) as u64))
    }

    /// Gives the lease up at once (a graceful shutdown), so that another replica need not wait for it
    /// to expire.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The database's clock, in milliseconds since the epoch.
    pub async fn now_ms(&self) -> Result<u64> {
        let query = match self.dialect {
            Dialect::Sqlite => "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Dialect::Postgres => "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        };
        let row = sqlx::query(query).fetch_one(&self.pool).await?;
        Ok(row.get::<i64, _>(0) as u64)
    }

    pub async fn outbox_finished(&self, id: i64, state: OutboxState, outcome: &str) -> Result<()> {
        sqlx::query("UPDATE outbox SET state = $1, outcome = $2 WHERE id = $3")
            .bind(match state {
                OutboxState::Done => "done",
                OutboxState::Failed => "failed",
                other => return Err(Error::Config(format!("{other:?} is not a finished outbox state"))),
            })
            .bind(outcome)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Operator calls queued and not finished (the outbox-depth gauge).
    pub async fn outbox_depth(&self) -> Result<u64> {
        let row = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) FROM outbox WHERE state IN ($1, $2)")
            .bind("pending")
            .bind("sent")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get::<i64, _>(0) as u64)
    }

    /// Conferences the store records as running (the conferences-running gauge).
    pub async fn conferences_running(&self) -> Result<u64> {
        let row = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) FROM agreements WHERE conference_state = $1")
            .bind("running")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get::<i64, _>(0) as u64)
    }
}

async fn apply_event(tx: &mut AnyConnection, event: &ChainEvent) -> Result<()> {
    let query = match event {
        ChainEvent::TermsPublished { terms, offer, model, token_id, price, max_duration, minimum_charge, regions, gdpr } => {
            sqlx::query(
                "INSERT INTO terms (id, offer_id, model, token_id, price, max_duration, minimum_charge, regions, gdpr) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
            )
            .bind(*terms as i64)
            .bind(*offer as i64)
            .bind(model.as_str())
            .bind(*token_id as i64)
            .bind(price)
            .bind(*max_duration as i64)
            .bind(minimum_charge)
            .bind(*regions as i64)
            .bind(*gdpr as i64)
        }
        ChainEvent::TermsClosed { terms } => sqlx::query("UPDATE terms SET open = 0 WHERE id = $1").bind(*terms as i64),
        ChainEvent::Signed {
            agreement,
            terms,
            customer,
            deposit,
            model,
            token_id,
            price,
            allowed_regions,
            gdpr,
            duration,
            signed_at,
            tx_hash,
        } => {
            // FixedPrice and DynamicPrice ask for their one conference by signing.
            let (status, session, requested_at) =
                if model.starts_at_signing() { ("requested", 1, Some(*signed_at as i64)) } else { ("idle", 0, None) };
            sqlx::query(
                "INSERT INTO agreements (id, terms_id, model, customer, token_id, price, deposit, allowed_regions, \
                 gdpr, duration, chain_status, session, signed_at, sign_tx, requested_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (id) DO NOTHING",
            )
            .bind(*agreement as i64)
            .bind(*terms as i64)
            .bind(model.as_str())
            .bind(customer)
            .bind(*token_id as i64)
            .bind(price)
            .bind(deposit)
            .bind(*allowed_regions as i64)
            .bind(*gdpr as i64)
            .bind(*duration as i64)
            .bind(status)
            .bind(session)
            .bind(*signed_at as i64)
            .bind(tx_hash)
            .bind(requested_at)
        }
        ChainEvent::WindowReserved { agreement, from, to } => {
            sqlx::query("UPDATE agreements SET window_from = $1, window_to = $2 WHERE id = $3")
                .bind(*from as i64)
                .bind(*to as i64)
                .bind(*agreement as i64)
        }
        ChainEvent::StartRequested { agreement, requested_at } => sqlx::query(
            "UPDATE agreements SET chain_status = 'requested', session = session + 1, requested_at = $1, \
             started_at = NULL, ends_at = NULL, ended_at = NULL, activate_tx = NULL, end_tx = NULL WHERE id = $2",
        )
        .bind(*requested_at as i64)
        .bind(*agreement as i64),
        ChainEvent::Activated { agreement, started_at, ends_at, region, tx_hash } => sqlx::query(
            "UPDATE agreements SET chain_status = 'active', started_at = $1, ends_at = $2, region = $3, activate_tx = $4 \
             WHERE id = $5",
        )
        .bind(*started_at as i64)
        .bind(*ends_at as i64)
        .bind(*region as i64)
        .bind(tx_hash)
        .bind(*agreement as i64),
        ChainEvent::Ended { agreement, ended_at, tx_hash } => {
            sqlx::query("UPDATE agreements SET chain_status = 'ended', ended_at = $1, end_tx = $2 WHERE id = $3")
                .bind(*ended_at as i64)
                .bind(tx_hash)
                .bind(*agreement as i64)
        }
        ChainEvent::Settled { agreement, availability_bps, charge, refund, refund_deferred, tx_hash } => {
            sqlx::query(
                "INSERT INTO sessions (agreement_id, session, started_at, ended_at, availability_bps, charge, settle_tx) \
                 SELECT id, session, started_at, ended_at, $1, $2, $3 FROM agreements WHERE id = $4 \
                 ON CONFLICT (agreement_id, session) DO NOTHING",
            )
            .bind(*availability_bps as i64)
            .bind(charge)
            .bind(tx_hash)
            .bind(*agreement as i64)
            .execute(&mut *tx)
            .await?;
            // A TimeLimited session is paid; the account stays open for the next one.
            let charged = sum_wei(tx, *agreement, charge).await?;
            sqlx::query(
                "UPDATE agreements SET chain_status = CASE model WHEN 'timeLimited' THEN 'idle' ELSE 'settled' END, \
                 availability_bps = $1, charged = $2, refund = CASE model WHEN 'timeLimited' THEN refund ELSE $3 END, \
                 refund_deferred = CASE model WHEN 'timeLimited' THEN refund_deferred ELSE $4 END, settle_tx = $5 \
                 WHERE id = $6",
            )
            .bind(*availability_bps as i64)
            .bind(charged)
            .bind(refund)
            .bind(*refund_deferred as i64)
            .bind(tx_hash)
            .bind(*agreement as i64)
        }
        ChainEvent::StartCancelled { agreement, reason, refund, refund_deferred, tx_hash } => {
            // A TimeLimited session consumes nothing, and a FlexiblePeriod customer who cancels keeps
            // the reservation: both go back to idle. Anything else was refunded in full.
            sqlx::query(
                "UPDATE agreements SET chain_status = CASE \
                   WHEN model = 'timeLimited' OR (model = 'flexiblePeriod' AND $1 = 'cancelledByCustomer') THEN 'idle' \
                   ELSE 'refunded' END, \
                 refund = $2, refund_deferred = $3, refund_reason = $4, settle_tx = $5 WHERE id = $6",
            )
            .bind(*reason)
            .bind(refund)
            .bind(*refund_deferred as i64)
            .bind(*reason)
            .bind(tx_hash)
            .bind(*agreement as i64)
        }
        ChainEvent::Closed { agreement, refund, refund_deferred, tx_hash } => sqlx::query(
            "UPDATE agreements SET chain_status = 'settled', refund = $1, refund_deferred = $2, settle_tx = $3 WHERE id = $4",
        )
        .bind(refund)
        .bind(*refund_deferred as i64)
        .bind(tx_hash)
        .bind(*agreement as i64),
    };
    query.execute(&mut *tx).await?;
    Ok(())
}

/// The agreement's charged total plus `charge`.
async fn sum_wei(tx: &mut AnyConnection, agreement: u64, charge: &str) -> Result<String> {
    let row = sqlx::query("SELECT charged FROM agreements WHERE id = $1")
        .bind(agreement as i64)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else { return Ok(charge.to_string()) };
    Ok((stored_wei(&row.get::<String, _>(0))? + stored_wei(charge)?).to_string())
}

/// The outbox columns of a call besides its agreement, session and name: the `startedAt` it is
/// about, and its argument (region or availability).
fn call_parts(call: &OperatorCall) -> (u64, Option<i64>) {
    match *call {
        OperatorCall::Activate { requested_at, region, .. } => (requested_at, Some(region as i64)),
        OperatorCall::Decline { requested_at, .. } => (requested_at, None),
        OperatorCall::End { started_at, .. } => (started_at, None),
        OperatorCall::Settle { started_at, availability_bps, .. } => (started_at, Some(availability_bps as i64)),
        OperatorCall::StopAndSettle { ref stop, availability_bps, .. } => {
            (stop.started_at, Some(availability_bps as i64))
        }
    }
}

fn outbox_from_row(r: &AnyRow) -> Result<OutboxItem> {
    let agreement = r.get::<i64, _>("agreement_id") as u64;
    let session = r.get::<i64, _>("session") as u64;
    let started_at = r.get::<i64, _>("started_at") as u64;
    let argument = r.get::<Option<i64>, _>("argument");
    let name: String = r.get("call");
    let call = match name.as_str() {
        "activate" => OperatorCall::Activate {
            agreement,
            session,
            requested_at: started_at,
            region: argument.unwrap_or_default() as u8,
        },
        "decline" => OperatorCall::Decline { agreement, session, requested_at: started_at },
        "end" => OperatorCall::End { agreement, session, started_at },
        "settle" => {
            OperatorCall::Settle { agreement, session, started_at, availability_bps: argument.unwrap_or(10_000) as u16 }
        }
        "stopAndSettle" => OperatorCall::StopAndSettle {
            agreement,
            session,
            availability_bps: argument.unwrap_or(10_000) as u16,
            stop: signed_stop_from_row(r)?.ok_or_else(|| {
                Error::Config(format!("outbox stopAndSettle of agreement {agreement} has no signed stop"))
            })?,
        },
        other => return Err(Error::Config(format!("unknown outbox call {other:?}"))),
    };
    let state = match r.get::<String, _>("state").as_str() {
        "pending" => OutboxState::Pending,
        "sent" => OutboxState::Sent,
        "done" => OutboxState::Done,
        _ => OutboxState::Failed,
    };
    Ok(OutboxItem {
        id: r.get("id"),
        agreement_id: agreement,
        session,
        call_name: call.name(),
        call,
        state,
        nonce: r.get::<Option<i64>, _>("nonce").map(|n| n as u64),
        tx_hash: r.get("tx_hash"),
        raw_tx: r.get("raw_tx"),
        outcome: r.get("outcome"),
    })
}

fn agreement_from_row(r: &AnyRow) -> Result<Agreement> {
    let opt_u64 = |col: &str| r.get::<Option<i64>, _>(col).map(|v| v as u64);
    Ok(Agreement {
        id: r.get::<i64, _>("id") as u64,
        terms_id: r.get::<i64, _>("terms_id") as u64,
        model: r.get::<String, _>("model").parse()?,
        customer: r.get("customer"),
        token_id: r.get::<i64, _>("token_id") as u8,
        price: r.get("price"),
        deposit: r.get("deposit"),
        allowed_regions: r.get::<i64, _>("allowed_regions") as u32,
        gdpr: r.get::<i64, _>("gdpr") != 0,
        duration: r.get::<i64, _>("duration") as u64,
        window_from: opt_u64("window_from"),
        window_to: opt_u64("window_to"),
        chain_status: r.get::<String, _>("chain_status").parse()?,
        session: r.get::<i64, _>("session") as u64,
        signed_at: r.get::<i64, _>("signed_at") as u64,
        requested_at: opt_u64("requested_at"),
        started_at: opt_u64("started_at"),
        ends_at: opt_u64("ends_at"),
        region: r.get::<Option<i64>, _>("region").map(|v| v as u8),
        ended_at: opt_u64("ended_at"),
        charged: r.get("charged"),
        availability_bps: r.get::<Option<i64>, _>("availability_bps").map(|v| v as u16),
        refund: r.get("refund"),
        refund_deferred: r.get::<Option<i64>, _>("refund_deferred").map(|v| v != 0),
        refund_reason: r.get("refund_reason"),
        conference_state: r.get::<String, _>("conference_state").parse::<ConferenceState>()?,
        join_url: r.get("join_url"),
        deploy_count: r.get::<i64, _>("deploy_count") as u64,
        sign_tx: r.get("sign_tx"),
        activate_tx: r.get("activate_tx"),
        end_tx: r.get("end_tx"),
        settle_tx: r.get("settle_tx"),
        signed_stop: signed_stop_from_row(r)?,
    })
}

/// `price × seconds` for a decimal amount, as the contract computes a DynamicPrice deposit.
fn wei_product(price: &str, seconds: u64) -> Result<String> {
    Ok((stored_wei(price)? * alloy::primitives::U256::from(seconds)).to_string())
}

/// A decimal amount as the store keeps it (base units of the token, too wide for 64 bits).
fn stored_wei(text: &str) -> Result<alloy::primitives::U256> {
    alloy::primitives::U256::from_str(text).map_err(|e| Error::Config(format!("stored amount {text:?}: {e}")))
}

/// The signed stop joined to an agreement or outbox row (`stop_*` columns), if there is one.
fn signed_stop_from_row(r: &AnyRow) -> Result<Option<SignedStop>> {
    let Some(started_at) = r.get::<Option<i64>, _>("stop_started_at") else { return Ok(None) };
    Ok(Some(SignedStop {
        started_at: started_at as u64,
        stopped_at: r.get::<i64, _>("stop_stopped_at") as u64,
        deadline: r.get::<i64, _>("stop_deadline") as u64,
        signature: r.get::<Vec<u8>, _>("stop_signature").into(),
    }))
}

/// One settled conference of an agreement.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub session: u64,
    pub started_at: Option<u64>,
    pub ended_at: Option<u64>,
    pub availability_bps: u16,
    pub charge: String,
    pub settle_tx: String,
}
