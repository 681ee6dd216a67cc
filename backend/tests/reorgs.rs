//! Rolling the store back to a fork block, and finding that block, each store test once on SQLite (a
//! fresh file) and once on PostgreSQL (a private server of its own).

use conference_backend::{
    domain::{
        agreement::{ChainStatus, ConferenceState},
        availability::ProbeResult,
        event::ChainEvent,
        operator::{Fees, OperatorCall, SignedTx},
    },
    store::{Store, events::RecordedEvent, outbox::OutboxState},
    watcher::fork_block,
};

#[macro_use]
mod common;

use common::{SIGNED_AT, signed, terms_published};

on_both_databases!(
    a_fork_removes_an_agreement_signed_on_the_abandoned_branch,
    a_fork_under_a_settlement_rebuilds_it_and_reopens_its_call,
    a_fork_under_a_closing_reopens_the_terms,
    the_next_nonce_is_past_every_call_in_flight,
    a_range_of_thousands_of_events_is_recorded_in_order_once_and_rolled_back,
);

const STARTED_AT: u64 = 1_700_000_010;
const ENDED_AT: u64 = 1_700_000_610;

fn at(block: u64, log_index: u64, event: ChainEvent) -> RecordedEvent {
    RecordedEvent { block, log_index, block_hash: format!("0x{block:064x}"), event }
}

fn settled() -> ChainEvent {
    ChainEvent::Settled {
        agreement: 1,
        availability_bps: 10_000,
        evidence: Default::default(),
        charge: "600000000000000".into(),
        refund: "3000000000000000".into(),
        refund_deferred: false,
        tx_hash: "0x5e7".into(),
    }
}

/// Records `events` as the watcher does: one batch up to `to`, every event's block hash kept.
async fn read(store: &Store, events: Vec<RecordedEvent>, to: u64) {
    let mut blocks: Vec<(u64, String)> = events.iter().map(|e| (e.block, e.block_hash.clone())).collect();
    blocks.push((to, format!("0x{to:064x}")));
    store.apply_block_events(&events, &blocks, to + 1, SIGNED_AT, 0).await.unwrap();
}

fn signed_tx(nonce: u64, byte: u8) -> SignedTx {
    SignedTx {
        nonce,
        hash: alloy::primitives::B256::repeat_byte(byte),
        raw: vec![byte],
        fees: Fees { max_fee: 2_000_000_000, priority_fee: 1_000_000_000 },
    }
}

async fn a_fork_removes_an_agreement_signed_on_the_abandoned_branch(store: Store) {
    read(&store, vec![at(5, 0, terms_published()), at(10, 3, signed())], 10).await;
    store.conference_running(1, &common::deployed()).await.unwrap();
    let probe = ProbeResult { agreement: 1, session: 1, at_ms: SIGNED_AT * 1000, ok: true, detail: None };
    store.record_probes(&[probe]).await.unwrap();
    let activate = OperatorCall::Activate { agreement: 1, session: 1, requested_at: SIGNED_AT, region: 0 };
    store.enqueue(&activate).await.unwrap();
    let id = store.unfinished_outbox().await.unwrap()[0].id;
    assert!(store.record_attempt(id, OutboxState::Pending, &signed_tx(0, 1)).await.unwrap());
    read(&store, vec![], 12).await;
    assert_eq!(store.last_block().await.unwrap().map(|b| b.0), Some(12));

    let report = store.roll_back_to(10).await.unwrap();
    assert_eq!(report.removed_agreements, vec![1]);
    assert!(report.rebuilt_agreements.is_empty());
    assert!(store.agreement(1).await.unwrap().is_none(), "signed only on the abandoned branch");
    assert!(store.outbox_of(1).await.unwrap().is_empty(), "its calls go with it: nothing is sent for it");
    assert!(store.unfinished_outbox().await.unwrap().is_empty());
    assert_eq!(store.next_nonce_in_flight().await.unwrap(), None, "its nonce is free again");
    assert_eq!(store.cursor().await.unwrap(), Some(10), "read again from the fork block");
    assert_eq!(store.recent_blocks().await.unwrap(), vec![(5, format!("0x{:064x}", 5))]);
    assert_eq!(store.terms().await.unwrap().len(), 1, "the terms were published before the fork");
    // The same signature read again from the new branch makes the agreement afresh.
    read(&store, vec![at(11, 0, signed())], 11).await;
    let again = store.agreement(1).await.unwrap().unwrap();
    assert_eq!(
        (again.chain_status, again.conference_state, again.deploy_count),
        (ChainStatus::Requested, ConferenceState::Absent, 0)
    );
}

async fn a_fork_under_a_settlement_rebuilds_it_and_reopens_its_call(store: Store) {
    let history = vec![
        at(5, 0, terms_published()),
        at(10, 0, signed()),
        at(
            11,
            0,
            ChainEvent::Activated {
                agreement: 1,
                started_at: STARTED_AT,
                ends_at: STARTED_AT + 3600,
                region: 0,
                tx_hash: "0xac7".into(),
            },
        ),
        at(12, 1, ChainEvent::Ended { agreement: 1, ended_at: ENDED_AT, tx_hash: "0xe9d".into() }),
    ];
    read(&store, history, 12).await;
    store.conference_running(1, &common::deployed()).await.unwrap();
    store.conference_removed(1).await.unwrap();
    let settle = OperatorCall::Settle {
        agreement: 1,
        session: 1,
        started_at: STARTED_AT,
        availability_bps: 10_000,
        evidence: Default::default(),
        report: Default::default(),
    };
    store.enqueue(&settle).await.unwrap();
    let id = store.unfinished_outbox().await.unwrap()[0].id;
    assert!(store.record_attempt(id, OutboxState::Pending, &signed_tx(1, 7)).await.unwrap());
    let attempt = store.attempts(id).await.unwrap().remove(0);
    store.outbox_mined(id, &attempt, 13, true, "mined").await.unwrap();
    read(&store, vec![at(13, 0, settled())], 13).await;
    let before = store.agreement(1).await.unwrap().unwrap();
    assert_eq!((before.chain_status, before.charged.as_str()), (ChainStatus::Settled, "600000000000000"));
    assert_eq!(store.sessions_of(1).await.unwrap().len(), 1);

    let report = store.roll_back_to(13).await.unwrap();
    assert_eq!((report.removed_agreements.len(), report.rebuilt_agreements.clone()), (0, vec![1]));
    let a = store.agreement(1).await.unwrap().unwrap();
    assert_eq!(a.chain_status, ChainStatus::Ended, "back to its state before the settlement");
    assert_eq!((a.started_at, a.ended_at, a.end_tx.as_deref()), (Some(STARTED_AT), Some(ENDED_AT), Some("0xe9d")));
    assert_eq!((a.charged.as_str(), a.settle_tx.clone(), a.refund.clone()), ("0", None, None));
    assert_eq!((a.conference_state, a.deploy_count), (ConferenceState::Removed, 1), "the conference columns are kept");
    assert!(store.sessions_of(1).await.unwrap().is_empty());
    let call = &store.outbox_of(1).await.unwrap()[0];
    assert_eq!(
        (call.state, call.mined_block, call.attempts),
        (OutboxState::Sent, None, 1),
        "the settlement is checked again"
    );
    assert_eq!(store.cursor().await.unwrap(), Some(13));

    // The settlement mined again on the new branch settles it once, with the same figures.
    read(&store, vec![at(14, 0, settled())], 14).await;
    let a = store.agreement(1).await.unwrap().unwrap();
    assert_eq!((a.chain_status, a.charged.as_str()), (ChainStatus::Settled, "600000000000000"));
    assert_eq!(store.sessions_of(1).await.unwrap().len(), 1);
}

async fn a_fork_under_a_closing_reopens_the_terms(store: Store) {
    read(&store, vec![at(5, 0, terms_published()), at(6, 0, ChainEvent::TermsClosed { terms: 1 })], 6).await;
    assert!(!store.terms().await.unwrap()[0].open);
    store.roll_back_to(6).await.unwrap();
    assert!(store.terms().await.unwrap()[0].open, "closed only on the abandoned branch");
    store.roll_back_to(5).await.unwrap();
    assert!(store.terms().await.unwrap().is_empty(), "published only on the abandoned branch");
}

async fn the_next_nonce_is_past_every_call_in_flight(store: Store) {
    read(&store, vec![at(5, 0, terms_published()), at(10, 0, signed())], 10).await;
    assert_eq!(store.next_nonce_in_flight().await.unwrap(), None);
    let activate = OperatorCall::Activate { agreement: 1, session: 1, requested_at: SIGNED_AT, region: 0 };
    store.enqueue(&activate).await.unwrap();
    let id = store.unfinished_outbox().await.unwrap()[0].id;
    assert!(store.record_attempt(id, OutboxState::Pending, &signed_tx(4, 1)).await.unwrap());
    assert!(!store.record_attempt(id, OutboxState::Pending, &signed_tx(5, 2)).await.unwrap(), "no longer pending");
    assert_eq!(store.next_nonce_in_flight().await.unwrap(), Some(5));
    // A fee bump: the same nonce, a second attempt; the call shows the newest until one is mined.
    assert!(store.record_attempt(id, OutboxState::Sent, &signed_tx(4, 3)).await.unwrap());
    let attempts = store.attempts(id).await.unwrap();
    assert_eq!(attempts.iter().map(|a| (a.attempt, a.nonce)).collect::<Vec<_>>(), vec![(1, 4), (2, 4)]);
    store.outbox_mined(id, &attempts[0], 20, false, "mined").await.unwrap();
    let call = &store.outbox_of(1).await.unwrap()[0];
    assert_eq!((call.state, call.mined_block), (OutboxState::Sent, Some(20)), "not deep enough yet");
    assert_eq!(call.tx_hash, Some(attempts[0].tx_hash.clone()), "the one mined, not the newest");
    store.outbox_mined(id, &attempts[0], 20, true, "mined").await.unwrap();
    assert_eq!(store.outbox_of(1).await.unwrap()[0].state, OutboxState::Done);
    assert_eq!(store.next_nonce_in_flight().await.unwrap(), None, "mined: the node counts it");
}

#[tokio::test]
async fn the_fork_block_follows_the_newest_stored_block_still_on_the_chain() {
    let stored: Vec<(u64, String)> = [(12, "c"), (11, "b"), (10, "a")].map(|(n, h)| (n, h.to_string())).to_vec();
    let chain = |canonical: &'static [(u64, &'static str)]| {
        move |number: u64| async move { Ok(canonical.iter().find(|(n, _)| *n == number).map(|(_, h)| h.to_string())) }
    };
    let same = fork_block(&stored, chain(&[(10, "a"), (11, "b"), (12, "c")])).await.unwrap();
    assert_eq!(same, Some(13), "no fork: nothing to roll back");
    let one = fork_block(&stored, chain(&[(10, "a"), (11, "b"), (12, "c2")])).await.unwrap();
    assert_eq!(one, Some(12));
    let two = fork_block(&stored, chain(&[(10, "a"), (11, "b2"), (12, "c2"), (13, "d2")])).await.unwrap();
    assert_eq!(two, Some(11));
    let shorter = fork_block(&stored, chain(&[(10, "a")])).await.unwrap();
    assert_eq!(shorter, Some(11), "a chain now shorter than what was read");
    let deeper = fork_block(&stored, chain(&[(10, "a2"), (11, "b2"), (12, "c2")])).await.unwrap();
    assert_eq!(deeper, None, "deeper than what is kept");
}

/// Agreement `id` on terms 1, its deposit and customer its own, signed in block `id / 100 + 2`.
fn signed_as(id: u64) -> ChainEvent {
    let ChainEvent::Signed { terms, model, token_id, price, allowed_regions, gdpr, duration, tx_hash, .. } = signed()
    else {
        unreachable!("signed() is a signature")
    };
    ChainEvent::Signed {
        agreement: id,
        terms,
        customer: format!("0x{id:040x}"),
        deposit: (id * 1_000).to_string(),
        model,
        token_id,
        price,
        surcharge_bps: (id % 3) as u32 * 1_000,
        allowed_regions,
        gdpr,
        duration,
        signed_at: SIGNED_AT + id / 100,
        tx_hash,
    }
}

/// More rows than one statement takes (a catch-up writes its range in multi-row statements), signatures
/// interleaved with an activation and a settlement that must apply after their own signature; read twice
/// (the second time nothing is applied again); then a fork in the middle of the range.
async fn a_range_of_thousands_of_events_is_recorded_in_order_once_and_rolled_back(store: Store) {
    const AGREEMENTS: u64 = 6_000;
    let mut events = vec![at(1, 0, terms_published())];
    for id in 1..=AGREEMENTS {
        events.push(at(id / 100 + 2, id % 100, signed_as(id)));
        if id == 2_500 {
            let activated = ChainEvent::Activated {
                agreement: 1,
                started_at: STARTED_AT,
                ends_at: STARTED_AT + 3_600,
                region: 0,
                tx_hash: "0xac7".into(),
            };
            events.push(at(id / 100 + 2, 100, activated));
            events.push(at(
                id / 100 + 2,
                101,
                ChainEvent::Ended { agreement: 1, ended_at: ENDED_AT, tx_hash: "0xe".into() },
            ));
            events.push(at(id / 100 + 2, 102, settled()));
        }
    }
    let last = AGREEMENTS / 100 + 2;
    read(&store, events.clone(), last).await;
    read(&store, events, last).await;

    for id in [2, 2_000, 2_001, 5_333, 5_334, AGREEMENTS] {
        let a = store.agreement(id).await.unwrap().unwrap_or_else(|| panic!("agreement {id} recorded"));
        assert_eq!(a.deposit, (id * 1_000).to_string(), "deposit of {id}");
        assert_eq!(a.customer, format!("0x{id:040x}"), "customer of {id}");
        assert_eq!(a.surcharge_bps, (id % 3) as u32 * 1_000, "surcharge of {id}");
        assert_eq!(a.signed_at, SIGNED_AT + id / 100, "signed at, of {id}");
        assert_eq!(a.chain_status, ChainStatus::Requested, "{id} waits for its activation");
    }
    assert!(store.agreement(AGREEMENTS + 1).await.unwrap().is_none());
    let first = store.agreement(1).await.unwrap().unwrap();
    assert_eq!(first.chain_status, ChainStatus::Settled, "activated, ended and settled after its signature");
    assert_eq!(first.charged, "600000000000000", "charged once, though the range was read twice");
    assert_eq!(store.last_block().await.unwrap().map(|b| b.0), Some(last));

    // The fork at block 27 takes the settlement (block 27) and the agreements signed from it on.
    let report = store.roll_back_to(27).await.unwrap();
    assert_eq!(report.removed_agreements, (2_500..=AGREEMENTS).collect::<Vec<_>>());
    assert_eq!(report.rebuilt_agreements, vec![1]);
    assert!(store.agreement(2_499).await.unwrap().is_some());
    assert!(store.agreement(2_500).await.unwrap().is_none());
    let first = store.agreement(1).await.unwrap().unwrap();
    assert_eq!(first.chain_status, ChainStatus::Requested, "its activation was on the abandoned branch");
    assert_eq!(first.charged, "0");
    assert_eq!(store.cursor().await.unwrap(), Some(27));
}
