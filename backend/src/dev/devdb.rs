//! A private PostgreSQL server for tests and local runs, the way [`crate::dev::devnet`] is a private chain:
//! Debian's `initdb` and `pg_ctl` on a fresh data directory, listening on a loopback port only, trusted
//! local logins, stopped (immediately) and removed on drop. PostgreSQL refuses to run as root, so as
//! root the server runs as the `postgres` system user that Debian's package creates.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use crate::{Error, Result};

pub struct PostgresServer {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

impl PostgresServer {
    /// Initialises a cluster in a fresh directory and starts it on a free port. `name` says whose it is
    /// (its start-up log is in the error if it fails).
    pub fn start(name: &str) -> Result<Self> {
        static SERVERS: AtomicU32 = AtomicU32::new(0);
        let bin = pg_bin_dir()?;
        // Short: the server's socket lives here, and socket paths are limited to about 100 bytes.
        let serial = SERVERS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("conference-pg-{}-{serial}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        if is_root() {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir), "chown")?;
        }
        let mut server = Self { dir, bin, port: 0 };
        let data = server.data_dir();
        server.pg("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])?;
        // The port is free when chosen, but another process may bind it before the server does: then
        // the server starts again on another one.
        let log_path = server.dir.join("server.log");
        let mut tries = 0;
        loop {
            tries += 1;
            server.port = super::free_loopback_port()?;
            let logged_before = std::fs::read_to_string(&log_path).unwrap_or_default().len();
            let Err(err) = server.start_again() else { return Ok(server) };
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let port_taken =
                log.get(logged_before..).is_some_and(|this_try| this_try.contains("Address already in use"));
            if tries == 5 || !port_taken {
                return Err(Error::Config(format!("PostgreSQL server for {name}: {err}\n{log}")));
            }
        }
    }

    /// The URL of the server's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again, after [`Self::stop`]) and waits until it accepts connections.
    pub fn start_again(&self) -> Result<()> {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.display());
        let log = self.dir.join("server.log").display().to_string();
        self.pg("pg_ctl", &["-D", &self.data_dir(), "-o", &options, "-l", &log, "-w", "start"])
    }

    /// Stops the server at once (as a crash would): clients lose their connections.
    pub fn stop(&self) -> Result<()> {
        self.pg("pg_ctl", &["-D", &self.data_dir(), "-m", "immediate", "-w", "stop"])
    }

    fn data_dir(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// Runs one of the server's programs, as the `postgres` user when this process is root.
    fn pg(&self, program: &str, args: &[&str]) -> Result<()> {
        let program = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        run(command.args(args).current_dir(&self.dir), &program.display().to_string())
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Debian's versioned server programs folder, the newest if several are installed.
fn pg_bin_dir() -> Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| missing())?
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort_by_key(|bin| bin.parent().and_then(Path::file_name).and_then(|v| v.to_str()?.parse::<u32>().ok()));
    found.pop().ok_or_else(missing)
}

fn missing() -> Error {
    Error::Config("PostgreSQL's server programs are missing: install Debian's postgresql package (make tools)".into())
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let output = command.output()?;
    if output.status.success() {
        return Ok(());
    }
    Err(Error::Config(format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )))
}
