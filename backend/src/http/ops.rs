//! What operators read: liveness, readiness, Prometheus metrics, and the API's OpenAPI document.

use std::sync::Arc;

use axum::{
    Extension, Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use tracing::warn;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::context::ApiContext;
use crate::{health::Readiness, metrics};

pub(super) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_text))
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations", responses(
    (status = 200, description = "The OpenAPI document of this API", body = Object),
))]
async fn openapi_json(
    Extension(document): Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<Arc<utoipa::openapi::OpenApi>> {
    Json(document)
}

/// Liveness: the process answers. Checks nothing else, so that a slow node never gets it restarted.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses(
    (status = 200, description = "Alive", body = String, content_type = "text/plain", example = "ok"),
))]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers, the node answers, and the watcher keeps up with the chain.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Every check passed", body = Readiness),
    (status = 503, description = "A check failed; its `detail` says what", body = Readiness),
))]
async fn readyz(State(ctx): State<ApiContext>) -> (StatusCode, Json<Readiness>) {
    let readiness = ctx.health.check(&ctx.store).await;
    let status = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(readiness))
}

/// The service's metrics in Prometheus' text format (see `backend/README.md` for each).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, description = "Prometheus text format, version 0.0.4", body = String, content_type = "text/plain"),
))]
async fn metrics_text(State(ctx): State<ApiContext>) -> impl IntoResponse {
    // The gauges that are facts of the database are read now; if the store fails, the scrape still
    // answers with the rest (and those two keep their last value).
    match tokio::try_join!(ctx.store.outbox_depth(), ctx.store.conferences_running()) {
        Ok((outbox_depth, running)) => ctx.metrics.set_database_facts(outbox_depth, running),
        Err(err) => warn!(error = %err, kind = err.label(), "metrics: the store's gauges were not read"),
    }
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], ctx.metrics.encode())
}
