//! The operator's calls in one transaction: `batch(bytes[])` runs each call in the escrow as the
//! operator's own; a call that reverts changes nothing and emits `BatchCallFailed(index, reason)`, the
//! others go on. Here: the calldata of an order's `openOrder` and of a batch, the outcome of each call
//! from a batch's receipt, and a revert's data as the name of the escrow's error.

use std::{collections::HashMap, sync::LazyLock};

use alloy::{
    primitives::{Address, Bytes, U256, aliases::U40},
    rpc::types::TransactionReceipt,
    sol_types::{SolCall, SolError, SolEvent},
};

use super::{ConferenceEscrow, IConferenceEscrow, bindings::escrow_abi};
use crate::domain::order::SignedOrder;

/// The escrow call that opens `order` from its customer's account.
pub fn open_order_calldata(order: &SignedOrder) -> Bytes {
    let o = &order.order;
    ConferenceEscrow::openOrderCall {
        order: IConferenceEscrow::Order {
            termsId: o.terms_id,
            allowedRegions: o.allowed_regions,
            gdpr: o.gdpr,
            maxCost: o.max_cost,
            nonce: o.nonce,
            deadline: U40::saturating_from(o.deadline),
        },
        customer: order.customer,
        signature: order.signature.clone(),
    }
    .abi_encode()
    .into()
}

/// `batch(calls)`.
pub fn batch_calldata(calls: Vec<Bytes>) -> Bytes {
    ConferenceEscrow::batchCall { calls }.abi_encode().into()
}

/// Each call's outcome in a mined batch transaction of `calls` calls sent to `escrow`: `Ok` or the
/// decoded reason it was skipped. A transaction that reverted as a whole ran none of them.
pub fn outcomes(receipt: &TransactionReceipt, escrow: Address, calls: usize) -> Vec<Result<(), String>> {
    let logs: Vec<alloy::primitives::Log> = receipt.logs().iter().map(|log| log.inner.clone()).collect();
    call_outcomes(receipt.status(), &logs, escrow, calls)
}

/// [`outcomes`] from the transaction's status and logs.
pub fn call_outcomes(
    succeeded: bool,
    logs: &[alloy::primitives::Log],
    escrow: Address,
    calls: usize,
) -> Vec<Result<(), String>> {
    if !succeeded {
        return vec![Err("the batch transaction reverted".to_owned()); calls];
    }
    let mut outcomes = vec![Ok(()); calls];
    for log in logs.iter().filter(|log| log.address == escrow) {
        let Ok(failed) = ConferenceEscrow::BatchCallFailed::decode_log_data(&log.data) else { continue };
        if let Some(outcome) = usize::try_from(failed.index).ok().and_then(|i| outcomes.get_mut(i)) {
            *outcome = Err(revert_reason(&failed.reason));
        }
    }
    outcomes
}

/// The escrow's (and its annex's) error selectors and their names.
static ERRORS: LazyLock<HashMap<[u8; 4], String>> =
    LazyLock::new(|| escrow_abi().errors().map(|error| (error.selector().0, error.name.clone())).collect());

/// A revert's data as the name of the escrow's error (e.g. `Escrow_InsufficientBalance`), a
/// `require` message, or the data in hex when it is neither.
pub fn revert_reason(data: &[u8]) -> String {
    if let Some(name) = data.get(..4).and_then(|selector| ERRORS.get(<&[u8; 4]>::try_from(selector).ok()?)) {
        return name.clone();
    }
    if let Ok(message) = alloy::sol_types::Revert::abi_decode(data) {
        return message.reason;
    }
    if data.is_empty() { "reverted without a reason".to_owned() } else { alloy::hex::encode_prefixed(data) }
}

/// The order's nonce as the contract's bitmap takes it: word and bit (Permit2-style unordered nonces).
pub fn nonce_word_and_mask(nonce: U256) -> (U256, U256) {
    (nonce >> 8, U256::from(1) << (nonce & U256::from(0xff)).to::<usize>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_escrows_and_the_annexs_errors() {
        let annex = crate::chain::EscrowAnnex::Escrow_InsufficientBalance {
            customer: Address::ZERO,
            tokenId: 0,
            needed: U256::from(2),
            free: U256::from(1),
        };
        assert_eq!(revert_reason(&annex.abi_encode()), "Escrow_InsufficientBalance");
        let escrow = ConferenceEscrow::Escrow_WrongStatus { agreementId: U256::from(1), status: 2 };
        assert_eq!(revert_reason(&escrow.abi_encode()), "Escrow_WrongStatus");
        let message = alloy::sol_types::Revert::from("nope");
        assert_eq!(revert_reason(&message.abi_encode()), "nope");
        assert_eq!(revert_reason(&[]), "reverted without a reason");
        assert_eq!(revert_reason(&[0xde, 0xad, 0xbe, 0xef, 1]), "0xdeadbeef01");
    }

    #[test]
    fn each_call_succeeds_unless_the_escrow_reported_it_failed() {
        let escrow = Address::repeat_byte(0xe5);
        let failed = |address, index: u64, reason: Vec<u8>| alloy::primitives::Log {
            address,
            data: ConferenceEscrow::BatchCallFailed { index: U256::from(index), reason: reason.into() }
                .encode_log_data(),
        };
        let nonce_used =
            crate::chain::EscrowAnnex::Escrow_OrderNonceUsed { customer: Address::ZERO, nonce: U256::from(7) }
                .abi_encode();
        let logs = vec![
            failed(escrow, 1, nonce_used),
            // Another contract's look-alike, and an index past the batch, change nothing.
            failed(Address::repeat_byte(1), 0, vec![]),
            failed(escrow, 9, vec![]),
        ];
        let outcomes = call_outcomes(true, &logs, escrow, 3);
        assert_eq!(outcomes, vec![Ok(()), Err("Escrow_OrderNonceUsed".to_owned()), Ok(())]);
        assert!(call_outcomes(false, &logs, escrow, 2).iter().all(Result::is_err), "a reverted batch ran nothing");
    }

    #[test]
    fn a_batch_is_the_calls_in_order() {
        let calls = vec![Bytes::from(vec![1, 2]), Bytes::from(vec![3])];
        let data = batch_calldata(calls.clone());
        let decoded = ConferenceEscrow::batchCall::abi_decode(&data).unwrap();
        assert_eq!(decoded.calls, calls);
    }

    #[test]
    fn splits_a_nonce_into_its_word_and_bit() {
        assert_eq!(nonce_word_and_mask(U256::from(0)), (U256::ZERO, U256::from(1)));
        assert_eq!(nonce_word_and_mask(U256::from(257)), (U256::from(1), U256::from(2)));
        assert_eq!(nonce_word_and_mask(U256::from(255)), (U256::ZERO, U256::from(1) << 255));
    }
}
