//! A Snowflake SQL API v2 simulator on 127.0.0.1 (http): statement handles, 202/333334 while a
//! statement runs, `resultSetMetaData.rowType` with SHOW's lower-case columns, values as strings,
//! gzip partitions, errors with code/sqlState/message, 401 and 429. It answers the statements the
//! Snowflake platform sends with the documented columns and simulates imports and deploys over
//! time (MODEL_LOGGING_ → MODEL_BUILD_ → service containers READY, logs growing), failures on
//! demand, and a REST ingress that checks the `Snowflake Token` header.
//!
//! It enforces the documented rules a real account applies (SNOWFLAKE.md §8): role and warehouse
//! in the request body are case-sensitive names (an unknown role is refused, an unknown or missing
//! warehouse leaves none for statements that need one); VECTOR is cast from ARRAY, never straight
//! from VARIANT; `MODEL(m, v)!` runs only on versions logged for WAREHOUSE (SHOW VERSIONS
//! `runnable_in`); the ingress refuses a token scoped to PUBLIC for a service another role owns;
//! services answer only the methods their version has (`__call__` alone for pipelines, with their
//! own inputs); inline deployment specs need the capability; job services live in the model's
//! and the service's schema.
//!
//! It is a simulator, not Snowflake: statements it does not know answer 422 with the text.
//! Choices where Snowflake's behaviour is not documented: an unknown handle answers 422 (not
//! 400); cancel answers 200 with `{"code": "000604"}`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use md5::{Digest, Md5};
use serde_json::{Value, json};

pub const PAT: &str = "sim-pat-0123456789";

#[derive(Clone, Debug)]
pub struct Pool {
    pub name: String,
    pub state: String,
    pub family: String,
    pub auto_resume: bool,
}

#[derive(Clone, Debug)]
pub struct Svc {
    pub database: String,
    pub schema: String,
    pub name: String,
    pub status: String,
    pub pool: String,
    pub is_job: bool,
    pub created: Instant,
    pub ready_after: Duration,
    pub logs: Vec<String>,
    pub container: String,
    pub min_instances: u32,
    pub max_instances: u32,
    /// AUTO_SUSPEND_SECS (0: never).
    pub auto_suspend_secs: u64,
    /// The inference container's resource requests (`nvidia.com/gpu`, `cpu`, `memory`), as the
    /// deploy spec asked.
    pub requests: Vec<(String, String)>,
    /// The model version a service serves (model, version).
    pub serves: Option<(String, String)>,
    /// The role that owns it.
    pub owner: String,
    /// The log of the container's run before its last restart; `restart_count` is its length
    /// (`None`: never restarted).
    pub previous_logs: Option<Vec<String>>,
}

#[derive(Clone, Debug)]
pub struct Version {
    pub model: String,
    pub name: String,
    pub task: String,
    pub functions: Vec<&'static str>,
    /// `target_platforms` of the import spec: SHOW VERSIONS `runnable_in`.
    pub runnable_in: Vec<String>,
}

enum Work {
    /// A batch INSERT of the missing embeddings for (model, version).
    BatchInsert {
        model: String,
        version: String,
    },
    Import {
        version: Version,
        logging: String,
    },
    Deploy {
        service: (String, String, String),
        pool: String,
        build: Option<String>,
        min: u32,
        max: u32,
        serves: (String, String),
        owner: String,
        requests: Vec<(String, String)>,
    },
}

struct Running {
    done_at: Instant,
    work: Option<Work>,
    result: Result<Vec<Vec<Value>>, (String, String)>,
    column: String,
    cancelled: bool,
}

#[derive(Default)]
pub struct Faults {
    /// Answer the next N requests with 429.
    pub throttle: u32,
    /// The import statement fails with this message.
    pub import_error: Option<String>,
    /// The build job fails.
    pub build_fails: bool,
    /// Rows per partition (0: one partition).
    pub partition_rows: usize,
    /// A batch INSERT runs this long (asynchronously, cancellable) instead of answering at once.
    pub slow_batch: Option<Duration>,
    /// Answer the next N requests with 503 (a gateway having a bad minute).
    pub server_errors: u32,
    /// Hold the next N statement submissions this long before answering (a client gives up first).
    pub stall: (u32, Duration),
    /// A batch INSERT runs for this long, then fails (the service call ran out of memory); as in
    /// Snowflake, a failed statement writes no row.
    pub batch_fails: Option<Duration>,
    /// `SYSTEM$ML_PLATFORM_CAPABILITIES()` without the inline deployment spec capability; a
    /// deploy with an inline spec then fails (after the import ran).
    pub no_inline_specs: bool,
    /// The deploy reuses an image: no MODEL_BUILD_ job runs.
    pub reuse_image: bool,
    /// The deploy statement returns but the service never appears.
    pub service_never_appears: bool,
}

pub struct SimState {
    pub pools: Vec<Pool>,
    pub services: Vec<Svc>,
    pub versions: Vec<Version>,
    pub statements: Vec<(String, Vec<String>)>,
    pub token_types: Vec<String>,
    pub tokens: Vec<String>,
    pub faults: Faults,
    pub ingress_calls: u32,
    /// JWT → OAuth exchanges, with the scope each asked for.
    pub oauth_scopes: Vec<String>,
    /// Roles that exist (upper-case, as Snowflake stores unquoted names), the user's default role,
    /// and warehouses.
    pub roles: Vec<String>,
    pub default_role: String,
    pub warehouses: Vec<String>,
    /// The user's DEFAULT_WAREHOUSE, used when a request names none.
    pub default_warehouse: Option<String>,
    /// The role and warehouse each request's body named (None: left out).
    pub contexts: Vec<(Option<String>, Option<String>)>,
    pub secrets: Vec<String>,
    /// The table CLINICAL_NOTES: (NOTE_ID, NOTE_TEXT).
    pub notes: Vec<(String, String)>,
    /// The batch cache table: (note id, model) → (version, content hash).
    pub cache: HashMap<(String, String), (String, String)>,
    /// The table RADIOLOGY_IMAGES (IMAGE_ID VARCHAR, IMAGE_BYTES BINARY, PATIENT_AGE NUMBER,
    /// MODALITY VARCHAR).
    pub images: Vec<SimImage>,
    /// Rows of the image results table: (image id, model, version, label set, best label).
    pub image_labels: Vec<(String, String, String, String, String)>,
    /// Every statement submission: its requestId and whether it said `retry=true`.
    pub submissions: Vec<(String, bool)>,
    running: HashMap<String, Running>,
    /// Partitions N >= 1 of finished results, by handle.
    partitions: HashMap<String, Vec<Vec<Vec<Value>>>>,
    pub partition_requests: u32,
    next: u64,
    /// How long simulated work takes.
    pub step: Duration,
    ingress_port: u16,
}

/// A row of RADIOLOGY_IMAGES.
#[derive(Debug, Clone)]
pub struct SimImage {
    pub id: String,
    pub bytes: Vec<u8>,
    pub age: u32,
}

pub struct SnowflakeSim {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<SimState>>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Drop for SnowflakeSim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

type Shared = Arc<Mutex<SimState>>;

impl SnowflakeSim {
    pub async fn start() -> SnowflakeSim {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let state = Arc::new(Mutex::new(SimState {
            pools: vec![
                Pool {
                    name: "ML_CPU_POOL".into(),
                    state: "IDLE".into(),
                    family: "CPU_X64_S".into(),
                    auto_resume: true,
                },
                Pool {
                    name: "SYSTEM_COMPUTE_POOL_CPU".into(),
                    state: "ACTIVE".into(),
                    family: "CPU_X64_M".into(),
                    auto_resume: true,
                },
            ],
            services: Vec::new(),
            versions: Vec::new(),
            statements: Vec::new(),
            token_types: Vec::new(),
            tokens: Vec::new(),
            faults: Faults::default(),
            ingress_calls: 0,
            oauth_scopes: Vec::new(),
            roles: vec!["ML_ENGINEER".into(), "PUBLIC".into(), "SYSADMIN".into()],
            default_role: "ML_ENGINEER".into(),
            warehouses: vec!["ML_WH".into()],
            default_warehouse: Some("ML_WH".into()),
            contexts: Vec::new(),
            secrets: vec!["HF_TOKEN".into()],
            notes: Vec::new(),
            images: Vec::new(),
            image_labels: Vec::new(),
            cache: HashMap::new(),
            submissions: Vec::new(),
            running: HashMap::new(),
            partitions: HashMap::new(),
            partition_requests: 0,
            next: 1,
            step: Duration::from_millis(600),
            ingress_port: addr.port(),
        }));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let app = Router::new()
            .route("/api/v2/statements", post(submit))
            .route("/api/v2/statements/{handle}", get(status))
            .route("/api/v2/statements/{handle}/cancel", post(cancel))
            .route("/oauth/token", post(oauth))
            .route("/{svc}/{method}", post(ingress))
            .with_state(state.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        SnowflakeSim {
            addr,
            state,
            shutdown,
        }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn statements(&self) -> Vec<String> {
        self.state()
            .statements
            .iter()
            .map(|(s, _)| s.clone())
            .collect()
    }
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, SimState> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn error(
    status: StatusCode,
    code: &str,
    sql_state: &str,
    message: &str,
    handle: Option<&str>,
) -> Response {
    let mut body = json!({ "code": code, "sqlState": sql_state, "message": message });
    if let Some(h) = handle {
        body["statementHandle"] = json!(h);
    }
    (status, axum::Json(body)).into_response()
}

/// Snowflake's answer to a statement on a service that is not there.
fn no_service(handle: &str) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "002003",
        "02000",
        "Service does not exist.",
        Some(handle),
    )
}

fn result(
    handle: &str,
    columns: &[&str],
    rows: Vec<Vec<Value>>,
    partition_rows: usize,
) -> Response {
    let row_type: Vec<Value> = columns
        .iter()
        .map(|c| json!({ "name": c, "type": "text", "nullable": true, "length": null, "precision": null, "scale": null, "byteLength": null, "collation": null, "database": "", "schema": "", "table": "" }))
        .collect();
    let chunks: Vec<Vec<Vec<Value>>> = if partition_rows > 0 && rows.len() > partition_rows {
        rows.chunks(partition_rows).map(|c| c.to_vec()).collect()
    } else {
        vec![rows.clone()]
    };
    let body = json!({
        "code": "090001",
        "sqlState": "00000",
        "statementHandle": handle,
        "statementStatusUrl": format!("/api/v2/statements/{handle}"),
        "message": "Statement executed successfully.",
        "createdOn": 1_700_000_000_000u64,
        "resultSetMetaData": {
            "numRows": rows.len(),
            "format": "jsonv2",
            "rowType": row_type,
            "partitionInfo": chunks.iter().map(|c| json!({"rowCount": c.len(), "uncompressedSize": 100})).collect::<Vec<_>>(),
        },
        "data": chunks.first().cloned().unwrap_or_default(),
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn remember(st: &mut SimState, handle: &str, rows: &[Vec<Value>], partition_rows: usize) {
    if partition_rows > 0 && rows.len() > partition_rows {
        let chunks = rows.chunks(partition_rows).map(|c| c.to_vec()).collect();
        st.partitions.insert(handle.to_string(), chunks);
    }
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

/// Handles look like Snowflake query ids: hex with dashes, so the job-name hash applies.
impl SimState {
    /// How many running statements a client cancelled.
    pub fn cancelled_statements(&self) -> usize {
        self.running.values().filter(|r| r.cancelled).count()
    }
}

fn new_handle(st: &mut SimState) -> String {
    let n = st.next;
    st.next += 1;
    format!("01b2c3d4-0000-1234-0000-{n:012x}")
}

fn job_hash(handle: &str) -> String {
    let hex: String = handle.chars().filter(|c| *c != '-').collect();
    let n = u128::from_str_radix(&hex, 16).unwrap_or(0);
    let d = Md5::digest(n.to_string().as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect::<String>()[..8].to_ascii_uppercase()
}

/// `DB.SCHEMA.NAME` → its three parts (quotes dropped); a bare name is in ML.PUBLIC.
fn fq_parts(fq: &str) -> (String, String, String) {
    let p: Vec<String> = fq
        .trim()
        .split('.')
        .map(|x| x.trim().trim_matches('"').to_string())
        .collect();
    match p.as_slice() {
        [d, s, n] => (d.clone(), s.clone(), n.clone()),
        [s, n] => ("ML".into(), s.clone(), n.clone()),
        _ => ("ML".into(), "PUBLIC".into(), p.concat()),
    }
}

impl Svc {
    fn is(&self, fq: &str) -> bool {
        let (d, s, n) = fq_parts(fq);
        self.database == d && self.schema == s && self.name == n
    }

    fn fq(&self) -> String {
        format!("{}.{}.{}", self.database, self.schema, self.name)
    }
}

fn last_part(fq: &str) -> String {
    fq.rsplit('.')
        .next()
        .unwrap_or(fq)
        .trim_matches('"')
        .to_string()
}

/// Advances simulated work: job services finish, services become ready, statements complete.
fn tick(st: &mut SimState) {
    let now = Instant::now();
    let step = st.step;
    for svc in &mut st.services {
        let age = now.duration_since(svc.created);
        if svc.is_job {
            if svc.status == "RUNNING" && age >= svc.ready_after {
                let failed = svc.name.starts_with("MODEL_BUILD_") && st.faults.build_fails;
                svc.status = if failed {
                    "FAILED".into()
                } else {
                    "DONE".into()
                };
                svc.logs.push(if failed {
                    "ERROR: pip install failed: no matching distribution".into()
                } else {
                    "finished".into()
                });
            } else if svc.status == "RUNNING"
                && svc.logs.len() < 1 + (age.as_millis() / 200) as usize
            {
                let n = svc.logs.len();
                svc.logs.push(format!("step {n}: working"));
            }
        } else if svc.status == "PENDING" && age >= svc.ready_after {
            svc.status = "RUNNING".into();
            svc.logs.push("model loaded; serving on :5000".into());
        }
    }
    let mut finished = Vec::new();
    for (h, r) in &st.running {
        if now >= r.done_at && !r.cancelled {
            finished.push(h.clone());
        }
    }
    for h in finished {
        let Some(r) = st.running.get_mut(&h) else {
            continue;
        };
        match r.work.take() {
            Some(Work::BatchInsert { model, version }) => {
                let n = insert_missing(&st.notes, &mut st.cache, &model, &version);
                r.result = Ok(vec![vec![s(&n.to_string())]]);
            }
            Some(Work::Import { version, logging }) => {
                if let Some(msg) = st.faults.import_error.clone() {
                    r.result = Err(("100357".into(), msg));
                } else {
                    st.versions.push(version);
                }
                if let Some(j) = st.services.iter_mut().find(|x| x.is(&logging)) {
                    j.status = "DONE".into();
                }
            }
            Some(Work::Deploy {
                service,
                pool,
                build,
                min,
                max,
                serves,
                owner,
                requests,
            }) => {
                let failed = build
                    .as_ref()
                    .is_some_and(|b| st.services.iter().any(|x| x.is(b) && x.status == "FAILED"));
                let fq = format!("{}.{}.{}", service.0, service.1, service.2);
                if failed {
                    r.result = Err((
                        "100358".into(),
                        format!("image build {} failed", build.unwrap_or_default()),
                    ));
                } else if st.faults.service_never_appears {
                } else if !st.services.iter().any(|x| x.is(&fq)) {
                    st.services.push(Svc {
                        database: service.0,
                        schema: service.1,
                        name: service.2,
                        status: "PENDING".into(),
                        pool,
                        is_job: false,
                        created: now,
                        ready_after: step,
                        logs: vec!["starting model-inference".into()],
                        container: "model-inference".into(),
                        min_instances: min,
                        max_instances: max,
                        serves: Some(serves),
                        owner,
                        previous_logs: None,
                        auto_suspend_secs: 0,
                        requests,
                    });
                }
            }
            None => {}
        }
    }
}

fn pool_rows(st: &SimState) -> Vec<Vec<Value>> {
    st.pools
        .iter()
        .map(|p| {
            let n = st
                .services
                .iter()
                .filter(|x| x.pool == p.name && !x.is_job)
                .count();
            vec![
                s(&p.name),
                s(&p.state),
                s("1"),
                s("2"),
                s(&p.family),
                s(&n.to_string()),
                s("0"),
                s("3600"),
                s(if p.auto_resume { "true" } else { "false" }),
                s("1"),
                s("0"),
                s("1"),
                s("2026-11-01T10:00:00.000-07:00"),
                s("2026-11-01T10:00:00.000-07:00"),
                s("2026-11-01T10:00:00.000-07:00"),
                s("SYSADMIN"),
                Value::Null,
                s("false"),
                Value::Null,
                Value::Null,
                Value::Null,
            ]
        })
        .collect()
}

const POOL_COLUMNS: &[&str] = &[
    "name",
    "state",
    "min_nodes",
    "max_nodes",
    "instance_family",
    "num_services",
    "num_jobs",
    "auto_suspend_secs",
    "auto_resume",
    "active_nodes",
    "idle_nodes",
    "target_nodes",
    "created_on",
    "resumed_on",
    "updated_on",
    "owner",
    "comment",
    "is_exclusive",
    "application",
    "error_code",
    "status_message",
];

const SERVICE_COLUMNS: &[&str] = &[
    "name",
    "status",
    "database_name",
    "schema_name",
    "owner",
    "compute_pool",
    "dns_name",
    "current_instances",
    "target_instances",
    "min_ready_instances",
    "min_instances",
    "max_instances",
    "auto_resume",
    "created_on",
    "updated_on",
    "resumed_on",
    "suspended_on",
    "auto_suspend_secs",
    "comment",
    "is_job",
    "is_async_job",
    "spec_digest",
    "is_upgrading",
    "managing_object_name",
];

/// Answers a statement now (`Ok`) or starts work (`Err(running)`).
fn answer(st: &mut SimState, handle: &str, sql: &str, binds: &[String]) -> Response {
    let upper = sql.to_ascii_uppercase();
    let parts = st.faults.partition_rows;
    if let Some(r) = batch_sql(st, handle, &upper, binds) {
        return r;
    }
    if upper == "SHOW COMPUTE POOLS" {
        let rows = pool_rows(st);
        remember(st, handle, &rows, parts);
        return result(handle, POOL_COLUMNS, rows, parts);
    }
    if upper == "SHOW COMPUTE POOL INSTANCE FAMILIES" {
        // The documented columns (docs.snowflake.com, show-compute-pool-instance-families):
        // `gpu` is the GPU's kind, empty without one; sizes from the create-compute-pool page.
        let family = |name: &str, vcpu: &str, mem: &str, gpu: &str, count: &str, gmem: &str| {
            vec![
                s(name),
                s(""),
                s(vcpu),
                s(mem),
                s("100"),
                s(gpu),
                s(count),
                s(gmem),
                s("0"),
                Value::Null,
            ]
        };
        return result(
            handle,
            &[
                "name",
                "description",
                "vcpu",
                "memory_gib",
                "storage_gib",
                "gpu",
                "gpu_count",
                "gpu_memory_gib",
                "current_node_usage",
                "message",
            ],
            vec![
                family("CPU_X64_S", "3", "13", "", "0", "0"),
                family("CPU_X64_M", "6", "28", "", "0", "0"),
                family("GPU_NV_S", "6", "27", "NVIDIA A10G", "1", "24"),
                family("GPU_NV_M", "44", "178", "NVIDIA A10G", "4", "24"),
            ],
            0,
        );
    }
    if upper.starts_with("SELECT CURRENT_ACCOUNT()") {
        return result(
            handle,
            &[
                "CURRENT_ACCOUNT()",
                "CURRENT_USER()",
                "CURRENT_ROLE()",
                "CURRENT_WAREHOUSE()",
                "CURRENT_VERSION()",
            ],
            vec![vec![
                s("SIM12345"),
                s("HUGFLAKE"),
                s(&current_role(st)),
                match st.contexts.last().and_then(|(_, w)| w.clone()) {
                    Some(w) if st.warehouses.contains(&w) => s(&w),
                    Some(_) => Value::Null,
                    None => st.default_warehouse.as_deref().map_or(Value::Null, s),
                },
                s("9.38.1"),
            ]],
            0,
        );
    }
    if let Some(rest) = upper.strip_prefix("SHOW SERVICES IN SCHEMA ") {
        let (db, sc) = rest.split_once('.').unwrap_or(("", ""));
        let (db, sc) = (db.trim_matches('"'), sc.trim_matches('"'));
        let rows: Vec<Vec<Value>> = st
            .services
            .iter()
            .filter(|x| x.database == db && x.schema == sc)
            .map(|x| {
                let running = x.status == "RUNNING";
                vec![
                    s(&x.name),
                    s(&x.status),
                    s(&x.database),
                    s(&x.schema),
                    s(&x.owner),
                    s(&x.pool),
                    s(&format!("{}.sim.svc.spcs.internal", x.name.to_lowercase())),
                    s(if running { "1" } else { "0" }),
                    s("1"),
                    s("1"),
                    s(&x.min_instances.to_string()),
                    s(&x.max_instances.to_string()),
                    s("true"),
                    s("1764100000.000000000"),
                    s("1764100000.000000000"),
                    Value::Null,
                    Value::Null,
                    s(&x.auto_suspend_secs.to_string()),
                    Value::Null,
                    s(if x.is_job { "true" } else { "false" }),
                    s("false"),
                    s("abc"),
                    s("false"),
                    Value::Null,
                ]
            })
            .collect();
        remember(st, handle, &rows, parts);
        return result(handle, SERVICE_COLUMNS, rows, parts);
    }
    if upper.starts_with("SHOW MODELS IN SCHEMA ") {
        let mut models: Vec<String> = st.versions.iter().map(|v| v.model.clone()).collect();
        models.sort();
        models.dedup();
        let rows = models
            .iter()
            .map(|m| {
                let vs: Vec<String> = st
                    .versions
                    .iter()
                    .filter(|v| &v.model == m)
                    .map(|v| v.name.clone())
                    .collect();
                vec![
                    s("1764100000.000000000"),
                    s(m),
                    s("USER_MODEL"),
                    s("ML"),
                    s("PUBLIC"),
                    Value::Null,
                    s("ML_ENGINEER"),
                    s(vs.last().map_or("", String::as_str)),
                    s(&serde_json::to_string_pretty(&vs).unwrap_or_default()),
                    s("[]"),
                ]
            })
            .collect();
        return result(
            handle,
            &[
                "created_on",
                "name",
                "model_type",
                "database_name",
                "schema_name",
                "comment",
                "owner",
                "default_version_name",
                "versions",
                "aliases",
            ],
            rows,
            0,
        );
    }
    if let Some(rest) = upper.strip_prefix("SHOW VERSIONS IN MODEL ") {
        let model = last_part(rest);
        let vs: Vec<&Version> = st.versions.iter().filter(|v| v.model == model).collect();
        if vs.is_empty() {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "002003",
                "02000",
                &format!("Model '{rest}' does not exist or not authorized."),
                Some(handle),
            );
        }
        let rows = vs
            .iter()
            .map(|v| {
                // Fully qualified names; the image build jobs are listed too, as Snowflake does.
                let services: Vec<String> = st
                    .services
                    .iter()
                    .filter(|x| {
                        x.serves.as_ref() == Some(&(v.model.clone(), v.name.clone()))
                            && (!x.is_job || x.name.starts_with("MODEL_BUILD_"))
                    })
                    .map(Svc::fq)
                    .collect();
                vec![
                    s("1764100000.000000000"),
                    s(&v.name),
                    s("[]"),
                    Value::Null,
                    s("true"),
                    s(&json!(v.functions).to_string()),
                    s("{}"),
                    s(&serde_json::to_string_pretty(&services).unwrap_or_default()),
                    // Snowflake's ML task enum, not the Hugging Face task.
                    s(&json!({"task": "UNKNOWN", "framework": "huggingface_pipeline", "hf_task": v.task}).to_string()),
                    s(&serde_json::to_string_pretty(&v.runnable_in).unwrap_or_default()),
                ]
            })
            .collect();
        return result(
            handle,
            &[
                "created_on",
                "name",
                "aliases",
                "comment",
                "is_default_version",
                "functions",
                "metadata",
                "inference_services",
                "model_attributes",
                "runnable_in",
            ],
            rows,
            0,
        );
    }
    if let Some(rest) = upper.strip_prefix("SHOW FUNCTIONS IN MODEL ") {
        let (m, v) = rest.split_once(" VERSION ").unwrap_or((rest, ""));
        let model = last_part(m);
        let Some(ver) = st.versions.iter().find(|x| x.model == model && x.name == v) else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "002003",
                "02000",
                "Version does not exist.",
                Some(handle),
            );
        };
        let rows = ver
            .functions
            .iter()
            .map(|f| {
                let ret = "OBJECT";
                let (arg, min) = if *f == "__CALL__" {
                    (call_arguments(&ver.task), call_required(&ver.task))
                } else {
                    ("SENTENCE VARCHAR", 1)
                };
                let max = arg.split(',').count();
                vec![
                    s(f),
                    s(&ver.name),
                    s(&min.to_string()),
                    s(&max.to_string()),
                    s(&format!("{f}({arg}) RETURN {ret}")),
                    s(ret),
                ]
            })
            .collect();
        return result(
            handle,
            &[
                "name",
                "version_name",
                "min_num_arguments",
                "max_num_arguments",
                "arguments",
                "return_type",
            ],
            rows,
            0,
        );
    }
    if let Some(rest) = upper.strip_prefix("SHOW SERVICE CONTAINERS IN SERVICE ") {
        let Some(x) = st.services.iter().find(|x| x.is(rest)) else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "002003",
                "02000",
                &format!("Service '{rest}' does not exist or not authorized."),
                Some(handle),
            );
        };
        let (inst, status) = match x.status.as_str() {
            "RUNNING" => ("READY", "READY"),
            "DONE" => ("SUCCEEDED", "DONE"),
            "FAILED" => ("FAILED", "FAILED"),
            "SUSPENDED" => ("TERMINATING", "PENDING"),
            _ => ("PENDING", "PENDING"),
        };
        let rows = vec![vec![
            s(&x.database),
            s(&x.schema),
            s(&x.name),
            s(&x.status),
            s("0"),
            s(inst),
            s(&x.container),
            s(status),
            s(if status == "PENDING" {
                "Waiting to start"
            } else {
                "Running"
            }),
            s("sim/image:latest"),
            s(if x.previous_logs.is_some() { "1" } else { "0" }),
            s("2026-11-26T10:00:00Z"),
            if x.previous_logs.is_some() {
                s("137")
            } else {
                Value::Null
            },
        ]];
        return result(
            handle,
            &[
                "database_name",
                "schema_name",
                "service_name",
                "service_status",
                "instance_id",
                "instance_status",
                "container_name",
                "status",
                "message",
                "image_name",
                "restart_count",
                "start_time",
                "last_exit_code",
            ],
            rows,
            0,
        );
    }
    if let Some(rest) = upper.strip_prefix("SHOW ENDPOINTS IN SERVICE ") {
        let Some(x) = st.services.iter().find(|x| x.is(rest)) else {
            return no_service(handle);
        };
        // One port for every service here: the service is the first path segment.
        let url = if x.status == "RUNNING" {
            format!("127.0.0.1:{}/{}", st.ingress_port, x.fq())
        } else {
            "Endpoints provisioning in progress... check back in a few minutes".into()
        };
        return result(
            handle,
            &["name", "port", "protocol", "is_public", "ingress_url"],
            vec![vec![
                s("inference"),
                s("5000"),
                s("HTTP"),
                s("true"),
                s(&url),
            ]],
            0,
        );
    }
    if let Some(role) = upper.strip_prefix("SHOW GRANTS TO ROLE ") {
        let rows = [
            ("CREATE MODEL", "SCHEMA", "ML.PUBLIC"),
            ("CREATE SERVICE", "SCHEMA", "ML.PUBLIC"),
            ("USAGE", "COMPUTE_POOL", "ML_CPU_POOL"),
            ("USAGE", "COMPUTE_POOL", "SYSTEM_COMPUTE_POOL_CPU"),
            ("BIND SERVICE ENDPOINT", "ACCOUNT", "SIM12345"),
        ]
        .iter()
        .map(|(p, on, n)| {
            vec![
                s("1764100000.000000000"),
                s(p),
                s(on),
                s(n),
                s("ROLE"),
                s(role),
                s("false"),
                s("SYSADMIN"),
            ]
        })
        .collect();
        return result(
            handle,
            &[
                "created_on",
                "privilege",
                "granted_on",
                "name",
                "granted_to",
                "grantee_name",
                "grant_option",
                "granted_by",
            ],
            rows,
            0,
        );
    }
    if let Some(rest) = upper.strip_prefix("SHOW SECRETS LIKE ") {
        let pattern = rest
            .split(" IN SCHEMA ")
            .next()
            .unwrap_or("")
            .trim_matches('\'')
            .replace("\\\\", "");
        let rows = st
            .secrets
            .iter()
            .filter(|x| x.as_str() == pattern)
            .map(|x| {
                vec![
                    s("1764100000.000000000"),
                    s(x),
                    s("ML"),
                    s("PUBLIC"),
                    s("ML_ENGINEER"),
                    Value::Null,
                    s("GENERIC_STRING"),
                ]
            })
            .collect();
        return result(
            handle,
            &[
                "created_on",
                "name",
                "database_name",
                "schema_name",
                "owner",
                "comment",
                "secret_type",
            ],
            rows,
            0,
        );
    }
    if let Some(rest) = upper.strip_prefix(
        "SELECT TIMESTAMP, SEVERITY, EVENT_NAME, EVENT_DETAILS, INSTANCE_ID, CONTAINER_NAME FROM TABLE(",
    ) {
        // <svc>!SPCS_GET_EVENTS(): the platform events of a service, as SPCS records them.
        let name = rest.split('!').next().unwrap_or("");
        let Some(svc) = st.services.iter().find(|x| x.is(name)) else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "002003",
                "02000",
                &format!("Service '{name}' does not exist or not authorized."),
                Some(handle),
            );
        };
        let mut rows = vec![vec![
            s("2026-11-26 12:00:00.000"),
            s("INFO"),
            s("CONTAINER.STATUS_CHANGE"),
            s(r#"{"message": "Waiting to start", "status": "PENDING"}"#),
            s("0"),
            s(&svc.container),
        ]];
        if svc.status == "RUNNING" {
            rows.push(vec![
                s("2026-11-26 12:00:30.000"),
                s("INFO"),
                s("CONTAINER.STATUS_CHANGE"),
                s(r#"{"message": "Running", "status": "READY"}"#),
                s("0"),
                s(&svc.container),
            ]);
        }
        // START_TIME / END_TIME, as SPCS_GET_EVENTS takes them.
        let window = match time_range(rest) {
            Ok(w) => w,
            Err(msg) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "002140",
                    "42601",
                    &format!("SQL compilation error: {msg}"),
                    Some(handle),
                );
            }
        };
        rows.retain(|r| r[0].as_str().is_some_and(|t| in_range(&window, t)));
        return result(
            handle,
            &[
                "TIMESTAMP",
                "SEVERITY",
                "EVENT_NAME",
                "EVENT_DETAILS",
                "INSTANCE_ID",
                "CONTAINER_NAME",
            ],
            rows,
            0,
        );
    }
    if let Some(rest) = upper.strip_prefix(
        "SELECT TIMESTAMP, INSTANCE_ID, CONTAINER_NAME, LOG FROM (SELECT TIMESTAMP, INSTANCE_ID, CONTAINER_NAME, LOG FROM TABLE(",
    ) {
        // <svc>!SPCS_GET_LOGS(...): one row per line, a second apart from 12:00:00 on the 26th.
        let name = rest.split('!').next().unwrap_or("");
        let Some(svc) = st.services.iter().find(|x| x.is(name)) else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "002003",
                "02000",
                &format!("Service '{name}' does not exist or not authorized."),
                Some(handle),
            );
        };
        let window = match time_range(rest) {
            Ok(w) => w,
            Err(msg) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "002140",
                    "42601",
                    &format!("SQL compilation error: {msg}"),
                    Some(handle),
                );
            }
        };
        let limit: usize = rest
            .split(" LIMIT ")
            .nth(1)
            .and_then(|l| l.split(')').next())
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(usize::MAX);
        let mut rows: Vec<Vec<Value>> = svc
            .logs
            .iter()
            .enumerate()
            .map(|(i, l)| {
                vec![
                    s(&format!("2026-11-26 12:{:02}:{:02}.000", i / 60 % 60, i % 60)),
                    s("0"),
                    s(&svc.container),
                    s(l),
                ]
            })
            .filter(|r| r[0].as_str().is_some_and(|t| in_range(&window, t)))
            .collect();
        let skip = rows.len().saturating_sub(limit);
        rows.drain(..skip);
        return result(
            handle,
            &["TIMESTAMP", "INSTANCE_ID", "CONTAINER_NAME", "LOG"],
            rows,
            0,
        );
    }
    // The documented five-argument form: service, instance, container, most recent lines,
    // retrieve_previous_logs (allowed only once the container has restarted).
    if upper == "CALL SYSTEM$GET_SERVICE_LOGS(?, ?, ?, ?, TRUE)" {
        let name = binds
            .first()
            .map_or("", String::as_str)
            .to_ascii_uppercase();
        let lines: usize = binds.get(3).and_then(|n| n.parse().ok()).unwrap_or(0);
        let Some(x) = st.services.iter().find(|x| x.is(&name)) else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "002003",
                "02000",
                &format!("Service '{name}' does not exist or not authorized."),
                Some(handle),
            );
        };
        let Some(previous) = &x.previous_logs else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "000603",
                "XX000",
                "Container has not been restarted: no previous logs to retrieve.",
                Some(handle),
            );
        };
        let skip = previous.len().saturating_sub(lines);
        let text = previous[skip..].join("\n");
        return result(
            handle,
            &["SYSTEM$GET_SERVICE_LOGS"],
            vec![vec![s(&text)]],
            0,
        );
    }
    if upper == "CALL SYSTEM$GET_SERVICE_LOGS(?, ?, ?)" {
        let name = binds
            .first()
            .map_or("", String::as_str)
            .to_ascii_uppercase();
        let logs = st
            .services
            .iter()
            .find(|x| x.is(&name))
            .map(|x| x.logs.join("\n"))
            .unwrap_or_default();
        return result(
            handle,
            &["SYSTEM$GET_SERVICE_LOGS"],
            vec![vec![s(&logs)]],
            0,
        );
    }
    if let Some(rest) = upper.strip_prefix("ALTER COMPUTE POOL ") {
        let (name, action) = rest.rsplit_once(' ').unwrap_or((rest, ""));
        let Some(pool) = st.pools.iter_mut().find(|p| p.name == name) else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "002003",
                "02000",
                &format!("Compute pool '{name}' does not exist or not authorized."),
                Some(handle),
            );
        };
        pool.state = if action == "SUSPEND" {
            "SUSPENDED".into()
        } else {
            "IDLE".into()
        };
        if action == "SUSPEND" {
            let pname = pool.name.clone();
            for x in st
                .services
                .iter_mut()
                .filter(|x| x.pool == pname && !x.is_job)
            {
                x.status = "SUSPENDED".into();
            }
        }
        return result(
            handle,
            &["status"],
            vec![vec![s("Statement executed successfully.")]],
            0,
        );
    }
    if let Some(fq) = upper.strip_prefix("DESCRIBE SERVICE ") {
        // The documented columns that matter here; `spec` is the service's YAML specification
        // (docs.snowflake.com sql-reference/sql/desc-service, specification-reference).
        let Some(x) = st.services.iter().find(|x| x.is(fq.trim())) else {
            return no_service(handle);
        };
        let mut spec = format!(
            "spec:\n  containers:\n  - name: {}\n    image: /{}/{}/model_repo/image:latest\n",
            x.container,
            x.database.to_lowercase(),
            x.schema.to_lowercase()
        );
        if !x.requests.is_empty() {
            spec.push_str("    resources:\n      requests:\n");
            for (k, v) in &x.requests {
                spec.push_str(&format!("        {k}: {v}\n"));
            }
        }
        let row = vec![
            s(&x.name),
            s(&x.status),
            s(&x.database),
            s(&x.schema),
            s(&x.owner),
            s(&x.pool),
            s(&spec),
            s(&x.min_instances.to_string()),
            s(&x.max_instances.to_string()),
        ];
        return result(
            handle,
            &[
                "name",
                "status",
                "database_name",
                "schema_name",
                "owner",
                "compute_pool",
                "spec",
                "min_instances",
                "max_instances",
            ],
            vec![row],
            0,
        );
    }
    if let Some(rest) = upper.strip_prefix("ALTER SERVICE ")
        && let Some((fq, sets)) = rest.split_once(" SET ")
    {
        // `ALTER SERVICE <fq> SET MIN_INSTANCES = 0 MAX_INSTANCES = 2 AUTO_SUSPEND_SECS = 300`:
        // space-separated `KEY = value` pairs, as the documentation writes them.
        let words: Vec<&str> = sets.split_whitespace().collect();
        let mut pairs = Vec::new();
        for w in words.chunks(3) {
            match w {
                [key, "=", value] => pairs.push((key.to_string(), value.to_string())),
                _ => {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "001003",
                        "42000",
                        &format!("SQL compilation error: syntax error near '{}'", w.join(" ")),
                        Some(handle),
                    );
                }
            }
        }
        let Some(x) = st.services.iter_mut().find(|x| x.is(fq)) else {
            return no_service(handle);
        };
        let (mut min, mut max, mut idle) = (x.min_instances, x.max_instances, x.auto_suspend_secs);
        for (key, value) in pairs {
            let Ok(n) = value.parse::<u64>() else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "001003",
                    "42000",
                    &format!("SQL compilation error: invalid value '{value}' for {key}"),
                    Some(handle),
                );
            };
            match key.as_str() {
                "MIN_INSTANCES" => min = n as u32,
                "MAX_INSTANCES" => max = n as u32,
                "AUTO_SUSPEND_SECS" if n == 0 || n >= 300 => idle = n,
                "AUTO_SUSPEND_SECS" => {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "001008",
                        "22023",
                        "Invalid value for AUTO_SUSPEND_SECS: must be 0 or at least 300.",
                        Some(handle),
                    );
                }
                other => {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "001003",
                        "42000",
                        &format!("SQL compilation error: invalid property '{other}'"),
                        Some(handle),
                    );
                }
            }
        }
        if max == 0 || min > max {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "001008",
                "22023",
                "MIN_INSTANCES must be less than or equal to MAX_INSTANCES.",
                Some(handle),
            );
        }
        (x.min_instances, x.max_instances, x.auto_suspend_secs) = (min, max, idle);
        return result(
            handle,
            &["status"],
            vec![vec![s("Statement executed successfully.")]],
            0,
        );
    }
    if let Some(rest) = upper.strip_prefix("ALTER SERVICE ") {
        let (fq, action) = rest.rsplit_once(' ').unwrap_or((rest, ""));
        let Some(x) = st.services.iter_mut().find(|x| x.is(fq)) else {
            return no_service(handle);
        };
        x.status = if action == "SUSPEND" {
            "SUSPENDED".into()
        } else {
            "RUNNING".into()
        };
        return result(
            handle,
            &["status"],
            vec![vec![s("Statement executed successfully.")]],
            0,
        );
    }
    if let Some(rest) = upper.strip_prefix("DROP SERVICE ") {
        let name = last_part(rest);
        st.services.retain(|x| !x.is(rest));
        return result(
            handle,
            &["status"],
            vec![vec![s(&format!("{name} successfully dropped."))]],
            0,
        );
    }
    if upper.starts_with("SELECT SYSTEM$ML_PLATFORM_CAPABILITIES()") {
        let caps = if st.faults.no_inline_specs {
            json!({"ENABLE_PIP_ONLY_PACKAGING": true})
        } else {
            json!({"ENABLE_INLINE_DEPLOYMENT_SPEC_FROM_CLIENT_VERSION": "1.8.6", "ENABLE_PIP_ONLY_PACKAGING": true})
        };
        return result(
            handle,
            &["SYSTEM$ML_PLATFORM_CAPABILITIES()"],
            vec![vec![s(&caps.to_string())]],
            0,
        );
    }
    if upper.starts_with("SELECT SYSTEM$IMPORT_MODEL(?)") {
        let spec: serde_yaml_value::Spec =
            serde_yaml_value::parse(binds.first().map_or("", String::as_str));
        // The logging job runs in the model's database.schema.
        let (mdb, msc, mname) = fq_parts(&spec.model_name);
        let logging = format!("{mdb}.{msc}.MODEL_LOGGING_{}", job_hash(handle));
        let step = st.step;
        st.services.push(Svc {
            database: mdb,
            schema: msc,
            name: format!("MODEL_LOGGING_{}", job_hash(handle)),
            status: "RUNNING".into(),
            pool: spec.compute_pool.clone(),
            is_job: true,
            created: Instant::now(),
            ready_after: step * 2,
            logs: vec![format!(
                "downloading {} from huggingface.co",
                spec.hf_model_name
            )],
            container: "model-logging".into(),
            min_instances: 1,
            max_instances: 1,
            serves: None,
            owner: current_role(st),
            previous_logs: None,
            auto_suspend_secs: 0,
            requests: Vec::new(),
        });
        let task = spec
            .task
            .clone()
            .unwrap_or_else(|| "sentence-transformers".into());
        let functions = if task == "sentence-transformers" {
            vec!["ENCODE", "ENCODE_QUERY", "ENCODE_DOCUMENT"]
        } else {
            // Every transformers pipeline answers `__call__` only.
            vec!["__CALL__"]
        };
        // open_clip repos are not transformers pipelines: logging fails server-side.
        let open_clip = spec.hf_model_name.contains("BiomedCLIP");
        st.running.insert(
            handle.to_string(),
            Running {
                done_at: Instant::now() + step * 2,
                work: Some(Work::Import {
                    version: Version {
                        model: mname,
                        name: spec.version_name.clone(),
                        task,
                        functions,
                        runnable_in: spec.target_platforms.clone(),
                    },
                    logging,
                }),
                result: if open_clip {
                    Err((
                        "100357".into(),
                        "Failed to log model: open_clip models are not supported by the Hugging Face import".into(),
                    ))
                } else {
                    Ok(vec![vec![s("Model imported successfully.")]])
                },
                column: "SYSTEM$IMPORT_MODEL(?)".into(),
                cancelled: false,
            },
        );
        return running(handle);
    }
    if upper.starts_with("CALL SYSTEM$DEPLOY_MODEL(?)") {
        let text = binds.first().map_or("", String::as_str);
        if st.faults.no_inline_specs && !text.starts_with('@') {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "100357",
                "P0000",
                "Inline deployment specification is not supported for this client; stage the spec file",
                Some(handle),
            );
        }
        let spec = serde_yaml_value::parse_deploy(text);
        let (sdb, ssc, sname) = fq_parts(&spec.0);
        let (_, _, model) = fq_parts(&spec.4);
        let serves = (model, spec.5.clone());
        let step = st.step;
        let owner = current_role(st);
        // The build job runs in the service's database.schema.
        let build = (!st.faults.reuse_image).then(|| {
            let name = format!("MODEL_BUILD_{}", job_hash(handle));
            st.services.push(Svc {
                database: sdb.clone(),
                schema: ssc.clone(),
                name: name.clone(),
                status: "RUNNING".into(),
                pool: spec.1.clone(),
                is_job: true,
                created: Instant::now(),
                ready_after: step,
                logs: vec!["building image".into()],
                container: "model-build".into(),
                min_instances: 1,
                max_instances: 1,
                serves: Some(serves.clone()),
                owner: owner.clone(),
                previous_logs: None,
                auto_suspend_secs: 0,
                requests: Vec::new(),
            });
            format!("{sdb}.{ssc}.{name}")
        });
        st.running.insert(
            handle.to_string(),
            Running {
                done_at: Instant::now() + step + Duration::from_millis(50),
                work: Some(Work::Deploy {
                    service: (sdb, ssc, sname),
                    pool: spec.1,
                    build,
                    min: spec.2,
                    max: spec.3,
                    serves,
                    owner,
                    requests: serde_yaml_value::parse_requests(text),
                }),
                result: Ok(vec![vec![s("Deployment started.")]]),
                column: "SYSTEM$DEPLOY_MODEL".into(),
                cancelled: false,
            },
        );
        return running(handle);
    }
    if let Some(rest) = upper.strip_prefix("SELECT MODEL(") {
        // Warehouse inference on a version: MODEL(DB.S.M, V)!METHOD(?)
        let inside = rest.split(")!").next().unwrap_or("");
        let (m, v) = inside.split_once(", ").unwrap_or(("", ""));
        let (model, version) = (last_part(m), v.trim().to_string());
        let Some(ver) = st
            .versions
            .iter()
            .find(|x| x.model == model && x.name == version)
        else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "002003",
                "02000",
                &format!("Model '{m}' version '{version}' does not exist."),
                Some(handle),
            );
        };
        if let Some(e) = warehouse_refusal(ver, handle) {
            return e;
        }
        let rows = vec![vec![s(&serde_json::to_string_pretty(&fake_output(
            &upper,
            binds.first().map_or("", String::as_str),
        ))
        .unwrap_or_default())]];
        return result(handle, &["RESULT"], rows, 0);
    }
    if upper.starts_with("SELECT ") && upper.contains('!') {
        // A service function: one call, its inputs bound in signature order.
        let fq = upper[7..]
            .split('!')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let method = upper
            .split('!')
            .nth(1)
            .and_then(|m| m.split('(').next())
            .unwrap_or("")
            .trim_matches('"')
            .to_string();
        let Some(x) = st
            .services
            .iter()
            .find(|x| x.is(&fq) && x.status == "RUNNING")
        else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "002003",
                "02000",
                "Service not running.",
                Some(handle),
            );
        };
        // A BINARY argument takes binary: text is not converted from base64 by itself.
        if serves_task(st, x) == Some("zero-shot-image-classification")
            && !upper.contains("TO_BINARY(?, 'BASE64')")
        {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "100071",
                "22000",
                "Failed to cast variant value to BINARY: not a valid hex string",
                Some(handle),
            );
        }
        if let Err(msg) = method_check(st, x, &method, binds.len()) {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "002140",
                "42601",
                &format!("SQL compilation error: {msg}"),
                Some(handle),
            );
        }
        let rows = vec![vec![s(&serde_json::to_string_pretty(&fake_output(
            &upper,
            binds.first().map_or("", String::as_str),
        ))
        .unwrap_or_default())]];
        return result(handle, &["RESULT"], rows, 0);
    }
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "001003",
        "42000",
        &format!("SQL compilation error: simulator does not know `{sql}`"),
        Some(handle),
    )
}

/// The role a request runs as: the body's, else the user's default role.
fn current_role(st: &SimState) -> String {
    st.contexts
        .last()
        .and_then(|(r, _)| r.clone())
        .unwrap_or_else(|| st.default_role.clone())
}

/// snowflake-ml-python's refusal of warehouse inference on a version logged for SPCS only.
fn warehouse_refusal(v: &Version, handle: &str) -> Option<Response> {
    (!v.runnable_in.is_empty() && !v.runnable_in.iter().any(|r| r == "WAREHOUSE")).then(|| {
        error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "002140",
            "42601",
            &format!(
                "SQL compilation error: The model {} version {} is not logged for inference in Warehouse.",
                v.model, v.name
            ),
            Some(handle),
        )
    })
}

/// The task of the version a service serves.
fn serves_task<'a>(st: &'a SimState, x: &Svc) -> Option<&'a str> {
    let (m, v) = x.serves.as_ref()?;
    st.versions
        .iter()
        .find(|y| &y.model == m && &y.name == v)
        .map(|y| y.task.as_str())
}

/// Whether a service's version has `method`, called with `inputs` inputs.
fn method_check(st: &SimState, x: &Svc, method: &str, inputs: usize) -> Result<(), String> {
    let Some((m, v)) = &x.serves else {
        return Ok(());
    };
    let Some(ver) = st.versions.iter().find(|y| &y.model == m && &y.name == v) else {
        return Ok(());
    };
    if !ver.functions.iter().any(|f| f.eq_ignore_ascii_case(method)) {
        return Err(format!(
            "service {} has no method {method} (it has {})",
            x.name,
            ver.functions.join(", ")
        ));
    }
    let (min, max) = if method == "__CALL__" {
        (
            call_required(&ver.task),
            call_arguments(&ver.task).split(',').count(),
        )
    } else {
        (1, 1)
    };
    if inputs < min || inputs > max {
        return Err(format!(
            "{method} of service {} takes {min} to {max} argument(s), {inputs} given",
            x.name
        ));
    }
    Ok(())
}

/// How many leading arguments of a pipeline's `__call__` are inputs (the rest have defaults).
fn call_required(task: &str) -> usize {
    match task {
        "zero-shot-classification" | "zero-shot-image-classification" => 2,
        _ => 1,
    }
}

/// The inputs of a pipeline's `__call__`, as snowflake-ml-python's signatures name them.
fn call_arguments(task: &str) -> &'static str {
    match task {
        "text-classification" => "TEXT VARCHAR",
        // Parameters with defaults follow the inputs, as snowflake-ml-python signatures put them.
        "zero-shot-classification" => {
            "SEQUENCES VARCHAR, CANDIDATE_LABELS ARRAY, HYPOTHESIS_TEMPLATE VARCHAR, MULTI_LABEL BOOLEAN"
        }
        // snowflake-ml-python >= 1.38: two inputs, then the pipeline's parameters.
        "zero-shot-image-classification" => {
            "IMAGES BINARY, CANDIDATE_LABELS ARRAY, HYPOTHESIS_TEMPLATE VARCHAR, TIMEOUT FLOAT"
        }
        _ => "INPUTS VARCHAR",
    }
}

fn fake_output(method: &str, text: &str) -> Value {
    if method.contains("__CALL__") {
        json!({"outputs": [{"entity": "B-DISEASE", "score": 0.9, "index": 1, "word": text.split_whitespace().next().unwrap_or(""), "start": 0, "end": 3}]})
    } else {
        json!({"output": [text.len() as f64, 1.0, 0.5]})
    }
}

fn running(handle: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "code": "333334",
            "message": "Asynchronous execution in progress. Use provided query id to perform query monitoring and management.",
            "statementHandle": handle,
            "statementStatusUrl": format!("/api/v2/statements/{handle}"),
        })),
    )
        .into_response()
}

fn check_auth(st: &mut SimState, headers: &HeaderMap) -> Option<Response> {
    if headers.get(header::USER_AGENT).is_none() {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "391903",
            "",
            "User-Agent header is required",
            None,
        ));
    }
    if st.faults.server_errors > 0 {
        st.faults.server_errors -= 1;
        return Some((StatusCode::SERVICE_UNAVAILABLE, "service unavailable").into_response());
    }
    if st.faults.throttle > 0 {
        st.faults.throttle -= 1;
        let mut r = (StatusCode::TOO_MANY_REQUESTS, "too many requests").into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("0"));
        return Some(r);
    }
    let kind = headers
        .get("X-Snowflake-Authorization-Token-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    let ok = match kind.as_str() {
        "PROGRAMMATIC_ACCESS_TOKEN" => token == PAT,
        "KEYPAIR_JWT" => token.split('.').count() == 3,
        _ => false,
    };
    st.token_types.push(kind);
    st.tokens.push(token);
    (!ok).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "390303",
            "",
            "Invalid OAuth access token.",
            None,
        )
    })
}

async fn submit(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let stall = {
        let mut st = lock(&state);
        st.submissions.push((
            q.get("requestId").cloned().unwrap_or_default(),
            q.get("retry").is_some_and(|r| r == "true"),
        ));
        let (n, d) = st.faults.stall;
        (n > 0).then(|| {
            st.faults.stall.0 -= 1;
            d
        })
    };
    if let Some(d) = stall {
        // The client gives up before this answer; the statement is never run.
        tokio::time::sleep(d).await;
        return error(StatusCode::GATEWAY_TIMEOUT, "", "", "stalled", None);
    }
    let mut st = lock(&state);
    if let Some(r) = check_auth(&mut st, &headers) {
        return r;
    }
    if !q.contains_key("requestId") {
        return error(
            StatusCode::BAD_REQUEST,
            "391902",
            "",
            "requestId is required",
            None,
        );
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let sql = v["statement"].as_str().unwrap_or("").to_string();
    let mut binds = Vec::new();
    if let Some(b) = v["bindings"].as_object() {
        let mut keys: Vec<usize> = b.keys().filter_map(|k| k.parse().ok()).collect();
        keys.sort_unstable();
        for k in keys {
            binds.push(
                b[&k.to_string()]["value"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            );
        }
    }
    st.statements.push((sql.clone(), binds.clone()));
    let role = v["role"].as_str().map(str::to_string);
    let warehouse = v["warehouse"].as_str().map(str::to_string);
    st.contexts.push((role.clone(), warehouse.clone()));
    tick(&mut st);
    let handle = new_handle(&mut st);
    // The body's context fields are case-sensitive names: `ml_engineer` names no role.
    if let Some(r) = &role
        && !st.roles.contains(r)
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "390189",
            "08004",
            &format!(
                "Role '{r}' specified in the connect string does not exist or not authorized. Contact your local system administrator, or attempt to login with another role, e.g. PUBLIC."
            ),
            Some(&handle),
        );
    }
    // Without a warehouse field the user's default applies; a name that is not a warehouse
    // (`ml_wh` for ML_WH) leaves the request with none, and statements that compute need one.
    let has_warehouse = match &warehouse {
        Some(w) => st.warehouses.contains(w),
        None => st.default_warehouse.is_some(),
    };
    if !has_warehouse && needs_warehouse(&sql) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "000606",
            "57P03",
            "No active warehouse selected in the current session.  Select an active warehouse with the 'use warehouse' command.",
            Some(&handle),
        );
    }
    // VECTOR is cast from ARRAY; a VARIANT cast straight to VECTOR is refused.
    if let Some(bad) = variant_to_vector(&sql) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "002023",
            "22000",
            &format!(
                "SQL compilation error: invalid cast from VARIANT to VECTOR near `{bad}`: cast an ARRAY (::ARRAY::VECTOR(...))"
            ),
            Some(&handle),
        );
    }
    answer(&mut st, &handle, &sql, &binds)
}

/// Statements that compute (and so need a warehouse): DML, and SELECTs that read tables or call
/// functions; SHOW, CALL SYSTEM$... and the context functions do not.
fn needs_warehouse(sql: &str) -> bool {
    let u = sql.trim_start().to_ascii_uppercase();
    if u.starts_with("INSERT") || u.starts_with("DELETE") || u.starts_with("UPDATE") {
        return true;
    }
    u.starts_with("SELECT")
        && !u.starts_with("SELECT CURRENT_")
        && !u.starts_with("SELECT SYSTEM$")
        && (u.contains(" FROM ") || u.contains('!'))
}

/// The text before a `::VECTOR(` cast that does not come from `::ARRAY`, if any.
fn variant_to_vector(sql: &str) -> Option<String> {
    let u = sql.to_ascii_uppercase();
    let mut rest = u.as_str();
    while let Some(i) = rest.find("::VECTOR(") {
        let before = &rest[..i];
        if !before.ends_with("::ARRAY") {
            let from = before.len().saturating_sub(30);
            return Some(before[from..].to_string());
        }
        rest = &rest[i + 2..];
    }
    None
}

async fn status(
    State(state): State<Shared>,
    UrlPath(handle): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut st = lock(&state);
    if let Some(r) = check_auth(&mut st, &headers) {
        return r;
    }
    tick(&mut st);
    if let Some(p) = q.get("partition").and_then(|p| p.parse::<usize>().ok()) {
        st.partition_requests += 1;
        let Some(chunk) = st.partitions.get(&handle).and_then(|c| c.get(p)) else {
            return error(
                StatusCode::BAD_REQUEST,
                "391922",
                "",
                &format!("partition {p} out of range"),
                Some(&handle),
            );
        };
        let body = gzip(&json!({ "data": chunk }));
        return (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CONTENT_ENCODING, "gzip"),
            ],
            body,
        )
            .into_response();
    }
    let Some(r) = st.running.get(&handle) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "000709",
            "02000",
            &format!("Statement {handle} not found"),
            Some(&handle),
        );
    };
    if r.cancelled {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "000604",
            "57014",
            "SQL execution canceled",
            Some(&handle),
        );
    }
    if Instant::now() < r.done_at || r.work.is_some() {
        return running(&handle);
    }
    match &r.result {
        Ok(rows) => result(&handle, &[r.column.as_str()], rows.clone(), 0),
        Err((code, msg)) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            "P0000",
            msg,
            Some(&handle),
        ),
    }
}

async fn cancel(
    State(state): State<Shared>,
    UrlPath(handle): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let mut st = lock(&state);
    if let Some(r) = check_auth(&mut st, &headers) {
        return r;
    }
    if let Some(r) = st.running.get_mut(&handle) {
        r.cancelled = true;
    }
    (
        StatusCode::OK,
        axum::Json(json!({"code": "000604", "statementHandle": handle})),
    )
        .into_response()
}

/// The JWT → OAuth exchange: the token carries the role its scope named, or the user's default
/// role when the scope names none.
async fn oauth(State(state): State<Shared>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).to_string();
    let form: HashMap<String, String> = text
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    if !(form.contains_key("assertion")
        && form.get("grant_type").map(String::as_str)
            == Some("urn:ietf:params:oauth:grant-type:jwt-bearer"))
    {
        return (StatusCode::BAD_REQUEST, "bad grant").into_response();
    }
    let scope = form.get("scope").cloned().unwrap_or_default();
    let mut st = lock(&state);
    st.oauth_scopes.push(scope.clone());
    let role = scope
        .split_whitespace()
        .find_map(|w| w.strip_prefix("session:role:"))
        .map_or_else(|| st.default_role.clone(), str::to_string);
    if !st.roles.contains(&role) {
        return (
            StatusCode::BAD_REQUEST,
            format!("role {role} does not exist"),
        )
            .into_response();
    }
    (StatusCode::OK, format!("sim-oauth-{role}")).into_response()
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

async fn ingress(
    State(state): State<Shared>,
    UrlPath((svc, method)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(token) = auth
        .strip_prefix("Snowflake Token=\"")
        .and_then(|t| t.strip_suffix('"'))
    else {
        return (StatusCode::UNAUTHORIZED, "missing Snowflake Token").into_response();
    };
    let mut st = lock(&state);
    let Some(x) = st.services.iter().find(|x| x.is(&svc)).cloned() else {
        return (StatusCode::NOT_FOUND, "no such service").into_response();
    };
    // A PAT acts as the user's default role; an exchanged token as the role its scope named.
    let role = if token == PAT {
        st.default_role.clone()
    } else if let Some(r) = token.strip_prefix("sim-oauth-") {
        r.to_string()
    } else {
        return (StatusCode::UNAUTHORIZED, "invalid token").into_response();
    };
    if role != x.owner && role != "SYSADMIN" {
        return (
            StatusCode::FORBIDDEN,
            format!(
                "role {role} has no privilege on the endpoint of service {}",
                x.name
            ),
        )
            .into_response();
    }
    st.ingress_calls += 1;
    let method = match method.as_str() {
        "--call--" => "__CALL__".to_string(),
        m => m.replace('-', "_").to_ascii_uppercase(),
    };
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let rows: Vec<Value> = v["data"].as_array().cloned().unwrap_or_default();
    for r in &rows {
        let inputs = r.as_array().map_or(0, |a| a.len().saturating_sub(1));
        // BINARY inputs arrive as text in BINARY_OUTPUT_FORMAT's default, hex.
        if serves_task(&st, &x) == Some("zero-shot-image-classification")
            && !r[1]
                .as_str()
                .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return (StatusCode::BAD_REQUEST, "images: not hex-encoded binary").into_response();
        }
        if let Err(msg) = method_check(&st, &x, &method, inputs) {
            let status = if msg.contains("has no method") {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            return (status, msg).into_response();
        }
    }
    let out: Vec<Value> = rows
        .iter()
        .map(|r| json!([r[0], fake_output(&method, r[1].as_str().unwrap_or(""))]))
        .collect();
    axum::Json(json!({ "data": out })).into_response()
}

/// Gzip of a partition body (what partitions N ≥ 1 look like on the wire).
pub fn gzip(v: &Value) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = e.write_all(v.to_string().as_bytes());
    e.finish().unwrap_or_default()
}

/// Just enough YAML reading for the two specs.
mod serde_yaml_value {
    #[derive(Default)]
    pub struct Spec {
        pub compute_pool: String,
        pub model_name: String,
        pub version_name: String,
        pub hf_model_name: String,
        pub task: Option<String>,
        pub target_platforms: Vec<String>,
    }

    fn field(text: &str, key: &str) -> Option<String> {
        text.lines().find_map(|l| {
            let l = l.trim().trim_start_matches("- ");
            l.strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_string())
        })
    }

    /// The items of a block list under `key:` (`- ITEM` lines), or of a flow list `[A, B]`.
    fn list(text: &str, key: &str) -> Vec<String> {
        let mut lines = text
            .lines()
            .skip_while(|l| !l.trim().starts_with(&format!("{key}:")));
        let Some(first) = lines.next() else {
            return Vec::new();
        };
        let inline = first.trim().trim_start_matches(&format!("{key}:")).trim();
        if let Some(flow) = inline.strip_prefix('[') {
            return flow
                .trim_end_matches(']')
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect();
        }
        lines
            .map(str::trim)
            .take_while(|l| l.starts_with("- "))
            .map(|l| l.trim_start_matches("- ").trim().to_string())
            .collect()
    }

    pub fn parse(text: &str) -> Spec {
        Spec {
            compute_pool: field(text, "compute_pool").unwrap_or_default(),
            model_name: field(text, "model_name").unwrap_or_default(),
            version_name: field(text, "version_name").unwrap_or_default(),
            hf_model_name: field(text, "hf_model_name").unwrap_or_default(),
            task: field(text, "task"),
            target_platforms: list(text, "target_platforms"),
        }
    }

    /// The deploy spec's `service.gpu`, `cpu`, `memory` as the container's resource requests.
    pub fn parse_requests(text: &str) -> Vec<(String, String)> {
        let service = text.split("service:").nth(1).unwrap_or("");
        [
            ("gpu", "nvidia.com/gpu"),
            ("cpu", "cpu"),
            ("memory", "memory"),
        ]
        .iter()
        .filter_map(|(key, name)| {
            field(service, key).map(|v| (name.to_string(), v.trim_matches('\'').to_string()))
        })
        .collect()
    }

    /// (service name, pool, min, max, model name, model version)
    pub fn parse_deploy(text: &str) -> (String, String, u32, u32, String, String) {
        let service = text.split("service:").nth(1).unwrap_or("");
        let models = text.split("models:").nth(1).unwrap_or("");
        let models = models.split("image_build:").next().unwrap_or(models);
        (
            field(service, "name").unwrap_or_default(),
            field(service, "compute_pool").unwrap_or_default(),
            field(service, "min_instances")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            field(service, "max_instances")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            field(models, "name").unwrap_or_default(),
            field(models, "version").unwrap_or_default(),
        )
    }
}

/// The batch statements over CLINICAL_NOTES and its cache table, with the semantics the SQL asks
/// for: stale rows deleted, only missing rows inserted, empty texts skipped.
fn batch_sql(st: &mut SimState, handle: &str, upper: &str, binds: &[String]) -> Option<Response> {
    let hash = |t: &str| hugflake::batch::input::hash_text(t);
    let empty = |t: &str| t.trim().is_empty();
    if upper.starts_with("SELECT COUNT(*) AS N FROM ") && upper.contains("RADIOLOGY_IMAGES") {
        let n = st.images.len().to_string();
        return Some(result(handle, &["N"], vec![vec![s(&n)]], 0));
    }
    if upper.starts_with("INSERT INTO ") && upper.contains("!\"__CALL__\"(") {
        return Some(classify_images(st, handle, upper, binds));
    }
    if upper.starts_with("SELECT COUNT(*) AS N FROM ") {
        let n = st.notes.len().to_string();
        return Some(result(handle, &["N"], vec![vec![s(&n)]], 0));
    }
    if upper.starts_with("SELECT COUNT(*) AS SKIPPED FROM ") {
        let n = st
            .notes
            .iter()
            .filter(|(_, t)| empty(t))
            .count()
            .to_string();
        return Some(result(handle, &["SKIPPED"], vec![vec![s(&n)]], 0));
    }
    if upper.starts_with("CREATE TABLE IF NOT EXISTS ") {
        return Some(result(
            handle,
            &["status"],
            vec![vec![s("Table successfully created.")]],
            0,
        ));
    }
    if upper.starts_with("DELETE FROM ") && upper.contains(" USING ") {
        let (model, version) = (binds.first()?.clone(), binds.get(1)?.clone());
        let notes = st.notes.clone();
        let before = st.cache.len();
        st.cache.retain(|(id, m), (v, h)| {
            !(*m == model
                && notes
                    .iter()
                    .any(|(nid, t)| nid == id && (*v != version || *h != hash(t))))
        });
        let n = (before - st.cache.len()).to_string();
        return Some(result(
            handle,
            &["number of rows deleted"],
            vec![vec![s(&n)]],
            0,
        ));
    }
    if upper.starts_with("INSERT INTO ") && upper.contains("!ENCODE(") {
        let call = upper.split("!ENCODE(").next()?;
        let answered = if let Some(inside) = call
            .rsplit("MODEL(")
            .next()
            .filter(|_| call.contains("MODEL("))
        {
            // Warehouse inference: MODEL(DB.S.M, V)
            let (m, v) = inside.split_once(", ")?;
            let (model, version) = (last_part(m), v.trim_end_matches(')').trim().to_string());
            match st
                .versions
                .iter()
                .find(|x| x.model == model && x.name == version)
            {
                Some(ver) => {
                    if let Some(e) = warehouse_refusal(ver, handle) {
                        return Some(e);
                    }
                    true
                }
                None => false,
            }
        } else {
            let svc = call.rsplit(' ').next()?;
            st.services
                .iter()
                .any(|x| x.is(svc) && x.status == "RUNNING")
        };
        if !answered {
            return Some(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "002003",
                "02000",
                "Service not running.",
                Some(handle),
            ));
        }
        let (model, version) = (binds.first()?.clone(), binds.get(1)?.clone());
        if let Some(d) = st.faults.batch_fails {
            st.running.insert(
                handle.to_string(),
                Running {
                    done_at: Instant::now() + d,
                    work: None,
                    result: Err((
                        "100357".into(),
                        "Service ALL_MINILM_L6_V2_SVC: request failed: the container ran out of memory"
                            .into(),
                    )),
                    column: "number of rows inserted".into(),
                    cancelled: false,
                },
            );
            return Some(running(handle));
        }
        if let Some(d) = st.faults.slow_batch {
            st.running.insert(
                handle.to_string(),
                Running {
                    done_at: Instant::now() + d,
                    work: Some(Work::BatchInsert { model, version }),
                    result: Ok(Vec::new()),
                    column: "number of rows inserted".into(),
                    cancelled: false,
                },
            );
            return Some(running(handle));
        }
        let n = insert_missing(&st.notes, &mut st.cache, &model, &version);
        return Some(result(
            handle,
            &["number of rows inserted"],
            vec![vec![s(&n.to_string())]],
            0,
        ));
    }
    if upper.starts_with("SELECT C.NOTE_ID, VECTOR_COSINE_SIMILARITY") {
        let model = binds.get(1)?.clone();
        let mut ids: Vec<String> = st
            .cache
            .keys()
            .filter(|(_, m)| *m == model)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        let k: usize = upper.rsplit("LIMIT ").next()?.trim().parse().ok()?;
        let rows = ids
            .iter()
            .take(k)
            .enumerate()
            .map(|(i, id)| vec![s(id), s(&format!("{:.4}", 1.0 / (1.0 + i as f64)))])
            .collect();
        return Some(result(handle, &["NOTE_ID", "SCORE"], rows, 0));
    }
    None
}

/// START_TIME and END_TIME of an SPCS table function's call (`NAME => '…'::TIMESTAMP_LTZ`); an
/// argument of another name, or not a timestamp, is refused as Snowflake would.
type Range = (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
);

fn time_range(rest: &str) -> Result<Range, String> {
    let inside = rest
        .split_once("(")
        .map(|(_, r)| r.split(')').next().unwrap_or(""))
        .unwrap_or("");
    let mut range: Range = (None, None);
    for arg in inside.split(", ").filter(|a| !a.trim().is_empty()) {
        let (name, value) = arg
            .split_once(" => ")
            .ok_or_else(|| format!("arguments must be named: `{arg}`"))?;
        let t = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix("'::TIMESTAMP_LTZ"))
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .ok_or_else(|| format!("`{value}` is not a TIMESTAMP_LTZ"))?;
        match name.trim() {
            "START_TIME" => range.0 = Some(t),
            "END_TIME" => range.1 = Some(t),
            other => return Err(format!("invalid argument `{other}`")),
        }
    }
    Ok(range)
}

fn in_range(range: &Range, at: &str) -> bool {
    let Ok(t) = chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S%.3f") else {
        return false;
    };
    let t = t.and_utc();
    range.0.is_none_or(|s| t >= s) && range.1.is_none_or(|e| t <= e)
}

/// The columns of RADIOLOGY_IMAGES and their types.
const IMAGE_COLUMNS: [(&str, &str); 4] = [
    ("IMAGE_ID", "VARCHAR(16777216)"),
    ("IMAGE_BYTES", "BINARY(8388608)"),
    ("PATIENT_AGE", "NUMBER(38,0)"),
    ("MODALITY", "VARCHAR(16777216)"),
];

/// `INSERT INTO out SELECT ... svc!"__CALL__"(t.IMAGE_BYTES, PARSE_JSON(?)::ARRAY[, ...]) ...` over
/// RADIOLOGY_IMAGES: argument types checked against the service's signature as Snowflake would,
/// the filter and limit applied, images already classified (same version, same labels) skipped,
/// and a broken image failing the statement as the service's PIL would.
fn classify_images(st: &mut SimState, handle: &str, upper: &str, binds: &[String]) -> Response {
    let compile = |msg: String| {
        error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "002140",
            "42601",
            &format!("SQL compilation error: {msg}"),
            Some(handle),
        )
    };
    let (before, after) = upper.split_once("!\"__CALL__\"(").unwrap_or((upper, ""));
    let svc = before.rsplit(' ').next().unwrap_or("").to_string();
    let Some(x) = st
        .services
        .iter()
        .find(|x| x.is(&svc) && x.status == "RUNNING")
        .cloned()
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "002003",
            "02000",
            "Service not running.",
            Some(handle),
        );
    };
    let args_text = after.split(") AS R").next().unwrap_or("");
    let args: Vec<&str> = args_text.split(", ").map(str::trim).collect();
    if let Err(msg) = method_check(st, &x, "__CALL__", args.len()) {
        return compile(msg);
    }
    // The type of each argument as Snowflake sees it.
    let type_of = |a: &str| -> String {
        if let Some(col) = a.strip_prefix("T.") {
            return IMAGE_COLUMNS
                .iter()
                .find(|(c, _)| *c == col)
                .map_or("UNKNOWN".into(), |(_, t)| t.to_string());
        }
        if a.ends_with("::ARRAY") || a.starts_with("ARRAY_CONSTRUCT(") {
            return "ARRAY".into();
        }
        if a == "NULL" {
            return "NULL".into();
        }
        "VARCHAR(16777216)".into()
    };
    let types: Vec<String> = args.iter().map(|a| type_of(a)).collect();
    let wanted = ["BINARY", "ARRAY", "VARCHAR", "FLOAT"];
    let fits = types
        .iter()
        .zip(wanted)
        .all(|(t, w)| t == "NULL" || t.starts_with(w) || (w == "FLOAT" && t.starts_with("NUMBER")));
    if serves_task(st, &x) != Some("zero-shot-image-classification") || !fits {
        return compile(format!(
            "Invalid argument types for function '__CALL__': ({})",
            types.join(", ")
        ));
    }
    let label_set = binds.get(3).cloned().unwrap_or_default();
    let labels: Vec<String> = serde_json::from_str(&label_set).unwrap_or_default();
    if labels.len() < 2 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "100357",
            "P0000",
            &format!(
                "Service {}: request failed: candidate_labels must be a list of labels",
                x.name
            ),
            Some(handle),
        );
    }
    let (model, version) = (
        binds.get(1).cloned().unwrap_or_default(),
        binds.get(2).cloned().unwrap_or_default(),
    );
    // The filter: ` AND T.COLUMN <op> ?`, its value bound last.
    let filter = upper.split(" AND T.").nth(1).and_then(|rest| {
        let mut words = rest.split_whitespace();
        let col = words.next()?.to_string();
        let op = words.next()?.to_string();
        Some((col, op, binds.last()?.clone()))
    });
    let keep = |img: &SimImage| -> bool {
        let Some((col, op, value)) = &filter else {
            return true;
        };
        let v: f64 = value.parse().unwrap_or(f64::NAN);
        let age = f64::from(img.age);
        match (col.as_str(), op.as_str()) {
            ("PATIENT_AGE", "<") => age < v,
            ("PATIENT_AGE", "<=") => age <= v,
            ("PATIENT_AGE", ">") => age > v,
            ("PATIENT_AGE", ">=") => age >= v,
            ("PATIENT_AGE", "=") => age == v,
            ("IMAGE_ID", "=") => img.id.eq_ignore_ascii_case(value),
            _ => false,
        }
    };
    let limit: usize = upper
        .rsplit(" LIMIT ")
        .next()
        .filter(|_| upper.contains(" LIMIT "))
        .and_then(|l| l.split(')').next())
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(usize::MAX);
    let mut todo: Vec<SimImage> = st
        .images
        .iter()
        .filter(|i| keep(i))
        .filter(|i| {
            !st.image_labels.iter().any(|(id, m, v, l, _)| {
                *id == i.id && *m == model && *v == version && *l == label_set
            })
        })
        .cloned()
        .collect();
    todo.sort_by(|a, b| a.id.cmp(&b.id));
    todo.truncate(limit);
    let is_image = |b: &[u8]| b.starts_with(b"\x89PNG") || b.starts_with(&[0xFF, 0xD8]);
    if let Some(bad) = todo.iter().find(|i| !is_image(&i.bytes)) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "100357",
            "P0000",
            &format!(
                "Service {}: request failed for row {}: PIL.UnidentifiedImageError: cannot identify image file",
                x.name, bad.id
            ),
            Some(handle),
        );
    }
    for i in &todo {
        st.image_labels.push((
            i.id.clone(),
            model.clone(),
            version.clone(),
            label_set.clone(),
            labels[0].clone(),
        ));
    }
    result(
        handle,
        &["number of rows inserted"],
        vec![vec![s(&todo.len().to_string())]],
        0,
    )
}

/// The rows of CLINICAL_NOTES without a current embedding of (model, version) get one.
fn insert_missing(
    notes: &[(String, String)],
    cache: &mut HashMap<(String, String), (String, String)>,
    model: &str,
    version: &str,
) -> usize {
    let mut n = 0;
    for (id, t) in notes {
        let h = hugflake::batch::input::hash_text(t);
        let key = (id.clone(), model.to_string());
        let current = cache.get(&key) == Some(&(version.to_string(), h.clone()));
        if !t.trim().is_empty() && !current {
            cache.insert(key, (version.to_string(), h));
            n += 1;
        }
    }
    n
}
