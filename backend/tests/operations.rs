//! The operations surface against a real SQLite file and a real HTTP server on a loopback port:
//! /readyz (with a stand-in JSON-RPC node on loopback, or none), /metrics, /api/openapi.json, and the
//! JSON error of every kind of bad request.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use axum::{Json, Router, routing::post};
use conference_backend::{
    domain::{event::ChainEvent, operator::OperatorCall},
    http::{self, public::PublicConfig},
    metrics::{self, Metrics},
    store::Store,
};
use reqwest::StatusCode;

#[macro_use]
#[allow(unused_macros)]
mod common;
use serde_json::{Value, json};

async fn fresh_store(name: &str) -> Store {
    let dir = std::env::temp_dir().join(format!("conference-ops-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Store::open(&format!("sqlite://{}", dir.join("test.db").display())).await.unwrap()
}

/// A JSON-RPC node on loopback that knows one method, `eth_blockNumber`, answering `head`.
async fn stand_in_node(head: Arc<AtomicU64>) -> String {
    let app = Router::new().route(
        "/",
        post(move |Json(request): Json<Value>| {
            let head = head.load(Ordering::SeqCst);
            async move {
                assert_eq!(request["method"], "eth_blockNumber", "the readiness check asks for the head only");
                Json(json!({ "jsonrpc": "2.0", "id": request["id"], "result": format!("{head:#x}") }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A loopback URL where nothing listens.
async fn nothing_listening() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

async fn spawn_api(store: Store, rpc_url: &str, metrics: Metrics) -> String {
    let public = PublicConfig::new(
        31337,
        Some("http://127.0.0.1:8545".into()),
        "0x5FbDB2315678afecb367f032d93F642f64180aa3".into(),
    );
    common::serve_api(store, public, common::join_tokens(), metrics, rpc_url).await
}

fn signed_and_active() -> Vec<ChainEvent> {
    vec![
        common::terms_published(),
        common::signed(),
        ChainEvent::Activated {
            agreement: 1,
            started_at: 1_700_000_005,
            ends_at: 1_700_003_605,
            region: 0,
            tx_hash: "0xdef".into(),
        },
    ]
}

async fn readiness(api: &str) -> (StatusCode, Value) {
    let response = reqwest::get(format!("{api}/readyz")).await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn check<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name}: {body}"))
}

#[tokio::test]
async fn ready_when_the_database_and_node_answer_and_the_watcher_keeps_up() {
    let head = Arc::new(AtomicU64::new(1_000));
    let store = fresh_store("ready").await;
    let api = spawn_api(store.clone(), &stand_in_node(head.clone()).await, Metrics::new()).await;

    let (status, body) = readiness(&api).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "the watcher has not looked yet: {body}");
    assert_eq!(check(&body, "watcher")["ok"], false);
    assert_eq!(check(&body, "rpc")["ok"], true);

    // The watcher (this replica's or the leader's) has read up to the head: the next block is 1,001.
    store.apply_events(&[], 1_001, 1_700_000_000).await.unwrap();
    let (status, body) = readiness(&api).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(body["role"], "leader");
    for name in ["database", "rpc", "watcher"] {
        assert_eq!(check(&body, name)["ok"], true, "{body}");
    }

    // The chain moves on and the watcher stops looking: 51 blocks behind is over the bound of 50.
    head.store(1_051, Ordering::SeqCst);
    let (status, body) = readiness(&api).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(check(&body, "watcher")["ok"], false);
    assert!(check(&body, "watcher")["detail"].as_str().unwrap().contains("51 blocks behind"), "{body}");
}

#[tokio::test]
async fn not_ready_when_the_node_does_not_answer() {
    let store = fresh_store("unready").await;
    store.apply_events(&[], 11, 1_700_000_000).await.unwrap();
    let api = spawn_api(store, &nothing_listening().await, Metrics::new()).await;
    let (status, body) = readiness(&api).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(check(&body, "database")["ok"], true);
    assert_eq!(check(&body, "rpc")["ok"], false);
    assert!(!check(&body, "rpc")["detail"].as_str().unwrap().contains("127.0.0.1"), "no URL is told: {body}");
    assert_eq!(check(&body, "watcher")["ok"], false);

    let alive = reqwest::get(format!("{api}/healthz")).await.unwrap();
    assert_eq!((alive.status(), alive.text().await.unwrap().as_str()), (StatusCode::OK, "ok"), "alive all the same");
}

#[tokio::test]
async fn metrics_name_every_series_and_read_the_database_facts() {
    let store = fresh_store("metrics").await;
    store.apply_events(&signed_and_active(), 5, 1_700_000_010).await.unwrap();
    store.conference_running(1, &common::deployed()).await.unwrap();
    let end = OperatorCall::End { agreement: 1, session: 1, started_at: 1_700_000_005 };
    store.enqueue(&end).await.unwrap();

    let metrics = Metrics::new();
    metrics.watcher_lag(20, 2);
    metrics.events_processed(&[ChainEvent::Settled {
        agreement: 1,
        availability_bps: 9_950,
        evidence: Default::default(),
        charge: "1".into(),
        refund: "0".into(),
        refund_deferred: false,
        tx_hash: "0x1".into(),
    }]);
    drop(metrics.reconcile_started());
    metrics.tx_sent();
    metrics.tx_mined(false);
    metrics.probe(true);
    let api = spawn_api(store, &nothing_listening().await, metrics).await;

    let response = reqwest::get(format!("{api}/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], metrics::CONTENT_TYPE);
    let text = response.text().await.unwrap();
    for name in metrics::NAMES {
        assert!(text.contains(&format!("\n{name}")), "{name} has no sample:\n{text}");
    }
    for sample in [
        "conference_watcher_lag_blocks 2",
        "conference_chain_events_processed_total 1",
        "conference_outbox_depth 1",
        "conference_running 1",
        "conference_transactions_sent_total 1",
        "conference_transactions_failed_total 1",
        "conference_probes_total{outcome=\"ok\"} 1",
        "conference_settlement_availability_bps_count 1",
        "conference_reconcile_duration_seconds_count 1",
    ] {
        assert!(text.lines().any(|line| line == sample), "no line {sample:?} in:\n{text}");
    }
}

/// The web app's API types are generated from its committed copy of the document (`web/openapi.json`):
/// a route or schema the backend changes without the copy following fails here, and the page's build
/// then fails wherever the page does not follow it.
#[test]
fn the_web_apps_copy_of_the_openapi_document_is_the_served_one() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed.trim_end() == http::openapi_text(),
        "web/openapi.json differs from the backend's OpenAPI document: run `make openapi` and commit it"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_error() {
    let api = spawn_api(fresh_store("openapi").await, &nothing_listening().await, Metrics::new()).await;
    let document: Value = reqwest::get(format!("{api}/api/openapi.json")).await.unwrap().json().await.unwrap();
    assert_eq!(document, serde_json::to_value(http::openapi()).unwrap(), "served as generated");
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));

    let expected = [
        ("/api/config", "get"),
        ("/api/offers", "get"),
        ("/api/agreements", "get"),
        ("/api/agreements/{id}", "get"),
        ("/api/agreements/{id}/events", "get"),
        ("/api/agreements/{id}/probes", "get"),
        ("/api/agreements/{id}/stop", "post"),
        ("/api/orders", "post"),
        ("/api/orders/{customer}/{nonce}", "get"),
        ("/api/agreements/{id}/participants", "post"),
        ("/api/agreements/{id}/join-token", "post"),
        ("/api/siwe/nonce", "post"),
        ("/api/siwe/verify", "post"),
        ("/api/session", "get"),
        ("/api/session", "delete"),
        ("/api/openapi.json", "get"),
        ("/api/agreements/{id}/report", "post"),
        ("/api/monitors/{address}/reports", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ];
    let paths = document["paths"].as_object().unwrap();
    let methods: usize = paths.values().map(|operations| operations.as_object().unwrap().len()).sum();
    assert_eq!(methods, expected.len(), "{:?}", paths.keys());
    for (path, method) in expected {
        let responses = document["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} is not described"));
        for (status, response) in responses {
            if status == "204" {
                assert!(response.get("content").is_none(), "{path} {status}: no content");
                continue;
            }
            let content = response["content"].as_object().unwrap_or_else(|| panic!("{path} {status}: no content"));
            assert!(content.values().all(|media| media["schema"].is_object()), "{path} {status}: no schema");
            if status.starts_with('4') || (status.starts_with('5') && path.starts_with("/api/")) {
                assert_eq!(
                    content["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
                    "{path} {status}"
                );
            }
        }
    }
    for status in ["400", "404"] {
        assert!(document["paths"]["/api/agreements/{id}"]["get"]["responses"][status].is_object());
    }
    let events = &document["paths"]["/api/agreements/{id}/events"]["get"]["responses"];
    assert!(events["200"]["content"]["text/event-stream"].is_object(), "{events}");
    assert!(events["400"].is_object(), "{events}");
    assert!(document["paths"]["/api/agreements"]["get"]["responses"]["400"].is_object());
    for status in ["202", "400", "404", "409", "413", "415"] {
        assert!(document["paths"]["/api/agreements/{id}/stop"]["post"]["responses"][status].is_object(), "{status}");
    }
    for (path, statuses) in [
        ("/api/agreements/{id}/participants", &["200", "400", "401", "403", "404", "409", "413", "415", "500"][..]),
        ("/api/agreements/{id}/join-token", &["200", "400", "401", "403", "404", "409", "500"]),
        ("/api/siwe/verify", &["200", "400", "401", "413", "415", "500"]),
    ] {
        for status in statuses {
            assert!(document["paths"][path]["post"]["responses"][status].is_object(), "{path} {status}");
        }
    }
    assert!(document["paths"]["/api/session"]["get"]["responses"]["401"].is_object());
    let registration = &document["components"]["schemas"]["ParticipantsRequest"];
    assert_eq!(registration["properties"]["participants"]["maxItems"], 100, "{registration}");
    assert_eq!(document["components"]["schemas"]["Quality"]["enum"], json!(["sd", "hd", "fullhd"]));
}

/// Sends `request` and checks the answer is `status` with a JSON `{"error": "<a sentence>"}`.
async fn expect_error(request: reqwest::RequestBuilder, status: u16, mentions: &str) {
    let response = request.send().await.unwrap();
    let url = response.url().to_string();
    assert_eq!(response.status().as_u16(), status, "{url}");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"), "{url}");
    let body: Value = response.json().await.unwrap();
    let error = body["error"].as_str().unwrap_or_else(|| panic!("{url}: {body}"));
    assert!(error.contains(mentions), "{url}: {error:?} does not mention {mentions:?}");
}

#[tokio::test]
async fn every_bad_request_gets_a_json_4xx_that_says_why_and_changes_nothing() {
    let store = fresh_store("errors").await;
    store.apply_events(&signed_and_active(), 5, 1_700_000_010).await.unwrap();
    let api = spawn_api(store.clone(), &nothing_listening().await, Metrics::new()).await;
    let http = reqwest::Client::new();
    // Well formed, but not signed by the customer.
    let valid = json!({ "stoppedAt": 1_700_000_100u64, "deadline": 1_800_000_000u64, "signature": format!("0x{}", "11".repeat(65)) });

    for (id, status, mentions) in [
        ("abc", 400, "agreement id must be an integer"),
        ("-1", 400, "agreement id must be an integer"),
        ("18446744073709551616", 400, "agreement id must be an integer"),
        ("1.5", 400, "agreement id must be an integer"),
        ("%FF", 400, "agreement id is unreadable"),
        ("7", 404, "no agreement 7"),
    ] {
        expect_error(http.get(format!("{api}/api/agreements/{id}")), status, mentions).await;
        expect_error(http.post(format!("{api}/api/agreements/{id}/stop")).json(&valid), status, mentions).await;
    }
    expect_error(http.get(format!("{api}/api/nothing-here")), 404, "no such path: /api/nothing-here").await;
    expect_error(http.delete(format!("{api}/api/offers")), 405, "does not take DELETE").await;
    let wrong_method = http.get(format!("{api}/api/agreements/1/stop")).send().await.unwrap();
    assert_eq!(wrong_method.headers()["allow"], "POST", "405 says which methods the path takes");

    let stop = format!("{api}/api/agreements/1/stop");
    expect_error(http.post(&stop).body(valid.to_string()), 415, "Content-Type: application/json").await;
    expect_error(http.post(&stop).header("content-type", "application/json").body("{"), 400, "the body must be JSON")
        .await;
    let mut unknown_field = valid.clone();
    unknown_field["extra"] = json!(1);
    expect_error(http.post(&stop).json(&unknown_field), 400, "unknown field").await;
    let mut negative = valid.clone();
    negative["deadline"] = json!(-1);
    expect_error(http.post(&stop).json(&negative), 400, "the body must be JSON").await;
    let huge = format!("{{\"signature\": \"0x{}\"}}", "0".repeat(3 << 20));
    expect_error(http.post(&stop).header("content-type", "application/json").body(huge), 413, "too large").await;
    let mut early = valid.clone();
    early["stoppedAt"] = json!(1_699_999_999u64);
    expect_error(http.post(&stop).json(&early), 400, "before the conference started").await;
    let mut late = valid.clone();
    late["deadline"] = json!(1_700_000_000u64);
    expect_error(http.post(&stop).json(&late), 400, "has passed").await;
    let mut not_hex = valid.clone();
    not_hex["signature"] = json!("0xzz");
    expect_error(http.post(&stop).json(&not_hex), 400, "hex").await;
    // A well-formed signature by someone else (or no one): checked against the customer, refused.
    let refused = http.post(&stop).json(&valid).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let agreement = store.agreement(1).await.unwrap().unwrap();
    assert_eq!(agreement.signed_stop, None, "no bad request recorded a stop");
}
