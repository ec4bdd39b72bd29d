//! Background work the event loop starts: each worker sends one message back when done.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::app::query;
use crate::app::search as state_search;
use crate::app::state::{Link, Msg};
use crate::hub::api::HubClient;
use crate::platform::{self, Platform};
use crate::session::Context;

/// Background work the loop starts; each sends one message when done.
pub(super) struct Workers {
    pub(super) tx: mpsc::UnboundedSender<Msg>,
    pub(super) platform: Option<Arc<dyn Platform>>,
    pub(super) connecting: bool,
    pub(super) fetching: bool,
    pub(super) hub: HubClient,
    /// The newest search generation and details handle: older debounced requests are not sent.
    pub(super) latest_search: Arc<std::sync::atomic::AtomicU64>,
    pub(super) latest_details: Arc<std::sync::Mutex<String>>,
    /// The embedding cache `hugflake batch embed` fills (local platform): searched by the Query
    /// pane when it holds the service's model version.
    pub(super) cache: std::path::PathBuf,
}

/// How long typing or scrolling must pause before the Hub is asked.
const SEARCH_DEBOUNCE: Duration = Duration::from_millis(300);
const DETAILS_DEBOUNCE: Duration = Duration::from_millis(250);
/// What a request answers while no platform is connected.
const NOT_CONNECTED: &str = "not connected to a platform yet: wait for the status line to say so";

impl Workers {
    pub(super) fn connect(
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
    pub(super) fn refresh(&mut self) {
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

    pub(super) fn import(&self, spec: crate::domain::ImportSpec) {
        self.call(
            move |p| async move {
                Msg::ImportStarted(p.import(&spec).await.map_err(|e| e.to_string()))
            },
            |e| Msg::ImportStarted(Err(e)),
        );
    }

    pub(super) fn job_detail(&self, id: String) {
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

    pub(super) fn platform_op(&self, op: crate::app::state::PlatformOp) {
        use crate::app::state::PlatformOp;
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
                    PlatformOp::AlterService {
                        service, change, ..
                    } => p.alter_service(service, change).await.map(|_| ()),
                    PlatformOp::DeleteCached {
                        root, repo, commit, ..
                    } => delete_cached(p.as_ref(), root, repo, commit).await,
                };
                // A cache deletion's refusal names the repo and the reason itself, and the
                // status line is narrow: the reason goes first.
                let brief = matches!(op, PlatformOp::DeleteCached { .. });
                Msg::PlatformDone(result.map(|()| format!("done: {what}")).map_err(|e| {
                    if brief {
                        format!("not deleted: {e}")
                    } else {
                        format!("could not {what}: {e}")
                    }
                }))
            },
            |e| Msg::PlatformDone(Err(e)),
        );
    }

    /// A service's functions: from its model version, or (Snowflake) the version that lists it.
    pub(super) fn functions(
        &self,
        service: String,
        model: Option<String>,
        version: Option<String>,
    ) {
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
    pub(super) fn query(&self, request: query::QueryRequest) {
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

    /// `:compare`: the typed inputs through both services (an image read off the async workers).
    pub(super) fn compare(&self, r: query::CompareRequest) {
        self.call(
            move |p| async move {
                let result = async {
                    use crate::platform::call::ServiceKind;
                    let (kind, _) = crate::platform::compare::kind(p.as_ref(), &r.a).await?;
                    let rows = if kind == ServiceKind::Images {
                        let [path, labels, ..] = r.lines.as_slice() else {
                            return Err("an image's path on the first line, its labels (a, b, c) on the second".to_string());
                        };
                        let path = std::path::PathBuf::from(path);
                        let picture = tokio::task::spawn_blocking(move || picture_of(&path))
                            .await
                            .map_err(|e| e.to_string())??;
                        let labels = crate::platform::call::labels(labels)?;
                        vec![crate::platform::call::image_row(&picture.0, &labels)]
                    } else if r.search && kind == ServiceKind::Embeddings {
                        crate::platform::call::text_rows([r.lines.join(" ")])
                    } else {
                        crate::platform::call::text_rows(r.lines.clone())
                    };
                    let notes: Vec<String> = if r.search && kind == ServiceKind::Embeddings {
                        query::demo_notes().into_iter().map(String::from).collect()
                    } else {
                        Vec::new()
                    };
                    crate::platform::compare::compare(p.as_ref(), &r.a, &r.b, &rows, &notes, 5)
                        .await
                        .map(Box::new)
                }
                .await;
                Msg::Compared(result)
            },
            |e| Msg::Compared(Err(e)),
        );
    }

    /// Containers, endpoints, metrics and the log tail of a service, fetched together; what fails
    /// is said, the rest still shows.
    pub(super) fn service_detail(&self, name: String) {
        let offline_name = name.clone();
        self.call(
            move |p| async move {
                Msg::ServiceDetail(Box::new(
                    crate::app::state::ServiceDetail::fetch(p.as_ref(), name).await,
                ))
            },
            |e| {
                Msg::ServiceDetail(Box::new(crate::app::state::ServiceDetail {
                    name: offline_name,
                    containers: Vec::new(),
                    endpoints: Vec::new(),
                    metrics: Vec::new(),
                    logs: Vec::new(),
                    events: Vec::new(),
                    requests: None,
                    problems: vec![e],
                }))
            },
        );
    }

    /// The log of the service's instance runs before their last restart.
    pub(super) fn previous_logs(&self, service: String) {
        let offline = service.clone();
        self.call(
            move |p| async move {
                let result = p
                    .previous_logs(&service, None, 5000)
                    .await
                    .map_err(|e| e.to_string());
                Msg::PreviousLogs { service, result }
            },
            |e| Msg::PreviousLogs {
                service: offline,
                result: Err(e),
            },
        );
    }

    pub(super) fn search(&self, req: state_search::SearchRequest) {
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

    pub(super) fn details(&self, handle: String, pool: Option<(String, f64)>) {
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
    pub(super) fn download(&self, handle: String, ctx: &Context) {
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
                            state: crate::app::state::DownloadState::from_totals(&totals, None),
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
                state: crate::app::state::DownloadState::from_totals(&totals, Some(finished)),
            });
            scan_candidates(tx, cache);
        });
    }

    pub(super) fn load_candidates(&self, ctx: &Context) {
        scan_candidates(self.tx.clone(), ctx.paths.hf_cache.path.clone());
    }
}

/// Reads catalog + cache off the async workers and sends the rows.
fn scan_candidates(tx: mpsc::UnboundedSender<Msg>, cache: std::path::PathBuf) {
    tokio::task::spawn_blocking(move || {
        let result = crate::hub::offline_candidates(&cache).map_err(|e| e.to_string());
        let _ = tx.send(Msg::Candidates(result));
        // What prune would free, per repo (the pane leaves out registered models' repos: prune
        // never takes a revision a registered version uses).
        use crate::hub::housekeeping::{Target, plan};
        if let Ok(r) = plan(&cache, &Target::Prune { older_than: None }, &[]) {
            let _ = tx.send(Msg::CachePrunable(r.per_repo));
        }
    });
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

/// An image file's bytes, a 64-pixel RGB thumbnail for half-blocks, and a PNG for the graphics
/// protocols.
type Picture = (Vec<u8>, (u32, u32, Vec<u8>), Option<Vec<u8>>);

fn picture_of(path: &std::path::Path) -> std::result::Result<Picture, String> {
    let bytes =
        crate::paths::read_user_file(path, crate::platform::local::instance::MAX_BODY as u64 / 2)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
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

/// Removes one cached revision after asking the registry which revisions its versions use.
async fn delete_cached(
    p: &dyn crate::platform::Platform,
    root: &std::path::Path,
    repo: &str,
    commit: &str,
) -> Result<(), crate::platform::PlatformError> {
    use crate::hub::housekeeping::{self, Target};
    if p.kind() == crate::domain::PlatformKind::Snowflake {
        return Err(crate::platform::PlatformError::Conflict(
            "on Snowflake the local registry cannot be asked from here: use `hugflake cache rm`"
                .into(),
        ));
    }
    let in_use = crate::platform::cache_users(p, root).await?;
    // Said short, for the status line: which version holds it.
    if let Some(u) = in_use.iter().find(|u| u.holds(repo, commit)) {
        return Err(crate::platform::PlatformError::Conflict(format!(
            "registered version {} uses it; drop that version first",
            u.version
        )));
    }
    let (root, target) = (
        root.to_path_buf(),
        Target::Repo {
            repo: repo.to_string(),
            revision: Some(commit.to_string()),
        },
    );
    tokio::task::spawn_blocking(move || {
        let plan = housekeeping::plan(&root, &target, &in_use)?;
        housekeeping::apply(&root, &plan).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| crate::platform::PlatformError::Other(e.to_string()))?
    .map_err(crate::platform::PlatformError::Conflict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::state::{App, Effect};
    use crate::hub::settings::HubSettings;
    use crate::paths::ProcessEnv;
    use chrono::Utc;
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    use ratatui::layout::Rect;

    pub(super) fn key(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Effect> {
        app.handle_event(&Event::Key(KeyEvent::new(code, modifiers)))
    }

    pub(super) fn typed(app: &mut App, text: &str) {
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
