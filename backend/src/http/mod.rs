//! The HTTP API (axum) and the embedded web page, one module per resource, each with its router,
//! merged here: [`config`] (the public facts the page needs, and its Content-Security-Policy),
//! [`agreements`] (offers, agreements and the evidence of their availability), [`events`] (an
//! agreement's progress as Server-Sent Events), [`stop`] (the customer's gasless stop), [`orders`]
//! (conferences opened from a customer's account by a signed order),
//! [`participants`] (who may join), [`join`] (join tokens), [`session`] (Sign-In with Ethereum),
//! [`ops`] (health, readiness, metrics, this API's OpenAPI document) and [`web`] (the web app's build).
//! Handlers are small: they read the store and shape JSON; they never act on the chain or the
//! orchestrator. Every 4xx and 5xx is an [`error::ApiError`]. Answers are gzipped for clients that take
//! it, except progress streams (server-sent events: each event must leave as it happens) and what the
//! web app's build carries precompressed ([`web`]).

use std::{sync::Arc, time::Duration};

use axum::{
    Extension, Router,
    extract::Request,
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use tower_http::{compression::CompressionLayer, timeout::RequestBodyTimeoutLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub mod agreements;
pub mod config;
pub mod context;
pub mod error;
pub mod events;
pub mod extract;
pub mod join;
pub mod limits;
pub mod ops;
pub mod orders;
pub mod participants;
pub mod progress;
pub mod public;
pub mod reports;
pub mod server;
pub mod session;
pub mod siwe;
pub mod stop;
pub mod views;
pub mod web;

use context::ApiContext;
use error::ApiError;
use public::CONTENT_SECURITY_POLICY;

/// The document's frame; its paths come from the handlers' `#[utoipa::path]`, each module's router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Conference escrow backend",
        description = "What the customer page and auditors read about agreements, offers and the chain; \
                       the customer's gasless stop; orders that open conferences from a customer's account; Sign-In with Ethereum sessions; who may join a \
                       conference (the customer's participant list) and their join tokens; the service's health and metrics. \
                       Every 4xx and 5xx answer is JSON `{\"error\": \"...\"}` saying what was wrong."
    ),
    tags(
        (name = "agreements", description = "Agreements as the chain and the service see them"),
        (name = "orders", description = "Conferences opened from a customer's account by a signed EIP-712 order"),
        (name = "session", description = "Sign-In with Ethereum (EIP-4361): the session cookie the private routes take"),
        (name = "operations", description = "Liveness, readiness, metrics and this document")
    )
)]
struct ApiDoc;

/// Every route of the API, each with its OpenAPI description: a route cannot be served undocumented.
fn documented_routes() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(config::router())
        .merge(agreements::router())
        .merge(events::router())
        .merge(stop::router())
        .merge(orders::router())
        .merge(reports::router())
        .merge(participants::router())
        .merge(join::router())
        .merge(session::router())
        .merge(ops::router())
}

/// The OpenAPI document of the API, as `GET /api/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented_routes().into_openapi()
}

/// [`openapi`] as the web app's committed copy (`web/openapi.json`, from which its API types are
/// generated) holds it: pretty-printed JSON with two-space indents.
pub fn openapi_text() -> String {
    serde_json::to_string_pretty(&openapi()).expect("an OpenAPI document serializes")
}

/// The API, the web app's build (`web/dist`, see [`web`]) and, on every answer, the page's
/// Content-Security-Policy ([`public::PublicConfig::content_security_policy`]).
pub fn router(ctx: ApiContext) -> Router {
    let policy = header::HeaderValue::from_str(&ctx.public.content_security_policy())
        .unwrap_or(header::HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    let request_timeout = ctx.guards.limits.request_timeout;
    let (api, document) = documented_routes().split_for_parts();
    api.fallback(web::serve)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(Arc::new(document)))
        .layer(axum::middleware::from_fn(move |request, next| answer_within(request_timeout, request, next)))
        // A body that arrives slower than this fails the request (400), whatever reads it.
        .layer(RequestBodyTimeoutLayer::new(request_timeout))
        .layer(axum::middleware::map_response(move |mut response: Response| {
            let policy = policy.clone();
            async move {
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_SECURITY_POLICY, policy);
                headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
                headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
                response
            }
        }))
        // gzip where the client accepts it. Its default predicate leaves server-sent events
        // (`text/event-stream`), images and answers under 32 bytes alone, and it never compresses an
        // answer that already has a `Content-Encoding` (the build's precompressed files).
        .layer(CompressionLayer::new())
        .layer(axum::middleware::map_response(vary_on_encoding))
        .with_state(ctx)
}

/// A compressed answer varies with the request's `Accept-Encoding`: caches must not hand it to a
/// client that did not ask for it (tower-http 0.6's compression does not say so itself).
async fn vary_on_encoding(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let says_so = headers.get_all(header::VARY).iter().any(|value| {
        value.to_str().is_ok_and(|v| v.split(',').any(|name| name.trim().eq_ignore_ascii_case("accept-encoding")))
    });
    if headers.contains_key(header::CONTENT_ENCODING) && !says_so {
        headers.append(header::VARY, header::HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// The answer to `request`, or a 408 if it is not ready within `timeout` (a progress stream is ready
/// as soon as its first bytes are: its body is not timed).
async fn answer_within(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout(format!("the request was not answered within {} s", timeout.as_secs()))
            .into_response(),
    }
}

/// A known path with a method it does not take (axum adds the `Allow` header listing those it does).
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{} does not take {method}", uri.path()))
}
