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
//! And the account path (issue 19): per model, conferences opened from one deposit by the customer's signed
//! orders, the operator's three batches (open, activate, stop and settle) at 1, 10 and 50 conferences a
//! batch, the gas per conference; and what a conference costs in money on Ethereum and on an OP Stack
//! rollup, beside a card payment of its price.
//!
//! And what an independent monitor's signed report adds to a settlement: on the same escrow, a dynamic-price
//! offer of two providers whose second is its monitor (each conference settled with the monitor's report,
//! signed with its anvil dev key), beside the same offer with a ConferenceSoftware provider second (settled
//! by the operator's figure, no report); each side's second conference is measured, the target is a
//! difference of at most 10,000 gas (issue 18).
//!
//! ABIs and bytecode are read at run time from the forge output (`contracts/out`, `contracts/bench/out`)
//! and the npm package, and called through alloy's dynamic ABI, so building this crate never needs forge.
//! The escrow's storage layout (for the floors) is `forge inspect ConferenceEscrow storageLayout`, which
//! `make bench-gas` writes beside the bench's build output.
//! Arguments are given by parameter name (see `chain.rs`), so a changed signature shows.
//! Prints tables and PASS/MISS per target, writes `target/bench/gas.json` in issue 7's shared format.
//! A MISS does not fail the run; a reverted transaction (or any other error) does.
//!
//! Where things are (`gas-bench/`): `chain.rs`, the client (anvil, artifacts, deploy, send, gas);
//! `contestants.rs`, the conference each contestant pays for, this project's escrow in its four models
//! and the peers; `floors.rs`, what each of the escrow's operations cannot avoid costing;
//! `figures.rs`, the figures of the report (and the money, batching and target lines);
//! `report.rs`, the tables and `target/bench/gas.json`.

#[path = "gas-bench/chain.rs"]
mod chain;
#[path = "gas-bench/contestants.rs"]
mod contestants;
#[path = "gas-bench/figures.rs"]
mod figures;
#[path = "gas-bench/floors.rs"]
mod floors;
#[path = "gas-bench/report.rs"]
mod report;

use std::path::Path;

use alloy::providers::Provider;
use anyhow::{Context, Result, ensure};
use clap::Parser;
// The one place that names the backend's path to its model type (the modules import `crate::Model`):
// the benchmark prices the very enum the backend reads from the chain.
use conference_backend::domain::agreement::Model;
use serde_json::Value;

use crate::{chain::Chain, floors::Layout};

/// `forge inspect ConferenceEscrow storageLayout --json`, written by `make bench-gas` (relative to the
/// repository root).
const LAYOUT: &str = "contracts/bench/out/ConferenceEscrow.storageLayout.json";

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

    let (mut models, monitor, accounts) = contestants::this_project(&chain).await.context("this project")?;
    contestants::price_floors(&chain, &layout, &mut models)?;
    let sablier = contestants::sablier(&chain).await.context("Sablier Lockup")?;
    let splitter = contestants::payment_splitter(&chain).await.context("PaymentSplitter")?;
    let oz_escrow = contestants::oz_escrow(&chain).await.context("OpenZeppelin Escrow")?;
    let baseline = contestants::baseline(&chain).await.context("per-agreement baseline")?;
    let dynamic = &models[0];
    let peers = [dynamic, &sablier, &splitter, &oz_escrow, &baseline];

    report::print_models(&models);
    report::print_floors(&models);
    println!();
    report::print_table(&peers);
    let mut figures = Vec::new();
    figures.extend(figures::operation_figures(&models, &peers[1..]));
    figures.extend(figures::accounts(&accounts));
    figures.extend(figures::money(&models, &accounts, cli.eth_usd));
    figures.extend(figures::monitor(&monitor)?);
    figures.extend(figures::targets(dynamic, &sablier, &baseline, &monitor, &accounts)?);
    figures.extend(figures::setup_figures(&models, &peers[1..]));
    report::print_notes(&chain.noted()?);
    report::write(&root, &figures)
}
