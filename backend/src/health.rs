//! Readiness (`GET /readyz`): whether this instance can do its work now. Three checks, run together and
//! each bounded in time, so a hung dependency makes the answer "not ready", never a hung probe:
//!
//! - `database`: the store answers a trivial query;
//! - `rpc`: the chain's node answers `eth_blockNumber`;
//! - `watcher`: the watcher is at most `max_lag_blocks` behind the head the node just gave. Its lag at
//!   its last look is corrected by the blocks the chain made since, so a watcher that stopped looking
//!   falls behind here too.
//!
//! Liveness (`GET /healthz`) is separate and checks nothing: a restart does not cure a slow node.

use std::time::Duration;

use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use serde::Serialize;
use tracing::warn;

use crate::{Error, Result, metrics::Metrics, store::Store};

/// How long each check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// What readiness needs: the node to ask and the bound on the watcher's lag.
#[derive(Clone)]
pub struct Health {
    rpc: DynProvider,
    max_lag_blocks: u64,
    metrics: Metrics,
}

/// The answer of `GET /readyz`, with status 200 when `ready`, else 503.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Whether every check passed.
    pub ready: bool,
    pub checks: Vec<Check>,
}

/// One readiness check.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Check {
    /// `database`, `rpc` or `watcher`.
    pub name: &'static str,
    pub ok: bool,
    /// What was found, or what failed.
    pub detail: String,
}

impl Health {
    /// Readiness against the node at `rpc_url` (no connection is made until a check runs).
    pub fn new(rpc_url: &str, max_lag_blocks: u64, metrics: Metrics) -> Result<Self> {
        let url = rpc_url.parse().map_err(|e| Error::Config(format!("RPC URL {rpc_url:?}: {e}")))?;
        let rpc = ProviderBuilder::new().disable_recommended_fillers().connect_http(url).erased();
        Ok(Self { rpc, max_lag_blocks, metrics })
    }

    /// Runs the three checks.
    pub async fn check(&self, store: &Store) -> Readiness {
        let (database, head) = tokio::join!(bounded("database", store.ping()), bounded("rpc", self.head()));
        let database = match database {
            Ok(()) => Check::passed("database", "answered".to_owned()),
            Err(why) => Check::failed("database", why),
        };
        let (rpc, watcher) = match head {
            Ok(head) => (Check::passed("rpc", format!("head block {head}")), self.watcher(head)),
            Err(why) => (
                Check::failed("rpc", why),
                Check::failed("watcher", "unknown: the node did not give its head".to_owned()),
            ),
        };
        let checks = vec![database, rpc, watcher];
        Readiness { ready: checks.iter().all(|c| c.ok), checks }
    }

    async fn head(&self) -> Result<u64> {
        self.rpc.get_block_number().await.map_err(Error::chain)
    }

    fn watcher(&self, head: u64) -> Check {
        let Some(seen) = self.metrics.watcher_progress() else {
            return Check::failed("watcher", "the watcher has not read the chain yet".to_owned());
        };
        let lag = seen.lag.saturating_add(head.saturating_sub(seen.head));
        let detail = format!("{lag} blocks behind (bound {}); last read head {}", self.max_lag_blocks, seen.head);
        if lag <= self.max_lag_blocks { Check::passed("watcher", detail) } else { Check::failed("watcher", detail) }
    }
}

impl Check {
    fn passed(name: &'static str, detail: String) -> Self {
        Self { name, ok: true, detail }
    }

    fn failed(name: &'static str, detail: String) -> Self {
        Self { name, ok: false, detail }
    }
}

/// `check` within [`CHECK_TIMEOUT`], its failure as a sentence. The error itself is logged, not told:
/// an RPC URL or a database URL may carry a credential.
async fn bounded<T>(name: &'static str, check: impl Future<Output = Result<T>>) -> Result<T, String> {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => {
            warn!(check = name, error = %err, "readiness check failed");
            Err(format!("failed ({} error; the service logged the details)", err.label()))
        }
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    }
}
