//! Local inference with candle on the CPU: sentence embeddings (sentence-transformers layout),
//! BERT and DistilBERT token classification with Hugging Face's "simple" grouping, feature
//! extraction for checkpoints without a head, and CLIP zero-shot image classification (open_clip
//! and transformers layouts). Models are read from directories (a Hub snapshot or any copy).
//!
//! No terminal crates here; CPU work runs on the caller's thread (the runtime puts it on its own).

pub mod bert;
pub mod calibrate;
pub mod clip;
pub mod distilbert;
pub mod hf_clip;
pub mod image;
pub mod quant;
pub mod runtime;
pub mod sentence;
pub mod token_classification;
pub mod tokenizer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error("{path}: missing; {hint}")]
    Missing { path: PathBuf, hint: String },
    #[error("{path}: {detail}")]
    BadFile { path: PathBuf, detail: String },
    #[error("the weights in {path} cannot be used: {detail}")]
    Weights { path: PathBuf, detail: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("model computation failed: {0}")]
    Compute(String),
    #[error("{0}")]
    Unsupported(String),
}

impl From<candle_core::Error> for InferenceError {
    fn from(e: candle_core::Error) -> Self {
        InferenceError::Compute(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, InferenceError>;

/// What a model directory can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    SentenceSimilarity,
    TokenClassification,
    FeatureExtraction,
    ZeroShotImageClassification,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::SentenceSimilarity => "sentence-similarity",
            Task::TokenClassification => "token-classification",
            Task::FeatureExtraction => "feature-extraction",
            Task::ZeroShotImageClassification => "zero-shot-image-classification",
        }
    }

    /// The task a directory's files say it serves.
    pub fn detect(dir: &Path) -> Result<Task> {
        if dir.join("open_clip_config.json").exists() {
            return Ok(Task::ZeroShotImageClassification);
        }
        if dir.join("modules.json").exists() {
            return Ok(Task::SentenceSimilarity);
        }
        let config = read_json(&dir.join("config.json"))?;
        if config.get("model_type").and_then(|t| t.as_str()) == Some("clip") {
            return Ok(Task::ZeroShotImageClassification);
        }
        let has_labels = config.get("id2label").is_some_and(|v| v.is_object());
        let token_head = config
            .get("architectures")
            .and_then(|a| a.as_array())
            .is_some_and(|a| {
                a.iter()
                    .filter_map(|s| s.as_str())
                    .any(|s| s.ends_with("ForTokenClassification"))
            });
        Ok(if has_labels && token_head {
            Task::TokenClassification
        } else {
            Task::FeatureExtraction
        })
    }
}

/// For the command line.
pub fn parse_task(s: &str) -> std::result::Result<Task, String> {
    s.parse()
}

impl std::str::FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "sentence-similarity" | "sentence-transformers" | "embeddings" => {
                Ok(Task::SentenceSimilarity)
            }
            "token-classification" | "ner" => Ok(Task::TokenClassification),
            "feature-extraction" => Ok(Task::FeatureExtraction),
            "zero-shot-image-classification" => Ok(Task::ZeroShotImageClassification),
            other => Err(format!(
                "unknown task `{other}`: sentence-similarity, token-classification, feature-extraction or zero-shot-image-classification"
            )),
        }
    }
}

pub fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        crate::paths::read_user_text(path, 64 * 1024 * 1024).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => InferenceError::Missing {
                path: path.to_path_buf(),
                hint: "is this a model directory (a Hub snapshot)?".into(),
            },
            _ => InferenceError::BadFile {
                path: path.to_path_buf(),
                detail: e.to_string(),
            },
        })?;
    serde_json::from_str(&text).map_err(|e| InferenceError::BadFile {
        path: path.to_path_buf(),
        detail: format!("not valid JSON: {e}"),
    })
}

/// The weights file of a directory: `model.safetensors` first, else `pytorch_model.bin`.
pub fn weights_file(dir: &Path) -> Result<PathBuf> {
    for name in ["model.safetensors", "pytorch_model.bin"] {
        let p = dir.join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(InferenceError::Missing {
        path: dir.join("model.safetensors"),
        hint: "no model.safetensors or pytorch_model.bin in the directory".into(),
    })
}

/// All tensors of a safetensors file or a (zip-format) PyTorch pickle, as f32 on the CPU.
pub fn load_tensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    let bad = |detail: String| InferenceError::Weights {
        path: path.to_path_buf(),
        detail,
    };
    let is_pickle = path
        .extension()
        .is_some_and(|e| e == "bin" || e == "pt" || e == "pth");
    let tensors: HashMap<String, Tensor> = if is_pickle {
        candle_core::pickle::read_all(path)
            .map_err(|e| {
                bad(format!(
                    "not a readable PyTorch zip checkpoint ({e}); a legacy (non-zip) pickle must be converted to safetensors first"
                ))
            })?
            .into_iter()
            .collect()
    } else {
        candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| {
            bad(format!(
                "not a valid safetensors file ({e}); it may be truncated: download it again"
            ))
        })?
    };
    if tensors.is_empty() {
        return Err(bad("it holds no tensors".into()));
    }
    tensors
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?)))
        .collect()
}

pub fn var_builder(tensors: HashMap<String, Tensor>) -> VarBuilder<'static> {
    VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu)
}

/// Dot product of two equal-length vectors (cosine similarity of normalised embeddings).
/// Sums in eight independent lanes, so the loop vectorises.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}
