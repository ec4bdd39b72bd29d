//! `doctor` and `config`: what hugflake sees, where each setting came from, what one refresh costs.

use color_eyre::eyre::Result;
use serde::Serialize;

use super::output::{print_json, text_table};
use crate::cli::args::{ConfigArgs, JsonArgs};
use crate::config::{DEFAULT_CONFIG, Setting};
use crate::paths::{Paths, ProcessEnv};
use crate::platform::local::DaemonFiles;
use crate::platform::local::lifecycle::{self};
use crate::platform::{self};
use crate::session::Context;

pub fn config(ctx: &Context, a: ConfigArgs) -> Result<()> {
    let print_default = a.print_default;
    if print_default {
        out!("{DEFAULT_CONFIG}")?;
        return Ok(());
    }
    out!("{}", settings_text(&ctx.config.settings))?;
    Ok(())
}

fn settings_text(settings: &[Setting]) -> String {
    let rows: Vec<Vec<String>> = settings
        .iter()
        .map(|s| vec![s.key.clone(), s.value.clone(), s.source.clone()])
        .collect();
    text_table(&["SETTING", "VALUE", "FROM"], &rows)
}

#[derive(Serialize)]
struct Doctor<'a> {
    version: &'static str,
    paths: &'a Paths,
    config_file_exists: bool,
    log_file: std::path::PathBuf,
    daemon_log_file: std::path::PathBuf,
    log_problem: Option<&'a str>,
    daemon: DaemonState,
    settings: &'a [Setting],
    environment: Vec<(String, String)>,
    snowflake: SnowflakeReport,
    polling: Option<Polling>,
}

/// The Snowflake connection as Snowflake's tools would resolve it, secrets masked.
#[derive(Serialize)]
struct SnowflakeReport {
    dir: String,
    connection: Option<String>,
    /// (key, value with secrets masked, where it came from)
    keys: Vec<(String, String, String)>,
    auth: Option<String>,
    warnings: Vec<String>,
    problem: Option<String>,
}

fn snowflake_report(ctx: &Context) -> SnowflakeReport {
    use crate::platform::snowflake::connection;
    let env = ProcessEnv;
    let home = crate::paths::home(&env);
    let dir = connection::config_dir(&env, &home).display().to_string();
    let name = ctx.connection.clone().or_else(|| {
        Some(ctx.config.platform.snowflake_connection.clone()).filter(|c| !c.is_empty())
    });
    match connection::load(&env, &home, name.as_deref(), &[]) {
        Ok(c) => SnowflakeReport {
            dir,
            connection: Some(c.name.clone()),
            keys: c.describe(),
            auth: Some(match c.auth(&env) {
                Ok(a) => a.token_type().to_string(),
                Err(e) => format!("unusable: {e}"),
            }),
            warnings: c.warnings.clone(),
            problem: None,
        },
        Err(e) => SnowflakeReport {
            dir,
            connection: None,
            keys: Vec::new(),
            auth: None,
            warnings: Vec::new(),
            problem: Some(e.to_string()),
        },
    }
}

#[derive(Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum DaemonState {
    Running {
        pid: u32,
        socket: std::path::PathBuf,
        version: String,
    },
    NotAnswering {
        detail: String,
    },
    NotRunning,
}

/// Environment variables that change what hugflake does; secret ones are shown masked.
const ENV_VARS: &[(&str, bool)] = &[
    ("HUGFLAKE_CONFIG", false),
    ("HUGFLAKE_DATA_DIR", false),
    ("HUGFLAKE_STATE_DIR", false),
    ("HUGFLAKE_LOG", false),
    ("XDG_CONFIG_HOME", false),
    ("XDG_DATA_HOME", false),
    ("XDG_STATE_HOME", false),
    ("XDG_CACHE_HOME", false),
    ("HF_HOME", false),
    ("HF_HUB_CACHE", false),
    ("HUGGINGFACE_HUB_CACHE", false),
    ("HF_ENDPOINT", false),
    ("HF_HUB_OFFLINE", false),
    ("HF_TOKEN", true),
    ("HF_TOKEN_PATH", false),
    ("HUGFLAKE_PLATFORM", false),
    ("SNOWFLAKE_HOME", false),
    ("SNOWFLAKE_DEFAULT_CONNECTION_NAME", false),
];

/// The cost of one TUI refresh, measured by doing one: the snapshot every pane shows, then the
/// selected service's detail that Health adds.
#[derive(Serialize)]
struct Polling {
    platform: String,
    every_secs: f64,
    snapshot: crate::platform::Traffic,
    service_detail: Option<crate::platform::Traffic>,
    millis: u64,
}

impl Polling {
    fn describe(&self) -> String {
        let count = |t: &crate::platform::Traffic| {
            if t.statements > 0 {
                format!(
                    "{} SQL statements ({} HTTP requests)",
                    t.statements, t.requests
                )
            } else {
                format!("{} requests", t.requests)
            }
        };
        format!(
            "{}: one refresh = {} in {} ms{}; every {} s while the TUI is open (ui.refresh_secs)",
            self.platform,
            count(&self.snapshot),
            self.millis,
            self.service_detail
                .as_ref()
                .map(|d| format!(", plus {} for the service selected in Health", count(d)))
                .unwrap_or_default(),
            self.every_secs
        )
    }
}

async fn polling_cost(ctx: &Context, daemon_running: bool) -> Option<Polling> {
    let opener = ctx.opener();
    if opener.choice == crate::config::PlatformChoice::Local && !daemon_running {
        return None;
    }
    let (p, _) = opener.open().await.ok()?;
    let t0 = p.traffic();
    let started = std::time::Instant::now();
    let snap = platform::snapshot(p.as_ref()).await.ok()?;
    let millis = started.elapsed().as_millis() as u64;
    let t1 = p.traffic();
    let service_detail = match snap.services.first() {
        Some(s) => {
            crate::platform::ServiceDetail::fetch(p.as_ref(), s.name.clone()).await;
            Some(p.traffic() - t1)
        }
        None => None,
    };
    Some(Polling {
        platform: match p.kind() {
            crate::domain::PlatformKind::Local => "local daemon".into(),
            crate::domain::PlatformKind::Snowflake => "Snowflake".into(),
        },
        every_secs: ctx.config.ui.refresh_secs,
        snapshot: t1 - t0,
        service_detail,
        millis,
    })
}

pub async fn doctor(ctx: &Context, a: JsonArgs) -> Result<()> {
    let json = a.json;
    let files = DaemonFiles::new(&ctx.paths.data_dir.path);
    let daemon = match lifecycle::connect(&files.dir).await {
        Ok((_, info)) => DaemonState::Running {
            pid: info.pid,
            socket: info.socket,
            version: info.version,
        },
        Err(e) if files.lock_held() => DaemonState::NotAnswering {
            detail: e.to_string(),
        },
        Err(_) => DaemonState::NotRunning,
    };
    let polling = polling_cost(ctx, matches!(daemon, DaemonState::Running { .. })).await;
    let environment = ENV_VARS
        .iter()
        .filter_map(|(k, secret)| {
            std::env::var(k).ok().map(|v| {
                (
                    (*k).to_string(),
                    if *secret { "set (********)".into() } else { v },
                )
            })
        })
        .collect();
    let report = Doctor {
        version: crate::VERSION,
        paths: &ctx.paths,
        config_file_exists: ctx.paths.config_file.path.exists(),
        log_file: ctx.paths.log_file(false),
        daemon_log_file: ctx.paths.log_file(true),
        log_problem: ctx.log_problem.as_deref(),
        daemon,
        settings: &ctx.config.settings,
        environment,
        snowflake: snowflake_report(ctx),
        polling,
    };
    if json {
        return print_json(&report);
    }
    let p = &ctx.paths;
    let mut out = format!("hugflake {}\n\nPATHS\n", crate::VERSION);
    let rows = vec![
        vec![
            "config file".into(),
            format!(
                "{}{}",
                p.config_file.path.display(),
                if report.config_file_exists {
                    ""
                } else {
                    " (absent: built-in defaults)"
                }
            ),
            p.config_file.source.clone(),
        ],
        vec![
            "data dir".into(),
            p.data_dir.path.display().to_string(),
            p.data_dir.source.clone(),
        ],
        vec![
            "state dir".into(),
            p.state_dir.path.display().to_string(),
            p.state_dir.source.clone(),
        ],
        vec![
            "log file".into(),
            report.log_file.display().to_string(),
            report
                .log_problem
                .map_or("state dir".into(), |e| format!("logging off: {e}")),
        ],
        vec![
            "daemon log".into(),
            report.daemon_log_file.display().to_string(),
            "state dir".into(),
        ],
        vec![
            "HF cache".into(),
            p.hf_cache.path.display().to_string(),
            p.hf_cache.source.clone(),
        ],
    ];
    out.push_str(&text_table(&["WHAT", "PATH", "FROM"], &rows));
    out.push_str("\nDAEMON\n  ");
    out.push_str(&match &report.daemon {
        DaemonState::Running {
            pid,
            socket,
            version,
        } => {
            format!(
                "running: pid {pid}, {} (owner only), version {version}",
                socket.display()
            )
        }
        DaemonState::NotAnswering { detail } => {
            format!("holds its lock but does not answer: {detail}")
        }
        DaemonState::NotRunning => "not running (the TUI and `hugflake status` start it)".into(),
    });
    out.push_str("\n\nPOLLING (what the TUI sends each refresh)\n  ");
    out.push_str(&match &report.polling {
        Some(p) => p.describe(),
        None => "not measured: no platform to ask (the local daemon is not running; \
                  `--connection NAME` measures a Snowflake connection)"
            .into(),
    });
    out.push_str("\n\nSNOWFLAKE\n");
    let sf = &report.snowflake;
    out.push_str(&format!("  config dir {}\n", sf.dir));
    match (&sf.connection, &sf.problem) {
        (Some(name), _) => {
            out.push_str(&format!(
                "  connection `{name}`, authentication {}\n",
                sf.auth.as_deref().unwrap_or("-")
            ));
            let rows: Vec<Vec<String>> = sf
                .keys
                .iter()
                .map(|(k, v, src)| vec![k.clone(), v.clone(), src.clone()])
                .collect();
            out.push_str(&text_table(&["KEY", "VALUE", "FROM"], &rows));
            for w in &sf.warnings {
                out.push_str(&format!("  warning: {w}\n"));
            }
        }
        (None, Some(p)) => out.push_str(&format!("  no connection: {p}\n")),
        (None, None) => out.push_str("  no connection\n"),
    }
    out.push_str("\nSETTINGS\n");
    out.push_str(&settings_text(&ctx.config.settings));
    out.push_str("\nENVIRONMENT\n");
    if report.environment.is_empty() {
        out.push_str("  none of hugflake's variables is set\n");
    }
    for (k, v) in &report.environment {
        out.push_str(&format!("  {k}={v}\n"));
    }
    out!("{out}")?;
    Ok(())
}
