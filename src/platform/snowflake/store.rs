//! The Snowflake platform's import jobs on disk: each job's detail, its statement handles and
//! how much of each job service's log was shown, in `jobs.json` of the connection's data dir, so
//! a restarted hugflake re-attaches to an import that is still running.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::SnowflakePlatform;
use crate::domain::{JobDetail, JobLogLine, JobState, JobSummary, Stage, StageState};
use crate::platform::{PlatformError, Result};

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
    pub(super) path: PathBuf,
    pub(super) jobs: Mutex<Vec<SfJob>>,
    pub(super) driving: Mutex<HashSet<String>>,
    pub(super) changed: Notify,
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

    pub(super) fn save(&self, jobs: &[SfJob]) {
        let text = serde_json::to_vec_pretty(jobs).unwrap_or_default();
        if let Err(e) = crate::platform::local::write_private(&self.path, &text) {
            tracing::error!(error = %e, "cannot save Snowflake jobs");
        }
    }

    pub(super) fn update(&self, id: &str, f: impl FnOnce(&mut SfJob)) {
        if let Ok(mut jobs) = self.jobs.lock() {
            if let Some(j) = jobs.iter_mut().find(|j| j.detail.summary.id == id) {
                f(j);
                j.detail.summary.updated_on = Utc::now();
            }
            self.save(&jobs);
        }
        self.changed.notify_waiters();
    }

    pub(super) fn get(&self, id: &str) -> Option<SfJob> {
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

    pub(super) fn log(&self, id: &str, line: &str) {
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

    pub(super) fn stage(&self, id: &str, stage: Stage, state: StageState, error: Option<String>) {
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

    pub(super) fn finish(&self, id: &str, state: JobState, error: Option<String>, line: &str) {
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
            super::jobs::spawn_driver(p, id);
        }
    }
}
