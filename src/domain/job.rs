//! Import jobs: one stage enum for both platforms (DESIGN.md "Import is a job with stages").

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::platform::Health;

/// The stages of an import, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Resolve,
    Download,
    Verify,
    Register,
    Build,
    Deploy,
    Ready,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Resolve,
        Stage::Download,
        Stage::Verify,
        Stage::Register,
        Stage::Build,
        Stage::Deploy,
        Stage::Ready,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Resolve => "resolve",
            Stage::Download => "download",
            Stage::Verify => "verify",
            Stage::Register => "register",
            Stage::Build => "build",
            Stage::Deploy => "deploy",
            Stage::Ready => "ready",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn health(self) -> Health {
        match self {
            JobState::Queued | JobState::Running => Health::Pending,
            JobState::Done => Health::Ok,
            JobState::Failed => Health::Fault,
            JobState::Cancelled => Health::Idle,
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One import job as the job list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    pub id: String,
    /// The Hugging Face repo being imported.
    pub handle: String,
    pub model: String,
    pub version: String,
    /// Where it goes: a pool locally, `DB.SCHEMA` on Snowflake.
    pub target: String,
    pub state: JobState,
    /// The stage running now, or the last one reached.
    pub stage: Option<Stage>,
    pub created_on: DateTime<Utc>,
    pub updated_on: DateTime<Utc>,
    pub finished_on: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// What an import asks for; every default is filled in (and shown) before the job starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportSpec {
    /// The Hugging Face repo, e.g. `sentence-transformers/all-MiniLM-L6-v2`.
    pub handle: String,
    #[serde(default = "main_revision")]
    pub revision: String,
    /// The task to serve; detected from the repo when left out.
    #[serde(default)]
    pub task: Option<String>,
    pub model: String,
    pub version: String,
    pub pool: String,
    pub service: String,
    pub min_instances: u32,
    pub max_instances: u32,
    /// Seconds without calls after which a service with `min_instances = 0` suspends (resumed by
    /// the next call); `None`: the platform's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_suspend_secs: Option<u64>,
    /// Snowflake: what each instance asks of its node (the deploy spec's `service.gpu`, `cpu`,
    /// `memory`, e.g. `1`, `2`, `8Gi`); `None`: Snowflake's defaults.
    #[serde(default, skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
    /// Snowflake: the *name* of a secret holding the Hugging Face token, for gated repos (a raw
    /// token never leaves this machine). Ignored locally, where the HF token is used directly.
    #[serde(default)]
    pub token_secret: Option<String>,
    /// The repo's library (`transformers`, `sentence-transformers`, `open_clip`...), when the
    /// caller knows it: Snowflake refuses libraries its import cannot serve before starting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<String>,
    /// The arithmetic the local service's encoder uses (`--precision`); Snowflake refuses
    /// anything but fp32 (its container runs transformers).
    #[serde(default)]
    pub precision: super::Precision,
}

/// Resource requests of one service instance on Snowflake.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        self.gpu.is_none() && self.cpu.is_none() && self.memory.is_none()
    }

    /// `1 GPU · 4 vCPU · 16Gi`, what was asked.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(g) = self.gpu {
            parts.push(format!("{g} GPU"));
        }
        if let Some(c) = &self.cpu {
            parts.push(format!("{c} vCPU"));
        }
        if let Some(m) = &self.memory {
            parts.push(m.clone());
        }
        parts.join(" · ")
    }

    /// The memory request in GiB (`8Gi` → 8, `512Mi` → 0.5).
    pub fn memory_gib(&self) -> Option<f64> {
        let m = self.memory.as_deref()?;
        let digits = m
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(m.len());
        let (n, unit) = m.split_at(digits);
        let n: f64 = n.parse().ok()?;
        match unit {
            "Gi" | "GiB" => Some(n),
            "Mi" | "MiB" => Some(n / 1024.0),
            _ => None,
        }
    }

    /// Checks the forms Snowflake documents: CPU a positive number (`0.5`, `2`), memory a number
    /// with a unit (`512Mi`, `8Gi`, `8GiB`).
    pub fn check(&self) -> Result<(), String> {
        if let Some(c) = &self.cpu
            && !c.parse::<f64>().is_ok_and(|v| v > 0.0 && v.is_finite())
        {
            return Err(format!(
                "--cpu {c}: a positive number of vCPUs, e.g. 2 or 0.5"
            ));
        }
        if let Some(m) = &self.memory
            && !self.memory_gib().is_some_and(|g| g > 0.0)
        {
            return Err(format!(
                "--memory {m}: a size with a unit, e.g. 8Gi or 512Mi (Gi, Mi, GiB, MiB)"
            ));
        }
        if self.gpu == Some(0) {
            return Err("--gpu 0: leave it out for a CPU service".into());
        }
        Ok(())
    }
}

fn main_revision() -> String {
    "main".into()
}

impl ImportSpec {
    /// SPCS's rule for a service's instance bounds: MAX_INSTANCES at least 1, MIN_INSTANCES at most
    /// MAX_INSTANCES (MIN_INSTANCES 0 starts one, like Snowflake). Refused, never adjusted.
    pub fn check_instances(&self) -> Result<(), String> {
        self.scaling().check()
    }

    pub fn scaling(&self) -> super::Scaling {
        super::Scaling {
            min_instances: self.min_instances,
            max_instances: self.max_instances,
            auto_suspend_secs: self.auto_suspend_secs,
        }
    }

    /// The defaults of DESIGN.md "Names": model = repo name upper-cased with non-alphanumerics as
    /// `_`, version `V1`, service `<MODEL>_SVC`.
    pub fn with_defaults(handle: &str, pool: &str) -> ImportSpec {
        let model = default_model_name(handle);
        ImportSpec {
            handle: handle.to_string(),
            revision: main_revision(),
            task: None,
            service: format!("{model}_SVC"),
            model,
            version: "V1".into(),
            pool: pool.to_string(),
            min_instances: 1,
            max_instances: 1,
            auto_suspend_secs: None,
            resources: Resources::default(),
            token_secret: None,
            library: None,
            precision: Default::default(),
        }
    }
}

/// `sentence-transformers/all-MiniLM-L6-v2` → `ALL_MINILM_L6_V2`.
pub fn default_model_name(handle: &str) -> String {
    let name = handle.rsplit('/').next().unwrap_or(handle);
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, 'M');
    }
    out
}

/// The state of one stage of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageState {
    Pending,
    Running,
    Done,
    Failed,
    Skipped,
}

impl StageState {
    pub fn as_str(self) -> &'static str {
        match self {
            StageState::Pending => "pending",
            StageState::Running => "running",
            StageState::Done => "done",
            StageState::Failed => "failed",
            StageState::Skipped => "skipped",
        }
    }
}

/// One stage of a job: when it ran, how many bytes it moved, how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub stage: Stage,
    pub state: StageState,
    pub started_on: Option<DateTime<Utc>>,
    pub finished_on: Option<DateTime<Utc>>,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    pub error: Option<String>,
}

/// Download progress of one file of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileProgress {
    pub path: String,
    pub size: u64,
    pub done: u64,
    pub reused: bool,
}

/// A line of a job's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobLogLine {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub line: String,
}

/// Everything about one job: the Imports pane's detail view and `hugflake import`'s progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDetail {
    pub summary: JobSummary,
    pub spec: ImportSpec,
    pub stages: Vec<StageRecord>,
    #[serde(default)]
    pub files: Vec<FileProgress>,
    /// Log lines after the `since` asked for (all when none).
    #[serde(default)]
    pub log: Vec<JobLogLine>,
}

impl JobDetail {
    pub fn stage(&self, stage: Stage) -> Option<&StageRecord> {
        self.stages.iter().find(|s| s.stage == stage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_follow_the_design() {
        let s = ImportSpec::with_defaults("sentence-transformers/all-MiniLM-L6-v2", "LOCAL_CPU");
        assert_eq!(s.model, "ALL_MINILM_L6_V2");
        assert_eq!(s.service, "ALL_MINILM_L6_V2_SVC");
        assert_eq!(s.version, "V1");
        assert_eq!(default_model_name("dmis-lab/biobert-v1.1"), "BIOBERT_V1_1");
        assert_eq!(default_model_name("org/3d-net"), "M3D_NET");
    }
}

/// One batch run (`hugflake batch ...`), as this machine recorded it: batch work runs from the
/// command line on either platform, so its record lives in the local data dir, not in a platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRun {
    pub id: String,
    /// `embed`, `entities`, `classify-images`, `search`.
    pub kind: String,
    /// `local` or `snowflake`.
    pub platform: String,
    pub service: String,
    /// The file, folder or table read.
    pub input: String,
    pub state: JobState,
    pub done: u64,
    pub failed: u64,
    /// Rows skipped before any call (empty, not UTF-8, ...).
    pub skipped: u64,
    /// Rows to compute (0 while unknown, e.g. SQL running in the account).
    pub total: u64,
    /// Rows already current in the cache.
    pub unchanged: u64,
    pub started_on: DateTime<Utc>,
    pub updated_on: DateTime<Utc>,
    pub finished_on: Option<DateTime<Utc>>,
    /// The last word: the summary, or why it failed or stopped.
    pub message: Option<String>,
}

impl BatchRun {
    /// Rows per second so far.
    pub fn rate(&self) -> f64 {
        let end = self.finished_on.unwrap_or(self.updated_on);
        let secs = (end - self.started_on).num_milliseconds() as f64 / 1000.0;
        if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        }
    }
}
