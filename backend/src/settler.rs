//! The settler sends the outbox's operator calls (activate, decline, end, settle, stopAndSettle), each
//! exactly once on the canonical chain: a transaction is signed and stored (as an attempt of its call)
//! before it is broadcast; after a crash the stored bytes are broadcast again, never a second call. A
//! call the chain shows as already done (or overtaken) counts as done without sending anything.
//!
//! A call is done once one of its attempts has a receipt at least `confirmations` blocks deep; until
//! then every pass looks again, and a receipt that disappears (a reorganisation) makes the call sent
//! again: its bytes are broadcast anew. Each pass over a sent call without a receipt:
//!
//! - its nonce was passed on-chain by another transaction (it was dropped, or replaced by something
//!   else): if the call is still due it is signed anew with a new nonce, else it is done;
//! - it is no longer due (the customer overtook it, or a reorganisation removed its agreement): it is
//!   never broadcast again (done, or failed "cancelled" when the agreement is gone from the chain);
//! - the node does not have it (a restart, a reorganisation that dropped it): the same bytes again;
//! - the node has had it for `--fee-bump-after-secs` without mining it: the same nonce is signed again
//!   with fees raised by 1/8 (nodes replace for 10% more) and at least the current estimate, stored as
//!   a further attempt, then broadcast. Whichever attempt is mined is the call's transaction.
//!
//! Nonces: the next nonce is the larger of the node's pending count for the operator and one past the
//! highest nonce of the calls in flight (sent, not yet mined or known dropped). The node's count alone
//! forgets transactions it dropped or has not seen since a restart; the store's alone forgets
//! transactions of the operator key sent from elsewhere. One settler sends for an operator key, oldest
//! call first, so the nonces it picks do not collide.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use alloy::primitives::B256;
use tokio::sync::Mutex;
use tracing::{Instrument, info, info_span, warn};

use crate::{
    Error, Result,
    chain::Chain,
    domain::{agreement::ChainStatus, operator::SignedTx},
    store::{
        Store, now_wall,
        outbox::{Attempt, OutboxItem, OutboxState},
    },
};

#[derive(Debug, Clone)]
pub struct SettlerConfig {
    /// Blocks a receipt must have on top of it (0: its own block is enough) for the call to be done.
    pub confirmations: u64,
    /// How long a transaction the node holds may stay unmined before its fees are bumped.
    pub fee_bump_after: Duration,
}

pub struct Settler {
    pub chain: Chain,
    pub store: Store,
    pub metrics: crate::metrics::Metrics,
    pub config: SettlerConfig,
    /// When a transaction the node had lost was last broadcast again: its wait for a block starts then.
    rebroadcast_at: Mutex<HashMap<String, Instant>>,
}

impl Settler {
    pub fn new(chain: Chain, store: Store, config: SettlerConfig, metrics: crate::metrics::Metrics) -> Self {
        Self { chain, store, metrics, config, rebroadcast_at: Mutex::default() }
    }

    /// Works through every unfinished call, oldest first (one sender: nonces stay in order).
    pub async fn pass(&self) -> Result<()> {
        for item in self.store.unfinished_outbox().await? {
            let span =
                info_span!("outbox", agreement = item.agreement_id, session = item.session, call = item.call_name);
            self.advance(&item).instrument(span).await?;
        }
        Ok(())
    }

    async fn advance(&self, item: &OutboxItem) -> Result<()> {
        match item.state {
            OutboxState::Pending => self.send(item).await,
            OutboxState::Sent => self.follow(item).await,
            OutboxState::Done | OutboxState::Failed => Ok(()),
        }
    }

    /// Signs, stores and broadcasts a call's first transaction, unless the chain says it is not due.
    async fn send(&self, item: &OutboxItem) -> Result<()> {
        if !self.still_due(item).await? {
            return Ok(());
        }
        let in_flight = self.store.next_nonce_in_flight().await?.unwrap_or_default();
        let nonce = self.chain.operator_nonce(true).await?.max(in_flight);
        let fees = self.chain.current_fees().await?;
        let signed = match self.chain.sign(&item.call, nonce, fees).await {
            Ok(signed) => signed,
            Err(Error::Chain(reason)) if reason.to_string().contains("revert") => {
                warn!(%reason, "the call would revert; not sending it");
                self.metrics.tx_failed();
                return self.store.outbox_finished(item.id, OutboxState::Failed, &reason.to_string()).await;
            }
            Err(err) => return Err(err),
        };
        // Stored before broadcast: whatever happens next, this transaction is known to be the call's.
        if !self.store.record_attempt(item.id, OutboxState::Pending, &signed).await? {
            return Ok(());
        }
        info!(tx = %signed.hash, nonce = signed.nonce, max_fee = signed.fees.max_fee, "sending");
        if let Err(err) = self.chain.broadcast(&signed.raw).await {
            warn!(%err, "broadcast failed; the next pass retries");
            return Ok(());
        }
        self.metrics.tx_sent();
        crate::fault::crash_point(&format!("sent-{}", item.call_name));
        self.look_for_receipt(item.id).await
    }

    /// Follows a sent call: done once mined deep enough; otherwise rebroadcast, bumped, signed anew
    /// or given up, as the module documentation says.
    async fn follow(&self, item: &OutboxItem) -> Result<()> {
        let attempts = self.store.attempts(item.id).await?;
        let Some(newest) = attempts.last() else {
            return Err(Error::Config(format!("outbox row {} is sent without a stored transaction", item.id)));
        };
        if self.check_mined(item.id, &attempts).await? {
            return Ok(());
        }
        if self.chain.operator_nonce(false).await? > newest.nonce {
            // Taken by another transaction, unless one of ours was mined just now.
            if self.check_mined(item.id, &attempts).await? {
                return Ok(());
            }
            if self.still_due(item).await? {
                warn!(nonce = newest.nonce, "nonce taken by another transaction; signing the call anew");
                let outcome = format!("nonce {} taken by another transaction", newest.nonce);
                self.store.outbox_resign(item.id, &outcome).await?;
            }
            return Ok(());
        }
        let (status, started_at) = self.chain.status_of(item.agreement_id).await?;
        if !item.call.is_due(status, started_at) {
            if !self.check_mined(item.id, &attempts).await? {
                info!(?status, started_at, "no longer due and not mined; not sending it again");
                self.finish_not_due(item, status, started_at).await?;
            }
            return Ok(());
        }
        let hash: B256 = newest.tx_hash.parse().map_err(Error::chain)?;
        let known = self.chain.transaction_known(hash).await?;
        let waiting_since = match self.rebroadcast_at.lock().await.get(&newest.tx_hash) {
            Some(at) => at.elapsed(),
            None => Duration::from_secs(now_wall().saturating_sub(newest.sent_wall_at).max(0) as u64),
        };
        if !known {
            // Lost by the node (a restart, a reorganisation): the same bytes again, never a new call.
            match self.chain.broadcast(&newest.raw_tx).await {
                Ok(()) => {
                    info!(tx = %newest.tx_hash, nonce = newest.nonce, "broadcast again");
                    self.rebroadcast_at.lock().await.insert(newest.tx_hash.clone(), Instant::now());
                }
                Err(err) => {
                    warn!(%err, tx = %newest.tx_hash, "the node refuses the stored transaction; bumping its fees");
                    self.bump(item, newest).await?;
                }
            }
        } else if waiting_since >= self.config.fee_bump_after {
            self.bump(item, newest).await?;
        }
        self.look_for_receipt(item.id).await
    }

    /// Signs `newest` again with the same nonce and higher fees, stores it, broadcasts it.
    async fn bump(&self, item: &OutboxItem, newest: &Attempt) -> Result<()> {
        let fees = Chain::fees_of(&newest.raw_tx)?.bumped(self.chain.current_fees().await?);
        let signed: SignedTx = self.chain.resign(&newest.raw_tx, fees).await?;
        if !self.store.record_attempt(item.id, OutboxState::Sent, &signed).await? {
            return Ok(());
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

    /// Whether the call is still the next step on-chain; if not, records it as finished.
    async fn still_due(&self, item: &OutboxItem) -> Result<bool> {
        let (status, started_at) = self.chain.status_of(item.agreement_id).await?;
        if item.call.is_due(status, started_at) {
            return Ok(true);
        }
        info!(?status, started_at, "already done on-chain (or gone); nothing to send");
        self.finish_not_due(item, status, started_at).await?;
        Ok(false)
    }

    async fn finish_not_due(&self, item: &OutboxItem, status: Option<ChainStatus>, started_at: u64) -> Result<()> {
        let Some(status) = status else {
            let outcome = "cancelled: the agreement is not on the chain (a reorganisation removed it)";
            return self.store.outbox_finished(item.id, OutboxState::Failed, outcome).await;
        };
        let outcome = format!("on-chain status {status:?}, startedAt {started_at}");
        self.store.outbox_finished(item.id, OutboxState::Done, &outcome).await
    }

    /// Looks for a receipt of any attempt; records the one found (done if deep enough). Returns whether
    /// one was found.
    async fn check_mined(&self, id: i64, attempts: &[Attempt]) -> Result<bool> {
        for attempt in attempts.iter().rev() {
            let hash: B256 = attempt.tx_hash.parse().map_err(Error::chain)?;
            let Some(receipt) = self.chain.receipt(hash).await? else { continue };
            let block = receipt.block_number.unwrap_or_default();
            let (head, _) = self.chain.head().await?;
            let confirmed = head.saturating_sub(block) >= self.config.confirmations;
            // A reverted call means the chain moved on by other means (e.g. the customer cancelled).
            let outcome = if receipt.status() { "mined" } else { "reverted" };
            if confirmed {
                info!(tx = %hash, attempt = attempt.attempt, block, outcome, gas = receipt.gas_used, "receipt");
                self.metrics.tx_mined(receipt.status());
            }
            self.store.outbox_mined(id, attempt, block, confirmed, outcome).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Looks once for a receipt of the call's attempts, without waiting: a node that mines at once
    /// (anvil) has it now, and on any other chain the next pass looks again. Waiting here would hold
    /// every call queued behind this one for as long as a block takes.
    async fn look_for_receipt(&self, id: i64) -> Result<()> {
        let attempts = self.store.attempts(id).await?;
        self.check_mined(id, &attempts).await.map(drop)
    }
}
