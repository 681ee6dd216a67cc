//! Who may join a conference: the customer's participant list and the join tokens the API issues from
//! it, both from Sign-In with Ethereum sessions, each test once on SQLite (a fresh file) and once on
//! PostgreSQL (a private server of its own), through a real HTTP server on a free loopback port, signed
//! in with anvil's public dev keys.

use alloy::primitives::Address;
use common::{CUSTOMER_KEY, PARTICIPANT_KEY, STRANGER_KEY, key};
use conference_backend::{
    domain::{
        conference::{ConferenceSettings, Deployed, Quality},
        event::ChainEvent,
    },
    http::session::sign_in,
    store::{Store, events::RecordedEvent},
    tokens::{JoinClaims, JoinContext, JoinUser},
};
use serde_json::{Value, json};

#[macro_use]
mod common;

on_both_databases!(
    a_registration_is_stored_and_replaced_whole_by_a_newer_one,
    registrations_not_by_the_customer_or_malformed_change_nothing,
    the_customer_and_registered_participants_get_join_tokens,
    join_tokens_are_refused_to_others_and_without_a_conference,
    the_private_routes_refuse_requests_without_a_session,
    local_rooms_get_their_own_tokens_and_the_room_url,
    a_rollback_deletes_the_registration_of_a_removed_agreement,
);

const JOIN_URL: &str = "https://conference-1.meet-eu.example.org/conference-1";

fn now() -> u64 {
    conference_backend::store::now_wall() as u64
}

/// The body of a registration of `participants` for agreement 1.
fn registration(participants: &[(Address, u8)], quality: Quality) -> Value {
    json!({
        "participants": participants.iter().map(|(address, region)| json!({ "address": address.to_string(), "region": region })).collect::<Vec<_>>(),
        "quality": quality,
    })
}

/// Agreement 1 signed by [`common::CUSTOMER`] (a DynamicPrice one: its conference is requested).
async fn signed(store: &Store) {
    store.apply_events(&[common::terms_published(), common::signed()], 3, common::SIGNED_AT).await.unwrap();
}

/// Agreement 1 activated on-chain with its conference running at [`JOIN_URL`].
async fn running(store: &Store) {
    let activated = ChainEvent::Activated {
        agreement: 1,
        started_at: common::SIGNED_AT + 5,
        ends_at: common::SIGNED_AT + 3605,
        region: 0,
        tx_hash: "0xdef".into(),
    };
    store
        .apply_events(&[common::terms_published(), common::signed(), activated], 5, common::SIGNED_AT + 5)
        .await
        .unwrap();
    store.conference_running(1, &Deployed { join_url: JOIN_URL.into(), fresh: true, region: 0 }).await.unwrap();
}

/// Posts `body` (none if null) to `url` with the session `cookie` (none if empty).
async fn post(url: String, cookie: &str, body: &Value) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(url);
    if !body.is_null() {
        request = request.json(body);
    }
    if !cookie.is_empty() {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Posts `body` to `url` with `cookie`, expecting `status` and an `{"error"}` that mentions `mentions`.
async fn refused(url: &str, cookie: &str, body: &Value, status: u16, mentions: &str) {
    let (got, answer) = post(url.to_owned(), cookie, body).await;
    assert_eq!(got, status, "{answer}");
    let error = answer["error"].as_str().unwrap_or_else(|| panic!("no error sentence: {answer}"));
    assert!(error.contains(mentions), "{error:?} does not mention {mentions:?}");
}

fn participant() -> Address {
    key(PARTICIPANT_KEY).address()
}

fn stranger() -> Address {
    key(STRANGER_KEY).address()
}

async fn a_registration_is_stored_and_replaced_whole_by_a_newer_one(store: Store) {
    signed(&store).await;
    let api = common::spawn_api(store.clone()).await;
    let url = format!("{api}/api/agreements/1/participants");
    let customer = sign_in(&api, &key(CUSTOMER_KEY)).await.unwrap();
    assert_eq!(store.conference_settings(1).await.unwrap(), None, "nothing registered yet");

    let before = now();
    let (status, answer) =
        post(url.clone(), &customer, &registration(&[(participant(), 1), (stranger(), 2)], Quality::Sd)).await;
    assert_eq!(status, 200, "{answer}");
    let first = answer["issuedAt"].as_u64().unwrap();
    assert!((before..=now()).contains(&first), "dated by the service's clock: {answer}");
    assert_eq!(answer, json!({ "count": 2, "quality": "sd", "issuedAt": first }));
    assert_eq!(
        store.conference_settings(1).await.unwrap(),
        Some(ConferenceSettings {
            quality: Quality::Sd,
            participants: vec![(participant(), 1), (stranger(), 2)],
            issued_at: first
        })
    );

    // A later list (even within the same second) replaces the whole of the old one: the stranger is
    // no longer registered.
    let (status, answer) = post(url.clone(), &customer, &registration(&[(participant(), 0)], Quality::FullHd)).await;
    assert_eq!(status, 200, "{answer}");
    let second = answer["issuedAt"].as_u64().unwrap();
    assert!(second >= first);
    assert_eq!(answer, json!({ "count": 1, "quality": "fullhd", "issuedAt": second }));
    let settings = store.conference_settings(1).await.unwrap().unwrap();
    assert_eq!(
        settings,
        ConferenceSettings { quality: Quality::FullHd, participants: vec![(participant(), 0)], issued_at: second }
    );
    assert!(store.is_participant(1, participant()).await.unwrap());
    assert!(!store.is_participant(1, stranger()).await.unwrap());

    // The agreement shows how many and in what quality, never who.
    let response = reqwest::get(format!("{api}/api/agreements/1")).await.unwrap().text().await.unwrap();
    let view: Value = serde_json::from_str(&response).unwrap();
    assert_eq!(view["participants"], json!({ "count": 1, "quality": "fullhd", "issuedAt": second }));
    let hex = alloy::hex::encode(participant());
    assert!(!response.to_lowercase().contains(&hex), "the agreement's JSON names no participant: {response}");

    // An empty list leaves the conference to the customer.
    let (status, answer) = post(url, &customer, &registration(&[], Quality::Hd)).await;
    assert_eq!((status, answer["count"].as_u64()), (200, Some(0)), "{answer}");
    assert_eq!(store.conference_settings(1).await.unwrap().unwrap().participants, vec![]);
}

async fn registrations_not_by_the_customer_or_malformed_change_nothing(store: Store) {
    signed(&store).await;
    let api = common::spawn_api(store.clone()).await;
    let url = format!("{api}/api/agreements/1/participants");
    let customer = sign_in(&api, &key(CUSTOMER_KEY)).await.unwrap();
    let list = [(participant(), 1)];

    // Signed in, but not as the customer: a participant or a stranger.
    for who in [PARTICIPANT_KEY, STRANGER_KEY] {
        let cookie = sign_in(&api, &key(who)).await.unwrap();
        refused(&url, &cookie, &registration(&list, Quality::Hd), 403, "not the agreement's customer").await;
    }
    assert_eq!(store.conference_settings(1).await.unwrap(), None, "nothing registered by others");

    refused(
        &format!("{api}/api/agreements/7/participants"),
        &customer,
        &registration(&list, Quality::Hd),
        404,
        "no agreement 7",
    )
    .await;
    refused(
        &format!("{api}/api/agreements/x/participants"),
        &customer,
        &registration(&list, Quality::Hd),
        400,
        "agreement id",
    )
    .await;

    let too_many: Vec<(Address, u8)> = (1..=101u8).map(|i| (Address::repeat_byte(i), 0)).collect();
    refused(&url, &customer, &registration(&too_many, Quality::Hd), 400, "at most 100 participants").await;
    let hundred: Vec<(Address, u8)> = (1..=100u8).map(|i| (Address::repeat_byte(i), i % 3)).collect();
    let (status, answer) = post(url.clone(), &customer, &registration(&hundred, Quality::Hd)).await;
    assert_eq!((status, answer["count"].as_u64()), (200, Some(100)), "a hundred are allowed: {answer}");
    let stored = store.conference_settings(1).await.unwrap();

    refused(
        &url,
        &customer,
        &registration(&[(participant(), 0), (participant(), 1)], Quality::Hd),
        400,
        "listed twice",
    )
    .await;
    let mut mixed_case = registration(&[(participant(), 0), (participant(), 0)], Quality::Hd);
    mixed_case["participants"][1]["address"] = json!(alloy::hex::encode_prefixed(participant()));
    refused(&url, &customer, &mixed_case, 400, "listed twice").await;
    refused(&url, &customer, &registration(&[(participant(), 32)], Quality::Hd), 400, "from 0 to 31").await;
    let mut no_prefix = registration(&list, Quality::Hd);
    no_prefix["participants"][0]["address"] = json!(alloy::hex::encode(participant()));
    refused(&url, &customer, &no_prefix, 400, "must be an address").await;
    let mut bad_quality = registration(&list, Quality::Hd);
    bad_quality["quality"] = json!("4k");
    refused(&url, &customer, &bad_quality, 400, "the body must be JSON").await;
    let mut extra = registration(&list, Quality::Hd);
    extra["participants"][0]["name"] = json!("Alice");
    refused(&url, &customer, &extra, 400, "unknown field").await;
    // The old signed form is no longer taken.
    let mut signed_form = registration(&list, Quality::Hd);
    signed_form["issuedAt"] = json!(now());
    signed_form["signature"] = json!(format!("0x{}", "11".repeat(65)));
    refused(&url, &customer, &signed_form, 400, "unknown field").await;

    assert_eq!(store.conference_settings(1).await.unwrap(), stored, "no refused registration changed anything");
}

/// The token's claims, checked as the conference's prosody does: its own host as the audience.
fn decode(token: &str, audience: &str) -> JoinClaims {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&["conference"]);
    validation.validate_nbf = true;
    let key = jsonwebtoken::DecodingKey::from_secret(common::JITSI_SECRET);
    jsonwebtoken::decode::<JoinClaims>(token, &key, &validation).unwrap().claims
}

async fn the_customer_and_registered_participants_get_join_tokens(store: Store) {
    running(&store).await;
    let api = common::spawn_api(store.clone()).await;
    let customer = sign_in(&api, &key(CUSTOMER_KEY)).await.unwrap();
    let (status, _) = post(
        format!("{api}/api/agreements/1/participants"),
        &customer,
        &registration(&[(participant(), 1)], Quality::Hd),
    )
    .await;
    assert_eq!(status, 200);
    let url = format!("{api}/api/agreements/1/join-token");
    let participant_cookie = sign_in(&api, &key(PARTICIPANT_KEY)).await.unwrap();

    // No body, or an empty JSON object: both are the same request.
    for (cookie, body, moderator, id, name) in [
        (&participant_cookie, Value::Null, false, "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc", "0x3c44…93bc"),
        (&customer, json!({}), true, "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "0x7099…79c8"),
    ] {
        let before = now();
        let (status, answer) = post(url.clone(), cookie, &body).await;
        let after = now();
        assert_eq!(status, 200, "{answer}");
        let token = answer["token"].as_str().unwrap();
        assert_eq!(answer["joinUrl"], format!("{JOIN_URL}?jwt={token}"));
        assert_eq!(answer["room"], "jitsi");
        let claims = decode(token, "conference-1.meet-eu.example.org");
        assert!((before..=after).contains(&claims.iat), "issued now: {claims:?}");
        assert_eq!(
            claims,
            JoinClaims {
                aud: "conference-1.meet-eu.example.org".into(),
                iss: "conference".into(),
                sub: "*".into(),
                room: "conference-1".into(),
                iat: claims.iat,
                nbf: claims.iat,
                exp: claims.iat + 3600,
                context: JoinContext { user: JoinUser { id: id.into(), name: name.into(), moderator } },
            }
        );
        assert_eq!(answer["expiresAt"], claims.exp);
        assert_eq!(answer.as_object().unwrap().len(), 4, "{answer}");
    }

    // A join URL with a query of its own gets the token appended with `&`.
    store
        .conference_running(
            1,
            &Deployed { join_url: "https://meet.example/conference-1?lang=en".into(), fresh: false, region: 0 },
        )
        .await
        .unwrap();
    let (status, answer) = post(url, &participant_cookie, &Value::Null).await;
    assert_eq!(status, 200, "{answer}");
    let token = answer["token"].as_str().unwrap();
    assert_eq!(answer["joinUrl"], format!("https://meet.example/conference-1?lang=en&jwt={token}"));
    assert_eq!(decode(token, "meet.example").aud, "meet.example", "bound to the conference's own host");
}

async fn join_tokens_are_refused_to_others_and_without_a_conference(store: Store) {
    signed(&store).await;
    let settings =
        ConferenceSettings { quality: Quality::Hd, participants: vec![(participant(), 0)], issued_at: now() };
    store.register_participants(1, &settings, key(CUSTOMER_KEY).address()).await.unwrap();
    let api = common::spawn_api(store.clone()).await;
    let url = format!("{api}/api/agreements/1/join-token");
    let participant_cookie = sign_in(&api, &key(PARTICIPANT_KEY)).await.unwrap();
    let (customer, stranger_cookie) =
        (sign_in(&api, &key(CUSTOMER_KEY)).await.unwrap(), sign_in(&api, &key(STRANGER_KEY)).await.unwrap());

    // No conference yet (requested, not deployed): even the registered participant waits.
    refused(&url, &participant_cookie, &Value::Null, 409, "no conference running now").await;
    refused(&url, &customer, &Value::Null, 409, "no conference running now").await;

    running(&store).await;
    refused(&url, &stranger_cookie, &Value::Null, 403, "is not registered for agreement 1").await;
    refused(&format!("{api}/api/agreements/7/join-token"), &participant_cookie, &Value::Null, 404, "no agreement 7")
        .await;
    refused(&format!("{api}/api/agreements/x/join-token"), &participant_cookie, &Value::Null, 400, "agreement id")
        .await;

    // Once the conference is ended on-chain, or removed, no token is issued any more.
    let (status, _) = post(url.clone(), &participant_cookie, &Value::Null).await;
    assert_eq!(status, 200, "running: the participant gets in");
    let ended = ChainEvent::Ended { agreement: 1, ended_at: common::SIGNED_AT + 100, tx_hash: "0xe4d".into() };
    store.apply_events(&[ended], 6, common::SIGNED_AT + 100).await.unwrap();
    refused(&url, &participant_cookie, &Value::Null, 409, "no conference running now").await;
}

async fn the_private_routes_refuse_requests_without_a_session(store: Store) {
    running(&store).await;
    let api = common::spawn_api(store.clone()).await;
    let join = format!("{api}/api/agreements/1/join-token");
    let register = format!("{api}/api/agreements/1/participants");
    let body = registration(&[(participant(), 0)], Quality::Hd);
    for (url, body) in [(&join, &Value::Null), (&register, &body)] {
        refused(url, "", body, 401, "not signed in").await;
        refused(url, "session=", body, 401, "not signed in").await;
        refused(url, "other=1", body, 401, "not signed in").await;
        refused(url, &format!("session={}", "ab".repeat(32)), body, 401, "unknown or has expired").await;
    }
    assert_eq!(store.conference_settings(1).await.unwrap(), None, "nothing registered without a session");

    // Signed out: the cookie no longer opens anything.
    let customer = sign_in(&api, &key(CUSTOMER_KEY)).await.unwrap();
    assert_eq!(post(join.clone(), &customer, &Value::Null).await.0, 200);
    let response = reqwest::Client::new().delete(format!("{api}/api/session")).header("cookie", &customer).send().await;
    assert_eq!(response.unwrap().status(), 204);
    refused(&join, &customer, &Value::Null, 401, "unknown or has expired").await;
    refused(&register, &customer, &body, 401, "unknown or has expired").await;
}

async fn local_rooms_get_their_own_tokens_and_the_room_url(store: Store) {
    use conference_backend::orchestrator::janus::{TOKEN_TTL_SECS, signed_token, token_secret};
    running(&store).await;
    let secret = b"the tests' rooms secret";
    let api =
        common::spawn_api_with(store.clone(), conference_backend::tokens::JoinTokens::local(secret).unwrap()).await;
    let customer = sign_in(&api, &key(CUSTOMER_KEY)).await.unwrap();
    let before = now();
    let (status, answer) = post(format!("{api}/api/agreements/1/join-token"), &customer, &Value::Null).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["room"], "local");
    assert_eq!(answer["joinUrl"], JOIN_URL, "the server's own URL: the token goes with each request, not in the URL");
    // A Janus signed token for conference 1's own secret, naming its room and the customer, short-lived.
    let expires_at = answer["expiresAt"].as_u64().unwrap();
    assert!((before + TOKEN_TTL_SECS..=now() + TOKEN_TTL_SECS).contains(&expires_at), "{expires_at}");
    let expected = signed_token(&token_secret(secret, 1), expires_at, &common::CUSTOMER.to_lowercase());
    assert_eq!(answer["token"], expected);
    assert!(expected.starts_with(&format!("{expires_at},janus,janus.plugin.videoroom,0x")), "{expected}");
}

fn at(block: u64, event: ChainEvent) -> RecordedEvent {
    RecordedEvent { block, log_index: 0, block_hash: format!("0x{block:064x}"), event }
}

async fn a_rollback_deletes_the_registration_of_a_removed_agreement(store: Store) {
    let blocks = |numbers: &[u64]| numbers.iter().map(|n| (*n, format!("0x{n:064x}"))).collect::<Vec<_>>();
    let events = [at(5, common::terms_published()), at(10, common::signed())];
    store.apply_block_events(&events, &blocks(&[5, 10]), 11, common::SIGNED_AT, 0).await.unwrap();
    let settings =
        ConferenceSettings { quality: Quality::Sd, participants: vec![(participant(), 2)], issued_at: now() };
    let customer = key(CUSTOMER_KEY).address();
    assert!(store.register_participants(1, &settings, customer).await.unwrap());
    let older = ConferenceSettings { issued_at: settings.issued_at - 1, ..settings.clone() };
    assert!(!store.register_participants(1, &older, customer).await.unwrap(), "older");
    assert_eq!(store.conference_settings(1).await.unwrap(), Some(settings.clone()), "the older one changed nothing");

    let report = store.roll_back_to(10).await.unwrap();
    assert_eq!(report.removed_agreements, vec![1]);
    assert_eq!(store.conference_settings(1).await.unwrap(), None, "the registration went with the agreement");
    assert!(!store.is_participant(1, participant()).await.unwrap());

    // Agreement 1 of the new branch (another signature) starts with no one registered.
    store.apply_block_events(&[at(11, common::signed())], &blocks(&[11]), 12, common::SIGNED_AT, 0).await.unwrap();
    assert!(store.agreement(1).await.unwrap().is_some());
    assert_eq!(store.conference_settings(1).await.unwrap(), None);
}
