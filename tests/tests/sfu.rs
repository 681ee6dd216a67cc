//! The local orchestrator's Janus servers against the whole stack (anvil, the backend binary, real Janus
//! processes; no media, so the default network namespace does): a conference kept down by killing its
//! server again and again settles below 75 % with a full refund, to the wei, its availability exactly
//! the stored probes' share; a participant the customer removed is refused by the server itself within
//! the tokens' life; and once the conference ended nobody gets in. (Media through the server, and the
//! pages reconnecting after a kill, are `tests/browser/room.test.mjs`'s, in a network namespace.)

use std::time::{Duration, Instant};

use alloy::{primitives::U256, signers::local::PrivateKeySigner};
use anyhow::Result;
use conference_backend::orchestrator::janus::TOKEN_TTL_SECS;
use conference_e2e::{JanusClient, Stack, check_settlement, gas_cost, janus_create, janus_pids};
use nix::{sys::signal, unistd::Pid};
use serde_json::{Value, json};

const STEP: Duration = Duration::from_secs(60);

/// The figure the backend measured for conference `session` from its probes: (slots up, slots due, bps).
/// A slot of the probe interval is up when it holds a successful probe; one without a probe is down.
fn availability_of_probes(evidence: &Value, session: u64) -> (u64, u64, u64) {
    let sessions = evidence["sessions"].as_array().expect("sessions");
    let measured = &sessions.iter().find(|s| s["session"] == session).expect("the session's probes")["measurement"];
    let (ok, due) = (measured["okSlots"].as_u64().expect("okSlots"), measured["due"].as_u64().expect("due"));
    assert_eq!(measured["availabilityBps"].as_u64(), Some(ok * 10_000 / due), "{measured}");
    (ok, due, ok * 10_000 / due)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conference_kept_down_settles_below_75_percent_with_a_full_refund_to_the_wei() -> Result<()> {
    let stack = Stack::start("kept-down").await?;
    let customer = stack.customer_address();
    let balance_before = stack.balance(customer).await?;
    let (id, sign_receipt) = stack.customer_signs().await?;
    let active = stack.wait_status(id, "active", STEP).await?;
    stack.wait_for(id, "three probes", STEP, |r| r["conference"]["probes"].as_u64() >= Some(3)).await?;

    // Every server the backend brings back is killed as soon as it appears, for 12 s.
    let rooms = stack.rooms_dir();
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() < Duration::from_secs(12) {
        for pid in janus_pids(&rooms, id) {
            if signal::kill(Pid::from_raw(pid as i32), signal::Signal::SIGKILL).is_ok() {
                kills += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("killed {kills} servers in 12 s");
    assert!(kills >= 2, "the backend kept bringing the conference back ({kills} kills)");
    // Left alone, it comes back by itself within a few seconds.
    let back = Instant::now();
    stack.wait_for(id, "running again", STEP, |r| r["conference"]["state"] == "running").await?;
    let room = stack.room(id).expect("a server runs again");
    assert!(stack.room_answers(&room.join_url).await);
    println!("back {} ms after the last kill", back.elapsed().as_millis());
    let metrics = reqwest::get(format!("{}/metrics", stack.api)).await?.text().await?;
    let counter = |name: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_default();
        line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or_default()
    };
    assert!(counter("conference_redeploys_total") >= 1, "{metrics}");
    assert!(counter("conference_lost_total") >= 1, "{metrics}");
    assert!(stack.log_tail().contains("WARN") || stack.replica_log(0).contains("conference lost"), "logged at WARN");

    let started_at = active["startedAt"].as_u64().expect("startedAt");
    let used = (started.elapsed().as_secs() + 30).max(60);
    stack.set_next_block_time(started_at + used).await?;
    let stop_receipt = stack.customer_stops(id).await?;
    let settled = stack.wait_status(id, "settled", STEP).await?;
    let settlement = check_settlement(&settled)?;
    let evidence: Value = reqwest::get(format!("{}/api/agreements/{id}/probes", stack.api)).await?.json().await?;
    let (ok, due, bps) = availability_of_probes(&evidence, settled["session"].as_u64().expect("session"));
    println!("availability {} bps: {ok} of {due} slots up", settlement.availability_bps);
    assert_eq!(settlement.availability_bps, bps, "the settlement reports exactly the share of slots up");
    assert!(settlement.availability_bps < 7_500, "kept down long enough: {}", settlement.availability_bps);
    assert_eq!(settlement.charge, U256::ZERO);
    assert_eq!(settlement.refund, U256::from_str_radix(settled["deposit"].as_str().expect("deposit"), 10)?);
    let balance_after = stack.balance(customer).await?;
    assert_eq!(
        balance_before - balance_after,
        gas_cost(&sign_receipt) + gas_cost(&stop_receipt),
        "the customer paid nothing but gas, to the wei"
    );
    stack.wait_room_gone(id, room.pid, STEP).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_participant_is_refused_by_the_server_and_nobody_gets_in_after_the_end() -> Result<()> {
    let stack = Stack::start("revoked").await?;
    let (id, _) = stack.customer_signs().await?;
    let active = stack.wait_status(id, "active", STEP).await?;
    let join_url = active["joinUrl"].as_str().expect("joinUrl").to_owned();
    let bob = PrivateKeySigner::from(stack.devnet.anvil.keys()[6].clone());
    let (alice, carol) = (stack.devnet.anvil.addresses()[5], stack.devnet.anvil.addresses()[7]);
    let customer = stack.sign_in_customer().await?;
    let register = |participants: Vec<String>| {
        let body = json!({
            "participants": participants.iter().map(|a| json!({ "address": a, "region": 0 })).collect::<Vec<_>>(),
            "quality": "sd",
        });
        let (stack, customer) = (&stack, &customer);
        async move { stack.post_as(customer, &format!("/api/agreements/{id}/participants"), &body).await }
    };
    let (status, answer) = register(vec![alice.to_string(), bob.address().to_string(), carol.to_string()]).await?;
    assert_eq!(status, 200, "{answer}");

    let bob_session = conference_backend::http::session::sign_in(&stack.api, &bob).await?;
    let (status, pass) = stack.post_as(&bob_session, &format!("/api/agreements/{id}/join-token"), &json!({})).await?;
    assert_eq!(status, 200, "{pass}");
    let token = pass["token"].as_str().expect("token").to_owned();
    assert!(janus_create(&join_url, Some(&token)).await?.is_ok(), "Bob is let in while registered");

    // The customer removes Bob: the API refuses him a new pass at once, and the server itself refuses
    // the pass he holds within its life (15 s), however he presents it.
    let removed = Instant::now();
    let (status, answer) = register(vec![alice.to_string(), carol.to_string()]).await?;
    assert_eq!(status, 200, "{answer}");
    let (status, refusal) =
        stack.post_as(&bob_session, &format!("/api/agreements/{id}/join-token"), &json!({})).await?;
    assert_eq!(status, 403, "{refusal}");
    // Until the pass expires he can still open a session, but the monitor's next probe (every 300 ms
    // here, 2 s by default) ends it: the server is told who is admitted.
    let mut page = JanusClient::connect(&join_url).await?;
    if let Ok(session) = page.create(Some(&token)).await? {
        let attach =
            json!({ "janus": "attach", "session_id": session, "plugin": "janus.plugin.videoroom", "token": token });
        let attached = page.request(attach).await?;
        assert_eq!(attached["janus"], "success", "{attached}");
        let opened = Instant::now();
        loop {
            let alive = page.request(json!({ "janus": "keepalive", "session_id": session, "token": token })).await?;
            if alive["janus"] == "error" {
                assert_eq!(alive["error"]["code"], 458, "{alive}");
                break;
            }
            assert!(opened.elapsed() < Duration::from_secs(5), "Bob's new session was not ended");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("a session Bob opened after his removal was ended in {} ms", opened.elapsed().as_millis());
    }
    let bound = Duration::from_secs(TOKEN_TTL_SECS + 2);
    let refused_after = loop {
        if janus_create(&join_url, Some(&token)).await? == Err(403) {
            break removed.elapsed();
        }
        assert!(removed.elapsed() < bound, "the server still lets Bob in {bound:?} after his removal");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    println!("Bob refused by the server {} ms after his removal (bound {bound:?})", refused_after.as_millis());
    assert!(janus_create(&join_url, Some("1,janus,janus.plugin.videoroom:forged")).await? == Err(403));

    // The conference ends: no pass, and its server is gone.
    let started_at = active["startedAt"].as_u64().expect("startedAt");
    stack.set_next_block_time(started_at + 120).await?;
    stack.customer_stops(id).await?;
    let settled = stack.wait_status(id, "settled", STEP).await?;
    assert_eq!(settled["conference"]["state"], "removed");
    let (status, refusal) = stack.post_as(&customer, &format!("/api/agreements/{id}/join-token"), &json!({})).await?;
    assert_eq!(status, 409, "{refusal}");
    assert!(!stack.room_answers(&join_url).await, "the ended conference's server no longer answers");
    Ok(())
}
