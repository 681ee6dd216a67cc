//! The local orchestrator: one Janus WebRTC Server process (Debian's `janus`, see [`super::janus`]) per
//! conference, configured by the backend in `<rooms>/<agreement>/` and logging to
//! `<rooms>/<agreement>.log`.
//!
//! Two servers never run for one conference: the server holds an exclusive lock on
//! `<rooms>/<agreement>.lock` for its whole life (the backend takes the lock, and the server inherits
//! the locked file when it starts, so the lock dies with the server, however it dies). A server is
//! started only by whoever took the lock. Servers run in their own process group, so they outlive a
//! crash of the backend, which adopts them again on restart; their processes are found by their
//! command line (`janus -F <rooms>/<agreement> -C <rooms>/<agreement>/janus.jcfg`), so a server whose
//! folder is gone is found and removed too (`list`, used by the orphan collector at start and
//! periodically).
//!
//! A server starts with an empty environment: it never sees the operator's key or any other secret of
//! the backend's.
//!
//! The probe ([`LocalOrchestrator::probe`]) asks the server's Admin API for every handle with its media
//! counters, and counts the conference available when the API answers and, while participants receive
//! media, the packets the server sends them moved since the last probe ([`janus::judge`]). A server
//! whose process is gone is lost at once; one whose Admin API does not answer
//! [`LOST_AFTER_FAILURES`] probes in a row is lost too (the reconciler then replaces it).

use std::{
    collections::{BTreeSet, HashMap},
    fs::{self, File},
    os::unix::{fs::OpenOptionsExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::Stdio,
    sync::Mutex,
    time::{Duration, Instant},
};

use nix::{sys::signal, unistd::Pid};
use serde_json::json;
use tracing::{info, warn};

use super::janus::{self, Admin, JanusPlan, JanusSecrets, MediaCounters, ServerInfo};
use crate::{
    Error, Result,
    config::ServiceArgs,
    domain::{
        availability::ProbeOutcome,
        conference::{Conference, Deployed, Roster},
        placement::{self, NoFit},
    },
};

/// What the local orchestrator is configured with.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// The conferences' folder (`<data-dir>/rooms`).
    pub dir: PathBuf,
    /// The Janus binary (`/usr/bin/janus` from Debian's package).
    pub janus_bin: PathBuf,
    /// The interface (name or address) the servers gather ICE candidates on and name in their SDP;
    /// None lets Janus choose among the machine's interfaces.
    pub ice_interface: Option<String>,
    /// The one region conferences run in (a bit number of the contract's region masks).
    pub region: u8,
}

impl LocalSettings {
    /// From the service's settings: the conferences' folder is `<data-dir>/rooms`.
    pub fn from_args(service: &ServiceArgs) -> Self {
        Self {
            dir: service.data_dir.join("rooms"),
            janus_bin: service.janus.janus_bin.clone(),
            ice_interface: service.janus.janus_ice_interface.clone(),
            region: service.region,
        }
    }
}

pub struct LocalOrchestrator {
    dir: PathBuf,
    janus_bin: PathBuf,
    library_dir: PathBuf,
    ice_interface: Option<String>,
    region: u8,
    join_secret: Vec<u8>,
    /// Per agreement: the counters of the last probe and the failures in a row since an answer.
    probes: Mutex<HashMap<u64, ProbeMemory>>,
}

#[derive(Default)]
struct ProbeMemory {
    last: Option<MediaCounters>,
    failures: u32,
    /// The room's bitrate cap as last set by the backend, if known in this process.
    bitrate_bps: Option<u64>,
}

const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Janus takes over a second to exit on SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Probes in a row without an answer from a live server's Admin API before it counts as lost.
pub const LOST_AFTER_FAILURES: u32 = 3;

/// The file in the conferences' folder that holds the secret the join tokens' per-conference secrets
/// are derived from ([`janus::token_secret`]).
pub const JOIN_SECRET_FILE: &str = "join-secret";

/// The secret join tokens are derived from, from `<rooms>/join-secret`: made once (32 random bytes,
/// hex, mode 0600) by whoever comes first and read by every replica. It is written aside and linked
/// into place, so that no one ever reads a half-written secret.
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
    std::io::Write::write_all(&mut file, alloy::hex::encode(rand::random::<[u8; 32]>()).as_bytes())?;
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

impl LocalOrchestrator {
    pub fn new(settings: LocalSettings) -> Result<Self> {
        fs::create_dir_all(&settings.dir)?;
        // Absolute, so that the servers' command lines name it exactly as `list` looks for it.
        let dir = fs::canonicalize(&settings.dir)?;
        let join_secret = join_secret(&dir)?;
        Ok(Self {
            dir,
            janus_bin: settings.janus_bin,
            library_dir: janus::library_dir(),
            ice_interface: settings.ice_interface,
            region: settings.region,
            join_secret,
            probes: Mutex::default(),
        })
    }

    /// Conferences run in one region, as many as the machine's media port ranges allow; GDPR is not
    /// checked (the local orchestrator is for development and tests).
    pub fn fit(&self, conference: &Conference) -> Result<(), NoFit> {
        if !placement::region_allowed(conference.allowed_regions, self.region) {
            return Err(NoFit::Excluded);
        }
        if self.free_rtp_port(conference.agreement).is_none() { Err(NoFit::Full) } else { Ok(()) }
    }

    /// The URL the page opens the server's WebSocket API at.
    pub fn join_url(info: &ServerInfo) -> String {
        format!("ws://127.0.0.1:{}/", info.ws_port)
    }

    fn conference_dir(&self, agreement: u64) -> PathBuf {
        self.dir.join(agreement.to_string())
    }

    fn lock_path(&self, agreement: u64) -> PathBuf {
        self.dir.join(format!("{agreement}.lock"))
    }

    fn info_path(&self, agreement: u64) -> PathBuf {
        self.conference_dir(agreement).join("janus.json")
    }

    /// The server's state as the backend wrote it before starting it.
    pub fn read_info(&self, agreement: u64) -> Option<ServerInfo> {
        let bytes = fs::read(self.info_path(agreement)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The agreement's server, if one runs and its Admin API answers.
    pub async fn find(&self, agreement: u64) -> Result<Option<ServerInfo>> {
        let Some(info) = self.read_info(agreement) else { return Ok(None) };
        if info.agreement_id != agreement || !self.lock_held(agreement)? {
            return Ok(None);
        }
        let answers = match Admin::connect(info.admin_port, &info.admin_secret).await {
            Ok(mut admin) => admin.request("ping", json!({})).await.is_ok(),
            Err(_) => false,
        };
        Ok(answers.then_some(info))
    }

    pub async fn deploy(&self, conference: &Conference) -> Result<Deployed> {
        let (agreement, region) = (conference.agreement, self.region);
        let started = Instant::now();
        loop {
            if let Some(info) = self.find(agreement).await? {
                return Ok(Deployed { join_url: Self::join_url(&info), fresh: false, region });
            }
            let lock = File::options().create(true).truncate(false).write(true).open(self.lock_path(agreement))?;
            match lock.try_lock() {
                Ok(()) => break self.start(conference, lock).await,
                Err(fs::TryLockError::WouldBlock) => {
                    // A server holds the lock and does not answer: starting, or hung. Given time to
                    // answer, then replaced.
                    if started.elapsed() > START_TIMEOUT {
                        warn!(agreement, "the conference's server holds its lock but does not answer: replacing it");
                        self.stop(agreement).await?;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(fs::TryLockError::Error(err)) => return Err(err.into()),
            }
        }
    }

    /// Starts a server for the conference, holding its `lock` (which the server inherits).
    async fn start(&self, conference: &Conference, lock: File) -> Result<Deployed> {
        let agreement = conference.agreement;
        // No server holds the lock; a process still named after this conference would be a stray one.
        self.kill_strays(agreement).await;
        let rtp_first_port = self
            .free_rtp_port(agreement)
            .ok_or_else(|| Error::NoPlacement("every media port range of this machine is taken".into()))?;
        let plan = JanusPlan {
            agreement,
            dir: self.conference_dir(agreement),
            library_dir: self.library_dir.clone(),
            ws: format!("127.0.0.1:{}", free_loopback_port()?).parse().expect("a socket address"),
            admin: format!("127.0.0.1:{}", free_loopback_port()?).parse().expect("a socket address"),
            rtp_first_port,
            ice_interface: self.ice_interface.clone(),
            bitrate_bps: conference.stream_kbps * 1_000,
            secrets: JanusSecrets::new(&self.join_secret, agreement),
        };
        plan.write()?;
        let info = ServerInfo {
            agreement_id: agreement,
            ws_port: plan.ws.port(),
            admin_port: plan.admin.port(),
            rtp_first_port,
            admin_secret: plan.secrets.admin.clone(),
            room_secret: plan.secrets.room.clone(),
            bitrate_bps: plan.bitrate_bps,
        };
        let info_bytes = serde_json::to_vec(&info).map_err(|e| Error::orchestrator("writing the server's state", e))?;
        let tmp = self.info_path(agreement).with_extension("json.tmp");
        let _ = fs::remove_file(&tmp);
        File::options().write(true).create_new(true).mode(0o600).open(&tmp)?.write_all_synced(&info_bytes)?;
        fs::rename(&tmp, self.info_path(agreement))?;

        let log = File::options().create(true).append(true).open(self.dir.join(format!("{agreement}.log")))?;
        let mut command = tokio::process::Command::new(&self.janus_bin);
        command
            .arg("-F")
            .arg(&plan.dir)
            .arg("-C")
            .arg(plan.config_file())
            // Nothing of the backend's environment (the operator's key, the Jitsi secret): Janus needs none.
            .env_clear()
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(false);
        // Its own process group: a Ctrl-C or a crash of the backend does not take the conference down.
        command.as_std_mut().process_group(0);
        let lock_fd = std::os::fd::AsRawFd::as_raw_fd(&lock);
        // SAFETY: between fork and exec only fcntl, which is async-signal-safe, runs: it lets the server
        // inherit the locked file (opened close-on-exec), so that the lock lives exactly as long as it.
        unsafe {
            command.as_std_mut().pre_exec(move || {
                if nix::libc::fcntl(lock_fd, nix::libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| {
            Error::orchestrator(
                format!("starting {} (install Debian's janus: make janus)", self.janus_bin.display()),
                e,
            )
        })?;
        // The server holds the lock now; the backend's copy goes.
        drop(lock);
        let started = Instant::now();
        loop {
            if self.find(agreement).await?.is_some() {
                info!(agreement, pid = child.id(), ws_port = info.ws_port, rtp_first_port, "conference server started");
                self.forget(agreement);
                // Reaped by tokio when it exits; the lock, not the handle, tells whether it runs.
                drop(child);
                return Ok(Deployed { join_url: Self::join_url(&info), fresh: true, region: self.region });
            }
            if let Some(status) = child.try_wait()? {
                return Err(Error::Orchestrator(
                    format!("the Janus server for agreement {agreement} exited at start ({status}): see its log")
                        .into(),
                ));
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.start_kill();
                return Err(Error::Orchestrator(
                    format!("the Janus server for agreement {agreement} did not answer in time").into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn remove(&self, agreement: u64) -> Result<()> {
        self.stop(agreement).await?;
        match fs::remove_dir_all(self.conference_dir(agreement)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err.into()),
            _ => {}
        }
        self.forget(agreement);
        info!(agreement, "conference server removed");
        Ok(())
    }

    /// Agreements with a conference folder or a server process.
    pub fn list(&self) -> Result<Vec<u64>> {
        let mut ids = BTreeSet::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir()
                && let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok())
            {
                ids.insert(id);
            }
        }
        ids.extend(self.server_processes().into_iter().map(|(id, _)| id));
        Ok(ids.into_iter().collect())
    }

    /// Probes the agreement's server (see the module's doc). With a `roster`, it also ends the sessions
    /// of anyone whose token names an address no longer admitted, and sets the room's bitrate cap to
    /// the quality registered now (for the publishers that start from then on: Janus fixes each
    /// publisher's cap when it starts publishing).
    pub async fn probe(&self, agreement: u64, roster: Option<&Roster>) -> Result<ProbeOutcome> {
        let pids = self.pids(agreement);
        if !self.lock_held(agreement)? && pids.is_empty() {
            self.forget(agreement);
            return Ok(ProbeOutcome::lost("its Janus process is not running (it exited or was killed)"));
        }
        let Some(info) = self.read_info(agreement) else {
            return Ok(ProbeOutcome::lost("its Janus server's state is missing"));
        };
        let capped = {
            let memory = self.probes.lock().expect("not poisoned");
            memory.get(&agreement).and_then(|m| m.bitrate_bps).unwrap_or(info.bitrate_bps)
        };
        let measured = async {
            let mut admin = Admin::connect(info.admin_port, &info.admin_secret).await?;
            let handles = admin.handles().await?;
            let (mut evicted, mut bitrate) = (0, None);
            if let Some(roster) = roster {
                let mut sessions: Vec<u64> = handles
                    .iter()
                    .filter(|h| h.address.as_ref().is_none_or(|a| !roster.admitted.contains(a)))
                    .map(|h| h.session)
                    .collect();
                sessions.dedup();
                for session in sessions {
                    if admin.destroy_session(session).await.is_ok() {
                        evicted += 1;
                    }
                }
                let wanted = roster.stream_kbps * 1_000;
                if wanted != capped && admin.set_bitrate(&info.room_secret, wanted).await.is_ok() {
                    info!(agreement, bitrate_bps = wanted, "room bitrate cap set to the registered quality");
                    bitrate = Some(wanted);
                }
            }
            Ok::<_, Error>((handles, evicted, bitrate))
        };
        let outcome = measured.await;
        let mut memory = self.probes.lock().expect("not poisoned");
        let entry = memory.entry(agreement).or_default();
        match outcome {
            Ok((handles, evicted, bitrate)) => {
                if bitrate.is_some() {
                    entry.bitrate_bps = bitrate;
                }
                let counters = MediaCounters::of(pids.first().copied().unwrap_or_default(), &handles);
                let (ok, mut detail) = janus::judge(entry.last.as_ref(), &counters);
                if evicted > 0 {
                    warn!(agreement, evicted, "ended the sessions of participants no longer admitted");
                    detail.push_str(&format!("; ended {evicted} sessions no longer admitted"));
                }
                entry.last = Some(counters);
                entry.failures = 0;
                Ok(if ok { ProbeOutcome::up(detail) } else { ProbeOutcome::down(detail) })
            }
            Err(err) => {
                entry.failures += 1;
                let detail = format!("its Janus Admin API did not answer ({} in a row): {err}", entry.failures);
                Ok(if entry.failures >= LOST_AFTER_FAILURES {
                    ProbeOutcome::lost(detail)
                } else {
                    ProbeOutcome::down(detail)
                })
            }
        }
    }

    fn forget(&self, agreement: u64) {
        self.probes.lock().expect("not poisoned").remove(&agreement);
    }

    /// Whether a live server holds the agreement's lock (the lock dies with its process).
    fn lock_held(&self, agreement: u64) -> Result<bool> {
        let Ok(file) = File::options().write(true).open(self.lock_path(agreement)) else { return Ok(false) };
        match file.try_lock() {
            Ok(()) => Ok(false),
            Err(fs::TryLockError::WouldBlock) => Ok(true),
            Err(fs::TryLockError::Error(err)) => Err(err.into()),
        }
    }

    /// Every Janus process started for a conference of this folder, with its agreement.
    fn server_processes(&self) -> Vec<(u64, u32)> {
        server_processes(&self.dir)
    }

    /// The agreement's server processes (one, or none; more only if something went wrong).
    pub fn pids(&self, agreement: u64) -> Vec<u32> {
        self.server_processes().into_iter().filter(|(id, _)| *id == agreement).map(|(_, pid)| pid).collect()
    }

    /// Processes named after a conference that holds no lock: killed at once.
    async fn kill_strays(&self, agreement: u64) {
        for pid in self.pids(agreement) {
            warn!(agreement, pid, "killing a stray Janus process of the conference");
            let _ = signal::kill(Pid::from_raw(pid as i32), signal::Signal::SIGKILL);
        }
    }

    /// SIGTERM to the agreement's server, then SIGKILL if it has not gone in time.
    async fn stop(&self, agreement: u64) -> Result<()> {
        for (sig, wait) in [(signal::Signal::SIGTERM, STOP_TIMEOUT), (signal::Signal::SIGKILL, STOP_TIMEOUT)] {
            let pids = self.pids(agreement);
            if pids.is_empty() && !self.lock_held(agreement)? {
                return Ok(());
            }
            for pid in pids {
                if let Err(err) = signal::kill(Pid::from_raw(pid as i32), sig) {
                    warn!(agreement, pid, %err, "signalling the conference's server failed; it may be gone already");
                }
            }
            let started = Instant::now();
            while started.elapsed() < wait {
                if self.pids(agreement).is_empty() && !self.lock_held(agreement)? {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        Err(Error::Orchestrator(format!("the conference server of agreement {agreement} would not stop").into()))
    }

    /// The first media port range no other conference's server has, or None when all are taken.
    fn free_rtp_port(&self, agreement: u64) -> Option<u16> {
        let taken: BTreeSet<u16> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
            .filter(|id| *id != agreement)
            .filter_map(|id| self.read_info(id))
            .map(|info| info.rtp_first_port)
            .collect();
        (janus::RTP_PORTS.start..janus::RTP_PORTS.end)
            .step_by(usize::from(janus::RTP_PORTS_PER_SERVER))
            .find(|port| !taken.contains(port) && port + janus::RTP_PORTS_PER_SERVER <= janus::RTP_PORTS.end)
    }
}

/// Every Janus process started for a conference of the folder `dir` (absolute), with its agreement,
/// from /proc: `janus -F <dir>/<agreement> -C <dir>/<agreement>/janus.jcfg`, as `start` runs it.
pub fn server_processes(dir: &Path) -> Vec<(u64, u32)> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else { return found };
    let prefix = format!("{}/", dir.display());
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else { continue };
        let mut args = cmdline.split(|b| *b == 0).map(String::from_utf8_lossy);
        let conference = args.find(|a| a.starts_with(&prefix) && a.ends_with("/janus.jcfg"));
        let id = conference.and_then(|a| a[prefix.len()..].split('/').next().and_then(|id| id.parse().ok()));
        if let Some(id) = id {
            found.push((id, pid));
        }
    }
    found
}

/// A free loopback port below Linux's ephemeral range (32768 and up), for a server this process starts
/// and then tells the number: a conference's Janus (and, in the tests, PostgreSQL, etcd, the backend).
/// The kernel never gives such a port to an outgoing connection or to a listener on port 0, so it stays
/// free between the check and the server's bind, and while a test has the server stopped. The ports
/// are taken in turn from a random place in the range, so that servers this process starts at once
/// never get the same one. Only a port another process picked from this range and has not bound yet
/// may still be handed out (Janus then does not answer, and the deploy is tried again; a test's
/// PostgreSQL starts on another). TCP: the media's UDP ports ([`janus::RTP_PORTS`]) do not collide.
pub fn free_loopback_port() -> Result<u16> {
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 32_768 - FIRST;
    static NEXT: std::sync::LazyLock<std::sync::atomic::AtomicU32> =
        std::sync::LazyLock::new(|| std::sync::atomic::AtomicU32::new(rand::random::<u32>() % COUNT));
    for _ in 0..100 {
        let turn = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = u16::try_from(FIRST + turn % COUNT).expect("below 32768");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(Error::Config("no free loopback port between 20000 and 32767".into()))
}

trait WriteAllSynced {
    fn write_all_synced(self, bytes: &[u8]) -> std::io::Result<()>;
}

impl WriteAllSynced for File {
    fn write_all_synced(mut self, bytes: &[u8]) -> std::io::Result<()> {
        std::io::Write::write_all(&mut self, bytes)?;
        self.sync_all()
    }
}
