//! The simulator set up for a test: a temp dir, the SQL API simulator, a connection `sim` to it
//! through `SNOWFLAKE_CONNECTIONS_SIM_*` variables, and helpers to import and wait.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hugflake::domain::{ImportSpec, JobState};
use hugflake::paths::Env;
use hugflake::platform::Platform;
use hugflake::platform::snowflake::{InferenceRoute, SnowflakePlatform, connection};

use super::snowflake_server::{PAT, SnowflakeSim};

pub struct Vars(pub HashMap<String, String>);
impl Env for Vars {
    fn var(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
}

pub fn vars(pairs: &[(&str, String)]) -> Vars {
    Vars(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub sim: SnowflakeSim,
}

impl Setup {
    pub async fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let sim = SnowflakeSim::start().await;
        sim.state().step = Duration::from_millis(300);
        Setup { dir, sim }
    }

    pub fn env(&self, auth: &[(&str, String)]) -> Vars {
        let mut pairs = vec![
            (
                "SNOWFLAKE_HOME",
                self.dir.path().join("sf").display().to_string(),
            ),
            (
                "SNOWFLAKE_CONNECTIONS_SIM_ACCOUNT",
                "sim12345.us-east-1".to_string(),
            ),
            ("SNOWFLAKE_CONNECTIONS_SIM_USER", "hugflake".to_string()),
            ("SNOWFLAKE_CONNECTIONS_SIM_DATABASE", "ml".to_string()),
            ("SNOWFLAKE_CONNECTIONS_SIM_SCHEMA", "public".to_string()),
            ("SNOWFLAKE_CONNECTIONS_SIM_ROLE", "ML_ENGINEER".to_string()),
            ("SNOWFLAKE_CONNECTIONS_SIM_WAREHOUSE", "ML_WH".to_string()),
            ("SNOWFLAKE_CONNECTIONS_SIM_HOST", "127.0.0.1".to_string()),
            (
                "SNOWFLAKE_CONNECTIONS_SIM_PORT",
                self.sim.addr.port().to_string(),
            ),
            ("SNOWFLAKE_CONNECTIONS_SIM_PROTOCOL", "http".to_string()),
        ];
        pairs.extend(auth.iter().cloned());
        vars(&pairs)
    }

    pub fn platform(&self, route: InferenceRoute) -> SnowflakePlatform {
        let env = self.env(&[
            (
                "SNOWFLAKE_CONNECTIONS_SIM_AUTHENTICATOR",
                "PROGRAMMATIC_ACCESS_TOKEN".into(),
            ),
            ("SNOWFLAKE_CONNECTIONS_SIM_TOKEN", PAT.into()),
        ]);
        let conn = connection::load(&env, self.dir.path(), Some("sim"), &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let mut p = SnowflakePlatform::new(&conn, &env, &self.dir.path().join("data"), route)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_poll_every(Duration::from_millis(100));
        let api = std::sync::Arc::get_mut(&mut p.api).map(|a| {
            a.pacing.first_poll = Duration::from_millis(50);
            a.pacing.first_retry = Duration::from_millis(20);
            a.pacing.request_timeout = Duration::from_secs(2);
        });
        assert!(api.is_some());
        p
    }
}

pub fn spec(handle: &str, task: &str, model: &str) -> ImportSpec {
    let mut s = ImportSpec::with_defaults(handle, "ML_CPU_POOL");
    s.task = Some(task.into());
    s.model = model.into();
    s.service = format!("{model}_SVC");
    s
}

pub async fn wait_job(p: &SnowflakePlatform, id: &str) -> hugflake::domain::JobDetail {
    let start = Instant::now();
    loop {
        let d = p
            .job(id, None, Some(Duration::from_millis(300)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if !matches!(d.summary.state, JobState::Queued | JobState::Running) {
            return d;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "job still {:?} at {:?}",
            d.summary.state,
            d.summary.stage
        );
    }
}

/// Runs openssl (the tests check JWTs against it and make keys with it).
pub fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    if let Some(i) = input
        && let Some(mut stdin) = child.stdin.take()
    {
        let _ = stdin.write_all(i);
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An RSA key pair: the plain PKCS#8 key and the same key encrypted with `canary-passphrase`.
pub fn keys(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let plain = dir.join("rsa_key.p8");
    let enc = dir.join("rsa_key_enc.p8");
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            plain.to_str().unwrap_or(""),
        ],
        None,
    );
    openssl(
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            plain.to_str().unwrap_or(""),
            "-out",
            enc.to_str().unwrap_or(""),
            "-passout",
            "pass:canary-passphrase",
        ],
        None,
    );
    (plain, enc)
}
