//! What the backend keeps of each contract event: the watcher decodes logs into these
//! ([`crate::chain::decode`]), the store applies them to its records and keeps them to replay after a
//! fork.

use serde::{Deserialize, Serialize};

use crate::domain::agreement::Model;

/// What the backend keeps of one contract event, built from the log alone: the escrow's events carry an
/// agreement's model, price, surcharge, constraints and duration, and a terms version's token, duration,
/// minimum charge, regions and monitor; the times (`signed_at`, `requested_at`, `started_at`) are the
/// block's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
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
        /// The account of the terms' monitor, whose signed report alone settles their conferences; None
        /// when they name none (the operator reports).
        #[serde(default)]
        monitor: Option<String>,
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
        /// The terms' price per unit, before the surcharge.
        price: String,
        /// The constraint surcharge in basis points (0 for events kept before it was read).
        #[serde(default)]
        surcharge_bps: u32,
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
        /// The commitment to the probe records behind the figure (zero for an overdue settlement, or for
        /// events kept before settlements carried one).
        #[serde(default)]
        evidence: alloy::primitives::B256,
        charge: String,
        refund: String,
        refund_deferred: bool,
        tx_hash: String,
    },
    StartCancelled {
        agreement: u64,
        /// cancelledByCustomer, declinedByOperator or activationTimedOut.
        reason: String,
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
    /// The agreement was opened from the customer's account by its signed order (`OrderFilled`, right
    /// after its `AgreementSigned`): one conference, requested at once, whatever the model.
    OrderFilled {
        agreement: u64,
        /// Lowercase hex, as orders are stored.
        customer: String,
        /// Decimal.
        nonce: String,
    },
}

impl ChainEvent {
    /// The agreement the event is about, if any.
    pub fn agreement(&self) -> Option<u64> {
        match *self {
            Self::TermsPublished { .. } | Self::TermsClosed { .. } => None,
            Self::Signed { agreement, .. }
            | Self::WindowReserved { agreement, .. }
            | Self::StartRequested { agreement, .. }
            | Self::Activated { agreement, .. }
            | Self::Ended { agreement, .. }
            | Self::Settled { agreement, .. }
            | Self::StartCancelled { agreement, .. }
            | Self::Closed { agreement, .. }
            | Self::OrderFilled { agreement, .. } => Some(agreement),
        }
    }

    /// The terms version the event is about, if it is about one (not an agreement).
    pub fn terms(&self) -> Option<u64> {
        match *self {
            Self::TermsPublished { terms, .. } | Self::TermsClosed { terms } => Some(terms),
            _ => None,
        }
    }
}
