//! Persistence (sqlx, SQLite): the watcher's cursor and the agreements it read, the conferences the
//! reconciler ran, the probes behind each availability figure, and the operator's outbox.

use std::{str::FromStr, time::Duration};

use serde::Serialize;
use sqlx::{
    Row, SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow},
};

use crate::{
    Error, Result,
    agreement::{Agreement, ConferenceState},
    chain::{OperatorCall, SignedTx},
    watcher::ChainEvent,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

/// An offer as published on-chain.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    pub id: u64,
    pub provider: String,
    pub price_per_second: String,
    pub max_duration: u64,
    pub deposit: String,
    pub retired: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxItem {
    pub id: i64,
    pub agreement_id: u64,
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

/// Probe counts of one agreement's conference.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeTally {
    pub probes: u64,
    pub probes_ok: u64,
}

impl ProbeTally {
    /// Availability in basis points; full when nothing was measured (no evidence of an outage).
    pub fn availability_bps(&self) -> u16 {
        if self.probes == 0 { 10_000 } else { (self.probes_ok * 10_000 / self.probes) as u16 }
    }
}

pub fn now_wall() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Store {
    /// Opens (creating if missing) the database at `url` and applies the migrations.
    pub async fn open(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// The next block the watcher reads, if it has read any.
    pub async fn cursor(&self) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT next_block FROM chain_cursor WHERE id = 1").fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.get::<i64, _>(0) as u64))
    }

    /// The newest block timestamp the watcher saw.
    pub async fn chain_time(&self) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT head_timestamp FROM chain_cursor WHERE id = 1").fetch_optional(&self.pool).await?;
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
            "INSERT INTO chain_cursor (id, next_block, head_timestamp) VALUES (1, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET next_block = excluded.next_block, head_timestamp = excluded.head_timestamp",
        )
        .bind(next_block as i64)
        .bind(head_timestamp as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn offers(&self) -> Result<Vec<Offer>> {
        let rows = sqlx::query("SELECT id, provider, price_per_second, max_duration, retired FROM offers ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let price: String = r.get("price_per_second");
                let max_duration = r.get::<i64, _>("max_duration") as u64;
                Ok(Offer {
                    id: r.get::<i64, _>("id") as u64,
                    provider: r.get("provider"),
                    deposit: wei_product(&price, max_duration)?,
                    price_per_second: price,
                    max_duration,
                    retired: r.get::<i64, _>("retired") != 0,
                })
            })
            .collect()
    }

    pub async fn agreement(&self, id: u64) -> Result<Option<Agreement>> {
        let row = sqlx::query("SELECT * FROM agreements WHERE id = ?").bind(id as i64).fetch_optional(&self.pool).await?;
        row.as_ref().map(agreement_from_row).transpose()
    }

    /// Agreements that still need the backend: not finished on-chain, or with a conference to remove.
    pub async fn open_agreements(&self) -> Result<Vec<Agreement>> {
        let rows = sqlx::query(
            "SELECT * FROM agreements WHERE chain_status NOT IN ('settled', 'refunded') \
             OR conference_state IN ('running', 'deploying') ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(agreement_from_row).collect()
    }

    /// Marks a deploy as started, before the orchestrator is asked, so a crash leaves a trace.
    pub async fn conference_deploying(&self, id: u64) -> Result<()> {
        sqlx::query("UPDATE agreements SET conference_state = 'deploying' WHERE id = ?")
            .bind(id as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a running conference; `fresh` counts it as a new deployment (not an adopted one).
    pub async fn conference_running(&self, id: u64, join_url: &str, fresh: bool) -> Result<()> {
        sqlx::query(
            "UPDATE agreements SET conference_state = 'running', join_url = ?, \
             deploy_count = deploy_count + ?, deployed_wall_at = COALESCE(deployed_wall_at, ?) WHERE id = ?",
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
        sqlx::query("UPDATE agreements SET conference_state = 'removed', removed_wall_at = ? WHERE id = ?")
            .bind(now_wall())
            .bind(id as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn record_probe(&self, id: u64, ok: bool, detail: Option<&str>) -> Result<()> {
        sqlx::query("INSERT INTO probes (agreement_id, wall_at, ok, detail) VALUES (?, ?, ?, ?)")
            .bind(id as i64)
            .bind(now_wall())
            .bind(ok as i64)
            .bind(detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn probe_tally(&self, id: u64) -> Result<ProbeTally> {
        let row = sqlx::query("SELECT COUNT(*), COALESCE(SUM(ok), 0) FROM probes WHERE agreement_id = ?")
            .bind(id as i64)
            .fetch_one(&self.pool)
            .await?;
        Ok(ProbeTally { probes: row.get::<i64, _>(0) as u64, probes_ok: row.get::<i64, _>(1) as u64 })
    }

    /// Queues an operator call; queuing the same call for the same agreement again changes nothing.
    /// Returns whether the call was new.
    pub async fn enqueue(&self, call: OperatorCall) -> Result<bool> {
        let (agreement, name, argument) = call_parts(call);
        let inserted = sqlx::query(
            "INSERT INTO outbox (agreement_id, call, argument, created_wall_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (agreement_id, call) DO NOTHING",
        )
        .bind(agreement as i64)
        .bind(name)
        .bind(argument)
        .bind(now_wall())
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Calls not finished yet, oldest first.
    pub async fn unfinished_outbox(&self) -> Result<Vec<OutboxItem>> {
        let rows = sqlx::query("SELECT * FROM outbox WHERE state IN ('pending', 'sent') ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    pub async fn outbox_of(&self, agreement: u64) -> Result<Vec<OutboxItem>> {
        let rows = sqlx::query("SELECT * FROM outbox WHERE agreement_id = ? ORDER BY id")
            .bind(agreement as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// Stores a signed transaction before it is broadcast.
    pub async fn outbox_signed(&self, id: i64, tx: &SignedTx) -> Result<()> {
        sqlx::query("UPDATE outbox SET state = 'sent', nonce = ?, tx_hash = ?, raw_tx = ? WHERE id = ? AND state = 'pending'")
            .bind(tx.nonce as i64)
            .bind(tx.hash.to_string())
            .bind(&tx.raw)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn outbox_finished(&self, id: i64, state: OutboxState, outcome: &str) -> Result<()> {
        sqlx::query("UPDATE outbox SET state = ?, outcome = ? WHERE id = ?")
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
}

async fn apply_event(tx: &mut sqlx::SqliteConnection, event: &ChainEvent) -> Result<()> {
    match event {
        ChainEvent::OfferPublished { offer, provider, price_per_second, max_duration } => {
            sqlx::query(
                "INSERT INTO offers (id, provider, price_per_second, max_duration) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(*offer as i64)
            .bind(provider)
            .bind(price_per_second)
            .bind(*max_duration as i64)
            .execute(&mut *tx)
            .await?;
        }
        ChainEvent::OfferRetired { offer } => {
            sqlx::query("UPDATE offers SET retired = 1 WHERE id = ?").bind(*offer as i64).execute(&mut *tx).await?;
        }
        ChainEvent::Signed { agreement, offer, customer, deposit, signed_at, tx_hash } => {
            // The agreement copies its offer's terms: offers are immutable on-chain.
            sqlx::query(
                "INSERT INTO agreements (id, offer_id, customer, provider, price_per_second, max_duration, \
                 deposit, chain_status, signed_at, sign_tx) \
                 SELECT ?, id, ?, provider, price_per_second, max_duration, ?, 'signed', ?, ? FROM offers WHERE id = ? \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(*agreement as i64)
            .bind(customer)
            .bind(deposit)
            .bind(*signed_at as i64)
            .bind(tx_hash)
            .bind(*offer as i64)
            .execute(&mut *tx)
            .await?;
        }
        ChainEvent::Activated { agreement, started_at, tx_hash } => {
            sqlx::query("UPDATE agreements SET chain_status = 'active', started_at = ?, activate_tx = ? WHERE id = ?")
                .bind(*started_at as i64)
                .bind(tx_hash)
                .bind(*agreement as i64)
                .execute(&mut *tx)
                .await?;
        }
        ChainEvent::Ended { agreement, ended_at, tx_hash } => {
            sqlx::query("UPDATE agreements SET chain_status = 'ended', ended_at = ?, end_tx = ? WHERE id = ?")
                .bind(*ended_at as i64)
                .bind(tx_hash)
                .bind(*agreement as i64)
                .execute(&mut *tx)
                .await?;
        }
        ChainEvent::Settled { agreement, availability_bps, charge, refund, refund_deferred, tx_hash } => {
            sqlx::query(
                "UPDATE agreements SET chain_status = 'settled', availability_bps = ?, charge = ?, refund = ?, \
                 refund_deferred = ?, settle_tx = ? WHERE id = ?",
            )
            .bind(*availability_bps as i64)
            .bind(charge)
            .bind(refund)
            .bind(*refund_deferred as i64)
            .bind(tx_hash)
            .bind(*agreement as i64)
            .execute(&mut *tx)
            .await?;
        }
        ChainEvent::Refunded { agreement, reason, refund, refund_deferred, tx_hash } => {
            sqlx::query(
                "UPDATE agreements SET chain_status = 'refunded', charge = '0', refund = ?, refund_deferred = ?, \
                 refund_reason = ?, settle_tx = ? WHERE id = ?",
            )
            .bind(refund)
            .bind(*refund_deferred as i64)
            .bind(*reason)
            .bind(tx_hash)
            .bind(*agreement as i64)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

fn call_parts(call: OperatorCall) -> (u64, &'static str, Option<i64>) {
    match call {
        OperatorCall::Activate { agreement } => (agreement, "activate", None),
        OperatorCall::End { agreement } => (agreement, "end", None),
        OperatorCall::Settle { agreement, availability_bps } => (agreement, "settle", Some(availability_bps as i64)),
    }
}

fn outbox_from_row(r: &SqliteRow) -> Result<OutboxItem> {
    let agreement = r.get::<i64, _>("agreement_id") as u64;
    let name: String = r.get("call");
    let call = match name.as_str() {
        "activate" => OperatorCall::Activate { agreement },
        "end" => OperatorCall::End { agreement },
        "settle" => OperatorCall::Settle {
            agreement,
            availability_bps: r.get::<Option<i64>, _>("argument").unwrap_or(10_000) as u16,
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
        call,
        call_name: call_parts(call).1,
        state,
        nonce: r.get::<Option<i64>, _>("nonce").map(|n| n as u64),
        tx_hash: r.get("tx_hash"),
        raw_tx: r.get("raw_tx"),
        outcome: r.get("outcome"),
    })
}

fn agreement_from_row(r: &SqliteRow) -> Result<Agreement> {
    let opt_u64 = |col: &str| r.get::<Option<i64>, _>(col).map(|v| v as u64);
    Ok(Agreement {
        id: r.get::<i64, _>("id") as u64,
        offer_id: r.get::<i64, _>("offer_id") as u64,
        customer: r.get("customer"),
        provider: r.get("provider"),
        price_per_second: r.get("price_per_second"),
        max_duration: r.get::<i64, _>("max_duration") as u64,
        deposit: r.get("deposit"),
        chain_status: r.get::<String, _>("chain_status").parse()?,
        signed_at: r.get::<i64, _>("signed_at") as u64,
        started_at: opt_u64("started_at"),
        ended_at: opt_u64("ended_at"),
        availability_bps: r.get::<Option<i64>, _>("availability_bps").map(|v| v as u16),
        charge: r.get("charge"),
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
    })
}

/// `price × seconds` for a decimal wei string, as the contract computes a deposit.
fn wei_product(price: &str, seconds: u64) -> Result<String> {
    use alloy::primitives::U256;
    let price = U256::from_str(price).map_err(|e| Error::Config(format!("stored price {price:?}: {e}")))?;
    Ok((price * U256::from(seconds)).to_string())
}
