//! The batch commands on Snowflake: each job becomes a plan of SQL statements run in the account
//! ([`super::sql`] writes them), and a runner that polls each statement and cancels it in the
//! account when the user interrupts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::job::{Job, SnowflakeOptions};
use super::sql;
use crate::platform::snowflake::ident::{Ident, Qualified};
use crate::platform::snowflake::sqlapi::{Binding, ResultSet, SqlApi};

/// What a job runs in the account.
#[derive(Debug)]
pub struct Plan {
    pub statements: Vec<sql::Statement>,
    /// Print the statements, run nothing.
    pub dry_run: bool,
    /// Warehouse inference: the model version that must be runnable in a warehouse, checked
    /// before anything runs.
    pub warehouse: Option<(Qualified, Ident)>,
    /// The run record for the TUI's Imports tab (kind, who computes, input); a search has none.
    pub record: Option<(&'static str, String, String)>,
}

/// The plan of `job` in `database.schema`, or why it cannot run on Snowflake.
pub fn plan(job: &Job, database: &Ident, schema: &Ident) -> Result<Plan, String> {
    let names = Names { database, schema };
    let (statements, o) = match job {
        Job::Embed(j) => {
            let src = names.source(&j.input, &j.columns.id_column, &j.columns.text_column)?;
            let cache = names.qualified(j.cache.as_deref().unwrap_or("NOTE_EMBEDDINGS"))?;
            let mut st = vec![sql::count(&src)];
            st.extend(sql::embed(
                &src,
                &cache,
                &names.target(&j.service, &j.snowflake)?,
                &ident("ENCODE")?,
                &model_ref(&j.service, &j.snowflake),
                j.snowflake.dim,
            ));
            (st, &j.snowflake)
        }
        Job::Search(j) => {
            let cache = names.qualified(j.cache.as_deref().unwrap_or("NOTE_EMBEDDINGS"))?;
            let m = model_ref(&j.service, &j.snowflake);
            let st = if j.pairs {
                sql::pairs(&cache, &m, j.top)
            } else {
                sql::search(
                    &cache,
                    &names.target(&j.service, &j.snowflake)?,
                    &ident("ENCODE")?,
                    &m,
                    j.snowflake.dim,
                    j.query.as_deref().unwrap_or_default(),
                    j.top,
                )
            };
            (vec![st], &j.snowflake)
        }
        Job::Entities(j) => {
            let src = names.source(&j.input, &j.columns.id_column, &j.columns.text_column)?;
            let out = names.qualified(j.output.as_deref().unwrap_or("NOTE_ENTITIES"))?;
            let col = match &j.filter {
                Some(f) => Some((ident(&f.column)?, f.value.clone())),
                None => None,
            };
            let mut st = vec![sql::count(&src)];
            st.extend(sql::entities(
                &src,
                &out,
                &names.target(&j.service, &j.snowflake)?,
                &model_ref(&j.service, &j.snowflake),
                col.as_ref().map(|(c, v)| (c, v.as_str())),
                j.limit,
            ));
            (st, &j.snowflake)
        }
        Job::ClassifyImages(_) => {
            return Err("zero-shot image classification (open_clip, e.g. BiomedCLIP) cannot be served by Snowflake's Hugging Face import: run `hugflake batch classify-images` on the local platform".into());
        }
    };
    let warehouse = match &o.warehouse_model {
        Some(m) => Some((
            names.qualified(m)?,
            ident(o.model_version.as_deref().unwrap_or("V1"))?,
        )),
        None => None,
    };
    let by = |service: &Option<String>| {
        o.warehouse_model
            .clone()
            .or_else(|| service.clone())
            .unwrap_or_default()
            .to_ascii_uppercase()
    };
    let record = match job {
        Job::Embed(j) => Some(("embed", by(&j.service), j.input.clone())),
        Job::Entities(j) => Some(("entities", by(&j.service), j.input.clone())),
        _ => None,
    };
    Ok(Plan {
        statements,
        dry_run: o.dry_run,
        warehouse,
        record,
    })
}

struct Names<'a> {
    database: &'a Ident,
    schema: &'a Ident,
}

impl Names<'_> {
    fn qualified(&self, s: &str) -> Result<Qualified, String> {
        Qualified::parse(s, self.database, self.schema).map_err(|e| format!("`{s}`: {e}"))
    }

    /// What answers the calls: `--warehouse-model` (a model version on the warehouse), else the
    /// service.
    fn target(
        &self,
        service: &Option<String>,
        o: &SnowflakeOptions,
    ) -> Result<sql::Target, String> {
        match (&o.warehouse_model, service) {
            (Some(m), _) => Ok(sql::Target::Warehouse {
                model: self.qualified(m)?,
                version: ident(o.model_version.as_deref().unwrap_or("V1"))?,
            }),
            (None, Some(s)) => Ok(sql::Target::Service(self.qualified(s)?)),
            (None, None) => {
                Err("give --service (or --warehouse-model for warehouse inference)".into())
            }
        }
    }

    fn source(&self, input: &str, id: &str, text: &str) -> Result<sql::Source, String> {
        Ok(sql::Source {
            table: self.qualified(input)?,
            id: ident(id)?,
            text: ident(text)?,
        })
    }
}

fn ident(s: &str) -> Result<Ident, String> {
    Ident::parse(s).map_err(|e| format!("`{s}`: {e}"))
}

/// The model and version the rows are recorded under: `--model`, else the warehouse model, else
/// the service's name without its `_SVC` suffix.
fn model_ref(service: &Option<String>, o: &SnowflakeOptions) -> sql::ModelRef {
    let from_service = service.as_deref().map(|s| {
        let last = s.rsplit('.').next().unwrap_or(s).to_ascii_uppercase();
        last.strip_suffix("_SVC")
            .map(str::to_string)
            .unwrap_or(last)
    });
    sql::ModelRef {
        model: o
            .model
            .clone()
            .or_else(|| o.warehouse_model.clone())
            .or(from_service)
            .unwrap_or_default()
            .to_ascii_uppercase(),
        version: o.model_version.clone().unwrap_or_else(|| "V1".into()),
    }
}

/// Why a statement did not finish.
pub enum Stopped {
    /// Ctrl-C: the statement was cancelled in the account (or the cancel failed: said how).
    Cancelled(String),
    Failed(String),
}

/// Runs one statement asynchronously, polling until it ends; a Ctrl-C (the stop flag) cancels it
/// in the account.
pub async fn statement(
    api: &SqlApi,
    sql: &str,
    binds: &[Binding],
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<ResultSet, Stopped> {
    let started = Instant::now();
    let handle = match api.start(sql, binds, timeout.as_secs()).await {
        Ok(Ok(rs)) => return Ok(rs),
        Ok(Err(handle)) => handle,
        Err(e) => return Err(Stopped::Failed(e.to_string())),
    };
    let mut wait = Duration::from_millis(200);
    loop {
        // Sleep in short steps so a Ctrl-C is acted on at once.
        let until = Instant::now() + wait;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if stop.load(Ordering::Relaxed) || started.elapsed() > timeout {
            let why = if stop.load(Ordering::Relaxed) {
                "interrupted"
            } else {
                "timed out"
            };
            return Err(Stopped::Cancelled(match api.cancel(&handle).await {
                Ok(_) => format!(
                    "{why}: statement {handle} cancelled in the account; run the same command again to continue"
                ),
                Err(e) => format!(
                    "{why}, and the cancel failed ({e}): statement {handle} may still run; stop it with SELECT SYSTEM$CANCEL_QUERY('{handle}')"
                ),
            }));
        }
        match api.check(&handle).await {
            Ok(Some(rs)) => return Ok(rs),
            Ok(None) => wait = (wait * 2).min(Duration::from_secs(2)),
            Err(e) => return Err(Stopped::Failed(e.to_string())),
        }
    }
}
