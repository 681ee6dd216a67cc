//! `POST /api/agreements/{id}/participants`: the customer's list of who may join its conference.

use axum::{
    Json,
    extract::{State, rejection::JsonRejection},
};
use serde::Deserialize;
use tracing::info;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    context::ApiContext,
    error::{ApiError, ErrorBody, body_rejected},
    extract::{AgreementId, is_customer, parse_address, seen_agreement},
    session::SignedIn,
    views::RegisteredParticipants,
};
use crate::domain::{
    agreement::ChainStatus,
    conference::{ConferenceSettings, MAX_PARTICIPANTS, Quality},
};
use crate::store::now_wall;

pub(super) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(register_participants))
}

/// The customer's list of who may join its conference, sent from its signed-in session.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParticipantsRequest {
    /// Who may join besides the customer: at most 100, each address once. Replaces any earlier list
    /// (an empty one leaves the conference to the customer alone).
    #[schema(max_items = 100)]
    pub participants: Vec<ParticipantEntry>,
    pub quality: Quality,
}

/// One participant of a registration.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParticipantEntry {
    /// The participant's wallet address, hex with 0x (any case).
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub address: String,
    /// Where the participant joins from: a bit number of the contract's region masks (0 EU, 1 US,
    /// 2 Asia on the dev chain), for placing the conference.
    #[schema(maximum = 31)]
    pub region: u8,
}

/// Registers who may join the agreement's conference, replacing the whole earlier list: only the
/// agreement's customer, signed in ([`super::session`]). Only those listed and the customer get join
/// tokens. The registration is dated by the service's clock; nothing changes on any error.
#[utoipa::path(
    post,
    path = "/api/agreements/{id}/participants",
    tag = "agreements",
    params(("id" = u64, Path, description = "The agreement's on-chain id")),
    request_body = ParticipantsRequest,
    responses(
        (status = 200, description = "Registered: the list now stored (its size and quality)", body = RegisteredParticipants),
        (status = 400, description = "The id, the body, an address or a region is wrong; the sentence says which", body = ErrorBody),
        (status = 401, description = "Not signed in (no valid `session` cookie)", body = ErrorBody),
        (status = 403, description = "The session's address is not the agreement's customer", body = ErrorBody),
        (status = 404, description = "No such agreement has been seen on-chain", body = ErrorBody),
        (status = 409, description = "A later registration is stored, or the agreement is over", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = ErrorBody),
        (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
    )
)]
async fn register_participants(
    State(ctx): State<ApiContext>,
    AgreementId(id): AgreementId,
    signed_in: SignedIn,
    body: Result<Json<ParticipantsRequest>, JsonRejection>,
) -> Result<Json<RegisteredParticipants>, ApiError> {
    let Json(request) = body.map_err(|rejection| {
        body_rejected(
            rejection,
            r#"{"participants": [{"address": "0x...", "region": 0}], "quality": "sd"|"hd"|"fullhd"}"#,
        )
    })?;
    let agreement = seen_agreement(&ctx.store, id).await?;
    if !is_customer(&agreement, signed_in.address) {
        return Err(ApiError::Forbidden(format!(
            "{} is signed in, not the agreement's customer {}: only the customer registers who may join",
            signed_in.address, agreement.customer
        )));
    }
    if matches!(agreement.chain_status, ChainStatus::Settled | ChainStatus::Refunded) {
        return Err(ApiError::Conflict(format!(
            "agreement {id} is {}: it will run no conference to register participants for",
            agreement.chain_status.as_str()
        )));
    }
    if request.participants.len() > MAX_PARTICIPANTS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_PARTICIPANTS} participants may be registered, got {}",
            request.participants.len()
        )));
    }
    let mut participants = Vec::with_capacity(request.participants.len());
    for (i, entry) in request.participants.iter().enumerate() {
        let address = parse_address(&entry.address).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "participants[{i}].address must be an address (0x and 40 hex digits), got {:?}",
                entry.address
            ))
        })?;
        if entry.region >= 32 {
            return Err(ApiError::BadRequest(format!(
                "participants[{i}].region must be a region's bit number from 0 to 31, got {}",
                entry.region
            )));
        }
        if participants.iter().any(|(seen, _)| *seen == address) {
            return Err(ApiError::BadRequest(format!("participants[{i}]: {address} is listed twice")));
        }
        participants.push((address, entry.region));
    }
    let issued_at = now_wall() as u64;
    let settings = ConferenceSettings { quality: request.quality, participants, issued_at };
    if !ctx.store.register_participants(id, &settings, signed_in.address).await? {
        // Only when another replica's clock is ahead of this one's.
        let stored = ctx.store.conference_settings(id).await?.map_or(0, |stored| stored.issued_at);
        return Err(ApiError::Conflict(format!(
            "a registration made at {stored} is stored, later than this one ({issued_at}): send it again"
        )));
    }
    // Who is registered is personal data: the log says how many, never who.
    info!(
        agreement = id,
        count = settings.participants.len(),
        quality = settings.quality.as_str(),
        "participants registered"
    );
    Ok(Json(RegisteredParticipants::of(&settings)))
}
