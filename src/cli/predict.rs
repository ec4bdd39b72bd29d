//! `predict --model-dir`: inference straight from a directory, no daemon.

use color_eyre::eyre::{Result, eyre};

use super::output::{label_scores, predict_line, print_json};
use crate::cli::args::PredictArgs;
use crate::domain::Precision;
use crate::inference::Task;
use crate::inference::calibrate::{self, Calibrated};
use crate::inference::sentence::SentenceEncoder;
use crate::inference::token_classification::{self, FeatureExtractor, TokenClassifier};
use crate::session::Context;

/// `hugflake predict --model-dir DIR`: the task from the flag or the directory's files.
pub fn from_dir(ctx: &Context, a: PredictArgs) -> Result<()> {
    let dir = a
        .model_dir
        .clone()
        .ok_or_else(|| eyre!("give a SERVICE or --model-dir DIR"))?;
    let dir = dir.as_path();
    let task = match a.task {
        Some(t) => t,
        None => Task::detect(dir)?,
    };
    let precision = a.precision;
    if !precision.supports_task(task.as_str()) {
        return Err(eyre!(
            "{precision} applies to the BERT-family text encoders; {} models run in fp32",
            task.as_str()
        ));
    }
    // Sets the precision on a loaded model, saying what the calibration check measured.
    fn reduce<M: Calibrated>(mut m: M, p: Precision) -> Result<M> {
        if let Some(c) = calibrate::set_precision(&mut m, p)? {
            eprintln!("calibration check: {}", c.summary());
        }
        Ok(m)
    }
    let (batch_size, json) = (a.batch_size as usize, a.json);
    // Inputs are read before the clock starts (standard input may take its time).
    let mut texts = Vec::new();
    if task != Task::ZeroShotImageClassification {
        texts = super::platform::input_texts(&a)?;
        if texts.is_empty() {
            return Err(eyre!("no input: give --text TEXT (repeatable) or --stdin"));
        }
    }
    let started = std::time::Instant::now();
    let rows: Vec<serde_json::Value> = match task {
        Task::ZeroShotImageClassification => {
            return classify_images(
                dir,
                a.text_tower.as_deref(),
                &ctx.paths.hf_cache.path,
                &a.image,
                a.labels.clone(),
                a.template.as_deref(),
                json,
            );
        }
        Task::SentenceSimilarity => {
            let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let enc = reduce(SentenceEncoder::load(dir)?, precision)?;
            enc.encode(&inputs, batch_size)?
                .into_iter()
                .enumerate()
                .map(|(i, e)| serde_json::json!({ "index": i, "embedding": e }))
                .collect()
        }
        Task::TokenClassification => {
            let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let model = reduce(TokenClassifier::load(dir)?, precision)?;
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
            let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let model = reduce(FeatureExtractor::load(dir)?, precision)?;
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
    };
    let elapsed = started.elapsed();
    if json {
        print_json(&rows)?;
    } else {
        for row in &rows {
            outln!("{}", predict_line(row))?;
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
    template: Option<&str>,
    json: bool,
) -> Result<()> {
    use crate::inference::clip::{RESEARCH_USE, ZeroShot};
    use crate::inference::image::Rgb;
    if images.is_empty() {
        return Err(eyre!(
            "zero-shot image classification needs --image PATH (repeatable)"
        ));
    }
    let labels = crate::platform::call::labels(labels.as_deref().unwrap_or_default())
        .map_err(|e| eyre!("--labels: {e}"))?;
    let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    let model = ZeroShot::load(dir, text_tower, Some(hf_cache))?;
    let template = template.unwrap_or(model.default_template());
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
        outln!("({RESEARCH_USE})")?;
        for r in &rows {
            match r.get("error") {
                Some(e) => outln!(
                    "{}: ✖ {}",
                    r["image"].as_str().unwrap_or(""),
                    e.as_str().unwrap_or("")
                )?,
                None => {
                    let parts = label_scores(&r["labels"], &r["scores"]);
                    outln!("{}: {}", r["image"].as_str().unwrap_or(""), parts)?;
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
