//! The command line: the TUI by default, headless commands for scripts and CI.

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

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the terminal dashboard (the default)
    Tui,
    /// Run the local platform daemon on 127.0.0.1 in the foreground
    Serve {
        /// Port to listen on (default: [daemon] port of the config; 0 picks a free one)
        #[arg(long)]
        port: Option<u16>,
        /// Stop the running daemon instead
        #[arg(long)]
        stop: bool,
    },
    /// Show the platform: daemon, compute pools and services (starts the daemon if needed)
    Status {
        /// Print JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// Search the Hugging Face Hub
    Search {
        /// Words to search for in model names
        query: Option<String>,
        /// Only this pipeline tag (task), e.g. token-classification
        #[arg(long)]
        task: Option<String>,
        /// Only this author or organisation
        #[arg(long)]
        author: Option<String>,
        /// Only this library, e.g. sentence-transformers
        #[arg(long)]
        library: Option<String>,
        /// Sort order, most first
        #[arg(long, value_enum, default_value_t = SortKey::Downloads)]
        sort: SortKey,
        /// How many models to list
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Print JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// Show a Hub model: metadata, files and sizes, model card, and the import verdicts
    Show {
        /// The model's repo id, e.g. sentence-transformers/all-MiniLM-L6-v2
        handle: String,
        /// Branch, tag or commit
        #[arg(long, default_value = "main")]
        revision: String,
        /// Print JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// Download a model revision into the shared Hugging Face cache (verified, resumable)
    Download {
        /// The model's repo id
        handle: String,
        /// Branch, tag or commit (pinned to its commit before anything is fetched)
        #[arg(long, default_value = "main")]
        revision: String,
        /// Only this file (repeat for more)
        #[arg(long = "include", value_name = "PATH")]
        include: Vec<String>,
        /// Print JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// Run a model straight from a directory (no daemon): embeddings, entities or features
    Predict {
        /// The model directory (a Hub snapshot, e.g. from `hugflake download`)
        #[arg(long, value_name = "DIR")]
        model_dir: PathBuf,
        /// What to run; detected from the directory's files when left out
        #[arg(long, value_parser = crate::inference::parse_task)]
        task: Option<crate::inference::Task>,
        /// An input text (repeat for more)
        #[arg(long = "text", value_name = "TEXT")]
        text: Vec<String>,
        /// Read inputs from standard input, one per line
        #[arg(long)]
        stdin: bool,
        /// Zero-shot image classification: the image (PNG or JPEG)
        #[arg(long, value_name = "PATH")]
        image: Vec<PathBuf>,
        /// Zero-shot image classification: candidate labels, comma-separated
        #[arg(long, value_name = "A,B,C")]
        labels: Option<String>,
        /// Zero-shot image classification: the prompt template for each label
        #[arg(long, default_value = "this is a photo of {}")]
        template: String,
        /// Zero-shot image classification: the text tower's directory (default: beside the model,
        /// or its Hub repo in the HF cache)
        #[arg(long, value_name = "DIR")]
        text_tower: Option<PathBuf>,
        /// Texts per forward pass
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
        batch_size: u32,
        /// Print JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// List the curated catalog and the models in the local Hugging Face cache
    Catalog {
        /// Print JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// Show the effective configuration and where each setting came from
    Config {
        /// Print the built-in default config file instead
        #[arg(long)]
        print_default: bool,
    },
    /// Show every path hugflake uses, where each setting came from, and the daemon's state
    Doctor {
        /// Print JSON on stdout
        #[arg(long)]
        json: bool,
    },
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
