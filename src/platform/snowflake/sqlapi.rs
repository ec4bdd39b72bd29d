//! Snowflake's SQL API v2 over reqwest (SNOWFLAKE.md §7): asynchronous submit, polling while the
//! statement runs (202, code 333334), result partitions (gzip for N ≥ 1), bindings, cancel, and
//! retries of throttling and server errors with the same request id (`retry=true` never runs a
//! finished statement twice). Every literal a user supplies travels as a binding.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Signer;
use super::connection::Auth;
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqlError {
    #[error("cannot reach Snowflake at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("Snowflake refused the credentials ({status}): {message}")]
    Unauthorized { status: u16, message: String },
    #[error("SQL error {code} ({sql_state}): {message}")]
    Statement {
        code: String,
        sql_state: String,
        message: String,
        handle: Option<String>,
    },
    #[error("Snowflake answered {status}: {message}")]
    Http { status: u16, message: String },
    #[error("the statement ran longer than {0} s and was cancelled")]
    Timeout(u64),
    #[error("unexpected answer from the SQL API: {0}")]
    Protocol(String),
    #[error("{0}")]
    Key(String),
}

/// A bound parameter: its Snowflake type and its value as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub kind: &'static str,
    pub value: String,
}

pub fn text(s: impl Into<String>) -> Binding {
    Binding {
        kind: "TEXT",
        value: s.into(),
    }
}

pub fn fixed(n: i64) -> Binding {
    Binding {
        kind: "FIXED",
        value: n.to_string(),
    }
}

/// The session context each request carries (the SQL API is session-less).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub database: Option<String>,
    pub schema: Option<String>,
    pub warehouse: Option<String>,
    pub role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ColumnMeta {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// A finished statement's rows, every value as the API sends it (text or null).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultSet {
    pub handle: String,
    pub columns: Vec<ColumnMeta>,
    pub rows: Vec<Vec<Option<String>>>,
    /// Partitions of the result (partition 0 is inline).
    pub partitions: usize,
}

impl ResultSet {
    fn index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// A value by row and column name (SHOW columns are lower-case; any case matches).
    pub fn get(&self, row: usize, name: &str) -> Option<&str> {
        let i = self.index(name)?;
        self.rows.get(row)?.get(i)?.as_deref()
    }

    /// A value that is present and not empty, owned (SHOW leaves optional columns empty).
    pub fn text(&self, row: usize, name: &str) -> Option<String> {
        self.get(row, name)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    /// The single value of a one-row, one-column answer (`CALL SYSTEM$...`).
    pub fn scalar(&self) -> Option<&str> {
        self.rows.first()?.first()?.as_deref()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

enum Credentials {
    Static {
        token: Secret,
        kind: &'static str,
    },
    KeyPair {
        signer: Arc<Signer>,
        account: String,
        user: String,
        cached: Mutex<Option<(Secret, i64)>>,
    },
}

/// How long to wait between polls and retries.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    pub first_poll: Duration,
    pub max_poll: Duration,
    pub retries: u32,
    pub first_retry: Duration,
    /// One HTTP request's limit; a request that takes longer is sent again (a submission with
    /// the same request id and `retry=true`, so Snowflake never runs it twice).
    pub request_timeout: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            first_poll: Duration::from_millis(250),
            max_poll: Duration::from_secs(5),
            retries: 6,
            first_retry: Duration::from_millis(500),
            request_timeout: Duration::from_secs(60),
        }
    }
}

pub struct SqlApi {
    base: String,
    http: reqwest::Client,
    pub context: Context,
    credentials: Credentials,
    pub pacing: Pacing,
    /// HTTP requests sent (polls, partitions and retries included) and statements submitted.
    requests: std::sync::atomic::AtomicU64,
    statements: std::sync::atomic::AtomicU64,
}

/// What submitting a statement gave back.
enum Submitted {
    Done(Box<ResultSet>),
    Running(String),
}

fn user_agent() -> String {
    format!("hugflake/{}", crate::VERSION)
}

impl SqlApi {
    pub fn new(
        base: &str,
        auth: &Auth,
        account: &str,
        user: &str,
        context: Context,
    ) -> Result<SqlApi, SqlError> {
        let credentials = match auth {
            Auth::Pat(t) => Credentials::Static {
                token: t.clone(),
                kind: "PROGRAMMATIC_ACCESS_TOKEN",
            },
            Auth::OAuth(t) => Credentials::Static {
                token: t.clone(),
                kind: "OAUTH",
            },
            Auth::KeyPair {
                private_key_file,
                passphrase,
            } => Credentials::KeyPair {
                signer: Arc::new(
                    Signer::load(private_key_file, passphrase.as_ref())
                        .map_err(|e| SqlError::Key(e.to_string()))?,
                ),
                account: account.to_string(),
                user: user.to_string(),
                cached: Mutex::new(None),
            },
        };
        let http = reqwest::Client::builder()
            .user_agent(user_agent())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| SqlError::Protocol(e.to_string()))?;
        Ok(SqlApi {
            base: base.trim_end_matches('/').to_string(),
            http,
            context,
            credentials,
            pacing: Pacing::default(),
            requests: Default::default(),
            statements: Default::default(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The bearer token and its type; key-pair JWTs are reused until five minutes before expiry.
    pub fn token(&self) -> Result<(Secret, &'static str), SqlError> {
        match &self.credentials {
            Credentials::Static { token, kind } => Ok((token.clone(), kind)),
            Credentials::KeyPair {
                signer,
                account,
                user,
                cached,
            } => {
                let now = chrono::Utc::now().timestamp();
                if let Ok(c) = cached.lock()
                    && let Some((t, exp)) = c.as_ref()
                    && *exp - now > 300
                {
                    return Ok((t.clone(), "KEYPAIR_JWT"));
                }
                let t = signer
                    .jwt(account, user, now)
                    .map_err(|e| SqlError::Key(e.to_string()))?;
                if let Ok(mut c) = cached.lock() {
                    *c = Some((t.clone(), now + 59 * 60));
                }
                Ok((t, "KEYPAIR_JWT"))
            }
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, SqlError> {
        let (token, kind) = self.token()?;
        Ok(self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token.expose())
            .header("X-Snowflake-Authorization-Token-Type", kind)
            .header("Accept", "application/json")
            .timeout(self.pacing.request_timeout))
    }

    /// Sends with retries on 429, 5xx and dropped connections; other answers come back as they are.
    async fn send(
        &self,
        build: impl Fn() -> Result<reqwest::RequestBuilder, SqlError>,
    ) -> Result<(StatusCode, Vec<u8>, Option<String>), SqlError> {
        let mut wait = self.pacing.first_retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let result = build()?.send().await;
            match result {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let encoding = resp
                        .headers()
                        .get("content-encoding")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    // The SQL API documents its 500s as passing too.
                    let transient = crate::http::transient_status(status.as_u16())
                        || status == StatusCode::INTERNAL_SERVER_ERROR;
                    if transient && attempt <= self.pacing.retries {
                        let pause = retry_after
                            .map_or(wait, Duration::from_secs)
                            .min(Duration::from_secs(30));
                        tracing::debug!(status = status.as_u16(), attempt, "SQL API retry");
                        tokio::time::sleep(pause).await;
                        wait = (wait * 2).min(Duration::from_secs(8));
                        continue;
                    }
                    let body = resp.bytes().await.map_err(|e| SqlError::Unreachable {
                        url: self.base.clone(),
                        detail: e.to_string(),
                    })?;
                    return Ok((status, body.to_vec(), encoding));
                }
                Err(e)
                    if attempt <= self.pacing.retries
                        && (e.is_connect() || e.is_timeout() || e.is_request()) =>
                {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(8));
                }
                Err(e) => {
                    return Err(SqlError::Unreachable {
                        url: self.base.clone(),
                        detail: if e.is_connect() {
                            "connection refused".into()
                        } else {
                            e.to_string()
                        },
                    });
                }
            }
        }
    }

    /// The request body for a statement.
    pub fn body(&self, statement: &str, bindings: &[Binding], timeout_secs: u64) -> Value {
        let mut body = json!({
            "statement": statement,
            "timeout": timeout_secs,
        });
        let c = &self.context;
        for (k, v) in [
            ("database", &c.database),
            ("schema", &c.schema),
            ("warehouse", &c.warehouse),
            ("role", &c.role),
        ] {
            if let Some(v) = v {
                body[k] = json!(v);
            }
        }
        if !bindings.is_empty() {
            let map: serde_json::Map<String, Value> = bindings
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    (
                        (i + 1).to_string(),
                        json!({ "type": b.kind, "value": b.value }),
                    )
                })
                .collect();
            body["bindings"] = Value::Object(map);
        }
        body
    }

    async fn submit(
        &self,
        statement: &str,
        bindings: &[Binding],
        timeout_secs: u64,
    ) -> Result<Submitted, SqlError> {
        self.statements
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request_id = uuid::Uuid::new_v4().to_string();
        let body = self.body(statement, bindings, timeout_secs);
        let first = std::sync::atomic::AtomicBool::new(true);
        let (status, bytes, _) = self
            .send(|| {
                let retry = !first.swap(false, std::sync::atomic::Ordering::SeqCst);
                let path = format!(
                    "/api/v2/statements?requestId={request_id}&async=true{}",
                    if retry { "&retry=true" } else { "" }
                );
                Ok(self.request(reqwest::Method::POST, &path)?.json(&body))
            })
            .await?;
        self.interpret(status, &bytes)
    }

    fn interpret(&self, status: StatusCode, bytes: &[u8]) -> Result<Submitted, SqlError> {
        let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        let message = || {
            v["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(bytes).chars().take(300).collect())
        };
        match status.as_u16() {
            200 => Ok(Submitted::Done(Box::new(parse_result(&v)?))),
            202 => v["statementHandle"]
                .as_str()
                .map(|h| Submitted::Running(h.to_string()))
                .ok_or_else(|| SqlError::Protocol("202 without a statementHandle".into())),
            401 | 403 => Err(SqlError::Unauthorized {
                status: status.as_u16(),
                message: message(),
            }),
            408 => Err(SqlError::Timeout(0)),
            400 | 422 if v.get("code").is_some() => Err(SqlError::Statement {
                code: v["code"].as_str().unwrap_or("").to_string(),
                sql_state: v["sqlState"].as_str().unwrap_or("").to_string(),
                message: message(),
                handle: v["statementHandle"].as_str().map(str::to_string),
            }),
            s => Err(SqlError::Http {
                status: s,
                message: message(),
            }),
        }
    }

    async fn poll(&self, handle: &str) -> Result<Submitted, SqlError> {
        let path = format!("/api/v2/statements/{handle}");
        let (status, bytes, _) = self
            .send(|| self.request(reqwest::Method::GET, &path))
            .await?;
        self.interpret(status, &bytes)
    }

    /// Partition N ≥ 1 of a result: `{"data": [...]}`, gzip-compressed.
    async fn partition(
        &self,
        handle: &str,
        n: usize,
    ) -> Result<Vec<Vec<Option<String>>>, SqlError> {
        let path = format!("/api/v2/statements/{handle}?partition={n}");
        let (status, bytes, _) = self
            .send(|| {
                Ok(self
                    .request(reqwest::Method::GET, &path)?
                    .header("Accept-Encoding", "gzip"))
            })
            .await?;
        if !status.is_success() {
            return Err(SqlError::Http {
                status: status.as_u16(),
                message: format!("partition {n} of {handle}"),
            });
        }
        let raw = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut out)
                .map_err(|e| SqlError::Protocol(format!("partition {n}: bad gzip: {e}")))?;
            out
        } else {
            bytes
        };
        let v: Value = serde_json::from_slice(&raw)
            .map_err(|e| SqlError::Protocol(format!("partition {n}: {e}")))?;
        parse_rows(&v["data"])
    }

    /// HTTP requests sent and statements submitted so far.
    pub fn traffic(&self) -> crate::platform::Traffic {
        use std::sync::atomic::Ordering::Relaxed;
        crate::platform::Traffic {
            requests: self.requests.load(Relaxed),
            statements: self.statements.load(Relaxed),
        }
    }

    /// Runs a statement to its end: submit, poll with back-off, fetch every partition. A
    /// statement still running after `timeout` is cancelled.
    pub async fn execute(
        &self,
        statement: &str,
        bindings: &[Binding],
        timeout: Duration,
    ) -> Result<ResultSet, SqlError> {
        let started = Instant::now();
        let mut result = self.submit(statement, bindings, timeout.as_secs()).await?;
        let mut wait = self.pacing.first_poll;
        loop {
            match result {
                Submitted::Done(mut rs) => {
                    for p in 1..rs.partitions {
                        let rows = self.partition(&rs.handle, p).await?;
                        rs.rows.extend(rows);
                    }
                    return Ok(*rs);
                }
                Submitted::Running(handle) => {
                    if started.elapsed() > timeout {
                        let _ = self.cancel(&handle).await;
                        return Err(SqlError::Timeout(timeout.as_secs()));
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.pacing.max_poll);
                    result = self.poll(&handle).await?;
                }
            }
        }
    }

    /// Starts a statement and returns its handle without waiting (long imports).
    pub async fn start(
        &self,
        statement: &str,
        bindings: &[Binding],
        timeout_secs: u64,
    ) -> Result<Result<ResultSet, String>, SqlError> {
        Ok(
            match self.submit(statement, bindings, timeout_secs).await? {
                Submitted::Done(rs) => Ok(*rs),
                Submitted::Running(h) => Err(h),
            },
        )
    }

    /// Asks once about a running statement: `Ok(None)` while it runs.
    pub async fn check(&self, handle: &str) -> Result<Option<ResultSet>, SqlError> {
        match self.poll(handle).await? {
            Submitted::Done(rs) => Ok(Some(*rs)),
            Submitted::Running(_) => Ok(None),
        }
    }

    /// Cancels a running statement; the answer's body comes back as text (its shape is not
    /// documented, SNOWFLAKE.md §7 (?): any 2xx is enough, the live suite prints it).
    pub async fn cancel(&self, handle: &str) -> Result<String, SqlError> {
        let path = format!("/api/v2/statements/{handle}/cancel");
        let (status, bytes, _) = self
            .send(|| self.request(reqwest::Method::POST, &path))
            .await?;
        if status.is_success() {
            Ok(String::from_utf8_lossy(&bytes).chars().take(500).collect())
        } else {
            Err(SqlError::Http {
                status: status.as_u16(),
                message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            })
        }
    }
}

fn parse_rows(data: &Value) -> Result<Vec<Vec<Option<String>>>, SqlError> {
    let Some(rows) = data.as_array() else {
        return Ok(Vec::new());
    };
    rows.iter()
        .map(|r| {
            r.as_array()
                .ok_or_else(|| SqlError::Protocol("a row is not an array".into()))
                .map(|cells| {
                    cells
                        .iter()
                        .map(|c| match c {
                            Value::Null => None,
                            Value::String(s) => Some(s.clone()),
                            other => Some(other.to_string()),
                        })
                        .collect()
                })
        })
        .collect()
}

fn parse_result(v: &Value) -> Result<ResultSet, SqlError> {
    let meta = &v["resultSetMetaData"];
    let columns: Vec<ColumnMeta> =
        serde_json::from_value(meta["rowType"].clone()).unwrap_or_default();
    let handle = v["statementHandle"].as_str().unwrap_or("").to_string();
    let partitions = meta["partitionInfo"].as_array().map_or(1, Vec::len).max(1);
    Ok(ResultSet {
        handle,
        columns,
        rows: parse_rows(&v["data"])?,
        partitions,
    })
}
