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

/// The plan of `job` in `database.schema`, or why it cannot run on Snowflake. `image_call`: how
/// the service's `__CALL__` takes images (from its signature), for `classify-images`.
pub fn plan(
    job: &Job,
    database: &Ident,
    schema: &Ident,
    image_call: Option<&sql::ImageCall>,
) -> Result<Plan, String> {
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
                Some(f) => Some((ident(&f.column)?, f.op, f.value.clone())),
                None => None,
            };
            let mut st = vec![sql::count(&src)];
            st.extend(sql::entities(
                &src,
                &out,
                &names.target(&j.service, &j.snowflake)?,
                &model_ref(&j.service, &j.snowflake),
                col.as_ref().map(|(c, op, v)| (c, *op, v.as_str())),
                j.limit,
            ));
            (st, &j.snowflake)
        }
        Job::ClassifyImages(j) => {
            let Some(input) = &j.input else {
                return Err(
                    "on Snowflake, give --input TABLE: a table whose BINARY column holds the images' bytes \
                     (--image-column, default IMAGE_BYTES); the images stay in the account"
                        .into(),
                );
            };
            if j.snowflake.warehouse_model.is_some() {
                return Err(
                    "zero-shot image classification runs in a service (--service): hugflake logs only \
                     text models for warehouse inference"
                        .into(),
                );
            }
            let call = image_call.ok_or("the service's __CALL__ signature is not known")?;
            let src = sql::Images {
                table: names.qualified(input)?,
                id: ident(&j.id_column)?,
                image: ident(&j.image_column)?,
            };
            let out = names.qualified(j.output.as_deref().unwrap_or("IMAGE_LABELS"))?;
            let labels =
                crate::platform::call::labels(&j.labels).map_err(|e| format!("--labels: {e}"))?;
            let col = match &j.filter {
                Some(f) => Some((ident(&f.column)?, f.op, f.value.clone())),
                None => None,
            };
            let service = names.qualified(&j.service)?;
            let mut st = vec![sql::count(&sql::Source {
                table: src.table.clone(),
                id: src.id.clone(),
                text: src.image.clone(),
            })];
            st.extend(sql::classify_images(
                &src,
                &out,
                &service,
                call,
                &labels,
                &model_ref(&Some(j.service.clone()), &j.snowflake),
                sql::Selection {
                    filter: col.as_ref().map(|(c, op, v)| (c, *op, v.as_str())),
                    limit: j.limit,
                },
            ));
            (st, &j.snowflake)
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
        Job::ClassifyImages(j) => Some((
            "classify-images",
            j.service.to_ascii_uppercase(),
            j.input.clone().unwrap_or_default(),
        )),
        _ => None,
    };
    Ok(Plan {
        statements,
        dry_run: o.dry_run,
        warehouse,
        record,
    })
}

/// How a zero-shot image service's `__CALL__` is called from SQL, read from its signature
/// (`SHOW FUNCTIONS IN MODEL`): the image bytes (a BINARY argument), the labels (an ARRAY), then the
/// parameters the call must give (the first `min_num_arguments`) or that are asked for
/// (`--template` sets `hypothesis_template`).
pub fn image_call(
    functions: &[crate::domain::Function],
    template: Option<&str>,
    service: &str,
) -> Result<sql::ImageCall, String> {
    use crate::platform::call::ServiceKind;
    let Some(f) = functions
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case("__CALL__"))
    else {
        return Err(format!(
            "service {service} has no __CALL__ function ({}): `batch classify-images` needs a \
             zero-shot-image-classification service",
            if functions.is_empty() {
                "its version lists no functions".to_string()
            } else {
                functions
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    };
    if !matches!(ServiceKind::of(functions), Some((ServiceKind::Images, _))) {
        return Err(format!(
            "service {service} does not take images (its __CALL__ takes {}): `batch classify-images` \
             needs a zero-shot-image-classification service",
            signature(&f.arguments)
        ));
    }
    let kind = |i: usize| {
        f.arguments
            .get(i)
            .map(|a| a.kind.to_ascii_uppercase())
            .unwrap_or_default()
    };
    if !(kind(0).contains("BINARY") || kind(0).contains("BYTES")) || !kind(1).contains("ARRAY") {
        return Err(format!(
            "service {service}'s __CALL__ takes {}; hugflake passes (image BINARY, candidate_labels ARRAY)",
            signature(&f.arguments)
        ));
    }
    let required = f.required.unwrap_or(2).max(2);
    let template_at = f
        .arguments
        .iter()
        .position(|a| a.name.eq_ignore_ascii_case("hypothesis_template"));
    if template.is_some() && template_at.is_none() {
        return Err(format!(
            "service {service}'s __CALL__ has no hypothesis_template parameter ({}): leave out --template",
            signature(&f.arguments)
        ));
    }
    let until = match (template, template_at) {
        (Some(_), Some(at)) => required.max(at + 1),
        _ => required,
    }
    .min(f.arguments.len());
    let params = (2..until)
        .map(|i| {
            if Some(i) == template_at {
                sql::ImageParam::Template(
                    template
                        .unwrap_or(crate::inference::hf_clip::PIPELINE_TEMPLATE)
                        .to_string(),
                )
            } else {
                sql::ImageParam::Null
            }
        })
        .collect();
    Ok(sql::ImageCall {
        method: f.name.clone(),
        params,
    })
}

/// `(IMAGES BINARY, CANDIDATE_LABELS ARRAY)`
fn signature(args: &[crate::domain::Column]) -> String {
    format!(
        "({})",
        args.iter()
            .map(|a| format!("{} {}", a.name, a.kind).trim().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The signature Snowflake documents for zero-shot-image-classification (snowflake-ml-python
/// `_signatures/utils.py`), for a `--dry-run` that cannot read the service's own.
pub fn documented_image_functions() -> Vec<crate::domain::Function> {
    let col = |name: &str, kind: &str| crate::domain::Column {
        name: name.into(),
        kind: kind.into(),
    };
    vec![crate::domain::Function {
        name: "__CALL__".into(),
        arguments: vec![
            col("images", "BINARY"),
            col("candidate_labels", "ARRAY"),
            col("hypothesis_template", "VARCHAR"),
            col("timeout", "FLOAT"),
        ],
        returns: vec![col("labels", "ARRAY")],
        required: Some(2),
    }]
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

#[cfg(test)]
mod image_call_tests {
    use super::*;
    use crate::domain::{Column, Function};

    fn call(args: &[(&str, &str)], required: Option<usize>) -> Vec<Function> {
        vec![Function {
            name: "__CALL__".into(),
            arguments: args
                .iter()
                .map(|(n, k)| Column {
                    name: (*n).into(),
                    kind: (*k).into(),
                })
                .collect(),
            returns: vec![],
            required,
        }]
    }

    #[test]
    fn the_call_follows_the_signature() {
        let full = call(
            &[
                ("images", "BINARY"),
                ("candidate_labels", "ARRAY"),
                ("hypothesis_template", "VARCHAR"),
                ("timeout", "FLOAT"),
            ],
            Some(2),
        );
        // Parameters with defaults are left to them.
        let c = image_call(&full, None, "S").unwrap_or_else(|e| panic!("{e}"));
        assert!(c.params.is_empty());
        // A template asked for is passed in its place.
        let c = image_call(&full, Some("x {}"), "S").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.params, [sql::ImageParam::Template("x {}".into())]);
        // Parameters Snowflake says the call must give: the template (the pipeline's default)
        // and NULL for the rest.
        let strict = call(
            &[
                ("images", "BINARY"),
                ("candidate_labels", "ARRAY"),
                ("hypothesis_template", "VARCHAR"),
                ("timeout", "FLOAT"),
            ],
            Some(4),
        );
        let c = image_call(&strict, None, "S").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.params,
            [
                sql::ImageParam::Template("This is a photo of {}.".into()),
                sql::ImageParam::Null
            ]
        );
        // Before snowflake-ml-python 1.38 there were no parameters: --template is refused.
        let old = call(&[("images", "BINARY"), ("candidate_labels", "ARRAY")], None);
        let err = image_call(&old, Some("x {}"), "S")
            .err()
            .unwrap_or_default();
        assert!(err.contains("no hypothesis_template"), "{err}");
        // Not an image service, or images not as BINARY: refused with the signature.
        let text = call(&[("inputs", "VARCHAR")], Some(1));
        let err = image_call(&text, None, "S").err().unwrap_or_default();
        assert!(
            err.contains("does not take images") && err.contains("inputs VARCHAR"),
            "{err}"
        );
        let b64 = call(
            &[("images", "VARCHAR"), ("candidate_labels", "ARRAY")],
            Some(2),
        );
        let err = image_call(&b64, None, "S").err().unwrap_or_default();
        assert!(err.contains("hugflake passes (image BINARY"), "{err}");
        let err = image_call(&[], None, "S").err().unwrap_or_default();
        assert!(err.contains("lists no functions"), "{err}");
    }
}
