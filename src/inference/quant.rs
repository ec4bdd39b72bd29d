//! Reduced-precision weights for the encoders' linear layers, packed once when a model loads.
//!
//! - **int8**: each output channel's weights are quantized symmetrically to [-127, 127] with their
//!   own scale; each input row (a token) is quantized symmetrically with its own scale just before
//!   the product, to 12 bits (see [`activation_levels`]). Products accumulate exactly in i32 and
//!   are scaled back to f32 once per output. On AVX2 the inner step is `vpmaddwd`: sign-extended int8 pairs multiplied and summed into i32
//!   lanes (16 multiply-adds per instruction, no saturation). Elsewhere a portable loop computes
//!   the same integers, so both paths give identical results.
//! - **bf16**: weights rounded to bfloat16 (half the memory and bandwidth of f32), widened to f32
//!   in registers and multiplied with f32 activations and f32 accumulation. No CPU instruction
//!   multiplies bf16 here (`vdpbf16ps` needs AVX-512 BF16), so this is the *emulated* form.
//!
//! Attention, softmax, layer norm and GELU stay f32; only the matrix products change.
//!
//! Setting `HUGFLAKE_SIMD=portable` forces the portable loops (to test them on any CPU).

use pulp::x86::V3;
use pulp::{f32x8, i8x16, i16x16, u16x8, u32x8};
use rayon::prelude::*;

pub use crate::domain::precision::{Calibration, Gate, Precision};

/// True when `HUGFLAKE_SIMD=portable` asks for the portable loops (read once per process).
fn portable_forced() -> bool {
    static FORCED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| {
        std::env::var("HUGFLAKE_SIMD").is_ok_and(|v| v.eq_ignore_ascii_case("portable"))
    })
}

fn avx2() -> Option<V3> {
    if portable_forced() {
        None
    } else {
        V3::try_new()
    }
}

/// Whether fp32 weights are packed for this module's AVX2 kernel (else candle's gemm multiplies
/// them as tensors, which is faster than a portable loop).
pub fn packs_f32() -> bool {
    avx2().is_some()
}

/// Which kernel a precision runs on this CPU, for Health and the logs.
pub fn kernel_name(p: Precision) -> &'static str {
    match (p, avx2().is_some()) {
        (Precision::Fp32, true) => "AVX2+FMA f32",
        (Precision::Fp32, false) => "gemm f32",
        (Precision::Int8, true) => "AVX2 vpmaddwd",
        (Precision::Int8, false) => "portable int8",
        (Precision::Bf16, true) => "AVX2+FMA, emulated bf16",
        (Precision::Bf16, false) => "portable, emulated bf16",
    }
}

/// Output columns per packed panel (two 8-lane registers).
const NR: usize = 16;
/// Rows per register tile.
const MR: usize = 6;
/// Rows per parallel task.
const ROW_BLOCK: usize = 8 * MR;
/// Panels per parallel task.
const PANELS_PER_TASK: usize = 4;
/// Below this many multiply-adds a product runs on the calling thread.
const SERIAL_WORK: usize = 1 << 18;

/// Weights `[n, k]` quantized per output channel, packed for the int8 kernel: for each panel of 16
/// outputs and each pair of inputs `(2j, 2j+1)`, two `i8x16` hold outputs 0–7 and 8–15 with the
/// pair's two weights side by side.
pub struct Int8Weights {
    k: usize,
    n: usize,
    panels: Vec<i8x16>,
    scales: Vec<f32>,
}

/// Weights `[n, k]` in f32 or bfloat16, packed per panel of 16 outputs, one input after another
/// (two 8-lane halves per input), so the product reads them in order with no repacking per call.
pub struct FloatWeights {
    k: usize,
    n: usize,
    panels: Panels,
}

enum Panels {
    F32(Vec<f32x8>),
    Bf16(Vec<u16x8>),
}

/// Largest |x| of a row, eight lanes at a time so the loop vectorises.
#[inline(always)]
fn abs_max(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let mut m = chunks.remainder().iter().fold(0f32, |m, v| m.max(v.abs()));
    for c in chunks {
        for l in 0..8 {
            acc[l] = acc[l].max(c[l].abs());
        }
    }
    for a in acc {
        m = m.max(a);
    }
    m
}

/// Symmetric int8 of a row, written as packed pairs (value `2j` in the low 16 bits of `out[j]`,
/// value `2j+1` in the high), and the scale that restores it (`x ≈ q · scale`). A row with a
/// non-finite value gets a NaN scale, so its outputs are NaN as f32 arithmetic would make them.
#[inline(always)]
fn quantize_pairs(x: &[f32], out: &mut [i32], levels: i32) -> f32 {
    let max = abs_max(x);
    if max == 0.0 || !max.is_finite() {
        out.iter_mut().for_each(|q| *q = 0);
        return if max == 0.0 { 0.0 } else { f32::NAN };
    }
    let inv = levels as f32 / max;
    // |v · inv| ≤ levels up to rounding, so no clamp is needed before the cast.
    let q = |v: f32| (v * inv).round_ties_even() as i32;
    let pairs = x.chunks_exact(2);
    let odd = pairs.remainder().first().copied();
    let full = x.len() / 2;
    for (o, p) in out[..full].iter_mut().zip(pairs) {
        *o = (q(p[0]) & 0xffff) | (q(p[1]) << 16);
    }
    if let Some(v) = odd {
        out[full] = q(v) & 0xffff;
    }
    max / levels as f32
}

/// Weight levels: symmetric int8.
const WEIGHT_LEVELS: i32 = 127;

/// Activation levels for inputs of length `k`: 12 bits (±2047) where the i32 sums cannot
/// overflow, fewer for very long inputs. `vpmaddwd` multiplies 16-bit lanes, so the bits beyond
/// int8 cost nothing, and they keep short inputs (whose [CLS]/[SEP] rows carry BERT's outlier
/// activations) within the gate: with ±127 a one-word sentence lands near cosine 0.986.
fn activation_levels(k: usize) -> i32 {
    let pairs = k.div_ceil(2).max(1) as i64;
    let bound = i32::MAX as i64 / (pairs * 2 * WEIGHT_LEVELS as i64);
    bound.clamp(1, 2047) as i32
}

/// f32 to bfloat16 bits, rounding to nearest even.
pub(crate) fn to_bf16(v: f32) -> u16 {
    if v.is_nan() {
        return 0x7fc0;
    }
    let bits = v.to_bits();
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

pub(crate) fn from_bf16(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

impl Int8Weights {
    /// Packs `wt`, the weights stored transposed (`[k, n]`, input-major) as the f32 path keeps them.
    pub fn pack(wt: &[f32], k: usize, n: usize) -> Int8Weights {
        let panels = n.div_ceil(NR);
        let pairs = k.div_ceil(2);
        let mut scales = vec![0f32; panels * NR];
        // Output channel c (column c of wt) as packed pairs, like an input row.
        let mut q = vec![0i32; panels * NR * pairs];
        let mut column = vec![0f32; k];
        for c in 0..n {
            for (i, v) in column.iter_mut().enumerate() {
                *v = wt[i * n + c];
            }
            scales[c] = quantize_pairs(&column, &mut q[c * pairs..(c + 1) * pairs], WEIGHT_LEVELS);
        }
        let mut packed = Vec::with_capacity(panels * pairs * 2);
        for p in 0..panels {
            for j in 0..pairs {
                for half in 0..2 {
                    let mut lanes = [0i8; 16];
                    for l in 0..8 {
                        let v = q[(p * NR + half * 8 + l) * pairs + j];
                        lanes[2 * l] = v as i16 as i8;
                        lanes[2 * l + 1] = (v >> 16) as i16 as i8;
                    }
                    packed.push(pulp::cast(lanes));
                }
            }
        }
        Int8Weights {
            k,
            n,
            panels: packed,
            scales,
        }
    }

    pub fn outputs(&self) -> usize {
        self.n
    }

    pub fn inputs(&self) -> usize {
        self.k
    }

    /// `x Wᵀ` for `m` rows of `k` inputs, `[m, n]` row-major.
    pub fn product(&self, x: &[f32], m: usize) -> Vec<f32> {
        let (k, pairs) = (self.k, self.k.div_ceil(2));
        // Each row as packed pairs of int8 values in i16 lanes, ready to broadcast as one i32.
        let mut a = vec![0i32; m * pairs];
        let mut sa = vec![0f32; m];
        let simd = avx2();
        let levels = activation_levels(k);
        let quantize = |(row, (out, s)): (usize, (&mut [i32], &mut f32))| {
            let x = &x[row * k..(row + 1) * k];
            *s = match simd {
                Some(v3) => v3.vectorize(
                    #[inline(always)]
                    || quantize_pairs(x, out, levels),
                ),
                None => quantize_pairs(x, out, levels),
            };
        };
        if m * k >= SERIAL_WORK / 8 {
            a.par_chunks_mut(pairs)
                .zip(sa.par_iter_mut())
                .enumerate()
                .for_each(quantize);
        } else {
            a.chunks_mut(pairs)
                .zip(sa.iter_mut())
                .enumerate()
                .for_each(quantize);
        }
        grid(
            m,
            self.n,
            m * k * self.n,
            |rows, panel, dst, stride, width| {
                let b = &self.panels[panel * pairs * 2..(panel + 1) * pairs * 2];
                let a_rows = &a[rows.start * pairs..rows.end * pairs];
                let scales = &self.scales[panel * NR..(panel + 1) * NR];
                let mut acc = [[0i32; NR]; MR];
                for r0 in (0..rows.len()).step_by(MR) {
                    let mr = (rows.len() - r0).min(MR);
                    let a_tile = &a_rows[r0 * pairs..(r0 + mr) * pairs];
                    let sa = &sa[rows.start + r0..rows.start + r0 + mr];
                    let dst = &mut dst[r0 * stride..];
                    let acc = &mut acc[..mr];
                    match simd {
                        Some(s) => s.vectorize(
                            #[inline(always)]
                            || {
                                int8_tile_avx2(s, a_tile, pairs, b, acc);
                                dequantize(acc, sa, scales, dst, stride, width);
                            },
                        ),
                        None => {
                            int8_tile_portable(a_tile, pairs, b, acc);
                            dequantize(acc, sa, scales, dst, stride, width);
                        }
                    }
                }
            },
        )
    }
}

/// `acc · row scale · channel scale` into the destination rows (each `stride` apart, `width`
/// outputs wide). The same operations in the same order on every path.
#[inline(always)]
fn dequantize(
    acc: &[[i32; NR]],
    sa: &[f32],
    scales: &[f32],
    dst: &mut [f32],
    stride: usize,
    width: usize,
) {
    for (r, (acc_row, &s)) in acc.iter().zip(sa).enumerate() {
        let mut row = [0f32; NR];
        for c in 0..NR {
            row[c] = acc_row[c] as f32 * s * scales[c];
        }
        dst[r * stride..][..width].copy_from_slice(&row[..width]);
    }
}

/// Runs the tile macro `$tile!(N)` with the tile's row count (1..=6) as a literal, so each size
/// is its own fully unrolled register tile.
macro_rules! by_rows {
    ($rows:expr, $tile:ident) => {
        match $rows {
            6 => $tile!(6),
            5 => $tile!(5),
            4 => $tile!(4),
            3 => $tile!(3),
            2 => $tile!(2),
            _ => $tile!(1),
        }
    };
}

/// One register tile of the int8 product: `acc[r][c] = Σ_j a[r][j] · b[j][c]` over packed pairs.
#[inline(always)]
fn int8_tile_avx2(simd: V3, a: &[i32], pairs: usize, b: &[i8x16], acc: &mut [[i32; NR]]) {
    macro_rules! tile {
        ($mr:literal) => {{
            let zero = simd.splat_i32x8(0);
            let mut lo = [zero; $mr];
            let mut hi = [zero; $mr];
            let rows: [&[i32]; $mr] = std::array::from_fn(|r| &a[r * pairs..(r + 1) * pairs]);
            for (j, bp) in b.chunks_exact(2).enumerate() {
                let b0: i16x16 = simd.convert_i8x16_to_i16x16(bp[0]);
                let b1: i16x16 = simd.convert_i8x16_to_i16x16(bp[1]);
                for r in 0..$mr {
                    let av: i16x16 = pulp::cast(simd.splat_i32x8(rows[r][j]));
                    lo[r] = simd.wrapping_add_i32x8(
                        lo[r],
                        simd.multiply_wrapping_add_adjacent_i16x16(av, b0),
                    );
                    hi[r] = simd.wrapping_add_i32x8(
                        hi[r],
                        simd.multiply_wrapping_add_adjacent_i16x16(av, b1),
                    );
                }
            }
            for r in 0..$mr {
                let l: [i32; 8] = pulp::cast(lo[r]);
                let h: [i32; 8] = pulp::cast(hi[r]);
                acc[r][..8].copy_from_slice(&l);
                acc[r][8..].copy_from_slice(&h);
            }
        }};
    }
    by_rows!(acc.len(), tile)
}

/// The same integers as [`int8_tile_avx2`], one lane at a time.
fn int8_tile_portable(a: &[i32], pairs: usize, b: &[i8x16], acc: &mut [[i32; NR]]) {
    for (r, acc_row) in acc.iter_mut().enumerate() {
        *acc_row = [0; NR];
        for (j, bp) in b.chunks_exact(2).enumerate() {
            let v = a[r * pairs + j];
            let (x0, x1) = (v as i16 as i32, (v >> 16) as i16 as i32);
            for (half, lanes) in bp.iter().enumerate() {
                let w: [i8; 16] = pulp::cast(*lanes);
                for l in 0..8 {
                    acc_row[half * 8 + l] += x0 * w[2 * l] as i32 + x1 * w[2 * l + 1] as i32;
                }
            }
        }
    }
}

impl FloatWeights {
    /// The f32 weights back as `[k, n]`, when they were packed in f32.
    pub fn f32_values(&self) -> Option<Vec<f32>> {
        let Panels::F32(panels) = &self.panels else {
            return None;
        };
        let (k, n) = (self.k, self.n);
        let mut wt = vec![0f32; k * n];
        for (idx, lanes) in panels.iter().enumerate() {
            let (p, rest) = (idx / (2 * k), idx % (2 * k));
            let (i, half) = (rest / 2, rest % 2);
            let lanes: [f32; 8] = pulp::cast(*lanes);
            for (l, v) in lanes.into_iter().enumerate() {
                let c = p * NR + half * 8 + l;
                if c < n {
                    wt[i * n + c] = v;
                }
            }
        }
        Some(wt)
    }

    /// Packs `wt` (`[k, n]`, input-major) into panels of 16 outputs, in f32 or rounded to bf16.
    pub fn pack(wt: &[f32], k: usize, n: usize, bf16: bool) -> FloatWeights {
        let panels = n.div_ceil(NR);
        let lane = |p: usize, i: usize, half: usize, l: usize| {
            let c = p * NR + half * 8 + l;
            if c < n { wt[i * n + c] } else { 0.0 }
        };
        let order = (0..panels).flat_map(|p| (0..k).flat_map(move |i| [(p, i, 0), (p, i, 1)]));
        let panels = if bf16 {
            Panels::Bf16(
                order
                    .map(|(p, i, h)| {
                        pulp::cast(std::array::from_fn::<u16, 8, _>(|l| {
                            to_bf16(lane(p, i, h, l))
                        }))
                    })
                    .collect(),
            )
        } else {
            Panels::F32(
                order
                    .map(|(p, i, h)| {
                        pulp::cast(std::array::from_fn::<f32, 8, _>(|l| lane(p, i, h, l)))
                    })
                    .collect(),
            )
        };
        FloatWeights { k, n, panels }
    }

    pub fn outputs(&self) -> usize {
        self.n
    }

    pub fn inputs(&self) -> usize {
        self.k
    }

    /// `x Wᵀ` for `m` rows of `k` inputs, `[m, n]` row-major.
    pub fn product(&self, x: &[f32], m: usize) -> Vec<f32> {
        let k = self.k;
        let simd = avx2();
        grid(
            m,
            self.n,
            m * k * self.n,
            |rows, panel, dst, stride, width| {
                let x_rows = &x[rows.start * k..rows.end * k];
                let mut acc = [[0f32; NR]; MR];
                for r0 in (0..rows.len()).step_by(MR) {
                    let mr = (rows.len() - r0).min(MR);
                    let a = &x_rows[r0 * k..(r0 + mr) * k];
                    let acc = &mut acc[..mr];
                    let span = panel * k * 2..(panel + 1) * k * 2;
                    match (simd, &self.panels) {
                        (Some(s), Panels::F32(p)) => s.vectorize(
                            #[inline(always)]
                            || float_tile_avx2(s, a, k, &p[span], |v| v, acc),
                        ),
                        (Some(s), Panels::Bf16(p)) => s.vectorize(
                            #[inline(always)]
                            || {
                                let widen = |h: u16x8| -> f32x8 {
                                    let w: u32x8 = s.convert_u16x8_to_u32x8(h);
                                    pulp::cast(s.shl_const_u32x8::<16>(w))
                                };
                                float_tile_avx2(s, a, k, &p[span], widen, acc)
                            },
                        ),
                        (None, Panels::F32(p)) => {
                            float_tile_portable(a, k, &p[span], pulp::cast::<_, [f32; 8]>, acc)
                        }
                        (None, Panels::Bf16(p)) => float_tile_portable(
                            a,
                            k,
                            &p[span],
                            |v| pulp::cast::<_, [u16; 8]>(v).map(from_bf16),
                            acc,
                        ),
                    }
                    for (r, acc_row) in acc.iter().enumerate() {
                        dst[(r0 + r) * stride..][..width].copy_from_slice(&acc_row[..width]);
                    }
                }
            },
        )
    }
}

#[inline(always)]
fn float_tile_avx2<W: Copy>(
    simd: V3,
    a: &[f32],
    k: usize,
    b: &[W],
    widen: impl Fn(W) -> f32x8,
    acc: &mut [[f32; NR]],
) {
    macro_rules! tile {
        ($mr:literal) => {{
            let zero = simd.splat_f32x8(0.0);
            let mut lo = [zero; $mr];
            let mut hi = [zero; $mr];
            let rows: [&[f32]; $mr] = std::array::from_fn(|r| &a[r * k..(r + 1) * k]);
            for (i, bp) in b.chunks_exact(2).enumerate() {
                let b0 = widen(bp[0]);
                let b1 = widen(bp[1]);
                for r in 0..$mr {
                    let av = simd.splat_f32x8(rows[r][i]);
                    lo[r] = simd.mul_add_f32x8(av, b0, lo[r]);
                    hi[r] = simd.mul_add_f32x8(av, b1, hi[r]);
                }
            }
            for r in 0..$mr {
                let l: [f32; 8] = pulp::cast(lo[r]);
                let h: [f32; 8] = pulp::cast(hi[r]);
                acc[r][..8].copy_from_slice(&l);
                acc[r][8..].copy_from_slice(&h);
            }
        }};
    }
    by_rows!(acc.len(), tile)
}

fn float_tile_portable<W: Copy>(
    a: &[f32],
    k: usize,
    b: &[W],
    widen: impl Fn(W) -> [f32; 8],
    acc: &mut [[f32; NR]],
) {
    for (r, acc_row) in acc.iter_mut().enumerate() {
        *acc_row = [0.0; NR];
        for (i, bp) in b.chunks_exact(2).enumerate() {
            let x = a[r * k + i];
            for (half, lanes) in bp.iter().enumerate() {
                for (l, w) in widen(*lanes).into_iter().enumerate() {
                    acc_row[half * 8 + l] += x * w;
                }
            }
        }
    }
}

/// Runs `tile(rows, panel, dst, stride, width)` over blocks of rows × panels of 16 outputs, in
/// parallel when the product is large enough, and returns the `[m, n]` result. `dst` starts at
/// the block's first row and the panel's first output; row `r` of the tile is at `r · stride`,
/// and `width` of its 16 outputs are real (the last panel may be narrower).
///
/// With many row blocks, each task takes a block of rows across every panel and writes straight
/// into the result. With few (a sentence or two), tasks split the panels and write into their own
/// buffers, copied into place after.
fn grid(
    m: usize,
    n: usize,
    work: usize,
    tile: impl Fn(std::ops::Range<usize>, usize, &mut [f32], usize, usize) + Sync,
) -> Vec<f32> {
    let panels = n.div_ceil(NR);
    let row_blocks = m.div_ceil(ROW_BLOCK);
    let mut out = vec![0f32; m * n];
    // Enough row blocks to keep every thread busy (with two, a 50-token input would leave one
    // thread 2 rows and the other 48).
    if row_blocks >= 4 {
        let block = |(rb, chunk): (usize, &mut [f32])| {
            let rows = rb * ROW_BLOCK..((rb + 1) * ROW_BLOCK).min(m);
            for panel in 0..panels {
                let c0 = panel * NR;
                tile(rows.clone(), panel, &mut chunk[c0..], n, (n - c0).min(NR));
            }
        };
        if work < SERIAL_WORK {
            out.chunks_mut(ROW_BLOCK * n).enumerate().for_each(block);
        } else {
            out.par_chunks_mut(ROW_BLOCK * n)
                .enumerate()
                .for_each(block);
        }
        return out;
    }
    let chunks = panels.div_ceil(PANELS_PER_TASK);
    let run = |pc: usize| -> (usize, Vec<f32>) {
        let first = pc * PANELS_PER_TASK;
        let last = (first + PANELS_PER_TASK).min(panels);
        let mut buf = vec![0f32; (last - first) * m * NR];
        for (i, panel_buf) in buf.chunks_mut(m * NR).enumerate() {
            tile(0..m, first + i, panel_buf, NR, NR);
        }
        (pc, buf)
    };
    let parts: Vec<(usize, Vec<f32>)> = if work < SERIAL_WORK {
        (0..chunks).map(run).collect()
    } else {
        (0..chunks).into_par_iter().map(run).collect()
    };
    for (pc, buf) in parts {
        for (i, panel) in buf.chunks(m * NR).enumerate() {
            let c0 = (pc * PANELS_PER_TASK + i) * NR;
            let width = (n - c0).min(NR);
            for (r, src) in panel.chunks(NR).enumerate() {
                out[r * n + c0..][..width].copy_from_slice(&src[..width]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    fn reference(x: &[f32], wt: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for r in 0..m {
            for c in 0..n {
                y[r * n + c] = (0..k).map(|i| x[r * k + i] * wt[i * n + c]).sum();
            }
        }
        y
    }

    fn max_rel_err(a: &[f32], b: &[f32]) -> f32 {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs() / scale))
    }

    #[test]
    fn int8_product_is_close_to_f32_on_odd_shapes() {
        // Odd k (a padded pair), n not a multiple of 16, rows spanning tiles and blocks.
        for &(m, k, n) in &[(1, 7, 5), (13, 33, 40), (50, 384, 129), (3, 1536, 16)] {
            let x = pseudo(m * k, 1);
            let wt = pseudo(k * n, 2);
            let q = Int8Weights::pack(&wt, k, n);
            let got = q.product(&x, m);
            assert_eq!(got.len(), m * n);
            let err = max_rel_err(&got, &reference(&x, &wt, m, k, n));
            assert!(err < 0.03, "{m}x{k}x{n}: {err}");
        }
    }

    #[test]
    fn bf16_product_is_close_to_f32() {
        for &(m, k, n) in &[(1, 7, 5), (13, 33, 40), (50, 384, 129)] {
            let x = pseudo(m * k, 3);
            let wt = pseudo(k * n, 4);
            let got = FloatWeights::pack(&wt, k, n, true).product(&x, m);
            let err = max_rel_err(&got, &reference(&x, &wt, m, k, n));
            assert!(err < 0.005, "{m}x{k}x{n}: {err}");
        }
    }

    #[test]
    fn packed_f32_product_matches_f32() {
        for &(m, k, n) in &[(1, 7, 5), (13, 33, 40), (50, 384, 129)] {
            let x = pseudo(m * k, 8);
            let wt = pseudo(k * n, 9);
            let packed = FloatWeights::pack(&wt, k, n, false);
            let got = packed.product(&x, m);
            let err = max_rel_err(&got, &reference(&x, &wt, m, k, n));
            assert!(err < 1e-5, "{m}x{k}x{n}: {err}");
            assert_eq!(packed.f32_values(), Some(wt));
        }
    }

    #[test]
    fn portable_and_avx2_int8_kernels_give_identical_integers() {
        let (k, pairs) = (37, 19);
        let a: Vec<i32> = (0..6 * pairs)
            .map(|i| {
                let lo = ((i * 37) % 255) as i32 - 127;
                let hi = ((i * 91) % 255) as i32 - 127;
                (lo as u16 as u32 | (hi as u16 as u32) << 16) as i32
            })
            .collect();
        let wt = pseudo(k * 16, 6);
        let w = Int8Weights::pack(&wt, k, 16);
        let mut portable = [[0i32; NR]; MR];
        int8_tile_portable(&a, pairs, &w.panels, &mut portable);
        if let Some(s) = V3::try_new() {
            let mut fast = [[0i32; NR]; MR];
            s.vectorize(|| int8_tile_avx2(s, &a, pairs, &w.panels, &mut fast));
            assert_eq!(portable, fast);
        }
        // And the integers are the dot products of the unpacked values.
        let q0: i32 = (0..pairs)
            .map(|j| {
                let v = a[j];
                let lanes: [i8; 16] = pulp::cast(w.panels[2 * j]);
                (v as i16 as i32) * lanes[0] as i32 + ((v >> 16) as i16 as i32) * lanes[1] as i32
            })
            .sum();
        assert_eq!(portable[0][0], q0);
    }

    #[test]
    fn odd_rows_quantize_like_the_reference() {
        let x = [0.5f32, -1.0, 0.25, 0.003];
        let mut out = [0i32; 2];
        let s = quantize_pairs(&x, &mut out, 127);
        assert_eq!(s, 1.0 / 127.0);
        let unpack = |v: i32| [v as i16, (v >> 16) as i16];
        assert_eq!(unpack(out[0]), [64, -127]); // 63.5 rounds to even
        assert_eq!(unpack(out[1]), [32, 0]);
        let mut odd = [0i32; 2];
        quantize_pairs(&x[..3], &mut odd, 127);
        assert_eq!(unpack(odd[1]), [32, 0]);
    }

    #[test]
    fn activation_levels_never_overflow_the_sums() {
        assert_eq!(activation_levels(384), 2047);
        assert_eq!(activation_levels(4096), 2047);
        for k in [8192, 9000, 20_000, 1 << 20] {
            let l = activation_levels(k) as i64;
            assert!((1..=2047).contains(&l));
            assert!(k.div_ceil(2) as i64 * 2 * l * 127 <= i32::MAX as i64, "{k}");
        }
        assert!(activation_levels(9000) < 2047);
    }

    #[test]
    fn zero_and_non_finite_rows() {
        let wt = pseudo(8 * 4, 7);
        let q = Int8Weights::pack(&wt, 8, 4);
        let y = q.product(&[0.0; 8], 1);
        assert_eq!(y, vec![0.0; 4]);
        let mut bad = vec![1.0; 8];
        bad[3] = f32::INFINITY;
        assert!(q.product(&bad, 1).iter().all(|v| v.is_nan()));
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0); // tie rounds to even
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 / 256.0)), 1.0 + 4.0 / 256.0);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
    }
}
