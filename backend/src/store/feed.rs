//! The change feed: how whatever follows the records (progress streams, the leader's reconciler) learns
//! that one changed, in this process or in another replica, without reading the store on a timer.
//!
//! Every write that changes what an agreement's record shows tells this process's followers once it is
//! committed ([`Heard`] with `remote` false, through the broadcast of [`super::Store::subscribe`]). On
//! PostgreSQL it is also published to the other processes sharing the database: a `NOTIFY` on
//! [`CHANNEL`] inside the write's transaction, so that PostgreSQL delivers it exactly when the write
//! commits and never when it rolls back (a write of one statement sends it in a statement of its own
//! right after). Each store listens on its own connection (`follow`) and hands what other stores
//! published to the same broadcast (`remote` true), skipping its own echoes by the origin each payload
//! names. Notifications are not durable: while the listener's connection is down they are lost, so once
//! it is back it tells every follower to read everything again ([`Change::All`]). On SQLite one process
//! owns the file, and the broadcast alone is the feed.

use std::{collections::BTreeSet, fmt::Write as _, time::Duration};

use sqlx::{AnyConnection, AssertSqlSafe, postgres::PgListener};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::Result;

/// A change to what an agreement's record shows (its chain state, conference, probes, outbox, stop or
/// participants), heard after the change is committed, by this process's followers and, on PostgreSQL,
/// by those of every other process on the database (this module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Agreement(u64),
    /// A customer's order was kept, to be sent in the operator's next batch (no agreement's record
    /// shows it yet: the settler's business).
    Orders,
    /// Anything may have changed: a rollback, or the chain's clock (which every record shows) moved.
    All,
}

/// The one channel every store of a database publishes its changes on.
pub const CHANNEL: &str = "conference_changes";

/// How many notifications one round trip carries (a transaction that touched more sends several).
const NOTIFY_PER_STATEMENT: usize = 500;

/// The longest wait between two attempts to connect the listener again.
const RECONNECT_AT_MOST: Duration = Duration::from_secs(5);

/// After this long without a notification the listener asks its connection a query: one that died
/// without a word (the server's host gone, or a firewall that forgot the connection) stays silent for
/// good, as a quiet feed does, and there is no TCP keepalive on it to tell them apart.
const QUIET: Duration = Duration::from_secs(10);

/// How long that query may take before the connection counts as lost.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// What a follower hears: a change, and whether another process (another replica) made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heard {
    pub change: Change,
    pub remote: bool,
}

/// A store's name in the notifications it publishes (random per [`super::Store::open`]), so that its
/// listener knows its own echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin(u64);

impl Origin {
    pub fn random() -> Self {
        Self(rand::random())
    }
}

/// `changes` as followers hear them: each agreement once, in order of first mention, or one
/// [`Change::All`] that covers everything.
pub(super) fn coalesce(changes: impl IntoIterator<Item = Change>) -> Vec<Change> {
    let mut coalesced: Vec<Change> = Vec::new();
    for change in changes {
        if change == Change::All {
            return vec![Change::All];
        }
        if !coalesced.contains(&change) {
            coalesced.push(change);
        }
    }
    coalesced
}

/// The payloads that tell of `changes`: one per agreement (whatever else the transaction did to it),
/// or one `all` that covers everything; `<origin in 16 hex digits>:<agreement id | orders | all>`.
fn payloads(origin: Origin, changes: &[Change]) -> Vec<String> {
    if changes.contains(&Change::All) {
        return vec![format!("{:016x}:all", origin.0)];
    }
    let ids: BTreeSet<u64> = changes
        .iter()
        .filter_map(|change| match change {
            Change::Agreement(id) => Some(*id),
            Change::Orders | Change::All => None,
        })
        .collect();
    let orders = changes.contains(&Change::Orders).then(|| format!("{:016x}:orders", origin.0));
    ids.into_iter().map(|id| format!("{:016x}:{id}", origin.0)).chain(orders).collect()
}

/// What a notification's payload says: None for this store's own echo. A payload this version cannot
/// read (another version of the service shares the database) is taken as "everything changed": reading
/// too much is safe, missing a change is not.
fn read_payload(payload: &str, me: Origin) -> Option<Change> {
    let parsed = payload.split_once(':').and_then(|(origin, what)| {
        let origin = u64::from_str_radix(origin, 16).ok()?;
        let change = match what {
            "all" => Change::All,
            "orders" => Change::Orders,
            id => Change::Agreement(id.parse().ok()?),
        };
        Some((origin, change))
    });
    match parsed {
        Some((origin, _)) if origin == me.0 => None,
        Some((_, change)) => Some(change),
        None => {
            warn!(payload, "change feed: a notification this version cannot read; reading everything again");
            Some(Change::All)
        }
    }
}

/// Publishes `changes` in the transaction `conn` is in (PostgreSQL only): delivered to every listener
/// when the transaction commits, in commit order, and dropped if it rolls back.
pub(super) async fn publish(conn: &mut AnyConnection, origin: Origin, changes: &[Change]) -> Result<()> {
    for chunk in payloads(origin, changes).chunks(NOTIFY_PER_STATEMENT) {
        // NOTIFY takes its payload as a literal, not a parameter; a payload is hex digits, a colon and
        // a decimal id or "all", made above, never anything a client sent. Several NOTIFYs in one string
        // are one round trip (the simple query protocol).
        let mut sql = String::new();
        for payload in chunk {
            let _ = write!(sql, "NOTIFY {CHANNEL}, '{payload}';");
        }
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    }
    Ok(())
}

/// A listener on [`CHANNEL`], connected from the store's URL; it does not reconnect by itself
/// ([`follow`] does, and says so to the followers).
pub(super) async fn listen(url: &str) -> Result<PgListener> {
    let mut listener = PgListener::connect(url).await?;
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Hands what other stores publish to `feed` until `stop` is cancelled. When the connection fails, or
/// after [`QUIET`] does not answer a query within [`QUERY_TIMEOUT`], it connects again (waiting longer
/// each time, at most [`RECONNECT_AT_MOST`]) and then sends [`Change::All`]: whatever was published
/// meanwhile is lost.
pub(super) async fn follow(
    mut listener: PgListener,
    url: String,
    me: Origin,
    feed: broadcast::Sender<Heard>,
    stop: CancellationToken,
) {
    loop {
        let lost = loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return,
                next = listener.try_recv() => Some(next),
                _ = tokio::time::sleep(QUIET) => None,
            };
            let Some(next) = next else {
                match tokio::time::timeout(QUERY_TIMEOUT, sqlx::query("SELECT 1").execute(&mut listener)).await {
                    Ok(Ok(_)) => continue,
                    Ok(Err(err)) => break err.to_string(),
                    Err(_) => break format!("a query got no answer within {} s", QUERY_TIMEOUT.as_secs()),
                }
            };
            match next {
                Ok(Some(notification)) => {
                    if let Some(change) = read_payload(notification.payload(), me) {
                        let _ = feed.send(Heard { change, remote: true });
                    }
                }
                Ok(None) => break "the connection closed".to_owned(),
                Err(err) => break err.to_string(),
            }
        };
        warn!(error = lost, "change feed: lost the listener's connection to PostgreSQL; connecting again");
        drop(listener);
        let mut wait = Duration::from_millis(100);
        listener = loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            match listen(&url).await {
                Ok(listener) => break listener,
                Err(err) => {
                    warn!(error = %err, retry_in_ms = wait.as_millis() as u64, "change feed: cannot listen yet");
                    wait = (wait * 2).min(RECONNECT_AT_MOST);
                }
            }
        };
        info!("change feed: listening again; followers read everything again");
        let _ = feed.send(Heard { change: Change::All, remote: true });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_tells_of_each_agreement_once() {
        let changes = [Change::Agreement(2), Change::Agreement(1), Change::Agreement(2)];
        assert_eq!(coalesce(changes), [Change::Agreement(2), Change::Agreement(1)]);
        assert_eq!(coalesce([Change::Agreement(2), Change::All, Change::Agreement(3)]), [Change::All]);
        assert!(coalesce([]).is_empty());
    }

    #[test]
    fn one_payload_per_agreement_or_one_for_everything() {
        let me = Origin(0xab);
        let changes = [Change::Agreement(7), Change::Agreement(3), Change::Agreement(7)];
        assert_eq!(payloads(me, &changes), ["00000000000000ab:3", "00000000000000ab:7"]);
        assert_eq!(payloads(me, &[Change::Agreement(1), Change::All]), ["00000000000000ab:all"]);
        assert_eq!(
            payloads(me, &[Change::Orders, Change::Agreement(1)]),
            ["00000000000000ab:1", "00000000000000ab:orders"]
        );
        assert!(payloads(me, &[]).is_empty());
    }

    #[test]
    fn a_payload_reads_back_and_an_echo_is_skipped() {
        let (me, other) = (Origin(1), Origin(u64::MAX));
        for change in [Change::Agreement(u64::MAX), Change::Agreement(0), Change::Orders, Change::All] {
            let payload = payloads(other, &[change]).remove(0);
            assert_eq!(read_payload(&payload, me), Some(change), "{payload}");
            assert_eq!(read_payload(&payload, other), None, "{payload} is the other's own echo");
        }
    }

    #[test]
    fn an_unreadable_payload_means_everything_changed() {
        for payload in ["", "all", "zz:1", "0000000000000002:", "0000000000000002:-1", "0000000000000002:x"] {
            assert_eq!(read_payload(payload, Origin(1)), Some(Change::All), "{payload:?}");
        }
    }
}
