//! The reconciler: level-triggered, like a Kubernetes controller. For every open agreement it
//! compares what the chain says with what runs, and takes the one next step that brings them
//! together. A new event, a restart, a crashed room and an expired agreement all land in the same
//! [`next_step`] decision, so there is one path from a signature to a settlement:
//!
//! signed ─deploy→ conference answers ─activate→ active ─(customer stops, or expiry: end)→ ended
//!        ─undeploy→ removed ─settle(availability)→ settled
//!
//! Steps that change the chain only queue an operator call in the outbox (sent exactly once by the
//! [`crate::settler`]); the reconciler then waits for the resulting event.

use std::{collections::HashSet, sync::Arc};

use tokio::sync::{Mutex, Notify};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::{
    Result,
    agreement::{Agreement, ChainStatus as C, ConferenceState as K},
    chain::{Chain, OperatorCall},
    orchestrator::Orchestrator,
    store::Store,
};

/// The one next step for an agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Deploy,
    Activate,
    End,
    Undeploy,
    Settle,
    /// Nothing to do until the chain or the clock moves.
    Wait,
}

/// Decides the next step from the agreement's record and the chain's clock.
pub fn next_step(a: &Agreement, chain_now: u64, activation_window: u64) -> Step {
    let activation_open = chain_now <= a.signed_at + activation_window;
    let expired = a.started_at.is_some_and(|started| chain_now >= started + a.max_duration);
    match (a.chain_status, a.conference_state) {
        (C::Signed, K::Absent | K::Deploying) if activation_open => Step::Deploy,
        (C::Signed, K::Running) if activation_open => Step::Activate,
        // Too late to activate: the customer reclaims the deposit; no conference may stay.
        (C::Signed, K::Running | K::Deploying) => Step::Undeploy,
        (C::Signed, K::Absent | K::Removed) => Step::Wait,
        (C::Active, K::Running) if expired => Step::End,
        (C::Active, K::Running) => Step::Wait,
        // Active without a conference (it crashed or was lost): bring it back.
        (C::Active, K::Absent | K::Deploying | K::Removed) => Step::Deploy,
        (C::Ended | C::Settled | C::Refunded, K::Running | K::Deploying) => Step::Undeploy,
        (C::Ended, K::Absent | K::Removed) => Step::Settle,
        (C::Settled | C::Refunded, K::Absent | K::Removed) => Step::Wait,
    }
}

pub struct Reconciler {
    pub chain: Chain,
    pub store: Store,
    pub orchestrator: Arc<Orchestrator>,
    pub activation_window: u64,
    /// Agreements being reconciled now: a slow deploy of one does not hold up the others.
    in_flight: Mutex<HashSet<u64>>,
    /// Woken when an operator call was queued.
    pub outbox_notify: Arc<Notify>,
}

impl Reconciler {
    pub fn new(
        chain: Chain,
        store: Store,
        orchestrator: Arc<Orchestrator>,
        activation_window: u64,
        outbox_notify: Arc<Notify>,
    ) -> Self {
        Self { chain, store, orchestrator, activation_window, in_flight: Mutex::default(), outbox_notify }
    }

    /// One pass over every open agreement; each is reconciled in a task of its own.
    pub async fn pass(self: &Arc<Self>) -> Result<()> {
        let (_, chain_now) = self.chain.head().await?;
        for agreement in self.store.open_agreements().await? {
            if !self.in_flight.lock().await.insert(agreement.id) {
                continue;
            }
            let this = Arc::clone(self);
            let span = info_span!("agreement", id = agreement.id);
            tokio::spawn(
                async move {
                    if let Err(err) = this.reconcile(&agreement, chain_now).await {
                        warn!(error = %err, kind = err.label(), "reconcile failed; retrying on the next pass");
                    }
                    this.in_flight.lock().await.remove(&agreement.id);
                }
                .instrument(span),
            );
        }
        Ok(())
    }

    /// Removes conferences that no open agreement needs (left over from a crash or another chain).
    pub async fn collect_orphans(&self) -> Result<()> {
        for id in self.orchestrator.list().await? {
            // A conference the store records as running (or being deployed) is the reconciler's to
            // keep or remove; any other is left over from a crash or from another chain.
            let wanted = self
                .store
                .agreement(id)
                .await?
                .is_some_and(|a| matches!(a.conference_state, K::Running | K::Deploying));
            if !wanted {
                info!(agreement = id, "removing a conference with no live agreement");
                self.orchestrator.remove(id).await?;
            }
        }
        Ok(())
    }

    /// Takes steps until the agreement waits on the chain: local steps (deploy, undeploy) are
    /// followed at once by the next one; chain steps queue an operator call and return.
    async fn reconcile(&self, agreement: &Agreement, chain_now: u64) -> Result<()> {
        let mut a = agreement.clone();
        loop {
            let step = next_step(&a, chain_now, self.activation_window);
            match step {
                Step::Wait => return Ok(()),
                Step::Deploy => {
                    self.store.conference_deploying(a.id).await?;
                    let deployed = self.orchestrator.deploy(a.id).await?;
                    self.store.conference_running(a.id, &deployed.join_url, deployed.fresh).await?;
                    info!(join_url = %deployed.join_url, fresh = deployed.fresh, "conference running");
                }
                Step::Undeploy => {
                    self.orchestrator.remove(a.id).await?;
                    self.store.conference_removed(a.id).await?;
                    info!("conference removed");
                }
                Step::Activate => {
                    // Countersign only once the conference answers.
                    if self.orchestrator.probe(a.id).await? {
                        self.queue(OperatorCall::Activate { agreement: a.id }).await?;
                    }
                    return Ok(());
                }
                Step::End => return self.queue(OperatorCall::End { agreement: a.id }).await,
                Step::Settle => {
                    let tally = self.store.probe_tally(a.id).await?;
                    let availability_bps = tally.availability_bps();
                    debug!(probes = tally.probes, ok = tally.probes_ok, availability_bps, "measured availability");
                    return self.queue(OperatorCall::Settle { agreement: a.id, availability_bps }).await;
                }
            }
            a = match self.store.agreement(a.id).await? {
                Some(updated) => updated,
                None => return Ok(()),
            };
        }
    }

    async fn queue(&self, call: OperatorCall) -> Result<()> {
        if self.store.enqueue(call).await? {
            info!(?call, "queued");
            self.outbox_notify.notify_one();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agreement::{ChainStatus, ConferenceState};

    fn agreement(chain_status: ChainStatus, conference_state: ConferenceState, started_at: Option<u64>) -> Agreement {
        Agreement {
            id: 1,
            offer_id: 1,
            customer: "0xc".into(),
            provider: "0xp".into(),
            price_per_second: "1".into(),
            max_duration: 3600,
            deposit: "3600".into(),
            chain_status,
            signed_at: 1000,
            started_at,
            ended_at: None,
            availability_bps: None,
            charge: None,
            refund: None,
            refund_deferred: None,
            refund_reason: None,
            conference_state,
            join_url: None,
            deploy_count: 0,
            sign_tx: "0x".into(),
            activate_tx: None,
            end_tx: None,
            settle_tx: None,
        }
    }

    const WINDOW: u64 = 600;

    #[test]
    fn walks_one_agreement_from_signature_to_settlement() {
        use {ChainStatus as C, ConferenceState as K};
        assert_eq!(next_step(&agreement(C::Signed, K::Absent, None), 1000, WINDOW), Step::Deploy);
        assert_eq!(next_step(&agreement(C::Signed, K::Deploying, None), 1001, WINDOW), Step::Deploy);
        assert_eq!(next_step(&agreement(C::Signed, K::Running, None), 1002, WINDOW), Step::Activate);
        assert_eq!(next_step(&agreement(C::Active, K::Running, Some(1003)), 2000, WINDOW), Step::Wait);
        assert_eq!(next_step(&agreement(C::Ended, K::Running, Some(1003)), 2000, WINDOW), Step::Undeploy);
        assert_eq!(next_step(&agreement(C::Ended, K::Removed, Some(1003)), 2000, WINDOW), Step::Settle);
        assert_eq!(next_step(&agreement(C::Settled, K::Removed, Some(1003)), 2000, WINDOW), Step::Wait);
    }

    #[test]
    fn ends_an_agreement_exactly_at_its_expiry() {
        use {ChainStatus as C, ConferenceState as K};
        let a = agreement(C::Active, K::Running, Some(1000));
        assert_eq!(next_step(&a, 1000 + 3599, WINDOW), Step::Wait);
        assert_eq!(next_step(&a, 1000 + 3600, WINDOW), Step::End);
    }

    #[test]
    fn gives_up_activation_when_the_window_closed() {
        use {ChainStatus as C, ConferenceState as K};
        assert_eq!(next_step(&agreement(C::Signed, K::Running, None), 1000 + WINDOW, WINDOW), Step::Activate);
        assert_eq!(next_step(&agreement(C::Signed, K::Running, None), 1001 + WINDOW, WINDOW), Step::Undeploy);
        assert_eq!(next_step(&agreement(C::Signed, K::Absent, None), 1001 + WINDOW, WINDOW), Step::Wait);
    }

    #[test]
    fn redeploys_a_lost_conference_and_removes_one_after_a_refund() {
        use {ChainStatus as C, ConferenceState as K};
        assert_eq!(next_step(&agreement(C::Active, K::Removed, Some(1000)), 1500, WINDOW), Step::Deploy);
        assert_eq!(next_step(&agreement(C::Refunded, K::Running, None), 1500, WINDOW), Step::Undeploy);
        assert_eq!(next_step(&agreement(C::Refunded, K::Absent, None), 1500, WINDOW), Step::Wait);
    }
}
