//! The independent monitor's loop (`conference-backend monitor`): a provider with the Monitoring role,
//! named by an offer, measures the availability of that offer's conferences itself and signs it, so that
//! a customer's refund never rests on the word of the operator that pays it.
//!
//! It keeps its own store, filled by its own [`crate::watcher::Watcher`] from its own node: which
//! agreements are its offers', and when each conference starts and ends, it learns from the chain, not
//! from the operator. Once per availability slot it probes each running conference of its offers (and
//! each FlexiblePeriod window, whose readiness the minimum pays for) as a participant would: it asks the
//! operator's public API for a join token with its monitoring credential (Sign-In with Ethereum, its
//! key) and joins the room through the conference's public endpoint (for Janus, its WebSocket API; for
//! Jitsi, the meeting's URL). A conference it cannot reach, or whose credential the operator refuses, is
//! down for the customer. Its probes are stored with their time on the chain's clock.
//!
//! When a conference's measured period is over (ended on-chain, or stopped by the customer's signed stop
//! the operator holds, or a window that passed without a conference), it measures the figure from its
//! own records ([`crate::domain::availability::measure`]), signs the EIP-712 `Availability` report,
//! keeps it, and hands it in to the operator's API with its records (`POST /api/agreements/{id}/report`),
//! until the operator has it. The report alone settles the conference on-chain, whoever submits it.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use alloy::{
    primitives::Address,
    signers::{SignerSync as _, local::PrivateKeySigner},
};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::{
    Error, Result,
    chain::Chain,
    domain::{
        agreement::{Agreement, ChainStatus, Model},
        availability::{ChainClock, ProbeResult, Report, measure, pass_interval, report_digest, slot_of},
        stop::{SignedStop, chain_session},
    },
    orchestrator::janus::Admin,
    store::{Store, now_wall_ms},
};

/// How many conferences the monitor probes at once.
const PROBES_AT_ONCE: usize = 32;

pub struct Attestor {
    store: Store,
    chain: Chain,
    signer: PrivateKeySigner,
    /// The monitor's account, lowercase: the terms that name it are its offers'.
    me: String,
    /// The operator's public API (base URL).
    backend: String,
    http: reqwest::Client,
    interval_ms: u64,
    /// The operator's sign-in session (a `Cookie` header value), once signed in.
    cookie: tokio::sync::Mutex<Option<String>>,
    clock: Mutex<ChainClock>,
    probed: Mutex<HashMap<(u64, u64), u64>>,
    /// Reports the operator has (agreement, chain session): not handed in again.
    handed_in: Mutex<HashSet<(u64, u32)>>,
    /// Conferences (agreement, session) whose last probe failed: only those may have been stopped by a
    /// signed stop the chain does not show yet, so only for those is the operator asked.
    failing: Mutex<HashSet<(u64, u64)>>,
}

impl Attestor {
    pub fn new(store: Store, chain: Chain, signer: PrivateKeySigner, backend: String, interval_ms: u64) -> Self {
        Self {
            store,
            chain,
            me: format!("{:#x}", signer.address()),
            signer,
            backend: backend.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .expect("a client with a timeout builds"),
            interval_ms: interval_ms.max(10),
            cookie: tokio::sync::Mutex::default(),
            clock: Mutex::default(),
            probed: Mutex::default(),
            handed_in: Mutex::default(),
            failing: Mutex::default(),
        }
    }

    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// How often [`Self::pass`] should run (see [`pass_interval`]).
    pub fn pass_interval(&self) -> std::time::Duration {
        pass_interval(self.interval_ms)
    }

    /// Probes the conferences of its offers whose current slot has none yet, and signs and hands in the
    /// report of each conference whose measured period is over.
    pub async fn pass(&self) -> Result<()> {
        // On the chain's clock, from the newest block its watcher recorded.
        let newest = self.store.chain_time().await?;
        let now_ms = self.clock.lock().expect("not poisoned").tick(newest, now_wall_ms());
        let mine: Vec<Agreement> = self
            .store
            .open_agreements()
            .await?
            .into_iter()
            .filter(|a| a.monitor.as_deref() == Some(self.me.as_str()))
            .collect();
        self.probed.lock().expect("not poisoned").retain(|key, _| mine.iter().any(|a| (a.id, a.session) == *key));
        self.failing.lock().expect("not poisoned").retain(|key| mine.iter().any(|a| (a.id, a.session) == *key));
        // Each due probe in its own task, at most PROBES_AT_ONCE at a time: a slow conference does not hold
        // up the others' slots. Each is timed when it starts.
        let due: Vec<(&Agreement, u64)> =
            mine.iter().filter_map(|a| self.slot_to_probe(a, now_ms).map(|slot| (a, slot))).collect();
        let tasks: Vec<_> = due.into_iter().map(|(a, slot)| self.probe_in(a, slot)).collect();
        let probes: Vec<ProbeResult> = futures::stream::iter(tasks).buffer_unordered(PROBES_AT_ONCE).collect().await;
        self.store.record_probes(&probes).await?;
        for a in &mine {
            if let Err(err) = self.report(a, now_ms).await {
                warn!(agreement = a.id, %err, "report not handed in yet; retrying next pass");
            }
        }
        Ok(())
    }

    /// Probes the agreement's conference for `slot`, timed when it starts, and remembers the outcome.
    async fn probe_in(&self, a: &Agreement, slot: u64) -> ProbeResult {
        let at_ms = self.clock.lock().expect("not poisoned").now_ms(now_wall_ms());
        let (ok, detail) = match self.probe(a.id).await {
            Ok(seen) => (true, seen),
            Err(err) => (false, err.to_string()),
        };
        self.probed.lock().expect("not poisoned").insert((a.id, a.session), slot);
        let mut failing = self.failing.lock().expect("not poisoned");
        if ok {
            failing.remove(&(a.id, a.session));
        } else {
            failing.insert((a.id, a.session));
        }
        ProbeResult { agreement: a.id, session: a.session, at_ms, ok, detail: Some(detail) }
    }

    /// The slot to probe now, if the conference is owed and this slot has no probe yet: a running one
    /// from its start to its end time, a FlexiblePeriod window (without a conference) from its start.
    fn slot_to_probe(&self, a: &Agreement, now_ms: u64) -> Option<u64> {
        let (from, to) = match a.chain_status {
            ChainStatus::Active => (a.started_at?, a.ends_at?),
            ChainStatus::Idle | ChainStatus::Requested if a.model == Model::FlexiblePeriod => {
                (a.window_from?, a.window_to?)
            }
            _ => return None,
        };
        if now_ms >= to * 1_000 {
            return None;
        }
        let slot = slot_of(from, self.interval_ms, now_ms)?;
        (self.probed.lock().expect("not poisoned").get(&(a.id, a.session)) != Some(&slot)).then_some(slot)
    }

    /// Joins the agreement's conference as a participant would; Ok with what it saw, or why not.
    async fn probe(&self, agreement: u64) -> Result<String> {
        let grant = self.join_token(agreement).await?;
        let (Some(token), Some(url)) = (grant["token"].as_str(), grant["joinUrl"].as_str()) else {
            return Err(Error::Config(format!("the operator's join token answer is unreadable: {grant}")));
        };
        match grant["room"].as_str() {
            Some("local") => Admin::probe_as_participant(url, token).await,
            _ => {
                let response = self.http.get(url).send().await.map_err(|e| Error::Config(format!("joining: {e}")))?;
                match response.status() {
                    status if status.is_success() => Ok(format!("the meeting's page answered {status}")),
                    status => Err(Error::Config(format!("the meeting's page answered {status}"))),
                }
            }
        }
    }

    /// A join token from the operator with the monitoring credential (signing in again if the session
    /// is gone): refused, the conference is not reachable.
    async fn join_token(&self, agreement: u64) -> Result<Value> {
        for attempt in 0..2 {
            let cookie = self.session(attempt > 0).await?;
            let response = self
                .http
                .post(format!("{}/api/agreements/{agreement}/join-token", self.backend))
                .header("cookie", cookie)
                .json(&json!({}))
                .send()
                .await
                .map_err(|e| Error::Config(format!("the operator's API: {e}")))?;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(body);
            }
            if status.as_u16() != 401 {
                return Err(Error::Config(format!(
                    "the operator refused a monitoring credential: {status} {}",
                    body["error"]
                )));
            }
        }
        Err(Error::Config("the operator does not accept the monitor's sign-in".into()))
    }

    async fn session(&self, renew: bool) -> Result<String> {
        let mut cookie = self.cookie.lock().await;
        if renew || cookie.is_none() {
            *cookie = Some(crate::http::session::sign_in(&self.backend, &self.signer).await?);
        }
        Ok(cookie.clone().unwrap_or_default())
    }

    /// Signs (once) and hands in the report of the agreement's conference whose measured period is over.
    async fn report(&self, a: &Agreement, now_ms: u64) -> Result<()> {
        let Some((from, to)) = self.period(a).await? else { return Ok(()) };
        if now_ms < to * 1_000 {
            return Ok(());
        }
        let session = chain_session(self.store.sessions_of(a.id).await?.len());
        if self.handed_in.lock().expect("not poisoned").contains(&(a.id, session)) {
            return Ok(());
        }
        let report = match self.store.report(a.id, session).await? {
            Some(kept) if (kept.started_at, kept.ended_at) == (from, to) => kept,
            _ => {
                let m = measure(from, to, self.interval_ms, &self.store.probe_records(a.id, a.session).await?);
                let digest = report_digest(
                    a.id,
                    session,
                    from,
                    to,
                    m.availability_bps,
                    m.evidence,
                    self.chain.chain_id,
                    self.chain.escrow,
                );
                let signature =
                    self.signer.sign_hash_sync(&digest).map_err(|e| Error::Config(format!("signing: {e}")))?;
                let report = Report {
                    agreement: a.id,
                    session,
                    started_at: from,
                    ended_at: to,
                    availability_bps: m.availability_bps,
                    evidence: m.evidence,
                    signature: signature.as_bytes().to_vec().into(),
                    interval_ms: m.interval_ms,
                    records: m.records,
                };
                info!(agreement = a.id, session, availability_bps = report.availability_bps, due = m.due, ok = m.ok_slots, evidence = %report.evidence, "report signed");
                self.store.record_report(&report).await?;
                report
            }
        };
        let response = self
            .http
            .post(format!("{}/api/agreements/{}/report", self.backend, a.id))
            .json(&json!({
                "session": report.session,
                "startedAt": report.started_at,
                "endedAt": report.ended_at,
                "availabilityBps": report.availability_bps,
                "evidence": report.evidence.to_string(),
                "signature": report.signature.to_string(),
                "intervalMs": report.interval_ms,
                "records": report.records,
            }))
            .send()
            .await
            .map_err(|e| Error::Config(format!("the operator's API: {e}")))?;
        let status = response.status();
        if status.is_success() {
            info!(agreement = a.id, session, "report handed in");
            self.handed_in.lock().expect("not poisoned").insert((a.id, session));
            return Ok(());
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Err(Error::Config(format!("the operator did not take the report: {status} {}", body["error"])))
    }

    /// The conference's measured period as the contract will take it, once it has one: from the chain
    /// (ended, or a window over), or for a running conference from the customer's signed stop the
    /// operator holds (its signature is checked by the contract when submitted).
    async fn period(&self, a: &Agreement) -> Result<Option<(u64, u64)>> {
        if a.chain_status != ChainStatus::Active {
            return Ok(a.measured_period());
        }
        // A conference still reachable was not stopped.
        if !self.failing.lock().expect("not poisoned").contains(&(a.id, a.session)) {
            return Ok(None);
        }
        let response = self
            .http
            .get(format!("{}/api/agreements/{}", self.backend, a.id))
            .send()
            .await
            .map_err(|e| Error::Config(format!("the operator's API: {e}")))?;
        let record: Value = response.json().await.unwrap_or(Value::Null);
        let stop = &record["signedStop"];
        let (Some(started_at), Some(stopped_at)) = (stop["startedAt"].as_u64(), stop["stoppedAt"].as_u64()) else {
            return Ok(None);
        };
        let mut seen = a.clone();
        seen.signed_stop = Some(SignedStop { started_at, stopped_at, deadline: 0, signature: Default::default() });
        Ok(seen.measured_period())
    }
}
