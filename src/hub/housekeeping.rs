//! Tending the shared Hugging Face cache: what each repo holds and when it was last used, whether
//! every file still has the content its name promises, and removing revisions and blobs without
//! breaking what stays (a blob two revisions share survives deleting one of them).
//!
//! The cache layout is huggingface_hub's: `models--org--name/{blobs,refs,snapshots}`; a snapshot's
//! files are symlinks into `blobs/`, and a blob is named by its hash (sha256 for LFS files, the
//! git blob sha1 for the others), which is what [`verify`] checks against.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::cache::{CacheError, scan};
use crate::domain::CachedRepo;

/// A cached repo with when it was last read and which registry versions use it.
#[derive(Debug, Clone, Serialize)]
pub struct CacheRow {
    #[serde(flatten)]
    pub repo: CachedRepo,
    /// The latest access time of its blobs (as the file system keeps it: with `relatime` it is
    /// only approximate).
    pub last_accessed: Option<DateTime<Utc>>,
    /// `MODEL VERSION` of each registered version whose revision is cached here.
    pub used_by: Vec<String>,
}

/// A registered version's source: the repo, the commit (empty: every revision of the repo, for
/// a second repo such as BiomedCLIP's text tower) and the version's name (`MODEL V1`).
#[derive(Debug, Clone, PartialEq)]
pub struct InUse {
    pub repo: String,
    pub commit: String,
    pub version: String,
}

impl InUse {
    /// Whether this use holds `repo` at `commit`.
    pub fn holds(&self, repo: &str, commit: &str) -> bool {
        self.repo == repo && (self.commit.is_empty() || self.commit == commit)
    }
}

/// Every cached repo, largest first.
pub fn list(root: &Path, in_use: &[InUse]) -> Result<Vec<CacheRow>, CacheError> {
    let mut rows: Vec<CacheRow> = scan(root)?
        .into_iter()
        .map(|repo| {
            let used_by = in_use
                .iter()
                .filter(|u| {
                    repo.revisions
                        .iter()
                        .any(|r| u.holds(&repo.repo_id, &r.commit))
                })
                .map(|u| u.version.clone())
                .collect();
            CacheRow {
                last_accessed: last_accessed(&repo.path),
                repo,
                used_by,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.repo
            .size_on_disk
            .cmp(&a.repo.size_on_disk)
            .then(a.repo.repo_id.cmp(&b.repo.repo_id))
    });
    Ok(rows)
}

fn last_accessed(repo: &Path) -> Option<DateTime<Utc>> {
    fs::read_dir(repo.join("blobs"))
        .ok()?
        .flatten()
        .filter_map(|b| b.metadata().ok()?.accessed().ok())
        .map(DateTime::<Utc>::from)
        .max()
}

/// One file that does not hold what it should.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub repo: String,
    pub commit: String,
    pub file: String,
    /// `missing` (the link points at no blob), `corrupt` (the content's hash differs) or
    /// `unreadable`.
    pub kind: &'static str,
    pub detail: String,
}

/// What `verify` looked at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verified {
    pub files: usize,
    pub bytes: u64,
    /// Blobs whose names are not a hash (written by other tools): not checkable.
    pub unchecked: usize,
    pub problems: Vec<Problem>,
}

/// Re-hashes every file of every snapshot (of `repo` only, when given) against the hash its blob
/// is named by.
pub fn verify(root: &Path, repo: Option<&str>) -> Result<Verified, CacheError> {
    let mut out = Verified::default();
    let mut checked: BTreeMap<PathBuf, Result<(), (&'static str, String)>> = BTreeMap::new();
    for r in scan(root)?
        .into_iter()
        .filter(|r| repo.is_none_or(|x| x == r.repo_id))
    {
        for rev in &r.revisions {
            let snap = r.path.join("snapshots").join(&rev.commit);
            for (file, link) in snapshot_links(&snap) {
                out.files += 1;
                let problem = |kind: &'static str, detail: String| Problem {
                    repo: r.repo_id.clone(),
                    commit: rev.commit.clone(),
                    file: file.clone(),
                    kind,
                    detail,
                };
                let Ok(blob) = fs::canonicalize(&link) else {
                    out.problems.push(problem(
                        "missing",
                        "the snapshot links to a blob that is not there".into(),
                    ));
                    continue;
                };
                let name = blob
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                let is_hex =
                    |n: usize| name.len() == n && name.bytes().all(|b| b.is_ascii_hexdigit());
                if !is_hex(64) && !is_hex(40) {
                    out.unchecked += 1;
                    continue;
                }
                out.bytes += fs::metadata(&blob).map(|m| m.len()).unwrap_or(0);
                let result = checked.entry(blob.clone()).or_insert_with(|| {
                    let got = if is_hex(64) {
                        super::download::sha256_file(&blob)
                    } else {
                        super::download::git_blob_sha1(&blob)
                    };
                    match got {
                        Ok(h) if h.eq_ignore_ascii_case(&name) => Ok(()),
                        Ok(h) => Err((
                            "corrupt",
                            format!("content hashes to {}…, not {}…", &h[..12], &name[..12]),
                        )),
                        Err(e) => Err(("unreadable", e.to_string())),
                    }
                });
                if let Err((kind, detail)) = result.clone() {
                    out.problems.push(problem(kind, detail));
                }
            }
        }
    }
    Ok(out)
}

/// `(path inside the snapshot, the link)` of every file of a snapshot, recursively.
fn snapshot_links(snap: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![snap.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if is_dir {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(snap)
                    .map(|r| r.to_string_lossy().to_string())
                    .unwrap_or_default();
                out.push((rel, p));
            }
        }
    }
    out.sort();
    out
}

/// What a removal will delete, computed before anything is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Removal {
    /// `(repo, commit)` of each snapshot removed.
    pub revisions: Vec<(String, String)>,
    /// Refs removed with them (`repo: main`).
    pub refs: Vec<String>,
    /// Blobs no remaining snapshot links to.
    pub blobs: Vec<PathBuf>,
    /// Unfinished downloads (`.incomplete`) removed with their repo.
    pub partial: Vec<PathBuf>,
    /// Repo directories left empty, removed at the end.
    pub repos: Vec<PathBuf>,
    pub bytes: u64,
    /// The bytes freed in each repo.
    pub per_repo: BTreeMap<String, u64>,
}

/// What to remove.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A repo, or one revision of it (a commit, a prefix of one, or a ref such as `main`).
    Repo {
        repo: String,
        revision: Option<String>,
    },
    /// Revisions no ref points to, blobs no snapshot links to, and (with `older_than`) revisions
    /// not read for that long.
    Prune {
        older_than: Option<chrono::Duration>,
    },
}

/// Plans a removal, refusing revisions a registered version uses (naming it).
pub fn plan(root: &Path, target: &Target, in_use: &[InUse]) -> Result<Removal, String> {
    let repos = scan(root).map_err(|e| e.to_string())?;
    let mut chosen: Vec<(&CachedRepo, String)> = Vec::new();
    match target {
        Target::Repo { repo, revision } => {
            let r = repos.iter().find(|r| &r.repo_id == repo).ok_or_else(|| {
                format!(
                    "{repo} is not in the Hugging Face cache ({})",
                    root.display()
                )
            })?;
            match revision {
                None => chosen.extend(r.revisions.iter().map(|v| (r, v.commit.clone()))),
                Some(want) => {
                    let hits: Vec<&str> = r
                        .revisions
                        .iter()
                        .filter(|v| v.commit.starts_with(want.as_str()) || v.refs.contains(want))
                        .map(|v| v.commit.as_str())
                        .collect();
                    match hits.as_slice() {
                        [one] => chosen.push((r, (*one).to_string())),
                        [] => {
                            return Err(format!(
                                "{repo} has no cached revision `{want}` (cached: {})",
                                r.revisions
                                    .iter()
                                    .map(|v| v.commit[..v.commit.len().min(12)].to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ));
                        }
                        _ => {
                            return Err(format!(
                                "`{want}` matches several revisions of {repo}: give more of the commit"
                            ));
                        }
                    }
                }
            }
        }
        Target::Prune { older_than } => {
            let now = Utc::now();
            for r in &repos {
                for v in &r.revisions {
                    let detached = v.refs.is_empty();
                    let stale = older_than.is_some_and(|age| {
                        let snap = r.path.join("snapshots").join(&v.commit);
                        revision_last_used(&snap).is_some_and(|t| now - t > age)
                    });
                    let used = in_use.iter().any(|u| u.holds(&r.repo_id, &v.commit));
                    if (detached || stale) && !used {
                        chosen.push((r, v.commit.clone()));
                    }
                }
            }
        }
    }
    if let Some((u, commit)) = in_use.iter().find_map(|u| {
        chosen
            .iter()
            .find(|(r, c)| u.holds(&r.repo_id, c))
            .map(|(_, c)| (u, c))
    }) {
        return Err(format!(
            "{}@{} is used by registered version {}: drop that version first (`hugflake drop version {}`)",
            u.repo,
            &commit[..commit.len().min(12)],
            u.version,
            u.version
        ));
    }
    let mut out = Removal::default();
    for r in &repos {
        let gone: BTreeSet<&str> = chosen
            .iter()
            .filter(|(x, _)| x.repo_id == r.repo_id)
            .map(|(_, c)| c.as_str())
            .collect();
        // Blobs linked from the snapshots that stay are kept, whatever else goes.
        let mut kept = BTreeSet::new();
        let mut linked_by_gone = BTreeSet::new();
        for v in &r.revisions {
            let snap = r.path.join("snapshots").join(&v.commit);
            for (_, link) in snapshot_links(&snap) {
                if let Ok(blob) = fs::canonicalize(&link) {
                    if gone.contains(v.commit.as_str()) {
                        linked_by_gone.insert(blob);
                    } else {
                        kept.insert(blob);
                    }
                }
            }
            if gone.contains(v.commit.as_str()) {
                out.revisions.push((r.repo_id.clone(), v.commit.clone()));
                out.refs
                    .extend(v.refs.iter().map(|name| format!("{}: {name}", r.repo_id)));
            }
        }
        let whole_repo = !r.revisions.is_empty() && gone.len() == r.revisions.len();
        // Blobs no snapshot links to at all are garbage for prune and for a whole-repo removal.
        let sweep_orphans = whole_repo || matches!(target, Target::Prune { .. });
        // A snapshot that stays but cannot be read fully might link to any blob: this repo's
        // blobs are left alone.
        if r.revisions.iter().any(|v| {
            !gone.contains(v.commit.as_str())
                && !snapshot_readable(&r.path.join("snapshots").join(&v.commit))
        }) {
            continue;
        }
        if let Ok(blobs) = fs::read_dir(r.path.join("blobs")) {
            for b in blobs.flatten() {
                // Only regular files inside this repo's blobs/ are ever deleted (never what a
                // symlink there points to).
                if !b.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let p = b.path();
                // Links resolve to canonical paths: compare in that form.
                let key = fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
                let len = b.metadata().map(|m| m.len()).unwrap_or(0);
                let partial = b.file_name().to_string_lossy().ends_with(".incomplete");
                if kept.contains(&key) {
                    continue;
                }
                // Unfinished downloads go only with their whole repo.
                let freed = if partial && whole_repo {
                    out.partial.push(p);
                    true
                } else if partial {
                    false
                } else if linked_by_gone.contains(&key) || sweep_orphans {
                    out.blobs.push(p);
                    true
                } else {
                    false
                };
                if freed {
                    out.bytes += len;
                    *out.per_repo.entry(r.repo_id.clone()).or_default() += len;
                }
            }
        }
        if whole_repo {
            out.repos.push(r.path.clone());
        }
    }
    Ok(out)
}

/// Whether every directory and link of a snapshot can be read (so its blobs are all known).
fn snapshot_readable(snap: &Path) -> bool {
    let mut stack = vec![snap.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            return false;
        };
        for e in entries {
            let Ok(e) = e else { return false };
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_symlink() => {
                    if fs::read_link(e.path()).is_err() {
                        return false;
                    }
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }
    true
}

/// When a revision's files were last read or written (the latest of its blobs' times).
fn revision_last_used(snap: &Path) -> Option<DateTime<Utc>> {
    snapshot_links(snap)
        .iter()
        .filter_map(|(_, link)| {
            let m = fs::metadata(link).ok()?;
            let a = m.accessed().ok().map(DateTime::<Utc>::from);
            let w = m.modified().ok().map(DateTime::<Utc>::from);
            a.max(w)
        })
        .max()
}

/// Carries out a planned removal: snapshots and their refs first (so nothing links to a missing
/// blob), then the blobs, then empty repo folders.
pub fn apply(root: &Path, removal: &Removal) -> std::io::Result<()> {
    let dir_of = |repo: &str| root.join(format!("models--{}", repo.replace('/', "--")));
    for (repo, commit) in &removal.revisions {
        let dir = dir_of(repo);
        remove_refs_to(&dir.join("refs"), commit)?;
        let snap = dir.join("snapshots").join(commit);
        if snap.exists() {
            fs::remove_dir_all(&snap)?;
        }
    }
    // Linked again since the plan (an import reusing a blob while the question was asked): kept.
    let mut linked = BTreeSet::new();
    for b in &removal.blobs {
        let snaps = b
            .parent()
            .and_then(Path::parent)
            .map(|repo| repo.join("snapshots"));
        if let Some(Ok(entries)) = snaps.map(fs::read_dir) {
            for snap in entries.flatten() {
                for (_, link) in snapshot_links(&snap.path()) {
                    if let Ok(t) = fs::canonicalize(&link) {
                        linked.insert(t);
                    }
                }
            }
        }
    }
    for b in removal.blobs.iter().chain(&removal.partial) {
        if fs::canonicalize(b).is_ok_and(|t| linked.contains(&t)) {
            continue;
        }
        match fs::remove_file(b) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    for r in &removal.repos {
        // Only when nothing came back meanwhile (a new snapshot, a download under way).
        let empty = |d: &str| fs::read_dir(r.join(d)).map_or(true, |mut e| e.next().is_none());
        if r.exists() && empty("snapshots") && empty("blobs") {
            fs::remove_dir_all(r)?;
        }
    }
    Ok(())
}

fn remove_refs_to(dir: &Path, commit: &str) -> std::io::Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            remove_refs_to(&p, commit)?;
        } else if fs::read_to_string(&p).is_ok_and(|c| c.trim() == commit) {
            fs::remove_file(&p)?;
        }
    }
    Ok(())
}

/// `30d`, `12h`, `90m`, `2w` as a duration.
pub fn parse_age(s: &str) -> Result<chrono::Duration, String> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n
        .parse()
        .map_err(|_| format!("`{s}`: expected a number and a unit, e.g. 30d, 12h, 2w"))?;
    match unit {
        "m" => Ok(chrono::Duration::minutes(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        "d" => Ok(chrono::Duration::days(n)),
        "w" => Ok(chrono::Duration::weeks(n)),
        _ => Err(format!("`{s}`: the unit is m, h, d or w (e.g. 30d)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repo with two revisions sharing one blob: `shared` (in both), `old` (only in rev A),
    /// `new` (only in rev B, which `main` points to), plus an orphan blob.
    fn cache() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let repo = tmp.path().join("models--org--m");
        let write = |rel: &str, text: &str| {
            let p = repo.join(rel);
            fs::create_dir_all(p.parent().unwrap_or(&repo)).unwrap_or_else(|e| panic!("{e}"));
            fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        };
        let blob = |text: &str| {
            let p = repo.join("blobs/tmp");
            fs::create_dir_all(repo.join("blobs")).unwrap_or_else(|e| panic!("{e}"));
            fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
            let name = super::super::download::git_blob_sha1(&p).unwrap_or_default();
            fs::rename(&p, repo.join("blobs").join(&name)).unwrap_or_else(|e| panic!("{e}"));
            name
        };
        let (shared, old, new) = (blob("shared"), blob("old"), blob("new"));
        let link = |commit: &str, file: &str, name: &str| {
            let dir = repo.join("snapshots").join(commit);
            fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
            std::os::unix::fs::symlink(format!("../../blobs/{name}"), dir.join(file))
                .unwrap_or_else(|e| panic!("{e}"));
        };
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        link(&a, "config.json", &shared);
        link(&a, "model.bin", &old);
        link(&b, "config.json", &shared);
        link(&b, "model.bin", &new);
        write("refs/main", &b);
        write("blobs/orphan", "nobody links here");
        (tmp, repo)
    }

    #[test]
    fn a_blob_two_revisions_share_survives_removing_one() {
        let (tmp, repo) = cache();
        let a = "a".repeat(40);
        let r = plan(
            tmp.path(),
            &Target::Repo {
                repo: "org/m".into(),
                revision: Some("aaaa".into()),
            },
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.revisions, [("org/m".to_string(), a.clone())]);
        assert_eq!(
            r.blobs.len(),
            1,
            "only the blob no other revision links: {r:?}"
        );
        apply(tmp.path(), &r).unwrap_or_else(|e| panic!("{e}"));
        assert!(!repo.join("snapshots").join(&a).exists());
        // The other revision still reads every file; nothing is missing or corrupt.
        let v = verify(tmp.path(), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.files, 2);
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(
            fs::read_to_string(
                repo.join("snapshots")
                    .join("b".repeat(40))
                    .join("config.json")
            )
            .unwrap_or_default(),
            "shared"
        );
    }

    #[test]
    fn a_revision_in_use_is_refused_with_the_version_named() {
        let (tmp, _) = cache();
        let used = [InUse {
            repo: "org/m".into(),
            commit: "b".repeat(40),
            version: "M V1".into(),
        }];
        let err = plan(
            tmp.path(),
            &Target::Repo {
                repo: "org/m".into(),
                revision: Some("main".into()),
            },
            &used,
        )
        .err()
        .unwrap_or_default();
        assert!(err.contains("used by registered version M V1"), "{err}");
        // A second repo a version needs (a text tower) is held whole.
        let tower = [InUse {
            repo: "org/m".into(),
            commit: String::new(),
            version: "CLIP V1".into(),
        }];
        assert!(
            plan(tmp.path(), &Target::Prune { older_than: None }, &tower)
                .is_ok_and(|r| r.revisions.is_empty())
        );
        let rows = list(tmp.path(), &used).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows[0].used_by, ["M V1"]);
        // Prune takes the detached revision and the orphan, never the one in use.
        let r = plan(tmp.path(), &Target::Prune { older_than: None }, &used)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.revisions, [("org/m".to_string(), "a".repeat(40))]);
        assert_eq!(r.blobs.len(), 2, "old and the orphan: {r:?}");
    }

    #[test]
    fn verify_finds_corrupt_and_missing_files() {
        let (tmp, repo) = cache();
        let b = repo.join("snapshots").join("b".repeat(40));
        let new_blob = fs::canonicalize(b.join("model.bin")).unwrap_or_default();
        fs::write(&new_blob, "tampered").unwrap_or_else(|e| panic!("{e}"));
        let shared = fs::canonicalize(b.join("config.json")).unwrap_or_default();
        fs::remove_file(&shared).unwrap_or_else(|e| panic!("{e}"));
        let v = verify(tmp.path(), Some("org/m")).unwrap_or_else(|e| panic!("{e}"));
        let kinds: Vec<(&str, &str)> = v
            .problems
            .iter()
            .map(|p| (p.file.as_str(), p.kind))
            .collect();
        assert_eq!(
            kinds,
            // main's revision first, then the other.
            [
                ("config.json", "missing"),
                ("model.bin", "corrupt"),
                ("config.json", "missing")
            ]
        );
        assert!(verify(tmp.path(), Some("other/x")).is_ok_and(|v| v.files == 0));
    }

    #[test]
    fn a_symlink_in_blobs_never_leads_a_removal_outside_the_repo() {
        let (tmp, repo) = cache();
        let outside = tmp.path().join("precious.bin");
        fs::write(&outside, "not the cache's").unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(&outside, repo.join("blobs").join("f".repeat(64)))
            .unwrap_or_else(|e| panic!("{e}"));
        let r = plan(tmp.path(), &Target::Prune { older_than: None }, &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(r.blobs.iter().all(|b| b.starts_with(repo.join("blobs"))));
        apply(tmp.path(), &r).unwrap_or_else(|e| panic!("{e}"));
        assert!(outside.exists(), "a file outside the cache was deleted");
    }

    #[test]
    fn removing_a_whole_repo_leaves_nothing() {
        let (tmp, repo) = cache();
        let r = plan(
            tmp.path(),
            &Target::Repo {
                repo: "org/m".into(),
                revision: None,
            },
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.blobs.len(), 4);
        assert_eq!(r.refs, ["org/m: main"]);
        apply(tmp.path(), &r).unwrap_or_else(|e| panic!("{e}"));
        assert!(!repo.exists());
        assert!(
            plan(tmp.path(), &Target::Prune { older_than: None }, &[])
                .is_ok_and(|r| r.revisions.is_empty())
        );
        assert_eq!(parse_age("30d").ok(), Some(chrono::Duration::days(30)));
        assert!(parse_age("30").is_err() && parse_age("d").is_err());
    }
}
