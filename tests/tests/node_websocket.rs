//! The backend's WebSocket to the node (backend/src/chain/ws.rs), on a real anvil: requests are
//! answered, new heads arrive, and the same provider answers again once the node is back on its port
//! after a restart (alloy's pubsub reconnects when the connection reports itself lost).

use std::time::{Duration, Instant};

use alloy::{
    node_bindings::Anvil,
    providers::{Provider, ProviderBuilder},
};
use anyhow::{Context, Result, ensure};
use conference_backend::chain::ws::QuickAckWs;
use futures::StreamExt;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn requests_and_new_heads_go_over_it_and_it_comes_back_after_a_node_restart() -> Result<()> {
    let bin = conference_e2e::repo_root().join("anvil/node_modules/.bin/anvil");
    let anvil = Anvil::at(&bin).try_spawn()?;
    let port = anvil.port();
    let ws = QuickAckWs { url: format!("ws://127.0.0.1:{port}") };
    let provider = ProviderBuilder::new().disable_recommended_fillers().connect_pubsub_with(ws).await?;
    assert_eq!(provider.get_block_number().await?, 0);
    let mut heads = provider.subscribe_blocks().await?.into_stream();
    for expected in 1..=3 {
        provider.raw_request::<_, serde_json::Value>("evm_mine".into(), ()).await?;
        let head = tokio::time::timeout(WAIT, heads.next()).await?.context("the subscription ended")?;
        assert_eq!(head.number, expected, "each new head, in order");
    }
    assert_eq!(provider.get_block_number().await?, 3);

    // The node goes away and a fresh one (block 0) comes back on the same port.
    drop(anvil);
    let _anvil = Anvil::at(&bin).port(port).try_spawn()?;
    let started = Instant::now();
    loop {
        match provider.get_block_number().await {
            Ok(number) => {
                assert_eq!(number, 0, "the fresh node's chain");
                break;
            }
            Err(err) => ensure!(started.elapsed() < WAIT, "no answer after the node came back: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
