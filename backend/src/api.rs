//! The HTTP API (axum) and the embedded web page. Each route module's handlers are small: they read
//! the store and shape JSON; they never act on the chain or the orchestrator.

use std::collections::BTreeMap;

use alloy::{
    hex,
    sol_types::{SolCall, SolEvent},
};
use axum::{
    Json, Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use serde::Serialize;
use serde_json::json;
use tracing::error;

use crate::{
    Error,
    agreement::{Agreement, ConferenceState, Progress},
    chain::ConferenceEscrow,
    store::{OutboxItem, ProbeTally, Session, Store},
};

/// What the web page needs to talk to the chain: public facts only.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicConfig {
    pub chain_id: u64,
    pub rpc_url: String,
    pub escrow: String,
    pub calls: BTreeMap<&'static str, String>,
    pub events: BTreeMap<&'static str, String>,
    /// Custom error selectors to names, so the page can explain a revert in words.
    pub errors: BTreeMap<String, String>,
}

impl PublicConfig {
    pub fn new(chain_id: u64, rpc_url: String, escrow: String) -> Self {
        let selector = |s: [u8; 4]| hex::encode_prefixed(s);
        Self {
            chain_id,
            rpc_url,
            escrow,
            calls: BTreeMap::from([
                ("sign", selector(ConferenceEscrow::signCall::SELECTOR)),
                ("stop", selector(ConferenceEscrow::stopCall::SELECTOR)),
            ]),
            events: BTreeMap::from([(
                "AgreementSigned",
                ConferenceEscrow::AgreementSigned::SIGNATURE_HASH.to_string(),
            )]),
            errors: crate::chain::escrow_abi()
                .errors()
                .map(|error| (hex::encode_prefixed(error.selector()), error.name.clone()))
                .collect(),
        }
    }
}

#[derive(Clone)]
pub struct ApiContext {
    pub store: Store,
    pub public: PublicConfig,
}

pub fn router(ctx: ApiContext) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/config", get(config))
        .route("/api/offers", get(offers))
        .route("/api/agreements/{id}", get(agreement))
        .route("/", get(|| async { Html(include_str!("../../web/index.html")) }))
        .route(
            "/app.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], include_str!("../../web/app.js")) }),
        )
        .route(
            "/style.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], include_str!("../../web/style.css")) }),
        )
        .layer(axum::middleware::map_response(content_security_policy))
        .with_state(ctx)
}

/// The pages load nothing but their own origin's files and talk to nothing but their origin (the
/// wallet's RPC traffic goes through the wallet, not the page).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; \
     connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'";

pub async fn content_security_policy(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    response
}

/// An API error: 4xx answers say what was wrong with the request; a 500 is logged and stays vague.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    Internal(Error),
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        ApiError::Internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Internal(err) => {
                error!(error = %err, kind = err.label(), "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error; the service logged the details".to_owned())
            }
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

async fn config(State(ctx): State<ApiContext>) -> Json<PublicConfig> {
    Json(ctx.public)
}

async fn offers(State(ctx): State<ApiContext>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(ctx.store.terms().await?))
}

/// One agreement with its progress, its transactions, its conference and the evidence of its availability.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgreementView {
    #[serde(flatten)]
    pub agreement: Agreement,
    pub status: Progress,
    /// The chain's clock (newest block seen), for figures such as "running for".
    pub chain_time: Option<u64>,
    pub join_url: Option<String>,
    pub transactions: BTreeMap<&'static str, Option<String>>,
    pub conference: ConferenceView,
    /// Every settled conference: one for most models, one per session for timeLimited.
    pub sessions: Vec<Session>,
    pub outbox: Vec<OutboxItem>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConferenceView {
    pub state: ConferenceState,
    pub deploy_count: u64,
    #[serde(flatten)]
    pub probes: ProbeTally,
}

async fn agreement(State(ctx): State<ApiContext>, Path(raw_id): Path<String>) -> Result<Json<AgreementView>, ApiError> {
    let id: u64 = raw_id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("agreement id must be a positive integer, got {raw_id:?}")))?;
    let agreement = ctx
        .store
        .agreement(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no agreement {id} has been seen on-chain")))?;
    let probes = ctx.store.probe_tally(id, agreement.session).await?;
    let outbox = ctx.store.outbox_of(id).await?;
    let sessions = ctx.store.sessions_of(id).await?;
    Ok(Json(AgreementView {
        status: agreement.progress(),
        chain_time: ctx.store.chain_time().await?,
        join_url: (agreement.conference_state == ConferenceState::Running)
            .then(|| agreement.join_url.clone())
            .flatten(),
        transactions: BTreeMap::from([
            ("sign", Some(agreement.sign_tx.clone())),
            ("activate", agreement.activate_tx.clone()),
            ("stop", agreement.end_tx.clone()),
            ("settle", agreement.settle_tx.clone()),
        ]),
        conference: ConferenceView { state: agreement.conference_state, deploy_count: agreement.deploy_count, probes },
        sessions,
        outbox,
        agreement,
    }))
}
