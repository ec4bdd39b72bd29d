//! `hugflake serve`: the local platform's daemon. One per data dir (an OS lock), loopback only,
//! every call authenticated with the bearer token it writes at start.

use std::fs::{self, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::registry::{Machine, Registry, RegistryError};
use super::{API_VERSION, DaemonFiles, DaemonInfo, ErrorBody, ErrorDetail, write_private};
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("a hugflake daemon already runs for {dir}{}: stop it with `hugflake serve --stop`", pid_note(*.pid))]
    AlreadyRunning { dir: PathBuf, pid: Option<u32> },
    #[error(
        "cannot listen on 127.0.0.1:{port}: {source}{}",
        if *.port != 0 { " (another program may use it: set [daemon] port in the config, 0 picks a free port)" } else { "" }
    )]
    Bind { port: u16, source: std::io::Error },
    #[error("daemon data dir {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot make a token: {0}")]
    Random(String),
}

fn pid_note(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

/// Called once with the running daemon's facts.
pub type OnReady = Box<dyn FnOnce(&DaemonInfo) + Send>;

pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub port: u16,
    /// Called once the daemon listens, with what `daemon.json` says.
    pub on_ready: Option<OnReady>,
}

struct AppState {
    registry: Mutex<Registry>,
    token: Secret,
    info: DaemonInfo,
    shutdown: CancellationToken,
}

type Shared = Arc<AppState>;

/// Runs the daemon until a shutdown request, SIGTERM or Ctrl-C.
pub async fn serve(opts: ServeOptions) -> Result<(), DaemonError> {
    let files = DaemonFiles::new(&opts.data_dir);
    let io = |path: PathBuf| move |source| DaemonError::Io { path, source };
    files.ensure_dir().map_err(io(files.dir.clone()))?;

    // The lock lives as long as this function: the OS drops it if the process dies.
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(files.lock())
        .map_err(io(files.lock()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            return Err(DaemonError::AlreadyRunning {
                dir: files.dir.clone(),
                pid: files.read_info().map(|i| i.pid),
            });
        }
        Err(fs::TryLockError::Error(source)) => {
            return Err(DaemonError::Io {
                path: files.lock(),
                source,
            });
        }
    }

    let registry = {
        let path = files.registry();
        tokio::task::spawn_blocking(move || Registry::open(&path, Machine::detect()))
            .await
            .map_err(|e| DaemonError::Random(e.to_string()))??
    };
    let token = Secret::random().map_err(|e| DaemonError::Random(e.to_string()))?;
    write_private(&files.token(), token.expose().as_bytes()).map_err(io(files.token()))?;

    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, opts.port)))
            .await
            .map_err(|source| DaemonError::Bind {
                port: opts.port,
                source,
            })?;
    let port = listener
        .local_addr()
        .map_err(|source| DaemonError::Bind {
            port: opts.port,
            source,
        })?
        .port();
    let info = DaemonInfo {
        pid: std::process::id(),
        port,
        version: crate::VERSION.into(),
        api: API_VERSION,
        started_at: Utc::now(),
        data_dir: files.dir.clone(),
    };
    let info_json = serde_json::to_vec_pretty(&info).unwrap_or_default();
    write_private(&files.info(), &info_json).map_err(io(files.info()))?;
    tracing::info!(port, pid = info.pid, dir = %files.dir.display(), "daemon listening");

    let shutdown = CancellationToken::new();
    let state = Arc::new(AppState {
        registry: Mutex::new(registry),
        token,
        info: info.clone(),
        shutdown: shutdown.clone(),
    });
    if let Some(ready) = opts.on_ready {
        ready(&info);
    }

    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signals.cancel();
    });

    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;

    // Clean up before the lock is released, so a new daemon never sees our files.
    let _ = fs::remove_file(files.info());
    let _ = fs::remove_file(files.token());
    tracing::info!("daemon stopped");
    drop(lock);
    served.map_err(|source| DaemonError::Io {
        path: files.dir,
        source,
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/pools", get(pools))
        .route("/v1/pools/{name}/suspend", post(suspend_pool))
        .route("/v1/pools/{name}/resume", post(resume_pool))
        .route("/v1/services", get(services))
        .route("/v1/models", get(models))
        .route("/v1/jobs", get(jobs))
        .route("/v1/shutdown", post(shutdown))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

/// An API error: status, a stable code and a message.
pub struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.1.into(),
                message: self.2,
            },
        };
        (self.0, Json(body)).into_response()
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::NoSuchPool(_) => {
                ApiError(StatusCode::NOT_FOUND, "NOT_FOUND", e.to_string())
            }
            other => {
                tracing::error!(error = %other, "registry");
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "REGISTRY",
                    other.to_string(),
                )
            }
        }
    }
}

async fn authenticate(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(token) if state.token.matches(token) => next.run(req).await,
        Some(_) => ApiError(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "wrong bearer token: read the current one from the data dir's `token` file".into(),
        )
        .into_response(),
        None => ApiError(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "missing `Authorization: Bearer <token>`: the token is in the data dir's `token` file"
                .into(),
        )
        .into_response(),
    }
}

async fn not_found(req: Request) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("no route {} {}", req.method(), req.uri().path()),
    )
}

/// Runs a registry call off the async workers.
async fn with_registry<T: Send + 'static>(
    state: &Shared,
    f: impl FnOnce(&mut Registry) -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let mut reg = state.registry.lock().map_err(|_| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "POISONED",
                "the registry lock was poisoned by an earlier panic: restart the daemon".into(),
            )
        })?;
        f(&mut reg).map_err(ApiError::from)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "TASK", e.to_string()))?
}

async fn health(State(state): State<Shared>) -> Json<DaemonInfo> {
    Json(state.info.clone())
}

async fn pools(State(state): State<Shared>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(with_registry(&state, |r| r.pools()).await?))
}

async fn suspend_pool(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    tracing::info!(pool = %name, "suspend pool");
    Ok(Json(
        with_registry(&state, move |r| r.set_pool_suspended(&name, true)).await?,
    ))
}

async fn resume_pool(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    tracing::info!(pool = %name, "resume pool");
    Ok(Json(
        with_registry(&state, move |r| r.set_pool_suspended(&name, false)).await?,
    ))
}

async fn services(State(state): State<Shared>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(with_registry(&state, |r| r.services()).await?))
}

async fn models(State(state): State<Shared>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(with_registry(&state, |r| r.models()).await?))
}

async fn jobs(State(state): State<Shared>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(with_registry(&state, |r| r.jobs()).await?))
}

async fn shutdown(State(state): State<Shared>) -> StatusCode {
    tracing::info!("shutdown requested over the API");
    state.shutdown.cancel();
    StatusCode::ACCEPTED
}
