//! A Snowflake SQL API v2 simulator on 127.0.0.1 (http): statement handles, 202/333334 while a
//! statement runs, `resultSetMetaData.rowType` with SHOW's lower-case columns, values as strings,
//! gzip partitions, errors with code/sqlState/message, 401 and 429. It answers the statements the
//! Snowflake platform sends with the documented columns and simulates imports and deploys over
//! time (MODEL_LOGGING_ → MODEL_BUILD_ → service containers READY, logs growing), failures on
//! demand, and a REST ingress that checks the `Snowflake Token` header.
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
}

#[derive(Clone, Debug)]
pub struct Version {
    pub model: String,
    pub name: String,
    pub task: String,
    pub functions: Vec<&'static str>,
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
        service: String,
        pool: String,
        build: String,
        min: u32,
        max: u32,
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
    pub secrets: Vec<String>,
    /// The table CLINICAL_NOTES: (NOTE_ID, NOTE_TEXT).
    pub notes: Vec<(String, String)>,
    /// The batch cache table: (note id, model) → (version, content hash).
    pub cache: HashMap<(String, String), (String, String)>,
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
            secrets: vec!["HF_TOKEN".into()],
            notes: Vec::new(),
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
            .route("/encode", post(ingress))
            .route("/--call--", post(ingress))
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
                if let Some(j) = st.services.iter_mut().find(|x| x.name == logging) {
                    j.status = "DONE".into();
                }
            }
            Some(Work::Deploy {
                service,
                pool,
                build,
                min,
                max,
            }) => {
                let failed = st
                    .services
                    .iter()
                    .any(|x| x.name == build && x.status == "FAILED");
                if failed {
                    r.result = Err(("100358".into(), format!("image build {build} failed")));
                } else if !st.services.iter().any(|x| x.name == service) {
                    st.services.push(Svc {
                        name: service,
                        status: "PENDING".into(),
                        pool,
                        is_job: false,
                        created: now,
                        ready_after: step,
                        logs: vec!["starting model-inference".into()],
                        container: "model-inference".into(),
                        min_instances: min,
                        max_instances: max,
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
        return result(
            handle,
            &["name", "vcpu", "memory_gib", "gpu"],
            vec![
                vec![s("CPU_X64_S"), s("3"), s("13"), s("0")],
                vec![s("CPU_X64_M"), s("6"), s("28"), s("0")],
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
                s("ML_ENGINEER"),
                s("ML_WH"),
                s("9.38.1"),
            ]],
            0,
        );
    }
    if let Some(rest) = upper.strip_prefix("SHOW SERVICES IN SCHEMA ") {
        let (db, sc) = rest.split_once('.').unwrap_or(("", ""));
        let rows: Vec<Vec<Value>> = st
            .services
            .iter()
            .map(|x| {
                let running = x.status == "RUNNING";
                vec![
                    s(&x.name),
                    s(&x.status),
                    s(db),
                    s(sc),
                    s("ML_ENGINEER"),
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
                    s("0"),
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
                let services: Vec<String> = st
                    .services
                    .iter()
                    .filter(|x| !x.is_job)
                    .map(|x| x.name.clone())
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
                    s(&json!({"task": v.task, "framework": "huggingface_pipeline"}).to_string()),
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
                let (arg, ret) = if *f == "__CALL__" {
                    ("INPUTS VARCHAR", "OBJECT")
                } else {
                    ("SENTENCE VARCHAR", "OBJECT")
                };
                vec![
                    s(f),
                    s(&ver.name),
                    s("1"),
                    s("1"),
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
        let name = last_part(rest);
        let Some(x) = st.services.iter().find(|x| x.name == name) else {
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
            s("ML"),
            s("PUBLIC"),
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
            s("0"),
            s("2026-11-26T10:00:00Z"),
            Value::Null,
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
        let name = last_part(rest);
        let Some(x) = st.services.iter().find(|x| x.name == name) else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "002003",
                "02000",
                "Service does not exist.",
                Some(handle),
            );
        };
        let url = if x.status == "RUNNING" {
            format!("127.0.0.1:{}", st.ingress_port)
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
        let name = last_part(rest.split('!').next().unwrap_or(""));
        let Some(svc) = st.services.iter().find(|x| x.name == name) else {
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
    if upper == "CALL SYSTEM$GET_SERVICE_LOGS(?, ?, ?)" {
        let name = last_part(binds.first().map_or("", String::as_str));
        let logs = st
            .services
            .iter()
            .find(|x| x.name == name)
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
    if let Some(rest) = upper.strip_prefix("ALTER SERVICE ") {
        let (fq, action) = rest.rsplit_once(' ').unwrap_or((rest, ""));
        let name = last_part(fq);
        let Some(x) = st.services.iter_mut().find(|x| x.name == name) else {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "002003",
                "02000",
                "Service does not exist.",
                Some(handle),
            );
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
        st.services.retain(|x| x.name != name);
        return result(
            handle,
            &["status"],
            vec![vec![s(&format!("{name} successfully dropped."))]],
            0,
        );
    }
    if upper.starts_with("SELECT SYSTEM$IMPORT_MODEL(?)") {
        let spec: serde_yaml_value::Spec =
            serde_yaml_value::parse(binds.first().map_or("", String::as_str));
        let logging = format!("MODEL_LOGGING_{}", job_hash(handle));
        let step = st.step;
        st.services.push(Svc {
            name: logging.clone(),
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
        });
        let functions = if spec.task.as_deref() == Some("token-classification") {
            vec!["__CALL__"]
        } else {
            vec!["ENCODE", "ENCODE_QUERY", "ENCODE_DOCUMENT"]
        };
        st.running.insert(
            handle.to_string(),
            Running {
                done_at: Instant::now() + step * 2,
                work: Some(Work::Import {
                    version: Version {
                        model: last_part(&spec.model_name),
                        name: spec.version_name.clone(),
                        task: spec
                            .task
                            .clone()
                            .unwrap_or_else(|| "sentence-transformers".into()),
                        functions,
                    },
                    logging,
                }),
                result: Ok(vec![vec![s("Model imported successfully.")]]),
                column: "SYSTEM$IMPORT_MODEL(?)".into(),
                cancelled: false,
            },
        );
        return running(handle);
    }
    if upper.starts_with("CALL SYSTEM$DEPLOY_MODEL(?)") {
        let spec = serde_yaml_value::parse_deploy(binds.first().map_or("", String::as_str));
        let build = format!("MODEL_BUILD_{}", job_hash(handle));
        let step = st.step;
        st.services.push(Svc {
            name: build.clone(),
            status: "RUNNING".into(),
            pool: spec.1.clone(),
            is_job: true,
            created: Instant::now(),
            ready_after: step,
            logs: vec!["building image".into()],
            container: "model-build".into(),
            min_instances: 1,
            max_instances: 1,
        });
        st.running.insert(
            handle.to_string(),
            Running {
                done_at: Instant::now() + step + Duration::from_millis(50),
                work: Some(Work::Deploy {
                    service: last_part(&spec.0),
                    pool: spec.1,
                    build,
                    min: spec.2,
                    max: spec.3,
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
        if !st
            .versions
            .iter()
            .any(|x| x.model == model && x.name == version)
        {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "002003",
                "02000",
                &format!("Model '{m}' version '{version}' does not exist."),
                Some(handle),
            );
        }
        let rows = binds
            .iter()
            .map(|t| {
                vec![s(
                    &serde_json::to_string_pretty(&fake_output(&upper, t)).unwrap_or_default()
                )]
            })
            .collect();
        return result(handle, &["RESULT"], rows, 0);
    }
    if upper.starts_with("SELECT ") && upper.contains('!') {
        // A service function: one row per bound input.
        let name = upper[7..]
            .split('!')
            .next()
            .map(last_part)
            .unwrap_or_default();
        match st.services.iter().find(|x| x.name == name) {
            Some(x) if x.status == "RUNNING" => {}
            _ => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "002003",
                    "02000",
                    "Service not running.",
                    Some(handle),
                );
            }
        }
        let rows = binds
            .iter()
            .map(|t| {
                vec![s(
                    &serde_json::to_string_pretty(&fake_output(&upper, t)).unwrap_or_default()
                )]
            })
            .collect();
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
    tick(&mut st);
    let handle = new_handle(&mut st);
    answer(&mut st, &handle, &sql, &binds)
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

async fn oauth(body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    if text.contains("assertion=") && text.contains("grant_type=urn") {
        (StatusCode::OK, "sim-oauth-token").into_response()
    } else {
        (StatusCode::BAD_REQUEST, "bad grant").into_response()
    }
}

async fn ingress(
    State(state): State<Shared>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ok = auth == format!("Snowflake Token=\"{PAT}\"")
        || auth == "Snowflake Token=\"sim-oauth-token\"";
    if !ok {
        return (StatusCode::UNAUTHORIZED, "missing Snowflake Token").into_response();
    }
    lock(&state).ingress_calls += 1;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let method = if uri.path() == "/--call--" {
        "__CALL__"
    } else {
        "ENCODE"
    };
    let rows: Vec<Value> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| json!([r[0], fake_output(method, r[1].as_str().unwrap_or(""))]))
        .collect();
    axum::Json(json!({ "data": rows })).into_response()
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
    }

    fn field(text: &str, key: &str) -> Option<String> {
        text.lines().find_map(|l| {
            let l = l.trim().trim_start_matches("- ");
            l.strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_string())
        })
    }

    pub fn parse(text: &str) -> Spec {
        Spec {
            compute_pool: field(text, "compute_pool").unwrap_or_default(),
            model_name: field(text, "model_name").unwrap_or_default(),
            version_name: field(text, "version_name").unwrap_or_default(),
            hf_model_name: field(text, "hf_model_name").unwrap_or_default(),
            task: field(text, "task"),
        }
    }

    /// (service name, pool, min, max)
    pub fn parse_deploy(text: &str) -> (String, String, u32, u32) {
        let service = text.split("service:").nth(1).unwrap_or("");
        (
            field(service, "name").unwrap_or_default(),
            field(service, "compute_pool").unwrap_or_default(),
            field(service, "min_instances")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            field(service, "max_instances")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
        )
    }
}

/// The batch statements over CLINICAL_NOTES and its cache table, with the semantics the SQL asks
/// for: stale rows deleted, only missing rows inserted, empty texts skipped.
fn batch_sql(st: &mut SimState, handle: &str, upper: &str, binds: &[String]) -> Option<Response> {
    let hash = |t: &str| hugflake::batch::input::hash_text(t);
    let empty = |t: &str| t.trim().is_empty();
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
        let svc = upper
            .split("!ENCODE(")
            .next()?
            .rsplit(' ')
            .next()
            .map(last_part)?;
        if !st
            .services
            .iter()
            .any(|x| x.name == svc && x.status == "RUNNING")
        {
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
