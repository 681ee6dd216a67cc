//! What the web app reads: the config, the agreement lists, an agreement's event stream, the embedded
//! build of the app and the page's Content-Security-Policy. The store-backed tests run once on SQLite
//! (a fresh file) and once on PostgreSQL (a private server of its own), through a real HTTP server on
//! a free loopback port.

use std::{path::PathBuf, time::Duration};

use conference_backend::{
    chain::TokenInfo, config::OrchestratorKind, domain::event::ChainEvent, http::public::PublicConfig, store::Store,
};
use serde_json::{Value, json};

#[macro_use]
mod common;

on_both_databases!(
    agreements_are_listed_newest_first_by_customer_and_page,
    bad_list_queries_get_a_json_400,
    the_event_stream_sends_the_view_and_each_change,
    an_unseen_agreement_streams_unseen_then_its_progress,
);

/// anvil's dev accounts 2 and 3: other customers.
const OTHER: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const THIRD: &str = "0x90F79bf6EB2c4f870365E5551e1D95a87d6c43c4";

/// Agreement `id` on terms 1, signed by `customer`.
fn signed_by(id: u64, customer: &str) -> ChainEvent {
    let mut event = common::signed();
    if let ChainEvent::Signed { agreement, customer: signer, tx_hash, .. } = &mut event {
        (*agreement, *signer, *tx_hash) = (id, customer.into(), format!("0x{id:064x}"));
    }
    event
}

async fn get(url: String) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn ids(list: &Value) -> Vec<u64> {
    list.as_array().unwrap().iter().map(|a| a["id"].as_u64().unwrap()).collect()
}

async fn agreements_are_listed_newest_first_by_customer_and_page(store: Store) {
    // Agreements 1-5: the customer signs 1, 2, 4 and 5, another customer 3.
    let mut events = vec![common::terms_published()];
    for (id, customer) in
        [(1, common::CUSTOMER), (2, common::CUSTOMER), (3, OTHER), (4, common::CUSTOMER), (5, common::CUSTOMER)]
    {
        events.push(signed_by(id, customer));
    }
    store.apply_events(&events, 3, common::SIGNED_AT).await.unwrap();
    let api = common::spawn_api(store.clone()).await;

    let (status, all) = get(format!("{api}/api/agreements")).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids(&all), [5, 4, 3, 2, 1], "every agreement, newest first");
    let first = &all[4];
    assert_eq!(first["customer"], common::CUSTOMER);
    assert_eq!(first["termsId"], 1);
    assert_eq!(first["model"], "dynamicPrice");
    assert_eq!(first["tokenId"], 0);
    assert_eq!(first["deposit"], "3600000000000000");
    assert_eq!(first["chainStatus"], "requested");
    assert_eq!(first["status"], "signed");
    assert_eq!(
        first["transactions"],
        json!({ "sign": format!("0x{:064x}", 1), "activate": null, "stop": null, "settle": null })
    );
    // The summary is the view's record, status and transactions.
    let (_, view) = get(format!("{api}/api/agreements/1")).await;
    for (key, value) in first.as_object().unwrap() {
        assert_eq!(&view[key], value, "{key}");
    }

    // The customer's, in any case of its address; another's; nobody's.
    let (_, mine) = get(format!("{api}/api/agreements?customer={}", common::CUSTOMER.to_lowercase())).await;
    assert_eq!(ids(&mine), [5, 4, 2, 1]);
    let (_, theirs) = get(format!("{api}/api/agreements?customer={}", OTHER.to_uppercase().replace("0X", "0x"))).await;
    assert_eq!(ids(&theirs), [3]);
    let (_, none) = get(format!("{api}/api/agreements?customer={THIRD}")).await;
    assert_eq!(none, json!([]));

    // Pages: limit, then before the last id of the page.
    let (_, page) = get(format!("{api}/api/agreements?customer={}&limit=2", common::CUSTOMER)).await;
    assert_eq!(ids(&page), [5, 4]);
    let (_, next) = get(format!("{api}/api/agreements?customer={}&limit=2&before=4", common::CUSTOMER)).await;
    assert_eq!(ids(&next), [2, 1]);
    let (_, last) = get(format!("{api}/api/agreements?limit=2&before=1")).await;
    assert_eq!(last, json!([]));
    let (_, all_before) = get(format!("{api}/api/agreements?before=9223372036854775807&limit=1000")).await;
    assert_eq!(ids(&all_before), [5, 4, 3, 2, 1]);
}

async fn bad_list_queries_get_a_json_400(store: Store) {
    store.apply_events(&[common::terms_published(), common::signed()], 3, common::SIGNED_AT).await.unwrap();
    let api = common::spawn_api(store).await;
    for (query, mentions) in [
        ("customer=0x1234", "customer must be an address"),
        ("customer=70997970C51812dc3A010C7d01b50e0d17dc79C8", "customer must be an address"),
        ("customer=0x70997970C51812dc3A010C7d01b50e0d17dc79CZ", "customer must be an address"),
        ("limit=0", "limit must be from 1 to 1000"),
        ("limit=1001", "limit must be from 1 to 1000"),
        ("limit=-1", "the query must be"),
        ("limit=ten", "the query must be"),
        ("before=-1", "the query must be"),
        ("before=9223372036854775808", "before must be an agreement id from 0 to 9223372036854775807"),
        ("colour=red", "the query must be"),
    ] {
        let response = reqwest::get(format!("{api}/api/agreements?{query}")).await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{query}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let body: Value = response.json().await.unwrap();
        let error = body["error"].as_str().unwrap_or_else(|| panic!("{query}: {body}"));
        assert!(error.contains(mentions), "{query}: {error:?} does not mention {mentions:?}");
    }
}

/// A Server-Sent Events reader over a streaming response.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// Opens the stream as a browser does, accepting compressed answers: each event must still come
    /// as it happens, uncompressed (a compressor would hold it back until its buffer fills).
    async fn open(url: String) -> Self {
        let response = reqwest::Client::new().get(url).header("accept-encoding", "gzip, br").send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert!(response.headers().get("content-encoding").is_none(), "{:?}", response.headers());
        Self { response, buffer: String::new() }
    }

    /// The next event's name and data (comments skipped), within 10 s.
    async fn next(&mut self) -> (String, Value) {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let (mut name, mut data) = (String::new(), String::new());
                    for line in block.lines() {
                        if let Some(value) = line.strip_prefix("event:") {
                            name = value.trim().to_owned();
                        } else if let Some(value) = line.strip_prefix("data:") {
                            data.push_str(value.trim_start());
                        }
                    }
                    if !name.is_empty() {
                        return (name, serde_json::from_str(&data).unwrap());
                    }
                    continue;
                }
                let chunk = self.response.chunk().await.unwrap().expect("the stream ended");
                self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .expect("no event within 10 s")
    }
}

async fn the_event_stream_sends_the_view_and_each_change(store: Store) {
    store.apply_events(&[common::terms_published(), common::signed()], 3, common::SIGNED_AT).await.unwrap();
    let api = common::spawn_api(store.clone()).await;
    let mut events = Events::open(format!("{api}/api/agreements/1/events")).await;

    let (name, first) = events.next().await;
    assert_eq!(name, "progress");
    let (_, view) = get(format!("{api}/api/agreements/1")).await;
    assert_eq!(first, view, "the same JSON as GET /api/agreements/1");
    assert_eq!(first["status"], "signed");

    // The reconciler starts the conference: the next event says so.
    store.conference_deploying(1).await.unwrap();
    let (name, second) = events.next().await;
    assert_eq!(name, "progress");
    assert_eq!(second["status"], "deploying");
    assert_eq!(second["conference"]["state"], "deploying");

    // A bad id is the usual JSON 400, before any stream; so is one no agreement can have (the store's
    // ids are BIGINT), which would be awaited for ever.
    for id in ["x", "18446744073709551616", "9223372036854775808"] {
        let response = reqwest::get(format!("{api}/api/agreements/{id}/events")).await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{id}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("agreement id must be an integer"), "{body}");
    }
}

async fn an_unseen_agreement_streams_unseen_then_its_progress(store: Store) {
    let api = common::spawn_api(store.clone()).await;
    let mut events = Events::open(format!("{api}/api/agreements/1/events")).await;
    assert_eq!(events.next().await, ("unseen".to_owned(), json!({})));

    // The watcher reads the signature: the stream's next event is the agreement.
    store.apply_events(&[common::terms_published(), common::signed()], 3, common::SIGNED_AT).await.unwrap();
    let (name, view) = events.next().await;
    assert_eq!(name, "progress");
    assert_eq!(view["id"], 1);
    assert_eq!(view["status"], "signed");
}

/// The API with `public` on a fresh SQLite store; its base URL.
async fn spawn_with(name: &str, public: PublicConfig) -> String {
    let dir = std::env::temp_dir().join(format!("conference-read-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.join("test.db").display())).await.unwrap();
    common::serve_api(
        store,
        public,
        common::join_tokens(),
        conference_backend::metrics::Metrics::new(),
        "http://127.0.0.1:9",
    )
    .await
}

fn deployed_config() -> PublicConfig {
    let token = TokenInfo {
        id: 1,
        symbol: "mUSD".into(),
        decimals: 6,
        address: Some("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0".into()),
    };
    let eth = TokenInfo { id: 0, symbol: "ETH".into(), decimals: 18, address: None };
    PublicConfig {
        public_url: "http://127.0.0.1:8080".into(),
        explorer: Some("https://explorer.example".into()),
        ..PublicConfig::new(common::CHAIN_ID, Some("http://127.0.0.1:8545".into()), common::ESCROW.into())
            .with_deployment(
                conference_backend::chain::DeployedWith {
                    book: "0xa16E02E87b7454126E5E10d957A927A7F5B5d2be".parse().unwrap(),
                    registry: "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512".parse().unwrap(),
                    annex: "0x5FbDB2315678afecb367f032d93F642f64180aa3".parse().unwrap(),
                },
                7,
                vec![eth, token],
            )
    }
}

#[tokio::test]
async fn the_config_names_the_contracts_tokens_regions_and_compiler_settings() {
    let api = spawn_with("config", deployed_config()).await;
    let (status, config) = get(format!("{api}/api/config")).await;
    assert_eq!(status, 200);
    assert_eq!(config["chainId"], 31337);
    assert_eq!(config["rpcUrl"], "http://127.0.0.1:8545");
    assert_eq!(config["escrow"], common::ESCROW);
    assert_eq!(config["book"], "0xa16E02E87b7454126E5E10d957A927A7F5B5d2be");
    assert_eq!(config["registry"], "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512");
    assert_eq!(config["deployBlock"], 7);
    assert_eq!(config["orchestrator"], "local");
    assert_eq!(config["publicUrl"], "http://127.0.0.1:8080");
    assert_eq!(config["explorer"], "https://explorer.example");
    assert_eq!(config["regions"], json!(["EU", "US", "Asia"]));
    assert_eq!(
        config["tokens"],
        json!([
            { "id": 0, "symbol": "ETH", "decimals": 18, "address": null },
            { "id": 1, "symbol": "mUSD", "decimals": 6, "address": "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0" },
        ])
    );
    // Each contract with the compiler settings of its committed artifact.
    let contracts = config["contracts"].as_array().unwrap();
    let names: Vec<&str> = contracts.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ConferenceEscrow", "EscrowAnnex", "OfferBook", "ProviderRegistry"]);
    let annex = json!("0x5FbDB2315678afecb367f032d93F642f64180aa3");
    for (contract, address) in
        contracts.iter().zip([config["escrow"].clone(), annex, config["book"].clone(), config["registry"].clone()])
    {
        let name = contract["name"].as_str().unwrap();
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("abi/{name}.json"));
        let artifact: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(contract["address"], address, "{name}");
        assert_eq!(contract["compiler"], artifact["compiler"]["version"], "{name}");
        assert!(contract["compiler"].as_str().unwrap().starts_with("0.8."), "{contract}");
        assert_eq!(contract["optimizer"], artifact["compiler"]["optimizer"], "{name}");
        assert_eq!(contract["evmVersion"], artifact["compiler"]["evmVersion"], "{name}");
        assert_eq!(contract["sourceUrl"], Value::Null);
    }
    assert!(config["calls"]["sign"].as_str().unwrap().starts_with("0x"));
}

#[tokio::test]
async fn the_content_security_policy_follows_the_rpc_and_the_orchestrator() {
    let csp = |headers: &reqwest::header::HeaderMap| headers["content-security-policy"].to_str().unwrap().to_owned();
    let local = spawn_with("csp-local", deployed_config()).await;
    for path in ["/", "/api/config", "/api/nope", "/healthz"] {
        let response = reqwest::get(format!("{local}{path}")).await.unwrap();
        assert_eq!(
            csp(response.headers()),
            "default-src 'self'; connect-src 'self' http://127.0.0.1:8545 ws://127.0.0.1:* http://127.0.0.1:*; \
             script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
             frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'none'",
            "{path}"
        );
    }

    // Jitsi pods elsewhere: no loopback rooms. The RPC's origin only, never its path.
    let kubernetes = PublicConfig {
        orchestrator: OrchestratorKind::Kubernetes,
        rpc_url: Some("https://rpc.example:8443/v1/some-key".into()),
        ..deployed_config()
    };
    let remote = spawn_with("csp-kube", kubernetes).await;
    let response = reqwest::get(format!("{remote}/")).await.unwrap();
    let policy = csp(response.headers());
    assert!(policy.contains("connect-src 'self' https://rpc.example:8443; "), "{policy}");
    assert!(!policy.contains("127.0.0.1") && !policy.contains("some-key"), "{policy}");
}

/// The files of the web app's build that the backend embedded (web/dist), by path.
fn dist_files() -> Vec<(String, Vec<u8>)> {
    let dist = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web/dist");
    let mut files = Vec::new();
    let mut folders = vec![dist.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let name = path.strip_prefix(&dist).unwrap().to_string_lossy().replace('\\', "/");
                files.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    files
}

#[tokio::test]
async fn the_web_app_is_served_with_its_client_side_routes() {
    let api = spawn_with("web", deployed_config()).await;
    let files = dist_files();
    let index = &files.iter().find(|(name, _)| name == "index.html").expect("web/dist/index.html").1;

    // The app at / and at each client-side route: index.html, never cached without asking.
    for path in ["/", "/index.html", "/audit", "/join/5", "/agreement/7", "/history", "/provider"] {
        let response = reqwest::get(format!("{api}{path}")).await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
        assert_eq!(response.headers()["cache-control"], "no-cache", "{path}");
        assert_eq!(&response.bytes().await.unwrap()[..], &index[..], "{path}");
    }

    // Each hashed asset, as built, with its type, cached for good (their precompressed copies are
    // the next test's).
    let assets: Vec<_> = files
        .iter()
        .filter(|(name, _)| name.starts_with("assets/") && !name.ends_with(".br") && !name.ends_with(".gz"))
        .collect();
    assert!(!assets.is_empty(), "web/dist/assets holds the build's scripts and styles");
    for (name, content) in assets {
        let response = reqwest::get(format!("{api}/{name}")).await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{name}");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let expected = match name.rsplit('.').next() {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            Some("svg") => "image/svg+xml",
            Some("woff2") => "font/woff2",
            _ => "",
        };
        assert!(content_type.starts_with(expected), "{name}: {content_type}");
        assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable", "{name}");
        assert_eq!(&response.bytes().await.unwrap()[..], &content[..], "{name}");
    }

    // robots.txt is the build's own, never the app's page; a file the build does not have is a 404
    // (JSON, as every error), while the app's routes still get the page.
    let robots = reqwest::get(format!("{api}/robots.txt")).await.unwrap();
    assert_eq!(robots.status().as_u16(), 200);
    assert!(robots.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = robots.text().await.unwrap();
    assert!(text.starts_with("User-agent: *\n") && text.contains("Disallow: /api/"), "{text}");
    for path in ["/favicon.ico", "/wp-login.php", "/agreement/7/evil.js", "/assets/gone-1234abcd.js", "/assets/x"] {
        let response = reqwest::get(format!("{api}{path}")).await.unwrap();
        assert_eq!(response.status().as_u16(), 404, "{path}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"), "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], format!("no such file: {path}"));
    }

    // The API's paths keep their JSON 404; other methods than GET are not the app's.
    let http = reqwest::Client::new();
    for request in
        [http.get(format!("{api}/api/nope")), http.get(format!("{api}/api")), http.post(format!("{api}/audit"))]
    {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 404);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().starts_with("no such path: /"), "{body}");
    }
}

/// `bytes` gunzipped.
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

#[tokio::test]
async fn assets_go_precompressed_and_answers_gzipped_to_clients_that_accept_them() {
    let api = spawn_with("compression", deployed_config()).await;
    let http = reqwest::Client::new();
    let get =
        |path: String, accept: &'static str| http.get(format!("{api}{path}")).header("accept-encoding", accept).send();
    let files: std::collections::BTreeMap<String, Vec<u8>> = dist_files().into_iter().collect();

    // Every text file of the build worth compressing has its brotli and gzip copies (web/vite.config.ts),
    // sent as they are to a client that takes their encoding, with the original's type; the original to
    // one that takes neither. The copy of each decompresses to the original.
    let scripts: Vec<&String> =
        files.keys().filter(|name| name.starts_with("assets/") && name.ends_with(".js")).collect();
    assert!(!scripts.is_empty());
    for name in scripts.iter().copied().chain([&"index.html".to_owned()]) {
        let original = &files[name];
        if original.len() < 1024 {
            continue;
        }
        let brotli = files.get(&format!("{name}.br")).unwrap_or_else(|| panic!("{name}.br is built"));
        let gzip = files.get(&format!("{name}.gz")).unwrap_or_else(|| panic!("{name}.gz is built"));
        assert_eq!(gunzip(gzip), *original, "{name}.gz");
        let path = if name == "index.html" { "/".to_owned() } else { format!("/{name}") };
        for (accept, encoding, body) in [
            ("gzip, deflate, br, zstd", Some("br"), brotli),
            ("gzip;q=1.0, br;q=0", Some("gzip"), gzip),
            ("identity", None, original),
        ] {
            let response = get(path.clone(), accept).await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "{name} {accept}");
            let headers = response.headers().clone();
            assert_eq!(headers.get("content-encoding").map(|v| v.to_str().unwrap()), encoding, "{name} {accept}");
            assert_eq!(headers["vary"], "accept-encoding", "{name} {accept}");
            let expected_type = if name.ends_with(".js") { "text/javascript" } else { "text/html" };
            assert!(headers["content-type"].to_str().unwrap().starts_with(expected_type), "{name}: {headers:?}");
            assert_eq!(&response.bytes().await.unwrap()[..], &body[..], "{name} {accept}");
        }
    }

    // The API's JSON is gzipped at answer time for a client that takes gzip, and varies with it;
    // plain JSON otherwise.
    let plain = get("/api/config".to_owned(), "identity").await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    let zipped = get("/api/config".to_owned(), "gzip, br").await.unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert!(zipped.headers()["vary"].to_str().unwrap().to_ascii_lowercase().contains("accept-encoding"));
    assert!(zipped.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let zipped = zipped.bytes().await.unwrap();
    assert!(zipped.len() < plain.len(), "{} bytes gzipped, {} plain", zipped.len(), plain.len());
    assert_eq!(gunzip(&zipped), plain);
}
