//! `make bench-gas`: the gas this project's escrow costs per agreement, beside reference peers, all
//! measured in one run on one fresh anvil from the transaction receipts (`gasUsed`, so the 21,000 base
//! and the calldata are included, as in published figures).
//!
//! Contestants (the same conference for each: 1e12 wei per second, at most an hour, 600 s used, fully
//! available):
//! - this project: `ConferenceEscrow` + `ProviderRegistry`, a DynamicPrice offer with one provider;
//! - Sablier Lockup 4.0.1, a linear stream of a mock ERC-20 (its published artifacts, deployed as
//!   they are, with its comptroller behind its proxy and no fee);
//! - OpenZeppelin 4.9's PaymentSplitter, three payees;
//! - the per-agreement baseline (`contracts/bench/src/PerAgreementEscrow.sol`): one contract per agreement.
//!
//! ABIs and bytecode are read at run time from the forge output (`contracts/out`, `contracts/bench/out`)
//! and the npm package, and called through alloy's dynamic ABI, so building this crate never needs forge.
//! Arguments are given by parameter name; one the contract does not have is an error, one the contract
//! has and the benchmark does not give is zero (and said so in the notes), so a changed signature shows.
//! Prints a table and PASS/MISS per target, writes `target/bench/gas.json`. A MISS does not fail the
//! run; a reverted transaction (or any other error) does.

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
use serde_json::{Value, json};

// --- the conference every contestant pays for ------------------------------------------------------

const PRICE_PER_SECOND: u128 = 1_000_000_000_000;
const MAX_DURATION: u64 = 3600;
const USED_SECONDS: u64 = 600;
const AVAILABILITY_BPS: u64 = 10_000;

// --- where things are (relative to the repository root) --------------------------------------------

const ANVIL: &str = "anvil/node_modules/.bin/anvil";
const PROJECT_OUT: &str = "contracts/out";
const BENCH_OUT: &str = "contracts/bench/out";
const SABLIER: &str = "contracts/bench/node_modules/@sablier/lockup";
const SABLIER_UTILS: &str = "contracts/bench/node_modules/@sablier/evm-utils";
const REPORT: &str = "target/bench/gas.json";

/// EIP-170: the largest contract code mainnet accepts. anvil runs without the limit so that an
/// oversized contract is still measured; the report flags it.
const CODE_SIZE_LIMIT: usize = 24_576;

// --- targets for this project ----------------------------------------------------------------------

const TARGET_SIGN: u64 = 75_000;
const TARGET_ACTIVATE: u64 = 35_000;
const TARGET_STOP: u64 = 35_000;
const TARGET_SETTLE: u64 = 60_000;

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("\nGAS BENCHMARK FAILED: {err:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("tests/ has a parent")?.to_path_buf();
    let chain = Chain::start(&root)?;
    let node: Value = chain.accounts[0].rpc.raw_request("anvil_nodeInfo".into(), ()).await.unwrap_or_default();
    let hardfork = node["hardFork"].as_str().unwrap_or("unknown").to_owned();
    println!(
        "Gas benchmark on a fresh anvil ({}, hardfork {hardfork}): every figure is a receipt's gasUsed.\n",
        chain.url
    );

    let project = this_project(&chain).await.context("this project")?;
    let sablier = sablier(&chain).await.context("Sablier Lockup")?;
    let splitter = payment_splitter(&chain).await.context("PaymentSplitter")?;
    let baseline = baseline(&chain).await.context("per-agreement baseline")?;
    let contestants = [&project, &sablier, &splitter, &baseline];

    print_table(&contestants);
    let targets = check_targets(&project, &sablier, &baseline)?;
    let notes = chain.notes.lock().map_err(|_| anyhow!("notes lock poisoned"))?.clone();
    if !notes.is_empty() {
        println!("\nNotes:");
        for note in &notes {
            println!("  - {note}");
        }
    }

    let report = json!({
        "generatedBy": "make bench-gas (tests/src/bin/gas-bench.rs)",
        "unit": "gas (receipt gasUsed)",
        "chain": { "node": "anvil", "hardfork": hardfork },
        "conference": {
            "pricePerSecond": PRICE_PER_SECOND.to_string(),
            "maxDuration": MAX_DURATION,
            "usedSeconds": USED_SECONDS,
            "availabilityBps": AVAILABILITY_BPS,
        },
        "contestants": contestants.iter().map(|c| (c.key.to_owned(), c.to_json())).collect::<serde_json::Map<_, _>>(),
        "targets": targets,
        "notes": notes,
    });
    let path = root.join(REPORT);
    fs::create_dir_all(path.parent().context("report path has a parent")?)?;
    fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("\nWrote {}", path.display());
    Ok(())
}

// ===================================================================================================
// THIS PROJECT. The only part that knows the escrow's API: when the contract changes, edit here.
// ===================================================================================================

async fn this_project(chain: &Chain) -> Result<Contestant> {
    let mut c =
        Contestant::new("project", "this project", "ConferenceEscrow + ProviderRegistry (DynamicPrice, one provider)");
    let (admin, customer, provider, payout, operator) =
        (chain.account(0), chain.account(1), chain.account(2), chain.account(3), chain.account(9));

    // One-time setup: the contracts, the provider, an open DynamicPrice offer priced in ETH.
    let registry_art = chain.artifact(PROJECT_OUT, "ProviderRegistry")?;
    let (registry, gas) = chain.deploy(&registry_art, &admin, &[], &[], U256::ZERO).await?;
    c.setup("deploy ProviderRegistry", gas);
    let escrow_art = chain.artifact(PROJECT_OUT, "ConferenceEscrow")?;
    let windows = [("activationWindow", "600"), ("settlementWindow", "86400"), ("votingPeriod", "259200")];
    let mut ctor = args(&[("admin", admin.address), ("operator", operator.address), ("registry", registry.address)]);
    ctor.extend(windows.iter().map(|(k, v)| (*k, v.to_string())));
    let (escrow, gas) = chain.deploy(&escrow_art, &admin, &ctor, &[], U256::ZERO).await?;
    c.setup("deploy ConferenceEscrow (+ its OfferBook)", gas);
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
    c.setup("register provider", sent.gas);
    let provider_id = sent.id()?;

    let offer = [
        ("model", "1".to_string()), // DynamicPrice
        ("tokenId", "0".into()),
        ("maxDuration", MAX_DURATION.to_string()),
        ("margin", "0".into()),
        ("minimumCharge", "0".into()),
        ("gdprSurchargeBps", "0".into()),
        ("regionSurchargeBps", "0".into()),
        ("providerIds", format!("[{provider_id}]")),
    ];
    let sent = book.send(&admin, "createOffer", &offer, U256::ZERO).await?;
    c.setup("createOffer", sent.gas);
    let offer_id = sent.id()?;
    let sent = book
        .send(
            &provider,
            "setComponent",
            &[("offerId", offer_id.to_string()), ("component", PRICE_PER_SECOND.to_string())],
            U256::ZERO,
        )
        .await?;
    c.setup("setComponent", sent.gas);
    let sent = book.send(&admin, "openOffer", &[("offerId", offer_id.to_string())], U256::ZERO).await?;
    c.setup("openOffer", sent.gas);
    let terms_id = sent.id()?;

    // The customer's deposit for the whole maximum duration, as the contract quotes it.
    let sign = [("termsId", terms_id.to_string()), ("allowedRegions", "0".into()), ("gdpr", "false".into())];
    let quote = escrow
        .view(
            "quote",
            &[
                ("termsId", terms_id.to_string()),
                ("allowedRegions", "0".into()),
                ("gdpr", "false".into()),
                ("quantity", "0".into()),
            ],
        )
        .await?;
    let deposit = first_uint(&quote).context("quote's deposit")?;
    ensure!(
        deposit == U256::from(PRICE_PER_SECOND) * U256::from(MAX_DURATION),
        "quoted deposit {deposit} is not price × max duration"
    );

    // The first agreement the escrow sees, run to its settlement: the provider's first earnings; then
    // the one measured, the second, whose settlement adds to earnings not withdrawn yet (the steady
    // state of a provider who withdraws now and then, not after every conference).
    let mut agreement = async |sign_key: &'static str, settle_key: &'static str| -> Result<()> {
        let sent = escrow.send(&customer, "sign", &sign, deposit).await?;
        c.op(sign_key, sent.gas);
        let id = sent.id()?.to_string();
        let activate = [("agreementId", id.clone()), ("region", "0".into())];
        c.op("activate", escrow.send(&operator, "activate", &activate, U256::ZERO).await?.gas);
        chain.advance(USED_SECONDS).await?;
        c.op("stop", escrow.send(&customer, "stop", &[("agreementId", id.clone())], U256::ZERO).await?.gas);
        let settle = [("agreementId", id), ("availabilityBps", AVAILABILITY_BPS.to_string())];
        c.op(settle_key, escrow.send(&operator, "settle", &settle, U256::ZERO).await?.gas);
        Ok(())
    };
    agreement("sign_first", "settle_first").await?;
    agreement("sign", "settle").await?;
    let earnings =
        escrow.view("earningsOf", &[("providerId", provider_id.to_string()), ("tokenId", "0".into())]).await?;
    check_paid("this project: the provider's earnings", first_uint(&earnings)?, 2 * PRICE_PER_SECOND)?;
    let withdraw = [("providerId", provider_id.to_string()), ("tokenId", "0".into())];
    c.op("withdraw", escrow.send(&provider, "withdrawEarnings", &withdraw, U256::ZERO).await?.gas);

    c.lifecycle(&["sign", "activate", "stop", "settle", "withdraw"]);
    Ok(c)
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
    // One splitter serves every payment to the same payees, so a payment's own cost is receive + release.
    c.lifecycle(&["receive", "release"]);
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

/// One column of the table: the gas of each operation, and the one-time setup apart.
struct Contestant {
    key: &'static str,
    title: &'static str,
    contract: String,
    setup: Vec<(String, u64)>,
    ops: BTreeMap<&'static str, u64>,
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
            lifecycle_ops: Vec::new(),
        }
    }

    fn setup(&mut self, what: &str, gas: u64) {
        self.setup.push((what.to_owned(), gas));
    }

    fn op(&mut self, key: &'static str, gas: u64) {
        self.ops.insert(key, gas);
    }

    fn lifecycle(&mut self, ops: &[&'static str]) {
        self.lifecycle_ops = ops.to_vec();
    }

    fn get(&self, key: &str) -> Option<u64> {
        if key == "lifecycle" {
            return Some(self.lifecycle_ops.iter().map(|k| self.ops[k]).sum());
        }
        self.ops.get(key).copied()
    }

    fn to_json(&self) -> Value {
        json!({
            "contract": self.contract,
            "ops": self.ops,
            "lifecycle": { "ops": self.lifecycle_ops, "total": self.get("lifecycle") },
            "setup": self.setup.iter().map(|(k, v)| json!({ "step": k, "gas": v })).collect::<Vec<_>>(),
        })
    }
}

/// The table's rows: a label and, per column (this project, Sablier, PaymentSplitter, baseline), the
/// operation shown there.
const ROWS: &[(&str, [&str; 4])] = &[
    ("open an agreement, the first ever", ["sign_first", "create_first", "", "deploy_first"]),
    ("open an agreement, steady state", ["sign", "create", "", "deploy"]),
    ("pay in (PaymentSplitter: receive)", ["", "", "receive", ""]),
    ("activate", ["activate", "", "", "activate"]),
    ("stop", ["stop", "", "", "stop"]),
    ("settle, a provider's first earnings", ["settle_first", "", "", ""]),
    ("settle (Sablier: cancel mid-stream)", ["settle", "cancel", "", "settle"]),
    ("provider withdraws (release)", ["withdraw", "withdraw", "release", "withdraw"]),
    ("release, second payee", ["", "", "release_second", ""]),
];

fn print_table(contestants: &[&Contestant; 4]) {
    let width = 38;
    let mut out = String::new();
    let _ = write!(out, "{:<width$}", "operation");
    for c in contestants {
        let _ = write!(out, " | {:>15}", c.title);
    }
    let rule = "-".repeat(out.len());
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

fn check_targets(project: &Contestant, sablier: &Contestant, baseline: &Contestant) -> Result<Vec<Value>> {
    let get = |c: &Contestant, key: &str| c.get(key).with_context(|| format!("{} has no {key}", c.title));
    let lifecycle = get(project, "lifecycle")?;
    let sablier_total = get(sablier, "lifecycle")?;
    let baseline_total = get(baseline, "lifecycle")?;
    let targets = [
        ("sign (steady state) <= 75,000", get(project, "sign")?, TARGET_SIGN, true),
        ("activate <= 35,000", get(project, "activate")?, TARGET_ACTIVATE, true),
        ("stop <= 35,000", get(project, "stop")?, TARGET_STOP, true),
        ("settle <= 60,000", get(project, "settle")?, TARGET_SETTLE, true),
        ("lifecycle < Sablier create + cancel + withdraw", lifecycle, sablier_total, false),
        ("lifecycle <= 1/3 of the per-agreement baseline", lifecycle, baseline_total / 3, true),
    ];
    println!("\nTargets (this project):");
    let mut report = Vec::new();
    for (name, value, limit, inclusive) in targets {
        let pass = if inclusive { value <= limit } else { value < limit };
        println!(
            "  {:<4} {name:<50} {:>9} vs {:>9}",
            if pass { "PASS" } else { "MISS" },
            thousands(value),
            thousands(limit)
        );
        report.push(json!({ "target": name, "value": value, "limit": limit, "pass": pass }));
    }
    Ok(report)
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
        Ok(Sent { gas: receipt.gas_used, output })
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
