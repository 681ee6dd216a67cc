//! The store and the HTTP API against real databases, each test once on SQLite (a fresh file) and once
//! on PostgreSQL (a private server of its own), and a real HTTP server on a free loopback port.

use conference_backend::{
    domain::{availability::ProbeResult, event::ChainEvent, operator::OperatorCall},
    store::Store,
};
use serde_json::Value;

#[macro_use]
mod common;

#[tokio::test]
async fn both_migration_sets_make_the_same_tables_and_columns() {
    let dir = std::env::temp_dir().join(format!("conference-store-parity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = Store::open(&format!("sqlite://{}", dir.join("test.db").display())).await.unwrap();
    let server = conference_backend::dev::devdb::PostgresServer::start("parity").unwrap();
    let postgres = Store::open(&server.url()).await.unwrap();
    let columns = sqlite.columns().await.unwrap();
    assert!(columns.contains(&("agreements".into(), "chain_status".into())), "{columns:?}");
    assert_eq!(columns, postgres.columns().await.unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

on_both_databases!(
    events_applied_twice_change_nothing_the_second_time,
    the_outbox_holds_each_call_once,
    availability_is_the_share_of_successful_probes,
    the_api_answers_bad_ids_with_a_clear_4xx,
    one_replica_at_a_time_holds_the_lease_until_it_expires_or_is_given_up,
    the_api_shows_an_agreement_its_offer_and_the_calls_the_page_makes,
);

fn signed_agreement_events() -> Vec<ChainEvent> {
    vec![common::terms_published(), common::signed()]
}

async fn events_applied_twice_change_nothing_the_second_time(store: Store) {
    let events = signed_agreement_events();
    store.apply_events(&events, 10, 1_700_000_000).await.unwrap();
    store.conference_running(1, &common::deployed()).await.unwrap();
    store.apply_events(&events, 11, 1_700_000_012).await.unwrap();
    assert_eq!(store.chain_time().await.unwrap(), Some(1_700_000_012));

    assert_eq!(store.cursor().await.unwrap(), Some(11));
    let a = store.agreement(1).await.unwrap().unwrap();
    assert_eq!(a.deposit, "3600000000000000");
    assert_eq!(a.price, "1000000000000");
    assert_eq!(a.duration, 3600);
    assert_eq!(
        (a.session, a.requested_at),
        (1, Some(1_700_000_000)),
        "a dynamic-price signature asks for its conference"
    );
    assert_eq!(a.deploy_count, 1);
    assert_eq!(a.progress(), conference_backend::domain::agreement::Progress::Activating);
}

async fn the_outbox_holds_each_call_once(store: Store) {
    store.apply_events(&signed_agreement_events(), 3, 1_700_000_000).await.unwrap();
    let activate = OperatorCall::Activate { agreement: 1, session: 1, requested_at: 1_700_000_000, region: 0 };
    assert!(!store.is_queued(1, 1, "activate").await.unwrap());
    assert!(store.enqueue(&activate).await.unwrap());
    assert!(!store.enqueue(&activate).await.unwrap());
    // What the reconciler reads before it takes a chain step: queued exactly when enqueue refuses it.
    assert!(store.is_queued(1, 1, "activate").await.unwrap());
    assert!(!store.is_queued(1, 2, "activate").await.unwrap(), "another session");
    assert!(!store.is_queued(1, 1, "settle").await.unwrap(), "another call");
    // A settlement queued once keeps its first availability figure.
    let settle = |availability_bps| OperatorCall::Settle {
        agreement: 1,
        session: 1,
        started_at: 1_700_000_005,
        availability_bps,
    };
    assert!(store.enqueue(&settle(9000)).await.unwrap());
    assert!(!store.enqueue(&settle(100)).await.unwrap());
    // The next session of the same agreement is a call of its own.
    let next = OperatorCall::Settle { agreement: 1, session: 2, started_at: 1_700_000_900, availability_bps: 10_000 };
    assert!(store.enqueue(&next).await.unwrap());
    let items = store.unfinished_outbox().await.unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].call, activate);
    assert_eq!(items[1].call, settle(9000));
    assert_eq!(items[2].call, next);
}

async fn availability_is_the_share_of_successful_probes(store: Store) {
    store.apply_events(&signed_agreement_events(), 3, 1_700_000_000).await.unwrap();
    assert_eq!(
        store.probe_tally(1, 1).await.unwrap().availability_bps(),
        10_000,
        "no probes, no evidence of an outage"
    );
    let probe =
        |session, ok, detail: Option<&str>| ProbeResult { agreement: 1, session, ok, detail: detail.map(Into::into) };
    // As two monitor passes store them: three answers, then a failure and another session's.
    store.record_probes(&[probe(1, true, None), probe(1, true, None), probe(1, true, None)]).await.unwrap();
    store.record_probes(&[probe(1, false, None), probe(2, false, Some("another session"))]).await.unwrap();
    let tally = store.probe_tally(1, 1).await.unwrap();
    assert_eq!((tally.probes, tally.probes_ok, tally.availability_bps()), (4, 3, 7_500));

    // The evidence, as a customer or an auditor reads it: each conference's probes and its figure.
    let api = common::spawn_api(store).await;
    let view: Value = reqwest::get(format!("{api}/api/agreements/1/probes")).await.unwrap().json().await.unwrap();
    assert_eq!(view["fullRefundBelowBps"], 7_500);
    let sessions = view["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{view}");
    assert_eq!((sessions[0]["session"].as_u64(), sessions[0]["availabilityBps"].as_u64()), (Some(1), Some(7_500)));
    assert_eq!(sessions[0]["probes"].as_array().unwrap().len(), 4);
    assert_eq!(sessions[1]["probes"][0]["ok"], false);
    assert_eq!(sessions[1]["probes"][0]["detail"], "another session");
    assert_eq!(sessions[1]["availabilityBps"], 0);
    let unknown = reqwest::get(format!("{api}/api/agreements/7/probes")).await.unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
}

async fn the_api_answers_bad_ids_with_a_clear_4xx(store: Store) {
    let api = common::spawn_api(store).await;
    for (path, status) in [("abc", 400), ("-1", 400), ("99999999999999999999999", 400), ("7", 404)] {
        let response = reqwest::get(format!("{api}/api/agreements/{path}")).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{path}: {body}");
    }
}

async fn the_api_shows_an_agreement_its_offer_and_the_calls_the_page_makes(store: Store) {
    store.apply_events(&signed_agreement_events(), 3, 1_700_000_000).await.unwrap();
    let api = common::spawn_api(store).await;

    let a: Value = reqwest::get(format!("{api}/api/agreements/1")).await.unwrap().json().await.unwrap();
    assert_eq!(a["status"], "signed");
    assert_eq!(a["deposit"], "3600000000000000");
    assert_eq!(a["transactions"]["sign"], "0xabc");
    assert_eq!(a["joinUrl"], Value::Null);
    assert_eq!(a["conference"]["state"], "absent");

    let offers: Value = reqwest::get(format!("{api}/api/offers")).await.unwrap().json().await.unwrap();
    assert_eq!(offers[0]["deposit"], "3600000000000000");
    assert_eq!(offers[0]["model"], "dynamicPrice");

    let config: Value = reqwest::get(format!("{api}/api/config")).await.unwrap().json().await.unwrap();
    let selector = |signature: &str| alloy::hex::encode_prefixed(&alloy::primitives::keccak256(signature)[..4]);
    assert_eq!(config["calls"]["sign"], selector("sign(uint32,uint32,bool)"));
    assert_eq!(config["calls"]["stop"], selector("stop(uint256)"));
    assert_eq!(config["chainId"], 31337);
    let closed = selector("Escrow_TermsNotOpen(uint32)");
    assert_eq!(config["errors"][closed.as_str()], "Escrow_TermsNotOpen");
}

async fn one_replica_at_a_time_holds_the_lease_until_it_expires_or_is_given_up(store: Store) {
    const TTL_MS: u64 = 1_000;
    assert_eq!(store.acquire_lease("leader", "a", TTL_MS).await.unwrap(), Some(1));
    assert_eq!(store.acquire_lease("leader", "b", TTL_MS).await.unwrap(), None, "held by a");
    assert_eq!(store.acquire_lease("leader", "a", TTL_MS).await.unwrap(), Some(1), "a renews, same term");
    tokio::time::sleep(std::time::Duration::from_millis(TTL_MS + 100)).await;
    assert_eq!(store.acquire_lease("leader", "b", TTL_MS).await.unwrap(), Some(2), "expired: b takes over");
    assert_eq!(store.acquire_lease("leader", "a", TTL_MS).await.unwrap(), None, "a has lost it");
    store.release_lease("leader", "a").await.unwrap();
    assert_eq!(store.acquire_lease("leader", "a", TTL_MS).await.unwrap(), None, "only the holder gives it up");
    store.release_lease("leader", "b").await.unwrap();
    assert_eq!(store.acquire_lease("leader", "a", TTL_MS).await.unwrap(), Some(1), "given up: free at once");
}
