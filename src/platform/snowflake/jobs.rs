//! Imports on Snowflake, mapped onto the same job stages as the local platform:
//!
//! | stage | what runs |
//! |---|---|
//! | resolve | pre-flight: task importable, pool exists and is usable, service name and version free |
//! | download | `SYSTEM$IMPORT_MODEL` runs; its `MODEL_LOGGING_<H>` job downloads server-side (its logs) |
//! | verify | skipped (Snowflake verifies) |
//! | register | the import statement returned; the version is in `SHOW VERSIONS` |
//! | build | `SYSTEM$DEPLOY_MODEL` runs; its `MODEL_BUILD_<H>` job builds the image (its logs) |
//! | deploy | the service's containers READY |
//! | ready | the first call answers (502/connection refused retried while the model loads) |
//!
//! Statement handles and job names are kept in `jobs.json` of the connection's data dir, so a
//! restarted hugflake re-attaches to an import that is still running.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::SnowflakePlatform;
use super::ident::Qualified;
use super::statements::{self, DeploySpecYaml, ImportSpecYaml};
use crate::domain::{
    ImportSpec, JobDetail, JobLogLine, JobState, JobSummary, ServiceStatus, Stage, StageRecord,
    StageState,
};
use crate::platform::{Platform, PlatformError, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SfJob {
    pub detail: JobDetail,
    pub import_handle: Option<String>,
    pub deploy_handle: Option<String>,
    /// Lines of each job service's log already shown.
    #[serde(default)]
    pub log_seen: std::collections::BTreeMap<String, usize>,
    #[serde(default)]
    pub build_seen: bool,
}

pub struct JobStore {
    path: PathBuf,
    jobs: Mutex<Vec<SfJob>>,
    driving: Mutex<HashSet<String>>,
    changed: Notify,
}

impl JobStore {
    pub fn open(dir: &Path) -> std::result::Result<JobStore, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join("jobs.json");
        let jobs = match std::fs::read_to_string(&path) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| format!("{}: {e}", path.display()))?,
            Err(_) => Vec::new(),
        };
        Ok(JobStore {
            path,
            jobs: Mutex::new(jobs),
            driving: Mutex::new(HashSet::new()),
            changed: Notify::new(),
        })
    }

    fn save(&self, jobs: &[SfJob]) {
        let text = serde_json::to_vec_pretty(jobs).unwrap_or_default();
        if let Err(e) = crate::platform::local::write_private(&self.path, &text) {
            tracing::error!(error = %e, "cannot save Snowflake jobs");
        }
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut SfJob)) {
        if let Ok(mut jobs) = self.jobs.lock() {
            if let Some(j) = jobs.iter_mut().find(|j| j.detail.summary.id == id) {
                f(j);
                j.detail.summary.updated_on = Utc::now();
            }
            self.save(&jobs);
        }
        self.changed.notify_waiters();
    }

    fn get(&self, id: &str) -> Option<SfJob> {
        self.jobs
            .lock()
            .ok()?
            .iter()
            .find(|j| j.detail.summary.id == id)
            .cloned()
    }

    pub fn summaries(&self) -> Vec<JobSummary> {
        let mut list: Vec<JobSummary> = self
            .jobs
            .lock()
            .map(|j| j.iter().map(|j| j.detail.summary.clone()).collect())
            .unwrap_or_default();
        list.sort_by_key(|j| std::cmp::Reverse(j.created_on));
        list
    }

    pub async fn detail(
        &self,
        id: &str,
        since: Option<u64>,
        wait: Option<Duration>,
    ) -> Result<JobDetail> {
        let waiter = self.changed.notified();
        let read = || {
            self.get(id).map(|j| {
                let mut d = j.detail;
                d.log.retain(|l| since.is_none_or(|s| l.seq > s));
                d
            })
        };
        let d = read().ok_or_else(|| PlatformError::NotFound(format!("job {id}")))?;
        let running = matches!(d.summary.state, JobState::Queued | JobState::Running);
        if let Some(w) = wait
            && d.log.is_empty()
            && running
        {
            let _ = tokio::time::timeout(w, waiter).await;
            return read().ok_or_else(|| PlatformError::NotFound(format!("job {id}")));
        }
        Ok(d)
    }

    fn log(&self, id: &str, line: &str) {
        tracing::info!(job = %id, "{line}");
        let line = crate::domain::units::strip_control(line);
        self.update(id, |j| {
            let seq = j.detail.log.last().map_or(0, |l| l.seq + 1);
            j.detail.log.push(JobLogLine {
                seq,
                at: Utc::now(),
                line,
            });
        });
    }

    fn stage(&self, id: &str, stage: Stage, state: StageState, error: Option<String>) {
        self.update(id, |j| {
            if let Some(s) = j.detail.stages.iter_mut().find(|s| s.stage == stage) {
                let now = Utc::now();
                match state {
                    StageState::Running => {
                        s.started_on = Some(now);
                        s.finished_on = None;
                    }
                    StageState::Pending => {
                        s.started_on = None;
                        s.finished_on = None;
                    }
                    _ => {
                        s.started_on.get_or_insert(now);
                        s.finished_on = Some(now);
                    }
                }
                s.state = state;
                s.error = error;
            }
            j.detail.summary.stage = Some(stage);
        });
    }

    fn finish(&self, id: &str, state: JobState, error: Option<String>, line: &str) {
        self.log(id, line);
        self.update(id, |j| {
            j.detail.summary.state = state;
            j.detail.summary.error = error;
            j.detail.summary.finished_on = Some(Utc::now());
        });
        if let Ok(mut d) = self.driving.lock() {
            d.remove(id);
        }
    }

    /// Starts a driver for every running job that has none in this process (after a restart).
    pub fn reattach(&self, p: &SnowflakePlatform) {
        let running: Vec<String> = self
            .jobs
            .lock()
            .map(|j| {
                j.iter()
                    .filter(|j| {
                        matches!(j.detail.summary.state, JobState::Queued | JobState::Running)
                    })
                    .map(|j| j.detail.summary.id.clone())
                    .collect()
            })
            .unwrap_or_default();
        for id in running {
            spawn_driver(p, id);
        }
    }
}

fn spawn_driver(p: &SnowflakePlatform, id: String) {
    let fresh = p
        .jobs
        .driving
        .lock()
        .map(|mut d| d.insert(id.clone()))
        .unwrap_or(false);
    if !fresh {
        return;
    }
    let p = p.clone();
    tokio::spawn(async move { drive(p, id).await });
}

/// Starts an import: records the job (so it survives this process) and drives it.
pub async fn start(p: &SnowflakePlatform, mut spec: ImportSpec) -> Result<JobSummary> {
    crate::hub::api::validate_repo_id(&spec.handle).map_err(PlatformError::Invalid)?;
    for (what, v) in [
        ("model", &spec.model),
        ("version", &spec.version),
        ("pool", &spec.pool),
        ("service", &spec.service),
    ] {
        super::ident::Ident::parse(v)
            .map_err(|e| PlatformError::Invalid(format!("{what}: {e}")))?;
    }
    spec.model = spec.model.to_ascii_uppercase();
    spec.version = spec.version.to_ascii_uppercase();
    spec.service = spec.service.to_ascii_uppercase();
    spec.pool = spec.pool.to_ascii_uppercase();
    let now = Utc::now();
    let id = format!(
        "sf-{}-{}",
        now.format("%Y%m%d%H%M%S"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let summary = JobSummary {
        id: id.clone(),
        handle: spec.handle.clone(),
        model: spec.model.clone(),
        version: spec.version.clone(),
        target: format!("{}.{} on {}", p.database, p.schema, spec.pool),
        state: JobState::Queued,
        stage: None,
        created_on: now,
        updated_on: now,
        finished_on: None,
        error: None,
    };
    let job = SfJob {
        detail: JobDetail {
            summary: summary.clone(),
            spec,
            stages: Stage::ALL
                .iter()
                .map(|s| StageRecord {
                    stage: *s,
                    state: StageState::Pending,
                    started_on: None,
                    finished_on: None,
                    bytes_done: 0,
                    bytes_total: None,
                    error: None,
                })
                .collect(),
            files: Vec::new(),
            log: Vec::new(),
        },
        import_handle: None,
        deploy_handle: None,
        log_seen: Default::default(),
        build_seen: false,
    };
    if let Ok(mut jobs) = p.jobs.jobs.lock() {
        jobs.push(job);
        p.jobs.save(&jobs);
    }
    spawn_driver(p, id);
    Ok(summary)
}

/// The job, if it is in one of `states` (`what` says which jobs an action takes).
fn job_in(p: &SnowflakePlatform, id: &str, states: &[JobState], what: &str) -> Result<SfJob> {
    let job = p
        .jobs
        .get(id)
        .ok_or_else(|| PlatformError::NotFound(format!("job {id}")))?;
    if !states.contains(&job.detail.summary.state) {
        return Err(PlatformError::Conflict(format!(
            "job {id} is {}: {what}",
            job.detail.summary.state
        )));
    }
    Ok(job)
}

pub async fn cancel(p: &SnowflakePlatform, id: &str) -> Result<JobSummary> {
    let job = job_in(
        p,
        id,
        &[JobState::Queued, JobState::Running],
        "only queued or running jobs can be cancelled",
    )?;
    for h in [&job.import_handle, &job.deploy_handle]
        .into_iter()
        .flatten()
    {
        let _ = p.api.cancel(h).await;
    }
    p.jobs.finish(
        id,
        JobState::Cancelled,
        None,
        "cancelled: the running statements were cancelled",
    );
    p.jobs
        .get(id)
        .map(|j| j.detail.summary)
        .ok_or_else(|| PlatformError::NotFound(id.into()))
}

pub async fn retry(p: &SnowflakePlatform, id: &str) -> Result<JobSummary> {
    job_in(
        p,
        id,
        &[JobState::Failed, JobState::Cancelled],
        "only failed or cancelled jobs can be retried",
    )?;
    p.jobs.update(id, |j| {
        for s in &mut j.detail.stages {
            if !matches!(s.state, StageState::Done | StageState::Skipped) {
                s.state = StageState::Pending;
                s.error = None;
                s.started_on = None;
                s.finished_on = None;
            }
        }
        // A failed statement is not resumed: it is run again.
        if j.detail.stage(Stage::Register).map(|s| s.state) != Some(StageState::Done) {
            j.import_handle = None;
        }
        if j.detail.stage(Stage::Deploy).map(|s| s.state) != Some(StageState::Done) {
            j.deploy_handle = None;
        }
        j.detail.summary.state = JobState::Queued;
        j.detail.summary.error = None;
        j.detail.summary.finished_on = None;
    });
    p.jobs.log(id, "retry requested");
    spawn_driver(p, id.to_string());
    p.jobs
        .get(id)
        .map(|j| j.detail.summary)
        .ok_or_else(|| PlatformError::NotFound(id.into()))
}

enum End {
    Failed(String),
    Cancelled,
}

impl From<PlatformError> for End {
    fn from(e: PlatformError) -> Self {
        End::Failed(e.to_string())
    }
}

impl From<super::sqlapi::SqlError> for End {
    fn from(e: super::sqlapi::SqlError) -> Self {
        End::Failed(e.to_string())
    }
}

fn cancelled(p: &SnowflakePlatform, id: &str) -> bool {
    p.jobs
        .get(id)
        .is_none_or(|j| j.detail.summary.state == JobState::Cancelled)
}

async fn drive(p: SnowflakePlatform, id: String) {
    let Some(job) = p.jobs.get(&id) else { return };
    p.jobs
        .update(&id, |j| j.detail.summary.state = JobState::Running);
    let spec = job.detail.spec.clone();
    for record in &job.detail.stages {
        if matches!(record.state, StageState::Done | StageState::Skipped) {
            continue;
        }
        if cancelled(&p, &id) {
            return;
        }
        let stage = record.stage;
        p.jobs.stage(&id, stage, StageState::Running, None);
        let result = match stage {
            Stage::Resolve => preflight(&p, &id, &spec).await,
            Stage::Download => run_import(&p, &id, &spec).await,
            Stage::Verify => {
                p.jobs.stage(&id, stage, StageState::Skipped, None);
                p.jobs.log(
                    &id,
                    "verify: skipped (Snowflake verifies the files it downloads)",
                );
                continue;
            }
            Stage::Register => confirm_version(&p, &id, &spec).await,
            Stage::Build => run_deploy(&p, &id, &spec).await,
            Stage::Deploy => wait_running(&p, &id, &spec).await,
            Stage::Ready => first_call(&p, &id, &spec).await,
        };
        match result {
            Ok(()) => p.jobs.stage(&id, stage, StageState::Done, None),
            Err(End::Cancelled) => return,
            Err(End::Failed(msg)) => {
                if cancelled(&p, &id) {
                    return;
                }
                p.jobs
                    .stage(&id, stage, StageState::Failed, Some(msg.clone()));
                p.jobs.finish(
                    &id,
                    JobState::Failed,
                    Some(msg.clone()),
                    &format!("{stage}: failed: {msg}"),
                );
                return;
            }
        }
    }
    p.jobs.finish(
        &id,
        JobState::Done,
        None,
        &format!(
            "service {} is RUNNING and answered its first call",
            spec.service
        ),
    );
}

/// The Snowflake task for a local task name, or why it cannot be imported.
fn snowflake_task(task: &str) -> std::result::Result<Option<&'static str>, String> {
    match task {
        "sentence-similarity" | "sentence-transformers" | "embeddings" => Ok(None),
        "token-classification" | "ner" => Ok(Some("token-classification")),
        "feature-extraction" => Err(
            "feature-extraction has no automatic signature on Snowflake, so logging would fail: import \
             embedding models through the sentence-transformers route, or serve this one on the local platform"
                .into(),
        ),
        "zero-shot-image-classification" => Err(
            "this is an open_clip model: Snowflake's Hugging Face import serves transformers pipelines and \
             sentence-transformers, not open_clip (?); serve it on the local platform instead"
                .into(),
        ),
        other => Ok(Some(match other {
            "text-classification" => "text-classification",
            "zero-shot-classification" => "zero-shot-classification",
            "fill-mask" => "fill-mask",
            _ => return Err(format!("task `{other}` is not one hugflake imports to Snowflake")),
        })),
    }
}

async fn preflight(
    p: &SnowflakePlatform,
    id: &str,
    spec: &ImportSpec,
) -> std::result::Result<(), End> {
    let task = spec.task.clone().ok_or_else(|| {
        End::Failed(
            "say the task (--task): on Snowflake it decides the signature (sentence-similarity, token-classification, ...)".into(),
        )
    })?;
    snowflake_task(&task).map_err(End::Failed)?;
    let pools = p.pools().await?;
    let pool = pools.iter().find(|x| x.name == spec.pool).ok_or_else(|| {
        End::Failed(format!(
            "compute pool {} does not exist: create one (CREATE COMPUTE POOL {} MIN_NODES = 1 MAX_NODES = 1 INSTANCE_FAMILY = CPU_X64_S AUTO_RESUME = TRUE)",
            spec.pool, spec.pool
        ))
    })?;
    if pool.state == crate::domain::PoolState::Suspended && !pool.auto_resume {
        return Err(End::Failed(format!(
            "compute pool {} is SUSPENDED without auto-resume: resume it first",
            spec.pool
        )));
    }
    if p.services().await?.iter().any(|s| s.name == spec.service) {
        return Err(End::Failed(format!(
            "a service named {} already exists in {}.{}: pick another name or drop it",
            spec.service, p.database, p.schema
        )));
    }
    match p.versions(&spec.model).await {
        Ok(v) if v.iter().any(|v| v.name == spec.version) => {
            return Err(End::Failed(format!(
                "model {} already has a version {}: pick another version or drop it",
                spec.model, spec.version
            )));
        }
        Ok(_) | Err(PlatformError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(secret) = &spec.token_secret {
        let q = p.qualify(secret).map_err(|e| End::Failed(e.to_string()))?;
        let rs = p.run(&statements::show_secret(&q)).await?;
        if !(0..rs.len()).any(|i| rs.get(i, "name") == Some(q.name.name.as_str())) {
            return Err(End::Failed(format!(
                "secret {q} does not exist (or this role cannot see it): create it with \
                 CREATE SECRET {q} TYPE = GENERIC_STRING SECRET_STRING = '<your HF token>' and grant READ on it"
            )));
        }
    }
    privileges(p, id, spec).await;
    p.jobs.log(
        id,
        &format!(
            "resolve: task {task}; pool {} is {}; service name and version are free; autocapture off",
            pool.name, pool.state
        ),
    );
    Ok(())
}

/// Looks for the grants an import needs among the role's direct grants (SNOWFLAKE.md §6). A grant
/// can also come through a role granted to this one, which SHOW GRANTS TO ROLE does not list, so a
/// missing one is logged as a warning, not a failure.
async fn privileges(p: &SnowflakePlatform, id: &str, spec: &ImportSpec) {
    let role = match &p.api.context.role {
        Some(r) => r.clone(),
        None => match p.run(&statements::current_context()).await {
            Ok(rs) => rs
                .rows
                .first()
                .and_then(|r| r.get(2).cloned().flatten())
                .unwrap_or_default(),
            Err(_) => return,
        },
    };
    let Ok(role_id) = super::ident::Ident::parse(&role) else {
        return;
    };
    let rs = match p.run(&statements::show_grants(&role_id)).await {
        Ok(rs) => rs,
        Err(e) => {
            p.jobs.log(
                id,
                &format!("resolve: cannot read the grants of role {role}: {e}"),
            );
            return;
        }
    };
    let schema = format!("{}.{}", p.database.name, p.schema.name);
    let has = |privilege: &str, on: &str, name: &str| {
        (0..rs.len()).any(|i| {
            let pr = rs.get(i, "privilege").unwrap_or("");
            (pr == privilege || pr == "OWNERSHIP")
                && rs.get(i, "granted_on").unwrap_or("") == on
                && rs
                    .get(i, "name")
                    .is_some_and(|n| n.replace('"', "").eq_ignore_ascii_case(name))
        })
    };
    let needed = [
        ("CREATE MODEL", "SCHEMA", schema.as_str()),
        ("CREATE SERVICE", "SCHEMA", schema.as_str()),
        ("USAGE", "COMPUTE_POOL", spec.pool.as_str()),
    ];
    let missing: Vec<String> = needed
        .iter()
        .filter(|(pr, on, name)| !has(pr, on, name))
        .map(|(pr, on, name)| format!("{pr} on {} {name}", on.replace('_', " ")))
        .collect();
    let ingress = (0..rs.len()).any(|i| rs.get(i, "privilege") == Some("BIND SERVICE ENDPOINT"));
    if missing.is_empty() {
        p.jobs.log(
            id,
            &format!("resolve: role {role} holds the grants an import needs"),
        );
    } else {
        p.jobs.log(
            id,
            &format!(
                "resolve: warning: role {role} has no direct grant of {} (it may come from a granted role)",
                missing.join(", ")
            ),
        );
    }
    if !ingress {
        p.jobs.log(
            id,
            &format!("resolve: warning: role {role} has no direct BIND SERVICE ENDPOINT: the REST ingress may refuse it"),
        );
    }
}

fn model_fq(p: &SnowflakePlatform, name: &str) -> std::result::Result<Qualified, End> {
    p.qualify(name).map_err(|e| End::Failed(e.to_string()))
}

/// The import spec, as the plan shows it and as it is sent.
pub fn import_yaml(
    p: &SnowflakePlatform,
    spec: &ImportSpec,
) -> std::result::Result<String, String> {
    import_yaml_in(&p.database, &p.schema, spec)
}

/// The deploy spec, as the plan shows it and as it is sent.
pub fn deploy_yaml(
    p: &SnowflakePlatform,
    spec: &ImportSpec,
) -> std::result::Result<String, String> {
    deploy_yaml_in(&p.database, &p.schema, spec)
}

pub fn import_yaml_in(
    database: &super::ident::Ident,
    schema: &super::ident::Ident,
    spec: &ImportSpec,
) -> std::result::Result<String, String> {
    let task = snowflake_task(spec.task.as_deref().unwrap_or(""))?;
    let model = Qualified::parse(&spec.model, database, schema)?;
    statements::yaml(&ImportSpecYaml {
        compute_pool: spec.pool.clone(),
        models: vec![statements::ImportModel {
            name: statements::ModelName {
                model_name: model.sql(),
                version_name: spec.version.clone(),
            },
            hf_model: statements::HfModel {
                hf_model_name: spec.handle.clone(),
                task: task.map(str::to_string),
                revision: (spec.revision != "main").then(|| spec.revision.clone()),
                token_secret_object: spec
                    .token_secret
                    .as_deref()
                    .map(|n| Qualified::parse(n, database, schema).map(|q| q.sql()))
                    .transpose()?,
                trust_remote_code: false,
                hf_model_kwargs: "{}".into(),
            },
            log_model_args: statements::LogModelArgs {
                target_platforms: vec!["SNOWPARK_CONTAINER_SERVICES".into()],
                comment: "imported by hugflake".into(),
            },
        }],
    })
}

pub fn deploy_yaml_in(
    database: &super::ident::Ident,
    schema: &super::ident::Ident,
    spec: &ImportSpec,
) -> std::result::Result<String, String> {
    let model = Qualified::parse(&spec.model, database, schema)?;
    let service = Qualified::parse(&spec.service, database, schema)?;
    statements::yaml(&DeploySpecYaml {
        models: vec![statements::DeployModel {
            name: model.sql(),
            version: spec.version.clone(),
        }],
        image_build: statements::ImageBuild {
            compute_pool: spec.pool.clone(),
            force_rebuild: false,
        },
        service: statements::ServiceSpecYaml {
            name: service.sql(),
            compute_pool: spec.pool.clone(),
            ingress_enabled: true,
            min_instances: spec.min_instances,
            max_instances: spec.max_instances.max(spec.min_instances).max(1),
            autocapture: false,
        },
    })
}

/// Shows the new lines of a job service's log (`model-logging`, `model-build`).
async fn follow_job_service(
    p: &SnowflakePlatform,
    id: &str,
    name: &str,
    container: &str,
) -> Option<ServiceStatus> {
    let q = p.qualify(name).ok()?;
    let status = p
        .services()
        .await
        .ok()?
        .into_iter()
        .find(|s| s.name == q.name.name)
        .map(|s| s.status)?;
    if let Ok(rs) = p.run(&statements::service_logs(&q, 0, container)).await {
        let text = rs.scalar().unwrap_or("").to_string();
        let seen = p
            .jobs
            .get(id)
            .and_then(|j| j.log_seen.get(name).copied())
            .unwrap_or(0);
        let lines: Vec<&str> = text.lines().collect();
        for l in lines.iter().skip(seen) {
            p.jobs.log(id, &format!("{container}: {l}"));
        }
        let n = lines.len();
        let key = name.to_string();
        p.jobs.update(id, |j| {
            j.log_seen.insert(key, n.max(seen));
        });
    }
    Some(status)
}

async fn run_import(
    p: &SnowflakePlatform,
    id: &str,
    spec: &ImportSpec,
) -> std::result::Result<(), End> {
    let job = p.jobs.get(id).ok_or(End::Cancelled)?;
    let handle = match job.import_handle {
        Some(h) => {
            p.jobs.log(
                id,
                &format!("download: re-attached to the import statement {h}"),
            );
            h
        }
        None => {
            let yaml = import_yaml(p, spec).map_err(End::Failed)?;
            let st = statements::import_model(&yaml);
            p.jobs.log(
                id,
                "download: SELECT SYSTEM$IMPORT_MODEL(?) with the import spec",
            );
            match p.api.start(&st.sql, &st.bindings, 0).await? {
                Ok(_) => {
                    p.jobs
                        .log(id, "download: the import statement finished at once");
                    return Ok(());
                }
                Err(h) => {
                    let key = h.clone();
                    p.jobs.update(id, |j| j.import_handle = Some(key));
                    h
                }
            }
        }
    };
    let logging = statements::job_hash(&handle).map(|h| format!("MODEL_LOGGING_{h}"));
    if let Some(l) = &logging {
        p.jobs.log(id, &format!("download: the logging job is {l}"));
    }
    loop {
        if cancelled(p, id) {
            return Err(End::Cancelled);
        }
        if let Some(rs) = p.api.check(&handle).await? {
            p.jobs.log(
                id,
                &format!(
                    "register: SYSTEM$IMPORT_MODEL returned: {}",
                    rs.scalar()
                        .unwrap_or("")
                        .chars()
                        .take(200)
                        .collect::<String>()
                ),
            );
            return Ok(());
        }
        if let Some(l) = &logging {
            let _ = follow_job_service(p, id, l, "model-logging").await;
        }
        tokio::time::sleep(p.poll_every()).await;
    }
}

async fn confirm_version(
    p: &SnowflakePlatform,
    id: &str,
    spec: &ImportSpec,
) -> std::result::Result<(), End> {
    let versions = p.versions(&spec.model).await?;
    if !versions.iter().any(|v| v.name == spec.version) {
        return Err(End::Failed(format!(
            "the import returned but {} has no version {} in SHOW VERSIONS",
            spec.model, spec.version
        )));
    }
    let f: Vec<String> = versions
        .iter()
        .filter(|v| v.name == spec.version)
        .flat_map(|v| v.functions.iter().map(|f| f.name.clone()))
        .collect();
    p.jobs.log(
        id,
        &format!(
            "register: {} version {} with functions {}",
            model_fq(p, &spec.model)?,
            spec.version,
            f.join(", ")
        ),
    );
    Ok(())
}

async fn run_deploy(
    p: &SnowflakePlatform,
    id: &str,
    spec: &ImportSpec,
) -> std::result::Result<(), End> {
    let job = p.jobs.get(id).ok_or(End::Cancelled)?;
    let handle = match job.deploy_handle {
        Some(h) => h,
        None => {
            let yaml = deploy_yaml(p, spec).map_err(End::Failed)?;
            let st = statements::deploy_model(&yaml);
            p.jobs.log(
                id,
                "build: CALL SYSTEM$DEPLOY_MODEL(?) with the deploy spec",
            );
            match p.api.start(&st.sql, &st.bindings, 0).await? {
                Ok(rs) => {
                    let key = rs.handle.clone();
                    p.jobs.update(id, |j| j.deploy_handle = Some(key));
                    rs.handle
                }
                Err(h) => {
                    let key = h.clone();
                    p.jobs.update(id, |j| j.deploy_handle = Some(key));
                    h
                }
            }
        }
    };
    let build = statements::job_hash(&handle).map(|h| format!("MODEL_BUILD_{h}"));
    loop {
        if cancelled(p, id) {
            return Err(End::Cancelled);
        }
        // A statement error ends the deploy; its success alone does not mean the image is built.
        if let Err(e) = p.api.check(&handle).await {
            // Show the build job's log first: it usually says why.
            if let Some(b) = &build {
                let _ = follow_job_service(p, id, b, "model-build").await;
            }
            return Err(e.into());
        }
        let services = p.services().await?;
        if let Some(b) = &build {
            match services.iter().find(|s| &s.name == b).map(|s| s.status) {
                Some(ServiceStatus::Failed | ServiceStatus::InternalError) => {
                    let _ = follow_job_service(p, id, b, "model-build").await;
                    return Err(End::Failed(format!(
                        "the image build job {b} FAILED (its log is above)"
                    )));
                }
                Some(ServiceStatus::Done) => {
                    let _ = follow_job_service(p, id, b, "model-build").await;
                    p.jobs.log(id, &format!("build: {b} DONE"));
                    return Ok(());
                }
                Some(_) => {
                    p.jobs.update(id, |j| j.build_seen = true);
                    let _ = follow_job_service(p, id, b, "model-build").await;
                }
                None => {
                    let seen = p.jobs.get(id).is_some_and(|j| j.build_seen);
                    if seen {
                        p.jobs.log(
                            id,
                            &format!("build: {b} finished (gone from SHOW SERVICES)"),
                        );
                        return Ok(());
                    }
                }
            }
        }
        if services.iter().any(|s| s.name == spec.service) {
            if !p.jobs.get(id).is_some_and(|j| j.build_seen) {
                p.jobs.log(
                    id,
                    "build: no build job ran: a previously built image was reused",
                );
            }
            return Ok(());
        }
        tokio::time::sleep(p.poll_every()).await;
    }
}

async fn wait_running(
    p: &SnowflakePlatform,
    id: &str,
    spec: &ImportSpec,
) -> std::result::Result<(), End> {
    let mut last = String::new();
    loop {
        if cancelled(p, id) {
            return Err(End::Cancelled);
        }
        match p.containers(&spec.service).await {
            Ok(c) if !c.is_empty() => {
                let summary: Vec<String> = c
                    .iter()
                    .map(|c| format!("{}/{} {}", c.instance_id, c.container_name, c.status))
                    .collect();
                let text = summary.join(", ");
                if text != last {
                    p.jobs.log(id, &format!("deploy: {text}"));
                    last = text;
                }
                if let Some(f) = c
                    .iter()
                    .find(|c| c.status == crate::domain::InstanceStatus::Failed)
                {
                    return Err(End::Failed(format!(
                        "container {} FAILED: {}",
                        f.container_name,
                        f.message.clone().unwrap_or_default()
                    )));
                }
                if c.iter()
                    .all(|c| c.status == crate::domain::InstanceStatus::Ready)
                {
                    return Ok(());
                }
            }
            // "002003 (02000)", pending scheduling: not there yet.
            Ok(_) | Err(PlatformError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(p.poll_every()).await;
    }
}

async fn first_call(
    p: &SnowflakePlatform,
    id: &str,
    spec: &ImportSpec,
) -> std::result::Result<(), End> {
    let method = match spec.task.as_deref() {
        Some("token-classification" | "ner") => "__CALL__",
        _ => "ENCODE",
    };
    let started = std::time::Instant::now();
    let deadline = started + Duration::from_secs(300);
    loop {
        match p
            .predict(
                &spec.service,
                method,
                &[vec![serde_json::json!("hugflake readiness check")]],
            )
            .await
        {
            Ok(r) => {
                p.jobs.log(
                    id,
                    &format!("ready: {method} answered in {:.0} ms", r.latency_ms),
                );
                return Ok(());
            }
            Err(PlatformError::Conflict(_)) if std::time::Instant::now() < deadline => {}
            Err(e) if std::time::Instant::now() < deadline && e.to_string().contains("502") => {}
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(p.poll_every()).await;
    }
}

impl Clone for SnowflakePlatform {
    fn clone(&self) -> Self {
        SnowflakePlatform {
            api: self.api.clone(),
            connection: self.connection.clone(),
            account: self.account.clone(),
            user: self.user.clone(),
            auth: self.auth.clone(),
            database: self.database.clone(),
            schema: self.schema.clone(),
            route: self.route,
            jobs: self.jobs.clone(),
            http: self.http.clone(),
            families: tokio::sync::Mutex::new(None),
            loopback: self.loopback,
            poll_every: self.poll_every,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_that_snowflake_cannot_import_say_why() {
        assert_eq!(snowflake_task("sentence-similarity"), Ok(None));
        assert_eq!(
            snowflake_task("token-classification"),
            Ok(Some("token-classification"))
        );
        assert!(
            snowflake_task("feature-extraction")
                .err()
                .unwrap_or_default()
                .contains("no automatic signature")
        );
        assert!(
            snowflake_task("zero-shot-image-classification")
                .err()
                .unwrap_or_default()
                .contains("open_clip")
        );
    }
}
