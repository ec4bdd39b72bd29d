//! The local platform's registry: one SQLite file in the data dir, versioned migrations, and the
//! rows behind `SHOW COMPUTE POOLS`, `SHOW SERVICES`, `SHOW MODELS` and the import jobs.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::domain::{
    ComputePool, JobState, JobSummary, PoolState, RegisteredModel, Service, ServiceStatus, Stage,
};

/// Migrations in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE pools (
    name              TEXT PRIMARY KEY,
    state             TEXT NOT NULL,
    min_nodes         INTEGER NOT NULL,
    max_nodes         INTEGER NOT NULL,
    instance_family   TEXT NOT NULL,
    vcpu              REAL NOT NULL,
    memory_gib        REAL NOT NULL,
    gpu               INTEGER NOT NULL DEFAULT 0,
    auto_suspend_secs INTEGER,
    auto_resume       INTEGER NOT NULL DEFAULT 1,
    comment           TEXT,
    created_on        TEXT NOT NULL,
    updated_on        TEXT,
    resumed_on        TEXT
);
CREATE TABLE models (
    name            TEXT PRIMARY KEY,
    source          TEXT,
    default_version TEXT,
    comment         TEXT,
    created_on      TEXT NOT NULL
);
CREATE TABLE versions (
    model       TEXT NOT NULL REFERENCES models(name) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    source      TEXT NOT NULL,
    revision    TEXT NOT NULL,
    task        TEXT NOT NULL,
    files_json  TEXT NOT NULL DEFAULT '[]',
    total_bytes INTEGER NOT NULL DEFAULT 0,
    comment     TEXT,
    created_on  TEXT NOT NULL,
    PRIMARY KEY (model, name)
);
CREATE TABLE functions (
    model          TEXT NOT NULL,
    version        TEXT NOT NULL,
    name           TEXT NOT NULL,
    arguments_json TEXT NOT NULL,
    returns_json   TEXT NOT NULL,
    PRIMARY KEY (model, version, name),
    FOREIGN KEY (model, version) REFERENCES versions(model, name) ON DELETE CASCADE
);
CREATE TABLE services (
    name              TEXT PRIMARY KEY,
    status            TEXT NOT NULL,
    compute_pool      TEXT NOT NULL REFERENCES pools(name),
    model             TEXT,
    model_version     TEXT,
    min_instances     INTEGER NOT NULL,
    max_instances     INTEGER NOT NULL,
    target_instances  INTEGER NOT NULL,
    port              INTEGER,
    spec_json         TEXT NOT NULL DEFAULT '{}',
    message           TEXT,
    created_on        TEXT NOT NULL,
    updated_on        TEXT,
    resumed_on        TEXT,
    suspended_on      TEXT
);
CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    handle      TEXT NOT NULL,
    model       TEXT NOT NULL,
    version     TEXT NOT NULL,
    target      TEXT NOT NULL,
    state       TEXT NOT NULL,
    stage       TEXT,
    spec_json   TEXT NOT NULL DEFAULT '{}',
    error       TEXT,
    created_on  TEXT NOT NULL,
    updated_on  TEXT NOT NULL,
    finished_on TEXT
);
CREATE TABLE job_stages (
    job_id      TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    stage       TEXT NOT NULL,
    state       TEXT NOT NULL,
    started_on  TEXT,
    finished_on TEXT,
    bytes_done  INTEGER NOT NULL DEFAULT 0,
    bytes_total INTEGER,
    error       TEXT,
    PRIMARY KEY (job_id, stage)
);
"#,
    r#"
ALTER TABLE versions ADD COLUMN snapshot TEXT;
ALTER TABLE versions ADD COLUMN text_dir TEXT;
ALTER TABLE jobs ADD COLUMN plan_json TEXT;
CREATE TABLE job_logs (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    at     TEXT NOT NULL,
    line   TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"#,
];

/// The pool created on first start.
pub const DEFAULT_POOL: &str = "LOCAL_CPU";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(
        "the registry at {path} has schema version {found}, newer than this hugflake knows ({known}): upgrade hugflake"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("compute pool {0} does not exist")]
    NoSuchPool(String),
    #[error("registry row has a bad value: {0}")]
    BadValue(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
}

pub type Result<T> = std::result::Result<T, RegistryError>;

/// The machine the local platform runs on, which sizes the default pool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Machine {
    pub vcpu: u32,
    pub memory_gib: f64,
}

impl Machine {
    /// Reads the CPU count and total memory (Linux `/proc/meminfo`; 4 GiB assumed elsewhere).
    pub fn detect() -> Machine {
        let vcpu = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(4.0, |kb| kb / 1024.0 / 1024.0);
        Machine { vcpu, memory_gib }
    }

    /// The default pool's memory budget: three quarters of the machine, leaving room for the
    /// system, the daemon and the TUI.
    pub fn pool_memory_gib(&self) -> f64 {
        (self.memory_gib * 0.75 * 10.0).floor() / 10.0
    }
}

pub struct Registry {
    pub(super) conn: Connection,
}

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(super) fn parse_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>> {
    s.map(|s| {
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| RegistryError::BadValue(format!("timestamp `{s}`: {e}")))
    })
    .transpose()
}

pub(super) fn req_ts(s: String) -> Result<DateTime<Utc>> {
    parse_ts(Some(s))?.ok_or_else(|| RegistryError::BadValue("missing timestamp".into()))
}

impl Registry {
    /// Opens (creating if needed) the registry and runs pending migrations. On the very first
    /// migration it creates the default pool sized from `machine`.
    pub fn open(path: &Path, machine: Machine) -> Result<Registry> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if found > known {
            return Err(RegistryError::TooNew {
                path: path.display().to_string(),
                found,
                known,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            if i == 0 {
                seed(&tx, machine)?;
            }
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
            tracing::info!(version = i + 1, "registry migrated");
        }
        Ok(Registry { conn })
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    pub fn pools(&self) -> Result<Vec<ComputePool>> {
        let mut stmt = self
            .conn
            .prepare(&format!("{POOL_SELECT} ORDER BY p.name"))?;
        let rows = stmt.query_map([], pool_row)?;
        rows.map(|r| r?).collect()
    }

    pub fn pool(&self, name: &str) -> Result<Option<ComputePool>> {
        self.conn
            .query_row(
                &format!("{POOL_SELECT} WHERE p.name = ?1"),
                [name],
                pool_row,
            )
            .optional()?
            .transpose()
    }

    /// Suspends a pool and the services on it, or resumes it (IDLE, or ACTIVE when services run).
    pub fn set_pool_suspended(&mut self, name: &str, suspended: bool) -> Result<ComputePool> {
        let now = ts(Utc::now());
        let tx = self.conn.transaction()?;
        let exists: Option<String> = tx
            .query_row("SELECT name FROM pools WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_none() {
            return Err(RegistryError::NoSuchPool(name.into()));
        }
        if suspended {
            tx.execute(
                "UPDATE pools SET state = 'SUSPENDED', updated_on = ?2 WHERE name = ?1",
                params![name, now],
            )?;
            tx.execute(
                "UPDATE services SET status = 'SUSPENDED', suspended_on = ?2, updated_on = ?2
                 WHERE compute_pool = ?1 AND status IN ('PENDING', 'RUNNING')",
                params![name, now],
            )?;
        } else {
            let running: i64 = tx.query_row(
                "SELECT COUNT(*) FROM services WHERE compute_pool = ?1 AND status IN ('PENDING', 'RUNNING')",
                [name],
                |r| r.get(0),
            )?;
            let state = if running > 0 { "ACTIVE" } else { "IDLE" };
            tx.execute(
                "UPDATE pools SET state = ?2, updated_on = ?3, resumed_on = ?3
                 WHERE name = ?1 AND state = 'SUSPENDED'",
                params![name, state, now],
            )?;
        }
        tx.commit()?;
        self.pool(name)?
            .ok_or_else(|| RegistryError::NoSuchPool(name.into()))
    }

    pub fn services(&self) -> Result<Vec<Service>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, status, compute_pool, model, model_version, min_instances, max_instances,
                    target_instances, port, message, created_on, resumed_on, suspended_on,
                    json_extract(spec_json, '$.precision'),
                    json_extract(spec_json, '$.auto_suspend_secs')
             FROM services ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((|| -> Result<Service> {
                let status: String = r.get(1)?;
                let port: Option<u16> = r.get(8)?;
                let target: u32 = r.get(7)?;
                let status: ServiceStatus = status.parse().map_err(RegistryError::BadValue)?;
                let running = status == ServiceStatus::Running;
                Ok(Service {
                    name: r.get(0)?,
                    database: None,
                    schema: None,
                    status,
                    compute_pool: r.get(2)?,
                    model: r.get(3)?,
                    model_version: r.get(4)?,
                    min_instances: r.get(5)?,
                    max_instances: r.get(6)?,
                    auto_suspend_secs: r.get::<_, Option<i64>>(14)?.map(|v| v.max(0) as u64),
                    auto_suspended: false,
                    cold_start_ms: None,
                    target_instances: target,
                    current_instances: if running { target } else { 0 },
                    ready_instances: 0,
                    endpoint: port.map(|p| format!("http://127.0.0.1:{p}")),
                    is_job: false,
                    message: r.get(9)?,
                    created_on: req_ts(r.get(10)?)?,
                    resumed_on: parse_ts(r.get(11)?)?,
                    suspended_on: parse_ts(r.get(12)?)?,
                    precision: Some(
                        r.get::<_, Option<String>>(13)?
                            .and_then(|p| crate::domain::Precision::parse(&p))
                            .unwrap_or_default(),
                    ),
                    calibration: None,
                })
            })())
        })?;
        rows.map(|r| r?).collect()
    }

    pub fn models(&self) -> Result<Vec<RegisteredModel>> {
        let mut stmt = self.conn.prepare(
            "SELECT m.name, m.source, m.default_version, m.comment, m.created_on,
                    (SELECT group_concat(v.name, char(31)) FROM versions v WHERE v.model = m.name)
             FROM models m ORDER BY m.name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((|| -> Result<RegisteredModel> {
                let versions: Option<String> = r.get(5)?;
                Ok(RegisteredModel {
                    name: r.get(0)?,
                    database: None,
                    schema: None,
                    source: r.get(1)?,
                    default_version: r.get(2)?,
                    comment: r.get(3)?,
                    created_on: req_ts(r.get(4)?)?,
                    versions: versions
                        .map(|v| v.split('\u{1f}').map(String::from).collect())
                        .unwrap_or_default(),
                })
            })())
        })?;
        rows.map(|r| r?).collect()
    }

    pub fn jobs(&self) -> Result<Vec<JobSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, handle, model, version, target, state, stage, error, created_on, updated_on, finished_on
             FROM jobs ORDER BY created_on DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((|| -> Result<JobSummary> {
                let state: String = r.get(5)?;
                let stage: Option<String> = r.get(6)?;
                Ok(JobSummary {
                    id: r.get(0)?,
                    handle: r.get(1)?,
                    model: r.get(2)?,
                    version: r.get(3)?,
                    target: r.get(4)?,
                    state: serde_json::from_value::<JobState>(serde_json::Value::String(state))
                        .map_err(|e| RegistryError::BadValue(e.to_string()))?,
                    stage: stage
                        .map(|s| {
                            serde_json::from_value::<Stage>(serde_json::Value::String(s))
                                .map_err(|e| RegistryError::BadValue(e.to_string()))
                        })
                        .transpose()?,
                    error: r.get(7)?,
                    created_on: req_ts(r.get(8)?)?,
                    updated_on: req_ts(r.get(9)?)?,
                    finished_on: parse_ts(r.get(10)?)?,
                })
            })())
        })?;
        rows.map(|r| r?).collect()
    }
}

const POOL_SELECT: &str =
    "SELECT p.name, p.state, p.min_nodes, p.max_nodes, p.instance_family, p.vcpu,
        p.memory_gib, p.gpu, p.auto_suspend_secs, p.auto_resume, p.comment, p.created_on,
        p.updated_on, p.resumed_on,
        (SELECT COUNT(*) FROM services s WHERE s.compute_pool = p.name
            AND s.status NOT IN ('DONE', 'DELETED')) AS num_services,
        (SELECT COUNT(*) FROM services s WHERE s.compute_pool = p.name
            AND s.status IN ('PENDING', 'RUNNING')) AS active_services
     FROM pools p";

fn pool_row(r: &Row<'_>) -> rusqlite::Result<Result<ComputePool>> {
    Ok((|| -> Result<ComputePool> {
        let state: String = r.get(1)?;
        let state: PoolState = state.parse().map_err(RegistryError::BadValue)?;
        let min_nodes: u32 = r.get(2)?;
        let active_services: u32 = r.get(15)?;
        // Like Snowflake: a pool with running services is ACTIVE, an unsuspended empty one IDLE.
        let state = match state {
            PoolState::Idle | PoolState::Active if active_services > 0 => PoolState::Active,
            PoolState::Idle | PoolState::Active => PoolState::Idle,
            other => other,
        };
        // A local pool is one node (this machine): it is active while a service runs on it.
        let active_nodes = match state {
            PoolState::Suspended | PoolState::Stopping => 0,
            _ => min_nodes.max(u32::from(active_services > 0)),
        };
        Ok(ComputePool {
            name: r.get(0)?,
            state,
            min_nodes,
            max_nodes: r.get(3)?,
            instance_family: r.get(4)?,
            vcpu: r.get(5)?,
            memory_gib: r.get(6)?,
            gpu: r.get(7)?,
            gpu_type: None,
            gpu_memory_gib: 0.0,
            auto_suspend_secs: r.get::<_, Option<i64>>(8)?.map(|v| v.max(0) as u64),
            auto_resume: r.get(9)?,
            comment: r.get(10)?,
            created_on: req_ts(r.get(11)?)?,
            updated_on: parse_ts(r.get(12)?)?,
            resumed_on: parse_ts(r.get(13)?)?,
            num_services: r.get(14)?,
            num_jobs: 0,
            active_nodes,
            idle_nodes: if active_services > 0 { 0 } else { active_nodes },
            error_code: None,
            status_message: None,
        })
    })())
}

fn seed(tx: &rusqlite::Transaction<'_>, machine: Machine) -> Result<()> {
    let now = ts(Utc::now());
    let comment = format!(
        "this machine: {} vCPU, {:.1} GiB memory; budget: every vCPU and 75% of memory",
        machine.vcpu, machine.memory_gib
    );
    tx.execute(
        "INSERT INTO pools (name, state, min_nodes, max_nodes, instance_family, vcpu, memory_gib,
                            gpu, auto_suspend_secs, auto_resume, comment, created_on)
         VALUES (?1, 'IDLE', 1, 1, 'LOCAL_HOST', ?2, ?3, 0, NULL, 1, ?4, ?5)",
        params![
            DEFAULT_POOL,
            f64::from(machine.vcpu),
            machine.pool_memory_gib(),
            comment,
            now
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MACHINE: Machine = Machine {
        vcpu: 2,
        memory_gib: 24.0,
    };

    #[test]
    fn first_open_migrates_and_seeds_the_default_pool() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = tmp.path().join("r.sqlite");
        let reg = Registry::open(&path, MACHINE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reg.schema_version().ok(), Some(MIGRATIONS.len() as i64));
        let pools = reg.pools().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pools.len(), 1);
        assert_eq!(pools[0].name, DEFAULT_POOL);
        assert_eq!(pools[0].state, PoolState::Idle);
        assert_eq!(pools[0].vcpu, 2.0);
        assert_eq!(pools[0].memory_gib, 18.0);
        assert!(reg.services().unwrap_or_default().is_empty());
        assert!(reg.models().unwrap_or_default().is_empty());
        assert!(reg.jobs().unwrap_or_default().is_empty());
    }

    #[test]
    fn reopening_keeps_state_and_does_not_seed_again() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = tmp.path().join("r.sqlite");
        {
            let mut reg = Registry::open(&path, MACHINE).unwrap_or_else(|e| panic!("{e}"));
            let p = reg
                .set_pool_suspended(DEFAULT_POOL, true)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.state, PoolState::Suspended);
            assert_eq!(p.active_nodes, 0);
        }
        let mut reg = Registry::open(&path, MACHINE).unwrap_or_else(|e| panic!("{e}"));
        let pools = reg.pools().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pools.len(), 1);
        assert_eq!(pools[0].state, PoolState::Suspended);
        let p = reg
            .set_pool_suspended(DEFAULT_POOL, false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.state, PoolState::Idle);
        assert!(p.resumed_on.is_some());
        assert!(matches!(
            reg.set_pool_suspended("NOPE", true),
            Err(RegistryError::NoSuchPool(_))
        ));
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = tmp.path().join("r.sqlite");
        {
            let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
            conn.pragma_update(None, "user_version", 99)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let err = Registry::open(&path, MACHINE).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("schema version 99")));
    }
}
