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
    availability_is_the_share_of_due_slots_with_a_successful_probe,
    the_api_answers_bad_ids_with_a_clear_4xx,
    one_replica_at_a_time_holds_the_lease_until_it_expires_or_is_given_up,
    the_api_shows_an_agreement_its_offer_and_the_calls_the_page_makes,
    the_full_pass_and_the_monitor_read_only_what_can_move,
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
    // A settlement queued once keeps its first availability figure, evidence and report.
    let settle = |availability_bps, session, started_at| OperatorCall::Settle {
        agreement: 1,
        session,
        started_at,
        availability_bps,
        evidence: alloy::primitives::B256::repeat_byte(7),
        report: alloy::primitives::Bytes::from_static(&[1, 2, 3]),
    };
    assert!(store.enqueue(&settle(9000, 1, 1_700_000_005)).await.unwrap());
    assert!(!store.enqueue(&settle(100, 1, 1_700_000_005)).await.unwrap());
    // The next session of the same agreement is a call of its own.
    let next = settle(10_000, 2, 1_700_000_900);
    assert!(store.enqueue(&next).await.unwrap());
    let items = store.unfinished_outbox().await.unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].call, activate);
    assert_eq!(items[1].call, settle(9000, 1, 1_700_000_005));
    assert_eq!(items[2].call, next);
}

async fn availability_is_the_share_of_due_slots_with_a_successful_probe(store: Store) {
    const START: u64 = 1_700_000_010;
    let mut events = signed_agreement_events();
    events.push(ChainEvent::Activated {
        agreement: 1,
        started_at: START,
        ends_at: START + 3600,
        region: 0,
        tx_hash: "0x1".into(),
    });
    events.push(ChainEvent::Ended { agreement: 1, ended_at: START + 6, tx_hash: "0x2".into() });
    store.apply_events(&events, 3, START + 6).await.unwrap();
    let probe = |session, at, ok, detail: Option<&str>| ProbeResult {
        agreement: 1,
        session,
        at_ms: START * 1000 + at,
        ok,
        detail: detail.map(Into::into),
    };
    // Slots of 2 s (the API's default interval) over 6 s: three due. Slot 0 holds two successes (one
    // counts), slot 1 a failure, slot 2 nothing (a probe that did not happen fails); one probe of
    // another session, and one before the start, count nowhere.
    store
        .record_probes(&[probe(1, 100, true, None), probe(1, 1_500, true, None), probe(1, 2_100, false, Some("down"))])
        .await
        .unwrap();
    store.record_probes(&[probe(2, 100, true, Some("another session"))]).await.unwrap();
    let tally = store.probe_tally(1, 1).await.unwrap();
    assert_eq!((tally.probes, tally.probes_ok), (3, 2));

    // The evidence, as a customer or an auditor reads it: each conference's probes, the figure and the
    // commitment recomputed from them.
    let api = common::spawn_api(store).await;
    let view: Value = reqwest::get(format!("{api}/api/agreements/1/probes")).await.unwrap().json().await.unwrap();
    assert_eq!(view["fullRefundBelowBps"], 7_500);
    assert_eq!(view["measuredBy"], Value::Null, "the operator measures terms without a monitor");
    let sessions = view["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{view}");
    let m = &sessions[0]["measurement"];
    assert_eq!(
        (m["due"].as_u64(), m["okSlots"].as_u64(), m["availabilityBps"].as_u64()),
        (Some(3), Some(1), Some(3_333)),
        "{m}"
    );
    // keccak256(uint32 interval ‖ (uint64 atMs ‖ uint8 ok)…), as the contracts' README documents.
    let mut bytes = 2_000u32.to_be_bytes().to_vec();
    for (at, ok) in [(100, 1), (1_500, 1), (2_100, 0)] {
        bytes.extend_from_slice(&(START * 1000 + at).to_be_bytes());
        bytes.push(ok);
    }
    assert_eq!(m["evidence"], alloy::primitives::keccak256(&bytes).to_string());
    assert_eq!(sessions[0]["probes"].as_array().unwrap().len(), 3);
    assert_eq!(sessions[1]["probes"][0]["detail"], "another session");
    assert_eq!(sessions[1]["measurement"], Value::Null, "no period to measure for a session that never ran");
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

/// Agreement `id` as [`common::signed`] signs agreement 1, of `model`.
fn signed_as(id: u64, model: conference_backend::domain::agreement::Model) -> ChainEvent {
    let mut event = common::signed();
    if let ChainEvent::Signed { agreement, model: signed_model, .. } = &mut event {
        (*agreement, *signed_model) = (id, model);
    }
    event
}

/// The reconciler's full pass reads only the agreements that may have a step by the chain's clock
/// (`Store::due_agreements`): it must never leave out one whose next step is not `Wait` (an end time
/// reached, an activation still open or expired with its conference up, a signed stop, a lost
/// conference, a window opening or closing), and it leaves out the live ones that only wait. And the
/// monitor reads the conferences it owes probes (`Store::watched_conferences`), in narrow columns.
async fn the_full_pass_and_the_monitor_read_only_what_can_move(store: Store) {
    use conference_backend::domain::{
        agreement::{ConferenceState as K, Model},
        step::{Step, next_step},
        stop::SignedStop,
    };
    use conference_backend::store::outbox::OutboxState;
    const WINDOW: u64 = 600;
    let t0 = common::SIGNED_AT;
    let activated = |agreement| ChainEvent::Activated {
        agreement,
        started_at: t0 + 5,
        ends_at: t0 + 5 + 3600,
        region: 0,
        tx_hash: format!("0xa{agreement}"),
    };
    let mut events = vec![common::terms_published()];
    events.extend((1..=9).map(|id| {
        let model = match id {
            8 => Model::TimeLimited,
            9 => Model::FlexiblePeriod,
            _ => Model::DynamicPrice,
        };
        signed_as(id, model)
    }));
    // 3: live, at rest; 4: live with its stop signed; 5: live, its conference lost; 6: ended, still up;
    // 7: ended, removed (to settle).
    events.extend([3, 4, 5, 6, 7].map(activated));
    events.push(ChainEvent::Ended { agreement: 6, ended_at: t0 + 50, tx_hash: "0xe6".into() });
    events.push(ChainEvent::Ended { agreement: 7, ended_at: t0 + 50, tx_hash: "0xe7".into() });
    // 9: a FlexiblePeriod window from t0 + 100 to t0 + 200.
    events.push(ChainEvent::WindowReserved { agreement: 9, from: t0 + 100, to: t0 + 200 });
    store.apply_events(&events, 10, t0 + 5).await.unwrap();
    for id in [2, 3, 4, 5, 6, 9] {
        store.conference_running(id, &common::deployed()).await.unwrap();
    }
    assert!(store.conference_lost(5).await.unwrap());
    store.conference_removed(7).await.unwrap();
    let stop =
        SignedStop { started_at: t0 + 5, stopped_at: t0 + 100, deadline: t0 + 1_000, signature: vec![1; 65].into() };
    assert!(store.record_signed_stop(4, 1, &stop).await.unwrap());
    // Agreement 3's end is queued already (as if a pass had reached its end time).
    let end = OperatorCall::End { agreement: 3, session: 1, started_at: t0 + 5 };
    assert!(store.enqueue(&end).await.unwrap());

    let due_at = |now: u64| {
        let store = store.clone();
        async move { store.due_agreements(now, WINDOW).await.unwrap().iter().map(|a| a.id).collect::<Vec<_>>() }
    };
    for now in [t0, t0 + 50, t0 + 150, t0 + 250, t0 + WINDOW + 1, t0 + 1_001, t0 + 3_605, t0 + 5_000] {
        let due = due_at(now).await;
        for a in store.open_agreements().await.unwrap() {
            let step = next_step(&a, now, WINDOW);
            let queued = match step.call() {
                Some(call) => store.is_queued(a.id, a.session, call).await.unwrap(),
                None => false,
            };
            if step != Step::Wait && !queued {
                assert!(due.contains(&a.id), "at {now}: agreement {} has {step:?} to take but was left out", a.id);
            }
        }
    }
    // At rest, agreement 3 (live, no stop signed, its end ahead), the idle TimeLimited one and the warm
    // conference in its window wait: they are not read.
    assert_eq!(due_at(t0 + 150).await, [1, 2, 4, 5, 6, 7]);
    assert!(due_at(t0 + 50).await.contains(&9), "a warm conference before its window opens is removed");
    assert!(due_at(t0 + 250).await.contains(&9), "the window passed: its conference goes, its minimum is charged");
    // The activation window passed: the one without a conference waits for its reclaim; the one with a
    // conference must remove it.
    let expired = due_at(t0 + WINDOW + 1).await;
    assert!(!expired.contains(&1) && expired.contains(&2), "{expired:?}");
    // The stop's deadline passed: it runs on, like any live agreement, until its end time.
    assert!(!due_at(t0 + 1_001).await.contains(&4));
    let ended = due_at(t0 + 3_605).await;
    assert!(ended.contains(&4), "the end time reached: {ended:?}");
    assert!(!ended.contains(&3), "its end is queued already: it waits on the chain");
    // The queued end failed: the agreement is read again, and the reconciler queues it once more.
    let item = store.outbox_of(3).await.unwrap().into_iter().find(|i| i.call == end).unwrap();
    store.outbox_finished(item.id, OutboxState::Failed, "Escrow_WrongStatus").await.unwrap();
    assert!(due_at(t0 + 3_605).await.contains(&3), "a failed call with retries left is a step to retry");
    assert!(!due_at(t0 + 3_604).await.contains(&3), "before its end time it waits, failed call or not");

    // The monitor: the active conferences without a signed stop of them (running or lost), and the warm
    // conference of the FlexiblePeriod window, with the time its slots count from.
    let watched = store.watched_conferences().await.unwrap();
    let seen: Vec<_> = watched.iter().map(|w| (w.agreement, w.conference_state, w.slots_from)).collect();
    assert_eq!(seen, [(3, K::Running, t0 + 5), (5, K::Removed, t0 + 5), (9, K::Running, t0 + 100)]);
    assert!(watched.iter().all(|w| !w.stop_signed && w.customer == common::CUSTOMER));
    assert_eq!(watched.iter().map(|w| w.session).collect::<Vec<_>>(), [1, 1, 0], "a window is session 0");
}
