//! Every statement hugflake sends to Snowflake, built from identifiers and bindings only (no user
//! text is ever pasted into SQL), and the two YAML specs of the import flow (SNOWFLAKE.md §1),
//! written from typed structs. Pure functions: golden-tested in `tests/snowflake.rs`.

use md5::{Digest, Md5};
use serde::Serialize;

use super::ident::{Ident, Qualified};
use super::sqlapi::{Binding, fixed, text};

/// A statement and its bindings.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub bindings: Vec<Binding>,
}

fn plain(sql: impl Into<String>) -> Statement {
    Statement {
        sql: sql.into(),
        bindings: Vec::new(),
    }
}

pub fn show_compute_pools() -> Statement {
    plain("SHOW COMPUTE POOLS")
}

pub fn show_services(database: &Ident, schema: &Ident) -> Statement {
    plain(format!("SHOW SERVICES IN SCHEMA {database}.{schema}"))
}

pub fn show_models(database: &Ident, schema: &Ident) -> Statement {
    plain(format!("SHOW MODELS IN SCHEMA {database}.{schema}"))
}

pub fn show_versions(model: &Qualified) -> Statement {
    plain(format!("SHOW VERSIONS IN MODEL {model}"))
}

pub fn show_functions(model: &Qualified, version: &Ident) -> Statement {
    plain(format!("SHOW FUNCTIONS IN MODEL {model} VERSION {version}"))
}

pub fn show_containers(service: &Qualified) -> Statement {
    plain(format!("SHOW SERVICE CONTAINERS IN SERVICE {service}"))
}

pub fn show_endpoints(service: &Qualified) -> Statement {
    plain(format!("SHOW ENDPOINTS IN SERVICE {service}"))
}

pub fn service_logs(service: &Qualified, instance: u32, container: &str) -> Statement {
    Statement {
        sql: "CALL SYSTEM$GET_SERVICE_LOGS(?, ?, ?)".into(),
        bindings: vec![
            text(service.sql()),
            text(instance.to_string()),
            text(container),
        ],
    }
}

/// The log of a container's run before its last restart: `SYSTEM$GET_SERVICE_LOGS(service,
/// instance, container, number_of_most_recent_lines, retrieve_previous_logs)`; the fourth argument
/// is positional, so the line count comes with it.
pub fn service_previous_logs(
    service: &Qualified,
    instance: u32,
    container: &str,
    lines: usize,
) -> Statement {
    Statement {
        sql: "CALL SYSTEM$GET_SERVICE_LOGS(?, ?, ?, ?, TRUE)".into(),
        bindings: vec![
            text(service.sql()),
            text(instance.to_string()),
            text(container),
            fixed(lines.clamp(1, i64::MAX as usize) as i64),
        ],
    }
}

pub fn service_metrics(service: &Qualified) -> Statement {
    plain(format!(
        "SELECT TIMESTAMP, METRIC_NAME, VALUE, UNIT, INSTANCE_ID, CONTAINER_NAME FROM TABLE({service}!SPCS_GET_METRICS()) ORDER BY TIMESTAMP"
    ))
}

/// `START_TIME => '…'::TIMESTAMP_LTZ, END_TIME => …` of the SPCS table functions (each end only
/// when given; the times are formatted here from parsed values, never taken as text).
fn time_range(w: &crate::domain::window::Window) -> String {
    let at = |t: &chrono::DateTime<chrono::Utc>| {
        format!("'{}'::TIMESTAMP_LTZ", t.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
    };
    // Without a start SPCS starts one day ago, which an end further back would make empty: an
    // end alone gets the day before it.
    let since = w.since.or_else(|| {
        w.until
            .and_then(|u| u.checked_sub_signed(chrono::Duration::days(1)))
    });
    [
        since.map(|t| format!("START_TIME => {}", at(&t))),
        w.until.map(|t| format!("END_TIME => {}", at(&t))),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ")
}

/// Events in a window (`SPCS_GET_EVENTS` takes START_TIME and END_TIME; by default the last day).
pub fn service_events_in(service: &Qualified, w: &crate::domain::window::Window) -> Statement {
    plain(format!(
        "SELECT TIMESTAMP, SEVERITY, EVENT_NAME, EVENT_DETAILS, INSTANCE_ID, CONTAINER_NAME FROM TABLE({service}!SPCS_GET_EVENTS({})) ORDER BY TIMESTAMP",
        time_range(w)
    ))
}

/// Metrics in a window.
pub fn service_metrics_in(service: &Qualified, w: &crate::domain::window::Window) -> Statement {
    plain(format!(
        "SELECT TIMESTAMP, METRIC_NAME, VALUE, UNIT, INSTANCE_ID, CONTAINER_NAME FROM TABLE({service}!SPCS_GET_METRICS({})) ORDER BY TIMESTAMP",
        time_range(w)
    ))
}

/// Container logs in a window, the newest `limit` (`SPCS_GET_LOGS`: TIMESTAMP, INSTANCE_ID,
/// CONTAINER_NAME, LOG).
pub fn service_logs_in(
    service: &Qualified,
    w: &crate::domain::window::Window,
    limit: usize,
) -> Statement {
    plain(format!(
        "SELECT TIMESTAMP, INSTANCE_ID, CONTAINER_NAME, LOG FROM (SELECT TIMESTAMP, INSTANCE_ID, CONTAINER_NAME, LOG FROM TABLE({service}!SPCS_GET_LOGS({})) ORDER BY TIMESTAMP DESC LIMIT {limit}) ORDER BY TIMESTAMP",
        time_range(w)
    ))
}

/// The platform events of a service (instances pending, ready, restarting, failing), last day.
pub fn service_events(service: &Qualified) -> Statement {
    plain(format!(
        "SELECT TIMESTAMP, SEVERITY, EVENT_NAME, EVENT_DETAILS, INSTANCE_ID, CONTAINER_NAME FROM TABLE({service}!SPCS_GET_EVENTS()) ORDER BY TIMESTAMP"
    ))
}

pub fn alter_pool(pool: &Ident, suspend: bool) -> Statement {
    plain(format!(
        "ALTER COMPUTE POOL {pool} {}",
        if suspend { "SUSPEND" } else { "RESUME" }
    ))
}

pub fn alter_service(service: &Qualified, suspend: bool) -> Statement {
    plain(format!(
        "ALTER SERVICE {service} {}",
        if suspend { "SUSPEND" } else { "RESUME" }
    ))
}

/// `ALTER SERVICE <fq> SET MIN_INSTANCES = n MAX_INSTANCES = m AUTO_SUSPEND_SECS = s`: only the
/// values given, separated by spaces (docs.snowflake.com sql-reference/sql/alter-service; the
/// Snowflake CLI's `services set` writes them the same way).
pub fn alter_service_scaling(
    service: &Qualified,
    change: &crate::domain::ScalingChange,
) -> Statement {
    let mut sets = Vec::new();
    if let Some(n) = change.min_instances {
        sets.push(format!("MIN_INSTANCES = {n}"));
    }
    if let Some(n) = change.max_instances {
        sets.push(format!("MAX_INSTANCES = {n}"));
    }
    if let Some(n) = change.auto_suspend_secs {
        sets.push(format!("AUTO_SUSPEND_SECS = {n}"));
    }
    plain(format!("ALTER SERVICE {service} SET {}", sets.join(" ")))
}

pub fn describe_service(service: &Qualified) -> Statement {
    plain(format!("DESCRIBE SERVICE {service}"))
}

pub fn drop_service(service: &Qualified) -> Statement {
    plain(format!("DROP SERVICE {service}"))
}

pub fn drop_model(model: &Qualified, version: Option<&Ident>) -> Statement {
    match version {
        Some(v) => plain(format!("ALTER MODEL {model} DROP VERSION {v}")),
        None => plain(format!("DROP MODEL {model}")),
    }
}

pub fn show_grants(role: &Ident) -> Statement {
    plain(format!("SHOW GRANTS TO ROLE {role}"))
}

/// `SHOW SECRETS LIKE '<name>' IN SCHEMA db.schema` (the name as an exact LIKE pattern).
pub fn show_secret(secret: &Qualified) -> Statement {
    plain(format!(
        "SHOW SECRETS LIKE {} IN SCHEMA {}",
        super::ident::like_exact(&secret.name.name),
        secret.schema_sql()
    ))
}

pub fn capabilities() -> Statement {
    plain("SELECT SYSTEM$ML_PLATFORM_CAPABILITIES()")
}

pub fn current_context() -> Statement {
    plain(
        "SELECT CURRENT_ACCOUNT(), CURRENT_USER(), CURRENT_ROLE(), CURRENT_WAREHOUSE(), CURRENT_VERSION()",
    )
}

/// `SYSTEM$IMPORT_MODEL` with its spec bound as text.
pub fn import_model(spec_yaml: &str) -> Statement {
    Statement {
        sql: "SELECT SYSTEM$IMPORT_MODEL(?)".into(),
        bindings: vec![text(spec_yaml)],
    }
}

/// `SYSTEM$DEPLOY_MODEL` with its spec bound as text.
pub fn deploy_model(spec_yaml: &str) -> Statement {
    Statement {
        sql: "CALL SYSTEM$DEPLOY_MODEL(?)".into(),
        bindings: vec![text(spec_yaml)],
    }
}

/// A method as SQL names it: `ENCODE`; `__CALL__` quoted as the Python client writes it.
pub fn method_ident(method: &str) -> String {
    if method.starts_with("__") {
        format!("\"{}\"", method.replace('"', "\"\""))
    } else {
        Ident::parse(method).map_or_else(|_| format!("\"{method}\""), |i| i.sql())
    }
}

/// The service function over SQL with text inputs, in signature order, each bound.
pub fn service_call(service: &Qualified, method: &str, inputs: &[String]) -> Statement {
    let values: Vec<serde_json::Value> = inputs
        .iter()
        .map(|i| serde_json::Value::String(i.clone()))
        .collect();
    service_call_values(service, method, &values, &[])
}

/// The service function over SQL, inputs in signature order: text bound as TEXT; BINARY
/// arguments (`binary[i]`; images, given as base64) decoded with `TO_BINARY(?, 'BASE64')`;
/// anything else (`candidate_labels` arrays) bound as JSON text and cast with
/// `PARSE_JSON(?)::ARRAY`.
pub fn service_call_values(
    service: &Qualified,
    method: &str,
    inputs: &[serde_json::Value],
    binary: &[bool],
) -> Statement {
    let mut marks = Vec::with_capacity(inputs.len());
    let mut bindings = Vec::with_capacity(inputs.len());
    for (i, v) in inputs.iter().enumerate() {
        match v {
            serde_json::Value::String(s) if binary.get(i) == Some(&true) => {
                marks.push("TO_BINARY(?, 'BASE64')");
                bindings.push(text(s.as_str()));
            }
            serde_json::Value::String(s) => {
                marks.push("?");
                bindings.push(text(s.as_str()));
            }
            serde_json::Value::Array(_) => {
                marks.push("PARSE_JSON(?)::ARRAY");
                bindings.push(text(v.to_string()));
            }
            other => {
                marks.push("PARSE_JSON(?)");
                bindings.push(text(other.to_string()));
            }
        }
    }
    Statement {
        sql: format!(
            "SELECT {service}!{}({})",
            method_ident(method),
            marks.join(", ")
        ),
        bindings,
    }
}

/// Warehouse inference on a model version, inputs bound.
pub fn warehouse_call(model: &Qualified, version: &Ident, method: &str, input: &str) -> Statement {
    Statement {
        sql: format!(
            "SELECT MODEL({model}, {version})!{}(?)",
            method_ident(method)
        ),
        bindings: vec![text(input)],
    }
}

// ---- specs ----

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportSpecYaml {
    pub compute_pool: String,
    pub models: Vec<ImportModel>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportModel {
    pub name: ModelName,
    pub hf_model: HfModel,
    pub log_model_args: LogModelArgs,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelName {
    pub model_name: String,
    pub version_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HfModel {
    pub hf_model_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The *name* of a Snowflake secret holding the HF token; a raw token never goes here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_secret_object: Option<String>,
    pub trust_remote_code: bool,
    /// A JSON string, as the Python client sends it.
    pub hf_model_kwargs: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogModelArgs {
    pub target_platforms: Vec<String>,
    /// The warehouse the server-side logging uses to check packages when WAREHOUSE is a target
    /// (snowflake-ml-python `LogModelArgs.warehouse`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<String>,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploySpecYaml {
    pub models: Vec<DeployModel>,
    pub image_build: ImageBuild,
    pub service: ServiceSpecYaml,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeployModel {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageBuild {
    pub compute_pool: String,
    pub force_rebuild: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSpecYaml {
    pub name: String,
    pub compute_pool: String,
    pub ingress_enabled: bool,
    pub min_instances: u32,
    pub max_instances: u32,
    /// Requests per instance, strings as snowflake-ml-python's deployment spec has them
    /// (`service.cpu`, `memory`, `gpu`: `str | None`, left out when not asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    /// Inference inputs and outputs stored by Snowflake: left out (off) unless the user asks, as
    /// snowflake-ml-python leaves it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autocapture: Option<bool>,
}

pub fn yaml<T: Serialize>(spec: &T) -> Result<String, String> {
    serde_yaml_ng::to_string(spec).map_err(|e| e.to_string())
}

/// `<H>` of the job services an import statement starts: the first 8 hex characters of the md5 of
/// the query id read as one base-16 number, in decimal, upper-cased (SNOWFLAKE.md §1).
pub fn job_hash(query_id: &str) -> Option<String> {
    let hex: String = query_id.chars().filter(|c| *c != '-').collect();
    let n = u128::from_str_radix(&hex, 16).ok()?;
    let digest = Md5::digest(n.to_string().as_bytes());
    let hexd: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Some(hexd[..8].to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_match_the_documented_example() {
        assert_eq!(
            job_hash("01b2c3d4-0000-1234-0000-00010a0b0c0d").as_deref(),
            Some("D1DE7BB7")
        );
        assert_eq!(job_hash("not hex"), None);
    }

    #[test]
    fn methods_are_named_as_the_python_client_names_them() {
        assert_eq!(method_ident("ENCODE"), "ENCODE");
        assert_eq!(method_ident("encode_query"), "ENCODE_QUERY");
        assert_eq!(method_ident("__CALL__"), "\"__CALL__\"");
    }
}
