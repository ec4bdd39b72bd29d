//! The TUI: one event loop that turns terminal events into actions, applies worker messages and
//! redraws when something changed.

pub mod action;
pub mod command;
pub mod import_form;
pub mod keymap;
pub mod query;
pub mod search;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use color_eyre::eyre::{Result, WrapErr};
use crossterm::event::{DisableMouseCapture, EnableMouseCapture, EventStream};
use futures::StreamExt;
use ratatui::DefaultTerminal;
use ratatui::layout::Rect;
use tokio::sync::mpsc;

use crate::hub::api::HubClient;
use crate::hub::settings::HubSettings;
use crate::paths::ProcessEnv;
use crate::platform::{self, Platform};
use crate::session::Context;
use search as state_search;
use state::{App, Effect, Link, Msg};

/// Opens the TUI and restores the terminal on every way out, panics included.
pub async fn run(ctx: Context) -> Result<()> {
    let mouse = ctx.config.ui.mouse;
    let terminal = ratatui::init();
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
        // ratatui::init's hook restores the screen; mouse capture must be released too.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
            previous(info);
        }));
    }
    let result = event_loop(terminal, &ctx).await;
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    }
    ratatui::restore();
    result
}

/// Background work the loop starts; each sends one message when done.
struct Workers {
    tx: mpsc::UnboundedSender<Msg>,
    platform: Option<Arc<dyn Platform>>,
    connecting: bool,
    fetching: bool,
    hub: HubClient,
    /// The newest search generation and details handle: older debounced requests are not sent.
    latest_search: Arc<std::sync::atomic::AtomicU64>,
    latest_details: Arc<std::sync::Mutex<String>>,
    /// The embedding cache `hugflake batch embed` fills (local platform): searched by the Query
    /// pane when it holds the service's model version.
    cache: std::path::PathBuf,
}

/// How long typing or scrolling must pause before the Hub is asked.
const SEARCH_DEBOUNCE: Duration = Duration::from_millis(300);
const DETAILS_DEBOUNCE: Duration = Duration::from_millis(250);
/// What a request answers while no platform is connected.
const NOT_CONNECTED: &str = "not connected to a platform yet: wait for the status line to say so";

impl Workers {
    fn connect(
        &mut self,
        opener: crate::session::Opener,
        platform_tx: mpsc::UnboundedSender<Arc<dyn Platform>>,
    ) {
        if self.connecting {
            return;
        }
        self.connecting = true;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let msg = match opener.open().await {
                Ok((platform, opened)) => {
                    let kind = platform.kind();
                    let _ = platform_tx.send(platform);
                    Link::Connected {
                        kind,
                        description: opened.describe(),
                    }
                }
                Err(e) => Link::Failed(e.to_string()),
            };
            let _ = tx.send(Msg::Link(msg));
        });
    }

    /// Fetches a snapshot unless one is already on its way (pollers never stack requests).
    fn refresh(&mut self) {
        let Some(platform) = self.platform.clone() else {
            return;
        };
        if self.fetching {
            return;
        }
        self.fetching = true;
        let tx = self.tx.clone();
        let runs = self.cache.with_file_name(crate::batch::runs::FILE);
        tokio::spawn(async move {
            let result = platform::snapshot(platform.as_ref())
                .await
                .map_err(|e| e.to_string());
            // The batch runs of this machine, read off the async workers; unreadable: none shown.
            let batch = tokio::task::spawn_blocking(move || {
                crate::batch::runs::list(&runs, 50).unwrap_or_else(|e| {
                    tracing::warn!("batch runs: {e}");
                    Vec::new()
                })
            })
            .await
            .unwrap_or_default();
            let _ = tx.send(Msg::BatchRuns(batch));
            let _ = tx.send(Msg::Snapshot(result));
        });
    }

    /// Runs one platform call and sends its message. Without a platform the request still gets
    /// its own answer (`offline` turns the reason into the message the request waits for), so
    /// whatever waits on it (a busy Query, a loading pane) is released.
    fn call<F, Fut>(&self, f: F, offline: impl FnOnce(String) -> Msg)
    where
        F: FnOnce(Arc<dyn Platform>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Msg> + Send + 'static,
    {
        let tx = self.tx.clone();
        match self.platform.clone() {
            Some(p) => {
                tokio::spawn(async move {
                    let _ = tx.send(f(p).await);
                });
            }
            None => {
                let _ = tx.send(offline(NOT_CONNECTED.into()));
            }
        }
    }

    fn import(&self, spec: crate::domain::ImportSpec) {
        self.call(
            move |p| async move {
                Msg::ImportStarted(p.import(&spec).await.map_err(|e| e.to_string()))
            },
            |e| Msg::ImportStarted(Err(e)),
        );
    }

    fn job_detail(&self, id: String) {
        let offline_id = id.clone();
        self.call(
            move |p| async move {
                let result = p
                    .job(&id, None, None)
                    .await
                    .map(Box::new)
                    .map_err(|e| e.to_string());
                Msg::JobDetail { id, result }
            },
            |e| Msg::JobDetail {
                id: offline_id,
                result: Err(e),
            },
        );
    }

    fn platform_op(&self, op: state::PlatformOp) {
        use state::PlatformOp;
        self.call(
            move |p| async move {
                let what = op.describe();
                let result = match &op {
                    PlatformOp::CancelJob(id) => p.cancel_job(id).await.map(|_| ()),
                    PlatformOp::RetryJob(id) => p.retry_job(id).await.map(|_| ()),
                    PlatformOp::SuspendPool(n) => p.suspend_pool(n).await.map(|_| ()),
                    PlatformOp::ResumePool(n) => p.resume_pool(n).await.map(|_| ()),
                    PlatformOp::SuspendService(n) => p.suspend_service(n).await.map(|_| ()),
                    PlatformOp::ResumeService(n) => p.resume_service(n).await.map(|_| ()),
                };
                Msg::PlatformDone(
                    result
                        .map(|()| format!("done: {what}"))
                        .map_err(|e| format!("could not {what}: {e}")),
                )
            },
            |e| Msg::PlatformDone(Err(e)),
        );
    }

    /// A service's functions: from its model version, or (Snowflake) the version that lists it.
    fn functions(&self, service: String, model: Option<String>, version: Option<String>) {
        let offline_service = service.clone();
        self.call(
            move |p| async move {
                let result = crate::platform::service_functions(
                    p.as_ref(),
                    &service,
                    model.as_deref(),
                    version.as_deref(),
                )
                .await
                .map_err(|e| e.to_string());
                Msg::Functions { service, result }
            },
            |e| Msg::Functions {
                service: offline_service,
                result: Err(e),
            },
        );
    }

    /// One call from the Query pane; images are read and thumbnailed here, off the UI thread.
    fn query(&self, request: query::QueryRequest) {
        let cache = self.cache.clone();
        let offline_request = request.clone();
        self.call(
            move |p| async move {
                let result = run_query(p.as_ref(), &request, &cache).await.map(Box::new);
                Msg::QueryDone { request, result }
            },
            |e| Msg::QueryDone {
                request: offline_request,
                result: Err(e),
            },
        );
    }

    /// Containers, endpoints, metrics and the log tail of a service, fetched together; what fails
    /// is said, the rest still shows.
    fn service_detail(&self, name: String) {
        let offline_name = name.clone();
        self.call(
            move |p| async move {
                Msg::ServiceDetail(Box::new(
                    state::ServiceDetail::fetch(p.as_ref(), name).await,
                ))
            },
            |e| {
                Msg::ServiceDetail(Box::new(state::ServiceDetail {
                    name: offline_name,
                    containers: Vec::new(),
                    endpoints: Vec::new(),
                    metrics: Vec::new(),
                    logs: Vec::new(),
                    events: Vec::new(),
                    problems: vec![e],
                }))
            },
        );
    }

    fn search(&self, req: state_search::SearchRequest) {
        use std::sync::atomic::Ordering;
        let hub = self.hub.clone();
        let tx = self.tx.clone();
        let latest = self.latest_search.clone();
        if req.page.is_none() {
            latest.store(req.generation, Ordering::SeqCst);
        }
        tokio::spawn(async move {
            if req.page.is_none() {
                tokio::time::sleep(SEARCH_DEBOUNCE).await;
                if latest.load(Ordering::SeqCst) != req.generation {
                    return;
                }
            }
            let result = match &req.page {
                Some(url) => hub.search_page(url).await,
                None => hub.search(&req.query).await,
            };
            let _ = tx.send(Msg::HubPage {
                generation: req.generation,
                append: req.page.is_some(),
                result: result.map_err(|e| e.to_string()),
            });
        });
    }

    fn details(&self, handle: String, pool: Option<(String, f64)>) {
        let hub = self.hub.clone();
        let tx = self.tx.clone();
        let latest = self.latest_details.clone();
        if let Ok(mut l) = latest.lock() {
            l.clone_from(&handle);
        }
        tokio::spawn(async move {
            tokio::time::sleep(DETAILS_DEBOUNCE).await;
            if latest.lock().map(|l| *l != handle).unwrap_or(false) {
                let _ = tx.send(Msg::HubDetailsSkipped(handle));
                return;
            }
            let pool_ref = pool.as_ref().map(|(n, b)| (n.as_str(), *b));
            let result = crate::hub::details::fetch(&hub, &handle, "main", pool_ref)
                .await
                .map(Box::new)
                .map_err(|e| e.to_string());
            let _ = tx.send(Msg::HubDetails { handle, result });
        });
    }

    /// Downloads a model into the cache, reporting progress about five times a second, then
    /// rescans the cache so the row shows it.
    fn download(&self, handle: String, ctx: &Context) {
        use crate::hub::download::{DownloadRequest, Downloader, ProgressTotals};
        let tx = self.tx.clone();
        let hub = self.hub.clone();
        let cache = ctx.paths.hf_cache.path.clone();
        tokio::spawn(async move {
            let (ptx, mut prx) = mpsc::unbounded_channel();
            let downloader = Downloader::new(hub).with_progress(ptx);
            let req = DownloadRequest {
                repo: handle.clone(),
                revision: "main".into(),
                include: None,
            };
            let progress_tx = tx.clone();
            let progress_handle = handle.clone();
            let reporter = tokio::spawn(async move {
                let mut totals = ProgressTotals::default();
                let mut last = std::time::Instant::now();
                while let Some(e) = prx.recv().await {
                    totals.apply(&e);
                    if last.elapsed() >= Duration::from_millis(200) {
                        last = std::time::Instant::now();
                        let _ = progress_tx.send(Msg::Download {
                            handle: progress_handle.clone(),
                            state: state::DownloadState::from_totals(&totals, None),
                        });
                    }
                }
                totals
            });
            let result = downloader.snapshot(&req).await;
            drop(downloader);
            let totals = reporter.await.unwrap_or_default();
            let finished = match &result {
                Ok(d) => Ok(d.snapshot.display().to_string()),
                Err(e) => Err(e.to_string()),
            };
            let _ = tx.send(Msg::Download {
                handle,
                state: state::DownloadState::from_totals(&totals, Some(finished)),
            });
            scan_candidates(tx, cache);
        });
    }

    fn load_candidates(&self, ctx: &Context) {
        scan_candidates(self.tx.clone(), ctx.paths.hf_cache.path.clone());
    }
}

/// Reads catalog + cache off the async workers and sends the rows.
fn scan_candidates(tx: mpsc::UnboundedSender<Msg>, cache: std::path::PathBuf) {
    tokio::task::spawn_blocking(move || {
        let result = crate::hub::offline_candidates(&cache).map_err(|e| e.to_string());
        let _ = tx.send(Msg::Candidates(result));
    });
}

async fn event_loop(mut terminal: DefaultTerminal, ctx: &Context) -> Result<()> {
    let size = terminal.size().wrap_err("cannot read the terminal size")?;
    let mut app = App::new(
        &ctx.config,
        Utc::now(),
        Rect::new(0, 0, size.width, size.height),
    );
    if let Some(problem) = &ctx.log_problem {
        app.set_flash(format!("logging off: {problem}"), true);
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (platform_tx, mut platform_rx) = mpsc::unbounded_channel::<Arc<dyn Platform>>();
    let hub_settings = HubSettings::from_env(&ProcessEnv);
    app.hub = state_search::HubSearch::new(
        hub_settings
            .offline
            .then(|| "HF_HUB_OFFLINE is set".to_string()),
    );
    let mut workers = Workers {
        tx,
        platform: None,
        connecting: false,
        fetching: false,
        hub: HubClient::new(hub_settings),
        latest_search: Arc::default(),
        latest_details: Arc::default(),
        cache: ctx.paths.data_dir.path.join("embeddings.sqlite"),
    };
    app.read_only = ctx.read_only;
    app.picture = crate::ui::picture::Protocol::detect(&crate::paths::ProcessEnv);
    let mut shown_picture: Option<(ratatui::layout::Rect, usize)> = None;
    let mut opener = ctx.opener();
    app.platform_kind = match opener.choice {
        crate::config::PlatformChoice::Local => crate::domain::PlatformKind::Local,
        crate::config::PlatformChoice::Snowflake => crate::domain::PlatformKind::Snowflake,
    };
    workers.connect(opener.clone(), platform_tx.clone());
    workers.load_candidates(ctx);
    let mut effects = app.start();

    let mut events = EventStream::new();
    let mut render =
        tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(ctx.config.ui.fps)));
    let mut refresh = tokio::time::interval(Duration::from_secs_f64(ctx.config.ui.refresh_secs));
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    for i in [&mut render, &mut refresh, &mut clock] {
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    }

    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => effects.extend(app.handle_event(&event)),
                Some(Err(e)) => return Err(e).wrap_err("cannot read terminal events"),
                None => break,
            },
            Some(platform) = platform_rx.recv() => {
                workers.platform = Some(platform);
                workers.refresh();
            }
            Some(msg) = rx.recv() => {
                let mut next = Some(msg);
                // Drain everything pending, then draw the latest state once.
                while let Some(msg) = next {
                    match &msg {
                        Msg::Snapshot(_) => workers.fetching = false,
                        Msg::Link(_) => workers.connecting = false,
                        _ => {}
                    }
                    effects.extend(app.apply(msg));
                    next = rx.try_recv().ok();
                }
            }
            _ = refresh.tick() => {
                if workers.platform.is_some() {
                    workers.refresh();
                }
            }
            _ = clock.tick() => app.tick(Utc::now()),
            _ = render.tick() => {
                if app.dirty {
                    terminal.draw(|frame| crate::ui::draw(frame, &app)).wrap_err("cannot draw")?;
                    app.dirty = false;
                    show_picture(&app, &mut shown_picture);
                }
            }
        }
        for effect in std::mem::take(&mut effects) {
            match effect {
                Effect::Quit => return Ok(()),
                Effect::HubSearch(req) => workers.search(req),
                Effect::HubDetails { handle, pool } => workers.details(handle, pool),
                Effect::Download(handle) => workers.download(handle, ctx),
                Effect::Import(spec) => workers.import(spec),
                Effect::JobDetail(id) => workers.job_detail(id),
                Effect::Functions {
                    service,
                    model,
                    version,
                } => workers.functions(service, model, version),
                Effect::Query(request) => workers.query(request),
                Effect::ServiceDetail(name) => workers.service_detail(name),
                Effect::SaveLogs { service, lines } => {
                    let path = std::path::PathBuf::from(format!(
                        "hugflake-{}-{}.log",
                        service.to_lowercase(),
                        Utc::now().format("%Y%m%d-%H%M%S")
                    ));
                    let text = lines.join("\n") + "\n";
                    let msg = match std::fs::write(&path, text) {
                        Ok(()) => Ok(format!("saved {} lines to {}", lines.len(), path.display())),
                        Err(e) => Err(format!("cannot write {}: {e}", path.display())),
                    };
                    effects.extend(app.apply(Msg::PlatformDone(msg)));
                }
                Effect::Clipboard(text) => {
                    use base64::Engine;
                    use std::io::Write;
                    let b64 = base64::engine::general_purpose::STANDARD.encode(text);
                    let mut out = std::io::stdout();
                    let _ = write!(out, "\x1b]52;c;{b64}\x07");
                    let _ = out.flush();
                }
                Effect::SwitchPlatform(kind) => {
                    opener.choice = match kind {
                        crate::domain::PlatformKind::Local => crate::config::PlatformChoice::Local,
                        crate::domain::PlatformKind::Snowflake => {
                            crate::config::PlatformChoice::Snowflake
                        }
                    };
                    workers.platform = None;
                    workers.connecting = false;
                    workers.fetching = false;
                    workers.connect(opener.clone(), platform_tx.clone());
                }
                Effect::Platform(op) => workers.platform_op(op),
                Effect::Refresh => {
                    if workers.platform.is_some() {
                        workers.refresh();
                    } else {
                        workers.connect(opener.clone(), platform_tx.clone());
                    }
                    workers.load_candidates(ctx);
                }
            }
        }
        if app.quit {
            break;
        }
    }
    Ok(())
}

/// Calls a service for the Query pane and shapes what came back.
async fn run_query(
    p: &dyn Platform,
    r: &query::QueryRequest,
    cache: &std::path::Path,
) -> std::result::Result<query::QueryResult, String> {
    use query::QueryKind;
    let mut thumbnail = None;
    let mut png = None;
    // A search over the embedding cache when it holds the service's model version: only the
    // query is embedded.
    let matrix = if r.search && r.version.is_none() {
        cached_matrix(p, &r.service, cache).await
    } else {
        None
    };
    let notes: &[String] = if matrix.is_some() { &[] } else { &r.notes };
    let rows: Vec<Vec<serde_json::Value>> = match r.kind {
        QueryKind::Images => {
            let path = std::path::PathBuf::from(r.inputs[0].trim());
            // Reading, decoding and re-encoding an image is CPU work: off the async workers.
            let (bytes, small, big) = tokio::task::spawn_blocking(move || picture_of(&path))
                .await
                .map_err(|e| e.to_string())??;
            thumbnail = Some(small);
            png = big;
            let labels = crate::platform::call::labels(&r.inputs[1])?;
            vec![crate::platform::call::image_row(&bytes, &labels)]
        }
        _ => r
            .inputs
            .iter()
            .chain(notes)
            .map(|t| vec![serde_json::json!(t)])
            .collect(),
    };
    let raw_request = crate::platform::protocol::request(&rows);
    let prediction = match &r.version {
        Some((m, v)) => p.predict_version(m, v, &r.method, &rows).await,
        None => p.predict(&r.service, &r.method, &rows).await,
    }
    .map_err(|e| e.to_string())?;
    let raw_response = crate::platform::protocol::response(
        prediction
            .outputs
            .iter()
            .enumerate()
            .map(|(i, o)| (serde_json::json!(i), o.clone()))
            .collect(),
    );
    let (cache_hits, cache_searched) = match (&matrix, prediction.outputs.first()) {
        (Some(m), Some(q)) => {
            let q = crate::platform::call::embedding(&q["output"]).unwrap_or_default();
            let hits = m.search(&q, 8).map_err(|e| e.to_string())?;
            let searched = query::CacheSearched {
                notes: m.len(),
                model: m.model.clone(),
                version: m.version.clone(),
            };
            (hits, Some(searched))
        }
        _ => (Vec::new(), None),
    };
    Ok(query::QueryResult {
        service: r.service.clone(),
        kind: r.kind,
        inputs: r.inputs.clone(),
        outputs: prediction.outputs,
        latency_ms: prediction.latency_ms,
        ranking: Vec::new(),
        cache_hits,
        cache_searched,
        thumbnail,
        png,
        raw_request,
        raw_response,
    })
}

/// The embedding cache's vectors of the model version `service` serves, if the cache has any.
async fn cached_matrix(
    p: &dyn Platform,
    service: &str,
    cache: &std::path::Path,
) -> Option<crate::batch::cache::Matrix> {
    if !cache.exists() {
        return None;
    }
    let svc = p
        .services()
        .await
        .ok()?
        .into_iter()
        .find(|s| s.name == service)?;
    let (model, version) = (svc.model?, svc.model_version?);
    let path = cache.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let m = crate::batch::cache::Cache::open(&path)
            .ok()?
            .matrix(Some(&model))
            .ok()?;
        (m.version == version && !m.is_empty()).then_some(m)
    })
    .await
    .ok()
    .flatten()
}

/// Draws (or removes) the Query pane's picture with the terminal's graphics protocol, only when
/// what should be shown changed.
fn show_picture(app: &App, shown: &mut Option<(ratatui::layout::Rect, usize)>) {
    use crate::ui::picture::{self, Protocol};
    use std::io::Write;
    if app.picture == Protocol::HalfBlocks {
        return;
    }
    let want = crate::ui::query::picture_area(app).and_then(|area| {
        let png = app.query.result.as_ref()?.png.as_ref()?;
        Some((area, png.len(), png))
    });
    let key = want.as_ref().map(|(a, n, _)| (*a, *n));
    if key == *shown {
        return;
    }
    let mut out = std::io::stdout();
    let _ = write!(out, "{}", picture::clear(app.picture));
    if let Some((area, _, png)) = want {
        let _ = write!(out, "{}", picture::escapes(app.picture, png, area));
    }
    let _ = out.flush();
    *shown = key;
}

/// An image file's bytes, a 64-pixel RGB thumbnail for half-blocks, and a PNG for the graphics
/// protocols.
type Picture = (Vec<u8>, (u32, u32, Vec<u8>), Option<Vec<u8>>);

fn picture_of(path: &std::path::Path) -> std::result::Result<Picture, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let img = image::load_from_memory(&bytes)
        .map_err(|e| format!("{}: not a PNG or JPEG image: {e}", path.display()))?;
    let small = img.thumbnail(64, 64).to_rgb8();
    let mut out = std::io::Cursor::new(Vec::new());
    let png = img
        .thumbnail(384, 384)
        .write_to(&mut out, image::ImageFormat::Png)
        .is_ok()
        .then(|| out.into_inner());
    Ok((
        bytes,
        (small.width(), small.height(), small.into_raw()),
        png,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};

    fn key(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Effect> {
        app.handle_event(&Event::Key(KeyEvent::new(code, modifiers)))
    }

    fn typed(app: &mut App, text: &str) {
        for c in text.chars() {
            key(app, KeyCode::Char(c), KeyModifiers::NONE);
        }
    }

    /// `:version` target, then `:platform` (the workers drop the platform while they reconnect),
    /// then a send: the Query gets its own answer (not connected) and is free again, instead of
    /// saying "a call is already on its way" for good.
    #[tokio::test]
    async fn a_send_while_switching_platform_releases_the_query() {
        let config = crate::config::Config::defaults().unwrap_or_else(|e| panic!("{e}"));
        let mut app = App::new(&config, Utc::now(), Rect::new(0, 0, 120, 30));
        key(&mut app, KeyCode::Char(':'), KeyModifiers::NONE);
        typed(&mut app, "version all_minilm_l6_v2 v1");
        key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        app.apply(Msg::Functions {
            service: "ALL_MINILM_L6_V2 V1".into(),
            result: Ok(crate::platform::protocol::functions_for(
                "sentence-similarity",
            )),
        });
        key(&mut app, KeyCode::Char(':'), KeyModifiers::NONE);
        typed(&mut app, "platform snowflake");
        let switch = key(&mut app, KeyCode::Enter, KeyModifiers::NONE);
        assert!(
            switch
                .iter()
                .any(|e| matches!(e, Effect::SwitchPlatform(_))),
            "{switch:?}"
        );
        key(&mut app, KeyCode::Char('e'), KeyModifiers::NONE);
        typed(&mut app, "fever");
        let effects = key(&mut app, KeyCode::Char('s'), KeyModifiers::CONTROL);
        let Some(Effect::Query(request)) =
            effects.into_iter().find(|e| matches!(e, Effect::Query(_)))
        else {
            panic!("no query was sent");
        };
        assert!(app.query.busy);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let workers = Workers {
            tx,
            platform: None,
            connecting: true,
            fetching: false,
            hub: HubClient::new(HubSettings::from_env(&ProcessEnv)),
            latest_search: Default::default(),
            latest_details: Default::default(),
            cache: std::path::PathBuf::new(),
        };
        workers.query(request);
        let msg = rx.recv().await.unwrap_or_else(|| panic!("no answer"));
        assert!(matches!(msg, Msg::QueryDone { .. }), "{msg:?}");
        app.apply(msg);
        assert!(!app.query.busy, "the Query stayed busy");
        assert!(
            app.query
                .error
                .as_deref()
                .is_some_and(|e| e.contains("not connected")),
            "{:?}",
            app.query.error
        );
    }
}
