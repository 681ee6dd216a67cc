//! Configuration: command-line flags with environment fallbacks (clap). Secrets never print.

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use clap::{Args, Parser, Subcommand};

use crate::{Error, Result, error::redact_url};

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
    /// published, and the service on its embedded defaults (SQLite, a Janus server per conference).
    Dev(DevArgs),
    /// Run an independent monitor: the process of a provider with the Monitoring role, which probes the
    /// conferences of the offers that name it through their public endpoints and signs their availability
    /// (its own node, its own database, its own key).
    Monitor(MonitorArgs),
    /// Print the HTTP API's OpenAPI document (what `GET /api/openapi.json` serves), as the web app's
    /// committed copy `web/openapi.json` has it (`make openapi` writes it there).
    Openapi,
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
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
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
    /// The service's public URL as browsers reach it (e.g. `https://conference.example`): Sign-In with
    /// Ethereum messages must name its host as their domain and its origin as their URI. Default:
    /// `http://<the bound HTTP address>`.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Where the service keeps its database (by default) and its rooms' state and logs.
    #[arg(long, env = "DATA_DIR", default_value = ".run")]
    pub data_dir: PathBuf,
    /// The region the local orchestrator runs conferences in: a bit number of the contract's region
    /// masks (0 EU, 1 US, 2 Asia on the dev chain). Agreements whose constraints exclude it are
    /// declined. (The Kubernetes orchestrator takes each cluster's region from the clusters file.)
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
    /// The most operator calls (opening orders, activations, settlements, ...) sent in one `batch`
    /// transaction; more wait for the next settler pass.
    #[arg(long, env = "OPERATOR_BATCH_SIZE", default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=500))]
    pub operator_batch_size: u64,
    /// The most operator transactions waiting for their blocks at once: a new batch is sent while fewer
    /// are in flight (a node mines one sender's next nonces together, in one block or in turn).
    #[arg(long, env = "OPERATOR_IN_FLIGHT", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub operator_in_flight: u64,
    /// The most blocks per `eth_getLogs` call.
    #[arg(long, env = "LOG_BATCH_BLOCKS", default_value_t = 2_000)]
    pub batch_blocks: u64,
    /// How often the watcher polls the chain, in milliseconds.
    #[arg(long, env = "POLL_INTERVAL_MS", default_value_t = 250)]
    pub poll_interval_ms: u64,
    /// With an `http(s)://` RPC URL, poll only: do not follow new heads over the WebSocket of the same
    /// endpoint (`ws(s)://`, same host, port and path), which is tried by default and falls back to
    /// polling where the node offers none.
    #[arg(long)]
    pub poll_only: bool,
    /// How often the monitor probes each running conference, in milliseconds.
    #[arg(long, env = "PROBE_INTERVAL_MS", default_value_t = 2_000)]
    pub probe_interval_ms: u64,
    /// This replica's name among the replicas sharing the database (default: host name and process id).
    #[arg(long, env = "REPLICA_ID")]
    pub replica_id: Option<String>,
    /// How long the leader's lease lasts without renewal, in milliseconds: another replica takes over
    /// within this plus the renewal interval of the leader's death.
    #[arg(long, env = "LEASE_TTL_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1_000..))]
    pub lease_ttl_ms: u64,
    /// How often replicas renew (leader) or try to take (the others) the lease, in milliseconds; under
    /// half the lease's time to live.
    #[arg(long, env = "LEASE_RENEW_MS", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub lease_renew_ms: u64,
    /// `GET /readyz` fails when the watcher is more blocks than this behind the chain's head.
    #[arg(long, env = "READY_MAX_LAG_BLOCKS", default_value_t = 50)]
    pub ready_max_lag_blocks: u64,
    /// The chain's JSON-RPC URL the web app reads the chain through, published to every visitor in
    /// `GET /api/config` (never the backend's own `RPC_URL`, which may carry credentials). Unset: the
    /// page reads the chain through the visitor's wallet. Must not carry credentials.
    #[arg(long, env = "PUBLIC_RPC_URL")]
    pub public_rpc_url: Option<String>,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub jitsi: JitsiArgs,
    /// Where conferences run: `local` (a room process per conference on this machine, in `--region`)
    /// or `kubernetes` (a Jitsi Meet pod per conference, on the clusters of `--clusters-file`), or
    /// `noop` (for benchmarks: no conference is run; a deploy answers at once, in `--region`).
    #[arg(long, env = "ORCHESTRATOR", value_enum, default_value_t = OrchestratorKind::Local)]
    pub orchestrator: OrchestratorKind,
    /// The Kubernetes orchestrator's clusters, latency table, pools and Jitsi settings (TOML; see
    /// `deploy/README.md`).
    #[arg(long, env = "CLUSTERS_FILE")]
    pub clusters_file: Option<PathBuf>,
    /// A block explorer's base URL (e.g. `https://sepolia.etherscan.io`), for the web app's links to
    /// transactions (`<url>/tx/<hash>`) and addresses (`<url>/address/<address>`); none by default.
    #[arg(long, env = "EXPLORER_URL")]
    pub explorer_url: Option<String>,
    #[command(flatten)]
    pub janus: JanusArgs,
}

/// The local orchestrator's conference servers: Janus (Debian's `janus` package), one per conference.
#[derive(Debug, Clone, Args)]
pub struct JanusArgs {
    /// The Janus binary (`make janus` installs Debian's package).
    #[arg(long, env = "JANUS_BIN", default_value = "/usr/bin/janus")]
    pub janus_bin: PathBuf,
    /// The network interface (name or address) Janus gathers ICE candidates on and names in its SDP:
    /// the one participants' browsers reach this machine at. Unset: Janus picks among every interface
    /// but loopback (which it never uses for media).
    #[arg(long = "janus-ice-interface", env = "JANUS_ICE_INTERFACE")]
    pub janus_ice_interface: Option<String>,
}

/// What one client (and all of them) may hold of the HTTP server: connections, time, event streams and
/// sign-ins. A reverse proxy in front should set its own limits too (`backend/README.md`).
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Seconds a client has to send a request's headers, and the longest an idle connection is kept
    /// between requests.
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,
    /// Seconds a request may take to be answered (an event stream's answer is its first bytes), and to
    /// send its body.
    #[arg(long, env = "HTTP_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_secs: u64,
    /// The most connections open at once; more wait to be accepted.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
    /// The most connections one client (address) may hold open; more are closed at once.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections_per_client: u64,
    /// The most progress streams (`GET /api/agreements/{id}/events`) open at once, and per client.
    #[arg(long, env = "EVENT_STREAMS_MAX", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    pub event_streams_max: u64,
    #[arg(long, env = "EVENT_STREAMS_PER_CLIENT", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    pub event_streams_per_client: u64,
    /// Seconds a progress stream stays open; the page's EventSource then reconnects (and is served by
    /// whichever replica it reaches).
    #[arg(long, env = "EVENT_STREAM_LIFETIME_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub event_stream_lifetime_secs: u64,
    /// Sign-in requests (nonces and verifications) one client may make per minute.
    #[arg(long, env = "SIGNIN_PER_CLIENT_PER_MINUTE", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub signin_per_client_per_minute: u32,
    /// The most sign-in nonces outstanding (issued, unused, unexpired) at once, over all clients.
    #[arg(long, env = "SIGNIN_NONCES_MAX", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub signin_nonces_max: u64,
    /// The request header that carries the client's address when a reverse proxy sets it (e.g.
    /// `X-Real-IP`): the per-client limits then count by it. Unset: the connection's peer address.
    /// Set it only behind a proxy that overwrites the header.
    #[arg(long, env = "CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrchestratorKind {
    Local,
    Kubernetes,
    /// For benchmarks: no conference is run.
    Noop,
}

/// The join tokens the API issues to a conference's customer and registered participants (Jitsi Meet's
/// JWT authentication, HS256): the Kubernetes orchestrator's prosody must be configured with the same
/// app id and secret.
#[derive(Debug, Clone, Args)]
pub struct JitsiArgs {
    /// The tokens' issuer (`iss`), Jitsi's `app_id`.
    #[arg(long, env = "JITSI_APP_ID", default_value = "conference")]
    pub jitsi_app_id: String,
    /// The secret the tokens are signed with, Jitsi's `app_secret`: required by the Kubernetes
    /// orchestrator (the local one's rooms check tokens signed with `<data-dir>/rooms/join-secret`,
    /// which the service makes). Set it in the environment, never as a flag.
    #[arg(long, env = "JITSI_APP_SECRET", hide_env_values = true)]
    pub jitsi_app_secret: Option<Secret>,
    /// The tokens' subject (`sub`): the Jitsi domain (tenant) they are for, or `*` for any.
    #[arg(long, env = "JITSI_DOMAIN", default_value = "*")]
    pub jitsi_domain: String,
    /// How long a join token lets its holder in, in seconds (Jitsi checks it when joining).
    #[arg(long, env = "JITSI_TOKEN_TTL_SECS", default_value_t = 3_600, value_parser = clap::value_parser!(u64).range(60..=86_400))]
    pub jitsi_token_ttl_secs: u64,
}

impl ServiceArgs {
    /// The Kubernetes orchestrator's clusters file (None for the local orchestrator), checked before
    /// anything is opened: that orchestrator needs the file, and JITSI_APP_SECRET, because prosody
    /// checks join tokens with the secret in the cluster's Secret and a random one here would sign
    /// tokens no conference accepts.
    pub fn clusters_file(&self) -> Result<Option<&Path>> {
        if self.orchestrator != OrchestratorKind::Kubernetes {
            return Ok(None);
        }
        let file = self
            .clusters_file
            .as_deref()
            .ok_or_else(|| Error::Config("ORCHESTRATOR=kubernetes needs CLUSTERS_FILE (--clusters-file)".into()))?;
        if self.jitsi.jitsi_app_secret.is_none() {
            return Err(Error::Config("ORCHESTRATOR=kubernetes needs JITSI_APP_SECRET".into()));
        }
        Ok(Some(file))
    }

    /// The block explorer's base URL without a trailing slash, if one is set; an error unless it is an
    /// http(s) URL.
    pub fn explorer(&self) -> Result<Option<String>> {
        let Some(url) = &self.explorer_url else { return Ok(None) };
        match reqwest::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(Some(url.trim_end_matches('/').to_owned())),
            _ => Err(Error::Config(format!("EXPLORER_URL must be an http(s) URL, got {url:?}"))),
        }
    }

    /// The chain URL published to the web app: `PUBLIC_RPC_URL`, an http(s) URL without credentials.
    pub fn public_rpc_url(&self) -> Result<Option<String>> {
        let Some(url) = &self.public_rpc_url else { return Ok(None) };
        match reqwest::Url::parse(url) {
            Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => {
                Err(Error::Config(format!("PUBLIC_RPC_URL must be an http(s) URL, got {}", redact_url(url))))
            }
            Ok(parsed) if !parsed.username().is_empty() || parsed.password().is_some() => Err(Error::Config(
                "PUBLIC_RPC_URL carries credentials: it is published to every visitor; give a public endpoint".into(),
            )),
            Ok(_) => Ok(Some(url.clone())),
            Err(e) => Err(Error::Config(format!("PUBLIC_RPC_URL {} is not a URL: {e}", redact_url(url)))),
        }
    }

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
    /// JSON-RPC URL of the chain: `ws(s)://` (new heads pushed), or `http(s)://` (requests over HTTP,
    /// new heads followed over the same endpoint's WebSocket if it answers, else polled; see `--poll-only`).
    #[arg(long, env = "RPC_URL")]
    pub rpc_url: String,
    /// Address of the ConferenceEscrow contract.
    #[arg(long, env = "ESCROW_ADDRESS")]
    pub escrow: Address,
    /// The block the contract was deployed in: where the watcher starts on an empty database.
    #[arg(long, env = "START_BLOCK", default_value_t = 0)]
    pub start_block: u64,
    #[command(flatten)]
    pub operator: OperatorKeyArgs,
    #[command(flatten)]
    pub service: ServiceArgs,
}

/// `conference-backend monitor`: an independent monitor's settings.
#[derive(Debug, Clone, Args)]
pub struct MonitorArgs {
    /// JSON-RPC URL of the monitor's own node: `http(s)://` (polled) or `ws(s)://`.
    #[arg(long, env = "RPC_URL")]
    pub rpc_url: String,
    /// Address of the ConferenceEscrow contract.
    #[arg(long, env = "ESCROW_ADDRESS")]
    pub escrow: Address,
    /// The block the contract was deployed in: where the monitor's watcher starts on an empty database.
    #[arg(long, env = "START_BLOCK", default_value_t = 0)]
    pub start_block: u64,
    /// The monitor's private key (hex): the account it registered as a provider with, which signs its
    /// reports and signs in to the operator's API for its monitoring credential.
    #[arg(long, env = "MONITOR_KEY", hide_env_values = true)]
    pub monitor_key: Secret,
    /// The operator's public API (its base URL): where the monitor gets join tokens and hands reports in.
    #[arg(long, env = "BACKEND_URL")]
    pub backend_url: String,
    /// The monitor's own database: `sqlite://path` (created if missing) or `postgres://…`.
    #[arg(long, env = "MONITOR_DATABASE_URL")]
    pub database_url: String,
    /// How often it probes each conference (the length of an availability slot), in milliseconds.
    #[arg(long, env = "PROBE_INTERVAL_MS", default_value_t = 2_000)]
    pub probe_interval_ms: u64,
    /// How often its watcher asks an HTTP node for new blocks, in milliseconds.
    #[arg(long, env = "POLL_INTERVAL_MS", default_value_t = 1_000)]
    pub poll_interval_ms: u64,
    /// Where it serves its reports and their records (`GET /api/reports`) and `/healthz`.
    #[arg(long, env = "MONITOR_HTTP_ADDR", default_value = "127.0.0.1:8090")]
    pub http_addr: std::net::SocketAddr,
}

/// Where the operator's key comes from: exactly one of a raw key and an encrypted JSON keystore (the
/// Web3 Secret Storage format that geth, foundry's `cast wallet` and alloy write).
#[derive(Debug, Clone, Default, Args)]
pub struct OperatorKeyArgs {
    /// The operator's private key (hex). Prefer the environment variable to the flag, and a keystore
    /// to either.
    #[arg(long, env = "OPERATOR_KEY", hide_env_values = true)]
    pub operator_key: Option<Secret>,
    /// An encrypted JSON keystore holding the operator's key, instead of OPERATOR_KEY. Its password
    /// comes from OPERATOR_KEYSTORE_PASSWORD or --operator-keystore-password-file.
    #[arg(long, env = "OPERATOR_KEYSTORE")]
    pub operator_keystore: Option<PathBuf>,
    /// The keystore's password. Set it in the environment, never as a flag (the command line is visible
    /// to every user of the machine).
    #[arg(long, env = "OPERATOR_KEYSTORE_PASSWORD", hide_env_values = true, hide = true)]
    pub operator_keystore_password: Option<Secret>,
    /// A file whose content (less a final newline) is the keystore's password.
    #[arg(long, env = "OPERATOR_KEYSTORE_PASSWORD_FILE")]
    pub operator_keystore_password_file: Option<PathBuf>,
}

impl OperatorKeyArgs {
    /// A raw key, as `dev` passes anvil's.
    pub fn raw(key: String) -> Self {
        Self { operator_key: Some(Secret(key)), ..Self::default() }
    }

    /// The operator's signer, from whichever source was given; an error that names the settings when
    /// none, or both, were.
    pub fn signer(&self) -> Result<PrivateKeySigner> {
        match (&self.operator_key, &self.operator_keystore) {
            (Some(key), None) => key
                .0
                .trim()
                .parse()
                .map_err(|_| Error::Config("OPERATOR_KEY is not a valid private key (64 hex digits)".into())),
            (None, Some(keystore)) => self.decrypt(keystore),
            (None, None) => Err(Error::Config(
                "no operator key: set OPERATOR_KEYSTORE (--operator-keystore) with OPERATOR_KEYSTORE_PASSWORD \
                 or --operator-keystore-password-file, or else OPERATOR_KEY (--operator-key)"
                    .into(),
            )),
            (Some(_), Some(_)) => Err(Error::Config(
                "both OPERATOR_KEY and OPERATOR_KEYSTORE are set: give the operator key one way only".into(),
            )),
        }
    }

    fn decrypt(&self, keystore: &Path) -> Result<PrivateKeySigner> {
        let password = match (&self.operator_keystore_password, &self.operator_keystore_password_file) {
            (Some(password), None) => password.clone(),
            (None, Some(file)) => Secret(
                std::fs::read_to_string(file)
                    .map_err(|e| Error::Config(format!("the keystore password file {}: {e}", file.display())))?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            ),
            (None, None) => {
                return Err(Error::Config(
                    "OPERATOR_KEYSTORE needs its password: set OPERATOR_KEYSTORE_PASSWORD or \
                     --operator-keystore-password-file"
                        .into(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(Error::Config(
                    "both OPERATOR_KEYSTORE_PASSWORD and --operator-keystore-password-file are set: give one".into(),
                ));
            }
        };
        PrivateKeySigner::decrypt_keystore(keystore, password.0.as_bytes()).map_err(|e| {
            // The error says whether the file or the password was wrong; it never holds the key.
            Error::Config(format!("the operator keystore {} could not be decrypted: {e}", keystore.display()))
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// anvil's public dev account 0: never a real key.
    const DEV_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    fn serve_args(extra: &[&str]) -> std::result::Result<ServeArgs, clap::Error> {
        let base =
            ["conference-backend", "serve", "--rpc-url", "http://127.0.0.1:1", "--escrow", &Address::ZERO.to_string()];
        let cli = Cli::try_parse_from(base.iter().chain(extra))?;
        match cli.command {
            Command::Serve(args) => Ok(args),
            other => panic!("parsed {other:?}"),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("conference-keystore-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Encrypts the dev key into `dir/operator.json` with `password`, as `cast wallet import` would.
    fn keystore(dir: &Path, password: &str) -> (PathBuf, Address) {
        let key = alloy::hex::decode(DEV_KEY).unwrap();
        let (signer, _) =
            PrivateKeySigner::encrypt_keystore(dir, &mut rand::thread_rng(), key, password, Some("operator.json"))
                .unwrap();
        (dir.join("operator.json"), signer.address())
    }

    #[test]
    fn loads_the_operator_key_from_an_encrypted_keystore() {
        let dir = temp_dir("load");
        let (path, address) = keystore(&dir, "correct horse");
        let password_file = dir.join("password");
        std::fs::write(&password_file, "correct horse\n").unwrap();

        let args = serve_args(&[
            "--operator-keystore",
            path.to_str().unwrap(),
            "--operator-keystore-password-file",
            password_file.to_str().unwrap(),
        ])
        .unwrap();
        assert_eq!(args.operator.signer().unwrap().address(), address);

        let by_password =
            OperatorKeyArgs { operator_keystore_password: Some(Secret("correct horse".into())), ..args.operator };
        let by_password = OperatorKeyArgs { operator_keystore_password_file: None, ..by_password };
        assert_eq!(by_password.signer().unwrap().address(), address);

        let wrong = OperatorKeyArgs { operator_keystore_password: Some(Secret("wrong".into())), ..by_password };
        let err = wrong.signer().unwrap_err().to_string();
        assert!(err.contains("could not be decrypted"), "{err}");
        assert!(!err.contains(DEV_KEY), "the error must not show the key: {err}");
    }

    #[test]
    fn exactly_one_key_source_is_required() {
        let none = serve_args(&[]).unwrap().operator.signer().unwrap_err().to_string();
        assert!(none.contains("no operator key") && none.contains("OPERATOR_KEYSTORE"), "{none}");

        let both = serve_args(&["--operator-key", DEV_KEY, "--operator-keystore", "/nonexistent.json"])
            .unwrap()
            .operator
            .signer()
            .unwrap_err()
            .to_string();
        assert!(both.contains("both OPERATOR_KEY and OPERATOR_KEYSTORE"), "{both}");

        let no_password = serve_args(&["--operator-keystore", "/nonexistent.json"]).unwrap().operator;
        let no_password = no_password.signer().unwrap_err().to_string();
        assert!(no_password.contains("OPERATOR_KEYSTORE_PASSWORD"), "{no_password}");

        let raw = serve_args(&["--operator-key", DEV_KEY]).unwrap();
        assert_eq!(raw.operator.signer().unwrap().address().to_string(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        assert!(!format!("{raw:?}").contains(DEV_KEY), "Debug must not print the key");

        let bad = serve_args(&["--operator-key", "0x1234"]).unwrap().operator.signer().unwrap_err().to_string();
        assert!(bad.contains("not a valid private key") && !bad.contains("1234"), "{bad}");
    }

    #[test]
    fn the_kubernetes_orchestrator_needs_its_clusters_file_and_the_jitsi_secret() {
        let local = serve_args(&[]).unwrap();
        assert_eq!(local.service.clusters_file().unwrap(), None);
        let no_file = serve_args(&["--orchestrator", "kubernetes", "--jitsi-app-secret", "s"]).unwrap();
        assert!(no_file.service.clusters_file().unwrap_err().to_string().contains("needs CLUSTERS_FILE"));
        let no_secret = serve_args(&["--orchestrator", "kubernetes", "--clusters-file", "/c.toml"]).unwrap();
        assert!(no_secret.service.clusters_file().unwrap_err().to_string().contains("needs JITSI_APP_SECRET"));
        let both = ["--orchestrator", "kubernetes", "--clusters-file", "/c.toml", "--jitsi-app-secret", "s"];
        assert_eq!(serve_args(&both).unwrap().service.clusters_file().unwrap(), Some(Path::new("/c.toml")));
    }

    #[test]
    fn the_public_rpc_url_is_an_http_url_without_credentials() {
        assert_eq!(serve_args(&[]).unwrap().service.public_rpc_url().unwrap(), None, "none unless given");
        let public = serve_args(&["--public-rpc-url", "https://rpc.example/v1"]).unwrap();
        assert_eq!(public.service.public_rpc_url().unwrap().as_deref(), Some("https://rpc.example/v1"));
        let secret = serve_args(&["--public-rpc-url", "https://me:hunter2@rpc.example/"]).unwrap();
        let err = secret.service.public_rpc_url().unwrap_err().to_string();
        assert!(err.contains("credentials") && !err.contains("hunter2"), "{err}");
        let ws = serve_args(&["--public-rpc-url", "ws://rpc.example/?key=k3y"]).unwrap();
        let err = ws.service.public_rpc_url().unwrap_err().to_string();
        assert!(err.contains("http(s)") && !err.contains("k3y"), "{err}");
    }

    #[test]
    fn the_noop_orchestrator_needs_no_clusters_file() {
        let noop = serve_args(&["--orchestrator", "noop", "--region", "2"]).unwrap();
        assert_eq!(noop.service.orchestrator, OrchestratorKind::Noop);
        assert_eq!(noop.service.region, 2);
        assert_eq!(noop.service.clusters_file().unwrap(), None);
    }

    #[test]
    fn the_env_sample_lists_every_setting_of_serve() {
        use clap::CommandFactory;
        let sample = include_str!("../../.env.sample");
        let listed = |name: &str| {
            sample
                .lines()
                .any(|line| line.trim_start_matches("# ").strip_prefix(name).is_some_and(|r| r.starts_with('=')))
        };
        let cli = Cli::command();
        let serve = cli.find_subcommand("serve").unwrap();
        for arg in serve.get_arguments() {
            if let Some(name) = arg.get_env().and_then(|n| n.to_str()) {
                assert!(listed(name), ".env.sample does not list {name}");
            }
        }
        assert!(listed("RUST_LOG"));
    }
}
