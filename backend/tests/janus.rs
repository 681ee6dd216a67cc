//! The local orchestrator's conference servers: real Janus processes (Debian's `janus`, `make janus`),
//! started, probed, adopted and removed by [`LocalOrchestrator`], and spoken to as a participant's page
//! speaks to them (WebSocket, `janus-protocol`), here from the default network namespace without media.
//!
//! What the SFU itself refuses: no token, a forged one, another conference's, an expired one; joining a
//! room that does not exist; malformed and oversized messages; and a session whose participant is no
//! longer admitted is ended by the probe. Janus starts with an empty environment.

use std::{
    collections::BTreeSet,
    path::PathBuf,
    time::{Duration, Instant},
};

use conference_backend::{
    domain::conference::{Conference, Roster},
    orchestrator::{
        janus::{self, ROOM, signed_token, token_secret},
        local::{LocalOrchestrator, LocalSettings, join_secret},
    },
};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

const ALICE: &str = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
const BOB: &str = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc";

fn now() -> u64 {
    conference_backend::store::now_wall() as u64
}

/// A test's folder; dropped (passed or failed), it kills the Janus servers started in it and goes.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let rooms = std::fs::canonicalize(self.0.join("rooms")).unwrap_or_else(|_| self.0.join("rooms"));
        for (_, pid) in conference_backend::orchestrator::local::server_processes(&rooms) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("conference-janus-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

fn orchestrator(dir: &std::path::Path) -> LocalOrchestrator {
    LocalOrchestrator::new(LocalSettings {
        dir: dir.join("rooms"),
        janus_bin: "/usr/bin/janus".into(),
        ice_interface: None,
        region: 0,
    })
    .expect("the orchestrator starts (is Debian's janus installed? make janus)")
}

fn conference(agreement: u64) -> Conference {
    Conference {
        agreement,
        customer: ALICE.into(),
        allowed_regions: 1,
        gdpr: false,
        participant_regions: Vec::new(),
        participants: Some(2),
        stream_kbps: 500,
        warm_start: false,
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A participant's connection to a server's WebSocket API.
struct Participant {
    socket: Socket,
    next: u64,
}

impl Participant {
    async fn connect(join_url: &str) -> Self {
        let mut request = join_url.into_client_request().unwrap();
        request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("janus-protocol"));
        let (socket, _) = tokio_tungstenite::connect_async(request).await.expect("the server's WebSocket API answers");
        Self { socket, next: 0 }
    }

    /// Sends `body` with a new transaction; the first answer to it that is not an `ack`.
    async fn request(&mut self, mut body: Value) -> Value {
        self.next += 1;
        let transaction = format!("t{}", self.next);
        body["transaction"] = json!(transaction);
        // A keepalive's answer is its ack; any other request's ack only says it arrived.
        let ack_answers = body["janus"] == "keepalive";
        self.socket.send(Message::text(body.to_string())).await.unwrap();
        self.answer(&transaction, ack_answers).await
    }

    /// The next message, whatever it answers.
    async fn next(&mut self) -> Value {
        loop {
            let message =
                tokio::time::timeout(Duration::from_secs(5), self.socket.next()).await.unwrap().unwrap().unwrap();
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    async fn answer(&mut self, transaction: &str, ack_answers: bool) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.socket.next())
                .await
                .expect("an answer within 5 s")
                .expect("the connection is open")
                .expect("a message");
            let Message::Text(text) = message else { continue };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["transaction"] == transaction && (ack_answers || answer["janus"] != "ack") {
                return answer;
            }
        }
    }

    /// Creates a session with `token`: its id, or Janus's error code.
    async fn create(&mut self, token: Option<&str>) -> Result<u64, (u64, String)> {
        let mut body = json!({ "janus": "create" });
        if let Some(token) = token {
            body["token"] = json!(token);
        }
        let answer = self.request(body).await;
        match answer["data"]["id"].as_u64() {
            Some(id) => Ok(id),
            None => Err(error_of(&answer)),
        }
    }

    /// Attaches to the VideoRoom and joins `room` as a publisher named `display`: the plugin's answer.
    async fn join(&mut self, session: u64, token: &str, room: u64, display: &str) -> Value {
        let attached = self
            .request(
                json!({ "janus": "attach", "session_id": session, "plugin": "janus.plugin.videoroom", "token": token }),
            )
            .await;
        let handle = attached["data"]["id"].as_u64().unwrap_or_else(|| panic!("attached: {attached}"));
        let body = json!({ "request": "join", "ptype": "publisher", "room": room, "display": display, "token": token });
        let answer = self
            .request(
                json!({ "janus": "message", "session_id": session, "handle_id": handle, "token": token, "body": body }),
            )
            .await;
        answer["plugindata"]["data"].clone()
    }
}

fn error_of(answer: &Value) -> (u64, String) {
    (
        answer["error"]["code"].as_u64().unwrap_or_default(),
        answer["error"]["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sfu_lets_in_only_its_own_signed_tokens_and_survives_bad_input() {
    let dir = temp_dir("tokens");
    // A secret of the backend's in its environment: the server must not inherit it.
    // SAFETY: set before any other thread of this test reads the environment.
    unsafe { std::env::set_var("OPERATOR_KEY", "0xnot-a-real-key-but-a-secret") };
    let conferences = orchestrator(&dir);
    let deployed = conferences.deploy(&conference(7)).await.unwrap();
    assert!(deployed.fresh);
    assert!(deployed.join_url.starts_with("ws://127.0.0.1:"), "{}", deployed.join_url);
    let pids = conferences.pids(7);
    assert_eq!(pids.len(), 1, "one server for the conference");
    let environ = std::fs::read(format!("/proc/{}/environ", pids[0])).unwrap();
    assert!(environ.is_empty(), "Janus started with an environment: {}", String::from_utf8_lossy(&environ));

    let secret = token_secret(&join_secret(&dir.join("rooms")).unwrap(), 7);
    let valid = signed_token(&secret, now() + 30, ALICE);
    let mut page = Participant::connect(&deployed.join_url).await;

    // Refused by Janus itself (403): no token, a forged one, another conference's, an expired one.
    assert_eq!(page.create(None).await.unwrap_err().0, 403);
    assert_eq!(page.create(Some(&signed_token("forged", now() + 30, ALICE))).await.unwrap_err().0, 403);
    let other_conference = token_secret(&join_secret(&dir.join("rooms")).unwrap(), 8);
    assert_eq!(page.create(Some(&signed_token(&other_conference, now() + 30, ALICE))).await.unwrap_err().0, 403);
    assert_eq!(page.create(Some(&signed_token(&secret, now() - 1, ALICE))).await.unwrap_err().0, 403);
    let tampered = valid.replace(ALICE, BOB);
    assert_eq!(page.create(Some(&tampered)).await.unwrap_err().0, 403, "the address is signed too");

    // The valid token: a session, the room joined under the participant's address.
    let session = page.create(Some(&valid)).await.expect("a valid token opens a session");
    let joined = page.join(session, &valid, ROOM, ALICE).await;
    assert_eq!(joined["videoroom"], "joined", "{joined}");
    // A room that does not exist is refused by the plugin (426, no such room).
    let mut other = Participant::connect(&deployed.join_url).await;
    let other_session = other.create(Some(&valid)).await.unwrap();
    let unknown = other.join(other_session, &valid, 2, ALICE).await;
    assert_eq!(unknown["error_code"], 426, "{unknown}");

    // Malformed and oversized messages get an error answer (or the connection closed), nothing more.
    let mut rogue = Participant::connect(&deployed.join_url).await;
    for bad in ["{not json", r#"{"janus": 42, "transaction": "x"}"#, r#"{"janus": "create"}"#, "[]"] {
        rogue.socket.send(Message::text(bad)).await.unwrap();
        let answer = rogue.next().await;
        assert_eq!(answer["janus"], "error", "{bad}: {answer}");
        eprintln!("{bad} -> {answer}");
    }
    let huge = format!("{{\"janus\":\"create\",\"transaction\":\"big\",\"pad\":\"{}\"}}", "x".repeat(8 << 20));
    let started = Instant::now();
    let _ = rogue.socket.send(Message::text(huge)).await;
    let answer = tokio::time::timeout(Duration::from_secs(5), rogue.socket.next()).await;
    eprintln!("8 MiB -> {answer:?} after {:?}", started.elapsed());
    // The conference keeps running for everyone else: the joined participant's session still answers.
    let alive = page.request(json!({ "janus": "keepalive", "session_id": session, "token": valid })).await;
    assert_eq!(alive["janus"], "ack", "{alive}");

    // A participant no longer admitted is put out by the next probe; the admitted one stays.
    let mut bob_page = Participant::connect(&deployed.join_url).await;
    let bob_token = signed_token(&secret, now() + 30, BOB);
    let bob_session = bob_page.create(Some(&bob_token)).await.unwrap();
    assert_eq!(bob_page.join(bob_session, &bob_token, ROOM, BOB).await["videoroom"], "joined");
    // The registration now says Alice only, in HD: Bob is put out, and the room's cap follows the quality.
    let roster = Roster { admitted: BTreeSet::from([ALICE.to_owned()]), stream_kbps: 1_500 };
    let probe = conferences.probe(7, Some(&roster)).await.unwrap();
    assert!(probe.ok && !probe.lost, "{probe:?}");
    assert!(probe.detail.contains("ended 1 sessions no longer admitted"), "{probe:?}");
    let info = conferences.read_info(7).unwrap();
    let config = std::fs::read_to_string(dir.join("rooms/7/janus.plugin.videoroom.jcfg")).unwrap();
    let admin_key =
        config.lines().find_map(|l| l.trim().strip_prefix("admin_key = ")).unwrap().trim_matches('"').to_owned();
    let mut admin =
        conference_backend::orchestrator::janus::Admin::connect(info.admin_port, &info.admin_secret).await.unwrap();
    let list = json!({ "plugin": "janus.plugin.videoroom", "request": { "request": "list", "admin_key": admin_key } });
    let rooms = admin.request("message_plugin", list).await.unwrap();
    assert_eq!(rooms["response"]["list"][0]["bitrate"], 1_500_000, "{rooms}");
    assert_eq!(info.bitrate_bps, 500_000, "it started at the deploy's quality (sd)");
    let gone = bob_page.request(json!({ "janus": "keepalive", "session_id": bob_session, "token": bob_token })).await;
    assert_eq!(error_of(&gone).0, 458, "Bob's session is gone: {gone}");
    let alive = page.request(json!({ "janus": "keepalive", "session_id": session, "token": valid })).await;
    assert_eq!(alive["janus"], "ack", "{alive}");
    assert!(probe.detail.contains("janus pid"), "{probe:?}");

    conferences.remove(7).await.unwrap();
    assert!(conferences.pids(7).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn one_server_per_conference_adopted_found_when_orphaned_and_lost_when_killed() {
    let dir = temp_dir("lifecycle");
    let conferences = orchestrator(&dir);
    let first = conferences.deploy(&conference(3)).await.unwrap();
    let pid = conferences.pids(3)[0];
    // Deployed again, or by a restarted backend: adopted, never a second server.
    let again = conferences.deploy(&conference(3)).await.unwrap();
    assert_eq!((again.fresh, &again.join_url), (false, &first.join_url));
    let restarted = orchestrator(&dir);
    let adopted = restarted.deploy(&conference(3)).await.unwrap();
    assert!(!adopted.fresh);
    assert_eq!(restarted.pids(3), vec![pid]);
    assert_eq!(restarted.list().unwrap(), vec![3]);
    let probe = restarted.probe(3, None).await.unwrap();
    assert!(probe.ok && probe.detail.contains("no participant receives media"), "{probe:?}");

    // Its folder gone (as after a crash mid-removal): the process is still found by its command line.
    std::fs::remove_dir_all(dir.join("rooms/3")).unwrap();
    assert_eq!(restarted.list().unwrap(), vec![3]);
    restarted.remove(3).await.unwrap();
    assert!(restarted.list().unwrap().is_empty() && restarted.pids(3).is_empty());

    // Killed: the next probe finds it lost at once, and a deploy starts a new server.
    let before = conferences.deploy(&conference(4)).await.unwrap();
    let killed = conferences.pids(4)[0];
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(killed as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let started = Instant::now();
    let lost = loop {
        let probe = conferences.probe(4, None).await.unwrap();
        if probe.lost || started.elapsed() > Duration::from_secs(5) {
            break probe;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(lost.lost && !lost.ok && lost.detail.contains("not running"), "{lost:?}");
    let back = conferences.deploy(&conference(4)).await.unwrap();
    assert!(back.fresh);
    assert_ne!(conferences.pids(4), vec![killed]);
    assert_ne!(back.join_url, "", "{before:?}");
    conferences.remove(4).await.unwrap();
}

#[test]
fn the_generated_configuration_names_only_installed_libraries() {
    let libraries = janus::library_dir();
    for (kind, name) in [("plugins", janus::PLUGIN), ("transports", janus::TRANSPORT)] {
        assert!(libraries.join(kind).join(name).exists(), "{kind}/{name} missing: make janus");
    }
}
