//! Reads the local Hugging Face cache in the layout Python's `huggingface_hub` writes:
//! `models--{org}--{name}/{blobs,refs,snapshots}`. Read-only: nothing here changes the cache.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::domain::{CachedRepo, CachedRevision};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot read the Hugging Face cache at {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Every model repo in the cache, sorted by repo id. A missing cache directory is an empty cache.
/// Entries that are not model repos (datasets, spaces, lock folders) are skipped.
pub fn scan(root: &Path) -> Result<Vec<CachedRepo>, CacheError> {
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CacheError::Read {
                path: root.to_path_buf(),
                source,
            });
        }
    };
    let mut repos = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix("models--") else {
            continue;
        };
        let repo_id = rest.replacen("--", "/", 1);
        if let Some(repo) = scan_repo(&entry.path(), repo_id) {
            repos.push(repo);
        }
    }
    repos.sort_by(|a, b| a.repo_id.cmp(&b.repo_id));
    Ok(repos)
}

fn scan_repo(dir: &Path, repo_id: String) -> Option<CachedRepo> {
    if !dir.is_dir() {
        return None;
    }
    let mut size_on_disk = 0;
    let mut incomplete_files = 0;
    let mut last_modified: Option<DateTime<Utc>> = None;
    if let Ok(blobs) = fs::read_dir(dir.join("blobs")) {
        for blob in blobs.flatten() {
            let Ok(meta) = blob.metadata() else { continue };
            if blob.file_name().to_string_lossy().ends_with(".incomplete") {
                incomplete_files += 1;
                continue;
            }
            size_on_disk += meta.len();
            if let Ok(m) = meta.modified() {
                let t = DateTime::<Utc>::from(m);
                last_modified = Some(last_modified.map_or(t, |l| l.max(t)));
            }
        }
    }

    let mut refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    collect_refs(&dir.join("refs"), "", &mut refs);

    let mut revisions = Vec::new();
    if let Ok(snaps) = fs::read_dir(dir.join("snapshots")) {
        for snap in snaps.flatten() {
            let commit = snap.file_name().to_string_lossy().to_string();
            let (files, size_bytes) = snapshot_files(&snap.path());
            revisions.push(CachedRevision {
                refs: refs.remove(&commit).unwrap_or_default(),
                commit,
                files,
                size_bytes,
            });
        }
    }
    // Revisions with refs first (main at the top), then by commit for a stable order.
    revisions.sort_by(|a, b| {
        b.refs
            .iter()
            .any(|r| r == "main")
            .cmp(&a.refs.iter().any(|r| r == "main"))
            .then(b.refs.is_empty().cmp(&a.refs.is_empty()).reverse())
            .then(a.commit.cmp(&b.commit))
    });

    let (library, task, has_head) = revisions
        .first()
        .map(|r| sniff(&dir.join("snapshots").join(&r.commit)))
        .unwrap_or((None, None, None));

    Some(CachedRepo {
        repo_id,
        path: dir.to_path_buf(),
        size_on_disk,
        revisions,
        last_modified,
        library,
        task,
        has_head,
        incomplete_files,
    })
}

fn collect_refs(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<String>>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let path = entry.path();
        if path.is_dir() {
            // Refs such as `refs/pr/1` are nested directories.
            collect_refs(&path, &format!("{name}/"), out);
        } else if let Ok(commit) = fs::read_to_string(&path) {
            out.entry(commit.trim().to_string()).or_default().push(name);
        }
    }
}

/// Files in a snapshot (recursively) and the bytes of the distinct blobs they resolve to.
fn snapshot_files(dir: &Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // `metadata` follows the symlink into blobs/.
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            let target = fs::canonicalize(&path).unwrap_or(path);
            if seen.insert(target) {
                bytes += meta.len();
            }
        }
    }
    (files, bytes)
}

/// Library, task and whether a task head exists, from the files of a snapshot.
fn sniff(snapshot: &Path) -> (Option<String>, Option<String>, Option<bool>) {
    if snapshot.join("open_clip_config.json").exists() {
        return (
            Some("open_clip".into()),
            Some("zero-shot-image-classification".into()),
            None,
        );
    }
    if snapshot.join("modules.json").exists()
        || snapshot.join("config_sentence_transformers.json").exists()
    {
        return (
            Some("sentence-transformers".into()),
            Some("sentence-similarity".into()),
            None,
        );
    }
    let Ok(text) = fs::read_to_string(snapshot.join("config.json")) else {
        return (None, None, None);
    };
    let Ok(config) = serde_json::from_str::<serde_json::Value>(&text) else {
        return (Some("transformers".into()), None, None);
    };
    let architectures: Vec<String> = config
        .get("architectures")
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let (task, head) = architectures
        .iter()
        .find_map(|a| {
            if a.ends_with("ForTokenClassification") {
                Some(("token-classification", true))
            } else if a.ends_with("ForSequenceClassification") {
                Some(("text-classification", true))
            } else if a.ends_with("ForMaskedLM") {
                Some(("fill-mask", true))
            } else if a.ends_with("ForPreTraining") || a.ends_with("Model") {
                Some(("feature-extraction", false))
            } else {
                None
            }
        })
        .map_or((None, None), |(t, h)| (Some(t.to_string()), Some(h)));
    (Some("transformers".into()), task, head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).unwrap_or_else(|e| panic!("{e}"));
        }
        fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Lays out a repo the way huggingface_hub does: blobs named by hash, snapshot symlinks, refs.
    fn fake_repo(root: &Path, id: &str, commit: &str, files: &[(&str, &str)]) {
        let dir = root.join(format!("models--{}", id.replace('/', "--")));
        for (i, (name, text)) in files.iter().enumerate() {
            let blob = dir.join("blobs").join(format!("blob{i}{commit}"));
            write(&blob, text);
            let link = dir.join("snapshots").join(commit).join(name);
            if let Some(p) = link.parent() {
                fs::create_dir_all(p).unwrap_or_else(|e| panic!("{e}"));
            }
            let depth = name.matches('/').count();
            let rel = format!("{}../../blobs/blob{i}{commit}", "../".repeat(depth));
            std::os::unix::fs::symlink(rel, &link).unwrap_or_else(|e| panic!("{e}"));
        }
        write(&dir.join("refs/main"), commit);
    }

    #[test]
    fn scans_repos_revisions_sizes_and_libraries() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = tmp.path();
        fake_repo(
            root,
            "sentence-transformers/all-MiniLM-L6-v2",
            "1110a243fdf4706b3f48f1d95db1a4f5529b4d41",
            &[
                ("modules.json", "[]"),
                ("model.safetensors", "0123456789"),
                ("1_Pooling/config.json", "{}"),
            ],
        );
        fake_repo(
            root,
            "org/ner",
            "aaaa",
            &[(
                "config.json",
                r#"{"architectures": ["BertForTokenClassification"]}"#,
            )],
        );
        fs::create_dir_all(root.join("datasets--x--y")).unwrap_or_else(|e| panic!("{e}"));
        write(
            &root.join("models--org--ner/blobs/partial.incomplete"),
            "12",
        );

        let repos = scan(root).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(repos.len(), 2);
        let ner = &repos[0];
        assert_eq!(ner.repo_id, "org/ner");
        assert_eq!(ner.task.as_deref(), Some("token-classification"));
        assert_eq!(ner.has_head, Some(true));
        assert_eq!(ner.incomplete_files, 1);
        let minilm = &repos[1];
        assert_eq!(minilm.library.as_deref(), Some("sentence-transformers"));
        assert_eq!(minilm.size_on_disk, 2 + 10 + 2);
        assert_eq!(minilm.revisions.len(), 1);
        assert_eq!(minilm.revisions[0].refs, ["main"]);
        assert_eq!(minilm.revisions[0].files, 3);
        assert_eq!(minilm.revisions[0].size_bytes, 14);
    }

    #[test]
    fn a_missing_cache_is_empty() {
        let repos = scan(Path::new("/nonexistent/hf/hub")).unwrap_or_else(|e| panic!("{e}"));
        assert!(repos.is_empty());
    }
}
