//! The stages of a local import, each a method of the runner: resolve (the Hub's metadata, the
//! commit pinned, the files a task needs, the text tower of a CLIP model), download, verify,
//! register, build, deploy and the first call.

use super::*;

impl JobRunner {
    fn downloader(
        &self,
        cancel: &CancellationToken,
    ) -> (
        Downloader,
        tokio::sync::mpsc::UnboundedReceiver<ProgressEvent>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (
            Downloader::new(HubClient::new(self.hub.clone()))
                .with_progress(tx)
                .with_cancel(cancel.clone()),
            rx,
        )
    }

    /// Small files first, to read the configs.
    pub(super) async fn fetch_small(
        &self,
        repo: &str,
        commit: &str,
        paths: Vec<String>,
        cancel: &CancellationToken,
    ) -> Result<PathBuf, StageEnd> {
        let (dl, _rx) = self.downloader(cancel);
        let done = dl
            .snapshot(&DownloadRequest {
                repo: repo.to_string(),
                revision: commit.to_string(),
                include: Some(paths),
            })
            .await?;
        Ok(done.snapshot)
    }

    pub(super) async fn resolve(
        &self,
        id: &str,
        spec: &ImportSpec,
        cancel: &CancellationToken,
    ) -> Result<Plan, StageEnd> {
        let hub = HubClient::new(self.hub.clone());
        let info = hub
            .model_info(&spec.handle, &spec.revision)
            .await
            .map_err(|e| StageEnd::Failed(e.to_string()))?;
        let commit = info.sha.clone().ok_or_else(|| {
            StageEnd::Failed(format!(
                "the Hub did not say which commit {}@{} is",
                spec.handle, spec.revision
            ))
        })?;
        self.log(
            id,
            &format!(
                "resolve: {}@{} is commit {}; licence {}; {}",
                spec.handle,
                spec.revision,
                &commit[..commit.len().min(12)],
                info.license().unwrap_or_else(|| "not stated".into()),
                if info.is_gated() {
                    "gated (your HF token is used)"
                } else {
                    "not gated"
                }
            ),
        )
        .await;
        let tree = hub
            .tree(&spec.handle, &commit)
            .await
            .map_err(|e| StageEnd::Failed(e.to_string()))?;
        let has = |p: &str| tree.iter().any(|e| e.is_file() && e.path == p);
        let configs: Vec<String> = [
            "config.json",
            "modules.json",
            "open_clip_config.json",
            "sentence_bert_config.json",
            "1_Pooling/config.json",
        ]
        .iter()
        .filter(|p| has(p))
        .map(|p| p.to_string())
        .collect();
        if configs.is_empty() {
            return Err(StageEnd::Failed(format!(
                "{} has no config.json or open_clip_config.json: it is not a model the local platform can serve",
                spec.handle
            )));
        }
        let snap = self
            .fetch_small(&spec.handle, &commit, configs, cancel)
            .await?;
        let detected = detect(&snap, &spec.handle, info.needs_custom_code())?;
        let task = match &spec.task {
            None => detected,
            Some(t) => {
                let wanted: Task = t.parse().map_err(StageEnd::Failed)?;
                compatible(&spec.handle, wanted, detected)?;
                wanted
            }
        };
        if !spec.precision.supports_task(task.as_str()) {
            return Err(StageEnd::Failed(format!(
                "{} is a {} model: {} applies to the BERT-family text encoders, so import it in fp32",
                spec.handle,
                task.as_str(),
                spec.precision
            )));
        }
        let files = select_files(&tree, task);
        let weights_bytes: u64 = files
            .iter()
            .filter(|f| is_weights(&f.path))
            .map(|f| f.size)
            .sum();
        if weights_bytes == 0 {
            return Err(StageEnd::Failed(format!(
                "{} has no weights the local platform reads (model.safetensors or pytorch_model.bin)",
                spec.handle
            )));
        }
        // open_clip keeps its text tower in another repo; a CLIPModel carries both towers.
        let text_tower = if task == Task::ZeroShotImageClassification
            && snap.join("open_clip_config.json").exists()
        {
            Some(self.resolve_text_tower(id, &hub, &snap).await?)
        } else {
            None
        };
        // Fit: the pool's memory minus what its other services need.
        let pool_name = spec.pool.clone();
        let pool = self
            .db
            .run(move |r| r.pool(&pool_name))
            .await?
            .ok_or_else(|| {
                StageEnd::Failed(format!("compute pool {} does not exist", spec.pool))
            })?;
        let instances = spec.min_instances.max(1);
        let per = FitVerdict::estimate(weights_bytes, &pool.name, pool.memory_gib).needs_gib;
        // abs: an empty pool sums to -0.0, which would print as "-0.0 GiB".
        let in_use = self
            .services
            .pool_memory_in_use(&pool.name, None)
            .max(0.0)
            .abs();
        let free = (pool.memory_gib - in_use).max(0.0);
        let needs = per * f64::from(instances);
        if needs > free {
            return Err(StageEnd::Failed(format!(
                "too big for compute pool {}: {instances} instance(s) need ~{needs:.1} GiB \
                 ({} of weights), the pool has {:.1} GiB of which {in_use:.1} GiB is used by other services; \
                 free memory there, or use a pool with at least {needs:.1} GiB",
                pool.name,
                crate::domain::units::bytes(weights_bytes),
                pool.memory_gib
            )));
        }
        self.log(
            id,
            &format!(
                "resolve: task {}; {} files, {} of weights; needs ~{:.2} GiB per instance, {:.1} GiB free on {}",
                task.as_str(),
                files.len(),
                crate::domain::units::bytes(weights_bytes),
                per,
                free,
                pool.name
            ),
        )
        .await;
        Ok(Plan {
            commit,
            task: task.as_str().to_string(),
            files,
            weights_bytes,
            memory_gib: per,
            text_tower,
            snapshot: None,
        })
    }

    pub(super) async fn resolve_text_tower(
        &self,
        id: &str,
        hub: &HubClient,
        snap: &Path,
    ) -> Result<TextTower, StageEnd> {
        let repo = crate::inference::clip::text_tower_of(snap).ok_or_else(|| {
            StageEnd::Failed(
                "open_clip_config.json names no text tower (text_cfg.hf_model_name)".into(),
            )
        })?;
        validate_repo_id(&repo).map_err(|e| {
            StageEnd::Failed(format!("the text tower `{repo}` is not a Hub repo id: {e}"))
        })?;
        let info = hub
            .model_info(&repo, "main")
            .await
            .map_err(|e| StageEnd::Failed(format!("text tower {repo}: {e}")))?;
        let commit = info.sha.ok_or_else(|| {
            StageEnd::Failed(format!("the Hub did not say which commit {repo} is"))
        })?;
        let tree = hub
            .tree(&repo, &commit)
            .await
            .map_err(|e| StageEnd::Failed(format!("text tower {repo}: {e}")))?;
        let files: Vec<PlannedFile> = tree
            .iter()
            .filter(|e| e.is_file() && !e.path.contains('/'))
            .filter(|e| {
                matches!(
                    e.path.as_str(),
                    "config.json"
                        | "vocab.txt"
                        | "tokenizer.json"
                        | "tokenizer_config.json"
                        | "special_tokens_map.json"
                )
            })
            .map(planned)
            .collect();
        if !files.iter().any(|f| f.path == "config.json") {
            return Err(StageEnd::Failed(format!(
                "the text tower {repo} has no config.json"
            )));
        }
        self.log(
            id,
            &format!(
                "resolve: the text tower's config and tokenizer come from {repo}@{}",
                &commit[..commit.len().min(12)]
            ),
        )
        .await;
        Ok(TextTower {
            repo,
            commit,
            files,
            snapshot: None,
        })
    }

    pub(super) async fn download(
        &self,
        id: &str,
        spec: &ImportSpec,
        plan: &mut Plan,
        cancel: &CancellationToken,
    ) -> Result<(), StageEnd> {
        let total: u64 = plan.files.iter().map(|f| f.size).sum::<u64>()
            + plan
                .text_tower
                .as_ref()
                .map_or(0, |t| t.files.iter().map(|f| f.size).sum());
        if let Ok(mut live) = self.live.lock()
            && let Some(l) = live.get_mut(id)
        {
            l.files = plan
                .files
                .iter()
                .map(|f| FileProgress {
                    path: f.path.clone(),
                    size: f.size,
                    done: 0,
                    reused: false,
                })
                .collect();
        }
        let (dl, mut rx) = self.downloader(cancel);
        let request = DownloadRequest {
            repo: spec.handle.clone(),
            revision: plan.commit.clone(),
            include: Some(plan.files.iter().map(|f| f.path.clone()).collect()),
        };
        let work = dl.snapshot(&request);
        tokio::pin!(work);
        let mut last_write = Instant::now();
        let mut done_bytes: HashMap<String, u64> = HashMap::new();
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                Some(ev) = rx.recv() => {
                    let (path, done, reused) = match &ev {
                        ProgressEvent::FileStarted { path, resumed_from, .. } => {
                            if *resumed_from > 0 {
                                self.log(id, &format!("download: {path}: resuming at {}", crate::domain::units::bytes(*resumed_from))).await;
                            }
                            (path.clone(), *resumed_from, false)
                        }
                        ProgressEvent::Bytes { path, done, .. } => (path.clone(), *done, false),
                        ProgressEvent::FileDone { path, size, reused } => {
                            self.log(id, &format!("download: {path} {} ({})", crate::domain::units::bytes(*size), if *reused { "already in the cache" } else { "verified" })).await;
                            (path.clone(), *size, *reused)
                        }
                        ProgressEvent::Retrying { path, attempt, reason, .. } => {
                            self.log(id, &format!("download: {path}: retry {attempt}: {reason}")).await;
                            continue;
                        }
                        ProgressEvent::Plan { .. } => continue,
                    };
                    done_bytes.insert(path.clone(), done);
                    if let Ok(mut live) = self.live.lock()
                        && let Some(l) = live.get_mut(id)
                        && let Some(f) = l.files.iter_mut().find(|f| f.path == path)
                    {
                        f.done = done;
                        f.reused |= reused;
                    }
                    if last_write.elapsed() > Duration::from_millis(500) {
                        last_write = Instant::now();
                        let sum: u64 = done_bytes.values().sum();
                        let i = id.to_string();
                        let _ = self.db.run(move |r| r.set_stage_bytes(&i, Stage::Download, sum, total)).await;
                        self.changed.notify_waiters();
                    }
                }
            }
        };
        let done = result?;
        plan.snapshot = Some(done.snapshot.clone());
        // As huggingface_hub does: the branch or tag asked for points at the commit it resolved
        // to, so the cache shows the revision as `main` (not detached) to every tool.
        if spec.revision != done.commit
            && let Err(e) = write_ref(&done.snapshot, &spec.revision, &done.commit)
        {
            self.log(
                id,
                &format!("download: the ref {} was not written: {e}", spec.revision),
            )
            .await;
        }
        self.log(
            id,
            &format!(
                "download: {} files, {} fetched, {} already in the cache",
                done.files.len(),
                crate::domain::units::bytes(done.fetched_bytes()),
                crate::domain::units::bytes(
                    done.total_bytes().saturating_sub(done.fetched_bytes())
                )
            ),
        )
        .await;
        if let Some(tower) = plan.text_tower.as_mut() {
            let (dl, _rx) = self.downloader(cancel);
            let t = dl
                .snapshot(&DownloadRequest {
                    repo: tower.repo.clone(),
                    revision: tower.commit.clone(),
                    include: Some(tower.files.iter().map(|f| f.path.clone()).collect()),
                })
                .await?;
            // The tower was resolved from `main`: say so in the cache, as for the model.
            if let Err(e) = write_ref(&t.snapshot, "main", &tower.commit) {
                self.log(
                    id,
                    &format!("download: the text tower's ref was not written: {e}"),
                )
                .await;
            }
            tower.snapshot = Some(t.snapshot);
            self.log(id, &format!("download: text tower {} ready", tower.repo))
                .await;
        }
        let i = id.to_string();
        let _ = self
            .db
            .run(move |r| r.set_stage_bytes(&i, Stage::Download, total, total))
            .await;
        Ok(())
    }

    /// Every file of the snapshot against the tree: size, then sha256 (LFS) or the git blob hash.
    pub(super) async fn verify(&self, id: &str, plan: &Plan) -> Result<(), StageEnd> {
        let snapshot = plan
            .snapshot
            .clone()
            .ok_or_else(|| StageEnd::Failed("no snapshot: retry the job".into()))?;
        let mut files: Vec<(PathBuf, PlannedFile)> = plan
            .files
            .iter()
            .map(|f| (snapshot.join(&f.path), f.clone()))
            .collect();
        if let Some(t) = &plan.text_tower
            && let Some(s) = &t.snapshot
        {
            files.extend(t.files.iter().map(|f| (s.join(&f.path), f.clone())));
        }
        let checked = tokio::task::spawn_blocking(move || -> Result<(usize, u64), String> {
            let mut bytes = 0;
            for (path, f) in &files {
                let meta =
                    std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
                if meta.len() != f.size {
                    return Err(format!(
                        "{}: {} bytes on disk, the Hub lists {}",
                        f.path,
                        meta.len(),
                        f.size
                    ));
                }
                let got = if f.lfs {
                    sha256_file(path)
                } else {
                    git_blob_sha1(path)
                }
                .map_err(|e| format!("{}: {e}", path.display()))?;
                if got != f.hash {
                    return Err(format!(
                        "{}: {} is {got}, the Hub lists {}",
                        f.path,
                        if f.lfs { "sha256" } else { "git blob hash" },
                        f.hash
                    ));
                }
                bytes += f.size;
            }
            Ok((files.len(), bytes))
        })
        .await
        .map_err(|e| StageEnd::Failed(e.to_string()))?
        .map_err(StageEnd::Failed)?;
        self.log(
            id,
            &format!(
                "verify: {} files, {} checked against the Hub's hashes",
                checked.0,
                crate::domain::units::bytes(checked.1)
            ),
        )
        .await;
        Ok(())
    }

    pub(super) async fn register(
        &self,
        id: &str,
        spec: &ImportSpec,
        plan: &Plan,
    ) -> Result<(), StageEnd> {
        let snapshot = plan
            .snapshot
            .clone()
            .ok_or_else(|| StageEnd::Failed("no snapshot: retry the job".into()))?;
        let version = ModelVersion {
            model: spec.model.clone(),
            name: spec.version.clone(),
            source: spec.handle.clone(),
            revision: plan.commit.clone(),
            task: plan.task.clone(),
            files: plan
                .files
                .iter()
                .map(|f| VersionFile {
                    path: f.path.clone(),
                    size: f.size,
                    hash: f.hash.clone(),
                })
                .collect(),
            total_bytes: plan.files.iter().map(|f| f.size).sum(),
            functions: protocol::functions_for(&plan.task),
            inference_services: Vec::new(),
            runnable_in: Vec::new(),
            snowflake_ml_task: None,
            created_on: Utc::now(),
        };
        let names: Vec<String> = version.functions.iter().map(|f| f.name.clone()).collect();
        let text_dir = plan.text_tower.as_ref().and_then(|t| t.snapshot.clone());
        let (m, v) = (spec.model.clone(), spec.version.clone());
        let exists = self.db.run(move |r| r.version_exists(&m, &v)).await?;
        if !exists {
            self.db
                .run(move |r| r.register_version(&version, &snapshot, text_dir.as_deref()))
                .await?;
        }
        self.log(
            id,
            &format!(
                "register: {} version {} with functions {}",
                spec.model,
                spec.version,
                names.join(", ")
            ),
        )
        .await;
        Ok(())
    }

    /// Creates the service and waits for the first instance to load the weights and warm up.
    pub(super) async fn build(
        &self,
        id: &str,
        spec: &ImportSpec,
        plan: &Plan,
        cancel: &CancellationToken,
    ) -> Result<(), StageEnd> {
        if self.services.get(&spec.service).is_err() {
            let (m, v) = (spec.model.clone(), spec.version.clone());
            let location = self.db.run(move |r| r.version_location(&m, &v)).await?;
            self.services
                .create(ServiceRow {
                    name: spec.service.clone(),
                    status: ServiceStatus::Pending.as_str().into(),
                    pool: spec.pool.clone(),
                    model: Some(spec.model.clone()),
                    version: Some(spec.version.clone()),
                    min_instances: spec.min_instances,
                    max_instances: spec.max_instances,
                    port: None,
                    spec: ServiceSpec {
                        task: location.task,
                        snapshot: location.snapshot,
                        text_dir: location.text_dir,
                        memory_gib: plan.memory_gib,
                        job: Some(id.to_string()),
                        precision: spec.precision,
                        auto_suspend_secs: spec.auto_suspend_secs,
                    },
                    message: None,
                })
                .await?;
            self.log(
                id,
                &format!(
                    "build: service {} created; instance processes load the weights",
                    spec.service
                ),
            )
            .await;
        }
        self.wait_service(spec, cancel, |c| {
            c.iter()
                .any(|c| c.status == crate::domain::InstanceStatus::Ready)
        })
        .await
    }

    pub(super) async fn deploy(
        &self,
        id: &str,
        spec: &ImportSpec,
        cancel: &CancellationToken,
    ) -> Result<(), StageEnd> {
        self.wait_service(spec, cancel, |_| false).await?;
        let rt = self.services.get(&spec.service)?;
        if let Some(c) = rt.containers().iter().find_map(|c| c.calibration.clone()) {
            self.log(id, &format!("deploy: calibration check, {}", c.summary()))
                .await;
        }
        self.log(
            id,
            &format!(
                "deploy: service {} RUNNING at http://{}",
                spec.service,
                rt.endpoints()
                    .first()
                    .map(|e| e.ingress_url.clone())
                    .unwrap_or_default()
            ),
        )
        .await;
        Ok(())
    }

    /// Waits until the service is RUNNING (or `enough` says its containers suffice). An instance
    /// that fails before it was ever ready fails the stage: the model cannot be served.
    pub(super) async fn wait_service(
        &self,
        spec: &ImportSpec,
        cancel: &CancellationToken,
        enough: impl Fn(&[crate::domain::Container]) -> bool,
    ) -> Result<(), StageEnd> {
        let rt = self.services.get(&spec.service)?;
        loop {
            let changed = rt.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (status, message) = rt.status();
            let containers = rt.containers();
            if status == ServiceStatus::Running || enough(&containers) {
                return Ok(());
            }
            let never_ready = containers.iter().all(|c| c.start_time.is_none());
            if status == ServiceStatus::Failed && never_ready {
                let msg = message.unwrap_or_else(|| "an instance failed".into());
                self.services.halt(&spec.service, &msg);
                return Err(StageEnd::Failed(format!(
                    "service {} could not start: {msg}",
                    spec.service
                )));
            }
            if matches!(status, ServiceStatus::Suspended) {
                return Err(StageEnd::Failed(format!(
                    "service {} was suspended before it was ready",
                    spec.service
                )));
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(StageEnd::Cancelled),
                _ = changed => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// The first call through the service's endpoint, as a user would make it.
    pub(super) async fn ready(
        &self,
        id: &str,
        spec: &ImportSpec,
        plan: &Plan,
        cancel: &CancellationToken,
    ) -> Result<(), StageEnd> {
        let rt = self.services.get(&spec.service)?;
        let function = protocol::functions_for(&plan.task)
            .into_iter()
            .next()
            .ok_or_else(|| StageEnd::Failed(format!("task {} has no function", plan.task)))?;
        let inputs = if plan.task == Task::ZeroShotImageClassification.as_str() {
            vec![
                serde_json::json!(crate::platform::call::tiny_png()),
                serde_json::json!(["an x-ray", "a photograph"]),
            ]
        } else {
            vec![serde_json::json!("hugflake readiness check")]
        };
        let body = protocol::request(&[inputs]);
        let url = format!("http://127.0.0.1:{}{}", rt.port, function.rest_path());
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if cancel.is_cancelled() {
                return Err(StageEnd::Cancelled);
            }
            let started = Instant::now();
            let resp = http
                .post(&url)
                .header(
                    "Authorization",
                    crate::http::snowflake_token(rt.token().expose()),
                )
                .json(&body)
                .send()
                .await;
            match resp {
                Ok(r) if r.status().is_success() => {
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    let answer: serde_json::Value = r
                        .json()
                        .await
                        .map_err(|e| StageEnd::Failed(format!("first call: bad answer: {e}")))?;
                    protocol::parse_response(&answer, 1).map_err(StageEnd::Failed)?;
                    self.log(
                        id,
                        &format!(
                            "ready: POST {} answered in {ms:.0} ms",
                            function.rest_path()
                        ),
                    )
                    .await;
                    return Ok(());
                }
                Ok(r)
                    if crate::http::transient_status(r.status().as_u16())
                        && Instant::now() < deadline => {}
                Ok(r) => {
                    let code = r.status();
                    let text = r.text().await.unwrap_or_default();
                    return Err(StageEnd::Failed(format!(
                        "first call answered {code}: {}",
                        text.chars().take(300).collect::<String>()
                    )));
                }
                Err(e) if Instant::now() < deadline && e.is_connect() => {}
                Err(e) => return Err(StageEnd::Failed(format!("first call failed: {e}"))),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// Writes `refs/<name>` = `commit` beside a snapshot (`…/snapshots/<commit>`). Names are
/// branch or tag names (`main`, `v1.0`, `refs/pr/1` style paths), never `..` or absolute.
fn write_ref(snapshot: &Path, name: &str, commit: &str) -> std::io::Result<()> {
    let valid = !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if !valid {
        return Err(std::io::Error::other(format!("`{name}` is not a ref name")));
    }
    let repo = snapshot
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| std::io::Error::other("not a snapshot path"))?;
    let path = repo.join("refs").join(name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, commit)
}

fn planned(e: &TreeEntry) -> PlannedFile {
    PlannedFile {
        path: e.path.clone(),
        size: e.content_size(),
        hash: e.blob_id().to_string(),
        lfs: e.lfs.is_some(),
    }
}

fn is_weights(path: &str) -> bool {
    matches!(
        path,
        "model.safetensors"
            | "pytorch_model.bin"
            | "open_clip_model.safetensors"
            | "open_clip_pytorch_model.bin"
    )
}

/// The files a task needs: configs, tokenizer and one weights file (safetensors first); never the
/// ONNX, OpenVINO, TensorFlow, Flax or Rust exports.
fn select_files(tree: &[TreeEntry], task: Task) -> Vec<PlannedFile> {
    let has = |p: &str| tree.iter().any(|e| e.is_file() && e.path == p);
    // open_clip repos name their weights their own way; a transformers CLIPModel does not.
    let weights = if task == Task::ZeroShotImageClassification && has("open_clip_config.json") {
        if has("open_clip_model.safetensors") {
            "open_clip_model.safetensors"
        } else {
            "open_clip_pytorch_model.bin"
        }
    } else if has("model.safetensors") {
        "model.safetensors"
    } else {
        "pytorch_model.bin"
    };
    tree.iter()
        .filter(|e| e.is_file())
        .filter(|e| {
            let p = e.path.as_str();
            if is_weights(p) {
                return p == weights;
            }
            let small = p.ends_with(".json") || p.ends_with(".txt") || p.ends_with(".model");
            let top_or_module = !p.contains('/')
                || p.split('/')
                    .next()
                    .is_some_and(|d| d.chars().next().is_some_and(|c| c.is_ascii_digit()));
            small && top_or_module
        })
        .map(planned)
        .collect()
}

/// The task a repo's configs say it serves, and whether the local platform can run it.
fn detect(snap: &Path, handle: &str, custom_code: bool) -> Result<Task, StageEnd> {
    if snap.join("open_clip_config.json").exists() {
        let cfg = crate::inference::read_json(&snap.join("open_clip_config.json"))
            .map_err(|e| StageEnd::Failed(e.to_string()))?;
        let timm = cfg["model_cfg"]["vision_cfg"]["timm_model_name"]
            .as_str()
            .unwrap_or("");
        if !timm.starts_with("vit_") {
            return Err(StageEnd::Failed(format!(
                "{handle}: unsupported architecture: the image tower `{timm}` is not a timm ViT; \
                 the local platform runs open_clip models with a ViT image tower and a BERT text tower"
            )));
        }
        return Ok(Task::ZeroShotImageClassification);
    }
    let cfg = crate::inference::read_json(&snap.join("config.json"))
        .map_err(|e| StageEnd::Failed(e.to_string()))?;
    // `auto_map` in config.json points at Python classes in the repo: remote code.
    let custom_code = custom_code || cfg.get("auto_map").is_some();
    let model_type = cfg["model_type"].as_str().unwrap_or("unknown");
    if !matches!(model_type, "bert" | "distilbert" | "clip") {
        let arch = cfg["architectures"][0].as_str().unwrap_or(model_type);
        return Err(StageEnd::Failed(format!(
            "{handle}: unsupported architecture `{model_type}` ({arch}): the local platform serves \
             BERT and DistilBERT encoders (sentence embeddings, token classification, features), \
             transformers CLIP models and open_clip ViT + BERT zero-shot models{}",
            if custom_code {
                "; this repo also asks to run its own code, which hugflake never does"
            } else {
                ""
            }
        )));
    }
    if custom_code {
        return Err(StageEnd::Failed(format!(
            "{handle} asks to run code from the repo (trust_remote_code); hugflake never runs repo code"
        )));
    }
    Task::detect(snap).map_err(|e| StageEnd::Failed(e.to_string()))
}

/// Whether a task the user asked for can run on what the repo holds.
fn compatible(handle: &str, wanted: Task, detected: Task) -> Result<(), StageEnd> {
    match (wanted, detected) {
        (w, d) if w == d => Ok(()),
        (Task::TokenClassification, Task::FeatureExtraction | Task::SentenceSimilarity) => {
            Err(StageEnd::Failed(format!(
                "{handle} has no token-classification head (no id2label with a *ForTokenClassification \
                 architecture): its labels would be random. Import it as feature-extraction, or pick a \
                 fine-tuned NER checkpoint"
            )))
        }
        (Task::FeatureExtraction, Task::TokenClassification | Task::SentenceSimilarity) => Ok(()),
        (w, d) => Err(StageEnd::Failed(format!(
            "{handle} is a {} model; it cannot be served as {}",
            d.as_str(),
            w.as_str()
        ))),
    }
}
