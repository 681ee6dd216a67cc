//! SIGKILL at each step of the life of an agreement, then a restart: whatever the step, one deploy,
//! one activation, one settlement, and balances exact to the wei. The backend kills itself at a named
//! crash point (`conference_backend::fault`), so each test hits its step exactly, not by timing.

use std::time::Duration;

use alloy::{primitives::U256, providers::Provider, sol_types::SolEvent};
use anyhow::Result;
use conference_backend::{chain::ConferenceEscrow, dev::devnet};
use conference_e2e::{Stack, check_settlement, gas_cost, process_alive};

const STEP: Duration = Duration::from_secs(60);
const USED_SECONDS: u64 = 600;

/// The crash points before the conference is active, and after the customer stopped it.
const BEFORE_ACTIVE: [&str; 3] = ["stored", "deployed", "sent-activate"];

async fn killed_at(point: &str) -> Result<()> {
    let mut stack = Stack::start_time_travelling(&format!("crash-{point}")).await?;
    stack.restart_crashing_at(point).await?;
    let customer = stack.customer_address();
    let balance_before = stack.balance(customer).await?;

    let (id, sign_receipt) = stack.customer_signs().await?;
    if BEFORE_ACTIVE.contains(&point) {
        stack.restart_after_crash(STEP).await?;
    }
    let active = stack.wait_status(id, "active", STEP).await?;
    let room = stack.room(id).expect("the room is published");
    stack.wait_for(id, "a probe", STEP, |r| r["conference"]["probes"].as_u64() >= Some(1)).await?;
    let started_at = active["startedAt"].as_u64().expect("startedAt");
    stack.set_next_block_time(started_at + USED_SECONDS).await?;
    let stop_receipt = stack.customer_stops(id).await?;
    if !BEFORE_ACTIVE.contains(&point) {
        stack.restart_after_crash(STEP).await?;
    }
    let settled = stack.wait_status(id, "settled", STEP).await?;

    let settlement = check_settlement(&settled)?;
    assert_eq!(settlement.used_seconds, USED_SECONDS);
    let price = U256::from(devnet::OFFERS[devnet::DYNAMIC_TERMS as usize - 1].price());
    assert_eq!(settlement.charge, price * U256::from(USED_SECONDS));
    let spent = stack.balance(customer).await?;
    assert_eq!(balance_before - spent, settlement.charge + gas_cost(&sign_receipt) + gas_cost(&stop_receipt));
    stack.check_split(devnet::DYNAMIC_TERMS, &[settlement.charge]).await?;

    assert_eq!(settled["conference"]["deployCount"], 1, "{point}: {settled}");
    assert_eq!(stack.count_events(ConferenceEscrow::AgreementActivated::SIGNATURE_HASH, id).await?, 1);
    assert_eq!(stack.count_events(ConferenceEscrow::AgreementSettled::SIGNATURE_HASH, id).await?, 1);
    let operator_nonce = stack.customer.get_transaction_count(stack.devnet.operator.address()).await?;
    assert_eq!(operator_nonce, 2, "{point}: one activation and one settlement, nothing else");
    assert!(!process_alive(room.pid), "{point}: room process {} still runs", room.pid);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_signature_is_stored() -> Result<()> {
    killed_at("stored").await
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_deploy() -> Result<()> {
    killed_at("deployed").await
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_activation_is_sent_before_its_receipt() -> Result<()> {
    killed_at("sent-activate").await
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_undeploy() -> Result<()> {
    killed_at("undeployed").await
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_settlement_is_sent() -> Result<()> {
    killed_at("sent-settle").await
}
