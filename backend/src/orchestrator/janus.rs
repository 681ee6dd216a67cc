//! The Janus WebRTC Server as the local orchestrator runs it, one process per conference: the
//! configuration the backend generates for it ([`JanusPlan`]), the credentials it checks
//! ([`signed_token`]) and the Admin API client the monitor measures it with ([`Admin`]).
//!
//! The configuration loads exactly what a conference needs: the VideoRoom plugin and the WebSockets
//! transport (the participants' API on its own port, the Admin API on loopback), nothing else (no
//! event handlers, no loggers, no HTTP). The one room (id [`ROOM`]) is declared in the plugin's
//! configuration with a random secret; the plugin's `admin_key` is random too, so nobody can create,
//! edit or destroy rooms or forward media elsewhere through the public API.
//!
//! Who gets in: token authentication in signed mode (`token_auth`, `token_auth_secret`). Janus checks
//! the token on every request of a session (create, attach, every message, every keepalive) and, at
//! attach, that it names the VideoRoom plugin. (The room's own `signed_tokens` would want a second
//! token in the plugin's realm; with one server and one room per conference it would add nothing.)
//! The backend signs a token per participant
//! ([`signed_token`]): `<expiry>,janus,janus.plugin.videoroom,<address>` followed by `:` and
//! the base64 of its HMAC-SHA1 under the conference's own secret ([`token_secret`], derived from the
//! backend's join secret and the agreement, so another conference's token fails its signature). Tokens
//! live [`TOKEN_TTL_SECS`]; the page renews its token every [`TOKEN_RENEW_SECS`], which the API refuses
//! once the customer removed the participant. Revocation is effective on two clocks: the monitor's
//! next probe (every 2 s by default) ends every session whose token names an address no longer
//! admitted (the Admin API shows each handle's token), and the server refuses the removed
//! participant's last token for anything at all once it expires, within [`TOKEN_TTL_SECS`].

use std::{
    fmt::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use base64::Engine as _;
use futures::{SinkExt as _, StreamExt as _};
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest as _, http::HeaderValue};

use crate::{Error, Result, domain::conference::room_name};

/// The VideoRoom room every conference's server has, and the only one.
pub const ROOM: u64 = 1;

/// How long a Janus token lets its holder in, in seconds: the bound on a removed participant's access
/// with a token it already holds. The page renews its token every [`TOKEN_RENEW_SECS`].
pub const TOKEN_TTL_SECS: u64 = 15;

/// How often the page asks the API for a fresh token (a third of its life).
pub const TOKEN_RENEW_SECS: u64 = TOKEN_TTL_SECS / 3;

/// Janus ends a session that sent nothing (no keepalive) for this long, in seconds; the page sends a
/// keepalive every 10 s. A participant whose token expired cannot keep its session alive past this.
pub const SESSION_TIMEOUT_SECS: u64 = 20;

/// The UDP ports one server may use for media: one per peer connection (BUNDLE and rtcp-mux), two per
/// participant (publishing and the multistream subscription).
pub const RTP_PORTS_PER_SERVER: u16 = 100;

/// Where the servers' port ranges are carved from: below Linux's ephemeral ports (32768 and up).
pub const RTP_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// The plugin and transport libraries a conference's server loads (Debian's `janus` package).
pub const PLUGIN: &str = "libjanus_videoroom.so";

/// The VideoRoom plugin's package name, as requests name it.
pub const PLUGIN_NAME: &str = "janus.plugin.videoroom";
pub const TRANSPORT: &str = "libjanus_websockets.so";

/// Everything one conference's server is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JanusPlan {
    pub agreement: u64,
    /// Its folder: the configuration, the libraries' links, its log.
    pub dir: PathBuf,
    /// Where Debian installs the plugins and transports.
    pub library_dir: PathBuf,
    /// The participants' WebSocket API (`janus-protocol`).
    pub ws: SocketAddr,
    /// The Admin API's WebSocket (`janus-admin-protocol`), on loopback.
    pub admin: SocketAddr,
    /// The first of [`RTP_PORTS_PER_SERVER`] UDP ports for media.
    pub rtp_first_port: u16,
    /// The interface (name or address) ICE gathers on and the SDP names; None lets Janus choose.
    pub ice_interface: Option<String>,
    /// The room's video bitrate cap, bits per second (the quality the customer chose).
    pub bitrate_bps: u64,
    pub secrets: JanusSecrets,
}

/// A conference server's secrets: what its Admin API, room and plugin administration ask for, and what
/// its tokens are signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct JanusSecrets {
    pub admin: String,
    pub room: String,
    pub plugin_admin_key: String,
    pub token: String,
}

impl std::fmt::Debug for JanusSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JanusSecrets([redacted])")
    }
}

impl JanusSecrets {
    /// Random secrets for the Admin API, the room and the plugin's administration; the token secret
    /// derived from the backend's join secret (see [`token_secret`]).
    pub fn new(join_secret: &[u8], agreement: u64) -> Self {
        let random = || alloy::hex::encode(rand::random::<[u8; 24]>());
        Self {
            admin: random(),
            room: random(),
            plugin_admin_key: random(),
            token: token_secret(join_secret, agreement),
        }
    }
}

/// The secret a conference's server checks its tokens with: HMAC-SHA256 of the conference's name under
/// the backend's join secret, in hex (Janus takes it as a string). Every replica of the backend derives
/// the same one, and no two conferences share one.
pub fn token_secret(join_secret: &[u8], agreement: u64) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(join_secret).expect("HMAC takes any key length");
    mac.update(b"janus-token-auth:");
    mac.update(room_name(agreement).as_bytes());
    alloy::hex::encode(mac.finalize().into_bytes())
}

/// A Janus signed token for `address` (lowercase hex) valid until `expires_at` (unix seconds), for the
/// VideoRoom plugin, signed with the conference's `secret`.
pub fn signed_token(secret: &str, expires_at: u64, address: &str) -> String {
    let data = format!("{expires_at},janus,{PLUGIN_NAME},{address}");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("{data}:{signature}")
}

/// The participant a signed token names (its last descriptor), if it is one of ours.
pub fn token_address(token: &str) -> Option<&str> {
    let (data, _) = token.split_once(':')?;
    let address = data.rsplit(',').next()?;
    (address.len() == 42 && address.starts_with("0x")).then_some(address)
}

/// A string as the configuration format (libconfig) writes it: quoted, with `\` and `"` escaped.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

impl JanusPlan {
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("janus.jcfg")
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.join("plugins")
    }

    pub fn transports_dir(&self) -> PathBuf {
        self.dir.join("transports")
    }

    /// An empty folder for event handlers and loggers: none is loaded.
    pub fn nothing_dir(&self) -> PathBuf {
        self.dir.join("none")
    }

    /// The core's configuration (`janus.jcfg`).
    pub fn core_config(&self) -> String {
        let dir = |path: PathBuf| quoted(&path.display().to_string());
        let (first, last) = (self.rtp_first_port, self.rtp_first_port + RTP_PORTS_PER_SERVER - 1);
        let mut text = String::new();
        let _ = writeln!(text, "# Generated by conference-backend for {}: do not edit.", room_name(self.agreement));
        let _ = writeln!(text, "general: {{");
        let _ = writeln!(text, "\tconfigs_folder = {}", dir(self.dir.clone()));
        let _ = writeln!(text, "\tplugins_folder = {}", dir(self.plugins_dir()));
        let _ = writeln!(text, "\ttransports_folder = {}", dir(self.transports_dir()));
        let _ = writeln!(text, "\tevents_folder = {}", dir(self.nothing_dir()));
        let _ = writeln!(text, "\tloggers_folder = {}", dir(self.nothing_dir()));
        let _ = writeln!(text, "\tdebug_level = 4\n\tdebug_colors = false\n\tdebug_timestamps = true");
        let _ = writeln!(text, "\tserver_name = {}", quoted(&room_name(self.agreement)));
        let _ = writeln!(text, "\tadmin_secret = {}", quoted(&self.secrets.admin));
        let _ = writeln!(text, "\ttoken_auth = true\n\ttoken_auth_secret = {}", quoted(&self.secrets.token));
        let _ = writeln!(text, "\tsession_timeout = {SESSION_TIMEOUT_SECS}\n\treclaim_session_timeout = 0");
        let _ = writeln!(text, "\thide_dependencies = true\n\texit_on_dl_error = true");
        if let Some(interface) = &self.ice_interface {
            let _ = writeln!(text, "\tinterface = {}", quoted(interface));
        }
        let _ = writeln!(text, "}}\ncertificates: {{\n}}");
        let _ = writeln!(text, "media: {{\n\tipv6 = false\n\trtp_port_range = \"{first}-{last}\"\n}}");
        let _ = writeln!(text, "nat: {{\n\tnice_debug = false\n\tignore_mdns = true\n\tice_tcp = false");
        if let Some(interface) = &self.ice_interface {
            let _ = writeln!(text, "\tice_enforce_list = {}", quoted(interface));
        }
        let _ = writeln!(
            text,
            "}}\nplugins: {{\n}}\ntransports: {{\n}}\nloggers: {{\n}}\nevents: {{\n\tbroadcast = false\n}}"
        );
        text
    }

    /// The WebSockets transport's configuration: the participants' API and the Admin API, no TLS.
    pub fn websockets_config(&self) -> String {
        format!(
            "general: {{\n\tjson = \"compact\"\n\tws = true\n\tws_port = {}\n\tws_ip = {}\n\twss = false\n}}\n\
             admin: {{\n\tadmin_ws = true\n\tadmin_ws_port = {}\n\tadmin_ws_ip = {}\n\tadmin_wss = false\n}}\n\
             cors: {{\n}}\ncertificates: {{\n}}\n",
            self.ws.port(),
            quoted(&self.ws.ip().to_string()),
            self.admin.port(),
            quoted(&self.admin.ip().to_string()),
        )
    }

    /// The VideoRoom plugin's configuration: its one room, for up to 100 publishers, with the quality's
    /// bitrate as a hard cap.
    pub fn videoroom_config(&self) -> String {
        format!(
            "general: {{\n\tadmin_key = {key}\n\tlock_rtp_forward = true\n\tstring_ids = false\n\tevents = false\n}}\n\
             room-{ROOM}: {{\n\tdescription = {name}\n\tsecret = {secret}\n\tis_private = true\n\
             \tpublishers = 100\n\tbitrate = {bitrate}\n\tbitrate_cap = true\n\tfir_freq = 10\n\tnotify_joining = true\n\
             \taudiocodec = \"opus\"\n\tvideocodec = \"vp8\"\n\trecord = false\n}}\n",
            key = quoted(&self.secrets.plugin_admin_key),
            name = quoted(&room_name(self.agreement)),
            secret = quoted(&self.secrets.room),
            bitrate = self.bitrate_bps,
        )
    }

    /// Writes the configuration and links the two libraries into the folder (made if missing, files
    /// mode 0600: they hold the secrets).
    pub fn write(&self) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt as _;
        for dir in [&self.dir, &self.plugins_dir(), &self.transports_dir(), &self.nothing_dir()] {
            std::fs::create_dir_all(dir)?;
        }
        for (name, text) in [
            ("janus.jcfg", self.core_config()),
            ("janus.transport.websockets.jcfg", self.websockets_config()),
            ("janus.plugin.videoroom.jcfg", self.videoroom_config()),
        ] {
            let path = self.dir.join(name);
            let _ = std::fs::remove_file(&path);
            let mut file = std::fs::File::options().write(true).create_new(true).mode(0o600).open(&path)?;
            std::io::Write::write_all(&mut file, text.as_bytes())?;
        }
        for (folder, library, kind) in
            [(self.plugins_dir(), PLUGIN, "plugins"), (self.transports_dir(), TRANSPORT, "transports")]
        {
            let target = self.library_dir.join(kind).join(library);
            if !target.exists() {
                return Err(Error::Config(format!(
                    "{} is missing: install Debian's janus package (make janus)",
                    target.display()
                )));
            }
            let link = folder.join(library);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&target, &link)?;
        }
        Ok(())
    }
}

/// What the backend keeps about a conference's server in its folder (`janus.json`), written before
/// the server starts: where it listens and its secrets (the folder is the backend's alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    pub agreement_id: u64,
    pub ws_port: u16,
    pub admin_port: u16,
    pub rtp_first_port: u16,
    pub admin_secret: String,
    pub room_secret: String,
    /// The room's bitrate cap the server started with.
    #[serde(default)]
    pub bitrate_bps: u64,
}

/// A Janus Admin API connection (WebSocket, `janus-admin-protocol`): one per probe, requests one after
/// another, each bounded by [`ADMIN_TIMEOUT`].
pub struct Admin {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    /// The credential every request carries: the Admin API's `admin_secret`, or a participant's `token`.
    field: &'static str,
    secret: String,
    next: u64,
}

pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);

impl Admin {
    pub async fn connect(port: u16, secret: &str) -> Result<Self> {
        Self::open(&format!("ws://127.0.0.1:{port}/"), "janus-admin-protocol", "admin_secret", secret).await
    }

    /// The public API at a conference's join URL, as a participant holding a join `token` reaches it.
    pub async fn participant(join_url: &str, token: &str) -> Result<Self> {
        Self::open(join_url, "janus-protocol", "token", token).await
    }

    async fn open(url: &str, protocol: &'static str, field: &'static str, secret: &str) -> Result<Self> {
        let mut request = url.into_client_request().map_err(|e| Error::orchestrator("the Janus API's URL", e))?;
        request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static(protocol));
        let (socket, _) = tokio::time::timeout(ADMIN_TIMEOUT, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| Error::Orchestrator("the Janus API did not accept a connection in time".into()))?
            .map_err(|e| Error::orchestrator("connecting to the Janus API", e))?;
        Ok(Self { socket, field, secret: secret.to_owned(), next: 0 })
    }

    /// Sends one request (`janus` is its name, `fields` the rest) and returns the answer; an error answer
    /// (`"janus": "error"`) is an error.
    pub async fn request(&mut self, janus: &str, mut fields: Value) -> Result<Value> {
        self.next += 1;
        let transaction = format!("probe-{}", self.next);
        let body = fields.as_object_mut().ok_or_else(|| Error::Orchestrator("an admin request is an object".into()))?;
        body.insert("janus".into(), json!(janus));
        body.insert("transaction".into(), json!(transaction));
        body.insert(self.field.into(), json!(self.secret));
        let text = Value::Object(body.clone()).to_string();
        let exchange = async {
            self.socket.send(Message::text(text)).await.map_err(|e| Error::orchestrator("a Janus admin request", e))?;
            while let Some(message) = self.socket.next().await {
                let message = message.map_err(|e| Error::orchestrator("a Janus admin answer", e))?;
                let Message::Text(text) = message else { continue };
                let answer: Value =
                    serde_json::from_str(&text).map_err(|e| Error::orchestrator("a Janus admin answer", e))?;
                // A plugin request may be acknowledged before it is answered.
                if answer["transaction"] == transaction.as_str() && answer["janus"] != "ack" {
                    return Ok(answer);
                }
            }
            Err(Error::Orchestrator("the Janus Admin API closed the connection".into()))
        };
        let answer = tokio::time::timeout(ADMIN_TIMEOUT, exchange)
            .await
            .map_err(|_| Error::Orchestrator(format!("the Janus Admin API did not answer {janus} in time").into()))??;
        if answer["janus"] == "error" {
            let reason = answer["error"]["reason"].as_str().unwrap_or("unknown").to_owned();
            return Err(Error::Orchestrator(format!("Janus refused {janus}: {reason}").into()));
        }
        Ok(answer)
    }

    /// Joins the conference's room as a participant would, through its public API with a join token (a
    /// session, the VideoRoom plugin, the room's participants), then leaves: what an independent monitor
    /// checks. Returns what it saw.
    pub async fn probe_as_participant(join_url: &str, token: &str) -> Result<String> {
        let mut api = Self::participant(join_url, token).await?;
        let id = |answer: &Value, what: &str| {
            answer["data"]["id"].as_u64().ok_or_else(|| Error::Orchestrator(format!("Janus gave no {what} id").into()))
        };
        let session = id(&api.request("create", json!({})).await?, "session")?;
        let handle =
            id(&api.request("attach", json!({ "session_id": session, "plugin": PLUGIN_NAME })).await?, "handle")?;
        let body = json!({ "request": "listparticipants", "room": ROOM });
        let answer =
            api.request("message", json!({ "session_id": session, "handle_id": handle, "body": body })).await?;
        let data = &answer["plugindata"]["data"];
        if data["videoroom"] != "participants" {
            let _ = api.request("destroy", json!({ "session_id": session })).await;
            return Err(Error::Orchestrator(format!("the room did not list its participants: {data}").into()));
        }
        let publishing =
            data["participants"].as_array().map_or(0, |p| p.iter().filter(|p| p["publisher"] == true).count());
        let _ = api.request("destroy", json!({ "session_id": session })).await;
        Ok(format!("joined the room through its public API: {publishing} publishing"))
    }

    /// Every handle of every session with what the server measured on it.
    pub async fn handles(&mut self) -> Result<Vec<HandleInfo>> {
        let sessions = self.request("list_sessions", json!({})).await?;
        let mut handles = Vec::new();
        for session in sessions["sessions"].as_array().into_iter().flatten().filter_map(Value::as_u64) {
            // A session may end between the list and the question: skipped, not an error.
            let Ok(list) = self.request("list_handles", json!({ "session_id": session })).await else { continue };
            for handle in list["handles"].as_array().into_iter().flatten().filter_map(Value::as_u64) {
                let Ok(info) = self.request("handle_info", json!({ "session_id": session, "handle_id": handle })).await
                else {
                    continue;
                };
                handles.push(HandleInfo::from_admin(session, handle, &info["info"]));
            }
        }
        Ok(handles)
    }

    /// Sets the room's video bitrate cap (the VideoRoom's `edit`, through `message_plugin`).
    pub async fn set_bitrate(&mut self, room_secret: &str, bitrate_bps: u64) -> Result<()> {
        let edit = json!({ "request": "edit", "room": ROOM, "secret": room_secret, "new_bitrate": bitrate_bps });
        let answer = self.request("message_plugin", json!({ "plugin": PLUGIN_NAME, "request": edit })).await?;
        let data = &answer["response"];
        if data["videoroom"] == "edited" {
            Ok(())
        } else {
            Err(Error::Orchestrator(format!("the room's bitrate was not set: {answer}").into()))
        }
    }

    /// Ends a session and every handle in it (its peer connections are hung up).
    pub async fn destroy_session(&mut self, session: u64) -> Result<()> {
        self.request("destroy_session", json!({ "session_id": session })).await.map(drop)
    }
}

/// One handle (a participant's publishing, or its subscription) as the Admin API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandleInfo {
    pub session: u64,
    pub handle: u64,
    /// The address the handle's token names, if it carried one of ours.
    pub address: Option<String>,
    /// `publisher` or `subscriber` (the VideoRoom's view of it), if it joined.
    pub role: Option<String>,
    /// ICE and DTLS are up: media can flow.
    pub connected: bool,
    /// Media streams the server sends on this handle (a subscription's).
    pub sending_streams: u64,
    /// RTP packets received from the participant, and sent to it, on every stream of the handle.
    pub packets_in: u64,
    pub packets_out: u64,
}

impl HandleInfo {
    pub fn from_admin(session: u64, handle: u64, info: &Value) -> Self {
        let token = info["token"].as_str().unwrap_or_default();
        let webrtc = &info["webrtc"];
        // One entry per m-line, keyed by its mid.
        let media: Vec<&Value> = webrtc["media"].as_object().map(|m| m.values().collect()).unwrap_or_default();
        let sum = |direction: &str| media.iter().filter_map(|m| m["stats"][direction]["packets"].as_u64()).sum();
        let connected = webrtc["ice"]["state"] == "connected" || webrtc["ice"]["state"] == "ready";
        let connected = connected && webrtc["dtls"]["dtls-state"] == "connected";
        Self {
            session,
            handle,
            address: token_address(token).map(str::to_owned),
            role: info["plugin_specific"]["type"].as_str().map(str::to_owned),
            connected,
            sending_streams: media.iter().filter(|m| m["direction"]["send"] == true).count() as u64,
            packets_in: sum("in"),
            packets_out: sum("out"),
        }
    }
}

/// The media counters of one server at one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaCounters {
    /// The server's process, so that counters of a new one are not compared with an old one's.
    pub pid: u32,
    pub sessions: u64,
    pub handles: u64,
    /// Connected handles the server forwards media to (subscriptions with at least one stream).
    pub receiving: u64,
    /// Connected handles that publish.
    pub publishing: u64,
    pub packets_in: u64,
    pub packets_out: u64,
}

impl MediaCounters {
    pub fn of(pid: u32, handles: &[HandleInfo]) -> Self {
        let mut sessions: Vec<u64> = handles.iter().map(|h| h.session).collect();
        sessions.sort_unstable();
        sessions.dedup();
        let receiving = handles.iter().filter(|h| h.connected && h.sending_streams > 0);
        let publishing = handles.iter().filter(|h| h.connected && h.role.as_deref() == Some("publisher"));
        Self {
            pid,
            sessions: sessions.len() as u64,
            handles: handles.len() as u64,
            receiving: receiving.clone().count() as u64,
            publishing: publishing.count() as u64,
            packets_in: handles.iter().map(|h| h.packets_in).sum(),
            packets_out: receiving.map(|h| h.packets_out).sum(),
        }
    }
}

/// What a probe of a server found, given its counters at the previous probe: up when it answered and,
/// while it has participants it forwards media to at both probes, its packets to them moved. The
/// detail, stored with the probe, says what was measured.
pub fn judge(previous: Option<&MediaCounters>, now: &MediaCounters) -> (bool, String) {
    let comparable = previous.filter(|p| p.pid == now.pid && p.receiving > 0 && now.receiving > 0);
    let (ok, verdict) = match comparable {
        Some(p) if now.packets_out > p.packets_out => {
            (true, format!("forwarding: +{} packets", now.packets_out - p.packets_out))
        }
        Some(_) => (false, "not forwarding: no packet sent to its participants since the last probe".to_owned()),
        None if now.receiving > 0 => (true, "forwarding: first measurement".to_owned()),
        None => (true, "answering: no participant receives media".to_owned()),
    };
    let detail = format!(
        "janus pid {}: {verdict}; {} sessions, {} handles, {} publishing, {} receiving, {} packets in, {} out",
        now.pid, now.sessions, now.handles, now.publishing, now.receiving, now.packets_in, now.packets_out
    );
    (ok, detail)
}

/// Where Debian's `janus` package installs its plugins and transports on this machine's architecture.
pub fn library_dir() -> PathBuf {
    let multiarch = Path::new("/usr/lib").join(format!("{}-linux-gnu", std::env::consts::ARCH)).join("janus");
    if multiarch.exists() { multiarch } else { Path::new("/usr/lib/janus").to_path_buf() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> JanusPlan {
        JanusPlan {
            agreement: 7,
            dir: PathBuf::from("/data/rooms/7"),
            library_dir: library_dir(),
            ws: "127.0.0.1:18188".parse().unwrap(),
            admin: "127.0.0.1:17188".parse().unwrap(),
            rtp_first_port: 20_100,
            ice_interface: Some("v0".into()),
            bitrate_bps: 500_000,
            secrets: JanusSecrets {
                admin: "a".into(),
                room: "r".into(),
                plugin_admin_key: "k".into(),
                token: "t".into(),
            },
        }
    }

    #[test]
    fn the_core_loads_only_its_folders_and_checks_signed_tokens() {
        let text = plan().core_config();
        for line in [
            "plugins_folder = \"/data/rooms/7/plugins\"",
            "transports_folder = \"/data/rooms/7/transports\"",
            "events_folder = \"/data/rooms/7/none\"",
            "admin_secret = \"a\"",
            "token_auth = true",
            "token_auth_secret = \"t\"",
            "rtp_port_range = \"20100-20199\"",
            "interface = \"v0\"",
            "ice_enforce_list = \"v0\"",
            "session_timeout = 20",
            "ipv6 = false",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        let no_interface = JanusPlan { ice_interface: None, ..plan() }.core_config();
        assert!(!no_interface.contains("interface") && !no_interface.contains("ice_enforce_list"));
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn the_transport_and_the_room_are_locked_down() {
        let ws = plan().websockets_config();
        assert!(ws.contains("ws_port = 18188") && ws.contains("ws_ip = \"127.0.0.1\""), "{ws}");
        assert!(ws.contains("admin_ws_port = 17188") && ws.contains("admin_ws_ip = \"127.0.0.1\""), "{ws}");
        assert!(ws.contains("wss = false") && ws.contains("admin_wss = false"));
        let room = plan().videoroom_config();
        for line in [
            "admin_key = \"k\"",
            "lock_rtp_forward = true",
            "room-1: {",
            "secret = \"r\"",
            "bitrate = 500000",
            "bitrate_cap = true",
            "description = \"conference-7\"",
        ] {
            assert!(room.contains(line), "{line} missing from:\n{room}");
        }
    }

    #[test]
    fn a_token_is_janus_signed_format_for_the_room_and_the_address() {
        // Janus's own check: HMAC-SHA1 of the part before ':' under the secret, standard base64.
        let token = signed_token("secret", 1_700_000_000, "0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
        let (data, signature) = token.split_once(':').unwrap();
        assert_eq!(data, "1700000000,janus,janus.plugin.videoroom,0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"secret").unwrap();
        mac.update(data.as_bytes());
        assert_eq!(
            base64::engine::general_purpose::STANDARD.decode(signature).unwrap(),
            mac.finalize().into_bytes().to_vec()
        );
        assert_eq!(token_address(&token), Some("0x70997970c51812dc3a010c7d01b50e0d17dc79c8"));
        assert_eq!(token_address("1,janus,janus.plugin.videoroom:x"), None);
        // Each conference its own secret, the same for every replica.
        assert_eq!(token_secret(b"join", 7), token_secret(b"join", 7));
        assert_ne!(token_secret(b"join", 7), token_secret(b"join", 8));
        assert_ne!(token_secret(b"join", 7), token_secret(b"other", 7));
    }

    fn handle(session: u64, role: &str, connected: bool, sending: u64, out: u64) -> HandleInfo {
        HandleInfo {
            session,
            handle: session * 10 + sending,
            address: None,
            role: Some(role.into()),
            connected,
            sending_streams: sending,
            packets_in: 5,
            packets_out: out,
        }
    }

    #[test]
    fn a_probe_is_up_while_packets_to_the_participants_move() {
        let idle = MediaCounters::of(9, &[]);
        let (ok, detail) = judge(None, &idle);
        assert!(ok && detail.contains("no participant receives media"), "{detail}");

        let first = MediaCounters::of(9, &[handle(1, "publisher", true, 0, 0), handle(1, "subscriber", true, 2, 100)]);
        assert_eq!(
            (first.sessions, first.handles, first.receiving, first.publishing, first.packets_out),
            (1, 2, 1, 1, 100)
        );
        assert!(judge(Some(&idle), &first).0, "the first measurement with receivers has nothing to compare with");
        let moved = MediaCounters { packets_out: 180, ..first };
        let (ok, detail) = judge(Some(&first), &moved);
        assert!(ok && detail.contains("+80 packets"), "{detail}");
        let (ok, detail) = judge(Some(&moved), &moved);
        assert!(!ok && detail.contains("not forwarding"), "{detail}");
        // Another process (a restarted server): its counters start again, nothing to compare.
        let restarted = MediaCounters { pid: 10, packets_out: 3, ..first };
        assert!(judge(Some(&moved), &restarted).0);
        // Handles not connected forward nothing and are not counted as receiving.
        let unconnected = MediaCounters::of(9, &[handle(1, "subscriber", false, 2, 0)]);
        assert_eq!(unconnected.receiving, 0);
    }

    #[test]
    fn reads_the_admin_apis_handle_info() {
        let info = json!({
            "token": "1,janus,janus.plugin.videoroom,0x70997970c51812dc3a010c7d01b50e0d17dc79c8:sig",
            "plugin_specific": { "type": "subscriber" },
            "webrtc": {
                "ice": { "state": "connected" },
                "dtls": { "dtls-state": "connected" },
                "media": {
                    "0": { "direction": { "send": true, "recv": false }, "stats": { "in": { "packets": 1 }, "out": { "packets": 40 } } },
                    "1": { "direction": { "send": true, "recv": false }, "stats": { "in": { "packets": 2 }, "out": { "packets": 60 } } },
                },
            },
        });
        let handle = HandleInfo::from_admin(3, 4, &info);
        assert_eq!(handle.address.as_deref(), Some("0x70997970c51812dc3a010c7d01b50e0d17dc79c8"));
        assert_eq!((handle.role.as_deref(), handle.connected, handle.sending_streams), (Some("subscriber"), true, 2));
        assert_eq!((handle.packets_in, handle.packets_out), (3, 100));
    }
}
