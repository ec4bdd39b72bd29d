//! Token classification with a BERT checkpoint that has a head (`bert.*` + `classifier.*`,
//! `id2label` in config.json), grouped like Hugging Face's pipeline with
//! `aggregation_strategy="simple"`; and feature extraction for checkpoints without one.

use std::path::Path;

use candle_core::Tensor;
use candle_nn::Module;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use super::bert::{Bert, batch};
use super::{InferenceError, Result, tokenizer};

pub use crate::domain::entities::{EntityGroup, TokenPrediction, tokens_to_string};

pub struct TokenClassifier {
    pub bert: Bert,
    pub tokenizer: Tokenizer,
    pub classifier: candle_nn::Linear,
    pub labels: Vec<String>,
}

fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = row.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Every non-special token's best label (with "O" kept), in order.
pub struct Tagged {
    pub tokens: Vec<TokenPrediction>,
    /// Raw logits of every position, special tokens included.
    pub logits: Vec<Vec<f32>>,
}

impl TokenClassifier {
    pub fn load(dir: &Path) -> Result<TokenClassifier> {
        let bert = Bert::load(dir)?;
        let id2label = bert
            .raw_config
            .get("id2label")
            .and_then(|v| v.as_object())
            .ok_or_else(|| InferenceError::Unsupported(
                "config.json has no id2label: this checkpoint has no token-classification head. \
                 Entity extraction needs a fine-tuned NER checkpoint; use feature extraction instead"
                    .into(),
            ))?;
        let mut labels = vec![String::new(); id2label.len()];
        for (k, v) in id2label {
            let i: usize = k.parse().map_err(|_| InferenceError::BadFile {
                path: dir.join("config.json"),
                detail: format!("id2label key `{k}` is not a number"),
            })?;
            let slot = labels.get_mut(i).ok_or_else(|| InferenceError::BadFile {
                path: dir.join("config.json"),
                detail: format!("id2label has a gap: {i} with {} labels", id2label.len()),
            })?;
            *slot = v.as_str().unwrap_or_default().to_string();
        }
        if !bert.vb.contains_tensor("classifier.weight") {
            return Err(InferenceError::Unsupported(
                "the weights have no classifier.*: the head is missing, so labels would be random noise. \
                 Entity extraction needs a fine-tuned NER checkpoint"
                    .into(),
            ));
        }
        let classifier = candle_nn::linear(
            bert.config.hidden_size,
            labels.len(),
            bert.vb.pp("classifier"),
        )
        .map_err(|e| InferenceError::Weights {
            path: dir.to_path_buf(),
            detail: format!("classifier head: {e}"),
        })?;
        let max_len = bert.config.max_position_embeddings.min(512);
        let tokenizer = tokenizer::load(dir, max_len)?;
        Ok(TokenClassifier {
            bert,
            tokenizer,
            classifier,
            labels,
        })
    }

    /// Per-token predictions for each text.
    pub fn tag(&self, texts: &[&str]) -> Result<Vec<Tagged>> {
        let encodings = tokenizer::encode_all(&self.tokenizer, texts)?;
        let mut out = Vec::with_capacity(texts.len());
        for e in &encodings {
            let b = batch(std::slice::from_ref(e))?;
            let hidden = self.bert.forward(&b)?;
            let logits: Tensor = self.classifier.forward(&hidden)?;
            let logits = logits.squeeze(0)?.to_vec2::<f32>()?;
            let special = e.get_special_tokens_mask();
            let mut tokens = Vec::new();
            for (i, row) in logits.iter().enumerate() {
                if special.get(i).copied().unwrap_or(0) == 1 {
                    continue;
                }
                let probs = softmax(row);
                let (best, score) = probs.iter().enumerate().fold((0, f32::MIN), |acc, (j, p)| {
                    if *p > acc.1 { (j, *p) } else { acc }
                });
                let (start, end) = e.get_offsets()[i];
                tokens.push(TokenPrediction {
                    entity: self.labels.get(best).cloned().unwrap_or_default(),
                    score,
                    index: i,
                    word: e.get_tokens()[i].clone(),
                    start,
                    end,
                });
            }
            out.push(Tagged { tokens, logits });
        }
        Ok(out)
    }
}

/// The pipeline's output without aggregation: every token not labelled `O`.
pub fn entities(tagged: &Tagged) -> Vec<TokenPrediction> {
    tagged
        .tokens
        .iter()
        .filter(|t| t.entity != "O")
        .cloned()
        .collect()
}

/// `aggregation_strategy="simple"` over every token (with `O`), the one grouping every face uses.
pub fn group_simple(tagged: &Tagged) -> Vec<EntityGroup> {
    crate::domain::entities::group_simple(&tagged.tokens)
}

/// Feature extraction for a BERT checkpoint without a head (BioBERT): CLS and mean vectors.
pub struct FeatureExtractor {
    pub bert: Bert,
    pub tokenizer: Tokenizer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Features {
    pub cls: Vec<f32>,
    pub mean: Vec<f32>,
}

impl FeatureExtractor {
    pub fn load(dir: &Path) -> Result<FeatureExtractor> {
        let bert = Bert::load(dir)?;
        let max_len = bert.config.max_position_embeddings.min(512);
        let tokenizer = tokenizer::load(dir, max_len)?;
        Ok(FeatureExtractor { bert, tokenizer })
    }

    pub fn extract(&self, texts: &[&str]) -> Result<Vec<Features>> {
        let encodings = tokenizer::encode_all(&self.tokenizer, texts)?;
        let mut out = Vec::new();
        for e in &encodings {
            let b = batch(std::slice::from_ref(e))?;
            let hidden = self.bert.forward(&b)?.squeeze(0)?.to_vec2::<f32>()?;
            let h = self.bert.config.hidden_size;
            let n = hidden.len().max(1) as f32;
            let mean = (0..h)
                .map(|j| hidden.iter().map(|t| t[j]).sum::<f32>() / n)
                .collect();
            out.push(Features {
                cls: hidden.first().cloned().unwrap_or_default(),
                mean,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(entity: &str, word: &str, start: usize, end: usize, score: f32) -> TokenPrediction {
        TokenPrediction {
            entity: entity.into(),
            score,
            index: 0,
            word: word.into(),
            start,
            end,
        }
    }

    #[test]
    fn simple_grouping_like_transformers() {
        let tagged = Tagged {
            tokens: vec![
                t("O", "was", 0, 3, 0.9),
                t("B-DRUG", "Am", 4, 6, 0.8),
                t("I-DRUG", "##ox", 6, 8, 0.6),
                t("B-DRUG", "ibu", 9, 12, 0.5),
                t("I-DISEASE", "otitis", 13, 19, 0.4),
                t("I-DISEASE", "media", 20, 25, 0.2),
            ],
            logits: vec![],
        };
        let g = group_simple(&tagged);
        assert_eq!(g.len(), 3);
        assert_eq!(
            (g[0].entity_group.as_str(), g[0].word.as_str()),
            ("DRUG", "Amox")
        );
        assert!((g[0].score - 0.7).abs() < 1e-6);
        assert_eq!((g[1].start, g[1].end), (9, 12));
        assert_eq!(g[2].word, "otitis media");
        assert_eq!(tokens_to_string(&["##y", "."]), "##y.");
        assert_eq!(tokens_to_string(&["don", "'", "t", ",", "ok"]), "don't, ok");
        assert_eq!(entities(&tagged).len(), 5);
    }
}
