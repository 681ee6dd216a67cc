//! The reconciler: level-triggered, like a Kubernetes controller. For every open agreement it
//! compares what the chain says with what runs, and takes the one next step that brings them
//! together. A new event, a restart, a crashed room and an expired agreement all land in the same
//! [`next_step`] decision, so there is one path from a signature to a settlement, whatever the model:
//!
//! requested ─deploy→ conference answers ─activate(region)→ active ─(customer stops, or expiry: end)→
//! ended ─undeploy→ removed ─settle(availability)→ settled (or idle again: a TimeLimited session)
//!
//! FixedPrice and DynamicPrice agreements are requested by their signature; TimeLimited and
//! FlexiblePeriod ones when the customer starts a session. A FlexiblePeriod agreement also keeps a
//! warm conference in its window while idle, so that its start is fast, and pays its minimum when
//! the window passes unused. A requested conference that no cluster can take (its constraints
//! exclude every one, or none has room) is declined, and the customer refunded, never left hanging.
//!
//! Steps that change the chain only queue an operator call in the outbox (sent exactly once by the
//! [`crate::settler`]); the reconciler then waits for the resulting event.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::primitives::{B256, Bytes};
use tokio::sync::{Mutex, Notify};
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::{
    Error, Result,
    chain::Chain,
    domain::{
        agreement::{Agreement, ChainStatus as C, ConferenceState as K, Model},
        availability::measure,
        conference::Conference,
        operator::OperatorCall,
        step::{Step, next_step},
        stop::chain_session,
    },
    orchestrator::Orchestrator,
    store::Store,
    wake::Changed,
};

/// How often a pass looks at every open agreement the clock may have moved (see
/// [`Store::due_agreements`]), not only those the watcher marked as changed.
pub const FULL_PASS_EVERY: Duration = Duration::from_millis(500);

/// The times the reconciler decides by: the contract's activation window (seconds) and the probe
/// interval (milliseconds, the length of an availability slot).
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    pub activation_window: u64,
    pub probe_interval_ms: u64,
}

pub struct Reconciler {
    pub chain: Chain,
    pub store: Store,
    pub orchestrator: Arc<Orchestrator>,
    pub activation_window: u64,
    /// Agreements being reconciled now: a slow deploy of one does not hold up the others.
    in_flight: Mutex<HashSet<u64>>,
    /// Their tasks, so that a shutdown (or a lost lease) waits for each to finish its step.
    tasks: TaskTracker,
    /// Woken when an operator call was queued.
    pub outbox_notify: Arc<Notify>,
    pub metrics: crate::metrics::Metrics,
    /// Marked by the watcher.
    pub changed: Arc<Changed>,
    /// When the last pass over every open agreement started.
    last_full_pass: std::sync::Mutex<Option<Instant>>,
    /// The probe interval: the length of an availability slot.
    probe_interval_ms: u64,
}

impl Reconciler {
    pub fn new(
        chain: Chain,
        store: Store,
        orchestrator: Arc<Orchestrator>,
        windows: Windows,
        outbox_notify: Arc<Notify>,
        metrics: crate::metrics::Metrics,
        changed: Arc<Changed>,
    ) -> Self {
        let Windows { activation_window, probe_interval_ms } = windows;
        let (in_flight, tasks, last_full_pass) = (Mutex::default(), TaskTracker::new(), Default::default());
        Self {
            chain,
            store,
            orchestrator,
            activation_window,
            in_flight,
            tasks,
            outbox_notify,
            metrics,
            changed,
            last_full_pass,
            probe_interval_ms,
        }
    }

    /// One pass: over every open agreement that may have a step by the clock ([`Store::due_agreements`])
    /// if [`FULL_PASS_EVERY`] has gone by since the last such pass (or the watcher rolled back), else
    /// over those the watcher marked. Each agreement is reconciled in a task of its own.
    pub async fn pass(self: &Arc<Self>) -> Result<()> {
        let marked = self.changed.take();
        let full = {
            let mut last = self.last_full_pass.lock().expect("not poisoned");
            let due = marked.is_none() || last.is_none_or(|at| at.elapsed() >= FULL_PASS_EVERY);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        let agreements = match marked {
            Some(ids) if !full => {
                if ids.is_empty() {
                    return Ok(());
                }
                let mut agreements = Vec::with_capacity(ids.len());
                for id in ids {
                    agreements.extend(self.store.agreement(id).await?);
                }
                agreements
            }
            // What only the clock moves (an end time, a window, an expired activation or stop) and
            // retries: the store selects what may have a step by the chain's clock, not every open
            // agreement (the live ones wait, and cost the pass nothing).
            _ => {
                let (_, chain_now) = self.chain.head().await?;
                let due = self.store.due_agreements(chain_now, self.activation_window).await?;
                return self.reconcile_all(due, chain_now).await;
            }
        };
        if agreements.is_empty() {
            return Ok(());
        }
        let (_, chain_now) = self.chain.head().await?;
        self.reconcile_all(agreements, chain_now).await
    }

    /// Reconciles each agreement in a task of its own, unless its task is still at work.
    async fn reconcile_all(self: &Arc<Self>, agreements: Vec<Agreement>, chain_now: u64) -> Result<()> {
        for agreement in agreements {
            if !self.in_flight.lock().await.insert(agreement.id) {
                // Its task is still at work; the change is looked at again on the next pass.
                self.changed.mark(agreement.id);
                continue;
            }
            let this = Arc::clone(self);
            let span = info_span!("agreement", id = agreement.id);
            self.tasks.spawn(
                async move {
                    let _timer = this.metrics.reconcile_started();
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

    /// Waits until every agreement's task under way has finished its step.
    pub async fn drain(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
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
            if step == Step::Wait {
                return Ok(());
            }
            // Its call queued already, the agreement waits on the chain: one read, where queuing it
            // again would probe the conference and write (thousands wait so at once under load).
            if let Some(call) = step.call()
                && self.store.is_queued(a.id, a.session, call).await?
            {
                return Ok(());
            }
            let span = info_span!("step", ?step, chain_status = a.chain_status.as_str(), session = a.session);
            if !self.take(&a, step).instrument(span).await? {
                return Ok(());
            }
            a = match self.store.agreement(a.id).await? {
                Some(updated) => updated,
                None => return Ok(()),
            };
        }
    }

    /// Takes one step. Returns true for a local step (deploy, undeploy), whose next step can follow at
    /// once; false when the agreement now waits on the chain (a call was queued) or the clock.
    async fn take(&self, a: &Agreement, step: Step) -> Result<bool> {
        match step {
            Step::Wait => return Ok(false),
            Step::Deploy => {
                let conference = self.conference(a).await?;
                // Placement first, unless a deploy is already under way (it is adopted, wherever it is).
                if a.conference_state != K::Deploying
                    && let Err(no_fit) = self.orchestrator.fit(&conference)
                {
                    if a.chain_status == C::Requested {
                        // Never (constraints) or not now (no room): either way the customer is refunded.
                        info!(
                            ?no_fit,
                            allowed_regions = a.allowed_regions,
                            gdpr = a.gdpr,
                            "no cluster fits: declining"
                        );
                        let requested_at = a.requested_at.unwrap_or_default();
                        let call = OperatorCall::Decline { agreement: a.id, session: a.session, requested_at };
                        if self.queue(call).await? {
                            self.metrics.placement(Err(no_fit));
                        }
                    } else {
                        debug!(?no_fit, "no cluster fits the warm or lost conference now; trying again later");
                    }
                    return Ok(false);
                }
                self.store.conference_deploying(a.id).await?;
                let deployed = match self.orchestrator.deploy(&conference).await {
                    Ok(deployed) => deployed,
                    Err(err @ Error::NoPlacement(_)) => {
                        // Nothing was created: recorded as such, the next pass checks the fit again
                        // (and declines a requested conference if nothing fits).
                        self.store.conference_removed(a.id).await?;
                        return Err(err);
                    }
                    Err(err) => return Err(err),
                };
                self.store.conference_running(a.id, &deployed).await?;
                if deployed.fresh {
                    self.metrics.placement(Ok(()));
                }
                if deployed.fresh && a.chain_status == C::Active {
                    // An active agreement is deployed only when its conference was lost.
                    warn!(join_url = %deployed.join_url, region = deployed.region, "lost conference brought back");
                    self.metrics.redeployed();
                }
                crate::fault::crash_point("deployed");
                info!(join_url = %deployed.join_url, fresh = deployed.fresh, region = deployed.region, "conference running");
                return Ok(true);
            }
            Step::Undeploy => {
                // Recorded first: a probe that fails while the room goes is then seen as a removal by
                // the monitor, not counted as an outage; after a crash here the orphan collector
                // removes a room recorded as removed.
                self.store.conference_removed(a.id).await?;
                self.orchestrator.remove(a.id).await?;
                crate::fault::crash_point("undeployed");
                info!("conference removed");
                return Ok(true);
            }
            Step::Activate => {
                // Countersign only once the conference answers, naming the region it runs in.
                if let Some(region) = a.conference_region
                    && self.orchestrator.answers(a.id).await?
                {
                    let requested_at = a.requested_at.unwrap_or_default();
                    self.queue(OperatorCall::Activate { agreement: a.id, session: a.session, requested_at, region })
                        .await?;
                }
            }
            Step::End => {
                let started_at = a.started_at.unwrap_or_default();
                self.queue(OperatorCall::End { agreement: a.id, session: a.session, started_at }).await?;
            }
            Step::StopAndSettle => {
                let Some(stop) = a.signed_stop.clone() else { return Ok(false) };
                let Some((availability_bps, evidence, report)) = self.figure(a).await? else { return Ok(false) };
                let (agreement, session) = (a.id, a.session);
                self.queue(OperatorCall::StopAndSettle {
                    agreement,
                    session,
                    availability_bps,
                    evidence,
                    report,
                    stop,
                })
                .await?;
            }
            Step::Settle => {
                let Some((availability_bps, evidence, report)) = self.figure(a).await? else { return Ok(false) };
                // An ended conference is named by its start, a lapsed FlexiblePeriod start by its request,
                // an unused window by 0 (see OperatorCall).
                let started_at = match a.chain_status {
                    C::Ended => a.started_at.unwrap_or_default(),
                    C::Requested => a.requested_at.unwrap_or_default(),
                    _ => 0,
                };
                let (agreement, session) = (a.id, a.session);
                let call = OperatorCall::Settle { agreement, session, started_at, availability_bps, evidence, report };
                self.queue(call).await?;
            }
        }
        Ok(false)
    }

    /// The figure a settlement of the agreement's current conference carries: with the terms' monitor,
    /// its signed report for exactly the period the contract will measure (None until one has arrived:
    /// the settlement waits for it); without one, the operator's own measurement from the stored probes.
    async fn figure(&self, a: &Agreement) -> Result<Option<(u16, B256, Bytes)>> {
        let Some((from, to)) = a.measured_period() else { return Ok(None) };
        if a.monitor.is_some() {
            let session = chain_session(self.store.sessions_of(a.id).await?.len());
            return Ok(match self.store.report(a.id, session).await? {
                Some(r) if (r.started_at, r.ended_at) == (from, to) => {
                    debug!(availability_bps = r.availability_bps, evidence = %r.evidence, "the monitor's report");
                    Some((r.availability_bps, r.evidence, r.signature))
                }
                other => {
                    debug!(from, to, report = ?other.map(|r| (r.started_at, r.ended_at)), "waiting for the monitor's report");
                    None
                }
            });
        }
        let m = measure(from, to, self.probe_interval_ms, &self.store.probe_records(a.id, a.session).await?);
        debug!(due = m.due, ok = m.ok_slots, availability_bps = m.availability_bps, evidence = %m.evidence, "measured availability");
        Ok(Some((m.availability_bps, m.evidence, Bytes::new())))
    }

    /// The conference the agreement asks for: its constraints from the chain, its participants and
    /// quality as the customer registered them.
    async fn conference(&self, a: &Agreement) -> Result<Conference> {
        let settings = self.store.conference_settings(a.id).await?;
        let quality = settings.as_ref().map(|s| s.quality).unwrap_or_default();
        // A conference already activated is brought back (after a loss) in the region the chain
        // recorded for it, not wherever placement would put a new one.
        let allowed_regions = match (a.chain_status, a.region) {
            (C::Active, Some(region)) if region < 32 => 1 << region,
            _ => a.allowed_regions,
        };
        Ok(Conference {
            agreement: a.id,
            customer: a.customer.clone(),
            allowed_regions,
            gdpr: a.gdpr,
            participant_regions: settings
                .iter()
                .flat_map(|s| s.participants.iter().map(|(_, region)| *region))
                .collect(),
            // The customer joins too.
            participants: settings.as_ref().map(|s| s.participants.len() as u64 + 1),
            stream_kbps: quality.stream_kbps(),
            warm_start: a.model == Model::FlexiblePeriod,
        })
    }

    /// Queues an operator call; whether it is new (a call already queued is not queued again). A call of
    /// this step that failed (skipped in its batch with the chain's reason) is queued again while the
    /// step is still due, at most `MAX_RETRIES` times; after that it stays failed (cancelled), and the
    /// agreement waits for the customer's reclaim or an overdue settlement.
    async fn queue(&self, call: OperatorCall) -> Result<bool> {
        let new = self.store.enqueue(&call).await?;
        if new {
            info!(?call, "queued");
            self.outbox_notify.notify_one();
        } else if self.store.retry_failed(call.agreement(), call.session(), call.name()).await? {
            warn!(?call, "queued again after it failed");
            self.outbox_notify.notify_one();
            return Ok(true);
        }
        Ok(new)
    }
}
