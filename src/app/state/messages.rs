//! What workers send the state (`Msg`) and what the state asks the event loop to do (`Effect`),
//! with the small types they carry.

use super::*;

/// How the app reaches its platform.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    Connecting,
    Connected {
        kind: PlatformKind,
        description: String,
    },
    Failed(String),
}

/// A change to the platform the user asked for (after confirming).
#[derive(Debug, Clone, PartialEq)]
pub enum PlatformOp {
    CancelJob(String),
    RetryJob(String),
    SuspendPool(String),
    ResumePool(String),
    SuspendService(String),
    ResumeService(String),
    /// `ALTER SERVICE … SET`, with the plan shown in the confirmation.
    AlterService {
        service: String,
        change: crate::domain::ScalingChange,
        plan: Vec<String>,
    },
    /// Delete one cached revision of a repo from the HF cache at `root` (blobs other revisions
    /// link to stay; a revision a registered version uses is refused).
    DeleteCached {
        root: std::path::PathBuf,
        repo: String,
        commit: String,
        bytes: u64,
    },
}

impl PlatformOp {
    /// What it will do, in words, for the confirmation and the status line.
    pub fn describe(&self) -> String {
        match self {
            PlatformOp::CancelJob(id) => {
                format!("cancel job {id} (finished downloads stay in the cache)")
            }
            PlatformOp::RetryJob(id) => format!("retry job {id} from its first unfinished stage"),
            PlatformOp::SuspendPool(p) => {
                format!("suspend compute pool {p} and every service on it")
            }
            PlatformOp::ResumePool(p) => {
                format!("resume compute pool {p} (its services stay suspended)")
            }
            PlatformOp::SuspendService(s) => {
                format!("suspend service {s}: its instances stop and calls get 503")
            }
            PlatformOp::ResumeService(s) => {
                format!("resume service {s}: its instances start again")
            }
            PlatformOp::AlterService { service, plan, .. } => {
                format!("change service {service}: {}", plan.join("; "))
            }
            PlatformOp::DeleteCached {
                repo,
                commit,
                bytes,
                ..
            } => format!(
                "delete {repo}@{} from the Hugging Face cache (up to {}; files other revisions use stay)",
                &commit[..commit.len().min(12)],
                crate::domain::units::bytes(*bytes)
            ),
        }
    }
}

/// A short message in the status line.
#[derive(Debug, Clone, PartialEq)]
pub struct Flash {
    pub text: String,
    pub error: bool,
    pub at: DateTime<Utc>,
}

/// What the event loop must do after an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Refresh,
    Quit,
    /// Search the Hub (debounced by the loop; stale generations are dropped).
    HubSearch(SearchRequest),
    /// Fetch a model's details, with the pool to check the fit against.
    HubDetails {
        handle: String,
        pool: Option<(String, f64)>,
    },
    /// Download a model's `main` revision into the HF cache.
    Download(String),
    /// Start an import job.
    Import(ImportSpec),
    /// Fetch a job's stages, files and log.
    JobDetail(String),
    /// Talk to another platform from now on.
    SwitchPlatform(PlatformKind),
    /// Read a service's functions (what the Query pane can do with it).
    Functions {
        service: String,
        model: Option<String>,
        version: Option<String>,
    },
    /// Call a service from the Query pane.
    Query(QueryRequest),
    /// Call two services with the same inputs (`:compare`).
    Compare(crate::app::query::CompareRequest),
    /// Put text on the clipboard (OSC 52: works over SSH).
    Clipboard(String),
    /// Read a service's containers, endpoints, metrics and log tail.
    ServiceDetail(String),
    /// Read the log of a service's instance runs before their last restart.
    PreviousLogs(String),
    /// Write lines to a file in the working directory.
    SaveLogs {
        service: String,
        lines: Vec<String>,
    },
    Platform(PlatformOp),
}

/// A download started from the Candidates pane.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadState {
    pub done: u64,
    pub total: u64,
    pub files_done: usize,
    pub files: usize,
    /// Bytes per second.
    pub rate: f64,
    pub eta_secs: Option<u64>,
    /// `None` while running; the outcome when finished.
    pub finished: Option<Result<String, String>>,
}

impl DownloadState {
    pub fn from_totals(
        t: &crate::hub::download::ProgressTotals,
        finished: Option<Result<String, String>>,
    ) -> DownloadState {
        DownloadState {
            done: t.done(),
            total: t.total,
            files_done: t.files_done,
            files: t.files,
            rate: t.rate(),
            eta_secs: if finished.is_some() {
                Some(0)
            } else {
                t.eta_secs()
            },
            finished,
        }
    }
}

/// Messages from workers.
#[derive(Debug, Clone)]
pub enum Msg {
    Link(Link),
    Snapshot(Result<Snapshot, String>),
    /// The batch runs recorded in the data dir (read with each snapshot).
    BatchRuns(Vec<crate::domain::BatchRun>),
    Candidates(Result<Vec<Candidate>, String>),
    /// What `hugflake cache prune` would free in each repo, measured after the candidates were
    /// read.
    CachePrunable(std::collections::BTreeMap<String, u64>),
    HubPage {
        generation: u64,
        append: bool,
        result: Result<SearchPage, String>,
    },
    HubDetails {
        handle: String,
        result: Result<Box<ModelDetails>, String>,
    },
    /// A details request superseded before it was sent; it may be asked again later.
    HubDetailsSkipped(String),
    /// Progress or the end of a download.
    Download {
        handle: String,
        state: DownloadState,
    },
    ImportStarted(Result<JobSummary, String>),
    JobDetail {
        id: String,
        result: Result<Box<JobDetail>, String>,
    },
    /// A platform change finished: what happened, in words.
    PlatformDone(Result<String, String>),
    Functions {
        service: String,
        result: Result<Vec<crate::domain::Function>, String>,
    },
    QueryDone {
        request: QueryRequest,
        result: Result<Box<QueryResult>, String>,
    },
    Compared(Result<Box<crate::platform::compare::Comparison>, String>),
    ServiceDetail(Box<ServiceDetail>),
    PreviousLogs {
        service: String,
        result: Result<Vec<crate::domain::LogLine>, String>,
    },
}
