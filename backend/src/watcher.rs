//! The chain watcher: reads the escrow's logs from the stored cursor up to head minus the
//! confirmation depth, in bounded batches, and records their effects together with the new cursor.
//!
//! Forks. The watcher keeps the hashes of the blocks it processed (each batch's last block and every
//! block with an event, `chain_blocks`, pruned beyond `--max-reorg-depth`) and every event it applied
//! (`chain_events`: position, block hash, the decoded event as JSON). Before each batch it checks that
//! the first new block's parent is the stored hash of the block before it; on a mismatch (or when the
//! last stored block is no longer the chain's) it walks the stored hashes back against the chain to
//! the newest one still canonical, and rolls the store back to the block after it in one database
//! transaction with the cursor: the events from the fork block on are deleted, and every agreement
//! and terms version they touched is rebuilt by replaying its remaining events from its signature (an
//! agreement whose signature was on the abandoned branch is deleted, with its probes, stops and
//! calls). Replay rather than undo: each event's effect is written once, in `apply_event`, so a rebuild
//! is exactly what reading the canonical chain from scratch would give, and no inverse of each effect
//! has to be written and kept right. The reconciler's conference columns are left as they are; the
//! reconciler then compares them with the rebuilt chain state like after any other event, and the
//! operator calls of rebuilt agreements are reopened so that the settler checks them against the chain
//! again (see [`crate::settler`]).
//!
//! Wake-ups. Over `ws://`/`wss://`, or a WebSocket beside an `http(s)://` node that offers one, the
//! watcher also follows new heads ([`follow_new_heads`]) and reads
//! as soon as a block arrives; it still reads logs by range from the cursor, so a dropped subscription
//! loses nothing (it is resubscribed, and the poll interval remains as a fallback).

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::{
    Error, Result,
    chain::Chain,
    domain::event::ChainEvent,
    store::{Store, events::RecordedEvent},
    wake::Changed,
};

#[derive(Debug, Clone)]
pub struct WatcherConfig {
    /// The block to start from when the store has no cursor (the contract's deployment block).
    pub start_block: u64,
    /// Blocks below head that are read; 0 reads up to head.
    pub confirmations: u64,
    /// The most blocks read in one `eth_getLogs`.
    pub batch_blocks: u64,
    /// How many recent block hashes are kept to find a fork point: the deepest reorg handled.
    pub max_reorg_depth: u64,
}

pub struct Watcher {
    pub chain: Chain,
    pub store: Store,
    pub config: WatcherConfig,
    /// Woken whenever new events were recorded (or records were rolled back).
    pub notify: Arc<Notify>,
    /// The agreements those events changed, for the reconciler to look at first.
    pub changed: Arc<Changed>,
    pub metrics: crate::metrics::Metrics,
    /// Woken when a fork rolled records back: conferences of agreements that are gone must go at once.
    pub rolled_back: Arc<Notify>,
}

impl Watcher {
    /// Reads what is new and records it, rolling back first if the chain forked under the stored
    /// records. Returns the number of events recorded.
    pub async fn poll(&self) -> Result<usize> {
        let (head, head_timestamp) = self.chain.head().await?;
        let mut recorded = 0;
        // The last stored block may have been replaced even when no new block follows it yet.
        if let Some((number, hash)) = self.store.last_block().await?
            && self.chain.block_hash(number).await?.map(|h| h.to_string()) != Some(hash)
        {
            self.roll_back().await?;
        }
        let Some(safe_head) = head.checked_sub(self.config.confirmations) else { return Ok(0) };
        let mut next = self.store.cursor().await?.unwrap_or(self.config.start_block);
        self.metrics.watcher_lag(head, (safe_head + 1).saturating_sub(next));
        let mut rolled_back = false;
        while next <= safe_head {
            let to = safe_head.min(next + self.config.batch_blocks - 1);
            // `to` is read before and after the logs: if it changed, the chain moved under the read.
            let Some(last) = self.chain.block(to).await? else { return Ok(recorded) };
            let first = if next == to { last.clone() } else { self.chain.block(next).await?.unwrap_or_default() };
            if let Some(stored) = self.store.block_hash(next.wrapping_sub(1)).await?
                && first.parent_hash.to_string() != stored
            {
                warn!(block = next, "the next block does not follow the last one read: the chain forked");
                if rolled_back {
                    // Still not following after a rollback: the chain is moving; read on the next poll.
                    return Ok(recorded);
                }
                self.roll_back().await?;
                rolled_back = true;
                next = self.store.cursor().await?.unwrap_or(self.config.start_block);
                continue;
            }
            let mut logs = self.chain.logs(next, to).await?;
            if self.chain.block_hash(to).await? != Some(last.hash) {
                debug!(to, "the chain moved while reading; reading again on the next poll");
                return Ok(recorded);
            }
            let mut events = Vec::with_capacity(logs.len());
            let mut blocks = vec![(to, last.hash.to_string())];
            // The events carry what the store needs; only a node that leaves out the logs' block times costs
            // a header read, once per block.
            self.chain.fill_block_timestamps(&mut logs).await?;
            for log in &logs {
                if let Some(event) = Chain::event_of(log)? {
                    let block = log.block_number.unwrap_or_default();
                    let block_hash = log.block_hash.unwrap_or_default().to_string();
                    if blocks.last().is_none_or(|(n, _)| *n != block) {
                        blocks.push((block, block_hash.clone()));
                    }
                    events.push(RecordedEvent {
                        block,
                        log_index: log.log_index.unwrap_or_default(),
                        block_hash,
                        event,
                    });
                }
            }
            let keep_from = (to + 1).saturating_sub(self.config.max_reorg_depth.max(1));
            self.store.apply_block_events(&events, &blocks, to + 1, head_timestamp, keep_from).await?;
            self.metrics.events_processed(events.iter().map(|e| &e.event));
            self.metrics.watcher_lag(head, safe_head - to);
            if events.iter().any(|e| matches!(e.event, ChainEvent::Signed { .. })) {
                crate::fault::crash_point("stored");
            }
            if !events.is_empty() {
                info!(from = next, to, events = events.len(), "recorded chain events");
                for id in events.iter().filter_map(|e| e.event.agreement()) {
                    self.changed.mark(id);
                }
                // A stored permit: a reconciler busy with a pass runs again right after it.
                self.notify.notify_one();
            }
            recorded += events.len();
            next = to + 1;
        }
        Ok(recorded)
    }

    /// Finds the newest stored block that is still the chain's and rolls the records back to just
    /// after it.
    async fn roll_back(&self) -> Result<()> {
        let stored = self.store.recent_blocks().await?;
        let chain = &self.chain;
        let fork_block =
            fork_block(&stored, |number| async move { Ok(chain.block_hash(number).await?.map(|h| h.to_string())) })
                .await?;
        let Some(fork_block) = fork_block else {
            return Err(Error::Chain(
                format!(
                    "the chain forked below the {} blocks kept (--max-reorg-depth {}): the store needs a rebuild",
                    stored.len(),
                    self.config.max_reorg_depth
                )
                .into(),
            ));
        };
        let report = self.store.roll_back_to(fork_block).await?;
        warn!(
            fork_block,
            removed_agreements = ?report.removed_agreements,
            rebuilt_agreements = ?report.rebuilt_agreements,
            reopened_calls = report.reopened_calls,
            "chain reorganisation: records rolled back to the fork block"
        );
        self.changed.mark_all();
        self.notify.notify_one();
        self.rolled_back.notify_one();
        Ok(())
    }
}

/// The fork block: the one after the newest of the `stored` blocks (newest first) whose hash is still
/// the `canonical` one at its height, or `None` if none is (the fork is deeper than what is kept).
pub async fn fork_block<F, Fut>(stored: &[(u64, String)], mut canonical: F) -> Result<Option<u64>>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>>>,
{
    for (number, hash) in stored {
        if canonical(*number).await?.as_ref() == Some(hash) {
            return Ok(Some(number + 1));
        }
    }
    Ok(None)
}

/// Over a pubsub connection (WebSocket), wakes `wake` at every new head, resubscribing whenever the
/// subscription ends; over HTTP returns at once (the watcher polls).
pub async fn follow_new_heads(chain: Chain, wake: Arc<Notify>) {
    if !chain.follows_new_heads() {
        return;
    }
    // Beside an HTTP node that offers no WebSocket, the watcher polls: asked again ever less often.
    let mut retry = Duration::from_secs(1);
    loop {
        match chain.new_heads().await {
            Ok(mut heads) => {
                info!(beside_http = chain.new_heads_beside(), "following new heads");
                retry = Duration::from_secs(1);
                while let Some(number) = heads.next().await {
                    debug!(block = number, "new head");
                    wake.notify_one();
                }
                warn!("the new-heads subscription ended; subscribing again");
            }
            Err(err) if retry == Duration::from_secs(1) => {
                warn!(%err, beside_http = chain.new_heads_beside(), "could not subscribe to new heads; polling meanwhile")
            }
            Err(err) => debug!(%err, "could not subscribe to new heads; polling meanwhile"),
        }
        // Whatever was missed meanwhile is read by range from the cursor.
        wake.notify_one();
        tokio::time::sleep(retry).await;
        if chain.new_heads_beside().is_some() {
            retry = (retry * 2).min(Duration::from_secs(60));
        }
    }
}
