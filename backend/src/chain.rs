//! The chain side: typed bindings of the escrow contract (from its committed forge artifact), the
//! events the watcher reads, and the operator's transactions, signed locally so that the outbox can
//! store each one before it is broadcast.

use alloy::{
    consensus::TxEnvelope,
    eips::{BlockNumberOrTag, Encodable2718},
    network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{Filter, Log, TransactionReceipt, TransactionRequest},
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolEventInterface},
};

use crate::{Error, Result};

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug)]
    DynamicPriceEscrow,
    "abi/DynamicPriceEscrow.json"
);

pub use DynamicPriceEscrow::DynamicPriceEscrowEvents as EscrowEvent;

/// The escrow's JSON ABI, from the same committed artifact as the bindings.
pub fn escrow_abi() -> alloy::json_abi::JsonAbi {
    #[derive(serde::Deserialize)]
    struct Artifact {
        abi: alloy::json_abi::JsonAbi,
    }
    serde_json::from_str::<Artifact>(include_str!("../abi/DynamicPriceEscrow.json"))
        .expect("the committed artifact is checked by `make check-abi`")
        .abi
}

/// The contract's `Status` enum, by its numeric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChainStatus {
    None,
    Signed,
    Active,
    Ended,
    Settled,
    Refunded,
}

impl From<u8> for OnChainStatus {
    fn from(value: u8) -> Self {
        match value {
            1 => Self::Signed,
            2 => Self::Active,
            3 => Self::Ended,
            4 => Self::Settled,
            5 => Self::Refunded,
            _ => Self::None,
        }
    }
}

/// A call the operator makes on an agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorCall {
    Activate { agreement: u64 },
    End { agreement: u64 },
    Settle { agreement: u64, availability_bps: u16 },
}

impl OperatorCall {
    pub fn calldata(&self) -> Bytes {
        match *self {
            Self::Activate { agreement } => {
                DynamicPriceEscrow::activateCall { agreementId: U256::from(agreement) }.abi_encode()
            }
            Self::End { agreement } => DynamicPriceEscrow::endCall { agreementId: U256::from(agreement) }.abi_encode(),
            Self::Settle { agreement, availability_bps } => {
                DynamicPriceEscrow::settleCall { agreementId: U256::from(agreement), availabilityBps: availability_bps }
                    .abi_encode()
            }
        }
        .into()
    }

    /// The on-chain status from which this call is still the next step. In any other status the call
    /// has already happened (or been overtaken, e.g. by the customer's cancellation) and counts as done.
    pub fn needed_in(&self) -> OnChainStatus {
        match self {
            Self::Activate { .. } => OnChainStatus::Signed,
            Self::End { .. } => OnChainStatus::Active,
            Self::Settle { .. } => OnChainStatus::Ended,
        }
    }
}

/// A transaction signed by the operator, ready to broadcast (again, if need be).
#[derive(Debug, Clone)]
pub struct SignedTx {
    pub nonce: u64,
    pub hash: B256,
    pub raw: Vec<u8>,
}

/// A connection to the chain and the escrow contract, with the operator's key.
#[derive(Clone)]
pub struct Chain {
    pub provider: DynProvider,
    pub escrow: Address,
    pub chain_id: u64,
    operator: EthereumWallet,
    pub operator_address: Address,
}

impl Chain {
    pub async fn connect(rpc_url: &str, escrow: Address, operator_key: &str) -> Result<Self> {
        let signer: PrivateKeySigner =
            operator_key.trim().parse().map_err(|_| Error::Config("the operator key is not a valid private key".into()))?;
        let url = rpc_url.parse().map_err(|e| Error::Config(format!("RPC URL {rpc_url:?}: {e}")))?;
        let provider = ProviderBuilder::new().disable_recommended_fillers().connect_http(url).erased();
        let chain_id = provider.get_chain_id().await.map_err(Error::chain)?;
        let code = provider.get_code_at(escrow).await.map_err(Error::chain)?;
        if code.is_empty() {
            return Err(Error::Config(format!("no contract at escrow address {escrow} on chain {chain_id}")));
        }
        Ok(Self { provider, escrow, chain_id, operator_address: signer.address(), operator: signer.into() })
    }

    pub fn contract(&self) -> DynamicPriceEscrow::DynamicPriceEscrowInstance<DynProvider> {
        DynamicPriceEscrow::new(self.escrow, self.provider.clone())
    }

    /// The latest block's number and timestamp.
    pub async fn head(&self) -> Result<(u64, u64)> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(Error::chain)?
            .ok_or_else(|| Error::Chain("the node has no latest block".into()))?;
        Ok((block.header.number, block.header.timestamp))
    }

    pub async fn block_timestamp(&self, number: u64) -> Result<u64> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await
            .map_err(Error::chain)?
            .ok_or_else(|| Error::Chain(format!("block {number} not found")))?;
        Ok(block.header.timestamp)
    }

    /// The escrow's logs in `[from, to]`.
    pub async fn logs(&self, from: u64, to: u64) -> Result<Vec<Log>> {
        let filter = Filter::new().address(self.escrow).from_block(from).to_block(to);
        self.provider.get_logs(&filter).await.map_err(Error::chain)
    }

    pub fn decode(log: &Log) -> Result<EscrowEvent> {
        EscrowEvent::decode_log(&log.inner).map(|decoded| decoded.data).map_err(Error::chain)
    }

    pub async fn status_of(&self, agreement: u64) -> Result<OnChainStatus> {
        let record = self.contract().getAgreement(U256::from(agreement)).call().await.map_err(Error::chain)?;
        Ok(OnChainStatus::from(record.status))
    }

    pub async fn activation_window(&self) -> Result<u64> {
        self.contract().activationWindow().call().await.map_err(Error::chain)
    }

    /// Signs `call` with the next nonce and current EIP-1559 fees; fails (without signing) if the
    /// call would revert now.
    pub async fn sign(&self, call: OperatorCall) -> Result<SignedTx> {
        let nonce = self.provider.get_transaction_count(self.operator_address).pending().await.map_err(Error::chain)?;
        let request = TransactionRequest::default()
            .with_from(self.operator_address)
            .with_to(self.escrow)
            .with_input(call.calldata())
            .with_chain_id(self.chain_id)
            .with_nonce(nonce);
        let gas = self.provider.estimate_gas(request.clone()).await.map_err(Error::chain)?;
        let fees = self.provider.estimate_eip1559_fees().await.map_err(Error::chain)?;
        let request = request
            .with_gas_limit(gas + gas / 5)
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
        let envelope: TxEnvelope = request.build(&self.operator).await.map_err(Error::chain)?;
        Ok(SignedTx { nonce, hash: *envelope.tx_hash(), raw: envelope.encoded_2718() })
    }

    /// Broadcasts a signed transaction. Re-broadcasting one the node already has is not an error.
    pub async fn broadcast(&self, raw: &[u8]) -> Result<()> {
        match self.provider.send_raw_transaction(raw).await {
            Ok(_) => Ok(()),
            Err(err) => {
                let text = err.to_string().to_lowercase();
                if text.contains("already known") || text.contains("already imported") || text.contains("nonce too low") {
                    Ok(())
                } else {
                    Err(Error::chain(err))
                }
            }
        }
    }

    pub async fn receipt(&self, hash: B256) -> Result<Option<TransactionReceipt>> {
        self.provider.get_transaction_receipt(hash).await.map_err(Error::chain)
    }
}
