//! What an independent monitor costs to run: its CPU and resident memory while it probes a number of
//! running conferences (real Janus servers on the local orchestrator) of an offer that names it, once
//! per slot through each conference's public endpoint, and signs their reports.

use std::time::Duration;

use alloy::primitives::U256;
use anyhow::{Result, ensure};
use conference_e2e::Stack;

use crate::{
    figures::{Figure, record},
    load::{cpu_seconds, resident_mb},
};

const STEP: Duration = Duration::from_secs(120);

pub async fn monitor_cost(conferences: usize, interval_ms: u64, secs: u64) -> Result<()> {
    let stack = Stack::start_with("monitor-cost", false, &["--probe-interval-ms", &interval_ms.to_string()]).await?;
    let terms = stack.devnet.open_monitored_offer(1e11 as u128).await?;
    let deposit = stack.escrow().quote(terms, 0, false, U256::ZERO).call().await?.deposit;
    let mut ids = Vec::new();
    for _ in 0..conferences {
        ids.push(stack.customer_signs_terms(terms, 0, deposit).await?.0);
    }
    // A hundred servers start on a loaded machine: the API may be slow to answer meanwhile.
    let started = std::time::Instant::now();
    for id in &ids {
        while stack.agreement(*id).await.ok().flatten().is_none_or(|a| a["status"] != "active") {
            ensure!(started.elapsed() < STEP * 5, "agreement {id} was not active in time: {}", stack.log_tail());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    eprintln!("  {conferences} conferences running; starting the monitor");
    let monitor = stack.start_monitor(interval_ms).await?;
    let pid = monitor.child.id();
    // Its first pass catches the chain up and signs in: measured after it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = cpu_seconds(pid)?;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let cpu = (cpu_seconds(pid)? - before) / secs as f64 * 100.0;
    let memory = resident_mb(pid)?;
    let probes: serde_json::Value =
        reqwest::get(format!("{}/api/agreements/{}/probes", stack.api, ids[0])).await?.json().await?;
    ensure!(monitor.child.id() == pid, "the monitor restarted");
    let per_100 = 100.0 / conferences as f64;
    println!(
        "independent monitor, {conferences} conferences probed every {interval_ms} ms for {secs} s: {cpu:.1} % of a core \
         ({:.1} % per 100), {memory:.1} MB resident; the operator served {} of its own probes of the first",
        cpu * per_100,
        probes["sessions"][0]["probes"].as_array().map_or(0, Vec::len),
    );
    let note = format!(
        "{conferences} Janus conferences on this machine, a probe each every {interval_ms} ms (join token from the \
         operator's API, then a session, the VideoRoom plugin and its participants through the room's WebSocket API)"
    );
    record(
        "backend",
        vec![
            Figure {
                id: "monitor.cpu_per_100".into(),
                group: "Independent monitor",
                label: "independent monitor's CPU per 100 conferences".into(),
                unit: "%",
                samples: vec![cpu * per_100],
                target: None,
                note: Some(note.clone()),
            },
            Figure {
                id: "monitor.memory".into(),
                group: "Independent monitor",
                label: format!("independent monitor's resident memory at {conferences} conferences"),
                unit: "MB",
                samples: vec![memory],
                target: None,
                note: Some(note),
            },
        ],
    )
}
