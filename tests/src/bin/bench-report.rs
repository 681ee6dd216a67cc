//! `bench-report` (the last step of `make bench`): merges every benchmark's JSON file into
//! `BENCHMARKS.md` and `BENCHMARKS.json` at the repository root.
//!
//! Input, in the shared format (tests/README.md, "Benchmarks"): `target/bench/<bench>.json`, and the
//! runs `make bench` repeats, which it moves to `target/bench/runs/<i>/<bench>.json`. Per file name, the
//! copies under `runs/` are read when there are any, and a top-level file of that name is then ignored
//! (a stand-alone `make bench-web` after `make bench` is reported once `target/bench/runs` is removed);
//! otherwise the top-level file. The files read are printed. A file's figures belong to the bench its
//! `"bench"` field names; the samples of one figure id are merged across runs, its unit and target must
//! agree, and its words (label, note, floor) are the last run's.
//!
//! Per figure: the median, the spread (min–max), the number of samples, the target and the verdict on
//! the median: PASS or MISS, with the gap in the figure's unit and as a percentage of the target.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use serde_json::{Value, json};

/// The benchmarks in the order their tables appear; any other bench follows, by name.
const BENCH_ORDER: [&str; 5] = ["gas", "backend", "kube", "web", "sfu"];
/// This program's own command line, as printed in the report.
const REPORT_COMMAND: &str = "cargo run -q -p conference-e2e --bin bench-report";
/// What bounds each target's figure and what would change it, by figure id (written by hand).
const ANALYSIS_FILE: &str = "tests/benchmark-analysis.md";

/// The sections of the analysis file: `## <figure id>` then its text, up to the next `## `.
fn analysis_sections(text: &str) -> BTreeMap<String, String> {
    let mut sections = BTreeMap::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    for line in text.lines().chain(std::iter::once("## ")) {
        if let Some(id) = line.strip_prefix("## ") {
            if let Some((id, body)) = current.take() {
                sections.insert(id, body.join("\n").trim().to_string());
            }
            current = (!id.trim().is_empty()).then(|| (id.trim().to_string(), Vec::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push(line);
        }
    }
    sections
}

#[derive(Parser)]
#[command(about = "Merges target/bench/**/*.json into BENCHMARKS.md and BENCHMARKS.json")]
struct Args {
    /// Where the benchmarks wrote their JSON (default: target/bench under the repository root).
    #[arg(long)]
    bench_dir: Option<PathBuf>,
    /// Where BENCHMARKS.md and BENCHMARKS.json go (default: the repository root).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// The command that ran the benchmarks, printed at the top of the report.
    #[arg(long, default_value = "make bench")]
    invocation: String,
}

/// A figure's target: the median must be at most, or at least, this.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    Max(f64),
    Min(f64),
}

/// A figure as one benchmark file gives it.
#[derive(Clone, Debug, PartialEq)]
struct Figure {
    id: String,
    group: String,
    label: String,
    unit: String,
    samples: Vec<f64>,
    target: Option<Target>,
    floor: Option<f64>,
    note: Option<String>,
}

/// One benchmark file.
#[derive(Debug)]
struct BenchFile {
    bench: String,
    command: String,
    figures: Vec<Figure>,
}

/// Per bench, its distinct command lines with how many runs used each.
type Commands = Vec<(String, Vec<(String, usize)>)>;

/// A figure with every run's samples, as the report shows it.
#[derive(Debug)]
struct Merged {
    bench: String,
    figure: Figure,
    stats: Stats,
    verdict: Option<Verdict>,
}

/// Median, min and max of a non-empty list of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

/// The median against the target. `gap` is how far the median lies past the target (positive: missed
/// by that much; zero or negative: met with that much to spare), in the figure's unit; `percent` is
/// the gap as a percentage of the target (None for a target of zero).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Verdict {
    pass: bool,
    gap: f64,
    percent: Option<f64>,
}

fn stats(samples: &[f64]) -> Stats {
    assert!(!samples.is_empty(), "a figure has at least one sample");
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
    Stats { median, min: sorted[0], max: sorted[n - 1] }
}

fn verdict(median: f64, target: Target) -> Verdict {
    let (gap, limit) = match target {
        Target::Max(limit) => (median - limit, limit),
        Target::Min(limit) => (limit - median, limit),
    };
    Verdict { pass: gap <= 0.0, gap, percent: (limit != 0.0).then(|| gap / limit.abs() * 100.0) }
}

// --- reading --------------------------------------------------------------------------------------------

fn string_field(value: &Value, key: &str, what: &str) -> Result<String> {
    match value.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        _ => bail!("{what}: \"{key}\" must be a non-empty string"),
    }
}

fn number(value: &Value, what: &str) -> Result<f64> {
    value.as_f64().filter(|x| x.is_finite()).with_context(|| format!("{what} must be a finite number, not {value}"))
}

fn parse_target(value: Option<&Value>, what: &str) -> Result<Option<Target>> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(None) };
    let object = value.as_object().with_context(|| format!("{what}: \"target\" must be an object or null"))?;
    match (object.get("max"), object.get("min"), object.len()) {
        (Some(max), None, 1) => Ok(Some(Target::Max(number(max, &format!("{what}: target.max"))?))),
        (None, Some(min), 1) => Ok(Some(Target::Min(number(min, &format!("{what}: target.min"))?))),
        _ => bail!("{what}: \"target\" must be {{\"max\": n}}, {{\"min\": n}} or null, not {value}"),
    }
}

fn parse_figure(value: &Value, file: &str) -> Result<Figure> {
    let id = string_field(value, "id", &format!("{file}: a figure"))?;
    let what = format!("{file}: figure {id}");
    let samples = value
        .get("samples")
        .and_then(Value::as_array)
        .with_context(|| format!("{what}: \"samples\" must be an array"))?
        .iter()
        .map(|s| number(s, &format!("{what}: a sample")))
        .collect::<Result<Vec<_>>>()?;
    ensure!(!samples.is_empty(), "{what}: \"samples\" is empty");
    let floor = match value.get("floor") {
        None | Some(Value::Null) => None,
        Some(v) => Some(number(v, &format!("{what}: \"floor\""))?),
    };
    let note = match value.get("note") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.trim().is_empty()),
        Some(other) => bail!("{what}: \"note\" must be a string, not {other}"),
    };
    Ok(Figure {
        group: string_field(value, "group", &what)?,
        label: string_field(value, "label", &what)?,
        unit: string_field(value, "unit", &what)?,
        target: parse_target(value.get("target"), &what)?,
        samples,
        floor,
        note,
        id,
    })
}

fn parse_bench(text: &str, file: &str) -> Result<BenchFile> {
    let value: Value = serde_json::from_str(text).with_context(|| format!("{file} is not JSON"))?;
    let figures = value
        .get("figures")
        .and_then(Value::as_array)
        .with_context(|| format!("{file}: \"figures\" must be an array"))?
        .iter()
        .map(|f| parse_figure(f, file))
        .collect::<Result<Vec<_>>>()?;
    let mut seen = std::collections::BTreeSet::new();
    for figure in &figures {
        ensure!(seen.insert(&figure.id), "{file}: figure {} appears twice", figure.id);
    }
    Ok(BenchFile {
        bench: string_field(&value, "bench", file)?,
        command: string_field(&value, "command", file)?,
        figures,
    })
}

/// The files to read, per bench: `runs/<i>/<bench>.json` (in run order) when any exist, otherwise
/// `<bench>.json`. Paths are relative to `dir`.
fn bench_files(dir: &Path) -> Result<BTreeMap<String, Vec<PathBuf>>> {
    let json_files = |d: &Path| -> Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for entry in fs::read_dir(d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_file() && path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    };
    let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut runs: BTreeMap<String, Vec<(u64, PathBuf)>> = BTreeMap::new();
    let runs_dir = dir.join("runs");
    if runs_dir.is_dir() {
        for entry in fs::read_dir(&runs_dir).with_context(|| format!("reading {}", runs_dir.display()))? {
            let run = entry?.path();
            let Some(index) = run.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            for file in json_files(&run)? {
                runs.entry(stem(&file)).or_default().push((index, file));
            }
        }
    }
    let mut chosen = BTreeMap::new();
    for (bench, mut files) in runs {
        files.sort();
        chosen.insert(bench, files.into_iter().map(|(_, file)| file).collect::<Vec<_>>());
    }
    for file in json_files(dir)? {
        chosen.entry(stem(&file)).or_insert_with(|| vec![file]);
    }
    Ok(chosen)
}

/// Merges the files' figures by id, benches in `BENCH_ORDER`, figures in the order they first appear.
/// Returns the figures and, per bench, its distinct command lines with how many runs used each.
fn merge(files: Vec<BenchFile>) -> Result<(Vec<Merged>, Commands)> {
    let rank = |bench: &str| BENCH_ORDER.iter().position(|b| *b == bench).unwrap_or(BENCH_ORDER.len());
    let mut files = files;
    files.sort_by(|a, b| rank(&a.bench).cmp(&rank(&b.bench)).then_with(|| a.bench.cmp(&b.bench)));
    let mut merged: Vec<(String, Figure)> = Vec::new();
    let mut commands: Commands = Vec::new();
    for file in files {
        if commands.last().is_none_or(|(bench, _)| *bench != file.bench) {
            commands.push((file.bench.clone(), Vec::new()));
        }
        let lines = &mut commands.last_mut().expect("just pushed").1;
        match lines.iter_mut().find(|(command, _)| *command == file.command) {
            Some((_, count)) => *count += 1,
            None => lines.push((file.command.clone(), 1)),
        }
        for figure in file.figures {
            match merged.iter_mut().find(|(_, f)| f.id == figure.id) {
                None => merged.push((file.bench.clone(), figure)),
                Some((bench, known)) => {
                    ensure!(*bench == file.bench, "figure {} comes from both {bench} and {}", figure.id, file.bench);
                    ensure!(
                        known.unit == figure.unit,
                        "figure {}: unit {} in one run, {} in another",
                        figure.id,
                        known.unit,
                        figure.unit
                    );
                    ensure!(
                        known.target == figure.target,
                        "figure {}: target {:?} in one run, {:?} in another",
                        figure.id,
                        known.target,
                        figure.target
                    );
                    known.samples.extend(figure.samples);
                    known.group = figure.group;
                    known.label = figure.label;
                    known.floor = figure.floor;
                    known.note = figure.note;
                }
            }
        }
    }
    let figures = merged
        .into_iter()
        .map(|(bench, figure)| {
            let stats = stats(&figure.samples);
            let verdict = figure.target.map(|t| verdict(stats.median, t));
            Merged { bench, figure, stats, verdict }
        })
        .collect();
    Ok((figures, commands))
}

// --- writing --------------------------------------------------------------------------------------------

/// `1234567.8` → `1,234,568` (no decimals), `12.345` → `12.35` (two): as many decimals as `decimals`.
fn grouped(value: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, value.abs());
    let (whole, fraction) = text.split_once('.').map_or((text.as_str(), None), |(w, f)| (w, Some(f)));
    let mut out = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if let Some(fraction) = fraction {
        out.push('.');
        out.push_str(fraction);
    }
    let negative = value < 0.0 && out.chars().any(|c| c.is_ascii_digit() && c != '0');
    if negative { format!("−{out}") } else { out }
}

/// A value in its unit: whole numbers for gas and counts; four decimals for ratios; otherwise none from
/// 1,000 up, one from 100, two from 1 and three below.
fn show(value: f64, unit: &str) -> String {
    let decimals = match unit {
        "gas" | "count" => 0,
        "ratio" => 4,
        _ => match value.abs() {
            a if a >= 1000.0 => 0,
            a if a >= 100.0 => 1,
            a if a >= 1.0 || a == 0.0 => 2,
            _ => 3,
        },
    };
    grouped(value, decimals)
}

/// A value followed by its unit (`12 ms`, `0.3000` for a ratio, `2.5 %`).
fn with_unit(value: f64, unit: &str) -> String {
    match unit {
        "ratio" => show(value, unit),
        _ => format!("{} {unit}", show(value, unit)),
    }
}

fn show_target(target: Option<Target>, unit: &str) -> String {
    match target {
        None => "–".into(),
        Some(Target::Max(limit)) => format!("≤ {}", with_unit(limit, unit)),
        Some(Target::Min(limit)) => format!("≥ {}", with_unit(limit, unit)),
    }
}

/// `MISS by 1,234 gas (+1.6 %)` or `PASS, 5,000 gas (6.7 %) to spare`; `–` without a target.
fn show_verdict(verdict: Option<Verdict>, unit: &str) -> String {
    let Some(v) = verdict else { return "–".into() };
    let percent = |p: Option<f64>| p.map(|p| format!(" ({} %)", grouped(p.abs(), 1))).unwrap_or_default();
    if v.pass {
        format!("PASS, {}{} to spare", with_unit(-v.gap, unit), percent(v.percent))
    } else {
        format!("**MISS** by {}{}", with_unit(v.gap, unit), percent(v.percent))
    }
}

/// A table cell: no pipe or newline breaks the row.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The machine the figures were measured on.
struct Machine {
    cpus: usize,
    memory: String,
    cpu_model: String,
}

fn machine() -> Machine {
    let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(0);
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        })
        .unwrap_or_else(|| "unknown".into());
    let cpu_model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Machine { cpus, memory, cpu_model }
}

/// A day count since 1970-01-01 as `YYYY-MM-DD` (the proleptic Gregorian calendar, H. Hinnant's
/// civil_from_days).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn now_utc() -> String {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let time = seconds.rem_euclid(86_400);
    format!("{} {:02}:{:02} UTC", civil_date(seconds.div_euclid(86_400)), time / 3600, time % 3600 / 60)
}

fn markdown(
    figures: &[Merged],
    commands: &Commands,
    machine: &Machine,
    date: &str,
    invocation: &str,
    analysis: &BTreeMap<String, String>,
) -> String {
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# Benchmarks\n");
    let _ = writeln!(
        w,
        "What a customer and an operator pay for and wait for, measured by `{invocation}` on one machine, \
         the peers in the same run. Each figure is the median of its samples, with the spread (min–max) and \
         the number of samples; the verdict compares the median with the target (issue 7) and gives the gap \
         in the figure's unit and as a percentage of the target.\n"
    );
    let _ = writeln!(
        w,
        "- Machine: {} CPUs ({}), {} memory\n- Date: {date}\n- Report: `{REPORT_COMMAND}` (writes this file \
         and `BENCHMARKS.json`)",
        machine.cpus, machine.cpu_model, machine.memory
    );
    let _ = writeln!(w, "\nThe commands behind the figures:\n");
    for (bench, lines) in commands {
        for (command, runs) in lines {
            let times = if *runs == 1 { "once".to_string() } else { format!("{runs} runs") };
            let _ = writeln!(w, "- {bench} ({times}): `{command}`");
        }
    }
    let missing: Vec<&str> =
        BENCH_ORDER.iter().copied().filter(|b| !commands.iter().any(|(bench, _)| bench == b)).collect();
    if !missing.is_empty() {
        let _ = writeln!(w, "\nNot measured in this report: {}.", missing.join(", "));
    }

    let targeted: Vec<&Merged> = figures.iter().filter(|m| m.verdict.is_some()).collect();
    let _ = writeln!(w, "\n## Targets\n");
    if targeted.is_empty() {
        let _ = writeln!(w, "No figure in this report has a target.");
    } else {
        let passed = targeted.iter().filter(|m| m.verdict.is_some_and(|v| v.pass)).count();
        let _ = writeln!(w, "{passed} of {} targets met.\n", targeted.len());
        let _ = writeln!(w, "| Figure | Median | Target | Verdict |\n|---|---:|---:|---|");
        for m in &targeted {
            let unit = &m.figure.unit;
            let _ = writeln!(
                w,
                "| {} ({}) | {} | {} | {} |",
                cell(&m.figure.label),
                cell(&m.figure.group),
                with_unit(m.stats.median, unit),
                show_target(m.figure.target, unit),
                show_verdict(m.verdict, unit)
            );
        }
        let missed: Vec<&&Merged> = targeted.iter().filter(|m| m.verdict.is_some_and(|v| !v.pass)).collect();
        if !missed.is_empty() {
            let _ = writeln!(w, "\n## Where a target is missed\n");
            let _ = writeln!(
                w,
                "By how much is measured above; what bounds each figure and what would change it is `{ANALYSIS_FILE}`."
            );
            for m in missed {
                let unit = &m.figure.unit;
                let _ = writeln!(w, "\n### {}\n", m.figure.label);
                let _ = writeln!(
                    w,
                    "{} against {}: {}.\n",
                    with_unit(m.stats.median, unit),
                    show_target(m.figure.target, unit),
                    show_verdict(m.verdict, unit)
                );
                match analysis.get(&m.figure.id) {
                    Some(text) => {
                        let _ = writeln!(w, "{text}");
                    }
                    None => {
                        let _ = writeln!(w, "No analysis of `{}` is written in `{ANALYSIS_FILE}` yet.", m.figure.id);
                    }
                }
            }
        }
    }

    let mut groups: Vec<&str> = Vec::new();
    for m in figures {
        if !groups.contains(&m.figure.group.as_str()) {
            groups.push(&m.figure.group);
        }
    }
    for group in groups {
        let rows: Vec<&Merged> = figures.iter().filter(|m| m.figure.group == group).collect();
        let floors = rows.iter().any(|m| m.figure.floor.is_some());
        let _ = writeln!(w, "\n## {group}\n");
        let _ = writeln!(
            w,
            "| Figure | Median | Spread (min–max) | Samples |{} Target | Verdict |\n|---|---:|---:|---:|{}---:|---|",
            if floors { " Floor |" } else { "" },
            if floors { "---:|" } else { "" }
        );
        for m in &rows {
            let unit = &m.figure.unit;
            let spread = if m.stats.min == m.stats.max {
                "–".to_string()
            } else {
                format!("{}–{}", show(m.stats.min, unit), with_unit(m.stats.max, unit))
            };
            let floor = match (floors, m.figure.floor) {
                (false, _) => String::new(),
                (true, None) => " – |".into(),
                (true, Some(floor)) => format!(" {} |", with_unit(floor, unit)),
            };
            let _ = writeln!(
                w,
                "| {} | {} | {spread} | {} |{floor} {} | {} |",
                cell(&m.figure.label),
                with_unit(m.stats.median, unit),
                m.figure.samples.len(),
                show_target(m.figure.target, unit),
                show_verdict(m.verdict, unit)
            );
        }
        let notes: Vec<&&Merged> = rows.iter().filter(|m| m.figure.note.is_some()).collect();
        if !notes.is_empty() {
            let _ = writeln!(w);
            for m in notes {
                let _ = writeln!(w, "- {}: {}", m.figure.label, m.figure.note.as_deref().unwrap_or_default());
            }
        }
    }
    md
}

/// A number as JSON: whole values without a fraction (`51234`, not `51234.0`).
fn num(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9e15 { json!(value as i64) } else { json!(value) }
}

fn report_json(figures: &[Merged], commands: &Commands, machine: &Machine, date: &str, invocation: &str) -> Value {
    let target = |t: Option<Target>| match t {
        None => Value::Null,
        Some(Target::Max(max)) => json!({ "max": num(max) }),
        Some(Target::Min(min)) => json!({ "min": num(min) }),
    };
    json!({
        "invocation": invocation,
        "report": REPORT_COMMAND,
        "date": date,
        "machine": { "cpus": machine.cpus, "cpuModel": machine.cpu_model, "memory": machine.memory },
        "commands": commands.iter().flat_map(|(bench, lines)| lines.iter().map(move |(command, runs)| {
            json!({ "bench": bench, "command": command, "runs": runs })
        })).collect::<Vec<_>>(),
        "figures": figures.iter().map(|m| json!({
            "id": m.figure.id,
            "bench": m.bench,
            "group": m.figure.group,
            "label": m.figure.label,
            "unit": m.figure.unit,
            "samples": m.figure.samples.iter().copied().map(num).collect::<Vec<_>>(),
            "median": num(m.stats.median),
            "min": num(m.stats.min),
            "max": num(m.stats.max),
            "target": target(m.figure.target),
            "floor": m.figure.floor.map(num),
            "verdict": m.verdict.map(|v| if v.pass { "PASS" } else { "MISS" }),
            "gap": m.verdict.map(|v| num(v.gap)),
            "gapPercent": m.verdict.and_then(|v| v.percent).map(num),
            "note": m.figure.note,
        })).collect::<Vec<_>>(),
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    let root = conference_e2e::repo_root();
    let bench_dir = args.bench_dir.unwrap_or_else(|| root.join("target/bench"));
    let out_dir = args.out_dir.unwrap_or(root);
    let mut files = Vec::new();
    for path in bench_files(&bench_dir)?.into_values().flatten() {
        let name = path.strip_prefix(&bench_dir).unwrap_or(&path).display().to_string();
        let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        files.push(parse_bench(&text, &name)?);
        println!("read {}", path.display());
    }
    ensure!(
        !files.is_empty(),
        "no benchmark JSON in {}: run make bench (or one of its benchmarks) first",
        bench_dir.display()
    );
    let (figures, commands) = merge(files)?;
    let machine = machine();
    let date = now_utc();
    let analysis_path = conference_e2e::repo_root().join(ANALYSIS_FILE);
    let analysis = analysis_sections(
        &fs::read_to_string(&analysis_path).with_context(|| format!("reading {}", analysis_path.display()))?,
    );
    let md = markdown(&figures, &commands, &machine, &date, &args.invocation, &analysis);
    let json = report_json(&figures, &commands, &machine, &date, &args.invocation);
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    for (name, text) in
        [("BENCHMARKS.md", md), ("BENCHMARKS.json", format!("{}\n", serde_json::to_string_pretty(&json)?))]
    {
        let path = out_dir.join(name);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let missed = figures.iter().filter(|m| m.verdict.is_some_and(|v| !v.pass)).count();
    let targets = figures.iter().filter(|m| m.verdict.is_some()).count();
    println!(
        "{} figures from {} bench(es); {} of {targets} targets met; wrote {} and BENCHMARKS.json",
        figures.len(),
        commands.len(),
        targets - missed,
        out_dir.join("BENCHMARKS.md").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(id: &str, samples: &[f64], target: Option<Target>) -> Figure {
        Figure {
            id: id.into(),
            group: "G".into(),
            label: id.into(),
            unit: "ms".into(),
            samples: samples.to_vec(),
            target,
            floor: None,
            note: None,
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(stats(&[5.0, 1.0, 3.0]), Stats { median: 3.0, min: 1.0, max: 5.0 });
        assert_eq!(stats(&[4.0, 1.0, 3.0, 10.0]), Stats { median: 3.5, min: 1.0, max: 10.0 });
        assert_eq!(stats(&[7.0]), Stats { median: 7.0, min: 7.0, max: 7.0 });
        assert_eq!(stats(&[2.0, 2.0]).median, 2.0);
    }

    #[test]
    fn a_max_target_missed_and_met() {
        // 80,000 gas against ≤ 75,000: missed by 5,000 gas, 6.67 % of the target.
        let missed = verdict(80_000.0, Target::Max(75_000.0));
        assert!(!missed.pass);
        assert_eq!(missed.gap, 5_000.0);
        assert!((missed.percent.unwrap() - 6.666_666).abs() < 1e-3);
        assert_eq!(show_verdict(Some(missed), "gas"), "**MISS** by 5,000 gas (6.7 %)");
        let met = verdict(60_000.0, Target::Max(75_000.0));
        assert!(met.pass);
        assert_eq!(met.gap, -15_000.0);
        assert_eq!(show_verdict(Some(met), "gas"), "PASS, 15,000 gas (20.0 %) to spare");
        // Exactly at the limit passes.
        assert!(verdict(75_000.0, Target::Max(75_000.0)).pass);
    }

    #[test]
    fn a_min_target_missed_and_met() {
        // 150 agreements/s against ≥ 200: missed by 50, a quarter of the target.
        let missed = verdict(150.0, Target::Min(200.0));
        assert_eq!(missed, Verdict { pass: false, gap: 50.0, percent: Some(25.0) });
        assert_eq!(show_verdict(Some(missed), "agreements/s"), "**MISS** by 50.00 agreements/s (25.0 %)");
        let met = verdict(250.0, Target::Min(200.0));
        assert_eq!(met, Verdict { pass: true, gap: -50.0, percent: Some(-25.0) });
        assert!(verdict(200.0, Target::Min(200.0)).pass);
        assert_eq!(verdict(1.0, Target::Max(0.0)).percent, None);
    }

    #[test]
    fn runs_merge_by_id_in_bench_order() {
        let run = |bench: &str, command: &str, figures: Vec<Figure>| BenchFile {
            bench: bench.into(),
            command: command.into(),
            figures,
        };
        let (merged, commands) = merge(vec![
            run("web", "node bench.mjs", vec![figure("web.tti", &[3.0, 1.0], None)]),
            run("gas", "gas-bench", vec![figure("gas.sign", &[51_234.0], Some(Target::Max(75_000.0)))]),
            run("web", "node bench.mjs", vec![figure("web.tti", &[2.0, 10.0], None)]),
        ])
        .unwrap();
        assert_eq!(merged.iter().map(|m| m.figure.id.as_str()).collect::<Vec<_>>(), ["gas.sign", "web.tti"]);
        assert_eq!(merged[1].figure.samples, [3.0, 1.0, 2.0, 10.0]);
        assert_eq!(merged[1].stats, Stats { median: 2.5, min: 1.0, max: 10.0 });
        assert!(merged[0].verdict.unwrap().pass);
        assert_eq!(
            commands,
            [
                ("gas".to_string(), vec![("gas-bench".to_string(), 1)]),
                ("web".into(), vec![("node bench.mjs".into(), 2)])
            ]
        );
    }

    #[test]
    fn runs_that_disagree_on_unit_or_target_are_refused() {
        let run = |figures| BenchFile { bench: "web".into(), command: "c".into(), figures };
        let mut other_unit = figure("a", &[1.0], None);
        other_unit.unit = "s".into();
        let error = merge(vec![run(vec![figure("a", &[1.0], None)]), run(vec![other_unit])]).unwrap_err();
        assert_eq!(error.to_string(), "figure a: unit ms in one run, s in another");
        let error =
            merge(vec![run(vec![figure("a", &[1.0], None)]), run(vec![figure("a", &[1.0], Some(Target::Min(2.0)))])])
                .unwrap_err();
        assert!(error.to_string().starts_with("figure a: target None in one run"), "{error}");
    }

    #[test]
    fn parses_the_shared_format_and_refuses_bad_figures() {
        let text = r#"{"bench": "gas", "command": "cargo run", "figures": [
            {"id": "gas.sign", "group": "Gas", "label": "sign", "unit": "gas", "samples": [51234],
             "target": {"max": 75000}, "floor": 43000, "note": "n"},
            {"id": "gas.ratio", "group": "Gas", "label": "r", "unit": "ratio", "samples": [0.25, 0.26], "target": null}]}"#;
        let file = parse_bench(text, "gas.json").unwrap();
        assert_eq!(file.bench, "gas");
        assert_eq!(file.figures[0].target, Some(Target::Max(75_000.0)));
        assert_eq!(file.figures[0].floor, Some(43_000.0));
        assert_eq!(file.figures[1].target, None);
        assert_eq!(file.figures[1].note, None);

        let bad = |figure: &str| {
            let text = format!(r#"{{"bench": "gas", "command": "c", "figures": [{figure}]}}"#);
            parse_bench(&text, "gas.json").unwrap_err().to_string()
        };
        let base = r#""id": "x", "group": "G", "label": "l", "unit": "ms""#;
        assert_eq!(bad(&format!(r#"{{{base}, "samples": []}}"#)), "gas.json: figure x: \"samples\" is empty");
        assert_eq!(
            bad(&format!(r#"{{{base}, "samples": ["1"]}}"#)),
            "gas.json: figure x: a sample must be a finite number, not \"1\""
        );
        assert_eq!(
            bad(&format!(r#"{{{base}, "samples": [1], "target": {{"max": 1, "min": 0}}}}"#)),
            "gas.json: figure x: \"target\" must be {\"max\": n}, {\"min\": n} or null, not {\"max\":1,\"min\":0}"
        );
        assert_eq!(
            bad(&format!(r#"{{{base}, "samples": [1]}}, {{{base}, "samples": [2]}}"#)),
            "gas.json: figure x appears twice"
        );
        assert_eq!(bad(r#"{"id": "x", "samples": [1]}"#), "gas.json: figure x: \"group\" must be a non-empty string");
    }

    #[test]
    fn reads_the_runs_of_a_bench_instead_of_its_top_level_copy() {
        let dir = std::env::temp_dir().join(format!("bench-report-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for path in ["runs/1/web.json", "runs/2/web.json", "runs/10/web.json", "web.json", "gas.json"] {
            let path = dir.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "{}").unwrap();
        }
        fs::write(dir.join("notes.txt"), "").unwrap();
        let files = bench_files(&dir).unwrap();
        let rel = |bench: &str| -> Vec<String> {
            files[bench].iter().map(|p| p.strip_prefix(&dir).unwrap().display().to_string()).collect()
        };
        assert_eq!(files.keys().collect::<Vec<_>>(), ["gas", "web"]);
        assert_eq!(rel("web"), ["runs/1/web.json", "runs/2/web.json", "runs/10/web.json"]);
        assert_eq!(rel("gas"), ["gas.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn numbers_are_shown_in_their_unit() {
        assert_eq!(with_unit(51_234.0, "gas"), "51,234 gas");
        assert_eq!(with_unit(1_234_567.8, "gas"), "1,234,568 gas");
        assert_eq!(with_unit(0.33333, "ratio"), "0.3333");
        assert_eq!(with_unit(640.26, "ms"), "640.3 ms");
        assert_eq!(with_unit(12.345, "kB"), "12.35 kB");
        assert_eq!(with_unit(1.5, "ms"), "1.50 ms");
        assert_eq!(with_unit(0.76, "kB"), "0.760 kB");
        assert_eq!(with_unit(-15_000.0, "gas"), "−15,000 gas");
        assert_eq!(show_target(Some(Target::Min(20_000.0)), "events/s"), "≥ 20,000 events/s");
        assert_eq!(show_target(None, "ms"), "–");
    }

    #[test]
    fn analysis_sections_are_read_by_figure_id() {
        let text = "# Title\n\nintro\n\n## gas.a\n\nfirst line\nsecond\n\n## backend.b\nonly\n";
        let sections = analysis_sections(text);
        assert_eq!(sections.len(), 2);
        assert_eq!(sections["gas.a"], "first line\nsecond");
        assert_eq!(sections["backend.b"], "only");
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(20_454), "2026-01-01");
        assert_eq!(civil_date(-1), "1969-12-31");
    }
}
