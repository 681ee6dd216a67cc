//! Conferences opened from a customer's account by a signature: `POST /api/orders` takes the customer's
//! EIP-712 order, checks it against the chain as `openOrder` will and keeps it for the settler to submit
//! (in its next batch); `GET /api/orders/{customer}/{nonce}` says where it stands. Nothing is kept of a
//! refused order. The chain decides in the end: an order accepted here can still fail there (the customer
//! withdrew or cancelled meanwhile), and its answer then says why.

use alloy::primitives::{Address, Bytes, U256};
use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    context::ApiContext,
    error::{ApiError, ErrorBody, body_rejected},
    extract::parse_address,
};
use crate::{
    Error,
    chain::{Chain, batch::revert_reason},
    domain::{
        agreement::Model,
        order::{MAX_DEADLINE, Order, OrderStatus, SignedOrder, TermsPricing, lock},
    },
    store::orders::OrderRecord,
};

pub(super) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(place_order)).routes(routes!(order_status))
}

/// The typed `Order(uint32 termsId, uint32 allowedRegions, bool gdpr, uint256 maxCost,
/// uint256 nonce, uint40 deadline)` the customer signed, in the escrow's EIP-712 domain.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderFields {
    /// The terms version to open a conference under.
    #[schema(maximum = 4_294_967_295_u64)]
    pub terms_id: u32,
    /// Bit i: the conference may run in region i; 0 takes the terms' regions.
    #[schema(maximum = 4_294_967_295_u64)]
    pub allowed_regions: u32,
    pub gdpr: bool,
    /// The most the order may lock in the account (wei, or the token's smallest unit), decimal.
    #[schema(pattern = "^[0-9]{1,78}$")]
    pub max_cost: String,
    /// Any unused number (decimal, up to 2^256 - 1): word nonce / 256, bit nonce % 256 of the customer's
    /// nonces (`cancelOrders(word, mask)` cancels it).
    #[schema(pattern = "^[0-9]{1,78}$")]
    pub nonce: String,
    /// Until when the operator may open it (chain seconds), at most 2^40 - 1.
    #[schema(maximum = 1_099_511_627_775_u64)]
    pub deadline: u64,
}

/// A customer's signed order.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderRequest {
    /// The account holder who signed (0x and 40 hex digits).
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub customer: String,
    pub order: OrderFields,
    /// The customer's signature over the order's EIP-712 digest: 65 bytes from its key, or whatever its
    /// contract accepts (ERC-1271), hex with 0x.
    #[schema(pattern = "^0x([0-9a-fA-F]{2})*$")]
    pub signature: String,
}

/// Where an order stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    /// Lowercase hex.
    pub customer: String,
    /// Decimal.
    pub nonce: String,
    pub status: OrderStatus,
    /// The agreement it opened, once opened.
    pub agreement_id: Option<u64>,
    /// Why the chain refused it, once failed: the escrow's error (e.g. `Escrow_InsufficientBalance`).
    pub reason: Option<String>,
}

impl From<&OrderRecord> for OrderView {
    fn from(record: &OrderRecord) -> Self {
        Self {
            customer: crate::store::orders::address_key(record.signed.customer),
            nonce: record.signed.order.nonce.to_string(),
            status: record.status,
            agreement_id: record.agreement_id,
            reason: record.reason.clone(),
        }
    }
}

/// One order of a customer is checked against the balance and kept at a time (in this replica): two
/// orders of one customer cannot both count on the same free balance. Customers are spread over these
/// locks by their address's last byte, so other customers' orders go on meanwhile. Across replicas the
/// chain is the last word (an order over the balance fails there with `Escrow_InsufficientBalance`).
static ACCEPTING: [Mutex<()>; 64] = [const { Mutex::const_new(()) }; 64];

/// The lock that `customer`'s orders are accepted under.
fn accepting(customer: Address) -> &'static Mutex<()> {
    &ACCEPTING[usize::from(customer.0[19]) % ACCEPTING.len()]
}

fn decimal(field: &str, text: &str) -> Result<U256, ApiError> {
    if text.is_empty() || text.len() > 78 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest(format!("{field} must be a decimal integer, got {text:?}")));
    }
    U256::from_str_radix(text, 10).map_err(|_| ApiError::BadRequest(format!("{field} {text} does not fit a uint256")))
}

/// The escrow's reason a view reverted with, or the error as it came (the node is unreachable, ...).
fn chain_refusal(err: &Error) -> Option<String> {
    let Error::Chain(source) = err else { return None };
    let text = source.to_string();
    // alloy names the revert data in hex after "data: "; decode it when it is the escrow's error.
    let data = text.split("data: ").nth(1)?.trim_start_matches(['"', '\\']);
    let end = data.find(|c: char| !c.is_ascii_hexdigit() && c != 'x').unwrap_or(data.len());
    let bytes: Bytes = data[..end].parse().ok()?;
    Some(revert_reason(&bytes))
}

/// Takes a customer's signed order to open a conference from its account. Checked as the escrow's
/// `openOrder` will check it: the signature (the customer's key, or its contract by ERC-1271), the
/// deadline (not passed on the chain's clock), the nonce (neither kept here nor used on-chain), the terms
/// (open, these constraints allowed, signing not paused), and what it locks (the deposit of the terms'
/// longest conference) against `maxCost` and against the account's free balance less what the customer's
/// pending orders will lock. Kept as pending; the operator opens it in its next batch.
#[utoipa::path(
    post,
    path = "/api/orders",
    tag = "orders",
    request_body = OrderRequest,
    responses(
        (status = 202, description = "Kept, pending: the operator opens it in its next batch", body = OrderView),
        (status = 400, description = "The body, a number, the signature (not the customer's) or the deadline (passed) is wrong; the sentence says which", body = ErrorBody),
        (status = 409, description = "The customer's nonce is already taken (an order kept here, or used or cancelled on-chain)", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "It cannot be opened as it stands: the terms are not open or refuse these constraints, signing is paused, its lock exceeds `maxCost` (Escrow_OrderOverLimit) or the free balance not yet promised to pending orders (Escrow_InsufficientBalance)", body = ErrorBody),
        (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
        (status = 503, description = "The service reads no chain here, or the node did not answer", body = ErrorBody),
    )
)]
async fn place_order(
    State(ctx): State<ApiContext>,
    body: Result<Json<OrderRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<OrderView>), ApiError> {
    let Json(request) = body.map_err(|rejection| {
        body_rejected(
            rejection,
            r#"{"customer": "0x...", "order": {"termsId", "allowedRegions", "gdpr", "maxCost", "nonce", "deadline"}, "signature": "0x..."}"#,
        )
    })?;
    let customer = parse_address(&request.customer).ok_or_else(|| {
        ApiError::BadRequest(format!("customer must be 0x and 40 hex digits, got {:?}", request.customer))
    })?;
    let fields = &request.order;
    if fields.deadline > MAX_DEADLINE {
        return Err(ApiError::BadRequest(format!(
            "deadline {} does not fit the signed message's uint40 (at most {MAX_DEADLINE})",
            fields.deadline
        )));
    }
    let order = Order {
        terms_id: fields.terms_id,
        allowed_regions: fields.allowed_regions,
        gdpr: fields.gdpr,
        max_cost: decimal("maxCost", &fields.max_cost)?,
        nonce: decimal("nonce", &fields.nonce)?,
        deadline: fields.deadline,
    };
    let signature: Bytes =
        request.signature.parse().map_err(|_| ApiError::BadRequest("signature must be hex with 0x".to_owned()))?;
    let signed = SignedOrder { customer, order, signature };
    let Some(chain) = ctx.chain.as_ref() else {
        return Err(ApiError::Unavailable { message: "this service reads no chain".into(), retry_after_secs: 60 });
    };
    let unavailable = |err: Error| match chain_refusal(&err) {
        Some(reason) => ApiError::Unprocessable(format!("the escrow refuses it: {reason}")),
        None => {
            tracing::warn!(error = %err, "reading the escrow for an order failed");
            ApiError::Unavailable { message: "the chain did not answer; try again".into(), retry_after_secs: 5 }
        }
    };
    check_signature(chain, &signed).await.map_err(|e| match e {
        Checked::Refused(message) => ApiError::BadRequest(message),
        Checked::Failed(err) => unavailable(err),
    })?;
    // Read at once; judged in the order below, so the first refusal is always the same one.
    let (terms_id, nonce) = (signed.order.terms_id, signed.order.nonce);
    let (head, kept, nonce_used, paused, terms, surcharge_bps) = tokio::join!(
        chain.head(),
        ctx.store.order(customer, nonce),
        chain.order_nonce_used(customer, nonce),
        chain.paused(),
        chain.terms_now(terms_id),
        chain.surcharge_bps(terms_id, signed.order.allowed_regions, signed.order.gdpr),
    );
    let (_, chain_now) = head.map_err(unavailable)?;
    if chain_now > signed.order.deadline {
        return Err(ApiError::BadRequest(format!(
            "the deadline {} has passed (chain time {chain_now}): sign a new order",
            signed.order.deadline
        )));
    }
    let nonce_taken = || ApiError::Conflict(format!("nonce {} of {customer:#x} is already taken", signed.order.nonce));
    if kept?.is_some() || nonce_used.map_err(unavailable)? {
        return Err(nonce_taken());
    }
    if paused.map_err(unavailable)? {
        return Err(ApiError::Unprocessable("signing is paused: no order can be opened now".into()));
    }
    let terms = terms.map_err(unavailable)?;
    if !terms.open {
        return Err(ApiError::Unprocessable(format!("terms {terms_id} are not open")));
    }
    let surcharge_bps = surcharge_bps.map_err(unavailable)?;
    let model =
        Model::from_index(terms.model).ok_or_else(|| Error::Config(format!("unknown model {}", terms.model)))?;
    let pricing = TermsPricing {
        model,
        price: U256::from(terms.price),
        max_duration: terms.maxDuration.to::<u64>(),
        minimum_charge: U256::from(terms.minimumCharge),
    };
    let amount = lock(&pricing, surcharge_bps);
    if amount > signed.order.max_cost {
        return Err(ApiError::Unprocessable(format!(
            "Escrow_OrderOverLimit: it locks {amount}, more than its maxCost {}",
            signed.order.max_cost
        )));
    }
    let _one_at_a_time = accepting(customer).lock().await;
    // Read in this order, so that an order already out of the free balance is never also counted as
    // promised: the balance first; then the pending orders (one opened by then was in a batch by then: a
    // batch is stored before it is sent); then how many of the operator's transactions are mined. A
    // pending order whose batch's nonce is below that count was opened, or failed and locks nothing, in
    // its mined batch (once mined, always, unless a reorganisation undoes it: then it counts again). One
    // read, however many orders are pending. An order opened between the first read and the last is
    // counted in neither; so is one whose batch's nonce another transaction of the operator key took, until
    // the settler sends it anew. The chain refuses an order over the balance anyway
    // (`Escrow_InsufficientBalance`).
    let free = U256::from(chain.account_of(customer, terms.tokenId).await.map_err(unavailable)?.free);
    let pending = ctx.store.pending_locks(customer, terms.tokenId).await?;
    let mined = if pending.iter().any(|order| order.batch_nonce.is_some()) {
        chain.operator_nonce(false).await.map_err(unavailable)?
    } else {
        0
    };
    let promised = pending
        .iter()
        .filter(|order| order.batch_nonce.is_none_or(|nonce| nonce >= mined))
        .map(|order| order.lock)
        .sum::<U256>();
    let available = free.saturating_sub(promised);
    if amount > available {
        return Err(ApiError::Unprocessable(format!(
            "Escrow_InsufficientBalance: it locks {amount}; the account's free balance is {free}, of which \
             {promised} is promised to pending orders"
        )));
    }
    if !ctx.store.insert_order(&signed, terms.tokenId, amount).await? {
        return Err(nonce_taken());
    }
    let kept =
        ctx.store.order(customer, signed.order.nonce).await?.ok_or_else(|| Error::Config("order kept".into()))?;
    Ok((StatusCode::ACCEPTED, Json(OrderView::from(&kept))))
}

enum Checked {
    Refused(String),
    Failed(Error),
}

/// Whether the signature is the customer's: its key (an EOA, or one that delegated its code), or else,
/// for an account with code, its contract's ERC-1271 answer over the escrow's own digest.
async fn check_signature(chain: &Chain, signed: &SignedOrder) -> Result<(), Checked> {
    if signed.signer(chain.chain_id, chain.escrow) == Some(signed.customer) {
        return Ok(());
    }
    let refused = || {
        Checked::Refused(format!(
            "the signature is not {:#x}'s over this order (EIP-712 in the escrow's domain on chain {})",
            signed.customer, chain.chain_id
        ))
    };
    if !chain.has_code(signed.customer).await.map_err(Checked::Failed)? {
        return Err(refused());
    }
    let digest = chain.order_digest(&signed.order).await.map_err(Checked::Failed)?;
    if chain.erc1271_valid(signed.customer, digest, signed.signature.clone()).await.map_err(Checked::Failed)? {
        Ok(())
    } else {
        Err(refused())
    }
}

/// Where a customer's order stands: pending (kept, not opened yet), opened (with its agreement) or failed
/// (with the chain's reason).
#[utoipa::path(
    get,
    path = "/api/orders/{customer}/{nonce}",
    tag = "orders",
    params(
        ("customer" = String, Path, description = "The customer's address, 0x and 40 hex digits"),
        ("nonce" = String, Path, description = "The order's nonce, decimal"),
    ),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 400, description = "The address or the nonce is unreadable", body = ErrorBody),
        (status = 404, description = "No such order was accepted here", body = ErrorBody),
        (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
    )
)]
async fn order_status(
    State(ctx): State<ApiContext>,
    Path((customer, nonce)): Path<(String, String)>,
) -> Result<Json<OrderView>, ApiError> {
    let address = parse_address(&customer)
        .ok_or_else(|| ApiError::BadRequest(format!("customer must be 0x and 40 hex digits, got {customer:?}")))?;
    let nonce_value = decimal("nonce", &nonce)?;
    let record = ctx
        .store
        .order(address, nonce_value)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no order {nonce} of {address:#x} was accepted here")))?;
    Ok(Json(OrderView::from(&record)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_escrows_error_in_a_reverted_read() {
        use alloy::sol_types::SolError;
        let data = crate::chain::ConferenceEscrow::Escrow_TermsNotOpen { termsId: 9 }.abi_encode();
        let text = format!(
            "server returned an error response: error code 3: execution reverted, data: \"{}\"",
            alloy::hex::encode_prefixed(&data)
        );
        let err = Error::Chain(text.into());
        assert_eq!(chain_refusal(&err).as_deref(), Some("Escrow_TermsNotOpen"));
        assert_eq!(chain_refusal(&Error::Chain("connection refused".into())), None);
    }

    #[test]
    fn reads_decimal_amounts_and_refuses_anything_else() {
        assert_eq!(decimal("n", "0").unwrap(), U256::ZERO);
        assert_eq!(decimal("n", &U256::MAX.to_string()).unwrap(), U256::MAX);
        for bad in ["", "-1", "0x10", "1e18", "1.5", " 1"] {
            assert!(decimal("n", bad).is_err(), "{bad:?}");
        }
        assert!(
            decimal("n", "115792089237316195423570985008687907853269984665640564039457584007913129639936").is_err()
        );
    }
}
