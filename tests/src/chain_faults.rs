//! Chain faults for the end-to-end tests: reorganisations (`anvil_reorg`), a base fee that leaves a
//! transaction stuck, and a backend that talks to anvil over WebSocket.
//!
//! `anvil_reorg [depth, [[tx, block offset], ...]]` replaces the newest `depth` blocks with as many
//! new ones holding only the listed transactions; the transactions of the replaced blocks are dropped,
//! not put back into anvil's mempool (their receipts and the transactions themselves are gone, and the
//! senders' nonces go back).

use std::time::{Duration, Instant};

use alloy::providers::Provider;
use anyhow::{Result, bail};
use serde_json::Value;

use crate::{Database, Stack};

impl Stack {
    /// A stack whose backend reads the chain over WebSocket (`websocket`) or HTTP, with `flags` added
    /// to its command line.
    pub async fn start_with(name: &str, websocket: bool, flags: &[&str]) -> Result<Self> {
        Self::start_on_with(name, Database::Sqlite, websocket, flags).await
    }

    /// [`Stack::start_with`] on `database`; replicas added later take the same flags.
    pub async fn start_on_with(name: &str, database: Database, websocket: bool, flags: &[&str]) -> Result<Self> {
        let mut stack = Self::start_on(name, database).await?;
        stack.kill_backend()?;
        if websocket {
            stack.backend_rpc_url = Some(stack.devnet.rpc_url().replacen("http://", "ws://", 1));
        }
        stack.backend_args = flags.iter().map(|flag| flag.to_string()).collect();
        stack.start_backend().await?;
        Ok(stack)
    }

    pub async fn head(&self) -> Result<u64> {
        Ok(self.customer.get_block_number().await?)
    }

    /// Replaces the newest `depth` blocks with as many empty ones (their transactions are dropped).
    pub async fn reorg(&self, depth: u64) -> Result<()> {
        self.customer.raw_request::<_, Value>("anvil_reorg".into(), (depth, Vec::<Value>::new())).await?;
        Ok(())
    }

    /// The base fee of the next block, in wei per gas.
    pub async fn set_next_base_fee(&self, wei: u128) -> Result<()> {
        let fee = format!("{wei:#x}");
        self.customer.raw_request::<_, Value>("anvil_setNextBlockBaseFeePerGas".into(), (fee,)).await?;
        Ok(())
    }

    /// The operator's mined transactions (`pending` false) or with those in anvil's mempool.
    pub async fn operator_nonce(&self, pending: bool) -> Result<u64> {
        let count = self.customer.get_transaction_count(self.devnet.operator.address());
        Ok(if pending { count.pending().await? } else { count.latest().await? })
    }

    /// Waits until the API no longer knows agreement `id`.
    pub async fn wait_gone(&self, id: u64, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.agreement(id).await?.is_none() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("agreement {id} is still in the API after {timeout:?}; log:\n{}", self.log_tail())
    }
}

/// The outbox row of `call` in an agreement record of the API.
pub fn outbox_call<'a>(record: &'a Value, call: &str) -> Option<&'a Value> {
    record["outbox"].as_array()?.iter().find(|item| item["call"] == call)
}
