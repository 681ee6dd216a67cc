//! Offers, agreements (one, or a page of them newest first) and the evidence behind an agreement's
//! availability: what customers follow and auditors recompute.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    context::ApiContext,
    error::{ApiError, ErrorBody},
    extract::{AgreementId, parse_address, seen_agreement},
    views::{AgreementView, agreement_view, transactions},
};
use crate::domain::{
    agreement::{Agreement, Progress, Terms},
    availability::{Measurement, Probe, ProbeTally, Record, Report, measure},
    stop::chain_session,
};

pub(super) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(offers))
        .routes(routes!(agreements))
        .routes(routes!(agreement))
        .routes(routes!(probes))
}

/// Every terms version published on-chain, newest first.
#[utoipa::path(get, path = "/api/offers", tag = "agreements", responses(
    (status = 200, description = "The terms versions customers can sign (and closed ones)", body = Vec<Terms>),
    (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
))]
async fn offers(State(ctx): State<ApiContext>) -> Result<Json<Vec<Terms>>, ApiError> {
    Ok(Json(ctx.store.terms().await?))
}

/// One agreement: its terms, where it stands, its transactions, its conference and its probes.
#[utoipa::path(
    get,
    path = "/api/agreements/{id}",
    tag = "agreements",
    params(("id" = u64, Path, description = "The agreement's on-chain id")),
    responses(
        (status = 200, description = "The agreement", body = AgreementView),
        (status = 400, description = "The id is not an integer from 0 to 2^64 - 1", body = ErrorBody),
        (status = 404, description = "No such agreement has been seen on-chain", body = ErrorBody),
        (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
    )
)]
async fn agreement(
    State(ctx): State<ApiContext>,
    AgreementId(id): AgreementId,
) -> Result<Json<AgreementView>, ApiError> {
    let view = agreement_view(&ctx.store, id).await?;
    Ok(Json(view.ok_or_else(|| ApiError::NotFound(format!("no agreement {id} has been seen on-chain")))?))
}

/// One agreement in a list: its record, where it stands and its transactions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgreementSummary {
    #[serde(flatten)]
    pub agreement: Agreement,
    pub status: Progress,
    /// The agreement's transactions by step (sign, activate, stop, settle); null until it happened.
    pub transactions: BTreeMap<&'static str, Option<String>>,
}

/// The most agreements one page lists, and how many it lists unless told.
pub const MAX_PAGE: u32 = 1_000;
pub const DEFAULT_PAGE: u32 = 100;

/// Which agreements `GET /api/agreements` lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AgreementsQuery {
    /// Only this customer's agreements (0x and 40 hex digits, any case); all agreements without it.
    #[param(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub customer: Option<String>,
    /// How many agreements at most (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only agreements with a smaller id: the last id of the previous page, for the next one.
    #[param(maximum = 9223372036854775807_u64)]
    pub before: Option<u64>,
}

/// Agreements newest first: a customer's history, or every agreement for auditors, a page at a time.
#[utoipa::path(
    get,
    path = "/api/agreements",
    tag = "agreements",
    params(AgreementsQuery),
    responses(
        (status = 200, description = "The agreements, newest (largest id) first", body = Vec<AgreementSummary>),
        (status = 400, description = "A query parameter is wrong; the sentence says which", body = ErrorBody),
        (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
    )
)]
async fn agreements(
    State(ctx): State<ApiContext>,
    query: Result<Query<AgreementsQuery>, QueryRejection>,
) -> Result<Json<Vec<AgreementSummary>>, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::BadRequest(format!(
            "the query must be customer=0x…, limit=1..{MAX_PAGE} and before=<agreement id>: {}",
            rejection.body_text()
        ))
    })?;
    let customer = match &query.customer {
        Some(text) => Some(parse_address(text).ok_or_else(|| {
            ApiError::BadRequest(format!("customer must be an address (0x and 40 hex digits), got {text:?}"))
        })?),
        None => None,
    };
    if query.before.is_some_and(|before| i64::try_from(before).is_err()) {
        return Err(ApiError::BadRequest(format!("before must be an agreement id from 0 to {}", i64::MAX)));
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be from 1 to {MAX_PAGE}, got {limit}")));
    }
    let page = ctx.store.agreements_page(customer, query.before, limit).await?;
    Ok(Json(
        page.into_iter()
            .map(|agreement| AgreementSummary {
                status: agreement.progress(),
                transactions: transactions(&agreement),
                agreement,
            })
            .collect(),
    ))
}

/// The evidence behind an agreement's availability: every probe of each of its conferences (when, and
/// whether the conference answered, with what failed), who measures the figure, and for each conference
/// that has a measured period (settled, or ready to settle) the figure and the commitment recomputed from
/// the records, beside what the settlement emitted and the monitor's signed report. Below 75 % the
/// customer is refunded in full.
#[utoipa::path(
    get,
    path = "/api/agreements/{id}/probes",
    tag = "agreements",
    params(("id" = u64, Path, description = "The agreement's on-chain id")),
    responses(
        (status = 200, description = "The agreement's probes, by conference", body = ProbesView),
        (status = 400, description = "The id is not an integer from 0 to 2^64 - 1", body = ErrorBody),
        (status = 404, description = "No such agreement has been seen on-chain", body = ErrorBody),
        (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
    )
)]
async fn probes(State(ctx): State<ApiContext>, AgreementId(id): AgreementId) -> Result<Json<ProbesView>, ApiError> {
    let agreement = seen_agreement(&ctx.store, id).await?;
    let interval_ms = ctx.public.probe_interval_ms;
    let settled = ctx.store.sessions_of(id).await?;
    // Grouped by session (the store gives them in that order).
    let mut sessions: Vec<SessionProbes> = Vec::new();
    for probe in ctx.store.probes_of(id).await? {
        if sessions.last().is_none_or(|s| s.session != probe.session) {
            sessions.push(SessionProbes::new(probe.session));
        }
        if let Some(session) = sessions.last_mut() {
            session.tally.probes += 1;
            session.tally.probes_ok += u64::from(probe.ok);
            session.probes.push(probe);
        }
    }
    for s in &settled {
        if !sessions.iter().any(|p| p.session == s.session) {
            sessions.push(SessionProbes::new(s.session));
        }
    }
    if agreement.measured_period().is_some() && !sessions.iter().any(|p| p.session == agreement.session) {
        sessions.push(SessionProbes::new(agreement.session));
    }
    sessions.sort_by_key(|s| s.session);
    for session in &mut sessions {
        let settlement = settled.iter().find(|s| s.session == session.session);
        let period = match settlement {
            Some(s) => s.started_at.zip(s.ended_at).or(agreement.window_from.zip(agreement.window_to)),
            None if session.session == agreement.session => agreement.measured_period(),
            None => None,
        };
        let records: Vec<Record> =
            session.probes.iter().filter(|p| p.at_ms != 0).map(|p| Record { at_ms: p.at_ms, ok: p.ok }).collect();
        session.measurement = period.map(|(from, to)| measure(from, to, interval_ms, &records));
        session.settled_evidence = settlement.and_then(|s| s.evidence.clone());
        session.settled_availability_bps = settlement.map(|s| s.availability_bps);
    }
    let mut reports = Vec::new();
    for session in 1..=chain_session(settled.len()) {
        reports.extend(ctx.store.report(id, session).await?);
    }
    Ok(Json(ProbesView {
        agreement_id: id,
        full_refund_below_bps: FULL_REFUND_BELOW_BPS,
        current_session: agreement.session,
        measured_by: agreement.monitor.clone(),
        probe_interval_ms: interval_ms,
        sessions,
        reports,
    }))
}

/// Availability under this many basis points refunds the customer in full (the contract's rule).
const FULL_REFUND_BELOW_BPS: u16 = 7_500;

/// `GET /api/agreements/{id}/probes`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ProbesView {
    agreement_id: u64,
    /// Availability below this (basis points) refunds the customer in full.
    full_refund_below_bps: u16,
    /// The conference the agreement is on now.
    current_session: u64,
    /// Who measures the figure that settles: the terms' independent monitor (its account), or null for
    /// the operator (these probes are then the evidence behind it).
    measured_by: Option<String>,
    /// The operator's probe interval (ms): the slot length of the measurements below.
    probe_interval_ms: u64,
    /// Each conference that was probed or settled, oldest first.
    sessions: Vec<SessionProbes>,
    /// The monitor's signed reports received for the agreement's conferences (chain session numbers).
    reports: Vec<Report>,
}

/// The operator's probes of one conference of an agreement and what they add up to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct SessionProbes {
    session: u64,
    tally: ProbeTally,
    /// The figure and the commitment these probes give over the conference's measured period (null
    /// before it has one): what the operator's settlement carries when the terms name no monitor.
    measurement: Option<Measurement>,
    /// What the settlement emitted (null before it): its figure and its evidence commitment.
    settled_availability_bps: Option<u16>,
    settled_evidence: Option<String>,
    probes: Vec<Probe>,
}

impl SessionProbes {
    fn new(session: u64) -> Self {
        Self {
            session,
            tally: ProbeTally::default(),
            measurement: None,
            settled_availability_bps: None,
            settled_evidence: None,
            probes: Vec::new(),
        }
    }
}
