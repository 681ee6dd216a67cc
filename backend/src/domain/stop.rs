//! The customer's gasless stop ([`SignedStop`]): an EIP-712 `Stop` signed in the wallet, which the
//! operator submits with the settlement (or anyone holding it with `stopBySignature`). The message
//! names the conference by the chain's session number: 1, or for TimeLimited minutes the number of
//! sessions settled so far plus one, so a stop can never end another session.

use alloy::primitives::{Address, B256, Bytes, U256};

/// A customer's EIP-712 `Stop` as the service records it: the conference it is for (by its start, as
/// the backend follows it), when it stopped, until when it may be submitted, and the signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedStop {
    pub started_at: u64,
    pub stopped_at: u64,
    pub deadline: u64,
    #[serde(skip)]
    pub signature: Bytes,
}

alloy::sol! {
    /// The typed message of `ConferenceEscrow.STOP_TYPEHASH`.
    struct Stop {
        uint256 agreementId;
        uint32 session;
        uint40 stoppedAt;
        uint40 deadline;
    }
}

/// The escrow's EIP-712 domain on chain `chain_id`, which every typed message of the service is signed in.
pub fn escrow_domain(chain_id: u64, escrow: Address) -> alloy::sol_types::Eip712Domain {
    alloy::sol_types::eip712_domain! {
        name: "ConferenceEscrow",
        version: "1",
        chain_id: chain_id,
        verifying_contract: escrow,
    }
}

impl SignedStop {
    /// The EIP-712 digest the customer signed for the chain's session `session` of the agreement, for
    /// the escrow at `escrow` on chain `chain_id`.
    pub fn digest(&self, agreement: u64, session: u32, chain_id: u64, escrow: Address) -> B256 {
        use alloy::{primitives::aliases::U40, sol_types::SolStruct};
        let domain = escrow_domain(chain_id, escrow);
        let message = Stop {
            agreementId: U256::from(agreement),
            session,
            stoppedAt: U40::saturating_from(self.stopped_at),
            deadline: U40::saturating_from(self.deadline),
        };
        message.eip712_signing_hash(&domain)
    }

    /// The address whose key made the signature (an EOA; smart-wallet signatures are checked by the
    /// contract alone).
    pub fn signer(&self, agreement: u64, session: u32, chain_id: u64, escrow: Address) -> Option<Address> {
        let signature = alloy::primitives::Signature::try_from(self.signature.as_ref()).ok()?;
        signature.recover_address_from_prehash(&self.digest(agreement, session, chain_id, escrow)).ok()
    }
}

/// The chain's session number of an agreement's current conference (what a `Stop` names): one more
/// than its sessions settled so far.
pub fn chain_session(settled_sessions: usize) -> u32 {
    u32::try_from(settled_sessions).map_or(u32::MAX, |settled| settled.saturating_add(1))
}
