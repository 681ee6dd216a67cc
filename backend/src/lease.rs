//! Leadership among replicas. Several backends may share one database; exactly one of them acts (the
//! watcher, reconciler, settler and monitor run only there) while every replica serves the read API.
//! The leader holds a lease in the database and renews it every `renew_every`; a replica that finds
//! the lease free or expired takes it, so another takes over within `ttl + renew_every` of the
//! leader's death (10 s + 2 s by default), and at once when the leader shuts down gracefully.
//!
//! A leader that cannot renew (its database is unreachable, it was paused) stops acting on its own
//! before its lease can expire in the database, so two replicas never act at once: it counts its
//! lease from the moment it asked for it (never later than the database's own start) and gives up
//! when half of it is left, which leaves the loops time to finish the step they are in.

use std::time::Duration;

use tokio::{sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{config::ServiceArgs, store::Store};

/// The one lease the replicas contend for.
pub const LEADER_LEASE: &str = "leader";

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// This replica's name in the lease table (unique among replicas).
    pub holder: String,
    pub ttl: Duration,
    pub renew_every: Duration,
}

impl LeaseConfig {
    /// The settings of `args`: this replica's name (by default host name and process id), the lease's
    /// time to live, and a renewal interval of at most a third of it.
    pub fn from_args(args: &ServiceArgs) -> Self {
        let holder = args.replica_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        });
        Self {
            holder,
            ttl: Duration::from_millis(args.lease_ttl_ms),
            renew_every: Duration::from_millis(args.lease_renew_ms.min(args.lease_ttl_ms / 3)),
        }
    }
}

/// Takes, renews and gives up the leader lease; publishes whether this replica leads.
pub struct Lease {
    store: Store,
    config: LeaseConfig,
    leading: watch::Sender<bool>,
}

impl Lease {
    pub fn new(store: Store, config: LeaseConfig) -> Self {
        Self { store, config, leading: watch::Sender::new(false) }
    }

    /// Whether this replica leads now, and every change of it.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Contends for the lease until `stop` is cancelled, then gives it up if held.
    pub async fn run(self, stop: CancellationToken) {
        let LeaseConfig { ref holder, ttl, renew_every } = self.config;
        let mut valid_until: Option<Instant> = None;
        loop {
            let asked = Instant::now();
            let leading = match self.store.acquire_lease(LEADER_LEASE, holder, ttl.as_millis() as u64).await {
                Ok(Some(term)) => {
                    if !*self.leading.borrow() {
                        info!(holder, term, "took the leader lease: acting");
                    }
                    valid_until = Some(asked + ttl);
                    true
                }
                Ok(None) => false,
                Err(err) => {
                    // Keep acting only while the lease surely still holds in the database.
                    let still = valid_until.is_some_and(|until| Instant::now() + ttl / 2 < until);
                    warn!(error = %err, still_leading = still, "could not renew the leader lease");
                    still
                }
            };
            if !leading && *self.leading.borrow() {
                warn!(holder, "lost the leader lease: stopping the loops");
            }
            self.leading.send_if_modified(|was| std::mem::replace(was, leading) != leading);
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(renew_every) => {}
            }
        }
        if *self.leading.borrow() {
            self.leading.send_replace(false);
            match self.store.release_lease(LEADER_LEASE, holder).await {
                Ok(()) => info!(holder, "gave up the leader lease"),
                Err(err) => warn!(error = %err, "could not give up the leader lease; it expires by itself"),
            }
        }
    }
}
