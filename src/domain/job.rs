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
