//! One full agreement per pricing model besides DynamicPrice (see dynamic_price.rs), on a fresh anvil
//! chain with the real backend binary and real room processes, checked to the wei: what the customer
//! paid, what each provider earned, what the owner kept, and what the orchestrator ran.

use std::time::{Duration, Instant};

use alloy::{primitives::U256, providers::Provider};
use anyhow::{Context, Result, ensure};
use conference_backend::dev::devnet::{self, OFFERS};
use conference_e2e::{Stack, gas_cost, process_alive};
use serde_json::Value;

const STEP: Duration = Duration::from_secs(60);
const FIXED_TERMS: u32 = 2;
const MINUTES_TERMS: u32 = 3;
const FLEXIBLE_TERMS: u32 = 4;

fn wei(record: &Value, key: &str) -> Result<U256> {
    Ok(record[key].as_str().with_context(|| format!("{key} missing in {record}"))?.parse()?)
}

fn price_of(terms: u32) -> U256 {
    U256::from(OFFERS[terms as usize - 1].price())
}

fn sessions(record: &Value) -> usize {
    record["sessions"].as_array().map_or(0, Vec::len)
}

async fn chain_now(stack: &Stack) -> Result<u64> {
    let block = stack.customer.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest).await?.context("no block")?;
    Ok(block.header.timestamp)
}

/// Runs one conference of an agreement already requested: waits until it is active, stops it `used`
/// seconds of chain time after its start, and returns the stop receipt.
async fn run_for(stack: &Stack, id: u64, used: u64) -> Result<alloy::rpc::types::TransactionReceipt> {
    let active = stack.wait_status(id, "active", STEP).await?;
    let join_url = active["joinUrl"].as_str().context("an active agreement has a join URL")?;
    ensure!(stack.room_answers(join_url).await, "the room at {join_url} does not answer");
    let started_at = active["startedAt"].as_u64().context("startedAt")?;
    wait_probed(stack, id).await?;
    stack.set_next_block_time(started_at + used).await?;
    stack.customer_stops(id).await
}

/// Waits for the first probe of the agreement's current conference (or window): with the stack's
/// hour-long slot, the whole evidence of its availability.
async fn wait_probed(stack: &Stack, id: u64) -> Result<()> {
    stack.wait_for(id, "a probe", STEP, |r| r["conference"]["probes"].as_u64() >= Some(1)).await.map(drop)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fixed_price_conference_costs_its_price_however_short() -> Result<()> {
    let stack = Stack::start_time_travelling("fixed").await?;
    let customer = stack.customer_address();
    let before = stack.balance(customer).await?;
    let price = price_of(FIXED_TERMS);

    let (id, sign) = stack.customer_signs_terms(FIXED_TERMS, 0, price).await?;
    let stop = run_for(&stack, id, 100).await?;
    let settled = stack.wait_status(id, "settled", STEP).await?;

    assert_eq!(wei(&settled, "charged")?, price, "no refund for an early stop: {settled}");
    assert_eq!(wei(&settled, "refund")?, U256::ZERO);
    assert_eq!(before - stack.balance(customer).await?, price + gas_cost(&sign) + gas_cost(&stop));
    stack.check_split(FIXED_TERMS, &[price]).await?;
    assert_eq!(settled["conference"]["deployCount"], 1);
    assert!(stack.room(id).is_none(), "the room is removed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn time_limited_minutes_are_used_in_sessions_and_the_rest_comes_back_on_closing() -> Result<()> {
    let stack = Stack::start_time_travelling("minutes").await?;
    let customer = stack.customer_address();
    let before = stack.balance(customer).await?;
    let per_minute = price_of(MINUTES_TERMS);
    let deposit = per_minute * U256::from(10);

    let (id, buy) = stack.customer_buys_minutes(MINUTES_TERMS, 10, deposit).await?;
    let idle = stack.wait_status(id, "idle", STEP).await?;
    assert_eq!(idle["conference"]["state"], "absent", "no conference before a session starts");

    // Two sessions: each deploys a conference on its start and removes it on its stop.
    let mut gas = gas_cost(&buy);
    let mut charges = Vec::new();
    for (session, used) in [(1, 90u64), (2, 31)] {
        gas += gas_cost(&stack.customer_starts(id).await?);
        gas += gas_cost(&run_for(&stack, id, used).await?);
        let record = stack
            .wait_for(id, "the session settled", STEP, |r| {
                sessions(r) == session && r["status"] == "idle" && r["conference"]["state"] == "removed"
            })
            .await?;
        let charge = wei(&record["sessions"][session - 1], "charge")?;
        assert_eq!(charge, per_minute * U256::from(used) / U256::from(60), "session {session}: floor(price × s / 60)");
        charges.push(charge);
    }

    let close = stack.customer_closes(id).await?;
    let closed = stack.wait_status(id, "settled", STEP).await?;
    let charged = charges[0] + charges[1];
    assert_eq!(wei(&closed, "charged")?, charged);
    assert_eq!(wei(&closed, "refund")?, deposit - charged, "the unused minutes come back");
    assert_eq!(before - stack.balance(customer).await?, charged + gas + gas_cost(&close));
    stack.check_split(MINUTES_TERMS, &charges).await?;
    assert_eq!(closed["conference"]["deployCount"], 2, "one deploy per session");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flexible_window_is_kept_warm_and_its_use_is_charged_on_top_of_the_minimum() -> Result<()> {
    let stack = Stack::start_time_travelling("flexible").await?;
    let customer = stack.customer_address();
    let before = stack.balance(customer).await?;
    let offer = &OFFERS[FLEXIBLE_TERMS as usize - 1];
    let (price, minimum) = (price_of(FLEXIBLE_TERMS), U256::from(offer.minimum_charge));
    let from = chain_now(&stack).await? + 30;
    let to = from + 3600;
    let deposit = minimum + price * U256::from(to - from);

    let (id, reserve) = stack.customer_reserves(FLEXIBLE_TERMS, from, to, deposit).await?;
    let idle = stack.wait_status(id, "idle", STEP).await?;
    assert_eq!(idle["conference"]["state"], "absent", "nothing runs before the window opens");

    // The window opens: the backend keeps a conference ready, so a start is activated at once.
    stack.set_next_block_time(from).await?;
    stack.mine().await?;
    stack.wait_for(id, "a warm conference", STEP, |r| r["conference"]["state"] == "running").await?;
    let room = stack.room(id).context("the warm room is published")?;
    let start = stack.customer_starts(id).await?;
    let asked = Instant::now();
    stack.wait_status(id, "active", STEP).await?;
    println!("flexible start to activation with a warm conference: {} ms", asked.elapsed().as_millis());
    assert_eq!(stack.room(id).context("room")?.pid, room.pid, "the warm room serves the conference");

    let stop = run_for(&stack, id, 200).await?;
    let settled = stack.wait_status(id, "settled", STEP).await?;
    let charge = minimum + price * U256::from(200);
    assert_eq!(wei(&settled, "charged")?, charge, "the minimum plus the seconds used");
    assert_eq!(wei(&settled, "refund")?, deposit - charge);
    let gas = gas_cost(&reserve) + gas_cost(&start) + gas_cost(&stop);
    assert_eq!(before - stack.balance(customer).await?, charge + gas);
    stack.check_split(FLEXIBLE_TERMS, &[charge]).await?;
    assert_eq!(settled["conference"]["deployCount"], 1);
    assert!(!process_alive(room.pid), "the room is removed after the settlement");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unused_flexible_window_pays_only_its_minimum() -> Result<()> {
    let stack = Stack::start_time_travelling("flexible-unused").await?;
    let customer = stack.customer_address();
    let before = stack.balance(customer).await?;
    let offer = &OFFERS[FLEXIBLE_TERMS as usize - 1];
    let (price, minimum) = (price_of(FLEXIBLE_TERMS), U256::from(offer.minimum_charge));
    let from = chain_now(&stack).await? + 10;
    let to = from + 600;
    let deposit = minimum + price * U256::from(to - from);

    let (id, reserve) = stack.customer_reserves(FLEXIBLE_TERMS, from, to, deposit).await?;
    stack.set_next_block_time(from).await?;
    stack.mine().await?;
    stack.wait_for(id, "a warm conference", STEP, |r| r["conference"]["state"] == "running").await?;
    let room = stack.room(id).context("the warm room is published")?;
    wait_probed(&stack, id).await?;

    // The window passes without a start: the warm room goes, the minimum is charged, the rest refunded.
    stack.set_next_block_time(to + 1).await?;
    stack.mine().await?;
    let settled = stack.wait_status(id, "settled", STEP).await?;
    assert_eq!(wei(&settled, "charged")?, minimum);
    assert_eq!(wei(&settled, "refund")?, deposit - minimum);
    assert_eq!(before - stack.balance(customer).await?, minimum + gas_cost(&reserve));
    stack.check_split(FLEXIBLE_TERMS, &[minimum]).await?;
    assert!(!process_alive(room.pid));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conference_whose_constraints_exclude_this_region_is_declined_and_refunded() -> Result<()> {
    let stack = Stack::start_time_travelling("constraints").await?;
    let customer = stack.customer_address();
    let before = stack.balance(customer).await?;
    // US only (region bit 1): the terms serve EU and US, so narrowing costs the region surcharge; this
    // backend runs conferences in EU (region 0).
    let us_only = 1 << 1;
    let quote = stack.escrow().quote(devnet::DYNAMIC_TERMS, us_only, false, U256::ZERO).call().await?;
    let (deposit, price, surcharge_bps) = (quote.deposit, quote.price, quote.surchargeBps.to::<u32>());
    assert_eq!(price, price_of(devnet::DYNAMIC_TERMS), "the terms' price; the surcharge beside it");
    assert_eq!(surcharge_bps, devnet::REGION_SURCHARGE_BPS as u32);

    let (id, sign) = stack.customer_signs_terms(devnet::DYNAMIC_TERMS, us_only, deposit).await?;
    let refunded = stack.wait_status(id, "refunded", STEP).await?;
    assert_eq!(refunded["refundReason"], "declinedByOperator");
    assert_eq!(wei(&refunded, "refund")?, deposit);
    assert_eq!(refunded["conference"]["deployCount"], 0, "never deployed outside the allowed regions");
    assert_eq!(before - stack.balance(customer).await?, gas_cost(&sign), "only gas was spent");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_customer_stops_by_signing_and_pays_no_gas_for_the_stop() -> Result<()> {
    use alloy::signers::{SignerSync, local::PrivateKeySigner};
    use conference_backend::domain::stop::SignedStop;

    let stack = Stack::start_time_travelling("signed-stop").await?;
    let customer = stack.customer_address();
    let before = stack.balance(customer).await?;
    let (id, sign) = stack.customer_signs().await?;
    let active = stack.wait_status(id, "active", STEP).await?;
    let started_at = active["startedAt"].as_u64().context("startedAt")?;
    let room = stack.room(id).context("room")?;
    wait_probed(&stack, id).await?;

    // The customer signs in its wallet that it stopped 300 s after the start (chain time is past that).
    stack.set_next_block_time(started_at + 400).await?;
    stack.mine().await?;
    let sign_stop = |key: &PrivateKeySigner, stopped_at: u64| -> Result<Value> {
        let stop = SignedStop { started_at, stopped_at, deadline: started_at + 3600, signature: Default::default() };
        let digest = stop.digest(id, 1, stack.devnet.anvil.chain_id(), stack.devnet.escrow);
        let signature = key.sign_hash_sync(&digest)?;
        Ok(serde_json::json!({
            "stoppedAt": stopped_at,
            "deadline": stop.deadline,
            "signature": alloy::hex::encode_prefixed(signature.as_bytes()),
        }))
    };
    let path = format!("/api/agreements/{id}/stop");

    // Bad input gets a clear 4xx and changes nothing.
    let stranger = PrivateKeySigner::random();
    let (status, answer) = stack.post(&path, &sign_stop(&stranger, started_at + 300)?).await?;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("not by the agreement's customer")), "{answer}");
    let (status, answer) = stack.post(&path, &serde_json::json!({ "stoppedAt": "soon" })).await?;
    assert_eq!(status, 400, "{answer}");
    let (status, _) = stack.post("/api/agreements/999/stop", &sign_stop(&stack.devnet.customer, started_at)?).await?;
    assert_eq!(status, 404);
    assert_eq!(stack.agreement(id).await?.context("record")?["status"], "active", "nothing changed");

    let (status, answer) = stack.post(&path, &sign_stop(&stack.devnet.customer, started_at + 300)?).await?;
    assert_eq!(status, 202, "{answer}");
    let settled = stack.wait_status(id, "settled", STEP).await?;
    assert_eq!(settled["endedAt"].as_u64(), Some(started_at + 300), "the signed time is the end");
    assert_eq!(settled["availabilityBps"], 10_000, "the room removed after the stop is no outage: {settled}");
    let charge = price_of(devnet::DYNAMIC_TERMS) * U256::from(300);
    assert_eq!(wei(&settled, "charged")?, charge);
    assert_eq!(before - stack.balance(customer).await?, charge + gas_cost(&sign), "no gas for the stop");
    stack.check_split(devnet::DYNAMIC_TERMS, &[charge]).await?;
    assert!(!process_alive(room.pid), "the room was removed");
    let (status, _) = stack.post(&path, &sign_stop(&stack.devnet.customer, started_at + 300)?).await?;
    assert_eq!(status, 409, "a settled agreement cannot be stopped again");
    Ok(())
}
