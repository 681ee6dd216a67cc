//! A fresh local chain for development, demos and tests: anvil from the pinned npm package, the
//! escrow deployed from its committed artifact, and one dynamic-price offer published.
//!
//! Accounts (anvil's well-known dev keys, worthless outside a local chain): 0 owner, 1 customer,
//! 2 provider payout, 9 operator hot key.

use std::path::Path;

use alloy::{
    hex,
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};

use crate::{Error, Result, chain::DynamicPriceEscrow};

/// The demo offer: 1,000,000,000,000 wei (1e-6 ETH) per second, for at most an hour.
pub const OFFER_PRICE_PER_SECOND: u128 = 1_000_000_000_000;
pub const OFFER_MAX_DURATION: u64 = 3600;
/// Ten minutes for the operator to start a signed conference; a day to settle an ended one.
pub const ACTIVATION_WINDOW: u64 = 600;
pub const SETTLEMENT_WINDOW: u64 = 86_400;

pub struct Devnet {
    pub anvil: AnvilInstance,
    pub escrow: Address,
    pub deploy_block: u64,
    pub owner: PrivateKeySigner,
    pub customer: PrivateKeySigner,
    pub provider: PrivateKeySigner,
    pub operator: PrivateKeySigner,
}

impl Devnet {
    /// Starts anvil on `port` (0 for any free port), deploys the escrow and publishes offer 1.
    pub async fn start(anvil_bin: &Path, port: u16) -> Result<Self> {
        let anvil = Anvil::at(anvil_bin)
            .port(port)
            .try_spawn()
            .map_err(|e| Error::Config(format!("starting {} failed: {e}", anvil_bin.display())))?;
        let key = |i: usize| PrivateKeySigner::from(anvil.keys()[i].clone());
        let (owner, customer, provider, operator) = (key(0), key(1), key(2), key(9));

        let owner_rpc = wallet_provider(&format!("http://127.0.0.1:{}", anvil.port()), &owner)?;
        let escrow = DynamicPriceEscrow::deploy(
            owner_rpc.clone(),
            owner.address(),
            operator.address(),
            ACTIVATION_WINDOW,
            SETTLEMENT_WINDOW,
        )
        .await
        .map_err(Error::chain)?;
        let deploy_block = owner_rpc.get_block_number().await.map_err(Error::chain)?;
        escrow
            .publishOffer(provider.address(), OFFER_PRICE_PER_SECOND, OFFER_MAX_DURATION)
            .send()
            .await
            .map_err(Error::chain)?
            .get_receipt()
            .await
            .map_err(Error::chain)?;
        Ok(Self { escrow: *escrow.address(), deploy_block, anvil, owner, customer, provider, operator })
    }

    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.anvil.port())
    }

    pub fn operator_key(&self) -> String {
        hex::encode_prefixed(self.operator.to_bytes())
    }

    /// A provider that signs with `signer`'s key.
    pub fn provider_for(&self, signer: &PrivateKeySigner) -> Result<DynProvider> {
        wallet_provider(&self.rpc_url(), signer)
    }

    /// The deposit of the demo offer.
    pub fn offer_deposit() -> U256 {
        U256::from(OFFER_PRICE_PER_SECOND) * U256::from(OFFER_MAX_DURATION)
    }
}

fn wallet_provider(rpc_url: &str, signer: &PrivateKeySigner) -> Result<DynProvider> {
    let url = rpc_url.parse().map_err(|e| Error::Config(format!("RPC URL {rpc_url:?}: {e}")))?;
    Ok(ProviderBuilder::new().wallet(signer.clone()).connect_http(url).erased())
}
