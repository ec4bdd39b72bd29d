//! Snowflake connection settings, read the way Snowflake's own tools read them (SNOWFLAKE.md §5):
//! the directory `$SNOWFLAKE_HOME`, else `~/.snowflake/` when it exists, else
//! `~/.config/snowflake/`; `connections.toml` (top-level `[name]` tables) and `config.toml`
//! (`default_connection_name`, and `[connections.name]` tables when there is no connections.toml).
//! Precedence per key: command-line flags, `SNOWFLAKE_CONNECTIONS_<NAME>_<KEY>`, the file,
//! `SNOWFLAKE_<KEY>`. Files writable by group or others are refused; readable ones warned about
//! (`SF_SKIP_TOKEN_FILE_PERMISSIONS_VERIFICATION=true` silences the warning).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::paths::Env;
use crate::secret::Secret;

pub const KEYS: &[&str] = &[
    "account",
    "user",
    "password",
    "authenticator",
    "private_key_file",
    "private_key_passphrase",
    "token",
    "token_file_path",
    "role",
    "warehouse",
    "database",
    "schema",
    "host",
    "port",
    "protocol",
    "region",
];

/// Other spellings of keys, as Snowflake's tools accept them: the connector's `private_key_path`
/// and `private_key_file_pwd` (the Snowflake CLI's names are `private_key_file` and
/// `private_key_passphrase`).
const ALIASES: &[(&str, &str)] = &[
    ("private_key_path", "private_key_file"),
    ("private_key_file_pwd", "private_key_passphrase"),
];

const SECRET_KEYS: &[&str] = &["password", "private_key_passphrase", "token"];

/// The key a spelling stands for.
fn canonical(key: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == key)
        .map_or(key, |(_, k)| k)
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectionError {
    #[error("{path}: {detail}")]
    File { path: PathBuf, detail: String },
    #[error(
        "no Snowflake connection named `{name}` in {dir}: add a `[{name}]` table to connections.toml, or set SNOWFLAKE_CONNECTIONS_{upper}_ACCOUNT and friends"
    )]
    NoSuchConnection {
        name: String,
        upper: String,
        dir: String,
    },
    #[error("connection `{name}` has no `{key}`")]
    Missing { name: String, key: &'static str },
    #[error("{0}")]
    Unsupported(String),
}

/// Where a value came from (for `hugflake doctor`).
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Flag,
    Env(String),
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => f.write_str("command line"),
            Source::Env(v) => write!(f, "${v}"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// How the client proves who it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// Key-pair JWT (`authenticator = SNOWFLAKE_JWT`).
    KeyPair {
        private_key_file: PathBuf,
        passphrase: Option<Secret>,
    },
    /// Programmatic access token.
    Pat(Secret),
    /// An OAuth access token.
    OAuth(Secret),
}

impl Auth {
    /// `X-Snowflake-Authorization-Token-Type` for the SQL API.
    pub fn token_type(&self) -> &'static str {
        match self {
            Auth::KeyPair { .. } => "KEYPAIR_JWT",
            Auth::Pat(_) => "PROGRAMMATIC_ACCESS_TOKEN",
            Auth::OAuth(_) => "OAUTH",
        }
    }
}

/// A resolved connection.
#[derive(Debug, Clone)]
pub struct Connection {
    pub name: String,
    pub values: BTreeMap<String, (String, Source)>,
    /// Warnings to show (readable-by-others files).
    pub warnings: Vec<String>,
}

impl Connection {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    fn need(&self, key: &'static str) -> Result<&str, ConnectionError> {
        self.get(key).ok_or_else(|| ConnectionError::Missing {
            name: self.name.clone(),
            key,
        })
    }

    pub fn account(&self) -> Result<&str, ConnectionError> {
        self.need("account")
    }

    pub fn user(&self) -> Result<&str, ConnectionError> {
        self.need("user")
    }

    /// `protocol://host:port`, by default `https://<account>[.<region>].snowflakecomputing.com`
    /// (`.cn` for China regions), as the connector's `construct_hostname` builds it.
    pub fn base_url(&self) -> Result<String, ConnectionError> {
        let protocol = self.get("protocol").unwrap_or("https").to_ascii_lowercase();
        let host = match self.get("host") {
            Some(h) => h.to_string(),
            None => hostname(self.account()?, self.get("region")),
        };
        let port = match self.get("port") {
            Some(p) => format!(":{p}"),
            None => String::new(),
        };
        Ok(format!("{protocol}://{host}{port}"))
    }

    /// Each key with its value (secrets masked) and where it came from.
    pub fn describe(&self) -> Vec<(String, String, String)> {
        self.values
            .iter()
            .map(|(k, (v, src))| {
                let shown = if SECRET_KEYS.contains(&k.as_str()) {
                    Secret::new(v.as_str()).to_string()
                } else {
                    v.clone()
                };
                (k.clone(), shown, src.to_string())
            })
            .collect()
    }

    /// The authentication method the connection describes. A plain password is refused; a
    /// programmatic access token may sit in `password` (Snowflake documents a PAT as a drop-in
    /// password replacement) when `authenticator = PROGRAMMATIC_ACCESS_TOKEN` says so.
    pub fn auth(&self, env: &dyn Env) -> Result<Auth, ConnectionError> {
        let authenticator = self
            .get("authenticator")
            .map(|a| a.to_ascii_uppercase())
            .unwrap_or_else(|| {
                if self.get("private_key_file").is_some() {
                    "SNOWFLAKE_JWT".into()
                } else if self.get("token").is_some() || self.get("token_file_path").is_some() {
                    "PROGRAMMATIC_ACCESS_TOKEN".into()
                } else {
                    "SNOWFLAKE".into()
                }
            });
        // As the connector reads them: `token_file_path` wins over `token`; a PAT may also sit
        // in `password`.
        let token = |password_too: bool| -> Result<Secret, ConnectionError> {
            if self.get("token_file_path").is_none() {
                if let Some(t) = self.get("token") {
                    return Ok(Secret::new(t.trim()));
                }
                if password_too && let Some(p) = self.get("password") {
                    return Ok(Secret::new(p.trim()));
                }
            }
            let path = PathBuf::from(self.get("token_file_path").ok_or_else(|| {
                ConnectionError::Missing {
                    name: self.name.clone(),
                    key: if password_too {
                        "token (or token_file_path, or the token as password)"
                    } else {
                        "token (or token_file_path)"
                    },
                }
            })?);
            check_permissions(&path, env)?;
            crate::paths::read_user_text(&path, crate::paths::SMALL_FILE)
                .map(|t| Secret::new(t.trim()))
                .map_err(|e| ConnectionError::File {
                    path,
                    detail: e.to_string(),
                })
        };
        match authenticator.as_str() {
            "SNOWFLAKE_JWT" => Ok(Auth::KeyPair {
                private_key_file: PathBuf::from(self.need("private_key_file")?),
                // The Snowflake CLI: PRIVATE_KEY_PASSPHRASE wins over the file's passphrase.
                passphrase: env
                    .var("PRIVATE_KEY_PASSPHRASE")
                    .map(Secret::new)
                    .or_else(|| self.get("private_key_passphrase").map(Secret::new)),
            }),
            "PROGRAMMATIC_ACCESS_TOKEN" => Ok(Auth::Pat(token(true)?)),
            "OAUTH" => Ok(Auth::OAuth(token(false)?)),
            other => Err(ConnectionError::Unsupported(format!(
                "connection `{}` uses {}: hugflake talks to Snowflake's SQL API, which takes a key pair \
                 (authenticator = \"SNOWFLAKE_JWT\" with private_key_file), a programmatic access token \
                 (authenticator = \"PROGRAMMATIC_ACCESS_TOKEN\" with the token in token_file_path, token or \
                 password; create one with `ALTER USER <you> ADD PROGRAMMATIC ACCESS TOKEN hugflake` in \
                 Snowsight) or an OAuth token (authenticator = \"OAUTH\"). If `password` holds a programmatic \
                 access token, add authenticator = \"PROGRAMMATIC_ACCESS_TOKEN\"",
                self.name,
                if other == "SNOWFLAKE" {
                    "a password".to_string()
                } else {
                    format!("authenticator {other}")
                }
            ))),
        }
    }
}

/// The account host (connector `util_text.py` `construct_hostname`): with a region, the account's
/// first dot-separated part, then the region, then `snowflakecomputing.cn` for regions starting
/// with `cn-` and `snowflakecomputing.com` otherwise; without one (or with `us-west-2`, the
/// default region), the account as written, in `.cn` when its second part is a China region.
pub fn hostname(account: &str, region: Option<&str>) -> String {
    let china = |r: &str| r.to_ascii_lowercase().starts_with("cn-");
    match region.filter(|r| !r.is_empty() && *r != "us-west-2") {
        Some(region) => {
            let account = account.split('.').next().unwrap_or(account);
            let domain = if china(region) {
                "snowflakecomputing.cn"
            } else {
                "snowflakecomputing.com"
            };
            format!("{account}.{region}.{domain}")
        }
        None => {
            let tld = if account.split('.').nth(1).is_some_and(china) {
                "cn"
            } else {
                "com"
            };
            format!("{account}.snowflakecomputing.{tld}")
        }
    }
}

/// The directory of Snowflake's config files, as the connector's `sf_dirs.py` picks it: the
/// directory `$SNOWFLAKE_HOME` names (default `~/.snowflake`) if it exists, else the platform's
/// config directory (`$XDG_CONFIG_HOME/snowflake` or `~/.config/snowflake` on Linux,
/// `~/Library/Application Support/snowflake` on macOS). A SNOWFLAKE_HOME that does not exist is
/// passed over for the platform directory, not for `~/.snowflake`.
pub fn config_dir(env: &dyn Env, home: &Path) -> PathBuf {
    let named = env
        .var("SNOWFLAKE_HOME")
        .filter(|d| !d.is_empty())
        .map_or_else(|| home.join(".snowflake"), |d| expand_home(&d, home));
    if named.is_dir() {
        return named;
    }
    if cfg!(target_os = "macos") {
        return home
            .join("Library")
            .join("Application Support")
            .join("snowflake");
    }
    match env.var("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        Some(x) => PathBuf::from(x).join("snowflake"),
        None => home.join(".config").join("snowflake"),
    }
}

/// `~/x` → `<home>/x` (the connector expands the user in SNOWFLAKE_HOME).
fn expand_home(p: &str, home: &Path) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None if p == "~" => home.to_path_buf(),
        None => PathBuf::from(p),
    }
}

/// Why SNOWFLAKE_HOME was passed over, for `doctor` and error messages.
pub fn home_note(env: &dyn Env, home: &Path) -> Option<String> {
    let d = env.var("SNOWFLAKE_HOME").filter(|d| !d.is_empty())?;
    let path = expand_home(&d, home);
    (!path.is_dir()).then(|| {
        format!(
            "SNOWFLAKE_HOME={d} is not a directory, so it is passed over as Snowflake's own tools pass \
             over it; reading {}",
            config_dir(env, home).display()
        )
    })
}

/// Refuses a file writable by group or others; warns (returns the text) when readable by them.
pub fn check_permissions(path: &Path, env: &dyn Env) -> Result<Option<String>, ConnectionError> {
    let meta = std::fs::metadata(path).map_err(|e| ConnectionError::File {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(ConnectionError::File {
            path: path.to_path_buf(),
            detail: format!(
                "is writable by group or others (mode {mode:o}): anyone could change where your \
                 credentials go; fix it with `chmod 0600 {}`",
                path.display()
            ),
        });
    }
    let skip = env
        .var("SF_SKIP_TOKEN_FILE_PERMISSIONS_VERIFICATION")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if mode & 0o044 != 0 && !skip {
        return Ok(Some(format!(
            "{} is readable by group or others (mode {mode:o}): `chmod 0600 {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(None)
}

fn read_toml(
    path: &Path,
    env: &dyn Env,
    warnings: &mut Vec<String>,
) -> Result<Option<toml::Table>, ConnectionError> {
    if !path.exists() {
        return Ok(None);
    }
    if let Some(w) = check_permissions(path, env)? {
        warnings.push(w);
    }
    let text = crate::paths::read_user_text(path, crate::paths::SMALL_FILE).map_err(|e| {
        ConnectionError::File {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    })?;
    text.parse::<toml::Table>()
        .map(Some)
        .map_err(|e| ConnectionError::File {
            path: path.to_path_buf(),
            detail: format!("not valid TOML: {}", e.message()),
        })
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Resolves a connection: `name` (else the default one) with `flags` on top.
pub fn load(
    env: &dyn Env,
    home: &Path,
    name: Option<&str>,
    flags: &[(String, String)],
) -> Result<Connection, ConnectionError> {
    let dir = config_dir(env, home);
    let mut warnings: Vec<String> = home_note(env, home).into_iter().collect();
    let config_path = dir.join("config.toml");
    let connections_path = dir.join("connections.toml");
    let config = read_toml(&config_path, env, &mut warnings)?;
    let connections = read_toml(&connections_path, env, &mut warnings)?;
    let name = name
        .map(str::to_string)
        .or_else(|| env.var("SNOWFLAKE_DEFAULT_CONNECTION_NAME"))
        .or_else(|| {
            config
                .as_ref()
                .and_then(|c| c.get("default_connection_name"))
                .and_then(scalar)
        })
        .unwrap_or_else(|| "default".into());
    let (table, file) = match &connections {
        Some(c) => (
            c.get(&name).and_then(|t| t.as_table()).cloned(),
            connections_path.clone(),
        ),
        None => (
            config
                .as_ref()
                .and_then(|c| c.get("connections"))
                .and_then(|c| c.get(&name))
                .and_then(|t| t.as_table())
                .cloned(),
            config_path.clone(),
        ),
    };
    let upper = name.to_ascii_uppercase();
    let mut values: BTreeMap<String, (String, Source)> = BTreeMap::new();
    // Lowest first; each layer overwrites.
    // Every spelling a layer may use: the keys, then their aliases (an alias never overwrites
    // the key's own spelling in the same layer).
    let spellings: Vec<&str> = KEYS
        .iter()
        .copied()
        .chain(ALIASES.iter().map(|(a, _)| *a))
        .collect();
    let layer = |values: &mut BTreeMap<String, (String, Source)>, prefix: &str| -> bool {
        let mut any = false;
        let mut set = std::collections::BTreeSet::new();
        for spelling in &spellings {
            let var = format!("{prefix}{}", spelling.to_ascii_uppercase());
            let key = canonical(spelling);
            if let Some(v) = env.var(&var)
                && set.insert(key)
            {
                any = true;
                values.insert(key.to_string(), (v, Source::Env(var)));
            }
        }
        any
    };
    layer(&mut values, "SNOWFLAKE_");
    // SNOWFLAKE_REGION is not among the Snowflake CLI's overrides: a stray one must not move the
    // host of every connection (SNOWFLAKE_CONNECTIONS_<NAME>_REGION still sets it).
    if values
        .get("region")
        .is_some_and(|(_, src)| matches!(src, Source::Env(v) if v == "SNOWFLAKE_REGION"))
    {
        values.remove("region");
    }
    if let Some(t) = &table {
        let mut set = std::collections::BTreeSet::new();
        // Keys first, aliases after: `private_key_file` wins over `private_key_path`.
        let mut entries: Vec<(&String, &toml::Value)> = t.iter().collect();
        entries.sort_by_key(|(k, _)| canonical(k) != k.as_str());
        for (k, v) in entries {
            let key = canonical(k);
            if let Some(v) = scalar(v)
                && set.insert(key.to_string())
            {
                values.insert(key.to_string(), (v, Source::File(file.clone())));
            }
        }
    }
    let from_conn_env = layer(&mut values, &format!("SNOWFLAKE_CONNECTIONS_{upper}_"));
    for (k, v) in flags {
        values.insert(k.clone(), (v.clone(), Source::Flag));
    }
    if table.is_none() && !from_conn_env && flags.is_empty() {
        let mut shown = dir.display().to_string();
        if let Some(note) = home_note(env, home) {
            shown = format!("{shown} ({note})");
        }
        return Err(ConnectionError::NoSuchConnection {
            name,
            upper,
            dir: shown,
        });
    }
    Ok(Connection {
        name,
        values,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Vars(HashMap<String, String>);
    impl Env for Vars {
        fn var(&self, key: &str) -> Option<String> {
            self.0.get(key).cloned()
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        Vars(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn write(path: &Path, text: &str, mode: u32) {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn precedence_is_flags_then_connection_env_then_file_then_env() {
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = home.path().join(".snowflake");
        write(
            &dir.join("connections.toml"),
            "[dev]\naccount = \"file-acct\"\nuser = \"file-user\"\nrole = \"FILE_ROLE\"\nprivate_key_path = \"/k.p8\"\n",
            0o600,
        );
        write(
            &dir.join("config.toml"),
            "default_connection_name = \"dev\"\n",
            0o600,
        );
        let env = vars(&[
            ("SNOWFLAKE_USER", "env-user"),
            ("SNOWFLAKE_WAREHOUSE", "ENV_WH"),
            ("SNOWFLAKE_CONNECTIONS_DEV_ROLE", "CONN_ROLE"),
        ]);
        let c = load(
            &env,
            home.path(),
            None,
            &[("account".into(), "flag-acct".into())],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.name, "dev");
        assert_eq!(c.get("account"), Some("flag-acct"));
        assert_eq!(c.get("user"), Some("file-user"));
        assert_eq!(c.get("role"), Some("CONN_ROLE"));
        assert_eq!(c.get("warehouse"), Some("ENV_WH"));
        assert_eq!(c.get("private_key_file"), Some("/k.p8"));
        assert!(c.warnings.is_empty());
        let sources: Vec<String> = c
            .describe()
            .into_iter()
            .map(|(k, _, s)| format!("{k}={s}"))
            .collect();
        assert!(sources.contains(&"role=$SNOWFLAKE_CONNECTIONS_DEV_ROLE".to_string()));
        assert!(matches!(c.auth(&env), Ok(Auth::KeyPair { .. })));
        assert_eq!(
            c.base_url().ok().as_deref(),
            Some("https://flag-acct.snowflakecomputing.com")
        );
    }

    #[test]
    fn unsafe_files_are_refused_and_readable_ones_warned() {
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = home.path().join("sf");
        let env = vars(&[("SNOWFLAKE_HOME", dir.to_str().unwrap_or(""))]);
        write(
            &dir.join("connections.toml"),
            "[default]\naccount = \"a\"\n",
            0o666,
        );
        let err = load(&env, home.path(), None, &[])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("writable by group or others"), "{err}");
        write(
            &dir.join("connections.toml"),
            "[default]\naccount = \"a\"\n",
            0o644,
        );
        let c = load(&env, home.path(), None, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.warnings.len(), 1);
        let env2 = vars(&[
            ("SNOWFLAKE_HOME", dir.to_str().unwrap_or("")),
            ("SF_SKIP_TOKEN_FILE_PERMISSIONS_VERIFICATION", "true"),
        ]);
        assert!(
            load(&env2, home.path(), None, &[])
                .map(|c| c.warnings.is_empty())
                .unwrap_or(false)
        );
        let err = load(&env, home.path(), Some("prod"), &[])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("no Snowflake connection named `prod`"));
    }

    #[test]
    fn passwords_are_refused_with_what_works_and_secrets_are_masked() {
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let env = vars(&[
            ("SNOWFLAKE_CONNECTIONS_X_ACCOUNT", "a"),
            ("SNOWFLAKE_CONNECTIONS_X_PASSWORD", "hunter2-canary"),
        ]);
        let c = load(&env, home.path(), Some("x"), &[]).unwrap_or_else(|e| panic!("{e}"));
        let err = c
            .auth(&env)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("a password") && err.contains("PROGRAMMATIC ACCESS TOKEN"),
            "{err}"
        );
        let shown = format!("{:?}", c.describe());
        assert!(!shown.contains("hunter2-canary"), "{shown}");
        let token_file = home.path().join("pat");
        write(&token_file, "pat-secret\n", 0o600);
        let env = vars(&[
            ("SNOWFLAKE_CONNECTIONS_X_ACCOUNT", "a"),
            (
                "SNOWFLAKE_CONNECTIONS_X_AUTHENTICATOR",
                "programmatic_access_token",
            ),
            (
                "SNOWFLAKE_CONNECTIONS_X_TOKEN_FILE_PATH",
                token_file.to_str().unwrap_or(""),
            ),
        ]);
        let c = load(&env, home.path(), Some("x"), &[]).unwrap_or_else(|e| panic!("{e}"));
        match c.auth(&env) {
            Ok(Auth::Pat(t)) => assert_eq!(t.expose(), "pat-secret"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_config_directory_follows_the_connector() {
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let h = home.path();
        let platform_dir = h.join(".config").join("snowflake");
        // Nothing exists: the platform directory.
        assert_eq!(config_dir(&vars(&[]), h), platform_dir);
        // ~/.snowflake exists: it, unless SNOWFLAKE_HOME names another directory.
        std::fs::create_dir_all(h.join(".snowflake")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config_dir(&vars(&[]), h), h.join(".snowflake"));
        let missing = h.join("missing");
        let env = vars(&[("SNOWFLAKE_HOME", missing.to_str().unwrap_or(""))]);
        // A SNOWFLAKE_HOME that does not exist goes to the platform directory, not ~/.snowflake.
        assert_eq!(config_dir(&env, h), platform_dir);
        assert!(
            home_note(&env, h).is_some_and(|n| n.contains("passed over")),
            "{:?}",
            home_note(&env, h)
        );
        std::fs::create_dir_all(&missing).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config_dir(&env, h), missing);
        assert_eq!(home_note(&env, h), None);
        let xdg = vars(&[
            ("SNOWFLAKE_HOME", "/nonexistent-sf-home"),
            ("XDG_CONFIG_HOME", "/xdg"),
        ]);
        assert_eq!(config_dir(&xdg, h), PathBuf::from("/xdg/snowflake"));
    }

    #[test]
    fn hosts_follow_region_and_china() {
        assert_eq!(
            hostname("acme-prod", None),
            "acme-prod.snowflakecomputing.com"
        );
        assert_eq!(
            hostname("xy12345", Some("eu-central-1")),
            "xy12345.eu-central-1.snowflakecomputing.com"
        );
        assert_eq!(
            hostname("xy12345.whatever", Some("cn-north-1")),
            "xy12345.cn-north-1.snowflakecomputing.cn"
        );
        assert_eq!(
            hostname("xy12345.cn-northwest-1", None),
            "xy12345.cn-northwest-1.snowflakecomputing.cn"
        );
        assert_eq!(
            hostname("xy12345", Some("us-west-2")),
            "xy12345.snowflakecomputing.com"
        );
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let env = vars(&[
            ("SNOWFLAKE_CONNECTIONS_X_ACCOUNT", "xy12345"),
            ("SNOWFLAKE_CONNECTIONS_X_REGION", "cn-north-1"),
        ]);
        let c = load(&env, home.path(), Some("x"), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.base_url().ok().as_deref(),
            Some("https://xy12345.cn-north-1.snowflakecomputing.cn")
        );
    }

    #[test]
    fn key_settings_take_every_spelling_and_the_environment_passphrase_wins() {
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = home.path().join(".snowflake");
        write(
            &dir.join("connections.toml"),
            "[cli]\naccount = \"a\"\nuser = \"u\"\nprivate_key_file = \"/k.p8\"\nprivate_key_passphrase = \"from-file\"\n\
             [connector]\naccount = \"a\"\nuser = \"u\"\nprivate_key_path = \"/c.p8\"\nprivate_key_file_pwd = \"old-name\"\n",
            0o600,
        );
        let passphrase = |c: &Connection, env: &Vars| match c.auth(env) {
            Ok(Auth::KeyPair {
                private_key_file,
                passphrase,
            }) => (
                private_key_file.display().to_string(),
                passphrase.map(|p| p.expose().to_string()),
            ),
            other => panic!("{other:?}"),
        };
        let none = vars(&[]);
        let c = load(&none, home.path(), Some("cli"), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            passphrase(&c, &none),
            ("/k.p8".into(), Some("from-file".into()))
        );
        let c = load(&none, home.path(), Some("connector"), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            passphrase(&c, &none),
            ("/c.p8".into(), Some("old-name".into()))
        );
        let shown = format!("{:?}", c.describe());
        assert!(!shown.contains("old-name"), "{shown}");
        // The Snowflake CLI: PRIVATE_KEY_PASSPHRASE wins over the file.
        let env = vars(&[("PRIVATE_KEY_PASSPHRASE", "from-env")]);
        let c = load(&env, home.path(), Some("cli"), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(passphrase(&c, &env).1.as_deref(), Some("from-env"));
        // private_key_path from the environment, in both layers.
        let env = vars(&[
            ("SNOWFLAKE_CONNECTIONS_ENVONLY_ACCOUNT", "a"),
            ("SNOWFLAKE_CONNECTIONS_ENVONLY_PRIVATE_KEY_PATH", "/env.p8"),
        ]);
        let c = load(&env, home.path(), Some("envonly"), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(passphrase(&c, &env).0, "/env.p8");
        let env = vars(&[
            ("SNOWFLAKE_CONNECTIONS_ENVONLY_ACCOUNT", "a"),
            ("SNOWFLAKE_PRIVATE_KEY_PATH", "/global.p8"),
        ]);
        let c = load(&env, home.path(), Some("envonly"), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(passphrase(&c, &env).0, "/global.p8");
    }

    #[test]
    fn a_token_kept_as_password_works_with_its_authenticator() {
        let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let env = vars(&[
            ("SNOWFLAKE_CONNECTIONS_X_ACCOUNT", "a"),
            (
                "SNOWFLAKE_CONNECTIONS_X_AUTHENTICATOR",
                "PROGRAMMATIC_ACCESS_TOKEN",
            ),
            ("SNOWFLAKE_CONNECTIONS_X_PASSWORD", "pat-as-password"),
        ]);
        let c = load(&env, home.path(), Some("x"), &[]).unwrap_or_else(|e| panic!("{e}"));
        match c.auth(&env) {
            Ok(Auth::Pat(t)) => assert_eq!(t.expose(), "pat-as-password"),
            other => panic!("{other:?}"),
        }
        // As the connector: token_file_path wins over token.
        let file = home.path().join("pat");
        write(&file, "from-file\n", 0o600);
        let env = vars(&[
            ("SNOWFLAKE_CONNECTIONS_X_ACCOUNT", "a"),
            ("SNOWFLAKE_CONNECTIONS_X_TOKEN", "inline"),
            (
                "SNOWFLAKE_CONNECTIONS_X_TOKEN_FILE_PATH",
                file.to_str().unwrap_or(""),
            ),
        ]);
        let c = load(&env, home.path(), Some("x"), &[]).unwrap_or_else(|e| panic!("{e}"));
        match c.auth(&env) {
            Ok(Auth::Pat(t)) => assert_eq!(t.expose(), "from-file"),
            other => panic!("{other:?}"),
        }
        // SNOWFLAKE_REGION is not an override of every connection.
        let env = vars(&[
            ("SNOWFLAKE_CONNECTIONS_X_ACCOUNT", "a"),
            ("SNOWFLAKE_REGION", "eu-west-1"),
        ]);
        let c = load(&env, home.path(), Some("x"), &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.get("region"), None);
        // Without the authenticator a password stays a password: refused, saying what works.
        let env = vars(&[
            ("SNOWFLAKE_CONNECTIONS_X_ACCOUNT", "a"),
            ("SNOWFLAKE_CONNECTIONS_X_PASSWORD", "pat-as-password"),
        ]);
        let c = load(&env, home.path(), Some("x"), &[]).unwrap_or_else(|e| panic!("{e}"));
        let err = c
            .auth(&env)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("If `password` holds a programmatic access token")
                && !err.contains("pat-as-password"),
            "{err}"
        );
    }
}
