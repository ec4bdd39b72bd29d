//! `hugflake cache ...`: the shared Hugging Face cache, listed, verified and tidied (see
//! [`crate::hub::housekeeping`]).

use color_eyre::eyre::{Result, eyre};

use super::args::CacheCommand;
use super::output::{print_json, text_table};
use crate::config::PlatformChoice;
use crate::domain::units;
use crate::hub::housekeeping::{self, InUse, Target};
use crate::session::Context;

pub async fn run(ctx: &Context, command: CacheCommand) -> Result<()> {
    let root = ctx.paths.hf_cache.path.clone();
    match command {
        CacheCommand::Ls(a) => {
            let in_use = registered(ctx).await.unwrap_or_else(|e| {
                eprintln!("note: {e}; the USED BY column is left empty");
                Vec::new()
            });
            let rows = housekeeping::list(&root, &in_use)?;
            if a.json {
                return print_json(&rows);
            }
            let now = chrono::Utc::now();
            let ago = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map_or("-".into(), |t| {
                    format!("{} ago", units::duration((now - t).num_seconds().max(0)))
                })
            };
            let mut table = Vec::new();
            for r in &rows {
                table.push(vec![
                    r.repo.repo_id.clone(),
                    units::bytes(r.repo.size_on_disk),
                    r.repo.revisions.len().to_string(),
                    ago(r.last_accessed),
                    ago(r.repo.last_modified),
                    if r.used_by.is_empty() {
                        "-".into()
                    } else {
                        r.used_by.join(", ")
                    },
                ]);
                for v in &r.repo.revisions {
                    table.push(vec![
                        format!(
                            "  @{}{}",
                            &v.commit[..v.commit.len().min(12)],
                            if v.refs.is_empty() {
                                " (detached)".to_string()
                            } else {
                                format!(" ({})", v.refs.join(", "))
                            }
                        ),
                        units::bytes(v.size_bytes),
                        format!("{} files", v.files),
                        String::new(),
                        String::new(),
                        String::new(),
                    ]);
                }
            }
            out!(
                "{}",
                text_table(
                    &[
                        "REPO",
                        "SIZE",
                        "REVISIONS",
                        "ACCESSED",
                        "MODIFIED",
                        "USED BY"
                    ],
                    &table
                )
            )?;
            let total: u64 = rows.iter().map(|r| r.repo.size_on_disk).sum();
            let prune = housekeeping::plan(&root, &Target::Prune { older_than: None }, &in_use)
                .map(|r| r.bytes)
                .unwrap_or(0);
            eprintln!(
                "{} repo(s), {} on disk at {}; `hugflake cache prune` would free {}",
                rows.len(),
                units::bytes(total),
                root.display(),
                units::bytes(prune)
            );
            Ok(())
        }
        CacheCommand::Verify { repo, json } => {
            let v = tokio::task::spawn_blocking({
                let root = root.clone();
                move || housekeeping::verify(&root, repo.as_deref())
            })
            .await??;
            if json {
                print_json(&v)?;
            } else {
                for p in &v.problems {
                    outln!(
                        "✖ {}@{} {}: {} ({})",
                        p.repo,
                        &p.commit[..p.commit.len().min(12)],
                        p.file,
                        p.kind,
                        p.detail
                    )?;
                }
                eprintln!(
                    "{} file(s), {} checked{}; {} problem(s){}",
                    v.files,
                    units::bytes(v.bytes),
                    if v.unchecked > 0 {
                        format!(", {} not named by a hash (not checkable)", v.unchecked)
                    } else {
                        String::new()
                    },
                    v.problems.len(),
                    if v.problems.is_empty() {
                        ""
                    } else {
                        ": `hugflake download REPO --revision COMMIT` fetches them again"
                    }
                );
            }
            if v.problems.is_empty() {
                Ok(())
            } else {
                Err(eyre!(
                    "{} cached file(s) are corrupt or missing",
                    v.problems.len()
                ))
            }
        }
        CacheCommand::Rm { target, yes } => {
            ctx.refuse_if_read_only("removing from the Hugging Face cache")?;
            let (repo, revision) = match target.split_once('@') {
                Some((r, v)) => (r.to_string(), Some(v.to_string())),
                None => (target.clone(), None),
            };
            remove(ctx, &root, Target::Repo { repo, revision }, yes).await
        }
        CacheCommand::Prune { older_than, yes } => {
            ctx.refuse_if_read_only("pruning the Hugging Face cache")?;
            remove(ctx, &root, Target::Prune { older_than }, yes).await
        }
    }
}

/// Plans, says what will go and how much it frees, asks (unless `yes`), then removes.
async fn remove(ctx: &Context, root: &std::path::Path, target: Target, yes: bool) -> Result<()> {
    let in_use = registered(ctx).await.map_err(|e| {
        eyre!("{e}: hugflake will not remove anything it cannot check against the registry")
    })?;
    let plan = housekeeping::plan(root, &target, &in_use).map_err(|e| eyre!(e))?;
    if plan.revisions.is_empty() && plan.blobs.is_empty() && plan.partial.is_empty() {
        eprintln!("nothing to remove");
        return Ok(());
    }
    for (repo, commit) in &plan.revisions {
        outln!("remove {repo}@{}", &commit[..commit.len().min(12)])?;
    }
    for r in &plan.refs {
        outln!("  and the ref {r}")?;
    }
    outln!(
        "{} blob(s){} would be deleted, freeing {}",
        plan.blobs.len(),
        if plan.partial.is_empty() {
            String::new()
        } else {
            format!(" and {} unfinished download(s)", plan.partial.len())
        },
        units::bytes(plan.bytes)
    )?;
    if !crate::cli::output::confirm("remove?", yes, "nothing removed")? {
        return Ok(());
    }
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || housekeeping::apply(&root, &plan)).await??;
    eprintln!("removed");
    Ok(())
}

/// The revisions the local registry's versions read (their own and their text towers'). The
/// local registry is asked whichever platform is chosen: it is the one that serves from this
/// cache (a Snowflake account's registry does not read it).
async fn registered(ctx: &Context) -> Result<Vec<InUse>> {
    let mut opener = ctx.opener();
    opener.choice = PlatformChoice::Local;
    let (platform, _) = opener
        .open()
        .await
        .map_err(|e| eyre!("cannot ask the local registry which revisions it uses ({e})"))?;
    Ok(crate::platform::cache_users(platform.as_ref(), &ctx.paths.hf_cache.path).await?)
}
