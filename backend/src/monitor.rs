//! The monitor probes the conference of every active agreement once per availability slot (one probe
//! interval, counted from the conference's start: see [`crate::domain::availability`]) and stores each
//! probe with what was measured (the orchestrator's detail: for Janus, whether it answered and whether
//! its packets to the participants moved; for Jitsi, the videobridge's health and statistics) and when,
//! on the chain's clock. The availability the operator reports at settlement (for terms without an
//! independent monitor) is the share of the slots due that hold a successful probe, and the stored probes
//! are the evidence behind it, committed to on-chain.
//!
//! A probe that finds the conference lost (its server exited, or stopped answering) marks it so in the
//! store (`running` → `removed`): the reconciler's next pass deploys it again ([`next_step`] says
//! Deploy for an active agreement without a running conference), while the probes go on failing until
//! it is back, so the downtime is counted. The probe also passes who may be in the conference (the
//! customer and the participants registered now), so that a participant the customer removed is put
//! out of it.
//!
//! [`next_step`]: crate::domain::step::next_step

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use tracing::warn;

use crate::{
    Result,
    domain::{
        agreement::{Agreement, ChainStatus, ConferenceState, Model},
        availability::{ChainClock, ProbeOutcome, ProbeResult, pass_interval, slot_of},
        conference::{Roster, lowercase},
    },
    orchestrator::Orchestrator,
    store::{Store, now_wall_ms},
};

pub struct Monitor {
    pub store: Store,
    pub orchestrator: Arc<Orchestrator>,
    pub metrics: crate::metrics::Metrics,
    /// The length of an availability slot: one probe per slot.
    pub interval_ms: u64,
    clock: Mutex<ChainClock>,
    /// The slot each conference (agreement, session) was last probed in.
    probed: Mutex<HashMap<(u64, u64), u64>>,
}

impl Monitor {
    pub fn new(
        store: Store,
        orchestrator: Arc<Orchestrator>,
        metrics: crate::metrics::Metrics,
        interval_ms: u64,
    ) -> Self {
        let (clock, probed) = (Mutex::default(), Mutex::default());
        Self { store, orchestrator, metrics, interval_ms: interval_ms.max(10), clock, probed }
    }

    /// How often [`Self::pass`] should run (see [`pass_interval`]).
    pub fn pass_interval(&self) -> std::time::Duration {
        pass_interval(self.interval_ms)
    }

    /// Probes every conference the customer is paying for whose current slot has no probe yet: each
    /// active one, and the warm one of a FlexiblePeriod window (its readiness is what the minimum charge
    /// pays for).
    pub async fn pass(&self) -> Result<()> {
        let mut probes = Vec::new();
        let agreements = self.store.open_agreements().await?;
        // On the chain's clock, from the newest block the watcher recorded: no request to the node per pass,
        // and probing goes on through an outage of the node (the conferences' availability does not
        // depend on it).
        let newest = self.store.chain_time().await?;
        let now_ms = self.clock.lock().expect("not poisoned").tick(newest, now_wall_ms());
        self.probed
            .lock()
            .expect("not poisoned")
            .retain(|(id, session), _| agreements.iter().any(|a| a.id == *id && a.session == *session));
        for a in agreements {
            let warm = a.model == Model::FlexiblePeriod
                && a.chain_status == ChainStatus::Idle
                && a.conference_state == ConferenceState::Running;
            // A conference the customer stopped by signature is removed before its stop reaches the
            // chain: from the signed time on, it is not owed, so its absence is no outage.
            if (a.chain_status != ChainStatus::Active && !warm) || a.signed_stop_of_running().is_some() {
                continue;
            }
            // Slots count from the conference's start, or the window's for a warm one.
            let start = if warm { a.window_from } else { a.started_at };
            let Some(slot) = start.and_then(|start| slot_of(start, self.interval_ms, now_ms)) else { continue };
            if self.probed.lock().expect("not poisoned").get(&(a.id, a.session)) == Some(&slot) {
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
            self.probed.lock().expect("not poisoned").insert((a.id, a.session), slot);
            probes.push(ProbeResult {
                agreement: a.id,
                session: a.session,
                at_ms: now_ms,
                ok: outcome.ok,
                detail: Some(outcome.detail),
            });
        }
        self.store.record_probes(&probes).await
    }

    /// Who may be in the agreement's conference now (its customer, the participants it registered and
    /// the terms' monitor, lowercase addresses) and at what quality.
    async fn roster(&self, a: &Agreement) -> Result<Roster> {
        let mut admitted = BTreeSet::from([a.customer.to_lowercase()]);
        // The terms' independent monitor probes as a participant: never put out.
        admitted.extend(a.monitor.clone());
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
