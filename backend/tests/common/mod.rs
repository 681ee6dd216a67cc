//! What the store tests share: each test runs once on SQLite (a fresh file) and once on PostgreSQL (a
//! private server of its own, backend/src/dev/devdb.rs).

/// Runs each named `async fn(Store)` as two tests, `sqlite::<name>` and `postgres::<name>`. Names stay
/// under about 67 characters: the PostgreSQL server's socket path is limited.
#[allow(unused_macros)]
macro_rules! on_both_databases {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $test() {
                let dir = std::env::temp_dir().join(format!("conference-store-{}-{}", stringify!($test), std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                let url = format!("sqlite://{}", dir.join("test.db").display());
                super::$test(conference_backend::store::Store::open(&url).await.unwrap()).await;
                let _ = std::fs::remove_dir_all(&dir);
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $test() {
                let server = conference_backend::dev::devdb::PostgresServer::start(stringify!($test)).unwrap();
                super::$test(conference_backend::store::Store::open(&server.url()).await.unwrap()).await;
            })*
        }
    };
}

use conference_backend::domain::{agreement::Model, event::ChainEvent};

/// The dev chain's customer (anvil's account 1).
#[allow(dead_code)]
pub const CUSTOMER: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
#[allow(dead_code)]
pub const SIGNED_AT: u64 = 1_700_000_000;

/// Terms version 1: DynamicPrice, 1e12 wei per second for at most an hour, EU and US, GDPR offered.
#[allow(dead_code)]
pub fn terms_published() -> ChainEvent {
    ChainEvent::TermsPublished {
        terms: 1,
        offer: 1,
        model: Model::DynamicPrice,
        token_id: 0,
        price: "1000000000000".into(),
        max_duration: 3600,
        minimum_charge: "0".into(),
        regions: 0b11,
        gdpr: true,
        monitor: None,
    }
}

/// Agreement 1 on terms 1, signed by [`CUSTOMER`] at [`SIGNED_AT`] for the whole hour's deposit.
#[allow(dead_code)]
pub fn signed() -> ChainEvent {
    ChainEvent::Signed {
        agreement: 1,
        terms: 1,
        customer: CUSTOMER.into(),
        deposit: "3600000000000000".into(),
        model: Model::DynamicPrice,
        token_id: 0,
        price: "1000000000000".into(),
        surcharge_bps: 0,
        allowed_regions: 0b11,
        gdpr: false,
        duration: 3600,
        signed_at: SIGNED_AT,
        tx_hash: "0xabc".into(),
    }
}

/// The secret the tests' join tokens are signed with (never a real one).
#[allow(dead_code)]
pub const JITSI_SECRET: &[u8] = b"the tests' Jitsi app secret";

/// The issuer the tests' APIs use: app id `conference`, any domain, an hour.
#[allow(dead_code)]
pub fn join_tokens() -> conference_backend::tokens::JoinTokens {
    conference_backend::tokens::JoinTokens::new("conference", JITSI_SECRET, "*", 3600).unwrap()
}

/// A conference as the local orchestrator reports one running in region 0.
#[allow(dead_code)]
pub fn deployed() -> conference_backend::domain::conference::Deployed {
    conference_backend::domain::conference::Deployed { join_url: "http://127.0.0.1:1/".into(), fresh: true, region: 0 }
}

/// The chain and escrow the API tests' agreements belong to (anvil's, as the dev chain deploys it).
#[allow(dead_code)]
pub const CHAIN_ID: u64 = 31337;
#[allow(dead_code)]
pub const ESCROW: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

/// The API over `store` on a free loopback port (no node behind it), issuing Jitsi join tokens; its
/// base URL.
#[allow(dead_code)]
pub async fn spawn_api(store: conference_backend::store::Store) -> String {
    spawn_api_with(store, join_tokens()).await
}

/// The API over `store` issuing `join_tokens`; its base URL (also its public URL: sign-in messages
/// name it).
#[allow(dead_code)]
pub async fn spawn_api_with(
    store: conference_backend::store::Store,
    join_tokens: conference_backend::tokens::JoinTokens,
) -> String {
    let public = conference_backend::http::public::PublicConfig::new(
        CHAIN_ID,
        Some("http://127.0.0.1:8545".into()),
        ESCROW.into(),
    );
    serve_api(store, public, join_tokens, conference_backend::metrics::Metrics::new(), "http://127.0.0.1:9").await
}

/// The API over `store` with every part given, its health checks asking the node at `rpc_url`, on a
/// free loopback port; its base URL (also its public URL: sign-in messages name it).
#[allow(dead_code)]
pub async fn serve_api(
    store: conference_backend::store::Store,
    public: conference_backend::http::public::PublicConfig,
    join_tokens: conference_backend::tokens::JoinTokens,
    metrics: conference_backend::metrics::Metrics,
    rpc_url: &str,
) -> String {
    let limits = conference_backend::http::limits::Limits::default();
    serve_api_limited(store, public, join_tokens, metrics, rpc_url, limits).await
}

/// [`serve_api`] within `limits`, on the service's own HTTP server.
#[allow(dead_code)]
pub async fn serve_api_limited(
    store: conference_backend::store::Store,
    public: conference_backend::http::public::PublicConfig,
    join_tokens: conference_backend::tokens::JoinTokens,
    metrics: conference_backend::metrics::Metrics,
    rpc_url: &str,
    limits: conference_backend::http::limits::Limits,
) -> String {
    use conference_backend::http::{self, context::ApiContext, limits::Guards, progress::ProgressFeed};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_, leading) = tokio::sync::watch::channel(true);
    let health = conference_backend::health::Health::new(rpc_url, 50, 0, leading).unwrap();
    let signin = conference_backend::http::siwe::SignIn::new(&format!("http://{addr}"), public.chain_id).unwrap();
    let progress = ProgressFeed::new(store.clone());
    tokio::spawn(std::sync::Arc::clone(&progress).run());
    let guards = Guards::new(limits.clone());
    let ctx = ApiContext { store, public, metrics, health, join_tokens, signin, guards, progress, chain: None };
    let app = http::router(ctx);
    tokio::spawn(async move { http::server::serve(listener, app, &limits, std::future::pending()).await.unwrap() });
    format!("http://{addr}")
}

/// anvil's public dev accounts 1 (the customer, [`CUSTOMER`]), 2 and 3: never real keys.
#[allow(dead_code)]
pub const CUSTOMER_KEY: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
#[allow(dead_code)]
pub const PARTICIPANT_KEY: &str = "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
#[allow(dead_code)]
pub const STRANGER_KEY: &str = "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";

#[allow(dead_code)]
pub fn key(hex: &str) -> alloy::signers::local::PrivateKeySigner {
    hex.parse().unwrap()
}
