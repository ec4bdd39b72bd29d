//! A service instance: `hugflake instance`, a child process of the daemon that loads one model and
//! answers the Snowflake model-service REST protocol on 127.0.0.1 (like the `model-inference`
//! container of an SPCS service). A crash or an out-of-memory kill takes this process, never the
//! daemon, which restarts it.
//!
//! Contract with the daemon:
//! - the instance token comes in `HUGFLAKE_INSTANCE_TOKEN` (never on the command line);
//! - once the model is loaded and warmed up, one JSON line on stdout:
//!   `{"event":"ready","port":N,"precision":"int8","calibration":{...}|null}`;
//! - log lines on stderr (no request or response bodies, ever);
//! - standard input stays open while the daemon lives: end of input means the daemon is gone, and
//!   the instance exits rather than linger as an orphan.

use super::error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::presented_token;
use crate::domain::{Calibration, Function, Precision};
use crate::inference::calibrate;
use crate::inference::clip::{LabelScore, RESEARCH_USE, ZeroShot};
use crate::inference::image::Rgb;
use crate::inference::runtime::{BatchModel, Limits, Runtime};
use crate::inference::sentence::SentenceEncoder;
use crate::inference::token_classification::{
    self, FeatureExtractor, Features, TokenClassifier, TokenPrediction,
};
use crate::inference::{InferenceError, Task};
use crate::platform::protocol;
use crate::secret::Secret;

/// The environment variable that carries the instance token.
pub const TOKEN_ENV: &str = "HUGFLAKE_INSTANCE_TOKEN";

/// Largest request body an instance takes.
pub const MAX_BODY: usize = 32 * 1024 * 1024;
/// The most rows one call may carry (a Snowflake service function sends far fewer per batch).
pub const MAX_ROWS: usize = 10_000;

fn too_large() -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is over {} MiB, the most one call takes: send fewer rows per call \
             (`hugflake batch` splits them)",
            MAX_BODY / (1024 * 1024)
        ),
    )
}

/// Middleware: a call whose declared length is over `MAX_BODY` is refused before a byte of its
/// body is read (the body extractor would otherwise wait for it).
pub async fn refuse_oversized(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if super::declared_over(req.headers(), MAX_BODY) {
        return too_large();
    }
    next.run(req).await
}

/// The answer to a body that could not be read: a 413 that says what the caps are (axum's own
/// rejection is a bare line of text), or the rejection's own status and text.
pub fn rejected(e: axum::extract::rejection::BytesRejection) -> Response {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        error(e.status(), e.body_text())
    }
}

#[derive(Debug, Clone)]
pub struct InstanceOptions {
    pub model_dir: PathBuf,
    pub task: Task,
    pub text_dir: Option<PathBuf>,
    pub hf_cache: Option<PathBuf>,
    /// The arithmetic of the encoder's linear layers (text tasks only).
    pub precision: Precision,
    pub limits: Limits,
}

impl BatchModel for TokenClassifier {
    type Input = String;
    type Output = Vec<TokenPrediction>;
    fn run(&mut self, inputs: Vec<String>) -> Result<Vec<Self::Output>, String> {
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let tagged = self.tag(&refs).map_err(|e| e.to_string())?;
        Ok(tagged.iter().map(token_classification::entities).collect())
    }
}

impl BatchModel for FeatureExtractor {
    type Input = String;
    type Output = Features;
    fn run(&mut self, inputs: Vec<String>) -> Result<Vec<Features>, String> {
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.extract(&refs).map_err(|e| e.to_string())
    }
}

/// An image and its candidate labels.
pub struct ImageQuery {
    pub image: Rgb,
    pub labels: Vec<String>,
    /// `hypothesis_template` (Snowflake's parameter of the same name); the model's default when
    /// none.
    pub template: Option<String>,
}

pub struct ZeroShotModel(pub ZeroShot);

impl BatchModel for ZeroShotModel {
    type Input = ImageQuery;
    type Output = Vec<LabelScore>;
    fn run(&mut self, inputs: Vec<ImageQuery>) -> Result<Vec<Vec<LabelScore>>, String> {
        inputs
            .iter()
            .map(|q| {
                let labels: Vec<&str> = q.labels.iter().map(String::as_str).collect();
                self.0
                    .classify(
                        &q.image,
                        &labels,
                        q.template.as_deref().unwrap_or(self.0.default_template()),
                    )
                    .map_err(|e| e.to_string())
            })
            .collect()
    }
}

/// The loaded model behind an instance.
pub enum Served {
    Sentence(Runtime<SentenceEncoder>),
    Tokens(Runtime<TokenClassifier>),
    Features(Runtime<FeatureExtractor>),
    Images(Runtime<ZeroShotModel>),
}

impl Served {
    /// Loads a model directory for a task at the options' precision (on the calling thread: this
    /// is slow). A reduced precision is measured against fp32 first and refused below its gate;
    /// the figures come back with the model.
    pub fn load(opts: &InstanceOptions) -> Result<(Served, Option<Calibration>), InferenceError> {
        let dir = &opts.model_dir;
        let p = opts.precision;
        if !p.supports_task(opts.task.as_str()) {
            return Err(InferenceError::Unsupported(format!(
                "{p} applies to the BERT-family text encoders; {} models are served in fp32",
                opts.task.as_str()
            )));
        }
        Ok(match opts.task {
            Task::SentenceSimilarity => {
                let mut m = SentenceEncoder::load(dir)?;
                let c = calibrate::set_precision(&mut m, p)?;
                (Served::Sentence(Runtime::start(m, opts.limits)), c)
            }
            Task::TokenClassification => {
                let mut m = TokenClassifier::load(dir)?;
                let c = calibrate::set_precision(&mut m, p)?;
                (Served::Tokens(Runtime::start(m, opts.limits)), c)
            }
            Task::FeatureExtraction => {
                let mut m = FeatureExtractor::load(dir)?;
                let c = calibrate::set_precision(&mut m, p)?;
                (Served::Features(Runtime::start(m, opts.limits)), c)
            }
            Task::ZeroShotImageClassification => (
                Served::Images(Runtime::start(
                    ZeroShotModel(ZeroShot::load(
                        dir,
                        opts.text_dir.as_deref(),
                        opts.hf_cache.as_deref(),
                    )?),
                    opts.limits,
                )),
                None,
            ),
        })
    }

    /// Runs one row (inputs in signature order) and returns its output object and how long it
    /// waited in the model's queue.
    async fn row(&self, inputs: Vec<Value>) -> Result<(Value, Duration), RowError> {
        let text = |v: &Value| -> Result<String, RowError> {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| RowError::Input("the input must be a string".into()))
        };
        let stopped = |_| RowError::Compute("the model runtime has stopped".into());
        let first = inputs.first().cloned().unwrap_or(Value::Null);
        match self {
            Served::Sentence(rt) => {
                let r = rt.call(text(&first)?).await.map_err(stopped)?;
                let v = r.output.map_err(RowError::Compute)?;
                Ok((json!({ "output": v }), r.queued))
            }
            Served::Tokens(rt) => {
                let r = rt.call(text(&first)?).await.map_err(stopped)?;
                Ok((
                    json!({ "outputs": r.output.map_err(RowError::Compute)? }),
                    r.queued,
                ))
            }
            Served::Features(rt) => {
                let r = rt.call(text(&first)?).await.map_err(stopped)?;
                let f = r.output.map_err(RowError::Compute)?;
                Ok((json!({ "cls": f.cls, "mean": f.mean }), r.queued))
            }
            Served::Images(rt) => {
                let b64 = first
                    .as_str()
                    .ok_or_else(|| RowError::Input("`images` must be base64 text".into()))?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| RowError::Input(format!("`images` is not base64: {e}")))?;
                let image =
                    Rgb::decode(&bytes).map_err(|e| RowError::Input(format!("`images`: {e}")))?;
                let labels: Vec<String> = inputs
                    .get(1)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|l| l.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                if labels.len() < 2 {
                    return Err(RowError::Input(
                        "`candidate_labels` must be an array of at least two strings".into(),
                    ));
                }
                // An optional third input: the prompt template, as Snowflake's parameter.
                let template = match inputs.get(2) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(t)) if t.len() <= 1024 => Some(t.clone()),
                    Some(_) => {
                        return Err(RowError::Input(
                            "`hypothesis_template` must be a string of at most 1024 bytes".into(),
                        ));
                    }
                };
                let r = rt
                    .call(ImageQuery {
                        image,
                        labels,
                        template,
                    })
                    .await
                    .map_err(stopped)?;
                let scores = r.output.map_err(RowError::Compute)?;
                Ok((
                    json!({
                        "labels": scores.iter().map(|s| &s.label).collect::<Vec<_>>(),
                        "scores": scores.iter().map(|s| s.score).collect::<Vec<_>>(),
                        "notice": RESEARCH_USE,
                    }),
                    r.queued,
                ))
            }
        }
    }

    /// A small call that proves the model answers (run once before the instance says ready).
    pub async fn warm_up(&self) -> Result<(), String> {
        let inputs = match self {
            Served::Images(_) => vec![
                json!(crate::platform::call::tiny_png()),
                json!(["a photo", "a drawing"]),
            ],
            _ => vec![json!("hugflake warm-up")],
        };
        self.row(inputs).await.map(|_| ()).map_err(|e| e.message())
    }
}

enum RowError {
    Input(String),
    Compute(String),
}

impl RowError {
    fn message(&self) -> String {
        match self {
            RowError::Input(m) | RowError::Compute(m) => m.clone(),
        }
    }
}

struct InstanceState {
    served: Served,
    functions: Vec<Function>,
    token: Secret,
    /// Rows one call keeps in the model's queue at once (two batches): a call of thousands of
    /// rows then takes turns with the others instead of queueing all of them ahead.
    in_flight: usize,
}

/// Runs an instance until the daemon goes away (standard input closes) or a signal arrives.
pub async fn run(opts: InstanceOptions) -> Result<(), String> {
    let token = std::env::var(TOKEN_ENV)
        .map(Secret::new)
        .map_err(|_| format!("{TOKEN_ENV} is not set: instances are started by the daemon"))?;
    let started = Instant::now();
    eprintln!(
        "loading {} model from {} ({})",
        opts.task.as_str(),
        opts.model_dir.display(),
        opts.precision
    );
    let load_opts = opts.clone();
    let (served, calibration) = tokio::task::spawn_blocking(move || Served::load(&load_opts))
        .await
        .map_err(|e| format!("model loading stopped: {e}"))?
        .map_err(|e| format!("cannot load the model: {e}"))?;
    eprintln!("model loaded in {} ms", started.elapsed().as_millis());
    if let Some(c) = &calibration {
        eprintln!("calibration check: {}", c.summary());
    }
    served
        .warm_up()
        .await
        .map_err(|e| format!("warm-up call failed: {e}"))?;
    eprintln!(
        "warm-up call answered; ready after {} ms",
        started.elapsed().as_millis()
    );

    let state = Arc::new(InstanceState {
        served,
        functions: protocol::functions_for(opts.task.as_str()),
        token,
        in_flight: 2 * opts.limits.max_batch.max(1),
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .fallback(post(call))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(refuse_oversized))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!(
        "{}",
        json!({
            "event": "ready",
            "port": port,
            "precision": opts.precision,
            "calibration": calibration,
        })
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();

    axum::serve(listener, app)
        .with_graceful_shutdown(parent_gone())
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("instance stopping");
    Ok(())
}

/// Resolves when standard input reaches its end (the daemon died or closed it) or on SIGTERM.
async fn parent_gone() {
    let stdin = async {
        let mut input = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while let Ok(n) = input.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = stdin => eprintln!("the daemon is gone"),
        _ = term => {}
    }
}

async fn call(
    State(state): State<Arc<InstanceState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let started = Instant::now();
    if !presented_token(&headers).is_some_and(|t| state.token.matches(t)) {
        return error(StatusCode::UNAUTHORIZED, "missing or wrong token");
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => return rejected(e),
    };
    let Some(function) = protocol::function_for_path(&state.functions, uri.path()) else {
        let paths: Vec<String> = state.functions.iter().map(|f| f.rest_path()).collect();
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "no method at {}: this service answers {}",
                uri.path(),
                paths.join(", ")
            ),
        );
    };
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not JSON: {e}"),
            );
        }
    };
    let rows = match protocol::parse_request(&parsed, &function.arguments) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let n = rows.len();
    if n > MAX_ROWS {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{n} rows in one call: at most {MAX_ROWS}; send them in smaller calls"),
        );
    }
    let results: Vec<_> = {
        use futures::StreamExt;
        futures::stream::iter(
            rows.into_iter()
                .map(|r| async { (r.id, state.served.row(r.inputs).await) }),
        )
        .buffered(state.in_flight)
        .collect()
        .await
    };
    let mut out = Vec::with_capacity(n);
    // The shortest wait among the rows: what other callers' work cost this call (a call of many
    // rows also waits behind its own earlier batches, which another instance would not cure).
    let mut queued: Option<Duration> = None;
    for (i, (id, result)) in results.into_iter().enumerate() {
        match result {
            Ok((v, q)) => {
                queued = Some(queued.map_or(q, |m| m.min(q)));
                out.push((id, v));
            }
            Err(RowError::Input(m)) => {
                return error(StatusCode::BAD_REQUEST, format!("data[{i}]: {m}"));
            }
            Err(RowError::Compute(m)) => {
                eprintln!("{} rows={n} failed: {m}", uri.path());
                return error(StatusCode::INTERNAL_SERVER_ERROR, m);
            }
        }
    }
    tracing::debug!(path = %uri.path(), rows = n, ms = started.elapsed().as_millis() as u64, "call");
    // The daemon's autoscaler reads how long the rows waited for the model.
    (
        [(
            crate::platform::local::daemon::services::QUEUE_HEADER,
            format!("{:.1}", queued.unwrap_or_default().as_secs_f64() * 1000.0),
        )],
        axum::Json(protocol::response(out)),
    )
        .into_response()
}
