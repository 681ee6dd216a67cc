//! Sign-In with Ethereum (EIP-4361) sessions for the web app. The page asks for a nonce
//! (`POST /api/siwe/nonce`), has the wallet sign an EIP-4361 message naming this service's domain, URI
//! and chain with it (EIP-191 `personal_sign`), and sends both to `POST /api/siwe/verify`, which checks
//! every field and answers with an HttpOnly `session` cookie. The private routes take that cookie
//! through the [`SignedIn`] extractor. Nonces and sessions live in the store (every replica knows
//! them); of a session only the keccak-256 of its token is kept.

use std::str::FromStr;

use alloy::primitives::{Address, Signature, keccak256};
use axum::{
    Json,
    extract::{FromRequestParts, State, rejection::JsonRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use rand::{Rng, RngCore, distributions::Alphanumeric, rngs::OsRng};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::{
    Error, Result,
    api::{ApiContext, ApiError, ErrorBody},
    store::{NonceUse, now_wall},
};

/// How long a nonce may wait for its sign-in, in seconds.
pub const NONCE_TTL_SECS: u64 = 600;
/// The longest session a message may ask for (its `Expiration Time` ahead of now), in seconds.
pub const MAX_SESSION_SECS: u64 = 24 * 3600;
/// How far a message's `Issued At` may be ahead of the service's clock (wallets' clocks drift).
pub const CLOCK_SLACK_SECS: u64 = 60;
/// The cookie that carries the session's token.
pub const COOKIE: &str = "session";

/// What a sign-in message must name: this service's public URL (`PUBLIC_URL`) and chain.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// `host[:port]` of the public URL: the message's domain.
    domain: String,
    /// The public URL's origin (`scheme://host[:port]`): the message's URI must have it.
    origin: String,
    chain_id: u64,
    /// Whether the cookie is `Secure` (an https public URL).
    secure: bool,
}

impl SignIn {
    /// The checks for messages to the service at `public_url` (e.g. `http://127.0.0.1:8080`) on chain
    /// `chain_id`.
    pub fn new(public_url: &str, chain_id: u64) -> Result<Self> {
        let url = reqwest::Url::parse(public_url)
            .map_err(|e| Error::Config(format!("PUBLIC_URL {public_url:?} is not a URL: {e}")))?;
        let host = url
            .host_str()
            .filter(|_| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| Error::Config(format!("PUBLIC_URL {public_url:?} must be an http(s) URL with a host")))?;
        let domain = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok(Self { domain, origin: url.origin().ascii_serialization(), chain_id, secure: url.scheme() == "https" })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The service's origin, e.g. `http://127.0.0.1:8080`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The `Set-Cookie` value that gives the browser `token` for `max_age` seconds (0 clears it).
    fn cookie(&self, token: &str, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/api; Max-Age={max_age}{secure}")
    }

    /// Checks `text` (an EIP-4361 message) and its EIP-191 `signature` at `now` (unix seconds), all but
    /// the nonce (which the caller uses up last, so that a refused sign-in leaves it usable): the message
    /// and the time its session ends.
    pub fn check(&self, text: &str, signature: &str, now: u64) -> Result<(siwe::Message, u64), ApiError> {
        let message = siwe::Message::from_str(text)
            .map_err(|e| ApiError::BadRequest(format!("the message is not an EIP-4361 (SIWE) message: {e}")))?;
        let signature = signature
            .strip_prefix("0x")
            .and_then(|digits| alloy::hex::decode(digits).ok())
            .filter(|bytes| bytes.len() == 65)
            .and_then(|bytes| Signature::try_from(bytes.as_slice()).ok())
            .ok_or_else(|| ApiError::BadRequest("signature must be 65 bytes, hex with 0x".to_owned()))?;
        let failed = ApiError::Unauthorized;
        if !message.domain.as_str().eq_ignore_ascii_case(&self.domain) {
            return Err(failed(format!(
                "the message is for {}, not for this service ({})",
                message.domain, self.domain
            )));
        }
        let uri_origin = reqwest::Url::parse(message.uri.as_str()).map(|uri| uri.origin().ascii_serialization());
        if uri_origin.as_deref() != Ok(self.origin.as_str()) {
            return Err(failed(format!(
                "the message's URI {} is not on this service's origin {}",
                message.uri, self.origin
            )));
        }
        if message.chain_id != self.chain_id {
            return Err(failed(format!(
                "the message is for chain {}, the service's chain is {}",
                message.chain_id, self.chain_id
            )));
        }
        let seconds = |stamp: &siwe::TimeStamp| stamp.as_ref().unix_timestamp().max(0) as u64;
        let issued_at = seconds(&message.issued_at);
        if issued_at > now + CLOCK_SLACK_SECS {
            return Err(failed(format!(
                "the message is issued at {issued_at}, in the future (the service's clock says {now})"
            )));
        }
        let Some(expires_at) = message.expiration_time.as_ref().map(seconds) else {
            return Err(failed("the message has no Expiration Time: a session must end".to_owned()));
        };
        if expires_at <= now {
            return Err(failed(format!("the message expired at {expires_at} (the service's clock says {now})")));
        }
        if expires_at > now + MAX_SESSION_SECS {
            return Err(failed(format!(
                "the message expires at {expires_at}, more than 24 h ahead (the service's clock says {now})"
            )));
        }
        if let Some(not_before) = message.not_before.as_ref().map(seconds)
            && not_before > now
        {
            return Err(failed(format!(
                "the message is not valid before {not_before} (the service's clock says {now})"
            )));
        }
        let claimed = Address::from(message.address);
        let signer = signature
            .recover_address_from_msg(text.as_bytes())
            .map_err(|_| failed("the signature recovers to no address".to_owned()))?;
        if signer != claimed {
            return Err(failed(format!("the message is signed by {signer}, not by its address {claimed}")));
        }
        Ok((message, expires_at))
    }
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

/// The `session` cookie's value in the request's `Cookie` headers, if any.
fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value)
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
        let Some(token) = session_token(&parts.headers) else {
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

/// Issues a nonce for one sign-in (stored, so any replica can check it; valid for 10 minutes).
#[utoipa::path(post, path = "/api/siwe/nonce", tag = "session", responses(
    (status = 200, description = "A fresh nonce and the domain, URI and chain id the message must name", body = NonceView),
    (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
))]
pub async fn nonce(State(ctx): State<ApiContext>) -> Result<Json<NonceView>, ApiError> {
    let nonce: String = OsRng.sample_iter(&Alphanumeric).take(24).map(char::from).collect();
    ctx.store.create_siwe_nonce(&nonce, now_wall() as u64 + NONCE_TTL_SECS).await?;
    Ok(Json(NonceView {
        nonce,
        domain: ctx.signin.domain.clone(),
        uri: ctx.signin.origin.clone(),
        chain_id: ctx.signin.chain_id,
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
        (status = 200, description = "Signed in; the `session` cookie is set (HttpOnly, SameSite=Strict, Path=/api)", body = SessionView,
            headers(("Set-Cookie" = String, description = "session=<token>; HttpOnly; SameSite=Strict; Path=/api; Max-Age=<seconds>"))),
        (status = 400, description = "The body, the message or the signature is unreadable; the sentence says which", body = ErrorBody),
        (status = 401, description = "A check failed (signature, nonce, domain, URI, chain id or times); the sentence says which", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = ErrorBody),
        (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
    )
)]
pub async fn verify(
    State(ctx): State<ApiContext>,
    body: Result<Json<VerifyRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) =
        body.map_err(|rejection| crate::api::body_rejected(rejection, r#"{"message": "...", "signature": "0x..."}"#))?;
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
    (status = 401, description = "No session cookie, or an unknown or expired session", body = ErrorBody),
    (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
))]
pub async fn session(signed_in: SignedIn) -> Json<SessionView> {
    Json(SessionView { address: signed_in.address.to_string(), expires_at: signed_in.expires_at })
}

/// Signs out: deletes the session (if any) and clears the cookie.
#[utoipa::path(delete, path = "/api/session", tag = "session", responses(
    (status = 204, description = "Signed out (also when no session was there); the cookie is cleared",
        headers(("Set-Cookie" = String, description = "session=; ...; Max-Age=0"))),
    (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
))]
pub async fn sign_out(State(ctx): State<ApiContext>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = session_token(&headers) {
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
