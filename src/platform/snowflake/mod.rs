//! The Snowflake platform: the same Platform trait as the local one, answered by a Snowflake
//! account through the SQL API v2 (SHOW ... for health, ALTER/DROP for changes,
//! SYSTEM$IMPORT_MODEL and SYSTEM$DEPLOY_MODEL for imports) and the SPCS REST ingress for
//! inference. Read `SNOWFLAKE.md` beside DESIGN.md for every fact used here; lines marked (?) there
//! are marked in comments here too.

pub mod auth;
pub mod connection;
pub mod ident;
pub mod ingress;
pub mod jobs;
pub mod readiness;
pub mod spec;
pub mod sqlapi;
pub mod statements;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use self::connection::{Auth, Connection};
use self::ident::{Ident, Qualified};
use self::sqlapi::{Context, ResultSet, SqlApi, SqlError};
use self::statements::Statement;
use crate::domain::{
    ComputePool, Container, Endpoint, ImportSpec, InstanceStatus, JobDetail, JobSummary, LogLine,
    MetricSample, ModelVersion, PlatformKind, PlatformStatus, PoolState, RegisteredModel, Service,
    ServiceStatus,
};
use crate::platform::{Platform, PlatformError, Prediction, Result};
use crate::secret::Secret;

impl From<SqlError> for PlatformError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::Unreachable { url, detail } => PlatformError::Unreachable {
                what: format!("Snowflake at {url}"),
                detail,
            },
            SqlError::Unauthorized { message, .. } => PlatformError::Unauthorized {
                what: "Snowflake".into(),
                detail: message,
            },
            SqlError::Statement { code, message, .. } if code == "002003" => {
                PlatformError::NotFound(message)
            }
            SqlError::Http { status, message } => PlatformError::Api {
                what: "Snowflake".into(),
                status,
                message,
            },
            other => PlatformError::Other(other.to_string()),
        }
    }
}

/// How inference calls reach a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InferenceRoute {
    /// `SELECT <svc>!METHOD(?)` through the SQL API.
    Sql,
    /// The service's public endpoint (`SHOW ENDPOINTS` → ingress_url).
    Rest,
}

pub struct SnowflakePlatform {
    pub api: Arc<SqlApi>,
    pub connection: String,
    account: String,
    user: String,
    auth: Auth,
    pub database: Ident,
    pub schema: Ident,
    route: InferenceRoute,
    jobs: Arc<jobs::JobStore>,
    http: reqwest::Client,
    /// `SHOW COMPUTE POOL INSTANCE FAMILIES`: each family's size, read once.
    families: tokio::sync::Mutex<Option<HashMap<String, Family>>>,
    /// Each service's resource requests (`DESCRIBE SERVICE`), read once: they change only when
    /// the service is deployed again, and Health reads them at every refresh of its detail.
    requests: std::sync::Mutex<HashMap<String, Option<crate::domain::Resources>>>,
    /// Whether the connection points at a loopback test server (plain http allowed for ingress).
    loopback: bool,
    /// How often a running import is polled (the official client: every 2 s).
    poll_every: Duration,
    /// How long an import's build and deploy may take before it fails (the official client: 30
    /// minutes).
    deadline: Duration,
    /// OAuth tokens exchanged for the key-pair JWT, per ingress host, with when they were issued.
    ingress_tokens: Arc<std::sync::Mutex<HashMap<String, (Secret, std::time::Instant)>>>,
    /// Where each model version may run (SHOW VERSIONS `runnable_in`), read once per version.
    runnable: Arc<std::sync::Mutex<RunnableIn>>,
    /// Each service's functions (from its version's SHOW FUNCTIONS), read once per service: which
    /// arguments are BINARY decides how images travel.
    signatures: Arc<std::sync::Mutex<HashMap<String, Vec<crate::domain::Function>>>>,
}

/// `runnable_in` by (model, version), both as SQL names.
type RunnableIn = HashMap<(String, String), Vec<String>>;

impl std::fmt::Debug for SnowflakePlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakePlatform")
            .field("connection", &self.connection)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

fn ts(v: Option<&str>) -> Option<DateTime<Utc>> {
    let v = v?;
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    // TIMESTAMP_LTZ/NTZ on the wire: "seconds.fraction", TZ: "seconds.fraction offset".
    let secs = v.split_whitespace().next()?;
    let f: f64 = secs.parse().ok()?;
    Utc.timestamp_opt(f.trunc() as i64, ((f.fract()) * 1e9) as u32)
        .single()
}

fn num(v: Option<&str>) -> u32 {
    v.and_then(|s| s.parse::<f64>().ok())
        .map_or(0, |f| f as u32)
}

fn truthy(v: Option<&str>) -> bool {
    v.is_some_and(|s| s.eq_ignore_ascii_case("true"))
}

/// Parses a VARIANT/ARRAY/OBJECT cell: JSON text, except that an array's NULL prints as
/// `undefined` (SNOWFLAKE.md §7).
pub fn variant(v: Option<&str>) -> Value {
    let Some(s) = v else {
        return Value::Null;
    };
    serde_json::from_str(s)
        .or_else(|_| serde_json::from_str(&s.replace("undefined", "null")))
        .unwrap_or_else(|_| Value::String(s.to_string()))
}

impl SnowflakePlatform {
    /// Connects (lazily: nothing is sent until the first call) with a resolved connection.
    pub fn new(
        conn: &Connection,
        env: &dyn crate::paths::Env,
        data_dir: &std::path::Path,
        route: InferenceRoute,
    ) -> Result<SnowflakePlatform> {
        let bad = |e: connection::ConnectionError| PlatformError::Other(e.to_string());
        let account = conn.account().map_err(bad)?.to_string();
        let user = conn.user().map_err(bad)?.to_string();
        let auth = conn.auth(env).map_err(bad)?;
        crate::fault::panic_point("snowflake-credentials", || match &auth {
            connection::Auth::Pat(t) | connection::Auth::OAuth(t) => {
                format!("Authorization: Bearer {}", t.expose())
            }
            connection::Auth::KeyPair { passphrase, .. } => format!(
                "passphrase {}",
                passphrase.as_ref().map(|p| p.expose()).unwrap_or_default()
            ),
        });
        let database = Ident::parse(conn.get("database").ok_or_else(|| {
            PlatformError::Other(format!(
                "connection `{}` has no database: models and services live in a database.schema",
                conn.name
            ))
        })?)
        .map_err(PlatformError::Other)?;
        let schema =
            Ident::parse(conn.get("schema").unwrap_or("PUBLIC")).map_err(PlatformError::Other)?;
        let base = conn.base_url().map_err(bad)?;
        // The SQL API's context fields are case-sensitive names: `role = "ml_engineer"` means the
        // role ML_ENGINEER, so role and warehouse go through the identifier rules as database and
        // schema do (unquoted → upper case; "quoted" kept exactly).
        let stored = |key: &str| -> Result<Option<String>> {
            conn.get(key)
                .filter(|v| !v.trim().is_empty())
                .map(|v| {
                    Ident::parse(v).map(|i| i.name).map_err(|e| {
                        PlatformError::Other(format!("connection `{}`: {key}: {e}", conn.name))
                    })
                })
                .transpose()
        };
        let context = Context {
            database: Some(database.name.clone()),
            schema: Some(schema.name.clone()),
            warehouse: stored("warehouse")?,
            role: stored("role")?,
        };
        let api =
            SqlApi::new(&base, &auth, &account, &user, context).map_err(PlatformError::from)?;
        let loopback = conn
            .get("host")
            .is_some_and(|h| h == "127.0.0.1" || h == "localhost");
        let store = jobs::JobStore::open(&data_dir.join("snowflake").join(&conn.name))
            .map_err(PlatformError::Other)?;
        let http = reqwest::Client::builder()
            .user_agent(format!("hugflake/{}", crate::VERSION))
            .timeout(Duration::from_secs(65))
            .build()
            .unwrap_or_default();
        let platform = SnowflakePlatform {
            api: Arc::new(api),
            connection: conn.name.clone(),
            account,
            user,
            auth,
            database,
            schema,
            route,
            jobs: Arc::new(store),
            http,
            families: tokio::sync::Mutex::new(None),
            requests: std::sync::Mutex::new(HashMap::new()),
            loopback,
            poll_every: Duration::from_secs(2),
            deadline: Duration::from_secs(30 * 60),
            ingress_tokens: Default::default(),
            runnable: Default::default(),
            signatures: Default::default(),
        };
        Ok(platform)
    }

    /// Polls faster or slower than every 2 s (tests use a simulator that moves quickly).
    pub fn with_poll_every(mut self, every: Duration) -> SnowflakePlatform {
        self.poll_every = every;
        self
    }

    pub fn poll_every(&self) -> Duration {
        self.poll_every
    }

    /// A shorter (tests) or longer limit for an import's build and deploy.
    pub fn with_deadline(mut self, deadline: Duration) -> SnowflakePlatform {
        self.deadline = deadline;
        self
    }

    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    pub async fn run(&self, st: &Statement) -> std::result::Result<ResultSet, SqlError> {
        self.api
            .execute(&st.sql, &st.bindings, Duration::from_secs(120))
            .await
    }

    /// The lines of one `SYSTEM$GET_SERVICE_LOGS` answer (one string, newline separated), with
    /// terminal escapes stripped.
    async fn log_lines(&self, statement: &statements::Statement) -> Result<Vec<String>> {
        let rs = self.run(statement).await?;
        Ok(rs
            .scalar()
            .unwrap_or("")
            .lines()
            .map(crate::domain::units::strip_control)
            .collect())
    }

    /// `name` in this connection's database and schema (or as qualified as given).
    pub fn qualify(&self, name: &str) -> Result<Qualified> {
        Qualified::parse(name, &self.database, &self.schema).map_err(PlatformError::Invalid)
    }

    fn pool_ident(name: &str) -> Result<Ident> {
        Ident::parse(name).map_err(PlatformError::Invalid)
    }

    /// The account's instance families (`SHOW COMPUTE POOL INSTANCE FAMILIES`: name, vcpu,
    /// memory_gib, gpu, gpu_count, gpu_memory_gib; docs.snowflake.com
    /// sql-reference/sql/show-compute-pool-instance-families), read once.
    pub async fn families(&self) -> HashMap<String, Family> {
        let mut guard = self.families.lock().await;
        if let Some(f) = guard.as_ref() {
            return f.clone();
        }
        let st = Statement {
            sql: "SHOW COMPUTE POOL INSTANCE FAMILIES".into(),
            bindings: vec![],
        };
        let map: HashMap<String, Family> = match self.run(&st).await {
            Ok(rs) => (0..rs.len())
                .filter_map(|i| {
                    let name = rs.get(i, "name")?.to_string();
                    let count: u32 = rs
                        .get(i, "gpu_count")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    Some((
                        name,
                        Family {
                            vcpu: rs.get(i, "vcpu")?.parse().ok()?,
                            memory_gib: rs.get(i, "memory_gib")?.parse().ok()?,
                            // "gpu" is the GPU's kind, an empty string when there is none.
                            gpu: rs
                                .text(i, "gpu")
                                .filter(|g| !g.trim().is_empty() && count > 0),
                            gpu_count: count,
                            gpu_memory_gib: rs
                                .get(i, "gpu_memory_gib")
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(0.0),
                        },
                    ))
                })
                .collect(),
            // Not kept: the next look asks again (a passing error must not hide the sizes).
            Err(e) => {
                tracing::debug!(error = %e, "no instance families");
                return HashMap::new();
            }
        };
        *guard = Some(map.clone());
        map
    }

    fn service_from_row(&self, rs: &ResultSet, i: usize) -> Option<Service> {
        let name = rs.get(i, "name")?.to_string();
        Some(Service {
            status: rs
                .get(i, "status")
                .and_then(|s| s.parse().ok())
                .unwrap_or(ServiceStatus::InternalError),
            database: rs.get(i, "database_name").map(str::to_string),
            schema: rs.get(i, "schema_name").map(str::to_string),
            compute_pool: rs.get(i, "compute_pool").unwrap_or("").to_string(),
            current_instances: num(rs.get(i, "current_instances")),
            target_instances: num(rs.get(i, "target_instances")),
            min_instances: num(rs.get(i, "min_instances")),
            max_instances: num(rs.get(i, "max_instances")),
            auto_suspend_secs: rs.get(i, "auto_suspend_secs").and_then(|s| s.parse().ok()),
            auto_suspended: false,
            cold_start_ms: None,
            // SHOW SERVICES has no ready count: ready = current when RUNNING (containers tell more).
            ready_instances: if rs.get(i, "status") == Some("RUNNING") {
                num(rs.get(i, "current_instances"))
            } else {
                0
            },
            model: None,
            model_version: None,
            endpoint: rs.get(i, "dns_name").map(str::to_string),
            is_job: truthy(rs.get(i, "is_job")),
            created_on: ts(rs.get(i, "created_on")).unwrap_or_else(Utc::now),
            resumed_on: ts(rs.get(i, "resumed_on")),
            suspended_on: ts(rs.get(i, "suspended_on")),
            precision: None,
            calibration: None,
            message: rs.text(i, "comment"),
            name,
        })
    }

    async fn pool_named(&self, name: &str) -> Result<ComputePool> {
        let pools = self.pools().await?;
        let id = Self::pool_ident(name)?;
        pools
            .into_iter()
            .find(|p| p.name == id.name)
            .ok_or_else(|| PlatformError::NotFound(format!("compute pool {name}")))
    }

    /// `SHOW SERVICES IN SCHEMA db.schema` of any schema (job services live in the model's and
    /// the service's schema, which need not be the connection's).
    pub async fn services_in(&self, database: &Ident, schema: &Ident) -> Result<Vec<Service>> {
        let rs = self
            .run(&statements::show_services(database, schema))
            .await?;
        Ok((0..rs.len())
            .filter_map(|i| self.service_from_row(&rs, i))
            .collect())
    }

    /// The service with exactly this fully qualified name, if it exists.
    pub async fn service_in(&self, q: &Qualified) -> Result<Option<Service>> {
        Ok(self
            .services_in(&q.database, &q.schema)
            .await?
            .into_iter()
            .find(|s| s.name == q.name.name))
    }

    async fn service_named(&self, q: &Qualified) -> Result<Service> {
        self.services()
            .await?
            .into_iter()
            .find(|s| {
                s.name == q.name.name
                    && s.database.as_deref() == Some(q.database.name.as_str())
                    && s.schema.as_deref() == Some(q.schema.name.as_str())
            })
            .ok_or_else(|| PlatformError::NotFound(format!("service {q}")))
    }

    /// Refuses warehouse inference on a version that was not logged for it (SHOW VERSIONS
    /// `runnable_in` without `WAREHOUSE`), with what to do, before any call is sent.
    pub async fn check_warehouse(&self, model: &Qualified, version: &Ident) -> Result<()> {
        let key = (model.sql(), version.sql());
        let known = self.runnable.lock().ok().and_then(|c| c.get(&key).cloned());
        let runnable_in = match known {
            Some(r) => r,
            None => {
                let versions = self.versions(&model.sql()).await?;
                let Some(v) = versions.into_iter().find(|x| x.name == version.name) else {
                    return Err(PlatformError::NotFound(format!(
                        "version {} of model {model}",
                        version.name
                    )));
                };
                v.runnable_in
            }
        };
        if runnable_in.is_empty() || runnable_in.iter().any(|r| r == "WAREHOUSE") {
            return Ok(());
        }
        Err(PlatformError::Conflict(warehouse_refusal(
            model,
            version,
            &runnable_in,
        )))
    }
}

/// The resource requests of a service spec's inference container (`model-inference`, else the
/// first container that has any); `None` when it asks for nothing or the spec does not parse.
pub fn spec_requests(spec: &str) -> Option<crate::domain::Resources> {
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(spec).ok()?;
    let containers = v.get("spec")?.get("containers")?.as_sequence()?;
    let requests_of = |c: &serde_yaml_ng::Value| c.get("resources")?.get("requests").cloned();
    let requests = containers
        .iter()
        .find(|c| c.get("name").and_then(|n| n.as_str()) == Some("model-inference"))
        .and_then(requests_of)
        .or_else(|| containers.iter().find_map(requests_of))?;
    let text = |key: &str| -> Option<String> {
        match requests.get(key)? {
            serde_yaml_ng::Value::String(s) => Some(s.clone()),
            serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let r = crate::domain::Resources {
        gpu: text("nvidia.com/gpu").and_then(|g| g.parse().ok()),
        cpu: text("cpu"),
        memory: text("memory"),
    };
    (!r.is_empty()).then_some(r)
}

/// One instance family: a node's size.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Family {
    pub vcpu: f64,
    pub memory_gib: f64,
    pub gpu: Option<String>,
    pub gpu_count: u32,
    /// Per GPU.
    pub gpu_memory_gib: f64,
}

fn pool_from_row(
    rs: &ResultSet,
    i: usize,
    families: &HashMap<String, Family>,
) -> Option<ComputePool> {
    let family = rs.get(i, "instance_family").unwrap_or("").to_string();
    let f = families.get(&family).cloned().unwrap_or_default();
    let (vcpu, mem) = (f.vcpu, f.memory_gib);
    Some(ComputePool {
        name: rs.get(i, "name")?.to_string(),
        state: rs
            .get(i, "state")
            .and_then(|s| s.parse().ok())
            .unwrap_or(PoolState::Unknown),
        min_nodes: num(rs.get(i, "min_nodes")),
        max_nodes: num(rs.get(i, "max_nodes")),
        instance_family: family,
        vcpu,
        memory_gib: mem,
        gpu: f.gpu_count,
        gpu_type: f.gpu,
        gpu_memory_gib: f.gpu_memory_gib,
        active_nodes: num(rs.get(i, "active_nodes")),
        idle_nodes: num(rs.get(i, "idle_nodes")),
        num_services: num(rs.get(i, "num_services")),
        num_jobs: num(rs.get(i, "num_jobs")),
        auto_suspend_secs: rs.get(i, "auto_suspend_secs").and_then(|s| s.parse().ok()),
        auto_resume: truthy(rs.get(i, "auto_resume")),
        created_on: ts(rs.get(i, "created_on")).unwrap_or_else(Utc::now),
        resumed_on: ts(rs.get(i, "resumed_on")),
        updated_on: ts(rs.get(i, "updated_on")),
        comment: rs.text(i, "comment"),
        error_code: rs.text(i, "error_code"),
        status_message: rs.text(i, "status_message"),
    })
}

#[async_trait]
impl Platform for SnowflakePlatform {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Snowflake
    }

    /// Services are matched on their fully qualified name (`ML.PUBLIC.MY_SVC`).
    fn service_key(&self, service: &str) -> String {
        self.qualify(service)
            .map_or_else(|_| service.to_string(), |q| q.sql())
    }

    /// The SQL API's requests and statements (REST ingress calls to services are not counted).
    fn traffic(&self) -> crate::platform::Traffic {
        self.api.traffic()
    }

    async fn status(&self) -> Result<PlatformStatus> {
        let rs = self.run(&statements::current_context()).await?;
        let cell = |i: usize| rs.rows.first().and_then(|r| r.get(i)).cloned().flatten();
        let warehouse = cell(3).unwrap_or_default();
        Ok(PlatformStatus {
            kind: PlatformKind::Snowflake,
            location: format!("{} ({})", self.account, self.api.base()),
            version: cell(4).unwrap_or_default(),
            pid: None,
            started_at: None,
            details: vec![
                ("connection".into(), self.connection.clone()),
                ("user".into(), cell(1).unwrap_or_else(|| self.user.clone())),
                ("role".into(), cell(2).unwrap_or_default()),
                ("warehouse".into(), warehouse.clone()),
                (
                    "schema".into(),
                    format!("{}.{}", self.database, self.schema),
                ),
            ],
            default_pool: None,
            registry: Some(crate::domain::RegistryPlace {
                database: self.database.to_string(),
                schema: self.schema.to_string(),
                warehouse: Some(warehouse).filter(|w| !w.is_empty()),
            }),
        })
    }

    async fn pools(&self) -> Result<Vec<ComputePool>> {
        let rs = self.run(&statements::show_compute_pools()).await?;
        let families = self.families().await;
        Ok((0..rs.len())
            .filter_map(|i| pool_from_row(&rs, i, &families))
            .collect())
    }

    async fn services(&self) -> Result<Vec<Service>> {
        let rs = self
            .run(&statements::show_services(&self.database, &self.schema))
            .await?;
        Ok((0..rs.len())
            .filter_map(|i| self.service_from_row(&rs, i))
            .collect())
    }

    async fn models(&self) -> Result<Vec<RegisteredModel>> {
        let rs = self
            .run(&statements::show_models(&self.database, &self.schema))
            .await?;
        Ok((0..rs.len())
            .filter_map(|i| {
                let versions = variant(rs.get(i, "versions"));
                Some(RegisteredModel {
                    name: rs.get(i, "name")?.to_string(),
                    database: rs.get(i, "database_name").map(str::to_string),
                    schema: rs.get(i, "schema_name").map(str::to_string),
                    default_version: rs.get(i, "default_version_name").map(str::to_string),
                    versions: versions
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    source: None,
                    comment: rs.text(i, "comment"),
                    created_on: ts(rs.get(i, "created_on")).unwrap_or_else(Utc::now),
                })
            })
            .collect())
    }

    async fn jobs(&self) -> Result<Vec<JobSummary>> {
        self.jobs.reattach(self);
        Ok(self.jobs.summaries())
    }

    async fn suspend_pool(&self, name: &str) -> Result<ComputePool> {
        self.run(&statements::alter_pool(&Self::pool_ident(name)?, true))
            .await?;
        self.pool_named(name).await
    }

    async fn resume_pool(&self, name: &str) -> Result<ComputePool> {
        self.run(&statements::alter_pool(&Self::pool_ident(name)?, false))
            .await?;
        self.pool_named(name).await
    }

    async fn import(&self, spec: &ImportSpec) -> Result<JobSummary> {
        spec.check_instances().map_err(PlatformError::Invalid)?;
        spec.resources.check().map_err(PlatformError::Invalid)?;
        if spec.precision.is_reduced() {
            return Err(PlatformError::Invalid(format!(
                "--precision {} is a local serving choice: Snowflake's inference container runs \
                 the model with transformers in fp32",
                spec.precision
            )));
        }
        if let Some(secs) = spec.auto_suspend_secs {
            return Err(PlatformError::Invalid(format!(
                "--auto-suspend-secs {secs}: SYSTEM$DEPLOY_MODEL's spec has no such key (snowflake-ml-python's \
                 deployment spec); import without it, then `hugflake scale {} --auto-suspend-secs {secs}` \
                 (ALTER SERVICE … SET AUTO_SUSPEND_SECS)",
                spec.service
            )));
        }
        jobs::start(self, spec.clone()).await
    }

    async fn job(&self, id: &str, since: Option<u64>, wait: Option<Duration>) -> Result<JobDetail> {
        self.jobs.reattach(self);
        self.jobs.detail(id, since, wait).await
    }

    async fn cancel_job(&self, id: &str) -> Result<JobSummary> {
        jobs::cancel(self, id).await
    }

    async fn retry_job(&self, id: &str) -> Result<JobSummary> {
        jobs::retry(self, id).await
    }

    async fn versions(&self, model: &str) -> Result<Vec<ModelVersion>> {
        let q = self.qualify(model)?;
        let rs = self.run(&statements::show_versions(&q)).await?;
        let mut out = Vec::new();
        for i in 0..rs.len() {
            let Some(name) = rs.get(i, "name") else {
                continue;
            };
            let version = Ident::from_stored(name);
            let functions = match self.run(&statements::show_functions(&q, &version)).await {
                Ok(f) => (0..f.len())
                    .filter_map(|j| {
                        Some(crate::domain::Function {
                            name: f.get(j, "name")?.to_string(),
                            arguments: parse_signature(f.get(j, "arguments")),
                            returns: parse_signature(f.get(j, "return_type")),
                            required: f.get(j, "min_num_arguments").and_then(|n| n.parse().ok()),
                        })
                    })
                    .collect(),
                Err(_) => Vec::new(),
            };
            let attributes = variant(rs.get(i, "model_attributes"));
            let strings = |v: Value| -> Vec<String> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            // Fully qualified names; the image build jobs are listed too and are not services
            // of the version (snowflake-ml-python filters `MODEL_BUILD_` the same way).
            let inference_services = strings(variant(rs.get(i, "inference_services")))
                .into_iter()
                .filter(|s| !s.contains("MODEL_BUILD_"))
                .map(|s| self.qualify(&s).map_or(s, |q| q.sql()))
                .collect();
            let runnable_in = strings(variant(rs.get(i, "runnable_in")));
            if let Ok(mut cache) = self.runnable.lock() {
                cache.insert((q.sql(), version.sql()), runnable_in.clone());
            }
            out.push(ModelVersion {
                model: q.name.name.clone(),
                name: name.to_string(),
                source: String::new(),
                revision: String::new(),
                // `model_attributes.task` is Snowflake's own ML task enum, not a Hugging Face
                // task: it is kept apart, under its own name.
                task: String::new(),
                files: Vec::new(),
                total_bytes: 0,
                functions,
                inference_services,
                runnable_in,
                snowflake_ml_task: attributes["task"]
                    .as_str()
                    .filter(|t| !t.is_empty())
                    .map(str::to_string),
                created_on: ts(rs.get(i, "created_on")).unwrap_or_else(Utc::now),
            });
        }
        Ok(out)
    }

    async fn drop_model(&self, model: &str, version: Option<&str>) -> Result<()> {
        let q = self.qualify(model)?;
        let v = version
            .map(|v| Ident::parse(v).map_err(PlatformError::Invalid))
            .transpose()?;
        self.run(&statements::drop_model(&q, v.as_ref())).await?;
        Ok(())
    }

    async fn containers(&self, service: &str) -> Result<Vec<Container>> {
        let q = self.qualify(service)?;
        let rs = self.run(&statements::show_containers(&q)).await?;
        Ok((0..rs.len())
            .map(|i| Container {
                service: q.name.name.clone(),
                service_status: rs
                    .get(i, "service_status")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(ServiceStatus::Pending),
                instance_id: num(rs.get(i, "instance_id")),
                instance_status: rs
                    .get(i, "instance_status")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(InstanceStatus::Pending),
                container_name: rs.get(i, "container_name").unwrap_or("").to_string(),
                status: rs
                    .get(i, "status")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(InstanceStatus::Pending),
                message: rs.text(i, "message"),
                restart_count: num(rs.get(i, "restart_count")),
                start_time: ts(rs.get(i, "start_time")),
                last_exit_code: rs.get(i, "last_exit_code").and_then(|c| c.parse().ok()),
                pid: None,
                memory_bytes: None,
                calibration: None,
            })
            .collect())
    }

    async fn endpoints(&self, service: &str) -> Result<Vec<Endpoint>> {
        let q = self.qualify(service)?;
        let rs = self.run(&statements::show_endpoints(&q)).await?;
        Ok((0..rs.len())
            .filter_map(|i| {
                Some(Endpoint {
                    name: rs.get(i, "name")?.to_string(),
                    port: num(rs.get(i, "port")) as u16,
                    protocol: rs.get(i, "protocol").unwrap_or("HTTP").to_string(),
                    is_public: truthy(rs.get(i, "is_public")),
                    ingress_url: rs.get(i, "ingress_url").unwrap_or("").to_string(),
                })
            })
            .collect())
    }

    async fn logs(
        &self,
        service: &str,
        since: Option<u64>,
        limit: usize,
        wait: Option<Duration>,
    ) -> Result<Vec<LogLine>> {
        let q = self.qualify(service)?;
        let deadline = wait.map(|w| std::time::Instant::now() + w);
        loop {
            let containers = self.containers(service).await?;
            let mut lines = Vec::new();
            let mut seq = 0u64;
            let mut seen = std::collections::BTreeSet::new();
            for c in &containers {
                if !seen.insert((c.instance_id, c.container_name.clone())) {
                    continue;
                }
                let text = self
                    .log_lines(&statements::service_logs(
                        &q,
                        c.instance_id,
                        &c.container_name,
                    ))
                    .await?;
                for line in text {
                    if since.is_none_or(|s| seq > s) {
                        lines.push(LogLine {
                            seq,
                            at: Utc::now(),
                            instance_id: c.instance_id,
                            container: c.container_name.clone(),
                            line,
                        });
                    }
                    seq += 1;
                }
            }
            let done = !lines.is_empty() || deadline.is_none_or(|d| std::time::Instant::now() >= d);
            if done {
                let skip = lines.len().saturating_sub(limit);
                return Ok(lines.into_iter().skip(skip).collect());
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    async fn previous_logs(
        &self,
        service: &str,
        instance: Option<u32>,
        limit: usize,
    ) -> Result<Vec<LogLine>> {
        let q = self.qualify(service)?;
        let containers = self.containers(service).await?;
        // Snowflake keeps a previous log only for a container that restarted at least once (and
        // refuses the argument otherwise), so only those are asked.
        let mut asked = std::collections::BTreeSet::new();
        let mut lines = Vec::new();
        for c in &containers {
            if instance.is_some_and(|i| i != c.instance_id)
                || c.restart_count == 0
                || !asked.insert((c.instance_id, c.container_name.clone()))
            {
                continue;
            }
            let text = self
                .log_lines(&statements::service_previous_logs(
                    &q,
                    c.instance_id,
                    &c.container_name,
                    limit,
                ))
                .await?;
            for line in text {
                lines.push(LogLine {
                    seq: lines.len() as u64,
                    at: Utc::now(),
                    instance_id: c.instance_id,
                    container: c.container_name.clone(),
                    line,
                });
            }
        }
        if asked.is_empty() {
            let which = instance.map_or("no container".to_string(), |i| {
                format!("no container of instance {i}")
            });
            return Err(PlatformError::NotFound(format!(
                "{which} of {service} has restarted, so there is no previous log \
                 (SHOW SERVICE CONTAINERS: restart_count 0)"
            )));
        }
        let skip = lines.len().saturating_sub(limit);
        Ok(lines.into_iter().skip(skip).collect())
    }

    async fn events(&self, service: &str) -> Result<Vec<crate::domain::ServiceEvent>> {
        self.events_in(service, &crate::domain::window::Window::default())
            .await
    }

    async fn events_in(
        &self,
        service: &str,
        window: &crate::domain::window::Window,
    ) -> Result<Vec<crate::domain::ServiceEvent>> {
        let q = self.qualify(service)?;
        let statement = if window.is_open() {
            statements::service_events(&q)
        } else {
            statements::service_events_in(&q, window)
        };
        let rs = self.run(&statement).await?;
        Ok((0..rs.len())
            .map(|i| {
                // EVENT_DETAILS is an OBJECT, sent as JSON text: its message and status read best.
                let details = rs.get(i, "EVENT_DETAILS").unwrap_or("");
                let v: serde_json::Value = serde_json::from_str(details).unwrap_or_default();
                let message = match (v["status"].as_str(), v["message"].as_str()) {
                    (Some(st), Some(m)) => format!("{st}: {m}"),
                    (None, Some(m)) => m.to_string(),
                    _ => details.to_string(),
                };
                crate::domain::ServiceEvent {
                    at: ts(rs.get(i, "TIMESTAMP")).unwrap_or_else(Utc::now),
                    severity: rs.get(i, "SEVERITY").unwrap_or("INFO").to_string(),
                    name: rs.get(i, "EVENT_NAME").unwrap_or("").to_string(),
                    instance_id: rs.get(i, "INSTANCE_ID").and_then(|x| x.parse().ok()),
                    container: rs.get(i, "CONTAINER_NAME").map(str::to_string),
                    message: crate::domain::units::strip_control(&message),
                }
            })
            .collect())
    }

    async fn metrics(&self, service: &str) -> Result<Vec<MetricSample>> {
        self.metrics_in(service, &crate::domain::window::Window::default())
            .await
    }

    async fn logs_in(
        &self,
        service: &str,
        window: &crate::domain::window::Window,
        limit: usize,
    ) -> Result<Vec<LogLine>> {
        let q = self.qualify(service)?;
        let rs = self
            .run(&statements::service_logs_in(&q, window, limit))
            .await?;
        Ok((0..rs.len())
            .map(|i| LogLine {
                seq: i as u64,
                at: ts(rs.get(i, "TIMESTAMP")).unwrap_or_else(Utc::now),
                instance_id: rs
                    .get(i, "INSTANCE_ID")
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(0),
                container: rs.get(i, "CONTAINER_NAME").unwrap_or("").to_string(),
                line: crate::domain::units::strip_control(rs.get(i, "LOG").unwrap_or("")),
            })
            .collect())
    }

    async fn metrics_in(
        &self,
        service: &str,
        window: &crate::domain::window::Window,
    ) -> Result<Vec<MetricSample>> {
        let q = self.qualify(service)?;
        let statement = if window.is_open() {
            statements::service_metrics(&q)
        } else {
            statements::service_metrics_in(&q, window)
        };
        let rs = self.run(&statement).await?;
        // SPCS publishes resource metrics, not request counts (?): memory is mapped, the request
        // columns stay empty.
        let mut by_time: std::collections::BTreeMap<String, u64> = Default::default();
        for i in 0..rs.len() {
            let name = rs.get(i, "METRIC_NAME").unwrap_or("");
            if name.contains("memory") && name.contains("usage") {
                let v = rs
                    .get(i, "VALUE")
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0);
                *by_time
                    .entry(rs.get(i, "TIMESTAMP").unwrap_or("").to_string())
                    .or_default() += v as u64;
            }
        }
        Ok(by_time
            .into_iter()
            .map(|(t, mem)| MetricSample {
                at: ts(Some(&t)).unwrap_or_else(Utc::now),
                interval_secs: 0.0,
                requests: 0,
                errors: 0,
                p50_ms: None,
                p95_ms: None,
                p99_ms: None,
                queue_depth: 0,
                memory_bytes: mem,
            })
            .collect())
    }

    async fn suspend_service(&self, name: &str) -> Result<Service> {
        let q = self.qualify(name)?;
        self.run(&statements::alter_service(&q, true)).await?;
        self.service_named(&q).await
    }

    async fn resume_service(&self, name: &str) -> Result<Service> {
        let q = self.qualify(name)?;
        self.run(&statements::alter_service(&q, false)).await?;
        self.service_named(&q).await
    }

    /// `DESCRIBE SERVICE` → `spec` (YAML; only for the owner role) → the inference container's
    /// `resources.requests` (`nvidia.com/gpu`, `cpu`, `memory`: docs.snowflake.com
    /// developer-guide/snowpark-container-services/specification-reference).
    async fn service_requests(&self, name: &str) -> Result<Option<crate::domain::Resources>> {
        let q = self.qualify(name)?;
        let key = q.sql();
        if let Some(known) = self.requests.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(known);
        }
        let rs = self.run(&statements::describe_service(&q)).await?;
        let found = rs.get(0, "spec").and_then(spec_requests);
        if let Ok(mut m) = self.requests.lock() {
            m.insert(key, found.clone());
        }
        Ok(found)
    }

    async fn alter_service(
        &self,
        name: &str,
        change: &crate::domain::ScalingChange,
    ) -> Result<Service> {
        let q = self.qualify(name)?;
        change.check_snowflake().map_err(PlatformError::Invalid)?;
        // Checked against the service as it is, before anything is sent.
        let now = self.service_named(&q).await?;
        change
            .apply(now.scaling())
            .map_err(PlatformError::Invalid)?;
        self.run(&statements::alter_service_scaling(&q, change))
            .await?;
        self.service_named(&q).await
    }

    async fn drop_service(&self, name: &str) -> Result<()> {
        let q = self.qualify(name)?;
        self.run(&statements::drop_service(&q)).await?;
        if let Ok(mut m) = self.requests.lock() {
            m.remove(&q.sql());
        }
        Ok(())
    }

    async fn predict_version(
        &self,
        model: &str,
        version: &str,
        method: &str,
        rows: &[Vec<Value>],
    ) -> Result<Prediction> {
        let q = self.qualify(model)?;
        let v = Ident::parse(version).map_err(PlatformError::Invalid)?;
        self.check_warehouse(&q, &v).await?;
        let started = std::time::Instant::now();
        let mut outputs = Vec::with_capacity(rows.len());
        for row in rows {
            let [Value::String(input)] = row.as_slice() else {
                return Err(PlatformError::Invalid(
                    "warehouse inference takes one text input per row".into(),
                ));
            };
            let rs = self
                .run(&statements::warehouse_call(&q, &v, method, input))
                .await?;
            outputs.push(variant(rs.scalar()));
        }
        Ok(Prediction {
            outputs,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    async fn predict(
        &self,
        service: &str,
        method: &str,
        rows: &[Vec<Value>],
    ) -> Result<Prediction> {
        let q = self.qualify(service)?;
        match self.route {
            InferenceRoute::Rest => self.predict_rest(&q, method, rows).await,
            InferenceRoute::Sql => self.predict_sql(&q, method, rows).await,
        }
    }
}

/// Why warehouse inference is refused on a version, and what to do instead.
pub fn warehouse_refusal(model: &Qualified, version: &Ident, runnable_in: &[String]) -> String {
    format!(
        "model {model} version {} is not logged for inference in a warehouse (it runs in {}): \
         call its service instead (Query: pick the service; batch: --service), or import it again \
         with warehouse inference enabled (hugflake now logs text models for WAREHOUSE and \
         SNOWPARK_CONTAINER_SERVICES), e.g. `hugflake import HANDLE --version V2`",
        version.name,
        runnable_in.join(", ")
    )
}

/// `SHOW FUNCTIONS` signatures: `ENCODE(SENTENCE VARCHAR) RETURN OBJECT` style text (?), or JSON.
fn parse_signature(v: Option<&str>) -> Vec<crate::domain::Column> {
    let Some(s) = v else { return Vec::new() };
    // Documented as "the data types of the arguments as a JSON-formatted string": objects with a
    // name and a type, or bare type names (then the names are unknown).
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(s) {
        return items
            .iter()
            .filter_map(|c| match c {
                Value::String(kind) => Some(crate::domain::Column {
                    name: String::new(),
                    kind: kind.clone(),
                }),
                _ => Some(crate::domain::Column {
                    name: c["name"].as_str()?.to_ascii_lowercase(),
                    kind: c["type"].as_str().unwrap_or("").to_string(),
                }),
            })
            .collect();
    }
    let inner = s.split_once('(').map_or(s, |(_, rest)| {
        rest.rsplit_once(')').map_or(rest, |(a, _)| a)
    });
    inner
        .split(',')
        .filter_map(|part| {
            let mut words = part.split_whitespace();
            let name = words.next()?;
            let kind = words.next().unwrap_or("");
            Some(crate::domain::Column {
                name: name.trim_matches('"').to_ascii_lowercase(),
                kind: kind.to_string(),
            })
        })
        .collect()
}
