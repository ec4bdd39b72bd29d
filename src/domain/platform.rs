//! What a platform hosts, in Snowflake's vocabulary (SNOWFLAKE.md §4): compute pools, services and
//! registered models. The local platform uses the same states and column meanings, so a user who
//! learns one knows the other.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which platform the app talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformKind {
    Local,
    Snowflake,
}

impl fmt::Display for PlatformKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlatformKind::Local => "local",
            PlatformKind::Snowflake => "snowflake",
        })
    }
}

/// The platform endpoint itself: who answers, since when, which version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformStatus {
    pub kind: PlatformKind,
    /// Where it is: `127.0.0.1:47811` for the local daemon, the account for Snowflake.
    pub location: String,
    pub version: String,
    pub pid: Option<u32>,
    pub started_at: Option<DateTime<Utc>>,
    /// Extra facts worth showing (data dir, role, warehouse...).
    #[serde(default)]
    pub details: Vec<(String, String)>,
    /// The pool imports go to unless told otherwise (the local platform's LOCAL_CPU).
    #[serde(default)]
    pub default_pool: Option<String>,
    /// Where a registry that lives in a database puts imported models (Snowflake).
    #[serde(default)]
    pub registry: Option<RegistryPlace>,
}

/// A registry's place in a database, and the warehouse its statements run on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryPlace {
    pub database: String,
    pub schema: String,
    /// The connection's current warehouse; `None` when it has none.
    pub warehouse: Option<String>,
}

/// How a row reads at a glance; ordering puts faults first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Health {
    Fault,
    Pending,
    Suspended,
    Ok,
    Idle,
}

macro_rules! state_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal : $health:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn health(self) -> Health {
                match self { $($name::$variant => Health::$health),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| format!("unknown {} `{s}`", stringify!($name)))
            }
        }
    };
}

state_enum! {
    /// `SHOW COMPUTE POOLS` column `state`.
    PoolState {
        Unknown => "UNKNOWN": Pending,
        Starting => "STARTING": Pending,
        Idle => "IDLE": Idle,
        Active => "ACTIVE": Ok,
        Stopping => "STOPPING": Pending,
        Suspended => "SUSPENDED": Suspended,
        Resizing => "RESIZING": Pending,
    }
}

state_enum! {
    /// `SHOW SERVICES` column `status`.
    ServiceStatus {
        Pending => "PENDING": Pending,
        Running => "RUNNING": Ok,
        Failed => "FAILED": Fault,
        Done => "DONE": Idle,
        Suspending => "SUSPENDING": Pending,
        Suspended => "SUSPENDED": Suspended,
        Deleting => "DELETING": Pending,
        Deleted => "DELETED": Idle,
        InternalError => "INTERNAL_ERROR": Fault,
    }
}

/// A compute pool (`SHOW COMPUTE POOLS`, plus the instance family's size).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputePool {
    pub name: String,
    pub state: PoolState,
    pub min_nodes: u32,
    pub max_nodes: u32,
    pub instance_family: String,
    /// vCPUs of one node.
    pub vcpu: f64,
    /// Memory of one node in GiB.
    pub memory_gib: f64,
    /// GPUs per node (0: none).
    #[serde(default)]
    pub gpu: u32,
    /// Their kind (`NVIDIA A10G`), from SHOW COMPUTE POOL INSTANCE FAMILIES.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_type: Option<String>,
    /// Memory of one GPU in GiB.
    #[serde(default)]
    pub gpu_memory_gib: f64,
    pub active_nodes: u32,
    pub idle_nodes: u32,
    pub num_services: u32,
    pub num_jobs: u32,
    pub auto_suspend_secs: Option<u64>,
    pub auto_resume: bool,
    pub created_on: DateTime<Utc>,
    pub resumed_on: Option<DateTime<Utc>>,
    pub updated_on: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    pub error_code: Option<String>,
    pub status_message: Option<String>,
}

impl ComputePool {
    /// `3 vCPU · 13.0 GiB`, with `· 1× NVIDIA A10G 24 GiB` when the family has GPUs.
    pub fn size(&self) -> String {
        let mut s = format!("{} vCPU · {:.1} GiB", self.vcpu, self.memory_gib);
        if self.gpu > 0 {
            s.push_str(&format!(
                " · {}× {}{}",
                self.gpu,
                self.gpu_type.as_deref().unwrap_or("GPU"),
                if self.gpu_memory_gib > 0.0 {
                    format!(" {:.0} GiB", self.gpu_memory_gib)
                } else {
                    String::new()
                }
            ));
        }
        s
    }

    pub fn health(&self) -> Health {
        if self.error_code.is_some() {
            Health::Fault
        } else {
            self.state.health()
        }
    }
}

/// A service (`SHOW SERVICES`), with the model it serves when it is a model service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub status: ServiceStatus,
    pub compute_pool: String,
    pub current_instances: u32,
    pub target_instances: u32,
    pub min_instances: u32,
    pub max_instances: u32,
    /// AUTO_SUSPEND_SECS: seconds without calls before a service with MIN_INSTANCES 0 suspends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_suspend_secs: Option<u64>,
    /// Suspended for idleness (not by a person): the next call resumes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_suspended: bool,
    /// Local only: how long the last resume by a call took until an instance was READY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_start_ms: Option<u64>,
    /// Instances whose containers are all READY.
    pub ready_instances: u32,
    pub model: Option<String>,
    pub model_version: Option<String>,
    /// The inference endpoint (`ingress_url` on Snowflake, `http://127.0.0.1:port` locally).
    pub endpoint: Option<String>,
    pub is_job: bool,
    pub created_on: DateTime<Utc>,
    pub resumed_on: Option<DateTime<Utc>>,
    pub suspended_on: Option<DateTime<Utc>>,
    /// Why it is not RUNNING, when the platform says.
    pub message: Option<String>,
    /// Local only: the arithmetic its instances' encoders use (`None` on Snowflake, whose
    /// container runs transformers in fp32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<super::Precision>,
    /// Local only: what a ready instance's calibration check measured (reduced precisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<super::Calibration>,
}

impl Service {
    pub fn health(&self) -> Health {
        match self.status {
            ServiceStatus::Running if self.ready_instances < self.target_instances.max(1) => {
                Health::Pending
            }
            s => s.health(),
        }
    }

    pub fn scaling(&self) -> super::Scaling {
        super::Scaling {
            min_instances: self.min_instances,
            max_instances: self.max_instances,
            auto_suspend_secs: self.auto_suspend_secs,
        }
    }

    /// `SUSPENDED (auto)` for a service suspended for idleness, else the status.
    pub fn status_label(&self) -> String {
        if self.auto_suspended && self.status == ServiceStatus::Suspended {
            format!("{} (auto)", self.status)
        } else {
            self.status.to_string()
        }
    }

    pub fn qualified_name(&self) -> String {
        match (&self.database, &self.schema) {
            (Some(d), Some(s)) => format!("{d}.{s}.{}", self.name),
            _ => self.name.clone(),
        }
    }
}

/// A model in the registry (`SHOW MODELS`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredModel {
    pub name: String,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub default_version: Option<String>,
    pub versions: Vec<String>,
    /// The Hugging Face repo it came from, when known.
    pub source: Option<String>,
    pub comment: Option<String>,
    pub created_on: DateTime<Utc>,
}

state_enum! {
    /// `SHOW SERVICE INSTANCES` / `SHOW SERVICE CONTAINERS` column `status`.
    InstanceStatus {
        Pending => "PENDING": Pending,
        Ready => "READY": Ok,
        Failed => "FAILED": Fault,
        Terminating => "TERMINATING": Pending,
        Succeeded => "SUCCEEDED": Idle,
    }
}

/// One container of a service instance (`SHOW SERVICE CONTAINERS IN SERVICE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub service: String,
    pub service_status: ServiceStatus,
    pub instance_id: u32,
    pub instance_status: InstanceStatus,
    pub container_name: String,
    pub status: InstanceStatus,
    pub message: Option<String>,
    pub restart_count: u32,
    pub start_time: Option<DateTime<Utc>>,
    pub last_exit_code: Option<i32>,
    /// Local only: the process id and its resident memory.
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// Local only: what the calibration check measured when the instance loaded a reduced
    /// precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<super::Calibration>,
}

/// `SHOW ENDPOINTS IN SERVICE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub name: String,
    pub port: u16,
    pub protocol: String,
    pub is_public: bool,
    /// Without a scheme, as Snowflake gives it: `127.0.0.1:41234` locally.
    pub ingress_url: String,
}

/// A line of a service container's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub instance_id: u32,
    pub container: String,
    pub line: String,
}

/// Something the platform did to a service: an instance started, became ready, exited, was
/// restarted; the service was suspended or resumed. Snowflake's `SPCS_GET_EVENTS` columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceEvent {
    pub at: DateTime<Utc>,
    /// INFO, WARN or ERROR.
    pub severity: String,
    /// e.g. `CONTAINER.STATUS_CHANGE`.
    pub name: String,
    pub instance_id: Option<u32>,
    pub container: Option<String>,
    pub message: String,
}

/// One metrics sample of a service, over the interval that ends at `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    pub at: DateTime<Utc>,
    pub interval_secs: f64,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Requests waiting or running at the sample time.
    pub queue_depth: u64,
    /// Resident memory of all instances.
    pub memory_bytes: u64,
}

/// A model function's signature (`SHOW FUNCTIONS IN MODEL`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Function {
    /// `ENCODE`, `__CALL__`, ...
    pub name: String,
    pub arguments: Vec<Column>,
    pub returns: Vec<Column>,
    /// How many leading arguments a call must give (`min_num_arguments`; the rest are parameters
    /// with defaults, such as `top_k`), when the platform says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<usize>,
}

impl Function {
    /// The REST path of a method: `ENCODE` → `/encode`, `__CALL__` → `/--call--`.
    pub fn rest_path(&self) -> String {
        rest_path(&self.name)
    }
}

pub fn rest_path(method: &str) -> String {
    format!("/{}", method.to_ascii_lowercase().replace('_', "-"))
}

/// A named, typed input or output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// Snowflake's type name: STRING, ARRAY, BINARY, OBJECT, NUMBER...
    #[serde(rename = "type")]
    pub kind: String,
}

/// A version of a registered model (`SHOW VERSIONS IN MODEL`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    pub model: String,
    pub name: String,
    pub source: String,
    pub revision: String,
    pub task: String,
    pub files: Vec<VersionFile>,
    pub total_bytes: u64,
    pub functions: Vec<Function>,
    /// The services serving this version, fully qualified on Snowflake (job services left out).
    pub inference_services: Vec<String>,
    /// Where the version may run: `WAREHOUSE`, `SNOWPARK_CONTAINER_SERVICES` (Snowflake's SHOW
    /// VERSIONS `runnable_in`); empty when the platform does not say (locally: its services).
    #[serde(default)]
    pub runnable_in: Vec<String>,
    /// Snowflake's ML task for the version (`model_attributes.task`, e.g.
    /// `TABULAR_BINARY_CLASSIFICATION`): Snowflake's own enum, not a Hugging Face task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snowflake_ml_task: Option<String>,
    pub created_on: DateTime<Utc>,
}

impl ModelVersion {
    /// Whether warehouse inference (`MODEL(m, v)!METHOD`) may be offered: the platform says the
    /// version runs in a warehouse, or says nothing.
    pub fn runs_in_warehouse(&self) -> bool {
        self.runnable_in.is_empty() || self.runnable_in.iter().any(|r| r == "WAREHOUSE")
    }
}

/// A file of a model version, as it was verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionFile {
    pub path: String,
    pub size: u64,
    /// The blob id: sha256 for LFS files, the git blob sha1 otherwise.
    pub hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_in_snowflake_spelling() {
        for s in ServiceStatus::ALL {
            assert_eq!(s.as_str().parse::<ServiceStatus>(), Ok(*s));
            let json = serde_json::to_string(s).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert_eq!("idle".parse::<PoolState>(), Ok(PoolState::Idle));
        assert!("BROKEN".parse::<PoolState>().is_err());
        assert!(Health::Fault < Health::Ok);
    }
}
