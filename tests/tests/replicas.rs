//! Several backends against one PostgreSQL server (a private one per test), the same chain and the same
//! rooms folder: exactly one acts at a time, another takes over when it dies or stops, and no action is
//! doubled across the handover.

use std::time::{Duration, Instant};

use alloy::{primitives::U256, providers::Provider, sol_types::SolEvent};
use anyhow::{Context, Result, ensure};
use conference_backend::{chain::ConferenceEscrow, dev::devnet};
use conference_e2e::{Database, Stack, check_settlement};

const STEP: Duration = Duration::from_secs(60);
/// The bound: another replica acts within 15 s of the leader's death.
const TAKEOVER: Duration = Duration::from_secs(15);
const AGREEMENTS: u64 = 6;

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_takes_over_within_15_s_of_the_leaders_death_and_nothing_is_done_twice() -> Result<()> {
    let mut stack = Stack::start_on("failover", Database::Postgres).await?;
    // What is tested is exactly once, not availability: slots of an hour, each conference's first probe
    // its whole evidence (the leaderless seconds would otherwise be an outage).
    stack.restart_with(None, conference_e2e::TIME_TRAVEL).await?;
    stack.wait_leading(0, STEP).await?;
    let follower = stack.add_replica().await?;

    // A burst of signings; the leader dies in the middle of it, with conferences at every stage.
    let (mut ids, mut killed) = (Vec::new(), None);
    for n in 0..AGREEMENTS {
        if n == AGREEMENTS / 2 {
            stack.wait_status(ids[0], "active", STEP).await?;
            stack.kill_backend()?;
            killed = Some(Instant::now());
            stack.read_from(follower);
        }
        ids.push(stack.customer_signs().await?.0);
    }
    stack.wait_leading(follower, TAKEOVER).await?;
    let takeover = killed.map(|at| at.elapsed()).unwrap_or_default();
    println!("replica {follower} took the lease {} ms after the leader was killed", takeover.as_millis());
    assert!(takeover <= TAKEOVER, "takeover took {takeover:?}");

    for &id in &ids {
        stack.wait_status(id, "active", STEP).await?;
        stack.wait_for(id, "a probe", STEP, |r| r["conference"]["probes"].as_u64() >= Some(1)).await?;
    }
    for &id in &ids {
        stack.customer_stops(id).await?;
    }
    let price = U256::from(devnet::OFFERS[devnet::DYNAMIC_TERMS as usize - 1].price());
    let mut charges = Vec::new();
    for &id in &ids {
        let settled = stack.wait_status(id, "settled", STEP).await?;
        let settlement = check_settlement(&settled)?;
        ensure!(settlement.charge == price * U256::from(settlement.used_seconds), "agreement {id}: {settled}");
        // A deploy counts when its conference is recorded running. One the dead leader started and the new
        // leader found running (adopted, its server found by its command line) is counted by neither: 0 or
        // 1, never 2 (the single activation below says it ran once).
        let deploys = settled["conference"]["deployCount"].as_u64().context("deployCount")?;
        ensure!(deploys <= 1, "agreement {id} deployed more than once: {settled}");
        charges.push(settlement.charge);
    }
    for &id in &ids {
        assert_eq!(stack.count_events(ConferenceEscrow::AgreementActivated::SIGNATURE_HASH, id).await?, 1);
        assert_eq!(stack.count_events(ConferenceEscrow::AgreementSettled::SIGNATURE_HASH, id).await?, 1);
    }
    // One activation and one settlement per agreement (checked above), in batches: not a transaction more
    // than carry them, from either replica.
    let nonce = stack.customer.get_transaction_count(stack.devnet.operator.address()).await?;
    assert_eq!(nonce, stack.operator_transactions_for(&ids).await?);
    stack.check_split(devnet::DYNAMIC_TERMS, &charges).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_stopped_gracefully_hands_over_at_once() -> Result<()> {
    let mut stack = Stack::start_on("handover", Database::Postgres).await?;
    stack.wait_leading(0, STEP).await?;
    let follower = stack.add_replica().await?;
    let (id, _) = stack.customer_signs().await?;
    stack.wait_status(id, "active", STEP).await?;
    // Both are ready to serve: the follower's records are the leader's, in the shared database.
    for (replica, role) in [(0, "leader"), (follower, "follower")] {
        let response = reqwest::get(format!("{}/readyz", stack.api_of(replica))).await?;
        assert_eq!(response.status(), 200, "replica {replica}");
        assert_eq!(response.json::<serde_json::Value>().await?["role"], role, "replica {replica}");
    }

    let stopped = Instant::now();
    assert_eq!(stack.terminate_replica(0)?, Some(0), "SIGTERM: a clean exit");
    stack.read_from(follower);
    // Given up, not left to expire: the follower's next try (every 2 s) takes it, well before the 10 s
    // an expiry would take.
    let takeover = stack.wait_leading(follower, Duration::from_secs(8)).await?;
    println!("graceful handover in {} ms", (stopped.elapsed().max(takeover)).as_millis());

    stack.customer_stops(id).await?;
    let settled = stack.wait_status(id, "settled", STEP).await?;
    check_settlement(&settled)?;
    assert_eq!(settled["conference"]["deployCount"], 1, "the follower adopted the running room");
    assert_eq!(stack.count_events(ConferenceEscrow::AgreementSettled::SIGNATURE_HASH, id).await?, 1);
    Ok(())
}
