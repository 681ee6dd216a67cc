//! The settler sends the outbox's operator calls (activate, decline, end, settle, stopAndSettle), each
//! exactly once: a call is signed and stored with its nonce and hash before it is broadcast; after a
//! crash the same signed bytes are broadcast again, never a second transaction. A call the chain shows
//! as already done (or overtaken) counts as done without sending anything.
//!
//! Not yet here (the backend issue): fee bumping of stuck transactions, waiting for a confirmation
//! depth, and resubmission after a reorg.

use std::time::Duration;

use alloy::primitives::B256;
use tracing::{Instrument, info, info_span, warn};

use crate::{
    Error, Result,
    chain::Chain,
    store::{OutboxItem, OutboxState, Store},
};

pub struct Settler {
    pub chain: Chain,
    pub store: Store,
    pub metrics: crate::metrics::Metrics,
}

impl Settler {
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
            OutboxState::Pending => {
                let (status, started_at) = self.chain.status_of(item.agreement_id).await?;
                if !item.call.is_due(status, started_at) {
                    info!(?status, started_at, "already done on-chain; nothing to send");
                    let outcome = format!("on-chain status {status:?}, startedAt {started_at}");
                    return self.store.outbox_finished(item.id, OutboxState::Done, &outcome).await;
                }
                let signed = match self.chain.sign(&item.call).await {
                    Ok(signed) => signed,
                    Err(Error::Chain(reason)) if reason.contains("revert") => {
                        warn!(%reason, "the call would revert; not sending it");
                        self.metrics.tx_failed();
                        return self.store.outbox_finished(item.id, OutboxState::Failed, &reason).await;
                    }
                    Err(err) => return Err(err),
                };
                // Stored before broadcast: whatever happens next, this is the one transaction for the call.
                if !self.store.outbox_signed(item.id, &signed).await? {
                    warn!("signed meanwhile by a replica that led before; sending that one instead");
                    return Ok(());
                }
                info!(tx = %signed.hash, nonce = signed.nonce, "sending");
                self.chain.broadcast(&signed.raw).await?;
                self.metrics.tx_sent();
                crate::fault::crash_point(&format!("sent-{}", item.call_name));
                self.await_receipt(item.id, signed.hash, Duration::from_secs(2)).await
            }
            OutboxState::Sent => {
                let hash: B256 = item
                    .tx_hash
                    .as_deref()
                    .and_then(|h| h.parse().ok())
                    .ok_or_else(|| Error::Chain(format!("outbox row {} is sent without a hash", item.id)))?;
                // Sent before a crash or a lost broadcast: the same bytes again, never a new transaction.
                if self.chain.receipt(hash).await?.is_none()
                    && let Some(raw) = &item.raw_tx
                {
                    self.chain.broadcast(raw).await?;
                }
                self.await_receipt(item.id, hash, Duration::from_secs(1)).await
            }
            OutboxState::Done | OutboxState::Failed => Ok(()),
        }
    }

    /// Polls for the receipt up to `patience`; records the outcome when it arrives.
    async fn await_receipt(&self, id: i64, hash: B256, patience: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(receipt) = self.chain.receipt(hash).await? {
                let outcome = if receipt.status() { "mined" } else { "reverted" };
                self.metrics.tx_mined(receipt.status());
                info!(tx = %hash, outcome, gas = receipt.gas_used, "receipt");
                // A reverted call means the chain moved on by other means (e.g. the customer cancelled).
                return self.store.outbox_finished(id, OutboxState::Done, outcome).await;
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
