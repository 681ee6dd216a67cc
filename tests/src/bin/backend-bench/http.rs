//! The HTTP surface under load: many open progress streams (the backend's CPU at rest, its memory,
//! and how long a change takes to reach every stream, on SQLite and across two PostgreSQL replicas), and a burst of sign-in nonce requests (what it
//! stores, and what it does to other requests' latency).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{eips::BlockNumberOrTag, providers::Provider};
use anyhow::{Context, Result, ensure};
use conference_e2e::{Database, Stack};
use futures::future::join_all;
use tokio::sync::Mutex;

use crate::{
    figures::{self, Figure},
    load::{cpu_seconds, resident_mb},
};

/// The limits a load from one loopback address needs: each stream is a connection of its own.
const ROOMY: [&str; 8] = [
    "--max-connections-per-client",
    "20000",
    "--max-connections",
    "20000",
    "--event-streams-per-client",
    "20000",
    "--event-streams-max",
    "20000",
];

/// Opens `streams` progress streams spread over `agreements` agreements, measures the CPU and memory
/// of the backend that serves them with them open at rest for `rest_secs`, then how long a new block
/// (a change every record shows: the chain's clock) takes to reach every stream, `rounds` times. On
/// PostgreSQL two replicas share the database and the streams are open on the one that does not lead:
/// each block is recorded by the leader's watcher and reaches the streams through the change feed
/// (NOTIFY, then the follower's listener). Nothing else changes meanwhile: the no-op orchestrator, and
/// one probe an hour (a probe changes the record, and would reach every stream).
pub async fn streams(streams: usize, agreements: u64, rest_secs: u64, rounds: usize, database: Database) -> Result<()> {
    let db = match database {
        Database::Sqlite => "sqlite",
        Database::Postgres => "postgres",
    };
    let mut flags = ROOMY.to_vec();
    flags.extend(["--orchestrator", "noop", "--probe-interval-ms", "3600000"]);
    // New heads over WebSocket: the watcher reads a block as soon as it is mined.
    let mut stack = Stack::start_on_with(&format!("bench-streams-{db}"), database, true, &flags).await?;
    let serving = match database {
        Database::Sqlite => 0,
        Database::Postgres => {
            stack.wait_leading(0, Duration::from_secs(60)).await?;
            stack.add_replica().await?
        }
    };
    let pid = stack.replica_pid(serving).context("no backend")?;
    let leader = stack.backend_pid().context("no leader")?;
    let mut ids = Vec::new();
    for _ in 0..agreements {
        ids.push(stack.customer_signs().await?.0);
    }
    for id in &ids {
        stack.wait_status(*id, "active", Duration::from_secs(60)).await?;
    }
    let rss_before = resident_mb(pid)?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    // When each stream last received an event.
    let seen: Arc<Vec<Mutex<Option<Instant>>>> = Arc::new((0..streams).map(|_| Mutex::new(None)).collect());
    let mut tasks = Vec::new();
    let api = stack.api_of(serving);
    for i in 0..streams {
        let url = format!("{api}/api/agreements/{}/events", ids[i % ids.len()]);
        let response = http.get(url).send().await?;
        ensure!(response.status().is_success(), "stream {i}: {}", response.status());
        let seen = Arc::clone(&seen);
        tasks.push(tokio::spawn(async move {
            let mut response = response;
            while let Ok(Some(chunk)) = response.chunk().await {
                if chunk.starts_with(b"event: progress") {
                    *seen[i].lock().await = Some(Instant::now());
                }
            }
        }));
    }
    let opened = Instant::now();
    while join_all(seen.iter().map(|s| async { s.lock().await.is_none() })).await.into_iter().any(|missing| missing) {
        ensure!(opened.elapsed() < Duration::from_secs(60), "not every stream got its first event");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Settled first: the last activations' writes and the streams' first reads are over.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_open = resident_mb(pid)?;
    let (cpu, leader_cpu) = (cpu_seconds(pid)?, cpu_seconds(leader)?);
    tokio::time::sleep(Duration::from_secs(rest_secs)).await;
    let at_rest = (cpu_seconds(pid)? - cpu) / rest_secs as f64 * 100.0;
    let leader_at_rest = (cpu_seconds(leader)? - leader_cpu) / rest_secs as f64 * 100.0;

    // Each block a second after the last: the records show the chain's clock in seconds, and a block
    // mined within the same second as the last would change nothing a stream shows.
    let latest = stack.customer.get_block_by_number(BlockNumberOrTag::Latest).await?.context("no head")?;
    let mut timestamp = latest.header.timestamp;
    let mut reach = Vec::new();
    for _ in 0..rounds {
        timestamp += 1;
        stack.set_next_block_time(timestamp).await?;
        let mined = Instant::now();
        stack.mine().await?;
        loop {
            let times: Vec<Option<Instant>> = join_all(seen.iter().map(|s| async { *s.lock().await })).await;
            if times.iter().all(|t| t.is_some_and(|t| t > mined)) {
                let last = times.iter().flatten().max().copied().unwrap_or(mined);
                reach.push(last.duration_since(mined).as_secs_f64() * 1000.0);
                break;
            }
            ensure!(mined.elapsed() < Duration::from_secs(10), "a new block did not reach every stream in 10 s");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for task in &tasks {
        task.abort();
    }
    drop(tasks);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_closed = resident_mb(pid)?;
    let per_stream_kb = (rss_open - rss_before) * 1024.0 / streams as f64;
    let (p50, p99, max) = (percentile(&reach, 50.0), percentile(&reach, 99.0), percentile(&reach, 100.0));
    let where_open = match database {
        Database::Sqlite => "one backend on SQLite".to_owned(),
        Database::Postgres => {
            format!("PostgreSQL, streams on the replica that does not lead (the leader: {leader_at_rest:.2} % at rest)")
        }
    };
    println!(
        "{streams} progress streams over {agreements} agreements, {where_open}: backend CPU at rest {at_rest:.2} % \
         of a core; memory {rss_before:.1} MB → {rss_open:.1} MB open ({per_stream_kb:.1} kB a stream) → \
         {rss_closed:.1} MB closed; a new block reached every stream in p50 {p50:.0} ms, p99 {p99:.0} ms, max \
         {max:.0} ms ({} rounds: {})",
        reach.len(),
        reach.iter().map(|ms| format!("{ms:.0}")).collect::<Vec<_>>().join(", ")
    );
    let id = |name: &str| format!("http.streams.{db}.{streams}.{name}");
    figures::record(
        "backend",
        vec![
            Figure {
                id: id("cpu"),
                group: "HTTP",
                label: format!("{streams} open progress streams at rest ({db}): backend CPU"),
                unit: "%",
                samples: vec![at_rest],
                target: figures::at_most(5.0),
                note: Some(format!(
                    "{agreements} agreements, {rest_secs} s at rest (/proc/<pid>/stat), one loopback client; {where_open}"
                )),
            },
            Figure {
                id: id("memory"),
                group: "HTTP",
                label: format!("{streams} open progress streams ({db}): backend memory per stream"),
                unit: "kB",
                samples: vec![per_stream_kb],
                target: None,
                note: Some(format!(
                    "resident {rss_before:.1} MB before, {rss_open:.1} MB open, {rss_closed:.1} MB after closing"
                )),
            },
            Figure {
                id: id("reach"),
                group: "HTTP",
                label: format!("a new block to every one of {streams} streams ({db})"),
                unit: "ms",
                samples: reach,
                target: figures::at_most(100.0),
                note: Some(format!(
                    "from the mining call (each block a second after the last) to the last stream's event, new heads \
                     over WebSocket; p50 {p50:.0} ms, \
                     p99 {p99:.0} ms, max {max:.0} ms; {where_open}"
                )),
            },
        ],
    )
}

/// The `p`th percentile of `samples` (nearest rank; 100: the largest), 0 for none.
fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or(0.0)
}

/// Sends `requests` sign-in nonce requests, `concurrency` at a time, from one client, and measures
/// the answers, the nonces stored, and `GET /api/offers`' latency before and during the burst.
pub async fn signin_burst(requests: usize, concurrency: usize) -> Result<()> {
    let stack = Stack::start_with("bench-signin", false, &ROOMY).await?;
    let http = reqwest::Client::new();
    let offers = format!("{}/api/offers", stack.api);
    let probe = |http: reqwest::Client, offers: String, n: usize| async move {
        let mut ms = Vec::new();
        for _ in 0..n {
            let started = Instant::now();
            http.get(&offers).send().await?.error_for_status()?;
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::Ok(ms)
    };
    let quiet = probe(http.clone(), offers.clone(), 50).await?;
    let nonce = format!("{}/api/siwe/nonce", stack.api);
    let started = Instant::now();
    let during = tokio::spawn(probe(http.clone(), offers.clone(), 50));
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for wave in (0..requests).collect::<Vec<_>>().chunks(concurrency) {
        let answers = join_all(wave.iter().map(|_| http.post(&nonce).send())).await;
        for answer in answers {
            *statuses.entry(answer?.status().as_u16()).or_default() += 1;
        }
    }
    let burst_secs = started.elapsed().as_secs_f64();
    let during = during.await??;
    let stored = statuses.get(&200).copied().unwrap_or(0);
    let p50 = |ms: &[f64]| {
        let mut ms = ms.to_vec();
        ms.sort_by(f64::total_cmp);
        ms[ms.len() / 2]
    };
    println!(
        "{requests} nonce requests, {concurrency} at a time, in {burst_secs:.1} s: answers {statuses:?}; \
         nonces stored {stored}; GET /api/offers p50 {:.1} ms quiet, {:.1} ms during the burst",
        p50(&quiet),
        p50(&during)
    );
    let id = |name: &str| format!("http.signin-burst.{name}");
    figures::record(
        "backend",
        vec![
            Figure {
                id: id("stored"),
                group: "HTTP",
                label: format!("{requests} nonce requests from one client: nonces stored"),
                unit: "count",
                samples: vec![stored as f64],
                target: None,
                note: Some(format!("answers by status {statuses:?}")),
            },
            Figure {
                id: id("offers-p50"),
                group: "HTTP",
                label: "GET /api/offers during the burst, p50".into(),
                unit: "ms",
                samples: during,
                target: None,
                note: Some(format!("quiet p50 {:.1} ms", p50(&quiet))),
            },
        ],
    )
}
