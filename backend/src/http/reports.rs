//! The independent monitors' signed availability reports: `POST /api/agreements/{id}/report` (a monitor
//! hands in its report of a conference, checked and kept for the reconciler to settle with) and
//! `GET /api/monitors/{address}/reports` (what a monitor reported, for its provider page).

use alloy::primitives::{Address, B256, Bytes};
use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    context::ApiContext,
    error::{ApiError, ErrorBody, body_rejected},
    extract::{AgreementId, seen_agreement},
};
use crate::{
    Error,
    domain::{
        availability::{Record, Report},
        stop::chain_session,
    },
};

pub(super) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(hand_in)).routes(routes!(reports_by))
}

/// A monitor's report: the EIP-712 `Availability(uint256 agreementId, uint32 session, uint40 startedAt,
/// uint40 endedAt, uint16 availabilityBps, bytes32 evidence)` it signed.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportRequest {
    /// The chain's session number of the conference: 1 plus the sessions settled before it.
    pub session: u32,
    /// The measured period (chain seconds): the conference's start and end, or the window's.
    #[schema(maximum = 1_099_511_627_775_u64)]
    pub started_at: u64,
    #[schema(maximum = 1_099_511_627_775_u64)]
    pub ended_at: u64,
    #[schema(maximum = 10_000)]
    pub availability_bps: u16,
    /// The commitment to the monitor's probe records, 32 bytes hex with 0x.
    #[schema(pattern = "^0x[0-9a-fA-F]{64}$")]
    pub evidence: String,
    /// 65 bytes, hex with 0x.
    #[schema(pattern = "^0x[0-9a-fA-F]{130}$")]
    pub signature: String,
    /// The monitor's probe interval (ms) and its records inside the period's slots, in the order taken:
    /// what `evidence` commits to and the figure is measured from (checked here, then served to anyone).
    #[schema(minimum = 1, maximum = 4_294_967_295_u64)]
    pub interval_ms: u64,
    pub records: Vec<Record>,
}

/// The answer to a report: whether it was new (the first received counts) and what is kept.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReportAccepted {
    pub accepted: bool,
    pub report: Report,
}

/// Takes the terms' monitor's signed report of the agreement's conference: checked (the signer is the
/// monitor the terms name, the session and period are those the contract will settle) and kept; the
/// reconciler settles with it. Anyone may hand one in: the signature is what counts.
#[utoipa::path(
    post,
    path = "/api/agreements/{id}/report",
    tag = "agreements",
    params(("id" = u64, Path, description = "The agreement's on-chain id")),
    request_body = ReportRequest,
    responses(
        (status = 202, description = "Kept; or one was kept already, when `accepted` is false and `report` is that one", body = ReportAccepted),
        (status = 400, description = "The id, the body or the signature is wrong; the sentence says which", body = ErrorBody),
        (status = 404, description = "No such agreement has been seen on-chain", body = ErrorBody),
        (status = 409, description = "The terms name no monitor, or the conference has not reached that period as this service sees the chain (try again)", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = ErrorBody),
        (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
    )
)]
async fn hand_in(
    State(ctx): State<ApiContext>,
    AgreementId(id): AgreementId,
    body: Result<Json<ReportRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<ReportAccepted>), ApiError> {
    let Json(request) = body.map_err(|rejection| {
        body_rejected(
            rejection,
            r#"{"session": n, "startedAt": seconds, "endedAt": seconds, "availabilityBps": n, "evidence": "0x…", "signature": "0x…"}"#,
        )
    })?;
    if request.availability_bps > 10_000 {
        return Err(ApiError::BadRequest(format!("availabilityBps {} is above 10000", request.availability_bps)));
    }
    let evidence: B256 =
        request.evidence.parse().map_err(|_| ApiError::BadRequest("evidence must be 32 bytes, hex with 0x".into()))?;
    let signature: Bytes =
        request.signature.parse().map_err(|_| ApiError::BadRequest("signature must be hex with 0x".into()))?;
    let agreement = seen_agreement(&ctx.store, id).await?;
    let Some(monitor) = agreement.monitor.clone() else {
        return Err(ApiError::Conflict(format!(
            "agreement {id}'s terms name no monitor: the operator reports its availability"
        )));
    };
    let session = chain_session(ctx.store.sessions_of(id).await?.len());
    let report = Report {
        agreement: id,
        session: request.session,
        started_at: request.started_at,
        ended_at: request.ended_at,
        availability_bps: request.availability_bps,
        evidence,
        signature,
        interval_ms: request.interval_ms,
        records: request.records,
    };
    if !(1..=u64::from(u32::MAX)).contains(&report.interval_ms) {
        return Err(ApiError::BadRequest(format!("intervalMs {} is not from 1 to 2^32 - 1", report.interval_ms)));
    }
    if let Some(why) = report.inconsistency() {
        return Err(ApiError::BadRequest(format!("the report does not add up: {why}")));
    }
    let escrow: Address = ctx.public.escrow.parse().map_err(|e| Error::Config(format!("escrow address: {e}")))?;
    let signer = report
        .signer(ctx.public.chain_id, escrow)
        .ok_or_else(|| ApiError::BadRequest("signature is not a valid 65-byte ECDSA signature".into()))?;
    if !signer.to_string().eq_ignore_ascii_case(&monitor) {
        return Err(ApiError::BadRequest(format!(
            "the report is signed by {signer}, not by the terms' monitor {monitor}"
        )));
    }
    let period = agreement.measured_period();
    if request.session != session || period != Some((request.started_at, request.ended_at)) {
        return Err(ApiError::Conflict(format!(
            "the report is for session {} over [{}, {}), but agreement {id} is at session {session} with {}",
            request.session,
            request.started_at,
            request.ended_at,
            match period {
                Some((from, to)) => format!("the period [{from}, {to}) to settle"),
                None => "nothing to settle yet as this service sees the chain".into(),
            }
        )));
    }
    if ctx.store.record_report(&report).await? {
        return Ok((StatusCode::ACCEPTED, Json(ReportAccepted { accepted: true, report })));
    }
    let kept = ctx.store.report(id, session).await?.unwrap_or(report);
    Ok((StatusCode::ACCEPTED, Json(ReportAccepted { accepted: false, report: kept })))
}

/// The reports this service received from the monitor `address` (about the agreements of the terms that
/// name it), newest first: what the provider page shows a monitor.
#[utoipa::path(
    get,
    path = "/api/monitors/{address}/reports",
    tag = "agreements",
    params(("address" = String, Path, description = "The monitor's account, 0x and 40 hex digits")),
    responses(
        (status = 200, description = "Its reports, newest first (at most 200)", body = Vec<Report>),
        (status = 400, description = "The address is not 0x and 40 hex digits", body = ErrorBody),
        (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
    )
)]
async fn reports_by(State(ctx): State<ApiContext>, Path(address): Path<String>) -> Result<Json<Vec<Report>>, ApiError> {
    let address: Address =
        address.parse().map_err(|_| ApiError::BadRequest(format!("{address:?} is not an address (0x and 40 hex)")))?;
    Ok(Json(ctx.store.reports_by(&format!("{address:#x}"), 200).await?))
}
