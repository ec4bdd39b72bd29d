//! Finding the local daemon, starting it in the background when none runs, and stopping it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{DaemonFiles, DaemonInfo, LocalPlatform};
use crate::platform::PlatformError;
use crate::secret::Secret;

/// How the client found its daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    /// One was already running.
    Existing(DaemonInfo),
    /// This call started it in the background.
    Started(DaemonInfo),
}

impl Connection {
    pub fn info(&self) -> &DaemonInfo {
        match self {
            Connection::Existing(i) | Connection::Started(i) => i,
        }
    }
}

/// What starting a daemon needs.
#[derive(Debug, Clone)]
pub struct StartOptions {
    pub data_dir: PathBuf,
    /// The executable to run as `<exe> serve`; the current one by default.
    pub exe: Option<PathBuf>,
    /// A `--config` to pass on (environment variables are inherited anyway).
    pub config_flag: Option<PathBuf>,
    pub timeout: Duration,
    /// The daemon's log: when it exits at start, its last error is quoted from there.
    pub log_file: Option<PathBuf>,
}

fn unreachable(detail: impl Into<String>) -> PlatformError {
    PlatformError::Unreachable {
        what: "the local daemon".into(),
        detail: detail.into(),
    }
}

/// Connects to the daemon whose files are in `dir`, checking that it answers with our version.
///
/// Before anything is sent: the data dir must be the user's own and closed to group and others,
/// and a daemon must hold its lock. The token then goes only to `daemon.sock` in that dir, a path
/// nobody else can create or replace.
pub async fn connect(dir: &Path) -> Result<(LocalPlatform, DaemonInfo), PlatformError> {
    let files = DaemonFiles::new(dir);
    files.check_private().map_err(|detail| {
        if files.dir.exists() {
            // A data dir others can open is refused before any daemon is asked: no credential
            // was refused, the directory's mode or owner is the problem.
            PlatformError::Other(detail)
        } else {
            unreachable(format!("no data dir {}", dir.display()))
        }
    })?;
    if !files.lock_held() {
        return Err(unreachable(format!(
            "no daemon holds {}",
            files.lock().display()
        )));
    }
    let token = std::fs::read_to_string(files.token())
        .map_err(|e| unreachable(format!("cannot read {}: {e}", files.token().display())))?;
    let client = LocalPlatform::new(&files.socket(), Secret::new(token.trim()))?;
    let live = client.info().await?;
    if live.version != crate::VERSION {
        return Err(PlatformError::VersionMismatch {
            daemon: live.version,
            client: crate::VERSION.into(),
        });
    }
    Ok((client, live))
}

/// Connects to the running daemon, or starts one in the background and waits for it to answer.
pub async fn connect_or_start(
    opts: &StartOptions,
) -> Result<(LocalPlatform, Connection), PlatformError> {
    let files = DaemonFiles::new(&opts.data_dir);
    match connect(&opts.data_dir).await {
        Ok((client, info)) => return Ok((client, Connection::Existing(info))),
        Err(e @ PlatformError::VersionMismatch { .. }) => return Err(e),
        Err(e @ PlatformError::Unauthorized { .. }) => return Err(e),
        Err(e) => tracing::debug!(error = %e, "no daemon answered"),
    }
    if files.lock_held() {
        // Starting, or hung: give it the start timeout to answer.
        return wait_for(&opts.data_dir, opts.timeout, None)
            .await
            .map(|(c, i)| (c, Connection::Existing(i)));
    }

    files
        .ensure_dir()
        .map_err(|e| unreachable(files.dir_problem(&e)))?;
    let exe = match &opts.exe {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| unreachable(format!("cannot find the hugflake executable: {e}")))?,
    };
    let mut cmd = Command::new(&exe);
    if let Some(cfg) = &opts.config_flag {
        cmd.arg("--config").arg(cfg);
    }
    cmd.arg("serve")
        .env("HUGFLAKE_DATA_DIR", &opts.data_dir)
        // A background daemon never inherits the caller's terminal or pipes.
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: Ctrl-C in the caller's terminal does not reach it.
        cmd.process_group(0);
    }
    let child = cmd
        .spawn()
        .map_err(|e| unreachable(format!("cannot start `{} serve`: {e}", exe.display())))?;
    tracing::info!(pid = child.id(), "started daemon");
    wait_for(&opts.data_dir, opts.timeout, Some(child))
        .await
        .map_err(|e| match (&e, &opts.log_file) {
            (PlatformError::Unreachable { what, detail }, Some(log))
                if detail.starts_with("the daemon exited at start") =>
            {
                PlatformError::Unreachable {
                    what: what.clone(),
                    detail: match last_error(log) {
                        Some(cause) => format!("{detail}; it said: {cause}"),
                        None => detail.clone(),
                    },
                }
            }
            _ => e,
        })
        .map(|(c, i)| (c, Connection::Started(i)))
}

async fn wait_for(
    dir: &Path,
    timeout: Duration,
    mut child: Option<std::process::Child>,
) -> Result<(LocalPlatform, DaemonInfo), PlatformError> {
    let start = Instant::now();
    let mut last = String::from("no answer yet");
    while start.elapsed() < timeout {
        match connect(dir).await {
            Ok(found) => {
                // Reap the child later without blocking: it lives on as the daemon.
                if let Some(c) = child {
                    std::thread::spawn(move || {
                        let mut c = c;
                        let _ = c.wait();
                    });
                }
                return Ok(found);
            }
            Err(e @ PlatformError::VersionMismatch { .. }) => return Err(e),
            Err(e) => last = e.to_string(),
        }
        if let Some(c) = child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            return Err(unreachable(format!(
                "the daemon exited at start ({status}); its log says why: `hugflake doctor` shows where it is"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(unreachable(format!(
        "it did not answer within {}s ({last})",
        timeout.as_secs()
    )))
}

/// The last ERROR line of a log, without its timestamp and level.
fn last_error(log: &Path) -> Option<String> {
    let text = crate::paths::read_user_text(log, 64 * 1024 * 1024).ok()?;
    let line = text.lines().rev().find(|l| l.contains(" ERROR "))?;
    let rest = line.split_once(" ERROR ").map_or(line, |(_, r)| r);
    Some(rest.trim().chars().take(500).collect())
}

/// What `hugflake serve --stop` did.
#[derive(Debug, Clone, PartialEq)]
pub enum StopOutcome {
    Stopped { pid: u32 },
    NotRunning,
}

/// Stops the daemon of a data dir: a shutdown request, then SIGTERM if it does not answer, and waits
/// for its lock to be released.
pub async fn stop(dir: &Path, timeout: Duration) -> Result<StopOutcome, PlatformError> {
    let files = DaemonFiles::new(dir);
    if !files.lock_held() {
        return Ok(StopOutcome::NotRunning);
    }
    let info = files.read_info();
    let asked = match connect(dir).await {
        Ok((client, _)) => client.shutdown().await.is_ok(),
        // An older or newer daemon still understands the shutdown route.
        Err(PlatformError::VersionMismatch { .. }) => {
            match std::fs::read_to_string(files.token())
                .ok()
                .and_then(|t| LocalPlatform::new(&files.socket(), Secret::new(t.trim())).ok())
            {
                Some(client) => client.shutdown().await.is_ok(),
                None => false,
            }
        }
        Err(_) => false,
    };
    if !asked && let Some(i) = &info {
        tracing::warn!(pid = i.pid, "daemon did not answer; sending SIGTERM");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(i.pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let start = Instant::now();
    while start.elapsed() < timeout {
        if !files.lock_held() {
            return Ok(StopOutcome::Stopped {
                pid: info.map(|i| i.pid).unwrap_or(0),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(unreachable(format!(
        "it still holds {} after {}s{}",
        files.lock().display(),
        timeout.as_secs(),
        info.map(|i| format!(": kill it with `kill {}`", i.pid))
            .unwrap_or_default()
    )))
}
