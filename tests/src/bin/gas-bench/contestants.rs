//! The contestants: the same conference (600 s used, fully available, the demo offers' prices) paid
//! through this project's escrow in each of its four models, and through each reference peer. Each
//! contestant is one column of the tables: the gas of each operation, its lifecycle, its one-time
//! setup apart.

use std::collections::BTreeMap;

use alloy::{
    dyn_abi::{DynSolValue, JsonAbiExt},
    hex,
    primitives::{Address, B256, Bytes, U256, keccak256},
    signers::SignerSync,
};
use anyhow::{Context, Result, bail, ensure};

use crate::{
    Model,
    chain::{
        Account, Artifact, Chain, Deployed, Sent, With, args, encode_args, field_uint, first_uint, function,
        package_version,
    },
    floors::{Floor, Layout, must_do},
};

// --- the conference every contestant pays for ------------------------------------------------------

const PRICE_PER_SECOND: u128 = 1_000_000_000_000;
const MAX_DURATION: u64 = 3600;
pub const USED_SECONDS: u64 = 600;
const AVAILABILITY_BPS: u64 = 10_000;
/// The fixed-price demo offer's price of a conference (backend/src/dev/devnet.rs).
const FIXED_PRICE: u128 = 1_000_000_000_000_000;
/// The time-limited demo offer's price of a minute: the dynamic price's second × 60.
const PRICE_PER_MINUTE: u128 = 60 * PRICE_PER_SECOND;
/// Minutes a time-limited customer buys: the same hour the dynamic-price deposit covers.
const MINUTES_BOUGHT: u64 = MAX_DURATION / 60;
/// The flexible-period demo offer's minimum charge, on top of its price per second.
const MINIMUM_CHARGE: u128 = 1_000_000_000_000_000;
/// The monitor comparison's second provider's component: a tenth of the first's price per second.
const SECOND_COMPONENT: u128 = PRICE_PER_SECOND / 10;
/// `IProviderRegistry.Role`'s values: the one provider of each model's offer, and the second provider of
/// the monitor comparison's offers (a monitor, or a provider of another role in its place).
const INFRASTRUCTURE: u8 = 0;
const CONFERENCE_SOFTWARE: u8 = 1;
const MONITORING: u8 = 2;

// --- where the contestants' artifacts are (relative to the repository root) ------------------------

const PROJECT_OUT: &str = "contracts/out";
const BENCH_OUT: &str = "contracts/bench/out";
const SABLIER: &str = "contracts/bench/node_modules/@sablier/lockup";
const SABLIER_UTILS: &str = "contracts/bench/node_modules/@sablier/evm-utils";

/// One column of the tables: the gas of each operation (for this project, with the calldata sent and
/// the floor), and the one-time setup apart.
pub struct Contestant {
    pub key: &'static str,
    pub title: &'static str,
    pub contract: String,
    pub setup: Vec<(String, u64)>,
    pub ops: BTreeMap<&'static str, u64>,
    pub calldata: BTreeMap<&'static str, Bytes>,
    /// Each operation's signed transaction, for a rollup's data fee.
    pub raw: BTreeMap<&'static str, Bytes>,
    pub floors: BTreeMap<&'static str, Floor>,
    pub lifecycle_ops: Vec<&'static str>,
}

impl Contestant {
    fn new(key: &'static str, title: &'static str, contract: &str) -> Self {
        Self {
            key,
            title,
            contract: contract.to_owned(),
            setup: Vec::new(),
            ops: BTreeMap::new(),
            calldata: BTreeMap::new(),
            raw: BTreeMap::new(),
            floors: BTreeMap::new(),
            lifecycle_ops: Vec::new(),
        }
    }

    fn setup(&mut self, what: &str, gas: u64) {
        self.setup.push((what.to_owned(), gas));
    }

    fn op(&mut self, key: &'static str, gas: u64) {
        self.ops.insert(key, gas);
    }

    /// An operation sent through the ABI: its gas and the calldata its floor is computed from.
    fn op_sent(&mut self, key: &'static str, sent: &Sent) {
        self.ops.insert(key, sent.gas);
        self.calldata.insert(key, sent.calldata.clone());
        self.raw.insert(key, sent.raw.clone());
    }

    fn lifecycle(&mut self, ops: &[&'static str]) {
        self.lifecycle_ops = ops.to_vec();
    }

    pub fn get(&self, key: &str) -> Option<u64> {
        if key == "lifecycle" {
            return self.lifecycle_ops.iter().map(|k| self.ops.get(k)).sum();
        }
        self.ops.get(key).copied()
    }

    /// An operation's floor; the lifecycle's is the sum of its operations' (when each has one).
    pub fn floor(&self, key: &str) -> Option<u64> {
        if key == "lifecycle" {
            return self.lifecycle_ops.iter().map(|k| self.floors.get(k).map(|f| f.gas)).sum();
        }
        self.floors.get(key).map(|f| f.gas)
    }
}

// ===================================================================================================
// THIS PROJECT. The only part that knows the escrow's API: when the contract changes, edit here (and
// the floors' table, `must_do` in floors.rs).
// ===================================================================================================

/// The escrow's pricing models, in the order the benchmark runs them: the dynamic price first, so that
/// its first agreement is the first the escrow ever sees.
pub const MODELS: [Model; 4] = [Model::DynamicPrice, Model::FixedPrice, Model::TimeLimited, Model::FlexiblePeriod];

/// Each model's offer in this benchmark (the demo offers' prices) and the conference it pays for.
pub trait DemoOffer {
    /// The figures' ids name a model as the backend's API does.
    fn key(self) -> &'static str;
    fn title(self) -> &'static str;
    /// `IOfferBook.Model`'s value: the one the backend reads back from the chain as this model.
    fn index(self) -> Result<u8>;
    /// The one provider's component, which is the whole price: of a conference, a second or a minute.
    fn component(self) -> u128;
    fn minimum_charge(self) -> u128;
    /// `quote`'s quantity: minutes bought (time-limited), the window's seconds (flexible period).
    fn quantity(self) -> u64;
    /// The deposit the customer pays in, as this benchmark expects the contract to quote it.
    fn deposit(self) -> U256;
    /// What one conference of USED_SECONDS costs the customer, in wei.
    fn conference_price(self) -> u128;
    /// What one conference of `used` seconds costs the customer, in wei.
    fn charge(self, used: u64) -> u128;
    /// A conference from the customer's payment to the provider's money, in order.
    fn lifecycle(self) -> &'static [&'static str];
}

impl DemoOffer for Model {
    fn key(self) -> &'static str {
        self.as_str()
    }

    fn title(self) -> &'static str {
        match self {
            Model::FixedPrice => "fixed price",
            Model::DynamicPrice => "dynamic price",
            Model::TimeLimited => "time-limited",
            Model::FlexiblePeriod => "flexible period",
        }
    }

    fn index(self) -> Result<u8> {
        (0..=u8::MAX).find(|i| Model::from_index(*i) == Some(self)).with_context(|| format!("no index for {self:?}"))
    }

    fn component(self) -> u128 {
        match self {
            Model::FixedPrice => FIXED_PRICE,
            Model::DynamicPrice | Model::FlexiblePeriod => PRICE_PER_SECOND,
            Model::TimeLimited => PRICE_PER_MINUTE,
        }
    }

    fn minimum_charge(self) -> u128 {
        if self == Model::FlexiblePeriod { MINIMUM_CHARGE } else { 0 }
    }

    fn quantity(self) -> u64 {
        match self {
            Model::TimeLimited => MINUTES_BOUGHT,
            Model::FlexiblePeriod => MAX_DURATION,
            Model::FixedPrice | Model::DynamicPrice => 0,
        }
    }

    fn deposit(self) -> U256 {
        let seconds = U256::from(MAX_DURATION);
        match self {
            Model::FixedPrice => U256::from(FIXED_PRICE),
            Model::DynamicPrice => U256::from(PRICE_PER_SECOND) * seconds,
            Model::TimeLimited => U256::from(PRICE_PER_MINUTE) * U256::from(MINUTES_BOUGHT),
            Model::FlexiblePeriod => U256::from(MINIMUM_CHARGE) + U256::from(PRICE_PER_SECOND) * seconds,
        }
    }

    fn conference_price(self) -> u128 {
        self.charge(USED_SECONDS)
    }

    fn charge(self, used: u64) -> u128 {
        let used = u128::from(used);
        match self {
            Model::FixedPrice => FIXED_PRICE,
            Model::DynamicPrice => PRICE_PER_SECOND * used,
            Model::TimeLimited => PRICE_PER_MINUTE * used / 60,
            Model::FlexiblePeriod => MINIMUM_CHARGE + PRICE_PER_SECOND * used,
        }
    }

    /// The product's flow: the customer stops by signature and the operator submits the stop with the
    /// settlement (`stopAndSettle`); the customer's own `stop` and the operator's `settle` are measured
    /// too, outside the lifecycle.
    fn lifecycle(self) -> &'static [&'static str] {
        match self {
            Model::FixedPrice | Model::DynamicPrice => &["sign", "activate", "stopAndSettle", "withdraw"],
            Model::TimeLimited => &["buyMinutes", "start", "activate", "stopAndSettle", "close"],
            Model::FlexiblePeriod => &["reserve", "start", "activate", "stopAndSettle"],
        }
    }
}

/// The deployed escrow and the accounts that use it.
struct Escrow<'c> {
    chain: &'c Chain,
    registry: Deployed<'c>,
    escrow: Deployed<'c>,
    book: Deployed<'c>,
    provider_id: U256,
    admin: Account,
    customer: Account,
    provider: Account,
    operator: Account,
}

/// A dynamic-price settlement with a monitor's report beside one without, everything else alike: two
/// offers of the same two providers' kind at the same prices, the first provider the models' own, the
/// second a Monitoring provider (its terms name it their monitor: its signed report settles them) or, in
/// its place, a ConferenceSoftware provider (no monitor: the operator's figure, no report). The operator
/// submits both settlements. Each side's second conference is the one measured (its first warmed the
/// providers' earnings), with all of its operations.
pub struct MonitorComparison {
    pub without: Contestant,
    pub with: Contestant,
}

/// An open offer and what a conference of it needs: the deposit the contract must quote, and the
/// terms' monitor (whose key signs the report its settlement carries), if they name one.
struct Offer<'a> {
    model: Model,
    terms_id: U256,
    deposit: U256,
    monitor: Option<&'a Account>,
}

/// Deploys the escrow once, then runs each model on it: an offer, a first conference (for the dynamic
/// price, the first agreement the escrow ever sees), the measured one, and the provider's withdrawal.
/// The provider withdraws once per model, after three conferences, so a measured settlement adds to
/// earnings not withdrawn yet (the steady state of a provider who withdraws now and then). Then, on the
/// same escrow, the monitor comparison.
pub async fn this_project(chain: &Chain) -> Result<(Vec<Contestant>, MonitorComparison, Vec<AccountPath>)> {
    let mut setup = Vec::new();
    let (admin, customer, provider, payout, operator) =
        (chain.account(0), chain.account(1), chain.account(2), chain.account(3), chain.account(9));

    // One-time setup: the contracts and the provider.
    let registry_art = chain.artifact(PROJECT_OUT, "ProviderRegistry")?;
    let (registry, gas) = chain.deploy(&registry_art, &admin, &[], &[], U256::ZERO).await?;
    setup.push(("deploy ProviderRegistry".to_owned(), gas));
    let annex_art = chain.artifact(PROJECT_OUT, "EscrowAnnex")?;
    let (annex, gas) = chain.deploy(&annex_art, &admin, &[], &[], U256::ZERO).await?;
    setup.push(("deploy EscrowAnnex (the escrow's code beyond 24 KB)".to_owned(), gas));
    let escrow_art = chain.artifact(PROJECT_OUT, "ConferenceEscrow")?;
    let windows = [("activationWindow", "600"), ("settlementWindow", "86400"), ("votingPeriod", "259200")];
    let mut ctor = args(&[
        ("admin", admin.address),
        ("operator", operator.address),
        ("registry", registry.address),
        ("annex", annex.address),
    ]);
    ctor.extend(windows.iter().map(|(k, v)| (*k, v.to_string())));
    let (escrow, gas) = chain.deploy(&escrow_art, &admin, &ctor, &[], U256::ZERO).await?;
    setup.push(("deploy ConferenceEscrow (+ its OfferBook)".to_owned(), gas));
    // Offers live in the OfferBook the escrow deploys (or in the escrow itself, if it has them).
    let book = if escrow.has("createOffer") {
        escrow.clone_at(escrow.address)
    } else {
        let address = escrow
            .view("BOOK", &[])
            .await?
            .first()
            .and_then(DynSolValue::as_address)
            .context("BOOK() returned no address")?;
        chain.at(&chain.artifact(PROJECT_OUT, "OfferBook")?, address)
    };
    let mut project =
        Escrow { chain, registry, escrow, book, provider_id: U256::ZERO, admin, customer, provider, operator };
    let (provider_id, gas) = project.register(&project.provider, INFRASTRUCTURE, &payout).await?;
    setup.push(("register provider".to_owned(), gas));
    project.provider_id = provider_id;

    let mut contestants = Vec::new();
    let mut terms = Vec::new();
    for model in MODELS {
        let mut c = Contestant::new(
            model.key(),
            model.title(),
            &format!("ConferenceEscrow, a {} offer in ETH with one provider", model.title()),
        );
        c.setup = std::mem::take(&mut setup);
        let shares = [(&project.provider, project.provider_id, model.component())];
        let terms_id = project.open_offer(model, &shares, &mut c).await.with_context(|| format!("{model:?} offer"))?;
        let offer = Offer { model, terms_id, deposit: model.deposit(), monitor: None };
        for (measured, ending) in
            [(false, Ending::StopThenSettle), (true, Ending::StopThenSettle), (true, Ending::SignedStop)]
        {
            let ops = project
                .conference(&offer, ending)
                .await
                .with_context(|| format!("{model:?}, {}", if measured { "measured" } else { "first" }))?;
            for (op, sent) in &ops {
                if let Some(key) = recorded_as(model, measured, op) {
                    c.op_sent(key, sent);
                }
            }
        }
        project.withdraw(model, &mut c).await?;
        c.lifecycle(model.lifecycle());
        contestants.push(c);
        terms.push((model, terms_id));
    }
    let monitor = project.monitor_comparison().await.context("the monitor comparison")?;
    let mut accounts = Vec::new();
    let customer = chain.account(7);
    for (model, terms_id) in terms {
        for batch in BATCH_SIZES {
            let path = project.account_path(model, terms_id, batch, &customer).await;
            accounts.push(path.with_context(|| format!("{model:?}, account path, {batch} a batch"))?);
        }
    }
    Ok((contestants, monitor, accounts))
}

/// The batch sizes the account path is measured at.
pub const BATCH_SIZES: [usize; 3] = [1, 10, 50];

/// Conferences opened from a customer's account (issue 19), `batch` of them through each of the operator's
/// three batches: `batch(openOrder…)` (the customer's signed orders), `batch(activate…)` and, 600 s later,
/// `batch(stopAndSettle…)` (the customer's signed stops). The customer's only transaction is its deposit.
pub struct AccountPath {
    pub model: Model,
    pub batch: usize,
    /// The customer's deposit of the `batch` conferences' locks, in one transaction.
    pub deposit_gas: u64,
    /// The transactions the customer sent from its deposit to the last settlement (its nonce's rise).
    pub customer_txs: u64,
    /// The operator's three transactions, in order.
    pub ops: Vec<(&'static str, Sent)>,
}

impl AccountPath {
    /// The operator's gas per conference, from opening to settlement.
    pub fn operator_per_conference(&self) -> u64 {
        self.ops.iter().map(|(_, sent)| sent.gas).sum::<u64>() / self.batch as u64
    }

    /// The gas per conference of one of the operator's batches.
    pub fn per_conference(&self, op: &str) -> Option<u64> {
        self.ops.iter().find(|(name, _)| *name == op).map(|(_, sent)| sent.gas / self.batch as u64)
    }
}

/// What an operation of a model's conference is recorded as: every one of the measured conferences (the
/// one that ends by `stop` then `settle`, and the one that ends by `stopAndSettle`, whose opening and
/// activation cost the same); of the first, only the dynamic price's sign and settle (the first agreement
/// ever, a provider's first earnings).
fn recorded_as(model: Model, measured: bool, op: &'static str) -> Option<&'static str> {
    match (measured, model, op) {
        (true, _, _) => Some(op),
        (false, Model::DynamicPrice, "sign") => Some("sign_first"),
        (false, Model::DynamicPrice, "settle") => Some("settle_first"),
        _ => None,
    }
}

impl Escrow<'_> {
    /// Registers `account` as a provider of `role` (in region 1, paid to `payout`); returns its id and the gas.
    async fn register(&self, account: &Account, role: u8, payout: &Account) -> Result<(U256, u64)> {
        let register = [
            ("role", role.to_string()),
            ("payout", payout.address.to_string()),
            ("regions", "1".into()),
            ("gdpr", "false".into()),
        ];
        let sent = self.registry.send(account, "register", &register, U256::ZERO).await?;
        Ok((sent.id()?, sent.gas))
    }

    /// Drafts, prices and opens an offer of `model` with the given providers (each its account, its id and
    /// its component, which it sets itself); returns its terms id.
    async fn open_offer(&self, model: Model, shares: &[(&Account, U256, u128)], c: &mut Contestant) -> Result<U256> {
        let ids: Vec<String> = shares.iter().map(|(_, id, _)| id.to_string()).collect();
        let offer = [
            ("model", model.index()?.to_string()),
            ("tokenId", "0".into()),
            ("maxDuration", MAX_DURATION.to_string()),
            ("margin", "0".into()),
            ("minimumCharge", model.minimum_charge().to_string()),
            ("gdprSurchargeBps", "0".into()),
            ("regionSurchargeBps", "0".into()),
            ("providerIds", format!("[{}]", ids.join(","))),
        ];
        let sent = self.book.send(&self.admin, "createOffer", &offer, U256::ZERO).await?;
        c.setup("createOffer", sent.gas);
        let offer_id = sent.id()?;
        for (account, _, component) in shares {
            let component = [("offerId", offer_id.to_string()), ("component", component.to_string())];
            c.setup("setComponent", self.book.send(account, "setComponent", &component, U256::ZERO).await?.gas);
        }
        let sent = self.book.send(&self.admin, "openOffer", &[("offerId", offer_id.to_string())], U256::ZERO).await?;
        c.setup("openOffer", sent.gas);
        sent.id()
    }

    /// One conference of the offer, from the customer's payment to its settlement (and, time-limited, the
    /// account's closing): each operation sent, in order, by its name.
    async fn conference(&self, offer: &Offer<'_>, ending: Ending) -> Result<Vec<(&'static str, Sent)>> {
        let Offer { model, terms_id, .. } = *offer;
        let mut ops = Vec::new();
        let (escrow, customer, operator) = (&self.escrow, &self.customer, &self.operator);

        // The deposit, as the contract quotes it.
        let constraints = [("termsId", terms_id.to_string()), ("allowedRegions", "0".into()), ("gdpr", "false".into())];
        let mut quote = constraints.to_vec();
        quote.push(("quantity", model.quantity().to_string()));
        let deposit = first_uint(&escrow.view("quote", &quote).await?).context("quote's deposit")?;
        ensure!(deposit == offer.deposit, "{model:?}: quoted deposit {deposit}, expected {}", offer.deposit);

        let mut open = constraints.to_vec();
        let (open_fn, needs_start) = match model {
            Model::FixedPrice | Model::DynamicPrice => ("sign", false),
            Model::TimeLimited => {
                open.push(("minuteCount", MINUTES_BOUGHT.to_string()));
                ("buyMinutes", true)
            }
            Model::FlexiblePeriod => {
                // A window of an hour from the latest block: open at once, so the customer starts now.
                let from = self.chain.latest_timestamp().await?;
                open.push(("from", from.to_string()));
                open.push(("to", (from + MAX_DURATION).to_string()));
                ("reserve", true)
            }
        };
        let sent = escrow.send(customer, open_fn, &open, deposit).await?;
        let id = sent.id()?.to_string();
        ops.push((open_fn, sent));
        if needs_start {
            ops.push(("start", escrow.send(customer, "start", &[("agreementId", id.clone())], U256::ZERO).await?));
        }
        let activate = [("agreementId", id.clone()), ("region", "0".into())];
        ops.push(("activate", escrow.send(operator, "activate", &activate, U256::ZERO).await?));
        self.chain.advance(USED_SECONDS).await?;
        let evidence = evidence(&id);
        if ending == Ending::SignedStop {
            ensure!(offer.monitor.is_none(), "the signed stop is measured on offers without a monitor");
            // Signed now (the latest block's time), submitted by the operator in the next block.
            let stopped_at = self.chain.latest_timestamp().await?;
            let deadline = stopped_at + 600;
            let signature = self.stop_signature(customer, &id, stopped_at, deadline).await?;
            let stop_and_settle = args(&[("agreementId", id.clone())])
                .with("availabilityBps", AVAILABILITY_BPS)
                .with("evidence", evidence)
                .with("report", Bytes::new())
                .with("stoppedAt", stopped_at)
                .with("deadline", deadline)
                .with("signature", signature);
            ops.push(("stopAndSettle", escrow.send(operator, "stopAndSettle", &stop_and_settle, U256::ZERO).await?));
        } else {
            ops.push(("stop", escrow.send(customer, "stop", &[("agreementId", id.clone())], U256::ZERO).await?));
            // The settlement carries the commitment to the probe records behind the figure (a hash, as a
            // real one is) and, when the terms name a monitor, its signed report; without one, the
            // operator's figure comes with no report. The operator submits it either way.
            let report = match offer.monitor {
                Some(monitor) => self.report(monitor, &id, evidence).await?,
                None => Bytes::new(),
            };
            let settle = [
                ("agreementId", id.clone()),
                ("availabilityBps", AVAILABILITY_BPS.to_string()),
                ("evidence", evidence.to_string()),
                ("report", report.to_string()),
            ];
            ops.push(("settle", escrow.send(operator, "settle", &settle, U256::ZERO).await?));
        }
        if model == Model::TimeLimited {
            ops.push(("close", escrow.send(customer, "close", &[("agreementId", id)], U256::ZERO).await?));
        }
        Ok(ops)
    }

    /// The number of agreement `id`'s current conference, as the escrow counts it: its minutes account's
    /// sessions + 1 (1 for every model but bought minutes).
    async fn session(&self, id: &str) -> Result<U256> {
        let sessions = self.escrow.view_struct("minutesAccountOf", &[("agreementId", id.to_owned())]).await?;
        Ok(field_uint(&sessions, "sessions")? + U256::from(1))
    }

    /// `customer`'s EIP-712 stop of agreement `id`'s running conference at `stopped_at`: its signature
    /// (r ‖ s ‖ v) over `stopDigest`.
    async fn stop_signature(&self, customer: &Account, id: &str, stopped_at: u64, deadline: u64) -> Result<Bytes> {
        let session = self.session(id).await?;
        let digest = self
            .escrow
            .view(
                "stopDigest",
                &args(&[("agreementId", id.to_owned())])
                    .with("session", session)
                    .with("stoppedAt", stopped_at)
                    .with("deadline", deadline),
            )
            .await?;
        sign_digest(customer, &digest, "stopDigest")
    }

    /// The monitor's report on an ended conference of agreement `id`: its signature (r ‖ s ‖ v) over the
    /// escrow's `reportDigest` of the conference (session: the account's sessions + 1), its recorded
    /// start and end, the figure and the evidence, all read from the chain.
    async fn report(&self, monitor: &Account, id: &str, evidence: B256) -> Result<Bytes> {
        let agreement = self.escrow.view_struct("agreementOf", &[("agreementId", id.to_owned())]).await?;
        let session = self.session(id).await?;
        let digest = self
            .escrow
            .view(
                "reportDigest",
                &args(&[("agreementId", id.to_owned())])
                    .with("session", session)
                    .with("startedAt", field_uint(&agreement, "startedAt")?)
                    .with("endedAt", field_uint(&agreement, "endedAt")?)
                    .with("availabilityBps", AVAILABILITY_BPS)
                    .with("evidence", evidence),
            )
            .await?;
        sign_digest(monitor, &digest, "reportDigest")
    }

    /// The monitor comparison (see [`MonitorComparison`]): its second provider registered, an offer, two
    /// conferences (the second measured, whole) and the second provider's earnings checked, per side.
    async fn monitor_comparison(&self) -> Result<MonitorComparison> {
        let model = Model::DynamicPrice;
        let mut sides = Vec::new();
        for (key, title, role, account) in [
            ("twoProviders", "no monitor", CONFERENCE_SOFTWARE, self.chain.account(4)),
            ("monitored", "monitored", MONITORING, self.chain.account(5)),
        ] {
            let contract = format!(
                "ConferenceEscrow, a dynamic price offer in ETH with two providers, the second {}",
                if role == MONITORING { "its monitor (Monitoring)" } else { "a ConferenceSoftware provider" }
            );
            let mut c = Contestant::new(key, title, &contract);
            let (second_id, gas) = self.register(&account, role, &account).await?;
            c.setup("register the second provider", gas);
            let shares =
                [(&self.provider, self.provider_id, PRICE_PER_SECOND), (&account, second_id, SECOND_COMPONENT)];
            let terms_id = self.open_offer(model, &shares, &mut c).await.with_context(|| format!("{title} offer"))?;
            let terms = self.escrow.view_struct("termsOf", &[("termsId", terms_id.to_string())]).await?;
            let named = terms.get("monitor").and_then(DynSolValue::as_address).context("the terms' monitor")?;
            let monitor = (role == MONITORING).then_some(&account);
            let expected = monitor.map_or(Address::ZERO, |m| m.address);
            ensure!(named == expected, "the {title} offer's terms name {named} their monitor, expected {expected}");
            let deposit = U256::from(PRICE_PER_SECOND + SECOND_COMPONENT) * U256::from(MAX_DURATION);
            let offer = Offer { model, terms_id, deposit, monitor };
            self.conference(&offer, Ending::StopThenSettle).await.with_context(|| format!("{title}, first"))?;
            let measured = self.conference(&offer, Ending::StopThenSettle).await;
            for (op, sent) in measured.with_context(|| format!("{title}, measured"))? {
                c.op_sent(op, &sent);
            }
            let account = [("providerId", second_id.to_string()), ("tokenId", "0".into())];
            let earnings = first_uint(&self.escrow.view("earningsOf", &account).await?)?;
            check_paid(&format!("the {title} offer's second provider's earnings"), earnings, 2 * SECOND_COMPONENT)?;
            sides.push(c);
        }
        let with = sides.pop().context("the monitored side")?;
        let without = sides.pop().context("the unmonitored side")?;
        Ok(MonitorComparison { without, with })
    }

    /// The account path of `model`'s offer at `batch` conferences a batch (see [`AccountPath`]): checks that
    /// every batched call succeeded, that nothing stays locked and that the account paid exactly each
    /// conference's charge, to the wei.
    async fn account_path(
        &self,
        model: Model,
        terms_id: U256,
        batch: usize,
        customer: &Account,
    ) -> Result<AccountPath> {
        let escrow = &self.escrow;
        let lock = model.deposit();
        let total = lock * U256::from(batch);
        let account = [("customer", customer.address.to_string()), ("tokenId", "0".into())];
        let free_before = field_uint(&escrow.view_struct("accountOf", &account).await?, "free")?;
        let deposit = [("tokenId", "0".to_owned()), ("amount", total.to_string())];
        let deposit_gas = escrow.send(customer, "depositToAccount", &deposit, total).await?.gas;

        let nonce_after_deposit = self.chain.nonce(customer).await?;
        let deadline = self.chain.latest_timestamp().await? + 3600;
        let first_id = first_uint(&escrow.view("agreementCount", &[]).await?)? + U256::from(1);
        let mut opens = Vec::new();
        for i in 0..batch {
            let nonce = u64::from(model.index()?) * 1_000_000 + batch as u64 * 1_000 + i as u64;
            let order = args(&[("termsId", terms_id.to_string())])
                .with("allowedRegions", 0)
                .with("gdpr", false)
                .with("maxCost", lock)
                .with("nonce", nonce)
                .with("deadline", deadline);
            let signature = sign_digest(customer, &escrow.view("orderDigest", &order).await?, "orderDigest")?;
            opens.push(
                escrow.encode("openOrder", &order.with("customer", customer.address).with("signature", signature))?,
            );
        }
        let mut ops = vec![("openOrder", self.batch(&opens).await.context("the openings")?)];
        let opened = first_uint(&escrow.view("agreementCount", &[]).await?)?;
        ensure!(
            opened + U256::from(1) == first_id + U256::from(batch),
            "{model:?}: {batch} orders opened agreements up to {opened}, from {first_id}"
        );
        let ids: Vec<U256> = (0..batch).map(|i| first_id + U256::from(i)).collect();
        let activations = ids
            .iter()
            .map(|id| escrow.encode("activate", &args(&[("agreementId", id.to_string()), ("region", "0".into())])))
            .collect::<Result<Vec<_>>>()?;
        ops.push(("activate", self.batch(&activations).await.context("the activations")?));
        let started_at =
            field_uint(&escrow.view_struct("agreementOf", &[("agreementId", ids[0].to_string())]).await?, "startedAt")?;

        self.chain.advance(USED_SECONDS).await?;
        let stopped_at = self.chain.latest_timestamp().await?;
        let mut settlements = Vec::new();
        for id in &ids {
            let id = id.to_string();
            let signature = self.stop_signature(customer, &id, stopped_at, stopped_at + 600).await?;
            let call = args(&[("agreementId", id)])
                .with("availabilityBps", AVAILABILITY_BPS)
                .with("evidence", evidence("account"))
                .with("report", Bytes::new())
                .with("stoppedAt", stopped_at)
                .with("deadline", stopped_at + 600)
                .with("signature", signature);
            settlements.push(escrow.encode("stopAndSettle", &call)?);
        }
        ops.push(("stopAndSettle", self.batch(&settlements).await.context("the settlements")?));

        let after = escrow.view_struct("accountOf", &account).await?;
        let used = u64::try_from(U256::from(stopped_at) - started_at)?;
        let charges = U256::from(model.charge(used)) * U256::from(batch);
        ensure!(field_uint(&after, "locked")? == U256::ZERO, "{model:?}: money stays locked after the settlements");
        let free = field_uint(&after, "free")?;
        ensure!(
            free == free_before + total - charges,
            "{model:?}: the account holds {free}, expected {free_before} + {total} - {charges} ({used} s used)"
        );
        let customer_txs = self.chain.nonce(customer).await? - nonce_after_deposit;
        Ok(AccountPath { model, batch, deposit_gas, customer_txs, ops })
    }

    /// The operator's `batch` of `calls`; every call must succeed.
    async fn batch(&self, calls: &[Bytes]) -> Result<Sent> {
        let list: Vec<String> = calls.iter().map(ToString::to_string).collect();
        let sent = self
            .escrow
            .send(&self.operator, "batch", &[("calls", format!("[{}]", list.join(",")))], U256::ZERO)
            .await?;
        let Some(DynSolValue::Array(items)) = sent.output.first() else { bail!("batch returned {:?}", sent.output) };
        if let Some(i) = items.iter().position(|item| item.as_bool() != Some(true)) {
            let reason = self.escrow.revert_reason(&self.operator, &calls[i]).await;
            bail!(
                "batched call {i} of {} failed: {}",
                calls.len(),
                reason.unwrap_or_else(|| "it succeeds alone now".into())
            );
        }
        Ok(sent)
    }

    /// Checks the provider's earnings of the model's three conferences, then withdraws them.
    async fn withdraw(&self, model: Model, c: &mut Contestant) -> Result<()> {
        let account = [("providerId", self.provider_id.to_string()), ("tokenId", "0".into())];
        let earnings = first_uint(&self.escrow.view("earningsOf", &account).await?)?;
        let what = format!("this project, {}: the provider's earnings", model.title());
        match model {
            Model::FixedPrice => ensure!(earnings == U256::from(3 * FIXED_PRICE), "{what} are {earnings}"),
            Model::DynamicPrice | Model::TimeLimited => check_paid(&what, earnings, 3 * PRICE_PER_SECOND)?,
            Model::FlexiblePeriod => {
                let minimum = U256::from(3 * MINIMUM_CHARGE);
                ensure!(earnings > minimum, "{what} are {earnings}, not above three minimum charges");
                check_paid(&what, earnings - minimum, 3 * PRICE_PER_SECOND)?;
            }
        }
        let sent = self.escrow.send(&self.provider, "withdrawEarnings", &account, U256::ZERO).await?;
        c.op_sent("withdraw", &sent);
        Ok(())
    }
}

/// How a conference ends: the customer's own `stop` transaction, then the operator's `settle`; or the
/// customer's signed stop, which the operator submits with the settlement in one `stopAndSettle` (the
/// product's flow: the web app stops by signature).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    StopThenSettle,
    SignedStop,
}

/// `account`'s signature (r ‖ s ‖ v) over the digest a view (`what`) returned.
fn sign_digest(account: &Account, digest: &[DynSolValue], what: &str) -> Result<Bytes> {
    let digest =
        digest.first().and_then(DynSolValue::as_fixed_bytes).with_context(|| format!("{what} returned no bytes32"))?;
    let signature =
        account.signer.sign_hash_sync(&B256::from_slice(digest.0)).with_context(|| format!("signing {what}"))?;
    Ok(Bytes::from(signature.as_bytes().to_vec()))
}

/// The commitment to a conference's probe records that its settlement carries: any 32 bytes, non-zero
/// as a real one is (its calldata costs what a real one costs).
fn evidence(agreement_id: &str) -> B256 {
    keccak256(format!("the probe records of agreement {agreement_id}"))
}

/// Each measured operation's floor (floors.rs), from the calldata it was sent with, the escrow's storage
/// layout and its events.
pub fn price_floors(chain: &Chain, layout: &Layout, models: &mut [Contestant]) -> Result<()> {
    let escrow_abi = chain.artifact(PROJECT_OUT, "ConferenceEscrow")?.abi;
    for (model, c) in MODELS.iter().zip(models.iter_mut()) {
        for op in c.ops.keys().copied().collect::<Vec<_>>() {
            if let (Some(must), Some(calldata)) = (must_do(*model, op), c.calldata.get(op)) {
                let floor = must.floor(layout, &escrow_abi, calldata).with_context(|| format!("floor of {op}"))?;
                c.floors.insert(op, floor);
            }
        }
    }
    Ok(())
}

// ===================================================================================================
// Peers
// ===================================================================================================

/// Sablier Lockup 4.0.1 from its npm package's artifacts: the two linked libraries, the comptroller
/// behind its ERC-1967 proxy (initialized without fees or oracle), the lockup. The customer streams a
/// mock ERC-20 to the provider: create, cancel after 600 s, the provider withdraws what streamed.
pub async fn sablier(chain: &Chain) -> Result<Contestant> {
    let version = package_version(&chain.root.join(SABLIER))?;
    let mut c = Contestant::new("sablier", "Sablier", "");
    c.contract = format!("SablierLockup (linear stream), @sablier/lockup {version}");
    let (admin, sender, recipient) = (chain.account(0), chain.account(1), chain.account(2));

    let art = |dir: &str, path: &str| Artifact::load(&chain.root.join(dir).join("artifacts").join(path));
    let (helpers, gas) =
        chain.deploy(&art(SABLIER, "libraries/LockupHelpers.json")?, &admin, &[], &[], U256::ZERO).await?;
    c.setup("deploy LockupHelpers", gas);
    let (math, gas) = chain.deploy(&art(SABLIER, "libraries/LockupMath.json")?, &admin, &[], &[], U256::ZERO).await?;
    c.setup("deploy LockupMath", gas);

    let comptroller_art = art(SABLIER_UTILS, "SablierComptroller.json")?;
    let (implementation, gas) =
        chain.deploy(&comptroller_art, &admin, &args(&[("initialAdmin", admin.address)]), &[], U256::ZERO).await?;
    c.setup("deploy SablierComptroller", gas);
    let initialize = function(&comptroller_art.abi, "initialize")?;
    let init = args(&[("initialAdmin", admin.address), ("initialOracle", Address::ZERO)])
        .with("initialAirdropMinFeeUSD", 0)
        .with("initialBobMinFeeUSD", 0)
        .with("initialFlowMinFeeUSD", 0)
        .with("initialLockupMinFeeUSD", 0);
    let init_args = encode_args(chain, &initialize.inputs, "SablierComptroller.initialize", &init)?;
    let init_data = hex::encode_prefixed(initialize.abi_encode_input(&init_args)?);
    let proxy_args = [("implementation", implementation.address.to_string()), ("_data", init_data)];
    let (comptroller, gas) =
        chain.deploy(&art(SABLIER_UTILS, "ERC1967Proxy.json")?, &admin, &proxy_args, &[], U256::ZERO).await?;
    c.setup("deploy comptroller proxy", gas);

    let libraries = [("LockupHelpers", helpers.address), ("LockupMath", math.address)];
    let lockup_args = args(&[("initialComptroller", comptroller.address), ("initialNFTDescriptor", Address::ZERO)]);
    let (lockup, gas) =
        chain.deploy(&art(SABLIER, "SablierLockup.json")?, &admin, &lockup_args, &libraries, U256::ZERO).await?;
    c.setup("deploy SablierLockup", gas);

    // The token: the sender holds plenty and has approved the lockup; the recipient already holds some
    // (a provider paid in this token before), so a withdrawal does not pay for a first balance.
    let (token, gas) = chain.deploy(&chain.artifact(BENCH_OUT, "MockERC20")?, &admin, &[], &[], U256::ZERO).await?;
    c.setup("deploy MockERC20", gas);
    let deposit = U256::from(PRICE_PER_SECOND) * U256::from(MAX_DURATION);
    token
        .send(&admin, "mint", &args(&[("to", sender.address)]).with("amount", deposit * U256::from(10)), U256::ZERO)
        .await?;
    token.send(&admin, "mint", &args(&[("to", recipient.address)]).with("amount", U256::from(1)), U256::ZERO).await?;
    token.send(&sender, "approve", &args(&[("spender", lockup.address)]).with("value", U256::MAX), U256::ZERO).await?;

    let create = args(&[
        ("params.sender", sender.address),
        ("params.recipient", recipient.address),
        ("params.token", token.address),
    ])
    .with("params.depositAmount", deposit)
    .with("params.cancelable", true)
    .with("params.transferable", true)
    .with("params.shape", "")
    .with("unlockAmounts.start", 0)
    .with("unlockAmounts.cliff", 0)
    .with("granularity", 0)
    .with("durations.cliff", 0)
    .with("durations.total", MAX_DURATION);
    // The first stream ever (fresh counters and balances); it stays open while the second one, the
    // one measured, runs its whole course, as on a lockup in use.
    c.op("create_first", lockup.send(&sender, "createWithDurationsLL", &create, U256::ZERO).await?.gas);
    let sent = lockup.send(&sender, "createWithDurationsLL", &create, U256::ZERO).await?;
    c.op("create", sent.gas);
    let stream = sent.id()?.to_string();
    chain.advance(USED_SECONDS).await?;
    c.op("cancel", lockup.send(&sender, "cancel", &[("streamId", stream.clone())], U256::ZERO).await?.gas);
    let streamed = lockup.view("withdrawableAmountOf", &[("streamId", stream.clone())]).await?;
    check_paid("Sablier: the recipient's withdrawable amount", first_uint(&streamed)?, PRICE_PER_SECOND)?;
    let withdraw = args(&[("to", recipient.address)]).with("streamId", &stream);
    c.op("withdraw", lockup.send(&recipient, "withdrawMax", &withdraw, U256::ZERO).await?.gas);

    c.lifecycle(&["create", "cancel", "withdraw"]);
    Ok(c)
}

/// OpenZeppelin 4.9's PaymentSplitter: deployed once with three payees (50/30/20), paid by the customer,
/// released to the first payee, then to the second (whose release finds the totals already written).
pub async fn payment_splitter(chain: &Chain) -> Result<Contestant> {
    let mut c = Contestant::new("paymentSplitter", "PaymentSplitter", "PaymentSplitter, @openzeppelin/contracts 4.9.6");
    let (admin, customer) = (chain.account(0), chain.account(1));
    let payees = [chain.account(2), chain.account(3), chain.account(4)];
    let list = |items: &[String]| format!("[{}]", items.join(","));
    let ctor = [
        ("payees", list(&payees.iter().map(|p| p.address.to_string()).collect::<Vec<_>>())),
        ("shares_", "[50,30,20]".to_string()),
    ];
    let (splitter, gas) =
        chain.deploy(&chain.artifact(BENCH_OUT, "PaymentSplitter")?, &admin, &ctor, &[], U256::ZERO).await?;
    c.setup("deploy PaymentSplitter (3 payees)", gas);
    let payment = U256::from(PRICE_PER_SECOND) * U256::from(USED_SECONDS);
    c.op("receive", chain.transfer(&customer, splitter.address, payment).await?);
    let release = "release(address)";
    c.op(
        "release",
        splitter.send(&payees[0], release, &args(&[("account", payees[0].address)]), U256::ZERO).await?.gas,
    );
    c.op(
        "release_second",
        splitter.send(&payees[1], release, &args(&[("account", payees[1].address)]), U256::ZERO).await?.gas,
    );
    c.op(
        "release_third",
        splitter.send(&payees[2], release, &args(&[("account", payees[2].address)]), U256::ZERO).await?.gas,
    );
    // One splitter serves every payment to the same payees, so a payment's own cost is receiving it and
    // releasing it to each payee.
    c.lifecycle(&["receive", "release", "release_second", "release_third"]);
    Ok(c)
}

/// OpenZeppelin 4.9's `Escrow` (utils/escrow): its owner (the platform, paid by the customer) deposits
/// the conference's price for the provider, then withdraws it to the provider.
pub async fn oz_escrow(chain: &Chain) -> Result<Contestant> {
    let mut c = Contestant::new("ozEscrow", "OZ Escrow", "Escrow (utils/escrow), @openzeppelin/contracts 4.9.6");
    let (owner, payee) = (chain.account(0), chain.account(2));
    let (escrow, gas) = chain.deploy(&chain.artifact(BENCH_OUT, "Escrow")?, &owner, &[], &[], U256::ZERO).await?;
    c.setup("deploy Escrow", gas);
    let payment = U256::from(PRICE_PER_SECOND) * U256::from(USED_SECONDS);
    let to_payee = args(&[("payee", payee.address)]);
    c.op("deposit", escrow.send(&owner, "deposit", &to_payee, payment).await?.gas);
    let held = first_uint(&escrow.view("depositsOf", &to_payee).await?)?;
    ensure!(held == payment, "OpenZeppelin Escrow holds {held} for the payee, expected {payment}");
    c.op("withdraw", escrow.send(&owner, "withdraw", &to_payee, U256::ZERO).await?.gas);
    c.lifecycle(&["deposit", "withdraw"]);
    Ok(c)
}

/// The per-agreement baseline: the customer deploys one escrow per agreement with the deposit; the
/// provider activates, the customer stops after 600 s, the provider settles and withdraws.
pub async fn baseline(chain: &Chain) -> Result<Contestant> {
    let mut c = Contestant::new(
        "baseline",
        "per-agreement",
        "PerAgreementEscrow (contracts/bench), one contract per agreement",
    );
    let (customer, provider) = (chain.account(1), chain.account(2));
    let art = chain.artifact(BENCH_OUT, "PerAgreementEscrow")?;
    let ctor = args(&[("provider_", provider.address)])
        .with("pricePerSecond_", PRICE_PER_SECOND)
        .with("maxDuration_", MAX_DURATION);
    let deposit = U256::from(PRICE_PER_SECOND) * U256::from(MAX_DURATION);
    c.op("deploy_first", chain.deploy(&art, &customer, &ctor, &[], deposit).await?.1);
    let (escrow, gas) = chain.deploy(&art, &customer, &ctor, &[], deposit).await?;
    c.op("deploy", gas);
    c.op("activate", escrow.send(&provider, "activate", &[], U256::ZERO).await?.gas);
    chain.advance(USED_SECONDS).await?;
    c.op("stop", escrow.send(&customer, "stop", &[], U256::ZERO).await?.gas);
    c.op(
        "settle",
        escrow.send(&provider, "settle", &[("availabilityBps", AVAILABILITY_BPS.to_string())], U256::ZERO).await?.gas,
    );
    check_paid("the baseline's provider charge", first_uint(&escrow.view("owed", &[]).await?)?, PRICE_PER_SECOND)?;
    c.op("withdraw", escrow.send(&provider, "withdraw", &[], U256::ZERO).await?.gas);
    c.lifecycle(&["deploy", "activate", "stop", "settle", "withdraw"]);
    Ok(c)
}

/// The charge (or streamed amount) for the conference: `per_second` × the seconds used, which are
/// USED_SECONDS plus the second or two the chain's clock may add between blocks.
fn check_paid(what: &str, amount: U256, per_second: u128) -> Result<()> {
    let (low, high) =
        (U256::from(per_second) * U256::from(USED_SECONDS), U256::from(per_second) * U256::from(USED_SECONDS + 5));
    ensure!(low <= amount && amount <= high, "{what} is {amount}, expected {USED_SECONDS} s × {per_second} (to 5 s)");
    Ok(())
}
