//! The HTTP API (axum) and the embedded web page. Each route module's handlers are small: they read
//! the store and shape JSON; they never act on the chain or the orchestrator.

use std::{collections::BTreeMap, convert::Infallible, sync::Arc, time::Duration};

use alloy::{
    hex,
    primitives::{Address, Bytes},
    sol_types::{SolCall, SolEvent},
};
use axum::{
    Extension, Json, Router,
    extract::{
        FromRequestParts, Path, Query, State,
        rejection::{JsonRejection, QueryRejection},
    },
    http::{StatusCode, header, request::Parts},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    Error,
    agreement::{Agreement, ChainStatus, ConferenceState, Progress},
    chain::{ConferenceEscrow, Optimizer, SignedStop, TokenInfo},
    config::OrchestratorKind,
    health::{Health, Readiness},
    jitsi::{ConferenceSettings, JoinTokens, MAX_PARTICIPANTS, Quality, RoomKind},
    metrics::{self, Metrics},
    store::{OutboxItem, Probe, ProbeTally, Session, Store, Terms},
};

/// What the web app needs to talk to the chain and to explain it: public facts only.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicConfig {
    pub chain_id: u64,
    /// The chain's JSON-RPC endpoint (HTTP), for reading the chain without a wallet.
    pub rpc_url: String,
    pub escrow: String,
    /// The OfferBook the escrow takes its terms from.
    pub book: String,
    /// The ProviderRegistry the escrow pays providers through.
    pub registry: String,
    /// The block the escrow was deployed in: the first block to read its events from.
    pub deploy_block: u64,
    /// Where conferences run: `local` (room processes on the service's machine, reached on 127.0.0.1)
    /// or `kubernetes` (Jitsi Meet pods).
    pub orchestrator: OrchestratorKind,
    /// The service's public origin (what Sign-In with Ethereum messages name).
    pub public_url: String,
    /// The currencies agreements can be paid in: ETH (id 0) and the escrow's ERC-20 tokens.
    pub tokens: Vec<TokenInfo>,
    /// The names of the contracts' region bits: `regions[i]` is bit i of a region mask.
    pub regions: Vec<&'static str>,
    /// The contracts, with the compiler settings to verify their deployed code against the sources.
    pub contracts: Vec<ContractInfo>,
    /// A block explorer's base URL for links to transactions and addresses; null without one.
    pub explorer: Option<String>,
    pub calls: BTreeMap<&'static str, String>,
    pub events: BTreeMap<&'static str, String>,
    /// Custom error selectors to names, so the page can explain a revert in words.
    pub errors: BTreeMap<String, String>,
}

/// The names of the contracts' region bits, from bit 0 (as the dev chain's providers use them).
pub const REGION_NAMES: [&str; 3] = ["EU", "US", "Asia"];

/// A contract of the service and how it was compiled.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContractInfo {
    /// ConferenceEscrow, OfferBook or ProviderRegistry.
    pub name: &'static str,
    pub address: String,
    /// solc's version, e.g. `0.8.37+commit.f401782d`.
    pub compiler: String,
    pub optimizer: Optimizer,
    pub evm_version: String,
    /// Where the verified sources can be read; null when unknown.
    pub source_url: Option<String>,
}

impl PublicConfig {
    /// The facts of a chain and escrow alone: the OfferBook and ProviderRegistry unknown (the zero
    /// address) until [`PublicConfig::with_deployment`] names them, ETH the only currency, the local
    /// orchestrator, no explorer.
    pub fn new(chain_id: u64, rpc_url: String, escrow: String) -> Self {
        let selector = |s: [u8; 4]| hex::encode_prefixed(s);
        let unknown = Address::ZERO.to_string();
        Self {
            chain_id,
            rpc_url,
            contracts: contracts(&escrow, &unknown, &unknown),
            escrow,
            book: unknown.clone(),
            registry: unknown,
            deploy_block: 0,
            orchestrator: OrchestratorKind::Local,
            public_url: String::new(),
            tokens: vec![TokenInfo { id: 0, symbol: "ETH".into(), decimals: 18, address: None }],
            regions: REGION_NAMES.to_vec(),
            explorer: None,
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

    /// With the escrow's OfferBook and ProviderRegistry, its deployment block and its currencies, as
    /// the service reads them from the chain at start.
    pub fn with_deployment(self, book: String, registry: String, deploy_block: u64, tokens: Vec<TokenInfo>) -> Self {
        Self { contracts: contracts(&self.escrow, &book, &registry), book, registry, deploy_block, tokens, ..self }
    }

    /// The page's Content-Security-Policy: its own origin's files only; it talks to its origin, to the
    /// chain's RPC endpoint (the web app reads the chain itself) and, with the local orchestrator, to the
    /// room processes on 127.0.0.1 (their signalling WebSocket).
    pub fn content_security_policy(&self) -> String {
        let mut connect = vec!["'self'".to_owned()];
        if let Ok(rpc) = reqwest::Url::parse(&self.rpc_url) {
            let origin = rpc.origin();
            if origin.is_tuple() {
                connect.push(origin.ascii_serialization());
            }
        }
        if self.orchestrator == OrchestratorKind::Local {
            connect.extend(["ws://127.0.0.1:*".to_owned(), "http://127.0.0.1:*".to_owned()]);
        }
        format!(
            "default-src 'self'; connect-src {}; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
             media-src 'self' blob: mediastream:; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; \
             form-action 'none'",
            connect.join(" ")
        )
    }
}

/// The three contracts at their addresses, with their artifacts' compiler settings.
fn contracts(escrow: &str, book: &str, registry: &str) -> Vec<ContractInfo> {
    crate::chain::compiler_settings()
        .into_iter()
        .zip([escrow, book, registry])
        .map(|((name, settings), address)| ContractInfo {
            name,
            address: address.to_owned(),
            compiler: settings.version,
            optimizer: settings.optimizer,
            evm_version: settings.evm_version,
            source_url: None,
        })
        .collect()
}

/// What the handlers read: the store, the public facts, the operations side (metrics, readiness), and
/// the issuer of join tokens.
#[derive(Clone)]
pub struct ApiContext {
    pub store: Store,
    pub public: PublicConfig,
    pub metrics: Metrics,
    pub health: Health,
    pub join_tokens: JoinTokens,
    /// What Sign-In with Ethereum messages must name (the private routes take its sessions).
    pub signin: crate::session::SignIn,
}

/// The document's frame; its paths come from the handlers' `#[utoipa::path]` in [`documented_routes`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Conference escrow backend",
        description = "What the customer page and auditors read about agreements, offers and the chain; \
                       the customer's gasless stop; Sign-In with Ethereum sessions; who may join a \
                       conference (the customer's participant list) and their join tokens; the service's health and metrics. \
                       Every 4xx and 5xx answer is JSON `{\"error\": \"...\"}` saying what was wrong."
    ),
    tags(
        (name = "agreements", description = "Agreements as the chain and the service see them"),
        (name = "session", description = "Sign-In with Ethereum (EIP-4361): the session cookie the private routes take"),
        (name = "operations", description = "Liveness, readiness, metrics and this document")
    )
)]
struct ApiDoc;

/// Every route of the API, each with its OpenAPI description: a route cannot be served undocumented.
fn documented_routes() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(config))
        .routes(routes!(offers))
        .routes(routes!(agreements))
        .routes(routes!(agreement))
        .routes(routes!(agreement_events))
        .routes(routes!(probes))
        .routes(routes!(signed_stop))
        .routes(routes!(register_participants))
        .routes(routes!(join_token))
        .routes(routes!(crate::session::nonce))
        .routes(routes!(crate::session::verify))
        .routes(routes!(crate::session::session, crate::session::sign_out))
        .routes(routes!(openapi_json))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_text))
}

/// The OpenAPI document of the API, as `GET /api/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented_routes().into_openapi()
}

/// The API, the web app's build (`web/dist`, see [`crate::web`]) and, on every answer, the page's
/// Content-Security-Policy ([`PublicConfig::content_security_policy`]).
pub fn router(ctx: ApiContext) -> Router {
    let policy = header::HeaderValue::from_str(&ctx.public.content_security_policy())
        .unwrap_or(header::HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    let (api, document) = documented_routes().split_for_parts();
    api.fallback(crate::web::serve)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(Arc::new(document)))
        .layer(axum::middleware::map_response(move |mut response: Response| {
            let policy = policy.clone();
            async move {
                response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, policy);
                response
            }
        }))
        .with_state(ctx)
}

/// The strictest policy, nothing but the page's own origin: what the API answers with should its
/// computed policy not make a valid header.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; \
     connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'";

/// An API error: 4xx answers say what was wrong with the request; a 500 is logged and stays vague.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    MethodNotAllowed(String),
    /// No valid session (or a failed sign-in check): who is asking is not known.
    Unauthorized(String),
    /// Well formed and correctly signed, but by someone the agreement does not let do this.
    Forbidden(String),
    /// The request is well formed but the agreement is not in a state that allows it.
    Conflict(String),
    PayloadTooLarge(String),
    UnsupportedMediaType(String),
    Internal(Error),
}

/// The body of every error answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What was wrong, in a sentence.
    pub error: String,
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
            ApiError::MethodNotAllowed(m) => (StatusCode::METHOD_NOT_ALLOWED, m),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            ApiError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m),
            ApiError::Internal(err) => {
                error!(error = %err, kind = err.label(), "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error; the service logged the details".to_owned())
            }
        };
        (status, Json(ErrorBody { error: message })).into_response()
    }
}

/// A known path with a method it does not take (axum adds the `Allow` header listing those it does).
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{} does not take {method}", uri.path()))
}

/// The chain, the escrow and the calls and events the page uses.
#[utoipa::path(get, path = "/api/config", tag = "agreements", responses(
    (status = 200, description = "Public facts about the chain and the escrow contract", body = PublicConfig),
))]
async fn config(State(ctx): State<ApiContext>) -> Json<PublicConfig> {
    Json(ctx.public)
}

/// Every terms version published on-chain, newest first.
#[utoipa::path(get, path = "/api/offers", tag = "agreements", responses(
    (status = 200, description = "The terms versions customers can sign (and closed ones)", body = Vec<Terms>),
    (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
))]
async fn offers(State(ctx): State<ApiContext>) -> Result<Json<Vec<Terms>>, ApiError> {
    Ok(Json(ctx.store.terms().await?))
}

/// One agreement with its progress, its transactions, its conference and the evidence of its availability.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgreementView {
    #[serde(flatten)]
    pub agreement: Agreement,
    pub status: Progress,
    /// The chain's clock (newest block seen), for figures such as "running for".
    pub chain_time: Option<u64>,
    pub join_url: Option<String>,
    /// The agreement's transactions by step (sign, activate, stop, settle); null until it happened.
    pub transactions: BTreeMap<&'static str, Option<String>>,
    pub conference: ConferenceView,
    /// The customer's registration of who may join: how many and in what quality (never who: addresses
    /// and regions are personal data). Null until the customer registered any.
    pub participants: Option<RegisteredParticipants>,
    /// Every settled conference: one for most models, one per session for timeLimited.
    pub sessions: Vec<Session>,
    pub outbox: Vec<OutboxItem>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConferenceView {
    pub state: ConferenceState,
    pub deploy_count: u64,
    #[serde(flatten)]
    pub probes: ProbeTally,
}

/// An agreement id from the request path: a decimal integer from 0 to 2^64 - 1, or a 400 saying so.
pub struct AgreementId(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for AgreementId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|rejection| {
            ApiError::BadRequest(format!("the agreement id is unreadable: {}", rejection.body_text()))
        })?;
        raw.parse().map(AgreementId).map_err(|_| {
            ApiError::BadRequest(format!("agreement id must be an integer from 0 to {}, got {raw:?}", u64::MAX))
        })
    }
}

/// A JSON body axum could not take, as a 4xx that says why: 415 without a JSON content type, 413 when
/// too large, else 400.
pub(crate) fn body_rejected(rejection: JsonRejection, expected: &str) -> ApiError {
    match rejection.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::UnsupportedMediaType("the body must be JSON, sent with Content-Type: application/json".into())
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(format!("the body is too large: {expected}")),
        _ => ApiError::BadRequest(format!("the body must be JSON {expected}: {}", rejection.body_text())),
    }
}

/// A customer's gasless stop: the EIP-712 `Stop` it signed in its wallet.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopRequest {
    /// When the conference stopped (chain seconds); not before it started.
    pub stopped_at: u64,
    /// Until when the operator may submit the stop (chain seconds).
    pub deadline: u64,
    /// 65 bytes, hex with 0x.
    #[schema(pattern = "^0x[0-9a-fA-F]{130}$")]
    pub signature: String,
}

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
        (status = 202, description = "Recorded (or already recorded: `accepted` is false)", body = StopAccepted),
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
        .signer(id, ctx.public.chain_id, escrow)
        .ok_or_else(|| ApiError::BadRequest("signature is not a valid 65-byte ECDSA signature".to_owned()))?;
    if !signer.to_string().eq_ignore_ascii_case(&agreement.customer) {
        return Err(ApiError::BadRequest(format!(
            "the stop is signed by {signer}, not by the agreement's customer {}",
            agreement.customer
        )));
    }
    let accepted = ctx.store.record_signed_stop(id, agreement.session, &stop).await?;
    Ok((StatusCode::ACCEPTED, Json(StopAccepted { accepted, stop })))
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

/// A registration as stored: how many may join besides the customer, and in what quality (the
/// addresses are not shown: they are personal data).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredParticipants {
    pub count: u64,
    pub quality: Quality,
    /// When the registration was made (the service's clock, unix seconds).
    pub issued_at: u64,
}

impl RegisteredParticipants {
    pub fn of(settings: &ConferenceSettings) -> Self {
        Self { count: settings.participants.len() as u64, quality: settings.quality, issued_at: settings.issued_at }
    }
}

/// Registers who may join the agreement's conference, replacing the whole earlier list: only the
/// agreement's customer, signed in ([`crate::session`]). Only those listed and the customer get join
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
    signed_in: crate::session::SignedIn,
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
    let issued_at = crate::store::now_wall() as u64;
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

/// A join token and where to join with it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinTokenView {
    /// HS256. Jitsi Meet's JWT (room, user: the address, moderator for the customer, validity), or a
    /// local room's (`sub` the address, `room`, validity, `moderator`).
    pub token: String,
    /// Jitsi: the conference's URL with the token as its `jwt` parameter. Local: the room process's base
    /// URL (`http://127.0.0.1:<port>/`); the page opens `ws://127.0.0.1:<port>/ws?token=<token>`.
    pub join_url: String,
    /// When the token stops letting anyone in (unix seconds).
    pub expires_at: u64,
    pub room: RoomKind,
}

/// Issues a join token for the agreement's running conference to the signed-in address: its customer
/// (as moderator) or a participant the customer registered. No body (or `{}`).
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
    signed_in: crate::session::SignedIn,
) -> Result<Json<JoinTokenView>, ApiError> {
    let agreement = seen_agreement(&ctx.store, id).await?;
    let address = signed_in.address;
    let moderator = is_customer(&agreement, address);
    if !moderator && !ctx.store.is_participant(id, address).await? {
        return Err(ApiError::Forbidden(format!(
            "{address} is not registered for agreement {id}: only its customer and the participants the customer \
             registered may join"
        )));
    }
    let running = agreement.conference_state == ConferenceState::Running
        && matches!(agreement.chain_status, ChainStatus::Requested | ChainStatus::Active);
    let Some(base) = agreement.join_url.as_deref().filter(|_| running) else {
        return Err(ApiError::Conflict(format!(
            "agreement {id} has no conference running now (on-chain {}, conference {}): ask again once it is active",
            agreement.chain_status.as_str(),
            agreement.conference_state.as_str()
        )));
    };
    let issued = ctx.join_tokens.issue(id, address, moderator, crate::store::now_wall() as u64)?;
    // Never the token, nor who: the agreement and the role.
    info!(agreement = id, moderator, "join token issued");
    Ok(Json(JoinTokenView {
        join_url: ctx.join_tokens.join_url(base, &issued.token),
        token: issued.token,
        expires_at: issued.expires_at,
        room: ctx.join_tokens.room(),
    }))
}

/// An address as the API takes it: 0x and 40 hex digits, any case (no checksum is required).
fn parse_address(text: &str) -> Option<Address> {
    let digits = text.strip_prefix("0x")?;
    (digits.len() == 40 && digits.bytes().all(|b| b.is_ascii_hexdigit())).then(|| digits.parse().ok()).flatten()
}

fn is_customer(agreement: &Agreement, address: Address) -> bool {
    agreement.customer.parse::<Address>().is_ok_and(|customer| customer == address)
}

/// The agreement `id` as the store has it, or the API's 404 for one never seen on-chain.
async fn seen_agreement(store: &Store, id: u64) -> Result<Agreement, ApiError> {
    store.agreement(id).await?.ok_or_else(|| ApiError::NotFound(format!("no agreement {id} has been seen on-chain")))
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

/// The agreement `id` as `GET /api/agreements/{id}` and its event stream show it; None if it has not
/// been seen on-chain.
pub async fn agreement_view(store: &Store, id: u64) -> crate::Result<Option<AgreementView>> {
    let Some(agreement) = store.agreement(id).await? else {
        return Ok(None);
    };
    let probes = store.probe_tally(id, agreement.session).await?;
    let outbox = store.outbox_of(id).await?;
    let sessions = store.sessions_of(id).await?;
    let participants = store.conference_settings(id).await?.map(|settings| RegisteredParticipants::of(&settings));
    Ok(Some(AgreementView {
        participants,
        status: agreement.progress(),
        chain_time: store.chain_time().await?,
        join_url: (agreement.conference_state == ConferenceState::Running)
            .then(|| agreement.join_url.clone())
            .flatten(),
        transactions: transactions(&agreement),
        conference: ConferenceView { state: agreement.conference_state, deploy_count: agreement.deploy_count, probes },
        sessions,
        outbox,
        agreement,
    }))
}

/// The agreement's transactions by step (sign, activate, stop, settle); null until it happened.
fn transactions(agreement: &Agreement) -> BTreeMap<&'static str, Option<String>> {
    BTreeMap::from([
        ("sign", Some(agreement.sign_tx.clone())),
        ("activate", agreement.activate_tx.clone()),
        ("stop", agreement.end_tx.clone()),
        ("settle", agreement.settle_tx.clone()),
    ])
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

/// How often an event stream reads the store, and how often it says it is alive while nothing changes.
const EVENTS_POLL: Duration = Duration::from_millis(250);
const EVENTS_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The agreement as it changes (Server-Sent Events): an `event: progress` whose data is the JSON of
/// `GET /api/agreements/{id}`, at once and again whenever that JSON changes (the store is read about
/// every 250 ms, so every replica serves it); a `: keep-alive` comment every 15 s. An agreement not
/// seen on-chain yet gets one `event: unseen` (data `{}`), then its first `progress` once it is seen.
#[utoipa::path(
    get,
    path = "/api/agreements/{id}/events",
    tag = "agreements",
    params(("id" = u64, Path, description = "The agreement's on-chain id")),
    responses(
        (status = 200, description = "An endless stream of `progress` events (and at most one `unseen` first); \
                                      the schema is one event's",
         body = StreamEvent, content_type = "text/event-stream"),
        (status = 400, description = "The id is not an integer from 0 to 2^63 - 1 (the largest id the service \
                                      can record)", body = ErrorBody),
    )
)]
async fn agreement_events(
    State(ctx): State<ApiContext>,
    AgreementId(id): AgreementId,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // An id the store cannot hold would be awaited for ever.
    if i64::try_from(id).is_err() {
        return Err(ApiError::BadRequest(format!(
            "agreement id must be an integer from 0 to {} to be followed, got {id}",
            i64::MAX
        )));
    }
    /// What the stream remembers between reads: the JSON it sent last, and whether it said `unseen`.
    struct Follow {
        store: Store,
        id: u64,
        sent: Option<String>,
        said_unseen: bool,
    }
    let follow = Follow { store: ctx.store, id, sent: None, said_unseen: false };
    let events = futures::stream::unfold(follow, |mut follow| async move {
        loop {
            match agreement_view(&follow.store, follow.id).await {
                Ok(Some(view)) => match serde_json::to_string(&view) {
                    Ok(json) if follow.sent.as_ref() != Some(&json) => {
                        follow.sent = Some(json.clone());
                        return Some((Ok(Event::default().event("progress").data(json)), follow));
                    }
                    Ok(_) => {}
                    Err(err) => warn!(agreement = follow.id, error = %err, "event stream: the view did not serialize"),
                },
                Ok(None) if !follow.said_unseen => {
                    follow.said_unseen = true;
                    return Some((Ok(Event::default().event("unseen").data("{}")), follow));
                }
                Ok(None) => {}
                // The stream's status is sent already: a failed read is logged and retried.
                Err(err) => warn!(agreement = follow.id, error = %err, kind = err.label(), "event stream: read failed"),
            }
            tokio::time::sleep(EVENTS_POLL).await;
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(EVENTS_KEEP_ALIVE).text("keep-alive")))
}

/// One event of `GET /api/agreements/{id}/events`, as the OpenAPI document describes an event of a
/// stream (the handler writes them as Server-Sent Events, never as this struct).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct StreamEvent {
    event: StreamEventName,
    /// `progress`: the JSON of `GET /api/agreements/{id}`; `unseen`: `{}`.
    data: String,
}

#[derive(utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum StreamEventName {
    /// The agreement as it is now.
    Progress,
    /// The agreement has not been seen on-chain yet (sent once, first).
    Unseen,
}

/// The evidence behind an agreement's availability: every probe of each of its conferences (when, and
/// whether the conference answered, with what failed), the tally, and the figure that settlement
/// reports (or reported) from it. Below 75 % the customer is refunded in full.
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
    // Grouped by session (the store gives them in that order), each tally counted from its own probes.
    let mut sessions: Vec<SessionProbes> = Vec::new();
    for probe in ctx.store.probes_of(id).await? {
        if sessions.last().is_none_or(|s| s.session != probe.session) {
            let tally = ProbeTally::default();
            sessions.push(SessionProbes { session: probe.session, tally, availability_bps: 0, probes: Vec::new() });
        }
        if let Some(session) = sessions.last_mut() {
            session.tally.probes += 1;
            session.tally.probes_ok += u64::from(probe.ok);
            session.probes.push(probe);
        }
    }
    for session in &mut sessions {
        session.availability_bps = session.tally.availability_bps();
    }
    Ok(Json(ProbesView {
        agreement_id: id,
        full_refund_below_bps: FULL_REFUND_BELOW_BPS,
        current_session: agreement.session,
        sessions,
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
    /// Each conference that was probed, oldest first.
    sessions: Vec<SessionProbes>,
}

/// The probes of one conference of an agreement and what they add up to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct SessionProbes {
    session: u64,
    tally: ProbeTally,
    /// Successful probes / probes, in basis points: the figure settlement reports for this conference.
    availability_bps: u16,
    probes: Vec<Probe>,
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
