//! The conference room of the local orchestrator: a process of its own per agreement, serving the
//! room page and a WebSocket relay that carries WebRTC signalling among the participants (the media
//! flows peer to peer). It holds an exclusive lock on `<rooms>/<agreement>.lock` for its whole life,
//! so two rooms can never run for one agreement, and publishes `<rooms>/<agreement>.json` (pid and
//! port) once it listens.

use std::{
    collections::BTreeMap,
    fs::{self, File, TryLockError},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Json, Router,
    extract::{
        State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    response::{Html, IntoResponse},
    routing::get,
};
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::info;

use crate::{Error, Result};

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

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    let info = RoomInfo { agreement_id, pid: std::process::id(), port };
    let path = info_path(rooms_dir, agreement_id);
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec(&info).map_err(|e| Error::Orchestrator(e.to_string()))?)?;
    fs::rename(&tmp, &path)?;
    info!(agreement_id, port, "room listening");

    let served = axum::serve(listener, router(agreement_id)).with_graceful_shutdown(shutdown_signal()).await;
    let _ = fs::remove_file(&path);
    drop(lock);
    served?;
    Ok(true)
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
}

struct Peer {
    name: String,
    outbox: mpsc::UnboundedSender<String>,
}

struct Room {
    agreement_id: u64,
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

pub fn router(agreement_id: u64) -> Router {
    let room = Arc::new(Room { agreement_id, next_peer: AtomicU64::new(1), peers: Mutex::default() });
    Router::new()
        .route("/", get(|| async { Html(include_str!("../../web/room.html")) }))
        .route("/room.js", get(|| async { ([("content-type", "text/javascript")], include_str!("../../web/room.js")) }))
        .route("/style.css", get(|| async { ([("content-type", "text/css")], include_str!("../../web/style.css")) }))
        .route("/healthz", get(healthz))
        .route("/ws", get(join))
        .layer(axum::middleware::map_response(crate::api::content_security_policy))
        .with_state(room)
}

async fn healthz(State(room): State<Arc<Room>>) -> Json<Value> {
    let participants = room.peers.lock().expect("room lock").len();
    Json(json!({ "agreementId": room.agreement_id, "participants": participants }))
}

async fn join(ws: WebSocketUpgrade, State(room): State<Arc<Room>>) -> impl IntoResponse {
    ws.on_upgrade(move |socket| relay(socket, room))
}

/// Relays one participant's signalling: `hello` names them to the others; a message with `to` goes to
/// that peer only, any other to every other peer, each with `from` added.
async fn relay(socket: WebSocket, room: Arc<Room>) {
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
    let _ = outbox.send(json!({ "type": "welcome", "id": id.to_string(), "peers": others }).to_string());

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
            let name =
                message.get("name").and_then(Value::as_str).unwrap_or("Guest").chars().take(64).collect::<String>();
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
