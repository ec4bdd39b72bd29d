//! Registry rows that import jobs and services write: jobs with their stages and logs, model
//! versions with their functions, and services with the spec that starts their instances.

use std::path::PathBuf;

use chrono::Utc;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::registry::{Registry, RegistryError, Result, parse_ts, req_ts, ts};
use crate::domain::{
    Function, ImportSpec, JobDetail, JobLogLine, JobState, JobSummary, ModelVersion, Precision,
    Stage, StageRecord, StageState, VersionFile,
};

/// What a service needs to start its instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub task: String,
    pub snapshot: PathBuf,
    pub text_dir: Option<PathBuf>,
    /// Memory one instance needs, estimated from the weights.
    pub memory_gib: f64,
    /// The job that created it, if any.
    pub job: Option<String>,
    /// The arithmetic of the encoder's linear layers (fp32 for services recorded before it).
    #[serde(default)]
    pub precision: Precision,
    /// AUTO_SUSPEND_SECS (`None`: the model-serving default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_suspend_secs: Option<u64>,
}

/// A service row with its spec.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRow {
    pub name: String,
    pub status: String,
    pub pool: String,
    pub model: Option<String>,
    pub version: Option<String>,
    pub min_instances: u32,
    pub max_instances: u32,
    pub port: Option<u16>,
    pub spec: ServiceSpec,
    /// Why it is in its status (a suspension for idleness says so).
    pub message: Option<String>,
}

/// A version's files on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionLocation {
    pub task: String,
    pub snapshot: PathBuf,
    pub text_dir: Option<PathBuf>,
    pub total_bytes: u64,
}

fn enum_parse<T: serde::de::DeserializeOwned>(s: String) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.clone()))
        .map_err(|_| RegistryError::BadValue(format!("unknown state `{s}`")))
}

fn json_err(e: serde_json::Error) -> RegistryError {
    RegistryError::BadValue(e.to_string())
}

impl Registry {
    // ---- jobs ----

    /// Records a new queued job with every stage pending.
    pub fn create_job(&mut self, id: &str, spec: &ImportSpec) -> Result<JobSummary> {
        let now = ts(Utc::now());
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO jobs (id, handle, model, version, target, state, stage, spec_json, created_on, updated_on)
             VALUES (?1, ?2, ?3, ?4, ?5, 'queued', NULL, ?6, ?7, ?7)",
            params![
                id,
                spec.handle,
                spec.model,
                spec.version,
                spec.pool,
                serde_json::to_string(spec).map_err(json_err)?,
                now
            ],
        )?;
        for stage in Stage::ALL {
            tx.execute(
                "INSERT INTO job_stages (job_id, stage, state) VALUES (?1, ?2, 'pending')",
                params![id, stage.as_str()],
            )?;
        }
        tx.commit()?;
        self.job(id)
    }

    pub fn job(&self, id: &str) -> Result<JobSummary> {
        self.jobs()?
            .into_iter()
            .find(|j| j.id == id)
            .ok_or_else(|| RegistryError::NotFound(format!("job {id}")))
    }

    /// A job with its stages and the log lines after `since`.
    pub fn job_detail(&self, id: &str, since: Option<u64>) -> Result<JobDetail> {
        let summary = self.job(id)?;
        let spec: String =
            self.conn
                .query_row("SELECT spec_json FROM jobs WHERE id = ?1", [id], |r| {
                    r.get(0)
                })?;
        let spec: ImportSpec = serde_json::from_str(&spec).map_err(json_err)?;
        let mut stmt = self.conn.prepare(
            "SELECT stage, state, started_on, finished_on, bytes_done, bytes_total, error
             FROM job_stages WHERE job_id = ?1",
        )?;
        let mut stages = stmt
            .query_map([id], |r| {
                Ok((|| -> Result<StageRecord> {
                    Ok(StageRecord {
                        stage: enum_parse(r.get(0)?)?,
                        state: enum_parse(r.get(1)?)?,
                        started_on: parse_ts(r.get(2)?)?,
                        finished_on: parse_ts(r.get(3)?)?,
                        bytes_done: r.get::<_, i64>(4)?.max(0) as u64,
                        bytes_total: r.get::<_, Option<i64>>(5)?.map(|b| b.max(0) as u64),
                        error: r.get(6)?,
                    })
                })())
            })?
            .map(|r| r?)
            .collect::<Result<Vec<_>>>()?;
        stages.sort_by_key(|s| s.stage);
        let mut stmt = self.conn.prepare(
            "SELECT seq, at, line FROM job_logs WHERE job_id = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let log = stmt
            .query_map(params![id, since.map_or(-1, |s| s as i64)], |r| {
                Ok((|| -> Result<JobLogLine> {
                    Ok(JobLogLine {
                        seq: r.get::<_, i64>(0)?.max(0) as u64,
                        at: req_ts(r.get(1)?)?,
                        line: r.get(2)?,
                    })
                })())
            })?
            .map(|r| r?)
            .collect::<Result<Vec<_>>>()?;
        Ok(JobDetail {
            summary,
            spec,
            stages,
            files: Vec::new(),
            log,
        })
    }

    pub fn set_job_state(
        &mut self,
        id: &str,
        state: JobState,
        stage: Option<Stage>,
        error: Option<&str>,
    ) -> Result<()> {
        let now = ts(Utc::now());
        let finished = matches!(
            state,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
        .then(|| now.clone());
        self.conn.execute(
            "UPDATE jobs SET state = ?2, stage = COALESCE(?3, stage), error = ?4, updated_on = ?5,
                             finished_on = ?6 WHERE id = ?1",
            params![
                id,
                state.as_str(),
                stage.map(Stage::as_str),
                error,
                now,
                finished
            ],
        )?;
        Ok(())
    }

    /// Moves a stage to a state, stamping its start or end.
    pub fn set_stage(
        &mut self,
        id: &str,
        stage: Stage,
        state: StageState,
        error: Option<&str>,
    ) -> Result<()> {
        let now = ts(Utc::now());
        match state {
            StageState::Running => self.conn.execute(
                "UPDATE job_stages SET state = 'running', started_on = ?3, finished_on = NULL, error = NULL
                 WHERE job_id = ?1 AND stage = ?2",
                params![id, stage.as_str(), now],
            )?,
            StageState::Pending => self.conn.execute(
                "UPDATE job_stages SET state = 'pending', started_on = NULL, finished_on = NULL, error = NULL
                 WHERE job_id = ?1 AND stage = ?2",
                params![id, stage.as_str()],
            )?,
            other => self.conn.execute(
                "UPDATE job_stages SET state = ?3, finished_on = ?4, error = ?5,
                        started_on = COALESCE(started_on, ?4)
                 WHERE job_id = ?1 AND stage = ?2",
                params![id, stage.as_str(), other.as_str(), now, error],
            )?,
        };
        self.conn.execute(
            "UPDATE jobs SET stage = ?2, updated_on = ?3 WHERE id = ?1",
            params![id, stage.as_str(), now],
        )?;
        Ok(())
    }

    pub fn set_stage_bytes(&mut self, id: &str, stage: Stage, done: u64, total: u64) -> Result<()> {
        self.conn.execute(
            "UPDATE job_stages SET bytes_done = ?3, bytes_total = ?4 WHERE job_id = ?1 AND stage = ?2",
            params![id, stage.as_str(), done as i64, total as i64],
        )?;
        Ok(())
    }

    pub fn append_job_log(&mut self, id: &str, line: &str) -> Result<u64> {
        let seq: i64 = self.conn.query_row(
            "SELECT COALESCE(MAX(seq), -1) + 1 FROM job_logs WHERE job_id = ?1",
            [id],
            |r| r.get(0),
        )?;
        self.conn.execute(
            "INSERT INTO job_logs (job_id, seq, at, line) VALUES (?1, ?2, ?3, ?4)",
            params![id, seq, ts(Utc::now()), line],
        )?;
        Ok(seq as u64)
    }

    pub fn job_plan(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT plan_json FROM jobs WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .flatten())
    }

    pub fn set_job_plan(&mut self, id: &str, plan: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE jobs SET plan_json = ?2 WHERE id = ?1",
            params![id, plan],
        )?;
        Ok(())
    }

    /// Jobs a daemon restart must pick up again.
    pub fn unfinished_jobs(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT id FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_on",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    /// Another job importing the same model version that has not ended.
    pub fn active_job_for(&self, model: &str, version: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM jobs WHERE model = ?1 AND version = ?2 AND state IN ('queued', 'running')",
                params![model, version],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A queued or running job that will create `service`.
    pub fn active_job_for_service(&self, service: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM jobs WHERE json_extract(spec_json, '$.service') = ?1
                 AND state IN ('queued', 'running')",
                params![service],
                |r| r.get(0),
            )
            .optional()?)
    }

    // ---- models and versions ----

    pub fn version_exists(&self, model: &str, version: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM versions WHERE model = ?1 AND name = ?2",
                params![model, version],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Registers a version (creating its model) and its functions in one transaction.
    pub fn register_version(
        &mut self,
        v: &ModelVersion,
        snapshot: &std::path::Path,
        text_dir: Option<&std::path::Path>,
    ) -> Result<()> {
        let now = ts(v.created_on);
        let tx = self.conn.transaction()?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM versions WHERE model = ?1 AND name = ?2",
                params![v.model, v.name],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(RegistryError::Conflict(format!(
                "model {} already has a version {}: pick another --version or drop it first",
                v.model, v.name
            )));
        }
        tx.execute(
            "INSERT INTO models (name, source, default_version, comment, created_on)
             VALUES (?1, ?2, ?3, 'imported by hugflake', ?4)
             ON CONFLICT(name) DO NOTHING",
            params![v.model, v.source, v.name, now],
        )?;
        tx.execute(
            "INSERT INTO versions (model, name, source, revision, task, files_json, total_bytes,
                                   created_on, snapshot, text_dir)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                v.model,
                v.name,
                v.source,
                v.revision,
                v.task,
                serde_json::to_string(&v.files).map_err(json_err)?,
                v.total_bytes as i64,
                now,
                snapshot.display().to_string(),
                text_dir.map(|p| p.display().to_string()),
            ],
        )?;
        for f in &v.functions {
            tx.execute(
                "INSERT INTO functions (model, version, name, arguments_json, returns_json)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    v.model,
                    v.name,
                    f.name,
                    serde_json::to_string(&f.arguments).map_err(json_err)?,
                    serde_json::to_string(&f.returns).map_err(json_err)?,
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn versions(&self, model: &str) -> Result<Vec<ModelVersion>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, source, revision, task, files_json, total_bytes, created_on
             FROM versions WHERE model = ?1 ORDER BY created_on",
        )?;
        let rows = stmt
            .query_map([model], |r| {
                Ok((|| -> Result<ModelVersion> {
                    let files: String = r.get(4)?;
                    Ok(ModelVersion {
                        model: model.to_string(),
                        name: r.get(0)?,
                        source: r.get(1)?,
                        revision: r.get(2)?,
                        task: r.get(3)?,
                        files: serde_json::from_str::<Vec<VersionFile>>(&files)
                            .map_err(json_err)?,
                        total_bytes: r.get::<_, i64>(5)?.max(0) as u64,
                        created_on: req_ts(r.get(6)?)?,
                        functions: Vec::new(),
                        inference_services: Vec::new(),
                        runnable_in: Vec::new(),
                        snowflake_ml_task: None,
                    })
                })())
            })?
            .map(|r| r?)
            .collect::<Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for mut v in rows {
            v.functions = self.functions(model, &v.name)?;
            let mut stmt = self.conn.prepare(
                "SELECT name FROM services WHERE model = ?1 AND model_version = ?2 ORDER BY name",
            )?;
            v.inference_services = stmt
                .query_map(params![model, v.name], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            out.push(v);
        }
        Ok(out)
    }

    pub fn functions(&self, model: &str, version: &str) -> Result<Vec<Function>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, arguments_json, returns_json FROM functions
             WHERE model = ?1 AND version = ?2 ORDER BY name",
        )?;
        let rows = stmt.query_map(params![model, version], |r| {
            Ok((|| -> Result<Function> {
                let args: String = r.get(1)?;
                let rets: String = r.get(2)?;
                Ok(Function {
                    name: r.get(0)?,
                    arguments: serde_json::from_str(&args).map_err(json_err)?,
                    returns: serde_json::from_str(&rets).map_err(json_err)?,
                    required: None,
                })
            })())
        })?;
        rows.map(|r| r?).collect()
    }

    pub fn version_location(&self, model: &str, version: &str) -> Result<VersionLocation> {
        self.conn
            .query_row(
                "SELECT task, snapshot, text_dir, total_bytes FROM versions WHERE model = ?1 AND name = ?2",
                params![model, version],
                |r| {
                    Ok(VersionLocation {
                        task: r.get(0)?,
                        snapshot: PathBuf::from(r.get::<_, Option<String>>(1)?.unwrap_or_default()),
                        text_dir: r.get::<_, Option<String>>(2)?.map(PathBuf::from),
                        total_bytes: r.get::<_, i64>(3)?.max(0) as u64,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| RegistryError::NotFound(format!("version {version} of model {model}")))
    }

    /// Drops a version (or, with `None`, a whole model), refused while a service uses it.
    pub fn drop_version(&mut self, model: &str, version: Option<&str>) -> Result<()> {
        let tx = self.conn.transaction()?;
        let users: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT name FROM services WHERE model = ?1 AND (?2 IS NULL OR model_version = ?2)",
            )?;
            stmt.query_map(params![model, version], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?
        };
        if !users.is_empty() {
            return Err(RegistryError::Conflict(format!(
                "{} is used by service {}: drop the service first",
                version.map_or(format!("model {model}"), |v| format!("{model} version {v}")),
                users.join(", ")
            )));
        }
        let n = match version {
            Some(v) => {
                let n = tx.execute(
                    "DELETE FROM versions WHERE model = ?1 AND name = ?2",
                    params![model, v],
                )?;
                let left: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM versions WHERE model = ?1",
                    [model],
                    |r| r.get(0),
                )?;
                if left == 0 {
                    tx.execute("DELETE FROM models WHERE name = ?1", [model])?;
                } else {
                    tx.execute(
                        "UPDATE models SET default_version = (SELECT name FROM versions WHERE model = ?1 ORDER BY created_on DESC LIMIT 1)
                         WHERE name = ?1 AND default_version = ?2",
                        params![model, v],
                    )?;
                }
                n
            }
            None => tx.execute("DELETE FROM models WHERE name = ?1", [model])?,
        };
        if n == 0 {
            return Err(RegistryError::NotFound(match version {
                Some(v) => format!("version {v} of model {model}"),
                None => format!("model {model}"),
            }));
        }
        tx.commit()?;
        Ok(())
    }

    // ---- services ----

    pub fn service_row(&self, name: &str) -> Result<Option<ServiceRow>> {
        Ok(self.service_rows()?.into_iter().find(|s| s.name == name))
    }

    pub fn service_rows(&self) -> Result<Vec<ServiceRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, status, compute_pool, model, model_version, min_instances, max_instances,
                    port, spec_json, message FROM services ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((|| -> Result<ServiceRow> {
                let spec: String = r.get(8)?;
                Ok(ServiceRow {
                    name: r.get(0)?,
                    status: r.get(1)?,
                    pool: r.get(2)?,
                    model: r.get(3)?,
                    version: r.get(4)?,
                    min_instances: r.get(5)?,
                    max_instances: r.get(6)?,
                    port: r.get(7)?,
                    spec: serde_json::from_str(&spec).map_err(json_err)?,
                    message: r.get(9)?,
                })
            })())
        })?;
        rows.map(|r| r?).collect()
    }

    pub fn create_service(&mut self, row: &ServiceRow) -> Result<()> {
        let now = ts(Utc::now());
        let exists: Option<i64> = self
            .conn
            .query_row("SELECT 1 FROM services WHERE name = ?1", [&row.name], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_some() {
            return Err(RegistryError::Conflict(format!(
                "a service named {} already exists: pick another --service or drop it first",
                row.name
            )));
        }
        self.conn.execute(
            "INSERT INTO services (name, status, compute_pool, model, model_version, min_instances,
                                   max_instances, target_instances, port, spec_json, created_on, updated_on)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
            params![
                row.name,
                row.status,
                row.pool,
                row.model,
                row.version,
                row.min_instances,
                row.max_instances,
                row.min_instances.max(1),
                row.port,
                serde_json::to_string(&row.spec).map_err(json_err)?,
                now
            ],
        )?;
        Ok(())
    }

    pub fn set_service_status(
        &mut self,
        name: &str,
        status: &str,
        message: Option<&str>,
    ) -> Result<()> {
        let now = ts(Utc::now());
        self.conn.execute(
            "UPDATE services SET status = ?2, message = ?3, updated_on = ?4,
                    suspended_on = CASE WHEN ?2 = 'SUSPENDED' THEN ?4 ELSE suspended_on END,
                    resumed_on = CASE WHEN ?2 = 'PENDING' AND status = 'SUSPENDED' THEN ?4 ELSE resumed_on END
             WHERE name = ?1",
            params![name, status, message, now],
        )?;
        Ok(())
    }

    /// Records new instance bounds and idle suspension (`ALTER SERVICE … SET`).
    pub fn set_service_scaling(&mut self, name: &str, s: &crate::domain::Scaling) -> Result<()> {
        let mut row = self
            .service_row(name)?
            .ok_or_else(|| RegistryError::NotFound(format!("service {name}")))?;
        row.spec.auto_suspend_secs = s.auto_suspend_secs;
        self.conn.execute(
            "UPDATE services SET min_instances = ?2, max_instances = ?3, spec_json = ?4,
                                 updated_on = ?5 WHERE name = ?1",
            params![
                name,
                s.min_instances,
                s.max_instances,
                serde_json::to_string(&row.spec).map_err(json_err)?,
                ts(Utc::now())
            ],
        )?;
        Ok(())
    }

    pub fn set_service_port(&mut self, name: &str, port: u16) -> Result<()> {
        self.conn.execute(
            "UPDATE services SET port = ?2 WHERE name = ?1",
            params![name, port],
        )?;
        Ok(())
    }

    pub fn delete_service(&mut self, name: &str) -> Result<()> {
        let n = self
            .conn
            .execute("DELETE FROM services WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(RegistryError::NotFound(format!("service {name}")));
        }
        Ok(())
    }
}
