//! hugflake's own configuration: defaults embedded from `assets/config.toml`, the user's file on top.
//!
//! Both layers are parsed with the same strict schema (unknown keys refused); every value keeps its
//! position in the file so that an error names the file, line and column, and `hugflake doctor` can
//! say where each setting came from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::keys::action::Action;
use crate::keys::keymap::{KeyChord, Keymap};
use crate::paths::Located;

/// The defaults, exactly as `hugflake config --print-default` prints them.
pub const DEFAULT_CONFIG: &str = include_str!("../assets/config.toml");
const DEFAULT_NAME: &str = "built-in default";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ThemeName {
    Default,
    Colorblind,
}

impl fmt::Display for ThemeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ThemeName::Default => "default",
            ThemeName::Colorblind => "colorblind",
        })
    }
}

/// Which platform the TUI and the platform commands talk to by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PlatformChoice {
    Local,
    Snowflake,
}

impl fmt::Display for PlatformChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlatformChoice::Local => "local",
            PlatformChoice::Snowflake => "snowflake",
        })
    }
}

/// How inference reaches a Snowflake service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InferenceChoice {
    Rest,
    Sql,
}

impl fmt::Display for InferenceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InferenceChoice::Rest => "rest",
            InferenceChoice::Sql => "sql",
        })
    }
}

/// `[platform]`: where models go and how Snowflake is reached.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformConfig {
    pub default: PlatformChoice,
    /// A connection of connections.toml; empty: Snowflake's default connection.
    pub snowflake_connection: String,
    pub snowflake_inference: InferenceChoice,
    pub snowflake_poll_secs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConfig {
    pub start_timeout_secs: u64,
    pub import_concurrency: u32,
    pub metrics_secs: f64,
    pub restart_backoff_secs: f64,
    pub request_timeout_secs: u64,
    pub max_batch: u32,
    pub endpoint_max_connections: u32,
    pub endpoint_header_timeout_secs: u64,
    pub autoscale_queue_ms: f64,
    pub autoscale_after_secs: f64,
    pub scale_in_idle_secs: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UiConfig {
    pub theme: ThemeName,
    pub refresh_secs: f64,
    pub fps: u32,
    pub mouse: bool,
}

/// Where one setting's value came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Setting {
    pub key: String,
    pub value: String,
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub platform: PlatformConfig,
    pub ui: UiConfig,
    pub log_level: LogLevel,
    pub keymap: Keymap,
    /// Every setting with its value and origin, in file order.
    pub settings: Vec<Setting>,
    /// The user file that was read, if one exists.
    pub file: Option<PathBuf>,
}

/// A refused configuration: which file, where, and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}{}: {message}", location(*.line, *.column))]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// `[keymap]`: action name → keys, each with its place in the file.
type KeymapTable = BTreeMap<Spanned<String>, Spanned<Vec<Spanned<String>>>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    daemon: Option<DaemonLayer>,
    platform: Option<PlatformLayer>,
    ui: Option<UiLayer>,
    log: Option<LogLayer>,
    keymap: Option<KeymapTable>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlatformLayer {
    default: Option<Spanned<PlatformChoice>>,
    snowflake_connection: Option<Spanned<String>>,
    snowflake_inference: Option<Spanned<InferenceChoice>>,
    snowflake_poll_secs: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DaemonLayer {
    start_timeout_secs: Option<Spanned<u64>>,
    import_concurrency: Option<Spanned<u32>>,
    metrics_secs: Option<Spanned<f64>>,
    restart_backoff_secs: Option<Spanned<f64>>,
    request_timeout_secs: Option<Spanned<u64>>,
    max_batch: Option<Spanned<u32>>,
    endpoint_max_connections: Option<Spanned<u32>>,
    endpoint_header_timeout_secs: Option<Spanned<u64>>,
    autoscale_queue_ms: Option<Spanned<f64>>,
    autoscale_after_secs: Option<Spanned<f64>>,
    scale_in_idle_secs: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UiLayer {
    theme: Option<Spanned<ThemeName>>,
    refresh_secs: Option<Spanned<f64>>,
    fps: Option<Spanned<u32>>,
    mouse: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogLayer {
    level: Option<Spanned<LogLevel>>,
}

/// One parsed file: its name (for messages), text (for line numbers) and layer.
struct Source<'a> {
    name: String,
    text: &'a str,
    layer: Layer,
}

impl<'a> Source<'a> {
    fn parse(name: String, text: &'a str) -> Result<Source<'a>, ConfigError> {
        let layer: Layer = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| line_col(text, s.start))
                .map_or((None, None), |(l, c)| (Some(l), Some(c)));
            ConfigError {
                file: name.clone(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        Ok(Source { name, text, layer })
    }

    fn error(&self, span: std::ops::Range<usize>, message: String) -> ConfigError {
        let (line, column) = line_col(self.text, span.start);
        ConfigError {
            file: self.name.clone(),
            line: Some(line),
            column: Some(column),
            message,
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
}

/// Applies one layer's value to a setting, validating it and recording where it came from.
struct Builder {
    settings: Vec<Setting>,
}

impl Builder {
    fn take<T: Clone + fmt::Debug>(
        &mut self,
        key: &str,
        layers: [(&Source<'_>, Option<&Spanned<T>>); 2],
        check: impl Fn(&T) -> Result<(), String>,
        show: impl Fn(&T) -> String,
    ) -> Result<T, ConfigError> {
        let mut chosen: Option<(T, String)> = None;
        for (source, value) in layers {
            if let Some(v) = value {
                check(v.get_ref())
                    .map_err(|msg| source.error(v.span(), format!("`{key}`: {msg}")))?;
                let (line, _) = line_col(source.text, v.span().start);
                chosen = Some((v.get_ref().clone(), format!("{}:{line}", source.name)));
            }
        }
        let (value, source) = chosen.ok_or_else(|| ConfigError {
            file: DEFAULT_NAME.into(),
            line: None,
            column: None,
            message: format!("`{key}` has no built-in default (a bug in hugflake)"),
        })?;
        self.settings.push(Setting {
            key: key.into(),
            value: show(&value),
            source,
        });
        Ok(value)
    }
}

fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

fn keymap_layer(
    source: &Source<'_>,
) -> Result<BTreeMap<Action, (Vec<KeyChord>, usize)>, ConfigError> {
    let mut out = BTreeMap::new();
    if let Some(table) = &source.layer.keymap {
        for (name, keys) in table {
            let action: Action = name
                .get_ref()
                .parse()
                .map_err(|msg: String| source.error(name.span(), format!("[keymap]: {msg}")))?;
            let mut chords = Vec::new();
            for key in keys.get_ref() {
                let chord = KeyChord::parse(key.get_ref()).map_err(|msg| {
                    source.error(key.span(), format!("[keymap] {}: {msg}", action.name()))
                })?;
                chords.push(chord);
            }
            let (line, _) = line_col(source.text, name.span().start);
            out.insert(action, (chords, line));
        }
    }
    Ok(out)
}

impl Config {
    /// The built-in defaults alone.
    pub fn defaults() -> Result<Config, ConfigError> {
        Config::from_texts(None)
    }

    /// Reads the user's file over the defaults. A missing file at the default location means "all
    /// defaults"; a missing file that was named explicitly (flag or variable) is an error.
    pub fn load(file: &Located) -> Result<Config, ConfigError> {
        let explicit = file.source == "--config" || file.source == "$HUGFLAKE_CONFIG";
        match crate::paths::read_user_text(&file.path, crate::paths::SMALL_FILE) {
            Ok(text) => Config::from_texts(Some((&file.path, &text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Config::defaults(),
            Err(e) => Err(ConfigError {
                file: file.path.display().to_string(),
                line: None,
                column: None,
                message: format!("cannot read the config file ({}): {e}", file.source),
            }),
        }
    }

    /// Parses the defaults and, optionally, a user file given as text.
    pub fn from_texts(user: Option<(&Path, &str)>) -> Result<Config, ConfigError> {
        let defaults = Source::parse(DEFAULT_NAME.into(), DEFAULT_CONFIG)?;
        let user = match user {
            Some((path, text)) => Source::parse(path.display().to_string(), text)?,
            None => Source {
                name: "none".into(),
                text: "",
                layer: Layer::default(),
            },
        };
        let mut b = Builder {
            settings: Vec::new(),
        };
        let d = &defaults.layer;
        let u = &user.layer;
        let dd = d.daemon.as_ref();
        let ud = u.daemon.as_ref();
        let daemon = DaemonConfig {
            start_timeout_secs: b.take(
                "daemon.start_timeout_secs",
                [
                    (&defaults, dd.and_then(|x| x.start_timeout_secs.as_ref())),
                    (&user, ud.and_then(|x| x.start_timeout_secs.as_ref())),
                ],
                |v| match v {
                    1..=600 => Ok(()),
                    _ => Err(format!("{v} is out of range: expected 1 to 600 seconds")),
                },
                |v| v.to_string(),
            )?,
            import_concurrency: b.take(
                "daemon.import_concurrency",
                [
                    (&defaults, dd.and_then(|x| x.import_concurrency.as_ref())),
                    (&user, ud.and_then(|x| x.import_concurrency.as_ref())),
                ],
                |v| match v {
                    1..=16 => Ok(()),
                    _ => Err(format!("{v} is out of range: expected 1 to 16 imports")),
                },
                |v| v.to_string(),
            )?,
            metrics_secs: b.take(
                "daemon.metrics_secs",
                [
                    (&defaults, dd.and_then(|x| x.metrics_secs.as_ref())),
                    (&user, ud.and_then(|x| x.metrics_secs.as_ref())),
                ],
                |v| {
                    if (0.1..=300.0).contains(v) {
                        Ok(())
                    } else {
                        Err(format!("{v} is out of range: expected 0.1 to 300 seconds"))
                    }
                },
                |v| v.to_string(),
            )?,
            restart_backoff_secs: b.take(
                "daemon.restart_backoff_secs",
                [
                    (&defaults, dd.and_then(|x| x.restart_backoff_secs.as_ref())),
                    (&user, ud.and_then(|x| x.restart_backoff_secs.as_ref())),
                ],
                |v| {
                    if (0.1..=300.0).contains(v) {
                        Ok(())
                    } else {
                        Err(format!("{v} is out of range: expected 0.1 to 300 seconds"))
                    }
                },
                |v| v.to_string(),
            )?,
            request_timeout_secs: b.take(
                "daemon.request_timeout_secs",
                [
                    (&defaults, dd.and_then(|x| x.request_timeout_secs.as_ref())),
                    (&user, ud.and_then(|x| x.request_timeout_secs.as_ref())),
                ],
                |v| match v {
                    1..=3600 => Ok(()),
                    _ => Err(format!("{v} is out of range: expected 1 to 3600 seconds")),
                },
                |v| v.to_string(),
            )?,
            max_batch: b.take(
                "daemon.max_batch",
                [
                    (&defaults, dd.and_then(|x| x.max_batch.as_ref())),
                    (&user, ud.and_then(|x| x.max_batch.as_ref())),
                ],
                |v| match v {
                    1..=1024 => Ok(()),
                    _ => Err(format!("{v} is out of range: expected 1 to 1024 rows")),
                },
                |v| v.to_string(),
            )?,
            endpoint_max_connections: b.take(
                "daemon.endpoint_max_connections",
                [
                    (
                        &defaults,
                        dd.and_then(|x| x.endpoint_max_connections.as_ref()),
                    ),
                    (&user, ud.and_then(|x| x.endpoint_max_connections.as_ref())),
                ],
                |v| match v {
                    1..=4096 => Ok(()),
                    _ => Err(format!(
                        "{v} is out of range: expected 1 to 4096 connections"
                    )),
                },
                |v| v.to_string(),
            )?,
            endpoint_header_timeout_secs: b.take(
                "daemon.endpoint_header_timeout_secs",
                [
                    (
                        &defaults,
                        dd.and_then(|x| x.endpoint_header_timeout_secs.as_ref()),
                    ),
                    (
                        &user,
                        ud.and_then(|x| x.endpoint_header_timeout_secs.as_ref()),
                    ),
                ],
                |v| match v {
                    1..=600 => Ok(()),
                    _ => Err(format!("{v} is out of range: expected 1 to 600 seconds")),
                },
                |v| v.to_string(),
            )?,
            autoscale_queue_ms: b.take(
                "daemon.autoscale_queue_ms",
                [
                    (&defaults, dd.and_then(|x| x.autoscale_queue_ms.as_ref())),
                    (&user, ud.and_then(|x| x.autoscale_queue_ms.as_ref())),
                ],
                |v| {
                    if (1.0..=60000.0).contains(v) {
                        Ok(())
                    } else {
                        Err(format!(
                            "{v} is out of range: expected 1.0 to 60000.0 milliseconds"
                        ))
                    }
                },
                |v| v.to_string(),
            )?,
            autoscale_after_secs: b.take(
                "daemon.autoscale_after_secs",
                [
                    (&defaults, dd.and_then(|x| x.autoscale_after_secs.as_ref())),
                    (&user, ud.and_then(|x| x.autoscale_after_secs.as_ref())),
                ],
                |v| {
                    if (0.1..=3600.0).contains(v) {
                        Ok(())
                    } else {
                        Err(format!(
                            "{v} is out of range: expected 0.1 to 3600.0 seconds"
                        ))
                    }
                },
                |v| v.to_string(),
            )?,
            scale_in_idle_secs: b.take(
                "daemon.scale_in_idle_secs",
                [
                    (&defaults, dd.and_then(|x| x.scale_in_idle_secs.as_ref())),
                    (&user, ud.and_then(|x| x.scale_in_idle_secs.as_ref())),
                ],
                |v| {
                    if (0.1..=86400.0).contains(v) {
                        Ok(())
                    } else {
                        Err(format!(
                            "{v} is out of range: expected 0.1 to 86400.0 seconds"
                        ))
                    }
                },
                |v| v.to_string(),
            )?,
        };
        let dp = d.platform.as_ref();
        let up = u.platform.as_ref();
        let platform = PlatformConfig {
            default: b.take(
                "platform.default",
                [
                    (&defaults, dp.and_then(|x| x.default.as_ref())),
                    (&user, up.and_then(|x| x.default.as_ref())),
                ],
                any,
                |v| v.to_string(),
            )?,
            snowflake_connection: b.take(
                "platform.snowflake_connection",
                [
                    (&defaults, dp.and_then(|x| x.snowflake_connection.as_ref())),
                    (&user, up.and_then(|x| x.snowflake_connection.as_ref())),
                ],
                any,
                |v| v.clone(),
            )?,
            snowflake_inference: b.take(
                "platform.snowflake_inference",
                [
                    (&defaults, dp.and_then(|x| x.snowflake_inference.as_ref())),
                    (&user, up.and_then(|x| x.snowflake_inference.as_ref())),
                ],
                any,
                |v| v.to_string(),
            )?,
            snowflake_poll_secs: b.take(
                "platform.snowflake_poll_secs",
                [
                    (&defaults, dp.and_then(|x| x.snowflake_poll_secs.as_ref())),
                    (&user, up.and_then(|x| x.snowflake_poll_secs.as_ref())),
                ],
                |v| {
                    if (0.1..=60.0).contains(v) {
                        Ok(())
                    } else {
                        Err(format!("{v} is out of range: expected 0.1 to 60 seconds"))
                    }
                },
                |v| v.to_string(),
            )?,
        };
        let du = d.ui.as_ref();
        let uu = u.ui.as_ref();
        let ui = UiConfig {
            theme: b.take(
                "ui.theme",
                [
                    (&defaults, du.and_then(|x| x.theme.as_ref())),
                    (&user, uu.and_then(|x| x.theme.as_ref())),
                ],
                any,
                |v| v.to_string(),
            )?,
            refresh_secs: b.take(
                "ui.refresh_secs",
                [
                    (&defaults, du.and_then(|x| x.refresh_secs.as_ref())),
                    (&user, uu.and_then(|x| x.refresh_secs.as_ref())),
                ],
                |v| {
                    if v.is_finite() && (0.2..=3600.0).contains(v) {
                        Ok(())
                    } else {
                        Err(format!("{v} is out of range: expected 0.2 to 3600 seconds"))
                    }
                },
                |v| v.to_string(),
            )?,
            fps: b.take(
                "ui.fps",
                [
                    (&defaults, du.and_then(|x| x.fps.as_ref())),
                    (&user, uu.and_then(|x| x.fps.as_ref())),
                ],
                |v| match v {
                    1..=120 => Ok(()),
                    _ => Err(format!(
                        "{v} is out of range: expected 1 to 120 frames per second"
                    )),
                },
                |v| v.to_string(),
            )?,
            mouse: b.take(
                "ui.mouse",
                [
                    (&defaults, du.and_then(|x| x.mouse.as_ref())),
                    (&user, uu.and_then(|x| x.mouse.as_ref())),
                ],
                any,
                |v| v.to_string(),
            )?,
        };
        let log_level = b.take(
            "log.level",
            [
                (&defaults, d.log.as_ref().and_then(|x| x.level.as_ref())),
                (&user, u.log.as_ref().and_then(|x| x.level.as_ref())),
            ],
            any,
            |v| v.as_str().to_string(),
        )?;

        let default_keys = keymap_layer(&defaults)?;
        let user_keys = keymap_layer(&user)?;
        let strip = |m: &BTreeMap<Action, (Vec<KeyChord>, usize)>| {
            m.iter()
                .map(|(a, (k, _))| (*a, k.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        let keymap = Keymap::build(&strip(&default_keys), &strip(&user_keys));
        for action in Action::ALL {
            let source = match (user_keys.get(&action), default_keys.get(&action)) {
                (Some((_, line)), _) => format!("{}:{line}", user.name),
                (None, Some((_, line))) => format!("{DEFAULT_NAME}:{line}"),
                (None, None) => "unbound".into(),
            };
            b.settings.push(Setting {
                key: format!("keymap.{}", action.name()),
                value: keymap.label(action),
                source,
            });
        }

        Ok(Config {
            daemon,
            platform,
            ui,
            log_level,
            keymap,
            settings: b.settings,
            file: user_path(user.name.as_str()),
        })
    }
}

fn user_path(name: &str) -> Option<PathBuf> {
    (name != "none").then(|| PathBuf::from(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Result<Config, ConfigError> {
        Config::from_texts(Some((Path::new("/u/config.toml"), text)))
    }

    #[test]
    fn defaults_parse_and_bind_every_action() {
        let c = Config::defaults().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.daemon.start_timeout_secs, 15);
        assert_eq!(c.ui.theme, ThemeName::Default);
        for a in Action::ALL {
            assert!(!c.keymap.keys(a).is_empty(), "{a} has no default key");
        }
        assert!(
            c.settings
                .iter()
                .all(|s| s.source.starts_with(DEFAULT_NAME))
        );
    }

    #[test]
    fn user_values_override_and_say_where_they_came_from() {
        let c = user("[ui]\ntheme = \"colorblind\"\n\n[daemon]\nimport_concurrency = 4\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.ui.theme, ThemeName::Colorblind);
        assert_eq!(c.daemon.import_concurrency, 4);
        let theme = c.settings.iter().find(|s| s.key == "ui.theme");
        assert_eq!(theme.map(|s| s.source.as_str()), Some("/u/config.toml:2"));
        let fps = c.settings.iter().find(|s| s.key == "ui.fps");
        assert!(fps.is_some_and(|s| s.source.starts_with(DEFAULT_NAME)));
    }

    #[test]
    fn fixtures_valid_and_invalid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let result = Config::from_texts(Some((Path::new(&name), &text)));
            if name.starts_with("valid") {
                assert!(result.is_ok(), "{name}: {:?}", result.err());
            } else {
                // The first line of an invalid fixture is `# expect: <text in the message>`.
                let expect = text
                    .lines()
                    .next()
                    .and_then(|l| l.strip_prefix("# expect: "))
                    .unwrap_or_else(|| panic!("{name} lacks # expect:"));
                match result {
                    Ok(_) => panic!("{name} was accepted"),
                    Err(e) => assert!(
                        e.to_string().contains(expect),
                        "{name}: `{e}` lacks `{expect}`"
                    ),
                }
            }
            checked += 1;
        }
        assert!(checked >= 6, "only {checked} fixtures");
    }

    #[test]
    fn keymap_override_moves_the_key() {
        let c = user("[keymap]\nquit = [\"q\"]\n").unwrap_or_else(|e| panic!("{e}"));
        let q = KeyChord::parse("q").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.keymap.action(&q), Some(Action::Quit));
        assert_eq!(c.keymap.label(Action::Back), "esc");
    }
}
