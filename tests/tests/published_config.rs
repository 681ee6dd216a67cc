//! What the service publishes of its own configuration: a node URL with credentials (as hosted nodes
//! hand them out) is used, never shown to visitors nor written to the log; the web app gets the public
//! URL the operator names, or none; the data directory is the service user's alone.

use std::{os::unix::fs::PermissionsExt, time::Duration};

use anyhow::{Context, Result, ensure};
use conference_e2e::Stack;
use serde_json::Value;

const PASSWORD: &str = "hunter2-operator";
const API_KEY: &str = "k3y-s3cret-0123";

#[tokio::test(flavor = "multi_thread")]
async fn the_backends_own_node_url_is_never_published_nor_logged() -> Result<()> {
    let mut stack = Stack::start("published-config").await?;
    let anvil = stack.devnet.rpc_url();
    let secret_url =
        format!("{}/?apikey={API_KEY}", anvil.replacen("http://", &format!("http://operator:{PASSWORD}@"), 1));
    stack.restart_with(Some(secret_url.clone()), &[]).await?;

    let http = reqwest::Client::new();
    let response = http.get(format!("{}/api/config", stack.api)).send().await?;
    let policy = response.headers()["content-security-policy"].to_str()?.to_owned();
    let text = response.text().await?;
    let config: Value = serde_json::from_str(&text)?;
    ensure!(config["rpcUrl"].is_null(), "no public RPC URL was given, so none is published: {}", config["rpcUrl"]);
    for secret in [PASSWORD, API_KEY] {
        ensure!(!text.contains(secret) && !policy.contains(secret), "{secret} published: {text} / {policy}");
    }
    // The backend works through that URL all the same.
    let ready = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if http.get(format!("{}/readyz", stack.api)).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    ready.await.context("the backend never became ready through its node URL")?;

    // The public URL the operator names, and only it, reaches the page.
    let public = anvil.clone();
    stack.restart_with(Some(secret_url), &["--public-rpc-url", &public]).await?;
    let config: Value = http.get(format!("{}/api/config", stack.api)).send().await?.json().await?;
    ensure!(config["rpcUrl"] == public.as_str(), "published {}", config["rpcUrl"]);

    let log = stack.replica_log(0);
    for secret in [PASSWORD, API_KEY] {
        ensure!(!log.contains(secret), "{secret} in the log");
    }
    let mode = std::fs::metadata(&stack.data_dir)?.permissions().mode() & 0o777;
    ensure!(mode == 0o700, "the data directory is {mode:o}, not 0700");
    Ok(())
}
