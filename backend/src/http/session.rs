//! Sign-In with Ethereum (EIP-4361) sessions for the web app. The page asks for a nonce
//! (`POST /api/siwe/nonce`), has the wallet sign an EIP-4361 message naming this service's domain, URI
//! and chain with it (EIP-191 `personal_sign`), and sends both to `POST /api/siwe/verify`, which checks
//! every field and answers with an HttpOnly `session` cookie. The private routes take that cookie
//! through the [`SignedIn`] extractor. Nonces and sessions live in the store (every replica knows
//! them); of a session only the keccak-256 of its token is kept.

use alloy::primitives::{Address, keccak256};
use axum::{
    Json,
    extract::{FromRequestParts, State, rejection::JsonRejection},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use rand::{Rng, RngCore, distributions::Alphanumeric, rngs::OsRng};
use serde::{Deserialize, Serialize};
use tracing::info;

use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    context::ApiContext,
    error::{ApiError, ErrorBody, body_rejected},
    extract::ClientIp,
    siwe::NONCE_TTL_SECS,
};
use crate::{
    Error, Result,
    store::{now_wall, sessions::NonceUse},
};

pub(super) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(nonce))
        .routes(routes!(verify))
        .routes(routes!(session, sign_out))
        // Nonces and sessions are never to be kept by a cache.
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
}

/// A fresh random token (32 bytes, hex): a session's secret.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    alloy::hex::encode(bytes)
}

/// What the store keeps of a token.
fn token_hash(token: &str) -> String {
    keccak256(token.as_bytes()).to_string()
}

/// The session cookie's value (`name`) in the request's `Cookie` headers, if any; a request with two
/// is refused: one may have been planted by a sibling origin to run the victim's requests as another.
fn session_token<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut tokens = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(cookie, value)| *cookie == name && !value.is_empty())
        .map(|(_, value)| value);
    let token = tokens.next();
    if tokens.next().is_some() {
        return Err(ApiError::Unauthorized(format!(
            "the request carries two {name} cookies: sign out (or clear this site's cookies) and sign in again"
        )));
    }
    Ok(token)
}

/// Whether `client` may make another sign-in request now, as a 429 if not.
fn signin_allowed(ctx: &ApiContext, client: std::net::IpAddr) -> Result<(), ApiError> {
    ctx.guards.signin_allowed(client).map_err(|retry_after_secs| ApiError::TooManyRequests {
        message: format!(
            "too many sign-in requests from this address (at most {} a minute): try again in {retry_after_secs} s",
            ctx.guards.limits.signin_per_client_per_minute
        ),
        retry_after_secs,
    })
}

/// The signed-in address of a request (its `session` cookie), or a 401 saying why there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedIn {
    pub address: Address,
    /// When the session ends (unix seconds).
    pub expires_at: u64,
}

impl FromRequestParts<ApiContext> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, ApiError> {
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            ctx.signin.check_origin(&parts.headers)?;
        }
        let Some(token) = session_token(&parts.headers, ctx.signin.cookie_name())? else {
            return Err(ApiError::Unauthorized(
                "not signed in: sign in with Ethereum first (POST /api/siwe/nonce, then /api/siwe/verify)".to_owned(),
            ));
        };
        match ctx.store.siwe_session(&token_hash(token), now_wall() as u64).await? {
            Some((address, expires_at)) => Ok(SignedIn { address, expires_at }),
            None => Err(ApiError::Unauthorized("the session is unknown or has expired: sign in again".to_owned())),
        }
    }
}

/// A nonce to sign in with, and what the message must name.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NonceView {
    /// Alphanumeric, single use, valid for 10 minutes.
    pub nonce: String,
    /// The message's domain: the service's public `host[:port]`.
    pub domain: String,
    /// The message's URI: the service's public origin.
    pub uri: String,
    /// The message's chain id: the service's chain.
    pub chain_id: u64,
}

/// Issues a nonce for one sign-in (stored, so any replica can check it; valid for 10 minutes). Each
/// client may ask `SIGNIN_PER_CLIENT_PER_MINUTE` times a minute (verifications included), and at most
/// `SIGNIN_NONCES_MAX` nonces are outstanding in all.
#[utoipa::path(post, path = "/api/siwe/nonce", tag = "session", responses(
    (status = 200, description = "A fresh nonce and the domain, URI and chain id the message must name", body = NonceView),
    (status = 429, description = "Too many sign-in requests from this client; `Retry-After` says when to try again", body = ErrorBody),
    (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
    (status = 503, description = "Too many sign-ins outstanding in all; `Retry-After` says when to try again", body = ErrorBody),
))]
pub async fn nonce(State(ctx): State<ApiContext>, ClientIp(client): ClientIp) -> Result<Json<NonceView>, ApiError> {
    signin_allowed(&ctx, client)?;
    let nonce: String = OsRng.sample_iter(&Alphanumeric).take(24).map(char::from).collect();
    let expires_at = now_wall() as u64 + NONCE_TTL_SECS;
    if !ctx.store.create_siwe_nonce(&nonce, expires_at, ctx.guards.limits.signin_nonces_max).await? {
        return Err(ApiError::Unavailable {
            message: "too many sign-ins are in progress: try again in a minute".to_owned(),
            retry_after_secs: 60,
        });
    }
    Ok(Json(NonceView {
        nonce,
        domain: ctx.signin.domain().to_owned(),
        uri: ctx.signin.origin().to_owned(),
        chain_id: ctx.signin.chain_id(),
    }))
}

/// A signed EIP-4361 message.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The EIP-4361 text exactly as the wallet signed it.
    pub message: String,
    /// The wallet's EIP-191 (`personal_sign`) signature of the message: 65 bytes, hex with 0x.
    #[schema(pattern = "^0x[0-9a-fA-F]{130}$")]
    pub signature: String,
}

/// Who is signed in, and until when.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// The signed-in address, EIP-55 checksummed.
    pub address: String,
    /// When the session ends (unix seconds): the message's expiration time.
    pub expires_at: u64,
}

/// Signs in: checks the message (domain, URI, chain id, times, EIP-191 signature, then uses up its
/// nonce) and starts a session until the message's expiration time, in an HttpOnly cookie.
#[utoipa::path(
    post,
    path = "/api/siwe/verify",
    tag = "session",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set (HttpOnly, SameSite=Strict; `__Host-session` with Path=/ and Secure over https, `session` with Path=/api over http)", body = SessionView,
            headers(("Set-Cookie" = String, description = "session=<token>; HttpOnly; SameSite=Strict; Path=/api; Max-Age=<seconds>"))),
        (status = 400, description = "The body, the message or the signature is unreadable; the sentence says which", body = ErrorBody),
        (status = 401, description = "A check failed (signature, nonce, domain, URI, chain id or times); the sentence says which", body = ErrorBody),
        (status = 403, description = "Sent by a page of another site (`Origin` or `Sec-Fetch-Site`)", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = ErrorBody),
        (status = 429, description = "Too many sign-in requests from this client; `Retry-After` says when to try again", body = ErrorBody),
        (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
    )
)]
pub async fn verify(
    State(ctx): State<ApiContext>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: Result<Json<VerifyRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    ctx.signin.check_origin(&headers)?;
    signin_allowed(&ctx, client)?;
    let Json(request) =
        body.map_err(|rejection| body_rejected(rejection, r#"{"message": "...", "signature": "0x..."}"#))?;
    let now = now_wall() as u64;
    let (message, expires_at) = ctx.signin.check(&request.message, &request.signature, now)?;
    match ctx.store.consume_siwe_nonce(&message.nonce, now).await? {
        NonceUse::Consumed => {}
        NonceUse::Expired => {
            return Err(ApiError::Unauthorized(format!(
                "the nonce {} has expired: ask for a new one (POST /api/siwe/nonce)",
                message.nonce
            )));
        }
        NonceUse::Unknown => {
            return Err(ApiError::Unauthorized(format!(
                "the nonce {} was not issued by this service or is used already: ask for a new one",
                message.nonce
            )));
        }
    }
    let address = Address::from(message.address);
    let token = new_token();
    ctx.store.create_siwe_session(&token_hash(&token), address, expires_at).await?;
    info!(expires_at, "signed in");
    let cookie = HeaderValue::from_str(&ctx.signin.cookie(&token, expires_at - now))
        .map_err(|e| Error::Config(format!("session cookie: {e}")))?;
    let view = SessionView { address: address.to_string(), expires_at };
    Ok(([(header::SET_COOKIE, cookie)], Json(view)).into_response())
}

/// Who is signed in (the request's `session` cookie).
#[utoipa::path(get, path = "/api/session", tag = "session", responses(
    (status = 200, description = "The session's address and when it ends", body = SessionView),
    (status = 401, description = "No session cookie, two of them, or an unknown or expired session", body = ErrorBody),
    (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
))]
pub async fn session(signed_in: SignedIn) -> Json<SessionView> {
    Json(SessionView { address: signed_in.address.to_string(), expires_at: signed_in.expires_at })
}

/// Signs out: deletes the session (if any) and clears the cookie.
#[utoipa::path(delete, path = "/api/session", tag = "session", responses(
    (status = 204, description = "Signed out (also when no session was there); the cookie is cleared",
        headers(("Set-Cookie" = String, description = "session=; ...; Max-Age=0"))),
    (status = 401, description = "Two session cookies were sent", body = ErrorBody),
    (status = 403, description = "Sent by a page of another site (`Origin` or `Sec-Fetch-Site`)", body = ErrorBody),
    (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
))]
pub async fn sign_out(State(ctx): State<ApiContext>, headers: HeaderMap) -> Result<Response, ApiError> {
    ctx.signin.check_origin(&headers)?;
    if let Some(token) = session_token(&headers, ctx.signin.cookie_name())? {
        ctx.store.delete_siwe_session(&token_hash(token)).await?;
    }
    let cookie = HeaderValue::from_str(&ctx.signin.cookie("", 0)).map_err(|e| Error::Config(format!("cookie: {e}")))?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// The EIP-4361 text of a sign-in by `address` to the service at `domain`/`uri` on `chain_id` with
/// `nonce`, issued at `issued_at` and valid until `expires_at` (unix seconds): what a wallet is asked
/// to sign. For tests and scripts; the web app builds its own.
pub fn message_text(
    domain: &str,
    address: Address,
    uri: &str,
    chain_id: u64,
    nonce: &str,
    issued_at: u64,
    expires_at: u64,
) -> String {
    let rfc3339 = |seconds: u64| {
        time::OffsetDateTime::from_unix_timestamp(seconds as i64)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_default()
    };
    format!(
        "{domain} wants you to sign in with your Ethereum account:\n{address}\n\nSign in to the conference \
         service.\n\nURI: {uri}\nVersion: 1\nChain ID: {chain_id}\nNonce: {nonce}\nIssued At: {}\nExpiration Time: {}",
        rfc3339(issued_at),
        rfc3339(expires_at)
    )
}

/// Signs `signer` in to the service at `api` (its base URL, e.g. `http://127.0.0.1:8080`) as the web
/// app does: a nonce, the EIP-4361 message it names, the EIP-191 signature, `POST /api/siwe/verify`.
/// Returns the `Cookie` header value (`session=…`) that the private routes take. For tests and scripts.
pub async fn sign_in(api: &str, signer: &alloy::signers::local::PrivateKeySigner) -> Result<String> {
    use alloy::signers::SignerSync;
    let failed = |what: &str, e: &dyn std::fmt::Display| Error::Config(format!("sign-in to {api}: {what}: {e}"));
    let http = reqwest::Client::new();
    let nonce: NonceView = http
        .post(format!("{api}/api/siwe/nonce"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| failed("nonce", &e))?
        .json()
        .await
        .map_err(|e| failed("nonce", &e))?;
    let now = now_wall() as u64;
    let text = message_text(&nonce.domain, signer.address(), &nonce.uri, nonce.chain_id, &nonce.nonce, now, now + 3600);
    let signature = signer.sign_message_sync(text.as_bytes()).map_err(|e| failed("signing", &e))?;
    let body = serde_json::json!({ "message": text, "signature": alloy::hex::encode_prefixed(signature.as_bytes()) });
    let response =
        http.post(format!("{api}/api/siwe/verify")).json(&body).send().await.map_err(|e| failed("verify", &e))?;
    let status = response.status();
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::to_owned);
    match cookie {
        Some(cookie) if status.is_success() => Ok(cookie),
        _ => Err(failed("verify", &format!("{status}: {}", response.text().await.unwrap_or_default()))),
    }
}
