//! A BERT encoder on candle tensors, written for CPU throughput: hidden states stay 2-D
//! (`[tokens, hidden]`) so every linear layer is one large matrix product, Q, K and V come from one
//! fused product, softmax and layer norm are candle's fused kernels, and GELU is the exact (erf)
//! form computed with a vectorisable rational approximation on all cores.
//!
//! Weight names follow transformers (`embeddings.*`, `encoder.layer.N.*`, with or without a `bert.`
//! prefix); old checkpoints' `LayerNorm.gamma/beta` are read too.

use std::path::Path;

use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;
use serde::Deserialize;
use tokenizers::Encoding;

use super::{InferenceError, Result, load_tensors, read_json, var_builder, weights_file};

/// The fields of a transformers BERT config.json that the forward pass needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_types")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_positions() -> usize {
    512
}
fn default_types() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

impl Config {
    fn check(&self) -> std::result::Result<(), String> {
        if self.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act `{}` is not supported (exact GELU, `gelu`, is)",
                self.hidden_act
            ));
        }
        if self
            .position_embedding_type
            .as_deref()
            .is_some_and(|p| p != "absolute")
        {
            return Err("only absolute position embeddings are supported".into());
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err("hidden_size must be a multiple of num_attention_heads".into());
        }
        Ok(())
    }
}

/// `y = x Wᵀ + b` with Wᵀ stored contiguous (no bias when `b` is `None`).
pub(crate) struct Linear {
    wt: Tensor,
    b: Option<Tensor>,
}

impl Linear {
    pub(crate) fn load(vb: &VarBuilder, inp: usize, out: usize) -> candle_core::Result<Linear> {
        let w = vb.get((out, inp), "weight")?;
        let b = vb.get(out, "bias")?;
        Linear::from(&[w], &[b])
    }

    pub(crate) fn no_bias(vb: &VarBuilder, inp: usize, out: usize) -> candle_core::Result<Linear> {
        let w = vb.get((out, inp), "weight")?;
        Ok(Linear {
            wt: w.t()?.contiguous()?,
            b: None,
        })
    }

    /// Several linears with one input, fused into one product (Q, K, V).
    pub(crate) fn from(ws: &[Tensor], bs: &[Tensor]) -> candle_core::Result<Linear> {
        let w = Tensor::cat(ws, 0)?;
        Ok(Linear {
            wt: w.t()?.contiguous()?,
            b: Some(Tensor::cat(bs, 0)?),
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = x.matmul(&self.wt)?;
        match &self.b {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

pub(crate) struct LayerNorm {
    op: LayerNormOp,
}

/// Layer norm over the last axis, rows in parallel, sums in eight lanes so they vectorise
/// (candle's kernel sums one float at a time).
struct LayerNormOp {
    w: Vec<f32>,
    b: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    pub(crate) fn load(vb: &VarBuilder, size: usize, eps: f64) -> candle_core::Result<LayerNorm> {
        let (w, b) = match (vb.get(size, "weight"), vb.get(size, "bias")) {
            (Ok(w), Ok(b)) => (w, b),
            _ => (vb.get(size, "gamma")?, vb.get(size, "beta")?),
        };
        Ok(LayerNorm {
            op: LayerNormOp {
                w: w.to_vec1::<f32>()?,
                b: b.to_vec1::<f32>()?,
                eps: eps as f32,
            },
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.contiguous()?.apply_op1_no_bwd(&self.op)
    }
}

/// Sum of a slice in eight independent lanes.
#[inline]
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|&x| f(x)).sum();
    for c in chunks {
        for l in 0..8 {
            acc[l] += f(c[l]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

impl CustomOp1 for LayerNormOp {
    fn name(&self) -> &'static str {
        "layer-norm-lanes"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous_f32(storage, layout, "layer norm")?;
        let n = self.w.len();
        if n == 0 || src.len() % n != 0 {
            candle_core::bail!("layer norm: last axis is not {n}");
        }
        let mut out = vec![0f32; src.len()];
        out.par_chunks_mut(n)
            .zip(src.par_chunks(n))
            .for_each(|(o, x)| {
                let mean = lane_sum(x, |v| v) / n as f32;
                let var = lane_sum(x, |v| (v - mean) * (v - mean)) / n as f32;
                let inv = 1.0 / (var + self.eps).sqrt();
                for (((y, &v), &w), &b) in o.iter_mut().zip(x).zip(&self.w).zip(&self.b) {
                    *y = (v - mean) * inv * w + b;
                }
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// Multi-head self-attention over `[b * t, h]` rows: one fused QKV product, then a kernel per
/// (sequence, head) pair, all pairs in parallel: scaled dot products over the sequence's real tokens
/// only (padding keys would get zero weight anyway), softmax, weighted sum of values. `lengths`
/// gives each sequence's real length (`None`: all `t`). Rows of padding positions come back zero.
/// Returns `[b * t, h]` before the output projection.
pub(crate) fn attention(
    x: &Tensor,
    qkv: &Linear,
    (b, t, heads, d): (usize, usize, usize, usize),
    lengths: Option<&[usize]>,
) -> candle_core::Result<Tensor> {
    let h = heads * d;
    let data = qkv.forward(x)?.flatten_all()?.to_vec1::<f32>()?;
    let scale = 1.0 / (d as f32).sqrt();
    let pairs: Vec<Vec<f32>> = (0..b * heads)
        .into_par_iter()
        .map(|p| {
            let (bi, hi) = (p / heads, p % heads);
            let len = lengths.and_then(|l| l.get(bi).copied()).unwrap_or(t).min(t);
            let row = |i: usize, part: usize| {
                let o = (bi * t + i) * 3 * h + part * h + hi * d;
                &data[o..o + d]
            };
            let mut ctx = vec![0f32; len * d];
            let mut scores = vec![0f32; len];
            for i in 0..len {
                let q = row(i, 0);
                let mut max = f32::NEG_INFINITY;
                for (j, s) in scores.iter_mut().enumerate() {
                    *s = dot(q, row(j, 1)) * scale;
                    max = max.max(*s);
                }
                let mut sum = 0.0;
                for s in scores.iter_mut() {
                    *s = exp(*s - max);
                    sum += *s;
                }
                let out = &mut ctx[i * d..(i + 1) * d];
                for (j, s) in scores.iter().enumerate() {
                    let w = s / sum;
                    for (o, v) in out.iter_mut().zip(row(j, 2)) {
                        *o += w * v;
                    }
                }
            }
            ctx
        })
        .collect();
    let mut out = vec![0f32; b * t * h];
    for (p, ctx) in pairs.iter().enumerate() {
        let (bi, hi) = (p / heads, p % heads);
        for (i, c) in ctx.chunks_exact(d).enumerate() {
            let o = (bi * t + i) * h + hi * d;
            out[o..o + d].copy_from_slice(c);
        }
    }
    Tensor::from_vec(out, (b * t, h), &Device::Cpu)
}

/// Dot product with eight independent sums, so it vectorises.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
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

/// exp(x) for f32 (Cephes' range reduction and polynomial, ~1e-7 relative), branch-free.
#[inline]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest without a library call: the 1.5·2²³ trick.
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// Exact GELU on a tensor.
pub(crate) fn gelu(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1_no_bwd(&GeluErf)
}

struct Layer {
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    inter: Linear,
    out: Linear,
    out_norm: LayerNorm,
}

/// The encoder.
pub struct BertModel {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
}

impl BertModel {
    /// Loads from a VarBuilder rooted at the BERT (`embeddings.*`, `encoder.*`).
    pub fn load(vb: VarBuilder, c: &Config) -> candle_core::Result<BertModel> {
        let h = c.hidden_size;
        let e = vb.pp("embeddings");
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let s = l.pp("attention.self");
            let get = |name: &str| -> candle_core::Result<(Tensor, Tensor)> {
                let p = s.pp(name);
                Ok((p.get((h, h), "weight")?, p.get(h, "bias")?))
            };
            let (qw, qb) = get("query")?;
            let (kw, kb) = get("key")?;
            let (vw, vbias) = get("value")?;
            layers.push(Layer {
                qkv: Linear::from(&[qw, kw, vw], &[qb, kb, vbias])?,
                attn_out: Linear::load(&l.pp("attention.output.dense"), h, h)?,
                attn_norm: LayerNorm::load(
                    &l.pp("attention.output.LayerNorm"),
                    h,
                    c.layer_norm_eps,
                )?,
                inter: Linear::load(&l.pp("intermediate.dense"), h, c.intermediate_size)?,
                out: Linear::load(&l.pp("output.dense"), c.intermediate_size, h)?,
                out_norm: LayerNorm::load(&l.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
            });
        }
        Ok(BertModel {
            word: e.pp("word_embeddings").get((c.vocab_size, h), "weight")?,
            position: e
                .pp("position_embeddings")
                .get((c.max_position_embeddings, h), "weight")?,
            token_type: e
                .pp("token_type_embeddings")
                .get((c.type_vocab_size, h), "weight")?,
            emb_norm: LayerNorm::load(&e.pp("LayerNorm"), h, c.layer_norm_eps)?,
            layers,
            heads: c.num_attention_heads,
            hidden: h,
        })
    }

    /// Last hidden states `[batch, seq, hidden]` for a padded batch.
    pub fn forward(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        let (b, t) = batch.ids.dims2()?;
        let h = self.hidden;
        let heads = self.heads;
        let d = h / heads;
        let ids = batch.ids.flatten_all()?;
        let types = batch.type_ids.flatten_all()?;
        let positions = Tensor::arange(0u32, t as u32, &Device::Cpu)?
            .unsqueeze(0)?
            .broadcast_as((b, t))?
            .flatten_all()?;
        let x = (self.word.index_select(&ids, 0)? + self.position.index_select(&positions, 0)?)?
            + self.token_type.index_select(&types, 0)?;
        let mut x = self.emb_norm.forward(&x?)?;
        for l in &self.layers {
            let ctx = attention(&x, &l.qkv, (b, t, heads, d), Some(&batch.lengths))?;
            let a = l.attn_norm.forward(&(l.attn_out.forward(&ctx)? + &x)?)?;
            let inter = gelu(&l.inter.forward(&a)?)?;
            x = l.out_norm.forward(&(l.out.forward(&inter)? + &a)?)?;
        }
        x.reshape((b, t, h))
    }
}

/// erf(x) for f32 by a rational approximation on [-4, 4] (the one Eigen and XLA use), within a few
/// ulp of the exact value; branch-free so loops over it vectorise.
#[inline]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_6e-3;
    p = p * x2 + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329e-3;
    q = q * x2 + -1.426_473_9e-2;
    p / q
}

/// The f32 values of a contiguous CPU tensor, for the custom kernels.
fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: f32 only");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: contiguous input only");
    };
    Ok(&data[start..end])
}

/// Exact GELU, `0.5 x (1 + erf(x / √2))`, on all cores.
struct GeluErf;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf-fast"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous_f32(storage, layout, "gelu")?;
        let mut out = vec![0f32; src.len()];
        out.par_chunks_mut(16 * 1024)
            .zip(src.par_chunks(16 * 1024))
            .for_each(|(o, s)| {
                for (y, &x) in o.iter_mut().zip(s) {
                    *y = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
                }
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

pub struct Bert {
    pub model: BertModel,
    pub config: Config,
    /// The raw config.json, for fields the forward pass does not need (id2label).
    pub raw_config: serde_json::Value,
    /// All tensors of the checkpoint, for heads loaded beside the encoder.
    pub vb: VarBuilder<'static>,
}

/// A batch padded to its longest sequence.
pub struct Batch {
    pub ids: Tensor,
    pub type_ids: Tensor,
    /// Real (unpadded) length of each row.
    pub lengths: Vec<usize>,
}

/// Parses a BERT config, checking what the forward pass supports.
pub fn parse_config(raw: &serde_json::Value, path: &Path) -> Result<Config> {
    let config: Config =
        serde_json::from_value(raw.clone()).map_err(|e| InferenceError::BadFile {
            path: path.to_path_buf(),
            detail: format!("not a BERT config: {e}"),
        })?;
    config.check().map_err(InferenceError::Unsupported)?;
    Ok(config)
}

impl Bert {
    pub fn load(dir: &Path) -> Result<Bert> {
        let config_path = dir.join("config.json");
        let raw_config = read_json(&config_path)?;
        let config = parse_config(&raw_config, &config_path)?;
        let weights = weights_file(dir)?;
        let vb = var_builder(load_tensors(&weights)?);
        let root = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb.clone()
        };
        let model = BertModel::load(root, &config).map_err(|e| InferenceError::Weights {
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
        Ok(self.model.forward(batch)?)
    }
}

/// Pads encodings to the longest one (pad id 0) into `[batch, longest]` tensors; attention uses
/// the real lengths, so padding needs no mask.
pub fn batch(encodings: &[Encoding]) -> Result<Batch> {
    let longest = encodings.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
    let n = encodings.len();
    let mut ids = vec![0u32; n * longest];
    let mut type_ids = vec![0u32; n * longest];
    let mut lengths = Vec::with_capacity(n);
    for (row, e) in encodings.iter().enumerate() {
        let len = e.len();
        lengths.push(len);
        let base = row * longest;
        ids[base..base + len].copy_from_slice(e.get_ids());
        type_ids[base..base + len].copy_from_slice(e.get_type_ids());
    }
    let dev = Device::Cpu;
    Ok(Batch {
        ids: Tensor::from_vec(ids, (n, longest), &dev)?,
        type_ids: Tensor::from_vec(type_ids, (n, longest), &dev)?,
        lengths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_within_float_precision() {
        let mut worst = 0f64;
        let mut x = -80.0f32;
        while x <= 80.0 {
            let exact = f64::from(x).exp();
            let rel = ((f64::from(exp(x)) - exact) / exact).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "max relative error {worst}");
        assert!(exp(-1e9) < 1e-37);
    }

    #[test]
    fn fast_erf_is_within_float_precision() {
        let mut worst = 0f64;
        let mut x = -6.0f64;
        while x <= 6.0 {
            let exact = libm_erf(x);
            let got = f64::from(erf(x as f32));
            worst = worst.max((exact - got).abs());
            x += 0.001;
        }
        assert!(worst < 5e-7, "max error {worst}");
    }

    fn libm_erf(x: f64) -> f64 {
        libm::erf(x)
    }
}
