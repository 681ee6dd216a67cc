//! A fresh local chain for development, demos and tests: anvil from the pinned npm package, the
//! contracts deployed from their committed artifacts, two providers registered, one open offer per
//! pricing model in ETH, and a mock stablecoin (token 1, 6 decimals, 10,000 units minted to the
//! customer) with a dynamic-price offer in it.
//!
//! Accounts (anvil's well-known dev keys, worthless outside a local chain): 0 admin (owns the offers
//! and their margin), 1 customer, 2 infrastructure provider (paid at 3), 4 conference-software
//! provider (paid at 5), 9 operator hot key.

use std::path::Path;

use alloy::{
    hex,
    network::Ethereum,
    node_bindings::{Anvil, AnvilInstance},
    primitives::{
        Address, U256,
        aliases::{U40, U88},
    },
    providers::{DynProvider, PendingTransactionBuilder, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};

use crate::{
    Error, Result,
    chain::{ConferenceEscrow, EscrowAnnex, MockStablecoin, OfferBook, ProviderRegistry, bindings::book::IOfferBook},
    domain::agreement::Model,
};

/// Ten minutes for the operator to start a requested conference; a day to settle an ended one; three
/// days for the providers' votes.
pub const ACTIVATION_WINDOW: u64 = 600;
pub const SETTLEMENT_WINDOW: u64 = 86_400;
pub const VOTING_PERIOD: u64 = 3 * 86_400;

/// Region bits: 0 EU, 1 US, 2 Asia. The infrastructure provider serves EU and US, the software
/// provider everywhere, so the offers serve EU and US.
pub const INFRA_REGIONS: u32 = 0b011;
pub const SOFTWARE_REGIONS: u32 = 0b111;
pub const GDPR_SURCHARGE_BPS: u16 = 2_000;
pub const REGION_SURCHARGE_BPS: u16 = 1_000;

/// One demo offer: its model, its currency and its price split as (infrastructure, software, margin).
pub struct DemoOffer {
    pub model: Model,
    /// 0 for ETH, [`STABLECOIN_TOKEN_ID`] for the mock stablecoin.
    pub token_id: u8,
    pub components: (u128, u128, u128),
    pub max_duration: u64,
    pub minimum_charge: u128,
}

impl DemoOffer {
    pub fn price(&self) -> u128 {
        self.components.0 + self.components.1 + self.components.2
    }
}

/// The escrow's token id of the dev chain's stablecoin (the first token added), its decimals, and what
/// the customer is minted of it at start: 10,000 units.
pub const STABLECOIN_TOKEN_ID: u8 = 1;
pub const STABLECOIN_DECIMALS: u8 = 6;
pub const STABLECOIN_MINTED: u128 = 10_000 * 10u128.pow(STABLECOIN_DECIMALS as u32);

/// The offers published at start, in order: terms version i + 1 is `OFFERS[i]`. New offers go at the
/// end: tests and scripts rely on terms 1-4.
pub const OFFERS: [DemoOffer; 5] = [
    // 1e12 wei (1e-6 ETH) per second, for at most an hour: 0.0036 ETH locked.
    DemoOffer {
        token_id: 0,
        model: Model::DynamicPrice,
        components: (6e11 as u128, 3e11 as u128, 1e11 as u128),
        max_duration: 3600,
        minimum_charge: 0,
    },
    // 0.001 ETH for a conference of up to an hour.
    DemoOffer {
        token_id: 0,
        model: Model::FixedPrice,
        components: (6e14 as u128, 3e14 as u128, 1e14 as u128),
        max_duration: 3600,
        minimum_charge: 0,
    },
    // 6e13 wei per minute, up to ten hours' worth.
    DemoOffer {
        token_id: 0,
        model: Model::TimeLimited,
        components: (36e12 as u128, 18e12 as u128, 6e12 as u128),
        max_duration: 36_000,
        minimum_charge: 0,
    },
    // 1e12 wei per second of use in a window of up to a day, plus 0.001 ETH for readiness.
    DemoOffer {
        token_id: 0,
        model: Model::FlexiblePeriod,
        components: (6e11 as u128, 3e11 as u128, 1e11 as u128),
        max_duration: 86_400,
        minimum_charge: 1e15 as u128,
    },
    // 1,000 units of the stablecoin (0.001 USD) per second, for at most an hour: 3.6 USD locked.
    DemoOffer {
        token_id: STABLECOIN_TOKEN_ID,
        model: Model::DynamicPrice,
        components: (600, 300, 100),
        max_duration: 3600,
        minimum_charge: 0,
    },
];

/// The dynamic-price demo offer's terms id and deposit (the offer the web page shows first).
pub const DYNAMIC_TERMS: u32 = 1;

pub struct Devnet {
    pub anvil: AnvilInstance,
    pub escrow: Address,
    pub book: Address,
    pub registry: Address,
    /// The mock stablecoin, the escrow's token [`STABLECOIN_TOKEN_ID`].
    pub token: Address,
    pub deploy_block: u64,
    pub owner: PrivateKeySigner,
    pub customer: PrivateKeySigner,
    pub infra: PrivateKeySigner,
    pub infra_payout: Address,
    pub software: PrivateKeySigner,
    pub software_payout: Address,
    pub operator: PrivateKeySigner,
    /// The providers' ids in the registry: (infrastructure, software).
    pub provider_ids: (u32, u32),
}

/// The blocks whose state anvil keeps (in memory), for reads at a past block such as the watcher's
/// read of an agreement's record at its signing block. Anvil's default keeps a few hundred in memory
/// and then writes every older block's whole state to disk as JSON: under load (thousands of
/// agreements, a block per transaction) that filled 26 GB in minutes and took most of its CPU.
pub const HISTORY_STATES: usize = 600;

impl Devnet {
    /// Starts anvil on `port` (0 for any free port), deploys the contracts and opens the demo offers.
    pub async fn start(anvil_bin: &Path, port: u16) -> Result<Self> {
        let anvil = Anvil::at(anvil_bin)
            .port(port)
            .args(["--prune-history".to_string(), HISTORY_STATES.to_string()])
            .try_spawn()
            .map_err(|e| Error::Config(format!("starting {} failed: {e}", anvil_bin.display())))?;
        let key = |i: usize| PrivateKeySigner::from(anvil.keys()[i].clone());
        let (owner, customer, infra, software, operator) = (key(0), key(1), key(2), key(4), key(9));
        let (infra_payout, software_payout) = (anvil.addresses()[3], anvil.addresses()[5]);
        let rpc_url = format!("http://127.0.0.1:{}", anvil.port());
        let as_owner = wallet_provider(&rpc_url, &owner)?;

        let registry = ProviderRegistry::deploy(as_owner.clone()).await.map_err(Error::chain)?;
        let annex = EscrowAnnex::deploy(as_owner.clone()).await.map_err(Error::chain)?;
        let escrow = ConferenceEscrow::deploy(
            as_owner.clone(),
            owner.address(),
            operator.address(),
            *registry.address(),
            U40::from(ACTIVATION_WINDOW),
            U40::from(SETTLEMENT_WINDOW),
            U40::from(VOTING_PERIOD),
            *annex.address(),
        )
        .await
        .map_err(Error::chain)?;
        let deploy_block = as_owner.get_block_number().await.map_err(Error::chain)?;
        let book_address = escrow.BOOK().call().await.map_err(Error::chain)?;

        let token = MockStablecoin::deploy(as_owner.clone()).await.map_err(Error::chain)?;
        let token_id = escrow.addToken(*token.address()).call().await.map_err(Error::chain)?;
        if token_id != STABLECOIN_TOKEN_ID {
            return Err(Error::Chain(
                format!("the stablecoin would be token {token_id}, not {STABLECOIN_TOKEN_ID}").into(),
            ));
        }
        confirm(escrow.addToken(*token.address()).send().await).await?;
        confirm(token.mint(customer.address(), U256::from(STABLECOIN_MINTED)).send().await).await?;

        let mut provider_ids = Vec::new();
        for (signer, payout, role, regions) in
            [(&infra, infra_payout, 0u8, INFRA_REGIONS), (&software, software_payout, 1u8, SOFTWARE_REGIONS)]
        {
            let registry = ProviderRegistry::new(*registry.address(), wallet_provider(&rpc_url, signer)?);
            let id = registry.register(role, payout, regions, true).call().await.map_err(Error::chain)?;
            confirm(registry.register(role, payout, regions, true).send().await).await?;
            provider_ids.push(id);
        }

        let book = OfferBook::new(book_address, as_owner.clone());
        let as_infra = OfferBook::new(book_address, wallet_provider(&rpc_url, &infra)?);
        let as_software = OfferBook::new(book_address, wallet_provider(&rpc_url, &software)?);
        for offer in &OFFERS {
            let params = offer_params(offer);
            let offer_id = book.createOffer(params.clone(), provider_ids.clone()).call().await.map_err(Error::chain)?;
            confirm(book.createOffer(params, provider_ids.clone()).send().await).await?;
            confirm(as_infra.setComponent(offer_id, U88::from(offer.components.0)).send().await).await?;
            confirm(as_software.setComponent(offer_id, U88::from(offer.components.1)).send().await).await?;
            confirm(book.openOffer(offer_id).send().await).await?;
        }
        Ok(Self {
            escrow: *escrow.address(),
            book: book_address,
            registry: *registry.address(),
            token: *token.address(),
            deploy_block,
            anvil,
            owner,
            customer,
            infra,
            infra_payout,
            software,
            software_payout,
            operator,
            provider_ids: (provider_ids[0], provider_ids[1]),
        })
    }

    /// The key of anvil's dev account 6, which no set-up uses: the independent monitor's, when a test
    /// registers one ([`Self::open_monitored_offer`]).
    pub fn monitor(&self) -> PrivateKeySigner {
        PrivateKeySigner::from(self.anvil.keys()[6].clone())
    }

    /// Registers [`Self::monitor`] as a provider with the Monitoring role (paid at dev account 7) and opens
    /// a DynamicPrice offer like the demo one with the monitor as a third provider, earning
    /// `monitor_component` wei a second: its conferences settle only with the monitor's signed report.
    /// Returns the new terms version's id.
    pub async fn open_monitored_offer(&self, monitor_component: u128) -> Result<u32> {
        let rpc_url = self.rpc_url();
        let monitor = self.monitor();
        let registry = ProviderRegistry::new(self.registry, wallet_provider(&rpc_url, &monitor)?);
        let monitor_id = registry
            .register(2, self.anvil.addresses()[7], SOFTWARE_REGIONS, true)
            .call()
            .await
            .map_err(Error::chain)?;
        confirm(registry.register(2, self.anvil.addresses()[7], SOFTWARE_REGIONS, true).send().await).await?;
        let offer = &OFFERS[DYNAMIC_TERMS as usize - 1];
        let book = OfferBook::new(self.book, wallet_provider(&rpc_url, &self.owner)?);
        let params = offer_params(offer);
        let providers = vec![self.provider_ids.0, self.provider_ids.1, monitor_id];
        let offer_id = book.createOffer(params.clone(), providers.clone()).call().await.map_err(Error::chain)?;
        confirm(book.createOffer(params, providers).send().await).await?;
        for (signer, component) in
            [(&self.infra, offer.components.0), (&self.software, offer.components.1), (&monitor, monitor_component)]
        {
            let as_provider = OfferBook::new(self.book, wallet_provider(&rpc_url, signer)?);
            confirm(as_provider.setComponent(offer_id, U88::from(component)).send().await).await?;
        }
        let terms = book.openOffer(offer_id).call().await.map_err(Error::chain)?;
        confirm(book.openOffer(offer_id).send().await).await?;
        Ok(terms)
    }

    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.anvil.port())
    }

    /// The same node's WebSocket endpoint (anvil serves both on one port): new heads are pushed.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.anvil.port())
    }

    pub fn operator_key(&self) -> String {
        hex::encode_prefixed(self.operator.to_bytes())
    }

    /// A provider that signs with `signer`'s key.
    pub fn provider_for(&self, signer: &PrivateKeySigner) -> Result<DynProvider> {
        wallet_provider(&self.rpc_url(), signer)
    }

    /// The deposit of the dynamic-price demo offer with no constraints.
    pub fn offer_deposit() -> U256 {
        let offer = &OFFERS[DYNAMIC_TERMS as usize - 1];
        U256::from(offer.price()) * U256::from(offer.max_duration)
    }
}

/// Waits for a set-up transaction's receipt and fails if it reverted.
async fn confirm(sent: std::result::Result<PendingTransactionBuilder<Ethereum>, alloy::contract::Error>) -> Result<()> {
    let receipt = sent.map_err(Error::chain)?.get_receipt().await.map_err(Error::chain)?;
    if !receipt.status() {
        return Err(Error::Chain(format!("set-up transaction {} reverted", receipt.transaction_hash).into()));
    }
    Ok(())
}

/// What the owner fixes when drafting `offer` (its margin is the third component).
fn offer_params(offer: &DemoOffer) -> IOfferBook::OfferParams {
    IOfferBook::OfferParams {
        model: offer.model as u8,
        tokenId: offer.token_id,
        maxDuration: U40::from(offer.max_duration),
        margin: U88::from(offer.components.2),
        minimumCharge: U88::from(offer.minimum_charge),
        gdprSurchargeBps: GDPR_SURCHARGE_BPS,
        regionSurchargeBps: REGION_SURCHARGE_BPS,
    }
}

fn wallet_provider(rpc_url: &str, signer: &PrivateKeySigner) -> Result<DynProvider> {
    let url = rpc_url.parse().map_err(|e| Error::Config(format!("RPC URL {rpc_url:?}: {e}")))?;
    Ok(ProviderBuilder::new().wallet(signer.clone()).connect_http(url).erased())
}
