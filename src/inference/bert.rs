//! A BERT encoder (candle's `BertModel`, exact-erf GELU) and batching of encodings into padded
//! tensors.

use std::path::Path;

use candle_core::{Device, Tensor};
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::Encoding;

use super::{InferenceError, Result, load_tensors, read_json, var_builder, weights_file};

pub struct Bert {
    pub model: BertModel,
    pub config: Config,
    /// The raw config.json, for fields candle's Config does not keep (id2label).
    pub raw_config: serde_json::Value,
    /// All tensors of the checkpoint, for heads loaded beside the encoder.
    pub vb: candle_nn::VarBuilder<'static>,
}

/// A batch padded to its longest sequence.
pub struct Batch {
    pub ids: Tensor,
    pub type_ids: Tensor,
    pub mask: Tensor,
    /// Real (unpadded) length of each row.
    pub lengths: Vec<usize>,
}

impl Bert {
    pub fn load(dir: &Path) -> Result<Bert> {
        let config_path = dir.join("config.json");
        let raw_config = read_json(&config_path)?;
        let config: Config =
            serde_json::from_value(raw_config.clone()).map_err(|e| InferenceError::BadFile {
                path: config_path.clone(),
                detail: format!("not a BERT config: {e}"),
            })?;
        let weights = weights_file(dir)?;
        let vb = var_builder(load_tensors(&weights)?);
        let model = BertModel::load(vb.clone(), &config).map_err(|e| InferenceError::Weights {
            path: weights.clone(),
            detail: format!("these are not the weights of a BERT with this config.json: {e}"),
        })?;
        Ok(Bert {
            model,
            config,
            raw_config,
            vb,
        })
    }

    /// Last hidden states, `[batch, longest, hidden]`.
    pub fn forward(&self, batch: &Batch) -> Result<Tensor> {
        Ok(self
            .model
            .forward(&batch.ids, &batch.type_ids, Some(&batch.mask))?)
    }
}

/// Pads encodings to the longest one (pad id 0, mask 0) into `[batch, longest]` tensors.
pub fn batch(encodings: &[Encoding]) -> Result<Batch> {
    let longest = encodings.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
    let n = encodings.len();
    let mut ids = vec![0u32; n * longest];
    let mut type_ids = vec![0u32; n * longest];
    let mut mask = vec![0u32; n * longest];
    let mut lengths = Vec::with_capacity(n);
    for (row, e) in encodings.iter().enumerate() {
        let len = e.len();
        lengths.push(len);
        let base = row * longest;
        ids[base..base + len].copy_from_slice(e.get_ids());
        type_ids[base..base + len].copy_from_slice(e.get_type_ids());
        mask[base..base + len].copy_from_slice(e.get_attention_mask());
    }
    let dev = Device::Cpu;
    Ok(Batch {
        ids: Tensor::from_vec(ids, (n, longest), &dev)?,
        type_ids: Tensor::from_vec(type_ids, (n, longest), &dev)?,
        mask: Tensor::from_vec(mask, (n, longest), &dev)?,
        lengths,
    })
}
