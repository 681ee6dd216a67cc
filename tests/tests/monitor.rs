//! Availability the customer need not take on trust (contracts/README.md, "Availability"): an offer
//! that names an independent monitor settles only with the monitor's signed report, whatever the
//! operator measured; with no report the documented rule applies; and a gap in probing counts against
//! the availability exactly, as the evidence committed on-chain shows.

use std::time::Duration;

use alloy::signers::{SignerSync as _, local::PrivateKeySigner};
use alloy::{
    primitives::{B256, U256, keccak256},
    providers::Provider as _,
};
use anyhow::{Context, Result, ensure};
use conference_backend::{dev::devnet, domain::availability::report_digest};
use conference_e2e::{Stack, gas_cost};
use serde_json::Value;

const STEP: Duration = Duration::from_secs(60);

fn wei(record: &Value, key: &str) -> Result<U256> {
    Ok(record[key].as_str().with_context(|| format!("{key} in {record}"))?.parse()?)
}

async fn evidence(stack: &Stack, id: u64) -> Result<Value> {
    Ok(reqwest::get(format!("{}/api/agreements/{id}/probes", stack.api)).await?.json().await?)
}

/// The figure and the commitment of `[from, to)` recomputed here from the records, as the contracts'
/// README documents them: slots of `interval_ms` from `from`, a slot up when it holds a successful
/// record; keccak256(uint32 interval ‖ (uint64 atMs ‖ uint8 ok)…).
fn recompute(from: u64, to: u64, interval_ms: u64, records: &[Value]) -> Result<(u64, u64, u64, B256)> {
    let due = ((to - from) * 1000 / interval_ms).max(1);
    let mut bytes = (interval_ms as u32).to_be_bytes().to_vec();
    let mut up = std::collections::BTreeSet::new();
    for record in records {
        let at = record["atMs"].as_u64().context("atMs")?;
        let ok = record["ok"].as_bool().context("ok")?;
        ensure!(at >= from * 1000 && at < from * 1000 + due * interval_ms, "a record outside the slots: {record}");
        bytes.extend_from_slice(&at.to_be_bytes());
        bytes.push(ok as u8);
        if ok {
            up.insert((at - from * 1000) / interval_ms);
        }
    }
    let ok = up.len() as u64;
    Ok((due, ok, ok * 10_000 / due, keccak256(&bytes)))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_settlement_follows_the_independent_monitor_not_the_operator() -> Result<()> {
    let stack = Stack::start("monitor-follows").await?;
    let terms = stack.devnet.open_monitored_offer(1e11 as u128).await?;
    let monitor = stack.start_monitor(400).await?;
    let deposit = stack.escrow().quote(terms, 0, false, U256::ZERO).call().await?.deposit;
    let (id, _) = stack.customer_signs_terms(terms, 0, deposit).await?;
    stack.wait_status(id, "active", STEP).await?;

    // The conference runs and the operator's probes find it up throughout; the monitor sees it for two
    // seconds, then cannot probe for four (frozen: for the customer, not available).
    tokio::time::sleep(Duration::from_secs(2)).await;
    monitor.freeze(true)?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    monitor.freeze(false)?;
    stack.customer_stops(id).await?;
    let settled = stack.wait_status(id, "settled", STEP).await.with_context(|| monitor.log_tail())?;

    let evidence = evidence(&stack, id).await?;
    let me = format!("{:#x}", stack.devnet.monitor().address());
    assert_eq!(evidence["measuredBy"], me.as_str(), "{evidence}");
    let operator = evidence["sessions"][0]["measurement"]["availabilityBps"].as_u64().context("operator's figure")?;
    let report = &evidence["reports"][0];
    let reported = report["availabilityBps"].as_u64().context("the monitor's report")?;
    println!("operator measured {operator} bps, the monitor {reported} bps");
    assert!(operator >= 7_500, "the operator would have charged: {operator}");
    assert!(reported < 7_500, "the monitor measured the outage: {report}");
    assert_eq!(settled["availabilityBps"].as_u64(), Some(reported), "the settlement follows the monitor");
    assert_eq!(wei(&settled, "charged")?, U256::ZERO);
    assert_eq!(wei(&settled, "refund")?, deposit, "everything back, to the wei");

    // The report's figure and evidence are its records' (recomputed here), and the chain holds the same.
    let records = report["records"].as_array().context("records")?;
    let (from, to) =
        (report["startedAt"].as_u64().context("startedAt")?, report["endedAt"].as_u64().context("endedAt")?);
    let (_, _, bps, commitment) = recompute(from, to, report["intervalMs"].as_u64().context("intervalMs")?, records)?;
    assert_eq!(bps, reported);
    assert_eq!(report["evidence"], commitment.to_string());
    assert_eq!(settled["sessions"][0]["evidence"], commitment.to_string(), "the settlement emitted the commitment");
    // The monitor serves it too.
    let served: Value = reqwest::get(format!("{}/api/reports", monitor.api)).await?.json().await?;
    assert_eq!(served[0]["evidence"], commitment.to_string(), "{served}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_monitor_down_the_whole_time_nobody_settles_until_the_window_then_everything_comes_back() -> Result<()>
{
    let stack = Stack::start("monitor-down").await?;
    let terms = stack.devnet.open_monitored_offer(1e11 as u128).await?;
    let customer = stack.customer_address();
    let before = stack.balance(customer).await?;
    let deposit = stack.escrow().quote(terms, 0, false, U256::ZERO).call().await?.deposit;
    let (id, sign) = stack.customer_signs_terms(terms, 0, deposit).await?;
    stack.wait_status(id, "active", STEP).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stop = stack.customer_stops(id).await?;
    let ended = stack.wait_status(id, "settling", STEP).await?;

    // The operator's own figure cannot settle it: the backend waits for a report that never comes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let waiting = stack.agreement(id).await?.context("record")?;
    assert_eq!(waiting["status"], "settling", "{waiting}");
    assert!(waiting["outbox"].as_array().is_none_or(|calls| calls.iter().all(|c| c["call"] != "settle")), "{waiting}");

    // Reports that must be refused, each with a clear 4xx, and nothing kept.
    let (from, to) = (ended["startedAt"].as_u64().context("startedAt")?, ended["endedAt"].as_u64().context("endedAt")?);
    let path = format!("/api/agreements/{id}/report");
    let empty = conference_backend::domain::availability::commitment(400, &[]);
    let report = |key: &PrivateKeySigner, from: u64, to: u64, bps: u16| -> Result<Value> {
        let digest = report_digest(id, 1, from, to, bps, empty, stack.devnet.anvil.chain_id(), stack.devnet.escrow);
        Ok(serde_json::json!({
            "session": 1, "startedAt": from, "endedAt": to, "availabilityBps": bps,
            "evidence": empty.to_string(), "intervalMs": 400, "records": [],
            "signature": alloy::hex::encode_prefixed(key.sign_hash_sync(&digest)?.as_bytes()),
        }))
    };
    let monitor = stack.devnet.monitor();
    for (body, status, says) in [
        (report(&PrivateKeySigner::random(), from, to, 0)?, 400, "not by the terms' monitor"),
        (report(&monitor, from, to, 10_000)?, 400, "does not add up"),
        (report(&monitor, from, to + 1, 0)?, 409, "with the period"),
    ] {
        let (answer, body) = stack.post(&path, &body).await?;
        assert_eq!(answer, status, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains(says) || (status == 409 && e.contains("session"))),
            "{body}"
        );
    }
    let (status, body) = stack.post("/api/agreements/999/report", &report(&monitor, from, to, 0)?).await?;
    assert_eq!(status, 404, "{body}");
    assert!(evidence(&stack, id).await?["reports"].as_array().is_some_and(Vec::is_empty), "nothing kept");

    // After the settlement window, anyone settles it: no report is no availability.
    let ended_at = ended["endedAt"].as_u64().context("endedAt")?;
    stack.set_next_block_time(ended_at + devnet::SETTLEMENT_WINDOW + 1).await?;
    let overdue = stack.escrow().settleOverdue(U256::from(id)).send().await?.get_receipt().await?;
    ensure!(overdue.status(), "settleOverdue reverted");
    let settled = stack.wait_status(id, "settled", STEP).await?;
    assert_eq!(settled["availabilityBps"], 0);
    assert_eq!(wei(&settled, "charged")?, U256::ZERO);
    assert_eq!(wei(&settled, "refund")?, deposit);
    let gas = gas_cost(&sign) + gas_cost(&stop) + gas_cost(&overdue);
    assert_eq!(before - stack.balance(customer).await?, gas, "the customer paid gas only, to the wei");
    assert_eq!(settled["sessions"][0]["evidence"], B256::ZERO.to_string(), "no evidence");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gap_in_the_operators_probing_counts_against_the_availability_exactly() -> Result<()> {
    let mut stack = Stack::start("probe-gap").await?;
    let (id, _) = stack.customer_signs().await?;
    stack.wait_status(id, "active", STEP).await?;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // The backend is away for three seconds and its restart: ten slots of 300 ms, of which at least nine
    // whole ones go without a probe (the slot it is killed in may already hold one, and a fast restart
    // probes in the tenth).
    stack.kill_backend()?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.start_backend().await?;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stack.customer_stops(id).await?;
    let settled = stack.wait_status(id, "settled", STEP).await?;

    let evidence = evidence(&stack, id).await?;
    let measured = &evidence["sessions"][0]["measurement"];
    let records = measured["records"].as_array().context("records")?;
    let (from, to) =
        (settled["startedAt"].as_u64().context("startedAt")?, settled["endedAt"].as_u64().context("endedAt")?);
    let (due, ok, bps, commitment) = recompute(from, to, 300, records)?;
    println!("{ok} of {due} slots up: {bps} bps");
    assert!(ok + 9 <= due, "the gap's slots are down: {ok} of {due}");
    assert_eq!((measured["due"].as_u64(), measured["okSlots"].as_u64()), (Some(due), Some(ok)));
    assert_eq!(settled["availabilityBps"].as_u64(), Some(bps), "exactly the share of slots up");
    assert_eq!(settled["sessions"][0]["evidence"], commitment.to_string(), "the commitment on-chain is the records'");
    conference_e2e::check_settlement(&settled)?;
    Ok(())
}

/// The flaw this issue names: a FlexiblePeriod window that passed while nothing was ready was charged
/// its minimum at full availability. No probe in the window is no readiness: everything comes back.
#[tokio::test(flavor = "multi_thread")]
async fn a_window_nothing_was_ready_for_costs_nothing() -> Result<()> {
    const FLEXIBLE_TERMS: u32 = 4;
    let mut stack = Stack::start_time_travelling("window-unready").await?;
    let offer = &devnet::OFFERS[FLEXIBLE_TERMS as usize - 1];
    let now = stack.customer.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest).await?.context("block")?;
    let (from, to) = (now.header.timestamp + 10, now.header.timestamp + 610);
    let deposit = U256::from(offer.minimum_charge) + U256::from(offer.price()) * U256::from(to - from);
    let (id, _) = stack.customer_reserves(FLEXIBLE_TERMS, from, to, deposit).await?;
    stack.wait_status(id, "idle", STEP).await?;
    // The service is down for the whole window.
    stack.kill_backend()?;
    stack.set_next_block_time(to + 1).await?;
    stack.mine().await?;
    stack.start_backend().await?;
    let settled = stack.wait_status(id, "settled", STEP).await?;
    assert_eq!(settled["availabilityBps"], 0, "{settled}");
    assert_eq!(wei(&settled, "charged")?, U256::ZERO, "no readiness shown, no minimum");
    assert_eq!(wei(&settled, "refund")?, deposit);
    Ok(())
}
