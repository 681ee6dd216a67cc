//! The agreement as the backend tracks it: what the chain says (`ChainStatus`, from events) and what
//! the backend has done about it (`ConferenceState`). `Progress` is the one status a customer sees.

use serde::{Deserialize, Serialize};

use crate::domain::stop::SignedStop;

/// What the customer buys (the contract's `Model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Model {
    /// One conference up to a maximum duration, for a fixed price.
    FixedPrice,
    /// One conference up to a maximum duration, charged per second used.
    DynamicPrice,
    /// Prepaid minutes, used in any number of sessions.
    TimeLimited,
    /// A reserved window: a minimum charge for readiness plus per-second use.
    FlexiblePeriod,
}

impl Model {
    pub fn from_index(value: u8) -> Option<Self> {
        Some(match value {
            0 => Self::FixedPrice,
            1 => Self::DynamicPrice,
            2 => Self::TimeLimited,
            3 => Self::FlexiblePeriod,
            _ => return None,
        })
    }

    /// Whether a signature starts a conference at once (the others wait for the customer's start).
    pub fn starts_at_signing(&self) -> bool {
        matches!(self, Self::FixedPrice | Self::DynamicPrice)
    }
}

/// The agreement's status on-chain (the contract's `Status`, less its `None`), as the watcher last
/// read it from events or the settler reads it from the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChainStatus {
    /// Paid, no conference asked for (TimeLimited between sessions, FlexiblePeriod before its start).
    Idle,
    /// A conference is asked for and waits for the operator's activation.
    Requested,
    Active,
    Ended,
    Settled,
    Refunded,
}

impl ChainStatus {
    /// The contract's `Status` by its numeric value; None for `None` (no such agreement) or a value
    /// the contract does not have.
    pub fn from_index(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::Idle,
            2 => Self::Requested,
            3 => Self::Active,
            4 => Self::Ended,
            5 => Self::Settled,
            6 => Self::Refunded,
            _ => return None,
        })
    }
}

/// Whether the agreement's conference exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConferenceState {
    /// Never deployed.
    Absent,
    /// A deploy was started and may or may not have finished (the orchestrator adopts what it finds).
    Deploying,
    Running,
    Removed,
}

/// Where an agreement stands, in the customer's words and in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Progress {
    /// Paid; no conference asked for now (minutes left to use, or a window not started).
    Idle,
    /// Escrow locked; the service has not started the conference yet.
    Signed,
    /// The conference is being started.
    Deploying,
    /// The conference answers; the service is countersigning on-chain.
    Activating,
    /// Countersigned: the clock runs and the join URL works.
    Active,
    /// Ended on-chain; the conference is being removed.
    Undeploying,
    /// The conference is gone; the settlement is being sent.
    Settling,
    Settled,
    /// Never started; the whole deposit went back.
    Refunded,
}

macro_rules! text_enum {
    ($ty:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(&self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl std::str::FromStr for $ty {
            type Err = crate::Error;
            fn from_str(s: &str) -> crate::Result<Self> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(crate::Error::Config(format!(concat!("unknown ", stringify!($ty), " {:?}"), other))),
                }
            }
        }
    };
}

text_enum!(Model {
    FixedPrice => "fixedPrice",
    DynamicPrice => "dynamicPrice",
    TimeLimited => "timeLimited",
    FlexiblePeriod => "flexiblePeriod",
});
text_enum!(ChainStatus {
    Idle => "idle",
    Requested => "requested",
    Active => "active",
    Ended => "ended",
    Settled => "settled",
    Refunded => "refunded",
});
text_enum!(ConferenceState { Absent => "absent", Deploying => "deploying", Running => "running", Removed => "removed" });

/// One agreement's record. Amounts are decimal strings in the token's smallest unit (wei for ETH);
/// times are chain seconds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Agreement {
    pub id: u64,
    pub terms_id: u64,
    pub model: Model,
    pub customer: String,
    /// 0 for ETH, else the escrow's ERC-20 token id.
    pub token_id: u8,
    /// Per unit of the model, as the terms say: the conference, a second, or a minute.
    pub price: String,
    /// The constraint surcharge (regions, GDPR) in basis points: each amount charged or deposited is
    /// `amount × (10000 + surchargeBps) / 10000`, rounded down once.
    pub surcharge_bps: u32,
    pub deposit: String,
    /// Bit i set: the conference may run in region i.
    pub allowed_regions: u32,
    pub gdpr: bool,
    /// Seconds: the longest conference, the minutes bought × 60, or the reserved window's length.
    pub duration: u64,
    pub window_from: Option<u64>,
    pub window_to: Option<u64>,
    pub chain_status: ChainStatus,
    /// The conference being asked for or run: 1 for the one conference of FixedPrice and DynamicPrice,
    /// counting starts otherwise (0 before the first).
    pub session: u64,
    pub signed_at: u64,
    pub requested_at: Option<u64>,
    pub started_at: Option<u64>,
    pub ends_at: Option<u64>,
    pub region: Option<u8>,
    pub ended_at: Option<u64>,
    /// Charged so far, over every session.
    pub charged: String,
    pub availability_bps: Option<u16>,
    pub refund: Option<String>,
    pub refund_deferred: Option<bool>,
    /// Why a conference that never started was called off: cancelledByCustomer, declinedByOperator,
    /// activationTimedOut.
    pub refund_reason: Option<String>,
    #[serde(skip)]
    pub conference_state: ConferenceState,
    #[serde(skip)]
    pub join_url: Option<String>,
    /// Where the conference runs (placement's choice), reported by the activation.
    #[serde(skip)]
    pub conference_region: Option<u8>,
    #[serde(skip)]
    pub deploy_count: u64,
    #[serde(skip)]
    pub sign_tx: String,
    #[serde(skip)]
    pub activate_tx: Option<String>,
    #[serde(skip)]
    pub end_tx: Option<String>,
    #[serde(skip)]
    pub settle_tx: Option<String>,
    /// The customer's gasless stop of the current conference, waiting to be submitted.
    pub signed_stop: Option<SignedStop>,
    /// Who measures the availability: the terms' independent monitor (its account, lowercase), whose
    /// signed report alone settles; None when the terms name none and the operator reports.
    pub monitor: Option<String>,
    /// Opened from the customer's account by a signed order: one conference of at most the terms'
    /// maxDuration whatever the model, its deposit locked in the account and its refund credited back
    /// there (`refundDeferred` true: never sent to the wallet).
    pub from_account: bool,
}

impl Agreement {
    pub fn progress(&self) -> Progress {
        use {ChainStatus as C, ConferenceState as K};
        match (self.chain_status, self.conference_state) {
            (C::Idle, _) => Progress::Idle,
            (C::Requested, K::Absent | K::Removed) => Progress::Signed,
            (C::Requested, K::Deploying) => Progress::Deploying,
            (C::Requested, K::Running) => Progress::Activating,
            (C::Active, K::Running) => Progress::Active,
            (C::Active, _) => Progress::Deploying,
            (C::Ended, K::Running | K::Deploying) => Progress::Undeploying,
            (C::Ended, K::Absent | K::Removed) => Progress::Settling,
            (C::Settled, _) => Progress::Settled,
            (C::Refunded, _) => Progress::Refunded,
        }
    }

    /// The customer's signed stop, if it is for the conference running now (signed stops name their
    /// conference by its start).
    pub fn signed_stop_of_running(&self) -> Option<&SignedStop> {
        self.signed_stop.as_ref().filter(|stop| self.started_at == Some(stop.started_at))
    }

    /// The period a settlement of the current conference pays for, as the contract will take it
    /// (unix seconds, `[from, to)`): an ended conference's `[startedAt, endedAt)`; a running one's up to
    /// the end its customer's signed stop gives it (the signed time, no earlier than its start nor later
    /// than its end time); a FlexiblePeriod window's `[from, to)` when it passes without a conference.
    /// None while there is nothing to settle.
    pub fn measured_period(&self) -> Option<(u64, u64)> {
        match self.chain_status {
            ChainStatus::Ended => Some((self.started_at?, self.ended_at?)),
            ChainStatus::Active => {
                let (started_at, stop) = (self.started_at?, self.signed_stop_of_running()?);
                let end = stop.stopped_at.min(self.ends_at.unwrap_or(u64::MAX)).max(started_at);
                Some((started_at, end))
            }
            ChainStatus::Idle | ChainStatus::Requested if self.model == Model::FlexiblePeriod => {
                Some((self.window_from?, self.window_to?))
            }
            _ => None,
        }
    }
}

/// A terms version as published on-chain: what a customer signs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Terms {
    pub id: u64,
    pub offer_id: u64,
    pub model: Model,
    pub token_id: u8,
    /// Per unit of the model: the conference (fixedPrice), a second (dynamicPrice, flexiblePeriod) or a
    /// minute (timeLimited), before any constraint surcharge.
    pub price: String,
    pub max_duration: u64,
    pub minimum_charge: String,
    /// What signing costs with no constraints, for the models whose deposit is fixed by the terms.
    pub deposit: Option<String>,
    pub regions: u32,
    pub gdpr: bool,
    pub open: bool,
    /// The account of the terms' independent monitor (lowercase), if they name one.
    pub monitor: Option<String>,
}

/// One settled conference of an agreement.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub session: u64,
    pub started_at: Option<u64>,
    pub ended_at: Option<u64>,
    pub availability_bps: u16,
    /// The commitment to the probe records behind the figure, as the settlement emitted it.
    pub evidence: Option<String>,
    pub charge: String,
    pub settle_tx: String,
}
