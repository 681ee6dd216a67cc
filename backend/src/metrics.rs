//! The service's Prometheus metrics (prometheus-client): one registry, written by the loops through the
//! small methods below and read by `GET /metrics` in Prometheus' text format. Facts of the database (the
//! outbox's depth, the conferences running) are not counted here but read from the store at each scrape
//! ([`Metrics::set_database_facts`]), so they are right from the first scrape after a restart.
//!
//! The watcher's progress is kept here too: `GET /readyz` ([`crate::health`]) reads it.

use std::{
    sync::Arc,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use prometheus_client::{
    encoding::prometheus_text,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use crate::domain::{event::ChainEvent, placement::NoFit};

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Every metric's name, for the docs and the tests: each one appears in a scrape from the start.
pub const NAMES: [&str; 14] = [
    "conference_watcher_lag_blocks",
    "conference_watcher_head_block",
    "conference_watcher_last_read_timestamp_seconds",
    "conference_chain_events_processed_total",
    "conference_reconcile_duration_seconds",
    "conference_outbox_depth",
    "conference_transactions_sent_total",
    "conference_transactions_failed_total",
    "conference_running",
    "conference_probes_total",
    "conference_settlement_availability_bps",
    "conference_placements_total",
    "conference_lost_total",
    "conference_redeploys_total",
];

/// Availability buckets in basis points. A settlement under 7,500 (75%) refunds the customer in full,
/// so 7,499 is a bucket boundary: `le="7499"` counts exactly the refunded settlements.
const AVAILABILITY_BUCKETS: [f64; 9] = [0.0, 2_500.0, 5_000.0, 7_499.0, 9_000.0, 9_500.0, 9_900.0, 9_999.0, 10_000.0];

type OutcomeLabel = [(&'static str, &'static str); 1];

const PLACEMENT_OUTCOMES: [&str; 3] = ["deployed", "excluded", "full"];

/// A handle on the service's metrics; clones share one registry.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    watcher_lag: Gauge,
    watcher_head: Gauge,
    watcher_read_at: Gauge,
    events: Counter,
    reconcile: Histogram,
    outbox_depth: Gauge,
    tx_sent: Counter,
    tx_failed: Counter,
    running: Gauge,
    probes: Family<OutcomeLabel, Counter>,
    availability: Histogram,
    placements: Family<OutcomeLabel, Counter>,
    lost: Counter,
    redeploys: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("conference");
        let watcher_lag = Gauge::default();
        registry.register(
            "watcher_lag_blocks",
            "Blocks the watcher has still to read, up to head less the confirmation depth, at its last look",
            watcher_lag.clone(),
        );
        let watcher_head = Gauge::default();
        registry.register(
            "watcher_head_block",
            "The chain's head block at the watcher's last look",
            watcher_head.clone(),
        );
        let watcher_read_at = Gauge::default();
        registry.register(
            "watcher_last_read_timestamp_seconds",
            "When the watcher last read the chain's head (Unix time)",
            watcher_read_at.clone(),
        );
        let events = Counter::default();
        registry.register("chain_events_processed", "Escrow events recorded in the store", events.clone());
        let reconcile = Histogram::new(exponential_buckets(0.005, 2.5, 11));
        registry.register(
            "reconcile_duration_seconds",
            "Time to take one agreement's next steps (including a deploy or removal of its conference)",
            reconcile.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "outbox_depth",
            "Operator calls queued and not finished (pending or sent)",
            outbox_depth.clone(),
        );
        let tx_sent = Counter::default();
        registry.register("transactions_sent", "Operator transactions signed and broadcast", tx_sent.clone());
        let tx_failed = Counter::default();
        registry.register(
            "transactions_failed",
            "Operator calls that failed: not sent because they would revert, or mined and reverted",
            tx_failed.clone(),
        );
        let running = Gauge::default();
        registry.register("running", "Conferences running (deployed and answering when last seen)", running.clone());
        let probes = Family::<OutcomeLabel, Counter>::default();
        registry.register("probes", "Probes of running conferences, by outcome (ok, failed)", probes.clone());
        let availability = Histogram::new(AVAILABILITY_BUCKETS);
        registry.register(
            "settlement_availability_bps",
            "The availability each settlement reported on-chain, in basis points (under 7500 refunds in full)",
            availability.clone(),
        );
        let placements = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "placements",
            "Conferences placed and deployed (deployed), or declined because no cluster meets their \
             constraints (excluded) or none has room (full)",
            placements.clone(),
        );
        let lost = Counter::default();
        registry.register(
            "lost",
            "Running conferences a probe found lost (their server exited or stopped answering)",
            lost.clone(),
        );
        let redeploys = Counter::default();
        registry.register(
            "redeploys",
            "Lost conferences of active agreements deployed again by the reconciler",
            redeploys.clone(),
        );
        // Every outcome from the start, so that a rate over them is defined before the first of each.
        for outcome in ["ok", "failed"] {
            let _ = probes.get_or_create(&[("outcome", outcome)]);
        }
        for outcome in PLACEMENT_OUTCOMES {
            let _ = placements.get_or_create(&[("outcome", outcome)]);
        }
        Self(Arc::new(Inner {
            registry,
            watcher_lag,
            watcher_head,
            watcher_read_at,
            events,
            reconcile,
            outbox_depth,
            tx_sent,
            tx_failed,
            running,
            probes,
            availability,
            placements,
            lost,
            redeploys,
        }))
    }

    /// The watcher read the chain's head and has `lag` blocks to read to catch up with it.
    pub fn watcher_lag(&self, head: u64, lag: u64) {
        self.0.watcher_head.set(saturating_i64(head));
        self.0.watcher_lag.set(saturating_i64(lag));
        self.0.watcher_read_at.set(saturating_i64(unix_now()));
    }

    /// The watcher recorded `events` in the store (counted once they are committed); a settlement among
    /// them adds its availability to the histogram.
    pub fn events_processed<'a>(&self, events: impl IntoIterator<Item = &'a ChainEvent>) {
        for event in events {
            self.0.events.inc();
            if let ChainEvent::Settled { availability_bps, .. } = event {
                self.settled(*availability_bps);
            }
        }
    }

    /// A settlement reported `availability_bps` on-chain.
    pub fn settled(&self, availability_bps: u16) {
        self.0.availability.observe(f64::from(availability_bps));
    }

    /// Times one agreement's reconcile: the duration is recorded when the returned timer is dropped.
    pub fn reconcile_started(&self) -> ReconcileTimer {
        ReconcileTimer { histogram: self.0.reconcile.clone(), started: Instant::now() }
    }

    /// The settler broadcast a newly signed operator transaction.
    pub fn tx_sent(&self) {
        self.0.tx_sent.inc();
    }

    /// An operator call failed: it would revert, or it was mined and reverted.
    pub fn tx_failed(&self) {
        self.0.tx_failed.inc();
    }

    /// A sent transaction was mined: `succeeded` is its receipt's status (a reverted one failed).
    pub fn tx_mined(&self, succeeded: bool) {
        if !succeeded {
            self.tx_failed();
        }
    }

    /// The monitor probed a conference.
    pub fn probe(&self, ok: bool) {
        self.0.probes.get_or_create(&[("outcome", if ok { "ok" } else { "failed" })]).inc();
    }

    /// The monitor found a running conference lost.
    pub fn conference_lost(&self) {
        self.0.lost.inc();
    }

    /// The reconciler deployed a lost conference again.
    pub fn redeployed(&self) {
        self.0.redeploys.inc();
    }

    /// The reconciler deployed a conference where placement put it, or found that none fits.
    pub fn placement(&self, outcome: Result<(), NoFit>) {
        let label = match outcome {
            Ok(()) => "deployed",
            Err(NoFit::Excluded) => "excluded",
            Err(NoFit::Full) => "full",
        };
        self.0.placements.get_or_create(&[("outcome", label)]).inc();
    }

    /// The gauges that are facts of the database, read at a scrape.
    pub fn set_database_facts(&self, outbox_depth: u64, conferences_running: u64) {
        self.0.outbox_depth.set(saturating_i64(outbox_depth));
        self.0.running.set(saturating_i64(conferences_running));
    }

    /// Every metric in Prometheus' text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a metric's name.
        if let Err(err) = prometheus_text::encode(&mut text, &self.0.registry) {
            tracing::error!(%err, "metrics could not be encoded");
        }
        text
    }
}

/// Records the time since [`Metrics::reconcile_started`] when dropped, however the reconcile ended.
pub struct ReconcileTimer {
    histogram: Histogram,
    started: Instant,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed().as_secs_f64());
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_names_every_metric_from_the_start() {
        let text = Metrics::new().encode();
        for name in NAMES {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing from:\n{text}");
        }
    }

    #[test]
    fn counts_settlements_and_probes_by_outcome() {
        let metrics = Metrics::new();
        metrics.probe(true);
        metrics.probe(false);
        metrics.probe(true);
        metrics.settled(7_000);
        metrics.settled(10_000);
        let text = metrics.encode();
        assert!(text.contains("conference_probes_total{outcome=\"ok\"} 2"), "{text}");
        assert!(text.contains("conference_probes_total{outcome=\"failed\"} 1"), "{text}");
        assert!(text.contains("conference_settlement_availability_bps_bucket{le=\"7499\"} 1"), "{text}");
        assert!(text.contains("conference_settlement_availability_bps_count 2"), "{text}");
    }

    #[test]
    fn counts_placements_by_outcome() {
        let metrics = Metrics::new();
        metrics.placement(Ok(()));
        metrics.placement(Err(NoFit::Full));
        metrics.placement(Ok(()));
        let text = metrics.encode();
        assert!(text.contains("conference_placements_total{outcome=\"deployed\"} 2"), "{text}");
        assert!(text.contains("conference_placements_total{outcome=\"full\"} 1"), "{text}");
        assert!(text.contains("conference_placements_total{outcome=\"excluded\"} 0"), "{text}");
    }
}
