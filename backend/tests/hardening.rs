//! The HTTP surface against the attacks an outside review tried (loopback only): slow and idle
//! clients, too many connections and progress streams, sign-in floods, stop fields beyond what is
//! signed, planted and cross-site session cookies, missing assets, and the security headers. Each
//! runs the service's own HTTP server ([`conference_backend::http::server`]) with small limits.

use std::{
    num::NonZeroU32,
    time::{Duration, Instant},
};

use alloy::{primitives::Address, signers::SignerSync};
use conference_backend::{
    domain::{conference::Deployed, event::ChainEvent, stop::SignedStop},
    http::limits::Limits,
    store::Store,
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

#[macro_use]
mod common;

use common::{CUSTOMER_KEY, key};

/// The API over a fresh SQLite store within `limits`; its base URL.
async fn spawn(name: &str, limits: Limits) -> (String, Store) {
    let dir = std::env::temp_dir().join(format!("conference-hardening-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.join("test.db").display())).await.unwrap();
    let public = conference_backend::http::public::PublicConfig::new(
        common::CHAIN_ID,
        Some("http://127.0.0.1:8545".into()),
        common::ESCROW.into(),
    );
    let metrics = conference_backend::metrics::Metrics::new();
    let api =
        common::serve_api_limited(store.clone(), public, common::join_tokens(), metrics, "http://127.0.0.1:9", limits)
            .await;
    (api, store)
}

fn host_port(api: &str) -> &str {
    api.trim_start_matches("http://")
}

/// Whether the server closed `stream` within `within` (a read returns end of file or an error).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A response (a 408, say) may come first; the close follows.
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn a_client_that_sends_headers_slowly_or_idles_is_disconnected() {
    let limits = Limits { header_timeout: Duration::from_secs(1), ..Limits::default() };
    let (api, _) = spawn("slow", limits).await;

    // Half-sent headers.
    let mut slow = TcpStream::connect(host_port(&api)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert!(closed_within(&mut slow, Duration::from_secs(3)).await, "half-sent headers must not hold a connection");

    // Nothing sent at all.
    let mut silent = TcpStream::connect(host_port(&api)).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await, "a silent connection must be closed");

    // Idle after a request on a kept-alive connection.
    let mut idle = TcpStream::connect(host_port(&api)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buffer = [0u8; 1024];
    let read = idle.read(&mut buffer).await.unwrap();
    assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"), "served first");
    assert!(closed_within(&mut idle, Duration::from_secs(3)).await, "an idle kept-alive connection must be closed");
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_refused() {
    let limits = Limits { request_timeout: Duration::from_secs(1), ..Limits::default() };
    let (api, _) = spawn("slow-body", limits).await;
    let mut stream = TcpStream::connect(host_port(&api)).await.unwrap();
    stream
        .write_all(
            b"POST /api/siwe/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"mess",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(started.elapsed() < Duration::from_secs(4), "answered after {:?}", started.elapsed());
    assert!(answer.starts_with("HTTP/1.1 4"), "a 4xx for a stalled body: {answer}");
}

#[tokio::test]
async fn connections_are_capped_per_client_and_in_all() {
    let limits = Limits {
        header_timeout: Duration::from_secs(10),
        max_connections: 6,
        max_connections_per_client: 3,
        ..Limits::default()
    };
    let (api, _) = spawn("connections", limits).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(host_port(&api)).await.unwrap());
    }
    // Accepted in the order they came: let the server take the three before the fourth.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = TcpStream::connect(host_port(&api)).await.unwrap();
    assert!(closed_within(&mut fourth, Duration::from_secs(2)).await, "a fourth connection of one client is closed");
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = TcpStream::connect(host_port(&api)).await.unwrap();
    again.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    again.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "a connection given back is free again: {answer}");
}

#[tokio::test]
async fn beyond_the_total_cap_a_connection_waits_until_one_closes() {
    // The per-client cap is the total's here: every test connection comes from 127.0.0.1.
    let limits = Limits { max_connections: 2, max_connections_per_client: 2, ..Limits::default() };
    let (api, _) = spawn("total", limits).await;
    let first = TcpStream::connect(host_port(&api)).await.unwrap();
    let _second = TcpStream::connect(host_port(&api)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(host_port(&api)).await.unwrap();
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut buffer = [0u8; 256];
    let waited = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buffer)).await;
    assert!(waited.is_err(), "not served while two connections are open");
    drop(first);
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(3), third.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "served once one closed: {answer}");
}

/// Opens a progress stream of agreement `id`; its status, and the open response.
async fn open_stream(api: &str, id: u64) -> reqwest::Response {
    reqwest::get(format!("{api}/api/agreements/{id}/events")).await.unwrap()
}

#[tokio::test]
async fn progress_streams_are_capped_end_after_their_lifetime_and_give_their_slots_back() {
    let limits = Limits {
        event_streams_max: 3,
        event_streams_per_client: 2,
        event_stream_lifetime: Duration::from_secs(2),
        client_ip_header: Some("x-real-ip".parse().unwrap()),
        ..Limits::default()
    };
    let (api, _) = spawn("streams", limits).await;
    let client = |ip: &'static str| {
        let api = api.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{api}/api/agreements/1/events"))
                .header("x-real-ip", ip)
                .send()
                .await
                .unwrap()
        }
    };
    let a1 = client("10.0.0.1").await;
    let a2 = client("10.0.0.1").await;
    assert_eq!((a1.status().as_u16(), a2.status().as_u16()), (200, 200));
    let a3 = client("10.0.0.1").await;
    assert_eq!(a3.status(), 429, "a third stream of one client");
    assert!(a3.headers()["retry-after"].to_str().unwrap().parse::<u64>().is_ok());
    assert!(a3.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("too many progress streams"));
    let b1 = client("10.0.0.2").await;
    assert_eq!(b1.status(), 200, "another client has its own share");
    assert_eq!(client("10.0.0.3").await.status(), 429, "three in all");

    // Each stream ends after its lifetime, having told the page to reconnect; its slot is free again.
    let started = Instant::now();
    let body = tokio::time::timeout(Duration::from_secs(5), a1.text()).await.expect("the stream ended").unwrap();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(body.starts_with("event: unseen\ndata: {}\nretry: 1000\n"), "{body:?}");
    drop((a2, b1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client("10.0.0.1").await.status(), 200, "slots come back when streams close");
}

#[tokio::test]
async fn one_read_serves_every_stream_of_an_agreement() {
    let (api, store) = spawn("fanout", Limits::default()).await;
    store.apply_events(&[common::terms_published(), common::signed()], 3, common::SIGNED_AT).await.unwrap();
    let mut streams = Vec::new();
    for _ in 0..10 {
        let response = open_stream(&api, 1).await;
        assert_eq!(response.status(), 200);
        streams.push(response);
    }
    for stream in &mut streams {
        let first = String::from_utf8(stream.chunk().await.unwrap().unwrap().to_vec()).unwrap();
        assert!(first.starts_with("event: progress"), "{first}");
    }
    // One change, seen by all ten.
    store
        .conference_running(1, &Deployed { join_url: "http://127.0.0.1:1/".into(), fresh: true, region: 0 })
        .await
        .unwrap();
    for stream in &mut streams {
        let next = tokio::time::timeout(Duration::from_secs(2), stream.chunk()).await.expect("the change arrives");
        let next = String::from_utf8(next.unwrap().unwrap().to_vec()).unwrap();
        assert!(next.contains("\"deployCount\":1"), "{next}");
    }
}

#[tokio::test]
async fn sign_in_requests_are_limited_per_client_and_nonces_in_all() {
    let limits = Limits {
        signin_per_client_per_minute: NonZeroU32::new(3).unwrap(),
        signin_nonces_max: 4,
        client_ip_header: Some("x-real-ip".parse().unwrap()),
        ..Limits::default()
    };
    let (api, store) = spawn("nonces", limits).await;
    let http = reqwest::Client::new();
    let nonce = |ip: &'static str| http.post(format!("{api}/api/siwe/nonce")).header("x-real-ip", ip).send();
    for _ in 0..3 {
        let response = nonce("10.0.0.1").await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store", "a nonce is never cached");
    }
    let limited = nonce("10.0.0.1").await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(limited.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("too many sign-in requests"));

    assert_eq!(nonce("10.0.0.2").await.unwrap().status(), 200, "another client has its own bucket");
    let full = nonce("10.0.0.3").await.unwrap();
    assert_eq!(full.status(), 503, "four nonces outstanding in all");
    assert!(full.headers().contains_key("retry-after"));

    // Expired rows go on the purge timer's next round, and only they.
    let now = conference_backend::store::now_wall() as u64;
    assert!(store.create_siwe_nonce("ExpiredAlready0000000000", now - 1, 100).await.unwrap());
    assert_eq!(store.purge_expired_signins(now).await.unwrap(), 1);
    assert_eq!(store.purge_expired_signins(now).await.unwrap(), 0);
}

/// Agreement 1 active on-chain since `SIGNED_AT + 5`, with its conference running.
async fn active(store: &Store) -> u64 {
    let started_at = common::SIGNED_AT + 5;
    let activated = ChainEvent::Activated {
        agreement: 1,
        started_at,
        ends_at: started_at + 3600,
        region: 0,
        tx_hash: "0xdef".into(),
    };
    store.apply_events(&[common::terms_published(), common::signed(), activated], 5, started_at + 10).await.unwrap();
    started_at
}

/// The customer's signed stop of agreement 1's conference started at `started_at`.
fn stop_body(started_at: u64, stopped_at: u64, deadline: u64) -> Value {
    let stop = SignedStop { started_at, stopped_at, deadline, signature: Default::default() };
    let escrow: Address = common::ESCROW.parse().unwrap();
    // The first session of the agreement, as the chain counts them.
    let digest = stop.digest(1, 1, common::CHAIN_ID, escrow);
    let signature = key(CUSTOMER_KEY).sign_hash_sync(&digest).unwrap();
    json!({ "stoppedAt": stopped_at, "deadline": deadline, "signature": alloy::hex::encode_prefixed(signature.as_bytes()) })
}

#[tokio::test]
async fn stop_fields_beyond_the_signed_uint40_are_refused_and_a_repeat_gets_the_stored_stop() {
    let (api, store) = spawn("stop", Limits::default()).await;
    let started_at = active(&store).await;
    let http = reqwest::Client::new();
    let url = format!("{api}/api/agreements/1/stop");
    for (stopped_at, deadline, field) in [
        (started_at + 60, u64::MAX, "deadline"),
        (1 << 40, started_at + 600, "stoppedAt"),
        (started_at, 1 << 40, "deadline"),
    ] {
        let response = http.post(&url).json(&stop_body(started_at, stopped_at, deadline)).send().await.unwrap();
        assert_eq!(response.status(), 400);
        let error = response.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(field) && error.contains("uint40"), "{error}");
    }
    assert!(store.agreement(1).await.unwrap().unwrap().signed_stop.is_none(), "nothing was recorded");

    let first = http.post(&url).json(&stop_body(started_at, started_at + 60, started_at + 600)).send().await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    assert_eq!((first["accepted"].as_bool(), first["stop"]["stoppedAt"].as_u64()), (Some(true), Some(started_at + 60)));
    let again = http.post(&url).json(&stop_body(started_at, started_at + 90, started_at + 900)).send().await.unwrap();
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["accepted"], false);
    assert_eq!(again["stop"], first["stop"], "a repeated stop answers with the one recorded");
}

#[tokio::test]
async fn two_session_cookies_and_cross_site_requests_are_refused() {
    let (api, store) = spawn("cookies", Limits::default()).await;
    let http = reqwest::Client::new();
    let both =
        http.get(format!("{api}/api/session")).header("cookie", "session=aaaa; session=bbbb").send().await.unwrap();
    assert_eq!(both.status(), 401);
    assert!(both.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("two session cookies"));

    store.apply_events(&[common::terms_published(), common::signed()], 3, common::SIGNED_AT).await.unwrap();
    let cookie = conference_backend::http::session::sign_in(&api, &key(CUSTOMER_KEY)).await.unwrap();
    let participants = format!("{api}/api/agreements/1/participants");
    let body = json!({ "participants": [], "quality": "hd" });
    for (header, value) in
        [("origin", "http://evil.example"), ("sec-fetch-site", "cross-site"), ("sec-fetch-site", "same-site")]
    {
        let response =
            http.post(&participants).header("cookie", &cookie).header(header, value).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 403, "{header}: {value}");
        assert!(store.conference_settings(1).await.unwrap().is_none(), "nothing registered");
    }
    let same = http
        .post(&participants)
        .header("cookie", &cookie)
        .header("origin", &api)
        .header("sec-fetch-site", "same-origin")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200, "the page itself may");
    let out =
        http.delete(format!("{api}/api/session")).header("cookie", &cookie).header("origin", "http://evil.example");
    assert_eq!(out.send().await.unwrap().status(), 403, "nor sign anyone out from another site");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_a_missing_asset_is_a_404() {
    let (api, _) = spawn("headers", Limits::default()).await;
    for path in ["/", "/api/config", "/api/offers", "/no/such/page", "/assets/missing-0123abcd.js"] {
        let response = reqwest::get(format!("{api}{path}")).await.unwrap();
        assert_eq!(response.headers()["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(response.headers()["referrer-policy"], "no-referrer", "{path}");
    }
    let missing = reqwest::get(format!("{api}/assets/missing-0123abcd.js")).await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    assert_eq!(
        reqwest::get(format!("{api}/history")).await.unwrap().status(),
        200,
        "the app's routes still get the page"
    );
}

#[tokio::test]
async fn a_mistyped_database_url_is_named_without_its_password() {
    let Err(err) = Store::open("postgress://app:hunter2@db.internal/conference?sslpassword=s3cret").await else {
        panic!("a bad scheme must fail")
    };
    let text = err.to_string();
    assert!(text.contains("db.internal") && !text.contains("hunter2") && !text.contains("s3cret"), "{text}");
}
