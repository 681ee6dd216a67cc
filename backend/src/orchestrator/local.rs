//! The local orchestrator: one room process (`conference-backend room`, see [`super::room`]) per
//! agreement, on its own loopback port. Rooms run in their own process group, so they outlive a
//! crash of the backend, which adopts them again on restart through `<rooms>/<agreement>.json`.

use std::{
    fs::{self, File},
    os::unix::process::CommandExt as _,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use nix::{sys::signal, unistd::Pid};
use tracing::{info, warn};

use super::room::{self, RoomInfo};
use crate::{
    Error, Result,
    domain::{
        conference::{Conference, Deployed},
        placement::{self, NoFit},
    },
};

pub struct LocalOrchestrator {
    rooms_dir: PathBuf,
    room_binary: PathBuf,
    /// The one region rooms run in (a bit number of the contract's region masks).
    region: u8,
    http: reqwest::Client,
}

const START_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

impl LocalOrchestrator {
    /// `room_binary` is this service's own binary, run with the `room` subcommand.
    pub fn new(rooms_dir: PathBuf, room_binary: PathBuf, region: u8) -> Result<Self> {
        fs::create_dir_all(&rooms_dir)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| Error::orchestrator("building the rooms' HTTP client", e))?;
        Ok(Self { rooms_dir, room_binary, region, http })
    }

    /// Rooms run in one region, for as many conferences as the machine takes; GDPR is not checked
    /// (the local orchestrator is for development and tests).
    pub fn fit(&self, conference: &Conference) -> Result<(), NoFit> {
        if placement::region_allowed(conference.allowed_regions, self.region) { Ok(()) } else { Err(NoFit::Excluded) }
    }

    pub fn join_url(info: &RoomInfo) -> String {
        format!("http://127.0.0.1:{}/", info.port)
    }

    /// The agreement's room, if one runs and answers for that agreement.
    pub async fn find(&self, agreement: u64) -> Result<Option<RoomInfo>> {
        let Some(info) = self.read_info(agreement) else { return Ok(None) };
        let url = format!("http://127.0.0.1:{}/healthz", info.port);
        let answer = match self.http.get(&url).send().await {
            Ok(response) if response.status().is_success() => response.json::<serde_json::Value>().await.ok(),
            _ => None,
        };
        let answers_for_agreement =
            answer.and_then(|v| v.get("agreementId").and_then(|id| id.as_u64())) == Some(agreement);
        Ok(answers_for_agreement.then_some(info))
    }

    pub async fn deploy(&self, conference: &Conference) -> Result<Deployed> {
        let (agreement, region) = (conference.agreement, self.region);
        if let Some(info) = self.find(agreement).await? {
            return Ok(Deployed { join_url: Self::join_url(&info), fresh: false, region });
        }
        let log = File::options().create(true).append(true).open(self.rooms_dir.join(format!("{agreement}.log")))?;
        let mut command = tokio::process::Command::new(&self.room_binary);
        command
            .args(["room", "--agreement", &agreement.to_string(), "--port", "0", "--rooms-dir"])
            .arg(&self.rooms_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Its own process group: a Ctrl-C or a crash of the backend does not take the room down.
        command.as_std_mut().process_group(0);
        let mut child = command.spawn()?;
        let started = Instant::now();
        loop {
            if let Some(info) = self.find(agreement).await? {
                info!(agreement, port = info.port, pid = info.pid, "room started");
                // A room that found the lock taken exits at once; the one holding it is the one found.
                let fresh = child.try_wait()?.is_none();
                return Ok(Deployed { join_url: Self::join_url(&info), fresh, region });
            }
            if let Some(status) = child.try_wait()?
                && status.code() != Some(room::EXIT_ALREADY_RUNNING)
            {
                return Err(Error::Orchestrator(format!("room for agreement {agreement} exited: {status}").into()));
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.start_kill();
                return Err(Error::Orchestrator(
                    format!("room for agreement {agreement} did not answer in time").into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn remove(&self, agreement: u64) -> Result<()> {
        let info_path = room::info_path(&self.rooms_dir, agreement);
        if let Some(info) = self.read_info(agreement)
            && self.lock_held(agreement)?
        {
            self.stop(agreement, info.pid).await?;
        }
        match fs::remove_file(&info_path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err.into()),
            _ => {}
        }
        info!(agreement, "room removed");
        Ok(())
    }

    /// Agreement ids with a published room.
    pub fn list(&self) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.rooms_dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name.strip_suffix(".json").and_then(|id| id.parse().ok()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    fn read_info(&self, agreement: u64) -> Option<RoomInfo> {
        let bytes = fs::read(room::info_path(&self.rooms_dir, agreement)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Whether a live room holds the agreement's lock (the lock dies with its process).
    fn lock_held(&self, agreement: u64) -> Result<bool> {
        let path = room::lock_path(&self.rooms_dir, agreement);
        let Ok(file) = File::options().write(true).open(&path) else { return Ok(false) };
        match file.try_lock() {
            Ok(()) => Ok(false),
            Err(fs::TryLockError::WouldBlock) => Ok(true),
            Err(fs::TryLockError::Error(err)) => Err(err.into()),
        }
    }

    /// SIGTERM, then SIGKILL if the room has not let go of its lock in time.
    async fn stop(&self, agreement: u64, pid: u32) -> Result<()> {
        let pid = Pid::from_raw(pid as i32);
        for (sig, wait) in [(signal::Signal::SIGTERM, STOP_TIMEOUT), (signal::Signal::SIGKILL, STOP_TIMEOUT)] {
            if let Err(err) = signal::kill(pid, sig) {
                warn!(agreement, %err, "signalling the room failed; it may be gone already");
            }
            let started = Instant::now();
            while started.elapsed() < wait {
                if !self.lock_held(agreement)? {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        Err(Error::Orchestrator(format!("room for agreement {agreement} (pid {pid}) would not stop").into()))
    }
}
