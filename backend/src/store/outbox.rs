//! The operator's outbox: each call queued once per agreement session, and every transaction signed
//! for it, stored before it is broadcast (see [`crate::settler`]). Calls (and customers' orders, see
//! [`super::orders`]) go out together in batches: one `batch(bytes[])` transaction, its attempts kept in
//! `batch_attempts`, each call naming its batch and its position there.

use serde::Serialize;
use sqlx::{Row, any::AnyRow};

use super::{Change, Store, agreements::signed_stop_from_row, feed, now_wall};
use crate::{
    Error, Result,
    domain::operator::{MAX_RETRIES, OperatorCall, SignedTx},
};

/// Outbox rows with the signed stop a stopAndSettle call submits, then `$tail`.
macro_rules! outbox_where {
    ($tail:literal) => {
        concat!(
            "SELECT o.*, s.started_at AS stop_started_at, s.stopped_at AS stop_stopped_at, ",
            "s.deadline AS stop_deadline, s.signature AS stop_signature, ",
            "(SELECT CAST(COUNT(*) AS BIGINT) FROM outbox_attempts t WHERE t.outbox_id = o.id) + ",
            "(SELECT CAST(COUNT(*) AS BIGINT) FROM batch_attempts b WHERE b.batch_id = o.batch_id) AS attempts FROM outbox o ",
            "LEFT JOIN signed_stops s ON s.agreement_id = o.agreement_id AND s.session = o.session ",
            $tail
        )
    };
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
    /// The batch transaction carrying it, once sent in one (null: sent alone, before batches).
    pub batch: Option<i64>,
    /// Its position in that batch.
    #[serde(skip)]
    pub batch_index: Option<u64>,
    /// How often it was queued again after failing (at most [`MAX_RETRIES`]).
    pub retries: u64,
    /// When it was queued (wall clock, unix seconds).
    #[serde(skip)]
    pub created_wall_at: i64,
}

/// A call or order of a batch about to be signed: which, and its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchMember {
    Call(i64),
    Order(i64),
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

impl Store {
    /// Queues an operator call; queuing the same call for the same session of an agreement again
    /// changes nothing. Returns whether the call was new.
    pub async fn enqueue(&self, call: &OperatorCall) -> Result<bool> {
        let (started_at, argument) = call_parts(call);
        let (evidence, report) = match call {
            OperatorCall::Settle { evidence, report, .. } | OperatorCall::StopAndSettle { evidence, report, .. } => {
                (Some(evidence.to_string()), Some(report.to_string()))
            }
            _ => (None, None),
        };
        let inserted = sqlx::query(
            "INSERT INTO outbox (agreement_id, session, call, started_at, argument, evidence, report, created_wall_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (agreement_id, session, call) DO NOTHING",
        )
        .bind(call.agreement() as i64)
        .bind(call.session() as i64)
        .bind(call.name())
        .bind(started_at as i64)
        .bind(argument)
        .bind(evidence)
        .bind(report)
        .bind(now_wall())
        .execute(&self.writer)
        .await?;
        let new = inserted.rows_affected() == 1;
        if new {
            self.committed(Change::Agreement(call.agreement())).await;
        }
        Ok(new)
    }

    /// Whether the call `call` of the agreement's session is in the outbox and nothing more is to be done
    /// about it here: unfinished, done, or failed with its retries used up (a failed call with retries
    /// left is not: [`Self::retry_failed`] queues it again).
    pub async fn is_queued(&self, agreement: u64, session: u64, call: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM outbox WHERE agreement_id = $1 AND session = $2 AND call = $3 \
             AND (state <> 'failed' OR retries >= $4)",
        )
        .bind(agreement as i64)
        .bind(session as i64)
        .bind(call)
        .bind(MAX_RETRIES as i64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Queues a failed call again (pending, out of its batch), unless its retries are used up. Returns
    /// whether it was.
    pub async fn retry_failed(&self, agreement: u64, session: u64, call: &str) -> Result<bool> {
        let row = sqlx::query(
            "UPDATE outbox SET state = 'pending', retries = retries + 1, batch_id = NULL, batch_index = NULL, \
             nonce = NULL, tx_hash = NULL, raw_tx = NULL, mined_block = NULL, outcome = 'retrying after: ' || outcome \
             WHERE agreement_id = $1 AND session = $2 AND call = $3 AND state = 'failed' AND retries < $4 \
             RETURNING agreement_id",
        )
        .bind(agreement as i64)
        .bind(session as i64)
        .bind(call)
        .bind(MAX_RETRIES as i64)
        .fetch_optional(&self.writer)
        .await?;
        let retried = row.is_some();
        self.outbox_changed(row).await;
        Ok(retried)
    }

    /// Stores the first transaction of a new batch before it is broadcast: the batch, its attempt, and
    /// each member in its position (calls still pending become sent; orders still pending and in no batch
    /// join it), in one database transaction. Returns the batch's id, or None (storing nothing) if a
    /// member moved meanwhile: then it must not be broadcast.
    pub async fn record_batch(&self, members: &[BatchMember], tx: &SignedTx) -> Result<Option<i64>> {
        let mut db = self.writer.begin().await?;
        let batch: i64 = sqlx::query(
            "INSERT INTO batches (calls, nonce, tx_hash, created_wall_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(members.len() as i64)
        .bind(tx.nonce as i64)
        .bind(tx.hash.to_string())
        .bind(now_wall())
        .fetch_one(&mut *db)
        .await?
        .get(0);
        insert_attempt(&mut db, Sender::Batch(batch), tx).await?;
        let mut agreements = Vec::new();
        for (index, member) in members.iter().enumerate() {
            let row =
                match *member {
                    BatchMember::Call(id) => sqlx::query(
                        "UPDATE outbox SET state = 'sent', batch_id = $1, batch_index = $2, nonce = $3, tx_hash = $4, \
                         raw_tx = NULL, mined_block = NULL WHERE id = $5 AND state = 'pending' RETURNING agreement_id",
                    )
                    .bind(batch)
                    .bind(index as i64)
                    .bind(tx.nonce as i64)
                    .bind(tx.hash.to_string())
                    .bind(id)
                    .fetch_optional(&mut *db)
                    .await?,
                    BatchMember::Order(id) => {
                        sqlx::query(
                            "UPDATE orders SET batch_id = $1, batch_index = $2 WHERE id = $3 AND status = 'pending' \
                         AND batch_id IS NULL RETURNING CAST(0 AS BIGINT)",
                        )
                        .bind(batch)
                        .bind(index as i64)
                        .bind(id)
                        .fetch_optional(&mut *db)
                        .await?
                    }
                };
            let Some(row) = row else {
                db.rollback().await?;
                return Ok(None);
            };
            agreements.push(row.get::<i64, _>(0) as u64);
        }
        let changes = feed::coalesce(agreements.into_iter().filter(|&a| a != 0).map(Change::Agreement));
        self.publish(&mut db, &changes).await?;
        db.commit().await?;
        changes.into_iter().for_each(|change| self.changed(change));
        Ok(Some(batch))
    }

    /// Stores a replacement of batch `batch`'s transaction (the same nonce and calls, higher fees) before
    /// it is broadcast, as its newest attempt.
    pub async fn record_batch_attempt(&self, batch: i64, tx: &SignedTx) -> Result<()> {
        let mut db = self.writer.begin().await?;
        insert_attempt(&mut db, Sender::Batch(batch), tx).await?;
        sqlx::query("UPDATE batches SET tx_hash = $1 WHERE id = $2")
            .bind(tx.hash.to_string())
            .bind(batch)
            .execute(&mut *db)
            .await?;
        sqlx::query("UPDATE outbox SET tx_hash = $1 WHERE batch_id = $2 AND state = 'sent'")
            .bind(tx.hash.to_string())
            .bind(batch)
            .execute(&mut *db)
            .await?;
        db.commit().await?;
        Ok(())
    }

    /// Every transaction signed for batch `batch`, first first.
    pub async fn batch_attempts(&self, batch: i64) -> Result<Vec<Attempt>> {
        let rows = sqlx::query("SELECT * FROM batch_attempts WHERE batch_id = $1 ORDER BY attempt")
            .bind(batch)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(attempt_from_row).collect())
    }

    /// How many calls batch `batch` carries.
    pub async fn batch_size(&self, batch: i64) -> Result<usize> {
        let row = sqlx::query("SELECT calls FROM batches WHERE id = $1").bind(batch).fetch_one(&self.pool).await?;
        Ok(row.get::<i64, _>(0) as usize)
    }

    /// What a mined attempt of batch `batch` did, recorded in one transaction: where it was mined (the
    /// batch, and each call still sent in it); once `confirmed` (deep enough), each member of `failed`
    /// failed with the escrow's reason (a call, or an order), and every other call still sent done with
    /// `outcome`. Returns how many members it finished.
    pub async fn batch_mined(
        &self,
        batch: i64,
        attempt: &Attempt,
        block: u64,
        confirmed: bool,
        outcome: &str,
        failed: &[(BatchMember, String)],
    ) -> Result<usize> {
        let mut db = self.writer.begin().await?;
        sqlx::query("UPDATE batches SET tx_hash = $1, mined_block = $2 WHERE id = $3")
            .bind(&attempt.tx_hash)
            .bind(block as i64)
            .bind(batch)
            .execute(&mut *db)
            .await?;
        let (mut agreements, mut finished) = (Vec::new(), 0);
        for (member, reason) in failed.iter().filter(|_| confirmed) {
            match *member {
                BatchMember::Call(id) => {
                    let row = sqlx::query(
                        "UPDATE outbox SET state = 'failed', outcome = $1, nonce = $2, tx_hash = $3, mined_block = $4 \
                         WHERE id = $5 AND batch_id = $6 AND state = 'sent' RETURNING agreement_id",
                    )
                    .bind(reason)
                    .bind(attempt.nonce as i64)
                    .bind(&attempt.tx_hash)
                    .bind(block as i64)
                    .bind(id)
                    .bind(batch)
                    .fetch_optional(&mut *db)
                    .await?;
                    if let Some(row) = row {
                        agreements.push(row.get::<i64, _>(0) as u64);
                        finished += 1;
                    }
                }
                BatchMember::Order(id) => {
                    let result = sqlx::query(
                        "UPDATE orders SET status = 'failed', reason = $1 WHERE id = $2 AND batch_id = $3 \
                         AND status = 'pending'",
                    )
                    .bind(reason)
                    .bind(id)
                    .bind(batch)
                    .execute(&mut *db)
                    .await?;
                    finished += result.rows_affected() as usize;
                }
            }
        }
        // The calls it carried that did not fail (or not yet deep enough to say): mined, done once confirmed.
        let rows = sqlx::query(
            "UPDATE outbox SET nonce = $1, tx_hash = $2, mined_block = $3, \
             state = CASE WHEN $4 = 1 THEN 'done' ELSE state END, outcome = CASE WHEN $4 = 1 THEN $5 ELSE outcome END \
             WHERE batch_id = $6 AND state = 'sent' RETURNING agreement_id",
        )
        .bind(attempt.nonce as i64)
        .bind(&attempt.tx_hash)
        .bind(block as i64)
        .bind(confirmed as i64)
        .bind(outcome)
        .bind(batch)
        .fetch_all(&mut *db)
        .await?;
        if confirmed {
            finished += rows.len();
        }
        agreements.extend(rows.iter().map(|row| row.get::<i64, _>(0) as u64));
        let changes = feed::coalesce(agreements.into_iter().map(Change::Agreement));
        self.publish(&mut db, &changes).await?;
        db.commit().await?;
        changes.into_iter().for_each(|change| self.changed(change));
        Ok(finished)
    }

    /// Batches with a member still in flight (a call sent, or an order pending in it), oldest first.
    pub async fn batches_in_flight(&self) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT batch_id FROM outbox WHERE state = 'sent' AND batch_id IS NOT NULL \
             UNION SELECT batch_id FROM orders WHERE status = 'pending' AND batch_id IS NOT NULL ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.get::<i64, _>(0)).collect())
    }

    /// The calls of batch `batch` still sent (not finished), in their order there.
    pub async fn calls_in_batch(&self, batch: i64) -> Result<Vec<OutboxItem>> {
        let rows = sqlx::query(outbox_where!("WHERE o.batch_id = $1 AND o.state = 'sent' ORDER BY o.batch_index"))
            .bind(batch)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// Calls not finished yet, oldest first.
    pub async fn unfinished_outbox(&self) -> Result<Vec<OutboxItem>> {
        let rows = sqlx::query(outbox_where!("WHERE o.state IN ('pending', 'sent') ORDER BY o.id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(outbox_from_row).collect()
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
        let mut db = self.writer.begin().await?;
        let updated = sqlx::query(
            "UPDATE outbox SET state = 'sent', nonce = $1, tx_hash = $2, raw_tx = $3, mined_block = NULL \
             WHERE id = $4 AND state = $5 RETURNING agreement_id",
        )
        .bind(tx.nonce as i64)
        .bind(tx.hash.to_string())
        .bind(&tx.raw)
        .bind(id)
        .bind(from.as_str())
        .fetch_optional(&mut *db)
        .await?;
        let Some(agreement) = updated.map(|r| r.get::<i64, _>(0) as u64) else { return Ok(false) };
        insert_attempt(&mut db, Sender::Call(id), tx).await?;
        self.publish(&mut db, &[Change::Agreement(agreement)]).await?;
        db.commit().await?;
        self.changed(Change::Agreement(agreement));
        Ok(true)
    }

    /// Every transaction signed for call `id`, first first.
    pub async fn attempts(&self, id: i64) -> Result<Vec<Attempt>> {
        let rows = sqlx::query("SELECT * FROM outbox_attempts WHERE outbox_id = $1 ORDER BY attempt")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(attempt_from_row).collect())
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
        let row = sqlx::query(
            "UPDATE outbox SET state = CASE WHEN $1 = 1 THEN 'done' ELSE state END, \
             outcome = CASE WHEN $1 = 1 THEN $2 ELSE outcome END, nonce = $3, tx_hash = $4, raw_tx = $5, \
             mined_block = $6 WHERE id = $7 AND state = 'sent' RETURNING agreement_id",
        )
        .bind(confirmed as i64)
        .bind(outcome)
        .bind(attempt.nonce as i64)
        .bind(&attempt.tx_hash)
        .bind(&attempt.raw_tx)
        .bind(block as i64)
        .bind(id)
        .fetch_optional(&self.writer)
        .await?;
        self.outbox_changed(row).await;
        Ok(())
    }

    /// Hands a sent call back to be signed anew (its nonce was taken by another transaction while the
    /// call is still due). Its attempts stay as history.
    pub async fn outbox_resign(&self, id: i64, outcome: &str) -> Result<()> {
        let row = sqlx::query(
            "UPDATE outbox SET state = 'pending', outcome = $1, mined_block = NULL, batch_id = NULL, \
             batch_index = NULL WHERE id = $2 AND state = 'sent' RETURNING agreement_id",
        )
        .bind(outcome)
        .bind(id)
        .fetch_optional(&self.writer)
        .await?;
        self.outbox_changed(row).await;
        Ok(())
    }

    /// One past the highest nonce of the operator's calls in flight (sent, not mined or dropped yet):
    /// with the node's pending count, the next nonce to sign with.
    pub async fn next_nonce_in_flight(&self) -> Result<Option<u64>> {
        let row = sqlx::query(
            "SELECT CAST(MAX(n) AS BIGINT) FROM (SELECT nonce AS n FROM outbox WHERE state = 'sent' \
             UNION ALL SELECT b.nonce AS n FROM batches b JOIN orders r ON r.batch_id = b.id WHERE r.status = 'pending') \
             AS in_flight",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get::<Option<i64>, _>(0).map(|n| n as u64 + 1))
    }

    pub async fn outbox_finished(&self, id: i64, state: OutboxState, outcome: &str) -> Result<()> {
        let row = sqlx::query(
            "UPDATE outbox SET state = $1, outcome = $2 WHERE id = $3 AND state IN ('pending', 'sent') \
             RETURNING agreement_id",
        )
        .bind(match state {
            OutboxState::Done => "done",
            OutboxState::Failed => "failed",
            other => return Err(Error::Config(format!("{other:?} is not a finished outbox state"))),
        })
        .bind(outcome)
        .bind(id)
        .fetch_optional(&self.writer)
        .await?;
        self.outbox_changed(row).await;
        Ok(())
    }

    /// Tells followers of the agreement an outbox update (its `RETURNING agreement_id` row) touched.
    async fn outbox_changed(&self, row: Option<AnyRow>) {
        if let Some(row) = row {
            self.committed(Change::Agreement(row.get::<i64, _>(0) as u64)).await;
        }
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
}

/// What an attempt is a transaction of: a call sent alone, or a batch.
#[derive(Debug, Clone, Copy)]
enum Sender {
    Call(i64),
    Batch(i64),
}

/// Stores `tx` as the next attempt of `sender` (its attempts' table, numbered from 1).
async fn insert_attempt(db: &mut sqlx::AnyConnection, sender: Sender, tx: &SignedTx) -> Result<()> {
    // Two fixed statements, one per table: the SQL stays static.
    let (sql, id) = match sender {
        Sender::Call(id) => (
            "INSERT INTO outbox_attempts (outbox_id, attempt, nonce, tx_hash, raw_tx, max_fee, priority_fee, sent_wall_at) \
             SELECT $1, CAST(COALESCE(MAX(attempt), 0) + 1 AS BIGINT), $2, $3, $4, $5, $6, $7 \
             FROM outbox_attempts WHERE outbox_id = $1",
            id,
        ),
        Sender::Batch(id) => (
            "INSERT INTO batch_attempts (batch_id, attempt, nonce, tx_hash, raw_tx, max_fee, priority_fee, sent_wall_at) \
             SELECT $1, CAST(COALESCE(MAX(attempt), 0) + 1 AS BIGINT), $2, $3, $4, $5, $6, $7 \
             FROM batch_attempts WHERE batch_id = $1",
            id,
        ),
    };
    sqlx::query(sql)
        .bind(id)
        .bind(tx.nonce as i64)
        .bind(tx.hash.to_string())
        .bind(&tx.raw)
        .bind(tx.fees.max_fee.to_string())
        .bind(tx.fees.priority_fee.to_string())
        .bind(now_wall())
        .execute(&mut *db)
        .await?;
    Ok(())
}

fn attempt_from_row(r: &AnyRow) -> Attempt {
    Attempt {
        attempt: r.get("attempt"),
        nonce: r.get::<i64, _>("nonce") as u64,
        tx_hash: r.get("tx_hash"),
        raw_tx: r.get("raw_tx"),
        sent_wall_at: r.get("sent_wall_at"),
    }
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
    let hex = |column: &str| -> Result<Option<String>> { Ok(r.try_get::<Option<String>, _>(column)?) };
    let evidence = hex("evidence")?
        .map(|v| v.parse::<alloy::primitives::B256>())
        .transpose()
        .map_err(|e| Error::Config(format!("outbox row of agreement {agreement}: evidence: {e}")))?
        .unwrap_or_default();
    let report = hex("report")?
        .map(|v| v.parse::<alloy::primitives::Bytes>())
        .transpose()
        .map_err(|e| Error::Config(format!("outbox row of agreement {agreement}: report: {e}")))?
        .unwrap_or_default();
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
        "settle" => OperatorCall::Settle {
            agreement,
            session,
            started_at,
            availability_bps: argument.unwrap_or_default() as u16,
            evidence,
            report,
        },
        "stopAndSettle" => OperatorCall::StopAndSettle {
            agreement,
            session,
            availability_bps: argument.unwrap_or_default() as u16,
            evidence,
            report,
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
        batch: r.get("batch_id"),
        batch_index: r.get::<Option<i64>, _>("batch_index").map(|i| i as u64),
        retries: r.get::<i64, _>("retries") as u64,
        created_wall_at: r.get("created_wall_at"),
    })
}
