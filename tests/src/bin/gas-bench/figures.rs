//! The figures of `target/bench/gas.json` (issue 7's shared format): every operation's gas and every
//! lifecycle's, a conference's cost in money beside a card payment's, batched settlement, the targets
//! (printed PASS/MISS) and the one-time setup. The money, batching and target figures print their own
//! lines as they are made.

use anyhow::{Context, Result};
use serde_json::{Value, json};

use alloy::primitives::Bytes;

use crate::{
    Model,
    contestants::{AccountPath, Contestant, DemoOffer, MODELS, MonitorComparison, USED_SECONDS},
    floors::thousands,
};

// --- targets for this project (issue 7, and the per-operation budgets of the contracts issue) -------

const TARGET_SIGN: u64 = 75_000;
const TARGET_ACTIVATE: u64 = 35_000;
const TARGET_STOP: u64 = 35_000;
const TARGET_SETTLE: u64 = 60_000;
/// Batched settlement, per agreement at 50 per transaction.
const TARGET_BATCH_SETTLE: u64 = 25_000;
/// The operator's gas per conference on the account path at 50 a batch, opening to settlement (issue 19:
/// at most a fifth of the 252,779 lifecycle of the last run before accounts).
const TARGET_ACCOUNT_OPERATOR: u64 = 50_000;
/// The dynamic-price lifecycle ÷ the per-agreement baseline's.
const TARGET_BASELINE_RATIO: f64 = 0.3333;
/// A settlement with a monitor's report costs at most this much more than one without (issue 18).
const TARGET_REPORT_OVERHEAD: u64 = 10_000;

// --- money ---------------------------------------------------------------------------------------------

const GAS_PRICES_GWEI: [u64; 2] = [1, 10];
/// An OP Stack rollup's fees, Fjord's formula: execution gas × the L2 gas price, plus the L1 data fee
/// `estimatedSize × (16 × baseFeeScalar × l1BaseFee + blobBaseFeeScalar × blobBaseFee) / 1e12`, where
/// `estimatedSize` is `max(100, −42.5856 + 0.8365 × fastlzSize)` bytes (× 1e6) of the signed transaction
/// (`op_alloy_flz::tx_estimated_size_fjord`). The assumptions, stated with every figure: OP Mainnet's
/// scalars since Ecotone, an L2 gas price of 0.001 gwei, and L1 fees on the high side (a 10 gwei base fee
/// and a 1 gwei blob base fee; the blob fee's floor is 1 wei).
const OP_L2_GAS_PRICE_WEI: f64 = 1e6;
const OP_BASE_FEE_SCALAR: f64 = 5_227.0;
const OP_BLOB_BASE_FEE_SCALAR: f64 = 1_014_213.0;
const OP_L1_BASE_FEE_WEI: f64 = 10e9;
const OP_L1_BLOB_BASE_FEE_WEI: f64 = 1e9;
/// Card fees the paper cites: (id, name, lowest %, highest %).
const CARD_FEES: [(&str, &str, f64, f64); 3] =
    [("visa", "Visa", 1.43, 2.40), ("mastercard", "Mastercard", 1.55, 2.60), ("paypal", "PayPal", 2.90, 4.40)];

const GROUP_OPS: &str = "Gas per operation";
const GROUP_LIFECYCLE: &str = "Gas per conference";
const GROUP_MONEY: &str = "Cost of a conference";
const GROUP_BATCH: &str = "Account path (batched operator calls)";
const GROUP_MONITOR: &str = "Settlement with a monitor's report";
const GROUP_SETUP: &str = "One-time setup";

/// One figure of `target/bench/gas.json`.
pub struct Figure {
    pub id: String,
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

    pub fn to_json(&self) -> Value {
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
        "stopAndSettle" => "stopAndSettle (the customer's signed stop, settled)",
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
pub fn operation_figures(models: &[Contestant], peers: &[&Contestant]) -> Vec<Figure> {
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

/// One way to pay for a conference: its gas and the signed transactions it takes (each a share of, for a
/// batch), for the rollup's data fee.
struct Path<'a> {
    key: &'static str,
    title: String,
    gas: u64,
    /// The transactions and the share of each this conference pays (1 for its own, 1/batch of a batch).
    txs: Vec<(&'a Bytes, f64)>,
}

impl Path<'_> {
    /// The OP Stack rollup's fee in wei: execution at the L2 gas price plus each transaction's L1 data fee
    /// (Fjord), both as this conference's share.
    fn op_stack_wei(&self) -> f64 {
        let l1_fee_scaled =
            16.0 * OP_BASE_FEE_SCALAR * OP_L1_BASE_FEE_WEI + OP_BLOB_BASE_FEE_SCALAR * OP_L1_BLOB_BASE_FEE_WEI;
        let data: f64 = self
            .txs
            .iter()
            .map(|(raw, share)| op_alloy_flz::tx_estimated_size_fjord(raw) as f64 * l1_fee_scaled / 1e12 * share)
            .sum();
        self.gas as f64 * OP_L2_GAS_PRICE_WEI + data
    }
}

/// What a conference costs in each model, paid directly (its lifecycle: the customer's transactions, the
/// operator's and the provider's withdrawal) and from an account (the operator's batches at 50, opening
/// to settlement; the deposit and the provider's withdrawal serve many conferences): on Ethereum at 1 and
/// 10 gwei and on an OP Stack rollup, beside the card fees the paper cites on the conference's price, with
/// a verdict per row.
pub fn money(models: &[Contestant], accounts: &[AccountPath], eth_usd: f64) -> Vec<Figure> {
    let mut figures = Vec::new();
    let op_assumptions = format!(
        "OP Stack (Fjord): gas × {} gwei + the L1 data fee of each signed transaction (FastLZ size; OP Mainnet's \
         scalars {} and {}; L1 base fee {} gwei, blob base fee {} gwei)",
        OP_L2_GAS_PRICE_WEI / 1e9,
        OP_BASE_FEE_SCALAR,
        OP_BLOB_BASE_FEE_SCALAR,
        OP_L1_BASE_FEE_WEI / 1e9,
        OP_L1_BLOB_BASE_FEE_WEI / 1e9
    );
    println!("\nCost of a conference (ETH at {eth_usd} USD, --eth-usd); {op_assumptions}:");
    let header = format!(
        "{:<16} | {:<12} | {:>8} | {:>9} | {:>9} | {:>9} | {:>9} | {:>15} | verdict (1 gwei / 10 gwei / OP Stack)",
        "model", "path", "price", "gas", "1 gwei", "10 gwei", "OP Stack", "cards"
    );
    println!("{header}\n{}", "-".repeat(header.chars().count()));
    let eth_note = format!("ETH at {eth_usd} USD (--eth-usd)");
    let (lowest, highest) = (CARD_FEES[0].2, CARD_FEES.iter().map(|c| c.3).fold(0.0, f64::max));
    for (model, c) in MODELS.iter().zip(models) {
        let price_eth = model.conference_price() as f64 / 1e18;
        let price_usd = price_eth * eth_usd;
        figures.push(usd(
            format!("gas.cost.{}.price", c.key),
            format!("this project, {}: the conference's price ({USED_SECONDS} s used)", c.title),
            price_usd,
            format!("{} wei = {price_eth} ETH, the demo offer's price; {eth_note}", model.conference_price()),
        ));
        for (id, name, low, high) in CARD_FEES {
            for (end, pct) in [("low", low), ("high", high)] {
                figures.push(usd(
                    format!("gas.cost.{}.card.{id}.{end}", c.key),
                    format!("{name} fee on the same price ({}), {pct} %", c.title),
                    price_usd * pct / 100.0,
                    format!(
                        "{pct} % of ${price_usd:.4}, the {end} end of the fees the paper cites ({name} {low}–{high} %)"
                    ),
                ));
            }
        }
        let mut paths = Vec::new();
        if let Some(gas) = c.get("lifecycle") {
            let txs = c.lifecycle_ops.iter().filter_map(|op| c.raw.get(op)).map(|raw| (raw, 1.0)).collect();
            paths.push(Path { key: "direct", title: format!("direct ({})", c.lifecycle_ops.join(" + ")), gas, txs });
        }
        if let Some(a) = accounts.iter().find(|a| a.model == *model && a.batch == 50) {
            let share = 1.0 / a.batch as f64;
            let txs = a.ops.iter().map(|(_, sent)| (&sent.raw, share)).collect();
            let title = "account, 50 a batch (the operator's open, activate, stop and settle)".to_owned();
            paths.push(Path { key: "account50", title, gas: a.operator_per_conference(), txs });
        }
        for path in &paths {
            let costs: Vec<(String, f64)> = GAS_PRICES_GWEI
                .iter()
                .map(|g| (format!("{g}gwei"), path.gas as f64 * *g as f64 * 1e-9 * eth_usd))
                .chain(std::iter::once(("opstack".to_owned(), path.op_stack_wei() / 1e18 * eth_usd)))
                .collect();
            let mut verdicts = Vec::new();
            for (network, cost) in &costs {
                let verdict = if *cost < price_usd * lowest / 100.0 {
                    "cheaper than a card"
                } else if *cost < price_usd * highest / 100.0 {
                    "cheaper than some cards"
                } else {
                    "dearer than a card"
                };
                verdicts.push(verdict);
                let on = if network == "opstack" { op_assumptions.clone() } else { format!("Ethereum at {network}") };
                figures.push(usd(
                    format!("gas.cost.{}.{}.{network}", c.key, path.key),
                    format!("this project, {}, {}: {network} — {verdict}", c.title, path.title),
                    *cost,
                    format!(
                        "{} gas; {on}; {eth_note}; {verdict}: the card fees on ${price_usd:.4} are ${:.4}–{:.4} ({lowest}–{highest} %)",
                        thousands(path.gas),
                        price_usd * lowest / 100.0,
                        price_usd * highest / 100.0
                    ),
                ));
            }
            println!(
                "{:<16} | {:<12} | {:>8} | {:>9} | {:>9} | {:>9} | {:>9} | {:>15} | {}",
                c.title,
                path.key,
                format!("${price_usd:.2}"),
                thousands(path.gas),
                format!("${:.4}", costs[0].1),
                format!("${:.4}", costs[1].1),
                format!("${:.5}", costs[2].1),
                format!("${:.4}–{:.4}", price_usd * lowest / 100.0, price_usd * highest / 100.0),
                verdicts.join(" / ")
            );
        }
    }
    figures
}

/// A figure of the money table: in USD, to the millionth.
fn usd(id: String, label: String, value: f64, note: String) -> Figure {
    figure(id, GROUP_MONEY, label, "USD", round(value, 6)).note(note)
}

/// The account path (see [`AccountPath`]): per model and batch size, the operator's gas per conference
/// from opening to settlement and per batch, the customer's (none: it signs), and its one deposit.
pub fn accounts(paths: &[AccountPath]) -> Vec<Figure> {
    let mut figures = Vec::new();
    println!(
        "\nAccount path: conferences opened from one deposit by signed orders; the operator's batches (gas per conference):"
    );
    println!(
        "{:<16} | {:>5} | {:>10} | {:>10} | {:>13} | {:>14} | {:>12} | {:>15}",
        "model",
        "batch",
        "openOrder",
        "activate",
        "stopAndSettle",
        "operator total",
        "customer txs",
        "customer deposit"
    );
    for path in paths {
        let (model, batch) = (path.model, path.batch);
        let per = |op: &str| path.per_conference(op).unwrap_or(0);
        let total = path.operator_per_conference();
        println!(
            "{:<16} | {:>5} | {:>10} | {:>10} | {:>13} | {:>14} | {:>12} | {:>15}",
            model.title(),
            batch,
            thousands(per("openOrder")),
            thousands(per("activate")),
            thousands(per("stopAndSettle")),
            thousands(total),
            path.customer_txs,
            thousands(path.deposit_gas)
        );
        let id = |what: &str| format!("gas.account.{}.{batch}.{what}", model.key());
        let label = |what: &str| format!("account path, {}, {batch} a batch: {what}", model.title());
        let mut operator = figure(
            id("operator"),
            GROUP_BATCH,
            label("the operator's gas per conference, opening to settlement"),
            "gas",
            total,
        )
        .note(format!(
            "batch(openOrder × {batch}) + batch(activate × {batch}) + batch(stopAndSettle × {batch}), ÷ {batch}; every \
                 settlement checked to the wei against the account's balance"
        ));
        if batch == 50 {
            operator = operator.max(TARGET_ACCOUNT_OPERATOR);
        }
        figures.push(operator);
        for op in ["openOrder", "activate", "stopAndSettle"] {
            let mut f = figure(id(op), GROUP_BATCH, label(&format!("{op} per conference")), "gas", per(op));
            if op == "stopAndSettle" && batch == 50 && model == Model::DynamicPrice {
                f = f.max(TARGET_BATCH_SETTLE);
            }
            figures.push(f);
        }
        let mut customer = figure(
            id("customer"),
            GROUP_BATCH,
            label("the customer's transactions per conference after its deposit"),
            "transactions",
            path.customer_txs as f64 / batch as f64,
        )
        .note(format!(
            "the rise of the customer's nonce from its deposit to the last settlement: {} transaction(s) for {batch} \
             conferences (it signs its orders and stops)",
            path.customer_txs
        ));
        if batch == 50 {
            customer = customer.max(0);
        }
        figures.push(customer);
        figures.push(figure(
            id("deposit"),
            GROUP_BATCH,
            label(&format!("the customer's one deposit, for {batch} conferences")),
            "gas",
            path.deposit_gas,
        ));
    }
    figures
}

/// The gas of each side's settlement in steady state and what the monitor's report adds. Printed.
fn report_overhead(comparison: &MonitorComparison) -> Result<(u64, u64, i64)> {
    let settle = |c: &Contestant| c.get("settle").with_context(|| format!("the {} offer has no settle", c.title));
    let (without, with) = (settle(&comparison.without)?, settle(&comparison.with)?);
    Ok((without, with, with as i64 - without as i64))
}

/// A dynamic-price settlement with the monitor's report beside one without (see [`MonitorComparison`]):
/// both figures, printed with their calldata, and the difference against its target.
pub fn monitor(comparison: &MonitorComparison) -> Result<Vec<Figure>> {
    let (without, with, difference) = report_overhead(comparison)?;
    let bytes = |c: &Contestant| c.calldata.get("settle").map_or(0, |d| d.len());
    println!(
        "\nSettlement with a monitor's report (dynamic price, an offer of two providers, the second conference \
         of each; the operator submits both):"
    );
    let sides = [
        ("without a report: the second provider ConferenceSoftware", without, &comparison.without),
        ("with the monitor's report: the second provider the monitor", with, &comparison.with),
    ];
    for (what, gas, c) in sides {
        println!("  {what:<60} {:>9} gas (calldata {} B)", thousands(gas), bytes(c));
    }
    let shown = match u64::try_from(difference) {
        Ok(more) => thousands(more),
        Err(_) => format!("-{}", thousands(difference.unsigned_abs())),
    };
    println!("  {:<60} {shown:>9} gas (target <= {})", "difference", thousands(TARGET_REPORT_OVERHEAD));
    let how = "the operator submits it; evidence: a keccak-256 hash; availability 10,000 bps; the conference \
               of 600 s is the offer's second, so both providers' earnings are already non-zero";
    Ok(vec![
        figure(
            "gas.monitor.settle_without_report".into(),
            GROUP_MONITOR,
            "this project, dynamic price, two providers, no monitor: settle by the operator, no report (steady state)"
                .into(),
            "gas",
            without,
        )
        .note(format!("{}; {how}; calldata {} B with an empty report", comparison.without.contract, bytes(&comparison.without))),
        figure(
            "gas.monitor.settle_with_report".into(),
            GROUP_MONITOR,
            "this project, dynamic price, two providers, the second the monitor: settle with its signed report (steady state)"
                .into(),
            "gas",
            with,
        )
        .note(format!(
            "{}; {how}; calldata {} B with the monitor's 65-byte EIP-712 signature",
            comparison.with.contract,
            bytes(&comparison.with)
        )),
        figure(
            "gas.monitor.report_overhead".into(),
            GROUP_MONITOR,
            "this project, dynamic price: settle with a monitor's report − settle without one".into(),
            "gas",
            difference,
        )
        .max(TARGET_REPORT_OVERHEAD)
        .note(format!(
            "{} − {} gas, both measured in this run on offers alike but for the second provider's role",
            thousands(with),
            thousands(without)
        )),
    ])
}

/// The comparisons as ratios measured in this run, and the PASS/MISS lines of every target.
pub fn targets(
    dynamic: &Contestant,
    sablier: &Contestant,
    baseline: &Contestant,
    comparison: &MonitorComparison,
    accounts: &[AccountPath],
) -> Result<Vec<Figure>> {
    let get = |c: &Contestant, key: &str| c.get(key).with_context(|| format!("{} has no {key}", c.title));
    let lifecycle = get(dynamic, "lifecycle")?;
    let sablier_total = get(sablier, "lifecycle")?;
    let baseline_total = get(baseline, "lifecycle")?;
    let vs_baseline = round(lifecycle as f64 / baseline_total as f64, 4);
    let vs_sablier = round(lifecycle as f64 / sablier_total as f64, 4);
    let at50 = |model: Model| {
        accounts
            .iter()
            .find(|a| a.model == model && a.batch == 50)
            .with_context(|| format!("no account path of {model:?} at 50 a batch"))
    };
    println!("\nTargets (this project, dynamic price; the account path, every model):");
    let lines = [
        ("sign (steady state) <= 75,000", get(dynamic, "sign")?, TARGET_SIGN, true),
        ("activate <= 35,000", get(dynamic, "activate")?, TARGET_ACTIVATE, true),
        ("stop <= 35,000 (the customer's own stop, outside the lifecycle)", get(dynamic, "stop")?, TARGET_STOP, true),
        ("settle <= 60,000", get(dynamic, "settle")?, TARGET_SETTLE, true),
        (
            "stopAndSettle per agreement at 50 per batch <= 25,000",
            at50(Model::DynamicPrice)?.per_conference("stopAndSettle").unwrap_or(u64::MAX),
            TARGET_BATCH_SETTLE,
            true,
        ),
        ("lifecycle < Sablier create + cancel + withdraw", lifecycle, sablier_total, false),
        ("lifecycle <= 1/3 of the per-agreement baseline", lifecycle, baseline_total / 3, true),
        (
            "settle with a monitor's report - without <= 10,000",
            u64::try_from(report_overhead(comparison)?.2).unwrap_or(0),
            TARGET_REPORT_OVERHEAD,
            true,
        ),
    ];
    let mut lines = lines.to_vec();
    let account_lines: Vec<(String, u64)> = MODELS
        .iter()
        .map(|m| {
            Ok((
                format!("account path, {}: operator per conference at 50 <= 50,000", m.title()),
                at50(*m)?.operator_per_conference(),
            ))
        })
        .collect::<Result<_>>()?;
    for (name, value) in &account_lines {
        lines.push((name.as_str(), *value, TARGET_ACCOUNT_OPERATOR, true));
    }
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
pub fn setup_figures(models: &[Contestant], peers: &[&Contestant]) -> Vec<Figure> {
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
