//! What a Sign-In with Ethereum (EIP-4361) message must say to open a session here ([`SignIn`]): this
//! service's domain, origin and chain, times that make sense, and a signature by the message's own
//! address. The routes that use it are in [`super::session`].

use std::str::FromStr;

use alloy::primitives::{Address, Signature};

use super::error::ApiError;
use crate::{Error, Result};

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

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The service's origin, e.g. `http://127.0.0.1:8080`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The `Set-Cookie` value that gives the browser `token` for `max_age` seconds (0 clears it).
    pub(super) fn cookie(&self, token: &str, max_age: u64) -> String {
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
