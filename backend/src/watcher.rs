//! The chain watcher: reads the escrow's logs from the stored cursor up to head minus the
//! confirmation depth, in bounded batches, and records their effects together with the new cursor.
//!
//! Not yet here (the backend issue): fork detection by parent hash with rollback to the fork point.
//! With `confirmations` > 0 a reorg shallower than that depth never reaches the store.

use std::sync::Arc;

use alloy::rpc::types::Log;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::{
    Error, Result,
    agreement::Model,
    chain::{Chain, EscrowEvent},
    store::Store,
};

/// What the backend keeps of one contract event. Facts the event does not carry (an agreement's model,
/// price and constraints; a terms version's duration and token) are read from the contract's state at the
/// event's own block, so they are exactly what the event refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEvent {
    TermsPublished {
        terms: u64,
        offer: u64,
        model: Model,
        token_id: u8,
        price: String,
        max_duration: u64,
        minimum_charge: String,
        regions: u32,
        gdpr: bool,
    },
    TermsClosed {
        terms: u64,
    },
    Signed {
        agreement: u64,
        terms: u64,
        customer: String,
        deposit: String,
        model: Model,
        token_id: u8,
        price: String,
        allowed_regions: u32,
        gdpr: bool,
        duration: u64,
        signed_at: u64,
        tx_hash: String,
    },
    WindowReserved {
        agreement: u64,
        from: u64,
        to: u64,
    },
    StartRequested {
        agreement: u64,
        requested_at: u64,
    },
    Activated {
        agreement: u64,
        started_at: u64,
        ends_at: u64,
        region: u8,
        tx_hash: String,
    },
    Ended {
        agreement: u64,
        ended_at: u64,
        tx_hash: String,
    },
    Settled {
        agreement: u64,
        availability_bps: u16,
        charge: String,
        refund: String,
        refund_deferred: bool,
        tx_hash: String,
    },
    StartCancelled {
        agreement: u64,
        reason: &'static str,
        refund: String,
        refund_deferred: bool,
        tx_hash: String,
    },
    Closed {
        agreement: u64,
        refund: String,
        refund_deferred: bool,
        tx_hash: String,
    },
}

#[derive(Debug, Clone)]
pub struct WatcherConfig {
    /// The block to start from when the store has no cursor (the contract's deployment block).
    pub start_block: u64,
    /// Blocks below head that are read; 0 reads up to head.
    pub confirmations: u64,
    /// The most blocks read in one `eth_getLogs`.
    pub batch_blocks: u64,
}

pub struct Watcher {
    pub chain: Chain,
    pub store: Store,
    pub config: WatcherConfig,
    /// Woken whenever new events were recorded.
    pub notify: Arc<Notify>,
    pub metrics: crate::metrics::Metrics,
}

impl Watcher {
    /// Reads what is new and records it. Returns the number of events recorded.
    pub async fn poll(&self) -> Result<usize> {
        let (head, head_timestamp) = self.chain.head().await?;
        let Some(safe_head) = head.checked_sub(self.config.confirmations) else { return Ok(0) };
        let mut next = self.store.cursor().await?.unwrap_or(self.config.start_block);
        self.metrics.watcher_lag(head, (safe_head + 1).saturating_sub(next));
        let mut recorded = 0;
        while next <= safe_head {
            let to = safe_head.min(next + self.config.batch_blocks - 1);
            let logs = self.chain.logs(next, to).await?;
            let mut events = Vec::with_capacity(logs.len());
            for log in &logs {
                if let Some(event) = self.to_event(log).await? {
                    events.push(event);
                }
            }
            self.store.apply_events(&events, to + 1, head_timestamp).await?;
            self.metrics.events_processed(&events);
            self.metrics.watcher_lag(head, safe_head - to);
            if events.iter().any(|e| matches!(e, ChainEvent::Signed { .. })) {
                crate::fault::crash_point("stored");
            }
            if !events.is_empty() {
                info!(from = next, to, events = events.len(), "recorded chain events");
                // A stored permit: a reconciler busy with a pass runs again right after it.
                self.notify.notify_one();
            }
            recorded += events.len();
            next = to + 1;
        }
        Ok(recorded)
    }

    async fn block_time(&self, log: &Log) -> Result<u64> {
        match log.block_timestamp {
            Some(ts) => Ok(ts),
            None => self.chain.block_timestamp(log.block_number.unwrap_or_default()).await,
        }
    }

    async fn to_event(&self, log: &Log) -> Result<Option<ChainEvent>> {
        let tx_hash = log.transaction_hash.map(|h| h.to_string()).unwrap_or_default();
        let block = log.block_number.unwrap_or_default();
        let decoded = match Chain::decode(log) {
            Ok(event) => event,
            Err(err) => {
                warn!(%err, "skipping a log the escrow ABI does not describe");
                return Ok(None);
            }
        };
        let id = |v: alloy::primitives::U256| v.saturating_to::<u64>();
        let model = |m: u8| Model::from_index(m).ok_or_else(|| Error::Chain(format!("unknown pricing model {m}")));
        Ok(Some(match decoded {
            EscrowEvent::TermsPublished(e) => {
                let terms = self.chain.terms_at(e.termsId, block).await?;
                ChainEvent::TermsPublished {
                    terms: e.termsId.into(),
                    offer: e.offerId.into(),
                    model: model(e.model)?,
                    token_id: terms.tokenId,
                    price: e.price.to_string(),
                    max_duration: terms.maxDuration.to::<u64>(),
                    minimum_charge: terms.minimumCharge.to_string(),
                    regions: terms.regions,
                    gdpr: terms.gdpr,
                }
            }
            EscrowEvent::TermsClosed(e) => ChainEvent::TermsClosed { terms: e.termsId.into() },
            EscrowEvent::AgreementSigned(e) => {
                let agreement = self.chain.agreement_at(id(e.agreementId), Some(block)).await?;
                ChainEvent::Signed {
                    agreement: id(e.agreementId),
                    terms: e.termsId.into(),
                    customer: e.customer.to_string(),
                    deposit: e.deposit.to_string(),
                    model: model(agreement.model)?,
                    token_id: agreement.tokenId,
                    price: agreement.price.to_string(),
                    allowed_regions: agreement.allowedRegions,
                    gdpr: agreement.gdpr,
                    duration: agreement.duration.to::<u64>(),
                    signed_at: self.block_time(log).await?,
                    tx_hash,
                }
            }
            EscrowEvent::WindowReserved(e) => {
                ChainEvent::WindowReserved { agreement: id(e.agreementId), from: id(e.from), to: id(e.to) }
            }
            EscrowEvent::StartRequested(e) => {
                ChainEvent::StartRequested { agreement: id(e.agreementId), requested_at: self.block_time(log).await? }
            }
            EscrowEvent::AgreementActivated(e) => ChainEvent::Activated {
                agreement: id(e.agreementId),
                started_at: self.block_time(log).await?,
                ends_at: id(e.endsAt),
                region: e.region,
                tx_hash,
            },
            EscrowEvent::AgreementEnded(e) => {
                ChainEvent::Ended { agreement: id(e.agreementId), ended_at: id(e.endedAt), tx_hash }
            }
            EscrowEvent::AgreementSettled(e) => ChainEvent::Settled {
                agreement: id(e.agreementId),
                availability_bps: e.availabilityBps,
                charge: e.charge.to_string(),
                refund: e.refund.to_string(),
                refund_deferred: e.refundDeferred,
                tx_hash,
            },
            EscrowEvent::StartCancelled(e) => ChainEvent::StartCancelled {
                agreement: id(e.agreementId),
                reason: match e.reason {
                    0 => "cancelledByCustomer",
                    1 => "declinedByOperator",
                    _ => "activationTimedOut",
                },
                refund: e.refund.to_string(),
                refund_deferred: e.refundDeferred,
                tx_hash,
            },
            EscrowEvent::AgreementClosed(e) => ChainEvent::Closed {
                agreement: id(e.agreementId),
                refund: e.refund.to_string(),
                refund_deferred: e.refundDeferred,
                tx_hash,
            },
            other => {
                debug!(?other, "event with no effect on agreements");
                return Ok(None);
            }
        }))
    }
}
