//! Who may join a conference: the customer's signed participant list and the join tokens the API
//! issues from it, each test once on SQLite (a fresh file) and once on PostgreSQL (a private server of
//! its own), through a real HTTP server on a free loopback port, with EIP-712 signatures made by
//! anvil's public dev keys.

use alloy::{
    primitives::{Address, U256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolStruct,
};
use conference_backend::{
    chain::{Join, Participants, escrow_domain},
    jitsi::{ConferenceSettings, JoinClaims, JoinContext, JoinUser, Quality},
    orchestrator::Deployed,
    store::{RecordedEvent, Store},
    watcher::ChainEvent,
};
use serde_json::{Value, json};

#[macro_use]
mod common;

on_both_databases!(
    a_registration_is_stored_and_replaced_whole_by_a_newer_one,
    an_older_or_equal_registration_is_refused_and_changes_nothing,
    registrations_not_by_the_customer_or_malformed_change_nothing,
    the_customer_and_registered_participants_get_join_tokens,
    join_tokens_are_refused_to_others_and_without_a_conference,
    a_rollback_deletes_the_registration_of_a_removed_agreement,
);

/// anvil's public dev accounts 1 (the customer, [`common::CUSTOMER`]), 2 and 3: never real keys.
const CUSTOMER_KEY: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const PARTICIPANT_KEY: &str = "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
const STRANGER_KEY: &str = "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
const JOIN_URL: &str = "http://127.0.0.1:1/conference-1";

fn key(hex: &str) -> PrivateKeySigner {
    hex.parse().unwrap()
}

fn now() -> u64 {
    conference_backend::store::now_wall() as u64
}

/// `message` signed by `signer` in the escrow's EIP-712 domain, as a wallet's `eth_signTypedData_v4` would.
fn sign<T: SolStruct>(signer: &PrivateKeySigner, message: &T) -> String {
    let domain = escrow_domain(common::CHAIN_ID, common::ESCROW.parse().unwrap());
    let signature = signer.sign_hash_sync(&message.eip712_signing_hash(&domain)).unwrap();
    alloy::hex::encode_prefixed(signature.as_bytes())
}

/// The body of a registration of `participants` for agreement 1, signed by `signer`.
fn registration(signer: &PrivateKeySigner, participants: &[(Address, u8)], quality: Quality, issued_at: u64) -> Value {
    let message = Participants {
        agreementId: U256::from(1),
        participants: participants.iter().map(|(address, _)| *address).collect(),
        regions: participants.iter().map(|(_, region)| *region).collect(),
        quality: quality.index(),
        issuedAt: issued_at,
    };
    json!({
        "participants": participants.iter().map(|(address, region)| json!({ "address": address.to_string(), "region": region })).collect::<Vec<_>>(),
        "quality": quality,
        "issuedAt": issued_at,
        "signature": sign(signer, &message),
    })
}

/// The body of a join request for agreement `agreement` by `address`, signed by `signer`.
fn join(signer: &PrivateKeySigner, agreement: u64, address: Address, expires: u64) -> Value {
    let message = Join { agreementId: U256::from(agreement), participant: address, expires };
    json!({ "address": address.to_string(), "expires": expires, "signature": sign(signer, &message) })
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

async fn post(url: String, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new().post(url).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Posts `body` to `url`, expecting `status` and an `{"error"}` that mentions `mentions`.
async fn refused(url: &str, body: &Value, status: u16, mentions: &str) {
    let (got, answer) = post(url.to_owned(), body).await;
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
    let customer = key(CUSTOMER_KEY);
    assert_eq!(store.conference_settings(1).await.unwrap(), None, "nothing registered yet");

    let first = now() - 10;
    let (status, answer) =
        post(url.clone(), &registration(&customer, &[(participant(), 1), (stranger(), 2)], Quality::Sd, first)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({ "count": 2, "quality": "sd", "issuedAt": first }));
    assert_eq!(
        store.conference_settings(1).await.unwrap(),
        Some(ConferenceSettings {
            quality: Quality::Sd,
            participants: vec![(participant(), 1), (stranger(), 2)],
            issued_at: first
        })
    );

    // A newer list replaces the whole of the old one: the stranger is no longer registered.
    let second = first + 1;
    let (status, answer) =
        post(url.clone(), &registration(&customer, &[(participant(), 0)], Quality::FullHd, second)).await;
    assert_eq!(status, 200, "{answer}");
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
    let (status, answer) = post(url, &registration(&customer, &[], Quality::Hd, second + 1)).await;
    assert_eq!((status, answer["count"].as_u64()), (200, Some(0)), "{answer}");
    assert_eq!(store.conference_settings(1).await.unwrap().unwrap().participants, vec![]);
}

async fn an_older_or_equal_registration_is_refused_and_changes_nothing(store: Store) {
    signed(&store).await;
    let api = common::spawn_api(store.clone()).await;
    let url = format!("{api}/api/agreements/1/participants");
    let customer = key(CUSTOMER_KEY);
    let issued = now();
    let (status, _) = post(url.clone(), &registration(&customer, &[(participant(), 1)], Quality::Hd, issued)).await;
    assert_eq!(status, 200);
    let stored = store.conference_settings(1).await.unwrap();

    for (issued_at, what) in [(issued, "equal"), (issued - 1, "older")] {
        let body = registration(&customer, &[(stranger(), 2)], Quality::Sd, issued_at);
        refused(&url, &body, 409, "is not newer").await;
        assert_eq!(store.conference_settings(1).await.unwrap(), stored, "an {what} registration changed nothing");
    }
    // The same signed request again (a replay) is the equal case: refused.
    let (status, _) = post(url, &registration(&customer, &[(participant(), 1)], Quality::Hd, issued)).await;
    assert_eq!(status, 409);
}

async fn registrations_not_by_the_customer_or_malformed_change_nothing(store: Store) {
    signed(&store).await;
    let api = common::spawn_api(store.clone()).await;
    let url = format!("{api}/api/agreements/1/participants");
    let customer = key(CUSTOMER_KEY);
    let issued = now();
    let list = [(participant(), 1)];

    // Signed by someone else; or the customer's signature of another list.
    refused(
        &url,
        &registration(&key(STRANGER_KEY), &list, Quality::Hd, issued),
        403,
        "not by the agreement's customer",
    )
    .await;
    let mut swapped = registration(&customer, &list, Quality::Hd, issued);
    swapped["participants"][0]["address"] = json!(stranger().to_string());
    refused(&url, &swapped, 403, "not by the agreement's customer").await;
    let mut upgraded = registration(&customer, &list, Quality::Hd, issued);
    upgraded["quality"] = json!("fullhd");
    refused(&url, &upgraded, 403, "not by the agreement's customer").await;

    refused(
        &format!("{api}/api/agreements/7/participants"),
        &registration(&customer, &list, Quality::Hd, issued),
        404,
        "no agreement 7",
    )
    .await;
    refused(
        &format!("{api}/api/agreements/x/participants"),
        &registration(&customer, &list, Quality::Hd, issued),
        400,
        "agreement id",
    )
    .await;

    let too_many: Vec<(Address, u8)> = (1..=101u8).map(|i| (Address::repeat_byte(i), 0)).collect();
    refused(&url, &registration(&customer, &too_many, Quality::Hd, issued), 400, "at most 100 participants").await;
    let hundred: Vec<(Address, u8)> = (1..=100u8).map(|i| (Address::repeat_byte(i), i % 3)).collect();
    let (status, answer) = post(url.clone(), &registration(&customer, &hundred, Quality::Hd, issued - 100)).await;
    assert_eq!((status, answer["count"].as_u64()), (200, Some(100)), "a hundred are allowed: {answer}");
    let stored = store.conference_settings(1).await.unwrap();

    refused(
        &url,
        &registration(&customer, &[(participant(), 0), (participant(), 1)], Quality::Hd, issued),
        400,
        "listed twice",
    )
    .await;
    let mut mixed_case = registration(&customer, &[(participant(), 0), (participant(), 0)], Quality::Hd, issued);
    mixed_case["participants"][1]["address"] = json!(alloy::hex::encode_prefixed(participant()));
    refused(&url, &mixed_case, 400, "listed twice").await;
    refused(&url, &registration(&customer, &[(participant(), 32)], Quality::Hd, issued), 400, "from 0 to 31").await;
    refused(&url, &registration(&customer, &list, Quality::Hd, now() + 3_600), 400, "ahead of the service's clock")
        .await;
    let mut no_prefix = registration(&customer, &list, Quality::Hd, issued);
    no_prefix["participants"][0]["address"] = json!(alloy::hex::encode(participant()));
    refused(&url, &no_prefix, 400, "must be an address").await;
    let mut bad_quality = registration(&customer, &list, Quality::Hd, issued);
    bad_quality["quality"] = json!("4k");
    refused(&url, &bad_quality, 400, "the body must be JSON").await;
    let mut extra = registration(&customer, &list, Quality::Hd, issued);
    extra["participants"][0]["name"] = json!("Alice");
    refused(&url, &extra, 400, "unknown field").await;
    let mut short = registration(&customer, &list, Quality::Hd, issued);
    short["signature"] = json!("0x1234");
    refused(&url, &short, 400, "65-byte").await;
    let mut not_hex = registration(&customer, &list, Quality::Hd, issued);
    not_hex["signature"] = json!("0xzz");
    refused(&url, &not_hex, 400, "hex").await;

    assert_eq!(store.conference_settings(1).await.unwrap(), stored, "no refused registration changed anything");
}

fn decode(token: &str) -> JoinClaims {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["jitsi"]);
    validation.set_issuer(&["conference"]);
    validation.validate_nbf = true;
    let key = jsonwebtoken::DecodingKey::from_secret(common::JITSI_SECRET);
    jsonwebtoken::decode::<JoinClaims>(token, &key, &validation).unwrap().claims
}

async fn the_customer_and_registered_participants_get_join_tokens(store: Store) {
    running(&store).await;
    let api = common::spawn_api(store.clone()).await;
    let customer = key(CUSTOMER_KEY);
    let (status, _) = post(
        format!("{api}/api/agreements/1/participants"),
        &registration(&customer, &[(participant(), 1)], Quality::Hd, now()),
    )
    .await;
    assert_eq!(status, 200);
    let url = format!("{api}/api/agreements/1/join-token");

    for (signer, moderator, id, name) in [
        (key(PARTICIPANT_KEY), false, "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc", "0x3c44…93bc"),
        (customer, true, "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "0x7099…79c8"),
    ] {
        let before = now();
        let (status, answer) = post(url.clone(), &join(&signer, 1, signer.address(), before + 300)).await;
        let after = now();
        assert_eq!(status, 200, "{answer}");
        let token = answer["token"].as_str().unwrap();
        assert_eq!(answer["joinUrl"], format!("{JOIN_URL}?jwt={token}"));
        let claims = decode(token);
        assert!((before..=after).contains(&claims.iat), "issued now: {claims:?}");
        assert_eq!(
            claims,
            JoinClaims {
                aud: "jitsi".into(),
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
        assert_eq!(answer.as_object().unwrap().len(), 3, "{answer}");
    }

    // A join URL with a query of its own gets the token appended with `&`.
    store
        .conference_running(
            1,
            &Deployed { join_url: "https://meet.example/conference-1?lang=en".into(), fresh: false, region: 0 },
        )
        .await
        .unwrap();
    let participant = key(PARTICIPANT_KEY);
    let (status, answer) = post(url, &join(&participant, 1, participant.address(), now() + 60)).await;
    assert_eq!(status, 200, "{answer}");
    let token = answer["token"].as_str().unwrap();
    assert_eq!(answer["joinUrl"], format!("https://meet.example/conference-1?lang=en&jwt={token}"));
}

async fn join_tokens_are_refused_to_others_and_without_a_conference(store: Store) {
    signed(&store).await;
    store
        .register_participants(
            1,
            &ConferenceSettings { quality: Quality::Hd, participants: vec![(participant(), 0)], issued_at: now() },
            &[0; 65],
        )
        .await
        .unwrap();
    let api = common::spawn_api(store.clone()).await;
    let url = format!("{api}/api/agreements/1/join-token");
    let (participant_key, stranger_key) = (key(PARTICIPANT_KEY), key(STRANGER_KEY));
    let soon = now() + 300;

    // No conference yet (requested, not deployed): even the registered participant waits.
    refused(&url, &join(&participant_key, 1, participant(), soon), 409, "no conference running now").await;
    refused(&url, &join(&key(CUSTOMER_KEY), 1, key(CUSTOMER_KEY).address(), soon), 409, "no conference running now")
        .await;

    running(&store).await;
    refused(&url, &join(&stranger_key, 1, stranger(), soon), 403, "is not registered for agreement 1").await;
    // Someone else's address, signed by the stranger; a join for another agreement.
    refused(&url, &join(&stranger_key, 1, participant(), soon), 403, "not by 0x3C44").await;
    refused(&url, &join(&participant_key, 2, participant(), soon), 403, "not by").await;

    refused(&url, &join(&participant_key, 1, participant(), now() - 1), 400, "has passed").await;
    refused(&url, &join(&participant_key, 1, participant(), now() + 3_600), 400, "at most 10 minutes").await;
    refused(
        &format!("{api}/api/agreements/7/join-token"),
        &join(&participant_key, 7, participant(), soon),
        404,
        "no agreement 7",
    )
    .await;
    let mut bad_address = join(&participant_key, 1, participant(), soon);
    bad_address["address"] = json!("0x1234");
    refused(&url, &bad_address, 400, "must be an address").await;

    // Once the conference is ended on-chain, or removed, no token is issued any more.
    let (status, _) = post(url.clone(), &join(&participant_key, 1, participant(), soon)).await;
    assert_eq!(status, 200, "running: the participant gets in");
    let ended = ChainEvent::Ended { agreement: 1, ended_at: common::SIGNED_AT + 100, tx_hash: "0xe4d".into() };
    store.apply_events(&[ended], 6, common::SIGNED_AT + 100).await.unwrap();
    refused(&url, &join(&participant_key, 1, participant(), soon), 409, "no conference running now").await;
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
    assert!(store.register_participants(1, &settings, &[1; 65]).await.unwrap());
    assert!(!store.register_participants(1, &settings, &[1; 65]).await.unwrap(), "not newer");

    let report = store.roll_back_to(10).await.unwrap();
    assert_eq!(report.removed_agreements, vec![1]);
    assert_eq!(store.conference_settings(1).await.unwrap(), None, "the registration went with the agreement");
    assert!(!store.is_participant(1, participant()).await.unwrap());

    // Agreement 1 of the new branch (another signature) starts with no one registered.
    store.apply_block_events(&[at(11, common::signed())], &blocks(&[11]), 12, common::SIGNED_AT, 0).await.unwrap();
    assert!(store.agreement(1).await.unwrap().is_some());
    assert_eq!(store.conference_settings(1).await.unwrap(), None);
}

/// The two messages hashed by hand from the EIP-712 specification (what a wallet computes for
/// `eth_signTypedData_v4` with these types) equal what the service recovers signers from: the page and
/// the service agree on the type strings and on how the arrays are encoded.
#[test]
fn the_typed_messages_hash_as_eip712_specifies() {
    use alloy::primitives::{B256, keccak256};
    let word = |value: U256| B256::from(value);
    let address_word = |address: Address| B256::left_padding_from(address.as_slice());
    let domain = escrow_domain(common::CHAIN_ID, common::ESCROW.parse().unwrap());
    let digest = |struct_hash: B256| {
        keccak256([&[0x19, 0x01][..], domain.separator().as_slice(), struct_hash.as_slice()].concat())
    };

    let type_hash = keccak256(
        "Participants(uint256 agreementId,address[] participants,uint8[] regions,uint8 quality,uint64 issuedAt)",
    );
    let (addresses, regions) = (vec![participant(), stranger()], vec![1u8, 2]);
    let struct_hash = keccak256(
        [
            type_hash,
            word(U256::from(1)),
            keccak256(addresses.iter().flat_map(|a| address_word(*a).0).collect::<Vec<u8>>()),
            keccak256(regions.iter().flat_map(|r| word(U256::from(*r)).0).collect::<Vec<u8>>()),
            word(U256::from(Quality::FullHd.index())),
            word(U256::from(1_700_000_000u64)),
        ]
        .concat(),
    );
    let message = Participants {
        agreementId: U256::from(1),
        participants: addresses,
        regions,
        quality: Quality::FullHd.index(),
        issuedAt: 1_700_000_000,
    };
    assert_eq!(message.eip712_signing_hash(&domain), digest(struct_hash));

    let type_hash = keccak256("Join(uint256 agreementId,address participant,uint64 expires)");
    let struct_hash = keccak256(
        [type_hash, word(U256::from(1)), address_word(participant()), word(U256::from(1_700_000_600u64))].concat(),
    );
    let message = Join { agreementId: U256::from(1), participant: participant(), expires: 1_700_000_600 };
    assert_eq!(message.eip712_signing_hash(&domain), digest(struct_hash));
}
