//! Exactly once under chain reorganisations, stuck transactions and either RPC transport, on a fresh
//! anvil chain with the real backend binary and real room processes. Reorganisations are made with
//! `anvil_reorg`, which drops the transactions of the blocks it replaces (see chain_faults.rs): a
//! removed transaction comes back only if someone sends it again.

use std::time::{Duration, Instant};

use alloy::{primitives::U256, providers::Provider, sol_types::SolEvent};
use anyhow::Result;
use conference_backend::{chain::ConferenceEscrow, dev::devnet};
use conference_e2e::{Stack, chain_faults::outbox_call, check_settlement, gas_cost, process_alive};
use serde_json::Value;

const STEP: Duration = Duration::from_secs(60);
const USED_SECONDS: u64 = 600;

fn call_field(record: &Value, call: &str, field: &str) -> Value {
    outbox_call(record, call).map(|item| item[field].clone()).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reorg_that_removes_a_signing_tears_the_conference_down_and_sends_nothing_for_it() -> Result<()> {
    let stack = Stack::start("reorg-signing").await?;
    let (id, sign_receipt) = stack.customer_signs().await?;
    let sign_block = sign_receipt.block_number.expect("mined");
    stack.wait_for(id, "activation done", STEP, |r| call_field(r, "activate", "state") == "done").await?;
    let room = stack.room(id).expect("the local orchestrator published the room");
    assert!(process_alive(room.pid));
    assert_eq!(stack.operator_nonce(false).await?, 1, "the activation was mined");

    // The signing and the activation after it leave the chain.
    let depth = stack.head().await? - sign_block + 1;
    let reorg_wall = Instant::now();
    stack.reorg(depth).await?;
    let on_chain = stack.escrow().agreementOf(U256::from(id)).call().await;
    assert!(on_chain.map_or(true, |a| a.status == 0), "no such agreement on the chain now");

    stack.wait_gone(id, STEP).await?;
    while process_alive(room.pid) && reorg_wall.elapsed() < STEP {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let teardown = reorg_wall.elapsed();
    println!("reorg to agreement gone and room stopped: {} ms", teardown.as_millis());
    assert!(!process_alive(room.pid), "room process {} still runs", room.pid);
    assert!(teardown < Duration::from_secs(10), "torn down promptly, not at the 30 s orphan sweep: {teardown:?}");
    assert!(stack.room(id).is_none());

    // Nothing is sent for it afterwards: the activation's nonce is free again and stays unused.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(stack.operator_nonce(false).await?, 0);
    assert_eq!(stack.operator_nonce(true).await?, 0, "nothing for it in the mempool either");
    for signature in [
        ConferenceEscrow::AgreementSigned::SIGNATURE_HASH,
        ConferenceEscrow::AgreementActivated::SIGNATURE_HASH,
        ConferenceEscrow::AgreementSettled::SIGNATURE_HASH,
    ] {
        assert_eq!(stack.count_events(signature, id).await?, 0);
    }
    assert!(stack.agreement(id).await?.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reorg_that_removes_a_settlement_has_the_same_transaction_mined_again_once() -> Result<()> {
    let stack = Stack::start_time_travelling("reorg-settlement").await?;
    let customer = stack.customer_address();
    let balance_before = stack.balance(customer).await?;
    let (id, sign_receipt) = stack.customer_signs().await?;
    let active = stack.wait_status(id, "active", STEP).await?;
    stack.wait_for(id, "a probe", STEP, |r| r["conference"]["probes"].as_u64() >= Some(1)).await?;
    let started_at = active["startedAt"].as_u64().expect("startedAt");
    stack.set_next_block_time(started_at + USED_SECONDS).await?;
    let stop_receipt = stack.customer_stops(id).await?;
    let settled = stack.wait_status(id, "settled", STEP).await?;
    let settle_tx = settled["transactions"]["settle"].as_str().expect("settlement transaction").to_owned();
    let settle_block = stack.customer.get_transaction_receipt(settle_tx.parse()?).await?.expect("mined").block_number;
    let settle_block = settle_block.expect("mined in a block");
    assert!(settle_block > stop_receipt.block_number.expect("mined"), "the stop stays on the chain");

    // Only the settlement's block leaves the chain: the agreement is ended, not settled, on-chain again.
    let reorg_wall = Instant::now();
    stack.reorg(stack.head().await? - settle_block + 1).await?;
    assert_eq!(stack.count_events(ConferenceEscrow::AgreementSettled::SIGNATURE_HASH, id).await?, 0);
    assert_eq!(stack.operator_nonce(false).await?, 1);

    // Settled again on the new branch: the call was mined in a block after the ones the reorg replaced.
    let again = stack
        .wait_for(id, "settled again", STEP, |r| {
            r["status"] == "settled"
                && call_field(r, "settle", "state") == "done"
                && call_field(r, "settle", "minedBlock").as_u64() > Some(settle_block)
        })
        .await?;
    println!("reorg to settlement mined again and recorded: {} ms", reorg_wall.elapsed().as_millis());
    assert_eq!(again["transactions"]["settle"], settle_tx.as_str(), "the same signed bytes were broadcast again");
    assert_eq!(call_field(&again, "settle", "attempts"), 1);
    assert_eq!(stack.count_events(ConferenceEscrow::AgreementSettled::SIGNATURE_HASH, id).await?, 1);
    assert_eq!(stack.count_events(ConferenceEscrow::AgreementActivated::SIGNATURE_HASH, id).await?, 1);
    assert_eq!(stack.operator_nonce(false).await?, 2, "one activation and one settlement, nothing else");

    let settlement = check_settlement(&again)?;
    assert_eq!(settlement.used_seconds, USED_SECONDS);
    let price = U256::from(devnet::OFFERS[devnet::DYNAMIC_TERMS as usize - 1].price());
    assert_eq!(settlement.charge, price * U256::from(USED_SECONDS));
    stack.check_split(devnet::DYNAMIC_TERMS, &[settlement.charge]).await?;
    let balance_after = stack.balance(customer).await?;
    assert_eq!(
        balance_before - balance_after,
        settlement.charge + gas_cost(&sign_receipt) + gas_cost(&stop_receipt),
        "the customer paid the charge once, plus gas for its two transactions"
    );
    assert_eq!(again["sessions"].as_array().map(Vec::len), Some(1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_activation_gets_its_fees_bumped_and_is_mined_once() -> Result<()> {
    let stack = Stack::start_with("fee-bump", false, &["--fee-bump-after-secs", "2"]).await?;
    // Blocks are held back: the activation waits in the mempool.
    let (id, _) = stack.customer_signs_holding_blocks().await?;
    let sent = stack.wait_for(id, "activation sent", STEP, |r| call_field(r, "activate", "state") == "sent").await?;
    let first = call_field(&sent, "activate", "txHash").as_str().expect("a hash").to_owned();

    // Held by the node without a block for longer than --fee-bump-after-secs: the same nonce again,
    // with higher fees, replacing the first in the mempool.
    let held_wall = Instant::now();
    let bumped =
        stack.wait_for(id, "a fee bump", STEP, |r| call_field(r, "activate", "attempts").as_u64() >= Some(2)).await?;
    println!("held unmined to replacement signed: {} ms", held_wall.elapsed().as_millis());
    let second = call_field(&bumped, "activate", "txHash").as_str().expect("a hash").to_owned();
    assert_ne!(second, first);
    assert_eq!(stack.operator_nonce(true).await?, 1, "one operator transaction in the mempool: replaced, not added");

    // Then a base fee far above what it offers: anvil drops it at the next block and refuses its bytes,
    // so the backend signs the same nonce once more at the current fees.
    stack.set_next_base_fee(1_000_000_000_000).await?;
    stack.mine().await?;
    assert_eq!(stack.operator_nonce(false).await?, 0, "the activation was not mined");
    let priced_out_wall = Instant::now();
    let rebumped = stack
        .wait_for(id, "a second bump", STEP, |r| call_field(r, "activate", "attempts").as_u64() >= Some(3))
        .await?;
    println!("priced out to replacement signed: {} ms", priced_out_wall.elapsed().as_millis());
    let third = call_field(&rebumped, "activate", "txHash").as_str().expect("a hash").to_owned();

    stack.mine().await?;
    stack.set_automine(true).await?;
    let active = stack.wait_for(id, "activated", STEP, |r| call_field(r, "activate", "state") == "done").await?;
    let mined = call_field(&active, "activate", "txHash").as_str().expect("the mined hash").to_owned();
    assert_eq!(mined, third, "the API shows the attempt that was mined");
    let receipt = stack.customer.get_transaction_receipt(mined.parse()?).await?.expect("the hash shown was mined");
    assert!(receipt.status());
    for replaced in [&first, &second] {
        assert!(stack.customer.get_transaction_receipt(replaced.parse()?).await?.is_none(), "{replaced} not mined");
    }
    let mined_tx = stack.customer.get_transaction_by_hash(mined.parse()?).await?.expect("mined");
    assert_eq!(alloy::consensus::Transaction::nonce(&mined_tx), 0, "the same nonce, replaced");
    assert_eq!(stack.count_events(ConferenceEscrow::AgreementActivated::SIGNATURE_HASH, id).await?, 1);
    assert_eq!(stack.operator_nonce(false).await?, 1);
    stack.wait_status(id, "active", STEP).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_round_over_websocket_is_driven_by_new_heads() -> Result<()> {
    // The watcher polls once an hour: only the new-heads subscription can wake it.
    let stack =
        Stack::start_with("websocket", true, &["--poll-interval-ms", "3600000", "--probe-interval-ms", "3600000"])
            .await?;
    let round_wall = Instant::now();
    let (id, _) = stack.customer_signs().await?;
    let active = stack.wait_status(id, "active", STEP).await?;
    stack.wait_for(id, "a probe", STEP, |r| r["conference"]["probes"].as_u64() >= Some(1)).await?;
    let started_at = active["startedAt"].as_u64().expect("startedAt");
    stack.set_next_block_time(started_at + USED_SECONDS).await?;
    stack.customer_stops(id).await?;
    let settled = stack.wait_status(id, "settled", STEP).await?;
    println!("signing to settled over WebSocket: {} ms", round_wall.elapsed().as_millis());
    let settlement = check_settlement(&settled)?;
    assert_eq!(settlement.used_seconds, USED_SECONDS);
    stack.check_split(devnet::DYNAMIC_TERMS, &[settlement.charge]).await?;
    assert_eq!(stack.count_events(ConferenceEscrow::AgreementSettled::SIGNATURE_HASH, id).await?, 1);
    let log = std::fs::read_to_string(stack.data_dir.join("backend.log"))?;
    assert!(log.contains("following new heads"), "the backend subscribed to new heads");
    Ok(())
}

/// Given an HTTP URL, the backend follows new heads over the same node's WebSocket (anvil serves both on
/// one port) and sends its requests over HTTP; with `--poll-only` it polls, the fallback for a node that
/// offers no WebSocket.
#[tokio::test(flavor = "multi_thread")]
async fn over_http_new_heads_come_from_the_same_node_and_polling_is_the_fallback() -> Result<()> {
    // The watcher polls once an hour: only new heads can wake it.
    let flags = ["--poll-interval-ms", "3600000", "--probe-interval-ms", "3600000"];
    let mut stack = Stack::start_with("heads-beside-http", false, &flags).await?;
    let (id, _) = stack.customer_signs().await?;
    stack.wait_status(id, "active", STEP).await?;
    let log = std::fs::read_to_string(stack.data_dir.join("backend.log"))?;
    let followed = log.matches("following new heads").count();
    assert!(followed >= 1, "the backend followed new heads beside its HTTP connection");

    // Polling only, every 100 ms: the next agreement is seen by a poll, and nothing subscribes.
    stack.restart_with(None, &["--poll-only", "--poll-interval-ms", "100"]).await?;
    let (id, _) = stack.customer_signs().await?;
    stack.wait_status(id, "active", STEP).await?;
    let log = std::fs::read_to_string(stack.data_dir.join("backend.log"))?;
    assert_eq!(log.matches("following new heads").count(), followed, "no subscription with --poll-only");
    Ok(())
}

/// With `--confirmations 2` the watcher reads an event only once two blocks are on top of it, and an
/// operator call counts as done only once its receipt is two blocks deep. Blocks are mined by hand here
/// (automine mines one per transaction), so every wait is on the chain, not on the clock.
#[tokio::test(flavor = "multi_thread")]
async fn with_two_confirmations_events_and_receipts_wait_until_two_blocks_deep() -> Result<()> {
    let stack = Stack::start_with("confirmations", false, &["--confirmations", "2"]).await?;
    let (id, _) = stack.customer_signs().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(stack.agreement(id).await?.is_none(), "the signing is read only once it is two blocks deep");

    stack.mine().await?;
    stack.mine().await?;
    // Seen, deployed, and the activation sent and mined (automine) in a block of its own: not yet deep.
    let sent =
        stack.wait_for(id, "activation mined", STEP, |r| call_field(r, "activate", "minedBlock").is_u64()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let shallow = stack.agreement(id).await?.expect("seen");
    assert_eq!(call_field(&shallow, "activate", "state"), "sent", "one block deep is not done: {shallow}");
    assert_eq!(shallow["status"], sent["status"], "nor is its event read yet: {shallow}");

    stack.mine().await?;
    stack.mine().await?;
    stack
        .wait_for(id, "active, activation done", STEP, |r| {
            r["status"] == "active" && call_field(r, "activate", "state") == "done"
        })
        .await?;

    stack.customer_stops(id).await?;
    stack.mine().await?;
    stack.mine().await?;
    stack.wait_for(id, "settlement mined", STEP, |r| call_field(r, "settle", "minedBlock").is_u64()).await?;
    stack.mine().await?;
    stack.mine().await?;
    let settled = stack
        .wait_for(id, "settled, settlement done", STEP, |r| {
            r["status"] == "settled" && call_field(r, "settle", "state") == "done"
        })
        .await?;
    check_settlement(&settled)?;
    assert_eq!(stack.count_events(ConferenceEscrow::AgreementActivated::SIGNATURE_HASH, id).await?, 1);
    assert_eq!(stack.count_events(ConferenceEscrow::AgreementSettled::SIGNATURE_HASH, id).await?, 1);
    assert_eq!(stack.operator_nonce(false).await?, 2);
    Ok(())
}
