//! `GET /api/config`: the public facts of [`super::public`].

use axum::{Json, extract::State};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{context::ApiContext, public::PublicConfig};

pub(super) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(config))
}

/// The chain, the escrow and the calls and events the page uses.
#[utoipa::path(get, path = "/api/config", tag = "agreements", responses(
    (status = 200, description = "Public facts about the chain and the escrow contract", body = PublicConfig),
))]
async fn config(State(ctx): State<ApiContext>) -> Json<PublicConfig> {
    Json(ctx.public)
}
