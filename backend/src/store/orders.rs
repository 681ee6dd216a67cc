//! The customers' signed orders (see [`crate::domain::order`]): kept once the API accepted them, sent by
//! the settler in a batch (`openOrder`), opened by the watcher when the chain emits their `OrderFilled`,
//! or failed with the chain's reason.

use alloy::primitives::{Address, Bytes, U256};
use sqlx::{Row, any::AnyRow};

use super::{Change, Store, now_wall, stored_wei};
use crate::{
    Error, Result,
    domain::order::{Order, OrderStatus, SignedOrder},
};

/// An order as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub id: i64,
    pub signed: SignedOrder,
    /// The token of its terms' account (0: ETH).
    pub token_id: u8,
    /// What it locks in the account once opened (counted against the free balance while pending).
    pub lock: U256,
    pub status: OrderStatus,
    pub agreement_id: Option<u64>,
    pub reason: Option<String>,
    /// The batch carrying its `openOrder` and its position there, once sent.
    pub batch: Option<(i64, u64)>,
    /// When the API accepted it (wall clock, unix seconds).
    pub received_wall_at: i64,
}

/// What a pending order will lock once opened, and the nonce of the batch transaction carrying it (None
/// while it waits for a batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLock {
    pub lock: U256,
    pub batch_nonce: Option<u64>,
}

/// How an address is stored (and looked up): lowercase hex with 0x.
pub fn address_key(address: Address) -> String {
    format!("{address:#x}")
}

impl Store {
    /// Keeps an accepted order, pending; false (keeping nothing) if the customer's nonce is kept already.
    pub async fn insert_order(&self, order: &SignedOrder, token_id: u8, lock: U256) -> Result<bool> {
        let o = &order.order;
        let inserted = sqlx::query(
            "INSERT INTO orders (customer, nonce, terms_id, allowed_regions, gdpr, max_cost, deadline, signature, \
             token_id, lock, received_wall_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (customer, nonce) DO NOTHING",
        )
        .bind(address_key(order.customer))
        .bind(o.nonce.to_string())
        .bind(i64::from(o.terms_id))
        .bind(i64::from(o.allowed_regions))
        .bind(o.gdpr as i64)
        .bind(o.max_cost.to_string())
        .bind(o.deadline as i64)
        .bind(order.signature.to_string())
        .bind(i64::from(token_id))
        .bind(lock.to_string())
        .bind(now_wall())
        .execute(&self.writer)
        .await?;
        let new = inserted.rows_affected() == 1;
        if new {
            self.committed(Change::Orders).await;
        }
        Ok(new)
    }

    /// The customer's order with this nonce, if kept.
    pub async fn order(&self, customer: Address, nonce: U256) -> Result<Option<OrderRecord>> {
        let row = sqlx::query("SELECT * FROM orders WHERE customer = $1 AND nonce = $2")
            .bind(address_key(customer))
            .bind(nonce.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// What the customer's pending orders in token `token_id` will lock, each with the nonce of the
    /// operator transaction carrying it once in a batch: the part of the free balance that new orders
    /// cannot count on, until each is opened on-chain.
    pub async fn pending_locks(&self, customer: Address, token_id: u8) -> Result<Vec<PendingLock>> {
        let rows = sqlx::query(
            "SELECT o.lock, b.nonce FROM orders o LEFT JOIN batches b ON b.id = o.batch_id \
             WHERE o.customer = $1 AND o.token_id = $2 AND o.status = 'pending'",
        )
        .bind(address_key(customer))
        .bind(i64::from(token_id))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let lock = stored_wei(&r.get::<String, _>(0))?;
                Ok(PendingLock { lock, batch_nonce: r.get::<Option<i64>, _>(1).map(|nonce| nonce as u64) })
            })
            .collect()
    }

    /// Pending orders not in a batch yet, oldest first.
    pub async fn orders_to_send(&self) -> Result<Vec<OrderRecord>> {
        let rows = sqlx::query("SELECT * FROM orders WHERE status = 'pending' AND batch_id IS NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Pending orders carried by batch `batch`.
    pub async fn orders_in_batch(&self, batch: i64) -> Result<Vec<OrderRecord>> {
        let rows = sqlx::query("SELECT * FROM orders WHERE status = 'pending' AND batch_id = $1 ORDER BY batch_index")
            .bind(batch)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// The chain refused a pending order, or it can no longer be submitted: failed, with why.
    pub async fn order_failed(&self, id: i64, reason: &str) -> Result<()> {
        sqlx::query("UPDATE orders SET status = 'failed', reason = $1 WHERE id = $2 AND status = 'pending'")
            .bind(reason)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Takes a pending order out of its batch (whose nonce another transaction took): it goes into the next.
    pub async fn order_unbatched(&self, id: i64) -> Result<()> {
        sqlx::query("UPDATE orders SET batch_id = NULL, batch_index = NULL WHERE id = $1 AND status = 'pending'")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

fn order_from_row(r: &AnyRow) -> Result<OrderRecord> {
    let bad = |column: &str, e: &dyn std::fmt::Display| Error::Config(format!("stored order {column}: {e}"));
    let customer: String = r.get("customer");
    let signature: String = r.get("signature");
    let order = Order {
        terms_id: r.get::<i64, _>("terms_id") as u32,
        allowed_regions: r.get::<i64, _>("allowed_regions") as u32,
        gdpr: r.get::<i64, _>("gdpr") != 0,
        max_cost: stored_wei(&r.get::<String, _>("max_cost"))?,
        nonce: stored_wei(&r.get::<String, _>("nonce"))?,
        deadline: r.get::<i64, _>("deadline") as u64,
    };
    let batch = r.get::<Option<i64>, _>("batch_id").zip(r.get::<Option<i64>, _>("batch_index"));
    Ok(OrderRecord {
        id: r.get("id"),
        signed: SignedOrder {
            customer: customer.parse().map_err(|e| bad("customer", &e))?,
            order,
            signature: signature.parse::<Bytes>().map_err(|e| bad("signature", &e))?,
        },
        token_id: r.get::<i64, _>("token_id") as u8,
        lock: stored_wei(&r.get::<String, _>("lock"))?,
        status: OrderStatus::parse(&r.get::<String, _>("status")),
        agreement_id: r.get::<Option<i64>, _>("agreement_id").map(|id| id as u64),
        reason: r.get("reason"),
        batch: batch.map(|(id, index)| (id, index as u64)),
        received_wall_at: r.get("received_wall_at"),
    })
}
