//! Orchestrators run one conference per agreement. Three implement the same operations:
//! - `local` (the embedded default): a Janus WebRTC Server (the VideoRoom SFU) process per conference,
//!   on this machine, in this service's region;
//! - `kubernetes`: a Jitsi Meet pod and Service per conference, on the cluster placement picks
//!   among several ([`crate::domain::placement`]), optionally from a pool of warm pods;
//! - `noop` (for benchmarks: no conference is run): a deploy answers at once, the deployed agreements
//!   are kept in memory.
//!
//! A new orchestrator is a new variant of [`Orchestrator`].

pub mod janus;
pub mod jitsi_pod;
pub mod kubernetes;
pub mod local;
pub mod noop;

use crate::{
    Result,
    domain::{
        availability::ProbeOutcome,
        conference::{Conference, Deployed, Roster},
        placement::NoFit,
    },
};

/// The orchestrator the service runs conferences with.
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

    /// Whether the agreement's conference is available now, what was measured, and whether it is lost
    /// (gone, to be deployed again). With a `roster` (who may be in it now, at what quality), an
    /// orchestrator that can tell who is connected ends the others' sessions, and one that can change
    /// its room's bitrate cap follows the quality.
    pub async fn probe(&self, agreement: u64, roster: Option<&Roster>) -> Result<ProbeOutcome> {
        match self {
            Self::Local(local) => local.probe(agreement, roster).await,
            Self::Kubernetes(kubernetes) => kubernetes.probe(agreement).await,
            Self::Noop(noop) => Ok(if noop.probe(agreement) {
                ProbeOutcome::up("noop: deployed")
            } else {
                ProbeOutcome::lost("noop: not deployed")
            }),
        }
    }

    /// Whether [`Self::probe`] uses the roster it is given (who may be in the conference): only local
    /// rooms put out a participant the customer removed, so the others are spared its reads.
    pub fn takes_roster(&self) -> bool {
        matches!(self, Self::Local(_))
    }

    /// Whether the agreement's conference answers now (before it is activated).
    pub async fn answers(&self, agreement: u64) -> Result<bool> {
        match self {
            Self::Local(local) => Ok(local.find(agreement).await?.is_some()),
            _ => Ok(self.probe(agreement, None).await?.ok),
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
