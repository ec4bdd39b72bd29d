//! Sentence embeddings in the sentence-transformers layout: `modules.json` → Transformer, Pooling
//! (`1_Pooling/config.json`), Normalize. Truncation at `sentence_bert_config.json`'s
//! `max_seq_length`, batches sorted by length and packed without padding (sentence-transformers pads
//! to the longest; the results are the same); mean pooling counts [CLS] and [SEP].

use std::path::Path;

use tokenizers::Tokenizer;

use super::bert::Bert;
use super::{InferenceError, Result, read_json, tokenizer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pooling {
    pub cls: bool,
    pub max: bool,
    pub mean: bool,
    pub mean_sqrt_len: bool,
}

pub struct SentenceEncoder {
    pub bert: Bert,
    pub tokenizer: Tokenizer,
    pub pooling: Pooling,
    pub normalize: bool,
    pub max_seq_length: usize,
}

impl SentenceEncoder {
    pub fn load(dir: &Path) -> Result<SentenceEncoder> {
        let modules = read_json(&dir.join("modules.json"))?;
        let modules = modules.as_array().cloned().unwrap_or_default();
        let kind = |m: &serde_json::Value| {
            m.get("type")
                .and_then(|t| t.as_str())
                .unwrap_or("")
                .rsplit('.')
                .next()
                .unwrap_or("")
                .to_string()
        };
        let path_of = |m: &serde_json::Value| {
            m.get("path")
                .and_then(|p| p.as_str())
                .unwrap_or("")
                .to_string()
        };
        let transformer = modules.iter().find(|m| kind(m) == "Transformer");
        if transformer.is_some_and(|t| !path_of(t).is_empty()) {
            return Err(InferenceError::Unsupported(
                "the Transformer module lives in a subdirectory; only root-level transformers are supported".into(),
            ));
        }
        for m in &modules {
            let k = kind(m);
            if !matches!(k.as_str(), "Transformer" | "Pooling" | "Normalize") {
                return Err(InferenceError::Unsupported(format!(
                    "sentence-transformers module `{k}` is not supported (Transformer, Pooling, Normalize are)"
                )));
            }
        }
        let pooling = match modules.iter().find(|m| kind(m) == "Pooling") {
            Some(m) => {
                let cfg = read_json(&dir.join(path_of(m)).join("config.json"))?;
                let flag = |k: &str| cfg.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
                Pooling {
                    cls: flag("pooling_mode_cls_token"),
                    max: flag("pooling_mode_max_tokens"),
                    mean: flag("pooling_mode_mean_tokens"),
                    mean_sqrt_len: flag("pooling_mode_mean_sqrt_len_tokens"),
                }
            }
            None => Pooling {
                cls: false,
                max: false,
                mean: true,
                mean_sqrt_len: false,
            },
        };
        let normalize = modules.iter().any(|m| kind(m) == "Normalize");
        let bert = Bert::load(dir)?;
        let max_seq_length = match read_json(&dir.join("sentence_bert_config.json")) {
            Ok(v) => v
                .get("max_seq_length")
                .and_then(|m| m.as_u64())
                .map(|m| m as usize),
            Err(InferenceError::Missing { .. }) => None,
            Err(e) => return Err(e),
        }
        .unwrap_or(512)
        .min(bert.config.max_position_embeddings);
        let tokenizer = tokenizer::load(dir, max_seq_length)?;
        Ok(SentenceEncoder {
            bert,
            tokenizer,
            pooling,
            normalize,
            max_seq_length,
        })
    }

    /// Repacks the encoder's linear layers for `precision` (see [`super::quant`]).
    pub fn set_precision(&mut self, precision: super::quant::Precision) -> Result<()> {
        Ok(self.bert.model.set_precision(precision)?)
    }

    pub fn dim(&self) -> usize {
        let h = self.bert.config.hidden_size;
        let p = self.pooling;
        h * [p.cls, p.max, p.mean, p.mean_sqrt_len]
            .iter()
            .filter(|x| **x)
            .count()
            .max(1)
    }

    /// Token ids of each text as the model sees them.
    pub fn token_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        Ok(tokenizer::encode_all(&self.tokenizer, texts)?
            .iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// Embeds texts in batches of `batch_size`, grouped by length; results in input order.
    pub fn encode(&self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        let encodings = tokenizer::encode_all(&self.tokenizer, texts)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].len()));
        let mut out = vec![Vec::new(); texts.len()];
        let h = self.bert.config.hidden_size;
        for chunk in order.chunks(batch_size.max(1)) {
            let lengths: Vec<usize> = chunk.iter().map(|&i| encodings[i].len()).collect();
            let ids: Vec<u32> = chunk
                .iter()
                .flat_map(|&i| encodings[i].get_ids().iter().copied())
                .collect();
            let types: Vec<u32> = chunk
                .iter()
                .flat_map(|&i| encodings[i].get_type_ids().iter().copied())
                .collect();
            let hidden = self
                .bert
                .model
                .forward_packed(&ids, &types, &lengths)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let mut start = 0;
            for (&i, &len) in chunk.iter().zip(&lengths) {
                out[i] = self.pool(&hidden[start * h..(start + len) * h]);
                start += len;
            }
        }
        Ok(out)
    }

    /// Pools one sequence's hidden states (`[len, hidden]`, row after row).
    fn pool(&self, rows: &[f32]) -> Vec<f32> {
        let h = self.bert.config.hidden_size;
        let tokens: Vec<&[f32]> = rows.chunks_exact(h).collect();
        let n = tokens.len().max(1) as f32;
        let mut v = Vec::with_capacity(self.dim());
        if self.pooling.cls {
            v.extend_from_slice(tokens.first().copied().unwrap_or(&[]));
        }
        if self.pooling.max {
            v.extend((0..h).map(|j| {
                tokens
                    .iter()
                    .map(|t| t[j])
                    .fold(f32::NEG_INFINITY, f32::max)
            }));
        }
        let mut sum = vec![0f32; h];
        for t in &tokens {
            for (s, x) in sum.iter_mut().zip(t.iter()) {
                *s += x;
            }
        }
        if self.pooling.mean {
            v.extend(sum.iter().map(|s| s / n));
        }
        if self.pooling.mean_sqrt_len {
            v.extend(sum.iter().map(|s| s / n.sqrt()));
        }
        if self.normalize {
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }
}
