//! `hugflake serve`: the local platform's daemon. One per data dir (an OS lock); its control API is a
//! Unix socket in the data dir (mode 0700), and every call is authenticated with the bearer token it
//! writes at start. Request bodies are capped (`MAX_CONTROL_BODY`) with a clear 413.

pub mod endpoint;
pub mod jobs;
pub mod records;
pub mod registry;
pub mod services;
pub mod telemetry;

use std::fs::{self, OpenOptions};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use self::jobs::{JobRunner, SubmitError};
use self::registry::{Machine, Registry, RegistryError};
use self::services::{Db, ServiceError, ServiceManager, ServiceSettings};
use super::{API_VERSION, DaemonFiles, DaemonInfo, ErrorBody, ErrorDetail, write_private};
use crate::domain::ImportSpec;
use crate::hub::settings::HubSettings;
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("a hugflake daemon already runs for {dir}{}: stop it with `hugflake serve --stop`", pid_note(*.pid))]
    AlreadyRunning { dir: PathBuf, pid: Option<u32> },
    #[error("cannot listen on {}: {source}", path.display())]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the socket path {} is {len} bytes, over the {MAX_SOCKET_PATH} a Unix socket allows: set HUGFLAKE_DATA_DIR to a shorter directory",
        path.display()
    )]
    SocketPath { path: PathBuf, len: usize },
    #[error("{0}")]
    NotPrivate(String),
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

/// The longest path a Unix socket address holds (`sun_path` is 108 bytes with its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// The largest request body the control API reads (an import spec is a few hundred bytes).
pub const MAX_CONTROL_BODY: usize = 1024 * 1024;

pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub services: ServiceSettings,
    pub hub: HubSettings,
    pub import_concurrency: usize,
    /// Called once the daemon listens, with what `daemon.json` says.
    pub on_ready: Option<OnReady>,
}

struct AppState {
    db: Db,
    services: Arc<ServiceManager>,
    jobs: Arc<JobRunner>,
    token: Secret,
    info: DaemonInfo,
    shutdown: CancellationToken,
}

type Shared = Arc<AppState>;

/// Runs the daemon until a shutdown request, SIGTERM or Ctrl-C.
pub async fn serve(opts: ServeOptions) -> Result<(), DaemonError> {
    let files = DaemonFiles::new(&opts.data_dir);
    if let Some(n) = endpoint::raise_open_files_limit() {
        tracing::info!(open_files = n, "open-file limit");
    }
    let io = |path: PathBuf| move |source| DaemonError::Io { path, source };
    files.ensure_dir().map_err(io(files.dir.clone()))?;
    files.check_private().map_err(DaemonError::NotPrivate)?;
    let socket = files.socket();
    let len = socket.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(DaemonError::SocketPath { path: socket, len });
    }

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

    // We hold the lock: a socket file left here is a dead daemon's.
    let _ = fs::remove_file(&socket);
    let bind = |source| DaemonError::Bind {
        path: socket.clone(),
        source,
    };
    let listener = tokio::net::UnixListener::bind(&socket).map_err(bind)?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&socket, fs::Permissions::from_mode(0o600)).map_err(bind)?;
    }
    let info = DaemonInfo {
        pid: std::process::id(),
        socket: socket.clone(),
        version: crate::VERSION.into(),
        api: API_VERSION,
        started_at: Utc::now(),
        data_dir: files.dir.clone(),
        hub: Some(opts.hub.identity()),
    };
    let info_json = serde_json::to_vec_pretty(&info).unwrap_or_default();
    write_private(&files.info(), &info_json).map_err(io(files.info()))?;
    tracing::info!(socket = %socket.display(), pid = info.pid, "daemon listening");

    let shutdown = CancellationToken::new();
    let db = Db(Arc::new(Mutex::new(registry)));
    let services = ServiceManager::new(db.clone(), files.clone(), opts.services);
    let jobs = JobRunner::new(
        db.clone(),
        services.clone(),
        opts.hub,
        opts.import_concurrency,
    );
    if let Err(e) = services.restore().await {
        tracing::error!(error = %e, "cannot restore services");
    }
    tokio::spawn(services.clone().autoscale(shutdown.clone()));
    if let Err(e) = jobs.resume_unfinished().await {
        tracing::error!(error = %e, "cannot resume unfinished jobs");
    }
    let state = Arc::new(AppState {
        db,
        services: services.clone(),
        jobs,
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
    services.shutdown();

    // Clean up before the lock is released, so a new daemon never sees our files.
    let _ = fs::remove_file(files.info());
    let _ = fs::remove_file(files.token());
    let _ = fs::remove_file(&socket);
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
        .route("/v1/services/{name}", axum::routing::delete(drop_service))
        .route("/v1/services/{name}/suspend", post(suspend_service))
        .route("/v1/services/{name}/resume", post(resume_service))
        .route("/v1/services/{name}/scaling", post(alter_service))
        .route("/v1/services/{name}/containers", get(containers))
        .route("/v1/services/{name}/endpoints", get(endpoints))
        .route("/v1/services/{name}/token", get(service_token))
        .route("/v1/services/{name}/logs", get(logs))
        .route("/v1/services/{name}/metrics", get(metrics))
        .route("/v1/services/{name}/events", get(events))
        .route("/v1/models", get(models))
        .route("/v1/models/{name}", axum::routing::delete(drop_model))
        .route("/v1/models/{name}/versions", get(versions))
        .route(
            "/v1/models/{name}/versions/{version}",
            axum::routing::delete(drop_version),
        )
        .route("/v1/jobs", get(jobs).post(submit_job))
        .route("/v1/jobs/{id}", get(job_detail))
        .route("/v1/jobs/{id}/cancel", post(cancel_job))
        .route("/v1/jobs/{id}/retry", post(retry_job))
        .route("/v1/shutdown", post(shutdown))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(MAX_CONTROL_BODY))
        .layer(middleware::from_fn(explain_too_large))
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
            RegistryError::NoSuchPool(_) | RegistryError::NotFound(_) => {
                ApiError(StatusCode::NOT_FOUND, "NOT_FOUND", e.to_string())
            }
            RegistryError::Conflict(_) => ApiError(StatusCode::CONFLICT, "CONFLICT", e.to_string()),
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

/// A body over the cap is refused with what the cap is, in the API's error shape (axum's own
/// rejection is a bare line of text). A declared length over the cap is refused before it is read.
async fn explain_too_large(req: Request, next: Next) -> Response {
    let too_large = || {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "TOO_LARGE",
            format!(
                "the request body is over {} KiB, the most the control API reads",
                MAX_CONTROL_BODY / 1024
            ),
        )
        .into_response()
    };
    if super::declared_over(req.headers(), MAX_CONTROL_BODY) {
        return too_large();
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large();
    }
    resp
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
    state.db.run(f).await.map_err(ApiError::from)
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Registry(r) => r.into(),
            ServiceError::NotFound(_) => {
                ApiError(StatusCode::NOT_FOUND, "NOT_FOUND", e.to_string())
            }
            ServiceError::Conflict(_) => ApiError(StatusCode::CONFLICT, "CONFLICT", e.to_string()),
            ServiceError::Io(_) => ApiError(StatusCode::INTERNAL_SERVER_ERROR, "IO", e.to_string()),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Invalid(m) => ApiError(StatusCode::BAD_REQUEST, "INVALID", m),
            SubmitError::NotFound(m) => ApiError(StatusCode::NOT_FOUND, "NOT_FOUND", m),
            SubmitError::Conflict(m) => ApiError(StatusCode::CONFLICT, "CONFLICT", m),
            SubmitError::Registry(r) => r.into(),
        }
    }
}

/// Query of the log and job routes: lines after `since`, waiting up to `wait_ms` for new ones.
#[derive(Debug, Default, serde::Deserialize)]
struct Since {
    since: Option<u64>,
    limit: Option<usize>,
    wait_ms: Option<u64>,
    /// The log of the instance runs before their last restart, instead of the current one.
    #[serde(default)]
    previous: bool,
    instance: Option<u32>,
}

fn wait_cap(ms: Option<u64>) -> std::time::Duration {
    std::time::Duration::from_millis(ms.unwrap_or(0).min(30_000))
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
    let n = name.clone();
    if with_registry(&state, move |r| r.pool(&n)).await?.is_none() {
        return Err(RegistryError::NoSuchPool(name).into());
    }
    state.services.suspend_pool(&name).await?;
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
    let mut list = with_registry(&state, |r| r.services()).await?;
    state.services.overlay(&mut list);
    Ok(Json(list))
}

async fn suspend_service(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    tracing::info!(service = %name, "suspend service");
    state.services.suspend(&name).await?;
    service_json(&state, &name).await
}

async fn resume_service(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    tracing::info!(service = %name, "resume service");
    state.services.resume(&name).await?;
    service_json(&state, &name).await
}

async fn alter_service(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
    Json(change): Json<crate::domain::ScalingChange>,
) -> Result<impl IntoResponse, ApiError> {
    tracing::info!(service = %name, ?change, "alter service");
    state.services.alter(&name, change).await?;
    service_json(&state, &name).await
}

async fn service_json(
    state: &Shared,
    name: &str,
) -> Result<Json<crate::domain::Service>, ApiError> {
    let mut list = with_registry(state, |r| r.services()).await?;
    state.services.overlay(&mut list);
    list.into_iter()
        .find(|s| s.name == name)
        .map(Json)
        .ok_or_else(|| ServiceError::NotFound(name.to_string()).into())
}

async fn drop_service(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    tracing::info!(service = %name, "drop service");
    state.services.drop_service(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn containers(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.services.get(&name)?.containers()))
}

async fn endpoints(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.services.get(&name)?.endpoints()))
}

/// The service endpoint's token, for the owner of the admin token (clients such as
/// `hugflake predict` fetch it instead of reading files).
async fn service_token(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let rt = state.services.get(&name)?;
    Ok(Json(serde_json::json!({ "token": rt.token().expose() })))
}

async fn logs(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
    axum::extract::Query(q): axum::extract::Query<Since>,
) -> Result<impl IntoResponse, ApiError> {
    let rt = state.services.get(&name)?;
    let limit = q.limit.unwrap_or(1000).min(5000);
    if q.previous {
        let lines = rt.logs.previous(q.instance, limit);
        if lines.is_empty() {
            let which = q
                .instance
                .map_or("no instance".to_string(), |i| format!("instance {i}"));
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!(
                    "{which} of {name} has a previous log: an instance gets one when it exits and \
                     restarts (runs before the daemon started are in the service's log file)"
                ),
            ));
        }
        return Ok(Json(lines));
    }
    let waiter = rt.logs.changed.notified();
    let mut lines = rt.logs.since(q.since, limit);
    if lines.is_empty() && q.wait_ms.is_some() {
        let _ = tokio::time::timeout(wait_cap(q.wait_ms), waiter).await;
        lines = rt.logs.since(q.since, limit);
    }
    Ok(Json(lines))
}

async fn metrics(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.services.get(&name)?.metrics.samples()))
}

async fn events(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.services.get(&name)?.logs.events()))
}

async fn models(State(state): State<Shared>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(with_registry(&state, |r| r.models()).await?))
}

async fn versions(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        with_registry(&state, move |r| r.versions(&name)).await?,
    ))
}

async fn drop_model(
    State(state): State<Shared>,
    UrlPath(name): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    tracing::info!(model = %name, "drop model");
    with_registry(&state, move |r| r.drop_version(&name, None)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn drop_version(
    State(state): State<Shared>,
    UrlPath((name, version)): UrlPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    tracing::info!(model = %name, version = %version, "drop version");
    with_registry(&state, move |r| r.drop_version(&name, Some(&version))).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn jobs(State(state): State<Shared>) -> Result<impl IntoResponse, ApiError> {
    let jobs = with_registry(&state, |r| r.jobs()).await?;
    let jobs: Vec<_> = jobs.into_iter().map(|j| state.jobs.shown(j)).collect();
    Ok(Json(jobs))
}

async fn submit_job(
    State(state): State<Shared>,
    body: Result<Json<ImportSpec>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(spec) =
        body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, "INVALID", e.body_text()))?;
    let job = state.jobs.submit(spec).await?;
    Ok((StatusCode::CREATED, Json(job)))
}

async fn job_detail(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    axum::extract::Query(q): axum::extract::Query<Since>,
) -> Result<impl IntoResponse, ApiError> {
    let waiter = state.jobs.changed.notified();
    let detail = state.jobs.detail(&id, q.since).await?;
    let finished = !matches!(
        detail.summary.state,
        crate::domain::JobState::Queued | crate::domain::JobState::Running
    );
    if detail.log.is_empty() && !finished && q.wait_ms.is_some() {
        let _ = tokio::time::timeout(wait_cap(q.wait_ms), waiter).await;
        return Ok(Json(state.jobs.detail(&id, q.since).await?));
    }
    Ok(Json(detail))
}

async fn cancel_job(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.jobs.cancel(&id).await?))
}

async fn retry_job(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.jobs.retry(&id).await?))
}

async fn shutdown(State(state): State<Shared>) -> StatusCode {
    tracing::info!("shutdown requested over the API");
    state.shutdown.cancel();
    StatusCode::ACCEPTED
}
