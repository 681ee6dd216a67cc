//! Customer orders and batched operator calls in the store, once on SQLite and once on PostgreSQL: an
//! order is kept once per nonce and counted against the balance while pending (with the nonce of the
//! batch carrying it, once in one); a batch is stored with its members before broadcast, only if none
//! moved; a failed call is queued again a bounded number of times; `OrderFilled` opens the order and
//! makes the agreement an account one; a rollback of its block makes the order pending again, in the
//! batch that carried it.

use alloy::primitives::{Address, B256, Bytes, U256};
use conference_backend::{
    domain::{
        event::ChainEvent,
        operator::{Fees, MAX_RETRIES, OperatorCall, SignedTx},
        order::{Order, OrderStatus, SignedOrder},
    },
    store::{
        Store,
        events::RecordedEvent,
        outbox::{BatchMember, OutboxState},
    },
};

#[macro_use]
mod common;

on_both_databases!(orders_batches_and_their_outcomes_are_kept_exactly_once);

fn customer() -> Address {
    common::CUSTOMER.parse().unwrap()
}

fn order(nonce: u64) -> SignedOrder {
    SignedOrder {
        customer: customer(),
        order: Order {
            terms_id: 1,
            allowed_regions: 0,
            gdpr: false,
            max_cost: U256::from(10u64.pow(18)),
            nonce: U256::from(nonce),
            deadline: 2_000_000_000,
        },
        signature: Bytes::from(vec![7u8; 65]),
    }
}

fn tx(nonce: u64, byte: u8) -> SignedTx {
    SignedTx { nonce, hash: B256::repeat_byte(byte), raw: vec![byte; 8], fees: Fees { max_fee: 2, priority_fee: 1 } }
}

/// What the customer's pending orders in `token` will lock.
async fn pending_locks(store: &Store, token: u8) -> U256 {
    store.pending_locks(customer(), token).await.unwrap().iter().map(|order| order.lock).sum()
}

/// The nonce of the batch carrying each of the customer's pending orders in ETH (None: in no batch yet).
async fn batch_nonces(store: &Store) -> Vec<Option<u64>> {
    store.pending_locks(customer(), 0).await.unwrap().iter().map(|order| order.batch_nonce).collect()
}

async fn orders_batches_and_their_outcomes_are_kept_exactly_once(store: Store) {
    store.apply_events(&[common::terms_published()], 2, common::SIGNED_AT).await.unwrap();
    let lock = U256::from(36) * U256::from(10u64.pow(14));
    assert!(store.insert_order(&order(1), 0, lock).await.unwrap());
    assert!(!store.insert_order(&order(1), 0, lock).await.unwrap(), "a nonce is kept once");
    assert!(store.insert_order(&order(2), 0, lock).await.unwrap());
    assert_eq!(pending_locks(&store, 0).await, lock * U256::from(2));
    assert_eq!(pending_locks(&store, 1).await, U256::ZERO, "another token");
    assert_eq!(batch_nonces(&store).await, [None, None], "in no batch yet");

    // A call and both orders in one batch, stored before broadcast.
    let signed = RecordedEvent { block: 39, log_index: 0, block_hash: "0x39".into(), event: common::signed() };
    store.apply_block_events(&[signed], &[(39, "0x39".into())], 40, common::SIGNED_AT, 0).await.unwrap();
    let activate = OperatorCall::Activate { agreement: 1, session: 1, requested_at: common::SIGNED_AT, region: 0 };
    assert!(store.enqueue(&activate).await.unwrap());
    let call = store.unfinished_outbox().await.unwrap()[0].id;
    let (first, second) = {
        let orders = store.orders_to_send().await.unwrap();
        (orders[0].id, orders[1].id)
    };
    let members = [BatchMember::Call(call), BatchMember::Order(first), BatchMember::Order(second)];
    let batch = store.record_batch(&members, &tx(5, 1)).await.unwrap().expect("stored");
    assert_eq!(store.record_batch(&members, &tx(6, 2)).await.unwrap(), None, "members in a batch join no other");
    assert_eq!(store.batches_in_flight().await.unwrap(), vec![batch]);
    assert_eq!(batch_nonces(&store).await, [Some(5), Some(5)], "the nonce of the batch carrying them");
    assert_eq!(store.next_nonce_in_flight().await.unwrap(), Some(6));
    assert!(store.orders_to_send().await.unwrap().is_empty());
    let calls = store.calls_in_batch(batch).await.unwrap();
    assert_eq!((calls[0].state, calls[0].batch, calls[0].batch_index), (OutboxState::Sent, Some(batch), Some(0)));
    let orders = store.orders_in_batch(batch).await.unwrap();
    assert_eq!(orders.iter().map(|o| o.batch).collect::<Vec<_>>(), [Some((batch, 1)), Some((batch, 2))]);
    store.record_batch_attempt(batch, &tx(5, 3)).await.unwrap();
    let attempts = store.batch_attempts(batch).await.unwrap();
    assert_eq!(attempts.iter().map(|a| (a.attempt, a.nonce)).collect::<Vec<_>>(), [(1, 5), (2, 5)]);
    assert_eq!(store.calls_in_batch(batch).await.unwrap()[0].attempts, 2);

    // Mined: the call failed in the batch, order 2 too; order 1 opened (its OrderFilled). Not deep enough
    // yet: where it was mined is recorded, and nothing is finished.
    let failed = [
        (BatchMember::Call(call), "Escrow_WrongStatus".to_owned()),
        (BatchMember::Order(second), "Escrow_InsufficientBalance".to_owned()),
    ];
    assert_eq!(store.batch_mined(batch, &attempts[1], 40, false, "mined", &failed).await.unwrap(), 0);
    let sent = &store.calls_in_batch(batch).await.unwrap()[0];
    assert_eq!(
        (sent.state, sent.mined_block, sent.tx_hash.as_deref()),
        (OutboxState::Sent, Some(40), Some(attempts[1].tx_hash.as_str()))
    );
    assert_eq!(pending_locks(&store, 0).await, lock * U256::from(2));
    // Deep enough: both failed members finished, with the escrow's reasons.
    assert_eq!(store.batch_mined(batch, &attempts[1], 40, true, "mined", &failed).await.unwrap(), 2);
    let call_row = store.outbox_of(1).await.unwrap().into_iter().find(|item| item.id == call).unwrap();
    assert_eq!((call_row.state, call_row.outcome.as_deref()), (OutboxState::Failed, Some("Escrow_WrongStatus")));
    let filled = ChainEvent::OrderFilled { agreement: 1, customer: format!("{:#x}", customer()), nonce: "1".into() };
    let recorded = RecordedEvent { block: 40, log_index: 1, block_hash: "0x40".into(), event: filled };
    store.apply_block_events(&[recorded], &[(40, "0x40".into())], 41, common::SIGNED_AT, 0).await.unwrap();
    let opened = store.order(customer(), U256::from(1)).await.unwrap().unwrap();
    assert_eq!((opened.status, opened.agreement_id), (OrderStatus::Opened, Some(1)));
    let failed = store.order(customer(), U256::from(2)).await.unwrap().unwrap();
    assert_eq!((failed.status, failed.reason.as_deref()), (OrderStatus::Failed, Some("Escrow_InsufficientBalance")));
    assert_eq!(pending_locks(&store, 0).await, U256::ZERO);
    assert!(store.agreement(1).await.unwrap().unwrap().from_account);
    assert!(store.batches_in_flight().await.unwrap().is_empty());

    // The failed call is queued again, at most MAX_RETRIES times.
    assert!(!store.is_queued(1, 1, "activate").await.unwrap(), "a failed call with retries left waits for one");
    for retry in 1..=MAX_RETRIES {
        assert!(store.retry_failed(1, 1, "activate").await.unwrap());
        let item = &store.unfinished_outbox().await.unwrap()[0];
        assert_eq!((item.state, item.retries, item.batch), (OutboxState::Pending, retry, None));
        assert!(item.outcome.as_deref().is_some_and(|o| o.starts_with("retrying after: ")), "{:?}", item.outcome);
        store.outbox_finished(item.id, OutboxState::Failed, "Escrow_WrongStatus").await.unwrap();
    }
    assert!(!store.retry_failed(1, 1, "activate").await.unwrap(), "retries used up");
    assert!(store.is_queued(1, 1, "activate").await.unwrap(), "cancelled: nothing more to do");

    // The block of OrderFilled leaves the chain: the order is pending again, in the batch that carried it.
    store.roll_back_to(40).await.unwrap();
    let again = store.order(customer(), U256::from(1)).await.unwrap().unwrap();
    assert_eq!((again.status, again.agreement_id, again.batch), (OrderStatus::Pending, None, Some((batch, 1))));
    assert_eq!(store.batches_in_flight().await.unwrap(), vec![batch]);
    assert!(!store.agreement(1).await.unwrap().unwrap().from_account, "rebuilt from its remaining events");
}
