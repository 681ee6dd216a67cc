//! `make demo`: one scripted dynamic-price agreement on a fresh local stack, headless. Prints each
//! step with its transaction and amounts; exits non-zero if any figure differs from the contract's
//! formula or from the balances on-chain.

use std::time::{Duration, Instant};

use alloy::primitives::{U256, utils::format_ether};
use anyhow::{Result, ensure};
use conference_backend::dev::devnet::{self, Devnet};
use conference_e2e::{Stack, check_settlement, gas_cost};

const USED_SECONDS: u64 = 600;
const STEP: Duration = Duration::from_secs(60);

fn eth(wei: U256) -> String {
    format!("{} ETH ({wei} wei)", format_ether(wei))
}

#[tokio::main]
async fn main() {
    if let Err(err) = demo().await {
        eprintln!("\nDEMO FAILED: {err:#}");
        std::process::exit(1);
    }
}

async fn demo() -> Result<()> {
    println!("Starting a fresh local stack (anvil, escrow, backend)...");
    let stack = Stack::start("demo").await?;
    let customer = stack.customer_address();
    let offer = &devnet::OFFERS[devnet::DYNAMIC_TERMS as usize - 1];
    let price = offer.price();
    println!("  escrow   {} on {}", stack.devnet.escrow, stack.devnet.rpc_url());
    println!("  backend  {}", stack.api);
    println!("  terms {}  {price} wei/s for up to {} s", devnet::DYNAMIC_TERMS, offer.max_duration);

    let balance_before = stack.balance(customer).await?;
    let (id, sign) = stack.customer_signs().await?;
    let signed_at = Instant::now();
    println!("\n1. customer {customer} signs agreement {id}");
    println!("   tx {}  deposit {}  gas {}", sign.transaction_hash, eth(Devnet::offer_deposit()), sign.gas_used);

    let active = stack.wait_status(id, "active", STEP).await?;
    let join_url = active["joinUrl"].as_str().unwrap_or_default().to_owned();
    ensure!(stack.room_answers(&join_url).await, "the room at {join_url} does not answer");
    println!(
        "2. the backend deployed the room and activated the agreement ({} ms after signing)",
        signed_at.elapsed().as_millis()
    );
    println!(
        "   tx {}  started at {}  join {join_url}",
        active["transactions"]["activate"].as_str().unwrap_or("?"),
        active["startedAt"]
    );

    let started_at = active["startedAt"].as_u64().unwrap_or_default();
    stack.set_next_block_time(started_at + USED_SECONDS).await?;
    let stop = stack.customer_stops(id).await?;
    println!("3. {USED_SECONDS} s of chain time later the customer stops");
    println!("   tx {}  gas {}", stop.transaction_hash, stop.gas_used);

    let settled = stack.wait_status(id, "settled", STEP).await?;
    let s = check_settlement(&settled)?;
    ensure!(s.used_seconds == USED_SECONDS, "used {} s, expected {USED_SECONDS}", s.used_seconds);
    println!("4. the backend removed the room and settled");
    println!(
        "   tx {}  availability {} bps",
        settled["transactions"]["settle"].as_str().unwrap_or("?"),
        s.availability_bps
    );
    println!("   charge  {} = {price} wei/s × {} s", eth(s.charge), s.used_seconds);
    println!("   refund  {} = deposit − charge", eth(s.refund));

    let paid = balance_before - stack.balance(customer).await?;
    let gas = gas_cost(&sign) + gas_cost(&stop);
    ensure!(paid == s.charge + gas, "the customer paid {paid} wei, expected charge {} + gas {gas}", s.charge);
    stack.check_split(devnet::DYNAMIC_TERMS, &[s.charge]).await?;
    let (infra, software) = stack.devnet.provider_ids;
    println!("5. checks: customer paid charge + gas = {} exactly", eth(paid));
    println!(
        "   split   infrastructure {}, software {}, owner's margin {}",
        eth(stack.earnings(infra).await?),
        eth(stack.earnings(software).await?),
        eth(stack.credit(stack.devnet.owner.address()).await?)
    );
    println!("\nDemo passed: every figure matches to the wei.");
    Ok(())
}
