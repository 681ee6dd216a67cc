//! The monitor probes the conference of every active agreement and stores each probe with what was
//! measured (the orchestrator's detail: for Janus, whether it answered and whether its packets to the
//! participants moved; for Jitsi, the videobridge's health and statistics): the availability reported
//! at settlement is the share of probes that succeeded while the agreement ran, and the stored probes
//! are the evidence behind it.
//!
//! A probe that finds the conference lost (its server exited, or stopped answering) marks it so in the
//! store (`running` → `removed`): the reconciler's next pass deploys it again ([`next_step`] says
//! Deploy for an active agreement without a running conference), while the probes go on failing until
//! it is back, so the downtime is counted. The probe also passes who may be in the conference (the
//! customer and the participants registered now), so that a participant the customer removed is put
//! out of it.
//!
//! [`next_step`]: crate::domain::step::next_step

use std::{collections::BTreeSet, sync::Arc};

use tracing::warn;

use crate::{
    Result,
    domain::{
        agreement::{Agreement, ChainStatus, ConferenceState, Model},
        availability::{ProbeOutcome, ProbeResult},
        conference::{Roster, lowercase},
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
            let outcome = if a.conference_state == ConferenceState::Running {
                let roster = self.roster(&a).await?;
                self.orchestrator.probe(a.id, Some(&roster)).await?
            } else {
                ProbeOutcome::down(format!("conference {}", a.conference_state.as_str()))
            };
            if !outcome.ok && self.changed_meanwhile(&a).await? {
                // Removed on purpose while the probe ran (stopped, ended): not an outage.
                continue;
            }
            if outcome.lost
                && a.conference_state == ConferenceState::Running
                && self.store.conference_lost(a.id).await?
            {
                warn!(agreement = a.id, session = a.session, detail = %outcome.detail, "conference lost: it will be deployed again");
                self.metrics.conference_lost();
            }
            self.metrics.probe(outcome.ok);
            probes.push(ProbeResult {
                agreement: a.id,
                session: a.session,
                ok: outcome.ok,
                detail: Some(outcome.detail),
            });
        }
        self.store.record_probes(&probes).await
    }

    /// Who may be in the agreement's conference now (its customer and the participants it registered,
    /// lowercase addresses) and at what quality.
    async fn roster(&self, a: &Agreement) -> Result<Roster> {
        let mut admitted = BTreeSet::from([a.customer.to_lowercase()]);
        let settings = self.store.conference_settings(a.id).await?;
        if let Some(settings) = &settings {
            admitted.extend(settings.participants.iter().map(|(address, _)| lowercase(*address)));
        }
        let quality = settings.map(|s| s.quality).unwrap_or_default();
        Ok(Roster { admitted, stream_kbps: quality.stream_kbps() })
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
