//! The conference room of the local orchestrator: a process of its own per agreement, serving a
//! WebSocket relay that carries WebRTC signalling among the participants (the media flows peer to
//! peer; the web app, on the backend's origin, renders the room and opens `ws://…/ws?token=…` here).
//! Only holders of a join token for this room get in: HS256 with the secret the backend keeps in
//! `<rooms>/join-secret` ([`join_secret`]), checked before the WebSocket is opened. It holds an
//! exclusive lock on `<rooms>/<agreement>.lock` for its whole life, so two rooms can never run for one
//! agreement, and publishes `<rooms>/<agreement>.json` (pid and port) once it listens.

use std::{
    collections::BTreeMap,
    fs::{self, File, TryLockError},
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Json, Router,
    extract::{
        Query, State,
        rejection::QueryRejection,
        ws::{Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use futures::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::info;

use crate::{Error, Result, domain::conference::room_name, tokens::RoomClaims};

/// What a running room publishes about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfo {
    pub agreement_id: u64,
    pub pid: u32,
    pub port: u16,
}

pub fn info_path(rooms_dir: &Path, agreement: u64) -> PathBuf {
    rooms_dir.join(format!("{agreement}.json"))
}

pub fn lock_path(rooms_dir: &Path, agreement: u64) -> PathBuf {
    rooms_dir.join(format!("{agreement}.lock"))
}

/// The file in the rooms folder that holds the secret local join tokens are signed with.
pub const JOIN_SECRET_FILE: &str = "join-secret";

/// The secret local join tokens are signed with, from `<rooms>/join-secret`: made once (32 random
/// bytes, hex, mode 0600) by whichever comes first, the backend or a room, and read by both. It is
/// written aside and linked into place, so that no one ever reads a half-written secret.
pub fn join_secret(rooms_dir: &Path) -> Result<Vec<u8>> {
    let path = rooms_dir.join(JOIN_SECRET_FILE);
    match fs::read(&path) {
        Ok(secret) if !secret.is_empty() => return Ok(secret),
        Ok(_) => return Err(Error::Config(format!("{} is empty: remove it to make a new one", path.display()))),
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err.into()),
        Err(_) => {}
    }
    fs::create_dir_all(rooms_dir)?;
    let aside = rooms_dir.join(format!("{JOIN_SECRET_FILE}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&aside);
    let mut file = File::options().write(true).create_new(true).mode(0o600).open(&aside)?;
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    file.write_all(alloy::hex::encode(bytes).as_bytes())?;
    file.sync_all()?;
    let linked = fs::hard_link(&aside, &path);
    fs::remove_file(&aside)?;
    match linked {
        // Another process made it first: its secret is the one.
        Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => return Err(err.into()),
        _ => {}
    }
    Ok(fs::read(&path)?)
}

/// The exit code of a room that found another room already running for its agreement.
pub const EXIT_ALREADY_RUNNING: i32 = 3;

/// Runs a room until SIGTERM or SIGINT. Returns `Ok(false)` without serving if another room holds
/// the agreement's lock.
pub async fn run(agreement_id: u64, rooms_dir: &Path, port: u16) -> Result<bool> {
    fs::create_dir_all(rooms_dir)?;
    let lock = File::options().create(true).truncate(false).write(true).open(lock_path(rooms_dir, agreement_id))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(false),
        Err(TryLockError::Error(err)) => return Err(err.into()),
    }

    let secret = join_secret(rooms_dir)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    let info = RoomInfo { agreement_id, pid: std::process::id(), port };
    let path = info_path(rooms_dir, agreement_id);
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec(&info).map_err(|e| Error::orchestrator("writing the room's info", e))?)?;
    fs::rename(&tmp, &path)?;
    info!(agreement_id, port, "room listening");

    let served = axum::serve(listener, router(agreement_id, &secret))
        .with_graceful_shutdown(crate::signal::shutdown_signal())
        .await;
    let _ = fs::remove_file(&path);
    drop(lock);
    served?;
    Ok(true)
}

struct Peer {
    name: String,
    outbox: mpsc::UnboundedSender<String>,
}

struct Room {
    agreement_id: u64,
    /// Checks the join tokens (the rooms folder's secret).
    key: DecodingKey,
    next_peer: AtomicU64,
    /// By peer id, which counts up: the order people joined in.
    peers: Mutex<BTreeMap<u64, Peer>>,
}

impl Room {
    fn send(&self, to: u64, message: &Value) {
        if let Some(peer) = self.peers.lock().expect("room lock").get(&to) {
            let _ = peer.outbox.send(message.to_string());
        }
    }

    fn broadcast(&self, from: u64, message: &Value) {
        for (id, peer) in self.peers.lock().expect("room lock").iter() {
            if *id != from {
                let _ = peer.outbox.send(message.to_string());
            }
        }
    }
}

/// The room's routes: `/healthz` (the monitor's probe) and `/ws?token=…` (the signalling WebSocket).
/// `secret` checks the join tokens. The WebSocket is opened from the backend's origin (the web app's
/// page), another origin than the room's: the token, not the origin, decides who gets in.
pub fn router(agreement_id: u64, secret: &[u8]) -> Router {
    let room = Arc::new(Room {
        agreement_id,
        key: DecodingKey::from_secret(secret),
        next_peer: AtomicU64::new(1),
        peers: Mutex::default(),
    });
    Router::new().route("/healthz", get(healthz)).route("/ws", get(join)).with_state(room)
}

async fn healthz(State(room): State<Arc<Room>>) -> Json<Value> {
    let participants = room.peers.lock().expect("room lock").len();
    Json(json!({ "agreementId": room.agreement_id, "participants": participants }))
}

#[derive(Deserialize)]
struct JoinQuery {
    token: Option<String>,
}

impl Room {
    /// The claims of `token` if it lets its holder into this room, else the refusal: 401 for a missing,
    /// unreadable, wrongly signed or expired token, 403 for another room's.
    fn admit(&self, token: Option<&str>) -> Result<RoomClaims, (StatusCode, String)> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err((StatusCode::UNAUTHORIZED, "a join token is required: /ws?token=…".into()));
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let claims = jsonwebtoken::decode::<RoomClaims>(token, &self.key, &validation)
            .map_err(|e| (StatusCode::UNAUTHORIZED, format!("the join token is not valid here: {e}")))?
            .claims;
        let room = room_name(self.agreement_id);
        if claims.room != room {
            return Err((StatusCode::FORBIDDEN, format!("the join token is for {}, this is {room}", claims.room)));
        }
        Ok(claims)
    }
}

/// Opens the signalling WebSocket for the holder of a valid join token (checked before the upgrade).
async fn join(
    State(room): State<Arc<Room>>,
    query: Result<Query<JoinQuery>, QueryRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let token = query.ok().and_then(|Query(q)| q.token);
    let claims = match room.admit(token.as_deref()) {
        Ok(claims) => claims,
        // As `{"error"}`, like the backend's API.
        Err((status, error)) => return (status, Json(json!({ "error": error }))).into_response(),
    };
    match ws {
        Ok(ws) => ws.on_upgrade(move |socket| relay(socket, room, claims.sub)).into_response(),
        Err(rejection) => rejection.into_response(),
    }
}

/// Relays one participant's signalling under `name` (its token's address): `welcome` tells it its id,
/// its name and who is here; its `hello` announces it to the others (`peer-joined`, with the token's
/// name, whatever the `hello` says); a message with `to` goes to that peer only, any other to every
/// other peer, each with `from` added.
async fn relay(socket: WebSocket, room: Arc<Room>, name: String) {
    let id = room.next_peer.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut inbox) = mpsc::unbounded_channel::<String>();
    let others: Vec<Value> = {
        let mut peers = room.peers.lock().expect("room lock");
        let others = peers
            .iter()
            .filter(|(_, p)| !p.name.is_empty())
            .map(|(id, p)| json!({ "id": id.to_string(), "name": p.name }))
            .collect();
        peers.insert(id, Peer { name: String::new(), outbox: outbox.clone() });
        others
    };
    let _ = outbox.send(json!({ "type": "welcome", "id": id.to_string(), "name": name, "peers": others }).to_string());

    let writer = tokio::spawn(async move {
        while let Some(text) = inbox.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
    });

    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else { continue };
        let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(&text) else { continue };
        if message.get("type").and_then(Value::as_str) == Some("hello") {
            if let Some(peer) = room.peers.lock().expect("room lock").get_mut(&id) {
                peer.name = name.clone();
            }
            room.broadcast(id, &json!({ "type": "peer-joined", "id": id.to_string(), "name": name }));
            continue;
        }
        message.insert("from".into(), Value::String(id.to_string()));
        match message.get("to").and_then(Value::as_str) {
            Some(to) => {
                // A message for a peer that is not (or no longer) here goes nowhere.
                if let Ok(to) = to.parse() {
                    room.send(to, &Value::Object(message));
                }
            }
            None => room.broadcast(id, &Value::Object(message)),
        }
    }

    room.peers.lock().expect("room lock").remove(&id);
    room.broadcast(id, &json!({ "type": "peer-left", "id": id.to_string() }));
    writer.abort();
}
