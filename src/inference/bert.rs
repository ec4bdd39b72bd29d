//! A BERT encoder on candle tensors, written for CPU throughput: hidden states stay 2-D
//! (`[tokens, hidden]`) so every linear layer is one large matrix product, Q, K and V come from one
//! fused product, softmax and layer norm are candle's fused kernels, and GELU is the exact (erf)
//! form computed with a vectorisable rational approximation on all cores.
//!
//! Weight names follow transformers (`embeddings.*`, `encoder.layer.N.*`, with or without a `bert.`
//! prefix); old checkpoints' `LayerNorm.gamma/beta` are read too.

use std::path::Path;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Device, Layout, Shape, Tensor};
use candle_nn::VarBuilder;
use pulp::{Simd, WithSimd};
use rayon::prelude::*;
use serde::Deserialize;
use tokenizers::Encoding;

use super::quant::{self, Activations, FloatWeights, Int8Weights, Precision};
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
    pub(super) fn check(&self) -> std::result::Result<(), String> {
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

/// Runs a kernel compiled for the best vector instructions this CPU has (AVX-512, AVX2+FMA, or
/// baseline), chosen at run time: the kernels below are plain loops that the compiler vectorises
/// once it may use those instructions. Each kernel's body sits in an `#[inline(always)]`
/// `with_simd`, so it is compiled inside pulp's `#[target_feature]` function.
#[inline(always)]
fn simd<K: WithSimd>(kernel: K) -> K::Output {
    pulp::Arch::new().dispatch(kernel)
}

/// Rows handed to one parallel task by the row-wise kernels.
const ROWS_PER_TASK: usize = 8;

/// Below this many elements a row-wise kernel runs on the calling thread: waking the pool's
/// threads would cost more than the work.
const SERIAL_ELEMENTS: usize = 1 << 15;

/// Tokens per encoder pass (see [`BertModel::forward_packed`]).
const TOKENS_PER_PASS: usize = 512;

/// `y = x Wᵀ + b` with Wᵀ stored contiguous (no bias when `b` is empty), or with W packed for a
/// reduced-precision kernel (see [`super::quant`]).
pub(crate) struct Linear {
    w: Weights,
    b: Vec<f32>,
}

enum Weights {
    /// Wᵀ as a tensor, multiplied by candle's gemm.
    F32(Tensor),
    /// W packed for this module's own kernels.
    Int8(Int8Weights),
    Float(FloatWeights),
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
            w: Weights::F32(w.t()?.contiguous()?),
            b: Vec::new(),
        })
    }

    /// Several linears with one input, fused into one product (Q, K, V).
    pub(crate) fn from(ws: &[Tensor], bs: &[Tensor]) -> candle_core::Result<Linear> {
        let w = Tensor::cat(ws, 0)?;
        Ok(Linear {
            w: Weights::F32(w.t()?.contiguous()?),
            b: Tensor::cat(bs, 0)?.to_vec1::<f32>()?,
        })
    }

    /// Repacks the weights for `precision` (once, at load). fp32 weights are packed for the AVX2
    /// kernel where there is one; reduced precisions are packed from the f32 values, so a layer
    /// already reduced cannot change again.
    pub(crate) fn set_precision(&mut self, precision: Precision) -> candle_core::Result<()> {
        let (values, k, n) = match &self.w {
            Weights::F32(wt) => {
                let (k, n) = wt.dims2()?;
                (wt.flatten_all()?.to_vec1::<f32>()?, k, n)
            }
            Weights::Float(fw) => match fw.f32_values() {
                Some(v) => (v, fw.inputs(), fw.outputs()),
                None => candle_core::bail!("the weights are already reduced to bf16"),
            },
            Weights::Int8(_) => candle_core::bail!("the weights are already reduced to int8"),
        };
        self.w = match precision {
            Precision::Fp32 if quant::packs_f32() => {
                Weights::Float(FloatWeights::pack(&values, k, n, false))
            }
            Precision::Fp32 => Weights::F32(Tensor::from_vec(values, (k, n), &Device::Cpu)?),
            Precision::Int8 => Weights::Int8(Int8Weights::pack(&values, k, n)),
            Precision::Bf16 => Weights::Float(FloatWeights::pack(&values, k, n, true)),
        };
        Ok(())
    }

    /// How an int8 layer quantizes its input rows (None when the layer is not int8).
    pub(crate) fn int8_activations(&self) -> Option<Activations> {
        match &self.w {
            Weights::Int8(q) => Some(q.activations()),
            _ => None,
        }
    }

    pub(crate) fn set_int8_activations(&mut self, a: Activations) {
        if let Weights::Int8(q) = &mut self.w {
            // Refused only for Adaptive on a layer without 8-bit weights, which stays 12-bit;
            // `BertModel::int8_activations` then reports it.
            q.set_activations(a);
        }
    }

    /// `x Wᵀ` without the bias, for kernels that add it as they read.
    fn product(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let packed: &dyn Fn(&[f32], usize) -> Vec<f32> = match &self.w {
            Weights::F32(wt) => return x.matmul(wt),
            Weights::Int8(q) => &|v, m| q.product(v, m),
            Weights::Float(q) => &|v, m| q.product(v, m),
        };
        let (k, n) = match &self.w {
            Weights::Int8(q) => (q.inputs(), q.outputs()),
            Weights::Float(q) => (q.inputs(), q.outputs()),
            Weights::F32(wt) => wt.dims2()?,
        };
        let mut dims = x.dims().to_vec();
        let Some(last) = dims.last_mut().filter(|l| **l == k) else {
            candle_core::bail!("linear: input {:?} does not end in {k}", x.dims());
        };
        let m = x.elem_count() / (*last).max(1);
        *last = n;
        let y = packed(&x.flatten_all()?.to_vec1::<f32>()?, m);
        Tensor::from_vec(y, dims, x.device())
    }

    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.product(x)?;
        if self.b.is_empty() {
            return Ok(y);
        }
        y.contiguous()?.apply_op1_no_bwd(&BiasAct {
            bias: &self.b,
            gelu: false,
        })
    }

    /// `gelu(x Wᵀ + b)` in one pass over the product.
    fn forward_gelu(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.product(x)?.contiguous()?.apply_op1_no_bwd(&BiasAct {
            bias: &self.b,
            gelu: true,
        })
    }
}

/// Layer norm over the last axis, rows in parallel, sums in eight lanes so they vectorise.
pub(crate) struct LayerNorm {
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
            w: w.to_vec1::<f32>()?,
            b: b.to_vec1::<f32>()?,
            eps: eps as f32,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.contiguous()?.apply_op1_no_bwd(&AddNorm {
            norm: self,
            bias: &[],
        })
    }

    /// `norm(y + bias + residual)` in one pass (the post-norm BERT block's tail).
    fn add_forward(
        &self,
        y: &Tensor,
        bias: &[f32],
        residual: &Tensor,
    ) -> candle_core::Result<Tensor> {
        y.contiguous()?
            .apply_op2_no_bwd(&residual.contiguous()?, &AddNorm { norm: self, bias })
    }

    /// Normalises one row in place.
    #[inline(always)]
    fn row(&self, o: &mut [f32]) {
        let n = o.len() as f32;
        let mean = lane_sum(o, |v| v) / n;
        let var = lane_sum(o, |v| (v - mean) * (v - mean)) / n;
        let inv = 1.0 / (var + self.eps).sqrt();
        for ((y, &w), &b) in o.iter_mut().zip(&self.w).zip(&self.b) {
            *y = (*y - mean) * inv * w + b;
        }
    }
}

/// Kernel: `rows = norm(rows + bias + residual)`, row by row.
struct NormRows<'a> {
    norm: &'a LayerNorm,
    bias: &'a [f32],
    residual: Option<&'a [f32]>,
    rows: &'a mut [f32],
}

impl WithSimd for NormRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let n = self.norm.w.len();
        for (r, o) in self.rows.chunks_exact_mut(n).enumerate() {
            if let Some(res) = self.residual {
                for (y, &v) in o.iter_mut().zip(&res[r * n..(r + 1) * n]) {
                    *y += v;
                }
            }
            if !self.bias.is_empty() {
                for (y, &b) in o.iter_mut().zip(self.bias) {
                    *y += b;
                }
            }
            self.norm.row(o);
        }
    }
}

/// `norm(x + bias [+ residual])`, rows in parallel.
struct AddNorm<'a> {
    norm: &'a LayerNorm,
    bias: &'a [f32],
}

impl AddNorm<'_> {
    fn run(
        &self,
        x: &[f32],
        residual: Option<&[f32]>,
        shape: &Shape,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let n = self.norm.w.len();
        if n == 0 || !x.len().is_multiple_of(n) || residual.is_some_and(|r| r.len() != x.len()) {
            candle_core::bail!("layer norm: last axis is not {n}");
        }
        if !self.bias.is_empty() && self.bias.len() != n {
            candle_core::bail!("layer norm: bias is not {n} long");
        }
        let mut out = x.to_vec();
        let task = |(c, rows): (usize, &mut [f32])| {
            let base = c * ROWS_PER_TASK * n;
            simd(NormRows {
                norm: self.norm,
                bias: self.bias,
                residual: residual.map(|r| &r[base..base + rows.len()]),
                rows,
            })
        };
        if out.len() <= SERIAL_ELEMENTS {
            out.chunks_mut(n * ROWS_PER_TASK).enumerate().for_each(task);
        } else {
            out.par_chunks_mut(n * ROWS_PER_TASK)
                .enumerate()
                .for_each(task);
        }
        Ok((CpuStorage::F32(out), shape.clone()))
    }
}

impl CustomOp1 for AddNorm<'_> {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, "layer norm")?;
        self.run(x, None, layout.shape())
    }
}

impl CustomOp2 for AddNorm<'_> {
    fn name(&self) -> &'static str {
        "add-bias-residual-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, "layer norm")?;
        let r = contiguous_f32(s2, l2, "layer norm")?;
        self.run(x, Some(r), l1.shape())
    }
}

/// `x + bias` over rows, then exact GELU when asked.
struct BiasAct<'a> {
    bias: &'a [f32],
    gelu: bool,
}

impl CustomOp1 for BiasAct<'_> {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous_f32(storage, layout, "bias")?;
        let n = match layout.shape().dims().last() {
            Some(&n) if n > 0 => n,
            _ => candle_core::bail!("bias: empty last axis"),
        };
        if !self.bias.is_empty() && self.bias.len() != n {
            candle_core::bail!("bias: {} values for rows of {n}", self.bias.len());
        }
        let mut out = src.to_vec();
        let rows = (16 * 1024 / n).max(1);
        let task = |chunk: &mut [f32]| simd(BiasActRows { op: self, n, chunk });
        if out.len() <= SERIAL_ELEMENTS {
            out.chunks_mut(n * rows).for_each(task);
        } else {
            out.par_chunks_mut(n * rows).for_each(task);
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// Kernel: [`BiasAct`] over a chunk of rows.
struct BiasActRows<'a> {
    op: &'a BiasAct<'a>,
    n: usize,
    chunk: &'a mut [f32],
}

impl WithSimd for BiasActRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        for o in self.chunk.chunks_mut(self.n) {
            if !self.op.bias.is_empty() {
                for (y, &b) in o.iter_mut().zip(self.op.bias) {
                    *y += b;
                }
            }
            if self.op.gelu {
                for y in o.iter_mut() {
                    *y = 0.5 * *y * (1.0 + erf(*y * std::f32::consts::FRAC_1_SQRT_2));
                }
            }
        }
    }
}

/// Sum of a slice in eight independent lanes.
#[inline(always)]
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

/// Multi-head self-attention over `[rows, h]` hidden states holding several sequences: one fused
/// QKV product, then a kernel per (sequence, head) pair, all pairs in parallel: scaled dot
/// products, softmax, weighted sum of values. `spans` gives each sequence's first row and length;
/// rows outside every span (padding) come back zero. Returns `[rows, h]` before the output
/// projection. With `causal`, each token sees only itself and the tokens before it (CLIP's text
/// tower).
pub(crate) fn attention_spans(
    x: &Tensor,
    qkv: &Linear,
    (heads, d): (usize, usize),
    spans: &[(usize, usize)],
    causal: bool,
) -> candle_core::Result<Tensor> {
    qkv.product(x)?.contiguous()?.apply_op1_no_bwd(&Attention {
        bias: &qkv.b,
        heads,
        d,
        spans,
        causal,
    })
}

/// Attention over a padded `[b * t, h]` batch (`lengths`: each sequence's real length; `None`: all
/// `t`).
pub(crate) fn attention(
    x: &Tensor,
    qkv: &Linear,
    (b, t, heads, d): (usize, usize, usize, usize),
    lengths: Option<&[usize]>,
) -> candle_core::Result<Tensor> {
    let spans: Vec<(usize, usize)> = (0..b)
        .map(|i| {
            let len = lengths.and_then(|l| l.get(i).copied()).unwrap_or(t).min(t);
            (i * t, len)
        })
        .collect();
    attention_spans(x, qkv, (heads, d), &spans, false)
}

struct Attention<'a> {
    bias: &'a [f32],
    heads: usize,
    d: usize,
    spans: &'a [(usize, usize)],
    causal: bool,
}

impl CustomOp1 for Attention<'_> {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let data = contiguous_f32(storage, layout, "attention")?;
        let (heads, d) = (self.heads, self.d);
        let h = heads * d;
        let (rows, width) = layout.shape().dims2()?;
        if width != 3 * h || (!self.bias.is_empty() && self.bias.len() != 3 * h) {
            candle_core::bail!("attention: rows of {width} for {heads} heads of {d}");
        }
        if self.spans.iter().any(|&(s, l)| s + l > rows) {
            candle_core::bail!("attention: a sequence runs past the {rows} rows");
        }
        let pairs: Vec<Vec<f32>> = (0..self.spans.len() * heads)
            .into_par_iter()
            .map(|p| {
                let (start, len) = self.spans[p / heads];
                simd(AttnPair {
                    data,
                    bias: self.bias,
                    start,
                    len,
                    head: p % heads,
                    heads,
                    d,
                    causal: self.causal,
                })
            })
            .collect();
        let mut out = vec![0f32; rows * h];
        for (p, ctx) in pairs.iter().enumerate() {
            let (start, _) = self.spans[p / heads];
            let hi = p % heads;
            for (i, c) in ctx.chunks_exact(d).enumerate() {
                let o = (start + i) * h + hi * d;
                out[o..o + d].copy_from_slice(c);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, h))))
    }
}

/// Kernel: attention of one head over one sequence; returns its `[len, d]` context.
struct AttnPair<'a> {
    data: &'a [f32],
    bias: &'a [f32],
    start: usize,
    len: usize,
    head: usize,
    heads: usize,
    d: usize,
    /// Row i attends to columns 0..=i only.
    causal: bool,
}

impl AttnPair<'_> {
    /// Rows `part` (0 = Q, 1 = K, 2 = V) of this head, bias added, times `mul`, contiguous.
    #[inline(always)]
    fn gather(&self, part: usize, mul: f32) -> Vec<f32> {
        let (d, h) = (self.d, self.heads * self.d);
        let off = part * h + self.head * d;
        let mut m = vec![0f32; self.len * d];
        for (i, dst) in m.chunks_exact_mut(d).enumerate() {
            let src = &self.data[(self.start + i) * 3 * h + off..][..d];
            if self.bias.is_empty() {
                for (o, &v) in dst.iter_mut().zip(src) {
                    *o = v * mul;
                }
            } else {
                for ((o, &v), &b) in dst.iter_mut().zip(src).zip(&self.bias[off..off + d]) {
                    *o = (v + b) * mul;
                }
            }
        }
        m
    }
}

impl WithSimd for AttnPair<'_> {
    type Output = Vec<f32>;

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) -> Vec<f32> {
        let d = self.d;
        let q = self.gather(0, 1.0 / (d as f32).sqrt());
        let k = self.gather(1, 1.0);
        let v = self.gather(2, 1.0);
        // Padded to the tile shape: rows to a multiple of 4, columns to a multiple of 16 (the
        // padding is zero and is never read back).
        let len = self.len;
        let (m4, n16, d16) = (
            len.div_ceil(4) * 4,
            len.div_ceil(16) * 16,
            d.div_ceil(16) * 16,
        );
        let mut qp = q;
        qp.resize(m4 * d, 0.0);
        let mut kt = vec![0f32; d * n16];
        for (j, kj) in k.chunks_exact(d).enumerate() {
            for (c, &x) in kj.iter().enumerate() {
                kt[c * n16 + j] = x;
            }
        }
        let mut vp = vec![0f32; n16 * d16];
        for (dst, src) in vp.chunks_exact_mut(d16).zip(v.chunks_exact(d)) {
            dst[..d].copy_from_slice(src);
        }
        // Scores Q·Kᵀ, softmax over each real row's real columns, then P·V.
        let mut p = vec![0f32; m4 * n16];
        tile_product(&qp, d, &kt, n16, &mut p);
        for (i, row) in p.chunks_exact_mut(n16).take(len).enumerate() {
            let seen = if self.causal { i + 1 } else { len };
            let (real, pad) = row.split_at_mut(seen);
            let max = lane_max(real);
            for s in real.iter_mut() {
                *s = exp(*s - max);
            }
            let inv = 1.0 / lane_sum(real, |x| x);
            for s in real.iter_mut() {
                *s *= inv;
            }
            pad.fill(0.0);
        }
        for row in p.chunks_exact_mut(n16).skip(len) {
            row.fill(0.0);
        }
        let mut ctx = vec![0f32; m4 * d16];
        tile_product(&p, n16, &vp, d16, &mut ctx);
        let mut out = Vec::with_capacity(len * d);
        for row in ctx.chunks_exact(d16).take(len) {
            out.extend_from_slice(&row[..d]);
        }
        out
    }
}

/// `c = a · b` for row-major `a` `[m, k]`, `b` `[k, n]`, `c` `[m, n]`, with `m` a multiple of 4 and
/// `n` of 16: each 4 × 16 tile of `c` accumulates in registers.
#[inline(always)]
fn tile_product(a: &[f32], k: usize, b: &[f32], n: usize, c: &mut [f32]) {
    if k == 0 || n == 0 {
        return;
    }
    for (ai, ci) in a.chunks_exact(4 * k).zip(c.chunks_exact_mut(4 * n)) {
        let rows = [
            &ai[..k],
            &ai[k..2 * k],
            &ai[2 * k..3 * k],
            &ai[3 * k..4 * k],
        ];
        for j0 in (0..n).step_by(16) {
            let mut acc = [[0f32; 16]; 4];
            for (p, brow) in b.chunks_exact(n).take(k).enumerate() {
                let bv = &brow[j0..j0 + 16];
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let av = rows[r][p];
                    for (x, &y) in acc_r.iter_mut().zip(bv) {
                        *x = av.mul_add(y, *x);
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                ci[r * n + j0..r * n + j0 + 16].copy_from_slice(acc_r);
            }
        }
    }
}

/// Maximum of a slice in eight independent lanes.
#[inline(always)]
fn lane_max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = xs.chunks_exact(8);
    let mut m = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    for c in chunks {
        for l in 0..8 {
            acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
        }
    }
    for a in acc {
        m = if a > m { a } else { m };
    }
    m
}

/// exp(x) for f32 (Cephes' range reduction and polynomial, ~1e-7 relative), branch-free.
#[inline(always)]
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
    x.contiguous()?.apply_op1_no_bwd(&BiasAct {
        bias: &[],
        gelu: true,
    })
}

/// One post-norm encoder block (BERT's and DistilBERT's).
pub(super) struct Layer {
    pub(super) qkv: Linear,
    pub(super) attn_out: Linear,
    pub(super) attn_norm: LayerNorm,
    pub(super) inter: Linear,
    pub(super) out: Linear,
    pub(super) out_norm: LayerNorm,
}

/// The encoder.
pub struct BertModel {
    pub(super) word: Tensor,
    pub(super) position: Tensor,
    /// None for DistilBERT, which has no token types.
    pub(super) token_type: Option<Tensor>,
    pub(super) emb_norm: LayerNorm,
    pub(super) layers: Vec<Layer>,
    pub(super) heads: usize,
    pub(super) hidden: usize,
}

impl BertModel {
    /// Repacks every encoder layer's linear weights for `precision` (embeddings stay f32).
    pub fn set_precision(&mut self, precision: Precision) -> candle_core::Result<()> {
        self.linears().try_for_each(|l| l.set_precision(precision))
    }

    fn linears(&mut self) -> impl Iterator<Item = &mut Linear> {
        self.layers
            .iter_mut()
            .flat_map(|l| [&mut l.qkv, &mut l.attn_out, &mut l.inter, &mut l.out])
    }

    /// How the int8 layers quantize their input rows: 12-bit if any layer is, None when the
    /// encoder is not int8.
    pub fn int8_activations(&self) -> Option<Activations> {
        self.layers
            .iter()
            .flat_map(|l| [&l.qkv, &l.attn_out, &l.inter, &l.out])
            .filter_map(|l| l.int8_activations())
            .reduce(|a, b| if b == Activations::Wide { b } else { a })
    }

    pub fn set_int8_activations(&mut self, a: Activations) {
        self.linears().for_each(|l| l.set_int8_activations(a));
    }

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
            token_type: Some(
                e.pp("token_type_embeddings")
                    .get((c.type_vocab_size, h), "weight")?,
            ),
            emb_norm: LayerNorm::load(&e.pp("LayerNorm"), h, c.layer_norm_eps)?,
            layers,
            heads: c.num_attention_heads,
            hidden: h,
        })
    }

    /// Last hidden states of several sequences packed row after row (`[Σ lengths, hidden]`, no
    /// padding: every matrix product works on real tokens only). `ids` and `types` hold the
    /// sequences back to back; `lengths` says where each ends.
    pub fn forward_packed(
        &self,
        ids: &[u32],
        types: &[u32],
        lengths: &[usize],
    ) -> candle_core::Result<Tensor> {
        let n: usize = lengths.iter().sum();
        if ids.len() != n || types.len() != n {
            candle_core::bail!("{} ids and {} types for {n} tokens", ids.len(), types.len());
        }
        // Large batches go through in groups of about TOKENS_PER_PASS tokens, so the activations
        // of one pass stay in cache.
        let mut parts = Vec::new();
        let (mut first, mut start, mut tokens) = (0, 0, 0);
        for (i, &len) in lengths.iter().enumerate() {
            if tokens > 0 && tokens + len > TOKENS_PER_PASS {
                let end = start + tokens;
                parts.push(self.pass(&ids[start..end], &types[start..end], &lengths[first..i])?);
                (first, start, tokens) = (i, end, 0);
            }
            tokens += len;
        }
        let end = start + tokens;
        parts.push(self.pass(&ids[start..end], &types[start..end], &lengths[first..])?);
        if parts.len() == 1 {
            return Ok(parts.remove(0));
        }
        Tensor::cat(&parts, 0)
    }

    /// One pass of the encoder over packed sequences.
    fn pass(&self, ids: &[u32], types: &[u32], lengths: &[usize]) -> candle_core::Result<Tensor> {
        let n = ids.len();
        let h = self.hidden;
        let heads = self.heads;
        let d = h / heads;
        let mut spans = Vec::with_capacity(lengths.len());
        let mut positions = Vec::with_capacity(n);
        let mut start = 0;
        for &len in lengths {
            spans.push((start, len));
            positions.extend(0..len as u32);
            start += len;
        }
        let dev = Device::Cpu;
        let ids = Tensor::from_slice(ids, n, &dev)?;
        let types = Tensor::from_slice(types, n, &dev)?;
        let positions = Tensor::from_vec(positions, n, &dev)?;
        let mut words = self.word.index_select(&ids, 0)?;
        if let Some(token_type) = &self.token_type {
            words = (words + token_type.index_select(&types, 0)?)?;
        }
        let mut x =
            self.emb_norm
                .add_forward(&words, &[], &self.position.index_select(&positions, 0)?)?;
        for l in &self.layers {
            let ctx = attention_spans(&x, &l.qkv, (heads, d), &spans, false)?;
            let a = l
                .attn_norm
                .add_forward(&l.attn_out.product(&ctx)?, &l.attn_out.b, &x)?;
            let inter = l.inter.forward_gelu(&a)?;
            x = l
                .out_norm
                .add_forward(&l.out.product(&inter)?, &l.out.b, &a)?;
        }
        Ok(x)
    }

    /// Last hidden states `[batch, seq, hidden]` for a padded batch (rows past a sequence's length
    /// are zero).
    pub fn forward(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        let (b, t) = batch.ids.dims2()?;
        let h = self.hidden;
        let all_ids = batch.ids.to_vec2::<u32>()?;
        let all_types = batch.type_ids.to_vec2::<u32>()?;
        let lengths: Vec<usize> = (0..b)
            .map(|i| batch.lengths.get(i).copied().unwrap_or(t).min(t))
            .collect();
        let mut ids = Vec::new();
        let mut types = Vec::new();
        for (i, &len) in lengths.iter().enumerate() {
            ids.extend_from_slice(&all_ids[i][..len]);
            types.extend_from_slice(&all_types[i][..len]);
        }
        let packed = self
            .forward_packed(&ids, &types, &lengths)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let mut out = vec![0f32; b * t * h];
        let mut src = 0;
        for (i, &len) in lengths.iter().enumerate() {
            out[i * t * h..][..len * h].copy_from_slice(&packed[src..src + len * h]);
            src += len * h;
        }
        Tensor::from_vec(out, (b, t, h), &Device::Cpu)
    }
}

/// erf(x) for f32 by a rational approximation on [-4, 4] (the one Eigen and XLA use), within a few
/// ulp of the exact value; branch-free so loops over it vectorise.
#[inline(always)]
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
        let distil = super::distilbert::is_distilbert(&raw_config);
        let config = if distil {
            super::distilbert::parse_config(&raw_config, &config_path)?
        } else {
            parse_config(&raw_config, &config_path)?
        };
        let weights = weights_file(dir)?;
        let vb = var_builder(load_tensors(&weights)?);
        let (prefix, family) = if distil {
            ("distilbert", "DistilBERT")
        } else {
            ("bert", "BERT")
        };
        let root = if vb.contains_tensor(&format!("{prefix}.embeddings.word_embeddings.weight")) {
            vb.pp(prefix)
        } else {
            vb.clone()
        };
        let model = if distil {
            super::distilbert::load(root, &config)
        } else {
            BertModel::load(root, &config)
        }
        .map_err(|e| InferenceError::Weights {
            path: weights.clone(),
            detail: format!("these are not the weights of a {family} with this config.json: {e}"),
        })?;
        let mut model = model;
        model.set_precision(Precision::Fp32)?;
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
