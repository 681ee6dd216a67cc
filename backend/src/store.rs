//! Persistence (sqlx, SQLite or PostgreSQL): the watcher's cursor, the recent blocks and the events
//! it read (to roll back a fork), the agreements they make, the conferences the reconciler ran, the
//! probes behind each availability figure, and the operator's outbox with every transaction signed for
//! each call.

use std::str::FromStr;

use serde::Serialize;
use sqlx::{
    AnyConnection, AnyPool, Executor, Row,
    any::{AnyPoolOptions, AnyRow},
};

pub use crate::jitsi::{ConferenceSettings, Quality};
use crate::{
    Error, Result,
    agreement::{Agreement, ConferenceState, Model},
    chain::{OperatorCall, SignedStop, SignedTx},
    orchestrator::Deployed,
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
            "s.deadline AS stop_deadline, s.signature AS stop_signature, ",
            "(SELECT CAST(COUNT(*) AS BIGINT) FROM outbox_attempts t WHERE t.outbox_id = o.id) AS attempts FROM outbox o ",
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

impl OutboxState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
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
    /// The latest transaction signed for the call; once done, the one that was mined.
    pub tx_hash: Option<String>,
    #[serde(skip)]
    pub raw_tx: Option<Vec<u8>>,
    pub outcome: Option<String>,
    /// Transactions signed for the call (more than one: fee bumps, or a new nonce after a drop).
    pub attempts: u64,
    /// The block its transaction was mined in, once seen.
    pub mined_block: Option<u64>,
}

/// One transaction signed for an outbox call.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub attempt: i64,
    pub nonce: u64,
    pub tx_hash: String,
    pub raw_tx: Vec<u8>,
    pub sent_wall_at: i64,
}

/// An event as the watcher applies it: where the chain emitted it, and what it says.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    pub block: u64,
    pub log_index: u64,
    pub block_hash: String,
    pub event: ChainEvent,
}

/// What a rollback to a fork block undid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rollback {
    /// Agreements whose signature was on the abandoned branch: deleted with their probes, stops, calls and
    /// registered participants.
    pub removed_agreements: Vec<u64>,
    /// Agreements rebuilt from their remaining events.
    pub rebuilt_agreements: Vec<u64>,
    /// Done operator calls of rebuilt agreements, handed back to the settler to check again.
    pub reopened_calls: u64,
}

/// One probe of a conference: when (unix seconds, wall clock), whether it answered, and if not, why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub session: u64,
    pub at: u64,
    pub ok: bool,
    pub detail: Option<String>,
}

/// A probe the monitor took, to be stored: of which agreement's conference (session), and its answer.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub agreement: u64,
    pub session: u64,
    pub ok: bool,
    pub detail: Option<String>,
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
    pub fn availability_bps(&self) -> u16 {
        (self.probes_ok * 10_000).checked_div(self.probes).map_or(10_000, |bps| bps as u16)
    }
}

/// What a sign-in found of its nonce when it used it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceUse {
    /// Issued, unused and unexpired: now used.
    Consumed,
    /// Issued but expired (now deleted).
    Expired,
    /// Never issued, or used already.
    Unknown,
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
    /// both happen or neither, so no event is lost or applied twice across a crash. The events are not
    /// kept for a rollback (the watcher uses [`Store::apply_block_events`]).
    pub async fn apply_events(&self, events: &[ChainEvent], next_block: u64, head_timestamp: u64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for event in events {
            apply_event(&mut tx, event).await?;
        }
        set_cursor(&mut tx, next_block, head_timestamp).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The watcher's batch, in one transaction: each event (kept with its position, and applied unless
    /// it was already), the hashes of the blocks read (those below `keep_from` are pruned), the cursor.
    pub async fn apply_block_events(
        &self,
        events: &[RecordedEvent],
        blocks: &[(u64, String)],
        next_block: u64,
        head_timestamp: u64,
        keep_from: u64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for recorded in events {
            let json = serde_json::to_string(&recorded.event).map_err(|e| Error::Config(e.to_string()))?;
            let inserted = sqlx::query(
                "INSERT INTO chain_events (block_number, log_index, block_hash, agreement_id, terms_id, event) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (block_number, log_index) DO NOTHING",
            )
            .bind(recorded.block as i64)
            .bind(recorded.log_index as i64)
            .bind(&recorded.block_hash)
            .bind(recorded.event.agreement().map(|id| id as i64))
            .bind(recorded.event.terms().map(|id| id as i64))
            .bind(json)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 1 {
                apply_event(&mut tx, &recorded.event).await?;
            }
        }
        for (number, hash) in blocks {
            sqlx::query(
                "INSERT INTO chain_blocks (number, hash) VALUES ($1, $2) \
                 ON CONFLICT (number) DO UPDATE SET hash = excluded.hash",
            )
            .bind(*number as i64)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM chain_blocks WHERE number < $1").bind(keep_from as i64).execute(&mut *tx).await?;
        set_cursor(&mut tx, next_block, head_timestamp).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest block the watcher stored a hash of.
    pub async fn last_block(&self) -> Result<Option<(u64, String)>> {
        Ok(self.recent_blocks().await?.into_iter().next())
    }

    /// The stored block hashes, newest first.
    pub async fn recent_blocks(&self) -> Result<Vec<(u64, String)>> {
        let rows =
            sqlx::query("SELECT number, hash FROM chain_blocks ORDER BY number DESC").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| (r.get::<i64, _>(0) as u64, r.get(1))).collect())
    }

    /// The stored hash of block `number`, if it is kept.
    pub async fn block_hash(&self, number: u64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT hash FROM chain_blocks WHERE number = $1")
            .bind(number as i64)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Undoes everything read from `fork_block` on, in one transaction with the cursor (set back to
    /// `fork_block`): the events are deleted, agreements signed on the abandoned branch go with their
    /// probes, stops and calls, and every other agreement or terms version those events touched is
    /// rebuilt by replaying its remaining events. Conference columns are kept; done calls of rebuilt
    /// agreements are reopened for the settler to check against the chain again.
    pub async fn roll_back_to(&self, fork_block: u64) -> Result<Rollback> {
        use std::collections::BTreeSet;
        let mut tx = self.pool.begin().await?;
        let undone = sqlx::query("SELECT event FROM chain_events WHERE block_number >= $1")
            .bind(fork_block as i64)
            .fetch_all(&mut *tx)
            .await?;
        let (mut agreements, mut signed, mut terms, mut published) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for row in &undone {
            let event = stored_event(&row.get::<String, _>(0))?;
            match event {
                ChainEvent::Signed { agreement, .. } => signed.insert(agreement),
                ChainEvent::TermsPublished { terms, .. } => published.insert(terms),
                _ => false,
            };
            agreements.extend(event.agreement());
            terms.extend(event.terms());
        }
        for statement in
            ["DELETE FROM chain_events WHERE block_number >= $1", "DELETE FROM chain_blocks WHERE number >= $1"]
        {
            sqlx::query(statement).bind(fork_block as i64).execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE chain_cursor SET next_block = $1 WHERE id = 1 AND next_block > $1")
            .bind(fork_block as i64)
            .execute(&mut *tx)
            .await?;
        let mut report = Rollback::default();
        for &id in &signed {
            delete_agreement(&mut tx, id).await?;
            report.removed_agreements.push(id);
        }
        for &id in agreements.difference(&signed) {
            report.reopened_calls += rebuild_agreement(&mut tx, id).await?;
            report.rebuilt_agreements.push(id);
        }
        for &id in &published {
            sqlx::query("DELETE FROM terms WHERE id = $1").bind(id as i64).execute(&mut *tx).await?;
        }
        for &id in terms.difference(&published) {
            sqlx::query("UPDATE terms SET open = 1 WHERE id = $1").bind(id as i64).execute(&mut *tx).await?;
            for event in remaining_events(&mut tx, Of::Terms, id).await? {
                if !matches!(event, ChainEvent::TermsPublished { .. }) {
                    apply_event(&mut tx, &event).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(report)
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

    /// Up to `limit` agreements with an id below `before` (all without it), newest (largest id) first;
    /// only `customer`'s if given.
    pub async fn agreements_page(
        &self,
        customer: Option<alloy::primitives::Address>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Agreement>> {
        // Ids are BIGINT: a `before` past the largest one is the same as none.
        let before = before.map_or(i64::MAX, |id| i64::try_from(id).unwrap_or(i64::MAX));
        let rows = match customer {
            // Addresses are stored checksummed, as the watcher reads them; compared in lower case.
            Some(customer) => {
                sqlx::query(agreements_where!("WHERE a.id < $1 AND LOWER(a.customer) = $2 ORDER BY a.id DESC LIMIT $3"))
                    .bind(before)
                    .bind(format!("{customer:#x}"))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(agreements_where!("WHERE a.id < $1 ORDER BY a.id DESC LIMIT $2"))
                    .bind(before)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(agreement_from_row).collect()
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

    /// Records a running conference and where it runs; `fresh` counts it as a new deployment (not an
    /// adopted one).
    pub async fn conference_running(&self, id: u64, deployed: &Deployed) -> Result<()> {
        sqlx::query(
            "UPDATE agreements SET conference_state = 'running', join_url = $1, conference_region = $2, \
             deploy_count = deploy_count + $3, deployed_wall_at = COALESCE(deployed_wall_at, $4) WHERE id = $5",
        )
        .bind(&deployed.join_url)
        .bind(i64::from(deployed.region))
        .bind(deployed.fresh as i64)
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

    /// Stores a pass's probes in one transaction: one write to the disk per pass, however many
    /// conferences run (a transaction per probe made the monitor the store's busiest writer).
    pub async fn record_probes(&self, probes: &[ProbeResult]) -> Result<()> {
        if probes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let at = now_wall();
        for probe in probes {
            sqlx::query("INSERT INTO probes (agreement_id, session, wall_at, ok, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(probe.agreement as i64)
                .bind(probe.session as i64)
                .bind(at)
                .bind(probe.ok as i64)
                .bind(probe.detail.as_deref())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every probe of an agreement, by session, oldest first.
    pub async fn probes_of(&self, id: u64) -> Result<Vec<Probe>> {
        let rows = sqlx::query(
            "SELECT session, wall_at, ok, detail FROM probes WHERE agreement_id = $1 ORDER BY session, wall_at",
        )
        .bind(id as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Probe {
                session: r.get::<i64, _>("session") as u64,
                at: r.get::<i64, _>("wall_at") as u64,
                ok: r.get::<i64, _>("ok") != 0,
                detail: r.get("detail"),
            })
            .collect())
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

    /// Whether the call `call` of the agreement's session is in the outbox (in any state): what
    /// [`Self::enqueue`] would refuse as queued already.
    pub async fn is_queued(&self, agreement: u64, session: u64, call: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM outbox WHERE agreement_id = $1 AND session = $2 AND call = $3")
            .bind(agreement as i64)
            .bind(session as i64)
            .bind(call)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
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

    /// Replaces the agreement's registration (its quality and the whole participant list, in the order
    /// given) with `settings`, made by `registered_by` (the customer's signed-in session), if it is not
    /// older (an `issued_at` at least the stored one's: the later of two in one second wins) than the one
    /// stored, in one transaction. Returns false, changing nothing, if it is older.
    pub async fn register_participants(
        &self,
        agreement: u64,
        settings: &ConferenceSettings,
        registered_by: alloy::primitives::Address,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // One statement decides: concurrent registrations serialize on the row, and only a newer one writes.
        let newer = sqlx::query(
            "INSERT INTO conference_settings (agreement_id, quality, issued_at, signature, received_wall_at, \
             registered_by) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (agreement_id) DO UPDATE SET \
             quality = excluded.quality, issued_at = excluded.issued_at, signature = excluded.signature, \
             received_wall_at = excluded.received_wall_at, registered_by = excluded.registered_by \
             WHERE conference_settings.issued_at <= excluded.issued_at",
        )
        .bind(agreement as i64)
        .bind(settings.quality.as_str())
        .bind(stored_seconds(settings.issued_at)?)
        // No EIP-712 signature any more (the column predates sessions): the session's address is the evidence.
        .bind(Vec::<u8>::new())
        .bind(now_wall())
        .bind(crate::jitsi::lowercase(registered_by))
        .execute(&mut *tx)
        .await?;
        if newer.rows_affected() != 1 {
            // At once, not when the dropped transaction's connection is next used: SQLite holds its write
            // lock until then, and another writer (the watcher) would find the database locked.
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM participants WHERE agreement_id = $1")
            .bind(agreement as i64)
            .execute(&mut *tx)
            .await?;
        for (position, (address, region)) in settings.participants.iter().enumerate() {
            sqlx::query("INSERT INTO participants (agreement_id, address, region, position) VALUES ($1, $2, $3, $4)")
                .bind(agreement as i64)
                .bind(crate::jitsi::lowercase(*address))
                .bind(*region as i64)
                .bind(position as i64)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The agreement's registration (quality, participants with their regions, when the customer signed
    /// it), if the customer registered any.
    pub async fn conference_settings(&self, agreement: u64) -> Result<Option<ConferenceSettings>> {
        let Some(row) = sqlx::query("SELECT quality, issued_at FROM conference_settings WHERE agreement_id = $1")
            .bind(agreement as i64)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query("SELECT address, region FROM participants WHERE agreement_id = $1 ORDER BY position")
            .bind(agreement as i64)
            .fetch_all(&self.pool)
            .await?;
        let participants = rows
            .iter()
            .map(|r| {
                let address: String = r.get(0);
                let address = address.parse().map_err(|e| {
                    Error::Config(format!("stored participant {address:?} of agreement {agreement}: {e}"))
                })?;
                Ok((address, r.get::<i64, _>(1) as u8))
            })
            .collect::<Result<_>>()?;
        Ok(Some(ConferenceSettings {
            quality: row.get::<String, _>(0).parse()?,
            participants,
            issued_at: row.get::<i64, _>(1) as u64,
        }))
    }

    /// Whether `address` is among the agreement's registered participants.
    pub async fn is_participant(&self, agreement: u64, address: alloy::primitives::Address) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM participants WHERE agreement_id = $1 AND address = $2")
            .bind(agreement as i64)
            .bind(crate::jitsi::lowercase(address))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Stores a Sign-In with Ethereum nonce until `expires_at` (unix seconds), and purges the nonces and
    /// sessions that have expired (lazily, here: nonces are asked for before every sign-in).
    pub async fn create_siwe_nonce(&self, nonce: &str, expires_at: u64) -> Result<()> {
        let now = now_wall();
        sqlx::query("DELETE FROM siwe_nonces WHERE expires_at <= $1").bind(now).execute(&self.pool).await?;
        sqlx::query("DELETE FROM siwe_sessions WHERE expires_at <= $1").bind(now).execute(&self.pool).await?;
        sqlx::query("INSERT INTO siwe_nonces (nonce, expires_at) VALUES ($1, $2)")
            .bind(nonce)
            .bind(stored_seconds(expires_at)?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Uses up a nonce, atomically (one statement deletes it: of two sign-ins with it, one gets it): what
    /// it was. An expired nonce is deleted too.
    pub async fn consume_siwe_nonce(&self, nonce: &str, now: u64) -> Result<NonceUse> {
        let row = sqlx::query("DELETE FROM siwe_nonces WHERE nonce = $1 RETURNING expires_at")
            .bind(nonce)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row.map(|r| r.get::<i64, _>(0) as u64) {
            None => NonceUse::Unknown,
            Some(expires_at) if expires_at <= now => NonceUse::Expired,
            Some(_) => NonceUse::Consumed,
        })
    }

    /// Stores a signed-in session: the hash of its token, who signed in, until when (unix seconds).
    pub async fn create_siwe_session(
        &self,
        token_hash: &str,
        address: alloy::primitives::Address,
        expires_at: u64,
    ) -> Result<()> {
        sqlx::query("INSERT INTO siwe_sessions (token_hash, address, expires_at, created_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(crate::jitsi::lowercase(address))
            .bind(stored_seconds(expires_at)?)
            .bind(now_wall())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The session whose token hashes to `token_hash`, if it has not expired at `now`: its address and
    /// when it expires.
    pub async fn siwe_session(&self, token_hash: &str, now: u64) -> Result<Option<(alloy::primitives::Address, u64)>> {
        let row =
            sqlx::query("SELECT address, expires_at FROM siwe_sessions WHERE token_hash = $1 AND expires_at > $2")
                .bind(token_hash)
                .bind(stored_seconds(now)?)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            let address: String = r.get(0);
            let address =
                address.parse().map_err(|e| Error::Config(format!("stored session address {address:?}: {e}")))?;
            Ok((address, r.get::<i64, _>(1) as u64))
        })
        .transpose()
    }

    /// Ends a session (signing out); nothing if there is none.
    pub async fn delete_siwe_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM siwe_sessions WHERE token_hash = $1").bind(token_hash).execute(&self.pool).await?;
        Ok(())
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

    /// Stores a transaction signed for call `id` before it is broadcast, as its next attempt and its
    /// latest transaction, if the call is still in state `from` (pending for a first transaction, sent
    /// for a replacement). Returns false, storing nothing, if it is not: it must not be broadcast then.
    pub async fn record_attempt(&self, id: i64, from: OutboxState, tx: &SignedTx) -> Result<bool> {
        let mut db = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE outbox SET state = 'sent', nonce = $1, tx_hash = $2, raw_tx = $3, mined_block = NULL \
             WHERE id = $4 AND state = $5",
        )
        .bind(tx.nonce as i64)
        .bind(tx.hash.to_string())
        .bind(&tx.raw)
        .bind(id)
        .bind(from.as_str())
        .execute(&mut *db)
        .await?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO outbox_attempts (outbox_id, attempt, nonce, tx_hash, raw_tx, max_fee, priority_fee, sent_wall_at) \
             SELECT $1, CAST(COALESCE(MAX(attempt), 0) + 1 AS BIGINT), $2, $3, $4, $5, $6, $7 \
             FROM outbox_attempts WHERE outbox_id = $1",
        )
        .bind(id)
        .bind(tx.nonce as i64)
        .bind(tx.hash.to_string())
        .bind(&tx.raw)
        .bind(tx.fees.max_fee.to_string())
        .bind(tx.fees.priority_fee.to_string())
        .bind(now_wall())
        .execute(&mut *db)
        .await?;
        db.commit().await?;
        Ok(true)
    }

    /// Every transaction signed for call `id`, first first.
    pub async fn attempts(&self, id: i64) -> Result<Vec<Attempt>> {
        let rows = sqlx::query("SELECT * FROM outbox_attempts WHERE outbox_id = $1 ORDER BY attempt")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Attempt {
                attempt: r.get("attempt"),
                nonce: r.get::<i64, _>("nonce") as u64,
                tx_hash: r.get("tx_hash"),
                raw_tx: r.get("raw_tx"),
                sent_wall_at: r.get("sent_wall_at"),
            })
            .collect())
    }

    /// Records that attempt `tx_hash` of call `id` was mined in `block`; the call is done once
    /// `confirmed` (the block is deep enough), and stays sent until then.
    pub async fn outbox_mined(
        &self,
        id: i64,
        attempt: &Attempt,
        block: u64,
        confirmed: bool,
        outcome: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET state = CASE WHEN $1 = 1 THEN 'done' ELSE state END, \
             outcome = CASE WHEN $1 = 1 THEN $2 ELSE outcome END, nonce = $3, tx_hash = $4, raw_tx = $5, \
             mined_block = $6 WHERE id = $7 AND state = 'sent'",
        )
        .bind(confirmed as i64)
        .bind(outcome)
        .bind(attempt.nonce as i64)
        .bind(&attempt.tx_hash)
        .bind(&attempt.raw_tx)
        .bind(block as i64)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
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

    /// Hands a sent call back to be signed anew (its nonce was taken by another transaction while the
    /// call is still due). Its attempts stay as history.
    pub async fn outbox_resign(&self, id: i64, outcome: &str) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET state = 'pending', outcome = $1, mined_block = NULL WHERE id = $2 AND state = 'sent'",
        )
        .bind(outcome)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One past the highest nonce of the operator's calls in flight (sent, not mined or dropped yet):
    /// with the node's pending count, the next nonce to sign with.
    pub async fn next_nonce_in_flight(&self) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT CAST(MAX(nonce) AS BIGINT) FROM outbox WHERE state = 'sent'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get::<Option<i64>, _>(0).map(|n| n as u64 + 1))
    }

    pub async fn outbox_finished(&self, id: i64, state: OutboxState, outcome: &str) -> Result<()> {
        sqlx::query("UPDATE outbox SET state = $1, outcome = $2 WHERE id = $3 AND state IN ('pending', 'sent')")
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
            let (status, session, requested_at) = signed_state(*model, *signed_at);
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
            .bind(reason)
            .bind(refund)
            .bind(*refund_deferred as i64)
            .bind(reason)
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

/// What a signature makes of an agreement: FixedPrice and DynamicPrice ask for their one conference
/// by signing; the others wait idle for a start.
fn signed_state(model: Model, signed_at: u64) -> (&'static str, i64, Option<i64>) {
    if model.starts_at_signing() { ("requested", 1, Some(signed_at as i64)) } else { ("idle", 0, None) }
}

async fn set_cursor(tx: &mut AnyConnection, next_block: u64, head_timestamp: u64) -> Result<()> {
    sqlx::query(
        "INSERT INTO chain_cursor (id, next_block, head_timestamp) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET next_block = excluded.next_block, head_timestamp = excluded.head_timestamp",
    )
    .bind(next_block as i64)
    .bind(head_timestamp as i64)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn stored_event(json: &str) -> Result<ChainEvent> {
    serde_json::from_str(json).map_err(|e| Error::Config(format!("stored chain event {json:?}: {e}")))
}

/// What kept events are about.
enum Of {
    Agreement,
    Terms,
}

/// The kept events of one agreement or terms version, in chain order.
async fn remaining_events(tx: &mut AnyConnection, of: Of, id: u64) -> Result<Vec<ChainEvent>> {
    let rows = sqlx::query(match of {
        Of::Agreement => "SELECT event FROM chain_events WHERE agreement_id = $1 ORDER BY block_number, log_index",
        Of::Terms => "SELECT event FROM chain_events WHERE terms_id = $1 ORDER BY block_number, log_index",
    })
    .bind(id as i64)
    .fetch_all(&mut *tx)
    .await?;
    rows.iter().map(|r| stored_event(&r.get::<String, _>(0))).collect()
}

/// Deletes an agreement that the canonical chain does not have, with everything that refers to it.
async fn delete_agreement(tx: &mut AnyConnection, id: u64) -> Result<()> {
    for statement in [
        "DELETE FROM outbox_attempts WHERE outbox_id IN (SELECT id FROM outbox WHERE agreement_id = $1)",
        "DELETE FROM outbox WHERE agreement_id = $1",
        "DELETE FROM probes WHERE agreement_id = $1",
        "DELETE FROM signed_stops WHERE agreement_id = $1",
        "DELETE FROM sessions WHERE agreement_id = $1",
        // Its registration too: the agreement id may name another customer's agreement on the new branch.
        "DELETE FROM participants WHERE agreement_id = $1",
        "DELETE FROM conference_settings WHERE agreement_id = $1",
        "DELETE FROM agreements WHERE id = $1",
    ] {
        sqlx::query(statement).bind(id as i64).execute(&mut *tx).await?;
    }
    Ok(())
}

/// Rebuilds an agreement's chain columns and sessions from its remaining events (its signature first),
/// keeping its conference columns; drops probes and stops of sessions that no longer exist; reopens its
/// done calls. Returns how many calls were reopened.
async fn rebuild_agreement(tx: &mut AnyConnection, id: u64) -> Result<u64> {
    let events = remaining_events(tx, Of::Agreement, id).await?;
    let Some(&ChainEvent::Signed { model, signed_at, .. }) = events.first() else {
        // Read before migration 0003 kept events: its history is not here to replay.
        tracing::warn!(agreement = id, "no kept signature to rebuild from; the record is left as it was");
        return Ok(0);
    };
    // Back to the state its signature made (the signature's own columns are the kept event's already:
    // a rebuilt agreement's signing is still on the chain), then its later events again.
    let (status, session, requested_at) = signed_state(model, signed_at);
    sqlx::query("DELETE FROM sessions WHERE agreement_id = $1").bind(id as i64).execute(&mut *tx).await?;
    sqlx::query(
        "UPDATE agreements SET chain_status = $1, session = $2, requested_at = $3, window_from = NULL, \
         window_to = NULL, started_at = NULL, ends_at = NULL, region = NULL, activate_tx = NULL, ended_at = NULL, \
         end_tx = NULL, charged = '0', availability_bps = NULL, refund = NULL, refund_deferred = NULL, \
         refund_reason = NULL, settle_tx = NULL WHERE id = $4",
    )
    .bind(status)
    .bind(session)
    .bind(requested_at)
    .bind(id as i64)
    .execute(&mut *tx)
    .await?;
    for event in &events[1..] {
        apply_event(tx, event).await?;
    }
    for statement in [
        "DELETE FROM probes WHERE agreement_id = $1 AND session > (SELECT session FROM agreements WHERE id = $1)",
        "DELETE FROM signed_stops WHERE agreement_id = $1 AND session > (SELECT session FROM agreements WHERE id = $1)",
    ] {
        sqlx::query(statement).bind(id as i64).execute(&mut *tx).await?;
    }
    let reopened = sqlx::query(
        "UPDATE outbox SET state = CASE WHEN tx_hash IS NULL THEN 'pending' ELSE 'sent' END, mined_block = NULL, \
         outcome = 'reopened: its block may have left the chain' WHERE agreement_id = $1 AND state = 'done'",
    )
    .bind(id as i64)
    .execute(&mut *tx)
    .await?;
    Ok(reopened.rows_affected())
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
        attempts: r.get::<i64, _>("attempts") as u64,
        mined_block: r.get::<Option<i64>, _>("mined_block").map(|b| b as u64),
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
        conference_region: r.get::<Option<i64>, _>("conference_region").map(|v| v as u8),
        deploy_count: r.get::<i64, _>("deploy_count") as u64,
        sign_tx: r.get("sign_tx"),
        activate_tx: r.get("activate_tx"),
        end_tx: r.get("end_tx"),
        settle_tx: r.get("settle_tx"),
        signed_stop: signed_stop_from_row(r)?,
    })
}

/// Unix seconds as a BIGINT column holds them: up to 2^63 - 1 (the API refuses anything later first).
fn stored_seconds(seconds: u64) -> Result<i64> {
    i64::try_from(seconds).map_err(|_| Error::Config(format!("{seconds} seconds do not fit a BIGINT column")))
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
