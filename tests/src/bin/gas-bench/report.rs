//! What the benchmark shows: this project's table (measured / floor per model), the floors' details,
//! the table beside the peers, and `target/bench/gas.json` in issue 7's shared format.

use std::{collections::BTreeSet, fmt::Write as _, fs, path::Path};

use anyhow::{Context, Result, ensure};
use serde_json::json;

use crate::{contestants::Contestant, figures::Figure, floors::thousands};

/// Relative to the repository root.
const REPORT: &str = "target/bench/gas.json";
/// The command that writes the report, as the report states it.
const COMMAND: &str = "cargo run -q -p conference-e2e --bin gas-bench";

/// This project's rows: a label and, per model (dynamic, fixed, time-limited, flexible), the operation.
const MODEL_ROWS: &[(&str, [&str; 4])] = &[
    ("open (sign / buyMinutes / reserve)", ["sign", "sign", "buyMinutes", "reserve"]),
    ("start (customer's request)", ["", "", "start", "start"]),
    ("activate", ["activate", "activate", "activate", "activate"]),
    ("stop", ["stop", "stop", "stop", "stop"]),
    ("settle", ["settle", "settle", "settle", "settle"]),
    ("stopAndSettle (signed stop, settled)", ["stopAndSettle", "stopAndSettle", "stopAndSettle", "stopAndSettle"]),
    ("close (unused minutes back)", ["", "", "close", ""]),
    ("provider withdraws", ["withdraw", "withdraw", "withdraw", "withdraw"]),
];

pub fn print_models(models: &[Contestant]) {
    let cell = |c: &Contestant, key: &str| match (c.get(key), c.floor(key)) {
        (Some(gas), Some(floor)) => format!("{} / {}", thousands(gas), thousands(floor)),
        (Some(gas), None) => thousands(gas),
        _ => "—".into(),
    };
    let columns: Vec<&Contestant> = models.iter().collect();
    print_grid(
        "This project, gas per operation and model: measured / floor (steady state)",
        (36, 19),
        &columns,
        MODEL_ROWS,
        "lifecycle total",
        cell,
    );
    println!();
    for c in models {
        println!("  {:<16} lifecycle = {}", c.title, c.lifecycle_ops.join(" + "));
    }
}

pub fn print_floors(models: &[Contestant]) {
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

pub fn print_table(contestants: &[&Contestant; 5]) {
    let cell = |c: &Contestant, key: &str| c.get(key).map(thousands).unwrap_or_else(|| "—".into());
    print_grid(
        "Beside the peers (this project: the dynamic price)",
        (38, 15),
        contestants,
        ROWS,
        "lifecycle total (steady state)",
        cell,
    );
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

/// A table: a column per contestant, a row per operation (a dash where a row's key is blank), a rule,
/// and the lifecycle's total, `width` characters for the labels and `column` for each column.
fn print_grid<const N: usize>(
    heading: &str,
    (width, column): (usize, usize),
    contestants: &[&Contestant],
    rows: &[(&str, [&str; N])],
    total: &str,
    cell: impl Fn(&Contestant, &str) -> String,
) {
    println!("{heading}");
    let mut out = format!("{:<width$}", "operation");
    for c in contestants {
        let _ = write!(out, " | {:>column$}", c.title);
    }
    let rule = "-".repeat(out.chars().count());
    println!("{out}\n{rule}");
    for (label, keys) in rows {
        let mut line = format!("{label:<width$}");
        for (c, key) in contestants.iter().zip(keys) {
            let _ = write!(line, " | {:>column$}", if key.is_empty() { "—".into() } else { cell(c, key) });
        }
        println!("{line}");
    }
    println!("{rule}");
    let mut line = format!("{total:<width$}");
    for c in contestants {
        let _ = write!(line, " | {:>column$}", cell(c, "lifecycle"));
    }
    println!("{line}");
}

/// Things worth saying once (defaulted arguments, oversized code), after the figures.
pub fn print_notes(notes: &BTreeSet<String>) {
    if !notes.is_empty() {
        println!("\nNotes:");
        for note in notes {
            println!("  - {note}");
        }
    }
}

/// Writes `target/bench/gas.json` with the command line that produced it.
pub fn write(root: &Path, figures: &[Figure]) -> Result<()> {
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
