//! Issue 7's shared format: every benchmark writes `target/bench/<bench>.json` with the command line
//! that produced it and its figures (id, group, label, unit, samples, target, note). Several runs of
//! this binary fill one file: a figure measured again replaces the one of the same id, and the file's
//! command lists each distinct command line once, joined by " && ".

use anyhow::{Context, Result};
use conference_e2e::repo_root;
use serde_json::{Value, json};

/// One measured figure.
pub struct Figure {
    /// Unique, dotted, stable across runs.
    pub id: String,
    /// The BENCHMARKS.md table it belongs to.
    pub group: &'static str,
    pub label: String,
    /// gas | ms | MB | agreements/s | events/s | kB | USD | % | ratio | count
    pub unit: &'static str,
    pub samples: Vec<f64>,
    /// `{"max": x}`, `{"min": x}` or None.
    pub target: Option<Value>,
    pub note: Option<String>,
}

pub fn at_most(max: f64) -> Option<Value> {
    Some(json!({ "max": max }))
}

pub fn at_least(min: f64) -> Option<Value> {
    Some(json!({ "min": min }))
}

/// The command line of this run, with the backend binary it measured when one was named.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    match std::env::var("CONFERENCE_BACKEND_BIN") {
        Ok(bin) => format!("CONFERENCE_BACKEND_BIN={bin} {}", args.join(" ")),
        Err(_) => args.join(" "),
    }
}

/// Adds `figures` to `target/bench/<bench>.json` (made if missing), replacing figures of the same id.
pub fn record(bench: &str, figures: Vec<Figure>) -> Result<()> {
    let dir = repo_root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{bench}.json"));
    let mut doc: Value = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))?,
        Err(_) => json!({ "bench": bench, "command": "", "figures": [] }),
    };
    let command = command_line();
    let before = doc["command"].as_str().unwrap_or_default().to_owned();
    if !before.split(" && ").any(|c| c == command) {
        doc["command"] = json!(if before.is_empty() { command } else { format!("{before} && {command}") });
    }
    let list = doc["figures"].as_array_mut().context("figures is not a list")?;
    for figure in figures {
        list.retain(|f| f["id"] != figure.id.as_str());
        let mut value = json!({
            "id": figure.id,
            "group": figure.group,
            "label": figure.label,
            "unit": figure.unit,
            "samples": figure.samples,
            "target": figure.target,
        });
        if let Some(note) = figure.note {
            value["note"] = json!(note);
        }
        list.push(value);
    }
    std::fs::write(&path, serde_json::to_string_pretty(&doc)? + "\n")?;
    eprintln!("figures written to {}", path.display());
    Ok(())
}
