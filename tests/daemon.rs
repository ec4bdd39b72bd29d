//! The local daemon and the headless commands, through the real binary and real HTTP on the
//! daemon's Unix socket. Each test has its own data dir and daemon.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hugflake");

struct Sandbox {
    dir: tempfile::TempDir,
    children: Vec<Child>,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("config.toml"),
            "[daemon]\nimport_concurrency = 1\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Sandbox {
            dir,
            children: Vec::new(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn data(&self) -> PathBuf {
        self.path("data")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("HUGFLAKE_CONFIG", self.path("config.toml"))
            .env("HUGFLAKE_DATA_DIR", self.data())
            .env("HUGFLAKE_STATE_DIR", self.path("state"))
            .env("HF_HUB_CACHE", self.path("hf"))
            .stdin(Stdio::null());
        c
    }

    /// Runs a command to completion, failing the test if it takes longer than 30 s (a background
    /// daemon holding our pipes would make it hang).
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(self.cmd(args))
    }

    fn run_with(&self, mut cmd: Command) -> Output {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let start = Instant::now();
        loop {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("command did not finish in 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `hugflake serve` in the foreground as a child and waits until it answers.
    fn serve(&mut self) -> (PathBuf, String) {
        let child = self
            .cmd(&["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        self.children.push(child);
        self.wait_ready()
    }

    fn wait_ready(&self) -> (PathBuf, String) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let (Ok(info), Ok(token)) = (
                std::fs::read_to_string(self.data().join("daemon.json")),
                std::fs::read_to_string(self.data().join("token")),
            ) && let Ok(v) = serde_json::from_str::<Value>(&info)
            {
                let socket = PathBuf::from(v["socket"].as_str().unwrap_or_default());
                if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                    return (socket, token.trim().to_string());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("daemon did not start");
    }

    fn wait_child_exit(&mut self, i: usize) -> std::process::ExitStatus {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(status)) = self.children[i].try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("daemon did not exit");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self
            .cmd(&["serve", "--stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// A client of the daemon's socket, as `hugflake` itself talks to it.
fn client(socket: &Path) -> reqwest::Client {
    reqwest::Client::builder()
        .unix_socket(socket)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn get(socket: &Path, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = client(socket).get(format!("http://daemon{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn post(socket: &Path, path: &str, token: &str) -> (u16, Value) {
    let resp = client(socket)
        .post(format!("http://daemon{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

#[tokio::test]
async fn every_call_needs_the_token() {
    let mut sb = Sandbox::new();
    let (sock, token) = sb.serve();
    assert_eq!(mode(&sb.data().join("token")), 0o600);
    assert_eq!(token.len(), 64);

    let (status, body) = get(&sock, "/v1/pools", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    let (status, _) = get(&sock, "/v1/health", Some("not-the-token")).await;
    assert_eq!(status, 401);
    let (status, _) = get(&sock, "/v1/nothing", None).await;
    assert_eq!(
        status, 401,
        "unknown routes are refused before anything else"
    );

    let (status, body) = get(&sock, "/v1/pools", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["name"], "LOCAL_CPU");
    assert_eq!(body[0]["state"], "IDLE");
    assert!(body[0]["vcpu"].as_f64().unwrap_or(0.0) >= 1.0);
    assert!(body[0]["memory_gib"].as_f64().unwrap_or(0.0) > 0.0);
    let (status, body) = get(&sock, "/v1/health", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    for path in ["/v1/services", "/v1/models", "/v1/jobs"] {
        let (status, body) = get(&sock, path, Some(&token)).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(body, Value::Array(vec![]), "{path}");
    }
    let (status, body) = get(&sock, "/v1/nothing", Some(&token)).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    let (status, body) = post(&sock, "/v1/pools/NO_SUCH_POOL/suspend", &token).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("NO_SUCH_POOL"))
    );

    // The token never reaches the daemon's log.
    let log = std::fs::read_to_string(sb.path("state/daemon.log")).unwrap_or_default();
    assert!(log.contains("daemon listening"), "log: {log}");
    assert!(!log.contains(&token));
}

#[tokio::test]
async fn a_second_serve_is_refused_while_one_runs() {
    let mut sb = Sandbox::new();
    sb.serve();
    let out = sb.run(&["serve"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("already runs"), "{err}");
    assert!(err.contains("hugflake serve --stop"), "{err}");
}

#[tokio::test]
async fn the_registry_survives_a_restart_and_stop_is_clean() {
    let mut sb = Sandbox::new();
    let (sock, token) = sb.serve();
    let (status, body) = post(&sock, "/v1/pools/LOCAL_CPU/suspend", &token).await;
    assert_eq!(status, 200);
    assert_eq!(body["state"], "SUSPENDED");

    let out = sb.run(&["serve", "--stop"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("stopped the local daemon"));
    assert!(sb.wait_child_exit(0).success());
    assert!(!sb.data().join("daemon.json").exists());
    assert!(!sb.data().join("token").exists());

    let (sock, new_token) = sb.serve();
    assert_ne!(token, new_token, "every start has a new token");
    let (_, body) = get(&sock, "/v1/pools", Some(&new_token)).await;
    assert_eq!(body.as_array().map(Vec::len), Some(1), "seeded once only");
    assert_eq!(body[0]["state"], "SUSPENDED");
    let (_, body) = post(&sock, "/v1/pools/LOCAL_CPU/resume", &new_token).await;
    assert_eq!(body["state"], "IDLE");

    let out = sb.run(&["serve", "--stop"]);
    assert_eq!(out.status.code(), Some(0));
    let out = sb.run(&["serve", "--stop"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("no local daemon runs"));
}

#[tokio::test]
async fn a_killed_daemon_does_not_block_a_restart() {
    let mut sb = Sandbox::new();
    sb.serve();
    sb.children[0].kill().unwrap_or_else(|e| panic!("{e}"));
    let _ = sb.children[0].wait();
    assert!(
        sb.data().join("daemon.json").exists(),
        "a SIGKILLed daemon leaves its files behind"
    );
    let out = sb.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("started the local daemon in the background"));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["pools"][0]["name"], "LOCAL_CPU");
}

#[test]
fn status_starts_a_background_daemon_once_and_prints_the_pool() {
    let sb = Sandbox::new();
    let out = sb.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("started the local daemon in the background"));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["status"]["kind"], "local");
    assert_eq!(v["pools"][0]["name"], "LOCAL_CPU");
    assert_eq!(v["pools"][0]["state"], "IDLE");
    assert_eq!(v["services"], Value::Array(vec![]));

    // A second call finds it; JSON mode says nothing on stderr then.
    let out = sb.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stderr), "");
    let out = sb.run(&["status"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("LOCAL_CPU") && stdout.contains("IDLE"),
        "{stdout}"
    );
    assert!(stdout.contains("none yet"), "{stdout}");

    let out = sb.run(&["doctor"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("running: pid"), "{stdout}");
    // The cost of one refresh, measured: status, pools, services, models, jobs.
    assert!(
        stdout.contains("local daemon: one refresh = 5 requests"),
        "{stdout}"
    );
}

#[test]
fn exit_codes_and_usage() {
    let sb = Sandbox::new();
    let out = sb.run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    for args in [
        &["launch"][..],
        &["status", "--yaml"],
        &["serve", "--port", "0"],
    ] {
        let out = sb.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains("error:"), "{args:?}");
    }
    for sub in ["serve", "status", "catalog", "config", "doctor", "tui"] {
        let out = sb.run(&[sub, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{sub} --help");
    }
}

#[test]
fn invalid_config_is_refused_with_file_and_line() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path("config.toml"),
        "[daemon]\nimport_concurrency = 1\n\n[ui]\ntheme = \"neon\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = sb.run(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("config.toml:5:9"), "{err}");
    assert!(err.contains("expected `default` or `colorblind`"), "{err}");
    assert!(!sb.data().join("daemon.json").exists(), "nothing started");

    let mut cmd = sb.cmd(&["doctor"]);
    cmd.env("HUGFLAKE_CONFIG", sb.path("missing.toml"));
    let out = sb.run_with(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("missing.toml"));
}

#[test]
fn config_print_default_is_the_embedded_file() {
    let sb = Sandbox::new();
    let out = sb.run(&["config", "--print-default"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), hugflake::config::DEFAULT_CONFIG);
    let out = sb.run(&["config"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("daemon.start_timeout_secs"), "{stdout}");
    assert!(stdout.contains("config.toml:2"), "{stdout}");
}

#[test]
fn doctor_masks_secrets() {
    let sb = Sandbox::new();
    let mut cmd = sb.cmd(&["doctor"]);
    cmd.env("HF_TOKEN", "hf_VerySecretValue123");
    let out = sb.run_with(cmd);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("hf_VerySecretValue123"));
    assert!(stdout.contains("HF_TOKEN=set (********)"), "{stdout}");
    assert!(stdout.contains("$HF_HUB_CACHE"), "{stdout}");
    assert!(stdout.contains("not running"), "{stdout}");
    let mut cmd = sb.cmd(&["doctor", "--json"]);
    cmd.env("HF_TOKEN", "hf_VerySecretValue123");
    let out = sb.run_with(cmd);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert!(!v.to_string().contains("hf_VerySecretValue123"));
    assert_eq!(v["daemon"]["state"], "not_running");
}

#[test]
fn catalog_lists_the_reference_models_and_the_cache() {
    let sb = Sandbox::new();
    // A cached repo in huggingface_hub's layout.
    let repo = sb.path("hf/models--prajjwal1--bert-tiny");
    let commit = "6f75de8b60a9f8a2fdf7b69cbd86d9e64bcb3837";
    std::fs::create_dir_all(repo.join("blobs")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(repo.join("refs")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(repo.join("snapshots").join(commit)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        repo.join("blobs/abc"),
        r#"{"architectures": ["BertModel"]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(
        "../../blobs/abc",
        repo.join("snapshots").join(commit).join("config.json"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(repo.join("refs/main"), commit).unwrap_or_else(|e| panic!("{e}"));

    let out = sb.run(&["catalog", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let rows = v.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[0]["handle"], "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(rows[2]["snowflake"]["supported"], false);
    assert_eq!(
        rows[1]["alternatives"][0]["handle"],
        "d4data/biomedical-ner-all"
    );
    assert_eq!(rows[6]["handle"], "prajjwal1/bert-tiny");
    assert_eq!(rows[6]["source"], "cache");
    assert_eq!(rows[6]["task"], "feature-extraction");
    assert_eq!(rows[6]["cache"]["revisions"][0]["refs"][0], "main");

    let out = sb.run(&["catalog"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("BiomedCLIP") && stdout.contains("not supported"),
        "{stdout}"
    );
}

/// A private data dir as the daemon makes it (0700).
fn private_dir(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_of_another_version_is_reported_with_what_to_do() {
    use axum::routing::get;
    let sb = Sandbox::new();
    private_dir(&sb.data());
    // A stand-in daemon: holds the lock and answers health on the socket with another version.
    let lock =
        std::fs::File::create(sb.data().join("daemon.lock")).unwrap_or_else(|e| panic!("{e}"));
    lock.try_lock().unwrap_or_else(|e| panic!("{e}"));
    let listener = tokio::net::UnixListener::bind(sb.data().join("daemon.sock"))
        .unwrap_or_else(|e| panic!("{e}"));
    let app = axum::Router::new().route(
        "/v1/health",
        get(|| async {
            axum::Json(serde_json::json!({
                "pid": 1, "socket": "/x/daemon.sock", "version": "0.0.1", "api": 1,
                "started_at": "2026-01-01T00:00:00Z", "data_dir": "/x"
            }))
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    std::fs::write(sb.data().join("token"), "t").unwrap_or_else(|e| panic!("{e}"));
    let out = tokio::task::spawn_blocking(move || {
        let out = sb.run(&["status"]);
        drop(sb);
        out
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    drop(lock);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("version 0.0.1") && err.contains("hugflake serve --stop"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_api_is_a_private_socket_and_no_impostor_hears_anything() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let sb = Sandbox::new();
    private_dir(&sb.data());
    // What a dead daemon leaves, and something else listening where its socket was: a stale
    // daemon.json and token, and a listener that counts every connection it gets.
    let planted = tokio::net::UnixListener::bind(sb.data().join("daemon.sock"))
        .unwrap_or_else(|e| panic!("{e}"));
    let heard = Arc::new(AtomicUsize::new(0));
    let count = heard.clone();
    tokio::spawn(async move {
        while planted.accept().await.is_ok() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    std::fs::write(sb.data().join("token"), "stale-token").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        sb.data().join("daemon.json"),
        serde_json::json!({"pid": 1, "socket": sb.data().join("daemon.sock"), "version": "0.0.1",
                           "api": 1, "started_at": "2026-01-01T00:00:00Z", "data_dir": "/x"})
        .to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // No daemon holds the lock: the client starts a fresh one instead of talking to the socket.
    let (sock, token) = tokio::task::block_in_place(|| {
        let out = sb.run(&["status"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        sb.wait_ready()
    });
    assert_eq!(
        heard.load(Ordering::SeqCst),
        0,
        "the planted listener heard nothing"
    );
    assert_ne!(token, "stale-token");
    let meta = std::fs::symlink_metadata(&sock).unwrap_or_else(|e| panic!("{e}"));
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(mode(&sb.data()), 0o700);
    let info: Value = serde_json::from_str(
        &std::fs::read_to_string(sb.data().join("daemon.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    assert!(info.get("port").is_none(), "no TCP control port: {info}");

    // A body over the cap: 413 with what the cap is, answered on the declared length before a
    // byte of the body is read.
    let answer = tokio::task::block_in_place(|| {
        use std::io::{Read, Write};
        let mut conn =
            std::os::unix::net::UnixStream::connect(&sock).unwrap_or_else(|e| panic!("{e}"));
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap_or_else(|e| panic!("{e}"));
        let head = format!(
            "POST /v1/jobs HTTP/1.1\r\nHost: daemon\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            2 * 1024 * 1024
        );
        conn.write_all(head.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        answer
    });
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("\"TOO_LARGE\"") && answer.contains("1024 KiB"),
        "{answer}"
    );

    // A data dir that group or others can open is refused before anything is sent.
    std::fs::set_permissions(sb.data(), std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = tokio::task::block_in_place(|| sb.run(&["status"]));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("mode 755") && err.contains("chmod 700"),
        "{err}"
    );
    std::fs::set_permissions(sb.data(), std::fs::Permissions::from_mode(0o700))
        .unwrap_or_else(|e| panic!("{e}"));
}
