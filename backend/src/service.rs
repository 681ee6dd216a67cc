//! Wires the parts together: store, chain, orchestrator, and the four loops (watcher, reconciler,
//! settler, monitor) behind the HTTP API. Follow one agreement: `watcher` records the signature →
//! `reconciler` deploys and queues the activation → `settler` sends it → … → the settlement.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::Notify, task::JoinSet};
use tracing::{info, warn};

use crate::{
    Result,
    api::{self, ApiContext, PublicConfig},
    chain::Chain,
    config::ServeArgs,
    monitor::Monitor,
    orchestrator::{Orchestrator, local::LocalOrchestrator},
    reconciler::Reconciler,
    settler::{Settler, SettlerConfig},
    store::Store,
    watcher::{self, Watcher, WatcherConfig},
};

const RECONCILE_INTERVAL: Duration = Duration::from_millis(500);
const SETTLER_INTERVAL: Duration = Duration::from_millis(500);
const ORPHAN_INTERVAL: Duration = Duration::from_secs(30);

/// Runs the service on `listener` until `shutdown` resolves.
pub async fn serve(
    args: ServeArgs,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let service = &args.service;
    std::fs::create_dir_all(&service.data_dir)?;
    let store = Store::open(&service.database_url()).await?;
    let chain = Chain::connect(&args.rpc_url, args.escrow, &args.operator_key.0).await?;
    let activation_window = chain.activation_window().await?;
    info!(chain_id = chain.chain_id, escrow = %chain.escrow, operator = %chain.operator_address, activation_window, "connected");

    let orchestrator = Arc::new(Orchestrator::Local(LocalOrchestrator::new(
        service.data_dir.join("rooms"),
        std::env::current_exe()?,
    )?));
    let events = Arc::new(Notify::new());
    let outbox = Arc::new(Notify::new());
    // New heads (over WebSocket) wake the watcher; a fork it rolled back wakes the orphan collector.
    let (new_heads, rolled_back) = (Arc::new(Notify::new()), Arc::new(Notify::new()));

    let watcher = Arc::new(Watcher {
        chain: chain.clone(),
        store: store.clone(),
        config: WatcherConfig {
            start_block: args.start_block,
            confirmations: service.confirmations,
            batch_blocks: service.batch_blocks.max(1),
            max_reorg_depth: service.max_reorg_depth,
        },
        notify: events.clone(),
        rolled_back: rolled_back.clone(),
    });
    let reconciler = Arc::new(Reconciler::new(
        chain.clone(),
        store.clone(),
        orchestrator.clone(),
        activation_window,
        service.region,
        outbox.clone(),
    ));
    let settler = Arc::new(Settler::new(
        chain.clone(),
        store.clone(),
        SettlerConfig {
            confirmations: service.confirmations,
            fee_bump_after: Duration::from_secs(service.fee_bump_after_secs),
        },
    ));
    let monitor = Arc::new(Monitor { store: store.clone(), orchestrator: orchestrator.clone() });

    reconciler.collect_orphans().await?;

    let mut tasks = JoinSet::new();
    let poll = service.poll_interval();
    let never = Arc::new(Notify::new());
    tasks.spawn(watcher::follow_new_heads(chain.clone(), new_heads.clone()));
    tasks.spawn(repeat("watcher", poll, new_heads, move || {
        let watcher = watcher.clone();
        async move { watcher.poll().await.map(drop) }
    }));
    let r = reconciler.clone();
    tasks.spawn(repeat("reconciler", RECONCILE_INTERVAL, events, move || {
        let r = r.clone();
        async move { r.pass().await }
    }));
    tasks.spawn(repeat("settler", SETTLER_INTERVAL, outbox, move || {
        let settler = settler.clone();
        async move { settler.pass().await }
    }));
    tasks.spawn(repeat("monitor", service.probe_interval(), never, move || {
        let monitor = monitor.clone();
        async move { monitor.pass().await }
    }));
    tasks.spawn(async move {
        // Orphans were collected once above; from here on, every ORPHAN_INTERVAL and at once after a
        // fork was rolled back (an agreement signed on the abandoned branch must lose its conference).
        tokio::select! {
            _ = tokio::time::sleep(ORPHAN_INTERVAL) => {}
            _ = rolled_back.notified() => {}
        }
        repeat("orphan collector", ORPHAN_INTERVAL, rolled_back.clone(), move || {
            let r = reconciler.clone();
            async move { r.collect_orphans().await }
        })
        .await
    });

    // The page's wallet talks HTTP; a node serving WebSocket on a port serves HTTP there too (anvil, geth).
    let public_rpc = match args.rpc_url.split_once("://") {
        Some(("ws", rest)) => format!("http://{rest}"),
        Some(("wss", rest)) => format!("https://{rest}"),
        _ => args.rpc_url.clone(),
    };
    let public = PublicConfig::new(chain.chain_id, public_rpc, chain.escrow.to_string());
    let app = api::router(ApiContext { store, public });
    info!(addr = %listener.local_addr()?, "HTTP API listening");
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    // Every step is recorded before and after it is taken, so stopping between steps loses nothing.
    tasks.shutdown().await;
    info!("stopped");
    Ok(())
}

/// Runs `pass` whenever `wake` fires, and at least every `interval`. A failed pass is logged and
/// retried on the next: every step is level-triggered, so a retry is always safe.
async fn repeat<F, Fut>(name: &'static str, interval: Duration, wake: Arc<Notify>, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    loop {
        if let Err(err) = pass().await {
            warn!(task = name, error = %err, kind = err.label(), "pass failed; retrying");
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
