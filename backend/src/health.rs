//! Readiness (`GET /readyz`): whether this instance can do its work now. Three checks, run together and
//! each bounded in time, so a hung dependency makes the answer "not ready", never a hung probe:
//!
//! - `database`: the store answers a trivial query;
//! - `rpc`: the chain's node answers `eth_blockNumber`;
//! - `watcher`: the records are at most `max_lag_blocks` behind the head the node just gave: the stored
//!   cursor (the next block to read) against the head less the confirmation depth. The cursor is in the
//!   database every replica shares, so a follower is ready when the leader's watcher keeps up, and a
//!   watcher that stopped reading falls behind here too.
//!
//! The answer also says whether this replica leads (acts) or follows (serves the read API).
//!
//! Liveness (`GET /healthz`) is separate and checks nothing: a restart does not cure a slow node.

use std::time::Duration;

use tokio::sync::watch;

use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use serde::Serialize;
use tracing::warn;

use crate::{Error, Result, error::redact_url, store::Store};

/// How long each check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// What readiness needs: the node to ask and the bound on the watcher's lag.
#[derive(Clone)]
pub struct Health {
    rpc: DynProvider,
    max_lag_blocks: u64,
    confirmations: u64,
    /// Whether this replica holds the leader lease.
    leading: watch::Receiver<bool>,
}

/// The answer of `GET /readyz`, with status 200 when `ready`, else 503.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Whether every check passed.
    pub ready: bool,
    /// `leader` (this replica acts) or `follower` (it serves the read API; another replica acts).
    pub role: &'static str,
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
    pub fn new(rpc_url: &str, max_lag_blocks: u64, confirmations: u64, leading: watch::Receiver<bool>) -> Result<Self> {
        let url = rpc_url.parse().map_err(|e| Error::Config(format!("RPC URL {}: {e}", redact_url(rpc_url))))?;
        let rpc = ProviderBuilder::new().disable_recommended_fillers().connect_http(url).erased();
        Ok(Self { rpc, max_lag_blocks, confirmations, leading })
    }

    /// Runs the three checks.
    pub async fn check(&self, store: &Store) -> Readiness {
        let (cursor, head) = tokio::join!(bounded("database", store.cursor()), bounded("rpc", self.head()));
        let database = match &cursor {
            Ok(_) => Check::passed("database", "answered".to_owned()),
            Err(why) => Check::failed("database", why.clone()),
        };
        let watcher = match (&head, cursor) {
            (Ok(head), Ok(cursor)) => self.watcher(*head, cursor),
            (Err(_), _) => Check::failed("watcher", "unknown: the node did not give its head".to_owned()),
            (_, Err(_)) => Check::failed("watcher", "unknown: the database did not answer".to_owned()),
        };
        let rpc = match head {
            Ok(head) => Check::passed("rpc", format!("head block {head}")),
            Err(why) => Check::failed("rpc", why),
        };
        let checks = vec![database, rpc, watcher];
        let role = if *self.leading.borrow() { "leader" } else { "follower" };
        Readiness { ready: checks.iter().all(|c| c.ok), role, checks }
    }

    async fn head(&self) -> Result<u64> {
        self.rpc.get_block_number().await.map_err(Error::chain)
    }

    /// The records' lag behind `head`, from the stored `cursor` (the next block the watcher reads).
    fn watcher(&self, head: u64, cursor: Option<u64>) -> Check {
        let Some(cursor) = cursor else {
            return Check::failed("watcher", "the watcher has not read the chain yet".to_owned());
        };
        let lag = (head.saturating_sub(self.confirmations) + 1).saturating_sub(cursor);
        let detail = format!("{lag} blocks behind (bound {}); next block to read {cursor}", self.max_lag_blocks);
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
