//! `conference-backend monitor`: an independent monitor's process. Its own node, its own database, its
//! own key: a [`Watcher`] keeps its view of the chain, the [`Attestor`] probes its offers' conferences and
//! signs their reports, and a small HTTP API serves what it reported (`GET /api/reports`: each report
//! with the records its evidence commits to) and `/healthz`.

use std::{future::Future, sync::Arc, time::Duration};

use alloy::signers::local::PrivateKeySigner;
use axum::{Json, Router, extract::State, routing::get};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::{
    Error, Result,
    attestor::Attestor,
    chain::Chain,
    config::MonitorArgs,
    domain::availability::Report,
    metrics::Metrics,
    store::Store,
    wake::Changed,
    watcher::{Watcher, WatcherConfig},
};

/// Runs the monitor on `listener` until `shutdown` resolves.
pub async fn run(
    args: MonitorArgs,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let signer: PrivateKeySigner = args
        .monitor_key
        .0
        .trim()
        .parse()
        .map_err(|_| Error::Config("MONITOR_KEY is not a valid private key (64 hex digits)".into()))?;
    let store = Store::open(&args.database_url).await?;
    let chain = Chain::connect(&args.rpc_url, args.escrow, signer.clone()).await?;
    let watcher = Watcher {
        chain: chain.clone(),
        store: store.clone(),
        config: WatcherConfig {
            start_block: args.start_block,
            confirmations: 0,
            batch_blocks: 1_000,
            max_reorg_depth: 64,
        },
        notify: Arc::new(Notify::new()),
        changed: Arc::new(Changed::default()),
        rolled_back: Arc::new(Notify::new()),
        metrics: Metrics::new(),
    };
    let attestor =
        Arc::new(Attestor::new(store.clone(), chain.clone(), signer, args.backend_url.clone(), args.probe_interval_ms));
    info!(monitor = %attestor.address(), chain_id = chain.chain_id, escrow = %chain.escrow, backend = %args.backend_url, "independent monitor started");

    let poll = Duration::from_millis(args.poll_interval_ms.max(10));
    let watching = tokio::spawn(async move {
        loop {
            if let Err(err) = watcher.poll().await {
                warn!(task = "watcher", %err, "pass failed; retrying");
            }
            tokio::time::sleep(poll).await;
        }
    });
    let attesting = {
        let attestor = attestor.clone();
        tokio::spawn(async move {
            loop {
                if let Err(err) = attestor.pass().await {
                    warn!(task = "attestor", %err, "pass failed; retrying");
                }
                tokio::time::sleep(attestor.pass_interval()).await;
            }
        })
    };
    let app = Router::new()
        .route("/api/reports", get(reports))
        .route("/healthz", get(|| async { "ok" }))
        .with_state((store, format!("{:#x}", attestor.address())));
    info!(addr = %listener.local_addr()?, "monitor API listening");
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    watching.abort();
    attesting.abort();
    Ok(served?)
}

/// Every report the monitor signed, newest first, with the records its evidence commits to.
async fn reports(State((store, me)): State<(Store, String)>) -> std::result::Result<Json<Vec<Report>>, String> {
    store.reports_by(&me, 1_000).await.map(Json).map_err(|err| err.to_string())
}
