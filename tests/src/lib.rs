//! The end-to-end harness: a fresh local stack (anvil with the escrow deployed, the backend binary as
//! a separate process that tests can kill) and the customer's side of an agreement. Used by the
//! tests in `tests/` and by the `demo` binary (`make demo`).

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionReceipt,
};
use anyhow::{Context, Result, anyhow, bail, ensure};
use conference_backend::{
    chain::ConferenceEscrow,
    dev::devnet::{self, Devnet},
    orchestrator::{
        janus::ServerInfo,
        local::{LocalOrchestrator, server_processes},
    },
};
use nix::{sys::signal, unistd::Pid};
use serde_json::Value;

pub mod chain_faults;
pub mod kube;
pub mod proxy;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

fn backend_binary() -> Result<PathBuf> {
    let path = std::env::var_os("CONFERENCE_BACKEND_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/debug/conference-backend"));
    ensure!(
        path.exists(),
        "{} is missing: build it first (`cargo build -p conference-backend`, or `make test`)",
        path.display()
    );
    Ok(path)
}

/// Where the backend keeps its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// A file in the stack's data directory (the embedded default).
    Sqlite,
    /// A private PostgreSQL server of the stack's own.
    Postgres,
}

/// One backend process of the stack and the loopback address its API listens on. Every replica shares
/// the chain, the database and the rooms folder (the local "cluster"); one leads at a time.
struct Replica {
    http_addr: String,
    process: Option<Child>,
}

/// A local stack: anvil, the escrow with offer 1, the database, and the backend process (replica 0)
/// with any replicas a test adds.
pub struct Stack {
    pub devnet: Devnet,
    pub data_dir: PathBuf,
    /// Replica 0's API.
    pub api: String,
    replicas: Vec<Replica>,
    database_url: Option<String>,
    postgres: Option<conference_backend::dev::devdb::PostgresServer>,
    /// The crash point (see `conference_backend::fault`) the next start of a replica dies at.
    crash_at: Option<String>,
    /// Between the backend and the chain, once a test asked for it ([`Stack::route_rpc_through_proxy`]).
    rpc_proxy: Option<proxy::Proxy>,
    http: reqwest::Client,
    /// The customer's view of the chain: its own key signs.
    pub customer: DynProvider,
    /// The backend's RPC URL if not anvil's HTTP one, and flags added to its command line (chain_faults.rs).
    backend_rpc_url: Option<String>,
    backend_args: Vec<String>,
}

impl Stack {
    pub async fn start(name: &str) -> Result<Self> {
        Self::start_on(name, Database::Sqlite).await
    }

    /// A stack whose backend takes [`TIME_TRAVEL`]: for tests that move the chain's clock on.
    pub async fn start_time_travelling(name: &str) -> Result<Self> {
        Self::start_with(name, false, TIME_TRAVEL).await
    }

    pub async fn start_on(name: &str, database: Database) -> Result<Self> {
        let devnet = Devnet::start(&repo_root().join("anvil/node_modules/.bin/anvil"), 0).await?;
        let data_dir = std::env::temp_dir().join(format!("conference-e2e-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&data_dir);
        fs::create_dir_all(&data_dir)?;
        let postgres = match database {
            Database::Sqlite => None,
            Database::Postgres => Some(conference_backend::dev::devdb::PostgresServer::start(name)?),
        };
        let http_addr = free_loopback_addr()?;
        let customer = devnet.provider_for(&devnet.customer)?;
        let mut stack = Self {
            devnet,
            data_dir,
            api: format!("http://{http_addr}"),
            replicas: vec![Replica { http_addr, process: None }],
            database_url: postgres.as_ref().map(|pg| pg.url()),
            postgres,
            crash_at: None,
            rpc_proxy: None,
            http: reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?,
            customer,
            backend_rpc_url: None,
            backend_args: Vec::new(),
        };
        stack.start_backend().await?;
        Ok(stack)
    }

    /// Starts the backend process (replica 0) and waits until its API answers.
    pub async fn start_backend(&mut self) -> Result<()> {
        self.start_replica(0).await
    }

    /// SIGKILL to replica 0: the backend gets no chance to clean up.
    pub fn kill_backend(&mut self) -> Result<()> {
        self.kill_replica(0)
    }

    /// Adds a replica sharing the chain, database and rooms, starts it, and returns its number.
    pub async fn add_replica(&mut self) -> Result<usize> {
        self.replicas.push(Replica { http_addr: free_loopback_addr()?, process: None });
        let replica = self.replicas.len() - 1;
        self.start_replica(replica).await?;
        Ok(replica)
    }

    /// Starts replica `replica`'s process and waits until its API answers.
    pub async fn start_replica(&mut self, replica: usize) -> Result<()> {
        let http_addr = self.replicas[replica].http_addr.clone();
        ensure!(self.replicas[replica].process.is_none(), "replica {replica} is already running");
        let log = File::options().create(true).append(true).open(self.log_path(replica))?;
        let rpc_url = match (&self.rpc_proxy, &self.backend_rpc_url) {
            (Some(proxy), _) => format!("http://{}", proxy.addr),
            (None, Some(url)) => url.clone(),
            (None, None) => self.devnet.rpc_url(),
        };
        let mut command = Command::new(backend_binary()?);
        command
            .args(["serve", "--rpc-url", &rpc_url, "--escrow", &self.devnet.escrow.to_string()])
            .args(&self.backend_args)
            .args(["--start-block", &self.devnet.deploy_block.to_string(), "--http", &http_addr])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--replica-id", &format!("replica-{replica}")])
            .env("OPERATOR_KEY", self.devnet.operator_key())
            .env("RUST_LOG", "info,conference_backend=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(url) = &self.database_url {
            command.env("DATABASE_URL", url);
        }
        // Probes often, so that tests gather evidence quickly, unless the test set its own interval.
        if !self.backend_args.iter().any(|arg| arg == "--probe-interval-ms") {
            command.args(["--probe-interval-ms", "300"]);
        }
        if let Some(point) = self.crash_at.take() {
            command.env("CONFERENCE_CRASH_AT", point);
        }
        self.replicas[replica].process = Some(command.spawn()?);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(response) = self.http.get(format!("http://{http_addr}/healthz")).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if let Some(status) = self.replicas[replica].process.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("replica {replica} exited with {status}; log: {}", self.replica_log_tail(replica));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("replica {replica} did not answer within 30 s; log: {}", self.replica_log_tail(replica))
    }

    /// Restarts replica 0 reading the chain at `rpc_url` (None: anvil's HTTP URL), with `flags` added to
    /// its command line.
    pub async fn restart_with(&mut self, rpc_url: Option<String>, flags: &[&str]) -> Result<()> {
        self.kill_backend()?;
        self.backend_rpc_url = rpc_url;
        self.backend_args = flags.iter().map(|flag| flag.to_string()).collect();
        self.start_backend().await
    }

    /// Restarts replica 0 so that it kills itself with SIGKILL at `point` (see `conference_backend::fault`).
    pub async fn restart_crashing_at(&mut self, point: &str) -> Result<()> {
        self.kill_backend()?;
        self.crash_at = Some(point.to_owned());
        self.start_backend().await
    }

    /// Waits until replica 0 died at its crash point (SIGKILL), then starts it again, crashing nowhere.
    pub async fn restart_after_crash(&mut self, timeout: Duration) -> Result<()> {
        use std::os::unix::process::ExitStatusExt;
        let started = Instant::now();
        loop {
            let child = self.replicas[0].process.as_mut().context("the backend is not running")?;
            if let Some(status) = child.try_wait()? {
                ensure!(
                    status.signal() == Some(9),
                    "the backend exited with {status}, not SIGKILL: {}",
                    self.log_tail()
                );
                self.replicas[0].process = None;
                return self.start_backend().await;
            }
            ensure!(started.elapsed() < timeout, "the backend did not reach its crash point: {}", self.log_tail());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Restarts replica 0 talking to the chain through a proxy that [`Stack::cut_rpc`] can cut.
    pub async fn route_rpc_through_proxy(&mut self) -> Result<()> {
        let anvil = self.devnet.rpc_url().trim_start_matches("http://").parse()?;
        self.rpc_proxy = Some(proxy::Proxy::start(anvil).await?);
        self.kill_backend()?;
        self.start_backend().await
    }

    /// Cuts (false) or restores (true) the backend's connection to the chain.
    pub fn set_rpc_up(&self, up: bool) -> Result<()> {
        self.rpc_proxy.as_ref().context("route_rpc_through_proxy first")?.set_up(up);
        Ok(())
    }

    /// Replica 0's process id, while it runs.
    pub fn backend_pid(&self) -> Option<u32> {
        self.replica_pid(0)
    }

    /// Replica `replica`'s process id, while it runs.
    pub fn replica_pid(&self, replica: usize) -> Option<u32> {
        self.replicas.get(replica)?.process.as_ref().map(Child::id)
    }

    /// Whether replica 0's process still runs (it was neither killed nor has it exited).
    pub fn backend_running(&mut self) -> bool {
        self.replicas[0].process.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// SIGKILL: the replica gets no chance to clean up.
    pub fn kill_replica(&mut self, replica: usize) -> Result<()> {
        let mut child =
            self.replicas[replica].process.take().with_context(|| format!("replica {replica} is not running"))?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// SIGTERM, as an orchestrator stops a process, and waits for it to exit; returns its exit code.
    pub fn terminate_replica(&mut self, replica: usize) -> Result<Option<i32>> {
        let mut child =
            self.replicas[replica].process.take().with_context(|| format!("replica {replica} is not running"))?;
        signal::kill(Pid::from_raw(child.id() as i32), signal::Signal::SIGTERM)?;
        Ok(child.wait()?.code())
    }

    /// Reads the API of replica `replica` from now on (e.g. after replica 0 was killed).
    pub fn read_from(&mut self, replica: usize) {
        self.api = self.api_of(replica);
    }

    /// The base URL of replica `replica`'s API.
    pub fn api_of(&self, replica: usize) -> String {
        format!("http://{}", self.replicas[replica].http_addr)
    }

    /// Waits until replica `replica`'s log says it took the leader lease; returns how long that took.
    pub async fn wait_leading(&self, replica: usize, timeout: Duration) -> Result<Duration> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.replica_log(replica).contains("took the leader lease") {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("replica {replica} did not lead within {timeout:?}; log: {}", self.replica_log_tail(replica))
    }

    /// The PostgreSQL server of a stack started on [`Database::Postgres`].
    pub fn postgres(&self) -> Option<&conference_backend::dev::devdb::PostgresServer> {
        self.postgres.as_ref()
    }

    fn log_path(&self, replica: usize) -> PathBuf {
        match replica {
            0 => self.data_dir.join("backend.log"),
            n => self.data_dir.join(format!("backend-{n}.log")),
        }
    }

    /// Replica `replica`'s whole log.
    pub fn replica_log(&self, replica: usize) -> String {
        fs::read_to_string(self.log_path(replica)).unwrap_or_default()
    }

    fn replica_log_tail(&self, replica: usize) -> String {
        log_tail(&self.replica_log(replica))
    }

    pub fn log_tail(&self) -> String {
        self.replica_log_tail(0)
    }

    /// The escrow as the customer sees it (the customer's key signs).
    pub fn escrow(&self) -> ConferenceEscrow::ConferenceEscrowInstance<DynProvider> {
        ConferenceEscrow::new(self.devnet.escrow, self.customer.clone())
    }

    pub fn customer_address(&self) -> Address {
        self.devnet.customer.address()
    }

    /// `GET /api/agreements/{id}`; `None` while the backend has not seen it.
    pub async fn agreement(&self, id: u64) -> Result<Option<Value>> {
        let response = self.http.get(format!("{}/api/agreements/{id}", self.api)).send().await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        ensure!(response.status().is_success(), "GET agreement {id}: {}", response.status());
        Ok(Some(response.json().await?))
    }

    /// `POST` `body` to the API's `path`; returns the status code and the JSON answer.
    pub async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        self.post_as("", path, body).await
    }

    /// `POST` `body` to the API's `path` with the session `cookie` (from [`Stack::sign_in_customer`]).
    pub async fn post_as(&self, cookie: &str, path: &str, body: &Value) -> Result<(u16, Value)> {
        let mut request = self.http.post(format!("{}{path}", self.api)).json(body);
        if !cookie.is_empty() {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }

    /// Signs the customer in with Ethereum (EIP-4361, its key signing): the session cookie.
    pub async fn sign_in_customer(&self) -> Result<String> {
        Ok(conference_backend::http::session::sign_in(&self.api, &self.devnet.customer).await?)
    }

    /// Waits until the agreement's record satisfies `done`.
    pub async fn wait_for(
        &self,
        id: u64,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let started = Instant::now();
        let mut last = None;
        while started.elapsed() < timeout {
            if let Some(record) = self.agreement(id).await? {
                if done(&record) {
                    return Ok(record);
                }
                last = Some(record);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "agreement {id} did not reach {what} within {timeout:?}; last record: {last:?}; log:\n{}",
            self.log_tail()
        )
    }

    pub async fn wait_status(&self, id: u64, status: &str, timeout: Duration) -> Result<Value> {
        self.wait_for(id, status, timeout, |r| r["status"] == status).await
    }

    /// Signs offer 1 as the customer; returns the agreement id and the receipt.
    pub async fn customer_signs(&self) -> Result<(u64, TransactionReceipt)> {
        self.sign_offer(false).await
    }

    /// Signs with automatic mining turned off, mining just the signing block: whatever the backend
    /// sends next waits in the mempool until the test mines again.
    pub async fn customer_signs_holding_blocks(&self) -> Result<(u64, TransactionReceipt)> {
        self.sign_offer(true).await
    }

    async fn sign_offer(&self, hold_blocks: bool) -> Result<(u64, TransactionReceipt)> {
        if hold_blocks {
            self.set_automine(false).await?;
        }
        let pending = self.escrow().sign(devnet::DYNAMIC_TERMS, 0, false).value(Devnet::offer_deposit()).send().await?;
        if hold_blocks {
            self.mine().await?;
        }
        signed(pending.get_receipt().await?)
    }

    /// Starts an independent monitor (`conference-backend monitor`) with the devnet's monitor key, its own
    /// database, this chain and this backend's API, probing every `interval_ms`.
    pub async fn start_monitor(&self, interval_ms: u64) -> Result<MonitorProcess> {
        let http_addr = free_loopback_addr()?;
        let dir = self.data_dir.join(format!("monitor-{}", http_addr.replace([':', '.'], "-")));
        fs::create_dir_all(&dir)?;
        let log_path = dir.join("monitor.log");
        let log = File::options().create(true).append(true).open(&log_path)?;
        let child = Command::new(backend_binary()?)
            .args(["monitor", "--rpc-url", &self.devnet.rpc_url(), "--escrow", &self.devnet.escrow.to_string()])
            .args(["--start-block", &self.devnet.deploy_block.to_string(), "--backend-url", &self.api])
            .args(["--probe-interval-ms", &interval_ms.to_string(), "--poll-interval-ms", "100"])
            .args(["--http-addr", &http_addr])
            .arg("--database-url")
            .arg(format!("sqlite://{}", dir.join("monitor.db").display()))
            .env("MONITOR_KEY", alloy::hex::encode_prefixed(self.devnet.monitor().to_bytes()))
            .env("RUST_LOG", "info,conference_backend=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let monitor = MonitorProcess { child, api: format!("http://{http_addr}"), log: log_path };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(response) = self.http.get(format!("{}/healthz", monitor.api)).send().await
                && response.status().is_success()
            {
                return Ok(monitor);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the monitor did not answer within 30 s; log: {}", fs::read_to_string(&monitor.log).unwrap_or_default())
    }

    /// Signs terms version `terms` (FixedPrice or DynamicPrice) with these constraints, paying `deposit`.
    pub async fn customer_signs_terms(
        &self,
        terms: u32,
        allowed_regions: u32,
        deposit: U256,
    ) -> Result<(u64, TransactionReceipt)> {
        signed(self.escrow().sign(terms, allowed_regions, false).value(deposit).send().await?.get_receipt().await?)
    }

    /// Buys `minutes` minutes of TimeLimited terms `terms`, paying `deposit`.
    pub async fn customer_buys_minutes(
        &self,
        terms: u32,
        minutes: u32,
        deposit: U256,
    ) -> Result<(u64, TransactionReceipt)> {
        signed(self.escrow().buyMinutes(terms, 0, false, minutes).value(deposit).send().await?.get_receipt().await?)
    }

    /// Reserves the window [from, to) of FlexiblePeriod terms `terms`, paying `deposit`.
    pub async fn customer_reserves(
        &self,
        terms: u32,
        from: u64,
        to: u64,
        deposit: U256,
    ) -> Result<(u64, TransactionReceipt)> {
        let (from, to) = (alloy::primitives::aliases::U40::from(from), alloy::primitives::aliases::U40::from(to));
        signed(self.escrow().reserve(terms, 0, false, from, to).value(deposit).send().await?.get_receipt().await?)
    }

    /// Asks for a TimeLimited session or the FlexiblePeriod conference to start.
    pub async fn customer_starts(&self, id: u64) -> Result<TransactionReceipt> {
        mined("start", self.escrow().start(U256::from(id)).send().await?.get_receipt().await?)
    }

    /// Closes a TimeLimited account: the unused minutes' money comes back.
    pub async fn customer_closes(&self, id: u64) -> Result<TransactionReceipt> {
        mined("close", self.escrow().close(U256::from(id)).send().await?.get_receipt().await?)
    }

    pub async fn customer_stops(&self, id: u64) -> Result<TransactionReceipt> {
        mined("stop", self.escrow().stop(U256::from(id)).send().await?.get_receipt().await?)
    }

    /// What a provider (by registry id) can withdraw in ETH.
    pub async fn earnings(&self, provider_id: u32) -> Result<U256> {
        Ok(self.escrow().earningsOf(provider_id, 0).call().await?)
    }

    /// The ETH credit of `account` (the offer owner's margin, refunds that could not be sent).
    pub async fn credit(&self, account: Address) -> Result<U256> {
        Ok(self.escrow().creditOf(account, 0).call().await?)
    }

    /// Checks that `charges` were split to the wei as the contract does for demo terms `terms`: each
    /// provider floor(charge × component / price), summed over the charges, the owner the rest.
    pub async fn check_split(&self, terms: u32, charges: &[U256]) -> Result<()> {
        let offer = &devnet::OFFERS[terms as usize - 1];
        let price = U256::from(offer.price());
        let part = |component: u128| -> U256 {
            charges.iter().map(|charge| *charge * U256::from(component) / price).fold(U256::ZERO, |a, b| a + b)
        };
        let total: U256 = charges.iter().fold(U256::ZERO, |a, b| a + *b);
        let (infra, software) = (part(offer.components.0), part(offer.components.1));
        let (infra_id, software_id) = self.devnet.provider_ids;
        ensure!(self.earnings(infra_id).await? == infra, "infrastructure earnings");
        ensure!(self.earnings(software_id).await? == software, "software earnings");
        ensure!(self.credit(self.devnet.owner.address()).await? == total - infra - software, "owner's margin and dust");
        Ok(())
    }

    pub async fn balance(&self, who: Address) -> Result<U256> {
        Ok(self.customer.get_balance(who).await?)
    }

    /// Sets the next block's timestamp (chain time only moves forward).
    pub async fn set_next_block_time(&self, timestamp: u64) -> Result<()> {
        self.customer.raw_request::<_, Value>("evm_setNextBlockTimestamp".into(), (timestamp,)).await?;
        Ok(())
    }

    pub async fn set_automine(&self, on: bool) -> Result<()> {
        self.customer.raw_request::<_, Value>("evm_setAutomine".into(), (on,)).await?;
        Ok(())
    }

    pub async fn mine(&self) -> Result<()> {
        self.customer.raw_request::<_, Value>("evm_mine".into(), ()).await?;
        Ok(())
    }

    /// How many times the escrow emitted `event` for agreement `id` (its first indexed topic).
    pub async fn count_events(&self, signature_hash: B256, id: u64) -> Result<usize> {
        Ok(self.event_transactions(signature_hash, id).await?.len())
    }

    /// The transactions that emitted the escrow's `signature_hash` events of agreement `id`, one per event.
    pub async fn event_transactions(&self, signature_hash: B256, id: u64) -> Result<Vec<B256>> {
        let filter = alloy::rpc::types::Filter::new()
            .address(self.devnet.escrow)
            .event_signature(signature_hash)
            .topic1(B256::from(U256::from(id)))
            .from_block(0);
        Ok(self.customer.get_logs(&filter).await?.iter().filter_map(|log| log.transaction_hash).collect())
    }

    /// How many transactions carried the activations and settlements of `ids`: the operator batches its
    /// calls, so one transaction may carry several. A test that checks each agreement was activated and
    /// settled once compares the operator's nonce with this: "nothing else was sent".
    pub async fn operator_transactions_for(&self, ids: &[u64]) -> Result<u64> {
        use alloy::sol_types::SolEvent;
        let mut hashes = std::collections::BTreeSet::new();
        for &id in ids {
            for event in [
                ConferenceEscrow::AgreementActivated::SIGNATURE_HASH,
                ConferenceEscrow::AgreementSettled::SIGNATURE_HASH,
            ] {
                hashes.extend(self.event_transactions(event, id).await?);
            }
        }
        Ok(hashes.len() as u64)
    }

    /// The conferences' folder of the local orchestrator (every replica shares it).
    pub fn rooms_dir(&self) -> PathBuf {
        self.data_dir.join("rooms")
    }

    /// The conference server (Janus) the local orchestrator runs for an agreement, if one runs.
    pub fn room(&self, id: u64) -> Option<Room> {
        let bytes = fs::read(self.rooms_dir().join(id.to_string()).join("janus.json")).ok()?;
        let info: ServerInfo = serde_json::from_slice(&bytes).ok()?;
        let pid = janus_pids(&self.rooms_dir(), id).into_iter().next()?;
        Some(Room { pid, join_url: LocalOrchestrator::join_url(&info), info })
    }

    /// Waits until the conference server `pid` of agreement `id` is gone, with its folder (a removal
    /// records the conference removed first, then stops the server, which takes Janus about a second).
    pub async fn wait_room_gone(&self, id: u64, pid: u32, timeout: Duration) -> Result<Duration> {
        let started = Instant::now();
        while process_alive(pid) || self.rooms_dir().join(id.to_string()).exists() {
            ensure!(started.elapsed() < timeout, "the conference server {pid} of agreement {id} is still there");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(started.elapsed())
    }

    /// Whether the conference server at `join_url` (its WebSocket API) answers a `ping`.
    pub async fn room_answers(&self, join_url: &str) -> bool {
        janus_answers(join_url).await
    }
}

/// A conference server of the local orchestrator.
#[derive(Debug, Clone)]
pub struct Room {
    pub pid: u32,
    pub join_url: String,
    pub info: ServerInfo,
}

/// The Janus processes of agreement `id` under the conferences' folder `rooms_dir`.
pub fn janus_pids(rooms_dir: &Path, id: u64) -> Vec<u32> {
    let dir = fs::canonicalize(rooms_dir).unwrap_or_else(|_| rooms_dir.to_owned());
    server_processes(&dir).into_iter().filter(|(agreement, _)| *agreement == id).map(|(_, pid)| pid).collect()
}

/// A participant's connection to a Janus server's WebSocket API (`janus-protocol`), as the room page
/// speaks it.
pub struct JanusClient {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next: u64,
}

impl JanusClient {
    pub async fn connect(join_url: &str) -> Result<Self> {
        use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};
        let mut request = join_url.into_client_request()?;
        request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("janus-protocol"));
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self { socket, next: 0 })
    }

    /// Sends `body` with a new transaction; its answer (a keepalive's is its `ack`; other requests'
    /// `ack` only says they arrived).
    pub async fn request(&mut self, mut body: Value) -> Result<Value> {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        self.next += 1;
        let transaction = format!("t{}", self.next);
        body["transaction"] = transaction.clone().into();
        let ack_answers = body["janus"] == "keepalive";
        self.socket.send(Message::text(body.to_string())).await?;
        tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(message) = self.socket.next().await {
                if let Message::Text(text) = message? {
                    let answer: Value = serde_json::from_str(&text)?;
                    if answer["transaction"] == transaction.as_str() && (ack_answers || answer["janus"] != "ack") {
                        return Ok(answer);
                    }
                }
            }
            bail!("the server closed the connection")
        })
        .await
        .context("no answer from the server within 5 s")?
    }

    /// Creates a session with `token`: its id, or the error code Janus answered with.
    pub async fn create(&mut self, token: Option<&str>) -> Result<Result<u64, u64>> {
        let mut body = serde_json::json!({ "janus": "create" });
        if let Some(token) = token {
            body["token"] = token.into();
        }
        let answer = self.request(body).await?;
        Ok(match answer["data"]["id"].as_u64() {
            Some(session) => Ok(session),
            None => Err(answer["error"]["code"].as_u64().unwrap_or_default()),
        })
    }
}

/// Asks the Janus server at `join_url` for a session with `token` (a participant's first request): the
/// session id, or the error code Janus answered with (403: no, or no valid, token).
pub async fn janus_create(join_url: &str, token: Option<&str>) -> Result<Result<u64, u64>> {
    JanusClient::connect(join_url).await?.create(token).await
}

/// Whether a Janus server's WebSocket API at `join_url` answers a `ping` (it needs no token).
pub async fn janus_answers(join_url: &str) -> bool {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};
    let Ok(mut request) = join_url.into_client_request() else { return false };
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("janus-protocol"));
    let exchange = async {
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.ok()?;
        socket.send(Message::text(r#"{"janus":"ping","transaction":"p"}"#)).await.ok()?;
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message {
                return Some(serde_json::from_str::<Value>(&text).ok()?["janus"] == "pong");
            }
        }
        None
    };
    matches!(tokio::time::timeout(Duration::from_secs(2), exchange).await, Ok(Some(true)))
}

fn free_loopback_addr() -> Result<String> {
    Ok(format!("127.0.0.1:{}", conference_backend::dev::free_loopback_port()?))
}

/// The agreement id of a mined signing transaction (sign, buyMinutes or reserve).
pub fn signed(receipt: TransactionReceipt) -> Result<(u64, TransactionReceipt)> {
    let receipt = mined("sign", receipt)?;
    let signed = receipt
        .logs()
        .iter()
        .find_map(|log| log.log_decode::<ConferenceEscrow::AgreementSigned>().ok())
        .ok_or_else(|| anyhow!("no AgreementSigned event in the sign receipt"))?;
    Ok((signed.inner.data.agreementId.to::<u64>(), receipt))
}

fn mined(what: &str, receipt: TransactionReceipt) -> Result<TransactionReceipt> {
    ensure!(receipt.status(), "{what} reverted");
    Ok(receipt)
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for replica in &mut self.replicas {
            if let Some(mut child) = replica.process.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Conference servers run in their own process groups: stop any the test left behind.
        let rooms = fs::canonicalize(self.rooms_dir()).unwrap_or_else(|_| self.rooms_dir());
        for (_, pid) in server_processes(&rooms) {
            let _ = signal::kill(Pid::from_raw(pid as i32), signal::Signal::SIGKILL);
        }
        // Keep the logs of a failed test for reading; remove those of a passed one.
        if std::thread::panicking() {
            eprintln!("backend and room logs kept in {}", self.data_dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// The figures of one settled agreement, checked against the contract's formula to the wei.
#[derive(Debug)]
pub struct Settlement {
    pub used_seconds: u64,
    pub charge: U256,
    pub refund: U256,
    pub availability_bps: u64,
}

/// Checks a settled DynamicPrice record: charge = price × used (0 below 75% availability), refund =
/// deposit − charge.
pub fn check_settlement(record: &Value) -> Result<Settlement> {
    let num = |key: &str| record[key].as_u64().with_context(|| format!("{key} missing in {record}"));
    let wei = |key: &str| -> Result<U256> {
        let text = record[key].as_str().with_context(|| format!("{key} missing in {record}"))?;
        Ok(text.parse::<U256>()?)
    };
    let used_seconds = num("endedAt")? - num("startedAt")?;
    let availability_bps = num("availabilityBps")?;
    let price = wei("price")?;
    let deposit = wei("deposit")?;
    let expected_charge = if availability_bps < 7500 { U256::ZERO } else { price * U256::from(used_seconds) };
    let (charge, refund) = (wei("charged")?, wei("refund")?);
    ensure!(charge == expected_charge, "charge {charge} != price {price} × {used_seconds} s = {expected_charge}");
    ensure!(refund == deposit - charge, "refund {refund} != deposit {deposit} − charge {charge}");
    Ok(Settlement { used_seconds, charge, refund, availability_bps })
}

pub fn gas_cost(receipt: &TransactionReceipt) -> U256 {
    U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price)
}

/// The backend flags of a test that moves the chain's clock on by up to an hour in a second: one
/// availability slot an hour, so that the first probe after the start is the whole evidence (with the
/// default interval, the skipped hour would be an hour without probes: an outage).
pub const TIME_TRAVEL: &[&str] = &["--probe-interval-ms", "3600000"];

/// An independent monitor's process, stopped when dropped.
pub struct MonitorProcess {
    pub child: Child,
    /// Its API (`GET /api/reports`).
    pub api: String,
    pub log: PathBuf,
}

impl MonitorProcess {
    /// SIGSTOP or SIGCONT: a monitor frozen for a while takes no probes, as if it were down.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let which = if frozen { signal::Signal::SIGSTOP } else { signal::Signal::SIGCONT };
        signal::kill(Pid::from_raw(self.child.id() as i32), which)?;
        Ok(())
    }

    pub fn log_tail(&self) -> String {
        log_tail(&fs::read_to_string(&self.log).unwrap_or_default())
    }
}

/// The last 40 lines of a log for a failed test's message, each run of lines that differ only in their
/// time (the first word) shown once with how many followed it: what led up to the failure, not forty
/// retries of one error.
fn log_tail(log: &str) -> String {
    let without_time = |line: &str| line.split_once(' ').map_or(line, |(_, rest)| rest).to_owned();
    let mut runs: Vec<(&str, &str, usize)> = Vec::new();
    for line in log.lines() {
        match runs.last_mut() {
            Some((first, last, more)) if without_time(first) == without_time(line) => {
                (*last, *more) = (line, *more + 1)
            }
            _ => runs.push((line, line, 0)),
        }
    }
    let shown = runs[runs.len().saturating_sub(40)..].iter().map(|(first, last, more)| match more {
        0 => first.to_string(),
        _ => format!(
            "{first}\n    ... and {more} more like it, the last: {}",
            last.split(' ').next().unwrap_or_default()
        ),
    });
    shown.collect::<Vec<_>>().join("\n")
}

impl Drop for MonitorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_log_tail_shows_a_run_of_one_message_once() {
        let log = "t1 WARN pass failed: a\nt2 WARN pass failed: a\nt3 WARN pass failed: a\nt4 INFO recorded\nt5 WARN pass failed: a";
        assert_eq!(
            super::log_tail(log),
            "t1 WARN pass failed: a\n    ... and 2 more like it, the last: t3\nt4 INFO recorded\nt5 WARN pass failed: a"
        );
        let long: Vec<String> = (0..50).map(|i| format!("t{i} line {i}")).collect();
        assert_eq!(super::log_tail(&long.join("\n")), long[10..].join("\n"));
    }
}
