//! DistilBERT (`DistilBertModel`, `DistilBertForTokenClassification`) on the BERT encoder's fused
//! kernels. The block is BERT's post-norm block under other names (`attention.{q,k,v,out}_lin`,
//! `sa_layer_norm`, `ffn.lin1`/`lin2`, `output_layer_norm`); the embeddings have no token types;
//! there is no pooler.

use std::path::Path;

use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::bert::{BertModel, Config, Layer, LayerNorm, Linear};
use super::{InferenceError, Result};

/// Whether a config.json describes a DistilBERT.
pub fn is_distilbert(raw: &serde_json::Value) -> bool {
    raw.get("model_type").and_then(|v| v.as_str()) == Some("distilbert")
}

/// The fields of a DistilBERT config.json that the forward pass needs, under DistilBERT's names.
#[derive(Debug, Deserialize)]
struct DistilConfig {
    vocab_size: usize,
    dim: usize,
    n_layers: usize,
    n_heads: usize,
    hidden_dim: usize,
    #[serde(default = "default_activation")]
    activation: String,
    #[serde(default = "default_positions")]
    max_position_embeddings: usize,
}

fn default_activation() -> String {
    "gelu".into()
}
fn default_positions() -> usize {
    512
}

/// DistilBERT's layer norms use eps 1e-12, fixed in transformers' code rather than the config.
const LAYER_NORM_EPS: f64 = 1e-12;

/// A DistilBERT config as the BERT [`Config`] the encoder runs on (no token types).
pub fn parse_config(raw: &serde_json::Value, path: &Path) -> Result<Config> {
    let c: DistilConfig =
        serde_json::from_value(raw.clone()).map_err(|e| InferenceError::BadFile {
            path: path.to_path_buf(),
            detail: format!("not a DistilBERT config: {e}"),
        })?;
    let config = Config {
        vocab_size: c.vocab_size,
        hidden_size: c.dim,
        num_hidden_layers: c.n_layers,
        num_attention_heads: c.n_heads,
        intermediate_size: c.hidden_dim,
        hidden_act: c.activation,
        max_position_embeddings: c.max_position_embeddings,
        type_vocab_size: 0,
        layer_norm_eps: LAYER_NORM_EPS,
        position_embedding_type: None,
    };
    config.check().map_err(InferenceError::Unsupported)?;
    Ok(config)
}

/// Loads from a VarBuilder rooted at the DistilBERT (`embeddings.*`, `transformer.layer.N.*`).
pub(super) fn load(vb: VarBuilder, c: &Config) -> candle_core::Result<BertModel> {
    let h = c.hidden_size;
    let eps = c.layer_norm_eps;
    let e = vb.pp("embeddings");
    let mut layers = Vec::with_capacity(c.num_hidden_layers);
    for i in 0..c.num_hidden_layers {
        let l = vb.pp(format!("transformer.layer.{i}"));
        let a = l.pp("attention");
        let get = |name: &str| -> candle_core::Result<(Tensor, Tensor)> {
            let p = a.pp(name);
            Ok((p.get((h, h), "weight")?, p.get(h, "bias")?))
        };
        let (qw, qb) = get("q_lin")?;
        let (kw, kb) = get("k_lin")?;
        let (vw, vbias) = get("v_lin")?;
        layers.push(Layer {
            qkv: Linear::from(&[qw, kw, vw], &[qb, kb, vbias])?,
            attn_out: Linear::load(&a.pp("out_lin"), h, h)?,
            attn_norm: LayerNorm::load(&l.pp("sa_layer_norm"), h, eps)?,
            inter: Linear::load(&l.pp("ffn.lin1"), h, c.intermediate_size)?,
            out: Linear::load(&l.pp("ffn.lin2"), c.intermediate_size, h)?,
            out_norm: LayerNorm::load(&l.pp("output_layer_norm"), h, eps)?,
        });
    }
    Ok(BertModel {
        word: e.pp("word_embeddings").get((c.vocab_size, h), "weight")?,
        position: e
            .pp("position_embeddings")
            .get((c.max_position_embeddings, h), "weight")?,
        token_type: None,
        emb_norm: LayerNorm::load(&e.pp("LayerNorm"), h, eps)?,
        layers,
        heads: c.num_attention_heads,
        hidden: h,
    })
}
