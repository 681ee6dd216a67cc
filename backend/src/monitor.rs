//! The monitor probes the conference of every active agreement and stores each probe: the
//! availability reported at settlement is the share of probes that succeeded while the agreement
//! ran, and the stored probes are the evidence behind it.

use std::sync::Arc;

use crate::{
    Result,
    domain::{
        agreement::{Agreement, ChainStatus, ConferenceState, Model},
        availability::ProbeResult,
    },
    orchestrator::Orchestrator,
    store::Store,
};

pub struct Monitor {
    pub store: Store,
    pub orchestrator: Arc<Orchestrator>,
    pub metrics: crate::metrics::Metrics,
}

impl Monitor {
    /// Probes once every conference the customer is paying for: each active one, and the warm one of a
    /// FlexiblePeriod window (its readiness is what the minimum charge pays for).
    pub async fn pass(&self) -> Result<()> {
        let mut probes = Vec::new();
        for a in self.store.open_agreements().await? {
            let warm = a.model == Model::FlexiblePeriod
                && a.chain_status == ChainStatus::Idle
                && a.conference_state == ConferenceState::Running;
            // A conference the customer stopped by signature is removed before its stop reaches the
            // chain: from the signed time on, it is not owed, so its absence is no outage.
            if (a.chain_status != ChainStatus::Active && !warm) || a.signed_stop_of_running().is_some() {
                continue;
            }
            // An active agreement whose conference is not running is down, whatever the reason.
            let ok = a.conference_state == ConferenceState::Running && self.orchestrator.probe(a.id).await?;
            let detail = match (ok, a.conference_state) {
                (true, _) => None,
                (false, ConferenceState::Running) => Some("no answer".to_owned()),
                (false, state) => Some(format!("conference {}", state.as_str())),
            };
            if !ok && self.changed_meanwhile(&a).await? {
                // Removed on purpose while the probe ran (stopped, ended): not an outage.
                continue;
            }
            self.metrics.probe(ok);
            probes.push(ProbeResult { agreement: a.id, session: a.session, ok, detail });
        }
        self.store.record_probes(&probes).await
    }

    /// Whether the agreement's record moved on since `seen` was read (another status, conference state,
    /// session, or a signed stop).
    async fn changed_meanwhile(&self, seen: &Agreement) -> Result<bool> {
        Ok(self.store.agreement(seen.id).await?.is_none_or(|now| {
            now.chain_status != seen.chain_status
                || now.conference_state != seen.conference_state
                || now.session != seen.session
                || now.signed_stop.is_some() != seen.signed_stop.is_some()
        }))
    }
}
