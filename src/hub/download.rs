//! The download engine: a repo revision into the shared Hugging Face cache, in the layout Python's
//! `huggingface_hub` reads (`models--org--name/{blobs,refs,snapshots}`).
//!
//! Unlike hf-hub 1.0 it checks every status, resumes interrupted files with `Range`, verifies each
//! file (size, and sha256 for LFS files or the git blob sha1 for the others) before it enters a
//! snapshot, retries throttling, server errors and dropped connections with back-off and jitter,
//! lets one writer per blob work while others wait, and never leaves a half file in `snapshots/`.
//! Blob names and sizes come from the tree listing, so no file is HEADed.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE, RETRY_AFTER};
use serde::Serialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::api::{HubApiError, HubClient, TreeEntry};

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Api(#[from] HubApiError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: the Hub sent content whose {what} is {got}, expected {expected}; it was discarded"
    )]
    Corrupt {
        path: String,
        what: &'static str,
        expected: String,
        got: String,
    },
    #[error("{path}: gave up after {attempts} attempts: {last}")]
    GaveUp {
        path: String,
        attempts: u32,
        last: String,
    },
    #[error("the repo lists an unsafe file path {0:?}; nothing was written for it")]
    UnsafePath(String),
    #[error("the Hub did not say which commit {repo}@{revision} is")]
    NoCommit { repo: String, revision: String },
    #[error("download cancelled; finished files are kept and unfinished ones resume next time")]
    Cancelled,
    #[error(
        "the disk holding {cache} is full{}: free space there and retry; what was downloaded is kept and resumes",
        needs.map(|(need, free)| format!(
            " ({} still to download, {} free)",
            crate::domain::units::bytes(need),
            crate::domain::units::bytes(free)
        )).unwrap_or_default()
    )]
    DiskFull {
        cache: PathBuf,
        /// Bytes still to download and bytes free, when known before starting.
        needs: Option<(u64, u64)>,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DownloadError + '_ {
    move |source| {
        if source.kind() == std::io::ErrorKind::StorageFull {
            return DownloadError::DiskFull {
                cache: path.to_path_buf(),
                needs: None,
            };
        }
        DownloadError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Bytes free for an unprivileged user on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Bytes a download still has to write: each file's size, less a finished blob or the part of an
/// unfinished one already on disk.
fn still_to_write(entries: &[TreeEntry], blobs: &Path) -> u64 {
    entries
        .iter()
        .map(|e| {
            let blob = blobs.join(e.blob_id());
            let size = e.content_size();
            if fs::metadata(&blob).is_ok_and(|m| m.len() == size) {
                return 0;
            }
            let partial = PathBuf::from(format!("{}.incomplete", blob.display()));
            size.saturating_sub(fs::metadata(partial).map(|m| m.len()).unwrap_or(0))
        })
        .sum()
}

/// What to download.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadRequest {
    pub repo: String,
    /// A branch, tag or commit; pinned to its commit before anything is fetched.
    pub revision: String,
    /// Only these paths; all files when `None`.
    pub include: Option<Vec<String>>,
}

/// Progress, per file and in total.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    Plan {
        commit: String,
        files: usize,
        total_bytes: u64,
    },
    FileStarted {
        path: String,
        size: u64,
        resumed_from: u64,
    },
    Bytes {
        path: String,
        done: u64,
        size: u64,
    },
    Retrying {
        path: String,
        attempt: u32,
        wait_ms: u64,
        reason: String,
    },
    FileDone {
        path: String,
        size: u64,
        reused: bool,
    },
}

/// One file of a finished download.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileResult {
    pub path: String,
    pub size: u64,
    pub blob: String,
    /// Already in the cache: nothing fetched.
    pub reused: bool,
    /// Bytes received over the network for it (a resume counts only the rest).
    pub fetched_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Downloaded {
    pub repo: String,
    pub commit: String,
    pub snapshot: PathBuf,
    pub files: Vec<FileResult>,
}

impl Downloaded {
    pub fn fetched_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.fetched_bytes).sum()
    }
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Retry policy: exponential back-off from `base` (doubling, capped) with up to 50% jitter.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 6,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(20),
        }
    }
}

impl Retry {
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d.min(Duration::from_secs(120));
        }
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        let mut b = [0u8; 2];
        let jitter = if getrandom::fill(&mut b).is_ok() {
            f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) * 0.5
        } else {
            0.25
        };
        exp.mul_f64(1.0 + jitter)
    }
}

#[derive(Clone)]
pub struct Downloader {
    client: HubClient,
    pub parallel: usize,
    pub retry: Retry,
    progress: Option<UnboundedSender<ProgressEvent>>,
    cancel: CancellationToken,
    /// One writer per blob within this process; others wait on it.
    blob_locks: Arc<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>>,
}

/// A failed attempt: retry it or not.
enum Attempt {
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    Fatal(DownloadError),
}

/// `models--org--name` for a repo id.
pub fn repo_folder(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

/// A repo path as a relative path inside the snapshot, or `None` for anything that could escape
/// it or trick a terminal: `..`, absolute paths, empty names, control characters (escape
/// sequences) and backslashes.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && !path.chars().any(|c| c.is_control() || c == '\\')
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| p.to_path_buf())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds a file through a hasher, after an optional header, in 1 MiB reads.
fn hash_file<D: Digest>(path: &Path, header: &[u8]) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = D::new();
    h.update(header);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    hash_file::<Sha256>(path, b"")
}

/// The git blob id of a file: sha1 of `blob <len>\0` and the content.
pub fn git_blob_sha1(path: &Path) -> std::io::Result<String> {
    let len = fs::metadata(path)?.len();
    hash_file::<Sha1>(path, format!("blob {len}\0").as_bytes())
}

impl Downloader {
    pub fn new(client: HubClient) -> Downloader {
        Downloader {
            client,
            parallel: 4,
            retry: Retry::default(),
            progress: None,
            cancel: CancellationToken::new(),
            blob_locks: Arc::default(),
        }
    }

    pub fn with_progress(mut self, tx: UnboundedSender<ProgressEvent>) -> Downloader {
        self.progress = Some(tx);
        self
    }

    pub fn with_cancel(mut self, cancel: CancellationToken) -> Downloader {
        self.cancel = cancel;
        self
    }

    fn emit(&self, e: ProgressEvent) {
        if let Some(tx) = &self.progress {
            let _ = tx.send(e);
        }
    }

    pub fn cache_dir(&self) -> &Path {
        &self.client.settings.cache_dir
    }

    /// `<cache>/.locks/<repo folder>/<blob>.lock` for `<cache>/<repo folder>/blobs/<blob>`.
    fn lock_path(&self, blob: &Path) -> PathBuf {
        let name = blob
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let repo = blob
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        self.cache_dir()
            .join(".locks")
            .join(repo)
            .join(format!("{name}.lock"))
    }

    /// Downloads a revision (or some of its files) into the cache and returns its snapshot.
    pub async fn snapshot(&self, req: &DownloadRequest) -> Result<Downloaded, DownloadError> {
        let info = self.client.model_info(&req.repo, &req.revision).await?;
        let commit = info.sha.clone().ok_or_else(|| DownloadError::NoCommit {
            repo: req.repo.clone(),
            revision: req.revision.clone(),
        })?;
        let mut entries = self.client.tree(&req.repo, &commit).await?;
        if let Some(include) = &req.include {
            for wanted in include {
                if !entries.iter().any(|e| &e.path == wanted) {
                    return Err(HubApiError::NotFound {
                        what: format!(
                            "{wanted} in {}@{}",
                            req.repo,
                            &commit[..commit.len().min(12)]
                        ),
                    }
                    .into());
                }
            }
            entries.retain(|e| include.contains(&e.path));
        }
        for e in &entries {
            if safe_relative(&e.path).is_none() {
                return Err(DownloadError::UnsafePath(e.path.clone()));
            }
        }
        let repo_dir = self.cache_dir().join(repo_folder(&req.repo));
        let blobs = repo_dir.join("blobs");
        let snapshot = repo_dir.join("snapshots").join(&commit);
        fs::create_dir_all(&blobs).map_err(io(&blobs))?;
        fs::create_dir_all(&snapshot).map_err(io(&snapshot))?;
        // Refuse at once what cannot fit, rather than after hundreds of megabytes.
        let need = still_to_write(&entries, &blobs);
        if let Some(free) = free_bytes(&blobs)
            && need > free
        {
            return Err(DownloadError::DiskFull {
                cache: self.cache_dir().to_path_buf(),
                needs: Some((need, free)),
            });
        }
        self.emit(ProgressEvent::Plan {
            commit: commit.clone(),
            files: entries.len(),
            total_bytes: entries.iter().map(TreeEntry::content_size).sum(),
        });

        // Small files first: a config error shows before 400 MB of weights.
        entries.sort_by_key(TreeEntry::content_size);
        let results: Vec<Result<FileResult, DownloadError>> = futures::stream::iter(entries)
            .map(|entry| {
                let repo = req.repo.clone();
                let commit = commit.clone();
                let blobs = blobs.clone();
                let snapshot = snapshot.clone();
                async move { self.file(&repo, &commit, &entry, &blobs, &snapshot).await }
            })
            .buffer_unordered(self.parallel.max(1))
            .collect()
            .await;
        let mut files = Vec::new();
        let mut first_error = None;
        for r in results {
            match r {
                Ok(f) => files.push(f),
                Err(e) => {
                    // Cancellation wins over the errors it causes; otherwise the first failure.
                    if first_error.is_none() || matches!(e, DownloadError::Cancelled) {
                        first_error = Some(e);
                    }
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if req.revision != commit {
            let refs = repo_dir.join("refs").join(&req.revision);
            if let Some(parent) = refs.parent() {
                fs::create_dir_all(parent).map_err(io(parent))?;
            }
            fs::write(&refs, &commit).map_err(io(&refs))?;
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Downloaded {
            repo: req.repo.clone(),
            commit,
            snapshot,
            files,
        })
    }

    async fn lock_blob(
        &self,
        blob: &Path,
    ) -> Result<(tokio::sync::OwnedMutexGuard<()>, File), DownloadError> {
        let local = {
            let mut map = self
                .blob_locks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            map.entry(blob.to_path_buf()).or_default().clone()
        };
        let guard = local.lock_owned().await;
        // Across processes: an OS lock where huggingface_hub keeps its own
        // (`<cache>/.locks/models--org--name/<blob>.lock`, flock as its filelock uses), so that
        // hugflake and Python tools never write the same blob at once. Polled so cancel still works.
        let lock_path = self.lock_path(blob);
        if let Some(parent) = lock_path.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok((guard, file)),
                Err(fs::TryLockError::WouldBlock) => {
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Err(DownloadError::Cancelled),
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
                Err(fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
            }
        }
    }

    async fn file(
        &self,
        repo: &str,
        commit: &str,
        entry: &TreeEntry,
        blobs: &Path,
        snapshot: &Path,
    ) -> Result<FileResult, DownloadError> {
        let size = entry.content_size();
        let blob = blobs.join(entry.blob_id());
        let (_guard, _lock) = self.lock_blob(&blob).await?;
        let mut fetched = 0;
        let reused = fs::metadata(&blob).is_ok_and(|m| m.len() == size);
        if !reused {
            fetched = self.fetch_blob(repo, commit, entry, &blob).await?;
        }
        link(&blob, snapshot, &entry.path)?;
        self.emit(ProgressEvent::FileDone {
            path: entry.path.clone(),
            size,
            reused,
        });
        Ok(FileResult {
            path: entry.path.clone(),
            size,
            blob: entry.blob_id().to_string(),
            reused,
            fetched_bytes: fetched,
        })
    }

    /// Fetches one blob into `<blob>.incomplete` (resuming), verifies it, and moves it in place.
    async fn fetch_blob(
        &self,
        repo: &str,
        commit: &str,
        entry: &TreeEntry,
        blob: &Path,
    ) -> Result<u64, DownloadError> {
        let partial = PathBuf::from(format!("{}.incomplete", blob.display()));
        let mut fetched = 0u64;
        let mut attempt = 0u32;
        loop {
            if self.cancel.is_cancelled() {
                return Err(DownloadError::Cancelled);
            }
            let outcome = self
                .attempt(repo, commit, entry, &partial, &mut fetched)
                .await;
            let (reason, after) = match outcome {
                Ok(()) => match self.verify(entry, &partial).await {
                    Ok(()) => {
                        fs::rename(&partial, blob).map_err(io(blob))?;
                        return Ok(fetched);
                    }
                    Err(e @ DownloadError::Corrupt { .. }) => {
                        let _ = fs::remove_file(&partial);
                        (e.to_string(), None)
                    }
                    Err(e) => return Err(e),
                },
                Err(Attempt::Retry { reason, after }) => (reason, after),
                Err(Attempt::Fatal(e)) => return Err(e),
            };
            attempt += 1;
            if attempt >= self.retry.attempts {
                return Err(DownloadError::GaveUp {
                    path: entry.path.clone(),
                    attempts: attempt,
                    last: reason,
                });
            }
            let wait = self.retry.delay(attempt - 1, after);
            tracing::warn!(path = %entry.path, attempt, ?wait, %reason, "retrying download");
            self.emit(ProgressEvent::Retrying {
                path: entry.path.clone(),
                attempt,
                wait_ms: wait.as_millis() as u64,
                reason,
            });
            tokio::select! {
                _ = self.cancel.cancelled() => return Err(DownloadError::Cancelled),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn verify(&self, entry: &TreeEntry, partial: &Path) -> Result<(), DownloadError> {
        let got_size = fs::metadata(partial).map_err(io(partial))?.len();
        if got_size != entry.content_size() {
            return Err(DownloadError::Corrupt {
                path: entry.path.clone(),
                what: "size",
                expected: entry.content_size().to_string(),
                got: got_size.to_string(),
            });
        }
        let path = partial.to_path_buf();
        let lfs = entry.lfs.clone();
        let (what, expected, got) = tokio::task::spawn_blocking(move || match lfs {
            Some(l) => sha256_file(&path).map(|h| ("sha256", l.oid, h)),
            None => git_blob_sha1(&path).map(|h| ("git blob sha1", String::new(), h)),
        })
        .await
        .map_err(|e| DownloadError::Io {
            path: partial.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(io(partial))?;
        let expected = if entry.lfs.is_some() {
            expected
        } else {
            entry.oid.clone()
        };
        if !expected.eq_ignore_ascii_case(&got) {
            return Err(DownloadError::Corrupt {
                path: entry.path.clone(),
                what,
                expected,
                got,
            });
        }
        Ok(())
    }

    /// One GET, resuming from what `partial` holds. `Ok` means the bytes are all there.
    async fn attempt(
        &self,
        repo: &str,
        commit: &str,
        entry: &TreeEntry,
        partial: &Path,
        fetched: &mut u64,
    ) -> Result<(), Attempt> {
        let size = entry.content_size();
        let fatal = |e: DownloadError| Attempt::Fatal(e);
        let mut offset = fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
        if offset > size {
            fs::remove_file(partial).map_err(|e| fatal(io(partial)(e)))?;
            offset = 0;
        }
        if offset == size && size > 0 {
            return Ok(());
        }
        let url = self.client.resolve_url(repo, commit, &entry.path);
        let mut req = self.client.get(&url);
        if offset > 0 {
            req = req.header(RANGE, format!("bytes={offset}-"));
        }
        let resp = tokio::select! {
            _ = self.cancel.cancelled() => return Err(fatal(DownloadError::Cancelled)),
            r = req.send() => r,
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                return Err(Attempt::Retry {
                    reason: format!("request failed: {e}"),
                    after: None,
                });
            }
        };
        let status = resp.status();
        match status {
            StatusCode::PARTIAL_CONTENT => {
                let start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(offset) {
                    // Not the range we asked for: start over.
                    let _ = fs::remove_file(partial);
                    return Err(Attempt::Retry {
                        reason: format!(
                            "the server answered a different range ({start:?}, asked {offset})"
                        ),
                        after: None,
                    });
                }
            }
            StatusCode::OK => {
                if offset > 0 {
                    // The server ignored Range: the body is the whole file.
                    offset = 0;
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let _ = fs::remove_file(partial);
                return Err(Attempt::Retry {
                    reason: "range not satisfiable; starting the file again".into(),
                    after: None,
                });
            }
            // The Hub's 500s pass too (its own clients retry every 5xx).
            s if crate::http::transient_status(s.as_u16()) || s.is_server_error() => {
                let after = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                return Err(Attempt::Retry {
                    reason: format!("the Hub answered {s}"),
                    after,
                });
            }
            s => {
                let body = resp.text().await.unwrap_or_default();
                return Err(fatal(
                    self.client
                        .status_error(s, repo, &format!("{} in {repo}", entry.path), &body)
                        .into(),
                ));
            }
        }
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(offset > 0)
            .truncate(offset == 0)
            .open(partial)
            .map_err(|e| fatal(io(partial)(e)))?;
        self.emit(ProgressEvent::FileStarted {
            path: entry.path.clone(),
            size,
            resumed_from: offset,
        });
        let mut done = offset;
        let mut last_emit = Instant::now();
        let mut stream = resp.bytes_stream();
        loop {
            let chunk = tokio::select! {
                _ = self.cancel.cancelled() => {
                    let _ = file.flush();
                    return Err(fatal(DownloadError::Cancelled));
                }
                c = stream.next() => c,
            };
            match chunk {
                None => break,
                Some(Ok(bytes)) => {
                    if done + bytes.len() as u64 > size {
                        let _ = fs::remove_file(partial);
                        return Err(Attempt::Retry {
                            reason: format!("the Hub sent more than the {size} bytes listed"),
                            after: None,
                        });
                    }
                    file.write_all(&bytes).map_err(|e| fatal(io(partial)(e)))?;
                    done += bytes.len() as u64;
                    *fetched += bytes.len() as u64;
                    if last_emit.elapsed() >= Duration::from_millis(100) {
                        last_emit = Instant::now();
                        self.emit(ProgressEvent::Bytes {
                            path: entry.path.clone(),
                            done,
                            size,
                        });
                    }
                }
                Some(Err(e)) => {
                    let _ = file.flush();
                    return Err(Attempt::Retry {
                        reason: format!("connection lost at byte {done} of {size}: {e}"),
                        after: None,
                    });
                }
            }
        }
        file.flush().map_err(|e| fatal(io(partial)(e)))?;
        self.emit(ProgressEvent::Bytes {
            path: entry.path.clone(),
            done,
            size,
        });
        if done < size {
            return Err(Attempt::Retry {
                reason: format!("the body ended at byte {done} of {size}"),
                after: None,
            });
        }
        Ok(())
    }
}

/// Points `snapshot/<path>` at the blob with a relative symlink, as huggingface_hub does.
fn link(blob: &Path, snapshot: &Path, path: &str) -> Result<(), DownloadError> {
    let rel = safe_relative(path).ok_or_else(|| DownloadError::UnsafePath(path.into()))?;
    let dest = snapshot.join(&rel);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let depth = rel.components().count() - 1;
    let name = blob
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let target = PathBuf::from(format!("{}../../blobs/{name}", "../".repeat(depth)));
    if fs::symlink_metadata(&dest).is_ok() {
        if fs::read_link(&dest).is_ok_and(|t| t == target) {
            return Ok(());
        }
        fs::remove_file(&dest).map_err(io(&dest))?;
    }
    std::os::unix::fs::symlink(&target, &dest).map_err(io(&dest))
}

/// Totals for a progress bar: bytes, rate and ETA, fed with [`ProgressEvent`]s.
#[derive(Debug, Clone)]
pub struct ProgressTotals {
    pub total: u64,
    pub files: usize,
    pub files_done: usize,
    per_file: HashMap<String, u64>,
    started: Instant,
    /// Bytes already present when the run started (resumed or reused), not counted in the rate.
    baseline: u64,
}

impl Default for ProgressTotals {
    fn default() -> Self {
        ProgressTotals {
            total: 0,
            files: 0,
            files_done: 0,
            per_file: HashMap::new(),
            started: Instant::now(),
            baseline: 0,
        }
    }
}

impl ProgressTotals {
    pub fn apply(&mut self, e: &ProgressEvent) {
        match e {
            ProgressEvent::Plan {
                files, total_bytes, ..
            } => {
                self.total = *total_bytes;
                self.files = *files;
                self.started = Instant::now();
            }
            ProgressEvent::FileStarted {
                path, resumed_from, ..
            } => {
                self.baseline += resumed_from;
                self.per_file.insert(path.clone(), *resumed_from);
            }
            ProgressEvent::Bytes { path, done, .. } => {
                self.per_file.insert(path.clone(), *done);
            }
            ProgressEvent::FileDone { path, size, reused } => {
                if *reused {
                    self.baseline += size;
                }
                self.per_file.insert(path.clone(), *size);
                self.files_done += 1;
            }
            ProgressEvent::Retrying { .. } => {}
        }
    }

    pub fn done(&self) -> u64 {
        self.per_file.values().sum()
    }

    /// Bytes per second fetched in this run.
    pub fn rate(&self) -> f64 {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        self.done().saturating_sub(self.baseline) as f64 / secs
    }

    pub fn eta_secs(&self) -> Option<u64> {
        let rate = self.rate();
        (rate > 1.0).then(|| (self.total.saturating_sub(self.done()) as f64 / rate) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_space_still_needed_counts_finished_and_partial_blobs() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let entry = |oid: &str, size: u64| TreeEntry {
            kind: "file".into(),
            oid: oid.into(),
            size,
            path: format!("{oid}.bin"),
            lfs: None,
        };
        let entries = [entry("done", 100), entry("half", 1000), entry("none", 50)];
        fs::write(tmp.path().join("done"), vec![0u8; 100]).unwrap_or_else(|e| panic!("{e}"));
        fs::write(tmp.path().join("half.incomplete"), vec![0u8; 400])
            .unwrap_or_else(|e| panic!("{e}"));
        // 0 for the finished blob, 600 left of the partial one, 50 for the missing one.
        assert_eq!(still_to_write(&entries, tmp.path()), 650);
        assert!(free_bytes(tmp.path()).is_some_and(|b| b > 0));
        let full = DownloadError::DiskFull {
            cache: tmp.path().to_path_buf(),
            needs: Some((650, 10)),
        }
        .to_string();
        assert!(
            full.contains("is full (650 B still to download, 10 B free)"),
            "{full}"
        );
    }

    #[test]
    fn git_blob_ids_match_git() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = tmp.path().join("f");
        fs::write(&p, "hello\n").unwrap_or_else(|e| panic!("{e}"));
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            git_blob_sha1(&p).unwrap_or_default(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert_eq!(
            sha256_file(&p).unwrap_or_default(),
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert!(safe_relative("../etc/passwd").is_none());
        assert!(safe_relative("/etc/passwd").is_none());
        assert!(safe_relative("a/./b").is_some_and(|p| p == Path::new("a/b")));
        assert!(safe_relative("1_Pooling/config.json").is_some());
        assert!(safe_relative("").is_none());
    }

    #[test]
    fn symlinks_are_relative_to_the_snapshot() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let blobs = tmp.path().join("blobs");
        let snap = tmp.path().join("snapshots/abc");
        fs::create_dir_all(&blobs).unwrap_or_else(|e| panic!("{e}"));
        fs::write(blobs.join("deadbeef"), "x").unwrap_or_else(|e| panic!("{e}"));
        link(&blobs.join("deadbeef"), &snap, "1_Pooling/config.json")
            .unwrap_or_else(|e| panic!("{e}"));
        let target = fs::read_link(snap.join("1_Pooling/config.json")).unwrap_or_default();
        assert_eq!(target, PathBuf::from("../../../blobs/deadbeef"));
        assert_eq!(
            fs::read_to_string(snap.join("1_Pooling/config.json")).unwrap_or_default(),
            "x"
        );
        // Linking again is a no-op.
        link(&blobs.join("deadbeef"), &snap, "1_Pooling/config.json")
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        let r = Retry {
            attempts: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        let d0 = r.delay(0, None);
        assert!(d0 >= Duration::from_millis(100) && d0 <= Duration::from_millis(150));
        let d3 = r.delay(3, None);
        assert!(d3 >= Duration::from_millis(800) && d3 <= Duration::from_millis(1200));
        assert!(r.delay(10, None) <= Duration::from_millis(1500));
        assert_eq!(
            r.delay(0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }
}
