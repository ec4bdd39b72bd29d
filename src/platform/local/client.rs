//! The local platform as the panes see it: a client of the daemon's HTTP API on its Unix socket.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

use super::{DaemonInfo, ErrorBody};
use crate::domain::{
    ComputePool, Container, Endpoint, ImportSpec, JobDetail, JobSummary, LogLine, MetricSample,
    ModelVersion, PlatformKind, PlatformStatus, RegisteredModel, Service,
};
use crate::platform::{Platform, PlatformError, Prediction, Result, protocol};
use crate::secret::Secret;

#[derive(Clone)]
pub struct LocalPlatform {
    base: String,
    socket: PathBuf,
    token: Secret,
    /// The control API, on the daemon's socket only.
    http: reqwest::Client,
    /// Service endpoints, on 127.0.0.1 (each call carries that service's own token).
    ingress: reqwest::Client,
    /// Requests sent to the daemon and to service endpoints.
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Each service's endpoint and token, asked of the daemon once and again only when the
    /// endpoint refuses them (401, 404) or cannot be reached (a restart moved it).
    routes: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Route>>>,
    /// The Hub settings of the process this client works for (set by the front door): an
    /// import is refused when the daemon's differ, as the daemon downloads with its own.
    caller_hub: Option<crate::hub::settings::HubIdentity>,
}

/// Where a service answers and the token it takes, and which daemon run said so: a route is
/// never used once another daemon runs (its ports may now belong to any process on 127.0.0.1,
/// which must never see a service token or clinical text).
#[derive(Clone)]
struct Route {
    ingress_url: String,
    token: Secret,
    daemon: Option<(u32, chrono::DateTime<chrono::Utc>)>,
}

impl std::fmt::Debug for LocalPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPlatform")
            .field("socket", &self.socket)
            .field("token", &self.token)
            .finish()
    }
}

fn what(socket: &Path) -> String {
    format!("the local daemon at {}", socket.display())
}

impl LocalPlatform {
    /// Imports check the daemon's Hub settings against `hub` (the caller's).
    pub fn with_caller_hub(mut self, hub: crate::hub::settings::HubIdentity) -> LocalPlatform {
        self.caller_hub = Some(hub);
        self
    }
}

impl LocalPlatform {
    /// A client of the daemon listening on `socket`. Every request goes to that socket and nowhere
    /// else: there is no TCP fallback for the token to leak through.
    pub fn new(socket: &Path, token: Secret) -> Result<LocalPlatform> {
        let http = reqwest::Client::builder()
            .unix_socket(socket)
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("hugflake/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PlatformError::Unreachable {
                what: what(socket),
                detail: describe(&e),
            })?;
        let ingress = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .user_agent(concat!("hugflake/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| PlatformError::Unreachable {
                what: "service endpoints on 127.0.0.1".into(),
                detail: describe(&e),
            })?;
        Ok(LocalPlatform {
            base: "http://hugflake.daemon".into(),
            socket: socket.to_path_buf(),
            token,
            http,
            ingress,
            requests: Default::default(),
            routes: Default::default(),
            caller_hub: None,
        })
    }

    /// Where the daemon listens, for status lines (the home directory written `~`).
    pub fn address(&self) -> String {
        let full = self.socket.display().to_string();
        match std::env::var("HOME") {
            Ok(home) if !home.is_empty() && full.starts_with(&format!("{home}/")) => {
                format!("~{}", &full[home.len()..])
            }
            _ => full,
        }
    }

    /// Sends one request (counted for `traffic`) and reads its whole answer; a transport failure
    /// is `Unreachable` with its cause.
    async fn exchange(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<(reqwest::StatusCode, axum::body::Bytes)> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let unreachable = |e: reqwest::Error| PlatformError::Unreachable {
            what: what.to_string(),
            detail: describe(&e),
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(unreachable)?;
        Ok((status, bytes))
    }

    async fn call<T: DeserializeOwned>(&self, method: reqwest::Method, path: &str) -> Result<T> {
        self.call_with(method, path, None, None).await
    }

    async fn call_with<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        wait: Option<Duration>,
    ) -> Result<T> {
        let what = what(&self.socket);
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token.expose());
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(w) = wait {
            req = req.timeout(w + Duration::from_secs(10));
        }
        let (status, bytes) = self.exchange(req, &what).await?;
        if status.is_success() {
            let bytes = if bytes.is_empty() {
                &b"null"[..]
            } else {
                &bytes[..]
            };
            return serde_json::from_slice(bytes).map_err(|e| PlatformError::Protocol {
                what,
                detail: e.to_string(),
            });
        }
        let message = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|b| b.error.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        Err(match status.as_u16() {
            401 | 403 => PlatformError::Unauthorized {
                what,
                detail: message,
            },
            // The daemon says "service X not found"; the error adds "not found" itself.
            404 => PlatformError::NotFound(
                message
                    .strip_suffix(" not found")
                    .map(str::to_string)
                    .unwrap_or(message),
            ),
            409 => PlatformError::Conflict(message),
            400 => PlatformError::Invalid(message),
            code => PlatformError::Api {
                what,
                status: code,
                message,
            },
        })
    }

    /// `GET /v1/health`: who answers.
    pub async fn info(&self) -> Result<DaemonInfo> {
        self.call(reqwest::Method::GET, "/v1/health").await
    }

    /// Asks the daemon to stop.
    pub async fn shutdown(&self) -> Result<()> {
        self.call::<serde_json::Value>(reqwest::Method::POST, "/v1/shutdown")
            .await
            .map(|_| ())
    }
}

/// reqwest's errors print their URL but not the cause; the cause is what a user needs.
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection refused".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text = format!("{text}: {s_text}");
        }
        source = s.source();
    }
    text
}

#[async_trait]
impl Platform for LocalPlatform {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Local
    }

    fn traffic(&self) -> crate::platform::Traffic {
        crate::platform::Traffic {
            requests: self.requests.load(std::sync::atomic::Ordering::Relaxed),
            statements: 0,
        }
    }

    async fn status(&self) -> Result<PlatformStatus> {
        let info = self.info().await?;
        Ok(PlatformStatus {
            kind: PlatformKind::Local,
            location: self.address(),
            version: info.version,
            pid: Some(info.pid),
            started_at: Some(info.started_at),
            details: vec![("data dir".into(), info.data_dir.display().to_string())],
            default_pool: Some(super::daemon::registry::DEFAULT_POOL.to_string()),
            registry: None,
        })
    }

    async fn pools(&self) -> Result<Vec<ComputePool>> {
        self.call(reqwest::Method::GET, "/v1/pools").await
    }

    async fn services(&self) -> Result<Vec<Service>> {
        self.call(reqwest::Method::GET, "/v1/services").await
    }

    async fn models(&self) -> Result<Vec<RegisteredModel>> {
        self.call(reqwest::Method::GET, "/v1/models").await
    }

    async fn jobs(&self) -> Result<Vec<JobSummary>> {
        self.call(reqwest::Method::GET, "/v1/jobs").await
    }

    async fn suspend_pool(&self, name: &str) -> Result<ComputePool> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/pools/{}/suspend", crate::http::encode_segment(name)),
        )
        .await
    }

    async fn resume_pool(&self, name: &str) -> Result<ComputePool> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/pools/{}/resume", crate::http::encode_segment(name)),
        )
        .await
    }

    async fn import(&self, spec: &ImportSpec) -> Result<JobSummary> {
        // The daemon downloads with the Hub settings it was started with: when they are not this
        // process's (a fresh HF_TOKEN for a gated repo, say), the import is refused, saying how.
        if let Some(mine) = &self.caller_hub {
            let info = self.info().await?;
            if let Some(theirs) = &info.hub {
                let differences = theirs.differences(mine);
                if !differences.is_empty() {
                    return Err(PlatformError::Invalid(format!(
                        "the local daemon (pid {}) was started with {}; it would import with those, not yours. Stop it with `hugflake serve --stop` and import again: it restarts with your settings",
                        info.pid,
                        differences.join(", ")
                    )));
                }
            }
        }
        let body = serde_json::to_value(spec).map_err(|e| PlatformError::Other(e.to_string()))?;
        self.call_with(reqwest::Method::POST, "/v1/jobs", Some(body), None)
            .await
    }

    async fn job(&self, id: &str, since: Option<u64>, wait: Option<Duration>) -> Result<JobDetail> {
        let mut q = Vec::new();
        if let Some(s) = since {
            q.push(format!("since={s}"));
        }
        if let Some(w) = wait {
            q.push(format!("wait_ms={}", w.as_millis()));
        }
        let path = format!(
            "/v1/jobs/{}?{}",
            crate::http::encode_segment(id),
            q.join("&")
        );
        self.call_with(reqwest::Method::GET, &path, None, wait)
            .await
    }

    async fn cancel_job(&self, id: &str) -> Result<JobSummary> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/jobs/{}/cancel", crate::http::encode_segment(id)),
        )
        .await
    }

    async fn retry_job(&self, id: &str) -> Result<JobSummary> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/jobs/{}/retry", crate::http::encode_segment(id)),
        )
        .await
    }

    async fn versions(&self, model: &str) -> Result<Vec<ModelVersion>> {
        self.call(
            reqwest::Method::GET,
            &format!("/v1/models/{}/versions", crate::http::encode_segment(model)),
        )
        .await
    }

    async fn drop_model(&self, model: &str, version: Option<&str>) -> Result<()> {
        let path = match version {
            Some(v) => format!(
                "/v1/models/{}/versions/{}",
                crate::http::encode_segment(model),
                crate::http::encode_segment(v)
            ),
            None => format!("/v1/models/{}", crate::http::encode_segment(model)),
        };
        self.call::<serde_json::Value>(reqwest::Method::DELETE, &path)
            .await
            .map(|_| ())
    }

    async fn containers(&self, service: &str) -> Result<Vec<Container>> {
        self.call(
            reqwest::Method::GET,
            &format!(
                "/v1/services/{}/containers",
                crate::http::encode_segment(service)
            ),
        )
        .await
    }

    async fn endpoints(&self, service: &str) -> Result<Vec<Endpoint>> {
        self.call(
            reqwest::Method::GET,
            &format!(
                "/v1/services/{}/endpoints",
                crate::http::encode_segment(service)
            ),
        )
        .await
    }

    async fn logs(
        &self,
        service: &str,
        since: Option<u64>,
        limit: usize,
        wait: Option<Duration>,
    ) -> Result<Vec<LogLine>> {
        let mut q = vec![format!("limit={limit}")];
        if let Some(s) = since {
            q.push(format!("since={s}"));
        }
        if let Some(w) = wait {
            q.push(format!("wait_ms={}", w.as_millis()));
        }
        let path = format!(
            "/v1/services/{}/logs?{}",
            crate::http::encode_segment(service),
            q.join("&")
        );
        self.call_with(reqwest::Method::GET, &path, None, wait)
            .await
    }

    async fn previous_logs(
        &self,
        service: &str,
        instance: Option<u32>,
        limit: usize,
    ) -> Result<Vec<LogLine>> {
        let mut path = format!(
            "/v1/services/{}/logs?previous=true&limit={limit}",
            crate::http::encode_segment(service)
        );
        if let Some(i) = instance {
            path.push_str(&format!("&instance={i}"));
        }
        self.call(reqwest::Method::GET, &path).await
    }

    async fn events(&self, service: &str) -> Result<Vec<crate::domain::ServiceEvent>> {
        self.call(
            reqwest::Method::GET,
            &format!(
                "/v1/services/{}/events",
                crate::http::encode_segment(service)
            ),
        )
        .await
    }

    async fn metrics(&self, service: &str) -> Result<Vec<MetricSample>> {
        self.call(
            reqwest::Method::GET,
            &format!(
                "/v1/services/{}/metrics",
                crate::http::encode_segment(service)
            ),
        )
        .await
    }

    async fn suspend_service(&self, name: &str) -> Result<Service> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/services/{}/suspend", crate::http::encode_segment(name)),
        )
        .await
    }

    async fn resume_service(&self, name: &str) -> Result<Service> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/services/{}/resume", crate::http::encode_segment(name)),
        )
        .await
    }

    async fn alter_service(
        &self,
        name: &str,
        change: &crate::domain::ScalingChange,
    ) -> Result<Service> {
        let body = serde_json::to_value(change).map_err(|e| PlatformError::Other(e.to_string()))?;
        self.call_with(
            reqwest::Method::POST,
            &format!("/v1/services/{}/scaling", crate::http::encode_segment(name)),
            Some(body),
            None,
        )
        .await
    }

    async fn drop_service(&self, name: &str) -> Result<()> {
        self.call::<serde_json::Value>(
            reqwest::Method::DELETE,
            &format!("/v1/services/{}", crate::http::encode_segment(name)),
        )
        .await
        .map(|_| ())
    }

    async fn predict_version(
        &self,
        model: &str,
        version: &str,
        method: &str,
        rows: &[Vec<serde_json::Value>],
    ) -> Result<Prediction> {
        let services = self.services().await?;
        let svc = services
            .iter()
            .find(|s| {
                s.model.as_deref() == Some(model)
                    && s.model_version.as_deref() == Some(version)
                    && s.status == crate::domain::ServiceStatus::Running
            })
            .ok_or_else(|| {
                PlatformError::Conflict(format!(
                    "on the local platform a model version answers through a service, and no RUNNING service serves {model} {version}: deploy it or resume its service"
                ))
            })?;
        self.predict(&svc.name, method, rows).await
    }

    /// One request per call once the service's route is known: the endpoint and token are
    /// asked of the daemon the first time, and again when the daemon that gave them is no longer
    /// the one running (read from `daemon.json`, no request), when the endpoint refuses the token
    /// (401) or when nothing accepts the connection. A call is sent twice only when the first
    /// never connected.
    async fn predict(
        &self,
        service: &str,
        method: &str,
        rows: &[Vec<serde_json::Value>],
    ) -> Result<Prediction> {
        let body = protocol::request(rows);
        let running = self.daemon_run();
        let cached = self
            .routes
            .lock()
            .ok()
            .and_then(|r| r.get(service).cloned())
            .filter(|r| r.daemon.is_some() && r.daemon == running);
        let mut fresh = cached.is_none();
        let mut route = match cached {
            Some(r) => r,
            None => self.route(service).await?,
        };
        loop {
            let what = format!("service {service} at {}", route.ingress_url);
            let url = format!(
                "http://{}{}",
                route.ingress_url,
                crate::domain::platform::rest_path(method)
            );
            let started = std::time::Instant::now();
            let req = self
                .ingress
                .post(&url)
                .header(
                    "Authorization",
                    crate::http::snowflake_token(route.token.expose()),
                )
                .timeout(Duration::from_secs(300))
                .json(&body);
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let answer = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    resp.bytes()
                        .await
                        .map(|b| (status, b))
                        .map_err(|e| (false, e))
                }
                Err(e) => Err((e.is_connect(), e)),
            };
            let stale = match &answer {
                Ok((status, _)) => status.as_u16() == 401,
                Err((never_connected, _)) => *never_connected,
            };
            if stale && !fresh {
                if let Ok(mut r) = self.routes.lock() {
                    r.remove(service);
                }
                route = self.route(service).await?;
                fresh = true;
                continue;
            }
            if fresh
                && !stale
                && let Ok(mut r) = self.routes.lock()
            {
                r.insert(service.to_string(), route.clone());
            }
            let (status, bytes) = answer.map_err(|(_, e)| PlatformError::Unreachable {
                what: what.clone(),
                detail: describe(&e),
            })?;
            return self.prediction(what, status, &bytes, rows.len(), started);
        }
    }
}

impl LocalPlatform {
    /// The running daemon's pid and start time, from `daemon.json` beside its socket.
    fn daemon_run(&self) -> Option<(u32, chrono::DateTime<chrono::Utc>)> {
        let dir = self.socket.parent()?;
        super::DaemonFiles::new(dir)
            .read_info()
            .map(|i| (i.pid, i.started_at))
    }

    /// A service's endpoint and token, from the daemon.
    async fn route(&self, service: &str) -> Result<Route> {
        let endpoint = self
            .endpoints(service)
            .await?
            .into_iter()
            .find(|e| e.name == "inference")
            .ok_or_else(|| {
                PlatformError::NotFound(format!("an inference endpoint of {service}"))
            })?;
        let token: serde_json::Value = self
            .call(
                reqwest::Method::GET,
                &format!(
                    "/v1/services/{}/token",
                    crate::http::encode_segment(service)
                ),
            )
            .await?;
        Ok(Route {
            ingress_url: endpoint.ingress_url,
            token: Secret::new(token["token"].as_str().unwrap_or_default()),
            daemon: self.daemon_run(),
        })
    }

    /// A service's answer as a prediction, or the error it carries.
    fn prediction(
        &self,
        what: String,
        status: reqwest::StatusCode,
        bytes: &[u8],
        rows: usize,
        started: std::time::Instant,
    ) -> Result<Prediction> {
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let value: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(bytes).chars().take(200).collect());
            return Err(PlatformError::Api {
                what,
                status: status.as_u16(),
                message,
            });
        }
        let outputs = protocol::parse_response(&value, rows)
            .map_err(|detail| PlatformError::Protocol { what, detail })?;
        Ok(Prediction {
            outputs,
            latency_ms,
        })
    }
}
