//! The local platform, by process: the client side (`client`, `lifecycle`) that the TUI and the
//! commands use; the daemon side (`daemon/`: the server, registry and records, import jobs,
//! services and their telemetry) that `hugflake serve` runs; and the `instance`, the child
//! process that serves one model.
//!
//! Files in the data dir (mode 0700: only its owner can open anything in it):
//! - `daemon.lock`: held (an OS file lock) for the daemon's whole life; a stale file after `kill -9`
//!   holds no lock, so it never blocks a restart.
//! - `daemon.sock`: the control API, a Unix socket (mode 0600). No TCP port: a process that grabs a
//!   port on 127.0.0.1 can never receive the admin token, a service token or clinical text.
//! - `daemon.json`: pid, socket, version and start time of the running daemon.
//! - `token`: the bearer token of this run (mode 0600), new at every start.
//! - `registry.sqlite`: the registry.

// The client side: what the TUI and the commands use.
pub mod client;
pub mod lifecycle;
// The daemon side (`hugflake serve`): server, registry, jobs, services, telemetry.
pub mod daemon;
// A service instance: the child process the daemon runs per instance.
pub mod instance;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use client::LocalPlatform;

/// The daemon's HTTP API version; bumped on incompatible changes.
pub const API_VERSION: u32 = 1;

/// What `daemon.json` and `GET /v1/health` say about a running daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: u32,
    pub socket: PathBuf,
    pub version: String,
    pub api: u32,
    pub started_at: DateTime<Utc>,
    pub data_dir: PathBuf,
    /// The Hub the daemon downloads from, and as whom (a fingerprint, never the token).
    #[serde(default)]
    pub hub: Option<crate::hub::settings::HubIdentity>,
}

/// The error body every failed API call answers with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// Paths of the daemon's files in a data dir.
#[derive(Debug, Clone)]
pub struct DaemonFiles {
    pub dir: PathBuf,
}

impl DaemonFiles {
    pub fn new(dir: &Path) -> DaemonFiles {
        DaemonFiles {
            dir: dir.to_path_buf(),
        }
    }
    pub fn lock(&self) -> PathBuf {
        self.dir.join("daemon.lock")
    }
    pub fn info(&self) -> PathBuf {
        self.dir.join("daemon.json")
    }
    pub fn token(&self) -> PathBuf {
        self.dir.join("token")
    }
    pub fn registry(&self) -> PathBuf {
        self.dir.join("registry.sqlite")
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("daemon.sock")
    }

    /// Refuses a data dir another user owns or that group or others can open: the control socket
    /// and the token in it must be reachable by their owner only.
    pub fn check_private(&self) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(&self.dir)
            .map_err(|e| format!("cannot read {}: {e}", self.dir.display()))?;
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(format!(
                "{} belongs to uid {}, not to you (uid {me}): refusing to talk to a daemon there",
                self.dir.display(),
                meta.uid()
            ));
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} is mode {mode:o}: group or others could reach the daemon's socket and token; \
                 refusing to use it (`chmod 700 {}` fixes it)",
                self.dir.display(),
                self.dir.display()
            ));
        }
        Ok(())
    }

    /// Creates the data dir, readable by its owner only.
    /// Creates the data dir (owner only) if needed and checks that files can be written in it.
    pub fn ensure_dir(&self) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        // An existing private dir is left alone: changing its mode would fail on a read-only
        // file system for no reason.
        if fs::metadata(&self.dir)?.permissions().mode() & 0o777 != 0o700 {
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))?;
        }
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.lock())
            .map(drop)
    }

    /// What is wrong with the data dir, for a person: a read-only file system is named as such
    /// (not "cannot create" a directory that exists).
    pub fn dir_problem(&self, e: &std::io::Error) -> String {
        if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem {
            format!(
                "{} is on a read-only file system: the local platform needs a writable data directory \
                 (set HUGFLAKE_DATA_DIR or XDG_DATA_HOME to one)",
                self.dir.display()
            )
        } else if self.dir.is_dir() {
            format!("cannot write in {}: {e}", self.dir.display())
        } else {
            format!("cannot create {}: {e}", self.dir.display())
        }
    }

    pub fn read_info(&self) -> Option<DaemonInfo> {
        let text = fs::read_to_string(self.info()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// True while some process holds the daemon lock.
    pub fn lock_held(&self) -> bool {
        let Ok(file) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.lock())
        else {
            return false;
        };
        matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock))
    }
}

/// Writes a file readable and writable by its owner only, replacing it atomically.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

/// True when a request declares (`Content-Length`) a body over `max` bytes: refused before a byte of
/// it is read (a body extractor would wait for all of it).
pub fn declared_over(headers: &axum::http::HeaderMap, max: usize) -> bool {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > max as u64)
}

/// The token a request presents: `Authorization: Bearer <t>` or Snowflake's
/// `Authorization: Snowflake Token="<t>"`.
pub fn presented_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    crate::http::presented_token(
        headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?,
    )
}

/// An error answer of the daemon's service endpoints and of an instance, in the shape both send:
/// `{"error": {"message": ...}}` with its status.
pub fn error(
    status: axum::http::StatusCode,
    message: impl Into<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        status,
        axum::Json(serde_json::json!({ "error": { "message": message.into() } })),
    )
        .into_response()
}

#[cfg(test)]
mod dir_tests {
    use super::*;

    #[test]
    fn a_read_only_file_system_is_named_not_a_failed_create() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let files = DaemonFiles::new(tmp.path());
        let ro = std::io::Error::from(std::io::ErrorKind::ReadOnlyFilesystem);
        let said = files.dir_problem(&ro);
        assert!(said.contains("is on a read-only file system"), "{said}");
        assert!(!said.contains("cannot create"), "{said}");
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(files.dir_problem(&denied).starts_with("cannot write in "));
        let missing = DaemonFiles::new(&tmp.path().join("nope"));
        assert!(missing.dir_problem(&denied).starts_with("cannot create "));
        // An existing private dir is accepted as it is, and checked for writing.
        assert!(files.ensure_dir().is_ok());
        assert!(files.lock().exists());
    }
}
