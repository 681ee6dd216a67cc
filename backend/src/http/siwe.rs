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
/// The cookie that carries the session's token over http (a development service): scoped to the API.
pub const COOKIE: &str = "session";
/// The cookie over https: the `__Host-` prefix makes the browser refuse one set by a sibling origin (it
/// must be `Secure`, `Path=/` and have no `Domain`).
pub const SECURE_COOKIE: &str = "__Host-session";

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

    /// The name of the session cookie: `__Host-session` over https, `session` over http.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure { SECURE_COOKIE } else { COOKIE }
    }

    /// The `Set-Cookie` value that gives the browser `token` for `max_age` seconds (0 clears it).
    pub(super) fn cookie(&self, token: &str, max_age: u64) -> String {
        if self.secure {
            format!("{SECURE_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}; Secure")
        } else {
            format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/api; Max-Age={max_age}")
        }
    }

    /// Refuses a request a browser sent from another site (a cross-site form or script riding on the
    /// session cookie): its `Sec-Fetch-Site` must be `same-origin` (or `none`: typed by the user), and
    /// its `Origin`, when sent, this service's. Requests without either (not from a browser) pass: they
    /// carry no victim's cookie.
    pub fn check_origin(&self, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
        let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("(not text)"));
        if let Some(site) = header("sec-fetch-site")
            && !matches!(site, "same-origin" | "none")
        {
            return Err(ApiError::Forbidden(format!("a {site} request may not act on a session here")));
        }
        if let Some(origin) = header("origin")
            && origin != self.origin
        {
            return Err(ApiError::Forbidden(format!(
                "a request from {origin} may not act on a session of {}",
                self.origin
            )));
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_https_the_session_cookie_is_a_host_cookie() {
        let secure = SignIn::new("https://conference.example", 1).unwrap();
        assert_eq!(secure.cookie_name(), "__Host-session");
        let cookie = secure.cookie("t0k3n", 60);
        assert!(cookie.starts_with("__Host-session=t0k3n; HttpOnly; SameSite=Strict; Path=/;"), "{cookie}");
        assert!(cookie.ends_with("; Secure") && !cookie.contains("Domain"), "{cookie}");
        let plain = SignIn::new("http://127.0.0.1:8080", 1).unwrap();
        assert_eq!(plain.cookie("t", 60), "session=t; HttpOnly; SameSite=Strict; Path=/api; Max-Age=60");
    }

    #[test]
    fn only_this_origin_may_act_on_a_session() {
        let signin = SignIn::new("https://conference.example", 1).unwrap();
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = axum::http::HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, axum::http::HeaderValue::from_static(value));
            }
            map
        };
        assert!(signin.check_origin(&headers(&[])).is_ok(), "not from a browser");
        let own = [("origin", "https://conference.example"), ("sec-fetch-site", "same-origin")];
        assert!(signin.check_origin(&headers(&own)).is_ok());
        for refused in [
            &[("origin", "https://evil.example")][..],
            &[("origin", "https://conference.example.evil.example")],
            &[("sec-fetch-site", "cross-site")],
            &[("sec-fetch-site", "same-site"), ("origin", "https://conference.example")],
        ] {
            assert!(matches!(signin.check_origin(&headers(refused)), Err(ApiError::Forbidden(_))), "{refused:?}");
        }
    }
}
