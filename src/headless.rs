//! The headless face: the same engine as the TUI, for scripts and CI. JSON on stdout, messages on
//! stderr.

use std::io::Write;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, eyre};
use serde::Serialize;

use crate::cli::{Cli, Command};
use crate::config::{Config, DEFAULT_CONFIG, Setting};
use crate::domain::units;
use crate::hub::api::{HubClient, SearchQuery, validate_repo_id};
use crate::hub::details;
use crate::hub::download::{DownloadRequest, Downloader, ProgressEvent, ProgressTotals};
use crate::hub::settings::HubSettings;
use crate::inference::Task;
use crate::inference::sentence::SentenceEncoder;
use crate::inference::token_classification::{self, FeatureExtractor, TokenClassifier};
use crate::paths::{Paths, ProcessEnv};
use crate::platform::local::lifecycle::{self, StartOptions, StopOutcome};
use crate::platform::local::registry::{DEFAULT_POOL, Machine};
use crate::platform::local::{DaemonFiles, daemon};
use crate::platform::{self, Snapshot};

/// Everything a command needs to start.
pub struct Context {
    pub cli_config: Option<std::path::PathBuf>,
    pub paths: Paths,
    pub config: Config,
    pub verbose: bool,
    /// Why logging is off, if it is.
    pub log_problem: Option<String>,
    /// The platform the command line chose, if it did.
    pub platform: Option<crate::config::PlatformChoice>,
    pub connection: Option<String>,
    pub read_only: bool,
}

/// Everything needed to open a platform, owned (the TUI opens it on a worker task).
#[derive(Debug, Clone)]
pub struct Opener {
    pub choice: crate::config::PlatformChoice,
    pub start: StartOptions,
    pub connection: Option<String>,
    pub settings: crate::config::PlatformConfig,
    pub data_dir: std::path::PathBuf,
}

impl Opener {
    /// Opens the platform: the local daemon (started when none runs), or a Snowflake connection.
    /// Returns it with one line saying what was opened.
    pub async fn open(
        &self,
    ) -> std::result::Result<
        (std::sync::Arc<dyn platform::Platform>, String),
        platform::PlatformError,
    > {
        use crate::config::PlatformChoice;
        match self.choice {
            PlatformChoice::Local => {
                let (client, c) = lifecycle::connect_or_start(&self.start).await?;
                let line = match &c {
                    lifecycle::Connection::Started(_) => c.describe(),
                    lifecycle::Connection::Existing(i) => {
                        format!("connected to the local daemon (pid {})", i.pid)
                    }
                };
                Ok((std::sync::Arc::new(client), line))
            }
            PlatformChoice::Snowflake => {
                let (p, line) = self.snowflake()?;
                Ok((std::sync::Arc::new(p), line))
            }
        }
    }
}

impl Opener {
    /// The Snowflake platform of the connection this command names (or the default one).
    pub fn snowflake(
        &self,
    ) -> std::result::Result<
        (crate::platform::snowflake::SnowflakePlatform, String),
        platform::PlatformError,
    > {
        use crate::config::InferenceChoice;
        use crate::platform::snowflake::{InferenceRoute, SnowflakePlatform, connection};
        let env = ProcessEnv;
        let home = crate::paths::home(&env);
        let name = self
            .connection
            .clone()
            .or_else(|| Some(self.settings.snowflake_connection.clone()).filter(|c| !c.is_empty()));
        let conn = connection::load(&env, &home, name.as_deref(), &[])
            .map_err(|e| platform::PlatformError::Other(e.to_string()))?;
        for w in &conn.warnings {
            tracing::warn!("{w}");
        }
        let route = match self.settings.snowflake_inference {
            InferenceChoice::Rest => InferenceRoute::Rest,
            InferenceChoice::Sql => InferenceRoute::Sql,
        };
        let p = SnowflakePlatform::new(&conn, &env, &self.data_dir, route)?
            .with_poll_every(Duration::from_secs_f64(self.settings.snowflake_poll_secs));
        let line = format!(
            "Snowflake connection `{}` ({}){}",
            conn.name,
            conn.get("account").unwrap_or("?"),
            conn.warnings
                .first()
                .map(|w| format!("; warning: {w}"))
                .unwrap_or_default()
        );
        Ok((p, line))
    }
}

impl Context {
    /// The platform this command uses: --connection implies Snowflake; else --platform, else the
    /// config.
    pub fn opener(&self) -> Opener {
        let choice = if self.connection.is_some() {
            crate::config::PlatformChoice::Snowflake
        } else {
            self.platform.unwrap_or(self.config.platform.default)
        };
        Opener {
            choice,
            start: self.start_options(),
            connection: self.connection.clone(),
            settings: self.config.platform.clone(),
            data_dir: self.paths.data_dir.path.clone(),
        }
    }

    pub fn start_options(&self) -> StartOptions {
        StartOptions {
            data_dir: self.paths.data_dir.path.clone(),
            exe: None,
            config_flag: self.cli_config.clone(),
            timeout: Duration::from_secs(self.config.daemon.start_timeout_secs),
        }
    }
}

pub fn run(cli: Cli) -> Result<()> {
    // A service instance: no config, no log file (its stderr is its container log).
    if let Some(Command::Instance {
        model_dir,
        task,
        text_dir,
        hf_cache,
        max_batch,
    }) = cli.command
    {
        return crate::headless_platform::instance(
            crate::platform::local::instance::InstanceOptions {
                model_dir,
                task,
                text_dir,
                hf_cache,
                limits: crate::inference::runtime::Limits {
                    max_batch: max_batch.max(1),
                    ..Default::default()
                },
            },
        );
    }
    let paths = Paths::resolve(&ProcessEnv, cli.config.as_deref());
    let config = Config::load(&paths.config_file)?;
    let daemon_mode = matches!(cli.command, Some(Command::Serve { stop: false, .. }));
    let level = if cli.verbose {
        "debug"
    } else {
        config.log_level.as_str()
    };
    let log_problem = crate::logging::init(&paths.log_file(daemon_mode), level).err();
    let ctx = Context {
        cli_config: cli.config.clone(),
        paths,
        config,
        verbose: cli.verbose,
        log_problem,
        platform: cli.platform,
        connection: cli.connection.clone(),
        read_only: cli.read_only,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    match cli.command.unwrap_or(Command::Tui) {
        Command::Tui => runtime.block_on(crate::app::run(ctx)),
        Command::Serve { stop: false } => runtime.block_on(serve(&ctx)),
        Command::Serve { stop: true } => runtime.block_on(stop(&ctx)),
        Command::Status {
            json,
            fail_on_unhealthy,
        } => runtime.block_on(status(&ctx, json, fail_on_unhealthy)),
        Command::Catalog { json } => catalog(&ctx, json),
        Command::Predict {
            service: Some(service),
            method,
            text,
            stdin,
            image,
            labels,
            batch_size,
            json,
            ..
        } => runtime.block_on(crate::headless_platform::predict_service(
            &ctx,
            crate::headless_platform::ServicePredict {
                service,
                method,
                texts: text,
                stdin,
                images: image,
                labels,
                batch_size: batch_size as usize,
                json,
            },
        )),
        Command::Predict {
            service: None,
            model_dir,
            task,
            text,
            stdin,
            image,
            labels,
            template,
            text_tower,
            batch_size,
            json,
            ..
        } => {
            let model_dir = model_dir.ok_or_else(|| eyre!("give a SERVICE or --model-dir DIR"))?;
            let task = match task {
                Some(t) => t,
                None => Task::detect(&model_dir)?,
            };
            if task == Task::ZeroShotImageClassification {
                let cache = ctx.paths.hf_cache.path.clone();
                classify_images(
                    &model_dir,
                    text_tower.as_deref(),
                    &cache,
                    &image,
                    labels,
                    &template,
                    json,
                )
            } else {
                predict(
                    &model_dir,
                    Some(task),
                    text,
                    stdin,
                    batch_size as usize,
                    json,
                )
            }
        }
        Command::Import {
            handle,
            revision,
            task,
            model,
            version,
            pool,
            service,
            min_instances,
            max_instances,
            token_secret,
            detach,
            json,
        } => {
            let mut spec = crate::domain::ImportSpec::with_defaults(&handle, &pool);
            spec.revision = revision;
            spec.task = task;
            if let Some(m) = model {
                spec.service = format!("{}_SVC", m.to_ascii_uppercase());
                spec.model = m;
            }
            if let Some(s) = service {
                spec.service = s;
            }
            spec.version = version;
            spec.min_instances = min_instances;
            spec.max_instances = max_instances.max(min_instances.max(1));
            spec.token_secret = token_secret;
            runtime.block_on(crate::headless_platform::import(
                &ctx,
                crate::headless_platform::ImportArgs { spec, detach, json },
            ))
        }
        Command::Jobs { id, json } => {
            runtime.block_on(crate::headless_platform::jobs(&ctx, id, json))
        }
        Command::Cancel { job } => runtime.block_on(crate::headless_platform::cancel(&ctx, &job)),
        Command::Retry { job } => runtime.block_on(crate::headless_platform::retry(&ctx, &job)),
        Command::Logs {
            service,
            follow,
            tail,
            json,
        } => runtime.block_on(crate::headless_platform::logs(
            &ctx,
            &service.to_ascii_uppercase(),
            follow,
            tail,
            json,
        )),
        Command::Events { service, json } => runtime.block_on(crate::headless_platform::events(
            &ctx,
            &service.to_ascii_uppercase(),
            json,
        )),
        Command::Metrics { service, json } => runtime.block_on(crate::headless_platform::metrics(
            &ctx,
            &service.to_ascii_uppercase(),
            json,
        )),
        Command::Batch { command } => runtime.block_on(crate::headless_batch::run(&ctx, command)),
        Command::Suspend { kind, name } => runtime.block_on(
            crate::headless_platform::suspend_resume(&ctx, kind, &name, true),
        ),
        Command::Resume { kind, name } => runtime.block_on(
            crate::headless_platform::suspend_resume(&ctx, kind, &name, false),
        ),
        Command::Drop {
            kind,
            name,
            version,
        } => runtime.block_on(crate::headless_platform::drop(&ctx, kind, &name, version)),
        Command::Instance { .. } => Err(eyre!("instance mode is handled before start-up")),
        Command::Search {
            query,
            task,
            author,
            library,
            sort,
            limit,
            json,
        } => {
            let q = SearchQuery {
                search: query,
                author,
                pipeline_tag: task,
                library,
                sort: Some(sort.api_name().into()),
                limit: Some(limit),
            };
            runtime.block_on(search(&ctx, q, json))
        }
        Command::Show {
            handle,
            revision,
            json,
        } => runtime.block_on(show(&ctx, &handle, &revision, json)),
        Command::Download {
            handle,
            revision,
            include,
            json,
        } => runtime.block_on(download(&ctx, &handle, &revision, include, json)),
        Command::Config { print_default } => config_cmd(&ctx, print_default),
        Command::Doctor { json } => runtime.block_on(doctor(&ctx, json)),
    }
}

async fn serve(ctx: &Context) -> Result<()> {
    let data_dir = ctx.paths.data_dir.path.clone();
    let log = ctx.paths.log_file(true);
    let d = &ctx.config.daemon;
    let hub = HubSettings::from_env(&ProcessEnv);
    let opts = daemon::ServeOptions {
        data_dir,
        services: crate::platform::local::services::ServiceSettings {
            exe: std::env::current_exe().wrap_err("cannot find the hugflake executable")?,
            hf_cache: hub.cache_dir.clone(),
            sample_every: Duration::from_secs_f64(d.metrics_secs),
            first_backoff: Duration::from_secs_f64(d.restart_backoff_secs),
            max_backoff: Duration::from_secs(60),
            request_timeout: Duration::from_secs(d.request_timeout_secs),
            max_batch: d.max_batch as usize,
        },
        hub,
        import_concurrency: d.import_concurrency as usize,
        on_ready: Some(Box::new(move |info| {
            eprintln!(
                "hugflake daemon {} listening on {} (pid {}, data {}, log {})",
                info.version,
                info.socket.display(),
                info.pid,
                info.data_dir.display(),
                log.display()
            );
        })),
    };
    daemon::serve(opts).await?;
    eprintln!("hugflake daemon stopped");
    Ok(())
}

async fn stop(ctx: &Context) -> Result<()> {
    match lifecycle::stop(&ctx.paths.data_dir.path, Duration::from_secs(10)).await? {
        StopOutcome::Stopped { pid } => eprintln!("stopped the local daemon (pid {pid})"),
        StopOutcome::NotRunning => eprintln!(
            "no local daemon runs for {}",
            ctx.paths.data_dir.path.display()
        ),
    }
    Ok(())
}

async fn status(ctx: &Context, json: bool, fail_on_unhealthy: bool) -> Result<()> {
    let (client, line) = ctx.opener().open().await?;
    if !json || line.starts_with("started") {
        eprintln!("{line}");
    }
    let snap = platform::snapshot(client.as_ref()).await?;
    if json {
        print_json(&snap)?;
    } else {
        print!("{}", status_text(&snap));
    }
    let faults = unhealthy(&snap);
    if fail_on_unhealthy && !faults.is_empty() {
        for f in &faults {
            eprintln!("unhealthy: {f}");
        }
        std::process::exit(3);
    }
    Ok(())
}

/// Pools and services that are faulty, each with why.
pub fn unhealthy(snap: &Snapshot) -> Vec<String> {
    use crate::domain::Health;
    let pools = snap
        .pools
        .iter()
        .filter(|p| p.health() == Health::Fault)
        .map(|p| {
            format!(
                "compute pool {} {}{}",
                p.name,
                p.state,
                p.status_message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )
        });
    let services = snap
        .services
        .iter()
        .filter(|s| s.health() == Health::Fault)
        .map(|s| {
            format!(
                "service {} {}{}",
                s.name,
                s.status,
                s.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )
        });
    pools.chain(services).collect()
}

/// `hugflake status` as text.
pub fn status_text(snap: &Snapshot) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "platform  {} at {} (version {})\n\n",
        snap.status.kind, snap.status.location, snap.status.version
    ));
    out.push_str("COMPUTE POOLS\n");
    let rows: Vec<Vec<String>> = snap
        .pools
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.state.to_string(),
                format!("{}/{}", p.active_nodes, p.max_nodes),
                p.num_services.to_string(),
                format!("{} vCPU, {:.1} GiB", p.vcpu, p.memory_gib),
                p.instance_family.clone(),
            ]
        })
        .collect();
    out.push_str(&text_table(
        &["NAME", "STATE", "NODES", "SERVICES", "BUDGET", "FAMILY"],
        &rows,
    ));
    out.push_str("\nSERVICES\n");
    if snap.services.is_empty() {
        out.push_str("  none yet: import a model and deploy it to get one\n");
    } else {
        let rows: Vec<Vec<String>> = snap
            .services
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    s.status.to_string(),
                    format!("{}/{}", s.ready_instances, s.target_instances),
                    s.compute_pool.clone(),
                    s.endpoint.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        out.push_str(&text_table(
            &["NAME", "STATUS", "READY", "POOL", "ENDPOINT"],
            &rows,
        ));
    }
    out
}

fn catalog(ctx: &Context, json: bool) -> Result<()> {
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
    print!(
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
    );
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

async fn search(_ctx: &Context, q: SearchQuery, json: bool) -> Result<()> {
    let client = hub_client();
    let limit = q.limit.unwrap_or(20) as usize;
    let mut page = client.search(&q).await?;
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
    print!(
        "{}",
        text_table(&["MODEL", "TASK", "LIBRARY", "DOWNLOADS", "LIKES"], &rows)
    );
    eprintln!("{} models from {}", models.len(), client.settings.endpoint);
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

async fn show(ctx: &Context, handle: &str, revision: &str, json: bool) -> Result<()> {
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
    print!("{out}");
    Ok(())
}

async fn download(
    _ctx: &Context,
    handle: &str,
    revision: &str,
    include: Vec<String>,
    json: bool,
) -> Result<()> {
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
    println!("{}", done.snapshot.display());
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

fn predict(
    dir: &std::path::Path,
    task: Option<Task>,
    mut texts: Vec<String>,
    stdin: bool,
    batch_size: usize,
    json: bool,
) -> Result<()> {
    use std::io::BufRead;
    if stdin {
        for line in std::io::stdin().lock().lines() {
            let line = line.wrap_err("cannot read standard input")?;
            texts.push(line);
        }
    }
    if texts.is_empty() {
        return Err(eyre!("no input: give --text TEXT (repeatable) or --stdin"));
    }
    let task = match task {
        Some(t) => t,
        None => Task::detect(dir)?,
    };
    let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let rows: Vec<serde_json::Value> = match task {
        Task::SentenceSimilarity => {
            let enc = SentenceEncoder::load(dir)?;
            enc.encode(&inputs, batch_size)?
                .into_iter()
                .enumerate()
                .map(|(i, e)| serde_json::json!({ "index": i, "embedding": e }))
                .collect()
        }
        Task::TokenClassification => {
            let model = TokenClassifier::load(dir)?;
            model
                .tag(&inputs)?
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    serde_json::json!({
                        "index": i,
                        "entities": token_classification::group_simple(t),
                        "tokens": token_classification::entities(t),
                    })
                })
                .collect()
        }
        Task::FeatureExtraction => {
            let model = FeatureExtractor::load(dir)?;
            eprintln!(
                "feature extraction: this checkpoint has no task head, so it gives vectors, not entities \
                 (entity extraction needs a fine-tuned NER checkpoint)"
            );
            model
                .extract(&inputs)?
                .into_iter()
                .enumerate()
                .map(|(i, f)| serde_json::json!({ "index": i, "cls": f.cls, "mean": f.mean }))
                .collect()
        }
        Task::ZeroShotImageClassification => {
            return Err(eyre!(
                "zero-shot image classification takes --image PATH and --labels A,B,C"
            ));
        }
    };
    let elapsed = started.elapsed();
    if json {
        print_json(&rows)?;
    } else {
        for row in &rows {
            println!("{}", predict_line(row));
        }
    }
    eprintln!(
        "{} {} input(s) in {:.0} ms (model load included)",
        task.as_str(),
        rows.len(),
        elapsed.as_secs_f64() * 1000.0
    );
    Ok(())
}

fn classify_images(
    dir: &std::path::Path,
    text_tower: Option<&std::path::Path>,
    hf_cache: &std::path::Path,
    images: &[std::path::PathBuf],
    labels: Option<String>,
    template: &str,
    json: bool,
) -> Result<()> {
    use crate::inference::clip::{RESEARCH_USE, ZeroShot};
    use crate::inference::image::Rgb;
    if images.is_empty() {
        return Err(eyre!(
            "zero-shot image classification needs --image PATH (repeatable)"
        ));
    }
    let labels: Vec<String> = labels
        .unwrap_or_default()
        .split(',')
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if labels.len() < 2 {
        return Err(eyre!(
            "give at least two candidate labels: --labels \"chest X-ray,brain MRI\""
        ));
    }
    let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    let model = ZeroShot::load(dir, text_tower, Some(hf_cache))?;
    let mut rows = Vec::new();
    let mut failed = 0;
    for (i, path) in images.iter().enumerate() {
        // One unreadable image is reported and the others still run.
        let result = Rgb::open(path).and_then(|img| model.classify(&img, &label_refs, template));
        match result {
            Ok(scores) => rows.push(serde_json::json!({
                "index": i, "image": path, "labels": scores.iter().map(|s| &s.label).collect::<Vec<_>>(),
                "scores": scores.iter().map(|s| s.score).collect::<Vec<_>>(), "notice": RESEARCH_USE,
            })),
            Err(e) => {
                failed += 1;
                rows.push(serde_json::json!({ "index": i, "image": path, "error": e.to_string() }));
            }
        }
    }
    if json {
        print_json(&rows)?;
    } else {
        println!("({RESEARCH_USE})");
        for r in &rows {
            match r.get("error") {
                Some(e) => println!(
                    "{}: ✖ {}",
                    r["image"].as_str().unwrap_or(""),
                    e.as_str().unwrap_or("")
                ),
                None => {
                    let parts: Vec<String> = r["labels"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .zip(r["scores"].as_array().into_iter().flatten())
                        .map(|(l, s)| {
                            format!(
                                "{} {:.1}%",
                                l.as_str().unwrap_or(""),
                                s.as_f64().unwrap_or(0.0) * 100.0
                            )
                        })
                        .collect();
                    println!(
                        "{}: {}",
                        r["image"].as_str().unwrap_or(""),
                        parts.join(", ")
                    );
                }
            }
        }
    }
    if failed > 0 {
        return Err(eyre!(
            "{failed} of {} image(s) could not be classified",
            images.len()
        ));
    }
    Ok(())
}

/// One readable line per result; inputs are not echoed (they may be clinical text).
/// One readable line for a service's output object.
pub fn output_line(o: &serde_json::Value) -> String {
    let mut row = o.clone();
    if let Some(v) = o.get("output") {
        row = serde_json::json!({ "embedding": v });
    } else if let Some(t) = o.get("outputs") {
        let groups: Vec<serde_json::Value> = t
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| serde_json::json!({ "entity_group": t["entity"], "word": t["word"], "score": t["score"], "start": t["start"], "end": t["end"] }))
            .collect();
        row = serde_json::json!({ "entities": groups });
    } else if let (Some(l), Some(s)) = (o.get("labels"), o.get("scores")) {
        let parts: Vec<String> = l
            .as_array()
            .into_iter()
            .flatten()
            .zip(s.as_array().into_iter().flatten())
            .map(|(l, s)| {
                format!(
                    "{} {:.1}%",
                    l.as_str().unwrap_or(""),
                    s.as_f64().unwrap_or(0.0) * 100.0
                )
            })
            .collect();
        return format!(
            "{} ({})",
            parts.join(", "),
            crate::inference::clip::RESEARCH_USE
        );
    }
    let line = predict_line(&row);
    line.split_once(": ")
        .map_or(line.clone(), |(_, rest)| rest.to_string())
}

fn predict_line(row: &serde_json::Value) -> String {
    let i = row["index"].as_u64().unwrap_or(0);
    let head = |v: &serde_json::Value| {
        let vals: Vec<String> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .take(6)
                    .filter_map(|x| x.as_f64())
                    .map(|x| format!("{x:.4}"))
                    .collect()
            })
            .unwrap_or_default();
        let n = v.as_array().map_or(0, Vec::len);
        format!("dim {n} [{}, …]", vals.join(", "))
    };
    if let Some(e) = row.get("embedding") {
        format!("{i}: {}", head(e))
    } else if let Some(groups) = row.get("entities").and_then(|g| g.as_array()) {
        if groups.is_empty() {
            return format!("{i}: no entities");
        }
        let parts: Vec<String> = groups
            .iter()
            .map(|g| {
                format!(
                    "{} \"{}\" {:.2} [{}..{}]",
                    g["entity_group"].as_str().unwrap_or(""),
                    g["word"].as_str().unwrap_or(""),
                    g["score"].as_f64().unwrap_or(0.0),
                    g["start"],
                    g["end"]
                )
            })
            .collect();
        format!("{i}: {}", parts.join("; "))
    } else {
        format!(
            "{i}: cls {}; mean {}",
            head(&row["cls"]),
            head(&row["mean"])
        )
    }
}

fn config_cmd(ctx: &Context, print_default: bool) -> Result<()> {
    if print_default {
        print!("{DEFAULT_CONFIG}");
        return Ok(());
    }
    print!("{}", settings_text(&ctx.config.settings));
    Ok(())
}

fn settings_text(settings: &[Setting]) -> String {
    let rows: Vec<Vec<String>> = settings
        .iter()
        .map(|s| vec![s.key.clone(), s.value.clone(), s.source.clone()])
        .collect();
    text_table(&["SETTING", "VALUE", "FROM"], &rows)
}

#[derive(Serialize)]
struct Doctor<'a> {
    version: &'static str,
    paths: &'a Paths,
    config_file_exists: bool,
    log_file: std::path::PathBuf,
    daemon_log_file: std::path::PathBuf,
    log_problem: Option<&'a str>,
    daemon: DaemonState,
    settings: &'a [Setting],
    environment: Vec<(String, String)>,
    snowflake: SnowflakeReport,
    polling: Option<Polling>,
}

/// The Snowflake connection as Snowflake's tools would resolve it, secrets masked.
#[derive(Serialize)]
struct SnowflakeReport {
    dir: String,
    connection: Option<String>,
    /// (key, value with secrets masked, where it came from)
    keys: Vec<(String, String, String)>,
    auth: Option<String>,
    warnings: Vec<String>,
    problem: Option<String>,
}

fn snowflake_report(ctx: &Context) -> SnowflakeReport {
    use crate::platform::snowflake::connection;
    let env = ProcessEnv;
    let home = crate::paths::home(&env);
    let dir = connection::config_dir(&env, &home).display().to_string();
    let name = ctx.connection.clone().or_else(|| {
        Some(ctx.config.platform.snowflake_connection.clone()).filter(|c| !c.is_empty())
    });
    match connection::load(&env, &home, name.as_deref(), &[]) {
        Ok(c) => SnowflakeReport {
            dir,
            connection: Some(c.name.clone()),
            keys: c.describe(),
            auth: Some(match c.auth(&env) {
                Ok(a) => a.token_type().to_string(),
                Err(e) => format!("unusable: {e}"),
            }),
            warnings: c.warnings.clone(),
            problem: None,
        },
        Err(e) => SnowflakeReport {
            dir,
            connection: None,
            keys: Vec::new(),
            auth: None,
            warnings: Vec::new(),
            problem: Some(e.to_string()),
        },
    }
}

#[derive(Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum DaemonState {
    Running {
        pid: u32,
        socket: std::path::PathBuf,
        version: String,
    },
    NotAnswering {
        detail: String,
    },
    NotRunning,
}

/// Environment variables that change what hugflake does; secret ones are shown masked.
const ENV_VARS: &[(&str, bool)] = &[
    ("HUGFLAKE_CONFIG", false),
    ("HUGFLAKE_DATA_DIR", false),
    ("HUGFLAKE_STATE_DIR", false),
    ("HUGFLAKE_LOG", false),
    ("XDG_CONFIG_HOME", false),
    ("XDG_DATA_HOME", false),
    ("XDG_STATE_HOME", false),
    ("XDG_CACHE_HOME", false),
    ("HF_HOME", false),
    ("HF_HUB_CACHE", false),
    ("HUGGINGFACE_HUB_CACHE", false),
    ("HF_ENDPOINT", false),
    ("HF_HUB_OFFLINE", false),
    ("HF_TOKEN", true),
    ("HF_TOKEN_PATH", false),
    ("HUGFLAKE_PLATFORM", false),
    ("SNOWFLAKE_HOME", false),
    ("SNOWFLAKE_DEFAULT_CONNECTION_NAME", false),
];

/// The cost of one TUI refresh, measured by doing one: the snapshot every pane shows, then the
/// selected service's detail that Health adds.
#[derive(Serialize)]
struct Polling {
    platform: String,
    every_secs: f64,
    snapshot: crate::platform::Traffic,
    service_detail: Option<crate::platform::Traffic>,
    millis: u64,
}

impl Polling {
    fn describe(&self) -> String {
        let count = |t: &crate::platform::Traffic| {
            if t.statements > 0 {
                format!(
                    "{} SQL statements ({} HTTP requests)",
                    t.statements, t.requests
                )
            } else {
                format!("{} requests", t.requests)
            }
        };
        format!(
            "{}: one refresh = {} in {} ms{}; every {} s while the TUI is open (ui.refresh_secs)",
            self.platform,
            count(&self.snapshot),
            self.millis,
            self.service_detail
                .as_ref()
                .map(|d| format!(", plus {} for the service selected in Health", count(d)))
                .unwrap_or_default(),
            self.every_secs
        )
    }
}

async fn polling_cost(ctx: &Context, daemon_running: bool) -> Option<Polling> {
    let opener = ctx.opener();
    if opener.choice == crate::config::PlatformChoice::Local && !daemon_running {
        return None;
    }
    let (p, _) = opener.open().await.ok()?;
    let t0 = p.traffic();
    let started = std::time::Instant::now();
    let snap = platform::snapshot(p.as_ref()).await.ok()?;
    let millis = started.elapsed().as_millis() as u64;
    let t1 = p.traffic();
    let service_detail = match snap.services.first() {
        Some(s) => {
            crate::app::state::ServiceDetail::fetch(p.as_ref(), s.name.clone()).await;
            Some(p.traffic() - t1)
        }
        None => None,
    };
    Some(Polling {
        platform: match p.kind() {
            crate::domain::PlatformKind::Local => "local daemon".into(),
            crate::domain::PlatformKind::Snowflake => "Snowflake".into(),
        },
        every_secs: ctx.config.ui.refresh_secs,
        snapshot: t1 - t0,
        service_detail,
        millis,
    })
}

async fn doctor(ctx: &Context, json: bool) -> Result<()> {
    let files = DaemonFiles::new(&ctx.paths.data_dir.path);
    let daemon = match lifecycle::connect(&files.dir).await {
        Ok((_, info)) => DaemonState::Running {
            pid: info.pid,
            socket: info.socket,
            version: info.version,
        },
        Err(e) if files.lock_held() => DaemonState::NotAnswering {
            detail: e.to_string(),
        },
        Err(_) => DaemonState::NotRunning,
    };
    let polling = polling_cost(ctx, matches!(daemon, DaemonState::Running { .. })).await;
    let environment = ENV_VARS
        .iter()
        .filter_map(|(k, secret)| {
            std::env::var(k).ok().map(|v| {
                (
                    (*k).to_string(),
                    if *secret { "set (********)".into() } else { v },
                )
            })
        })
        .collect();
    let report = Doctor {
        version: crate::VERSION,
        paths: &ctx.paths,
        config_file_exists: ctx.paths.config_file.path.exists(),
        log_file: ctx.paths.log_file(false),
        daemon_log_file: ctx.paths.log_file(true),
        log_problem: ctx.log_problem.as_deref(),
        daemon,
        settings: &ctx.config.settings,
        environment,
        snowflake: snowflake_report(ctx),
        polling,
    };
    if json {
        return print_json(&report);
    }
    let p = &ctx.paths;
    let mut out = format!("hugflake {}\n\nPATHS\n", crate::VERSION);
    let rows = vec![
        vec![
            "config file".into(),
            format!(
                "{}{}",
                p.config_file.path.display(),
                if report.config_file_exists {
                    ""
                } else {
                    " (absent: built-in defaults)"
                }
            ),
            p.config_file.source.clone(),
        ],
        vec![
            "data dir".into(),
            p.data_dir.path.display().to_string(),
            p.data_dir.source.clone(),
        ],
        vec![
            "state dir".into(),
            p.state_dir.path.display().to_string(),
            p.state_dir.source.clone(),
        ],
        vec![
            "log file".into(),
            report.log_file.display().to_string(),
            report
                .log_problem
                .map_or("state dir".into(), |e| format!("logging off: {e}")),
        ],
        vec![
            "daemon log".into(),
            report.daemon_log_file.display().to_string(),
            "state dir".into(),
        ],
        vec![
            "HF cache".into(),
            p.hf_cache.path.display().to_string(),
            p.hf_cache.source.clone(),
        ],
    ];
    out.push_str(&text_table(&["WHAT", "PATH", "FROM"], &rows));
    out.push_str("\nDAEMON\n  ");
    out.push_str(&match &report.daemon {
        DaemonState::Running {
            pid,
            socket,
            version,
        } => {
            format!(
                "running: pid {pid}, {} (owner only), version {version}",
                socket.display()
            )
        }
        DaemonState::NotAnswering { detail } => {
            format!("holds its lock but does not answer: {detail}")
        }
        DaemonState::NotRunning => "not running (the TUI and `hugflake status` start it)".into(),
    });
    out.push_str("\n\nPOLLING (what the TUI sends each refresh)\n  ");
    out.push_str(&match &report.polling {
        Some(p) => p.describe(),
        None => "not measured: no platform to ask (the local daemon is not running; \
                  `--connection NAME` measures a Snowflake connection)"
            .into(),
    });
    out.push_str("\n\nSNOWFLAKE\n");
    let sf = &report.snowflake;
    out.push_str(&format!("  config dir {}\n", sf.dir));
    match (&sf.connection, &sf.problem) {
        (Some(name), _) => {
            out.push_str(&format!(
                "  connection `{name}`, authentication {}\n",
                sf.auth.as_deref().unwrap_or("-")
            ));
            let rows: Vec<Vec<String>> = sf
                .keys
                .iter()
                .map(|(k, v, src)| vec![k.clone(), v.clone(), src.clone()])
                .collect();
            out.push_str(&text_table(&["KEY", "VALUE", "FROM"], &rows));
            for w in &sf.warnings {
                out.push_str(&format!("  warning: {w}\n"));
            }
        }
        (None, Some(p)) => out.push_str(&format!("  no connection: {p}\n")),
        (None, None) => out.push_str("  no connection\n"),
    }
    out.push_str("\nSETTINGS\n");
    out.push_str(&settings_text(&ctx.config.settings));
    out.push_str("\nENVIRONMENT\n");
    if report.environment.is_empty() {
        out.push_str("  none of hugflake's variables is set\n");
    }
    for (k, v) in &report.environment {
        out.push_str(&format!("  {k}={v}\n"));
    }
    print!("{out}");
    Ok(())
}

pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| eyre!("cannot encode JSON: {e}"))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}").wrap_err("cannot write to stdout")?;
    Ok(())
}

/// Left-aligned columns, two spaces apart, with a header row.
pub fn text_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            s.push(' ');
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(pad + 1));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
