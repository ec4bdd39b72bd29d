//! Services on the local platform: each one an endpoint on 127.0.0.1 (its own port and token, like
//! an SPCS ingress) in front of instance processes (`hugflake instance`) that the daemon starts,
//! watches and restarts with back-off. Logs per container (ring buffer plus a file) and metrics
//! sampled every few seconds.
//!
//! ```text
//!   client ──POST /encode──▶ service endpoint (daemon) ──▶ instance 0 (child process, candle)
//!          Snowflake Token      auth, suspended?, 413,      instance token, READY only
//!                               metrics, round robin        instance 1 … (while calls queue)
//! ```
//!
//! Scaling follows SPCS: MIN_INSTANCES run (one when it is 0); a service with MIN_INSTANCES 0
//! suspends after AUTO_SUSPEND_SECS without calls and the next call resumes it, waiting for the
//! cold start; while calls queue in the instances, more start up to MAX_INSTANCES and the pool's
//! memory, and the extra ones stop when calls stop (`decide` in `domain::scaling`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::records::ServiceRow;
use super::registry::{Registry, RegistryError};
use super::telemetry::{LogRing, Metrics};
use crate::domain::scaling::{Decision, Observed, Policy, decide};
use crate::domain::{
    Calibration, Container, Endpoint, InstanceStatus, Scaling, ScalingChange, Service,
    ServiceStatus,
};
use crate::platform::local::instance::{MAX_BODY, TOKEN_ENV};
use crate::platform::local::{DaemonFiles, error, presented_token, write_private};
use crate::secret::Secret;

/// The registry, shared; calls run off the async workers.
#[derive(Clone)]
pub struct Db(pub Arc<Mutex<Registry>>);

impl Db {
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Registry) -> Result<T, RegistryError> + Send + 'static,
    ) -> Result<T, RegistryError> {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut reg = inner.lock().map_err(|_| {
                RegistryError::BadValue(
                    "the registry lock was poisoned by an earlier panic: restart the daemon".into(),
                )
            })?;
            f(&mut reg)
        })
        .await
        .map_err(|e| RegistryError::BadValue(format!("registry task: {e}")))?
    }
}

/// How services run: where the binary is, how often to sample, how to back off.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub exe: PathBuf,
    pub hf_cache: PathBuf,
    pub sample_every: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    pub request_timeout: Duration,
    pub max_batch: usize,
    /// Connections one endpoint holds at once, and how long a request's headers may take.
    pub endpoint: super::endpoint::Limits,
    /// When instances are added and removed.
    pub autoscale: Policy,
}

const READY_TIMEOUT: Duration = Duration::from_secs(600);

/// How often the autoscaler looks at every service.
const AUTOSCALE_TICK: Duration = Duration::from_millis(250);

/// The start of the status message of a service suspended for idleness (kept in the registry, so
/// a restarted daemon still resumes it on the next call).
pub const IDLE_SUSPENDED: &str = "suspended for idleness";

/// The response header in which an instance says how long the call's rows waited in its queue.
pub const QUEUE_HEADER: &str = "x-hugflake-queue-ms";

#[derive(Debug, Clone)]
struct InstanceRt {
    status: InstanceStatus,
    port: Option<u16>,
    pid: Option<u32>,
    restart_count: u32,
    last_exit_code: Option<i32>,
    start_time: Option<DateTime<Utc>>,
    message: Option<String>,
    /// New at every start of the instance; `None` until then.
    token: Option<Secret>,
    /// What the instance's calibration check measured (reduced precisions).
    calibration: Option<Calibration>,
    /// Which start of this slot: a stopped slot's late updates are ignored.
    generation: u64,
    /// Stops this instance alone (scaling in).
    stop: CancellationToken,
}

struct SvcState {
    status: ServiceStatus,
    message: Option<String>,
    instances: Vec<InstanceRt>,
    /// Stops the instances (suspend, halt, drop) while the endpoint stays.
    supervisors: Option<CancellationToken>,
    /// The bounds now (`ALTER SERVICE … SET` changes them).
    scaling: Scaling,
    /// Suspended for idleness: the next call resumes it.
    auto_suspended: bool,
    /// When the last call ended, or the service (re)started.
    last_call: Instant,
    /// The longest wait in an instance's queue reported since the autoscaler last looked
    /// (`None`: no call ended since).
    queue_ms: Option<f64>,
    /// Since when calls have queued without a break.
    deep_since: Option<Instant>,
    /// The autoscaler said it cannot add an instance (once per deep episode).
    capped: bool,
    /// A call resumed the service at this moment and waits for an instance.
    waking: Option<Instant>,
    /// How long the last resume by a call took until an instance was READY.
    cold_start: Option<Duration>,
    /// Calls in progress through the endpoint.
    calls: u64,
    generations: u64,
}

impl SvcState {
    /// Instances wanted: every slot is one (scaling adds and removes slots).
    fn target(&self) -> u32 {
        self.instances.len() as u32
    }

    /// Cancels every instance and leaves the service in `status`.
    fn stop(&mut self, status: ServiceStatus, message: Option<String>) {
        if let Some(t) = self.supervisors.take() {
            t.cancel();
        }
        self.status = status;
        self.message = message;
        self.auto_suspended = false;
        self.waking = None;
        for i in &mut self.instances {
            if i.status != InstanceStatus::Failed {
                i.status = InstanceStatus::Terminating;
            }
            i.port = None;
        }
    }

    fn new_slot(&mut self, parent: &CancellationToken) -> InstanceRt {
        self.generations += 1;
        InstanceRt {
            status: InstanceStatus::Pending,
            port: None,
            pid: None,
            restart_count: 0,
            last_exit_code: None,
            start_time: None,
            message: None,
            token: None,
            calibration: None,
            generation: self.generations,
            stop: parent.child_token(),
        }
    }
}

/// One start of one instance slot.
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: usize,
    generation: u64,
}

/// A running service in the daemon.
pub struct ServiceRt {
    pub row: ServiceRow,
    token: Secret,
    pub port: u16,
    state: Mutex<SvcState>,
    pub logs: LogRing,
    pub metrics: Metrics,
    /// Stops the endpoint and everything else.
    cancel: CancellationToken,
    next: AtomicUsize,
    pub changed: Notify,
    http: reqwest::Client,
    db: Db,
    settings: ServiceSettings,
    pool_vcpu: f64,
}

impl ServiceRt {
    fn target(&self) -> u32 {
        self.state.lock().map(|s| s.target()).unwrap_or(1)
    }

    /// Whether the autoscaler can have something to do: room between the bounds, an idle
    /// suspension, or a size that the bounds no longer allow.
    fn may_scale(&self) -> bool {
        let s = self.scaling();
        s.max_instances > s.base() || s.suspends_when_idle().is_some() || self.target() != s.base()
    }

    pub fn scaling(&self) -> Scaling {
        self.state.lock().map(|s| s.scaling).unwrap_or(Scaling {
            min_instances: self.row.min_instances,
            max_instances: self.row.max_instances,
            auto_suspend_secs: self.row.spec.auto_suspend_secs,
        })
    }

    pub fn status(&self) -> (ServiceStatus, Option<String>) {
        self.state
            .lock()
            .map(|s| (s.status, s.message.clone()))
            .unwrap_or((ServiceStatus::InternalError, None))
    }

    /// Recomputes the service status from its instances and writes it when it changed.
    fn settle(self: &Arc<Self>) {
        let changed = {
            let Ok(mut s) = self.state.lock() else {
                return;
            };
            let (status, message) = match s.status {
                ServiceStatus::Suspended | ServiceStatus::Deleting => (s.status, s.message.clone()),
                _ if s.supervisors.is_none() => (s.status, s.message.clone()),
                _ => {
                    let ready = s
                        .instances
                        .iter()
                        .filter(|i| i.status == InstanceStatus::Ready)
                        .count();
                    // Enough READY instances keep it RUNNING even while an extra one fails (the
                    // autoscaler can still stop it); below that, a failed one fails the service.
                    let failed = s
                        .instances
                        .iter()
                        .find(|i| i.status == InstanceStatus::Failed);
                    if ready as u32 >= s.scaling.base().min(s.target()) {
                        (ServiceStatus::Running, None)
                    } else if let Some(failed) = failed {
                        (ServiceStatus::Failed, failed.message.clone())
                    } else {
                        (
                            ServiceStatus::Pending,
                            s.instances.iter().find_map(|i| i.message.clone()),
                        )
                    }
                }
            };
            let changed = s.status != status || s.message != message;
            s.status = status;
            s.message = message;
            if status == ServiceStatus::Running
                && let Some(since) = s.waking.take()
            {
                s.cold_start = Some(since.elapsed());
                self.logs.event(
                    None,
                    "INFO",
                    "SERVICE.RESUME",
                    &format!(
                        "cold start: resumed by a call, ready after {} ms",
                        since.elapsed().as_millis()
                    ),
                );
            }
            changed.then_some((status, s.message.clone()))
        };
        if let Some((status, message)) = changed {
            self.persist(status, message);
        }
        self.changed.notify_waiters();
    }

    fn persist(&self, status: ServiceStatus, message: Option<String>) {
        let db = self.db.clone();
        let name = self.row.name.clone();
        tokio::spawn(async move {
            if let Err(e) = db
                .run(move |r| r.set_service_status(&name, status.as_str(), message.as_deref()))
                .await
            {
                tracing::error!(error = %e, "cannot record a service status");
            }
        });
    }

    /// Whether `slot` is this start of its slot, or the slot is gone (scaled in).
    fn slot_is_mine(&self, slot: Slot) -> bool {
        self.state
            .lock()
            .map(|s| {
                s.instances
                    .get(slot.id)
                    .is_none_or(|i| i.generation == slot.generation)
            })
            .unwrap_or(false)
    }

    fn update(self: &Arc<Self>, slot: Slot, f: impl FnOnce(&mut InstanceRt)) {
        if let Ok(mut s) = self.state.lock()
            && let Some(i) = s.instances.get_mut(slot.id)
            && i.generation == slot.generation
        {
            f(i);
        }
        self.settle();
    }

    /// Starts the instances' supervisors (resume, first start, restart of the daemon): the base
    /// count, more come when calls queue.
    fn start_instances(self: &Arc<Self>) {
        let token = self.cancel.child_token();
        let mut started = Vec::new();
        if let Ok(mut s) = self.state.lock() {
            if let Some(old) = s.supervisors.take() {
                old.cancel();
            }
            s.supervisors = Some(token.clone());
            s.status = ServiceStatus::Pending;
            s.message = None;
            s.auto_suspended = false;
            s.last_call = Instant::now();
            s.deep_since = None;
            s.queue_ms = None;
            s.instances.clear();
            for id in 0..s.scaling.base() as usize {
                let slot = s.new_slot(&token);
                started.push((
                    Slot {
                        id,
                        generation: slot.generation,
                    },
                    slot.stop.clone(),
                ));
                s.instances.push(slot);
            }
        }
        self.persist(ServiceStatus::Pending, None);
        for (slot, stop) in started {
            let me = self.clone();
            tokio::spawn(async move { me.supervise(slot, stop).await });
        }
        self.changed.notify_waiters();
    }

    /// Starts or stops instances until `to` run (the last ones stop first).
    fn scale_to(self: &Arc<Self>, to: u32, why: &str) {
        let mut started = Vec::new();
        let from = {
            let Ok(mut s) = self.state.lock() else {
                return;
            };
            let Some(parent) = s.supervisors.clone() else {
                return;
            };
            let from = s.instances.len() as u32;
            if from == to {
                return;
            }
            while (s.instances.len() as u32) < to {
                let id = s.instances.len();
                let slot = s.new_slot(&parent);
                started.push((
                    Slot {
                        id,
                        generation: slot.generation,
                    },
                    slot.stop.clone(),
                ));
                s.instances.push(slot);
            }
            while (s.instances.len() as u32) > to.max(1) {
                if let Some(gone) = s.instances.pop() {
                    gone.stop.cancel();
                }
            }
            s.capped = false;
            // A new instance needs its load time before the queue can tell whether it helped.
            s.deep_since = None;
            from
        };
        self.logs.event(
            None,
            "INFO",
            "SERVICE.SCALE",
            &format!(
                "scaling {} from {from} to {to} instance(s): {why}",
                if to > from { "out" } else { "in" }
            ),
        );
        for (slot, stop) in started {
            let me = self.clone();
            tokio::spawn(async move { me.supervise(slot, stop).await });
        }
        self.settle();
    }

    /// A call arrives: counted (the autoscaler never suspends under it), and a service suspended
    /// for idleness is started (once: later calls find it PENDING and wait with this one).
    fn begin_call(self: &Arc<Self>) {
        let wake = self
            .state
            .lock()
            .map(|mut s| {
                s.calls += 1;
                let wake = s.status == ServiceStatus::Suspended && s.auto_suspended;
                if wake {
                    s.auto_suspended = false;
                    s.status = ServiceStatus::Pending;
                    s.waking = Some(Instant::now());
                }
                wake
            })
            .unwrap_or(false);
        if wake {
            self.logs.event(
                None,
                "INFO",
                "SERVICE.RESUME",
                "a call arrived while suspended for idleness: resuming (AUTO_RESUME)",
            );
            self.start_instances();
        }
    }

    /// Whether a call resumed the service and its instances are still starting.
    fn waking(&self) -> bool {
        self.state
            .lock()
            .map(|s| s.status != ServiceStatus::Failed && s.waking.is_some())
            .unwrap_or(false)
    }

    /// A call ended; `queue_ms` is how long its rows waited in the instance's queue.
    fn end_call(&self, queue_ms: Option<f64>) {
        if let Ok(mut s) = self.state.lock() {
            s.calls = s.calls.saturating_sub(1);
            s.last_call = Instant::now();
            if let Some(q) = queue_ms {
                s.queue_ms = Some(s.queue_ms.map_or(q, |m| m.max(q)));
            }
        }
    }

    /// One look of the autoscaler: what the service's instances do now, and the change to make.
    fn observe(&self, policy: &Policy, free_gib: f64) -> Option<(Scaling, Observed)> {
        let Ok(mut s) = self.state.lock() else {
            return None;
        };
        if s.supervisors.is_none()
            || !matches!(s.status, ServiceStatus::Running | ServiceStatus::Pending)
            || s.waking.is_some()
        {
            return None;
        }
        let now = Instant::now();
        // A tick with no call ended says nothing (slow batches take longer than a tick): the
        // episode goes on while calls are in progress, and ends on a short wait or no calls.
        match s.queue_ms.take() {
            Some(q) if q >= policy.queue_ms => {
                s.deep_since.get_or_insert(now);
            }
            Some(_) => {
                s.deep_since = None;
                s.capped = false;
            }
            None if s.calls == 0 => {
                s.deep_since = None;
                s.capped = false;
            }
            None => {}
        }
        // While an instance is still starting, more would not be started on its account.
        let starting = s
            .instances
            .iter()
            .any(|i| i.status == InstanceStatus::Pending);
        let in_flight = s.calls;
        Some((
            s.scaling,
            Observed {
                target: s.target(),
                in_flight,
                deep_for: s
                    .deep_since
                    .filter(|_| !starting)
                    .map(|d| now.duration_since(d)),
                idle_for: if in_flight > 0 {
                    Duration::ZERO
                } else {
                    now.duration_since(s.last_call)
                },
                free_gib,
                per_instance_gib: self.row.spec.memory_gib,
            },
        ))
    }

    /// Applies the autoscaler's decision.
    fn apply(self: &Arc<Self>, decision: Decision) {
        match decision {
            Decision::Hold => {}
            Decision::Out { to, why } | Decision::In { to, why } => self.scale_to(to, &why),
            Decision::Suspend { why } => {
                let message = format!("{IDLE_SUSPENDED}: {why}");
                // Checked and done under the lock: a call that has just arrived keeps it up.
                let done = self
                    .state
                    .lock()
                    .map(|mut s| {
                        let quiet = s
                            .scaling
                            .suspends_when_idle()
                            .is_some_and(|after| s.last_call.elapsed() >= after);
                        let idle = quiet && s.calls == 0 && s.status != ServiceStatus::Suspended;
                        if idle {
                            s.stop(ServiceStatus::Suspended, Some(message.clone()));
                            s.auto_suspended = true;
                        }
                        idle
                    })
                    .unwrap_or(false);
                if done {
                    self.logs.event(None, "INFO", "SERVICE.STATUS_CHANGE", &why);
                    self.persist(ServiceStatus::Suspended, Some(message));
                    self.changed.notify_waiters();
                }
            }
            Decision::Capped { why } => {
                let first = self
                    .state
                    .lock()
                    .map(|mut s| !std::mem::replace(&mut s.capped, true))
                    .unwrap_or(false);
                if first {
                    self.logs.event(None, "WARN", "SERVICE.SCALE", &why);
                }
            }
        }
    }

    /// New bounds: kept for the autoscaler, which starts or stops instances at its next look.
    fn set_scaling(&self, scaling: Scaling) {
        if let Ok(mut s) = self.state.lock() {
            s.scaling = scaling;
        }
        self.logs.event(
            None,
            "INFO",
            "SERVICE.ALTER",
            &format!("scaling set: {}", scaling.summary()),
        );
    }

    /// Stops the instances and leaves the service in `status` with `message`.
    fn stop_instances(self: &Arc<Self>, status: ServiceStatus, message: Option<String>) {
        if let Ok(mut s) = self.state.lock() {
            s.stop(status, message.clone());
        }
        self.persist(status, message);
        self.changed.notify_waiters();
    }

    async fn supervise(self: Arc<Self>, slot: Slot, cancel: CancellationToken) {
        let id = slot.id;
        let mut backoff = self.settings.first_backoff;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let started = Instant::now();
            let ended = self.run_instance(slot, &cancel).await;
            // Its log becomes the slot's previous one, unless a newer start has the slot already.
            if self.slot_is_mine(slot) {
                self.logs.instance_ended(id as u32);
            }
            let Some((code, why)) = ended else {
                break;
            };
            if started.elapsed() > Duration::from_secs(60) {
                backoff = self.settings.first_backoff;
            }
            self.update(slot, |i| {
                i.status = InstanceStatus::Failed;
                i.port = None;
                i.pid = None;
                i.restart_count += 1;
                i.last_exit_code = code;
                i.message = Some(why.clone());
            });
            self.logs.event(
                Some(id as u32),
                "ERROR",
                "CONTAINER.STATUS_CHANGE",
                &format!(
                    "{why}; restarting in {:.0} s",
                    backoff.as_secs_f64().max(1.0)
                ),
            );
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(self.settings.max_backoff);
        }
    }

    /// Runs one instance process until it exits (`Some((code, why))`) or is cancelled (`None`).
    async fn run_instance(
        self: &Arc<Self>,
        slot: Slot,
        cancel: &CancellationToken,
    ) -> Option<(Option<i32>, String)> {
        let id = slot.id;
        let spec = &self.row.spec;
        // A fresh token for each start; without randomness the instance does not start.
        let token = match Secret::random() {
            Ok(t) => t,
            Err(e) => return Some((None, format!("cannot make an instance token: {e}"))),
        };
        let stored = token.clone();
        self.update(slot, |i| i.token = Some(stored));
        let mut cmd = tokio::process::Command::new(&self.settings.exe);
        cmd.arg("instance")
            .arg("--model-dir")
            .arg(&spec.snapshot)
            .arg("--task")
            .arg(&spec.task)
            .arg("--hf-cache")
            .arg(&self.settings.hf_cache)
            .arg("--max-batch")
            .arg(self.settings.max_batch.to_string())
            .arg("--precision")
            .arg(spec.precision.as_str());
        if let Some(t) = &spec.text_dir {
            cmd.arg("--text-dir").arg(t);
        }
        let threads = (self.pool_vcpu.floor() as usize).max(1);
        cmd.env(TOKEN_ENV, token.expose())
            .env("RAYON_NUM_THREADS", threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        self.update(slot, |i| {
            i.status = InstanceStatus::Pending;
            i.message = Some("starting: loading the model".into());
        });
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Some((None, format!("cannot start an instance: {e}")));
            }
        };
        let pid = child.id();
        self.update(slot, |i| i.pid = pid);
        self.logs.event(
            Some(id as u32),
            "INFO",
            "CONTAINER.STATUS_CHANGE",
            &format!("instance {id} started (pid {})", pid.unwrap_or(0)),
        );
        // Keep stdin open: the instance exits when it closes (the daemon is gone).
        let _stdin = child.stdin.take();
        let (ready_tx, mut ready_rx) =
            tokio::sync::mpsc::unbounded_channel::<(u16, Option<Calibration>)>();
        let last_err = Arc::new(Mutex::new(String::new()));
        if let Some(out) = child.stdout.take() {
            let me = self.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let ready = serde_json::from_str::<serde_json::Value>(&line)
                        .ok()
                        .filter(|v| v["event"] == "ready");
                    let port = ready
                        .as_ref()
                        .and_then(|v| v["port"].as_u64())
                        .and_then(|p| u16::try_from(p).ok());
                    match port {
                        Some(p) => {
                            let calibration = ready.and_then(|v| {
                                serde_json::from_value(v["calibration"].clone()).ok()
                            });
                            let _ = ready_tx.send((p, calibration));
                        }
                        None => me.logs.push(id as u32, "model-inference", &line),
                    }
                }
            });
        }
        let stderr_done = child.stderr.take().map(|err| {
            let me = self.clone();
            let last = last_err.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut l) = last.lock() {
                        l.clone_from(&line);
                    }
                    me.logs.push(id as u32, "model-inference", &line);
                }
            })
        });
        let exit_reason = |status: std::io::Result<std::process::ExitStatus>| {
            use std::os::unix::process::ExitStatusExt;
            let (code, how) = match status {
                Ok(s) => match (s.code(), s.signal()) {
                    (Some(c), _) => (Some(c), format!("exited with code {c}")),
                    (None, Some(sig)) => (Some(128 + sig), format!("was killed by signal {sig}")),
                    _ => (None, "ended".to_string()),
                },
                Err(e) => (None, format!("could not be waited for: {e}")),
            };
            let last = last_err.lock().map(|l| l.clone()).unwrap_or_default();
            let why = if last.is_empty() {
                format!("instance {id} {how}")
            } else {
                format!("instance {id} {how}: {last}")
            };
            (code, why)
        };
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = child.kill().await;
                return None;
            }
            status = child.wait() => {
                if let Some(reader) = stderr_done {
                    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
                }
                return Some(exit_reason(status));
            }
            port = tokio::time::timeout(READY_TIMEOUT, ready_rx.recv()) => {
                match port {
                    Ok(Some((p, calibration))) => {
                        self.update(slot, |i| {
                            i.status = InstanceStatus::Ready;
                            i.port = Some(p);
                            i.calibration = calibration;
                            i.start_time = Some(Utc::now());
                            i.message = None;
                        });
                        self.logs.event(
                            Some(id as u32),
                            "INFO",
                            "CONTAINER.STATUS_CHANGE",
                            &format!("instance {id} READY"),
                        );
                    }
                    // Its standard output closed without a ready line: the process is ending
                    // (a model it refused, a crash); its exit and last error line say why.
                    Ok(None) => {
                        let status = child.wait().await;
                        // Its last error line is the reason: let the reader reach the end.
                        if let Some(reader) = stderr_done {
                            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
                        }
                        return Some(exit_reason(status));
                    }
                    Err(_) => {
                        let _ = child.kill().await;
                        return Some((None, format!("instance {id} did not become ready in {} s", READY_TIMEOUT.as_secs())));
                    }
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = child.kill().await;
                None
            }
            status = child.wait() => Some(exit_reason(status)),
        }
    }

    pub fn containers(&self) -> Vec<Container> {
        let Ok(s) = self.state.lock() else {
            return Vec::new();
        };
        s.instances
            .iter()
            .enumerate()
            .map(|(id, i)| Container {
                service: self.row.name.clone(),
                service_status: s.status,
                instance_id: id as u32,
                instance_status: i.status,
                container_name: "model-inference".into(),
                status: i.status,
                message: i.message.clone(),
                restart_count: i.restart_count,
                start_time: i.start_time,
                last_exit_code: i.last_exit_code,
                pid: i.pid,
                memory_bytes: i.pid.and_then(rss_bytes),
                calibration: i.calibration.clone(),
            })
            .collect()
    }

    pub fn endpoints(&self) -> Vec<Endpoint> {
        vec![Endpoint {
            name: "inference".into(),
            port: self.port,
            protocol: "HTTP".into(),
            is_public: true,
            ingress_url: format!("127.0.0.1:{}", self.port),
        }]
    }

    pub fn token(&self) -> &Secret {
        &self.token
    }

    fn ready_instances(&self) -> Vec<(u16, Secret)> {
        self.state
            .lock()
            .map(|s| {
                s.instances
                    .iter()
                    .filter(|i| i.status == InstanceStatus::Ready)
                    .filter_map(|i| i.port.zip(i.token.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn memory(&self) -> u64 {
        self.state
            .lock()
            .map(|s| {
                s.instances
                    .iter()
                    .filter_map(|i| i.pid.and_then(rss_bytes))
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Overlays the live state on a service row from the registry.
    pub fn overlay(&self, svc: &mut Service) {
        let (status, message) = self.status();
        svc.status = status;
        svc.message = message;
        let containers = self.containers();
        svc.ready_instances = containers
            .iter()
            .filter(|c| c.status == InstanceStatus::Ready)
            .count() as u32;
        svc.current_instances = containers
            .iter()
            .filter(|c| matches!(c.status, InstanceStatus::Ready | InstanceStatus::Pending))
            .count() as u32;
        if let Ok(s) = self.state.lock() {
            svc.target_instances = if s.status == ServiceStatus::Suspended {
                0
            } else {
                s.target()
            };
            svc.min_instances = s.scaling.min_instances;
            svc.max_instances = s.scaling.max_instances;
            svc.auto_suspend_secs = s.scaling.auto_suspend_secs;
            svc.auto_suspended = s.auto_suspended && s.status == ServiceStatus::Suspended;
            svc.cold_start_ms = s.cold_start.map(|d| d.as_millis() as u64);
        }
        svc.endpoint = Some(format!("http://127.0.0.1:{}", self.port));
        svc.calibration = containers
            .iter()
            .filter(|c| c.status == InstanceStatus::Ready)
            .find_map(|c| c.calibration.clone());
    }
}

/// Resident memory of a process (Linux `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = text
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Every service of the daemon.
pub struct ServiceManager {
    db: Db,
    files: DaemonFiles,
    settings: ServiceSettings,
    services: Mutex<HashMap<String, Arc<ServiceRt>>>,
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("service {0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Io(String),
}

impl ServiceManager {
    pub fn new(db: Db, files: DaemonFiles, settings: ServiceSettings) -> Arc<ServiceManager> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(settings.request_timeout)
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default();
        Arc::new(ServiceManager {
            db,
            files,
            settings,
            services: Mutex::new(HashMap::new()),
            http,
        })
    }

    pub fn get(&self, name: &str) -> Result<Arc<ServiceRt>, ServiceError> {
        self.services
            .lock()
            .ok()
            .and_then(|m| m.get(name).cloned())
            .ok_or_else(|| ServiceError::NotFound(name.to_string()))
    }

    fn token_path(&self, name: &str) -> PathBuf {
        self.files
            .dir
            .join("services")
            .join(format!("{name}.token"))
    }

    /// Starts every service of the registry (after a daemon start): their endpoints, and their
    /// instances unless suspended.
    pub async fn restore(self: &Arc<Self>) -> Result<(), ServiceError> {
        let rows = self.db.run(|r| r.service_rows()).await?;
        for row in rows {
            let name = row.name.clone();
            if let Err(e) = self.launch(row).await {
                tracing::error!(service = %name, error = %e, "cannot restore a service");
            }
        }
        Ok(())
    }

    /// Creates a service in the registry and starts it.
    pub async fn create(self: &Arc<Self>, row: ServiceRow) -> Result<Arc<ServiceRt>, ServiceError> {
        let r = row.clone();
        self.db.run(move |reg| reg.create_service(&r)).await?;
        self.launch(row).await
    }

    /// Binds the endpoint (the port it had when it is free) and starts the instances.
    async fn launch(self: &Arc<Self>, row: ServiceRow) -> Result<Arc<ServiceRt>, ServiceError> {
        let listener = match row.port {
            Some(p) => match tokio::net::TcpListener::bind(("127.0.0.1", p)).await {
                Ok(l) => l,
                Err(_) => tokio::net::TcpListener::bind(("127.0.0.1", 0))
                    .await
                    .map_err(|e| ServiceError::Io(format!("cannot listen on 127.0.0.1: {e}")))?,
            },
            None => tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(|e| ServiceError::Io(format!("cannot listen on 127.0.0.1: {e}")))?,
        };
        let port = listener
            .local_addr()
            .map_err(|e| ServiceError::Io(e.to_string()))?
            .port();
        if row.port != Some(port) {
            let name = row.name.clone();
            self.db
                .run(move |r| r.set_service_port(&name, port))
                .await?;
        }
        // The endpoint token survives daemon restarts: clients keep working.
        let token_path = self.token_path(&row.name);
        let token = match std::fs::read_to_string(&token_path) {
            Ok(t) if !t.trim().is_empty() => Secret::new(t.trim()),
            _ => {
                let t = Secret::random().map_err(|e| ServiceError::Io(e.to_string()))?;
                if let Some(dir) = token_path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| ServiceError::Io(e.to_string()))?;
                }
                write_private(&token_path, t.expose().as_bytes())
                    .map_err(|e| ServiceError::Io(e.to_string()))?;
                t
            }
        };
        let pool = row.pool.clone();
        let pool_vcpu = self
            .db
            .run(move |r| r.pool(&pool))
            .await?
            .map_or(1.0, |p| p.vcpu);
        let suspended = row.status == ServiceStatus::Suspended.as_str();
        let auto_suspended = suspended
            && row
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with(IDLE_SUSPENDED));
        let scaling = Scaling {
            min_instances: row.min_instances,
            max_instances: row.max_instances,
            auto_suspend_secs: row.spec.auto_suspend_secs,
        };
        let rt = Arc::new(ServiceRt {
            logs: LogRing::new(Some(
                self.files
                    .dir
                    .join("logs")
                    .join(format!("{}.log", row.name)),
            )),
            token,
            port,
            state: Mutex::new(SvcState {
                status: if suspended {
                    ServiceStatus::Suspended
                } else {
                    ServiceStatus::Pending
                },
                message: row.message.clone().filter(|_| suspended),
                instances: Vec::new(),
                supervisors: None,
                scaling,
                auto_suspended,
                last_call: Instant::now(),
                queue_ms: None,
                deep_since: None,
                capped: false,
                waking: None,
                cold_start: None,
                calls: 0,
                generations: 0,
            }),
            metrics: Metrics::default(),
            cancel: CancellationToken::new(),
            next: AtomicUsize::new(0),
            changed: Notify::new(),
            http: self.http.clone(),
            db: self.db.clone(),
            settings: self.settings.clone(),
            pool_vcpu,
            row,
        });
        if let Ok(mut m) = self.services.lock() {
            m.insert(rt.row.name.clone(), rt.clone());
        }
        let app = Router::new()
            .fallback(post(proxy))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .layer(axum::middleware::from_fn(
                crate::platform::local::instance::refuse_oversized,
            ))
            .with_state(rt.clone());
        let stop = rt.cancel.clone();
        let limits = self.settings.endpoint;
        let refusals = rt.clone();
        tokio::spawn(super::endpoint::serve(
            listener,
            app,
            limits,
            stop,
            move |line: &str| refusals.logs.push(0, "supervisor", line),
        ));
        let sampler = rt.clone();
        tokio::spawn(async move {
            let every = sampler.settings.sample_every;
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = sampler.cancel.cancelled() => break,
                    _ = tick.tick() => sampler.metrics.sample(every, sampler.memory()),
                }
            }
        });
        rt.logs.push(
            0,
            "supervisor",
            &format!("endpoint listening on 127.0.0.1:{port}"),
        );
        if !suspended {
            rt.start_instances();
        }
        Ok(rt)
    }

    pub fn overlay(&self, services: &mut [Service]) {
        for s in services {
            if let Ok(rt) = self.get(&s.name) {
                rt.overlay(s);
            }
        }
    }

    pub async fn suspend(&self, name: &str) -> Result<(), ServiceError> {
        let rt = self.get(name)?;
        rt.stop_instances(ServiceStatus::Suspended, None);
        rt.logs
            .event(None, "INFO", "SERVICE.STATUS_CHANGE", "service suspended");
        let name = name.to_string();
        self.db
            .run(move |r| r.set_service_status(&name, "SUSPENDED", None))
            .await?;
        Ok(())
    }

    pub async fn resume(&self, name: &str) -> Result<(), ServiceError> {
        let rt = self.get(name)?;
        let pool_name = rt.row.pool.clone();
        let pool = self.db.run(move |r| r.pool(&pool_name)).await?;
        if pool.is_some_and(|p| p.state == crate::domain::PoolState::Suspended) {
            return Err(ServiceError::Conflict(format!(
                "compute pool {} is SUSPENDED: resume it first (`hugflake resume pool {}`)",
                rt.row.pool, rt.row.pool
            )));
        }
        if rt.status().0 == ServiceStatus::Running {
            return Ok(());
        }
        rt.logs
            .event(None, "INFO", "SERVICE.STATUS_CHANGE", "service resumed");
        rt.start_instances();
        Ok(())
    }

    /// `ALTER SERVICE … SET`: new bounds, recorded and applied by the autoscaler's next look.
    pub async fn alter(&self, name: &str, change: ScalingChange) -> Result<Scaling, ServiceError> {
        let rt = self.get(name)?;
        let next = change.apply(rt.scaling()).map_err(ServiceError::Conflict)?;
        // More instances kept running must fit the pool's memory, as at import.
        let (running, status) = (rt.target(), rt.status().0);
        if next.base() > running
            && matches!(status, ServiceStatus::Running | ServiceStatus::Pending)
        {
            let pool_name = rt.row.pool.clone();
            let budget = self
                .db
                .run(move |r| r.pool(&pool_name))
                .await?
                .map_or(0.0, |p| p.memory_gib);
            let free = budget - self.pool_memory_in_use(&rt.row.pool, None);
            let needs = f64::from(next.base() - running) * rt.row.spec.memory_gib;
            if needs > free + 1e-9 {
                return Err(ServiceError::Conflict(format!(
                    "MIN_INSTANCES {}: {} more instance(s) need ~{needs:.2} GiB and compute pool {} has {:.2} GiB free",
                    next.min_instances,
                    next.base() - running,
                    rt.row.pool,
                    free.max(0.0)
                )));
            }
        }
        let n = name.to_string();
        self.db
            .run(move |r| r.set_service_scaling(&n, &next))
            .await?;
        rt.set_scaling(next);
        Ok(next)
    }

    /// Looks at every running service a few times a second and scales it (to zero, out, in).
    pub async fn autoscale(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(AUTOSCALE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            // A service with fixed bounds and no idle suspension, at its size, has nothing to
            // decide: the registry is not read for it four times a second.
            let services: Vec<Arc<ServiceRt>> = self
                .services
                .lock()
                .map(|m| m.values().filter(|s| s.may_scale()).cloned().collect())
                .unwrap_or_default();
            if services.is_empty() {
                continue;
            }
            let pools = match self.db.run(|r| r.pools()).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "autoscaler: cannot read the pools");
                    continue;
                }
            };
            for rt in services {
                let budget = pools
                    .iter()
                    .find(|p| p.name == rt.row.pool)
                    .map_or(0.0, |p| p.memory_gib);
                let free = budget - self.pool_memory_in_use(&rt.row.pool, None);
                let Some((scaling, seen)) = rt.observe(&self.settings.autoscale, free) else {
                    continue;
                };
                rt.apply(decide(&scaling, &self.settings.autoscale, &seen));
            }
        }
    }

    /// Stops a service's instances for good, leaving it FAILED with the reason (a deploy that
    /// cannot work).
    pub fn halt(&self, name: &str, message: &str) {
        if let Ok(rt) = self.get(name) {
            rt.logs
                .event(None, "ERROR", "SERVICE.STATUS_CHANGE", message);
            rt.stop_instances(ServiceStatus::Failed, Some(message.to_string()));
        }
    }

    pub async fn drop_service(&self, name: &str) -> Result<(), ServiceError> {
        let rt = self.get(name)?;
        rt.stop_instances(ServiceStatus::Deleting, None);
        rt.cancel.cancel();
        let n = name.to_string();
        self.db.run(move |r| r.delete_service(&n)).await?;
        if let Ok(mut m) = self.services.lock() {
            m.remove(name);
        }
        let _ = std::fs::remove_file(self.token_path(name));
        Ok(())
    }

    /// Suspends every service of a pool (the pool is being suspended).
    pub async fn suspend_pool(&self, pool: &str) -> Result<(), ServiceError> {
        let names: Vec<String> = self
            .services
            .lock()
            .map(|m| {
                m.values()
                    .filter(|s| s.row.pool == pool)
                    .map(|s| s.row.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        for n in names {
            self.suspend(&n).await?;
        }
        Ok(())
    }

    /// Memory the running (or starting) services of a pool need, except `except`.
    pub fn pool_memory_in_use(&self, pool: &str, except: Option<&str>) -> f64 {
        self.services
            .lock()
            .map(|m| {
                m.values()
                    .filter(|s| s.row.pool == pool && Some(s.row.name.as_str()) != except)
                    .filter(|s| {
                        matches!(
                            s.status().0,
                            ServiceStatus::Pending | ServiceStatus::Running | ServiceStatus::Failed
                        )
                    })
                    .map(|s| s.row.spec.memory_gib * f64::from(s.target()))
                    .sum()
            })
            .unwrap_or(0.0)
    }

    /// Stops every instance (the daemon is stopping).
    pub fn shutdown(&self) {
        if let Ok(m) = self.services.lock() {
            for s in m.values() {
                s.cancel.cancel();
            }
        }
    }
}

/// The service endpoint: checks the token and the state, then forwards to a READY instance.
async fn proxy(
    State(rt): State<Arc<ServiceRt>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let name = &rt.row.name;
    if !presented_token(&headers).is_some_and(|t| rt.token.matches(t)) {
        return error(
            StatusCode::UNAUTHORIZED,
            format!(
                "missing or wrong token for service {name}: send `Authorization: Snowflake Token=\"<token>\"` with the service's token"
            ),
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => return crate::platform::local::instance::rejected(e),
    };
    rt.begin_call();
    // Ends the call when the answer is sent, or when the caller goes away mid-call.
    let mut call = CallGuard {
        rt: rt.clone(),
        queue_ms: None,
    };
    let (resp, queue_ms) = forward(&rt, &uri, body).await;
    call.queue_ms = queue_ms;
    resp
}

struct CallGuard {
    rt: Arc<ServiceRt>,
    queue_ms: Option<f64>,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.rt.end_call(self.queue_ms);
    }
}

/// Forwards a call to a READY instance (waiting for a cold start when a call resumed the
/// service); the answer, and how long its rows queued in the instance.
async fn forward(rt: &Arc<ServiceRt>, uri: &Uri, body: Bytes) -> (Response, Option<f64>) {
    let name = &rt.row.name;
    let (mut status, mut message) = rt.status();
    if status == ServiceStatus::Suspended {
        let resp = error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("service {name} is SUSPENDED: resume it with `hugflake resume service {name}`"),
        );
        return (resp, None);
    }
    let mut ready = rt.ready_instances();
    // Resumed by a call: wait for the cold start rather than fail (the caller sees it in its
    // latency), as SPCS's AUTO_RESUME does.
    if ready.is_empty() && rt.waking() {
        let deadline = Instant::now() + rt.settings.request_timeout;
        while ready.is_empty() && rt.waking() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            ready = rt.ready_instances();
        }
        (status, message) = rt.status();
    }
    if ready.is_empty() {
        let mut resp = error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "no instance of service {name} is ready (status {status}{})",
                message.map(|m| format!(": {m}")).unwrap_or_default()
            ),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return (resp, None);
    }
    let (port, token) = &ready[rt.next.fetch_add(1, Ordering::Relaxed) % ready.len()];
    let started = Instant::now();
    rt.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let result = rt
        .http
        .post(format!("http://127.0.0.1:{port}{}", uri.path()))
        .bearer_auth(token.expose())
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let mut queue_ms = None;
    let resp = match result {
        Ok(r) => {
            let code = r.status();
            queue_ms = r
                .headers()
                .get(QUEUE_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<f64>().ok());
            match r.bytes().await {
                Ok(b) => (
                    StatusCode::from_u16(code.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
                    [(header::CONTENT_TYPE, "application/json")],
                    b,
                )
                    .into_response(),
                Err(e) => error(StatusCode::BAD_GATEWAY, format!("instance answer cut: {e}")),
            }
        }
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            format!(
                "instance of {name} did not answer: {}",
                if e.is_timeout() {
                    "timed out".to_string()
                } else {
                    e.to_string()
                }
            ),
        ),
    };
    rt.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    rt.metrics.record(
        started.elapsed().as_secs_f64() * 1000.0,
        resp.status().is_server_error(),
    );
    (resp, queue_ms)
}
