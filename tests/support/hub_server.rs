//! A Hugging Face Hub test server on 127.0.0.1 serving repos from memory: search with pagination,
//! model info, recursive trees (paginated), HEAD/GET resolve with ETag, X-Repo-Commit,
//! Content-Length and Range, LFS files through a redirect with X-Linked-Etag/X-Linked-Size, a gated
//! repo, and fault modes per file. It counts the bytes it serves.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sha1::Sha1;
use sha2::{Digest, Sha256};

pub const TOKEN: &str = "hf_test_token_for_gated_repos";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(Clone)]
pub struct RepoFile {
    pub path: String,
    pub bytes: Arc<Vec<u8>>,
    pub git_oid: String,
    /// sha256 when the file is stored with LFS.
    pub lfs: Option<String>,
}

impl RepoFile {
    pub fn new(path: &str, bytes: Vec<u8>) -> RepoFile {
        let mut h = Sha1::new();
        h.update(format!("blob {}\0", bytes.len()).as_bytes());
        h.update(&bytes);
        let git_oid = hex(&h.finalize());
        let big = bytes.len() > 10_000
            || [".safetensors", ".bin", ".onnx", ".pt"]
                .iter()
                .any(|e| path.ends_with(e));
        let lfs = big.then(|| hex(&Sha256::digest(&bytes)));
        RepoFile {
            path: path.into(),
            bytes: Arc::new(bytes),
            git_oid,
            lfs,
        }
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

#[derive(Clone)]
pub struct Repo {
    pub id: String,
    pub commit: String,
    pub files: Vec<RepoFile>,
    pub gated: bool,
    pub pipeline_tag: Option<String>,
    pub library: Option<String>,
    pub tags: Vec<String>,
    pub downloads: u64,
}

impl Repo {
    pub fn new(id: &str, commit: &str) -> Repo {
        Repo {
            id: id.into(),
            commit: commit.into(),
            files: Vec::new(),
            gated: false,
            pipeline_tag: None,
            library: None,
            tags: Vec::new(),
            downloads: 0,
        }
    }

    /// Every file under `dir`, with paths relative to it.
    pub fn from_dir(id: &str, commit: &str, dir: &Path) -> Repo {
        let mut repo = Repo::new(id, commit);
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
                let p = e.unwrap_or_else(|e| panic!("{e}")).path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p
                        .strip_prefix(dir)
                        .unwrap_or(&p)
                        .to_string_lossy()
                        .to_string();
                    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{e}"));
                    repo.files.push(RepoFile::new(&rel, bytes));
                }
            }
        }
        repo.files.sort_by(|a, b| a.path.cmp(&b.path));
        repo
    }

    pub fn file(mut self, path: &str, bytes: impl Into<Vec<u8>>) -> Repo {
        self.files.push(RepoFile::new(path, bytes.into()));
        self
    }
}

/// Faults, each for a file path, consumed as they fire.
#[derive(Default)]
pub struct Faults {
    /// Drop the connection after this many body bytes, once.
    pub drop_after: HashMap<String, u64>,
    /// Answer 503 this many times.
    pub unavailable: HashMap<String, u32>,
    /// Answer 429 with `Retry-After: 1` this many times.
    pub throttled: HashMap<String, u32>,
    /// Send wrong bytes (same length) this many times.
    pub corrupt: HashMap<String, u32>,
    /// GET answers 403 with an HTML body (HEAD stays good), always.
    pub get_forbidden: Vec<String>,
    /// Send the body in 64 KiB chunks with this pause between them.
    pub trickle: HashMap<String, Duration>,
    /// Ignore Range and always send the whole file.
    pub ignore_range: bool,
}

#[derive(Default)]
pub struct Stats {
    pub bytes_served: AtomicU64,
    pub requests: Mutex<Vec<String>>,
}

struct ServerState {
    repos: Vec<Repo>,
    faults: Mutex<Faults>,
    stats: Arc<Stats>,
    tree_page: usize,
    search_page: usize,
    base: String,
}

pub struct HubServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    state: Arc<ServerState>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl HubServer {
    pub async fn start(repos: Vec<Repo>) -> HubServer {
        HubServer::start_on(repos, 0).await
    }

    pub async fn start_on(repos: Vec<Repo>, port: u16) -> HubServer {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let stats = Arc::new(Stats::default());
        let state = Arc::new(ServerState {
            repos,
            faults: Mutex::new(Faults::default()),
            stats: stats.clone(),
            tree_page: 4,
            search_page: 2,
            base: format!("http://{addr}"),
        });
        let app = Router::new()
            .route("/api/models", get(search))
            .route("/api/models/{org}/{name}/revision/{rev}", get(info))
            .route("/api/models/{org}/{name}/tree/{rev}", get(tree))
            .route(
                "/{org}/{name}/resolve/{rev}/{*path}",
                get(resolve).head(resolve),
            )
            .route("/cdn/{org}/{name}/{sha}", get(cdn).head(cdn))
            .with_state(state.clone());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        HubServer {
            addr,
            stats,
            state,
            shutdown,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.state.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn bytes_served(&self) -> u64 {
        self.stats.bytes_served.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<String> {
        self.stats
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

type Shared = Arc<ServerState>;

fn log(state: &ServerState, what: String) {
    if let Ok(mut r) = state.stats.requests.lock() {
        r.push(what);
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

fn find<'a>(state: &'a ServerState, org: &str, name: &str) -> Option<&'a Repo> {
    let id = format!("{org}/{name}");
    state.repos.iter().find(|r| r.id == id)
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"))
}

fn summary(r: &Repo) -> serde_json::Value {
    serde_json::json!({
        "_id": r.commit, "id": r.id, "modelId": r.id,
        "pipeline_tag": r.pipeline_tag, "library_name": r.library,
        "downloads": r.downloads, "likes": 1, "tags": r.tags,
        "lastModified": "2024-01-05T10:00:00.000Z", "private": false,
    })
}

async fn search(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    log(&s, format!("search {q:?}"));
    let mut hits: Vec<&Repo> = s
        .repos
        .iter()
        .filter(|r| {
            q.get("search")
                .is_none_or(|t| r.id.to_lowercase().contains(&t.to_lowercase()))
        })
        .filter(|r| {
            q.get("author")
                .is_none_or(|a| r.id.starts_with(&format!("{a}/")))
        })
        .filter(|r| {
            q.get("pipeline_tag")
                .is_none_or(|t| r.pipeline_tag.as_ref() == Some(t))
        })
        .filter(|r| {
            q.get("library")
                .is_none_or(|l| r.library.as_ref() == Some(l))
        })
        .collect();
    if q.get("sort").is_some_and(|s| s == "downloads") {
        hits.sort_by_key(|r| std::cmp::Reverse(r.downloads));
    }
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(s.search_page)
        .min(s.search_page);
    let cursor: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let page: Vec<serde_json::Value> = hits
        .iter()
        .skip(cursor)
        .take(limit)
        .map(|r| summary(r))
        .collect();
    let mut resp = Json(page).into_response();
    if cursor + limit < hits.len() {
        let mut next: Vec<String> = q
            .iter()
            .filter(|(k, _)| *k != "cursor")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        next.push(format!("cursor={}", cursor + limit));
        let link = format!("<{}/api/models?{}>; rel=\"next\"", s.base, next.join("&"));
        if let Ok(v) = link.parse() {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    resp
}

async fn info(
    State(s): State<Shared>,
    UrlPath((org, name, rev)): UrlPath<(String, String, String)>,
) -> Response {
    log(&s, format!("info {org}/{name}@{rev}"));
    let Some(r) = find(&s, &org, &name) else {
        return error(StatusCode::NOT_FOUND, "Repository Not Found");
    };
    if rev != "main" && rev != r.commit {
        return error(
            StatusCode::NOT_FOUND,
            &format!("Revision Not Found for url: {rev}"),
        );
    }
    let mut v = summary(r);
    v["sha"] = serde_json::json!(r.commit);
    v["gated"] = if r.gated {
        serde_json::json!("manual")
    } else {
        serde_json::json!(false)
    };
    v["siblings"] = r
        .files
        .iter()
        .map(|f| serde_json::json!({"rfilename": f.path}))
        .collect();
    v["cardData"] = serde_json::json!({"license": "apache-2.0"});
    Json(v).into_response()
}

async fn tree(
    State(s): State<Shared>,
    UrlPath((org, name, rev)): UrlPath<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    log(&s, format!("tree {org}/{name}@{rev}"));
    let Some(r) = find(&s, &org, &name) else {
        return error(StatusCode::NOT_FOUND, "Repository Not Found");
    };
    if rev != "main" && rev != r.commit {
        return error(StatusCode::NOT_FOUND, "Revision Not Found");
    }
    let cursor: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let entries: Vec<serde_json::Value> = r
        .files
        .iter()
        .skip(cursor)
        .take(s.tree_page)
        .map(|f| match &f.lfs {
            Some(sha) => serde_json::json!({
                "type": "file", "oid": f.git_oid, "size": 134, "path": f.path,
                "lfs": {"oid": sha, "size": f.size(), "pointerSize": 134}
            }),
            None => serde_json::json!({"type": "file", "oid": f.git_oid, "size": f.size(), "path": f.path}),
        })
        .collect();
    let mut resp = Json(entries).into_response();
    if cursor + s.tree_page < r.files.len() {
        let link = format!(
            "<{}/api/models/{org}/{name}/tree/{rev}?recursive=true&cursor={}>; rel=\"next\"",
            s.base,
            cursor + s.tree_page
        );
        if let Ok(v) = link.parse() {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    resp
}

async fn resolve(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    UrlPath((org, name, rev, path)): UrlPath<(String, String, String, String)>,
) -> Response {
    log(&s, format!("{method} resolve {org}/{name}@{rev}/{path}"));
    if let Some(a) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        log(&s, format!("authorization {a}"));
    }
    let Some(r) = find(&s, &org, &name) else {
        return error(StatusCode::NOT_FOUND, "Repository Not Found");
    };
    if r.gated && !authorized(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            &format!(
                "Access to model {} is restricted. You must have access to it and be authenticated to access it. Please log in.",
                r.id
            ),
        );
    }
    if rev != "main" && rev != r.commit {
        return error(StatusCode::NOT_FOUND, "Revision Not Found");
    }
    let Some(f) = r.files.iter().find(|f| f.path == path) else {
        return error(StatusCode::NOT_FOUND, "Entry not found");
    };
    if let Some(sha) = &f.lfs {
        // LFS: redirect to the content server with the linked etag and size.
        let mut resp = Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, format!("/cdn/{org}/{name}/{sha}"))
            .header("X-Linked-Etag", format!("\"{sha}\""))
            .header("X-Linked-Size", f.size().to_string())
            .header("X-Repo-Commit", &r.commit)
            .header(header::ETAG, format!("\"{}\"", f.git_oid));
        if method == Method::GET {
            resp = resp.header(header::CONTENT_LENGTH, "0");
        }
        return resp.body(Body::empty()).unwrap_or_default();
    }
    serve_bytes(&s, &method, &headers, r, f)
}

async fn cdn(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    UrlPath((org, name, sha)): UrlPath<(String, String, String)>,
) -> Response {
    let Some(r) = find(&s, &org, &name) else {
        return error(StatusCode::NOT_FOUND, "no such object");
    };
    let Some(f) = r
        .files
        .iter()
        .find(|f| f.lfs.as_deref() == Some(sha.as_str()))
    else {
        return error(StatusCode::NOT_FOUND, "no such object");
    };
    log(&s, format!("{method} cdn {}", f.path));
    serve_bytes(&s, &method, &headers, r, f)
}

fn take(map: &mut HashMap<String, u32>, path: &str) -> bool {
    match map.get_mut(path) {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    }
}

fn serve_bytes(
    s: &ServerState,
    method: &Method,
    headers: &HeaderMap,
    r: &Repo,
    f: &RepoFile,
) -> Response {
    let mut faults = s.faults.lock().unwrap_or_else(|p| p.into_inner());
    let size = f.size();
    if *method == Method::GET {
        if faults.get_forbidden.contains(&f.path) {
            return (
                StatusCode::FORBIDDEN,
                "<html><body>403 Forbidden</body></html>",
            )
                .into_response();
        }
        if take(&mut faults.unavailable, &f.path) {
            return error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
        }
        if take(&mut faults.throttled, &f.path) {
            let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "rate limited");
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return resp;
        }
    }
    // `bytes=a-` or `bytes=a-b` (inclusive).
    let range = (!faults.ignore_range)
        .then(|| {
            let spec = headers
                .get(header::RANGE)?
                .to_str()
                .ok()?
                .strip_prefix("bytes=")?
                .to_string();
            let (a, b) = spec.split_once('-')?;
            let a = a.parse::<u64>().ok()?;
            let b = if b.is_empty() {
                None
            } else {
                b.parse::<u64>().ok()
            };
            Some((a, b))
        })
        .flatten();
    let etag = f.lfs.clone().unwrap_or_else(|| f.git_oid.clone());
    let mut builder = Response::builder()
        .header(header::ETAG, format!("\"{etag}\""))
        .header("X-Repo-Commit", &r.commit)
        .header(header::ACCEPT_RANGES, "bytes");
    let (start, end) = match range {
        Some((start, _)) if start >= size => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(Body::empty())
                .unwrap_or_default();
        }
        Some((start, last)) => {
            let end = last.map_or(size, |l| (l + 1).min(size));
            builder = builder.status(StatusCode::PARTIAL_CONTENT).header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{size}", end - 1),
            );
            (start, end)
        }
        None => {
            builder = builder.status(StatusCode::OK);
            (0, size)
        }
    };
    builder = builder.header(header::CONTENT_LENGTH, (end - start).to_string());
    if *method == Method::HEAD {
        return builder.body(Body::empty()).unwrap_or_default();
    }
    let mut bytes = f.bytes[start as usize..end as usize].to_vec();
    if take(&mut faults.corrupt, &f.path) {
        for b in bytes.iter_mut().step_by(97) {
            *b = b.wrapping_add(1);
        }
    }
    let drop_at = faults.drop_after.remove(&f.path);
    let trickle = faults.trickle.get(&f.path).copied();
    drop(faults);
    let stats = s.stats.clone();
    let stream = async_stream(bytes, drop_at, trickle, stats);
    builder.body(Body::from_stream(stream)).unwrap_or_default()
}

fn async_stream(
    bytes: Vec<u8>,
    drop_at: Option<u64>,
    trickle: Option<Duration>,
    stats: Arc<Stats>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send {
    let chunk = 64 * 1024;
    let limit = drop_at.map_or(bytes.len(), |d| (d as usize).min(bytes.len()));
    let chunks: Vec<Vec<u8>> = bytes[..limit].chunks(chunk).map(<[u8]>::to_vec).collect();
    let dropped = drop_at.is_some();
    futures::stream::unfold((chunks.into_iter(), false), move |(mut it, ended)| {
        let stats = stats.clone();
        async move {
            if ended {
                return None;
            }
            match it.next() {
                Some(c) => {
                    if let Some(t) = trickle {
                        tokio::time::sleep(t).await;
                    }
                    stats
                        .bytes_served
                        .fetch_add(c.len() as u64, Ordering::SeqCst);
                    Some((Ok(c), (it, false)))
                }
                None if dropped => {
                    // Let the bytes already handed over reach the client, then cut.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "fault: dropped",
                        )),
                        (it, true),
                    ))
                }
                None => None,
            }
        }
    })
}
