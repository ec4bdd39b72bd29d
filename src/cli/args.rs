//! The command line as clap parses it: the TUI by default, commands for scripts and CI. Each
//! command's arguments are one struct, handed whole to the file that runs it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hugflake",
    version,
    about = "Bring Hugging Face models into a model registry, serve them, watch their health and try them",
    long_about = "hugflake is a terminal dashboard for importing Hugging Face models into a model registry, \
                  serving them and watching their health. Without a command it opens the TUI on the local \
                  platform (a daemon on 127.0.0.1 it starts when none runs).\n\n\
                  Exit codes: 0 ok, 1 failure, 2 usage error. JSON goes to stdout, messages to stderr.",
    propagate_version = true
)]
pub struct Cli {
    /// Config file (default: $HUGFLAKE_CONFIG, else ~/.config/hugflake/config.toml)
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Log at debug level (the log file's path: `hugflake doctor`)
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// The platform to use (default: [platform] default of the config, "local")
    #[arg(long, global = true, value_enum, env = "HUGFLAKE_PLATFORM")]
    pub platform: Option<crate::config::PlatformChoice>,

    /// On-call screens: hide and refuse every action that changes something
    #[arg(long, global = true)]
    pub read_only: bool,

    /// The Snowflake connection of connections.toml (implies --platform snowflake)
    #[arg(long, global = true, value_name = "NAME")]
    pub connection: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the terminal dashboard (the default)
    Tui,
    /// Run the local platform daemon in the foreground (control API on a Unix socket in the data
    /// dir; service endpoints on 127.0.0.1)
    Serve {
        /// Stop the running daemon instead
        #[arg(long)]
        stop: bool,
    },
    /// Show the platform: daemon, compute pools and services (starts the daemon if needed)
    Status(StatusArgs),
    /// Search the Hugging Face Hub
    Search(SearchArgs),
    /// Show a Hub model: metadata, files and sizes, model card, and the import verdicts
    Show(ShowArgs),
    /// Download a model revision into the shared Hugging Face cache (verified, resumable)
    Download(DownloadArgs),
    /// Run a model: through a service's endpoint (`predict SERVICE`), or straight from a
    /// directory with no daemon (`predict --model-dir DIR`)
    Predict(PredictArgs),
    /// Import a Hugging Face model into the registry and serve it: resolve, download, verify,
    /// register, build, deploy, first call
    Import(ImportArgs),
    /// List import jobs, or show one with its stages and log
    Jobs(JobsArgs),
    /// Cancel a queued or running import job
    Cancel { job: String },
    /// Run a failed or cancelled import job again from its first unfinished stage
    Retry { job: String },
    /// Show a service's container logs
    Logs(LogsArgs),
    /// Show a service's events: instances started, ready, exited or killed, restarted; suspended and
    /// resumed (SPCS_GET_EVENTS on Snowflake)
    Events(ServiceArgs),
    /// Show a service's metrics samples (requests, errors, latency, queue, memory)
    Metrics(ServiceArgs),
    /// Batch work over a table of notes or a folder of images: through a local service, or as SQL
    /// run in the Snowflake account
    Batch {
        #[command(subcommand)]
        command: crate::batch::job::Job,
    },
    /// Suspend a compute pool (and its services) or a service
    Suspend(ObjectArgs),
    /// Resume a compute pool or a service
    Resume(ObjectArgs),
    /// Change a service's instance bounds and idle suspension (`ALTER SERVICE … SET
    /// MIN_INSTANCES/MAX_INSTANCES/AUTO_SUSPEND_SECS`): says what will change and asks first
    Scale(ScaleArgs),
    /// Drop a service, a model, or one version of a model (`drop version MODEL V1`)
    Drop(DropArgs),
    /// Run one service instance (started by the daemon; not for direct use)
    #[command(hide = true)]
    Instance(InstanceArgs),
    /// List the curated catalog and the models in the local Hugging Face cache
    Catalog(JsonArgs),
    /// Tend the shared Hugging Face cache: list, verify, remove, prune
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Show the effective configuration and where each setting came from
    Config(ConfigArgs),
    /// Show every path hugflake uses, where each setting came from, and the daemon's state
    Doctor(JsonArgs),
}

/// `hugflake status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Print JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Exit with 3 when a pool or service is faulty (FAILED, INTERNAL_ERROR, a pool error),
    /// for cron and on-call scripts
    #[arg(long)]
    pub fail_on_unhealthy: bool,
    /// Keep watching: one line per change (a service's status or ready instances, a pool's state,
    /// an import job's state, the platform going away or coming back) as it happens, until
    /// interrupted; with --fail-on-unhealthy, exit 3 at the first fault
    #[arg(long)]
    pub watch: bool,
}

/// `hugflake search`.
#[derive(Debug, Clone, clap::Args)]
pub struct SearchArgs {
    /// Words to search for in model names
    pub query: Option<String>,
    /// Only this pipeline tag (task), e.g. token-classification
    #[arg(long)]
    pub task: Option<String>,
    /// Only this author or organisation
    #[arg(long)]
    pub author: Option<String>,
    /// Only this library, e.g. sentence-transformers
    #[arg(long)]
    pub library: Option<String>,
    /// Sort order, most first
    #[arg(long, value_enum, default_value_t = SortKey::Downloads)]
    pub sort: SortKey,
    /// How many models to list
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Print JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// `hugflake show`.
#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    /// The model's repo id, e.g. sentence-transformers/all-MiniLM-L6-v2
    pub handle: String,
    /// Branch, tag or commit
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// Print JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// `hugflake download`.
#[derive(Debug, Clone, clap::Args)]
pub struct DownloadArgs {
    /// The model's repo id
    pub handle: String,
    /// Branch, tag or commit (pinned to its commit before anything is fetched)
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// Only this file (repeat for more)
    #[arg(long = "include", value_name = "PATH")]
    pub include: Vec<String>,
    /// Print JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// `hugflake predict`.
#[derive(Debug, Clone, clap::Args)]
pub struct PredictArgs {
    /// The service to call (its REST endpoint); leave out to use --model-dir
    #[arg(value_name = "SERVICE", conflicts_with = "model_dir")]
    pub service: Option<String>,
    /// The service method: ENCODE, ENCODE_QUERY, ENCODE_DOCUMENT or __CALL__ (default: ENCODE,
    /// else the service's first)
    #[arg(long, requires = "service")]
    pub method: Option<String>,
    /// The model directory (a Hub snapshot, e.g. from `hugflake download`)
    #[arg(long, value_name = "DIR", required_unless_present_any = ["service", "compare"])]
    pub model_dir: Option<PathBuf>,
    /// Send the same inputs to two services and show both answers side by side, with each one's
    /// latency and what differs (the cosine between embeddings, entities only one found, both
    /// label rankings)
    #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with_all = ["service", "model_dir", "method"])]
    pub compare: Vec<String>,
    /// With --compare on embedding services: rank the demo clinical notes against the first text
    /// with each service and show both top 5 with the rank changes
    #[arg(long, requires = "compare")]
    pub search: bool,
    /// What to run; detected from the directory's files when left out
    #[arg(long, value_parser = crate::inference::parse_task)]
    pub task: Option<crate::inference::Task>,
    /// An input text (repeat for more)
    #[arg(long = "text", value_name = "TEXT")]
    pub text: Vec<String>,
    /// Read inputs from standard input, one per line
    #[arg(long)]
    pub stdin: bool,
    /// Zero-shot image classification: the image (PNG or JPEG)
    #[arg(long, value_name = "PATH")]
    pub image: Vec<PathBuf>,
    /// Zero-shot image classification: candidate labels, comma-separated
    #[arg(long, value_name = "A,B,C")]
    pub labels: Option<String>,
    /// Zero-shot image classification: the prompt template for each label (default: "this is a
    /// photo of {}" for open_clip models, the transformers pipeline's "This is a photo of {}."
    /// for CLIPModel ones)
    #[arg(long)]
    pub template: Option<String>,
    /// Zero-shot image classification: the text tower's directory (default: beside the model,
    /// or its Hub repo in the HF cache)
    #[arg(long, value_name = "DIR")]
    pub text_tower: Option<PathBuf>,
    /// Texts per forward pass (per request through a service)
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batch_size: u32,
    /// With --model-dir: the encoder's arithmetic, fp32, int8 or bf16. A reduced precision runs
    /// the calibration check against fp32 first (its figures go to stderr) and is refused below
    /// the gate, as a service would refuse it
    #[arg(long, default_value = "fp32", requires = "model_dir")]
    pub precision: crate::domain::Precision,
    /// Print JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// `hugflake import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The model's repo id, e.g. sentence-transformers/all-MiniLM-L6-v2
    pub handle: String,
    /// Branch, tag or commit (pinned to its commit)
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// sentence-similarity, token-classification, feature-extraction or
    /// zero-shot-image-classification (default: what the repo's files say)
    #[arg(long)]
    pub task: Option<String>,
    /// Registry model name (default: the repo name upper-cased, e.g. ALL_MINILM_L6_V2)
    #[arg(long)]
    pub model: Option<String>,
    /// Version name
    #[arg(long, default_value = "V1")]
    pub version: String,
    /// Compute pool
    #[arg(long, default_value = "LOCAL_CPU")]
    pub pool: String,
    /// Service name (default: <MODEL>_SVC)
    #[arg(long)]
    pub service: Option<String>,
    /// Instances kept running (0 starts one, like Snowflake)
    #[arg(long, default_value_t = 1)]
    pub min_instances: u32,
    /// Instances at most (default: min instances, at least 1); more start while calls queue
    #[arg(long)]
    pub max_instances: Option<u32>,
    /// Local platform: seconds without calls before a service with --min-instances 0 suspends
    /// (the next call resumes it); default 1800, 0 never. On Snowflake set it after the import
    /// with `hugflake scale` (the deploy spec has no such key)
    #[arg(long, value_name = "SECS")]
    pub auto_suspend_secs: Option<u64>,
    /// Snowflake: GPUs each instance asks for (deploy spec `service.gpu`); the pool's instance
    /// family must have them (checked before the import starts)
    #[arg(long, value_name = "N")]
    pub gpu: Option<u32>,
    /// Snowflake: vCPUs each instance asks for (`service.cpu`, e.g. 2 or 0.5)
    #[arg(long, value_name = "VCPUS")]
    pub cpu: Option<String>,
    /// Snowflake: memory each instance asks for (`service.memory`, e.g. 8Gi)
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Snowflake, gated repos: the name of a Snowflake secret holding your HF token
    #[arg(long, value_name = "SECRET")]
    pub token_secret: Option<String>,
    /// Local platform: the encoder's arithmetic, fp32 (default), int8 or bf16. A reduced precision
    /// must pass a calibration check against fp32 when the service loads (int8: mean cosine ≥
    /// 0.995, min ≥ 0.99; bf16: mean ≥ 0.9999), or the service refuses to start. Text models only
    #[arg(long, default_value = "fp32")]
    pub precision: crate::domain::Precision,
    /// Return once the job is queued instead of when the service is RUNNING
    #[arg(long)]
    pub detach: bool,
    /// Stream job events as JSON lines on stdout
    #[arg(long)]
    pub json: bool,
}

/// `hugflake scale`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    pub service: String,
    /// MIN_INSTANCES: instances kept running; 0 lets the service suspend when idle and resume on
    /// the next call
    #[arg(long, value_name = "N")]
    pub min: Option<u32>,
    /// MAX_INSTANCES: instances at most, started while calls queue
    #[arg(long, value_name = "N")]
    pub max: Option<u32>,
    /// AUTO_SUSPEND_SECS: seconds without calls before a service with MIN_INSTANCES 0 suspends
    /// (0: never; Snowflake takes 0 or at least 300)
    #[arg(long, value_name = "SECS")]
    pub auto_suspend_secs: Option<u64>,
    /// Do not ask
    #[arg(long)]
    pub yes: bool,
    /// Print the service as JSON on stdout once changed
    #[arg(long)]
    pub json: bool,
}

/// `hugflake jobs`.
#[derive(Debug, Clone, clap::Args)]
pub struct JobsArgs {
    /// A job id to show
    pub id: Option<String>,
    /// Print JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// `hugflake logs`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    pub service: String,
    /// Keep printing new lines as they arrive
    #[arg(long, short)]
    pub follow: bool,
    /// How many of the newest lines to show first
    #[arg(long, default_value_t = 200)]
    pub tail: usize,
    /// The log of the instance run before its last restart (the container that died), like
    /// `snow spcs service logs --previous-logs`
    #[arg(long, conflicts_with_all = ["follow", "since", "until"])]
    pub previous: bool,
    /// Only this instance (0, 1, …)
    #[arg(long, value_name = "N")]
    pub instance: Option<u32>,
    /// Print JSON lines on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub window: WindowArgs,
}

/// `--since` and `--until` of logs, events and metrics.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WindowArgs {
    /// Only from this time: a duration ago (10m, 2h, 3d) or a time (2026-12-06T10:00:00Z,
    /// "2026-12-06 10:00" UTC)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only up to this time (same forms)
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
}

impl WindowArgs {
    pub fn window(&self) -> Result<crate::domain::window::Window, String> {
        crate::domain::window::Window::parse(
            self.since.as_deref(),
            self.until.as_deref(),
            chrono::Utc::now(),
        )
    }
}

/// A service, and JSON or text.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    pub service: String,
    /// Print JSON on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub window: WindowArgs,
}

/// What `suspend` and `resume` act on, by name.
#[derive(Debug, Clone, clap::Args)]
pub struct ObjectArgs {
    #[arg(value_enum)]
    pub kind: ObjectKind,
    pub name: String,
}

/// `hugflake drop`.
#[derive(Debug, Clone, clap::Args)]
pub struct DropArgs {
    #[arg(value_enum)]
    pub kind: DropKind,
    pub name: String,
    /// The version, for `drop version`
    pub version: Option<String>,
}

/// The hidden `instance` mode.
#[derive(Debug, Clone, clap::Args)]
pub struct InstanceArgs {
    #[arg(long)]
    pub model_dir: PathBuf,
    #[arg(long, value_parser = crate::inference::parse_task)]
    pub task: crate::inference::Task,
    #[arg(long)]
    pub text_dir: Option<PathBuf>,
    #[arg(long)]
    pub hf_cache: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    pub max_batch: usize,
    /// fp32, int8 or bf16 (reduced precisions pass the calibration check first)
    #[arg(long, default_value = "fp32")]
    pub precision: crate::domain::Precision,
}

/// Only `--json`.
#[derive(Debug, Clone, clap::Args)]
pub struct JsonArgs {
    /// Print JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// `hugflake cache ...`.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Every cached repo, largest first: size on disk, revisions (commit, refs, size), last
    /// accessed and modified, and the registered versions that use it
    Ls(JsonArgs),
    /// Re-hash every cached file against the hash its blob is named by (sha256 for LFS files, the
    /// git blob id for the others); corrupt and missing files are listed, exit 1 when any
    Verify {
        /// Only this repo
        repo: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a repo, or one revision of it (`REPO@COMMIT` or `REPO@main`); blobs another revision
    /// still links to stay; a revision a registered version uses is refused
    Rm {
        /// `org/name` or `org/name@REVISION`
        target: String,
        /// Do not ask
        #[arg(long)]
        yes: bool,
    },
    /// Remove revisions no ref points to, blobs nothing links to, and with --older-than revisions
    /// not read for that long (never one a registered version uses)
    Prune {
        /// e.g. 30d, 12h, 2w
        #[arg(long, value_name = "AGE", value_parser = crate::hub::housekeeping::parse_age)]
        older_than: Option<chrono::Duration>,
        /// Do not ask
        #[arg(long)]
        yes: bool,
    },
}

/// `hugflake config`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// Print the built-in default config file instead
    #[arg(long)]
    pub print_default: bool,
}

/// Hub search orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortKey {
    Downloads,
    Likes,
    Trending,
    Modified,
    Created,
}

impl SortKey {
    /// The Hub API's name for it.
    pub fn api_name(self) -> &'static str {
        match self {
            SortKey::Downloads => "downloads",
            SortKey::Likes => "likes",
            SortKey::Trending => "trendingScore",
            SortKey::Modified => "lastModified",
            SortKey::Created => "createdAt",
        }
    }
}

/// What `suspend` and `resume` act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ObjectKind {
    Pool,
    Service,
}

/// What `drop` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DropKind {
    Service,
    Model,
    Version,
}
