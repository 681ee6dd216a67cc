//! The settler sends the outbox's operator calls (activate, decline, end, settle, stopAndSettle) and the
//! customers' orders (`openOrder`), each exactly once on the canonical chain. Everything due at a pass
//! goes out as ONE transaction, `batch(bytes[])` (at most `--operator-batch-size` calls, and at most what
//! runs as a whole within a block's gas; the rest wait for the next pass), for account and direct
//! agreements alike. In a batch, a call that reverts changes nothing and is reported by
//! `BatchCallFailed(index, reason)`; the others go on.
//!
//! A batch is signed and stored before it is broadcast: in one database transaction the batch, its
//! signed transaction (an attempt) and each member's place in it (its index) are written, and only the
//! members still pending (a call) or pending outside any batch (an order) can join; if one moved, nothing
//! is stored and nothing broadcast. After a crash the stored bytes are broadcast again, never a second
//! batch. So each call and order belongs to at most one transaction in flight, and all attempts of that
//! transaction share one nonce: at most one of them is ever mined.
//!
//! A member is done once an attempt of its batch has a receipt at least `confirmations` blocks deep: the
//! receipt's `BatchCallFailed` events say which members failed, with the escrow's error decoded
//! (`Escrow_InsufficientBalance`, `Escrow_WrongStatus`, ...); a failed call is marked failed with it (the
//! reconciler queues it again while its step is still due, at most [`MAX_RETRIES`] times, else it stays
//! failed: cancelled), a failed order too (for good: the customer signs a new one). A succeeded order is
//! opened by the watcher, which links it to its agreement from the `OrderFilled` event. Until then every
//! pass looks again, and a receipt that disappears (a reorganisation) makes the batch sent again: its
//! bytes are broadcast anew (the watcher's rollback reopens its calls and sets its orders pending again).
//! Each pass over a batch in flight without a receipt:
//!
//! - its nonce was passed on-chain by another transaction (it was dropped, or replaced by something
//!   else): no attempt can be mined any more, so each member still due leaves the batch (pending again,
//!   for the next batch, with a new nonce), each other one is finished;
//! - the node holds it and it is not stuck yet: nothing but a look for its receipt (a member overtaken
//!   meanwhile fails harmlessly in it, and is recorded failed with the escrow's reason);
//! - before it is sent again (below), a member no longer due (the customer overtook it, a reorganisation
//!   removed its agreement, an order's nonce was used or its deadline passed) is finished; if no member
//!   is left due, the batch is never broadcast again (if it is mined after all, its calls fail
//!   harmlessly in it);
//! - the node does not have it (a restart, a reorganisation that dropped it): the same bytes again;
//! - the node has had it for `--fee-bump-after-secs` without mining it: the same nonce and calls are
//!   signed again with fees raised by 1/8 (nodes replace for 10% more) and at least the current estimate,
//!   stored as a further attempt, then broadcast. Whichever attempt is mined is the batch's transaction.
//!
//! Calls sent alone, before batches, are followed the same way (their attempts are theirs alone).
//!
//! At most `--operator-in-flight` transactions (4) wait for their blocks at once: a batch is prepared
//! while the ones before it wait, and the node mines one sender's next nonces together in a block (or in
//! turn). With that many in flight no new batch is sent, and what becomes due gathers for the next one.
//! A batch in flight never holds a step that depends on another in flight: the reconciler queues an
//! agreement's next call only once the chain shows its previous one.
//!
//! Nonces: the next nonce is the larger of the node's pending count for the operator and one past the
//! highest nonce of the transactions in flight. The node's count alone forgets transactions it dropped
//! or has not seen since a restart; the store's alone forgets transactions of the operator key sent from
//! elsewhere. One settler sends for an operator key, so the nonces it picks do not collide.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use alloy::primitives::B256;
use futures::{StreamExt, TryStreamExt, stream};
use tokio::sync::Mutex;
use tracing::{Instrument, info, info_span, warn};

use crate::{
    Error, Result,
    chain::{Chain, WouldNotRun, batch, calldata},
    domain::{
        agreement::ChainStatus,
        operator::{MAX_RETRIES, SignedTx},
    },
    store::{
        Store, now_wall,
        orders::OrderRecord,
        outbox::{Attempt, BatchMember, OutboxItem, OutboxState},
    },
};

#[derive(Debug, Clone)]
pub struct SettlerConfig {
    /// Blocks a receipt must have on top of it (0: its own block is enough) for the call to be done.
    pub confirmations: u64,
    /// How long a transaction the node holds may stay unmined before its fees are bumped.
    pub fee_bump_after: Duration,
    /// The most calls in one batch transaction.
    pub batch_size: usize,
    /// The most transactions waiting for their blocks at once.
    pub in_flight: usize,
}

pub struct Settler {
    pub chain: Chain,
    pub store: Store,
    pub metrics: crate::metrics::Metrics,
    pub config: SettlerConfig,
    /// When a transaction the node had lost was last broadcast again: its wait for a block starts then.
    rebroadcast_at: Mutex<HashMap<String, Instant>>,
}

/// A transaction in flight: a batch, or a call sent alone before batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carrier {
    Lone(i64),
    Batch(i64),
}

/// A call or an order a transaction carries.
#[derive(Debug, Clone)]
enum Member {
    Call(OutboxItem),
    Order(OrderRecord),
}

impl Member {
    /// Its position in its batch (0 for a call sent alone).
    fn index(&self) -> usize {
        match self {
            Self::Call(item) => item.batch_index.unwrap_or(0) as usize,
            Self::Order(order) => order.batch.map_or(0, |(_, index)| index as usize),
        }
    }

    fn batch_member(&self) -> BatchMember {
        match self {
            Self::Call(item) => BatchMember::Call(item.id),
            Self::Order(order) => BatchMember::Order(order.id),
        }
    }
}

/// Members whose on-chain state is read at once (one node request each) when deciding what is due.
const DUE_READS_IN_FLIGHT: usize = 16;

impl Settler {
    pub fn new(chain: Chain, store: Store, config: SettlerConfig, metrics: crate::metrics::Metrics) -> Self {
        Self { chain, store, metrics, config, rebroadcast_at: Mutex::default() }
    }

    /// Follows every transaction in flight, oldest first, then, unless `in_flight` of them still wait
    /// for their blocks, sends one batch of everything due.
    pub async fn pass(&self) -> Result<()> {
        let mut unmined = 0;
        let unfinished = self.store.unfinished_outbox().await?;
        for item in unfinished.iter().filter(|item| item.state == OutboxState::Sent) {
            if item.batch.is_none() {
                let span =
                    info_span!("outbox", agreement = item.agreement_id, session = item.session, call = item.call_name);
                let id = item.id;
                unmined += usize::from(
                    self.follow(Carrier::Lone(id), vec![Member::Call(item.clone())]).instrument(span).await?,
                );
            }
        }
        for batch in self.store.batches_in_flight().await? {
            let members = self.members(batch).await?;
            unmined +=
                usize::from(self.follow(Carrier::Batch(batch), members).instrument(info_span!("batch", batch)).await?);
        }
        if unmined >= self.config.in_flight {
            // What is due meanwhile gathers for the next batch.
            return Ok(());
        }
        let pending = unfinished.into_iter().filter(|item| item.state == OutboxState::Pending);
        self.send_batch(pending).instrument(info_span!("new batch")).await
    }

    async fn members(&self, batch: i64) -> Result<Vec<Member>> {
        let calls = self.store.calls_in_batch(batch).await?.into_iter().map(Member::Call);
        let orders = self.store.orders_in_batch(batch).await?.into_iter().map(Member::Order);
        Ok(calls.chain(orders).collect())
    }

    /// Signs, stores and broadcasts one batch of the `pending` calls and the orders due now, oldest first
    /// (an order before a call queued in the same second: the customer waits for both).
    async fn send_batch(&self, pending: impl Iterator<Item = OutboxItem>) -> Result<()> {
        let mut queue: Vec<(i64, u8, Member)> =
            pending.map(|item| (item.created_wall_at, 1, Member::Call(item))).collect();
        queue.extend(self.store.orders_to_send().await?.into_iter().map(|o| (o.received_wall_at, 0, Member::Order(o))));
        if queue.is_empty() {
            return Ok(());
        }
        queue.sort_by_key(|(at, kind, _)| (*at, *kind));
        let (_, chain_now) = self.chain.head().await?;
        // Read a few ahead at once; those read past a full batch are read again next time.
        let reads: Vec<_> = queue.into_iter().map(|(_, _, member)| self.checked(member, chain_now)).collect();
        let mut checked = stream::iter(reads).buffered(DUE_READS_IN_FLIGHT);
        let (mut members, mut calls, mut names, mut due) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        while let Some(checked) = checked.next().await {
            if members.len() >= self.config.batch_size {
                break;
            }
            let (member, not_due) = checked?;
            if let Some(why) = not_due {
                self.finish_not_due(&member, &why).await?;
                continue;
            }
            match &member {
                Member::Call(item) => {
                    calls.push(calldata(&item.call));
                    names.push(item.call_name);
                    members.push(BatchMember::Call(item.id));
                }
                Member::Order(order) => {
                    calls.push(batch::open_order_calldata(&order.signed));
                    names.push("openOrder");
                    members.push(BatchMember::Order(order.id));
                }
            }
            due.push(member);
        }
        if members.is_empty() {
            return Ok(());
        }
        let (in_flight, pending, fees) = tokio::try_join!(
            self.store.next_nonce_in_flight(),
            self.chain.operator_nonce(true),
            self.chain.current_fees()
        )?;
        let nonce = pending.max(in_flight.unwrap_or_default());
        // A batch that would not run as a whole is halved until one runs; what it leaves out waits for
        // the next batch. So a batch never needs more gas than a block holds, and a call that reverts
        // without naming an error (one that runs out of gas whatever it is given, e.g. a contract
        // wallet whose signature check burns it all) ends up alone, and is failed.
        let signed = loop {
            match self.chain.sign_input(batch::batch_calldata(calls.clone()), nonce, fees).await? {
                Ok(signed) => break signed,
                Err(WouldNotRun(reason)) if calls.len() > 1 => {
                    let half = calls.len() / 2;
                    warn!(%reason, calls = calls.len(), "the batch would not run as a whole; trying its first {half} calls");
                    calls.truncate(half);
                    names.truncate(half);
                    members.truncate(half);
                    due.truncate(half);
                }
                Err(WouldNotRun(reason)) => {
                    warn!(%reason, "this call would not run even alone; failing it");
                    self.metrics.tx_failed();
                    return self.fail(&due[0], &format!("would not run even alone: {reason}")).await;
                }
            }
        };
        // Stored before broadcast: whatever happens next, this transaction is known to carry these calls.
        let Some(batch) = self.store.record_batch(&members, &signed).await? else { return Ok(()) };
        info!(batch, calls = members.len(), tx = %signed.hash, nonce = signed.nonce, max_fee = signed.fees.max_fee, "sending a batch");
        if let Err(err) = self.chain.broadcast(&signed.raw).await {
            warn!(%err, "broadcast failed; the next pass retries");
            return Ok(());
        }
        self.metrics.tx_sent();
        for name in names {
            crate::fault::crash_point(&format!("sent-{name}"));
        }
        let members = self.members(batch).await?;
        self.look_for_receipt(Carrier::Batch(batch), &members).await.map(drop)
    }

    /// Follows a transaction in flight: its members done once mined deep enough; otherwise rebroadcast,
    /// bumped, handed back to be sent anew, or given up, as the module documentation says. Returns whether
    /// it still waits to be mined.
    async fn follow(&self, carrier: Carrier, members: Vec<Member>) -> Result<bool> {
        let attempts = self.attempts(carrier).await?;
        let Some(newest) = attempts.last() else {
            return Err(Error::Config(format!("{carrier:?} is in flight without a stored transaction")));
        };
        if self.check_mined(carrier, &members, &attempts).await? {
            return Ok(false);
        }
        if self.chain.operator_nonce(false).await? > newest.nonce {
            // Taken by another transaction, unless one of ours was mined just now.
            if self.check_mined(carrier, &members, &attempts).await? {
                return Ok(false);
            }
            warn!(nonce = newest.nonce, "nonce taken by another transaction; sending what is still due anew");
            let outcome = format!("nonce {} taken by another transaction", newest.nonce);
            for (member, why) in members.iter().zip(self.not_due(&members).await?) {
                match (member, why) {
                    (_, Some(why)) => self.finish_not_due(member, &why).await?,
                    (Member::Call(item), None) => self.store.outbox_resign(item.id, &outcome).await?,
                    (Member::Order(order), None) => self.store.order_unbatched(order.id).await?,
                }
            }
            return Ok(false);
        }
        let hash: B256 = newest.tx_hash.parse().map_err(Error::chain)?;
        let known = self.chain.transaction_known(hash).await?;
        let waiting_since = match self.rebroadcast_at.lock().await.get(&newest.tx_hash) {
            Some(at) => at.elapsed(),
            None => Duration::from_secs(now_wall().saturating_sub(newest.sent_wall_at).max(0) as u64),
        };
        if known && waiting_since < self.config.fee_bump_after {
            // The node holds it and it is not stuck: only its receipt is awaited. A member overtaken
            // meanwhile fails harmlessly in it.
            return Ok(!self.look_for_receipt(carrier, &members).await?);
        }
        // About to be sent again (lost, or stuck): only what is still due.
        let due = self.not_due(&members).await?;
        if due.iter().any(Option::is_some) {
            // Overtaken while in flight, unless our transaction was mined just now.
            if self.check_mined(carrier, &members, &attempts).await? {
                return Ok(false);
            }
            for (member, why) in members.iter().zip(&due) {
                if let Some(why) = why {
                    self.finish_not_due(member, why).await?;
                }
            }
            if due.iter().all(Option::is_some) {
                return Ok(false);
            }
        }
        if !known {
            // Lost by the node (a restart, a reorganisation): the same bytes again, never a new transaction.
            match self.chain.broadcast(&newest.raw_tx).await {
                Ok(()) => {
                    info!(tx = %newest.tx_hash, nonce = newest.nonce, "broadcast again");
                    self.rebroadcast_at.lock().await.insert(newest.tx_hash.clone(), Instant::now());
                }
                Err(err) => {
                    warn!(%err, tx = %newest.tx_hash, "the node refuses the stored transaction; bumping its fees");
                    self.bump(carrier, newest).await?;
                }
            }
        } else {
            self.bump(carrier, newest).await?;
        }
        Ok(!self.look_for_receipt(carrier, &members).await?)
    }

    async fn attempts(&self, carrier: Carrier) -> Result<Vec<Attempt>> {
        match carrier {
            Carrier::Lone(id) => self.store.attempts(id).await,
            Carrier::Batch(batch) => self.store.batch_attempts(batch).await,
        }
    }

    /// Signs `newest` again with the same nonce and higher fees, stores it, broadcasts it.
    async fn bump(&self, carrier: Carrier, newest: &Attempt) -> Result<()> {
        let fees = Chain::fees_of(&newest.raw_tx)?.bumped(self.chain.current_fees().await?);
        let signed: SignedTx = self.chain.resign(&newest.raw_tx, fees).await?;
        match carrier {
            Carrier::Lone(id) => {
                if !self.store.record_attempt(id, OutboxState::Sent, &signed).await? {
                    return Ok(());
                }
            }
            Carrier::Batch(batch) => self.store.record_batch_attempt(batch, &signed).await?,
        }
        info!(
            tx = %signed.hash,
            replaces = %newest.tx_hash,
            nonce = signed.nonce,
            max_fee = fees.max_fee,
            priority_fee = fees.priority_fee,
            "stuck: fees bumped"
        );
        if let Err(err) = self.chain.broadcast(&signed.raw).await {
            warn!(%err, "broadcast of the replacement failed; the next pass retries");
        }
        Ok(())
    }

    /// For each member, None while it is still the next step on-chain, else why not; read a few at once.
    async fn not_due(&self, members: &[Member]) -> Result<Vec<Option<String>>> {
        let (_, chain_now) = self.chain.head().await?;
        let reads: Vec<_> = members.iter().map(|member| self.due_now(member, chain_now)).collect();
        stream::iter(reads).buffered(DUE_READS_IN_FLIGHT).try_collect().await
    }

    /// The member, with None while it is still the next step on-chain at `chain_now`, else why not.
    async fn checked(&self, member: Member, chain_now: u64) -> Result<(Member, Option<String>)> {
        let why = self.due_now(&member, chain_now).await?;
        Ok((member, why))
    }

    /// None while the member is still the next step on-chain at `chain_now` (the head's time); else why not.
    async fn due_now(&self, member: &Member, chain_now: u64) -> Result<Option<String>> {
        match member {
            Member::Call(item) => {
                let (status, started_at) = self.chain.status_of(item.agreement_id).await?;
                if item.call.is_due(status, started_at) {
                    return Ok(None);
                }
                Ok(Some(match status {
                    None => "cancelled: the agreement is not on the chain (a reorganisation removed it)".to_owned(),
                    Some(status) => not_due_outcome(status, started_at),
                }))
            }
            Member::Order(order) => {
                let (customer, nonce) = (order.signed.customer, order.signed.order.nonce);
                if self.chain.order_nonce_used(customer, nonce).await? {
                    return Ok(Some(
                        "Escrow_OrderNonceUsed: the nonce was used on-chain (cancelled by the customer)".to_owned(),
                    ));
                }
                let deadline = order.signed.order.deadline;
                if chain_now > deadline {
                    return Ok(Some(format!(
                        "Escrow_OrderExpired: its deadline {deadline} passed before it was opened"
                    )));
                }
                Ok(None)
            }
        }
    }

    /// Records a member that is not (or no longer) to be sent as finished: a call done (or failed when
    /// its agreement is gone), an order failed with why.
    async fn finish_not_due(&self, member: &Member, why: &str) -> Result<()> {
        info!(why, "already done on-chain, overtaken or gone; not sending it");
        match member {
            Member::Call(item) if !why.starts_with("cancelled") => {
                self.store.outbox_finished(item.id, OutboxState::Done, why).await
            }
            _ => self.fail(member, why).await,
        }
    }

    /// Records a member that is not sent as failed, with why: a call (the reconciler may queue it again)
    /// or an order (for good).
    async fn fail(&self, member: &Member, why: &str) -> Result<()> {
        match member {
            Member::Call(item) => self.store.outbox_finished(item.id, OutboxState::Failed, why).await,
            Member::Order(order) => self.store.order_failed(order.id, why).await,
        }
    }

    /// Looks for a receipt of any attempt; records what it says of each member (done, or failed with its
    /// reason, once deep enough). Returns whether one was found.
    async fn check_mined(&self, carrier: Carrier, members: &[Member], attempts: &[Attempt]) -> Result<bool> {
        for attempt in attempts.iter().rev() {
            let hash: B256 = attempt.tx_hash.parse().map_err(Error::chain)?;
            let Some(receipt) = self.chain.receipt(hash).await? else { continue };
            let block = receipt.block_number.unwrap_or_default();
            let (head, _) = self.chain.head().await?;
            let confirmed = head.saturating_sub(block) >= self.config.confirmations;
            let outcome = if receipt.status() { "mined" } else { "reverted" };
            let finished = match carrier {
                // A call sent alone that reverted: the chain moved on by other means (e.g. the customer
                // cancelled); it counts as done, as it always did.
                Carrier::Lone(id) => {
                    self.store.outbox_mined(id, attempt, block, confirmed, outcome).await?;
                    usize::from(confirmed)
                }
                Carrier::Batch(batch) => {
                    let outcomes = batch::outcomes(&receipt, self.chain.escrow, self.store.batch_size(batch).await?);
                    let failed: Vec<(BatchMember, String)> = members
                        .iter()
                        .filter_map(|member| match outcomes.get(member.index()) {
                            Some(Err(reason)) => Some((member, reason.clone())),
                            _ => None,
                        })
                        .inspect(|(member, reason)| {
                            if confirmed {
                                failed_in_batch(member, reason)
                            }
                        })
                        .map(|(member, reason)| (member.batch_member(), reason))
                        .collect();
                    self.store.batch_mined(batch, attempt, block, confirmed, outcome, &failed).await?
                }
            };
            if confirmed && finished > 0 {
                info!(tx = %hash, attempt = attempt.attempt, block, finished, gas = receipt.gas_used, "receipt");
                self.metrics.tx_mined(receipt.status());
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// Looks once for a receipt of the transaction's attempts, without waiting: a node that mines at once
    /// (anvil) has it now, and on any other chain the next pass looks again. Waiting here would hold
    /// every call queued behind this one for as long as a block takes.
    async fn look_for_receipt(&self, carrier: Carrier, members: &[Member]) -> Result<bool> {
        let attempts = self.attempts(carrier).await?;
        self.check_mined(carrier, members, &attempts).await
    }
}

/// Logs a member that failed in its batch, confirmed: a call is queued again while its step is due (at most
/// [`MAX_RETRIES`] times), an order is failed for good (the customer signs a new one).
fn failed_in_batch(member: &Member, reason: &str) {
    match member {
        Member::Call(item) => {
            let retry = if item.retries < MAX_RETRIES { "queued again while due" } else { "retries used up" };
            warn!(call = item.call_name, agreement = item.agreement_id, %reason, retry, "a call failed in its batch");
        }
        Member::Order(order) => {
            warn!(customer = %order.signed.customer, nonce = %order.signed.order.nonce, %reason, "an order failed in its batch");
        }
    }
}

/// How a call that is no longer due is recorded done.
fn not_due_outcome(status: ChainStatus, started_at: u64) -> String {
    format!("on-chain status {status:?}, startedAt {started_at}")
}
