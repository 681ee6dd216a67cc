//! Orchestrators run one conference per agreement. Two implement the same operations:
//! - `local` (the embedded default): a room process on a loopback port, in this service's region;
//! - `kubernetes`: a Jitsi Meet pod and Service per conference, on the cluster placement picks
//!   among several ([`crate::placement`]), optionally from a pool of warm pods;
//! - `noop` (for benchmarks: no conference is run): a deploy answers at once, the deployed agreements
//!   are kept in memory.
//!
//! A new orchestrator is a new variant of [`Orchestrator`].

pub mod jitsi_pod;
pub mod kubernetes;
pub mod local;
pub mod noop;

use crate::{Result, placement::NoFit};

/// What the reconciler asks for: one agreement's conference, with what placement and sizing need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conference {
    pub agreement: u64,
    pub customer: String,
    /// Bit i set: the conference may run in region i.
    pub allowed_regions: u32,
    pub gdpr: bool,
    /// The registered participants' regions (empty when none were registered).
    pub participant_regions: Vec<u8>,
    /// Everyone who may join, the customer included; None when the customer registered nobody.
    pub participants: Option<u64>,
    /// The bitrate of one video stream at the quality the customer chose.
    pub stream_kbps: u64,
    /// A FlexiblePeriod window: a warm pod, if one is ready, makes its start fast.
    pub warm_start: bool,
}

/// A conference the orchestrator runs for an agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    pub join_url: String,
    /// False when an existing conference for the agreement was found and adopted.
    pub fresh: bool,
    /// Where it runs: the region the activation reports on-chain.
    pub region: u8,
}

pub enum Orchestrator {
    Local(local::LocalOrchestrator),
    Kubernetes(Box<kubernetes::KubernetesOrchestrator>),
    Noop(noop::NoopOrchestrator),
}

impl Orchestrator {
    /// Whether the conference can be placed now, and if not, whether it never can.
    pub fn fit(&self, conference: &Conference) -> Result<(), NoFit> {
        match self {
            Self::Local(local) => local.fit(conference),
            Self::Kubernetes(kubernetes) => kubernetes.place(conference).map(|_| ()),
            Self::Noop(noop) => noop.fit(conference),
        }
    }

    /// Makes sure the agreement's conference runs; idempotent: a running one is adopted, never doubled.
    pub async fn deploy(&self, conference: &Conference) -> Result<Deployed> {
        match self {
            Self::Local(local) => local.deploy(conference).await,
            Self::Kubernetes(kubernetes) => kubernetes.deploy(conference).await,
            Self::Noop(noop) => Ok(noop.deploy(conference)),
        }
    }

    /// Makes sure the agreement's conference is gone; idempotent.
    pub async fn remove(&self, agreement: u64) -> Result<()> {
        match self {
            Self::Local(local) => local.remove(agreement).await,
            Self::Kubernetes(kubernetes) => kubernetes.remove(agreement).await,
            Self::Noop(noop) => {
                noop.remove(agreement);
                Ok(())
            }
        }
    }

    /// Whether the agreement's conference answers now.
    pub async fn probe(&self, agreement: u64) -> Result<bool> {
        match self {
            Self::Local(local) => Ok(local.find(agreement).await?.is_some()),
            Self::Kubernetes(kubernetes) => kubernetes.probe(agreement).await,
            Self::Noop(noop) => Ok(noop.probe(agreement)),
        }
    }

    /// The agreements that have a conference (running or not answering), for garbage collection.
    pub async fn list(&self) -> Result<Vec<u64>> {
        match self {
            Self::Local(local) => local.list(),
            Self::Kubernetes(kubernetes) => kubernetes.list().await,
            Self::Noop(noop) => Ok(noop.list()),
        }
    }

    /// Background upkeep between conferences (the Kubernetes warm pools and load counts).
    pub async fn maintain(&self) -> Result<()> {
        match self {
            Self::Local(_) | Self::Noop(_) => Ok(()),
            Self::Kubernetes(kubernetes) => kubernetes.maintain().await,
        }
    }
}
