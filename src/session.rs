//! The front door: what every command and the TUI need to start (the parsed settings, where
//! things live) and how a platform is opened, with the outcome as data, never a sentence to test.

use std::time::Duration;

use crate::config::Config;
use crate::paths::{Paths, ProcessEnv};
use crate::platform::local::lifecycle::{self, StartOptions};
use crate::platform::{self};

/// Everything a command needs to start.
pub struct Context {
    pub cli_config: Option<std::path::PathBuf>,
    pub paths: Paths,
    pub config: Config,
    pub verbose: bool,
    /// Why logging is off, if it is.
    pub log_problem: Option<String>,
    /// The platform the command line chose, if it did.
    pub platform: Option<crate::config::PlatformChoice>,
    pub connection: Option<String>,
    pub read_only: bool,
}

/// Everything needed to open a platform, owned (the TUI opens it on a worker task).
#[derive(Debug, Clone)]
pub struct Opener {
    pub choice: crate::config::PlatformChoice,
    pub start: StartOptions,
    pub connection: Option<String>,
    pub settings: crate::config::PlatformConfig,
    pub data_dir: std::path::PathBuf,
    /// `--read-only`: the platform opened refuses every change ([`platform::read_only`]).
    pub read_only: bool,
}

/// What opening a platform did: the outcome as data, so callers decide what to print by matching,
/// never by reading a sentence.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// A local daemon was already running and answered.
    Connected { pid: u32 },
    /// This call started the local daemon in the background.
    Started {
        pid: u32,
        socket: std::path::PathBuf,
    },
    /// A Snowflake connection (nothing is sent until the first call).
    Snowflake {
        connection: String,
        account: String,
        warning: Option<String>,
    },
}

impl Opened {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Opened::Connected { pid } => format!("connected to the local daemon (pid {pid})"),
            Opened::Started { pid, socket } => format!(
                "started the local daemon in the background (pid {pid}) at {}; `hugflake serve --stop` stops it",
                socket.display()
            ),
            Opened::Snowflake {
                connection,
                account,
                warning,
            } => format!(
                "Snowflake connection `{connection}` ({account}){}",
                warning
                    .as_ref()
                    .map(|w| format!("; warning: {w}"))
                    .unwrap_or_default()
            ),
        }
    }

    /// Whether a command should say it on stderr: everything but reaching a running daemon.
    pub fn worth_saying(&self) -> bool {
        !matches!(self, Opened::Connected { .. })
    }
}

/// This process's Hub settings, as the daemon's are compared with them.
fn caller_hub() -> crate::hub::settings::HubIdentity {
    crate::hub::settings::HubSettings::from_env(&ProcessEnv).identity()
}

impl Opener {
    /// Opens the platform: the local daemon (started when none runs), or a Snowflake connection.
    pub async fn open(
        &self,
    ) -> std::result::Result<
        (std::sync::Arc<dyn platform::Platform>, Opened),
        platform::PlatformError,
    > {
        use crate::config::PlatformChoice;
        match self.choice {
            PlatformChoice::Local if self.read_only => {
                // An on-call screen watches; it does not start a daemon (which would carry on
                // unfinished imports).
                let (client, info) = lifecycle::connect(&self.start.data_dir).await.map_err(|e| {
                    platform::PlatformError::Other(format!(
                        "read-only: no local daemon answers ({e}), and --read-only does not start one: start it with `hugflake serve` or any command without --read-only"
                    ))
                })?;
                Ok((
                    self.gate(std::sync::Arc::new(client.with_caller_hub(caller_hub()))),
                    Opened::Connected { pid: info.pid },
                ))
            }
            PlatformChoice::Local => {
                let (client, c) = lifecycle::connect_or_start(&self.start).await?;
                let opened = match &c {
                    lifecycle::Connection::Started(i) => Opened::Started {
                        pid: i.pid,
                        socket: i.socket.clone(),
                    },
                    lifecycle::Connection::Existing(i) => Opened::Connected { pid: i.pid },
                };
                Ok((
                    self.gate(std::sync::Arc::new(client.with_caller_hub(caller_hub()))),
                    opened,
                ))
            }
            PlatformChoice::Snowflake => {
                let (p, opened) = self.snowflake()?;
                Ok((self.gate(std::sync::Arc::new(p)), opened))
            }
        }
    }

    /// Read-only sessions get a platform that refuses every change.
    fn gate(
        &self,
        p: std::sync::Arc<dyn platform::Platform>,
    ) -> std::sync::Arc<dyn platform::Platform> {
        if self.read_only {
            std::sync::Arc::new(platform::read_only::ReadOnly(p))
        } else {
            p
        }
    }
}

impl Opener {
    /// The Snowflake platform of the connection this command names (or the default one).
    pub fn snowflake(
        &self,
    ) -> std::result::Result<
        (crate::platform::snowflake::SnowflakePlatform, Opened),
        platform::PlatformError,
    > {
        use crate::config::InferenceChoice;
        use crate::platform::snowflake::{InferenceRoute, SnowflakePlatform, connection};
        let env = ProcessEnv;
        let home = crate::paths::home(&env);
        let name = self
            .connection
            .clone()
            .or_else(|| Some(self.settings.snowflake_connection.clone()).filter(|c| !c.is_empty()));
        let conn = connection::load(&env, &home, name.as_deref(), &[])
            .map_err(|e| platform::PlatformError::Other(e.to_string()))?;
        for w in &conn.warnings {
            tracing::warn!("{w}");
        }
        let route = match self.settings.snowflake_inference {
            InferenceChoice::Rest => InferenceRoute::Rest,
            InferenceChoice::Sql => InferenceRoute::Sql,
        };
        let p = SnowflakePlatform::new(&conn, &env, &self.data_dir, route)?
            .with_poll_every(Duration::from_secs_f64(self.settings.snowflake_poll_secs));
        let opened = Opened::Snowflake {
            connection: conn.name.clone(),
            account: conn.get("account").unwrap_or("?").to_string(),
            warning: conn.warnings.first().cloned(),
        };
        Ok((p, opened))
    }
}

impl Context {
    /// The platform this command uses: --connection implies Snowflake; else --platform, else the
    /// config.
    pub fn opener(&self) -> Opener {
        let choice = if self.connection.is_some() {
            crate::config::PlatformChoice::Snowflake
        } else {
            self.platform.unwrap_or(self.config.platform.default)
        };
        Opener {
            choice,
            start: self.start_options(),
            connection: self.connection.clone(),
            settings: self.config.platform.clone(),
            data_dir: self.paths.data_dir.path.clone(),
            read_only: self.read_only,
        }
    }

    /// Refuses `what` in a read-only session: the changes that do not go through a platform
    /// (stopping the daemon, writing the Hub cache, batch results).
    pub fn refuse_if_read_only(
        &self,
        what: &str,
    ) -> std::result::Result<(), platform::PlatformError> {
        if self.read_only {
            Err(platform::read_only::refusal(what))
        } else {
            Ok(())
        }
    }

    pub fn start_options(&self) -> StartOptions {
        StartOptions {
            data_dir: self.paths.data_dir.path.clone(),
            exe: None,
            config_flag: self.cli_config.clone(),
            timeout: Duration::from_secs(self.config.daemon.start_timeout_secs),
            log_file: Some(self.paths.log_file(true)),
        }
    }
}
