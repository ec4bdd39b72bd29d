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
//! Statement handles and job names are kept on disk (`store`), so a
//! restarted hugflake re-attaches to an import that is still running.

use std::time::Duration;

use chrono::Utc;

use super::SnowflakePlatform;
use super::ident::Qualified;
use super::readiness::readiness_call;
pub use super::spec::{
    SPEC_CLIENT_VERSION, deploy_yaml, deploy_yaml_in, import_yaml, import_yaml_in,
    inline_spec_allowed,
};
use super::spec::{library_of, library_refusal, snowflake_task};
use super::statements;
use crate::domain::{
    ImportSpec, JobDetail, JobState, JobSummary, ServiceStatus, Stage, StageRecord, StageState,
};
use crate::platform::{Platform, PlatformError, Result};

pub use super::store::{JobStore, SfJob};

pub(super) fn spawn_driver(p: &SnowflakePlatform, id: String) {
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
    for (what, v) in [("version", &spec.version), ("pool", &spec.pool)] {
        super::ident::Ident::parse(v)
            .map_err(|e| PlatformError::Invalid(format!("{what}: {e}")))?;
    }
    // Model and service may live in another database.schema than the connection's
    // (`OTHER_DB.MODELS.MINILM`): kept qualified, each part by the identifier rules.
    for (what, v) in [("model", &mut spec.model), ("service", &mut spec.service)] {
        let q = p
            .qualify(v)
            .map_err(|e| PlatformError::Invalid(format!("{what}: {e}")))?;
        *v = if v.contains('.') {
            q.sql()
        } else {
            q.name.sql()
        };
    }
    spec.version = spec.version.to_ascii_uppercase();
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
    let library = library_of(spec);
    if let Some(why) = library_refusal(library.as_deref()) {
        return Err(End::Failed(why));
    }
    // The deploy sends its spec inline; find out now, not after a 10-minute import, whether the
    // account takes that.
    let capabilities = match p.run(&statements::capabilities()).await {
        Ok(rs) => rs.scalar().map(str::to_string),
        // Servers older than 9.2 do not know the function: no capabilities, as in the Python client.
        Err(super::sqlapi::SqlError::Statement { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    inline_spec_allowed(capabilities.as_deref()).map_err(End::Failed)?;
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
    resources_fit(p, id, spec, pool).await?;
    let service = model_fq(p, &spec.service)?;
    if p.service_in(&service).await?.is_some() {
        return Err(End::Failed(format!(
            "a service named {} already exists in {}: pick another name or drop it",
            service.name,
            service.schema_sql()
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
            "resolve: task {task}{}; pool {} is {}; service name and version are free; inline deployment specs \
             accepted; autocapture off",
            library.map(|l| format!(" (library {l})")).unwrap_or_default(),
            pool.name,
            pool.state
        ),
    );
    Ok(())
}

/// Resource requests must fit a node of the pool's instance family (SHOW COMPUTE POOL INSTANCE
/// FAMILIES): vCPUs, memory, and GPUs, refused before the import starts; a GPU request names the
/// account's GPU families.
async fn resources_fit(
    p: &SnowflakePlatform,
    id: &str,
    spec: &ImportSpec,
    pool: &crate::domain::ComputePool,
) -> std::result::Result<(), End> {
    let r = &spec.resources;
    if r.is_empty() {
        return Ok(());
    }
    let families = p.families().await;
    let Some(family) = families.get(&pool.instance_family) else {
        p.jobs.log(
            id,
            &format!(
                "resolve: warning: the size of instance family {} (pool {}) could not be read from SHOW COMPUTE POOL INSTANCE FAMILIES; the resource requests are not checked",
                pool.instance_family, pool.name
            ),
        );
        return Ok(());
    };
    if let Some(cpu) = r.cpu.as_deref().and_then(|c| c.parse::<f64>().ok())
        && cpu > family.vcpu
    {
        return Err(End::Failed(format!(
            "--cpu {cpu}: a node of compute pool {} ({}) has {} vCPU",
            pool.name, pool.instance_family, family.vcpu
        )));
    }
    if let Some(gib) = r.memory_gib()
        && gib > family.memory_gib
    {
        return Err(End::Failed(format!(
            "--memory {}: a node of compute pool {} ({}) has {} GiB",
            r.memory.as_deref().unwrap_or_default(),
            pool.name,
            pool.instance_family,
            family.memory_gib
        )));
    }
    let Some(want) = r.gpu else {
        return Ok(());
    };
    if pool.gpu >= want {
        return Ok(());
    }
    let mut gpus: Vec<(&String, &super::Family)> = families
        .iter()
        .filter(|(_, f)| f.gpu_count >= want)
        .collect();
    gpus.sort_by(|a, b| {
        a.1.memory_gib
            .total_cmp(&b.1.memory_gib)
            .then_with(|| a.0.cmp(b.0))
    });
    let offer = if gpus.is_empty() {
        format!("this account lists no instance family with {want} GPU(s) per node")
    } else {
        format!(
            "instance families with {want} GPU(s) or more here: {}",
            gpus.iter()
                .take(4)
                .map(|(name, f)| format!(
                    "{name} ({}× {}{})",
                    f.gpu_count,
                    f.gpu.as_deref().unwrap_or("GPU"),
                    if f.gpu_memory_gib > 0.0 {
                        format!(" {:.0} GiB", f.gpu_memory_gib)
                    } else {
                        String::new()
                    }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(End::Failed(format!(
        "--gpu {want}: compute pool {} is INSTANCE_FAMILY {}, which has {}; {offer}",
        pool.name,
        pool.instance_family,
        if pool.gpu == 0 {
            "no GPU".to_string()
        } else {
            format!("{} GPU(s) per node", pool.gpu)
        }
    )))
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
    // The context's role and CURRENT_ROLE() are stored names already.
    let role_id = super::ident::Ident::from_stored(&role);
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

/// Shows the new lines of a job service's log (`model-logging`, `model-build`); the job service
/// is looked up in its own schema (`MODEL_LOGGING_` in the model's, `MODEL_BUILD_` in the
/// service's).
async fn follow_job_service(
    p: &SnowflakePlatform,
    id: &str,
    job: &Qualified,
    container: &str,
) -> Option<ServiceStatus> {
    let status = p.service_in(job).await.ok()??.status;
    if let Ok(rs) = p.run(&statements::service_logs(job, 0, container)).await {
        let text = rs.scalar().unwrap_or("").to_string();
        let key = job.name.name.clone();
        let seen = p
            .jobs
            .get(id)
            .and_then(|j| j.log_seen.get(&key).copied())
            .unwrap_or(0);
        let lines: Vec<&str> = text.lines().collect();
        for l in lines.iter().skip(seen) {
            p.jobs.log(id, &format!("{container}: {l}"));
        }
        let n = lines.len();
        p.jobs.update(id, |j| {
            j.log_seen.insert(key, n.max(seen));
        });
    }
    Some(status)
}

/// The job service `<prefix><H>` of a statement, in the schema of `beside`.
fn job_service(handle: &str, prefix: &str, beside: &Qualified) -> Option<Qualified> {
    let hash = statements::job_hash(handle)?;
    Some(Qualified {
        database: beside.database.clone(),
        schema: beside.schema.clone(),
        name: super::ident::Ident::from_stored(&format!("{prefix}{hash}")),
    })
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
    let model = model_fq(p, &spec.model)?;
    let logging = job_service(&handle, "MODEL_LOGGING_", &model);
    if let Some(l) = &logging {
        p.jobs.log(
            id,
            &format!(
                "download: the logging job is {} in {}",
                l.name,
                l.schema_sql()
            ),
        );
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
    let service = model_fq(p, &spec.service)?;
    let build = job_service(&handle, "MODEL_BUILD_", &service);
    if let Some(b) = &build {
        p.jobs.log(
            id,
            &format!(
                "build: the image build job is {} in {}",
                b.name,
                b.schema_sql()
            ),
        );
    }
    let deadline = std::time::Instant::now() + p.deadline();
    let mut statement_done = false;
    loop {
        if cancelled(p, id) {
            return Err(End::Cancelled);
        }
        // A statement error ends the deploy; its success alone does not mean the image is built.
        match p.api.check(&handle).await {
            Ok(Some(_)) => statement_done = true,
            Ok(None) => {}
            Err(e) => {
                // Show the build job's log first: it usually says why.
                if let Some(b) = &build {
                    let _ = follow_job_service(p, id, b, "model-build").await;
                }
                return Err(e.into());
            }
        }
        if let Some(b) = &build {
            match p.service_in(b).await?.map(|s| s.status) {
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
        let build_seen = p.jobs.get(id).is_some_and(|j| j.build_seen);
        if !build_seen && p.service_in(&service).await?.is_some() {
            p.jobs.log(
                id,
                "build: no build job ran: a previously built image was reused",
            );
            return Ok(());
        }
        // The statement returned, no build job is running and the service is not listed yet:
        // the service's own state decides from here (the deploy stage has its own deadline).
        if statement_done && !build_seen {
            p.jobs.log(
                id,
                &format!(
                    "build: SYSTEM$DEPLOY_MODEL returned and no build job is running: following service {service}"
                ),
            );
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(End::Failed(format!(
                "no image build finished and service {service} did not appear within {} min: \
                 see `hugflake logs` of the build job, or SHOW SERVICES IN SCHEMA {}",
                p.deadline().as_secs() / 60,
                service.schema_sql()
            )));
        }
        tokio::time::sleep(p.poll_every()).await;
    }
}

async fn wait_running(
    p: &SnowflakePlatform,
    id: &str,
    spec: &ImportSpec,
) -> std::result::Result<(), End> {
    let service = model_fq(p, &spec.service)?;
    let deadline = std::time::Instant::now() + p.deadline();
    let mut last = String::new();
    loop {
        if cancelled(p, id) {
            return Err(End::Cancelled);
        }
        match p.containers(&service.sql()).await {
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
        if std::time::Instant::now() >= deadline {
            return Err(End::Failed(format!(
                "service {service} was not READY within {} min (last seen: {}): its containers' \
                 messages are in `hugflake logs {}`",
                p.deadline().as_secs() / 60,
                if last.is_empty() {
                    "no containers"
                } else {
                    last.as_str()
                },
                spec.service
            )));
        }
        tokio::time::sleep(p.poll_every()).await;
    }
}

async fn first_call(
    p: &SnowflakePlatform,
    id: &str,
    spec: &ImportSpec,
) -> std::result::Result<(), End> {
    let functions = p
        .versions(&spec.model)
        .await?
        .into_iter()
        .find(|v| v.name == spec.version)
        .map(|v| v.functions)
        .unwrap_or_default();
    let service = model_fq(p, &spec.service)?.sql();
    // BERT-style vocabularies mask with [MASK], RoBERTa-style ones with <mask>.
    let masks = ["[MASK]", "<mask>"];
    let mut mask = 0;
    let started = std::time::Instant::now();
    let deadline = started + Duration::from_secs(300).min(p.deadline());
    loop {
        let (method, row) = readiness_call(&functions, spec.task.as_deref(), masks[mask]);
        let early = std::time::Instant::now() < deadline;
        match p.predict(&service, &method, &[row]).await {
            Ok(r) => {
                p.jobs.log(
                    id,
                    &format!("ready: {method} answered in {:.0} ms", r.latency_ms),
                );
                return Ok(());
            }
            Err(PlatformError::Api { message, .. })
                if spec.task.as_deref() == Some("fill-mask")
                    && mask + 1 < masks.len()
                    && message.to_ascii_lowercase().contains("mask") =>
            {
                mask += 1;
                continue;
            }
            // Still provisioning, or the model still loading (502/503/504, connection refused).
            Err(
                PlatformError::Conflict(_)
                | PlatformError::NotFound(_)
                | PlatformError::Unreachable { .. },
            ) if early => {}
            // 401 too: right after a service comes up its ingress may refuse a good token for a
            // while (snowflake-ml-python's own deployment tests retry it).
            Err(PlatformError::Api { status, .. })
                if early && (status == 401 || crate::http::transient_status(status)) => {}
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
            requests: std::sync::Mutex::new(std::collections::HashMap::new()),
            loopback: self.loopback,
            poll_every: self.poll_every,
            deadline: self.deadline,
            ingress_tokens: self.ingress_tokens.clone(),
            runnable: self.runnable.clone(),
            signatures: self.signatures.clone(),
        }
    }
}
