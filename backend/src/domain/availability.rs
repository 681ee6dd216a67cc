//! The evidence behind an availability figure: probes of a conference, what they add up to in the basis
//! points a settlement reports, the commitment to them that the settlement emits, and the report an
//! offer's independent monitor signs.
//!
//! **The figure.** A settlement pays for a measured period: the conference's `[startedAt, endedAt)` on
//! the chain, or a FlexiblePeriod window's `[from, to)` when it passed without a conference. The period is
//! cut into slots of the probe interval, counted from its start: `due = max(1, ⌊length / interval⌋)` slots.
//! A slot counts when it holds a successful probe; a slot without a probe counts as failed (no evidence
//! is no availability). The figure is `⌊10,000 × ok slots / due⌋` basis points.
//!
//! **The commitment** (`evidence` in the contract's `AgreementSettled` and in the monitor's report):
//! `keccak256(interval_ms as uint32 ‖ record ‖ record ‖ …)`, big-endian, where each record is
//! `at_ms as uint64 ‖ ok as uint8` (1 succeeded, 0 failed) and the records are the probes inside the
//! slots, `start_ms ≤ at_ms < start_ms + due × interval_ms`, in the order they were taken. Nine bytes a
//! record: anyone holding the records recomputes the commitment and the figure.

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use serde::Serialize;

/// One probe of a conference: when (unix seconds, wall clock, and on the chain's clock in milliseconds),
/// whether it answered, and if not, why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub session: u64,
    pub at: u64,
    /// When it was taken on the chain's clock (the clock of the measured period), in milliseconds: the
    /// time its evidence record carries.
    pub at_ms: u64,
    pub ok: bool,
    pub detail: Option<String>,
}

/// A probe taken, to be stored: of which agreement's conference (session), when on the chain's clock,
/// and its answer.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub agreement: u64,
    pub session: u64,
    pub at_ms: u64,
    pub ok: bool,
    pub detail: Option<String>,
}

/// What an orchestrator measured when it probed a conference: whether it counts as available, what
/// was measured (stored with the probe as its detail), and whether the conference is lost (its server
/// exited, or stopped answering), so that the reconciler must bring it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub ok: bool,
    pub detail: String,
    pub lost: bool,
}

impl ProbeOutcome {
    /// Available, with what was measured.
    pub fn up(detail: impl Into<String>) -> Self {
        Self { ok: true, detail: detail.into(), lost: false }
    }

    /// Not available now; the conference may recover by itself.
    pub fn down(detail: impl Into<String>) -> Self {
        Self { ok: false, detail: detail.into(), lost: false }
    }

    /// Not available, and gone: it must be deployed again.
    pub fn lost(detail: impl Into<String>) -> Self {
        Self { ok: false, detail: detail.into(), lost: true }
    }
}

/// Probe counts of one conference (an agreement's session), as stored.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeTally {
    pub probes: u64,
    pub probes_ok: u64,
}

/// One evidence record: when a probe was taken (chain clock, milliseconds) and whether it succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub at_ms: u64,
    pub ok: bool,
}

/// A measured period's figure and the commitment to the records behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// Unix seconds: the period `[from, to)` the figure is about.
    pub from: u64,
    pub to: u64,
    pub interval_ms: u64,
    /// Slots due over the period, and those holding a successful probe.
    pub due: u64,
    pub ok_slots: u64,
    pub availability_bps: u16,
    /// The records inside the slots, in the order taken: what the commitment covers.
    pub records: Vec<Record>,
    #[schema(value_type = String)]
    pub evidence: B256,
}

/// The slots due over `[from, to)` (unix seconds) at one probe per `interval_ms`: at least one.
pub fn slots_due(from: u64, to: u64, interval_ms: u64) -> u64 {
    (to.saturating_sub(from) * 1_000 / interval_ms.max(1)).max(1)
}

/// The commitment to `records` taken at `interval_ms` (see the module's documentation).
pub fn commitment(interval_ms: u64, records: &[Record]) -> B256 {
    let mut bytes = Vec::with_capacity(4 + 9 * records.len());
    bytes.extend_from_slice(&(interval_ms.min(u32::MAX as u64) as u32).to_be_bytes());
    for record in records {
        bytes.extend_from_slice(&record.at_ms.to_be_bytes());
        bytes.push(record.ok as u8);
    }
    keccak256(bytes)
}

/// The figure of `[from, to)` (unix seconds) from `probes` (chain clock, milliseconds, any order),
/// probed once per `interval_ms`.
pub fn measure(from: u64, to: u64, interval_ms: u64, probes: &[Record]) -> Measurement {
    let interval_ms = interval_ms.clamp(1, u32::MAX as u64);
    let due = slots_due(from, to, interval_ms);
    let start_ms = from * 1_000;
    let end_ms = start_ms + due * interval_ms;
    let records: Vec<Record> = probes.iter().copied().filter(|r| r.at_ms >= start_ms && r.at_ms < end_ms).collect();
    let mut ok = std::collections::BTreeSet::new();
    for record in records.iter().filter(|r| r.ok) {
        ok.insert((record.at_ms - start_ms) / interval_ms);
    }
    let ok_slots = ok.len() as u64;
    Measurement {
        from,
        to,
        interval_ms,
        due,
        ok_slots,
        availability_bps: (ok_slots * 10_000 / due) as u16,
        evidence: commitment(interval_ms, &records),
        records,
    }
}

/// The slot of `[from, …)` that `at_ms` falls in, if the period has started.
pub fn slot_of(from: u64, interval_ms: u64, at_ms: u64) -> Option<u64> {
    at_ms.checked_sub(from * 1_000).map(|offset| offset / interval_ms.max(1))
}

/// The chain's clock as a prober keeps it: the wall clock, moved forward by as much as a block's
/// timestamp was ever seen ahead of it (a chain whose time was moved on, as a test chain's may be), so
/// that probes are timed on the clock of the periods they measure. On a live chain, block timestamps
/// trail the wall clock and this is the wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChainClock {
    ahead_ms: u64,
}

impl ChainClock {
    /// Learns from a block's timestamp (unix seconds) seen at `wall_ms`.
    pub fn observe(&mut self, block_timestamp: u64, wall_ms: u64) {
        self.ahead_ms = self.ahead_ms.max((block_timestamp * 1_000).saturating_sub(wall_ms));
    }

    /// The chain's time at `wall_ms`, in milliseconds.
    pub fn now_ms(&self, wall_ms: u64) -> u64 {
        wall_ms + self.ahead_ms
    }

    /// Learns from the newest block timestamp known, if any, and gives the chain's time at `wall_ms`.
    pub fn tick(&mut self, newest_block: Option<u64>, wall_ms: u64) -> u64 {
        if let Some(timestamp) = newest_block {
            self.observe(timestamp, wall_ms);
        }
        self.now_ms(wall_ms)
    }
}

/// How often a prober passes over its conferences for slots of `interval_ms`: four times a slot (at
/// least once a second), so that each slot is probed early in it.
pub fn pass_interval(interval_ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis((interval_ms / 4).clamp(5, 1_000))
}

alloy::sol! {
    /// The typed message of `ConferenceEscrow.AVAILABILITY_TYPEHASH`: a monitor's report.
    struct Availability {
        uint256 agreementId;
        uint32 session;
        uint40 startedAt;
        uint40 endedAt;
        uint16 availabilityBps;
        bytes32 evidence;
    }
}

/// A monitor's signed report of one conference: what settles it when the terms name a monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub agreement: u64,
    /// The chain's session number (1 + the sessions settled before it).
    pub session: u32,
    pub started_at: u64,
    pub ended_at: u64,
    pub availability_bps: u16,
    #[schema(value_type = String)]
    pub evidence: B256,
    /// The monitor's signature over the EIP-712 digest (65 bytes, hex).
    #[schema(value_type = String)]
    pub signature: Bytes,
    /// What the figure is measured from (not signed: `evidence` commits to it): the monitor's probe
    /// interval and its records inside the period's slots, in the order taken.
    pub interval_ms: u64,
    pub records: Vec<Record>,
}

impl Report {
    /// The EIP-712 digest of the report for the escrow at `escrow` on chain `chain_id`.
    pub fn digest(&self, chain_id: u64, escrow: Address) -> B256 {
        report_digest(
            self.agreement,
            self.session,
            self.started_at,
            self.ended_at,
            self.availability_bps,
            self.evidence,
            chain_id,
            escrow,
        )
    }

    /// Whether the figure and the commitment are those its records give over its period (None), or
    /// what differs.
    pub fn inconsistency(&self) -> Option<String> {
        let m = measure(self.started_at, self.ended_at, self.interval_ms, &self.records);
        if m.records.len() != self.records.len() {
            return Some(format!(
                "{} of its records lie outside the period's slots",
                self.records.len() - m.records.len()
            ));
        }
        if m.evidence != self.evidence {
            return Some(format!("its records commit to {}, not to the evidence {}", m.evidence, self.evidence));
        }
        (m.availability_bps != self.availability_bps).then(|| {
            format!(
                "its records give {} bps ({} of {} slots), not {}",
                m.availability_bps, m.ok_slots, m.due, self.availability_bps
            )
        })
    }

    /// The address whose key signed it (None for a malformed signature).
    pub fn signer(&self, chain_id: u64, escrow: Address) -> Option<Address> {
        let signature = alloy::primitives::Signature::try_from(self.signature.as_ref()).ok()?;
        signature.recover_address_from_prehash(&self.digest(chain_id, escrow)).ok()
    }
}

/// The EIP-712 digest of an `Availability` report (as `ConferenceEscrow.reportDigest`).
#[allow(clippy::too_many_arguments)]
pub fn report_digest(
    agreement: u64,
    session: u32,
    started_at: u64,
    ended_at: u64,
    availability_bps: u16,
    evidence: B256,
    chain_id: u64,
    escrow: Address,
) -> B256 {
    use alloy::{primitives::aliases::U40, sol_types::SolStruct};
    let message = Availability {
        agreementId: U256::from(agreement),
        session,
        startedAt: U40::saturating_from(started_at),
        endedAt: U40::saturating_from(ended_at),
        availabilityBps: availability_bps,
        evidence,
    };
    message.eip712_signing_hash(&super::stop::escrow_domain(chain_id, escrow))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at_ms: u64, ok: bool) -> Record {
        Record { at_ms, ok }
    }

    #[test]
    fn a_slot_without_a_probe_counts_as_failed() {
        // 10 s at 1 s: ten slots; probes in slots 0..=5 and 8, slot 7 failed, 6 and 9 never probed.
        let mut probes: Vec<Record> = (0..6).map(|k| record(100_000 + k * 1_000 + 10, true)).collect();
        probes.push(record(107_500, false));
        probes.push(record(108_200, true));
        let m = measure(100, 110, 1_000, &probes);
        assert_eq!((m.due, m.ok_slots, m.availability_bps), (10, 7, 7_000));
    }

    #[test]
    fn nothing_measured_is_nothing_available() {
        let m = measure(100, 110, 1_000, &[]);
        assert_eq!((m.due, m.availability_bps), (10, 0));
        // Shorter than one interval: one slot is still due.
        assert_eq!(measure(100, 100, 1_000, &[]).due, 1);
    }

    #[test]
    fn a_second_probe_in_a_slot_counts_once_and_probes_outside_the_period_not_at_all() {
        let probes = [record(99_999, true), record(100_000, true), record(100_400, true), record(102_000, true)];
        let m = measure(100, 102, 1_000, &probes);
        assert_eq!((m.due, m.ok_slots, m.availability_bps), (2, 1, 5_000));
        assert_eq!(m.records, vec![record(100_000, true), record(100_400, true)], "only the slots' records");
    }

    #[test]
    fn the_commitment_is_keccak_of_the_documented_bytes() {
        // interval 1000 = 0x000003e8; record (0x0102030405060708, ok) = 01..08 01.
        let expected = keccak256([0, 0, 3, 0xe8, 1, 2, 3, 4, 5, 6, 7, 8, 1]);
        assert_eq!(commitment(1_000, &[record(0x0102_0304_0506_0708, true)]), expected);
        assert_ne!(commitment(1_000, &[record(0x0102_0304_0506_0708, false)]), expected, "the outcome counts");
        assert_eq!(commitment(1_000, &[]), keccak256([0, 0, 3, 0xe8]));
    }

    #[test]
    fn the_chain_clock_follows_a_chain_moved_ahead_and_never_goes_back() {
        let mut clock = ChainClock::default();
        clock.observe(1_000, 1_000_000);
        assert_eq!(clock.now_ms(1_000_500), 1_000_500, "a chain behind the wall clock: the wall clock");
        clock.observe(2_000, 1_001_000);
        assert_eq!(clock.now_ms(1_001_500), 2_000_500);
        clock.observe(1_500, 1_002_000);
        assert_eq!(clock.now_ms(1_002_000), 2_001_000);
        assert_eq!(clock.tick(None, 1_003_000), 2_002_000, "no block known: the clock as last seen");
        assert_eq!(clock.tick(Some(3_000), 1_003_000), 3_000_000, "a block further ahead moves it on");
    }
}
