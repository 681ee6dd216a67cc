//! The watcher's side of the store: its cursor, the hashes of recent blocks, the events it read (kept
//! to replay), applied to the records in the same transaction as the cursor, and the rollback to a
//! fork point by replay (see [`crate::watcher`] for why replay).

use std::collections::{BTreeMap, HashSet};

use sqlx::{AnyConnection, Row, any::AnyArguments, query::Query};

use super::{Change, Dialect, Store, feed, stored_wei};
use crate::{
    Error, Result,
    domain::{agreement::Model, event::ChainEvent},
};

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

impl Store {
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
        let mut tx = self.writer.begin().await?;
        for event in events {
            apply_event(&mut tx, event).await?;
        }
        set_cursor(&mut tx, next_block, head_timestamp).await?;
        self.publish(&mut tx, &[Change::All]).await?;
        tx.commit().await?;
        self.changed(Change::All);
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
        let params = Params::of(self.dialect);
        let mut tx = self.writer.begin().await?;
        let mut new = HashSet::with_capacity(events.len());
        let jsons = events
            .iter()
            .map(|recorded| serde_json::to_string(&recorded.event).map_err(|e| Error::Config(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        let rows: Vec<_> = events.iter().zip(&jsons).collect();
        for chunk in rows.chunks(rows_per_statement(6)) {
            let sql = format!(
                "INSERT INTO chain_events (block_number, log_index, block_hash, agreement_id, terms_id, event) \
                 VALUES {} ON CONFLICT (block_number, log_index) DO NOTHING RETURNING block_number, log_index",
                params.rows(chunk.len(), 6)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (recorded, json) in chunk {
                query = query
                    .bind(recorded.block as i64)
                    .bind(recorded.log_index as i64)
                    .bind(&recorded.block_hash)
                    .bind(recorded.event.agreement().map(|id| id as i64))
                    .bind(recorded.event.terms().map(|id| id as i64))
                    .bind(json.as_str());
            }
            for row in query.fetch_all(&mut *tx).await? {
                new.insert((row.get::<i64, _>(0) as u64, row.get::<i64, _>(1) as u64));
            }
        }
        // Applied in chain order, each unless it was kept already; a run of signatures (a catch-up is mostly
        // those) is one statement per chunk: new agreements, which no other event of the run touches.
        let fresh: Vec<&ChainEvent> =
            events.iter().filter(|e| new.contains(&(e.block, e.log_index))).map(|e| &e.event).collect();
        let mut rest = &fresh[..];
        while let Some(first) = rest.first() {
            let run = rest.iter().take_while(|e| matches!(e, ChainEvent::Signed { .. })).count();
            if run == 0 {
                apply_event(&mut tx, first).await?;
                rest = &rest[1..];
            } else {
                insert_signed(&mut tx, params, &rest[..run]).await?;
                rest = &rest[run..];
            }
        }
        // The range's last block may also hold events: one row per number, the last hash given.
        let blocks: BTreeMap<u64, &String> = blocks.iter().map(|(number, hash)| (*number, hash)).collect();
        let blocks: Vec<_> = blocks.into_iter().collect();
        for chunk in blocks.chunks(rows_per_statement(2)) {
            let sql = format!(
                "INSERT INTO chain_blocks (number, hash) VALUES {} ON CONFLICT (number) DO UPDATE SET hash = excluded.hash",
                params.rows(chunk.len(), 2)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (number, hash) in chunk {
                query = query.bind(*number as i64).bind(hash.as_str());
            }
            query.execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM chain_blocks WHERE number < $1").bind(keep_from as i64).execute(&mut *tx).await?;
        // Read on the transaction's own connection: asking the pool for another while holding the write
        // lock deadlocks (until the busy timeout) once every other connection waits for that lock.
        let before =
            sqlx::query("SELECT head_timestamp FROM chain_cursor WHERE id = 1").fetch_optional(&mut *tx).await?;
        let clock_moved = before.map(|r| r.get::<i64, _>(0) as u64) != Some(head_timestamp);
        set_cursor(&mut tx, next_block, head_timestamp).await?;
        let changes: Vec<Change> = match clock_moved {
            true => vec![Change::All],
            false => feed::coalesce(events.iter().filter_map(|e| e.event.agreement()).map(Change::Agreement)),
        };
        self.publish(&mut tx, &changes).await?;
        tx.commit().await?;
        changes.into_iter().for_each(|change| self.changed(change));
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
        let mut tx = self.writer.begin().await?;
        let undone = sqlx::query("SELECT event FROM chain_events WHERE block_number >= $1")
            .bind(fork_block as i64)
            .fetch_all(&mut *tx)
            .await?;
        let (mut agreements, mut signed, mut terms, mut published) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for row in &undone {
            let event = stored_event(&row.get::<String, _>(0))?;
            match &event {
                ChainEvent::Signed { agreement, .. } => signed.insert(*agreement),
                ChainEvent::TermsPublished { terms, .. } => published.insert(*terms),
                ChainEvent::OrderFilled { customer, nonce, .. } => {
                    // Opened on the abandoned branch only: pending again, in the batch that carried it (the
                    // settler follows that batch, and sends its stored bytes again).
                    sqlx::query(
                        "UPDATE orders SET status = 'pending', agreement_id = NULL \
                         WHERE customer = $1 AND nonce = $2 AND status = 'opened'",
                    )
                    .bind(customer)
                    .bind(nonce)
                    .execute(&mut *tx)
                    .await?;
                    false
                }
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
        self.publish(&mut tx, &[Change::All]).await?;
        tx.commit().await?;
        self.changed(Change::All);
        Ok(report)
    }
}

async fn apply_event(tx: &mut AnyConnection, event: &ChainEvent) -> Result<()> {
    let query = match event {
        ChainEvent::TermsPublished {
            terms,
            offer,
            model,
            token_id,
            price,
            max_duration,
            minimum_charge,
            regions,
            gdpr,
            monitor,
        } => {
            sqlx::query(
                "INSERT INTO terms (id, offer_id, model, token_id, price, max_duration, minimum_charge, regions, gdpr, \
                 monitor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
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
            .bind(monitor.as_deref())
        }
        ChainEvent::TermsClosed { terms } => sqlx::query("UPDATE terms SET open = 0 WHERE id = $1").bind(*terms as i64),
        ChainEvent::Signed { .. } => return insert_signed(tx, Params::Numbered, &[event]).await,
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
        ChainEvent::Settled { agreement, availability_bps, evidence, charge, refund, refund_deferred, tx_hash } => {
            sqlx::query(
                "INSERT INTO sessions (agreement_id, session, started_at, ended_at, availability_bps, evidence, charge, \
                 settle_tx) SELECT id, session, started_at, ended_at, $1, $2, $3, $4 FROM agreements WHERE id = $5 \
                 ON CONFLICT (agreement_id, session) DO NOTHING",
            )
            .bind(*availability_bps as i64)
            .bind(evidence.to_string())
            .bind(charge)
            .bind(tx_hash)
            .bind(*agreement as i64)
            .execute(&mut *tx)
            .await?;
            // A TimeLimited session of bought minutes is paid; the account stays open for the next one. One
            // opened from a customer account is one conference, like every agreement opened so.
            let charged = sum_wei(tx, *agreement, charge).await?;
            sqlx::query(
                "UPDATE agreements SET \
                 chain_status = CASE WHEN model = 'timeLimited' AND from_account = 0 THEN 'idle' ELSE 'settled' END, \
                 availability_bps = $1, charged = $2, \
                 refund = CASE WHEN model = 'timeLimited' AND from_account = 0 THEN refund ELSE $3 END, \
                 refund_deferred = CASE WHEN model = 'timeLimited' AND from_account = 0 THEN refund_deferred ELSE $4 END, \
                 settle_tx = $5 WHERE id = $6",
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
            // the reservation: both go back to idle. Anything else (and anything opened from an account,
            // one conference) was refunded in full.
            sqlx::query(
                "UPDATE agreements SET chain_status = CASE WHEN from_account = 0 AND \
                   (model = 'timeLimited' OR (model = 'flexiblePeriod' AND $1 = 'cancelledByCustomer')) THEN 'idle' \
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
        ChainEvent::OrderFilled { agreement, customer, nonce } => {
            // Its order is opened (whatever the settler recorded of it), and linked to the agreement.
            sqlx::query(
                "UPDATE orders SET status = 'opened', agreement_id = $1, reason = NULL WHERE customer = $2 AND nonce = $3",
            )
            .bind(*agreement as i64)
            .bind(customer)
            .bind(nonce)
            .execute(&mut *tx)
            .await?;
            // Requested at its opening, whatever the model (TimeLimited and FlexiblePeriod included).
            sqlx::query(
                "UPDATE agreements SET from_account = 1, chain_status = 'requested', session = 1, \
                 requested_at = signed_at WHERE id = $1 AND session = 0",
            )
            .bind(*agreement as i64)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE agreements SET from_account = 1 WHERE id = $1").bind(*agreement as i64)
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

/// Bind parameters per statement, under both databases' limits (SQLite's 32,766, PostgreSQL's 65,535).
const MAX_BINDS: usize = 32_000;

/// How many rows of `columns` binds one multi-row statement takes.
fn rows_per_statement(columns: usize) -> usize {
    MAX_BINDS / columns
}

/// How a statement names its parameters. Both databases take numbered ones (`$1`); but SQLite looks
/// each numbered parameter up by its name when it is bound, a walk over the statement's parameters, so
/// that binding a statement of thousands costs their square (a 32,000-parameter insert took seconds).
/// Its anonymous `?`, bound in order, costs nothing: multi-row statements use it on SQLite.
#[derive(Debug, Clone, Copy)]
enum Params {
    Numbered,
    InOrder,
}

impl Params {
    fn of(dialect: Dialect) -> Self {
        match dialect {
            Dialect::Sqlite => Self::InOrder,
            Dialect::Postgres => Self::Numbered,
        }
    }

    /// `($1, $2), ($3, $4), …` (or `(?, ?), (?, ?), …`): `rows` rows of `columns` parameters.
    fn rows(self, rows: usize, columns: usize) -> String {
        let mut sql = String::with_capacity(rows * columns * 8);
        for row in 0..rows {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for column in 0..columns {
                if column > 0 {
                    sql.push_str(", ");
                }
                match self {
                    Self::Numbered => {
                        sql.push('$');
                        sql.push_str(&(row * columns + column + 1).to_string());
                    }
                    Self::InOrder => sql.push('?'),
                }
            }
            sql.push(')');
        }
        sql
    }
}

/// The agreements that `signed` (all [`ChainEvent::Signed`]) open, in multi-row statements; one already
/// stored is left as it is.
async fn insert_signed(tx: &mut AnyConnection, params: Params, signed: &[&ChainEvent]) -> Result<()> {
    const COLUMNS: usize = 16;
    for chunk in signed.chunks(rows_per_statement(COLUMNS)) {
        let sql = format!(
            "INSERT INTO agreements (id, terms_id, model, customer, token_id, price, deposit, allowed_regions, gdpr, \
             duration, chain_status, session, signed_at, sign_tx, requested_at, surcharge_bps) VALUES {} \
             ON CONFLICT (id) DO NOTHING",
            params.rows(chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for event in chunk {
            query = bind_signed(query, event)?;
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

fn bind_signed<'q>(
    query: Query<'q, sqlx::Any, AnyArguments>,
    event: &ChainEvent,
) -> Result<Query<'q, sqlx::Any, AnyArguments>> {
    let ChainEvent::Signed {
        agreement,
        terms,
        customer,
        deposit,
        model,
        token_id,
        price,
        surcharge_bps,
        allowed_regions,
        gdpr,
        duration,
        signed_at,
        tx_hash,
    } = event
    else {
        return Err(Error::Config(format!("not a signature: {event:?}")));
    };
    let (status, session, requested_at) = signed_state(*model, *signed_at);
    Ok(query
        .bind(*agreement as i64)
        .bind(*terms as i64)
        .bind(model.as_str())
        .bind(customer.as_str())
        .bind(*token_id as i64)
        .bind(price.as_str())
        .bind(deposit.as_str())
        .bind(*allowed_regions as i64)
        .bind(*gdpr as i64)
        .bind(*duration as i64)
        .bind(status)
        .bind(session)
        .bind(*signed_at as i64)
        .bind(tx_hash.as_str())
        .bind(requested_at)
        .bind(i64::from(*surcharge_bps)))
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
         refund_reason = NULL, settle_tx = NULL, from_account = 0 WHERE id = $4",
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

#[cfg(test)]
mod tests {
    use super::Params;

    #[test]
    fn multi_row_parameters_are_numbered_for_postgres_and_in_order_for_sqlite() {
        assert_eq!(Params::Numbered.rows(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(Params::InOrder.rows(2, 3), "(?, ?, ?), (?, ?, ?)");
    }
}
