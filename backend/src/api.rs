//! The HTTP API (axum) and the embedded web page. Each route module's handlers are small: they read
//! the store and shape JSON; they never act on the chain or the orchestrator.

use std::collections::BTreeMap;

use alloy::{
    hex,
    primitives::{Address, Bytes},
    sol_types::{SolCall, SolEvent},
};
use axum::{
    Json, Router,
    extract::{Path, State, rejection::JsonRejection},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::error;

use crate::{
    Error,
    agreement::{Agreement, ChainStatus, ConferenceState, Progress},
    chain::{ConferenceEscrow, SignedStop},
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
        .route("/api/agreements/{id}/stop", post(signed_stop))
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
    /// The request is well formed but the agreement is not in a state that allows it.
    Conflict(String),
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
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
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

fn agreement_id(raw_id: &str) -> Result<u64, ApiError> {
    raw_id.parse().map_err(|_| ApiError::BadRequest(format!("agreement id must be a positive integer, got {raw_id:?}")))
}

/// A customer's gasless stop: the EIP-712 `Stop` it signed in its wallet.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopRequest {
    pub stopped_at: u64,
    pub deadline: u64,
    /// 65 bytes, hex with 0x.
    pub signature: String,
}

/// `POST /api/agreements/{id}/stop`: checks that the customer signed a stop of the running conference
/// and records it; the reconciler removes the conference and submits the stop with the settlement.
/// Only the chain can be stopped by this: nothing is sent from here.
async fn signed_stop(
    State(ctx): State<ApiContext>,
    Path(raw_id): Path<String>,
    body: Result<Json<StopRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let id = agreement_id(&raw_id)?;
    let Json(request) = body.map_err(|rejection| {
        ApiError::BadRequest(format!(
            "the body must be JSON {{\"stoppedAt\": seconds, \"deadline\": seconds, \"signature\": \"0x...\"}}: {}",
            rejection.body_text()
        ))
    })?;
    let agreement = ctx
        .store
        .agreement(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no agreement {id} has been seen on-chain")))?;
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
        .signer(id, ctx.public.chain_id, escrow)
        .ok_or_else(|| ApiError::BadRequest("signature is not a valid 65-byte ECDSA signature".to_owned()))?;
    if !signer.to_string().eq_ignore_ascii_case(&agreement.customer) {
        return Err(ApiError::BadRequest(format!(
            "the stop is signed by {signer}, not by the agreement's customer {}",
            agreement.customer
        )));
    }
    let new = ctx.store.record_signed_stop(id, agreement.session, &stop).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "accepted": new, "stop": stop }))))
}

async fn agreement(State(ctx): State<ApiContext>, Path(raw_id): Path<String>) -> Result<Json<AgreementView>, ApiError> {
    let id = agreement_id(&raw_id)?;
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
