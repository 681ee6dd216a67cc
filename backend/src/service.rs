//! Wires the parts together: store, chain, orchestrator, and the four loops (watcher, reconciler,
//! settler, monitor) behind the HTTP API. Follow one agreement: `watcher` records the signature →
//! `reconciler` deploys and queues the activation → `settler` sends it → … → the settlement.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::{
    net::TcpListener,
    sync::{Notify, watch},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

use crate::{
    Result,
    chain::Chain,
    config::{OrchestratorKind, ServeArgs},
    health::Health,
    http::{
        self,
        context::ApiContext,
        limits::{Guards, Limits},
        progress::ProgressFeed,
        public::PublicConfig,
        siwe::SignIn,
    },
    lease::{Lease, LeaseConfig},
    metrics::Metrics,
    monitor::Monitor,
    orchestrator::{
        Orchestrator,
        jitsi_pod::Owner,
        kubernetes::KubernetesOrchestrator,
        local::{self, LocalOrchestrator},
        noop::NoopOrchestrator,
    },
    reconciler::{FULL_PASS_EVERY, Reconciler, Windows},
    settler::{Settler, SettlerConfig},
    store::{self, Store},
    tokens::JoinTokens,
    wake::{self, Changed},
    watcher::{self, Watcher, WatcherConfig},
};

const SETTLER_INTERVAL: Duration = Duration::from_millis(500);
const ORPHAN_INTERVAL: Duration = Duration::from_secs(30);
const UPKEEP_INTERVAL: Duration = Duration::from_secs(2);

/// Runs the service on `listener` until `shutdown` resolves. Every replica serves the API; the loops
/// run only on the replica that holds the leader lease ([`crate::lease`]). On shutdown the API stops
/// taking requests, the loops finish the step they are in, and only then is the lease given up.
pub async fn serve(
    args: ServeArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let service = &args.service;
    // kube and alloy both speak TLS through rustls, which needs one crypto provider for the process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // The key first: a missing or wrong key is a configuration error, found before anything is opened.
    let signer = args.operator.signer()?;
    let clusters_file = service.clusters_file()?;
    private_dir(&service.data_dir)?;
    let public_rpc = service.public_rpc_url()?;
    let limits = Limits::from_args(&service.http)?;
    let store = Store::open(&service.database_url()).await?;
    let chain = Chain::connect(&args.rpc_url, args.escrow, signer).await?;
    let chain = if service.poll_only { chain.polled() } else { chain };
    let metrics = Metrics::new();
    let activation_window = chain.activation_window().await?;
    info!(chain_id = chain.chain_id, escrow = %chain.escrow, operator = %chain.operator_address, activation_window, "connected");

    let upkeep = Arc::new(Notify::new());
    let rooms_dir = service.data_dir.join("rooms");
    let orchestrator = Arc::new(match clusters_file {
        None if service.orchestrator == OrchestratorKind::Noop => {
            Orchestrator::Noop(NoopOrchestrator::new(service.region))
        }
        None => Orchestrator::Local(LocalOrchestrator::new(local::LocalSettings::from_args(service))?),
        Some(file) => {
            let owner = Owner { chain_id: chain.chain_id, contract: format!("{:#x}", chain.escrow) };
            let app_id = service.jitsi.jitsi_app_id.clone();
            Orchestrator::Kubernetes(Box::new(
                KubernetesOrchestrator::connect(file, owner, app_id, upkeep.clone()).await?,
            ))
        }
    });
    let events = Arc::new(Notify::new());
    let outbox = Arc::new(Notify::new());
    // New heads (over WebSocket) wake the watcher; a fork it rolled back wakes the orphan collector.
    let (new_heads, rolled_back) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let changed = Arc::new(Changed::default());
    let loops = Arc::new(Loops {
        watcher: Arc::new(Watcher {
            chain: chain.clone(),
            store: store.clone(),
            config: WatcherConfig {
                start_block: args.start_block,
                confirmations: service.confirmations,
                batch_blocks: service.batch_blocks.max(1),
                max_reorg_depth: service.max_reorg_depth,
            },
            notify: events.clone(),
            changed: changed.clone(),
            rolled_back: rolled_back.clone(),
            metrics: metrics.clone(),
        }),
        reconciler: Arc::new(Reconciler::new(
            chain.clone(),
            store.clone(),
            orchestrator.clone(),
            Windows { activation_window, probe_interval_ms: service.probe_interval_ms.max(10) },
            outbox.clone(),
            metrics.clone(),
            changed,
        )),
        settler: Arc::new(Settler::new(
            chain.clone(),
            store.clone(),
            SettlerConfig {
                confirmations: service.confirmations,
                fee_bump_after: Duration::from_secs(service.fee_bump_after_secs),
                batch_size: service.operator_batch_size as usize,
                in_flight: service.operator_in_flight as usize,
            },
            metrics.clone(),
        )),
        monitor: Arc::new(Monitor::new(store.clone(), orchestrator, metrics.clone(), service.probe_interval_ms)),
        chain: chain.clone(),
        events,
        outbox,
        new_heads,
        rolled_back,
        upkeep,
        poll: service.poll_interval(),
    });

    let lease = Lease::new(store.clone(), LeaseConfig::from_args(service));
    let leading = lease.subscribe();
    let (stop_loops, stop_lease) = (CancellationToken::new(), CancellationToken::new());
    let lease = tokio::spawn(lease.run(stop_lease.clone()));
    let leader = tokio::spawn(lead(loops, leading.clone(), stop_loops.clone()));

    // Readiness asks the node over HTTP; a node serving WebSocket on a port serves HTTP there too (anvil, geth).
    let node_http = match args.rpc_url.split_once("://") {
        Some(("ws", rest)) => format!("http://{rest}"),
        Some(("wss", rest)) => format!("https://{rest}"),
        _ => args.rpc_url.clone(),
    };
    let health = Health::new(&node_http, service.ready_max_lag_blocks, service.confirmations, leading.clone())?;
    // What the web app reads once: the contracts beside the escrow, and its currencies as they are now.
    let deployed = chain.deployed_with().await?;
    let tokens = chain.tokens().await?;
    // The port is known only now: `--http 127.0.0.1:0` lets the kernel choose.
    let public_url = match &service.public_url {
        Some(url) => url.clone(),
        None => format!("http://{}", listener.local_addr()?),
    };
    let signin = SignIn::new(&public_url, chain.chain_id)?;
    info!(public_url, "sign-in messages must name this URL");
    let public = PublicConfig {
        orchestrator: service.orchestrator,
        public_url,
        explorer: service.explorer()?,
        probe_interval_ms: service.probe_interval_ms.max(10),
        ..PublicConfig::new(chain.chain_id, public_rpc, chain.escrow.to_string()).with_deployment(
            deployed,
            args.start_block,
            tokens,
        )
    };
    // Local Janus servers check tokens signed under secrets derived from the conferences' folder's
    // join secret; Jitsi Meet with JITSI_APP_SECRET.
    let join_tokens = match clusters_file {
        None => JoinTokens::local(&local::join_secret(&rooms_dir)?)?,
        Some(_) => JoinTokens::from_args(&service.jitsi)?,
    };
    let guards = Guards::new(limits.clone());
    let progress = ProgressFeed::new(store.clone());
    let feed = tokio::spawn(Arc::clone(&progress).run());
    let purge = tokio::spawn(purge_signins(store.clone(), Arc::clone(&guards)));
    let app = http::router(ApiContext {
        store,
        public,
        metrics,
        health,
        join_tokens,
        signin,
        guards,
        progress,
        chain: Some(chain.clone()),
    });
    info!(addr = %listener.local_addr()?, "HTTP API listening");
    let served = http::server::serve(listener, app, &limits, shutdown).await;
    feed.abort();
    purge.abort();
    // Every step is recorded before and after it is taken, and each loop finishes the one it is in.
    stop_loops.cancel();
    let _ = leader.await;
    stop_lease.cancel();
    let _ = lease.await;
    info!("stopped");
    Ok(served?)
}

/// How often expired sign-in nonces and sessions are deleted, and idle clients' sign-in buckets forgotten.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// Deletes expired sign-in rows every [`PURGE_INTERVAL`] (every replica may: it is idempotent).
async fn purge_signins(store: Store, guards: Arc<Guards>) {
    let mut every = tokio::time::interval(PURGE_INTERVAL);
    loop {
        every.tick().await;
        match store.purge_expired_signins(store::now_wall() as u64).await {
            Ok(0) => {}
            Ok(purged) => info!(purged, "expired sign-in nonces and sessions deleted"),
            Err(err) => warn!(error = %err, kind = err.label(), "purging expired sign-ins failed; trying again later"),
        }
        guards.forget_idle_clients();
    }
}

/// Creates the data directory readable by this user alone (it holds the database, with participants'
/// addresses, and the rooms' secret), or makes an existing one so.
fn private_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode != 0o700 {
        warn!(dir = %dir.display(), mode = format!("{mode:o}"), "the data directory was readable by others: now 0700");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The loops that act, and what they need to run.
struct Loops {
    watcher: Arc<Watcher>,
    reconciler: Arc<Reconciler>,
    settler: Arc<Settler>,
    monitor: Arc<Monitor>,
    /// Woken when the watcher recorded events.
    events: Arc<Notify>,
    /// Woken when the reconciler queued an operator call.
    outbox: Arc<Notify>,
    /// Follows new heads (over WebSocket) for the watcher.
    chain: Chain,
    /// Woken by each new head (WebSocket only; over HTTP the watcher polls every `poll`).
    new_heads: Arc<Notify>,
    /// Woken when the watcher rolled records back to a fork: the orphan collector runs at once.
    rolled_back: Arc<Notify>,
    /// Woken when the orchestrator wants upkeep at once (a warm pod was handed over).
    upkeep: Arc<Notify>,
    poll: Duration,
}

/// Runs the loops whenever this replica leads, and stops them (each after its current step) when it
/// stops leading or `stop` is cancelled.
async fn lead(loops: Arc<Loops>, mut leading: watch::Receiver<bool>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            led = leading.wait_for(|leading| *leading) => if led.is_err() { return },
        }
        let term = stop.child_token();
        let tasks = TaskTracker::new();
        loops.start(&tasks, &term);
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = leading.wait_for(|leading| !*leading) => {}
        }
        term.cancel();
        tasks.close();
        tasks.wait().await;
        loops.reconciler.drain().await;
        info!("loops stopped");
    }
}

impl Loops {
    fn start(self: &Arc<Self>, tasks: &TaskTracker, stop: &CancellationToken) {
        let never = Arc::new(Notify::new());
        let (chain, new_heads) = (self.chain.clone(), self.new_heads.clone());
        let following = stop.clone();
        tasks.spawn(async move {
            tokio::select! {
                _ = following.cancelled() => {}
                _ = watcher::follow_new_heads(chain, new_heads) => {}
            }
        });
        // What other replicas' APIs changed wakes the reconciler at once, and a new order the settler,
        // not at their next timed pass.
        let (feed, this) = (self.reconciler.store.subscribe(), self.clone());
        let following = stop.clone();
        tasks.spawn(async move {
            let wake =
                wake::Wake { changed: &this.reconciler.changed, reconciler: &this.events, settler: &this.outbox };
            tokio::select! {
                _ = following.cancelled() => {}
                _ = wake::follow_the_feed(feed, wake) => {}
            }
        });
        let this = self.clone();
        tasks.spawn(repeat("watcher", self.poll, self.new_heads.clone(), stop.clone(), move || {
            let watcher = this.watcher.clone();
            async move { watcher.poll().await.map(drop) }
        }));
        let this = self.clone();
        tasks.spawn(repeat("reconciler", FULL_PASS_EVERY, self.events.clone(), stop.clone(), move || {
            let reconciler = this.reconciler.clone();
            async move { reconciler.pass().await }
        }));
        let this = self.clone();
        tasks.spawn(repeat("settler", SETTLER_INTERVAL, self.outbox.clone(), stop.clone(), move || {
            let settler = this.settler.clone();
            async move { settler.pass().await }
        }));
        let this = self.clone();
        tasks.spawn(repeat("monitor", self.monitor.pass_interval(), never.clone(), stop.clone(), move || {
            let monitor = this.monitor.clone();
            async move { monitor.pass().await }
        }));
        // Conferences left over from a crash, a lost lease or another chain: at once, then periodically,
        // and at once after a fork was rolled back (an agreement signed on the abandoned branch must
        // lose its conference).
        let this = self.clone();
        tasks.spawn(repeat("orphan collector", ORPHAN_INTERVAL, self.rolled_back.clone(), stop.clone(), move || {
            let reconciler = this.reconciler.clone();
            async move { reconciler.collect_orphans().await }
        }));
        // Warm pools refilled and cluster load counted, by the leader only (one pool, not one per replica).
        let this = self.clone();
        tasks.spawn(repeat("orchestrator upkeep", UPKEEP_INTERVAL, self.upkeep.clone(), stop.clone(), move || {
            let orchestrator = this.reconciler.orchestrator.clone();
            async move { orchestrator.maintain().await }
        }));
    }
}

/// Runs `pass` whenever `wake` fires, and at least every `interval`, until `stop` is cancelled; a pass
/// under way is finished first. A failed pass is logged and retried on the next: every step is
/// level-triggered, so a retry is always safe.
async fn repeat<F, Fut>(name: &'static str, interval: Duration, wake: Arc<Notify>, stop: CancellationToken, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    while !stop.is_cancelled() {
        if let Err(err) = pass().await {
            warn!(task = name, error = %err, kind = err.label(), "pass failed; retrying");
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = wake.notified() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_data_directory_is_readable_by_its_user_alone() {
        let base = std::env::temp_dir().join(format!("conference-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let fresh = base.join("fresh");
        private_dir(&fresh).unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o700);
        let open = base.join("open");
        std::fs::create_dir_all(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&open).unwrap();
        assert_eq!(std::fs::metadata(&open).unwrap().permissions().mode() & 0o777, 0o700, "tightened");
        let _ = std::fs::remove_dir_all(&base);
    }
}
