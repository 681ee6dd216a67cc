//! A local room's signalling WebSocket lets in only holders of a join token for that room (HS256 with
//! the rooms folder's secret, unexpired) and names each participant by its token's address. The room
//! runs in-process on a free loopback port; the client is a real WebSocket client, from another origin.

use std::time::Duration;

use alloy::primitives::{Address, address};
use conference_backend::{orchestrator::room, tokens::JoinTokens};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

const ALICE: Address = address!("70997970C51812dc3A010C7d01b50e0d17dc79C8");
const BOB: Address = address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");

fn now() -> u64 {
    conference_backend::store::now_wall() as u64
}

/// Room 7 on a free loopback port, checking tokens with the secret of `rooms_dir`; its base URL.
async fn spawn_room(rooms_dir: &std::path::Path) -> String {
    let secret = room::join_secret(rooms_dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, room::router(7, &secret)).await.unwrap() });
    format!("127.0.0.1:{}", addr.port())
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/ws` with `query`, from the backend's origin (not the room's): the socket, or the refusal's
/// status and `{"error"}`.
async fn open(room: &str, query: &str) -> Result<Socket, (u16, Value)> {
    let mut request = format!("ws://{room}/ws{query}").into_client_request().unwrap();
    request.headers_mut().insert("origin", "http://127.0.0.1:8080".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            Err((response.status().as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null)))
        }
        Err(err) => panic!("the handshake failed otherwise: {err}"),
    }
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

fn refusal(result: Result<Socket, (u16, Value)>) -> (u16, String) {
    let Err((status, body)) = result else { panic!("let in, not refused") };
    (status, body["error"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn the_room_lets_in_only_valid_tokens_for_itself_and_names_peers_by_their_address() {
    let dir = std::env::temp_dir().join(format!("conference-room-tokens-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let room = spawn_room(&dir).await;
    // The backend reads the same secret the room made (0600), and issues with it.
    let secret = room::join_secret(&dir).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.join(room::JOIN_SECRET_FILE)).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let tokens = JoinTokens::local(&secret, 600).unwrap();
    let token =
        |agreement: u64, address: Address, issued: u64| tokens.issue(agreement, address, false, issued).unwrap().token;

    let (status, error) = refusal(open(&room, "").await);
    assert_eq!((status, error.contains("join token is required")), (401, true), "{error}");
    assert_eq!(refusal(open(&room, "?token=").await).0, 401);
    let (status, error) = refusal(open(&room, "?token=not.a.jwt").await);
    assert_eq!((status, error.contains("not valid here")), (401, true), "{error}");
    let (status, error) = refusal(open(&room, &format!("?token={}", token(8, ALICE, now()))).await);
    assert_eq!((status, error.contains("conference-8, this is conference-7")), (403, true), "{error}");
    let expired = token(7, ALICE, now() - 3_600);
    let (status, error) = refusal(open(&room, &format!("?token={expired}")).await);
    assert_eq!((status, error.contains("Expired")), (401, true), "{error}");
    let forged = JoinTokens::local(b"another secret", 600).unwrap().issue(7, ALICE, true, now()).unwrap().token;
    assert_eq!(refusal(open(&room, &format!("?token={forged}")).await).0, 401);

    // Valid tokens: each is named by its token's address, whatever its hello says.
    let mut alice = open(&room, &format!("?token={}", token(7, ALICE, now()))).await.expect("Alice gets in");
    let welcome = next_json(&mut alice).await;
    assert_eq!(welcome, json!({ "type": "welcome", "id": "1", "name": ALICE.to_string(), "peers": [] }));
    alice.send(Message::text(json!({ "type": "hello", "name": "Alice" }).to_string())).await.unwrap();

    let mut bob = open(&room, &format!("?token={}", token(7, BOB, now()))).await.expect("Bob gets in");
    let welcome = next_json(&mut bob).await;
    assert_eq!(welcome["peers"], json!([{ "id": "1", "name": ALICE.to_string() }]));
    bob.send(Message::text(json!({ "type": "hello", "name": "The customer, trust me" }).to_string())).await.unwrap();
    assert_eq!(next_json(&mut alice).await, json!({ "type": "peer-joined", "id": "2", "name": BOB.to_string() }));

    // Signalling still flows, with `from` added.
    bob.send(Message::text(json!({ "type": "offer", "to": "1", "sdp": "x" }).to_string())).await.unwrap();
    assert_eq!(next_json(&mut alice).await, json!({ "type": "offer", "to": "1", "sdp": "x", "from": "2" }));

    // The monitor's probe still answers; the room serves no page any more.
    let health: Value = reqwest::get(format!("http://{room}/healthz")).await.unwrap().json().await.unwrap();
    assert_eq!(health, json!({ "agreementId": 7, "participants": 2 }));
    assert_eq!(reqwest::get(format!("http://{room}/")).await.unwrap().status(), 404);
    let _ = std::fs::remove_dir_all(&dir);
}
