//! `POST /api/agreements/{id}/join-token`: a join token for the signed-in customer or a registered
//! participant of a running conference.

use axum::http::{HeaderValue, header};
use axum::{Json, extract::State};
use serde::Serialize;
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::info;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    context::ApiContext,
    error::{ApiError, ErrorBody},
    extract::{AgreementId, is_customer, seen_agreement},
    session::SignedIn,
};
use crate::{
    domain::agreement::{ChainStatus, ConferenceState},
    store::now_wall,
    tokens::RoomKind,
};

pub(super) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(join_token))
        // A join token is a credential: never to be kept by a cache.
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
}

/// A join token and where to join with it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinTokenView {
    /// Jitsi: Meet's JWT, HS256 (room, user: the address, moderator for the customer, validity). Local:
    /// a Janus signed token for the conference's server (`<expiry>,janus,janus.plugin.videoroom,<address>`
    /// and its HMAC-SHA1), valid 15 s: the page asks for a new one every 5 s.
    pub token: String,
    /// Jitsi: the conference's URL with the token as its `jwt` parameter. Local: the conference's Janus
    /// WebSocket API (`ws://127.0.0.1:<port>/`); the page sends the token with every request.
    pub join_url: String,
    /// When the token stops letting anyone in (unix seconds).
    pub expires_at: u64,
    pub room: RoomKind,
}

/// Issues a join token for the agreement's running conference to the signed-in address: its customer
/// (as moderator), a participant the customer registered, or the terms' independent monitor (its
/// monitoring credential: it probes the conference through this public endpoint). No body (or `{}`).
#[utoipa::path(
    post,
    path = "/api/agreements/{id}/join-token",
    tag = "agreements",
    params(("id" = u64, Path, description = "The agreement's on-chain id")),
    responses(
        (status = 200, description = "A token, and where to join with it", body = JoinTokenView),
        (status = 400, description = "The id is not an integer from 0 to 2^64 - 1", body = ErrorBody),
        (status = 401, description = "Not signed in (no valid `session` cookie)", body = ErrorBody),
        (status = 403, description = "The session's address is neither the customer nor registered", body = ErrorBody),
        (status = 404, description = "No such agreement has been seen on-chain", body = ErrorBody),
        (status = 409, description = "The agreement has no conference running now", body = ErrorBody),
        (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
    )
)]
async fn join_token(
    State(ctx): State<ApiContext>,
    AgreementId(id): AgreementId,
    signed_in: SignedIn,
) -> Result<Json<JoinTokenView>, ApiError> {
    let agreement = seen_agreement(&ctx.store, id).await?;
    let address = signed_in.address;
    let moderator = is_customer(&agreement, address);
    // The terms' independent monitor probes the conference as a participant would: its credential.
    let monitor = agreement.monitor.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(&address.to_string()));
    if !moderator && !monitor && !ctx.store.is_participant(id, address).await? {
        return Err(ApiError::Forbidden(format!(
            "{address} is not registered for agreement {id}: only its customer, the participants the customer \
             registered and the terms' monitor may join"
        )));
    }
    // The monitor also probes a FlexiblePeriod window's warm conference: the readiness its minimum pays for.
    let running = agreement.conference_state == ConferenceState::Running
        && (matches!(agreement.chain_status, ChainStatus::Requested | ChainStatus::Active)
            || (monitor && agreement.chain_status == ChainStatus::Idle));
    let Some(base) = agreement.join_url.as_deref().filter(|_| running) else {
        return Err(ApiError::Conflict(format!(
            "agreement {id} has no conference running now (on-chain {}, conference {}): ask again once it is active",
            agreement.chain_status.as_str(),
            agreement.conference_state.as_str()
        )));
    };
    let issued = ctx.join_tokens.issue(id, base, address, moderator, now_wall() as u64)?;
    // Never the token, nor who: the agreement and the role.
    info!(agreement = id, moderator, monitor, "join token issued");
    Ok(Json(JoinTokenView {
        join_url: ctx.join_tokens.join_url(base, &issued.token),
        token: issued.token,
        expires_at: issued.expires_at,
        room: ctx.join_tokens.room(),
    }))
}
