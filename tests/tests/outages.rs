//! Outages the backend must ride out by itself, losing nothing: the chain's RPC endpoint down for 60 s,
//! the database unreachable for 30 s. During each, one running conference is stopped by its customer
//! and a new agreement is signed; afterwards both are deployed, activated and settled exactly once,
//! to the wei, by the same backend process.

use std::time::Duration;

use alloy::{primitives::U256, providers::Provider, sol_types::SolEvent};
use anyhow::Result;
use conference_backend::{chain::ConferenceEscrow, dev::devnet};
use conference_e2e::{Database, Stack, check_settlement};

const STEP: Duration = Duration::from_secs(90);

/// Runs agreement A until the outage, stops it and signs B during it, then checks both after it. What is
/// tested is that nothing is lost or doubled, not availability: the stacks probe in slots of an hour,
/// each conference's first probe its whole evidence.
async fn ride_out(stack: &mut Stack, outage: Duration, cut: impl Fn(&Stack, bool) -> Result<()>) -> Result<()> {
    let (a, _) = stack.customer_signs().await?;
    stack.wait_status(a, "active", STEP).await?;
    stack.wait_for(a, "a probe", STEP, |r| r["conference"]["probes"].as_u64() >= Some(1)).await?;

    cut(stack, false)?;
    stack.customer_stops(a).await?;
    let (b, _) = stack.customer_signs().await?;
    tokio::time::sleep(outage).await;
    assert!(stack.backend_running(), "the backend died in the outage: {}", stack.log_tail());
    cut(stack, true)?;

    let settled_a = stack.wait_status(a, "settled", STEP).await?;
    stack.wait_status(b, "active", STEP).await?;
    stack.wait_for(b, "a probe", STEP, |r| r["conference"]["probes"].as_u64() >= Some(1)).await?;
    stack.customer_stops(b).await?;
    let settled_b = stack.wait_status(b, "settled", STEP).await?;

    let price = U256::from(devnet::OFFERS[devnet::DYNAMIC_TERMS as usize - 1].price());
    let mut charges = Vec::new();
    for (id, record) in [(a, &settled_a), (b, &settled_b)] {
        let settlement = check_settlement(record)?;
        assert_eq!(settlement.charge, price * U256::from(settlement.used_seconds), "agreement {id}");
        assert_eq!(record["conference"]["deployCount"], 1, "agreement {id}: {record}");
        assert_eq!(stack.count_events(ConferenceEscrow::AgreementActivated::SIGNATURE_HASH, id).await?, 1);
        assert_eq!(stack.count_events(ConferenceEscrow::AgreementSettled::SIGNATURE_HASH, id).await?, 1);
        charges.push(settlement.charge);
    }
    let nonce = stack.customer.get_transaction_count(stack.devnet.operator.address()).await?;
    let carriers = stack.operator_transactions_for(&[a, b]).await?;
    assert!((2..=4).contains(&carriers), "two activations and two settlements in {carriers} transactions");
    assert_eq!(nonce, carriers, "the transactions carrying the activations and settlements, nothing else");
    stack.check_split(devnet::DYNAMIC_TERMS, &charges).await?;
    assert!(stack.backend_running(), "recovered without a restart");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rpc_endpoint_down_for_60_s_loses_nothing() -> Result<()> {
    let mut stack = Stack::start_time_travelling("rpc-outage").await?;
    stack.route_rpc_through_proxy().await?;
    ride_out(&mut stack, Duration::from_secs(60), |stack, up| stack.set_rpc_up(up)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_unreachable_for_30_s_loses_nothing() -> Result<()> {
    let mut stack = Stack::start_on("db-outage", Database::Postgres).await?;
    stack.restart_with(None, conference_e2e::TIME_TRAVEL).await?;
    ride_out(&mut stack, Duration::from_secs(30), |stack, up| {
        let server = stack.postgres().expect("a PostgreSQL stack");
        if up {
            server.start_again()?
        } else {
            server.stop()?
        }
        Ok(())
    })
    .await
}
