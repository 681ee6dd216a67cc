//! Orchestrators run one conference per agreement. `local` (the default) runs a room process on a
//! loopback port; a Kubernetes orchestrator (a Jitsi Meet pod per agreement) goes beside it as a new
//! variant of [`Orchestrator`], implementing the same four operations.

pub mod local;

use crate::Result;

/// A conference the orchestrator runs for an agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    pub join_url: String,
    /// False when an existing conference for the agreement was found and adopted.
    pub fresh: bool,
}

pub enum Orchestrator {
    Local(local::LocalOrchestrator),
}

impl Orchestrator {
    /// Makes sure the agreement's conference runs; idempotent: a running one is adopted, never doubled.
    pub async fn deploy(&self, agreement: u64) -> Result<Deployed> {
        match self {
            Self::Local(local) => local.deploy(agreement).await,
        }
    }

    /// Makes sure the agreement's conference is gone; idempotent.
    pub async fn remove(&self, agreement: u64) -> Result<()> {
        match self {
            Self::Local(local) => local.remove(agreement).await,
        }
    }

    /// Whether the agreement's conference answers now.
    pub async fn probe(&self, agreement: u64) -> Result<bool> {
        match self {
            Self::Local(local) => Ok(local.find(agreement).await?.is_some()),
        }
    }

    /// The agreements that have a conference (running or not answering), for garbage collection.
    pub async fn list(&self) -> Result<Vec<u64>> {
        match self {
            Self::Local(local) => local.list(),
        }
    }
}
