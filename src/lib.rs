//! hugflake: a terminal dashboard that takes Hugging Face models into a model registry, serves
//! them, watches their health and lets people try them.
//!
//! Layers: `domain` (plain types), `hub` (Hugging Face), `platform` (the Platform trait, the local
//! daemon and its client) know nothing of terminals; `session` is the front door both faces start
//! from; `app` and `ui` are the TUI; `cli` is the same engine for scripts.

/// mimalloc keeps freed pages for reuse: the encoder allocates activations of a few megabytes per
/// layer, which glibc's allocator maps and unmaps each time (page faults on every pass).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod app;
pub mod batch;
pub mod cli;
pub mod config;
pub mod domain;
pub mod fault;
pub mod http;
pub mod hub;
pub mod inference;
pub mod keys;
pub mod logging;
pub mod paths;
pub mod platform;
pub mod secret;
pub mod session;
pub mod tui;
pub mod ui;

use std::process::ExitCode;

use clap::Parser;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The binary's entry point: parse, run, map the outcome to an exit code (0 ok, 1 failure, 2 usage).
pub fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    install_hooks();
    match cli::run(cli).and_then(|()| Ok(cli::output::flush_out()?)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<cli::output::OutputError>()
                    .is_some_and(|o| o.is_closed_pipe())
            }) =>
        {
            // The reader went away (`hugflake status | head -1`): nothing to say, as a process
            // stopped by SIGPIPE says nothing.
            ExitCode::from(141)
        }
        Err(e) => {
            eprintln!("hugflake: {}", secret::redact(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}

/// color-eyre's reports, with a panic hook that scrubs every known secret from the report before
/// it reaches stderr or the log (the TUI's hook restores the terminal first, then calls this one).
fn install_hooks() {
    use std::io::IsTerminal;
    let theme = if std::io::stderr().is_terminal() {
        color_eyre::config::Theme::dark()
    } else {
        color_eyre::config::Theme::new()
    };
    let (panic_hook, eyre_hook) = color_eyre::config::HookBuilder::default()
        .theme(theme)
        .into_hooks();
    let _ = eyre_hook.install();
    std::panic::set_hook(Box::new(move |info| {
        let report = panic_hook.panic_report(info).to_string();
        let clean = secret::redact(&report);
        eprintln!("{clean}");
        tracing::error!(report = %clean, "hugflake panicked");
    }));
}
