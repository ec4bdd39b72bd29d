//! Hostile inputs through the real binary, where a user meets them: closed pipes and full disks,
//! `--read-only` on every changing command, special files given as paths, terminal escapes in ids,
//! refused instance bounds, and messages that must say what is wrong. Each test runs in its own
//! data directories, with the Hub unreachable, bounded in time.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hugflake");

struct Sandbox {
    dir: tempfile::TempDir,
    /// The Hub the commands and the daemon talk to (nothing listens there by default).
    hub: String,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("config.toml"), "").unwrap_or_else(|e| panic!("{e}"));
        Sandbox {
            dir,
            hub: "http://127.0.0.1:9".into(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let p = self.dir.path();
        let mut c = Command::new(BIN);
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", p)
            .env("HUGFLAKE_CONFIG", p.join("config.toml"))
            .env("HUGFLAKE_DATA_DIR", p.join("data"))
            .env("HUGFLAKE_STATE_DIR", p.join("state"))
            .env("HF_HUB_CACHE", p.join("hf"))
            .env("HF_ENDPOINT", &self.hub)
            .stdin(Stdio::null());
        c
    }

    /// Runs a command to its end (at most 60 s): exit code, stdout, stderr.
    fn run_with(&self, mut cmd: Command) -> (i32, String, String) {
        let shown = format!("{:?}", cmd.get_args().collect::<Vec<_>>());
        let mut child = cmd
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let start = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("`hugflake {shown}` did not finish in 60 s");
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

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut c = self.cmd(args);
        c.stdout(Stdio::piped());
        self.run_with(c)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // A command may have started a daemon in this sandbox.
        let _ = self
            .cmd(&["serve", "--stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `hugflake status | head -1`, `hugflake catalog > /dev/full`: a closed pipe ends quietly with
/// 141, a full disk says so with exit 1; neither panics.
#[test]
fn closed_pipes_and_full_disks_end_without_a_panic() {
    let s = Sandbox::new();
    for args in [&["catalog"][..], &["config"], &["catalog", "--json"]] {
        let (reader, writer) = std::io::pipe().unwrap_or_else(|e| panic!("{e}"));
        drop(reader);
        let mut c = s.cmd(args);
        c.stdout(writer);
        let (code, _, err) = s.run_with(c);
        assert_eq!(code, 141, "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} said something: {err}");

        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut c = s.cmd(args);
        c.stdout(full);
        let (code, _, err) = s.run_with(c);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains("cannot write to standard output") && err.contains("No space left"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// Every changing command is refused under `--read-only`, on the commands that go through the
/// platform (a daemon is started to answer them) and on those that do not.
#[test]
fn read_only_refuses_every_change() {
    let s = Sandbox::new();
    // An on-call screen does not start a daemon: it says so.
    let (code, _, err) = s.run(&["--read-only", "status"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--read-only does not start one"), "{err}");
    assert!(!s.path("data/daemon.json").exists());
    let (code, _, err) = s.run(&["status"]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(s.path("notes.csv"), "NOTE_ID,NOTE_TEXT\n1,fever\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let notes = s.path("notes.csv").display().to_string();
    let changes: Vec<Vec<&str>> = vec![
        vec!["serve", "--stop"],
        vec!["download", "org/model"],
        vec!["batch", "embed", "--service", "X_SVC", "--input", &notes],
        vec!["suspend", "pool", "LOCAL_CPU"],
        vec!["resume", "pool", "LOCAL_CPU"],
        vec!["suspend", "service", "X_SVC"],
        vec!["import", "org/model", "--detach"],
        vec!["cancel", "J123"],
        vec!["retry", "J123"],
        vec!["drop", "service", "X_SVC"],
        vec!["drop", "model", "X"],
    ];
    for args in &changes {
        let mut full = vec!["--read-only"];
        full.extend(args.iter().copied());
        let (code, _, err) = s.run(&full);
        assert_eq!(code, 1, "{args:?} ran: {err}");
        assert!(err.contains("read-only"), "{args:?}: {err}");
    }
    // Nothing changed: the pool still runs, and reading still works under the flag.
    let (code, out, err) = s.run(&["--read-only", "status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let status: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let pool = status["pools"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "LOCAL_CPU"))
        .cloned()
        .unwrap_or_default();
    assert_ne!(pool["state"], "SUSPENDED", "{pool}");
    assert!(
        status["jobs"].as_array().is_none_or(|j| j.is_empty()),
        "{status}"
    );
}

/// A FIFO, `/dev/zero` or a directory given as a path is refused at once, never read.
#[test]
fn special_files_given_as_paths_are_refused() {
    let s = Sandbox::new();
    let (code, _, err) = s.run(&["--config", "/dev/zero", "config"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    let fifo = s.path("notes.csv");
    let made = Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|m| m.success()), "mkfifo failed");
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-biomedclip");
    let (code, out, err) = s.run(&[
        "predict",
        "--model-dir",
        &model.display().to_string(),
        "--image",
        &fifo.display().to_string(),
        "--labels",
        "chest x-ray,brain MRI",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("not a regular file"), "{out}{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Ids with terminal escapes are printed escaped (batch search --pairs reads only the cache).
#[test]
fn escapes_in_ids_never_reach_the_terminal() {
    let s = Sandbox::new();
    let cache_path = s.path("cache.sqlite");
    let mut cache =
        hugflake::batch::cache::Cache::open(&cache_path).unwrap_or_else(|e| panic!("{e}"));
    let evil = "\u{1b}]0;PWNED\u{7}\u{1b}[2J";
    cache
        .store(
            "M",
            "V1",
            &[
                (evil.to_string(), "h1".into(), vec![1.0, 0.0]),
                ("N2".into(), "h2".into(), vec![0.9, 0.1]),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    drop(cache);
    let (code, out, err) = s.run(&[
        "batch",
        "search",
        "--pairs",
        "--cache",
        &cache_path.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    assert!(out.contains("\\x1b]0;PWNED\\x07"), "{out}");
}

/// Instance bounds are refused with SPCS's rule, never adjusted.
#[test]
fn invalid_instance_bounds_are_refused() {
    let s = Sandbox::new();
    let (code, _, err) = s.run(&[
        "import",
        "org/model",
        "--min-instances",
        "3",
        "--max-instances",
        "1",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("min instances (3) is above max instances (1)"),
        "{err}"
    );
    let (code, _, err) = s.run(&["import", "org/model", "--max-instances", "0"]);
    assert_eq!(code, 1);
    assert!(err.contains("max instances is 0"), "{err}");
}

/// `config --print-default` works while the user's file is broken (it is what to compare with).
#[test]
fn print_default_does_not_read_the_users_config() {
    let s = Sandbox::new();
    std::fs::write(s.path("config.toml"), "[ui\ntheme = ").unwrap_or_else(|e| panic!("{e}"));
    let (code, out, err) = s.run(&["config", "--print-default"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("[keymap]"), "{out}");
    let (code, _, err) = s.run(&["config"]);
    assert_eq!(code, 1);
    assert!(err.contains("config.toml"), "{err}");
}

/// Two imports onto one service name sent at once: the second is refused at once, naming the
/// first job (the check and the job's creation happen under the registry's lock).
#[test]
fn concurrent_imports_onto_one_service_name_refuse_the_second() {
    // A Hub that accepts connections and never answers: the first job stays in its first stage.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let mut s = Sandbox::new();
    s.hub = format!(
        "http://{}",
        silent.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    // The daemon first, so both imports race on the registry, not on starting it.
    let (code, _, err) = s.run(&["status"]);
    assert_eq!(code, 0, "{err}");
    let spawn = |model: &str| {
        s.cmd(&["import", model, "--service", "SHARED_SVC", "--detach"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let (a, b) = (spawn("org/model-a"), spawn("org/model-b"));
    let outcomes: Vec<(i32, String)> = [a, b]
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
            (
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stderr).to_string(),
            )
        })
        .collect();
    let ok = outcomes.iter().filter(|(c, _)| *c == 0).count();
    assert_eq!(ok, 1, "{outcomes:?}");
    let refused = outcomes
        .iter()
        .find(|(c, _)| *c != 0)
        .map(|(_, e)| e.clone())
        .unwrap_or_default();
    assert!(
        refused.contains("is already importing a model into service SHARED_SVC"),
        "{refused}"
    );
    drop(silent);
}

/// A job whose end cannot be written (a full disk, injected) is not stuck: `cancel` records it,
/// and `retry` takes it over.
#[test]
fn a_job_whose_end_cannot_be_written_can_be_cancelled_and_retried() {
    let s = Sandbox::new();
    let jobs = |s: &Sandbox| -> Vec<serde_json::Value> {
        let (code, out, err) = s.run(&["jobs", "--json"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let state_of = |s: &Sandbox, id: &str| {
        jobs(s)
            .into_iter()
            .find(|j| j["id"] == id)
            .map(|j| j["state"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    // The daemon this starts inherits the fault: every job's end fails to be written.
    let mut c = s.cmd(&["import", "org/model-a", "--detach"]);
    c.env("HUGFLAKE_FAULT", "job-end-write")
        .stdout(Stdio::piped());
    let (code, _, err) = s.run_with(c);
    assert_eq!(code, 0, "{err}");
    let mut c = s.cmd(&["import", "org/model-b", "--detach"]);
    c.env("HUGFLAKE_FAULT", "job-end-write")
        .stdout(Stdio::piped());
    let (code, _, err) = s.run_with(c);
    assert_eq!(code, 0, "{err}");
    let ids: Vec<String> = jobs(&s)
        .iter()
        .map(|j| j["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    // The Hub is unreachable: resolve fails at once, and the end is tried for about 3 s.
    // Nobody waits for it: it is shown failed, saying why.
    std::thread::sleep(Duration::from_secs(6));
    for id in &ids {
        assert_eq!(state_of(&s, id), "failed", "{id} still looks running");
    }
    let (code, _, err) = s.run(&["cancel", &ids[0]]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(state_of(&s, &ids[0]), "cancelled");
    // Retry takes the other over (it fails again, as the fault is still there, and says so).
    let (_, _, err) = s.run(&["retry", &ids[1]]);
    assert!(!err.contains("can be retried"), "{err}");
    assert!(err.contains("stopped without recording its end"), "{err}");
}

/// The daemon downloads with the Hub settings it was started with: an import from a shell with
/// another HF_TOKEN is refused, saying which differ and how to restart it, never the token.
#[test]
fn an_import_with_other_hub_settings_than_the_daemons_is_refused() {
    let s = Sandbox::new();
    let (code, _, err) = s.run(&["status"]);
    assert_eq!(code, 0, "{err}");
    let secret = "hf_CallerTokenThatMustNotBePrinted";
    let mut c = s.cmd(&["import", "org/gated-model", "--detach"]);
    c.env("HF_TOKEN", secret).stdout(Stdio::piped());
    let (code, out, err) = s.run_with(c);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("no HF token (you have one)") && err.contains("hugflake serve --stop"),
        "{err}"
    );
    assert!(!err.contains(secret) && !out.contains(secret));
    let (code, out, _) = s.run(&["jobs", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "[]", "a job was created: {out}");
}

/// A daemon that cannot start (its socket path is a directory) writes the cause to its log, and
/// the command that started it quotes it instead of only pointing at the log.
#[test]
fn a_daemon_that_cannot_start_says_why() {
    let s = Sandbox::new();
    let data = s.path("data");
    std::fs::create_dir_all(data.join("daemon.sock")).unwrap_or_else(|e| panic!("{e}"));
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let (code, _, err) = s.run(&["status"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("it said:"), "{err}");
    let log = std::fs::read_to_string(s.path("state/daemon.log")).unwrap_or_default();
    assert!(log.contains("ERROR"), "nothing in the daemon's log: {log}");
}

/// With the Hub out of reach, `search` answers from the catalog and the cache (exit 0) and says on
/// stderr that the Hub was not asked.
#[test]
fn search_offline_answers_from_the_catalog_and_the_cache() {
    let s = Sandbox::new();
    let mut cmd = s.cmd(&["search", "biomedical ner", "--json"]);
    cmd.env("HF_HUB_OFFLINE", "1").stdout(Stdio::piped());
    let (code, out, err) = s.run_with(cmd);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("the Hub was not asked"), "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let handles: Vec<&str> = rows
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["handle"].as_str())
        .collect();
    assert!(
        handles.contains(&"d4data/biomedical-ner-all"),
        "{handles:?}"
    );
    assert!(!handles.contains(&"sentence-transformers/all-MiniLM-L6-v2"));
    // An unreachable Hub is the same.
    let (code, out, err) = s.run(&["search", "clip", "--task", "zero-shot-image-classification"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("flaviagiammarino/pubmed-clip-vit-base-patch32"),
        "{out}"
    );
    assert!(err.contains("cannot reach the Hub"), "{err}");
}
