//! The command line: clap's types (`args`), one file per command family, and `run`, which only
//! dispatches. JSON goes to stdout, messages to stderr.

// First: its `out!` and `outln!` macros are used by the files below.
#[macro_use]
pub mod output;
pub mod args;
pub mod batch;
pub mod cache;
pub mod doctor;
pub mod hub;
pub mod platform;
pub mod predict;
pub mod watch;

pub use args::*;

use color_eyre::eyre::{Result, WrapErr};

use crate::config::Config;
use crate::paths::{Paths, ProcessEnv};
use crate::session::Context;

/// Parses nothing, decides nothing: starts the engine and hands each command its arguments whole.
pub fn run(cli: Cli) -> Result<()> {
    // A service instance: no config, no log file (its stderr is its container log).
    if let Some(Command::Instance(a)) = cli.command {
        return platform::instance(a);
    }
    // The defaults are printed without reading the user's file, so a broken one can be compared
    // with them.
    if let Some(Command::Config(a)) = &cli.command
        && a.print_default
    {
        out!("{}", crate::config::DEFAULT_CONFIG)?;
        return Ok(());
    }
    let paths = Paths::resolve(&ProcessEnv, cli.config.as_deref());
    let config = Config::load(&paths.config_file)?;
    let daemon_mode = matches!(cli.command, Some(Command::Serve { stop: false, .. }));
    let level = if cli.verbose {
        "debug"
    } else {
        config.log_level.as_str()
    };
    let log_problem = crate::logging::init(&paths.log_file(daemon_mode), level).err();
    let ctx = Context {
        cli_config: cli.config.clone(),
        paths,
        config,
        verbose: cli.verbose,
        log_problem,
        platform: cli.platform,
        connection: cli.connection.clone(),
        read_only: cli.read_only,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    match cli.command.unwrap_or(Command::Tui) {
        Command::Tui => runtime.block_on(crate::tui::run(ctx)),
        Command::Serve { stop: false } => runtime.block_on(platform::serve(&ctx)),
        Command::Serve { stop: true } => {
            ctx.refuse_if_read_only("stopping the local daemon")?;
            runtime.block_on(platform::stop(&ctx))
        }
        Command::Status(a) => runtime.block_on(platform::status(&ctx, a)),
        Command::Catalog(a) => hub::catalog(&ctx, a),
        Command::Cache { command } => runtime.block_on(cache::run(&ctx, command)),
        Command::Search(a) => runtime.block_on(hub::search(&ctx, a)),
        Command::Show(a) => runtime.block_on(hub::show(&ctx, a)),
        Command::Download(a) => {
            ctx.refuse_if_read_only("downloading into the Hugging Face cache")?;
            runtime.block_on(hub::download(&ctx, a))
        }
        Command::Predict(a) if !a.compare.is_empty() => {
            runtime.block_on(platform::predict_compare(&ctx, a))
        }
        Command::Predict(a) if a.service.is_some() => {
            runtime.block_on(platform::predict_service(&ctx, a))
        }
        Command::Predict(a) => predict::from_dir(&ctx, a),
        Command::Import(a) => runtime.block_on(platform::import(&ctx, a)),
        Command::Jobs(a) => runtime.block_on(platform::jobs(&ctx, a)),
        Command::Cancel { job } => runtime.block_on(platform::cancel(&ctx, &job)),
        Command::Retry { job } => runtime.block_on(platform::retry(&ctx, &job)),
        Command::Logs(a) => runtime.block_on(platform::logs(&ctx, a)),
        Command::Events(a) => runtime.block_on(platform::events(&ctx, a)),
        Command::Metrics(a) => runtime.block_on(platform::metrics(&ctx, a)),
        Command::Batch { command } => {
            let on_snowflake = ctx.opener().choice == crate::config::PlatformChoice::Snowflake;
            if let Some(what) = command.writes(on_snowflake) {
                ctx.refuse_if_read_only(what)?;
            }
            runtime.block_on(batch::run(&ctx, command))
        }
        Command::Suspend(a) => runtime.block_on(platform::suspend_resume(&ctx, a, true)),
        Command::Resume(a) => runtime.block_on(platform::suspend_resume(&ctx, a, false)),
        Command::Drop(a) => runtime.block_on(platform::drop(&ctx, a)),
        Command::Scale(a) => runtime.block_on(platform::scale(&ctx, a)),
        Command::Instance(a) => platform::instance(a),
        Command::Config(a) => doctor::config(&ctx, a),
        Command::Doctor(a) => runtime.block_on(doctor::doctor(&ctx, a)),
    }
}
