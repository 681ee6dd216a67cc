//! The agreement as the backend tracks it: what the chain says (`ChainStatus`, from events) and what
//! the backend has done about it (`ConferenceState`). `Progress` is the one status a customer sees.

use serde::Serialize;

/// The agreement's status on-chain, as the watcher last read it from events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainStatus {
    Signed,
    Active,
    Ended,
    Settled,
    Refunded,
}

/// Whether the agreement's conference exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Progress {
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

text_enum!(ChainStatus { Signed => "signed", Active => "active", Ended => "ended", Settled => "settled", Refunded => "refunded" });
text_enum!(ConferenceState { Absent => "absent", Deploying => "deploying", Running => "running", Removed => "removed" });

/// One agreement's record. Amounts are decimal strings of wei; times are chain seconds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Agreement {
    pub id: u64,
    pub offer_id: u64,
    pub customer: String,
    pub provider: String,
    pub price_per_second: String,
    pub max_duration: u64,
    pub deposit: String,
    pub chain_status: ChainStatus,
    pub signed_at: u64,
    pub started_at: Option<u64>,
    pub ended_at: Option<u64>,
    pub availability_bps: Option<u16>,
    pub charge: Option<String>,
    pub refund: Option<String>,
    pub refund_deferred: Option<bool>,
    /// Why a never-started agreement was refunded: cancelledByCustomer, declinedByOperator, activationTimedOut.
    pub refund_reason: Option<String>,
    #[serde(skip)]
    pub conference_state: ConferenceState,
    #[serde(skip)]
    pub join_url: Option<String>,
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
}

impl Agreement {
    pub fn progress(&self) -> Progress {
        use {ChainStatus as C, ConferenceState as K};
        match (self.chain_status, self.conference_state) {
            (C::Signed, K::Absent) => Progress::Signed,
            (C::Signed, K::Deploying) => Progress::Deploying,
            (C::Signed, K::Running) => Progress::Activating,
            // Signed with the conference removed: the activation window closed; the customer reclaims.
            (C::Signed, K::Removed) => Progress::Signed,
            (C::Active, K::Running) => Progress::Active,
            (C::Active, _) => Progress::Deploying,
            (C::Ended, K::Running | K::Deploying) => Progress::Undeploying,
            (C::Ended, K::Absent | K::Removed) => Progress::Settling,
            (C::Settled, _) => Progress::Settled,
            (C::Refunded, _) => Progress::Refunded,
        }
    }
}
