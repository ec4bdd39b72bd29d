//! The two specs of an import (SNOWFLAKE.md §1) and what decides them: the Snowflake task of a
//! local task name, the libraries Snowflake's import cannot serve, where a version is logged to
//! run, and whether the account takes an inline deployment spec from this client.

use super::SnowflakePlatform;
use super::ident::Qualified;
use super::statements::{self, DeploySpecYaml, ImportSpecYaml};
use crate::domain::ImportSpec;

/// The Snowflake task for a local task name, or why it cannot be imported.
pub fn snowflake_task(task: &str) -> std::result::Result<Option<&'static str>, String> {
    match task {
        "sentence-similarity" | "sentence-transformers" | "embeddings" => Ok(None),
        "token-classification" | "ner" => Ok(Some("token-classification")),
        "feature-extraction" => Err(
            "feature-extraction has no automatic signature on Snowflake, so logging would fail: import \
             embedding models through the sentence-transformers route, or serve this one on the local platform"
                .into(),
        ),
        "text-classification" => Ok(Some("text-classification")),
        "zero-shot-classification" => Ok(Some("zero-shot-classification")),
        "fill-mask" => Ok(Some("fill-mask")),
        // Snowflake has a signature for it (images as BYTES, candidate_labels); only open_clip
        // repos cannot be served, which `library_refusal` says.
        "zero-shot-image-classification" => Ok(Some("zero-shot-image-classification")),
        other => Err(format!("task `{other}` is not one hugflake imports to Snowflake")),
    }
}

/// Why a repo's library cannot go through Snowflake's Hugging Face import (transformers
/// pipelines and sentence-transformers only), if it cannot.
pub fn library_refusal(library: Option<&str>) -> Option<String> {
    match library? {
        "open_clip" => Some(
            "this is an open_clip model (library open_clip): Snowflake's Hugging Face import serves \
             transformers pipelines and sentence-transformers, not open_clip; serve it on the local \
             platform, or import a transformers CLIP model (e.g. flaviagiammarino/pubmed-clip-vit-base-patch32) \
             for zero-shot image classification on Snowflake"
                .into(),
        ),
        "timm" | "diffusers" | "peft" | "adapter-transformers" | "spacy" | "flair" => Some(format!(
            "a {} model is not a transformers pipeline or sentence-transformers model: Snowflake's \
             Hugging Face import cannot serve it",
            library.unwrap_or_default()
        )),
        _ => None,
    }
}

/// The library of a repo when the spec does not carry it: the curated catalog knows its entries.
pub fn library_of(spec: &ImportSpec) -> Option<String> {
    spec.library.clone().or_else(|| {
        crate::domain::catalog::builtin()
            .ok()?
            .into_iter()
            .find(|c| c.handle == spec.handle)
            .and_then(|c| c.library)
    })
}

/// The snowflake-ml-python version whose deployment spec hugflake writes: the account's
/// `ENABLE_INLINE_DEPLOYMENT_SPEC_FROM_CLIENT_VERSION` is compared with it, as the Python client
/// compares it with its own version (`_internal/platform_capabilities.py`).
pub const SPEC_CLIENT_VERSION: &str = "1.48.0";

/// A version as `packaging.version` orders release numbers: trailing zeros do not count
/// (`1.48` = `1.48.0.0`), and a pre-release or dev suffix (`1.48.0rc1`, `1.48.0.dev2`) sorts before
/// its release; the suffix's own number is not compared. `None` when it is not a version.
pub fn release_version(s: &str) -> Option<(Vec<u64>, bool)> {
    let s = s.trim().trim_start_matches(['v', 'V']);
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (numbers, suffix) = s.split_at(end);
    let mut parts = numbers
        .trim_end_matches('.')
        .split('.')
        .map(|p| p.parse::<u64>().ok())
        .collect::<Option<Vec<u64>>>()?;
    while parts.len() > 1 && parts.last() == Some(&0) {
        parts.pop();
    }
    let suffix = suffix
        .trim_start_matches(['.', '-', '_'])
        .to_ascii_lowercase();
    let pre = [
        "a", "b", "c", "rc", "alpha", "beta", "pre", "preview", "dev",
    ]
    .iter()
    .any(|p| suffix.starts_with(p));
    if !suffix.is_empty() && !pre && !suffix.starts_with("post") {
        return None;
    }
    // (release, is a final release or later): a pre-release of the same numbers sorts first.
    Some((parts, !pre))
}

/// Whether `SYSTEM$ML_PLATFORM_CAPABILITIES()` allows inline deployment specs from this client:
/// `Ok(())`, or the reason it does not. A missing or unreadable value means disabled.
pub fn inline_spec_allowed(capabilities: Option<&str>) -> std::result::Result<(), String> {
    const KEY: &str = "ENABLE_INLINE_DEPLOYMENT_SPEC_FROM_CLIENT_VERSION";
    let v: serde_json::Value = capabilities
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    let minimum = match &v[KEY] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let parse = |s: &str| release_version(s);
    let Some(minimum) = minimum else {
        return Err(format!(
            "this account does not accept deployment specs sent inline (SYSTEM$ML_PLATFORM_CAPABILITIES() \
             has no {KEY}); snowflake-ml-python then stages the spec with PUT, which the SQL API cannot do. \
             Deploy this version with snowflake-ml-python (ModelVersion.create_service) and watch it here, \
             or ask your account team to enable inline deployment specs"
        ));
    };
    match (parse(&minimum), parse(SPEC_CLIENT_VERSION)) {
        (Some(min), Some(ours)) if ours >= min => Ok(()),
        _ => Err(format!(
            "this account accepts inline deployment specs only from clients {minimum} or newer \
             ({KEY}), and hugflake writes the spec of snowflake-ml-python {SPEC_CLIENT_VERSION}: \
             deploy with snowflake-ml-python {minimum} or newer (ModelVersion.create_service) and watch it here"
        )),
    }
}

/// The import spec, as the plan shows it and as it is sent.
pub fn import_yaml(
    p: &SnowflakePlatform,
    spec: &ImportSpec,
) -> std::result::Result<String, String> {
    import_yaml_in(
        &p.database,
        &p.schema,
        p.api.context.warehouse.as_deref(),
        spec,
    )
}

/// The deploy spec, as the plan shows it and as it is sent.
pub fn deploy_yaml(
    p: &SnowflakePlatform,
    spec: &ImportSpec,
) -> std::result::Result<String, String> {
    deploy_yaml_in(&p.database, &p.schema, spec)
}

/// The import spec in `database.schema`; `warehouse` (the connection's, stored form) goes with
/// the WAREHOUSE target.
pub fn import_yaml_in(
    database: &super::ident::Ident,
    schema: &super::ident::Ident,
    warehouse: Option<&str>,
    spec: &ImportSpec,
) -> std::result::Result<String, String> {
    let task = snowflake_task(spec.task.as_deref().unwrap_or(""))?;
    if let Some(why) = library_refusal(library_of(spec).as_deref()) {
        return Err(why);
    }
    let model = Qualified::parse(&spec.model, database, schema)?;
    statements::yaml(&ImportSpecYaml {
        compute_pool: spec.pool.clone(),
        models: vec![statements::ImportModel {
            name: statements::ModelName {
                model_name: model.sql(),
                version_name: spec.version.clone(),
            },
            hf_model: statements::HfModel {
                hf_model_name: spec.handle.clone(),
                task: task.map(str::to_string),
                revision: (spec.revision != "main").then(|| spec.revision.clone()),
                token_secret_object: spec
                    .token_secret
                    .as_deref()
                    .map(|n| Qualified::parse(n, database, schema).map(|q| q.sql()))
                    .transpose()?,
                trust_remote_code: false,
                hf_model_kwargs: "{}".into(),
            },
            log_model_args: statements::LogModelArgs {
                // Both, so that the version can also be called in a warehouse
                // (`MODEL(m, v)!METHOD`, batch --warehouse-model): snowflake-ml-python refuses
                // warehouse inference on a version logged for SPCS only.
                target_platforms: target_platforms(task),
                warehouse: target_platforms(task)
                    .iter()
                    .any(|t| t == "WAREHOUSE")
                    .then(|| warehouse.map(|w| super::ident::Ident::from_stored(w).sql()))
                    .flatten(),
                comment: "imported by hugflake".into(),
            },
        }],
    })
}

/// Where a version is logged to run: text tasks also in a warehouse, so that `MODEL(m, v)!METHOD`
/// and batch `--warehouse-model` work on hugflake's imports (snowflake-ml-python refuses warehouse
/// inference on a version logged for SPCS only); image models in services only.
fn target_platforms(task: Option<&str>) -> Vec<String> {
    match task {
        Some("zero-shot-image-classification") => vec!["SNOWPARK_CONTAINER_SERVICES".into()],
        _ => vec!["WAREHOUSE".into(), "SNOWPARK_CONTAINER_SERVICES".into()],
    }
}

pub fn deploy_yaml_in(
    database: &super::ident::Ident,
    schema: &super::ident::Ident,
    spec: &ImportSpec,
) -> std::result::Result<String, String> {
    let model = Qualified::parse(&spec.model, database, schema)?;
    let service = Qualified::parse(&spec.service, database, schema)?;
    statements::yaml(&DeploySpecYaml {
        models: vec![statements::DeployModel {
            name: model.sql(),
            version: spec.version.clone(),
        }],
        image_build: statements::ImageBuild {
            compute_pool: spec.pool.clone(),
            force_rebuild: false,
        },
        service: statements::ServiceSpecYaml {
            name: service.sql(),
            compute_pool: spec.pool.clone(),
            ingress_enabled: true,
            min_instances: spec.min_instances,
            max_instances: spec.max_instances.max(spec.min_instances).max(1),
            cpu: spec.resources.cpu.clone(),
            memory: spec.resources.memory.clone(),
            gpu: spec.resources.gpu.map(|g| g.to_string()),
            autocapture: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_that_snowflake_cannot_import_say_why() {
        assert_eq!(snowflake_task("sentence-similarity"), Ok(None));
        assert_eq!(
            snowflake_task("token-classification"),
            Ok(Some("token-classification"))
        );
        assert!(
            snowflake_task("feature-extraction")
                .err()
                .unwrap_or_default()
                .contains("no automatic signature")
        );
        // Zero-shot image classification has a Snowflake signature: only the library refuses.
        assert_eq!(
            snowflake_task("zero-shot-image-classification"),
            Ok(Some("zero-shot-image-classification"))
        );
        assert!(
            library_refusal(Some("open_clip"))
                .unwrap_or_default()
                .contains("open_clip")
        );
        assert_eq!(library_refusal(Some("transformers")), None);
        assert_eq!(library_refusal(None), None);
    }

    #[test]
    fn inline_specs_follow_the_capability_version() {
        let caps =
            |v: &str| format!(r#"{{"ENABLE_INLINE_DEPLOYMENT_SPEC_FROM_CLIENT_VERSION": "{v}"}}"#);
        assert_eq!(inline_spec_allowed(Some(&caps("1.8.6"))), Ok(()));
        assert_eq!(inline_spec_allowed(Some(&caps("1.48.0"))), Ok(()));
        let newer = inline_spec_allowed(Some(&caps("1.48.1")))
            .err()
            .unwrap_or_default();
        assert!(newer.contains("1.48.1 or newer"), "{newer}");
        let missing = inline_spec_allowed(Some("{}")).err().unwrap_or_default();
        assert!(missing.contains("PUT"), "{missing}");
        assert!(inline_spec_allowed(None).is_err());
        assert!(inline_spec_allowed(Some(&caps("not a version"))).is_err());
        // As packaging.version orders them: trailing zeros, pre-releases.
        assert_eq!(inline_spec_allowed(Some(&caps("1.48"))), Ok(()));
        assert_eq!(inline_spec_allowed(Some(&caps("1.48.0.0"))), Ok(()));
        assert_eq!(inline_spec_allowed(Some(&caps("1.48.0rc1"))), Ok(()));
        assert!(inline_spec_allowed(Some(&caps("1.49.0.dev1"))).is_err());
        assert_eq!(release_version("1.48.0rc1"), Some((vec![1, 48], false)));
    }
}
