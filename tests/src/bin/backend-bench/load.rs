//! The loop's figures under load: many customers signing at once, live agreements by the thousand, the
//! backend's memory and CPU read from /proc, and the growth of each with the number of live agreements.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{
    eips::{BlockNumberOrTag, Encodable2718},
    network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log, TransactionReceipt, TransactionRequest},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolEvent,
};
use anyhow::{Context, Result, ensure};
use conference_backend::{
    chain::ConferenceEscrow,
    dev::devnet::{self, Devnet},
    domain::{order::Order, stop::SignedStop},
};
use conference_e2e::{Stack, check_settlement, signed};
use futures::future::try_join_all;
use serde_json::json;
use tokio::sync::Mutex;

use crate::figures::{self, Figure};

/// How many customers sign at once: each its own key and nonce, so that none waits on another's.
pub const STREAMS: usize = 64;
/// How often blocks are mined while many agreements are signed at once (see [`Miner`]).
const BLOCK_EVERY: Duration = Duration::from_millis(200);
const WAIT: Duration = Duration::from_secs(600);
/// How often a sample's record and the chain are read while it is timed.
const TICK: Duration = Duration::from_millis(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// No conference is run: the backend's own loop alone.
    Noop,
    /// A room process per agreement.
    Local,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Noop => "noop",
            Self::Local => "local",
        }
    }
}

/// Gives `who` a million ETH with `anvil_setBalance`: about eight million of the bench's deposits.
pub async fn fund(rpc: &DynProvider, who: Address) -> Result<()> {
    let balance = format!("{:#x}", U256::from(10).pow(U256::from(24)));
    rpc.raw_request::<_, serde_json::Value>("anvil_setBalance".into(), (who, balance)).await?;
    Ok(())
}

/// Customers of the bench: random keys funded with [`fund`], each sending its own
/// transactions in nonce order (automatic mining: each is mined as it arrives).
pub struct Customers {
    rpc: DynProvider,
    escrow: Address,
    chain_id: u64,
    keys: Vec<(EthereumWallet, Mutex<u64>)>,
    sign_input: Bytes,
    /// How often a receipt is looked for: each millisecond while one transaction is timed and mined
    /// as it comes; less often while many wait for a [`Miner`]'s next block.
    receipt_poll: std::sync::Mutex<Duration>,
    /// Which customer signed each agreement, as each signing's receipt names it.
    signer_of: std::sync::Mutex<HashMap<u64, usize>>,
}

impl Customers {
    pub async fn new(devnet: &Devnet, count: usize) -> Result<Arc<Self>> {
        let rpc = devnet.provider_for(&devnet.customer)?;
        let mut keys = Vec::new();
        for _ in 0..count {
            let key = PrivateKeySigner::random();
            fund(&rpc, key.address()).await?;
            keys.push((EthereumWallet::from(key), Mutex::new(0)));
        }
        let escrow = ConferenceEscrow::new(devnet.escrow, rpc.clone());
        let sign_input = escrow.sign(devnet::DYNAMIC_TERMS, 0, false).calldata().clone();
        let chain_id = rpc.get_chain_id().await?;
        let receipt_poll = std::sync::Mutex::new(Duration::from_millis(1));
        Ok(Arc::new(Self {
            rpc,
            escrow: devnet.escrow,
            chain_id,
            keys,
            sign_input,
            receipt_poll,
            signer_of: Default::default(),
        }))
    }

    /// Sends a call to the escrow as customer `who` and returns its receipt (mined at once).
    async fn send(&self, who: usize, input: Bytes, value: U256) -> Result<TransactionReceipt> {
        let (wallet, nonce) = &self.keys[who];
        let hash = {
            let mut nonce = nonce.lock().await;
            let request = TransactionRequest::default()
                .with_to(self.escrow)
                .with_input(input)
                .with_value(value)
                .with_nonce(*nonce)
                .with_chain_id(self.chain_id)
                .with_gas_limit(1_000_000)
                .with_max_fee_per_gas(100_000_000_000)
                .with_max_priority_fee_per_gas(1_000_000_000);
            let envelope = request.build(wallet).await?;
            let hash = *self.rpc.send_raw_transaction(&envelope.encoded_2718()).await?.tx_hash();
            *nonce += 1;
            hash
        };
        let started = Instant::now();
        loop {
            if let Some(receipt) = self.rpc.get_transaction_receipt(hash).await? {
                ensure!(receipt.status(), "transaction {hash} reverted");
                return Ok(receipt);
            }
            ensure!(started.elapsed() < WAIT, "transaction {hash} was not mined");
            let poll = *self.receipt_poll.lock().expect("not poisoned");
            tokio::time::sleep(poll).await;
        }
    }

    /// Customer `who` signs the dynamic-price demo offer: the agreement id and the receipt.
    pub async fn sign(&self, who: usize) -> Result<(u64, TransactionReceipt)> {
        let (id, receipt) = signed(self.send(who, self.sign_input.clone(), Devnet::offer_deposit()).await?)?;
        self.signer_of.lock().expect("not poisoned").insert(id, who);
        Ok((id, receipt))
    }

    /// The customer that signed agreement `id`, once its signing receipt was read.
    fn signer_of(&self, id: u64) -> Option<usize> {
        self.signer_of.lock().expect("not poisoned").get(&id).copied()
    }

    /// Customer `who` stops its agreement `id`.
    pub async fn stop(&self, who: usize, id: u64) -> Result<TransactionReceipt> {
        let input = ConferenceEscrow::new(self.escrow, self.rpc.clone()).stop(U256::from(id)).calldata().clone();
        self.send(who, input, U256::ZERO).await
    }
}

/// Blocks of many transactions, mined every [`BLOCK_EVERY`] while it runs, as a real chain mines them.
/// Anvil's own mining (a block for each transaction as it comes) hashes the whole state for every
/// transaction, and the escrow's state grows with each agreement: signing thousands of agreements so
/// would measure anvil's hashing, not the backend.
pub struct Miner {
    rpc: DynProvider,
    task: tokio::task::JoinHandle<()>,
}

impl Miner {
    pub async fn start(customers: &Customers) -> Result<Self> {
        let rpc = customers.rpc.clone();
        rpc.raw_request::<_, serde_json::Value>("evm_setAutomine".into(), (false,)).await?;
        *customers.receipt_poll.lock().expect("not poisoned") = BLOCK_EVERY / 4;
        let task = tokio::spawn({
            let rpc = rpc.clone();
            async move {
                loop {
                    tokio::time::sleep(BLOCK_EVERY).await;
                    if let Err(err) = rpc.raw_request::<_, serde_json::Value>("evm_mine".into(), ()).await {
                        eprintln!("  mining a block failed: {err}");
                    }
                }
            }
        });
        Ok(Self { rpc, task })
    }

    /// Back to a block for each transaction as it comes, mining what waits first.
    pub async fn stop(self, customers: &Customers) -> Result<()> {
        self.task.abort();
        self.rpc.raw_request::<_, serde_json::Value>("evm_setAutomine".into(), (true,)).await?;
        self.rpc.raw_request::<_, serde_json::Value>("evm_mine".into(), ()).await?;
        *customers.receipt_poll.lock().expect("not poisoned") = Duration::from_millis(1);
        Ok(())
    }
}

/// Signs `n` agreements on all streams at once; returns each agreement's id and its customer.
pub async fn sign_many(customers: &Arc<Customers>, n: usize) -> Result<Vec<(u64, usize)>> {
    let streams = customers.keys.len();
    let tasks = (0..streams).map(|who| {
        let customers = customers.clone();
        async move {
            let mut ids = Vec::new();
            for i in (who..n).step_by(streams) {
                ids.push((customers.sign(who).await?.0, who));
                if who == 0 && i > 0 && i % 10_000 < streams {
                    eprintln!("  signed about {i}");
                }
            }
            anyhow::Ok(ids)
        }
    });
    Ok(try_join_all(tasks).await?.into_iter().flatten().collect())
}

/// Follows one escrow event from a block on: the agreement ids (first indexed topic) as they appear.
struct Follower {
    signature: B256,
    next_block: u64,
}

impl Follower {
    fn new(signature: B256, from_block: u64) -> Self {
        Self { signature, next_block: from_block }
    }

    async fn poll(&mut self, rpc: &DynProvider, escrow: Address) -> Result<Vec<u64>> {
        Ok(self.poll_logs(rpc, escrow).await?.iter().map(topic_id).collect())
    }

    /// The new logs themselves, in chain order.
    async fn poll_logs(&mut self, rpc: &DynProvider, escrow: Address) -> Result<Vec<Log>> {
        let head = rpc.get_block_number().await?;
        if head < self.next_block {
            return Ok(Vec::new());
        }
        let filter =
            Filter::new().address(escrow).event_signature(self.signature).from_block(self.next_block).to_block(head);
        let logs = rpc.get_logs(&filter).await?;
        self.next_block = head + 1;
        Ok(logs)
    }
}

/// The agreement id a log names in its first indexed topic.
fn topic_id(log: &Log) -> u64 {
    U256::from_be_bytes(log.topics()[1].0).to::<u64>()
}

/// Whether agreement `id` was activated on-chain from `from_block` on.
async fn activated(stack: &Stack, id: u64, from_block: u64) -> Result<bool> {
    let filter = Filter::new()
        .address(stack.devnet.escrow)
        .event_signature(ConferenceEscrow::AgreementActivated::SIGNATURE_HASH)
        .topic1(B256::from(U256::from(id)))
        .from_block(from_block);
    Ok(!stack.customer.get_logs(&filter).await?.is_empty())
}

/// The backend's resident memory (VmRSS) in MB.
pub fn resident_mb(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    let kib: f64 = line.split_whitespace().nth(1).context("VmRSS value")?.parse()?;
    Ok(kib / 1024.0)
}

/// The backend's CPU time so far (utime + stime), in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3: state.
    let fields: Vec<&str> = stat.rsplit_once(')').context("malformed stat")?.1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / clock_ticks()?)
}

/// The CPU time so far of a process and its descendants (anvil runs under a Node.js launcher).
fn tree_cpu_seconds(pid: u32) -> Result<f64> {
    let mut total = cpu_seconds(pid)?;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let children = std::fs::read_to_string(task?.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace() {
            total += tree_cpu_seconds(child.parse()?).unwrap_or(0.0);
        }
    }
    Ok(total)
}

fn clock_ticks() -> Result<f64> {
    let out = std::process::Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

/// The p-th percentile (nearest rank) of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// log(v2/v1) / log(n2/n1): 0 is constant, 1 linear, 2 quadratic.
fn exponent(n1: f64, v1: f64, n2: f64, v2: f64) -> f64 {
    (v2 / v1).ln() / (n2 / n1).ln()
}

fn complexity(e: f64) -> &'static str {
    match e {
        e if e < 0.25 => "O(1)",
        e if e < 0.75 => "sub-linear",
        e if e < 1.25 => "O(n)",
        e if e < 1.75 => "between O(n) and O(n²)",
        _ => "O(n²) or worse",
    }
}

/// What one level of live agreements measured.
struct Level {
    live: usize,
    deploy: (f64, f64),
    activation: (f64, f64),
    rss_mb: f64,
    /// Percent of one core while only the live agreements run.
    cpu_percent: f64,
}

/// Brings the backend to each number of live (activated, running) agreements and times `samples`
/// more agreements there, one after another: from the signing block (its receipt read; anvil mines
/// each transaction as it comes while samples are timed) to the deploy call (the record shows the conference deploying) and to the activation on
/// the chain; each sample is then stopped and settled, so every sample sees the same number of live
/// agreements. Then the backend's resident memory and its CPU over `idle` with nothing else going on.
pub async fn live_levels(kind: Kind, levels: &[usize], samples: usize, idle: Duration, websocket: bool) -> Result<()> {
    ensure!(samples > 0 && !levels.is_empty(), "at least one level and one sample");
    // The service's own probe interval (2 s), not the tests' quicker one. Over HTTP the backend polls
    // only: the figure is the fallback's, for a node without WebSocket (by default it would follow the
    // same node's new heads over WebSocket, as the `ws` figures do).
    let mut flags = vec!["--orchestrator", kind.name(), "--probe-interval-ms", "2000"];
    if !websocket {
        flags.push("--poll-only");
    }
    let stack = Stack::start_with(&format!("bench-loop-{}", kind.name()), websocket, &flags).await?;
    let transport = if websocket { "ws" } else { "http" };
    let pid = stack.backend_pid().context("the backend runs")?;
    let customers = Customers::new(&stack.devnet, STREAMS).await?;
    let mut activations =
        Follower::new(ConferenceEscrow::AgreementActivated::SIGNATURE_HASH, stack.devnet.deploy_block);
    let (mut background, mut active) = (0usize, 0usize);
    let mut measured = Vec::new();
    println!(
        "{} orchestrator: signing block to deploy call and to activation receipt ({samples} samples per level), \
         backend memory and CPU ({} s with nothing but the live agreements):",
        kind.name(),
        idle.as_secs()
    );
    for &level in levels {
        // The agreements that keep running (one fewer than the level: the sample is the last).
        let more = level.saturating_sub(1).saturating_sub(background);
        let (ramp_started, cpu_before) = (Instant::now(), cpu_seconds(pid)?);
        let miner = Miner::start(&customers).await?;
        sign_many(&customers, more).await?;
        background += more;
        while active < background {
            active += activations.poll(&stack.customer, stack.devnet.escrow).await?.len();
            ensure!(ramp_started.elapsed() < WAIT, "only {active} of {background} agreements activated");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        miner.stop(&customers).await?;
        if more > 0 {
            let seconds = ramp_started.elapsed().as_secs_f64();
            eprintln!(
                "  {more} more agreements signed and activated in {seconds:.1} s ({:.0}/s), backend CPU {:.2} ms each",
                more as f64 / seconds,
                (cpu_seconds(pid)? - cpu_before) * 1e3 / more as f64
            );
        }
        let (mut deploy, mut activation) = (Vec::new(), Vec::new());
        for _ in 0..samples {
            // The clock starts once the signing block is there (its receipt read): how long anvil
            // takes to mine it grows with the chain's state and is the chain's, not the backend's.
            let (id, receipt) = customers.sign(0).await?;
            let mined = Instant::now();
            let block = receipt.block_number.context("a mined receipt")?;
            let deadline = mined + WAIT;
            loop {
                if let Some(record) = stack.agreement(id).await?
                    && record["conference"]["state"] != "absent"
                {
                    deploy.push(mined.elapsed().as_secs_f64() * 1e3);
                    break;
                }
                ensure!(Instant::now() < deadline, "agreement {id}: no deploy\n{}", stack.log_tail());
                tokio::time::sleep(TICK).await;
            }
            while !activated(&stack, id, block).await? {
                ensure!(Instant::now() < deadline, "agreement {id}: no activation\n{}", stack.log_tail());
                tokio::time::sleep(TICK).await;
            }
            activation.push(mined.elapsed().as_secs_f64() * 1e3);
            // Counted here, so that the ramp's count of activations stays the background's.
            activations.poll(&stack.customer, stack.devnet.escrow).await?;
            customers.stop(0, id).await?;
            stack.wait_status(id, "settled", WAIT).await?;
        }
        let (cpu_start, clock) = (cpu_seconds(pid)?, Instant::now());
        tokio::time::sleep(idle).await;
        let cpu_percent = (cpu_seconds(pid)? - cpu_start) / clock.elapsed().as_secs_f64() * 100.0;
        let rss_mb = resident_mb(pid)?;
        deploy.sort_by(f64::total_cmp);
        activation.sort_by(f64::total_cmp);
        let row = Level {
            live: background + 1,
            deploy: (percentile(&deploy, 50.0), percentile(&deploy, 99.0)),
            activation: (percentile(&activation, 50.0), percentile(&activation, 99.0)),
            rss_mb,
            cpu_percent,
        };
        println!(
            "  {:>6} live: deploy call p50 {:.1} ms, p99 {:.1} ms; activation receipt p50 {:.1} ms, p99 {:.1} ms; \
             resident {:.1} MB; CPU {:.1} % of a core",
            row.live, row.deploy.0, row.deploy.1, row.activation.0, row.activation.1, row.rss_mb, row.cpu_percent
        );
        measured.push(row);
    }
    let figures = level_figures(kind, transport, samples, idle, &measured);
    print_growth(&measured);
    figures::record("backend", figures)
}

fn level_figures(kind: Kind, transport: &str, samples: usize, idle: Duration, levels: &[Level]) -> Vec<Figure> {
    let name = format!("{}.{transport}", kind.name());
    let follows =
        if transport == "ws" { "follows new heads over WebSocket" } else { "polls the chain every 250 ms over HTTP" };
    let what = match kind {
        Kind::Noop => "no-op orchestrator",
        Kind::Local => "local rooms",
    };
    let timing_note = format!(
        "{samples} agreements signed one after another with the others live (brought live in blocks mined \
         every 200 ms); the clock starts when the signing transaction's receipt is read (anvil mines it at \
         once), and the record and the chain are read every 2 ms; the backend {follows} (release build)"
    );
    let mut figures = Vec::new();
    for level in levels {
        let live = level.live;
        let deploy_target = |p: &str| (kind == Kind::Noop && live == 1_000 && p == "p99").then_some(50.0);
        for (what_step, step, (p50, p99)) in
            [("deploy call", "deploy", level.deploy), ("activation receipt", "activation", level.activation)]
        {
            for (p, value) in [("p50", p50), ("p99", p99)] {
                figures.push(Figure {
                    id: format!("backend.loop.{name}.live{live}.{step}.{p}"),
                    group: "Backend loop",
                    label: format!("signing block to {what_step}, {live} live, {what}, {transport} ({p})"),
                    unit: "ms",
                    samples: vec![value],
                    target: if step == "deploy" { deploy_target(p).and_then(figures::at_most) } else { None },
                    note: Some(timing_note.clone()),
                });
            }
        }
        figures.push(Figure {
            id: format!("backend.loop.{name}.live{live}.rss"),
            group: "Backend loop",
            label: format!("backend resident memory, {live} live, {what}, {transport}"),
            unit: "MB",
            samples: vec![level.rss_mb],
            target: (kind == Kind::Noop && live == 10_000).then_some(64.0).and_then(figures::at_most),
            note: Some("VmRSS of the backend process (its rooms are separate processes)".into()),
        });
        figures.push(Figure {
            id: format!("backend.loop.{name}.live{live}.cpu"),
            group: "Backend loop",
            label: format!("backend CPU with {live} live, {what}, {transport} (% of one core)"),
            unit: "%",
            samples: vec![level.cpu_percent],
            target: None,
            note: Some(format!(
                "utime + stime over {} s of wall time with nothing but the live agreements (probed every 2 s)",
                idle.as_secs()
            )),
        });
    }
    // Per 1,000 live: the increase over the smallest level, scaled to 1,000 agreements, at the largest.
    if let (Some(low), Some(high)) = (levels.first(), levels.last())
        && high.live > low.live
    {
        let thousands = (high.live - low.live) as f64 / 1_000.0;
        let span = format!("between {} and {} live", low.live, high.live);
        figures.push(Figure {
            id: format!("backend.loop.{name}.rss_per_1000"),
            group: "Backend loop",
            label: format!("backend resident memory per 1,000 live agreements, {what}, {transport}"),
            unit: "MB",
            samples: vec![(high.rss_mb - low.rss_mb) / thousands],
            target: None,
            note: Some(format!("the growth of VmRSS {span}, per 1,000 agreements")),
        });
        let growth_note = format!(
            "k in value ∝ n^k {span}, n the live agreements: log(value at {} ÷ value at {}) ÷ log({} ÷ {}); \
             0 is constant (O(1)), 1 linear (O(n)), 2 quadratic",
            high.live, low.live, high.live, low.live
        );
        let e = |v1: f64, v2: f64| exponent(low.live as f64, v1.max(0.01), high.live as f64, v2.max(0.01));
        for (key, what_grows, v1, v2) in growing(low, high) {
            figures.push(Figure {
                id: format!("backend.loop.{name}.growth.{key}"),
                group: "Backend loop",
                label: format!("growth of {what_grows} with live agreements, {what}, {transport} (exponent k)"),
                unit: "ratio",
                samples: vec![e(v1, v2)],
                target: None,
                note: Some(growth_note.clone()),
            });
        }
        figures.push(Figure {
            id: format!("backend.loop.{name}.cpu_per_1000"),
            group: "Backend loop",
            label: format!("backend CPU per 1,000 live agreements, {what}, {transport} (% of one core)"),
            unit: "%",
            samples: vec![(high.cpu_percent - low.cpu_percent) / thousands],
            target: None,
            note: Some(format!("the growth of the idle CPU share {span}, per 1,000 agreements")),
        });
    }
    // Between each level and the next (1 → 100 → 1,000 → 10,000): where a figure starts to grow.
    for pair in levels.windows(2) {
        let (low, high) = (&pair[0], &pair[1]);
        let note = format!(
            "k in value ∝ n^k between {} and {} live, n the live agreements: log(value at {} ÷ value at {}) ÷ \
             log({} ÷ {}); 0 is constant (O(1)), 1 linear (O(n)), 2 quadratic",
            low.live, high.live, high.live, low.live, high.live, low.live
        );
        let e = |v1: f64, v2: f64| exponent(low.live as f64, v1.max(0.01), high.live as f64, v2.max(0.01));
        for (key, what_grows, v1, v2) in growing(low, high) {
            figures.push(Figure {
                id: format!("backend.loop.{name}.growth.{key}.live{}to{}", low.live, high.live),
                group: "Backend loop",
                label: format!(
                    "growth of {what_grows} from {} to {} live, {what}, {transport} (exponent k)",
                    low.live, high.live
                ),
                unit: "ratio",
                samples: vec![e(v1, v2)],
                target: None,
                note: Some(note.clone()),
            });
        }
    }
    figures
}

/// Each loop figure of two levels, for its growth: (id key, what it is, value at the lower level, at the
/// higher).
fn growing(low: &Level, high: &Level) -> [(&'static str, &'static str, f64, f64); 6] {
    [
        ("deploy_p50", "signing block to deploy call (p50)", low.deploy.0, high.deploy.0),
        ("deploy_p99", "signing block to deploy call (p99)", low.deploy.1, high.deploy.1),
        ("activation_p50", "signing block to activation receipt (p50)", low.activation.0, high.activation.0),
        ("activation_p99", "signing block to activation receipt (p99)", low.activation.1, high.activation.1),
        ("rss", "resident memory", low.rss_mb, high.rss_mb),
        ("cpu", "idle CPU", low.cpu_percent, high.cpu_percent),
    ]
}

/// Prints the exponent of each figure's growth between consecutive levels, and what it suggests.
fn print_growth(levels: &[Level]) {
    println!("growth with the number of live agreements n (exponent k of n^k between levels):");
    for pair in levels.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (n1, n2) = (a.live as f64, b.live as f64);
        let e = |v1: f64, v2: f64| exponent(n1, v1.max(0.01), n2, v2.max(0.01));
        let shown: Vec<String> = growing(a, b)
            .iter()
            .map(|(key, _, v1, v2)| {
                let k = e(*v1, *v2);
                format!("{key} {k:+.2} ({})", complexity(k))
            })
            .collect();
        println!("  {:>6} → {:<6} {}", a.live, b.live, shown.join(", "));
    }
}

/// How the throughput bench's customers open and stop their conferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Path {
    /// One deposit into an escrow account each, then EIP-712 signed orders and signed stops posted to the
    /// API: the chain sees only the operator's batches (open, activate, stop and settle).
    Account,
    /// A signing transaction and a stop transaction per agreement, from each customer's own wallet.
    Direct,
}

/// `agreements` agreements through sign, deploy, activate, stop, undeploy and settle with the no-op
/// orchestrator, by `path`: agreements per second from the first signing (or order) to the last
/// settlement. Every settlement is then checked to the wei, and every agreement deployed exactly once.
pub async fn throughput(agreements: usize, path: Path) -> Result<()> {
    match path {
        Path::Account => throughput_account(agreements).await,
        Path::Direct => throughput_direct(agreements).await,
    }
}

/// Customers of the account path: each deposits once, then posts its orders one after another (the
/// backend accepts one order of a customer at a time).
const ACCOUNT_CUSTOMERS: usize = 32;
/// Requests to the API in flight at once on the account path (orders and stops together), and the
/// connections kept for them: under the backend's 64 connections per client (more are closed at once),
/// with room for the stack's own reads.
const IN_FLIGHT: usize = 48;

/// The JSON body of `POST /api/orders`: `order` signed by `key` in the escrow's EIP-712 domain.
fn order_body(key: &PrivateKeySigner, order: &Order, chain_id: u64, escrow: Address) -> Result<serde_json::Value> {
    let signature = key.sign_hash_sync(&order.digest(chain_id, escrow))?;
    Ok(json!({
        "customer": format!("{:#x}", key.address()),
        "order": {
            "termsId": order.terms_id,
            "allowedRegions": order.allowed_regions,
            "gdpr": order.gdpr,
            "maxCost": order.max_cost.to_string(),
            "nonce": order.nonce.to_string(),
            "deadline": order.deadline,
        },
        "signature": alloy::hex::encode_prefixed(signature.as_bytes()),
    }))
}

/// The JSON body of `POST /api/agreements/{id}/stop`: the customer's stop of the agreement's first (and
/// only) session at `stopped_at`.
fn stop_body(
    key: &PrivateKeySigner,
    id: u64,
    stopped_at: u64,
    deadline: u64,
    chain_id: u64,
    escrow: Address,
) -> Result<serde_json::Value> {
    let stop = SignedStop { started_at: 0, stopped_at, deadline, signature: Default::default() };
    let signature = key.sign_hash_sync(&stop.digest(id, 1, chain_id, escrow))?;
    Ok(
        json!({ "stoppedAt": stopped_at, "deadline": deadline, "signature": alloy::hex::encode_prefixed(signature.as_bytes()) }),
    )
}

/// Posts `body` to `url` until the API accepts it (202); a 409 (the backend has not yet seen the
/// activation the bench saw on the chain) is tried again.
async fn post_accepted(http: &reqwest::Client, url: &str, body: &serde_json::Value) -> Result<()> {
    let started = Instant::now();
    loop {
        let response = http.post(url).json(body).send().await?;
        let status = response.status().as_u16();
        if status == 202 {
            return Ok(());
        }
        let text = response.text().await?;
        ensure!(status == 409 && started.elapsed() < WAIT, "{url}: {status} {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The account path: customers deposit once into their escrow accounts (before the clock starts), then
/// post a signed order per agreement and, once the bench sees it activated on the chain, a signed stop.
/// Every settlement is checked to the wei (the charge is price × seconds used, charge + refund is the
/// order's lock exactly), and so is each account on the chain afterwards: free = deposit − charges,
/// nothing locked.
async fn throughput_account(agreements: usize) -> Result<()> {
    ensure!(agreements > 0, "at least one agreement");
    let flags = ["--orchestrator", "noop", "--probe-interval-ms", "2000"];
    let stack = Stack::start_with("bench-throughput-account", true, &flags).await?;
    let (chain_id, escrow) = (stack.devnet.anvil.chain_id(), stack.devnet.escrow);
    let lock = Devnet::offer_deposit();
    let n_customers = ACCOUNT_CUSTOMERS.min(agreements);
    // Customer c orders agreements c, c + n, c + 2n, …: one deposit covers all of them.
    let share = |c: usize| (c..agreements).step_by(n_customers).count();
    let keys: Vec<PrivateKeySigner> = (0..n_customers).map(|_| PrivateKeySigner::random()).collect();
    let mut deposited = Vec::new();
    for (c, key) in keys.iter().enumerate() {
        fund(&stack.customer, key.address()).await?;
        let amount = lock * U256::from(share(c));
        let wallet = stack.devnet.provider_for(key)?;
        let receipt = ConferenceEscrow::new(escrow, wallet)
            .depositToAccount(0, amount)
            .value(amount)
            .send()
            .await?
            .get_receipt()
            .await?;
        ensure!(receipt.status(), "customer {c}'s deposit reverted");
        deposited.push(amount);
    }
    let index: HashMap<Address, usize> = keys.iter().enumerate().map(|(c, key)| (key.address(), c)).collect();
    let head = stack.customer.get_block_by_number(BlockNumberOrTag::Latest).await?.context("no head block")?;
    let deadline = head.header.timestamp + 3600;
    let from_block = head.header.number + 1;
    println!(
        "throughput (account path): {agreements} agreements through the whole loop, no-op orchestrator, \
         {n_customers} customers with one deposit each, signed orders and stops"
    );
    let (backend, anvil, bench) =
        (stack.backend_pid().context("the backend runs")?, stack.devnet.anvil.child().id(), std::process::id());
    let cpu_before = (cpu_seconds(backend)?, tree_cpu_seconds(anvil)?, cpu_seconds(bench)?);
    let miner_handle = Customers::new(&stack.devnet, 0).await?;
    let miner = Miner::start(&miner_handle).await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(IN_FLIGHT).build()?;
    let limit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let started = Instant::now();
    let ordering = {
        let tasks: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(c, key)| {
                let (key, http, limit, url) =
                    (key.clone(), http.clone(), limit.clone(), format!("{}/api/orders", stack.api));
                let count = share(c);
                async move {
                    for i in 0..count {
                        let order = Order {
                            terms_id: devnet::DYNAMIC_TERMS,
                            allowed_regions: 0,
                            gdpr: false,
                            max_cost: lock,
                            nonce: U256::from(i + 1),
                            deadline,
                        };
                        let body = order_body(&key, &order, chain_id, escrow)?;
                        let _permit = limit.acquire().await?;
                        post_accepted(&http, &url, &body)
                            .await
                            .with_context(|| format!("customer {c}'s order {}", i + 1))?;
                    }
                    anyhow::Ok(())
                }
            })
            .collect();
        tokio::spawn(try_join_all(tasks))
    };
    let rpc = stack.customer.clone();
    let mut opened = Follower::new(ConferenceEscrow::OrderFilled::SIGNATURE_HASH, from_block);
    let mut activated = Follower::new(ConferenceEscrow::AgreementActivated::SIGNATURE_HASH, from_block);
    let mut settled = Follower::new(ConferenceEscrow::AgreementSettled::SIGNATURE_HASH, from_block);
    let mut customer_of: HashMap<u64, usize> = HashMap::new();
    // The operator's transactions: those that opened orders, activated, and settled.
    let (mut open_txs, mut activate_txs, mut settle_txs) = (HashSet::new(), HashSet::new(), HashSet::new());
    let (mut waiting, mut stops, mut done) = (Vec::<u64>::new(), Vec::new(), 0usize);
    let mut ordering = Some(ordering);
    // When the API had accepted every order: how fast orders alone go in.
    let mut ordered_in = None;
    let mut last_report = Instant::now();
    while done < agreements {
        ensure!(started.elapsed() < WAIT, "{done} of {agreements} settled within {WAIT:?}\n{}", stack.log_tail());
        if let Some(task) = ordering.take_if(|task| task.is_finished()) {
            task.await??;
            ordered_in = Some(started.elapsed().as_secs_f64());
        }
        for log in opened.poll_logs(&rpc, escrow).await? {
            let customer = Address::from_word(log.topics()[2]);
            customer_of.insert(topic_id(&log), *index.get(&customer).context("an order of another customer")?);
            open_txs.insert(log.transaction_hash);
        }
        for log in activated.poll_logs(&rpc, escrow).await? {
            waiting.push(topic_id(&log));
            activate_txs.insert(log.transaction_hash);
        }
        if !waiting.is_empty() {
            // Stopped at the chain's latest time: at or after each activation seen so far.
            let now =
                rpc.get_block_by_number(BlockNumberOrTag::Latest).await?.context("no head block")?.header.timestamp;
            // An activation seen before its order's opening waits for the next round.
            for id in std::mem::take(&mut waiting) {
                let Some(&c) = customer_of.get(&id) else {
                    waiting.push(id);
                    continue;
                };
                let body = stop_body(&keys[c], id, now, deadline, chain_id, escrow)?;
                let (http, limit, url) =
                    (http.clone(), limit.clone(), format!("{}/api/agreements/{id}/stop", stack.api));
                stops.push(tokio::spawn(async move {
                    let _permit = limit.acquire().await?;
                    post_accepted(&http, &url, &body).await
                }));
            }
        }
        for log in settled.poll_logs(&rpc, escrow).await? {
            done += 1;
            settle_txs.insert(log.transaction_hash);
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!("  {} opened, {done} settled after {:.0} s", customer_of.len(), started.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    miner.stop(&miner_handle).await?;
    let backend_ms = (cpu_seconds(backend)? - cpu_before.0) * 1e3 / agreements as f64;
    let anvil_percent = (tree_cpu_seconds(anvil)? - cpu_before.1) / seconds * 100.0;
    let bench_percent = (cpu_seconds(bench)? - cpu_before.2) / seconds * 100.0;
    if let Some(task) = ordering {
        task.await??;
    }
    let ordered_in = ordered_in.unwrap_or(seconds);
    println!(
        "  every order accepted by the API after {ordered_in:.1} s ({:.0} orders/s, {n_customers} customers posting)",
        agreements as f64 / ordered_in
    );
    for stop in stops {
        stop.await??;
    }
    let rate = agreements as f64 / seconds;
    let per_batch = |txs: &HashSet<Option<B256>>| agreements as f64 / txs.len().max(1) as f64;
    println!(
        "  {agreements} settled in {seconds:.1} s: {rate:.0} agreements/s; the backend's CPU {backend_ms:.2} ms per \
         agreement (one core would keep up with {:.0}/s), anvil's {anvil_percent:.0} % of a core, the bench's own \
         {bench_percent:.0} %; the operator's batches: {} opening ({:.1} orders each), {} activating ({:.1} each), \
         {} settling ({:.1} each), {} operator transactions in all; checking each settlement…",
        1e3 / backend_ms,
        open_txs.len(),
        per_batch(&open_txs),
        activate_txs.len(),
        per_batch(&activate_txs),
        settle_txs.len(),
        per_batch(&settle_txs),
        open_txs.iter().chain(&activate_txs).chain(&settle_txs).collect::<HashSet<_>>().len(),
    );
    let mut ids: Vec<u64> = customer_of.keys().copied().collect();
    ids.sort_unstable();
    ensure!(ids.len() == agreements, "{} orders opened, {agreements} asked", ids.len());
    let mut charged = vec![U256::ZERO; n_customers];
    for &id in &ids {
        let record = stack.wait_status(id, "settled", WAIT).await?;
        let settlement = check_settlement(&record).with_context(|| format!("agreement {id}"))?;
        ensure!(record["fromAccount"] == true, "agreement {id} not opened from an account: {record}");
        ensure!(
            settlement.charge + settlement.refund == lock,
            "agreement {id}: charge {} + refund {} != the order's lock {lock}",
            settlement.charge,
            settlement.refund
        );
        ensure!(record["conference"]["deployCount"] == 1, "agreement {id} deployed other than once: {record}");
        charged[customer_of[&id]] += settlement.charge;
    }
    let reader = ConferenceEscrow::new(escrow, rpc.clone());
    for (c, key) in keys.iter().enumerate() {
        let account = reader.accountOf(key.address(), 0).call().await?;
        let (free, locked) = (U256::from(account.free), U256::from(account.locked));
        ensure!(
            free == deposited[c] - charged[c] && locked.is_zero(),
            "customer {c}'s account: free {free}, locked {locked}; expected {} free, none locked",
            deposited[c] - charged[c]
        );
    }
    println!(
        "  every settlement matches price × seconds used, charge + refund = the order's lock, to the wei; each \
         deployed once; each account holds its deposit − its charges, nothing locked"
    );
    figures::record(
        "backend",
        vec![
            Figure {
                id: "backend.throughput.noop".into(),
                group: "Backend loop",
                label: "sustained agreements through order, deploy, activate, signed stop, undeploy, settle \
                        (no-op orchestrator, account path)"
                    .into(),
                unit: "agreements/s",
                samples: vec![rate],
                target: figures::at_least(200.0),
                note: Some(format!(
                    "{agreements} agreements from {n_customers} customers, each with one deposit into its escrow \
                     account made before the clock starts, posting EIP-712 signed orders to POST /api/orders and \
                     a signed stop as soon as the chain shows the conference activated; the chain sees only the \
                     operator's batches; from the first order posted to the last settlement seen; every settlement \
                     and every account checked to the wei; a block of every transaction waiting mined each 200 ms; \
                     the backend follows new heads over WebSocket"
                )),
            },
            backend_cpu("backend.throughput.noop", "account path", backend_ms),
            anvil_cpu("backend.throughput.noop", "account path", anvil_percent),
            Figure {
                id: "backend.throughput.noop.bench_cpu".into(),
                group: "Backend loop",
                label: "the bench's own CPU during the throughput run (% of one core, account path)".into(),
                unit: "%",
                samples: vec![bench_percent],
                target: None,
                note: Some(
                    "utime + stime of the bench process (signing orders and stops, posting them, following the \
                     chain) over the run's wall time"
                        .into(),
                ),
            },
        ],
    )
}

/// The direct path: all signed at once on many streams, each stopped by its customer's own transaction
/// as soon as it is activated.
async fn throughput_direct(agreements: usize) -> Result<()> {
    let flags = ["--orchestrator", "noop", "--probe-interval-ms", "2000"];
    // Over WebSocket, the backend's default wherever the node offers it: new heads pushed.
    let stack = Stack::start_with("bench-throughput", true, &flags).await?;
    let customers = Customers::new(&stack.devnet, STREAMS).await?;
    let from_block = stack.customer.get_block_number().await? + 1;
    println!("throughput: {agreements} agreements through the whole loop, no-op orchestrator, {STREAMS} customers");
    // Whose CPU the loop takes: the backend's and the chain's (anvil mines each transaction as it comes).
    let (backend, anvil) = (stack.backend_pid().context("the backend runs")?, stack.devnet.anvil.child().id());
    let cpu_before = (cpu_seconds(backend)?, tree_cpu_seconds(anvil)?);
    let miner = Miner::start(&customers).await?;
    let started = Instant::now();
    let signing = tokio::spawn({
        let customers = customers.clone();
        async move { sign_many(&customers, agreements).await }
    });
    let (escrow, rpc) = (stack.devnet.escrow, stack.customer.clone());
    let mut activated = Follower::new(ConferenceEscrow::AgreementActivated::SIGNATURE_HASH, from_block);
    let mut settled = Follower::new(ConferenceEscrow::AgreementSettled::SIGNATURE_HASH, from_block);
    let mut signing = Some(signing);
    let mut signed_ids = Vec::new();
    let (mut stops, mut done, mut pending_stops) = (Vec::new(), 0usize, Vec::<u64>::new());
    let mut last_report = Instant::now();
    while done < agreements {
        ensure!(started.elapsed() < WAIT, "{done} of {agreements} settled within {WAIT:?}\n{}", stack.log_tail());
        if let Some(task) = signing.take_if(|task| task.is_finished()) {
            signed_ids = task.await??;
        }
        pending_stops.extend(activated.poll(&rpc, escrow).await?);
        // An activation seen before its signing's receipt was read waits for the next round.
        for id in std::mem::take(&mut pending_stops) {
            let Some(who) = customers.signer_of(id) else {
                pending_stops.push(id);
                continue;
            };
            let customers = customers.clone();
            stops.push(tokio::spawn(async move { customers.stop(who, id).await.map(|_| ()) }));
        }
        done += settled.poll(&rpc, escrow).await?.len();
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!("  {done} settled after {:.0} s", started.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    miner.stop(&customers).await?;
    let backend_ms = (cpu_seconds(backend)? - cpu_before.0) * 1e3 / agreements as f64;
    let anvil_percent = (tree_cpu_seconds(anvil)? - cpu_before.1) / seconds * 100.0;
    for stop in stops {
        stop.await??;
    }
    let rate = agreements as f64 / seconds;
    println!(
        "  {agreements} settled in {seconds:.1} s: {rate:.0} agreements/s; the backend's CPU {backend_ms:.2} ms per \
         agreement (one core would keep up with {:.0}/s), anvil's {anvil_percent:.0} % of a core; checking each \
         settlement…",
        1e3 / backend_ms
    );
    if let Some(task) = signing {
        signed_ids = task.await??;
    }
    let mut ids: Vec<u64> = signed_ids.into_iter().map(|(id, _)| id).collect();
    ids.sort_unstable();
    ensure!(ids.len() == agreements, "{} agreements signed, {agreements} asked", ids.len());
    for &id in &ids {
        let record = stack.wait_status(id, "settled", WAIT).await?;
        check_settlement(&record).with_context(|| format!("agreement {id}"))?;
        ensure!(record["conference"]["deployCount"] == 1, "agreement {id} deployed other than once: {record}");
    }
    println!("  every settlement matches price × seconds used and deposit − charge to the wei; each deployed once");
    figures::record(
        "backend",
        vec![
            Figure {
                id: "backend.throughput.noop.direct".into(),
                group: "Backend loop",
                label:
                    "sustained agreements through sign, deploy, activate, stop, undeploy, settle (no-op orchestrator, direct path)"
                        .into(),
                unit: "agreements/s",
                samples: vec![rate],
                target: None,
                note: Some(format!(
                    "{agreements} agreements from {STREAMS} customers signing at once, each stopped as soon as it \
                 was activated; from the first signing sent to the last settlement seen; every settlement \
                 checked to the wei; a block of every transaction waiting mined each 200 ms; the backend \
                 follows new heads over WebSocket"
                )),
            },
            backend_cpu("backend.throughput.noop.direct", "direct path", backend_ms),
            anvil_cpu("backend.throughput.noop.direct", "direct path", anvil_percent),
        ],
    )
}

/// The backend's CPU per agreement over a throughput run whose rate is figure `rate_id`.
fn backend_cpu(rate_id: &str, path: &str, backend_ms: f64) -> Figure {
    Figure {
        id: format!("{rate_id}.backend_cpu"),
        group: "Backend loop",
        label: format!("the backend's CPU per agreement through the whole loop (no-op orchestrator, {path})"),
        unit: "ms",
        samples: vec![backend_ms],
        target: None,
        note: Some(
            "utime + stime of the backend process over the throughput run, divided by the agreements: \
             1,000 ÷ this is what one core of backend alone would sustain"
                .into(),
        ),
    }
}

/// anvil's CPU over a throughput run whose rate is figure `rate_id`.
fn anvil_cpu(rate_id: &str, path: &str, anvil_percent: f64) -> Figure {
    Figure {
        id: format!("{rate_id}.anvil_cpu"),
        group: "Backend loop",
        label: format!("anvil's CPU during the throughput run (% of one core, {path})"),
        unit: "%",
        samples: vec![anvil_percent],
        target: None,
        note: Some(
            "utime + stime of the anvil process tree over the run's wall time: near 100 % the chain, not the \
             backend, sets the pace (anvil mines on one thread)"
                .into(),
        ),
    }
}

/// `samples` agreements, one after another, on the local orchestrator: from sending the signing
/// transaction to the conference's Janus server answering a `ping` on its WebSocket API.
pub async fn room_start(samples: usize) -> Result<()> {
    ensure!(samples > 0, "at least one sample");
    let stack = Stack::start_with("bench-room-start", false, &["--probe-interval-ms", "2000"]).await?;
    let customers = Customers::new(&stack.devnet, 1).await?;
    let mut times = Vec::new();
    for _ in 0..samples {
        let sent = Instant::now();
        let (id, _) = customers.sign(0).await?;
        loop {
            if let Some(room) = stack.room(id)
                && stack.room_answers(&room.join_url).await
            {
                break;
            }
            ensure!(sent.elapsed() < WAIT, "agreement {id}: no room answered\n{}", stack.log_tail());
            tokio::time::sleep(TICK).await;
        }
        times.push(sent.elapsed().as_secs_f64() * 1e3);
        stack.wait_status(id, "active", WAIT).await?;
        customers.stop(0, id).await?;
        stack.wait_status(id, "settled", WAIT).await?;
    }
    times.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&times, 50.0), percentile(&times, 99.0));
    println!("room start (local orchestrator), {samples} samples: p50 {p50:.0} ms, p99 {p99:.0} ms");
    let note = format!(
        "{samples} agreements one after another; from sending the signing transaction (anvil mines it at once) \
         to the room's /healthz answering; the backend polls the chain every 250 ms over HTTP"
    );
    let figure = |p: &str, value: f64| Figure {
        id: format!("backend.roomstart.local.{p}"),
        group: "Conference start",
        label: format!("local room: signing block to the room answering ({p})"),
        unit: "ms",
        samples: vec![value],
        target: None,
        note: Some(note.clone()),
    };
    figures::record("backend", vec![figure("p50", p50), figure("p99", p99)])
}
