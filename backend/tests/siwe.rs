//! Sign-In with Ethereum (EIP-4361): every check of `POST /api/siwe/verify`, the session cookie, and
//! signing out, each test once on SQLite (a fresh file) and once on PostgreSQL (a private server of its
//! own), through a real HTTP server on a free loopback port, with anvil's public dev keys signing
//! (EIP-191, as a wallet's `personal_sign`).

use alloy::{
    primitives::keccak256,
    signers::{SignerSync, local::PrivateKeySigner},
};
use common::{CUSTOMER_KEY, STRANGER_KEY, key};
use conference_backend::{http::session::message_text, store::Store};
use serde_json::{Value, json};

#[macro_use]
mod common;

on_both_databases!(
    a_good_sign_in_gives_a_session_cookie_that_only_its_hash_is_stored_of,
    every_failed_check_is_refused_with_a_sentence_and_leaves_the_nonce,
    nonces_are_single_use_issued_here_and_expire,
    a_session_ends_at_the_messages_expiration_and_on_sign_out,
);

fn now() -> u64 {
    conference_backend::store::now_wall() as u64
}

/// `POST /api/siwe/nonce`.
async fn nonce(api: &str) -> Value {
    let response = reqwest::Client::new().post(format!("{api}/api/siwe/nonce")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// A message from `signer` naming what `nonce` said, valid from now for `ttl` seconds.
fn message(signer: &PrivateKeySigner, nonce: &Value, ttl: u64) -> String {
    let now = now();
    message_text(
        nonce["domain"].as_str().unwrap(),
        signer.address(),
        nonce["uri"].as_str().unwrap(),
        nonce["chainId"].as_u64().unwrap(),
        nonce["nonce"].as_str().unwrap(),
        now,
        now + ttl,
    )
}

fn sign(signer: &PrivateKeySigner, text: &str) -> String {
    alloy::hex::encode_prefixed(signer.sign_message_sync(text.as_bytes()).unwrap().as_bytes())
}

/// `POST /api/siwe/verify` with `text` and `signature`: status, answer, and the Set-Cookie header.
async fn verify(api: &str, text: &str, signature: &str) -> (u16, Value, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("{api}/api/siwe/verify"))
        .json(&json!({ "message": text, "signature": signature }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let cookie = response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), cookie)
}

/// Verifying `text` signed by `signer` is refused with `status` and a sentence mentioning `mentions`.
async fn refused(api: &str, text: &str, signature: &str, status: u16, mentions: &str) {
    let (got, answer, cookie) = verify(api, text, signature).await;
    assert_eq!(got, status, "{answer}\n{text}");
    let error = answer["error"].as_str().unwrap_or_else(|| panic!("no error sentence: {answer}"));
    assert!(error.contains(mentions), "{error:?} does not mention {mentions:?}");
    assert_eq!(cookie, None, "no cookie for a refused sign-in");
}

/// `GET /api/session` with `cookie`.
async fn session(api: &str, cookie: &str) -> (u16, Value) {
    let response =
        reqwest::Client::new().get(format!("{api}/api/session")).header("cookie", cookie).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn a_good_sign_in_gives_a_session_cookie_that_only_its_hash_is_stored_of(store: Store) {
    let api = common::spawn_api(store.clone()).await;
    let issued = nonce(&api).await;
    let domain = api.strip_prefix("http://").unwrap();
    assert_eq!(issued["domain"], domain);
    assert_eq!(issued["uri"], api);
    assert_eq!(issued["chainId"], common::CHAIN_ID);
    let nonce_text = issued["nonce"].as_str().unwrap();
    assert!(nonce_text.len() >= 16 && nonce_text.bytes().all(|b| b.is_ascii_alphanumeric()), "{nonce_text}");
    assert_ne!(nonce(&api).await["nonce"], issued["nonce"], "a fresh nonce each time");

    let customer = key(CUSTOMER_KEY);
    let text = message(&customer, &issued, 3600);
    let (status, answer, cookie) = verify(&api, &text, &sign(&customer, &text)).await;
    assert_eq!(status, 200, "{answer}");
    let expires_at = answer["expiresAt"].as_u64().unwrap();
    assert!(expires_at.abs_diff(now() + 3600) <= 2, "the message's expiration: {answer}");
    assert_eq!(answer, json!({ "address": common::CUSTOMER, "expiresAt": expires_at }), "checksummed");

    let cookie = cookie.expect("a Set-Cookie header");
    let (pair, attributes) = cookie.split_once("; ").unwrap();
    let token = pair.strip_prefix("session=").unwrap();
    assert!(token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{cookie}");
    let max_age: u64 =
        attributes.strip_prefix("HttpOnly; SameSite=Strict; Path=/api; Max-Age=").unwrap().parse().unwrap();
    assert!((3598..=3600).contains(&max_age), "{cookie}");

    let (status, answer) = session(&api, pair).await;
    assert_eq!((status, &answer), (200, &json!({ "address": common::CUSTOMER, "expiresAt": expires_at })));
    // The store knows the session by its token's hash, never by the token.
    let hash = keccak256(token.as_bytes()).to_string();
    assert_eq!(store.siwe_session(&hash, now()).await.unwrap(), Some((customer.address(), expires_at)));
    assert_eq!(store.siwe_session(token, now()).await.unwrap(), None);
    // Among other cookies, in any order.
    assert_eq!(session(&api, &format!("theme=dark; {pair}; lang=en")).await.0, 200);
}

async fn every_failed_check_is_refused_with_a_sentence_and_leaves_the_nonce(store: Store) {
    let api = common::spawn_api(store.clone()).await;
    let (customer, stranger) = (key(CUSTOMER_KEY), key(STRANGER_KEY));
    let issued = nonce(&api).await;
    let good = message(&customer, &issued, 3600);
    let domain = issued["domain"].as_str().unwrap();
    let replace = |from: &str, to: &str| {
        assert!(good.contains(from), "{from:?} in {good}");
        good.replacen(from, to, 1)
    };
    let now = now();
    let (issued_at, expires_at) =
        (format!("Issued At: {}", rfc3339(now)), format!("Expiration Time: {}", rfc3339(now + 3600)));

    for (text, mentions) in [
        (replace(domain, "evil.example:8080"), "not for this service"),
        (replace(&format!("URI: {api}"), "URI: http://evil.example/"), "not on this service's origin"),
        (replace("Chain ID: 31337", "Chain ID: 1"), "for chain 1"),
        (replace(&issued_at, &format!("Issued At: {}", rfc3339(now + 600))), "in the future"),
        (replace(&format!("\n{expires_at}"), ""), "no Expiration Time"),
        (replace(&expires_at, &format!("Expiration Time: {}", rfc3339(now - 1))), "expired at"),
        (replace(&expires_at, &format!("Expiration Time: {}", rfc3339(now + 24 * 3600 + 120))), "more than 24 h ahead"),
        (format!("{good}\nNot Before: {}", rfc3339(now + 600)), "not valid before"),
    ] {
        refused(&api, &text, &sign(&customer, &text), 401, mentions).await;
    }
    // Signed by another key; and a message changed after it was signed.
    refused(&api, &good, &sign(&stranger, &good), 401, "not by its address").await;
    let tampered = replace("Sign in to the conference service.", "Sign in to the conference service!");
    refused(&api, &tampered, &sign(&customer, &good), 401, "not by its address").await;
    // Unreadable: not an EIP-4361 message, a signature that is not 65 bytes of hex, a body of another shape.
    refused(&api, "hello", &sign(&customer, "hello"), 400, "not an EIP-4361").await;
    refused(&api, &good, "0x1234", 400, "65 bytes").await;
    refused(&api, &good, "zz", 400, "65 bytes").await;
    let response = reqwest::Client::new()
        .post(format!("{api}/api/siwe/verify"))
        .json(&json!({ "message": good }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // None of those used the nonce up: the good message still signs in, also with a URI under the origin.
    let page = replace(&format!("URI: {api}"), &format!("URI: {api}/agreement/1"));
    let (status, answer, _) = verify(&api, &page, &sign(&customer, &page)).await;
    assert_eq!(status, 200, "{answer}");
    // Unused-ness checked after everything else: the good one is now a reused nonce.
    refused(&api, &good, &sign(&customer, &good), 401, "used already").await;
}

fn rfc3339(seconds: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds as i64)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn nonces_are_single_use_issued_here_and_expire(store: Store) {
    let api = common::spawn_api(store.clone()).await;
    let customer = key(CUSTOMER_KEY);
    let issued = nonce(&api).await;
    let text = message(&customer, &issued, 600);
    let signature = sign(&customer, &text);
    assert_eq!(verify(&api, &text, &signature).await.0, 200);
    refused(&api, &text, &signature, 401, "used already").await;

    // A nonce this service never issued.
    let mut unknown = issued.clone();
    unknown["nonce"] = json!("NeverIssued0123456789");
    let text = message(&customer, &unknown, 600);
    refused(&api, &text, &sign(&customer, &text), 401, "not issued by this service").await;

    // A nonce past its 10 minutes.
    assert!(store.create_siwe_nonce("ExpiredNonce0123456789", now() - 1, 10).await.unwrap());
    let mut expired = issued.clone();
    expired["nonce"] = json!("ExpiredNonce0123456789");
    let text = message(&customer, &expired, 600);
    refused(&api, &text, &sign(&customer, &text), 401, "has expired").await;
}

async fn a_session_ends_at_the_messages_expiration_and_on_sign_out(store: Store) {
    let api = common::spawn_api(store.clone()).await;
    let customer = key(CUSTOMER_KEY);
    let text = message(&customer, &nonce(&api).await, 2);
    let (status, answer, cookie) = verify(&api, &text, &sign(&customer, &text)).await;
    assert_eq!(status, 200, "{answer}");
    let short = cookie.unwrap().split(';').next().unwrap().to_owned();
    assert_eq!(session(&api, &short).await.0, 200);

    let long = conference_backend::http::session::sign_in(&api, &customer).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
    let (status, answer) = session(&api, &short).await;
    assert_eq!(status, 401, "expired: {answer}");
    assert!(answer["error"].as_str().unwrap().contains("unknown or has expired"), "{answer}");

    let (status, answer) = session(&api, "").await;
    assert_eq!(status, 401);
    assert!(answer["error"].as_str().unwrap().contains("not signed in"), "{answer}");

    // Signing out ends the session and clears the cookie; signing out again is no error.
    assert_eq!(session(&api, &long).await.0, 200);
    for _ in 0..2 {
        let response =
            reqwest::Client::new().delete(format!("{api}/api/session")).header("cookie", &long).send().await.unwrap();
        assert_eq!(response.status(), 204);
        assert_eq!(response.headers()["set-cookie"], "session=; HttpOnly; SameSite=Strict; Path=/api; Max-Age=0",);
        assert_eq!(session(&api, &long).await.0, 401);
    }
}
