//! `POST /api/agreements/{id}/stop`: the customer's gasless stop (EIP-712 `Stop`), checked and
//! recorded for the reconciler to submit with the settlement.

use alloy::primitives::{Address, Bytes};
use axum::{
    Json,
    extract::{State, rejection::JsonRejection},
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
        agreement::ChainStatus,
        stop::{SignedStop, chain_session},
    },
};

pub(super) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(signed_stop))
}

/// A customer's gasless stop: the EIP-712 `Stop(uint256 agreementId, uint32 session, uint40 stoppedAt,
/// uint40 deadline)` it signed in its wallet, where `session` is 1 plus the sessions settled so far.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopRequest {
    /// When the conference stopped (chain seconds); not before it started. At most 2^40 - 1: the signed
    /// message holds a uint40.
    #[schema(maximum = 1_099_511_627_775_u64)]
    pub stopped_at: u64,
    /// Until when the operator may submit the stop (chain seconds), at most 2^40 - 1.
    #[schema(maximum = 1_099_511_627_775_u64)]
    pub deadline: u64,
    /// 65 bytes, hex with 0x.
    #[schema(pattern = "^0x[0-9a-fA-F]{130}$")]
    pub signature: String,
}

/// The largest time the typed `Stop` can hold (its fields are uint40).
const MAX_UINT40: u64 = (1 << 40) - 1;

/// The answer to a stop: whether it was new (the first received counts) and what was recorded.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StopAccepted {
    pub accepted: bool,
    pub stop: SignedStop,
}

/// Takes a customer's signed stop of the running conference (EIP-712 `Stop`): checked and recorded;
/// the reconciler removes the conference and submits the stop with the settlement. Nothing is sent
/// from here.
#[utoipa::path(
    post,
    path = "/api/agreements/{id}/stop",
    tag = "agreements",
    params(("id" = u64, Path, description = "The agreement's on-chain id")),
    request_body = StopRequest,
    responses(
        (status = 202, description = "Recorded; or already recorded, when `accepted` is false and `stop` is the one recorded first", body = StopAccepted),
        (status = 400, description = "The id, the body or the signature is wrong; the sentence says which", body = ErrorBody),
        (status = 404, description = "No such agreement has been seen on-chain", body = ErrorBody),
        (status = 409, description = "The agreement has no running conference to stop", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = ErrorBody),
        (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
    )
)]
async fn signed_stop(
    State(ctx): State<ApiContext>,
    AgreementId(id): AgreementId,
    body: Result<Json<StopRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<StopAccepted>), ApiError> {
    let Json(request) = body.map_err(|rejection| {
        body_rejected(rejection, r#"{"stoppedAt": seconds, "deadline": seconds, "signature": "0x..."}"#)
    })?;
    for (field, value) in [("stoppedAt", request.stopped_at), ("deadline", request.deadline)] {
        if value > MAX_UINT40 {
            return Err(ApiError::BadRequest(format!(
                "{field} {value} does not fit the signed message's uint40 (at most {MAX_UINT40})"
            )));
        }
    }
    let agreement = seen_agreement(&ctx.store, id).await?;
    let (ChainStatus::Active, Some(started_at)) = (agreement.chain_status, agreement.started_at) else {
        return Err(ApiError::Conflict(format!(
            "agreement {id} is {}: only a running conference can be stopped",
            agreement.chain_status.as_str()
        )));
    };
    if request.stopped_at < started_at {
        return Err(ApiError::BadRequest(format!(
            "stoppedAt {} is before the conference started (at {started_at})",
            request.stopped_at
        )));
    }
    let chain_now = ctx.store.chain_time().await?.unwrap_or_default();
    if request.deadline <= chain_now {
        return Err(ApiError::BadRequest(format!(
            "the deadline {} has passed (chain time {chain_now}): sign a new stop",
            request.deadline
        )));
    }
    let signature: Bytes =
        request.signature.parse().map_err(|_| ApiError::BadRequest("signature must be hex with 0x".to_owned()))?;
    let stop = SignedStop { started_at, stopped_at: request.stopped_at, deadline: request.deadline, signature };
    let escrow: Address = ctx.public.escrow.parse().map_err(|e| Error::Config(format!("escrow address: {e}")))?;
    let signer = stop
        .signer(id, chain_session(ctx.store.sessions_of(id).await?.len()), ctx.public.chain_id, escrow)
        .ok_or_else(|| ApiError::BadRequest("signature is not a valid 65-byte ECDSA signature".to_owned()))?;
    if !signer.to_string().eq_ignore_ascii_case(&agreement.customer) {
        return Err(ApiError::BadRequest(format!(
            "the stop is signed by {signer}, not by the agreement's customer {}",
            agreement.customer
        )));
    }
    if ctx.store.record_signed_stop(id, agreement.session, &stop).await? {
        return Ok((StatusCode::ACCEPTED, Json(StopAccepted { accepted: true, stop })));
    }
    // The first stop received counts: answer with it, not with this one.
    let recorded = ctx.store.signed_stop(id, agreement.session).await?.unwrap_or(stop);
    Ok((StatusCode::ACCEPTED, Json(StopAccepted { accepted: false, stop: recorded })))
}
