//! Import jobs on the local platform: resolve → download → verify → register → build → deploy →
//! ready, each stage recorded in the registry (start, end, bytes, error) with a log. A queue with a
//! concurrency limit; cancel and retry; after a daemon restart an unfinished job carries on from
//! its first unfinished stage (downloads resume where the bytes stopped).

mod stages;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::records::{ServiceRow, ServiceSpec};
use super::registry::{Registry, RegistryError};
use super::services::{Db, ServiceError, ServiceManager};
use crate::domain::{
    FileProgress, ImportSpec, JobDetail, JobState, JobSummary, ModelVersion, ServiceStatus, Stage,
    StageState, VersionFile,
};
use crate::hub::api::{HubClient, TreeEntry, validate_repo_id};
use crate::hub::details::FitVerdict;
use crate::hub::download::{
    DownloadError, DownloadRequest, Downloader, ProgressEvent, git_blob_sha1, sha256_file,
};
use crate::hub::settings::HubSettings;
use crate::inference::Task;
use crate::platform::protocol;

/// What resolve found, kept with the job so later stages (and a restarted daemon) use it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub commit: String,
    pub task: String,
    pub files: Vec<PlannedFile>,
    pub weights_bytes: u64,
    pub memory_gib: f64,
    /// BiomedCLIP-style models: the second repo with the text tower's config and tokenizer.
    pub text_tower: Option<TextTower>,
    #[serde(default)]
    pub snapshot: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedFile {
    pub path: String,
    pub size: u64,
    pub hash: String,
    pub lfs: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextTower {
    pub repo: String,
    pub commit: String,
    pub files: Vec<PlannedFile>,
    #[serde(default)]
    pub snapshot: Option<PathBuf>,
}

/// Why a stage stopped.
enum StageEnd {
    Failed(String),
    Cancelled,
}

impl From<RegistryError> for StageEnd {
    fn from(e: RegistryError) -> Self {
        StageEnd::Failed(e.to_string())
    }
}

impl From<ServiceError> for StageEnd {
    fn from(e: ServiceError) -> Self {
        StageEnd::Failed(e.to_string())
    }
}

impl From<DownloadError> for StageEnd {
    fn from(e: DownloadError) -> Self {
        match e {
            DownloadError::Cancelled => StageEnd::Cancelled,
            other => StageEnd::Failed(other.to_string()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

struct Live {
    cancel: CancellationToken,
    files: Vec<FileProgress>,
}

pub struct JobRunner {
    db: Db,
    services: Arc<ServiceManager>,
    hub: HubSettings,
    slots: Arc<Semaphore>,
    live: Mutex<HashMap<String, Live>>,
    pub changed: Notify,
}

/// Identifiers on the local platform follow Snowflake's unquoted form.
fn check_identifier(what: &str, name: &str) -> Result<(), SubmitError> {
    if name.len() > 255 {
        return Err(SubmitError::Invalid(format!(
            "{what} is {} characters long; names are at most 255",
            name.chars().count()
        )));
    }
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ok {
        Ok(())
    } else {
        Err(SubmitError::Invalid(format!(
            "{what} `{name}` is not a valid name: letters, digits, `_` and `$`, starting with a letter or `_`"
        )))
    }
}

/// A job that has not moved for a moment: one being submitted or retried gets its task within
/// it, so only a quiet one can have lost its task.
fn quiet(job: &JobSummary) -> bool {
    chrono::Utc::now() - job.updated_on > chrono::TimeDelta::seconds(2)
}

/// Why a service name is taken by job `other`: it imports into it, or it stopped without
/// recording its end and must be cancelled first.
fn service_taken(
    r: &Registry,
    other: &str,
    service: &str,
    live: &std::collections::HashSet<String>,
) -> RegistryError {
    let quiet = r.job(other).is_ok_and(|j| quiet(&j));
    if live.contains(other) || !quiet {
        RegistryError::Conflict(format!(
            "job {other} is already importing a model into service {service}: pick another --service, or wait for it"
        ))
    } else {
        RegistryError::Conflict(format!(
            "job {other} claimed service {service} but stopped without recording its end: cancel it (`hugflake cancel {other}`), then import again"
        ))
    }
}

fn new_job_id() -> String {
    let mut bytes = [0u8; 6];
    let _ = getrandom::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("job-{}-{hex}", Utc::now().format("%Y%m%d%H%M%S"))
}

impl JobRunner {
    pub fn new(
        db: Db,
        services: Arc<ServiceManager>,
        hub: HubSettings,
        concurrency: usize,
    ) -> Arc<JobRunner> {
        Arc::new(JobRunner {
            db,
            services,
            hub,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            live: Mutex::new(HashMap::new()),
            changed: Notify::new(),
        })
    }

    /// Checks what can be checked at once, records the job and queues it.
    pub async fn submit(self: &Arc<Self>, mut spec: ImportSpec) -> Result<JobSummary, SubmitError> {
        validate_repo_id(&spec.handle).map_err(SubmitError::Invalid)?;
        spec.model = spec.model.to_ascii_uppercase();
        spec.version = spec.version.to_ascii_uppercase();
        spec.service = spec.service.to_ascii_uppercase();
        spec.pool = spec.pool.to_ascii_uppercase();
        check_identifier("model name", &spec.model)?;
        check_identifier("version", &spec.version)?;
        check_identifier("service name", &spec.service)?;
        check_identifier("pool", &spec.pool)?;
        if let Some(t) = &spec.task {
            t.parse::<Task>().map_err(SubmitError::Invalid)?;
            if !spec.precision.supports_task(t) {
                return Err(SubmitError::Invalid(format!(
                    "{} applies to the BERT-family text encoders; {t} models are served in fp32",
                    spec.precision
                )));
            }
        }
        // More instances than the pool's memory holds is refused at resolve, by the fit check.
        spec.check_instances().map_err(SubmitError::Invalid)?;
        if !spec.resources.is_empty() {
            return Err(SubmitError::Invalid(
                "--gpu, --cpu and --memory are Snowflake resource requests: local pools run on this \
                 machine's CPUs, each instance with the pool's vCPUs"
                    .into(),
            ));
        }
        let s = spec.clone();
        let live = self.live_ids();
        let id = new_job_id();
        let job_id = id.clone();
        let summary = self
            .db
            .run(move |r| {
                if r.pool(&s.pool)?.is_none() {
                    return Err(RegistryError::NotFound(format!(
                        "compute pool {} (the local pools: `hugflake status`)",
                        s.pool
                    )));
                }
                if r.version_exists(&s.model, &s.version)? {
                    return Err(RegistryError::Conflict(format!(
                        "model {} already has a version {}: pick another --version, or drop it first",
                        s.model, s.version
                    )));
                }
                if let Some(other) = r.active_job_for(&s.model, &s.version)? {
                    return Err(RegistryError::Conflict(format!(
                        "job {other} is already importing {} {}",
                        s.model, s.version
                    )));
                }
                // Checked under the registry's lock with the job's creation: of two imports onto
                // one service name sent at once, the second is refused here.
                if let Some(other) = r.active_job_for_service(&s.service)? {
                    return Err(service_taken(r, &other, &s.service, &live));
                }
                if r.service_row(&s.service)?.is_some() {
                    return Err(RegistryError::Conflict(format!(
                        "a service named {} already exists: pick another --service, or drop it first",
                        s.service
                    )));
                }
                r.create_job(&job_id, &s)
            })
            .await
            .map_err(|e| match e {
                RegistryError::NotFound(m) => SubmitError::NotFound(m),
                RegistryError::Conflict(m) => SubmitError::Conflict(m),
                other => SubmitError::Registry(other),
            })?;
        tracing::info!(job = %id, handle = %spec.handle, "import queued");
        self.start(id);
        Ok(summary)
    }

    /// Picks up the jobs a previous daemon left unfinished.
    pub async fn resume_unfinished(self: &Arc<Self>) -> Result<(), RegistryError> {
        let ids = self.db.run(|r| r.unfinished_jobs()).await?;
        for id in ids {
            self.log(
                &id,
                "the daemon restarted: carrying on from the first unfinished stage",
            )
            .await;
            self.start(id);
        }
        Ok(())
    }

    fn start(self: &Arc<Self>, id: String) {
        let cancel = CancellationToken::new();
        if let Ok(mut live) = self.live.lock() {
            live.insert(
                id.clone(),
                Live {
                    cancel: cancel.clone(),
                    files: Vec::new(),
                },
            );
        }
        let me = self.clone();
        tokio::spawn(async move {
            // However the task ends (a panic included), the job leaves `live`: a job no task runs
            // is then shown as such, and cancel and retry can take it over.
            struct Leave(Arc<JobRunner>, String);
            impl Drop for Leave {
                fn drop(&mut self) {
                    if let Ok(mut live) = self.0.live.lock() {
                        live.remove(&self.1);
                    }
                    self.0.changed.notify_waiters();
                }
            }
            let _leave = Leave(me.clone(), id.clone());
            let permit = tokio::select! {
                p = me.slots.clone().acquire_owned() => p.ok(),
                _ = cancel.cancelled() => None,
            };
            if permit.is_none() {
                me.finish(&id, JobState::Cancelled, None, "cancelled while queued")
                    .await;
                return;
            }
            me.run(&id, &cancel).await;
        });
    }

    pub async fn cancel(&self, id: &str) -> Result<JobSummary, SubmitError> {
        let job_id = id.to_string();
        let job = self
            .db
            .run(move |r| r.job(&job_id))
            .await
            .map_err(not_found)?;
        if !matches!(job.state, JobState::Queued | JobState::Running) {
            return Err(SubmitError::Conflict(format!(
                "job {id} is {}: only queued or running jobs can be cancelled",
                job.state
            )));
        }
        let running_here = match self.live.lock() {
            Ok(live) => live.get(id).map(|l| l.cancel.cancel()).is_some(),
            Err(_) => false,
        };
        if running_here {
            return Ok(job);
        }
        if !self.is_orphan(&job) {
            return Err(SubmitError::Conflict(format!(
                "job {id} is starting: cancel it again in a moment"
            )));
        }
        // No task of this daemon runs the job: its end could not be recorded (a full disk, say).
        // Cancelling records it now, or says why it cannot.
        let (i, msg) = (
            id.to_string(),
            format!("job {id} had stopped without recording its end; marked cancelled"),
        );
        self.db
            .run(move |r| {
                r.append_job_log(&i, &msg)?;
                r.set_job_state(&i, JobState::Cancelled, None, Some("cancelled"))?;
                r.job(&i)
            })
            .await
            .map_err(|e| {
                SubmitError::Registry(RegistryError::BadValue(format!(
                    "job {id} cannot be marked cancelled: {e}"
                )))
            })
    }

    /// Whether a task of this daemon runs (or queues) the job.
    fn is_live(&self, id: &str) -> bool {
        self.live.lock().is_ok_and(|l| l.contains_key(id))
    }

    /// Recorded as queued or running, run by no task, and quiet for a moment (a job being
    /// submitted or retried gets its task right after its row).
    fn is_orphan(&self, job: &JobSummary) -> bool {
        matches!(job.state, JobState::Queued | JobState::Running)
            && quiet(job)
            && !self.is_live(&job.id)
    }

    /// The ids of the jobs tasks of this daemon run (for checks made under the registry's lock).
    fn live_ids(&self) -> std::collections::HashSet<String> {
        self.live
            .lock()
            .map(|l| l.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// A job recorded as queued or running that no task of this daemon runs (and that has not
    /// moved for a moment: a job being submitted is not one) ended without recording its end.
    /// It is shown as failed, saying so, so nobody waits for it; `cancel` and `retry` take it.
    pub fn shown(&self, mut job: JobSummary) -> JobSummary {
        if self.is_orphan(&job) {
            job.state = JobState::Failed;
            job.error = Some(
                "the job stopped without recording its end (the daemon's log says why): retry or cancel it"
                    .into(),
            );
        }
        job
    }

    pub async fn retry(self: &Arc<Self>, id: &str) -> Result<JobSummary, SubmitError> {
        let job_id = id.to_string();
        let detail = self
            .db
            .run(move |r| r.job_detail(&job_id, Some(u64::MAX)))
            .await
            .map_err(not_found)?;
        // A job recorded as queued or running that no task runs stopped without recording its
        // end: it can be retried too.
        let orphan = self.is_orphan(&detail.summary);
        if !orphan && !matches!(detail.summary.state, JobState::Failed | JobState::Cancelled) {
            return Err(SubmitError::Conflict(format!(
                "job {id} is {}: only failed or cancelled jobs can be retried",
                detail.summary.state
            )));
        }
        let job_id = id.to_string();
        let live = self.live_ids();
        let summary = self
            .db
            .run(move |r| {
                // The service name may have been taken since: by another job, or a service.
                if let Some(other) = r
                    .active_job_for_service(&detail.spec.service)?
                    .filter(|o| *o != job_id)
                {
                    return Err(service_taken(r, &other, &detail.spec.service, &live));
                }
                for s in &detail.stages {
                    if !matches!(s.state, StageState::Done | StageState::Skipped) {
                        r.set_stage(&job_id, s.stage, StageState::Pending, None)?;
                    }
                }
                r.set_job_state(&job_id, JobState::Queued, None, None)?;
                r.append_job_log(&job_id, "retry requested")?;
                r.job(&job_id)
            })
            .await?;
        self.start(id.to_string());
        Ok(summary)
    }

    /// A job with its stages, live file progress and the log after `since`.
    pub async fn detail(&self, id: &str, since: Option<u64>) -> Result<JobDetail, SubmitError> {
        let job_id = id.to_string();
        let mut d = self
            .db
            .run(move |r| r.job_detail(&job_id, since))
            .await
            .map_err(not_found)?;
        if let Ok(live) = self.live.lock()
            && let Some(l) = live.get(id)
        {
            d.files = l.files.clone();
        }
        d.summary = self.shown(d.summary);
        Ok(d)
    }

    async fn log(&self, id: &str, line: &str) {
        let (i, l) = (id.to_string(), line.to_string());
        tracing::info!(job = %id, "{line}");
        let _ = self.db.run(move |r| r.append_job_log(&i, &l)).await;
        self.changed.notify_waiters();
    }

    async fn set_stage(&self, id: &str, stage: Stage, state: StageState, error: Option<String>) {
        let i = id.to_string();
        let _ = self
            .db
            .run(move |r| r.set_stage(&i, stage, state, error.as_deref()))
            .await;
        self.changed.notify_waiters();
    }

    /// The last log line goes in before the state changes, so whoever sees the end has seen it.
    /// The end is written again a few times if it cannot be (a full disk may free up); if it
    /// still cannot, the daemon's log says why and `cancel` or `retry` can take the job over.
    async fn finish(&self, id: &str, state: JobState, error: Option<String>, line: &str) {
        self.log(id, line).await;
        let mut wait = Duration::from_millis(200);
        for attempt in 1..=5 {
            let (i, e) = (id.to_string(), error.clone());
            let written = self
                .db
                .run(move |r| {
                    crate::fault::io_point("job-end-write")
                        .map_err(|e| RegistryError::BadValue(e.to_string()))?;
                    r.set_job_state(&i, state, None, e.as_deref())
                })
                .await;
            match written {
                Ok(_) => break,
                Err(e) if attempt == 5 => {
                    tracing::error!(job = %id, error = %e, "the job's end ({state}) cannot be recorded; `hugflake cancel` or `retry` takes it over");
                }
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "cannot record the job's end yet; trying again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
        self.changed.notify_waiters();
    }

    async fn run(self: &Arc<Self>, id: &str, cancel: &CancellationToken) {
        let job_id = id.to_string();
        let detail = match self
            .db
            .run(move |r| r.job_detail(&job_id, Some(u64::MAX)))
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(job = %id, error = %e, "cannot read job");
                return;
            }
        };
        let i = id.to_string();
        let _ = self
            .db
            .run(move |r| r.set_job_state(&i, JobState::Running, None, None))
            .await;
        let mut plan: Option<Plan> = {
            let i = id.to_string();
            self.db
                .run(move |r| r.job_plan(&i))
                .await
                .ok()
                .flatten()
                .and_then(|p| serde_json::from_str(&p).ok())
        };
        let spec = detail.spec.clone();
        for record in &detail.stages {
            if matches!(record.state, StageState::Done | StageState::Skipped) {
                continue;
            }
            let stage = record.stage;
            if cancel.is_cancelled() {
                self.cancelled(id, stage, &spec).await;
                return;
            }
            self.set_stage(id, stage, StageState::Running, None).await;
            let started = Instant::now();
            let result = match stage {
                Stage::Resolve => self.resolve(id, &spec, cancel).await.map(|p| {
                    plan = Some(p);
                }),
                _ => match plan.as_mut() {
                    None => Err(StageEnd::Failed(
                        "the job has no resolved plan: retry it to resolve again".into(),
                    )),
                    Some(p) => match stage {
                        Stage::Download => self.download(id, &spec, p, cancel).await,
                        Stage::Verify => self.verify(id, p).await,
                        Stage::Register => self.register(id, &spec, p).await,
                        Stage::Build => self.build(id, &spec, p, cancel).await,
                        Stage::Deploy => self.deploy(id, &spec, cancel).await,
                        Stage::Ready => self.ready(id, &spec, p, cancel).await,
                        Stage::Resolve => Ok(()),
                    },
                },
            };
            if let Some(p) = &plan {
                let (i, text) = (id.to_string(), serde_json::to_string(p).unwrap_or_default());
                let _ = self.db.run(move |r| r.set_job_plan(&i, &text)).await;
            }
            match result {
                Ok(()) => {
                    self.set_stage(id, stage, StageState::Done, None).await;
                    self.log(
                        id,
                        &format!("{stage}: done in {:.1} s", started.elapsed().as_secs_f64()),
                    )
                    .await;
                }
                Err(StageEnd::Cancelled) => {
                    self.cancelled(id, stage, &spec).await;
                    return;
                }
                Err(StageEnd::Failed(msg)) => {
                    self.set_stage(id, stage, StageState::Failed, Some(msg.clone()))
                        .await;
                    self.finish(
                        id,
                        JobState::Failed,
                        Some(msg.clone()),
                        &format!("{stage}: failed: {msg}"),
                    )
                    .await;
                    return;
                }
            }
        }
        self.finish(
            id,
            JobState::Done,
            None,
            &format!(
                "service {} is RUNNING and answered its first call",
                spec.service
            ),
        )
        .await;
    }

    async fn cancelled(&self, id: &str, stage: Stage, spec: &ImportSpec) {
        self.set_stage(id, stage, StageState::Failed, Some("cancelled".into()))
            .await;
        if matches!(stage, Stage::Build | Stage::Deploy | Stage::Ready)
            && self.services.get(&spec.service).is_ok()
        {
            let _ = self.services.drop_service(&spec.service).await;
            self.log(
                id,
                &format!("dropped service {} that this job created", spec.service),
            )
            .await;
        }
        self.finish(
            id,
            JobState::Cancelled,
            None,
            &format!("cancelled during {stage}; downloaded files stay in the cache"),
        )
        .await;
    }
}

fn not_found(e: RegistryError) -> SubmitError {
    match e {
        RegistryError::NotFound(m) => SubmitError::NotFound(m),
        other => SubmitError::Registry(other),
    }
}
