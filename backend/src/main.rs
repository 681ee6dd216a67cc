//! The service's binary: parses the command line and hands over to the library.

use clap::Parser;
use conference_backend::{
    Result,
    config::{Cli, Command, DevArgs, MonitorArgs, ServeArgs},
    dev::devnet::{self, Devnet},
    domain::agreement::Model,
    orchestrator::local::{LocalOrchestrator, LocalSettings},
    service, signal,
};
use tracing_subscriber::EnvFilter;

fn main() {
    limit_malloc_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: the async runtime: {err}");
            std::process::exit(1);
        }
    };
    runtime.block_on(run());
}

/// glibc's malloc gives threads that allocate at once arenas of their own (up to eight per core) and
/// keeps each arena's peak resident: the bursts of the loops' threads (a ramp of thousands of agreements)
/// stayed in memory long after. Two arenas, unless `MALLOC_ARENA_MAX` says otherwise: at 10,000 live
/// agreements the backend's resident memory measured 73.5 MB instead of 106 MB (backend-bench loop).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called before any other thread of the process exists; it sets one of the allocator's
        // parameters, which glibc documents as safe to change at any time.
        unsafe {
            nix::libc::mallopt(nix::libc::M_ARENA_MAX, 2);
        }
    }
}

async fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Dev(args) => dev(args).await,
        Command::Monitor(args) => monitor(args).await,
        Command::Openapi => {
            println!("{}", conference_backend::http::openapi_text());
            Ok(())
        }
    };
    if let Err(err) = outcome {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(args.service.http_addr).await?;
    service::serve(args, listener, signal::shutdown_signal()).await
}

async fn monitor(args: MonitorArgs) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(args.http_addr).await?;
    conference_backend::monitor_process::run(args, listener, signal::shutdown_signal()).await
}

async fn dev(args: DevArgs) -> Result<()> {
    // A fresh chain every time: the database and rooms of an earlier run belong to a chain that is
    // gone. Only the files this command creates are removed, never the rest of the folder.
    if args.service.database_url.is_some() {
        return Err(conference_backend::Error::Config(
            "dev keeps its database in --data-dir (a fresh one per run); --database-url is for serve".into(),
        ));
    }
    let data_dir = &args.service.data_dir;
    for name in ["conference.db", "conference.db-wal", "conference.db-shm"] {
        remove_if_present(&data_dir.join(name), |p| std::fs::remove_file(p))?;
    }
    remove_if_present(&data_dir.join("rooms"), |p| std::fs::remove_dir_all(p))?;
    let devnet = Devnet::start(&args.anvil_bin, args.anvil_port).await?;
    let listener = tokio::net::TcpListener::bind(args.service.http_addr).await?;
    let web = format!("http://{}/", listener.local_addr()?);
    let customer_key = alloy::hex::encode_prefixed(devnet.customer.to_bytes());
    let offers: String = devnet::OFFERS
        .iter()
        .enumerate()
        .map(|(i, offer)| {
            let unit = match offer.model {
                Model::FixedPrice => "per conference".to_owned(),
                Model::DynamicPrice => "per second".to_owned(),
                Model::TimeLimited => "per minute".to_owned(),
                Model::FlexiblePeriod => format!("per second, plus a {} wei minimum", offer.minimum_charge),
            };
            let currency = match offer.token_id {
                0 => "wei".to_owned(),
                id => format!("units of token {id} ({} decimals)", devnet::STABLECOIN_DECIMALS),
            };
            format!("\n  terms {}   {}: {} {currency} {unit}", i + 1, offer.model.as_str(), offer.price())
        })
        .collect();
    println!(
        "\nConference escrow: local stack ready\n\
         \n  open      {web} (customers; {web}provider for providers, {web}audit for auditors)\
         \n  chain     {rpc} (chain id 31337)\
         \n  escrow    {escrow}\
         \n  token 1   {token} (a mock stablecoin, 6 decimals; the customer has 10,000){offers}\
         \n\nIn MetaMask, add the network (RPC {rpc}, chain id 31337, symbol ETH) and import the dev\
         \ncustomer account {customer} with the private key\n  {customer_key}\
         \n(anvil's public dev key: never send real funds to it). The providers act as anvil's dev\
         \naccounts 2 (infrastructure) and 4 (conference software). Ctrl-C stops everything.\n",
        rpc = devnet.rpc_url(),
        escrow = devnet.escrow,
        token = devnet.token,
        customer = devnet.customer.address(),
    );
    println!(
        "READY {}",
        serde_json::json!({
            "web": web,
            "rpc": devnet.rpc_url(),
            "escrow": devnet.escrow.to_string(),
            "token": devnet.token.to_string(),
            "customer": devnet.customer.address().to_string(),
            // anvil's public dev key, for scripts that act as the customer (backend/fuzz/api-fuzz.sh).
            "customerKey": customer_key,
        })
    );
    // The local chain is public to whoever reaches this machine: the page reads it directly.
    let mut service = args.service.clone();
    service.public_rpc_url = service.public_rpc_url.or_else(|| Some(devnet.rpc_url()));
    // The backend follows the chain's new heads over WebSocket: a signature is seen as its block is
    // mined, not at the next poll. (The page and MetaMask keep the HTTP URL.)
    let serve_args = ServeArgs {
        rpc_url: devnet.ws_url(),
        escrow: devnet.escrow,
        start_block: devnet.deploy_block,
        operator: conference_backend::config::OperatorKeyArgs::raw(devnet.operator_key()),
        service,
    };
    let outcome = service::serve(serve_args, listener, signal::shutdown_signal()).await;
    // The chain goes with this process: so do its conferences.
    let conferences = LocalOrchestrator::new(LocalSettings::from_args(&args.service))?;
    for id in conferences.list()? {
        conferences.remove(id).await?;
    }
    outcome
}

fn remove_if_present(path: &std::path::Path, remove: fn(&std::path::Path) -> std::io::Result<()>) -> Result<()> {
    match remove(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err.into()),
        _ => Ok(()),
    }
}
