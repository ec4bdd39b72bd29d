//! The Platform trait: everything a pane shows or does goes through it, and panes never know which
//! platform answers.
//!
//! Two platforms implement it: the local platform (a client of the `hugflake serve` daemon on
//! 127.0.0.1) and Snowflake (SQL API v2 + SPCS ingress). The shape follows what Snowflake exposes:
//! compute pools with Snowflake's states, services (model services and job services), registry
//! models with versions, import jobs with stages. `call` is the one way every face calls a
//! service; `protocol` is the wire format both platforms' services speak.

pub mod call;
pub mod compare;
pub mod local;
pub mod protocol;
pub mod read_only;
pub mod snowflake;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{
    ComputePool, Container, Endpoint, ImportSpec, JobDetail, JobSummary, LogLine, MetricSample,
    ModelVersion, PlatformKind, PlatformStatus, RegisteredModel, Service,
};

/// Why a platform call failed, in words a user can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlatformError {
    #[error("cannot reach {what}: {detail}")]
    Unreachable { what: String, detail: String },
    #[error("{what} refused the credentials: {detail}")]
    Unauthorized { what: String, detail: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the running daemon is version {daemon}, this hugflake is {client}: stop it with `hugflake serve --stop` and try again"
    )]
    VersionMismatch { daemon: String, client: String },
    #[error("{what} answered {status}: {message}")]
    Api {
        what: String,
        status: u16,
        message: String,
    },
    #[error("unexpected answer from {what}: {detail}")]
    Protocol { what: String, detail: String },
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, PlatformError>;

/// Everything the Health pane and `hugflake status` show, fetched together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub status: PlatformStatus,
    pub pools: Vec<ComputePool>,
    pub services: Vec<Service>,
    pub models: Vec<RegisteredModel>,
    pub jobs: Vec<JobSummary>,
    pub fetched_at: DateTime<Utc>,
}

/// The statements an import into `place` runs, each with the spec it binds (the import form's
/// plan on Snowflake).
pub fn import_statements(
    place: &crate::domain::RegistryPlace,
    spec: &ImportSpec,
) -> std::result::Result<Vec<String>, String> {
    use snowflake::ident::Ident;
    let db = Ident::parse(&place.database)?;
    let schema = Ident::parse(&place.schema)?;
    let import = snowflake::spec::import_yaml_in(&db, &schema, place.warehouse.as_deref(), spec)?;
    let deploy = snowflake::spec::deploy_yaml_in(&db, &schema, spec)?;
    let mut lines = vec!["SELECT SYSTEM$IMPORT_MODEL(?)  -- ? bound to:".to_string()];
    lines.extend(import.lines().map(|l| format!("  {l}")));
    lines.push("CALL SYSTEM$DEPLOY_MODEL(?)  -- ? bound to:".into());
    lines.extend(deploy.lines().map(|l| format!("  {l}")));
    Ok(lines)
}

#[async_trait]
pub trait Platform: Send + Sync {
    fn kind(&self) -> PlatformKind;

    /// The name under which a model version lists a service among its inference services:
    /// the name itself locally, the fully qualified name on Snowflake.
    fn service_key(&self, service: &str) -> String {
        service.to_string()
    }

    /// What this client has sent so far: HTTP requests, and SQL statements where the platform
    /// speaks SQL (`hugflake doctor` shows the cost of one refresh from the difference).
    fn traffic(&self) -> Traffic;

    /// Who answers, and since when.
    async fn status(&self) -> Result<PlatformStatus>;

    /// `SHOW COMPUTE POOLS`.
    async fn pools(&self) -> Result<Vec<ComputePool>>;

    /// `SHOW SERVICES` (model services and job services).
    async fn services(&self) -> Result<Vec<Service>>;

    /// `SHOW MODELS` with their versions.
    async fn models(&self) -> Result<Vec<RegisteredModel>>;

    /// Import jobs, newest first.
    async fn jobs(&self) -> Result<Vec<JobSummary>>;

    /// `ALTER COMPUTE POOL .. SUSPEND`: its services are suspended with it.
    async fn suspend_pool(&self, name: &str) -> Result<ComputePool>;

    /// `ALTER COMPUTE POOL .. RESUME`.
    async fn resume_pool(&self, name: &str) -> Result<ComputePool>;

    /// Starts an import (resolve → ... → ready) and returns the queued job.
    async fn import(&self, spec: &ImportSpec) -> Result<JobSummary>;

    /// A job with its stages, file progress and the log lines after `since`; with `wait`, holds
    /// the answer until something new happens or `wait` passes.
    async fn job(
        &self,
        id: &str,
        since: Option<u64>,
        wait: Option<std::time::Duration>,
    ) -> Result<JobDetail>;

    async fn cancel_job(&self, id: &str) -> Result<JobSummary>;

    async fn retry_job(&self, id: &str) -> Result<JobSummary>;

    /// `SHOW VERSIONS IN MODEL` with each version's functions.
    async fn versions(&self, model: &str) -> Result<Vec<ModelVersion>>;

    /// `ALTER MODEL .. DROP VERSION`, or `DROP MODEL` when `version` is `None`.
    async fn drop_model(&self, model: &str, version: Option<&str>) -> Result<()>;

    /// `SHOW SERVICE CONTAINERS IN SERVICE`.
    async fn containers(&self, service: &str) -> Result<Vec<Container>>;

    /// `SHOW ENDPOINTS IN SERVICE`.
    async fn endpoints(&self, service: &str) -> Result<Vec<Endpoint>>;

    /// Container logs after `since`, at most `limit` of the newest; with `wait`, holds the answer
    /// until a line arrives or `wait` passes (follow).
    async fn logs(
        &self,
        service: &str,
        since: Option<u64>,
        limit: usize,
        wait: Option<std::time::Duration>,
    ) -> Result<Vec<LogLine>>;

    /// The log of each instance's run before its last restart (one instance, or every one that
    /// restarted), at most `limit` of the newest lines: the dead container's log, for on-call.
    /// Locally the daemon keeps it; Snowflake's `SYSTEM$GET_SERVICE_LOGS(…, TRUE)`.
    async fn previous_logs(
        &self,
        service: &str,
        instance: Option<u32>,
        limit: usize,
    ) -> Result<Vec<LogLine>>;

    /// The service's events (instances starting, ready, exiting, restarting; suspend/resume),
    /// oldest first: the local daemon's record, or `SPCS_GET_EVENTS` on Snowflake.
    async fn events(&self, service: &str) -> Result<Vec<crate::domain::ServiceEvent>>;

    /// Metrics samples, oldest first.
    async fn metrics(&self, service: &str) -> Result<Vec<MetricSample>>;

    /// Events in a time window (`--since`/`--until`). Locally the daemon's record is filtered;
    /// Snowflake asks `SPCS_GET_EVENTS(START_TIME => …, END_TIME => …)`.
    async fn events_in(
        &self,
        service: &str,
        window: &crate::domain::window::Window,
    ) -> Result<Vec<crate::domain::ServiceEvent>> {
        let all = self.events(service).await?;
        Ok(all.into_iter().filter(|e| window.contains(e.at)).collect())
    }

    /// Metrics samples in a time window.
    async fn metrics_in(
        &self,
        service: &str,
        window: &crate::domain::window::Window,
    ) -> Result<Vec<MetricSample>> {
        let all = self.metrics(service).await?;
        Ok(all.into_iter().filter(|m| window.contains(m.at)).collect())
    }

    /// Log lines in a time window, at most `limit` of the newest.
    async fn logs_in(
        &self,
        service: &str,
        window: &crate::domain::window::Window,
        limit: usize,
    ) -> Result<Vec<LogLine>> {
        let all = self.logs(service, None, 100_000, None).await?;
        let mut lines: Vec<LogLine> = all.into_iter().filter(|l| window.contains(l.at)).collect();
        let skip = lines.len().saturating_sub(limit);
        Ok(lines.split_off(skip))
    }

    /// `ALTER SERVICE .. SUSPEND`.
    async fn suspend_service(&self, name: &str) -> Result<Service>;

    /// `ALTER SERVICE .. RESUME`.
    async fn resume_service(&self, name: &str) -> Result<Service>;

    /// What the service's inference container asks of its node (`DESCRIBE SERVICE` → the spec's
    /// `resources.requests`); `None` where the platform has no such thing or does not say.
    async fn service_requests(&self, _service: &str) -> Result<Option<crate::domain::Resources>> {
        Ok(None)
    }

    /// `ALTER SERVICE .. SET MIN_INSTANCES = .. MAX_INSTANCES = .. AUTO_SUSPEND_SECS = ..`: the
    /// values given change, the others stay.
    async fn alter_service(
        &self,
        name: &str,
        change: &crate::domain::ScalingChange,
    ) -> Result<Service>;

    /// `DROP SERVICE`.
    async fn drop_service(&self, name: &str) -> Result<()>;

    /// Calls a service method over its REST endpoint with rows of inputs (signature order);
    /// returns one output object per row, in order.
    async fn predict(
        &self,
        service: &str,
        method: &str,
        rows: &[Vec<serde_json::Value>],
    ) -> Result<Prediction>;

    /// Calls a model version directly: warehouse inference on Snowflake
    /// (`MODEL(m, v)!METHOD`); locally through a running service of that version.
    async fn predict_version(
        &self,
        model: &str,
        version: &str,
        method: &str,
        rows: &[Vec<serde_json::Value>],
    ) -> Result<Prediction>;
}

/// What a service call returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub outputs: Vec<serde_json::Value>,
    pub latency_ms: f64,
}

/// Requests and statements a platform client has sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    pub requests: u64,
    pub statements: u64,
}

impl std::ops::Sub for Traffic {
    type Output = Traffic;
    fn sub(self, o: Traffic) -> Traffic {
        Traffic {
            requests: self.requests.saturating_sub(o.requests),
            statements: self.statements.saturating_sub(o.statements),
        }
    }
}

/// Fetches a whole snapshot, the calls running concurrently.
pub async fn snapshot(platform: &dyn Platform) -> Result<Snapshot> {
    let (status, pools, services, models, jobs) = tokio::try_join!(
        platform.status(),
        platform.pools(),
        platform.services(),
        platform.models(),
        platform.jobs()
    )?;
    Ok(Snapshot {
        status,
        pools,
        services,
        models,
        jobs,
        fetched_at: Utc::now(),
    })
}

/// The cached revisions the registry's versions read: each version's repo and commit, and for an
/// open_clip version its text tower's repo (every revision: the commit is not recorded).
pub async fn cache_users(
    platform: &dyn Platform,
    hf_cache: &std::path::Path,
) -> Result<Vec<crate::hub::housekeeping::InUse>> {
    use crate::hub::housekeeping::InUse;
    let mut out = Vec::new();
    for m in platform.models().await? {
        for v in platform.versions(&m.name).await? {
            let name = format!("{} {}", v.model, v.name);
            let snapshot = hf_cache
                .join(format!("models--{}", v.source.replace('/', "--")))
                .join("snapshots")
                .join(&v.revision);
            if let Some(tower) = crate::inference::clip::text_tower_of(&snapshot) {
                out.push(InUse {
                    repo: tower,
                    commit: String::new(),
                    version: name.clone(),
                });
            }
            out.push(InUse {
                repo: v.source.clone(),
                commit: v.revision.clone(),
                version: name,
            });
        }
    }
    Ok(out)
}

/// A service's functions: from its model version when the service names it (local), else from the
/// version that lists the service among its inference services (Snowflake's SHOW SERVICES names no
/// model).
pub async fn service_functions(
    platform: &dyn Platform,
    service: &str,
    model: Option<&str>,
    version: Option<&str>,
) -> Result<Vec<crate::domain::Function>> {
    if let (Some(m), Some(v)) = (model, version) {
        return Ok(platform
            .versions(m)
            .await?
            .into_iter()
            .find(|x| x.name == v)
            .map(|x| x.functions)
            .unwrap_or_default());
    }
    let key = platform.service_key(service);
    for m in platform.models().await? {
        if let Some(v) = platform
            .versions(&m.name)
            .await?
            .into_iter()
            .find(|v| v.inference_services.contains(&key))
        {
            return Ok(v.functions);
        }
    }
    Ok(Vec::new())
}

/// The selected service's insides: containers, endpoints, metrics, events and the log tail.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceDetail {
    pub name: String,
    pub containers: Vec<crate::domain::Container>,
    pub endpoints: Vec<crate::domain::Endpoint>,
    pub metrics: Vec<crate::domain::MetricSample>,
    pub logs: Vec<crate::domain::LogLine>,
    /// What the platform did to the service, oldest first.
    pub events: Vec<crate::domain::ServiceEvent>,
    /// Its inference container's resource requests (Snowflake: GPUs, vCPUs, memory).
    pub requests: Option<crate::domain::Resources>,
    /// Parts that could not be read (the others still show).
    pub problems: Vec<String>,
}

impl ServiceDetail {
    /// What the Health pane shows of a service, fetched the way each refresh does: containers,
    /// endpoints, metrics, the last 2,000 log lines and the events, at once; a part that fails is noted and
    /// the others still show.
    pub async fn fetch(p: &dyn Platform, name: String) -> ServiceDetail {
        let (c, e, m, l, ev, rq) = tokio::join!(
            p.containers(&name),
            p.endpoints(&name),
            p.metrics(&name),
            p.logs(&name, None, 2000, None),
            p.events(&name),
            p.service_requests(&name)
        );
        let mut d = ServiceDetail {
            name,
            ..Default::default()
        };
        match c {
            Ok(v) => d.containers = v,
            Err(e) => d.problems.push(format!("containers: {e}")),
        }
        match e {
            Ok(v) => d.endpoints = v,
            Err(e) => d.problems.push(format!("endpoints: {e}")),
        }
        match m {
            Ok(v) => d.metrics = v,
            Err(e) => d.problems.push(format!("metrics: {e}")),
        }
        match l {
            Ok(v) => d.logs = v,
            Err(e) => d.problems.push(format!("logs: {e}")),
        }
        match ev {
            Ok(v) => d.events = v,
            Err(e) => d.problems.push(format!("events: {e}")),
        }
        match rq {
            Ok(v) => d.requests = v,
            Err(e) => d.problems.push(format!("resource requests: {e}")),
        }
        d
    }
}
