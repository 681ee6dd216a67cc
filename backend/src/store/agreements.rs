//! Terms versions, agreements (with the customer's signed stop of their current conference), and
//! their settled sessions, as the API and the reconciler read them.

use sqlx::{Row, any::AnyRow};

use super::{Change, Store, now_wall, stored_seconds, stored_wei};
use crate::{
    Result,
    domain::{
        agreement::{Agreement, ConferenceState, Model, Session, Terms},
        operator::MAX_RETRIES,
        stop::SignedStop,
    },
};

/// Agreements with the customer's signed stop of their current conference, if any, then `$tail`.
macro_rules! agreements_where {
    ($tail:literal) => {
        concat!(
            "SELECT a.*, s.started_at AS stop_started_at, s.stopped_at AS stop_stopped_at, ",
            "s.deadline AS stop_deadline, s.signature AS stop_signature, t.monitor AS terms_monitor ",
            "FROM agreements a LEFT JOIN signed_stops s ON s.agreement_id = a.id AND s.session = a.session ",
            "LEFT JOIN terms t ON t.id = a.terms_id ",
            $tail
        )
    };
}

impl Store {
    /// Every terms version, newest first.
    pub async fn terms(&self) -> Result<Vec<Terms>> {
        let rows = sqlx::query("SELECT * FROM terms ORDER BY id DESC").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let model: Model = r.get::<String, _>("model").parse()?;
                let price: String = r.get("price");
                let max_duration = r.get::<i64, _>("max_duration") as u64;
                let deposit = match model {
                    Model::FixedPrice => Some(price.clone()),
                    Model::DynamicPrice => Some(wei_product(&price, max_duration)?),
                    Model::TimeLimited | Model::FlexiblePeriod => None,
                };
                Ok(Terms {
                    id: r.get::<i64, _>("id") as u64,
                    offer_id: r.get::<i64, _>("offer_id") as u64,
                    model,
                    token_id: r.get::<i64, _>("token_id") as u8,
                    deposit,
                    price,
                    max_duration,
                    minimum_charge: r.get("minimum_charge"),
                    regions: r.get::<i64, _>("regions") as u32,
                    gdpr: r.get::<i64, _>("gdpr") != 0,
                    open: r.get::<i64, _>("open") != 0,
                    monitor: r.get("monitor"),
                })
            })
            .collect()
    }

    pub async fn agreement(&self, id: u64) -> Result<Option<Agreement>> {
        let row = sqlx::query(agreements_where!("WHERE a.id = $1")).bind(id as i64).fetch_optional(&self.pool).await?;
        row.as_ref().map(agreement_from_row).transpose()
    }

    /// Up to `limit` agreements with an id below `before` (all without it), newest (largest id) first;
    /// only `customer`'s if given.
    pub async fn agreements_page(
        &self,
        customer: Option<alloy::primitives::Address>,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Agreement>> {
        // Ids are BIGINT: a `before` past the largest one is the same as none.
        let before = before.map_or(i64::MAX, |id| i64::try_from(id).unwrap_or(i64::MAX));
        let rows = match customer {
            // Addresses are stored checksummed, as the watcher reads them; compared in lower case.
            Some(customer) => {
                sqlx::query(agreements_where!("WHERE a.id < $1 AND LOWER(a.customer) = $2 ORDER BY a.id DESC LIMIT $3"))
                    .bind(before)
                    .bind(format!("{customer:#x}"))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(agreements_where!("WHERE a.id < $1 ORDER BY a.id DESC LIMIT $2"))
                    .bind(before)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(agreement_from_row).collect()
    }

    /// Agreements that still need the backend: not finished on-chain, or with a conference to remove.
    pub async fn open_agreements(&self) -> Result<Vec<Agreement>> {
        let rows = sqlx::query(agreements_where!(
            "WHERE a.chain_status NOT IN ('settled', 'refunded') \
             OR a.conference_state IN ('running', 'deploying') ORDER BY a.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(agreement_from_row).collect()
    }

    /// The open agreements that may have a step to take at `chain_now` (see [`next_step`]), for the
    /// reconciler's full pass: a superset of those whose next step is neither `Wait` nor a chain step
    /// whose call is queued already, and nearly none of the others. At rest nearly every live agreement is active with its conference running,
    /// no stop signed and its end time ahead: it waits whatever happens, until an event (which the
    /// watcher marks) or the clock (its end time, compared here) moves it. So the pass reads a handful
    /// of rows, not one per live agreement.
    ///
    /// [`next_step`]: crate::domain::step::next_step
    pub async fn due_agreements(&self, chain_now: u64, activation_window: u64) -> Result<Vec<Agreement>> {
        // Each line is a branch of next_step that does not wait; `up` is a conference running or being
        // deployed. A chain step whose call is queued already (`queued`, as `is_queued` says) waits on the
        // chain too: an activation, end or settlement in flight is not read again each pass (under load,
        // thousands wait so). The store's tests check the superset against next_step itself.
        let rows = sqlx::query(agreements_where!(
            "WHERE (a.chain_status NOT IN ('settled', 'refunded') OR a.conference_state IN ('running', 'deploying')) \
             AND ( \
               a.chain_status = 'ended' AND (a.conference_state IN ('running', 'deploying') \
                  OR NOT EXISTS (SELECT 1 FROM outbox o WHERE o.agreement_id = a.id AND o.session = a.session \
                     AND o.call = 'settle' AND (o.state <> 'failed' OR o.retries >= $3))) \
               OR (a.chain_status IN ('settled', 'refunded') OR (a.chain_status = 'idle' AND a.model <> 'flexiblePeriod')) \
                  AND a.conference_state IN ('running', 'deploying') \
               OR a.chain_status = 'requested' AND ( \
                  a.conference_state = 'deploying' \
                  OR a.conference_state = 'running' AND (a.requested_at + $2 < $1 \
                     OR NOT EXISTS (SELECT 1 FROM outbox o WHERE o.agreement_id = a.id AND o.session = a.session \
                        AND o.call = 'activate' AND (o.state <> 'failed' OR o.retries >= $3))) \
                  OR a.conference_state NOT IN ('running', 'deploying') AND a.requested_at + $2 >= $1 \
                  OR a.model = 'flexiblePeriod' AND a.window_to <= $1 \
                     AND (a.conference_state IN ('running', 'deploying') \
                        OR a.requested_at IS NULL OR a.requested_at + $2 >= a.window_to)) \
               OR a.chain_status = 'active' AND ( \
                  a.conference_state <> 'running' \
                  OR s.started_at = a.started_at AND s.deadline >= $1 \
                  OR a.ends_at <= $1 \
                     AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.agreement_id = a.id AND o.session = a.session \
                        AND o.call = 'end' AND (o.state <> 'failed' OR o.retries >= $3))) \
               OR a.chain_status = 'idle' AND a.model = 'flexiblePeriod' AND ( \
                  a.window_to IS NULL OR a.window_to <= $1 \
                  OR a.window_from <= $1 AND a.conference_state <> 'running' \
                  OR (a.window_from IS NULL OR a.window_from > $1) AND a.conference_state IN ('running', 'deploying')) \
             ) ORDER BY a.id"
        ))
        .bind(stored_seconds(chain_now)?)
        .bind(stored_seconds(activation_window)?)
        .bind(MAX_RETRIES as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(agreement_from_row).collect()
    }

    /// Every settled conference of an agreement, oldest first.
    pub async fn sessions_of(&self, agreement: u64) -> Result<Vec<Session>> {
        let rows = sqlx::query("SELECT * FROM sessions WHERE agreement_id = $1 ORDER BY session")
            .bind(agreement as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Session {
                session: r.get::<i64, _>("session") as u64,
                started_at: r.get::<Option<i64>, _>("started_at").map(|v| v as u64),
                ended_at: r.get::<Option<i64>, _>("ended_at").map(|v| v as u64),
                availability_bps: r.get::<i64, _>("availability_bps") as u16,
                evidence: r.get("evidence"),
                charge: r.get("charge"),
                settle_tx: r.get("settle_tx"),
            })
            .collect())
    }

    /// Records a customer's signed stop for the agreement's current conference; the first one received
    /// counts. Returns whether this one was new.
    pub async fn record_signed_stop(&self, agreement: u64, session: u64, stop: &SignedStop) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO signed_stops (agreement_id, session, started_at, stopped_at, deadline, signature, \
             received_wall_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (agreement_id, session) DO NOTHING",
        )
        .bind(agreement as i64)
        .bind(session as i64)
        .bind(stored_seconds(stop.started_at)?)
        .bind(stored_seconds(stop.stopped_at)?)
        .bind(stored_seconds(stop.deadline)?)
        .bind(stop.signature.as_ref())
        .bind(now_wall())
        .execute(&self.writer)
        .await?;
        let new = inserted.rows_affected() == 1;
        if new {
            self.committed(Change::Agreement(agreement)).await;
        }
        Ok(new)
    }

    /// The signed stop recorded for the agreement's conference `session`, if any.
    pub async fn signed_stop(&self, agreement: u64, session: u64) -> Result<Option<SignedStop>> {
        let row = sqlx::query(
            "SELECT started_at AS stop_started_at, stopped_at AS stop_stopped_at, deadline AS stop_deadline, \
             signature AS stop_signature FROM signed_stops WHERE agreement_id = $1 AND session = $2",
        )
        .bind(agreement as i64)
        .bind(session as i64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => signed_stop_from_row(&row)?,
            None => None,
        })
    }
}

fn agreement_from_row(r: &AnyRow) -> Result<Agreement> {
    let opt_u64 = |col: &str| r.get::<Option<i64>, _>(col).map(|v| v as u64);
    Ok(Agreement {
        id: r.get::<i64, _>("id") as u64,
        terms_id: r.get::<i64, _>("terms_id") as u64,
        model: r.get::<String, _>("model").parse()?,
        customer: r.get("customer"),
        token_id: r.get::<i64, _>("token_id") as u8,
        price: r.get("price"),
        surcharge_bps: r.get::<i64, _>("surcharge_bps") as u32,
        deposit: r.get("deposit"),
        allowed_regions: r.get::<i64, _>("allowed_regions") as u32,
        gdpr: r.get::<i64, _>("gdpr") != 0,
        duration: r.get::<i64, _>("duration") as u64,
        window_from: opt_u64("window_from"),
        window_to: opt_u64("window_to"),
        chain_status: r.get::<String, _>("chain_status").parse()?,
        session: r.get::<i64, _>("session") as u64,
        signed_at: r.get::<i64, _>("signed_at") as u64,
        requested_at: opt_u64("requested_at"),
        started_at: opt_u64("started_at"),
        ends_at: opt_u64("ends_at"),
        region: r.get::<Option<i64>, _>("region").map(|v| v as u8),
        ended_at: opt_u64("ended_at"),
        charged: r.get("charged"),
        availability_bps: r.get::<Option<i64>, _>("availability_bps").map(|v| v as u16),
        refund: r.get("refund"),
        refund_deferred: r.get::<Option<i64>, _>("refund_deferred").map(|v| v != 0),
        refund_reason: r.get("refund_reason"),
        conference_state: r.get::<String, _>("conference_state").parse::<ConferenceState>()?,
        join_url: r.get("join_url"),
        conference_region: r.get::<Option<i64>, _>("conference_region").map(|v| v as u8),
        deploy_count: r.get::<i64, _>("deploy_count") as u64,
        sign_tx: r.get("sign_tx"),
        activate_tx: r.get("activate_tx"),
        end_tx: r.get("end_tx"),
        settle_tx: r.get("settle_tx"),
        signed_stop: signed_stop_from_row(r)?,
        monitor: r.get("terms_monitor"),
        from_account: r.get::<i64, _>("from_account") != 0,
    })
}

/// `price × seconds` for a decimal amount, as the contract computes a DynamicPrice deposit.
fn wei_product(price: &str, seconds: u64) -> Result<String> {
    Ok((stored_wei(price)? * alloy::primitives::U256::from(seconds)).to_string())
}

/// The signed stop joined to an agreement or outbox row (`stop_*` columns), if there is one.
pub(super) fn signed_stop_from_row(r: &AnyRow) -> Result<Option<SignedStop>> {
    let Some(started_at) = r.get::<Option<i64>, _>("stop_started_at") else { return Ok(None) };
    Ok(Some(SignedStop {
        started_at: started_at as u64,
        stopped_at: r.get::<i64, _>("stop_stopped_at") as u64,
        deadline: r.get::<i64, _>("stop_deadline") as u64,
        signature: r.get::<Vec<u8>, _>("stop_signature").into(),
    }))
}
