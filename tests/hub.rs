//! The Hub client and the download engine against the Hub test server on 127.0.0.1.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hugflake::hub::api::{HubApiError, HubClient, SearchQuery};
use hugflake::hub::download::{
    DownloadError, DownloadRequest, Downloader, ProgressEvent, ProgressTotals, Retry, repo_folder,
};
use hugflake::hub::settings::HubSettings;
use hugflake::secret::Secret;
use support::hub_server::{HubServer, Repo, TOKEN};

const TINY: &str = "hugflake-test/tiny-bert";
const TINY_COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn repos() -> Vec<Repo> {
    let mut tiny = Repo::from_dir(TINY, TINY_COMMIT, &fixture("tiny-bert"));
    tiny.pipeline_tag = Some("sentence-similarity".into());
    tiny.library = Some("sentence-transformers".into());
    tiny.downloads = 50;
    let mut gated = Repo::new(
        "hugflake-test/gated",
        "1111111111111111111111111111111111111111",
    )
    .file("config.json", "{}")
    .file("model.safetensors", vec![7u8; 20_000]);
    gated.gated = true;
    let mut rows = vec![tiny, gated];
    for i in 1..=5 {
        let mut r = Repo::new(&format!("org-a/model-{i}"), &format!("{i:040}"))
            .file("config.json", format!("{{\"i\": {i}}}"));
        r.downloads = i * 10;
        r.pipeline_tag = Some(
            if i % 2 == 0 {
                "fill-mask"
            } else {
                "feature-extraction"
            }
            .into(),
        );
        rows.push(r);
    }
    rows
}

struct Env {
    server: HubServer,
    cache: tempfile::TempDir,
}

impl Env {
    async fn new() -> Env {
        Env {
            server: HubServer::start(repos()).await,
            cache: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
        }
    }

    fn settings(&self, token: Option<&str>) -> HubSettings {
        HubSettings {
            endpoint: self.server.endpoint(),
            token: token.map(Secret::new),
            token_source: None,
            offline: false,
            cache_dir: self.cache.path().to_path_buf(),
        }
    }

    fn client(&self) -> HubClient {
        HubClient::new(self.settings(None))
    }

    fn downloader(&self) -> Downloader {
        let mut d = Downloader::new(self.client());
        d.retry = Retry {
            attempts: 4,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
        };
        d
    }

    fn repo_dir(&self, repo: &str) -> PathBuf {
        self.cache.path().join(repo_folder(repo))
    }
}

fn tiny_req() -> DownloadRequest {
    DownloadRequest {
        repo: TINY.into(),
        revision: "main".into(),
        include: None,
    }
}

fn fixture_total() -> u64 {
    repos()[0].files.iter().map(|f| f.size()).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn search_follows_pagination_and_filters() {
    let env = Env::new().await;
    let client = env.client();
    let q = SearchQuery {
        search: Some("model-".into()),
        sort: Some("downloads".into()),
        ..Default::default()
    };
    let mut page = client.search(&q).await.unwrap_or_else(|e| panic!("{e}"));
    let mut ids: Vec<String> = page.models.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids, ["org-a/model-5", "org-a/model-4"]);
    while let Some(next) = page.next.clone() {
        page = client
            .search_page(&next)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        ids.extend(page.models.iter().map(|m| m.id.clone()));
    }
    assert_eq!(ids.len(), 5);
    assert_eq!(ids.last().map(String::as_str), Some("org-a/model-1"));

    let q = SearchQuery {
        author: Some("hugflake-test".into()),
        pipeline_tag: Some("sentence-similarity".into()),
        ..Default::default()
    };
    let page = client.search(&q).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.models.len(), 1);
    assert_eq!(
        page.models[0].library_name.as_deref(),
        Some("sentence-transformers")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn model_info_and_tree() {
    let env = Env::new().await;
    let client = env.client();
    let info = client
        .model_info(TINY, "main")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.sha.as_deref(), Some(TINY_COMMIT));
    assert!(!info.is_gated());
    assert_eq!(info.license().as_deref(), Some("apache-2.0"));
    let gated = client
        .model_info("hugflake-test/gated", "main")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(gated.is_gated());
    // 11 files over pages of 4.
    let tree = client
        .tree(TINY, TINY_COMMIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tree.len(), 11);
    let weights = tree.iter().find(|e| e.path == "model.safetensors");
    assert!(weights.is_some_and(|w| w.lfs.is_some() && w.content_size() == 207_816));
    let err = client.model_info("nobody/nothing", "main").await.err();
    assert!(matches!(err, Some(HubApiError::NotFound { .. })), "{err:?}");
    let err = client.model_info(TINY, "v9").await.err();
    assert!(matches!(err, Some(HubApiError::NotFound { .. })), "{err:?}");

    let offline = HubClient::new(HubSettings {
        offline: true,
        ..env.settings(None)
    });
    assert_eq!(
        offline.search(&SearchQuery::default()).await.err(),
        Some(HubApiError::Offline)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn downloads_a_repo_into_the_huggingface_cache_layout() {
    let env = Env::new().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let done = env
        .downloader()
        .with_progress(tx)
        .snapshot(&tiny_req())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(done.commit, TINY_COMMIT);
    assert_eq!(done.files.len(), 11);
    assert_eq!(done.fetched_bytes(), fixture_total());
    let dir = env.repo_dir(TINY);
    assert_eq!(
        std::fs::read_to_string(dir.join("refs/main")).unwrap_or_default(),
        TINY_COMMIT
    );
    // Every file reads back identical through its snapshot symlink, which points into blobs/.
    for f in &repos()[0].files {
        let link = dir.join("snapshots").join(TINY_COMMIT).join(&f.path);
        assert!(std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()));
        let target = std::fs::read_link(&link).unwrap_or_default();
        assert!(target.to_string_lossy().contains("blobs/"), "{target:?}");
        assert_eq!(
            std::fs::read(&link).unwrap_or_default(),
            *f.bytes,
            "{}",
            f.path
        );
        let blob = f.lfs.clone().unwrap_or_else(|| f.git_oid.clone());
        assert!(dir.join("blobs").join(&blob).exists(), "blob named {blob}");
    }
    // Sizes and names came from the tree: no HEAD requests at all.
    assert!(env.server.requests().iter().all(|r| !r.starts_with("HEAD")));
    assert_eq!(env.server.bytes_served(), fixture_total());

    let mut totals = ProgressTotals::default();
    while let Ok(e) = rx.try_recv() {
        totals.apply(&e);
    }
    assert_eq!(totals.total, fixture_total());
    assert_eq!(totals.done(), fixture_total());
    assert_eq!(totals.files_done, 11);

    // Our scanner sees what we wrote.
    let cached = hugflake::hub::cache::scan(env.cache.path()).unwrap_or_default();
    assert_eq!(cached[0].repo_id, TINY);
    assert_eq!(cached[0].revisions[0].refs, ["main"]);
    assert_eq!(cached[0].library.as_deref(), Some("sentence-transformers"));

    // A second run fetches nothing.
    let again = env
        .downloader()
        .snapshot(&tiny_req())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(again.files.iter().all(|f| f.reused));
    assert_eq!(env.server.bytes_served(), fixture_total());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_connection_resumes_without_refetching() {
    let env = Env::new().await;
    env.server
        .faults()
        .drop_after
        .insert("model.safetensors".into(), 100_000);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let done = env
        .downloader()
        .with_progress(tx)
        .snapshot(&tiny_req())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(done.files.len(), 11);
    // Each byte crossed the wire once: the second request asked for the rest only.
    assert_eq!(env.server.bytes_served(), fixture_total());
    let mut resumed = None;
    while let Ok(e) = rx.try_recv() {
        if let ProgressEvent::FileStarted {
            path, resumed_from, ..
        } = e
            && path == "model.safetensors"
            && resumed_from > 0
        {
            resumed = Some(resumed_from);
        }
    }
    assert!(
        resumed.is_some_and(|r| r > 0 && r <= 100_000),
        "{resumed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unavailable_and_throttled_are_retried() {
    let env = Env::new().await;
    env.server
        .faults()
        .unavailable
        .insert("config.json".into(), 2);
    env.server.faults().throttled.insert("vocab.txt".into(), 1);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = Instant::now();
    env.downloader()
        .with_progress(tx)
        .snapshot(&tiny_req())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    let mut retries = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let ProgressEvent::Retrying {
            path,
            reason,
            wait_ms,
            ..
        } = e
        {
            retries.push((path, reason, wait_ms));
        }
    }
    assert_eq!(retries.iter().filter(|r| r.0 == "config.json").count(), 2);
    assert!(
        retries
            .iter()
            .any(|r| r.0 == "vocab.txt" && r.1.contains("429") && r.2 == 1000)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupted_bytes_are_rejected_and_fetched_again() {
    let env = Env::new().await;
    env.server
        .faults()
        .corrupt
        .insert("model.safetensors".into(), 1);
    env.server.faults().corrupt.insert("vocab.txt".into(), 1);
    let done = env
        .downloader()
        .snapshot(&tiny_req())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let snap = done.snapshot.clone();
    assert_eq!(
        std::fs::read(snap.join("model.safetensors")).unwrap_or_default(),
        std::fs::read(fixture("tiny-bert/model.safetensors")).unwrap_or_default()
    );
    assert_eq!(
        std::fs::read(snap.join("vocab.txt")).unwrap_or_default(),
        std::fs::read(fixture("tiny-bert/vocab.txt")).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn always_corrupt_gives_up_and_leaves_nothing_in_the_snapshot() {
    let env = Env::new().await;
    env.server
        .faults()
        .corrupt
        .insert("model.safetensors".into(), 100);
    let err = env.downloader().snapshot(&tiny_req()).await.err();
    let msg = err.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(matches!(err, Some(DownloadError::GaveUp { .. })), "{err:?}");
    assert!(msg.contains("sha256"), "{msg}");
    let dir = env.repo_dir(TINY);
    assert!(
        !dir.join("snapshots")
            .join(TINY_COMMIT)
            .join("model.safetensors")
            .exists()
    );
    let blobs: Vec<String> = std::fs::read_dir(dir.join("blobs"))
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    let sha = repos()[0]
        .files
        .iter()
        .find(|f| f.path == "model.safetensors")
        .and_then(|f| f.lfs.clone())
        .unwrap_or_default();
    assert!(!blobs.contains(&sha), "a corrupt blob was kept: {blobs:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_body_is_never_stored_as_a_model_file() {
    let env = Env::new().await;
    env.server.faults().get_forbidden.push("config.json".into());
    let err = env.downloader().snapshot(&tiny_req()).await.err();
    assert!(matches!(err, Some(DownloadError::Api(_))), "{err:?}");
    let snap = env.repo_dir(TINY).join("snapshots").join(TINY_COMMIT);
    assert!(!snap.join("config.json").exists());
    let names: Vec<String> = std::fs::read_dir(env.repo_dir(TINY).join("blobs"))
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(repos()[0].files[1].path, "config.json");
    assert!(
        names
            .iter()
            .all(|n| !n.contains(&repos()[0].files[1].git_oid)),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gated_repo_needs_the_token_and_says_how() {
    let env = Env::new().await;
    let req = DownloadRequest {
        repo: "hugflake-test/gated".into(),
        revision: "main".into(),
        include: None,
    };
    let err = env.downloader().snapshot(&req).await.err();
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("gated") && msg.contains("accept the licence") && msg.contains("HF_TOKEN"),
        "{msg}"
    );

    let mut d = Downloader::new(HubClient::new(env.settings(Some(TOKEN))));
    d.retry.base = Duration::from_millis(10);
    let done = d.snapshot(&req).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(done.files.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_downloads_of_one_repo_fetch_each_file_once() {
    let env = Env::new().await;
    env.server
        .faults()
        .trickle
        .insert("model.safetensors".into(), Duration::from_millis(20));
    let a = env.downloader();
    let b = env.downloader();
    let req = tiny_req();
    let (ra, rb) = tokio::join!(a.snapshot(&req), b.snapshot(&req));
    let ra = ra.unwrap_or_else(|e| panic!("{e}"));
    let rb = rb.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ra.commit, rb.commit);
    assert_eq!(env.server.bytes_served(), fixture_total());
    assert_eq!(ra.fetched_bytes() + rb.fetched_bytes(), fixture_total());
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_keeps_no_half_file_in_the_snapshot_and_the_next_run_resumes() {
    let env = Env::new().await;
    env.server
        .faults()
        .trickle
        .insert("model.safetensors".into(), Duration::from_millis(150));
    let cancel = tokio_util::sync::CancellationToken::new();
    let d = env.downloader().with_cancel(cancel.clone());
    let canceller = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(450)).await;
            cancel.cancel();
        }
    });
    let err = d.snapshot(&tiny_req()).await.err();
    let _ = canceller.await;
    assert!(matches!(err, Some(DownloadError::Cancelled)), "{err:?}");
    let snap = env.repo_dir(TINY).join("snapshots").join(TINY_COMMIT);
    assert!(!snap.join("model.safetensors").exists());
    let partial_exists = std::fs::read_dir(env.repo_dir(TINY).join("blobs"))
        .map(|r| {
            r.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".incomplete"))
        })
        .unwrap_or(false);
    assert!(partial_exists, "the partial download is kept for resuming");
    let served_before = env.server.bytes_served();

    env.server.faults().trickle.clear();
    let done = env
        .downloader()
        .snapshot(&tiny_req())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let weights = done.files.iter().find(|f| f.path == "model.safetensors");
    assert!(
        weights.is_some_and(|w| w.fetched_bytes < w.size),
        "{weights:?}"
    );
    // Bytes in flight at the moment of the cancel may be counted but lost; nothing else twice.
    assert!(served_before < fixture_total());
    assert!(env.server.bytes_served() <= fixture_total() + 128 * 1024);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_ignores_range_still_ends_right() {
    let env = Env::new().await;
    {
        let mut f = env.server.faults();
        f.ignore_range = true;
        f.drop_after.insert("model.safetensors".into(), 70_000);
    }
    let done = env
        .downloader()
        .snapshot(&tiny_req())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        std::fs::read(done.snapshot.join("model.safetensors")).unwrap_or_default(),
        std::fs::read(fixture("tiny-bert/model.safetensors")).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn selected_files_only_and_unknown_files_refused() {
    let env = Env::new().await;
    let req = DownloadRequest {
        include: Some(vec!["config.json".into(), "1_Pooling/config.json".into()]),
        ..tiny_req()
    };
    let done = env
        .downloader()
        .snapshot(&req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(done.files.len(), 2);
    assert!(done.snapshot.join("1_Pooling/config.json").exists());
    let req = DownloadRequest {
        include: Some(vec!["nope.bin".into()]),
        ..tiny_req()
    };
    let err = env.downloader().snapshot(&req).await.err();
    assert!(err.is_some_and(|e| e.to_string().contains("nope.bin")));
}

/// Runs the real binary against the test server.
async fn cli(env: &Env, args: &[&str]) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hugflake"));
    cmd.args(args)
        .env("HF_ENDPOINT", env.server.endpoint())
        .env("HF_HUB_CACHE", env.cache.path())
        .env("HOME", env.cache.path())
        .env("HUGFLAKE_DATA_DIR", env.cache.path().join("hugflake-data"))
        .env(
            "HUGFLAKE_STATE_DIR",
            env.cache.path().join("hugflake-state"),
        )
        .env_remove("HF_TOKEN")
        .env_remove("HUGFLAKE_CONFIG")
        .stdin(std::process::Stdio::null());
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("hugflake {args:?} hung"))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn headless_search_show_and_download() {
    let env = Env::new().await;
    let out = cli(&env, &["search", "model-", "--limit", "3", "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let ids: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        ids,
        ["org-a/model-5", "org-a/model-4", "org-a/model-3"],
        "3 across two pages"
    );

    let out = cli(&env, &["show", TINY, "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(v["commit"], TINY_COMMIT);
    assert_eq!(v["parameters"], 50_944, "read from the safetensors header");
    assert_eq!(v["parameters_estimated"], false);
    assert_eq!(v["weight_bytes"], 207_816);
    assert_eq!(v["snowflake"]["supported"], true);
    assert_eq!(v["fit"]["pool"], "LOCAL_CPU");
    assert_eq!(v["fit"]["fits"], true);
    let out = cli(&env, &["show", TINY]).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("fits LOCAL_CPU: needs ~"), "{text}");
    assert!(
        text.contains("model.safetensors") && text.contains("lfs"),
        "{text}"
    );

    let out = cli(&env, &["download", TINY, "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(v["files"].as_array().map(Vec::len), Some(11));
    assert!(
        env.repo_dir(TINY)
            .join("snapshots")
            .join(TINY_COMMIT)
            .join("model.safetensors")
            .exists()
    );

    // The catalog now lists the downloaded model from the cache.
    let out = cli(&env, &["catalog", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(v.as_array().is_some_and(|rows| {
        rows.iter()
            .any(|r| r["handle"] == TINY && r["source"] == "cache")
    }));

    for (args, needle) in [
        (
            &["download", "hugflake-test/gated"][..],
            "accept the licence",
        ),
        (&["show", "nobody/nothing"], "not found"),
        (&["download", "not-a-repo-id"], "is not a Hub repo id"),
        (
            &["download", TINY, "--include", "missing.bin"],
            "missing.bin",
        ),
    ] {
        let out = cli(&env, args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// A hostile Hub: tree entries that would escape the cache (`..`, absolute) or carry terminal escape
/// sequences are refused before anything is fetched or written; escape sequences in a model card
/// and in search results never reach the screen.
#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_hub_gets_nowhere() {
    const ESC: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31m";
    let commit = "2222222222222222222222222222222222222222";
    let hostile = |id: &str, path: &str| {
        Repo::new(id, commit)
            .file("config.json", "{}")
            .file(path, "gotcha")
    };
    let mut card = Repo::new("evil/card", commit)
        .file("config.json", "{}")
        .file(
            "README.md",
            format!("---\nlicense: mit\n---\n# Model {ESC}card\nline two{ESC}\n"),
        );
    card.pipeline_tag = Some(format!("feature-extraction{ESC}"));
    let server = HubServer::start(vec![
        hostile("evil/dotdot", "../../escaped.txt"),
        hostile("evil/absolute", "/tmp/hugflake-absolute.txt"),
        hostile("evil/escapes", &format!("name{ESC}.json")),
        card,
    ])
    .await;
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let settings = HubSettings {
        endpoint: server.endpoint(),
        token: None,
        token_source: None,
        offline: false,
        cache_dir: cache.path().join("hub"),
    };
    let downloader = Downloader::new(HubClient::new(settings.clone()));
    for repo in ["evil/dotdot", "evil/absolute", "evil/escapes"] {
        let err = downloader
            .snapshot(&DownloadRequest {
                repo: repo.into(),
                revision: "main".into(),
                include: None,
            })
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unsafe file path"), "{repo}: {err}");
        assert!(
            !err.contains('\u{1b}'),
            "{repo}: the error carries the escape"
        );
    }
    // Nothing was fetched for them, nothing written outside the cache or under it.
    assert!(!cache.path().join("escaped.txt").exists());
    assert!(!Path::new("/tmp/hugflake-absolute.txt").exists());
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.starts_with("info ") || r.starts_with("tree ")),
        "only metadata was asked for: {:?}",
        server.requests()
    );

    let details =
        hugflake::hub::details::fetch(&HubClient::new(settings), "evil/card", "main", None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    let text = format!("{details:?}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text}"
    );
    assert_eq!(details.card.as_deref(), Some("# Model card\nline two"));
    assert_eq!(details.pipeline_tag.as_deref(), Some("feature-extraction"));
}
