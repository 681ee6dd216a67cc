//! An agreement as `GET /api/agreements/{id}` and its progress stream show it: the record, where it
//! stands, its transactions, conference, participants (how many, never who), sessions and outbox.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    domain::{
        agreement::{Agreement, ConferenceState, Progress, Session},
        availability::ProbeTally,
        conference::{ConferenceSettings, Quality},
    },
    store::{Store, outbox::OutboxItem},
};

/// One agreement with its progress, its transactions, its conference and the evidence of its availability.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgreementView {
    #[serde(flatten)]
    pub agreement: Agreement,
    pub status: Progress,
    /// The chain's clock (newest block seen), for figures such as "running for".
    pub chain_time: Option<u64>,
    pub join_url: Option<String>,
    /// The agreement's transactions by step (sign, activate, stop, settle); null until it happened.
    pub transactions: BTreeMap<&'static str, Option<String>>,
    pub conference: ConferenceView,
    /// The customer's registration of who may join: how many and in what quality (never who: addresses
    /// and regions are personal data). Null until the customer registered any.
    pub participants: Option<RegisteredParticipants>,
    /// Every settled conference: one for most models, one per session for timeLimited.
    pub sessions: Vec<Session>,
    pub outbox: Vec<OutboxItem>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConferenceView {
    pub state: ConferenceState,
    pub deploy_count: u64,
    #[serde(flatten)]
    pub probes: ProbeTally,
}

/// A registration as stored: how many may join besides the customer, and in what quality (the
/// addresses are not shown: they are personal data).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredParticipants {
    pub count: u64,
    pub quality: Quality,
    /// When the registration was made (the service's clock, unix seconds).
    pub issued_at: u64,
}

impl RegisteredParticipants {
    pub fn of(settings: &ConferenceSettings) -> Self {
        Self { count: settings.participants.len() as u64, quality: settings.quality, issued_at: settings.issued_at }
    }
}

/// The agreement `id` as `GET /api/agreements/{id}` and its event stream show it; None if it has not
/// been seen on-chain.
pub async fn agreement_view(store: &Store, id: u64) -> crate::Result<Option<AgreementView>> {
    let Some(agreement) = store.agreement(id).await? else {
        return Ok(None);
    };
    let probes = store.probe_tally(id, agreement.session).await?;
    let outbox = store.outbox_of(id).await?;
    let sessions = store.sessions_of(id).await?;
    let participants = store.conference_settings(id).await?.map(|settings| RegisteredParticipants::of(&settings));
    Ok(Some(AgreementView {
        participants,
        status: agreement.progress(),
        chain_time: store.chain_time().await?,
        join_url: (agreement.conference_state == ConferenceState::Running)
            .then(|| agreement.join_url.clone())
            .flatten(),
        transactions: transactions(&agreement),
        conference: ConferenceView { state: agreement.conference_state, deploy_count: agreement.deploy_count, probes },
        sessions,
        outbox,
        agreement,
    }))
}

/// The agreement's transactions by step (sign, activate, stop, settle); null until it happened.
pub fn transactions(agreement: &Agreement) -> BTreeMap<&'static str, Option<String>> {
    BTreeMap::from([
        ("sign", Some(agreement.sign_tx.clone())),
        ("activate", agreement.activate_tx.clone()),
        ("stop", agreement.end_tx.clone()),
        ("settle", agreement.settle_tx.clone()),
    ])
}
