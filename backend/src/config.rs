//! Configuration: command-line flags with environment fallbacks (clap). Secrets never print.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use alloy::primitives::Address;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "conference-backend", version, about = "Smart-contract-metered conferences: watch, run, settle.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service against an existing chain and escrow contract.
    Serve(ServeArgs),
    /// Start a whole local stack: a fresh anvil chain with the contracts deployed and an offer
    /// published, and the service on its embedded defaults (SQLite, local rooms).
    Dev(DevArgs),
    /// Run one conference room (started by the local orchestrator).
    Room(RoomArgs),
}

/// A secret string: its Debug and Display say nothing of it.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// The service's settings that do not depend on where the chain comes from.
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    /// Address the HTTP API and web page listen on.
    #[arg(long = "http", env = "HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// The database: `sqlite://<path>` (the default is `<data-dir>/conference.db`) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where the service keeps its database (by default) and its rooms' state and logs.
    #[arg(long, env = "DATA_DIR", default_value = ".run")]
    pub data_dir: PathBuf,
    /// The region this service runs conferences in: a bit number of the contract's region masks
    /// (0 EU, 1 US, 2 Asia on the dev chain). Agreements whose constraints exclude it are declined.
    #[arg(long, env = "REGION", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..32))]
    pub region: u8,
    /// Blocks below head the watcher reads up to, and blocks an operator transaction's receipt must
    /// have on top of it before its call counts as done.
    #[arg(long, env = "CONFIRMATIONS", default_value_t = 0)]
    pub confirmations: u64,
    /// The deepest chain reorganisation the watcher can roll back: how many recent block hashes it keeps.
    #[arg(long, env = "MAX_REORG_DEPTH", default_value_t = 64)]
    pub max_reorg_depth: u64,
    /// Seconds an operator transaction may wait unmined in the node's mempool before its fees are bumped.
    #[arg(long, env = "FEE_BUMP_AFTER_SECS", default_value_t = 30)]
    pub fee_bump_after_secs: u64,
    /// The most blocks per `eth_getLogs` call.
    #[arg(long, env = "LOG_BATCH_BLOCKS", default_value_t = 2_000)]
    pub batch_blocks: u64,
    /// How often the watcher polls the chain, in milliseconds.
    #[arg(long, env = "POLL_INTERVAL_MS", default_value_t = 250)]
    pub poll_interval_ms: u64,
    /// How often the monitor probes each running conference, in milliseconds.
    #[arg(long, env = "PROBE_INTERVAL_MS", default_value_t = 2_000)]
    pub probe_interval_ms: u64,
}

impl ServiceArgs {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("conference.db").display()))
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(10))
    }

    pub fn probe_interval(&self) -> Duration {
        Duration::from_millis(self.probe_interval_ms.max(10))
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// JSON-RPC URL of the chain: `http(s)://` (polled) or `ws(s)://` (new heads pushed).
    #[arg(long, env = "RPC_URL")]
    pub rpc_url: String,
    /// Address of the ConferenceEscrow contract.
    #[arg(long, env = "ESCROW_ADDRESS")]
    pub escrow: Address,
    /// The block the contract was deployed in: where the watcher starts on an empty database.
    #[arg(long, env = "START_BLOCK", default_value_t = 0)]
    pub start_block: u64,
    /// The operator's private key (hex). Prefer the environment variable to the flag.
    #[arg(long, env = "OPERATOR_KEY", hide_env_values = true)]
    pub operator_key: Secret,
    #[command(flatten)]
    pub service: ServiceArgs,
}

#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    /// The anvil binary (installed by `npm ci` in anvil/).
    #[arg(long, env = "ANVIL_BIN", default_value = "anvil/node_modules/.bin/anvil")]
    pub anvil_bin: PathBuf,
    /// Port for anvil's JSON-RPC; 0 picks a free one.
    #[arg(long, env = "ANVIL_PORT", default_value_t = 8545)]
    pub anvil_port: u16,
    #[command(flatten)]
    pub service: ServiceArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RoomArgs {
    #[arg(long)]
    pub agreement: u64,
    #[arg(long)]
    pub rooms_dir: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}
