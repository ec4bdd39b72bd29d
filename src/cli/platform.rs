//! Commands that act on a platform: serve/stop, status, import, jobs, logs, metrics,
//! suspend/resume, drop, predict through a service, and the hidden `instance` mode the daemon runs. They use the same
//! Platform trait as the panes.

use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, eyre};

use crate::cli::args::{
    DropArgs, DropKind, ImportArgs, InstanceArgs, JobsArgs, LogsArgs, ObjectArgs, ObjectKind,
    PredictArgs, ScaleArgs, ServiceArgs, StatusArgs,
};
use crate::cli::output::{print_json, text_table};
use crate::domain::{ImportSpec, JobDetail, JobState, StageState, units};
use crate::hub::settings::HubSettings;
use crate::paths::ProcessEnv;
use crate::platform::local::daemon;
use crate::platform::local::lifecycle::{self, StopOutcome};
use crate::platform::{self as engine, Platform, Snapshot, call};
use crate::session::Context;

async fn connect(ctx: &Context) -> Result<std::sync::Arc<dyn Platform>> {
    let (client, opened) = ctx.opener().open().await?;
    if opened.worth_saying() {
        eprintln!("{}", opened.describe());
    }
    Ok(client)
}

/// The import spec `hugflake import` describes: DESIGN.md's default names, overridden by flags.
fn import_spec(a: ImportArgs) -> ImportSpec {
    let mut spec = ImportSpec::with_defaults(&a.handle, &a.pool);
    spec.revision = a.revision;
    // A catalog model's task is known (Snowflake needs it said; locally it equals the detected one).
    spec.task = a.task.or_else(|| {
        crate::domain::catalog::builtin()
            .ok()?
            .into_iter()
            .find(|c| c.handle == a.handle)?
            .task
    });
    if let Some(m) = a.model {
        spec.service = format!("{}_SVC", m.to_ascii_uppercase());
        spec.model = m;
    }
    if let Some(s) = a.service {
        spec.service = s;
    }
    spec.version = a.version;
    spec.min_instances = a.min_instances;
    spec.max_instances = a.max_instances.unwrap_or(a.min_instances.max(1));
    spec.token_secret = a.token_secret;
    spec.precision = a.precision;
    spec.auto_suspend_secs = a.auto_suspend_secs;
    spec.resources = crate::domain::Resources {
        gpu: a.gpu,
        cpu: a.cpu,
        memory: a.memory,
    };
    spec
}

/// `hugflake import`: queues the job, then follows it until the service runs (or the job fails).
pub async fn import(ctx: &Context, args: ImportArgs) -> Result<()> {
    let (detach, json) = (args.detach, args.json);
    let spec = import_spec(args);
    spec.check_instances().map_err(|e| eyre!("{e}"))?;
    spec.resources.check().map_err(|e| eyre!("{e}"))?;
    let client = connect(ctx).await?;
    if !json {
        eprintln!(
            "import {}@{} → model {} version {} (task {}), service {} on pool {} ({}..{} instances{})",
            spec.handle,
            spec.revision,
            spec.model,
            spec.version,
            spec.task.as_deref().unwrap_or("from the repo"),
            spec.service,
            spec.pool,
            spec.min_instances,
            spec.max_instances,
            if spec.precision.is_reduced() {
                format!(", {}", spec.precision)
            } else {
                String::new()
            }
        );
    }
    let job = client.import(&spec).await?;
    if json {
        outln!("{}", serde_json::json!({ "event": "queued", "job": job }))?;
    } else {
        eprintln!("job {} queued", job.id);
    }
    if detach {
        if !json {
            eprintln!(
                "follow it with `hugflake jobs {}`; the daemon keeps working when this exits",
                job.id
            );
        }
        return Ok(());
    }
    follow_job(client.as_ref(), &job.id, json).await
}

/// Prints a job's log and stage changes until it ends; errors when it did not end done.
async fn follow_job(client: &dyn Platform, id: &str, json: bool) -> Result<()> {
    let mut since: Option<u64> = None;
    let mut last_bytes = 0u64;
    let mut last_stage = None;
    loop {
        let detail = client.job(id, since, Some(Duration::from_secs(10))).await?;
        for line in &detail.log {
            if json {
                outln!(
                    "{}",
                    serde_json::json!({ "event": "log", "job": id, "at": line.at, "line": line.line })
                )?;
            } else {
                eprintln!("  {}", line.line);
            }
            since = Some(line.seq);
        }
        if let Some(s) = detail
            .stages
            .iter()
            .find(|s| s.state == StageState::Running)
        {
            if last_stage != Some(s.stage) {
                last_stage = Some(s.stage);
                // Text mode: every log line already starts with its stage.
                if json {
                    outln!(
                        "{}",
                        serde_json::json!({ "event": "stage", "job": id, "stage": s.stage, "state": s.state })
                    )?;
                }
            }
            let done: u64 = detail.files.iter().map(|f| f.done).sum();
            let total: u64 = detail.files.iter().map(|f| f.size).sum();
            if done != last_bytes && total > 0 {
                last_bytes = done;
                if json {
                    outln!(
                        "{}",
                        serde_json::json!({ "event": "progress", "job": id, "done": done, "total": total })
                    )?;
                } else {
                    eprintln!("  {} / {}", units::bytes(done), units::bytes(total));
                }
            }
        }
        match detail.summary.state {
            JobState::Queued | JobState::Running => continue,
            JobState::Done => {
                if json {
                    outln!(
                        "{}",
                        serde_json::json!({ "event": "done", "job": detail.summary })
                    )?;
                } else {
                    print_stages(&detail);
                }
                return Ok(());
            }
            state => {
                if json {
                    outln!(
                        "{}",
                        serde_json::json!({ "event": state.as_str(), "job": detail.summary })
                    )?;
                } else {
                    print_stages(&detail);
                }
                return Err(eyre!(
                    "job {id} {state}: {}",
                    detail
                        .summary
                        .error
                        .unwrap_or_else(|| "no reason recorded".into())
                ));
            }
        }
    }
}

fn print_stages(d: &JobDetail) {
    let rows: Vec<Vec<String>> = d
        .stages
        .iter()
        .map(|s| {
            let took = match (s.started_on, s.finished_on) {
                (Some(a), Some(b)) => {
                    format!("{:.1} s", (b - a).num_milliseconds() as f64 / 1000.0)
                }
                _ => "-".into(),
            };
            vec![
                s.stage.to_string(),
                s.state.as_str().to_string(),
                took,
                s.bytes_total.map_or("-".into(), units::bytes),
                s.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    eprint!(
        "{}",
        text_table(&["STAGE", "STATE", "TOOK", "BYTES", "ERROR"], &rows)
    );
}

pub async fn jobs(ctx: &Context, a: JobsArgs) -> Result<()> {
    let JobsArgs { id, json } = a;
    let client = connect(ctx).await?;
    if let Some(id) = id {
        let d = client.job(&id, None, None).await?;
        if json {
            return print_json(&d);
        }
        outln!(
            "job {}  {}  {} → {} {} on {}",
            d.summary.id,
            d.summary.state,
            d.summary.handle,
            d.summary.model,
            d.summary.version,
            d.summary.target
        )?;
        if let Some(e) = &d.summary.error {
            outln!("error: {e}")?;
        }
        print_stages(&d);
        for l in &d.log {
            outln!("{} {}", l.at.format("%H:%M:%S"), l.line)?;
        }
        return Ok(());
    }
    let list = client.jobs().await?;
    if json {
        return print_json(&list);
    }
    if list.is_empty() {
        eprintln!(
            "no import jobs yet: `hugflake import sentence-transformers/all-MiniLM-L6-v2` starts one"
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|j| {
            vec![
                j.id.clone(),
                j.state.to_string(),
                j.stage.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                j.handle.clone(),
                format!("{} {}", j.model, j.version),
                j.target.clone(),
                j.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out!(
        "{}",
        text_table(
            &["JOB", "STATE", "STAGE", "HANDLE", "MODEL", "POOL", "ERROR"],
            &rows
        )
    )?;
    Ok(())
}

pub async fn cancel(ctx: &Context, id: &str) -> Result<()> {
    let job = connect(ctx).await?.cancel_job(id).await?;
    eprintln!("cancelling job {} ({})", job.id, job.handle);
    Ok(())
}

pub async fn retry(ctx: &Context, id: &str) -> Result<()> {
    let client = connect(ctx).await?;
    let job = client.retry_job(id).await?;
    eprintln!("job {} queued again", job.id);
    follow_job(client.as_ref(), id, false).await
}

pub async fn logs(ctx: &Context, a: LogsArgs) -> Result<()> {
    let service = a.service.to_ascii_uppercase();
    let service = service.as_str();
    let LogsArgs {
        follow,
        tail,
        json,
        window,
        previous,
        instance,
        ..
    } = a;
    let window = window.window().map_err(|e| eyre!(e))?;
    if follow && window.until.is_some() {
        return Err(eyre!(
            "--follow keeps printing new lines: it does not go with --until"
        ));
    }
    let client = connect(ctx).await?;
    let print = |l: &crate::domain::LogLine| -> Result<()> {
        if json {
            outln!("{}", serde_json::to_string(l).unwrap_or_default())?;
        } else {
            outln!(
                "{} {}/{} {}",
                l.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                l.instance_id,
                l.container,
                l.line
            )?;
        }
        Ok(())
    };
    if previous {
        for l in client.previous_logs(service, instance, tail).await? {
            print(&l)?;
        }
        return Ok(());
    }
    if !window.is_open() && !follow {
        for l in client.logs_in(service, &window, tail).await? {
            if instance.is_none_or(|i| i == l.instance_id) {
                print(&l)?;
            }
        }
        return Ok(());
    }
    let mut since = None;
    let mut first = true;
    loop {
        let wait = (!first).then_some(Duration::from_secs(10));
        let lines = client
            .logs(service, since, if first { tail } else { 5000 }, wait)
            .await?;
        first = false;
        for l in &lines {
            // With --since, --follow starts at the window (older lines are left out).
            if window.contains(l.at) && instance.is_none_or(|i| i == l.instance_id) {
                print(l)?;
            }
            since = Some(l.seq);
        }
        if !follow {
            return Ok(());
        }
    }
}

/// `hugflake events SERVICE`: what the platform did to the service, oldest first.
pub async fn events(ctx: &Context, a: ServiceArgs) -> Result<()> {
    let json = a.json;
    let service = a.service.to_ascii_uppercase();
    let window = a.window.window().map_err(|e| eyre!(e))?;
    let events = connect(ctx).await?.events_in(&service, &window).await?;
    if json {
        return print_json(&events);
    }
    if events.is_empty() {
        eprintln!("no events for {service} yet");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                e.severity.clone(),
                e.name.clone(),
                e.instance_id.map_or("-".into(), |i| i.to_string()),
                e.message.clone(),
            ]
        })
        .collect();
    out!(
        "{}",
        text_table(&["AT", "SEVERITY", "EVENT", "INSTANCE", "MESSAGE"], &rows)
    )?;
    Ok(())
}

pub async fn metrics(ctx: &Context, a: ServiceArgs) -> Result<()> {
    let json = a.json;
    let service = a.service.to_ascii_uppercase();
    let window = a.window.window().map_err(|e| eyre!(e))?;
    let samples = connect(ctx).await?.metrics_in(&service, &window).await?;
    if json {
        return print_json(&samples);
    }
    if samples.is_empty() {
        eprintln!("no samples yet: the first one comes after [daemon] metrics_secs");
        return Ok(());
    }
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    let rows: Vec<Vec<String>> = samples
        .iter()
        .rev()
        .take(30)
        .map(|s| {
            vec![
                s.at.format("%H:%M:%S").to_string(),
                s.requests.to_string(),
                s.errors.to_string(),
                ms(s.p50_ms),
                ms(s.p95_ms),
                ms(s.p99_ms),
                s.queue_depth.to_string(),
                units::bytes(s.memory_bytes),
            ]
        })
        .collect();
    out!(
        "{}",
        text_table(
            &[
                "AT", "REQUESTS", "ERRORS", "P50 MS", "P95 MS", "P99 MS", "QUEUE", "MEMORY"
            ],
            &rows
        )
    )?;
    Ok(())
}

pub async fn suspend_resume(ctx: &Context, a: ObjectArgs, suspend: bool) -> Result<()> {
    let client = connect(ctx).await?;
    let kind = a.kind;
    let name = a.name.to_ascii_uppercase();
    match (kind, suspend) {
        (ObjectKind::Pool, true) => {
            let p = client.suspend_pool(&name).await?;
            eprintln!(
                "compute pool {} is {} (its services are suspended)",
                p.name, p.state
            );
        }
        (ObjectKind::Pool, false) => {
            let p = client.resume_pool(&name).await?;
            eprintln!(
                "compute pool {} is {}; its services stay suspended until `hugflake resume service NAME`",
                p.name, p.state
            );
        }
        (ObjectKind::Service, true) => {
            let s = client.suspend_service(&name).await?;
            eprintln!("service {} is {}", s.name, s.status);
        }
        (ObjectKind::Service, false) => {
            let s = client.resume_service(&name).await?;
            eprintln!(
                "service {} is {} (instances are starting)",
                s.name, s.status
            );
        }
    }
    Ok(())
}

/// `hugflake scale`: plans the change against the service as it is, says what each value will
/// do, asks (unless `--yes`), then sends it.
pub async fn scale(ctx: &Context, a: ScaleArgs) -> Result<()> {
    let client = connect(ctx).await?;
    let name = a.service.to_ascii_uppercase();
    let change = crate::domain::ScalingChange {
        min_instances: a.min,
        max_instances: a.max,
        auto_suspend_secs: a.auto_suspend_secs,
    };
    let services = client.services().await?;
    let now = services
        .iter()
        .find(|s| s.name == name || s.qualified_name() == name)
        .ok_or_else(|| eyre!("service {name} not found"))?;
    let sql = client.kind() == crate::domain::PlatformKind::Snowflake;
    if sql {
        change.check_snowflake().map_err(|e| eyre!("{e}"))?;
    }
    let plan = change
        .plan(&now.name, now.scaling())
        .map_err(|e| eyre!("{e}"))?;
    let mut said = vec![format!(
        "{} {}:",
        if sql { "ALTER SERVICE" } else { "service" },
        now.qualified_name()
    )];
    said.extend(plan.iter().map(|l| format!("  {l}")));
    if sql && change.auto_suspend_secs.is_some_and(|s| s > 0) && now.endpoint.is_some() {
        said.push(
            "  note: Snowflake documents that auto-suspension does not apply to services with a public endpoint, as this one has"
                .into(),
        );
    }
    // With --json, standard output carries only the service.
    for line in said {
        if a.json {
            eprintln!("{line}");
        } else {
            outln!("{line}")?;
        }
    }
    if !crate::cli::output::confirm("change it?", a.yes, "nothing changed")? {
        return Ok(());
    }
    let s = client.alter_service(&now.name, &change).await?;
    if a.json {
        print_json(&s)?;
    } else {
        eprintln!("service {}: {}", s.name, s.scaling().summary());
    }
    Ok(())
}

pub async fn drop(ctx: &Context, a: DropArgs) -> Result<()> {
    let client = connect(ctx).await?;
    let DropArgs { kind, version, .. } = a;
    let name = a.name.to_ascii_uppercase();
    match kind {
        DropKind::Service => {
            client.drop_service(&name).await?;
            eprintln!("dropped service {name}; its model versions stay in the registry");
        }
        DropKind::Model => {
            client.drop_model(&name, None).await?;
            eprintln!("dropped model {name} and its versions (cached files stay in the HF cache)");
        }
        DropKind::Version => {
            let v = version
                .ok_or_else(|| eyre!("say which version: `hugflake drop version {name} V1`"))?
                .to_ascii_uppercase();
            client.drop_model(&name, Some(&v)).await?;
            eprintln!("dropped version {v} of model {name}");
        }
    }
    Ok(())
}

/// A service by name, with the functions of the model version it serves.
pub async fn service_with_functions(
    platform: &dyn Platform,
    service: &str,
) -> Result<(crate::domain::Service, Vec<crate::domain::Function>)> {
    let svc = platform
        .services()
        .await?
        .into_iter()
        .find(|s| s.name == service)
        .ok_or_else(|| eyre!("no service {service}: `hugflake status` lists them"))?;
    let functions = crate::platform::service_functions(
        platform,
        service,
        svc.model.as_deref(),
        svc.model_version.as_deref(),
    )
    .await?;
    Ok((svc, functions))
}

/// `hugflake predict SERVICE`: the inputs go through the service's REST endpoint.
pub async fn predict_service(ctx: &Context, p: PredictArgs) -> Result<()> {
    let client = connect(ctx).await?;
    let service = p.service.clone().unwrap_or_default().to_ascii_uppercase();
    let (_, functions) = service_with_functions(client.as_ref(), &service).await?;
    let method = call::method(&functions, p.method.as_deref(), &service).map_err(|e| eyre!(e))?;
    let images = functions
        .iter()
        .find(|f| f.name == method)
        .is_some_and(call::takes_images);
    let rows = if images {
        if p.image.is_empty() {
            return Err(eyre!(
                "service {service} classifies images: give --image PATH and --labels \"a,b\" (two or more)"
            ));
        }
        let labels = call::labels(p.labels.as_deref().unwrap_or_default())
            .map_err(|e| eyre!("service {service} classifies images: --labels: {e}"))?;
        image_rows(&p.image, &labels)?
    } else {
        let texts = input_texts(&p)?;
        if texts.is_empty() {
            return Err(eyre!("no input: give --text TEXT (repeatable) or --stdin"));
        }
        call::text_rows(texts)
    };
    let n_rows = rows.len();
    let mut outputs = Vec::with_capacity(n_rows);
    let mut total_ms = 0.0;
    for chunk in rows.chunks((p.batch_size as usize).max(1)) {
        let r = client.predict(&service, &method, chunk).await?;
        total_ms += r.latency_ms;
        outputs.extend(r.outputs);
    }
    if p.json {
        let rows: Vec<serde_json::Value> = outputs
            .into_iter()
            .enumerate()
            .map(|(i, o)| match o.get("outputs") {
                // Token rows, and the entities they form (the one grouping every face uses).
                Some(_) => serde_json::json!({
                    "index": i,
                    "output": o,
                    "entities": crate::domain::entities::group_json(&o),
                }),
                None => serde_json::json!({ "index": i, "output": o }),
            })
            .collect();
        print_json(&rows)?;
    } else {
        for (i, o) in outputs.iter().enumerate() {
            outln!("{i}: {}", crate::cli::output::output_line(o))?;
        }
    }
    eprintln!("{service} {method}: {n_rows} row(s) in {total_ms:.0} ms");
    Ok(())
}

/// The texts of `--text`, then with `--stdin` one per line of standard input.
pub(crate) fn input_texts(p: &PredictArgs) -> Result<Vec<String>> {
    let mut texts = p.text.clone();
    if p.stdin {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            texts.push(line.wrap_err("cannot read standard input")?);
        }
    }
    Ok(texts)
}

/// One request row per `--image` file, each with the candidate labels.
fn image_rows(
    paths: &[std::path::PathBuf],
    labels: &[String],
) -> Result<Vec<Vec<serde_json::Value>>> {
    paths
        .iter()
        .map(|path| {
            let bytes = crate::paths::read_user_file(
                path,
                crate::platform::local::instance::MAX_BODY as u64 / 2,
            )
            .wrap_err_with(|| format!("cannot read {}", path.display()))?;
            Ok(call::image_row(&bytes, labels))
        })
        .collect()
}

/// `hugflake predict --compare A B`: the same inputs through both services, side by side.
pub async fn predict_compare(ctx: &Context, p: PredictArgs) -> Result<()> {
    use crate::platform::compare::{self, InputDiff};
    let [a, b] = [&p.compare[0], &p.compare[1]].map(|s| s.to_ascii_uppercase());
    let client = connect(ctx).await?;
    let rows = if !p.image.is_empty() {
        let labels = call::labels(p.labels.as_deref().unwrap_or_default())
            .map_err(|e| eyre!("--labels: {e}"))?;
        image_rows(&p.image, &labels)?
    } else {
        let mut texts = input_texts(&p)?;
        if texts.is_empty() {
            return Err(eyre!(
                "no input: give --text TEXT (repeatable), --stdin, or --image PATH --labels A,B"
            ));
        }
        // Search mode ranks the notes against the texts read as one query, as the Query pane does.
        if p.search {
            texts = vec![texts.join(" ")];
        }
        call::text_rows(texts)
    };
    let notes: Vec<String> = if p.search {
        crate::app::query::demo_notes()
            .into_iter()
            .map(str::to_string)
            .collect()
    } else {
        Vec::new()
    };
    let c = compare::compare(client.as_ref(), &a, &b, &rows, &notes, 5)
        .await
        .map_err(|e| eyre!(e))?;
    if p.json {
        print_json(&c)?;
        return Ok(());
    }
    outln!(
        "A {} {}: {:.0} ms    B {} {}: {:.0} ms",
        c.a.service,
        c.a.method,
        c.a.latency_ms,
        c.b.service,
        c.b.method,
        c.b.latency_ms
    )?;
    let input_text = |i: usize| {
        rows.get(i)
            .and_then(|r| r.first())
            .and_then(|v| v.as_str())
            .map(|t| {
                if t.chars().count() > 100 {
                    format!("{}…", t.chars().take(99).collect::<String>())
                } else {
                    t.to_string()
                }
            })
            .unwrap_or_else(|| format!("input {i}"))
    };
    for (i, d) in c.inputs.iter().enumerate() {
        let text = if p.image.is_empty() {
            input_text(i)
        } else {
            p.image[i].display().to_string()
        };
        outln!("{i}: {text}")?;
        match d {
            InputDiff::Embeddings {
                cosine: Some(x), ..
            } => outln!("   cosine A·B {x:.4}")?,
            InputDiff::Embeddings {
                cosine: None,
                dims: (da, db),
            } => outln!(
                "   dimensions differ ({da} vs {db}): the vectors cannot be compared, rankings can (--search)"
            )?,
            InputDiff::Features { cosine } => outln!(
                "   cosine A·B of the mean vectors {}",
                cosine.map_or("- (dimensions differ)".into(), |x| format!("{x:.4}"))
            )?,
            InputDiff::Entities {
                both,
                only_a,
                only_b,
            } => {
                outln!("   both: {}", list_or_none(both))?;
                outln!("   only A: {}", list_or_none(only_a))?;
                outln!("   only B: {}", list_or_none(only_b))?;
            }
            InputDiff::Images { a, b } => {
                let line = |v: &[(String, f64)]| {
                    v.iter()
                        .map(|(l, s)| format!("{l} {:.1}%", s * 100.0))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                outln!("   A: {}", line(a))?;
                outln!("   B: {}", line(b))?;
            }
        }
    }
    if let Some(s) = &c.search {
        let notes = crate::app::query::demo_notes();
        outln!(
            "search over {} demo notes: A's top {} (B's rank change)",
            notes.len(),
            s.a.len()
        )?;
        for (rank, (note, score)) in s.a.iter().enumerate() {
            outln!(
                "   {}. {score:.3} {:>4}  {}",
                rank + 1,
                s.change(rank, *note),
                notes.get(*note).copied().unwrap_or("?")
            )?;
        }
        outln!("B's top {}:", s.b.len())?;
        for (rank, (note, score)) in s.b.iter().enumerate() {
            let new = !s.a.iter().any(|(n, _)| n == note);
            outln!(
                "   {}. {score:.3} {:>4}  {}",
                rank + 1,
                if new { "new" } else { "" },
                notes.get(*note).copied().unwrap_or("?")
            )?;
        }
    }
    Ok(())
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

/// `hugflake instance`: one service instance, run by the daemon.
pub fn instance(a: InstanceArgs) -> Result<()> {
    let opts = crate::platform::local::instance::InstanceOptions {
        model_dir: a.model_dir,
        task: a.task,
        text_dir: a.text_dir,
        hf_cache: a.hf_cache,
        precision: a.precision,
        limits: crate::inference::runtime::Limits {
            max_batch: a.max_batch.max(1),
            ..Default::default()
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    runtime
        .block_on(crate::platform::local::instance::run(opts))
        .map_err(|e| eyre!(e))
}

pub async fn serve(ctx: &Context) -> Result<()> {
    let data_dir = ctx.paths.data_dir.path.clone();
    let log = ctx.paths.log_file(true);
    let d = &ctx.config.daemon;
    let hub = HubSettings::from_env(&ProcessEnv);
    let opts = daemon::ServeOptions {
        data_dir,
        services: crate::platform::local::daemon::services::ServiceSettings {
            exe: std::env::current_exe().wrap_err("cannot find the hugflake executable")?,
            hf_cache: hub.cache_dir.clone(),
            sample_every: Duration::from_secs_f64(d.metrics_secs),
            first_backoff: Duration::from_secs_f64(d.restart_backoff_secs),
            max_backoff: Duration::from_secs(60),
            request_timeout: Duration::from_secs(d.request_timeout_secs),
            max_batch: d.max_batch as usize,
            endpoint: crate::platform::local::daemon::endpoint::Limits {
                max_connections: d.endpoint_max_connections as usize,
                header_timeout: Duration::from_secs(d.endpoint_header_timeout_secs),
            },
            autoscale: crate::domain::scaling::Policy {
                queue_ms: d.autoscale_queue_ms,
                deep_for: Duration::from_secs_f64(d.autoscale_after_secs),
                idle_for: Duration::from_secs_f64(d.scale_in_idle_secs),
            },
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
    if let Err(e) = daemon::serve(opts).await {
        // Written to the daemon's log too: a daemon started in the background has no terminal,
        // and its starter quotes this line.
        tracing::error!("the daemon stopped: {e}");
        return Err(e.into());
    }
    eprintln!("hugflake daemon stopped");
    Ok(())
}

pub async fn stop(ctx: &Context) -> Result<()> {
    match lifecycle::stop(&ctx.paths.data_dir.path, Duration::from_secs(10)).await? {
        StopOutcome::Stopped { pid } => eprintln!("stopped the local daemon (pid {pid})"),
        StopOutcome::NotRunning => eprintln!(
            "no local daemon runs for {}",
            ctx.paths.data_dir.path.display()
        ),
    }
    Ok(())
}

pub async fn status(ctx: &Context, a: StatusArgs) -> Result<()> {
    let StatusArgs {
        json,
        fail_on_unhealthy,
        watch,
    } = a;
    if watch {
        return crate::cli::watch::run(ctx, json, fail_on_unhealthy).await;
    }
    let (client, opened) = ctx.opener().open().await?;
    if !json || matches!(opened, crate::session::Opened::Started { .. }) {
        eprintln!("{}", opened.describe());
    }
    let snap = engine::snapshot(client.as_ref()).await?;
    if json {
        print_json(&snap)?;
    } else {
        out!("{}", status_text(&snap))?;
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
                p.size(),
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
                    s.status_label(),
                    format!("{}/{}", s.ready_instances, s.target_instances),
                    s.compute_pool.clone(),
                    s.precision.map_or("-".into(), |p| p.to_string()),
                    s.endpoint.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        out.push_str(&text_table(
            &["NAME", "STATUS", "READY", "POOL", "PRECISION", "ENDPOINT"],
            &rows,
        ));
    }
    out
}
