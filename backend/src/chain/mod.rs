//! The chain side: the connection to the node and the escrow ([`Chain`]), its typed bindings
//! ([`bindings`]), its logs decoded into the domain's events ([`decode`]), and the operator's
//! transactions, signed locally so that the outbox can store each one before it is broadcast.

use alloy::{
    consensus::TxEnvelope,
    eips::{BlockNumberOrTag, Encodable2718},
    network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{Filter, Log, TransactionReceipt, TransactionRequest},
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};

use crate::{
    Error, Result,
    domain::{
        agreement::ChainStatus,
        operator::{Fees, OperatorCall, SignedTx},
    },
    error::redact_url,
};

pub mod batch;
pub mod bindings;
pub mod decode;
pub mod ws;

pub use ConferenceEscrow::ConferenceEscrowEvents as EscrowEvent;
pub use bindings::{
    annex::EscrowAnnex,
    book::OfferBook,
    escrow::{ConferenceEscrow, IConferenceEscrow},
    registry::ProviderRegistry,
    stablecoin::MockStablecoin,
};

/// A currency agreements can be paid in: ETH (id 0) or one of the escrow's ERC-20 tokens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// The escrow's token id: 0 for ETH, then 1, 2, … in the order the admin added them.
    pub id: u8,
    /// What the token calls itself (`symbol()`).
    pub symbol: String,
    /// The token's `decimals()`: amounts are in units of 10^-decimals.
    pub decimals: u8,
    /// The token's contract; null for ETH.
    pub address: Option<String>,
}

/// The escrow call that carries out `call`.
pub fn calldata(call: &OperatorCall) -> Bytes {
    use ConferenceEscrow as E;
    use alloy::primitives::aliases::U40;
    match call.clone() {
        OperatorCall::Activate { agreement, region, .. } => {
            E::activateCall { agreementId: U256::from(agreement), region }.abi_encode()
        }
        OperatorCall::Decline { agreement, .. } => E::declineCall { agreementId: U256::from(agreement) }.abi_encode(),
        OperatorCall::End { agreement, .. } => E::endCall { agreementId: U256::from(agreement) }.abi_encode(),
        OperatorCall::Settle { agreement, availability_bps, evidence, report, .. } => {
            E::settleCall { agreementId: U256::from(agreement), availabilityBps: availability_bps, evidence, report }
                .abi_encode()
        }
        OperatorCall::StopAndSettle { agreement, availability_bps, evidence, report, stop, .. } => {
            E::stopAndSettleCall {
                agreementId: U256::from(agreement),
                availabilityBps: availability_bps,
                evidence,
                report,
                stoppedAt: U40::saturating_from(stop.stopped_at),
                deadline: U40::saturating_from(stop.deadline),
                signature: stop.signature,
            }
            .abi_encode()
        }
    }
    .into()
}

/// Gas on top of a third more than a run used, for a state that moved a little before the transaction
/// is mined (a slot cold again, a member's longer path).
const GAS_HEADROOM: u64 = 100_000;

/// The gas limit of a transaction whose one run on the latest state used `used` gas (what a receipt
/// reports: refunds taken off). A third more covers what a limit must hold beyond `used`: the refunds,
/// paid back only at the end (at most a fifth of the gross since EIP-3529, so the gross is at most
/// `used` × 5/4), and the 64th of the remaining gas that every call keeps back from its callee
/// (EIP-150): a batch's delegatecall, the call it makes (an ERC-1271 check, a payment) and one more
/// level need (64/63)³ ≈ 1.05 of it, so 5/4 × 1.05 ≈ 1.31 in all. A limit short of that would revert
/// the batch as a whole (`Escrow_BatchCallWithoutReason`), skipping no call; gas not used is not paid.
/// A transaction whose limit a block cannot hold is not signed ([`WouldNotRun`]).
pub fn gas_limit_for(used: u64) -> u64 {
    used.saturating_add(used / 3).saturating_add(GAS_HEADROOM)
}

/// Why a transaction was not signed: on the latest state it would not run as a whole. It reverts (a
/// batch does when one of its calls reverts without naming an error: `Escrow_BatchCallWithoutReason`),
/// runs out of the gas the node lets a call have, or needs more gas, with its margin
/// ([`gas_limit_for`]), than a block holds. A smaller batch may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WouldNotRun(pub String);

/// Whether the node's error answer to a run of a transaction says it would not run (it reverts, or
/// runs out of gas), rather than that the node could not run it.
fn says_would_not_run(error: &alloy::transports::RpcError<alloy::transports::TransportErrorKind>) -> bool {
    error.as_error_resp().is_some_and(|answer| {
        let message = answer.message.to_lowercase();
        message.contains("revert") || message.replace(' ', "").contains("outofgas")
    })
}

/// How long the WebSocket beside an HTTP node may take to open before the watcher polls instead.
const HEADS_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Where a [`Chain`] follows new heads from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Heads {
    Connection,
    Beside(String),
    Polled,
}

/// The WebSocket URL of the node an HTTP(S) URL names: the same host, port and path (`ws://` for
/// `http://`, `wss://` for `https://`), as anvil, geth, reth and most providers serve both on one
/// endpoint. None for another scheme.
pub fn websocket_of(rpc_url: &str) -> Option<String> {
    match rpc_url.split_once("://") {
        Some(("http", rest)) => Some(format!("ws://{rest}")),
        Some(("https", rest)) => Some(format!("wss://{rest}")),
        _ => None,
    }
}

/// A block as the watcher checks it against what it stored.
#[derive(Debug, Clone, Default)]
pub struct BlockRef {
    pub number: u64,
    pub hash: B256,
    pub parent_hash: B256,
}

/// A connection to the chain and the escrow contract, with the operator's key.
#[derive(Clone)]
pub struct Chain {
    pub provider: DynProvider,
    /// Whether the connection is a WebSocket (subscriptions work) rather than HTTP.
    pubsub: bool,
    /// Where new heads are followed from: over the connection itself (WebSocket), over a WebSocket to
    /// the same node beside an HTTP connection, or nowhere (the watcher polls).
    heads: Heads,
    pub escrow: Address,
    pub chain_id: u64,
    operator: EthereumWallet,
    pub operator_address: Address,
}

impl Chain {
    /// Connects to the node at `rpc_url` and checks that `escrow` holds code; `signer` is the operator's key
    /// (see [`crate::config::OperatorKeyArgs::signer`]).
    pub async fn connect(rpc_url: &str, escrow: Address, signer: PrivateKeySigner) -> Result<Self> {
        // By the URL: WebSocket (new heads are pushed) or HTTP (the watcher polls).
        let pubsub = rpc_url.starts_with("ws://") || rpc_url.starts_with("wss://");
        let provider = if pubsub {
            let ws = ws::QuickAckWs { url: rpc_url.to_owned() };
            ProviderBuilder::new()
                .disable_recommended_fillers()
                .connect_pubsub_with(ws)
                .await
                .map_err(Error::chain)?
                .erased()
        } else {
            let url = rpc_url.parse().map_err(|e| Error::Config(format!("RPC URL {}: {e}", redact_url(rpc_url))))?;
            ProviderBuilder::new().disable_recommended_fillers().connect_http(url).erased()
        };
        let chain_id = provider.get_chain_id().await.map_err(Error::chain)?;
        let code = provider.get_code_at(escrow).await.map_err(Error::chain)?;
        if code.is_empty() {
            return Err(Error::Config(format!("no contract at escrow address {escrow} on chain {chain_id}")));
        }
        let heads = if pubsub { Heads::Connection } else { websocket_of(rpc_url).map_or(Heads::Polled, Heads::Beside) };
        Ok(Self {
            provider,
            pubsub,
            heads,
            escrow,
            chain_id,
            operator_address: signer.address(),
            operator: signer.into(),
        })
    }

    /// Polls an HTTP node without looking for its WebSocket endpoint (the watcher reads every poll
    /// interval, and only then).
    pub fn polled(mut self) -> Self {
        if !self.pubsub {
            self.heads = Heads::Polled;
        }
        self
    }

    /// Whether the connection can subscribe (WebSocket).
    pub fn is_pubsub(&self) -> bool {
        self.pubsub
    }

    /// Whether new heads are followed (over the connection, or a WebSocket beside an HTTP one).
    pub fn follows_new_heads(&self) -> bool {
        !matches!(self.heads, Heads::Polled)
    }

    /// The WebSocket new heads come over beside an HTTP connection, its credentials redacted (it is for
    /// logs): a node may not offer one, and polling is then all there is. None over a WebSocket
    /// connection, or when polling only.
    pub fn new_heads_beside(&self) -> Option<String> {
        match &self.heads {
            Heads::Beside(url) => Some(redact_url(url)),
            _ => None,
        }
    }

    /// The numbers of new heads as the node announces them. Beside an HTTP connection, the WebSocket is
    /// opened for this subscription alone (requests stay on HTTP, which needs no reconnecting after an
    /// outage) and closes with the stream.
    pub async fn new_heads(&self) -> Result<futures::stream::BoxStream<'static, u64>> {
        use futures::StreamExt;
        let provider = match &self.heads {
            Heads::Connection => self.provider.clone(),
            Heads::Beside(url) => {
                let ws = ws::QuickAckWs { url: url.clone() };
                let connect = ProviderBuilder::new().disable_recommended_fillers().connect_pubsub_with(ws);
                tokio::time::timeout(HEADS_CONNECT_TIMEOUT, connect)
                    .await
                    .map_err(|_| Error::Config(format!("{}: no answer", redact_url(url))))?
                    .map_err(Error::chain)?
                    .erased()
            }
            Heads::Polled => return Ok(futures::stream::empty().boxed()),
        };
        let subscription = provider.subscribe_blocks().await.map_err(Error::chain)?;
        // The stream keeps its provider (and so its WebSocket) for as long as it is followed.
        Ok(subscription
            .into_stream()
            .map(move |header| {
                let _open = &provider;
                header.number
            })
            .boxed())
    }

    /// The canonical block at `number`, if the chain has one there.
    pub async fn block(&self, number: u64) -> Result<Option<BlockRef>> {
        let block = self.provider.get_block_by_number(BlockNumberOrTag::Number(number)).await.map_err(Error::chain)?;
        Ok(block.map(|b| BlockRef { number, hash: b.header.hash, parent_hash: b.header.parent_hash }))
    }

    /// The hash of the canonical block at `number`, if any.
    pub async fn block_hash(&self, number: u64) -> Result<Option<B256>> {
        Ok(self.block(number).await?.map(|b| b.hash))
    }

    pub fn contract(&self) -> ConferenceEscrow::ConferenceEscrowInstance<DynProvider> {
        ConferenceEscrow::new(self.escrow, self.provider.clone())
    }

    /// The contracts the escrow was deployed with: its OfferBook, its ProviderRegistry and its annex (the
    /// code it runs for accounts, payouts, terms publishing and admin).
    pub async fn deployed_with(&self) -> Result<DeployedWith> {
        let contract = self.contract();
        Ok(DeployedWith {
            book: contract.BOOK().call().await.map_err(Error::chain)?,
            registry: contract.REGISTRY().call().await.map_err(Error::chain)?,
            annex: contract.ANNEX().call().await.map_err(Error::chain)?,
        })
    }

    /// ETH and every ERC-20 token the escrow takes (`tokenOf(1)`, `tokenOf(2)`, … up to the first
    /// unset id), each with its symbol and decimals as the token reports them.
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let mut tokens = vec![TokenInfo { id: 0, symbol: "ETH".into(), decimals: 18, address: None }];
        for id in 1..=u8::MAX {
            let address = self.contract().tokenOf(id).call().await.map_err(Error::chain)?;
            if address == Address::ZERO {
                break;
            }
            let token = bindings::erc20::IERC20Metadata::new(address, self.provider.clone());
            let symbol = token.symbol().call().await.map_err(Error::chain)?;
            let decimals = token.decimals().call().await.map_err(Error::chain)?;
            tokens.push(TokenInfo { id, symbol, decimals, address: Some(address.to_string()) });
        }
        Ok(tokens)
    }

    /// The latest block's number and timestamp.
    pub async fn head(&self) -> Result<(u64, u64)> {
        let block = self.latest_block().await?;
        Ok((block.header.number, block.header.timestamp))
    }

    async fn latest_block(&self) -> Result<alloy::rpc::types::Block> {
        self.provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(Error::chain)?
            .ok_or_else(|| Error::Chain("the node has no latest block".into()))
    }

    /// The escrow's logs in `[from, to]`.
    pub async fn logs(&self, from: u64, to: u64) -> Result<Vec<Log>> {
        let filter = Filter::new().address(self.escrow).from_block(from).to_block(to);
        self.provider.get_logs(&filter).await.map_err(Error::chain)
    }

    /// The agreement as the contract holds it now, or at `block`.
    pub async fn agreement_at(&self, agreement: u64, block: Option<u64>) -> Result<IConferenceEscrow::Agreement> {
        let contract = self.contract();
        let call = contract.agreementOf(U256::from(agreement));
        let call = match block {
            Some(number) => call.block(number.into()),
            None => call,
        };
        call.call().await.map_err(Error::chain)
    }

    /// The agreement's on-chain status (None: the contract has no such agreement) and `startedAt` now.
    pub async fn status_of(&self, agreement: u64) -> Result<(Option<ChainStatus>, u64)> {
        let record = self.agreement_at(agreement, None).await?;
        Ok((ChainStatus::from_index(record.status), record.startedAt.to::<u64>()))
    }

    /// Whether the order nonce `nonce` of `customer` is used on-chain (opened, or cancelled by the customer).
    pub async fn order_nonce_used(&self, customer: Address, nonce: U256) -> Result<bool> {
        self.contract().orderNonceUsed(customer, nonce).call().await.map_err(Error::chain)
    }

    /// The customer's account in token `token_id`: free, locked, and its withdrawal request.
    pub async fn account_of(&self, customer: Address, token_id: u8) -> Result<IConferenceEscrow::Account> {
        self.contract().accountOf(customer, token_id).call().await.map_err(Error::chain)
    }

    /// The escrow's own digest of an order (`orderDigest`).
    pub async fn order_digest(&self, order: &crate::domain::order::Order) -> Result<B256> {
        use alloy::primitives::aliases::U40;
        let order = IConferenceEscrow::Order {
            termsId: order.terms_id,
            allowedRegions: order.allowed_regions,
            gdpr: order.gdpr,
            maxCost: order.max_cost,
            nonce: order.nonce,
            deadline: U40::saturating_from(order.deadline),
        };
        self.contract().orderDigest(order).call().await.map_err(Error::chain)
    }

    /// Whether `account` holds code (a smart-contract wallet, or an EOA that delegated its code).
    pub async fn has_code(&self, account: Address) -> Result<bool> {
        Ok(!self.provider.get_code_at(account).await.map_err(Error::chain)?.is_empty())
    }

    /// Whether the contract `account` says `signature` over `digest` is its own (ERC-1271); false when it
    /// does not answer with the magic value, or does not implement it.
    pub async fn erc1271_valid(&self, account: Address, digest: B256, signature: Bytes) -> Result<bool> {
        let wallet = bindings::erc1271::IERC1271::new(account, self.provider.clone());
        Ok(wallet
            .isValidSignature(digest, signature)
            .call()
            .await
            .is_ok_and(|magic| magic.0 == [0x16, 0x26, 0xba, 0x7e]))
    }

    /// Whether the escrow has paused signing (and opening orders).
    pub async fn paused(&self) -> Result<bool> {
        self.contract().paused().call().await.map_err(Error::chain)
    }

    /// The terms version as the contract holds it now.
    pub async fn terms_now(&self, terms: u32) -> Result<IConferenceEscrow::Terms> {
        self.contract().termsOf(terms).call().await.map_err(Error::chain)
    }

    /// The constraint surcharge (basis points) the escrow adds for these constraints on the terms; fails
    /// with the escrow's reason when they are not allowed or the terms are not open.
    pub async fn surcharge_bps(&self, terms: u32, allowed_regions: u32, gdpr: bool) -> Result<u32> {
        let quote =
            self.contract().quote(terms, allowed_regions, gdpr, U256::ZERO).call().await.map_err(Error::chain)?;
        Ok(quote.surchargeBps.to::<u32>())
    }

    pub async fn activation_window(&self) -> Result<u64> {
        let window = self.contract().ACTIVATION_WINDOW().call().await.map_err(Error::chain)?;
        Ok(window.to::<u64>())
    }

    /// The fees a transaction should offer now (the node's EIP-1559 estimate).
    pub async fn current_fees(&self) -> Result<Fees> {
        let fees = self.provider.estimate_eip1559_fees().await.map_err(Error::chain)?;
        Ok(Fees { max_fee: fees.max_fee_per_gas, priority_fee: fees.max_priority_fee_per_gas })
    }

    /// The operator's transactions the node counts: mined only (`pending` false) or with its mempool.
    pub async fn operator_nonce(&self, pending: bool) -> Result<u64> {
        let count = self.provider.get_transaction_count(self.operator_address);
        if pending { count.pending().await } else { count.latest().await }.map_err(Error::chain)
    }

    /// Signs a transaction to the escrow with `input` (a call, or a `batch` of calls), `nonce` and
    /// `fees`, or says why it [`WouldNotRun`] on the latest state. Its gas limit is [`gas_limit_for`]
    /// what one run of it there uses: the node's `eth_createAccessList` reports that from one or two
    /// runs, where `eth_estimateGas` searches for the least limit that works with a dozen or more (about
    /// 450 ms for a batch of 200 calls on anvil, against 40 ms).
    pub async fn sign_input(&self, input: Bytes, nonce: u64, fees: Fees) -> Result<Result<SignedTx, WouldNotRun>> {
        let request = TransactionRequest::default()
            .with_from(self.operator_address)
            .with_to(self.escrow)
            .with_input(input)
            .with_chain_id(self.chain_id)
            .with_nonce(nonce);
        let (run, block) =
            tokio::try_join!(async { Ok(self.provider.create_access_list(&request).await) }, self.latest_block())?;
        let run = match run {
            Ok(run) => run,
            Err(err) if says_would_not_run(&err) => return Ok(Err(WouldNotRun(err.to_string()))),
            Err(err) => return Err(Error::chain(err)),
        };
        if let Some(error) = run.error {
            // Some nodes (geth) report a revert in the result rather than as an error.
            return Ok(Err(WouldNotRun(format!("execution reverted: {error}"))));
        }
        let used = u64::try_from(run.gas_used).map_err(Error::chain)?;
        let (limit, block_limit) = (gas_limit_for(used), block.header.gas_limit);
        if limit > block_limit {
            return Ok(Err(WouldNotRun(format!(
                "it needs a gas limit of {limit} (a run used {used}), more than a block's {block_limit}"
            ))));
        }
        self.sign_request(request.with_gas_limit(limit), fees).await.map(Ok)
    }

    /// Signs the transaction `raw` again with other fees: the same nonce, call and gas limit, so that
    /// it replaces `raw` in the mempool (only one of them can be mined).
    pub async fn resign(&self, raw: &[u8], fees: Fees) -> Result<SignedTx> {
        use alloy::consensus::Transaction;
        let old = Self::decode_tx(raw)?;
        let request = TransactionRequest::default()
            .with_from(self.operator_address)
            .with_to(old.to().unwrap_or(self.escrow))
            .with_input(old.input().clone())
            .with_chain_id(self.chain_id)
            .with_nonce(old.nonce())
            .with_gas_limit(old.gas_limit());
        self.sign_request(request, fees).await
    }

    /// The fees a signed transaction offers.
    pub fn fees_of(raw: &[u8]) -> Result<Fees> {
        use alloy::consensus::Transaction;
        let tx = Self::decode_tx(raw)?;
        Ok(Fees {
            max_fee: tx.max_fee_per_gas(),
            priority_fee: tx.max_priority_fee_per_gas().unwrap_or(tx.max_fee_per_gas()),
        })
    }

    fn decode_tx(raw: &[u8]) -> Result<TxEnvelope> {
        use alloy::eips::Decodable2718;
        TxEnvelope::decode_2718(&mut &raw[..]).map_err(Error::chain)
    }

    async fn sign_request(&self, request: TransactionRequest, fees: Fees) -> Result<SignedTx> {
        let nonce = request.nonce.unwrap_or_default();
        let request = request.with_max_fee_per_gas(fees.max_fee).with_max_priority_fee_per_gas(fees.priority_fee);
        let envelope: TxEnvelope = request.build(&self.operator).await.map_err(Error::chain)?;
        Ok(SignedTx { nonce, hash: *envelope.tx_hash(), raw: envelope.encoded_2718(), fees })
    }

    /// Broadcasts a signed transaction. Re-broadcasting one the node already has is not an error.
    pub async fn broadcast(&self, raw: &[u8]) -> Result<()> {
        match self.provider.send_raw_transaction(raw).await {
            Ok(_) => Ok(()),
            Err(err) => {
                let text = err.to_string().to_lowercase();
                if text.contains("already known") || text.contains("already imported") || text.contains("nonce too low")
                {
                    Ok(())
                } else {
                    Err(Error::chain(err))
                }
            }
        }
    }

    /// Whether the node has the transaction (in its mempool or mined).
    pub async fn transaction_known(&self, hash: B256) -> Result<bool> {
        let tx = self.provider.get_transaction_by_hash(hash).await.map_err(Error::chain)?;
        Ok(tx.is_some())
    }

    pub async fn receipt(&self, hash: B256) -> Result<Option<TransactionReceipt>> {
        self.provider.get_transaction_receipt(hash).await.map_err(Error::chain)
    }
}

/// The contracts an escrow names as its own ([`Chain::deployed_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployedWith {
    pub book: Address,
    pub registry: Address,
    pub annex: Address,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gas_limit_is_a_third_over_the_run() {
        assert_eq!(gas_limit_for(9_000_000), 12_100_000);
        assert_eq!(gas_limit_for(21_000), 128_000);
        // 5/4 for refunds × (64/63)³ for three levels of calls.
        assert!(gas_limit_for(9_000_000) as f64 >= 9_000_000.0 * 1.25 * (64.0f64 / 63.0).powi(3));
        assert_eq!(gas_limit_for(u64::MAX), u64::MAX);
    }

    #[test]
    fn a_revert_or_running_out_of_gas_is_a_transaction_that_would_not_run() {
        let answer = |code: i64, message: &str| {
            alloy::transports::RpcError::ErrorResp(alloy::rpc::json_rpc::ErrorPayload {
                code,
                message: message.to_owned().into(),
                data: None,
            })
        };
        // anvil's answers, and geth's to eth_call.
        assert!(says_would_not_run(&answer(3, "execution reverted: custom error 0x12345678")));
        assert!(says_would_not_run(&answer(-32603, "EVM error OutOfGas")));
        assert!(says_would_not_run(&answer(-32000, "out of gas")));
        // The node could not run it: not the transaction's fault.
        assert!(!says_would_not_run(&answer(-32000, "header not found")));
        assert!(!says_would_not_run(&answer(-32005, "rate limit exceeded")));
        assert!(!says_would_not_run(&alloy::transports::TransportErrorKind::backend_gone()));
    }
}
