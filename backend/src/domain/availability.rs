//! The evidence behind an availability figure: the monitor's probes of a conference, and what they
//! add up to in the basis points a settlement reports.

use serde::Serialize;

/// One probe of a conference: when (unix seconds, wall clock), whether it answered, and if not, why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub session: u64,
    pub at: u64,
    pub ok: bool,
    pub detail: Option<String>,
}

/// A probe the monitor took, to be stored: of which agreement's conference (session), and its answer.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub agreement: u64,
    pub session: u64,
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

/// Probe counts of one conference (an agreement's session).
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeTally {
    pub probes: u64,
    pub probes_ok: u64,
}

impl ProbeTally {
    /// Availability in basis points; full when nothing was measured (no evidence of an outage).
    pub fn availability_bps(&self) -> u16 {
        (self.probes_ok * 10_000).checked_div(self.probes).map_or(10_000, |bps| bps as u16)
    }
}
