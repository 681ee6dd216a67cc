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
    collections::{BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex},
};

use tracing::warn;

use crate::{
    Result,
    domain::{
        agreement::ConferenceState,
        availability::{ChainClock, ProbeOutcome, ProbeResult, pass_interval, slot_of},
        conference::{Roster, lowercase},
    },
    orchestrator::Orchestrator,
    store::{Store, conferences::Watched, now_wall_ms},
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
    /// pays for). Reads only those conferences' narrow columns ([`Store::watched_conferences`]): a
    /// pass costs a small row per running conference and a probe per conference whose slot turned.
    pub async fn pass(&self) -> Result<()> {
        let mut probes = Vec::new();
        let watched = self.store.watched_conferences().await?;
        // On the chain's clock, from the newest block the watcher recorded: no request to the node per pass,
        // and probing goes on through an outage of the node (the conferences' availability does not
        // depend on it).
        let newest = self.store.chain_time().await?;
        let now_ms = self.clock.lock().expect("not poisoned").tick(newest, now_wall_ms());
        {
            let current: HashSet<(u64, u64)> = watched.iter().map(|w| (w.agreement, w.session)).collect();
            self.probed.lock().expect("not poisoned").retain(|key, _| current.contains(key));
        }
        let roster_needed = self.orchestrator.takes_roster();
        for w in watched {
            // Slots count from the conference's start, or the window's for a warm one.
            let Some(slot) = slot_of(w.slots_from, self.interval_ms, now_ms) else { continue };
            if self.probed.lock().expect("not poisoned").get(&(w.agreement, w.session)) == Some(&slot) {
                continue;
            }
            // An active agreement whose conference is not running is down, whatever the reason.
            let outcome = if w.conference_state == ConferenceState::Running {
                let roster = if roster_needed { Some(self.roster(&w).await?) } else { None };
                self.orchestrator.probe(w.agreement, roster.as_ref()).await?
            } else {
                ProbeOutcome::down(format!("conference {}", w.conference_state.as_str()))
            };
            if !outcome.ok && self.changed_meanwhile(&w).await? {
                // Removed on purpose while the probe ran (stopped, ended): not an outage.
                continue;
            }
            if outcome.lost
                && w.conference_state == ConferenceState::Running
                && self.store.conference_lost(w.agreement).await?
            {
                warn!(agreement = w.agreement, session = w.session, detail = %outcome.detail, "conference lost: it will be deployed again");
                self.metrics.conference_lost();
            }
            self.metrics.probe(outcome.ok);
            self.probed.lock().expect("not poisoned").insert((w.agreement, w.session), slot);
            probes.push(ProbeResult {
                agreement: w.agreement,
                session: w.session,
                at_ms: now_ms,
                ok: outcome.ok,
                detail: Some(outcome.detail),
            });
        }
        self.store.record_probes(&probes).await
    }

    /// Who may be in the agreement's conference now (its customer, the participants it registered and
    /// the terms' monitor, lowercase addresses) and at what quality.
    async fn roster(&self, w: &Watched) -> Result<Roster> {
        let mut admitted = BTreeSet::from([w.customer.to_lowercase()]);
        // The terms' independent monitor probes as a participant: never put out.
        admitted.extend(w.monitor.clone());
        let settings = self.store.conference_settings(w.agreement).await?;
        if let Some(settings) = &settings {
            admitted.extend(settings.participants.iter().map(|(address, _)| lowercase(*address)));
        }
        let quality = settings.map(|s| s.quality).unwrap_or_default();
        Ok(Roster { admitted, stream_kbps: quality.stream_kbps() })
    }

    /// Whether the agreement's record moved on since `seen` was read (another status, conference state,
    /// session, or a signed stop).
    async fn changed_meanwhile(&self, seen: &Watched) -> Result<bool> {
        Ok(self.store.agreement(seen.agreement).await?.is_none_or(|now| {
            now.chain_status != seen.chain_status
                || now.conference_state != seen.conference_state
                || now.session != seen.session
                || now.signed_stop.is_some() != seen.stop_signed
        }))
    }
}
