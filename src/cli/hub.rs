//! Commands on the Hugging Face side: catalog, search, show, download.

use color_eyre::eyre::{Result, eyre};

use super::output::{print_json, text_table};
use crate::cli::args::{DownloadArgs, JsonArgs, SearchArgs, ShowArgs};
use crate::domain::units;
use crate::hub::api::{HubClient, SearchQuery, validate_repo_id};
use crate::hub::details;
use crate::hub::download::{DownloadRequest, Downloader, ProgressEvent, ProgressTotals};
use crate::hub::settings::HubSettings;
use crate::paths::ProcessEnv;
use crate::platform::local::daemon::registry::{DEFAULT_POOL, Machine};
use crate::platform::local::lifecycle::{self};
use crate::session::Context;

pub fn catalog(ctx: &Context, a: JsonArgs) -> Result<()> {
    let json = a.json;
    let rows = crate::hub::offline_candidates(&ctx.paths.hf_cache.path)?;
    if json {
        return print_json(&rows);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|c| {
            vec![
                c.handle.clone(),
                c.task.clone().unwrap_or_else(|| "?".into()),
                c.library.clone().unwrap_or_else(|| "?".into()),
                c.size_label(),
                c.source.label().into(),
                c.snowflake.summary(),
            ]
        })
        .collect();
    out!(
        "{}",
        text_table(
            &[
                "HANDLE",
                "TASK",
                "LIBRARY",
                "SIZE",
                "SOURCE",
                "SNOWFLAKE IMPORT"
            ],
            &table
        )
    )?;
    eprintln!(
        "{} models ({} from the cache at {})",
        rows.len(),
        rows.iter().filter(|c| c.cache.is_some()).count(),
        ctx.paths.hf_cache.path.display()
    );
    Ok(())
}

fn hub_client() -> HubClient {
    HubClient::new(HubSettings::from_env(&ProcessEnv))
}

pub async fn search(ctx: &Context, a: SearchArgs) -> Result<()> {
    let json = a.json;
    let q = SearchQuery {
        search: a.query,
        author: a.author,
        pipeline_tag: a.task,
        library: a.library,
        sort: Some(a.sort.api_name().into()),
        limit: Some(a.limit),
    };
    let client = hub_client();
    let limit = q.limit.unwrap_or(20) as usize;
    let mut page = match client.search(&q).await {
        Ok(p) => p,
        // Offline or unreachable: the catalog and the cache answer, as the Candidates pane does.
        Err(
            e @ (crate::hub::api::HubApiError::Offline
            | crate::hub::api::HubApiError::Unreachable { .. }),
        ) => return search_offline(ctx, &q, limit, json, &e),
        Err(e) => return Err(e.into()),
    };
    let mut models = std::mem::take(&mut page.models);
    // The Hub caps a page; follow `next` until the limit is reached.
    while models.len() < limit {
        let Some(next) = page.next.take() else { break };
        page = client.search_page(&next).await?;
        if page.models.is_empty() {
            break;
        }
        models.append(&mut page.models);
    }
    models.truncate(limit);
    if json {
        return print_json(&models);
    }
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|m| {
            vec![
                m.id.clone(),
                m.pipeline_tag.clone().unwrap_or_else(|| "-".into()),
                m.library_name.clone().unwrap_or_else(|| "-".into()),
                m.downloads.map_or("-".into(), units::count),
                m.likes.map_or("-".into(), |l| l.to_string()),
            ]
        })
        .collect();
    out!(
        "{}",
        text_table(&["MODEL", "TASK", "LIBRARY", "DOWNLOADS", "LIKES"], &rows)
    )?;
    eprintln!("{} models from {}", models.len(), client.settings.endpoint);
    Ok(())
}

/// `search` without the Hub: catalog and cache rows matching the query (words anywhere in the
/// handle, task, library or purpose) and the filters, with a note on stderr that the Hub was not
/// asked.
fn search_offline(
    ctx: &Context,
    q: &SearchQuery,
    limit: usize,
    json: bool,
    why: &crate::hub::api::HubApiError,
) -> Result<()> {
    let rows = crate::hub::offline_candidates(&ctx.paths.hf_cache.path)?;
    let lower = |s: &Option<String>| s.as_deref().map(str::to_lowercase);
    let (words, author, task, library) = (
        lower(&q.search),
        lower(&q.author),
        lower(&q.pipeline_tag),
        lower(&q.library),
    );
    let hits: Vec<_> = rows
        .into_iter()
        .filter(|c| {
            let hay = c.haystack().to_lowercase();
            words
                .as_deref()
                .is_none_or(|w| w.split_whitespace().all(|w| hay.contains(w)))
                && author
                    .as_deref()
                    .is_none_or(|a| c.handle.to_lowercase().starts_with(&format!("{a}/")))
                && task
                    .as_deref()
                    .is_none_or(|t| c.task.as_deref().map(str::to_lowercase).as_deref() == Some(t))
                && library.as_deref().is_none_or(|l| {
                    c.library.as_deref().map(str::to_lowercase).as_deref() == Some(l)
                })
        })
        .take(limit)
        .collect();
    eprintln!(
        "note: the Hub was not asked ({why}); these are the catalog's and the local cache's matches"
    );
    if json {
        return print_json(&hits);
    }
    let table: Vec<Vec<String>> = hits
        .iter()
        .map(|c| {
            vec![
                c.handle.clone(),
                c.task.clone().unwrap_or_else(|| "-".into()),
                c.library.clone().unwrap_or_else(|| "-".into()),
                c.size_label(),
                c.source.label().into(),
            ]
        })
        .collect();
    out!(
        "{}",
        text_table(&["MODEL", "TASK", "LIBRARY", "SIZE", "SOURCE"], &table)
    )?;
    eprintln!("{} model(s) from the catalog and the cache", hits.len());
    Ok(())
}

/// The LOCAL_CPU budget: from the running daemon when there is one, else from this machine.
async fn local_pool_budget(ctx: &Context) -> (String, f64) {
    use crate::platform::Platform;
    if let Ok((client, _)) = lifecycle::connect(&ctx.paths.data_dir.path).await
        && let Ok(pools) = client.pools().await
        && let Some(p) = pools.iter().find(|p| p.name == DEFAULT_POOL)
    {
        return (p.name.clone(), p.memory_gib);
    }
    (DEFAULT_POOL.into(), Machine::detect().pool_memory_gib())
}

pub async fn show(ctx: &Context, a: ShowArgs) -> Result<()> {
    let ShowArgs {
        handle,
        revision,
        json,
    } = a;
    let (handle, revision) = (handle.as_str(), revision.as_str());
    validate_repo_id(handle).map_err(|e| eyre!(e))?;
    let client = hub_client();
    let (pool, budget) = local_pool_budget(ctx).await;
    let d = details::fetch(&client, handle, revision, Some((&pool, budget))).await?;
    if json {
        return print_json(&d);
    }
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    let mut out = String::new();
    let mut kv = |k: &str, v: String| out.push_str(&format!("{k:<12} {v}\n"));
    kv("model", d.id.clone());
    kv("commit", d.commit.clone());
    kv("task", opt(&d.pipeline_tag));
    kv("library", opt(&d.library));
    kv("licence", opt(&d.license));
    kv(
        "access",
        match (d.gated, d.private) {
            (true, _) => "gated: accept the licence on the model page, then set HF_TOKEN".into(),
            (false, true) => "private".into(),
            (false, false) => "public".into(),
        },
    );
    kv(
        "popularity",
        format!(
            "{} downloads, {} likes",
            d.downloads.map_or("?".into(), units::count),
            d.likes.map_or("?".into(), |l| l.to_string())
        ),
    );
    kv("modified", opt(&d.last_modified));
    kv(
        "parameters",
        match (d.parameters, d.parameters_estimated) {
            (Some(p), false) => units::count(p),
            (Some(p), true) => format!("~{} (estimated: no safetensors metadata)", units::count(p)),
            (None, _) => "unknown".into(),
        },
    );
    kv(
        "size",
        format!(
            "{} weights, {} in {} files",
            units::bytes(d.weight_bytes),
            units::bytes(d.total_bytes),
            d.files.len()
        ),
    );
    if d.custom_code {
        kv("custom code", "yes: needs trust_remote_code".into());
    }
    kv(
        "Snowflake",
        format!("{}: {}", d.snowflake.summary(), d.snowflake.reason),
    );
    // What the catalog says to import instead, where this model falls short.
    let catalog = crate::domain::catalog::builtin().unwrap_or_default();
    for a in catalog
        .iter()
        .filter(|c| c.handle == d.id)
        .flat_map(|c| &c.alternatives)
    {
        kv(
            "instead",
            if a.snowflake_only {
                format!("{} (this model runs on the local platform)", a.sentence())
            } else {
                a.sentence()
            },
        );
    }
    if let Some(f) = &d.fit {
        kv("local", f.summary());
    }
    out.push_str("\nFILES\n");
    let rows: Vec<Vec<String>> = d
        .files
        .iter()
        .map(|f| {
            vec![
                f.path.clone(),
                units::bytes(f.size),
                if f.lfs { "lfs".into() } else { String::new() },
            ]
        })
        .collect();
    out.push_str(&text_table(&["PATH", "SIZE", ""], &rows));
    if let Some(card) = &d.card {
        out.push_str("\nMODEL CARD\n");
        out.push_str(card.trim_end());
        out.push('\n');
    }
    out!("{out}")?;
    Ok(())
}

pub async fn download(_ctx: &Context, a: DownloadArgs) -> Result<()> {
    let DownloadArgs {
        handle,
        revision,
        include,
        json,
    } = a;
    let (handle, revision) = (handle.as_str(), revision.as_str());
    use std::io::IsTerminal;
    validate_repo_id(handle).map_err(|e| eyre!(e))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let cancel = tokio_util::sync::CancellationToken::new();
    let downloader = Downloader::new(hub_client())
        .with_progress(tx)
        .with_cancel(cancel.clone());
    let req = DownloadRequest {
        repo: handle.into(),
        revision: revision.into(),
        include: (!include.is_empty()).then_some(include),
    };
    let tty = std::io::stderr().is_terminal();
    let printer = tokio::spawn(async move {
        let mut totals = ProgressTotals::default();
        let mut last = std::time::Instant::now();
        while let Some(e) = rx.recv().await {
            totals.apply(&e);
            if let ProgressEvent::Retrying {
                path,
                attempt,
                reason,
                ..
            } = &e
            {
                eprintln!("retrying {path} (attempt {attempt}): {reason}");
            }
            let every = if tty { 200 } else { 2000 };
            if last.elapsed().as_millis() >= every {
                last = std::time::Instant::now();
                let line = progress_line(&totals);
                if tty {
                    eprint!("\r{line}\x1b[K");
                } else {
                    eprintln!("{line}");
                }
            }
        }
        if tty {
            eprint!("\r\x1b[K");
        }
    });
    let result = tokio::select! {
        r = downloader.snapshot(&req) => r,
        _ = tokio::signal::ctrl_c() => {
            cancel.cancel();
            Err(crate::hub::download::DownloadError::Cancelled)
        }
    };
    drop(downloader);
    let _ = printer.await;
    let done = result?;
    if json {
        return print_json(&done);
    }
    eprintln!(
        "{} at {}: {} files, {} ({} fetched, {} already cached)",
        done.repo,
        done.commit,
        done.files.len(),
        units::bytes(done.total_bytes()),
        units::bytes(done.fetched_bytes()),
        done.files.iter().filter(|f| f.reused).count()
    );
    outln!("{}", done.snapshot.display())?;
    Ok(())
}

fn progress_line(t: &ProgressTotals) -> String {
    format!(
        "downloading {}/{} files  {} / {}  {}/s  ETA {}",
        t.files_done,
        t.files,
        units::bytes(t.done()),
        units::bytes(t.total),
        units::bytes(t.rate() as u64),
        t.eta_secs()
            .map_or("-".into(), |s| units::duration(s as i64))
    )
}
