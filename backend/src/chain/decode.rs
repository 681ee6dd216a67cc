//! Logs of the escrow into [`ChainEvent`]s, from the log alone. The escrow's events carry every fact the
//! backend keeps (an agreement's model, price, surcharge, constraints and duration; a terms version's
//! token, duration, minimum charge, regions and monitor), so decoding reads no contract state. The one
//! fact a log may lack is its block's time (`blockTimestamp`, which not every node sets):
//! [`Chain::fill_block_timestamps`] reads it once per block, by the log's block hash, before decoding.

use std::collections::BTreeMap;

use alloy::{
    primitives::{B256, U256},
    providers::Provider,
    rpc::types::Log,
    sol_types::SolEventInterface,
};
use futures::{StreamExt, TryStreamExt, stream};
use tracing::{debug, warn};

use super::{Chain, EscrowEvent};
use crate::{
    Error, Result,
    domain::{agreement::Model, event::ChainEvent},
};

/// How many block headers are read at once for logs without a block time.
const HEADERS_IN_FLIGHT: usize = 8;

impl Chain {
    pub fn decode(log: &Log) -> Result<EscrowEvent> {
        EscrowEvent::decode_log(&log.inner).map(|decoded| decoded.data).map_err(Error::chain)
    }

    /// Sets the block time of every log that lacks one, reading each such block's header once, by the
    /// log's block hash (so the time is that block's, even if the chain has moved since).
    pub async fn fill_block_timestamps(&self, logs: &mut [Log]) -> Result<()> {
        let missing: BTreeMap<B256, u64> = logs
            .iter()
            .filter(|log| log.block_timestamp.is_none())
            .filter_map(|log| Some((log.block_hash?, log.block_number.unwrap_or_default())))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let times: BTreeMap<B256, u64> = stream::iter(missing)
            .map(|(hash, number)| async move {
                let block = self.provider.get_block_by_hash(hash).await.map_err(Error::chain)?.ok_or_else(|| {
                    Error::Chain(format!("block {number} ({hash}) of a log is no longer known to the node").into())
                })?;
                Ok::<_, Error>((hash, block.header.timestamp))
            })
            .buffer_unordered(HEADERS_IN_FLIGHT)
            .try_collect()
            .await?;
        for log in logs.iter_mut().filter(|log| log.block_timestamp.is_none()) {
            log.block_timestamp = log.block_hash.and_then(|hash| times.get(&hash).copied());
        }
        Ok(())
    }

    /// The event a log of the escrow is, from the log alone; None for a log with no effect on agreements
    /// (or one the ABI does not describe). Fails for an event that needs its block's time when the log
    /// has none (see [`Chain::fill_block_timestamps`]), or for a value out of its range.
    pub fn event_of(log: &Log) -> Result<Option<ChainEvent>> {
        let tx_hash = log.transaction_hash.map(|h| h.to_string()).unwrap_or_default();
        let block = log.block_number.unwrap_or_default();
        let decoded = match Self::decode(log) {
            Ok(event) => event,
            Err(err) => {
                warn!(%err, "skipping a log the escrow ABI does not describe");
                return Ok(None);
            }
        };
        let block_time = || {
            log.block_timestamp.ok_or_else(|| {
                Error::Chain(
                    format!("the log {}:{} carries no block time", block, log.log_index.unwrap_or_default()).into(),
                )
            })
        };
        let id = |v: U256| v.saturating_to::<u64>();
        let model =
            |m: u8| Model::from_index(m).ok_or_else(|| Error::Chain(format!("unknown pricing model {m}").into()));
        Ok(Some(match decoded {
            EscrowEvent::TermsPublished(e) => ChainEvent::TermsPublished {
                terms: e.termsId.into(),
                offer: e.offerId.into(),
                model: model(e.model)?,
                token_id: e.tokenId,
                price: e.price.to_string(),
                max_duration: id(e.maxDuration),
                minimum_charge: e.minimumCharge.to_string(),
                regions: e.regions,
                gdpr: e.gdpr,
                monitor: (!e.monitor.is_zero()).then(|| e.monitor.to_string().to_lowercase()),
            },
            EscrowEvent::TermsClosed(e) => ChainEvent::TermsClosed { terms: e.termsId.into() },
            EscrowEvent::AgreementSigned(e) => ChainEvent::Signed {
                agreement: id(e.agreementId),
                terms: e.termsId.into(),
                customer: e.customer.to_string(),
                deposit: e.deposit.to_string(),
                model: model(e.model)?,
                token_id: e.tokenId,
                price: e.price.to_string(),
                surcharge_bps: e.surchargeBps.to::<u32>(),
                allowed_regions: e.allowedRegions,
                gdpr: e.gdpr,
                duration: id(e.duration),
                signed_at: block_time()?,
                tx_hash,
            },
            EscrowEvent::WindowReserved(e) => {
                ChainEvent::WindowReserved { agreement: id(e.agreementId), from: id(e.from), to: id(e.to) }
            }
            EscrowEvent::StartRequested(e) => {
                ChainEvent::StartRequested { agreement: id(e.agreementId), requested_at: block_time()? }
            }
            EscrowEvent::AgreementActivated(e) => ChainEvent::Activated {
                agreement: id(e.agreementId),
                started_at: block_time()?,
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

#[cfg(test)]
mod tests {
    use alloy::{
        primitives::{Address, B256, Log as PrimitiveLog, U256, aliases::U24},
        sol_types::SolEvent,
    };

    use super::*;
    use crate::chain::ConferenceEscrow;

    fn log_of(event: &impl SolEvent, block_timestamp: Option<u64>) -> Log {
        Log {
            inner: PrimitiveLog { address: Address::ZERO, data: event.encode_log_data() },
            block_hash: Some(B256::repeat_byte(7)),
            block_number: Some(12),
            block_timestamp,
            transaction_hash: Some(B256::repeat_byte(9)),
            transaction_index: Some(0),
            log_index: Some(3),
            removed: false,
        }
    }

    fn signed(model: u8) -> ConferenceEscrow::AgreementSigned {
        ConferenceEscrow::AgreementSigned {
            agreementId: U256::from(41),
            termsId: 2,
            customer: Address::repeat_byte(0xcc),
            deposit: U256::from(4_680_000_000_000_000u64),
            model,
            tokenId: 1,
            price: U256::from(1_000_000_000_000u64),
            surchargeBps: U24::from(3_000),
            allowedRegions: 0b01,
            gdpr: true,
            duration: U256::from(3_600),
        }
    }

    #[test]
    fn a_signature_is_built_from_its_log_alone() {
        let event = Chain::event_of(&log_of(&signed(1), Some(1_700_000_000))).unwrap();
        assert_eq!(
            event,
            Some(ChainEvent::Signed {
                agreement: 41,
                terms: 2,
                customer: Address::repeat_byte(0xcc).to_string(),
                deposit: "4680000000000000".into(),
                model: Model::DynamicPrice,
                token_id: 1,
                price: "1000000000000".into(),
                surcharge_bps: 3_000,
                allowed_regions: 0b01,
                gdpr: true,
                duration: 3_600,
                signed_at: 1_700_000_000,
                tx_hash: B256::repeat_byte(9).to_string(),
            })
        );
    }

    #[test]
    fn a_terms_version_is_built_from_its_log_alone() {
        let published = ConferenceEscrow::TermsPublished {
            termsId: 3,
            offerId: 1,
            model: 3,
            tokenId: 0,
            price: U256::from(1_000_000_000_000u64),
            maxDuration: U256::from(86_400),
            minimumCharge: U256::from(1_000_000_000_000_000u64),
            regions: 0b11,
            gdpr: false,
            gdprSurchargeBps: 2_000,
            regionSurchargeBps: 1_000,
            monitor: Address::repeat_byte(0xAB),
        };
        // No block time needed: a terms version keeps none.
        let event = Chain::event_of(&log_of(&published, None)).unwrap();
        assert_eq!(
            event,
            Some(ChainEvent::TermsPublished {
                terms: 3,
                offer: 1,
                model: Model::FlexiblePeriod,
                token_id: 0,
                price: "1000000000000".into(),
                max_duration: 86_400,
                minimum_charge: "1000000000000000".into(),
                regions: 0b11,
                gdpr: false,
                monitor: Some(format!("0x{}", "ab".repeat(20))),
            })
        );
    }

    #[test]
    fn a_log_without_its_block_time_is_refused_for_an_event_that_needs_it() {
        let err = Chain::event_of(&log_of(&signed(1), None)).unwrap_err();
        assert!(err.to_string().contains("the log 12:3 carries no block time"), "{err}");
        let err = Chain::event_of(&log_of(&signed(9), Some(1))).unwrap_err();
        assert!(err.to_string().contains("unknown pricing model 9"), "{err}");
    }
}
