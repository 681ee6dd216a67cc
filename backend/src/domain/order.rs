//! A customer's order ([`SignedOrder`]): the EIP-712 message it signs in its wallet to open a conference
//! from its account, with no transaction of its own. The operator submits it (`openOrder`, in a batch)
//! when it can serve it; the escrow then locks [`lock`] of the account's free balance and opens an
//! agreement like a signed one.

use alloy::primitives::{Address, B256, Bytes, U256};
use serde::Serialize;

use crate::domain::agreement::Model;

/// The message as the wallet signs it: its EIP-712 type is the struct's name and fields.
mod typed {
    alloy::sol! {
        /// The typed message of `EscrowState.ORDER_TYPEHASH`, signed in the escrow's EIP-712 domain.
        struct Order {
            uint32 termsId;
            uint32 allowedRegions;
            bool gdpr;
            uint256 maxCost;
            uint256 nonce;
            uint40 deadline;
        }
    }
}

/// The largest deadline the typed order can hold (a uint40).
pub const MAX_DEADLINE: u64 = (1 << 40) - 1;

/// What the customer signs: the terms version, its constraints, the most it may lock, a nonce (unordered:
/// word `nonce >> 8`, bit `nonce & 255`) and until when the operator may submit it (chain seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub terms_id: u32,
    pub allowed_regions: u32,
    pub gdpr: bool,
    pub max_cost: U256,
    pub nonce: U256,
    pub deadline: u64,
}

/// An order with its customer and signature, as the API accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedOrder {
    pub customer: Address,
    pub order: Order,
    pub signature: Bytes,
}

impl Order {
    /// The EIP-712 digest the customer signs for the escrow at `escrow` on chain `chain_id` (the escrow's
    /// `orderDigest`): the type `Order(uint32 termsId,uint32 allowedRegions,bool gdpr,uint256 maxCost,
    /// uint256 nonce,uint40 deadline)`.
    pub fn digest(&self, chain_id: u64, escrow: Address) -> B256 {
        use alloy::sol_types::SolStruct;
        self.typed().eip712_signing_hash(&crate::domain::stop::escrow_domain(chain_id, escrow))
    }

    fn typed(&self) -> typed::Order {
        typed::Order {
            termsId: self.terms_id,
            allowedRegions: self.allowed_regions,
            gdpr: self.gdpr,
            maxCost: self.max_cost,
            nonce: self.nonce,
            deadline: alloy::primitives::aliases::U40::saturating_from(self.deadline),
        }
    }
}

impl SignedOrder {
    /// The address whose key made the signature, if it is a 65-byte ECDSA signature (a smart-contract
    /// customer's is checked with ERC-1271 instead).
    pub fn signer(&self, chain_id: u64, escrow: Address) -> Option<Address> {
        let signature = alloy::primitives::Signature::try_from(self.signature.as_ref()).ok()?;
        signature.recover_address_from_prehash(&self.order.digest(chain_id, escrow)).ok()
    }
}

/// What the terms say that an order's lock depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermsPricing {
    pub model: Model,
    pub price: U256,
    pub max_duration: u64,
    pub minimum_charge: U256,
}

const BPS: u64 = 10_000;

/// What opening an order locks in the account: the deposit for the terms' longest conference, as the
/// escrow computes it (`_fullDeposit`): the surcharged price for FixedPrice; price × maxDuration for
/// DynamicPrice; per minute for TimeLimited; the surcharged minimum plus per second for FlexiblePeriod,
/// each amount raised by `surcharge_bps` and rounded down once.
pub fn lock(terms: &TermsPricing, surcharge_bps: u32) -> U256 {
    let raise = U256::from(BPS + u64::from(surcharge_bps));
    let (bps, duration) = (U256::from(BPS), U256::from(terms.max_duration));
    match terms.model {
        Model::FixedPrice => terms.price * raise / bps,
        Model::TimeLimited => terms.price * duration * raise / (U256::from(60) * bps),
        Model::DynamicPrice => terms.price * duration * raise / bps,
        Model::FlexiblePeriod => terms.minimum_charge * raise / bps + terms.price * duration * raise / bps,
    }
}

/// Where an order stands, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Accepted; not opened on-chain yet (waiting for, or in, a batch).
    Pending,
    /// Opened: the chain emitted `OrderFilled` with its agreement.
    Opened,
    /// The chain refused it (or it could no longer be submitted); `reason` says why.
    Failed,
}

impl OrderStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Opened => "opened",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "opened" => Self::Opened,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy::signers::{SignerSync, local::PrivateKeySigner};

    use super::*;

    fn order() -> Order {
        Order {
            terms_id: 1,
            allowed_regions: 0,
            gdpr: false,
            max_cost: U256::from(10u64.pow(18)),
            nonce: U256::from(257),
            deadline: 2_000_000_000,
        }
    }

    #[test]
    fn the_signature_recovers_to_its_key_and_binds_the_chain_escrow_and_fields() {
        let key = PrivateKeySigner::random();
        let escrow = Address::repeat_byte(0xe5);
        let digest = order().digest(31337, escrow);
        let signature = key.sign_hash_sync(&digest).unwrap();
        let signed =
            SignedOrder { customer: key.address(), order: order(), signature: signature.as_bytes().to_vec().into() };
        assert_eq!(signed.signer(31337, escrow), Some(key.address()));
        assert_ne!(signed.signer(1, escrow), Some(key.address()), "another chain");
        assert_ne!(signed.signer(31337, Address::repeat_byte(1)), Some(key.address()), "another escrow");
        let mut other = signed.clone();
        other.order.max_cost += U256::from(1);
        assert_ne!(other.signer(31337, escrow), Some(key.address()), "another limit");
        let truncated = SignedOrder { signature: Bytes::from(vec![1u8; 10]), ..signed };
        assert_eq!(truncated.signer(31337, escrow), None);
    }

    #[test]
    fn the_type_is_the_contracts_order() {
        use alloy::sol_types::SolStruct;
        // The type string whose hash is the escrow's ORDER_TYPEHASH.
        assert_eq!(
            typed::Order::eip712_encode_type(),
            "Order(uint32 termsId,uint32 allowedRegions,bool gdpr,uint256 maxCost,uint256 nonce,uint40 deadline)"
        );
    }

    #[test]
    fn locks_the_deposit_of_the_longest_conference_for_every_model() {
        let terms = |model, price: u64, max_duration, minimum: u64| TermsPricing {
            model,
            price: U256::from(price),
            max_duration,
            minimum_charge: U256::from(minimum),
        };
        // The dev chain's terms 1-4, without and with a surcharge.
        assert_eq!(lock(&terms(Model::DynamicPrice, 10u64.pow(12), 3600, 0), 0), U256::from(36 * 10u64.pow(14)));
        assert_eq!(lock(&terms(Model::FixedPrice, 10u64.pow(15), 3600, 0), 1_000), U256::from(11 * 10u64.pow(14)));
        assert_eq!(lock(&terms(Model::TimeLimited, 6 * 10u64.pow(13), 36_000, 0), 0), U256::from(36 * 10u64.pow(15)));
        assert_eq!(
            lock(&terms(Model::FlexiblePeriod, 10u64.pow(12), 86_400, 10u64.pow(15)), 0),
            U256::from(10u64.pow(15) + 864 * 10u64.pow(14))
        );
        // Each part rounded down on its own, as the contract does.
        assert_eq!(
            lock(&terms(Model::FlexiblePeriod, 3, 3, 7), 3_333),
            U256::from(7 * 13_333 / 10_000 + 9 * 13_333 / 10_000)
        );
        assert_eq!(lock(&terms(Model::TimeLimited, 7, 90, 0), 0), U256::from(7 * 90 / 60));
    }
}
