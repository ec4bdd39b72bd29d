//! `hugflake batch ...`: the batch commands on either platform (see [`crate::batch`]).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, eyre};
use serde_json::{Value, json};

use crate::batch::cache::Cache;
use crate::batch::input::{self, Columns, Table};
use crate::batch::job::{self, Job};
use crate::batch::run::{self, Pacing, Progress};
use crate::batch::snowflake as batch_sf;
use crate::batch::sql;
use crate::cli::output::print_json;
use crate::config::PlatformChoice;
use crate::domain::units::printable;
use crate::platform::{Platform, call};
use crate::session::Context;

/// Exit code of a run stopped by Ctrl-C (what shells use for SIGINT).
const INTERRUPTED: u8 = 130;

pub async fn run(ctx: &Context, job: Job) -> Result<()> {
    let opener = ctx.opener();
    if opener.choice == PlatformChoice::Snowflake {
        return snowflake(ctx, job).await;
    }
    // Pairs come from the cache alone: no platform is opened (or started) for them.
    if let Job::Search(j) = &job
        && j.pairs
    {
        let cache = Cache::open(&cache_path(ctx, j.cache.as_deref()))?;
        let matrix = cache.matrix(j.snowflake.model.as_deref())?;
        say_damaged(&matrix);
        return search_pairs(&matrix, j);
    }
    let (platform, opened) = opener.open().await?;
    if opened.worth_saying() {
        eprintln!("{}", opened.describe());
    }
    let platform = platform.as_ref();
    match job {
        Job::Embed(j) => embed_local(ctx, platform, &j).await,
        Job::Search(j) => search_local(ctx, platform, &j).await,
        Job::Entities(j) => entities_local(ctx, platform, j).await,
        Job::ClassifyImages(j) => classify_images(ctx, platform, &j).await,
    }
}

async fn search_local(ctx: &Context, platform: &dyn Platform, j: &job::Search) -> Result<()> {
    let cache = Cache::open(&cache_path(ctx, j.cache.as_deref()))?;
    let matrix = cache.matrix(j.snowflake.model.as_deref())?;
    say_damaged(&matrix);
    let texts = match &j.input {
        Some(p) => Some(read_table(Path::new(p), &j.columns.input())?),
        None => None,
    };
    let text_of = |id: &str| {
        texts
            .as_ref()
            .and_then(|t| t.notes.iter().find(|n| n.id == id))
            .map(|n| n.text.clone())
    };
    let query = j.query.clone().unwrap_or_default();
    let service = match &j.service {
        Some(s) => s.to_ascii_uppercase(),
        None => serving(platform, &matrix.model, &matrix.version).await?,
    };
    let (_, method) = query_method(platform, &service).await?;
    let p = platform
        .predict(&service, &method, &[vec![Value::String(query)]])
        .await?;
    let q = p
        .outputs
        .first()
        .and_then(call::embedding)
        .ok_or_else(|| eyre!("{service} {method} answered no embedding"))?;
    let t = Instant::now();
    let hits = matrix.search(&q, j.top)?;
    eprintln!(
        "{} notes of {} {} searched in {:.1} ms (query embedded in {:.0} ms)",
        matrix.len(),
        matrix.model,
        matrix.version,
        t.elapsed().as_secs_f64() * 1000.0,
        p.latency_ms
    );
    if j.json {
        let rows: Vec<Value> = hits
            .iter()
            .map(|h| json!({ "id": h.id, "score": h.score, "text": text_of(&h.id) }))
            .collect();
        return print_json(&rows);
    }
    for (i, h) in hits.iter().enumerate() {
        let text = text_of(&h.id)
            .map(|t| format!("  {}", snippet(&t, 90)))
            .unwrap_or_default();
        outln!("{:>3}. {:.4}  {}{text}", i + 1, h.score, printable(&h.id))?;
    }
    Ok(())
}

/// Refuses, once and before any row is sent, a service of the wrong kind for the command (an
/// embedding service asked for entities would otherwise answer every row with a 404).
async fn need_kind(
    platform: &dyn Platform,
    service: &str,
    want: call::ServiceKind,
    command: &str,
) -> Result<()> {
    let (_, functions) = crate::cli::platform::service_with_functions(platform, service).await?;
    match call::ServiceKind::of(&functions) {
        Some((kind, _)) if kind == want => Ok(()),
        Some((kind, method)) => Err(eyre!(
            "service {service} is a {} service ({method}); `{command}` needs a {} service",
            kind_name(kind),
            kind_name(want)
        )),
        None => Err(eyre!(
            "service {service} lists no function hugflake can call; `{command}` needs a {} service",
            kind_name(want)
        )),
    }
}

fn kind_name(kind: call::ServiceKind) -> &'static str {
    match kind {
        call::ServiceKind::Embeddings => "sentence-embedding",
        call::ServiceKind::Entities => "token-classification",
        call::ServiceKind::Features => "feature-extraction",
        call::ServiceKind::Images => "zero-shot image classification",
    }
}

/// Names the notes whose cached vector is damaged (they are left out of the search).
fn say_damaged(matrix: &crate::batch::cache::Matrix) {
    if matrix.damaged.is_empty() {
        return;
    }
    let shown: Vec<String> = matrix
        .damaged
        .iter()
        .take(10)
        .map(|id| printable(id).into_owned())
        .collect();
    eprintln!(
        "{} damaged embedding(s) left out ({}{}); `hugflake batch embed` computes them again",
        matrix.damaged.len(),
        shown.join(", "),
        if matrix.damaged.len() > 10 {
            ", …"
        } else {
            ""
        }
    );
}

/// The most similar pairs of cached notes.
fn search_pairs(matrix: &crate::batch::cache::Matrix, j: &job::Search) -> Result<()> {
    let t = Instant::now();
    let found = matrix.pairs(j.top)?;
    eprintln!(
        "{} notes of {} {}: {} pair(s) in {:.2} s",
        matrix.len(),
        matrix.model,
        matrix.version,
        found.len(),
        t.elapsed().as_secs_f64()
    );
    if j.json {
        return print_json(&found);
    }
    for p in &found {
        outln!("{:.4}  {}  {}", p.score, printable(&p.a), printable(&p.b))?;
    }
    Ok(())
}

async fn entities_local(ctx: &Context, platform: &dyn Platform, j: job::Entities) -> Result<()> {
    let service = j
        .service
        .ok_or_else(|| eyre!("give --service: the token-classification service"))?
        .to_ascii_uppercase();
    need_kind(
        platform,
        &service,
        call::ServiceKind::Entities,
        "batch entities",
    )
    .await?;
    let mut table = read_table(Path::new(&j.input), &j.columns.input())?;
    if let Some(f) = &j.filter {
        table.filter(f).map_err(|e| eyre!(e))?;
    }
    if let Some(n) = j.limit {
        table.notes.truncate(n);
    }
    let rows: Vec<Vec<Value>> = table
        .notes
        .iter()
        .map(|n| vec![Value::String(n.text.clone())])
        .collect();
    let ids: Vec<String> = table.notes.iter().map(|n| n.id.clone()).collect();
    let notes = &table.notes;
    let line_job = LineJob {
        kind: "entities",
        service: &service,
        input: &j.input,
        unit: "notes",
        batch_size: j.batch_size as usize,
        output: j.output.as_deref().map(Path::new),
    };
    calls_to_lines(ctx, platform, &line_job, &rows, &ids, &table, |i, o| {
        let note = &notes[i];
        let entities = crate::domain::entities::group_json(o);
        json!({ "note_id": note.id, "entities": entities })
    })
    .await
}

fn cache_path(ctx: &Context, given: Option<&str>) -> PathBuf {
    given
        .map(PathBuf::from)
        .unwrap_or_else(|| ctx.paths.data_dir.path.join("embeddings.sqlite"))
}

fn read_table(path: &Path, cols: &Columns) -> Result<Table> {
    let table = input::read(path, cols)?;
    if table.notes.is_empty() && table.rejected.is_empty() {
        return Err(eyre!("{}: no rows", path.display()));
    }
    Ok(table)
}

/// The first `max` characters of a text on one line.
fn snippet(text: &str, max: usize) -> String {
    let one_line: String = crate::domain::units::strip_control(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if one_line.chars().count() > max {
        format!("{}…", one_line.chars().take(max).collect::<String>())
    } else {
        one_line
    }
}

/// A RUNNING service of the model version.
async fn serving(platform: &dyn Platform, model: &str, version: &str) -> Result<String> {
    platform
        .services()
        .await?
        .into_iter()
        .find(|s| {
            s.model.as_deref() == Some(model)
                && s.model_version.as_deref() == Some(version)
                && s.status == crate::domain::ServiceStatus::Running
        })
        .map(|s| s.name)
        .ok_or_else(|| {
            eyre!("no RUNNING service serves {model} {version} to embed the query: give --service, or resume its service")
        })
}

/// The service, and the method that embeds a query on it.
async fn query_method(
    platform: &dyn Platform,
    service: &str,
) -> Result<(crate::domain::Service, String)> {
    let (svc, functions) = crate::cli::platform::service_with_functions(platform, service).await?;
    let method = call::query_method(&functions, service).map_err(|e| eyre!(e))?;
    Ok((svc, method))
}

/// A stop flag that the first Ctrl-C sets (the run stops after the batch in flight); a second
/// Ctrl-C quits at once.
struct Interrupt {
    stop: Arc<AtomicBool>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Interrupt {
    fn new() -> Interrupt {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let watcher = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nstopping after the batch in flight (Ctrl-C again to quit at once)");
                flag.store(true, Ordering::Relaxed);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(i32::from(INTERRUPTED));
                }
            }
        });
        Interrupt { stop, watcher }
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// A progress line on standard error: redrawn in place on a terminal, every 2 s otherwise.
fn reporter(unit: &'static str) -> impl FnMut(Progress) {
    let tty = std::io::stderr().is_terminal();
    let mut last: Option<Instant> = None;
    move |p: Progress| {
        let end = p.done + p.failed >= p.total;
        if tty {
            eprint!("\r{}\x1b[K", p.line(unit));
            if end {
                eprintln!();
            }
        } else if end || last.is_none_or(|l| l.elapsed() >= Duration::from_secs(2)) {
            eprintln!("{}", p.line(unit));
            last = Some(Instant::now());
        }
    }
}

/// The run's record in the data dir (for the TUI's Imports tab); a record that cannot be written
/// is a warning, never a reason to stop the run.
struct Tracker(Option<crate::batch::runs::Recorder>);

impl Tracker {
    fn start(ctx: &Context, kind: &str, platform: &str, service: &str, input: &str) -> Tracker {
        let path = ctx.paths.data_dir.path.join(crate::batch::runs::FILE);
        match crate::batch::runs::Recorder::start(&path, kind, platform, service, input) {
            Ok(r) => Tracker(Some(r)),
            Err(e) => {
                tracing::warn!("batch run not recorded: {e}");
                Tracker(None)
            }
        }
    }

    fn plan(&mut self, total: usize, skipped: usize, unchanged: usize) {
        if let Some(r) = self.0.as_mut() {
            r.plan(total as u64, skipped as u64, unchanged as u64);
        }
    }

    /// The terminal progress line, and the record.
    fn reporter<'a>(&'a mut self, unit: &'static str) -> impl FnMut(Progress) + 'a {
        let mut line = reporter(unit);
        move |p: Progress| {
            line(p);
            if let Some(r) = self.0.as_mut() {
                r.progress(p.done as u64, p.failed as u64);
            }
        }
    }

    fn end(&mut self, state: crate::domain::JobState, message: &str) {
        if let Some(r) = self.0.as_mut() {
            r.finish(state, message);
        }
    }

    /// Done, cancelled (interrupted) or failed, from a run's outcome.
    fn end_with<T>(
        &mut self,
        outcome: &std::result::Result<T, crate::batch::BatchError>,
        summary: impl FnOnce(&T) -> (bool, String),
    ) {
        use crate::domain::JobState;
        match outcome {
            Ok(v) => {
                let (interrupted, msg) = summary(v);
                if interrupted {
                    self.end(JobState::Cancelled, &format!("interrupted: {msg}"));
                } else {
                    self.end(JobState::Done, &msg);
                }
            }
            Err(e) => self.end(JobState::Failed, &e.to_string()),
        }
    }
}

/// Reports skipped rows and failures; an interrupted run exits 130.
fn finish(summary: &str, table: &Table, failed: &[run::Failure], interrupted: bool) -> Result<()> {
    eprintln!("{summary}");
    if !table.rejected.is_empty() {
        eprintln!("{} row(s) skipped:", table.rejected.len());
        for r in table.rejected.iter().take(20) {
            eprintln!(
                "  line {}{}: {}",
                r.line,
                r.id.as_deref()
                    .map(|i| format!(" (id {})", printable(i)))
                    .unwrap_or_default(),
                printable(&r.reason)
            );
        }
        if table.rejected.len() > 20 {
            eprintln!("  … and {} more", table.rejected.len() - 20);
        }
    }
    if !failed.is_empty() {
        eprintln!("{} could not be processed:", failed.len());
        for f in failed.iter().take(20) {
            eprintln!("  {}: {}", printable(&f.id), printable(&f.reason));
        }
    }
    if interrupted {
        eprintln!("interrupted: what finished is kept; run the same command again to continue");
        std::process::exit(i32::from(INTERRUPTED));
    }
    if !failed.is_empty() {
        // Partial success is still a failure for scripts: everything that worked is kept.
        return Err(eyre!(
            "{} row(s) could not be processed (listed above); the rest is kept",
            failed.len()
        ));
    }
    Ok(())
}

fn open_output(path: Option<&Path>) -> Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).wrap_err_with(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout()),
    })
}

async fn embed_local(ctx: &Context, platform: &dyn Platform, j: &job::Embed) -> Result<()> {
    let service = j
        .service
        .as_deref()
        .ok_or_else(|| eyre!("give --service: the embedding service"))?;
    let input = Path::new(&j.input);
    let service = service.to_ascii_uppercase();
    // Refuses a service that does not embed, before any row is sent.
    let (svc, _) = query_method(platform, &service).await?;
    let (Some(model), Some(version)) = (svc.model.clone(), svc.model_version.clone()) else {
        return Err(eyre!(
            "service {service} does not say which model version it serves"
        ));
    };
    let table = read_table(input, &j.columns.input())?;
    let path = cache_path(ctx, j.cache.as_deref());
    let mut cache = Cache::open(&path)?;
    eprintln!(
        "{} note(s) from {}; cache {}; {service} serves {model} {version}",
        table.notes.len(),
        input.display(),
        path.display()
    );
    let notes = &table.notes;
    let interrupt = Interrupt::new();
    let mut tracker = Tracker::start(
        ctx,
        "embed",
        "local",
        &service,
        &input.display().to_string(),
    );
    let stale = run::stale(&cache, notes, &model, &version)?;
    tracker.plan(stale.0.len(), table.rejected.len(), stale.1);
    let outcome = run::embed(
        platform,
        &service,
        "ENCODE",
        (&model, &version),
        notes,
        stale,
        &mut cache,
        &Pacing {
            batch_size: j.batch_size as usize,
            ..Pacing::default()
        },
        &interrupt.stop,
        tracker.reporter("notes"),
    )
    .await;
    tracker.end_with(&outcome, |r| {
        (
            r.interrupted,
            format!(
                "embedded {} note(s), {} already current, {} failed",
                r.computed,
                r.unchanged,
                r.failed.len()
            ),
        )
    });
    let report = outcome?;
    if j.json {
        print_json(&json!({
            "computed": report.computed,
            "unchanged": report.unchanged,
            "skipped": table.rejected,
            "failed": report.failed,
            "interrupted": report.interrupted,
            "seconds": report.seconds,
        }))?;
    }
    finish(
        &format!(
            "embedded {} note(s), {} already current, in {:.1} s",
            report.computed, report.unchanged, report.seconds
        ),
        &table,
        &report.failed,
        report.interrupted,
    )
}

async fn classify_images(
    ctx: &Context,
    platform: &dyn Platform,
    j: &job::ClassifyImages,
) -> Result<()> {
    let Some(dir) = &j.dir else {
        return Err(eyre!(
            "on the local platform, give --dir (a folder of PNG and JPEG files); --input TABLE is for Snowflake (--connection)"
        ));
    };
    if j.filter.is_some() || j.limit.is_some() || j.snowflake.dry_run {
        return Err(eyre!(
            "--where, --limit and --dry-run apply to an images table on Snowflake; locally, put the images to classify in the folder"
        ));
    }
    let service = j.service.to_ascii_uppercase();
    need_kind(
        platform,
        &service,
        call::ServiceKind::Images,
        "batch classify-images",
    )
    .await?;
    let labels = call::labels(&j.labels).map_err(|e| eyre!("--labels: {e}"))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .wrap_err_with(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(eyre!("{}: no PNG or JPEG files", dir.display()));
    }
    let mut table = Table::default();
    let mut rows = Vec::new();
    let mut ids = Vec::new();
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let cap = crate::platform::local::instance::MAX_BODY as u64 / 2;
        match crate::paths::read_user_file(f, cap) {
            Ok(bytes) => {
                rows.push(call::image_row_with_template(
                    &bytes,
                    &labels,
                    j.template.as_deref(),
                ));
                ids.push(name);
            }
            Err(e) => table.rejected.push(input::Rejected {
                line: 0,
                id: Some(name),
                reason: format!("unreadable: {e}"),
            }),
        }
    }
    let job = LineJob {
        kind: "classify-images",
        service: &service,
        input: &dir.display().to_string(),
        unit: "images",
        batch_size: j.batch_size as usize,
        output: j.output.as_deref().map(Path::new),
    };
    calls_to_lines(ctx, platform, &job, &rows, &ids, &table, |i, o| {
        json!({
            "image": ids[i],
            "label": o["labels"].get(0),
            "confidence": o["scores"].get(0),
            "labels": o["labels"],
            "scores": o["scores"],
            "note": "research use only, not for diagnosis",
        })
    })
    .await
}

/// A batch of `__CALL__`s whose results become JSON lines.
struct LineJob<'a> {
    kind: &'a str,
    service: &'a str,
    input: &'a str,
    unit: &'static str,
    batch_size: usize,
    /// The results file (standard output when none).
    output: Option<&'a Path>,
}

/// Calls `__CALL__` for every row in batches and writes `line(row, output)` for each result,
/// recording the run; Ctrl-C stops after the batch in flight.
async fn calls_to_lines(
    ctx: &Context,
    platform: &dyn Platform,
    job: &LineJob<'_>,
    rows: &[Vec<Value>],
    ids: &[String],
    table: &Table,
    line: impl Fn(usize, &Value) -> Value,
) -> Result<()> {
    let mut out = open_output(job.output)?;
    let mut written = 0usize;
    let pacing = Pacing {
        batch_size: job.batch_size,
        ..Pacing::default()
    };
    let interrupt = Interrupt::new();
    let mut tracker = Tracker::start(ctx, job.kind, "local", job.service, job.input);
    tracker.plan(rows.len(), table.rejected.len(), 0);
    let mut pipe_closed = false;
    let outcome = run::call_in_batches(
        platform,
        job.service,
        "__CALL__",
        rows,
        ids,
        &pacing,
        &interrupt.stop,
        |idx, outputs| {
            for (&i, o) in idx.iter().zip(&outputs) {
                writeln!(out, "{}", line(i, o)).map_err(|e| {
                    if job.output.is_none() && e.kind() == std::io::ErrorKind::BrokenPipe {
                        pipe_closed = true;
                    }
                    crate::batch::BatchError::Invalid(format!("cannot write the results: {e}"))
                })?;
                written += 1;
            }
            Ok(())
        },
        tracker.reporter(job.unit),
    )
    .await;
    tracker.end_with(&outcome, |(failed, interrupted)| {
        (
            *interrupted,
            format!("{written} {} done, {} failed", job.unit, failed.len()),
        )
    });
    if pipe_closed {
        // The reader of standard output went away (`| head`): ended quietly, as other commands.
        return Err(color_eyre::Report::new(crate::cli::output::OutputError(
            std::io::Error::from(std::io::ErrorKind::BrokenPipe),
        )));
    }
    let (failed, interrupted) = outcome?;
    out.flush().wrap_err("cannot write the results")?;
    let summary = match job.kind {
        "classify-images" => {
            format!("{written} image(s) classified (research use only, not for diagnosis)")
        }
        _ => format!("{} of {written} note(s) written", job.kind),
    };
    finish(&summary, table, &failed, interrupted)
}

/// The batch commands on Snowflake: the job's plan of SQL run in the account.
async fn snowflake(ctx: &Context, mut job: Job) -> Result<()> {
    let opener = ctx.opener();
    let (sf, opened) = opener.snowflake()?;
    eprintln!("{}", opened.describe());
    // Images: how the service takes them comes from its signature (SHOW FUNCTIONS IN MODEL).
    let image_call = match &mut job {
        Job::ClassifyImages(j) if j.input.is_some() => {
            let service = j.service.to_ascii_uppercase();
            let functions = match crate::cli::platform::service_with_functions(&sf, &service).await
            {
                Ok((svc, f)) => {
                    // Results are recorded under the model version the service serves (unless
                    // --model / --model-version say otherwise).
                    if j.snowflake.model.is_none() {
                        j.snowflake.model = svc.model.clone();
                    }
                    if j.snowflake.model_version.is_none() {
                        j.snowflake.model_version = svc.model_version.clone();
                    }
                    f
                }
                Err(e) if j.snowflake.dry_run => {
                    eprintln!(
                        "note: the signature of {service} could not be read ({e}); the plan uses \
                             the documented one (images BINARY, candidate_labels ARRAY)"
                    );
                    batch_sf::documented_image_functions()
                }
                Err(e) => return Err(e),
            };
            Some(
                batch_sf::image_call(&functions, j.template.as_deref(), &service)
                    .map_err(|e| eyre!(e))?,
            )
        }
        _ => None,
    };
    let plan = batch_sf::plan(&job, &sf.database, &sf.schema, image_call.as_ref())
        .map_err(|e| eyre!(e))?;
    let statements = plan.statements;
    if plan.dry_run {
        out!(
            "{}",
            sql::plan(&statements, &sql::warehouse_advice(None, false))
        )?;
        return Ok(());
    }
    // Warehouse inference runs only on versions logged for it (SHOW VERSIONS `runnable_in`):
    // refuse before anything runs, with what to do instead.
    if let Some((model, version)) = &plan.warehouse {
        sf.check_warehouse(model, version)
            .await
            .map_err(|e| eyre!("{e}"))?;
    }
    let timeout = Duration::from_secs(6 * 3600);
    let t0 = Instant::now();
    // Ctrl-C cancels the statement in the account (it would otherwise run on, spending credits).
    let interrupt = Interrupt::new();
    // Embedding and entity runs are recorded for the TUI's Imports tab; a search is not a run.
    let mut tracker = plan
        .record
        .as_ref()
        .map(|(kind, by, input)| Tracker::start(ctx, kind, "snowflake", by, input));
    let mut inserted = 0u64;
    for s in &statements {
        let binds: Vec<_> = s
            .binds
            .iter()
            .map(|b| crate::platform::snowflake::sqlapi::text(b.clone()))
            .collect();
        let t = Instant::now();
        let r = match batch_sf::statement(&sf.api, &s.sql, &binds, timeout, &interrupt.stop).await {
            Ok(r) => r,
            Err(batch_sf::Stopped::Cancelled(msg)) => {
                if let Some(t) = tracker.as_mut() {
                    t.end(crate::domain::JobState::Cancelled, &msg);
                }
                eprintln!("{msg}");
                std::process::exit(i32::from(INTERRUPTED));
            }
            Err(batch_sf::Stopped::Failed(e)) => {
                let msg = format!("{}: {e}", s.purpose);
                if let Some(t) = tracker.as_mut() {
                    t.end(crate::domain::JobState::Failed, &msg);
                }
                return Err(eyre!(msg));
            }
        };
        if s.sql.starts_with("INSERT INTO ") {
            inserted = r.scalar().and_then(|v| v.parse().ok()).unwrap_or(0);
            if let Some(t) = tracker.as_mut() {
                t.plan(inserted as usize, 0, 0);
                (t.reporter("rows"))(Progress {
                    done: inserted as usize,
                    failed: 0,
                    total: inserted as usize,
                    elapsed: t0.elapsed(),
                    batch_size: 0,
                });
            }
        }
        if s.purpose == "count the rows" {
            let rows: Option<u64> = r.scalar().and_then(|v| v.parse().ok());
            eprintln!(
                "{} row(s); {}",
                rows.map_or("?".into(), |n| n.to_string()),
                sql::warehouse_advice(rows, false)
            );
            continue;
        }
        let secs = t.elapsed().as_secs_f64();
        if r.columns.iter().any(|c| {
            c.name.eq_ignore_ascii_case("NOTE_ID") || c.name.eq_ignore_ascii_case("NOTE_A")
        }) {
            let headers: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
            let body: Vec<Vec<String>> = r
                .rows
                .iter()
                .map(|row| row.iter().map(|v| v.clone().unwrap_or_default()).collect())
                .collect();
            out!("{}", crate::cli::output::text_table(&headers, &body))?;
        } else {
            let counts: Vec<String> = r
                .columns
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    r.rows
                        .first()
                        .and_then(|row| row.get(i))
                        .and_then(|v| v.clone())
                        .map(|v| format!("{} {v}", c.name.to_ascii_lowercase()))
                })
                .collect();
            eprintln!(
                "{} ({:.1} s){}",
                s.purpose,
                secs,
                if counts.is_empty() {
                    String::new()
                } else {
                    format!(": {}", counts.join(", "))
                }
            );
        }
    }
    if let Some(t) = tracker.as_mut() {
        t.end(
            crate::domain::JobState::Done,
            &format!("{inserted} row(s) computed in the account"),
        );
    }
    Ok(())
}
