//! Logs of the escrow into [`ChainEvent`]s. Facts an event does not carry (an agreement's model, price
//! and constraints; a terms version's duration and token) are read from the contract's state at the
//! event's own block, so they are exactly what the event refers to.

use alloy::{rpc::types::Log, sol_types::SolEventInterface};
use tracing::{debug, warn};

use super::{Chain, EscrowEvent};
use crate::{
    Error, Result,
    domain::{agreement::Model, event::ChainEvent},
};

impl Chain {
    pub fn decode(log: &Log) -> Result<EscrowEvent> {
        EscrowEvent::decode_log(&log.inner).map(|decoded| decoded.data).map_err(Error::chain)
    }

    async fn block_time(&self, log: &Log) -> Result<u64> {
        match log.block_timestamp {
            Some(ts) => Ok(ts),
            None => self.block_timestamp(log.block_number.unwrap_or_default()).await,
        }
    }

    /// The event a log of the escrow is, with the facts it refers to read at its block; None for a log
    /// with no effect on agreements (or one the ABI does not describe).
    pub async fn event_of(&self, log: &Log) -> Result<Option<ChainEvent>> {
        let tx_hash = log.transaction_hash.map(|h| h.to_string()).unwrap_or_default();
        let block = log.block_number.unwrap_or_default();
        let decoded = match Self::decode(log) {
            Ok(event) => event,
            Err(err) => {
                warn!(%err, "skipping a log the escrow ABI does not describe");
                return Ok(None);
            }
        };
        let id = |v: alloy::primitives::U256| v.saturating_to::<u64>();
        let model =
            |m: u8| Model::from_index(m).ok_or_else(|| Error::Chain(format!("unknown pricing model {m}").into()));
        Ok(Some(match decoded {
            EscrowEvent::TermsPublished(e) => {
                let terms = self.terms_at(e.termsId, block).await?;
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
                    monitor: (!terms.monitor.is_zero()).then(|| terms.monitor.to_string().to_lowercase()),
                }
            }
            EscrowEvent::TermsClosed(e) => ChainEvent::TermsClosed { terms: e.termsId.into() },
            EscrowEvent::AgreementSigned(e) => {
                let agreement = self.agreement_at(id(e.agreementId), Some(block)).await?;
                ChainEvent::Signed {
                    agreement: id(e.agreementId),
                    terms: e.termsId.into(),
                    customer: e.customer.to_string(),
                    deposit: e.deposit.to_string(),
                    model: model(agreement.model)?,
                    token_id: agreement.tokenId,
                    price: agreement.price.to_string(),
                    surcharge_bps: agreement.surchargeBps.to::<u32>(),
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
                evidence: e.evidence,
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
                }
                .into(),
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
            EscrowEvent::OrderFilled(e) => ChainEvent::OrderFilled {
                agreement: id(e.agreementId),
                customer: format!("{:#x}", e.customer),
                nonce: e.nonce.to_string(),
            },
            other => {
                debug!(?other, "event with no effect on agreements");
                return Ok(None);
            }
        }))
    }
}
