//! The public facts the web app needs to talk to the chain and to explain it ([`PublicConfig`]), and
//! the page's Content-Security-Policy computed from them.

use std::collections::BTreeMap;

use alloy::{
    hex,
    primitives::Address,
    sol_types::{SolCall, SolEvent},
};
use serde::Serialize;

use crate::{
    chain::{
        ConferenceEscrow, DeployedWith, TokenInfo,
        bindings::{Optimizer, compiler_settings, escrow_abi},
    },
    config::OrchestratorKind,
};

/// What the web app needs to talk to the chain and to explain it: public facts only.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicConfig {
    pub chain_id: u64,
    /// A public JSON-RPC endpoint of the chain (`PUBLIC_RPC_URL`), for reading the chain without a
    /// wallet; null when the operator published none (the page then reads through the wallet). Never the
    /// backend's own node URL.
    pub rpc_url: Option<String>,
    pub escrow: String,
    /// The OfferBook the escrow takes its terms from.
    pub book: String,
    /// The ProviderRegistry the escrow pays providers through.
    pub registry: String,
    /// The block the escrow was deployed in: the first block to read its events from.
    pub deploy_block: u64,
    /// Where conferences run: `local` (a Janus SFU per conference on the service's machine, reached on
    /// 127.0.0.1) or `kubernetes` (Jitsi Meet pods).
    pub orchestrator: OrchestratorKind,
    /// The service's public origin (what Sign-In with Ethereum messages name).
    pub public_url: String,
    /// The currencies agreements can be paid in: ETH (id 0) and the escrow's ERC-20 tokens.
    pub tokens: Vec<TokenInfo>,
    /// The names of the contracts' region bits: `regions[i]` is bit i of a region mask.
    pub regions: Vec<&'static str>,
    /// The contracts, with the compiler settings to verify their deployed code against the sources.
    pub contracts: Vec<ContractInfo>,
    /// A block explorer's base URL for links to transactions and addresses; null without one.
    pub explorer: Option<String>,
    pub calls: BTreeMap<&'static str, String>,
    pub events: BTreeMap<&'static str, String>,
    /// Custom error selectors to names, so the page can explain a revert in words.
    pub errors: BTreeMap<String, String>,
    /// The operator's probe interval in milliseconds: the length of an availability slot, and the
    /// interval its evidence commitments name (a monitor's reports name their own).
    pub probe_interval_ms: u64,
}

/// The names of the contracts' region bits, from bit 0 (as the dev chain's providers use them).
pub const REGION_NAMES: [&str; 3] = ["EU", "US", "Asia"];

/// A contract of the service and how it was compiled.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContractInfo {
    /// ConferenceEscrow, OfferBook or ProviderRegistry.
    pub name: &'static str,
    pub address: String,
    /// solc's version, e.g. `0.8.37+commit.f401782d`.
    pub compiler: String,
    pub optimizer: Optimizer,
    pub evm_version: String,
    /// Where the verified sources can be read; null when unknown.
    pub source_url: Option<String>,
}

impl PublicConfig {
    /// The facts of a chain and escrow alone: the OfferBook and ProviderRegistry unknown (the zero
    /// address) until [`PublicConfig::with_deployment`] names them, ETH the only currency, the local
    /// orchestrator, no explorer.
    pub fn new(chain_id: u64, rpc_url: Option<String>, escrow: String) -> Self {
        let selector = |s: [u8; 4]| hex::encode_prefixed(s);
        let unknown = Address::ZERO.to_string();
        Self {
            chain_id,
            rpc_url,
            contracts: contracts(&escrow, &unknown, &unknown, &unknown),
            escrow,
            book: unknown.clone(),
            registry: unknown,
            deploy_block: 0,
            orchestrator: OrchestratorKind::Local,
            public_url: String::new(),
            tokens: vec![TokenInfo { id: 0, symbol: "ETH".into(), decimals: 18, address: None }],
            regions: REGION_NAMES.to_vec(),
            explorer: None,
            probe_interval_ms: 2_000,
            calls: BTreeMap::from([
                ("sign", selector(ConferenceEscrow::signCall::SELECTOR)),
                ("stop", selector(ConferenceEscrow::stopCall::SELECTOR)),
            ]),
            events: BTreeMap::from([(
                "AgreementSigned",
                ConferenceEscrow::AgreementSigned::SIGNATURE_HASH.to_string(),
            )]),
            errors: escrow_abi()
                .errors()
                .map(|error| (hex::encode_prefixed(error.selector()), error.name.clone()))
                .collect(),
        }
    }

    /// With the contracts the escrow was deployed with, its deployment block and its currencies, as the
    /// service reads them from the chain at start.
    pub fn with_deployment(self, deployed: DeployedWith, deploy_block: u64, tokens: Vec<TokenInfo>) -> Self {
        let (book, registry, annex) =
            (deployed.book.to_string(), deployed.registry.to_string(), deployed.annex.to_string());
        Self {
            contracts: contracts(&self.escrow, &annex, &book, &registry),
            book,
            registry,
            deploy_block,
            tokens,
            ..self
        }
    }

    /// The page's Content-Security-Policy: its own origin's files only; it talks to its origin, to the
    /// chain's RPC endpoint (the web app reads the chain itself) and, with the local orchestrator, to the
    /// conferences' Janus servers on 127.0.0.1 (their WebSocket API).
    pub fn content_security_policy(&self) -> String {
        let mut connect = vec!["'self'".to_owned()];
        if let Some(Ok(rpc)) = self.rpc_url.as_deref().map(reqwest::Url::parse) {
            // An origin: scheme, host and port only.
            let origin = rpc.origin();
            if origin.is_tuple() {
                connect.push(origin.ascii_serialization());
            }
        }
        if self.orchestrator == OrchestratorKind::Local {
            connect.extend(["ws://127.0.0.1:*".to_owned(), "http://127.0.0.1:*".to_owned()]);
        }
        format!(
            "default-src 'self'; connect-src {}; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
             media-src 'self' blob: mediastream:; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; \
             form-action 'none'",
            connect.join(" ")
        )
    }
}

/// The contracts at their addresses (the escrow's annex is code it runs, at its own address), with their
/// artifacts' compiler settings.
fn contracts(escrow: &str, annex: &str, book: &str, registry: &str) -> Vec<ContractInfo> {
    compiler_settings()
        .into_iter()
        .zip([escrow, annex, book, registry])
        .map(|((name, settings), address)| ContractInfo {
            name,
            address: address.to_owned(),
            compiler: settings.version,
            optimizer: settings.optimizer,
            evm_version: settings.evm_version,
            source_url: None,
        })
        .collect()
}

/// The strictest policy, nothing but the page's own origin: what the API answers with should its
/// computed policy not make a valid header.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; \
     connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'";
