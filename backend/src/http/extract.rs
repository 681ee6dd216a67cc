//! What the handlers take from a request and check the same way: the agreement id of the path, the
//! client's address, a wallet address, and the agreement as the store has seen it.

use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
};

use alloy::primitives::Address;
use axum::{
    extract::{ConnectInfo, FromRequestParts, Path},
    http::request::Parts,
};

use super::{context::ApiContext, error::ApiError, limits::UNKNOWN_CLIENT};
use crate::{domain::agreement::Agreement, store::Store};

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

/// An address as the API takes it: 0x and 40 hex digits, any case (no checksum is required).
pub fn parse_address(text: &str) -> Option<Address> {
    let digits = text.strip_prefix("0x")?;
    (digits.len() == 40 && digits.bytes().all(|b| b.is_ascii_hexdigit())).then(|| digits.parse().ok()).flatten()
}

pub fn is_customer(agreement: &Agreement, address: Address) -> bool {
    agreement.customer.parse::<Address>().is_ok_and(|customer| customer == address)
}

/// The agreement `id` as the store has it, or the API's 404 for one never seen on-chain.
pub async fn seen_agreement(store: &Store, id: u64) -> Result<Agreement, ApiError> {
    store.agreement(id).await?.ok_or_else(|| ApiError::NotFound(format!("no agreement {id} has been seen on-chain")))
}

/// The address a request is counted by for the per-client limits ([`super::limits`]): the header a
/// reverse proxy sets, when `CLIENT_IP_HEADER` names one and the request has it, else the peer.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<ApiContext> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, Infallible> {
        let forwarded = ctx.guards.limits.client_ip_header.as_ref().and_then(|name| {
            let value = parts.headers.get(name)?.to_str().ok()?;
            // X-Forwarded-For lists the client first.
            value.split(',').next()?.trim().parse().ok()
        });
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        Ok(ClientIp(forwarded.or(peer).unwrap_or(UNKNOWN_CLIENT)))
    }
}
