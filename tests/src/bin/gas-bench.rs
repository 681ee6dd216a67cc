//! `make bench-gas`: the gas this project's escrow costs per operation and per conference in each of its
//! four pricing models, beside reference peers, all measured in one run on one fresh anvil from the
//! transaction receipts (`gasUsed`, so the 21,000 base and the calldata are included, as in published
//! figures); beside each of the project's operations, its floor: what the storage writes, transfers and
//! events it cannot avoid cost; and what a whole conference costs in money beside a card payment.
//!
//! Contestants (the same conference for each: 600 s used, fully available; the demo offers' prices):
//! - this project: `ConferenceEscrow` + `ProviderRegistry`, one offer per model with one provider:
//!   fixed price (1e15 wei a conference), dynamic price (1e12 wei a second, at most an hour),
//!   time-limited (6e13 wei a minute, an hour bought) and flexible period (1e12 wei a second plus a
//!   1e15 wei minimum, a one-hour window);
//! - Sablier Lockup 4.0.1, a linear stream of a mock ERC-20 (its published artifacts, deployed as
//!   they are, with its comptroller behind its proxy and no fee);
//! - OpenZeppelin 4.9's PaymentSplitter, three payees, and its `Escrow` (deposit, withdraw);
//! - the per-agreement baseline (`contracts/bench/src/PerAgreementEscrow.sol`): one contract per agreement.
//!
//! ABIs and bytecode are read at run time from the forge output (`contracts/out`, `contracts/bench/out`)
//! and the npm package, and called through alloy's dynamic ABI, so building this crate never needs forge.
//! The escrow's storage layout (for the floors) is `forge inspect ConferenceEscrow storageLayout`, which
//! `make bench-gas` writes beside the bench's build output.
//! Arguments are given by parameter name; one the contract does not have is an error, one the contract
//! has and the benchmark does not give is zero (and said so in the notes), so a changed signature shows.
//! Prints tables and PASS/MISS per target, writes `target/bench/gas.json` in issue 7's shared format.
//! A MISS does not fail the run; a reverted transaction (or any other error) does.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    sync::Mutex,
};

use alloy::{
    contract::{ContractInstance, Interface},
    dyn_abi::{DynSolType, DynSolValue, JsonAbiExt, Specifier},
    hex,
    json_abi::{Function, JsonAbi, Param},
    network::TransactionBuilder,
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, B256, Bytes, I256, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{TransactionReceipt, TransactionRequest},
    signers::local::PrivateKeySigner,
};
use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::Parser;
// The one place that names the backend's path to its model type: the benchmark prices the very enum
// the backend reads from the chain.
use conference_backend::agreement::Model;
use serde_json::{Value, json};

// --- the conference every contestant pays for ------------------------------------------------------

const PRICE_PER_SECOND: u128 = 1_000_000_000_000;
const MAX_DURATION: u64 = 3600;
const USED_SECONDS: u64 = 600;
const AVAILABILITY_BPS: u64 = 10_000;
/// The fixed-price demo offer's price of a conference (backend/src/devnet.rs).
const FIXED_PRICE: u128 = 1_000_000_000_000_000;
/// The time-limited demo offer's price of a minute: the dynamic price's second × 60.
const PRICE_PER_MINUTE: u128 = 60 * PRICE_PER_SECOND;
/// Minutes a time-limited customer buys: the same hour the dynamic-price deposit covers.
const MINUTES_BOUGHT: u64 = MAX_DURATION / 60;
/// The flexible-period demo offer's minimum charge, on top of its price per second.
const MINIMUM_CHARGE: u128 = 1_000_000_000_000_000;

// --- where things are (relative to the repository root) --------------------------------------------

const ANVIL: &str = "anvil/node_modules/.bin/anvil";
const PROJECT_OUT: &str = "contracts/out";
const BENCH_OUT: &str = "contracts/bench/out";
const SABLIER: &str = "contracts/bench/node_modules/@sablier/lockup";
const SABLIER_UTILS: &str = "contracts/bench/node_modules/@sablier/evm-utils";
/// `forge inspect ConferenceEscrow storageLayout --json`, written by `make bench-gas`.
const LAYOUT: &str = "contracts/bench/out/ConferenceEscrow.storageLayout.json";
const REPORT: &str = "target/bench/gas.json";
/// The command that writes the report, as the report states it.
const COMMAND: &str = "cargo run -q -p conference-e2e --bin gas-bench";

/// EIP-170: the largest contract code mainnet accepts. anvil runs without the limit so that an
/// oversized contract is still measured; the report flags it.
const CODE_SIZE_LIMIT: usize = 24_576;

// --- targets for this project (issue 7, and the per-operation budgets of the contracts issue) -------

const TARGET_SIGN: u64 = 75_000;
const TARGET_ACTIVATE: u64 = 35_000;
const TARGET_STOP: u64 = 35_000;
const TARGET_SETTLE: u64 = 60_000;
/// Batched settlement, per agreement at 50 per transaction.
const TARGET_BATCH_SETTLE: u64 = 25_000;
/// The dynamic-price lifecycle ÷ the per-agreement baseline's.
const TARGET_BASELINE_RATIO: f64 = 0.3333;

// --- money ---------------------------------------------------------------------------------------------

const GAS_PRICES_GWEI: [u64; 3] = [1, 10, 40];
/// Card fees the paper cites: (id, name, lowest %, highest %).
const CARD_FEES: [(&str, &str, f64, f64); 3] =
    [("visa", "Visa", 1.43, 2.40), ("mastercard", "Mastercard", 1.55, 2.60), ("paypal", "PayPal", 2.90, 4.40)];

/// The gas benchmark: see the module documentation.
#[derive(Parser)]
struct Cli {
    /// The ETH price in USD that the money figures use.
    #[arg(long, default_value_t = 3000.0)]
    eth_usd: f64,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(err) = run(&cli).await {
        eprintln!("\nGAS BENCHMARK FAILED: {err:#}");
        std::process::exit(1);
    }
}

async fn run(cli: &Cli) -> Result<()> {
    ensure!(cli.eth_usd > 0.0 && cli.eth_usd.is_finite(), "--eth-usd must be a positive number");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("tests/ has a parent")?.to_path_buf();
    let layout = Layout::load(&root.join(LAYOUT))?;
    let chain = Chain::start(&root)?;
    let node: Value = chain.accounts[0].rpc.raw_request("anvil_nodeInfo".into(), ()).await.unwrap_or_default();
    let hardfork = node["hardFork"].as_str().unwrap_or("unknown").to_owned();
    println!(
        "Gas benchmark on a fresh anvil ({}, hardfork {hardfork}): every figure is a receipt's gasUsed.\n",
        chain.url
    );

    let mut models = this_project(&chain).await.context("this project")?;
    let escrow_abi = chain.artifact(PROJECT_OUT, "ConferenceEscrow")?.abi;
    for (model, c) in MODELS.iter().zip(models.iter_mut()) {
        for op in c.ops.keys().copied().collect::<Vec<_>>() {
            if let (Some(must), Some(calldata)) = (must_do(*model, op), c.calldata.get(op)) {
                let floor = must.floor(&layout, &escrow_abi, calldata).with_context(|| format!("floor of {op}"))?;
                c.floors.insert(op, floor);
            }
        }
    }
    let sablier = sablier(&chain).await.context("Sablier Lockup")?;
    let splitter = payment_splitter(&chain).await.context("PaymentSplitter")?;
    let oz_escrow = oz_escrow(&chain).await.context("OpenZeppelin Escrow")?;
    let baseline = baseline(&chain).await.context("per-agreement baseline")?;
    let dynamic = &models[0];
    let peers = [dynamic, &sablier, &splitter, &oz_escrow, &baseline];

    print_models(&models);
    print_floors(&models);
    println!();
    print_table(&peers);
    let mut figures = Vec::new();
    figures.extend(operation_figures(&models, &peers[1..]));
    figures.extend(money(&models, cli.eth_usd));
    figures.extend(batching(dynamic)?);
    figures.extend(targets(dynamic, &sablier, &baseline)?);
    figures.extend(setup_figures(&models, &peers[1..]));
    let notes = chain.notes.lock().map_err(|_| anyhow!("notes lock poisoned"))?.clone();
    if !notes.is_empty() {
        println!("\nNotes:");
        for note in &notes {
            println!("  - {note}");
        }
    }

    let mut command = COMMAND.to_owned();
    let extra: Vec<String> = std::env::args().skip(1).collect();
    if !extra.is_empty() {
        command = format!("{command} -- {}", extra.join(" "));
    }
    let ids: BTreeSet<&str> = figures.iter().map(|f| f.id.as_str()).collect();
    ensure!(ids.len() == figures.len(), "two figures share an id");
    let report = json!({
        "bench": "gas",
        "command": command,
        "figures": figures.iter().map(Figure::to_json).collect::<Vec<_>>(),
    });
    let path = root.join(REPORT);
    fs::create_dir_all(path.parent().context("report path has a parent")?)?;
    fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("\nWrote {} ({} figures)", path.display(), figures.len());
    Ok(())
}

// ===================================================================================================
// THIS PROJECT. The only part that knows the escrow's API: when the contract changes, edit here (and
// the floors' table, `must_do`, below).
// ===================================================================================================

/// The escrow's pricing models, in the order the benchmark runs them: the dynamic price first, so that
/// its first agreement is the first the escrow ever sees.
const MODELS: [Model; 4] = [Model::DynamicPrice, Model::FixedPrice, Model::TimeLimited, Model::FlexiblePeriod];

/// Each model's offer in this benchmark (the demo offers' prices) and the conference it pays for.
trait DemoOffer {
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
        let used = u128::from(USED_SECONDS);
        match self {
            Model::FixedPrice => FIXED_PRICE,
            Model::DynamicPrice => PRICE_PER_SECOND * used,
            Model::TimeLimited => PRICE_PER_MINUTE * used / 60,
            Model::FlexiblePeriod => MINIMUM_CHARGE + PRICE_PER_SECOND * used,
        }
    }

    fn lifecycle(self) -> &'static [&'static str] {
        match self {
            Model::FixedPrice | Model::DynamicPrice => &["sign", "activate", "stop", "settle", "withdraw"],
            Model::TimeLimited => &["buyMinutes", "start", "activate", "stop", "settle", "close"],
            Model::FlexiblePeriod => &["reserve", "start", "activate", "stop", "settle"],
        }
    }
}

/// The deployed escrow and the accounts that use it.
struct Escrow<'c> {
    chain: &'c Chain,
    escrow: Deployed<'c>,
    book: Deployed<'c>,
    provider_id: U256,
    admin: Account,
    customer: Account,
    provider: Account,
    operator: Account,
}

/// Deploys the escrow once, then runs each model on it: an offer, a first conference (for the dynamic
/// price, the first agreement the escrow ever sees), the measured one, and the provider's withdrawal.
/// The provider withdraws once per model, after two conferences, so a measured settlement adds to
/// earnings not withdrawn yet (the steady state of a provider who withdraws now and then).
async fn this_project(chain: &Chain) -> Result<Vec<Contestant>> {
    let mut setup = Vec::new();
    let (admin, customer, provider, payout, operator) =
        (chain.account(0), chain.account(1), chain.account(2), chain.account(3), chain.account(9));

    // One-time setup: the contracts and the provider.
    let registry_art = chain.artifact(PROJECT_OUT, "ProviderRegistry")?;
    let (registry, gas) = chain.deploy(&registry_art, &admin, &[], &[], U256::ZERO).await?;
    setup.push(("deploy ProviderRegistry".to_owned(), gas));
    let escrow_art = chain.artifact(PROJECT_OUT, "ConferenceEscrow")?;
    let windows = [("activationWindow", "600"), ("settlementWindow", "86400"), ("votingPeriod", "259200")];
    let mut ctor = args(&[("admin", admin.address), ("operator", operator.address), ("registry", registry.address)]);
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
    let sent = registry
        .send(
            &provider,
            "register",
            &[
                ("role", "0".into() /* Infrastructure */),
                ("payout", payout.address.to_string()),
                ("regions", "1".into()),
                ("gdpr", "false".into()),
            ],
            U256::ZERO,
        )
        .await?;
    setup.push(("register provider".to_owned(), sent.gas));
    let provider_id = sent.id()?;
    let project = Escrow { chain, escrow, book, provider_id, admin, customer, provider, operator };

    let mut contestants = Vec::new();
    for model in MODELS {
        let mut c = Contestant::new(
            model.key(),
            model.title(),
            &format!("ConferenceEscrow, a {} offer in ETH with one provider", model.title()),
        );
        c.setup = std::mem::take(&mut setup);
        let terms_id = project.open_offer(model, &mut c).await.with_context(|| format!("{model:?} offer"))?;
        project.conference(model, terms_id, false, &mut c).await.with_context(|| format!("{model:?}, first"))?;
        project.conference(model, terms_id, true, &mut c).await.with_context(|| format!("{model:?}, measured"))?;
        project.withdraw(model, &mut c).await?;
        c.lifecycle(model.lifecycle());
        contestants.push(c);
    }
    Ok(contestants)
}

impl Escrow<'_> {
    /// Drafts, prices and opens an offer of `model` with the one provider; returns its terms id.
    async fn open_offer(&self, model: Model, c: &mut Contestant) -> Result<U256> {
        let offer = [
            ("model", model.index()?.to_string()),
            ("tokenId", "0".into()),
            ("maxDuration", MAX_DURATION.to_string()),
            ("margin", "0".into()),
            ("minimumCharge", model.minimum_charge().to_string()),
            ("gdprSurchargeBps", "0".into()),
            ("regionSurchargeBps", "0".into()),
            ("providerIds", format!("[{}]", self.provider_id)),
        ];
        let sent = self.book.send(&self.admin, "createOffer", &offer, U256::ZERO).await?;
        c.setup("createOffer", sent.gas);
        let offer_id = sent.id()?;
        let component = [("offerId", offer_id.to_string()), ("component", model.component().to_string())];
        c.setup("setComponent", self.book.send(&self.provider, "setComponent", &component, U256::ZERO).await?.gas);
        let sent = self.book.send(&self.admin, "openOffer", &[("offerId", offer_id.to_string())], U256::ZERO).await?;
        c.setup("openOffer", sent.gas);
        sent.id()
    }

    /// One conference of `model`, from the customer's payment to its settlement (and, time-limited,
    /// the account's closing). Recorded when `measured`; of the first one, only the dynamic price's
    /// sign and settle are (the first agreement ever, and a provider's first earnings).
    async fn conference(&self, model: Model, terms_id: U256, measured: bool, c: &mut Contestant) -> Result<()> {
        let key = |op: &'static str| -> Option<&'static str> {
            match (measured, model, op) {
                (true, _, _) => Some(op),
                (false, Model::DynamicPrice, "sign") => Some("sign_first"),
                (false, Model::DynamicPrice, "settle") => Some("settle_first"),
                _ => None,
            }
        };
        let mut record = |op: &'static str, sent: &Sent| {
            if let Some(k) = key(op) {
                c.op_sent(k, sent);
            }
        };
        let (escrow, customer, operator) = (&self.escrow, &self.customer, &self.operator);

        // The deposit, as the contract quotes it.
        let constraints = [("termsId", terms_id.to_string()), ("allowedRegions", "0".into()), ("gdpr", "false".into())];
        let mut quote = constraints.to_vec();
        quote.push(("quantity", model.quantity().to_string()));
        let deposit = first_uint(&escrow.view("quote", &quote).await?).context("quote's deposit")?;
        ensure!(deposit == model.deposit(), "{model:?}: quoted deposit {deposit}, expected {}", model.deposit());

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
        record(open_fn, &sent);
        let id = sent.id()?.to_string();
        if needs_start {
            record("start", &escrow.send(customer, "start", &[("agreementId", id.clone())], U256::ZERO).await?);
        }
        let activate = [("agreementId", id.clone()), ("region", "0".into())];
        record("activate", &escrow.send(operator, "activate", &activate, U256::ZERO).await?);
        self.chain.advance(USED_SECONDS).await?;
        record("stop", &escrow.send(customer, "stop", &[("agreementId", id.clone())], U256::ZERO).await?);
        let settle = [("agreementId", id.clone()), ("availabilityBps", AVAILABILITY_BPS.to_string())];
        record("settle", &escrow.send(operator, "settle", &settle, U256::ZERO).await?);
        if model == Model::TimeLimited {
            record("close", &escrow.send(customer, "close", &[("agreementId", id)], U256::ZERO).await?);
        }
        Ok(())
    }

    /// Checks the provider's earnings of the model's two conferences, then withdraws them.
    async fn withdraw(&self, model: Model, c: &mut Contestant) -> Result<()> {
        let account = [("providerId", self.provider_id.to_string()), ("tokenId", "0".into())];
        let earnings = first_uint(&self.escrow.view("earningsOf", &account).await?)?;
        let what = format!("this project, {}: the provider's earnings", model.title());
        match model {
            Model::FixedPrice => ensure!(earnings == U256::from(2 * FIXED_PRICE), "{what} are {earnings}"),
            Model::DynamicPrice | Model::TimeLimited => check_paid(&what, earnings, 2 * PRICE_PER_SECOND)?,
            Model::FlexiblePeriod => {
                let minimum = U256::from(2 * MINIMUM_CHARGE);
                ensure!(earnings > minimum, "{what} are {earnings}, not above two minimum charges");
                check_paid(&what, earnings - minimum, 2 * PRICE_PER_SECOND)?;
            }
        }
        let sent = self.escrow.send(&self.provider, "withdrawEarnings", &account, U256::ZERO).await?;
        c.op_sent("withdraw", &sent);
        Ok(())
    }
}

// ===================================================================================================
// Floors: what each operation cannot avoid writing, sending and logging, and what that costs.
// ===================================================================================================

/// How an operation changes a storage slot, priced for the first write to that slot in the transaction,
/// the slot cold (EIP-2929 access 2,100; EIP-2200 and EIP-3529 set costs and refunds).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Write {
    /// Non-zero to another non-zero value: 2,100 + 2,900.
    Changed,
    /// Non-zero to zero: 2,100 + 2,900, and 4,800 refunded (at most a fifth of the transaction's gas).
    Cleared,
    /// Zero to non-zero: 2,100 + 20,000.
    New,
}

impl Write {
    fn gas(self) -> u64 {
        match self {
            Write::Changed | Write::Cleared => 5_000,
            Write::New => 22_100,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Write::Changed => "changed",
            Write::Cleared => "cleared",
            Write::New => "new",
        }
    }
}

/// Who receives ETH an operation pushes. A value call costs the account's access (100 warm, 2,600
/// cold) + 9,000, and the 2,300 stipend the callee does not use comes back (25,000 more for an account
/// that does not exist yet: none here, everyone paid already holds ETH).
#[derive(Clone, Copy)]
enum Recipient {
    /// The transaction's sender: warm.
    Sender,
    /// Anyone else: cold.
    Other,
}

impl Recipient {
    fn gas(self) -> u64 {
        let access = match self {
            Recipient::Sender => 100,
            Recipient::Other => 2_600,
        };
        access + 9_000 - 2_300
    }
}

/// What an operation must do: the slots it writes (a storage variable, or a mapping's struct member as
/// `mapping.member`: members that share a slot in the layout are one write), the ETH it pushes, the
/// events the specification requires of it.
struct Must {
    writes: Vec<(&'static str, Write)>,
    sends: Vec<Recipient>,
    events: Vec<&'static str>,
}

/// The floors' table: for each operation of each model, what it must write, send and log. The state is
/// the contract's (ARCHITECTURE.md's agreement entry: what later operations and the customer's audit
/// read back); every other cost (reads, role checks, the registry call, reentrancy guards, memory,
/// arithmetic) is counted as avoidable. Steady state: the counter and a provider's earnings exist.
fn must_do(model: Model, op: &str) -> Option<Must> {
    use Recipient::{Other, Sender};
    use Write::{Changed, Cleared, New};
    // A new agreement: its id from the counter, its entry (every slot holds something non-zero).
    let open = || {
        vec![
            ("_agreementCount", Changed),
            ("_agreements.customer", New),
            ("_agreements.status", New),
            ("_agreements.price", New),
            ("_agreements.duration", New),
        ]
    };
    let with = |mut writes: Vec<(&'static str, Write)>, more: &[(&'static str, Write)]| {
        writes.extend_from_slice(more);
        writes
    };
    let must = |writes, sends, events| Some(Must { writes, sends, events });
    let (timed, flexible) = (model == Model::TimeLimited, model == Model::FlexiblePeriod);
    match op {
        "sign" if !timed && !flexible => must(open(), vec![], vec!["AgreementSigned"]),
        "buyMinutes" if timed => {
            must(with(open(), &[("_minutesAccounts.deposit", New)]), vec![], vec!["AgreementSigned"])
        }
        "reserve" if flexible => must(
            with(open(), &[("_windows.from", New), ("_windows.to", New), ("_windows.minimumCharge", New)]),
            vec![],
            vec!["AgreementSigned", "WindowReserved"],
        ),
        // Requested, and when: the activation window runs from the request.
        "start" if timed || flexible => must(
            vec![("_agreements.status", Changed), ("_agreements.startedAt", Changed)],
            vec![],
            vec!["StartRequested"],
        ),
        // Active, where, from when (billing starts here) and, flexible, until the window's end.
        "activate" => must(
            vec![
                ("_agreements.status", Changed),
                ("_agreements.region", Changed),
                ("_agreements.startedAt", Changed),
                ("_agreements.duration", Changed),
            ],
            vec![],
            vec!["AgreementActivated"],
        ),
        "stop" => must(
            vec![("_agreements.status", Changed), ("_agreements.endedAt", Changed)],
            vec![],
            vec!["AgreementEnded"],
        ),
        // Settled (time-limited: Idle, the seconds used taken off, the charge added to the account), the
        // provider's earnings raised, and the unused deposit pushed back to the customer (none at a
        // fixed price; time-limited, at close).
        "settle" => {
            let mut writes = vec![("_agreements.status", Changed), ("_earnings", Changed)];
            if timed {
                writes.extend([("_agreements.duration", Changed), ("_minutesAccounts.charged", Changed)]);
            }
            let sends = if timed || model == Model::FixedPrice { vec![] } else { vec![Other] };
            must(writes, sends, vec!["AgreementSettled"])
        }
        "close" if timed => must(vec![("_agreements.status", Changed)], vec![Sender], vec!["AgreementClosed"]),
        // The earnings cleared and sent to the provider's payout address (not the caller).
        "withdraw" => must(vec![("_earnings", Cleared)], vec![Other], vec!["EarningsWithdrawn"]),
        _ => None,
    }
}

/// A floor and how it adds up.
struct Floor {
    gas: u64,
    detail: String,
}

impl Must {
    /// 21,000 + the calldata (4 gas a zero byte, 16 a non-zero one, of the transaction actually sent) +
    /// the slots written + the ETH pushed + the logs (375 + 375 a topic + 8 a data byte) − the refunds.
    fn floor(&self, layout: &Layout, abi: &JsonAbi, calldata: &Bytes) -> Result<Floor> {
        let zeros = calldata.iter().filter(|b| **b == 0).count() as u64;
        let data = zeros * 4 + (calldata.len() as u64 - zeros) * 16;
        let mut parts = vec![format!("21,000 + calldata {} B {}", calldata.len(), thousands(data))];
        let mut slots: BTreeMap<String, Write> = BTreeMap::new();
        for (name, write) in &self.writes {
            let slot = layout.slot(name)?;
            let entry = slots.entry(slot).or_insert(*write);
            *entry = (*entry).max(*write);
        }
        let writes: u64 = slots.values().map(|w| w.gas()).sum();
        for (slot, write) in &slots {
            parts.push(format!("{slot} {} {}", write.word(), thousands(write.gas())));
        }
        let sends: u64 = self.sends.iter().map(|r| r.gas()).sum();
        for r in &self.sends {
            let whom = if matches!(r, Recipient::Sender) { "the sender" } else { "a cold account" };
            parts.push(format!("ETH to {whom} {}", thousands(r.gas())));
        }
        let mut logs = 0;
        for name in &self.events {
            let event = abi
                .event(name)
                .and_then(|e| e.first())
                .with_context(|| format!("no event {name} in the escrow's ABI"))?;
            let topics = 1 + event.inputs.iter().filter(|p| p.indexed).count() as u64;
            let words = event.inputs.iter().filter(|p| !p.indexed).count() as u64;
            ensure!(
                event.inputs.iter().all(|p| !(p.ty.ends_with(']') || p.ty == "bytes" || p.ty == "string")),
                "event {name} has a dynamic field: its log size is not fixed"
            );
            let gas = 375 + 375 * topics + 8 * 32 * words;
            parts.push(format!("log {name} {}", thousands(gas)));
            logs += gas;
        }
        let total = 21_000 + data + writes + sends + logs;
        let cleared = slots.values().filter(|w| **w == Write::Cleared).count() as u64;
        let refund = (cleared * 4_800).min(total / 5);
        if refund > 0 {
            parts.push(format!("refund −{}", thousands(refund)));
        }
        Ok(Floor { gas: total - refund, detail: parts.join(" + ") })
    }
}

/// The escrow's storage layout, as `forge inspect … storageLayout --json` prints it.
struct Layout(Value);

impl Layout {
    fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).with_context(|| {
            format!("{} is missing: run `make bench-gas` (it writes the escrow's storage layout)", path.display())
        })?;
        Ok(Self(serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?))
    }

    /// The slot a name writes, as words: `slot 3` for a variable (packed variables share it),
    /// `_agreements[…] slot 1` for a member of a mapping's struct, `_earnings[…]` for a mapping's word.
    fn slot(&self, name: &str) -> Result<String> {
        let (variable, member) = match name.split_once('.') {
            Some((v, m)) => (v, Some(m)),
            None => (name, None),
        };
        let entry = self.0["storage"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["label"] == variable)
            .with_context(|| format!("no storage variable {variable} in the escrow's layout"))?;
        let types = &self.0["types"];
        let mut ty = &types[entry["type"].as_str().context("a storage entry without a type")?];
        if ty["encoding"] != "mapping" {
            ensure!(member.is_none(), "{variable} is not a mapping of structs");
            return Ok(format!("{variable} (slot {})", entry["slot"].as_str().unwrap_or("?")));
        }
        while ty["encoding"] == "mapping" {
            ty = &types[ty["value"].as_str().context("a mapping without a value type")?];
        }
        let keys = |t: &Value| "[…]".repeat(t["label"].as_str().unwrap_or("").matches("mapping(").count());
        let brackets = keys(&types[entry["type"].as_str().unwrap_or_default()]);
        match member {
            None => {
                ensure!(ty["numberOfBytes"] == "32" || ty["members"].is_null(), "{name} names a struct, not a slot");
                Ok(format!("{variable}{brackets}"))
            }
            Some(member) => {
                let slot = ty["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|m| m["label"] == member)
                    .and_then(|m| m["slot"].as_str())
                    .with_context(|| format!("no member {member} in {variable}'s struct"))?;
                Ok(format!("{variable}{brackets} slot {slot}"))
            }
        }
    }
}
// ===================================================================================================
// Peers
// ===================================================================================================

/// Sablier Lockup 4.0.1 from its npm package's artifacts: the two linked libraries, the comptroller
/// behind its ERC-1967 proxy (initialized without fees or oracle), the lockup. The customer streams a
/// mock ERC-20 to the provider: create, cancel after 600 s, the provider withdraws what streamed.
async fn sablier(chain: &Chain) -> Result<Contestant> {
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
async fn payment_splitter(chain: &Chain) -> Result<Contestant> {
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
async fn oz_escrow(chain: &Chain) -> Result<Contestant> {
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
async fn baseline(chain: &Chain) -> Result<Contestant> {
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

// ===================================================================================================
// Report
// ===================================================================================================

/// One column of the tables: the gas of each operation (for this project, with the calldata sent and
/// the floor), and the one-time setup apart.
struct Contestant {
    key: &'static str,
    title: &'static str,
    contract: String,
    setup: Vec<(String, u64)>,
    ops: BTreeMap<&'static str, u64>,
    calldata: BTreeMap<&'static str, Bytes>,
    floors: BTreeMap<&'static str, Floor>,
    lifecycle_ops: Vec<&'static str>,
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
    }

    fn lifecycle(&mut self, ops: &[&'static str]) {
        self.lifecycle_ops = ops.to_vec();
    }

    fn get(&self, key: &str) -> Option<u64> {
        if key == "lifecycle" {
            return self.lifecycle_ops.iter().map(|k| self.ops.get(k)).sum();
        }
        self.ops.get(key).copied()
    }

    /// An operation's floor; the lifecycle's is the sum of its operations' (when each has one).
    fn floor(&self, key: &str) -> Option<u64> {
        if key == "lifecycle" {
            return self.lifecycle_ops.iter().map(|k| self.floors.get(k).map(|f| f.gas)).sum();
        }
        self.floors.get(key).map(|f| f.gas)
    }
}

/// What the tables and the report call an operation.
fn op_label(op: &str) -> &str {
    match op {
        "sign_first" => "sign, the first agreement ever",
        "settle_first" => "settle, a provider's first earnings",
        "buyMinutes" => "buyMinutes (buy an hour)",
        "reserve" => "reserve (an hour's window)",
        "start" => "start (the customer's request)",
        "settle" => "settle (steady state)",
        "close" => "close (the unused minutes back)",
        "withdraw" => "provider withdraws",
        "create_first" => "create, the first stream",
        "create" => "create (steady state)",
        "cancel" => "cancel after 600 s",
        "receive" => "receive a payment",
        "release" => "release, first payee",
        "release_second" => "release, second payee",
        "release_third" => "release, third payee",
        "deposit" => "deposit for the payee",
        "deploy_first" => "deploy with the deposit, the first",
        "deploy" => "deploy with the deposit (steady state)",
        other => other,
    }
}

/// This project's rows: a label and, per model (dynamic, fixed, time-limited, flexible), the operation.
const MODEL_ROWS: &[(&str, [&str; 4])] = &[
    ("open (sign / buyMinutes / reserve)", ["sign", "sign", "buyMinutes", "reserve"]),
    ("start (customer's request)", ["", "", "start", "start"]),
    ("activate", ["activate", "activate", "activate", "activate"]),
    ("stop", ["stop", "stop", "stop", "stop"]),
    ("settle", ["settle", "settle", "settle", "settle"]),
    ("close (unused minutes back)", ["", "", "close", ""]),
    ("provider withdraws", ["withdraw", "withdraw", "withdraw", "withdraw"]),
];

fn print_models(models: &[Contestant]) {
    let width = 36;
    println!("This project, gas per operation and model: measured / floor (steady state)");
    let mut out = format!("{:<width$}", "operation");
    for c in models {
        let _ = write!(out, " | {:>19}", c.title);
    }
    let rule = "-".repeat(out.chars().count());
    println!("{out}\n{rule}");
    let cell = |c: &Contestant, key: &str| match (c.get(key), c.floor(key)) {
        (Some(gas), Some(floor)) => format!("{} / {}", thousands(gas), thousands(floor)),
        (Some(gas), None) => thousands(gas),
        _ => "—".into(),
    };
    for (label, keys) in MODEL_ROWS {
        let mut line = format!("{label:<width$}");
        for (c, key) in models.iter().zip(keys) {
            let _ = write!(line, " | {:>19}", if key.is_empty() { "—".into() } else { cell(c, key) });
        }
        println!("{line}");
    }
    println!("{rule}");
    let mut line = format!("{:<width$}", "lifecycle total");
    for c in models {
        let _ = write!(line, " | {:>19}", cell(c, "lifecycle"));
    }
    println!("{line}\n");
    for c in models {
        println!("  {:<16} lifecycle = {}", c.title, c.lifecycle_ops.join(" + "));
    }
}

fn print_floors(models: &[Contestant]) {
    println!(
        "\nFloors: what each operation must write, send and log (slots from `forge inspect ConferenceEscrow storageLayout`):"
    );
    for c in models {
        for (op, floor) in &c.floors {
            println!("  {:<16} {:<10} {:>7} = {}", c.title, op, thousands(floor.gas), floor.detail);
        }
    }
}

/// The peers' table's rows: a label and, per column (this project's dynamic price, Sablier,
/// PaymentSplitter, OpenZeppelin Escrow, baseline), the operation shown there.
const ROWS: &[(&str, [&str; 5])] = &[
    ("open an agreement, the first ever", ["sign_first", "create_first", "", "", "deploy_first"]),
    ("open an agreement, steady state", ["sign", "create", "", "deposit", "deploy"]),
    ("pay in (PaymentSplitter: receive)", ["", "", "receive", "", ""]),
    ("activate", ["activate", "", "", "", "activate"]),
    ("stop", ["stop", "", "", "", "stop"]),
    ("settle, a provider's first earnings", ["settle_first", "", "", "", ""]),
    ("settle (Sablier: cancel mid-stream)", ["settle", "cancel", "", "", "settle"]),
    ("provider withdraws (release)", ["withdraw", "withdraw", "release", "withdraw", "withdraw"]),
    ("release, second payee", ["", "", "release_second", "", ""]),
    ("release, third payee", ["", "", "release_third", "", ""]),
];

fn print_table(contestants: &[&Contestant; 5]) {
    let width = 38;
    println!("Beside the peers (this project: the dynamic price)");
    let mut out = format!("{:<width$}", "operation");
    for c in contestants {
        let _ = write!(out, " | {:>15}", c.title);
    }
    let rule = "-".repeat(out.chars().count());
    println!("{out}\n{rule}");
    let cell = |v: Option<u64>| v.map(thousands).unwrap_or_else(|| "—".into());
    for (label, keys) in ROWS {
        let mut line = format!("{label:<width$}");
        for (c, key) in contestants.iter().zip(keys) {
            let _ = write!(line, " | {:>15}", cell((!key.is_empty()).then(|| c.get(key)).flatten()));
        }
        println!("{line}");
    }
    println!("{rule}");
    let mut line = format!("{:<width$}", "lifecycle total (steady state)");
    for c in contestants {
        let _ = write!(line, " | {:>15}", cell(c.get("lifecycle")));
    }
    println!("{line}");
    println!();
    for c in contestants {
        println!("  {:<16} {} = {}", c.title, c.contract, c.lifecycle_ops.join(" + "));
    }
    println!();
    for c in contestants.iter().filter(|c| !c.setup.is_empty()) {
        let steps: Vec<String> = c.setup.iter().map(|(k, v)| format!("{k} {}", thousands(*v))).collect();
        println!("  one-time setup, {}: {}", c.title, steps.join(", "));
    }
}

// --- figures (issue 7's shared format) -------------------------------------------------------------

const GROUP_OPS: &str = "Gas per operation";
const GROUP_LIFECYCLE: &str = "Gas per conference";
const GROUP_MONEY: &str = "Cost of a conference";
const GROUP_BATCH: &str = "Batched settlement";
const GROUP_SETUP: &str = "One-time setup";

/// One figure of `target/bench/gas.json`.
struct Figure {
    id: String,
    group: &'static str,
    label: String,
    unit: &'static str,
    samples: Vec<Value>,
    target: Value,
    floor: Option<u64>,
    note: Option<String>,
}

fn figure(id: String, group: &'static str, label: String, unit: &'static str, sample: impl Into<Value>) -> Figure {
    Figure { id, group, label, unit, samples: vec![sample.into()], target: Value::Null, floor: None, note: None }
}

impl Figure {
    fn max(mut self, max: impl Into<Value>) -> Self {
        self.target = json!({ "max": max.into() });
        self
    }

    fn floor(mut self, floor: Option<u64>) -> Self {
        self.floor = floor;
        self
    }

    fn note(mut self, note: String) -> Self {
        self.note = Some(note);
        self
    }

    fn to_json(&self) -> Value {
        let mut out = json!({
            "id": self.id,
            "group": self.group,
            "label": self.label,
            "unit": self.unit,
            "samples": self.samples,
            "target": self.target,
        });
        if let Some(floor) = self.floor {
            out["floor"] = floor.into();
        }
        if let Some(note) = &self.note {
            out["note"] = note.clone().into();
        }
        out
    }
}

/// The per-operation budgets of the dynamic price.
fn op_target(model: Model, op: &str) -> Option<u64> {
    match (model, op) {
        (Model::DynamicPrice, "sign") => Some(TARGET_SIGN),
        (Model::DynamicPrice, "activate") => Some(TARGET_ACTIVATE),
        (Model::DynamicPrice, "stop") => Some(TARGET_STOP),
        (Model::DynamicPrice, "settle") => Some(TARGET_SETTLE),
        _ => None,
    }
}

/// Every operation's gas and every lifecycle's total, this project's (with floors) then the peers'.
fn operation_figures(models: &[Contestant], peers: &[&Contestant]) -> Vec<Figure> {
    let mut figures = Vec::new();
    for (model, c) in MODELS.iter().zip(models) {
        for (op, gas) in &c.ops {
            let mut label = format!("this project, {}: {}", c.title, op_label(op));
            if *op == "withdraw" && !c.lifecycle_ops.contains(op) {
                label.push_str(" (not in this model's lifecycle)");
            }
            let mut f = figure(format!("gas.project.{}.{op}", c.key), GROUP_OPS, label, "gas", *gas).floor(c.floor(op));
            if let Some(max) = op_target(*model, op) {
                f = f.max(max);
            }
            if let Some(floor) = c.floors.get(op) {
                f = f.note(format!("floor = {}", floor.detail));
            }
            figures.push(f);
        }
        if let Some(total) = c.get("lifecycle") {
            let label = format!("this project, {}: {}", c.title, c.lifecycle_ops.join(" + "));
            figures.push(
                figure(format!("gas.project.{}.lifecycle", c.key), GROUP_LIFECYCLE, label, "gas", total)
                    .floor(c.floor("lifecycle"))
                    .note(format!("{}; floor = the sum of the operations' floors", c.contract)),
            );
        }
    }
    for c in peers {
        for (op, gas) in &c.ops {
            let label = format!("{}: {}", c.title, op_label(op));
            figures.push(figure(format!("gas.{}.{op}", c.key), GROUP_OPS, label, "gas", *gas));
        }
        if let Some(total) = c.get("lifecycle") {
            let ops: Vec<&str> = c.lifecycle_ops.iter().map(|op| op_label(op)).collect();
            let label = format!("{}: {}", c.title, ops.join(" + "));
            figures.push(
                figure(format!("gas.{}.lifecycle", c.key), GROUP_LIFECYCLE, label, "gas", total)
                    .note(c.contract.clone()),
            );
        }
    }
    figures
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// What a whole conference costs in each model: its gas at 1, 10 and 40 gwei, beside its price and
/// what a card payment of that price costs at the fees the paper cites.
fn money(models: &[Contestant], eth_usd: f64) -> Vec<Figure> {
    let mut figures = Vec::new();
    println!("\nCost of a whole conference (the lifecycle's gas; ETH at {eth_usd} USD, --eth-usd):");
    let mut header = format!("{:<16} | {:>9}", "model", "price");
    for g in GAS_PRICES_GWEI {
        let _ = write!(header, " | {:>8}", format!("{g} gwei"));
    }
    for (_, name, _, _) in CARD_FEES {
        let _ = write!(header, " | {:>15}", name);
    }
    println!("{header}\n{}", "-".repeat(header.chars().count()));
    let eth_note = format!("ETH at {eth_usd} USD (--eth-usd)");
    for (model, c) in MODELS.iter().zip(models) {
        let Some(gas) = c.get("lifecycle") else { continue };
        let price_eth = model.conference_price() as f64 / 1e18;
        let price_usd = price_eth * eth_usd;
        let mut line = format!("{:<16} | {:>9}", c.title, format!("${price_usd:.4}"));
        figures.push(
            figure(
                format!("gas.cost.{}.price", c.key),
                GROUP_MONEY,
                format!("this project, {}: the conference's price ({USED_SECONDS} s used)", c.title),
                "USD",
                round(price_usd, 6),
            )
            .note(format!("{} wei = {price_eth} ETH, the demo offer's price; {eth_note}", model.conference_price())),
        );
        for g in GAS_PRICES_GWEI {
            let eth = gas as f64 * g as f64 * 1e-9;
            let usd = eth * eth_usd;
            let _ = write!(line, " | {:>8}", format!("${usd:.4}"));
            figures.push(
                figure(
                    format!("gas.cost.{}.{g}gwei", c.key),
                    GROUP_MONEY,
                    format!("this project, {}: gas of a whole conference at {g} gwei", c.title),
                    "USD",
                    round(usd, 6),
                )
                .note(format!(
                    "{} gas ({}) × {g} gwei = {eth:.6} ETH; {eth_note}",
                    thousands(gas),
                    c.lifecycle_ops.join(" + ")
                )),
            );
        }
        for (id, name, low, high) in CARD_FEES {
            let (low_usd, high_usd) = (price_usd * low / 100.0, price_usd * high / 100.0);
            let _ = write!(line, " | {:>15}", format!("${low_usd:.4}–{high_usd:.4}"));
            for (end, pct, usd) in [("low", low, low_usd), ("high", high, high_usd)] {
                figures.push(
                    figure(
                        format!("gas.cost.{}.card.{id}.{end}", c.key),
                        GROUP_MONEY,
                        format!("{name} fee on the same price ({}), {pct} %", c.title),
                        "USD",
                        round(usd, 6),
                    )
                    .note(format!(
                        "{pct} % of ${price_usd:.4} ({price_eth} ETH), the {end} end of the fees the paper cites ({name} {low}–{high} %); {eth_note}"
                    )),
                );
            }
        }
        println!("{line}");
    }
    figures
}

/// Settlement per agreement at 1, 10 and 50 per transaction: the escrow settles one agreement per
/// transaction, so only 1 is measured, and the note says what bounds it and what would change it.
fn batching(dynamic: &Contestant) -> Result<Vec<Figure>> {
    let settle = dynamic.get("settle").context("the dynamic price has no settle")?;
    let floor = dynamic.floors.get("settle").context("the dynamic price's settle has no floor")?;
    let selector =
        dynamic.calldata.get("settle").map_or(0, |d| d.iter().take(4).map(|b| if *b == 0 { 4 } else { 16 }).sum());
    // In a batch the 21,000 and the selector are paid once, and the provider's earnings slot is written
    // cold once, then warm (100) for each further agreement.
    let batched = floor.gas - 21_000 - selector - Write::Changed.gas() + 100;
    let gap = settle.saturating_sub(TARGET_BATCH_SETTLE);
    let note = format!(
        "ConferenceEscrow offers no batch settlement (one settle(agreementId, availabilityBps) per transaction), so \
         10 and 50 per transaction are absent, not measured. The target (≤ {} gas per agreement at 50 per \
         transaction) is missed by {} gas at the only batch size there is. What bounds it: the settlement's \
         floor of {} gas ({}). What would change it: a settleMany that pays the 21,000 intrinsic gas once and \
         finds the role, the terms and the provider's earnings slot warm after the first agreement; its floor \
         per agreement would be about {} gas (the agreement's status, the refund to its customer, its log and \
         its calldata).",
        thousands(TARGET_BATCH_SETTLE),
        thousands(gap),
        thousands(floor.gas),
        floor.detail,
        thousands(batched)
    );
    println!(
        "\nBatched settlement: none in the escrow; 1 per transaction: {} gas (floor {}).",
        thousands(settle),
        thousands(floor.gas)
    );
    println!("  10 and 50 per transaction: absent. {note}");
    Ok(vec![
        figure(
            "gas.batch.settle_per_agreement.1".into(),
            GROUP_BATCH,
            "settle per agreement, 1 per transaction (dynamic price; 10 and 50: no batch settlement)".into(),
            "gas",
            settle,
        )
        .max(TARGET_BATCH_SETTLE)
        .floor(Some(floor.gas))
        .note(note),
    ])
}

/// The comparisons as ratios measured in this run, and the PASS/MISS lines of every target.
fn targets(dynamic: &Contestant, sablier: &Contestant, baseline: &Contestant) -> Result<Vec<Figure>> {
    let get = |c: &Contestant, key: &str| c.get(key).with_context(|| format!("{} has no {key}", c.title));
    let lifecycle = get(dynamic, "lifecycle")?;
    let sablier_total = get(sablier, "lifecycle")?;
    let baseline_total = get(baseline, "lifecycle")?;
    let vs_baseline = round(lifecycle as f64 / baseline_total as f64, 4);
    let vs_sablier = round(lifecycle as f64 / sablier_total as f64, 4);
    println!("\nTargets (this project, dynamic price):");
    let lines = [
        ("sign (steady state) <= 75,000", get(dynamic, "sign")?, TARGET_SIGN, true),
        ("activate <= 35,000", get(dynamic, "activate")?, TARGET_ACTIVATE, true),
        ("stop <= 35,000", get(dynamic, "stop")?, TARGET_STOP, true),
        ("settle <= 60,000", get(dynamic, "settle")?, TARGET_SETTLE, true),
        (
            "settle per agreement at 50 per tx <= 25,000 (no batch: 1)",
            get(dynamic, "settle")?,
            TARGET_BATCH_SETTLE,
            true,
        ),
        ("lifecycle < Sablier create + cancel + withdraw", lifecycle, sablier_total, false),
        ("lifecycle <= 1/3 of the per-agreement baseline", lifecycle, baseline_total / 3, true),
    ];
    for (name, value, limit, inclusive) in lines {
        let pass = if inclusive { value <= limit } else { value < limit };
        println!(
            "  {:<4} {name:<58} {:>9} vs {:>9}",
            if pass { "PASS" } else { "MISS" },
            thousands(value),
            thousands(limit)
        );
    }
    Ok(vec![
        figure(
            "gas.ratio.lifecycle_vs_baseline".into(),
            GROUP_LIFECYCLE,
            "this project's dynamic-price lifecycle ÷ the per-agreement baseline's".into(),
            "ratio",
            vs_baseline,
        )
        .max(TARGET_BASELINE_RATIO)
        .note(format!(
            "{} ÷ {} gas, both measured in this run",
            thousands(lifecycle),
            thousands(baseline_total)
        )),
        figure(
            "gas.ratio.lifecycle_vs_sablier".into(),
            GROUP_LIFECYCLE,
            "this project's dynamic-price lifecycle ÷ Sablier's create + cancel + withdraw".into(),
            "ratio",
            vs_sablier,
        )
        .max(1.0)
        .note(format!(
            "{} ÷ {} gas, both measured in this run; the target is below 1 (strictly)",
            thousands(lifecycle),
            thousands(sablier_total)
        )),
    ])
}

/// The one-time deployments and offers, so that the steady-state figures do not hide them.
fn setup_figures(models: &[Contestant], peers: &[&Contestant]) -> Vec<Figure> {
    let owners =
        models.iter().map(|c| (format!("project.{}", c.key), c)).chain(peers.iter().map(|c| (c.key.to_owned(), *c)));
    let mut figures = Vec::new();
    for (key, c) in owners {
        for (step, gas) in &c.setup {
            let slug: String = step
                .split(|ch: char| !ch.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join("_");
            figures.push(figure(
                format!("gas.setup.{key}.{slug}"),
                GROUP_SETUP,
                format!("{}: {step}", c.title),
                "gas",
                *gas,
            ));
        }
    }
    figures
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

fn package_version(dir: &Path) -> Result<String> {
    let path = dir.join("package.json");
    let text =
        fs::read_to_string(&path).with_context(|| format!("{} is missing: run `make bench-gas`", path.display()))?;
    let manifest: Value = serde_json::from_str(&text)?;
    manifest["version"].as_str().map(str::to_owned).context("package.json without a version")
}

// ===================================================================================================
// Chain: anvil, accounts, artifacts, transactions through the dynamic ABI
// ===================================================================================================

struct Chain {
    root: PathBuf,
    url: String,
    accounts: Vec<Account>,
    /// Things worth saying once (defaulted arguments, oversized code), printed at the end.
    notes: Mutex<BTreeSet<String>>,
    _anvil: AnvilInstance,
}

#[derive(Clone)]
struct Account {
    address: Address,
    rpc: DynProvider,
}

impl Chain {
    fn start(root: &Path) -> Result<Self> {
        let bin = root.join(ANVIL);
        ensure!(bin.exists(), "{} is missing: run `make tools`", bin.display());
        let anvil = Anvil::at(&bin)
            .arg("--disable-code-size-limit")
            .try_spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let url = anvil.endpoint();
        let accounts = anvil
            .keys()
            .iter()
            .map(|key| {
                let signer = PrivateKeySigner::from(key.clone());
                let rpc = ProviderBuilder::new().wallet(signer.clone()).connect_http(url.parse()?).erased();
                Ok(Account { address: signer.address(), rpc })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { root: root.to_path_buf(), url, accounts, notes: Mutex::new(BTreeSet::new()), _anvil: anvil })
    }

    /// anvil's dev account `i`: 0 admin, 1 customer, 2 provider, 3 provider payout, 9 operator.
    fn account(&self, i: usize) -> Account {
        self.accounts[i].clone()
    }

    fn note(&self, note: String) {
        if let Ok(mut notes) = self.notes.lock() {
            notes.insert(note);
        }
    }

    /// A forge artifact: `<out>/<name>.sol/<name>.json`.
    fn artifact(&self, out: &str, name: &str) -> Result<Artifact> {
        Artifact::load(&self.root.join(out).join(format!("{name}.sol")).join(format!("{name}.json")))
    }

    /// Moves chain time on and mines a block.
    async fn advance(&self, seconds: u64) -> Result<()> {
        let rpc = &self.accounts[0].rpc;
        rpc.raw_request::<_, Value>("evm_increaseTime".into(), (seconds,)).await?;
        rpc.raw_request::<_, Value>("evm_mine".into(), ()).await?;
        Ok(())
    }

    /// The latest block's timestamp.
    async fn latest_timestamp(&self) -> Result<u64> {
        let block: Value = self.accounts[0].rpc.raw_request("eth_getBlockByNumber".into(), ("latest", false)).await?;
        let hex = block["timestamp"].as_str().context("a block without a timestamp")?;
        u64::from_str_radix(hex.trim_start_matches("0x"), 16).context("the block's timestamp")
    }

    /// Deploys with named constructor arguments and the given libraries linked; returns the contract
    /// and the deployment's gas.
    async fn deploy(
        &self,
        art: &Artifact,
        from: &Account,
        args: &[(&str, String)],
        libraries: &[(&str, Address)],
        value: U256,
    ) -> Result<(Deployed<'_>, u64)> {
        let mut code = art.linked(libraries)?;
        let values = match art.abi.constructor() {
            Some(ctor) => encode_args(self, &ctor.inputs, &format!("{} constructor", art.name), args)?,
            None => {
                ensure!(args.is_empty(), "{} has no constructor arguments", art.name);
                Vec::new()
            }
        };
        if let Some(ctor) = art.abi.constructor() {
            code.extend(ctor.abi_encode_input(&values)?);
        }
        if art.runtime_size > CODE_SIZE_LIMIT {
            self.note(format!(
                "{}'s runtime code is {} bytes, over the EIP-170 limit of {CODE_SIZE_LIMIT}: it could not be deployed on mainnet (anvil runs here without the limit)",
                art.name, art.runtime_size
            ));
        }
        let tx =
            TransactionRequest::default().with_from(from.address).with_deploy_code(Bytes::from(code)).with_value(value);
        let label = format!("deploying {}", art.name);
        let pending = match from.rpc.send_transaction(tx).await {
            Ok(pending) => pending,
            Err(err) => bail!(
                "{label} failed: {}",
                explain(&art.abi, err.as_error_resp().and_then(|e| e.as_revert_data()), &err)
            ),
        };
        let receipt = pending.get_receipt().await?;
        check(&receipt, &label)?;
        let address =
            receipt.contract_address.with_context(|| format!("{label}: no contract address in the receipt"))?;
        let deployed =
            Deployed { name: art.name.clone(), address, interface: Interface::new(art.abi.clone()), chain: self };
        Ok((deployed, receipt.gas_used))
    }

    /// A contract already on chain (deployed by another contract).
    fn at(&self, art: &Artifact, address: Address) -> Deployed<'_> {
        Deployed { name: art.name.clone(), address, interface: Interface::new(art.abi.clone()), chain: self }
    }

    /// A plain ETH transfer (a contract's `receive`); returns its gas.
    async fn transfer(&self, from: &Account, to: Address, value: U256) -> Result<u64> {
        let tx = TransactionRequest::default().with_from(from.address).with_to(to).with_value(value);
        let receipt = from.rpc.send_transaction(tx).await?.get_receipt().await?;
        check(&receipt, &format!("transfer to {to}"))?;
        Ok(receipt.gas_used)
    }
}

struct Artifact {
    name: String,
    abi: JsonAbi,
    /// Creation code as hex, with `__$…$__` placeholders where libraries go.
    bytecode: String,
    /// (library name, byte offset) of every placeholder.
    links: Vec<(String, usize)>,
    runtime_size: usize,
}

impl Artifact {
    fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).with_context(|| {
            format!(
                "{} is missing: run `make bench-gas` (it builds both forge projects and installs the peers)",
                path.display()
            )
        })?;
        let json: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
        let abi: JsonAbi =
            serde_json::from_value(json["abi"].clone()).with_context(|| format!("the ABI in {}", path.display()))?;
        let bytecode =
            json["bytecode"]["object"].as_str().with_context(|| format!("no bytecode in {}", path.display()))?;
        let bytecode = bytecode.trim_start_matches("0x").to_owned();
        ensure!(!bytecode.is_empty(), "{} has empty bytecode (an interface or abstract contract?)", path.display());
        let mut links = Vec::new();
        if let Some(files) = json["bytecode"]["linkReferences"].as_object() {
            for libraries in files.values() {
                for (library, refs) in libraries.as_object().into_iter().flatten() {
                    for r in refs.as_array().into_iter().flatten() {
                        links.push((
                            library.clone(),
                            r["start"].as_u64().context("link reference without start")? as usize,
                        ));
                    }
                }
            }
        }
        let runtime = json["deployedBytecode"]["object"].as_str().unwrap_or_default().trim_start_matches("0x");
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?").to_owned();
        Ok(Self { name, abi, bytecode, links, runtime_size: runtime.len() / 2 })
    }

    /// The creation code with each library's address written over its placeholders.
    fn linked(&self, libraries: &[(&str, Address)]) -> Result<Vec<u8>> {
        let mut code = self.bytecode.clone();
        for (library, start) in &self.links {
            let address = libraries
                .iter()
                .find(|(name, _)| name == library)
                .map(|(_, a)| *a)
                .with_context(|| format!("{} needs library {library} linked", self.name))?;
            code.replace_range(start * 2..start * 2 + 40, &hex::encode(address));
        }
        hex::decode(&code).with_context(|| format!("{}'s bytecode has unlinked placeholders", self.name))
    }
}

/// A deployed contract, callable from any account.
struct Deployed<'c> {
    name: String,
    address: Address,
    interface: Interface,
    chain: &'c Chain,
}

/// What a transaction returned (as a call just before it) and its gas.
struct Sent {
    gas: u64,
    output: Vec<DynSolValue>,
    /// The transaction's input, for the floor's calldata cost.
    calldata: Bytes,
}

impl Sent {
    /// The first return value, a uint (an id).
    fn id(&self) -> Result<U256> {
        first_uint(&self.output).context("the first return value")
    }
}

impl Deployed<'_> {
    fn has(&self, function_name: &str) -> bool {
        self.interface.abi().function(function_name).is_some()
    }

    fn clone_at(&self, address: Address) -> Self {
        Deployed { name: self.name.clone(), address, interface: self.interface.clone(), chain: self.chain }
    }

    fn instance(&self, from: &Account) -> ContractInstance<DynProvider> {
        ContractInstance::new(self.address, from.rpc.clone(), self.interface.clone())
    }

    /// Sends `function` (a name, or a full signature for an overloaded one) with named arguments from
    /// `from`, after an `eth_call` of the same that yields the return values (and a revert's reason).
    async fn send(&self, from: &Account, function_name: &str, args: &[(&str, String)], value: U256) -> Result<Sent> {
        let abi = self.interface.abi();
        let f = function(abi, function_name)?;
        let label = format!("{}.{}", self.name, f.name);
        let values = encode_args(self.chain, &f.inputs, &label, args)?;
        let instance = self.instance(from);
        let call = instance.function_from_selector(&f.selector(), &values)?.from(from.address).value(value);
        let output = match call.call().await {
            Ok(output) => output,
            Err(err) => bail!("{label} would revert: {}", explain(abi, err.as_revert_data(), &err)),
        };
        let receipt = call.send().await.with_context(|| format!("sending {label}"))?.get_receipt().await?;
        check(&receipt, &label)?;
        Ok(Sent { gas: receipt.gas_used, output, calldata: call.calldata().clone() })
    }

    /// A view call with named arguments.
    async fn view(&self, function_name: &str, args: &[(&str, String)]) -> Result<Vec<DynSolValue>> {
        let abi = self.interface.abi();
        let f = function(abi, function_name)?;
        let label = format!("{}.{}", self.name, f.name);
        let values = encode_args(self.chain, &f.inputs, &label, args)?;
        let instance = self.instance(&self.chain.accounts[0]);
        let call = instance.function_from_selector(&f.selector(), &values)?;
        match call.call().await {
            Ok(output) => Ok(output),
            Err(err) => bail!("{label} reverted: {}", explain(abi, err.as_revert_data(), &err)),
        }
    }
}

/// The charge (or streamed amount) for the conference: `per_second` × the seconds used, which are
/// USED_SECONDS plus the second or two the chain's clock may add between blocks.
fn check_paid(what: &str, amount: U256, per_second: u128) -> Result<()> {
    let (low, high) =
        (U256::from(per_second) * U256::from(USED_SECONDS), U256::from(per_second) * U256::from(USED_SECONDS + 5));
    ensure!(low <= amount && amount <= high, "{what} is {amount}, expected {USED_SECONDS} s × {per_second} (to 5 s)");
    Ok(())
}

fn first_uint(values: &[DynSolValue]) -> Result<U256> {
    values.first().and_then(DynSolValue::as_uint).map(|(v, _)| v).context("expected a uint")
}

fn check(receipt: &TransactionReceipt, label: &str) -> Result<()> {
    ensure!(receipt.status(), "{label} reverted (tx {}, gas {})", receipt.transaction_hash, receipt.gas_used);
    Ok(())
}

/// A function by name, or by full signature (`release(address)`) when the name is overloaded.
fn function<'a>(abi: &'a JsonAbi, name: &str) -> Result<&'a Function> {
    if name.contains('(') {
        return abi
            .functions()
            .find(|f| f.signature() == name)
            .with_context(|| format!("no function {name} in the ABI"));
    }
    match abi.function(name).map(Vec::as_slice) {
        Some([f]) => Ok(f),
        Some(_) => bail!("{name} is overloaded: give its full signature"),
        None => bail!("no function {name} in the ABI (has the contract's interface changed?)"),
    }
}

/// The reason of a revert: a custom error of the ABI with its values, Error(string), Panic, or the raw data.
fn explain(abi: &JsonAbi, data: Option<Bytes>, err: &dyn std::fmt::Display) -> String {
    let Some(data) = data else {
        return err.to_string();
    };
    if data.len() >= 4
        && let Some(error) = abi.errors().find(|e| e.selector().as_slice() == &data[..4])
        && let Ok(values) = error.abi_decode_input(&data[4..])
    {
        return format!("{}({values:?})", error.name);
    }
    alloy::sol_types::decode_revert_reason(&data).unwrap_or_else(|| format!("revert data {data}"))
}

// --- named arguments ---------------------------------------------------------------------------------

/// Named arguments: values as text (numbers in decimal, addresses in hex, `true`, `[1,2]`), parsed
/// against each parameter's type.
fn args<V: ToString>(pairs: &[(&'static str, V)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

trait With {
    fn with(self, key: &'static str, value: impl ToString) -> Self;
}

impl With for Vec<(&'static str, String)> {
    fn with(mut self, key: &'static str, value: impl ToString) -> Self {
        self.push((key, value.to_string()));
        self
    }
}

/// Builds the positional values of `inputs` from named arguments. A struct parameter is built from its
/// fields (`params.sender`, or `sender` when unambiguous) unless given whole. A name the function does not
/// have is an error; a parameter not given is zero and noted.
fn encode_args(chain: &Chain, params: &[Param], label: &str, args: &[(&str, String)]) -> Result<Vec<DynSolValue>> {
    let mut used = BTreeSet::new();
    let mut defaulted = Vec::new();
    let values = params
        .iter()
        .map(|p| arg_value(p, "", args, &mut used, &mut defaulted))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("arguments of {label}"))?;
    for (key, _) in args {
        ensure!(used.contains(key), "{label} has no parameter {key} (has the contract's interface changed?)");
    }
    if !defaulted.is_empty() {
        chain.note(format!("{label}: not given, so zero: {}", defaulted.join(", ")));
    }
    Ok(values)
}

fn arg_value<'a>(
    param: &Param,
    prefix: &str,
    args: &'a [(&str, String)],
    used: &mut BTreeSet<&'a str>,
    defaulted: &mut Vec<String>,
) -> Result<DynSolValue> {
    let path = if prefix.is_empty() { param.name.clone() } else { format!("{prefix}.{}", param.name) };
    let ty: DynSolType = param.resolve().with_context(|| format!("type of {path}"))?;
    let given = args
        .iter()
        .find(|(k, _)| *k == path)
        .or_else(|| args.iter().find(|(k, _)| !param.name.is_empty() && *k == param.name));
    if let Some((key, text)) = given {
        used.insert(key);
        return ty.coerce_str(text).with_context(|| format!("{path} = {text:?} is not a {ty}"));
    }
    if param.ty == "tuple" {
        let fields =
            param.components.iter().map(|c| arg_value(c, &path, args, used, defaulted)).collect::<Result<Vec<_>>>()?;
        return Ok(DynSolValue::Tuple(fields));
    }
    defaulted.push(if path.is_empty() { format!("<unnamed {ty}>") } else { path });
    zero(&ty)
}

fn zero(ty: &DynSolType) -> Result<DynSolValue> {
    Ok(match ty {
        DynSolType::Bool => DynSolValue::Bool(false),
        DynSolType::Int(bits) => DynSolValue::Int(I256::ZERO, *bits),
        DynSolType::Uint(bits) => DynSolValue::Uint(U256::ZERO, *bits),
        DynSolType::FixedBytes(size) => DynSolValue::FixedBytes(B256::ZERO, *size),
        DynSolType::Address => DynSolValue::Address(Address::ZERO),
        DynSolType::Bytes => DynSolValue::Bytes(Vec::new()),
        DynSolType::String => DynSolValue::String(String::new()),
        DynSolType::Array(_) => DynSolValue::Array(Vec::new()),
        DynSolType::FixedArray(inner, n) => {
            DynSolValue::FixedArray((0..*n).map(|_| zero(inner)).collect::<Result<_>>()?)
        }
        DynSolType::Tuple(items) => DynSolValue::Tuple(items.iter().map(zero).collect::<Result<_>>()?),
        other => bail!("no zero value for {other}"),
    })
}
