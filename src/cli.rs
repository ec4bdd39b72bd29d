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
