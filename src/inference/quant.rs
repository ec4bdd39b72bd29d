//! Reduced-precision weights for the encoders' linear layers, packed once when a model loads.
//!
//! - **int8**: each output channel's weights are quantized symmetrically to int8 with their own
//!   scale. Each input row (a token) is quantized with its own scale just before the product, in
//!   one of two widths ([`Activations`]):
//!   - **8 bits** (u8 with a zero point: 256 levels between the row's minimum and maximum, both
//!     including 0), for rows whose range is within 16× their RMS. On AVX2 the inner step is
//!     `vpmaddubsw` (u8 × i8, 32 multiply-adds per instruction, pairs summed into i16) then
//!     `vpmaddwd` by ones into i32. These rows meet a second int8 copy of the weights, scaled so
//!     that no pair's i16 sum can saturate (see [`quantize_pair_bounded`]); the zero point is
//!     taken out once per output with that copy's weight sum.
//!   - **12 bits** (symmetric, ±2047, see [`activation_levels`]), for the outlier rows (BERT's
//!     [CLS]/[SEP]). The inner step is `vpmaddwd` on sign-extended pairs (16 multiply-adds per
//!     instruction, no saturation). The calibration check falls back to 12 bits for every row
//!     when the 8-bit rows miss the quality gate.
//!
//!   Products accumulate exactly in i32 and are scaled back to f32 once per output. Elsewhere
//!   portable loops compute the same integers, so both paths give identical results.
//! - **bf16**: weights rounded to bfloat16 (half the memory and bandwidth of f32), widened to f32
//!   in registers and multiplied with f32 activations and f32 accumulation. No CPU instruction
//!   multiplies bf16 here (`vdpbf16ps` needs AVX-512 BF16), so this is the *emulated* form.
//!
//! Attention, softmax, layer norm and GELU stay f32; only the matrix products change.
//!
//! Setting `HUGFLAKE_SIMD=portable` forces the portable loops (to test them on any CPU).

use pulp::x86::V3;
use pulp::{f32x8, i8x16, i8x32, i16x16, i32x8, u16x8, u32x8};
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
        (Precision::Int8, true) => "AVX2 int8",
        (Precision::Int8, false) => "portable int8",
        (Precision::Bf16, true) => "AVX2+FMA, emulated bf16",
        (Precision::Bf16, false) => "portable, emulated bf16",
    }
}

/// The int8 kernel and activation width that run on this CPU, for Health and the logs.
pub fn int8_kernel_name(a: Activations) -> &'static str {
    match (a, avx2().is_some()) {
        (Activations::Adaptive, true) => "AVX2 vpmaddubsw, 8-bit rows + 12-bit outlier rows",
        (Activations::Adaptive, false) => "portable int8, 8-bit rows + 12-bit outlier rows",
        (Activations::Wide, true) => "AVX2 vpmaddwd, 12-bit rows",
        (Activations::Wide, false) => "portable int8, 12-bit rows",
    }
}

/// How an int8 product quantizes its input rows (tokens); the int8 weights are the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activations {
    /// 8 bits per row, except rows whose largest value stands out from the rest (BERT's
    /// [CLS]/[SEP] rows carry such outliers), which take 12 bits. 8-bit rows run on `vpmaddubsw`,
    /// twice the multiply-adds per instruction of the 12-bit kernel.
    Adaptive,
    /// 12 bits for every row: slower, closer to fp32; the calibration check falls back to it
    /// when `Adaptive` misses the quality gate.
    Wide,
}

impl Activations {
    /// The width a new int8 layer starts with: 12 bits, unless `HUGFLAKE_INT8_ACTIVATIONS=8`
    /// asks for 8-bit rows (and the inputs are short enough for their i32 sums). 12 bits is the
    /// default because on the machine measured (2-core Zen 3) the 8-bit kernel's gain did not
    /// show in a whole encoder pass (see the README), while it costs accuracy.
    pub fn initial(k: usize) -> Activations {
        static EIGHT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let eight = *EIGHT.get_or_init(|| {
            std::env::var("HUGFLAKE_INT8_ACTIVATIONS").is_ok_and(|v| v.trim() == "8")
        });
        if eight && k <= NARROW_MAX_INPUTS {
            Activations::Adaptive
        } else {
            Activations::Wide
        }
    }
}

/// The longest input 8-bit rows take: `k · 255 · 127` and the offset term stay within i32.
const NARROW_MAX_INPUTS: usize = 32_768;

/// A row takes 12 bits when its range (max − min) exceeds this many times its root mean square:
/// with 8 bits such a row keeps few levels for everything else (BERT's [CLS]/[SEP] rows carry the
/// extreme cases). On MiniLM, 16 sends 7% of the rows to 12 bits (cosine to fp32 0.99918 on the
/// clinical corpus), 12 sends 25% (0.99928), 8 sends 78% (0.99947, as 12 bits everywhere). 12 is
/// the largest of these that keeps the demo search's top five as fp32 ranks them.
const OUTLIER_RANGE: f32 = 12.0;

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

/// Weights `[n, k]` quantized per output channel, packed for the int8 kernels: in panels of 16
/// outputs, for each group of inputs (quads for 8-bit rows, pairs for 12-bit rows), outputs 0–7
/// then 8–15, each with the group's weights side by side.
pub struct Int8Weights {
    k: usize,
    n: usize,
    /// For 12-bit rows (`vpmaddwd`): groups of 2.
    pairs: Vec<i8x16>,
    /// For 8-bit rows (`vpmaddubsw`): groups of 4; empty when every row is 12-bit (which is what
    /// [`activations`](Self::activations) reads).
    quads: Vec<i8x16>,
    /// Per panel of 16 outputs.
    scales: Vec<[f32; NR]>,
    /// The 8-bit kernel's weights are quantized on their own scale (see
    /// [`quantize_pair_bounded`]): each output's, and its sum of int8 weights (to take the
    /// 8-bit rows' zero point out).
    narrow_scales: Vec<[f32; NR]>,
    sums: Vec<[i32; NR]>,
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
    let mut nan = [false; 8];
    let chunks = x.chunks_exact(8);
    let larger = |m: f32, v: f32| if v > m { v } else { m };
    let mut m = chunks
        .remainder()
        .iter()
        .fold(0f32, |m, v| larger(m, v.abs()));
    let mut any_nan = chunks.remainder().iter().any(|v| v.is_nan());
    for c in chunks {
        for l in 0..8 {
            acc[l] = larger(acc[l], c[l].abs());
            nan[l] |= c[l].is_nan();
        }
    }
    for (a, n) in acc.into_iter().zip(nan) {
        m = larger(m, a);
        any_nan |= n;
    }
    // The comparisons skip NaN; a row holding one must not look finite.
    if any_nan { f32::NAN } else { m }
}

/// Below this a row's largest |value| (or range) quantizes as zero: its scale's inverse would
/// overflow.
const TINY: f32 = 1e-30;

/// `v` rounded to the nearest integer, ties to even, for |v| < 2²²: adding 1.5 · 2²³ leaves the
/// integer in the low mantissa bits. The same result as `round_ties_even() as i32`, without the
/// saturating conversion that keeps the loops around it from vectorising.
#[inline(always)]
fn round_small(v: f32) -> i32 {
    const MAGIC: f32 = 12_582_912.0;
    (v + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32
}

/// Symmetric int8 of a row, written as packed pairs (value `2j` in the low 16 bits of `out[j]`,
/// value `2j+1` in the high), and the scale that restores it (`x ≈ q · scale`). A row with a
/// non-finite value gets a NaN scale, so its outputs are NaN as f32 arithmetic would make them.
#[inline(always)]
fn quantize_pairs(x: &[f32], out: &mut [i32], levels: i32) -> f32 {
    let max = abs_max(x);
    if !max.is_finite() || max < TINY {
        out.iter_mut().for_each(|q| *q = 0);
        return if max < TINY { 0.0 } else { f32::NAN };
    }
    let inv = levels as f32 / max;
    // Little-endian: value 2j is the low half of out[j]. |v · inv| ≤ levels, so no clamp.
    let halves: &mut [i16] = pulp::bytemuck::cast_slice_mut(out);
    for (h, &v) in halves.iter_mut().zip(x) {
        *h = round_small(v * inv) as i16;
    }
    halves[x.len()..].iter_mut().for_each(|h| *h = 0);
    max / levels as f32
}

/// A row's smallest and largest values and whether it takes 12 bits (see [`OUTLIER_RANGE`]).
/// Non-finite rows take 12 bits, whose quantisation turns them into NaN outputs.
#[inline(always)]
fn row_shape(x: &[f32]) -> (f32, f32, bool) {
    let mut sq = [0f32; 8];
    let mut lo = [0f32; 8];
    let mut hi = [0f32; 8];
    let chunks = x.chunks_exact(8);
    // Compare-and-select (not f32::min/max, whose NaN rules keep this from vectorising); a NaN
    // shows in the sum of squares.
    for &v in chunks.remainder() {
        sq[0] += v * v;
        lo[0] = if v < lo[0] { v } else { lo[0] };
        hi[0] = if v > hi[0] { v } else { hi[0] };
    }
    for c in chunks {
        for l in 0..8 {
            sq[l] += c[l] * c[l];
            lo[l] = if c[l] < lo[l] { c[l] } else { lo[l] };
            hi[l] = if c[l] > hi[l] { c[l] } else { hi[l] };
        }
    }
    let sq: f32 = sq.iter().sum();
    let lo = lo.iter().fold(0f32, |m, &v| if v < m { v } else { m });
    let hi = hi.iter().fold(0f32, |m, &v| if v > m { v } else { m });
    let range = hi - lo;
    let fits = range * range * x.len() as f32 <= OUTLIER_RANGE * OUTLIER_RANGE * sq;
    // NaN fails the comparison, so a row with NaN takes 12 bits too.
    let wide = !fits || !sq.is_finite();
    (lo, hi, wide)
}

/// 8-bit of a row between `lo` and `hi` (both ends include 0), packed four to an i32 (value
/// `4j` in the low byte of `out[j]`); returns `(scale, zero)` with `x ≈ (q − zero) · scale`.
#[inline(always)]
fn quantize_quads(x: &[f32], lo: f32, hi: f32, out: &mut [i32]) -> (f32, i32) {
    if hi - lo < TINY {
        out.iter_mut().for_each(|q| *q = 0);
        return (0.0, 0);
    }
    let scale = (hi - lo) / 255.0;
    let inv = 1.0 / scale;
    let zero = round_small(-lo * inv) as f32;
    // Little-endian: value 4j is the low byte of out[j]; the bytes past the row meet zero weights.
    let bytes: &mut [u8] = pulp::bytemuck::cast_slice_mut(out);
    for (b, &v) in bytes.iter_mut().zip(x) {
        *b = round_small((v * inv + zero).clamp(0.0, 255.0)) as u8;
    }
    bytes[x.len()..].iter_mut().for_each(|b| *b = 0);
    (scale, zero as i32)
}

/// Symmetric int8 of an output channel's weights for the 8-bit kernel, with the scale chosen so
/// that each pair of neighbours `(2j, 2j+1)` has |q0| + |q1| ≤ 128: with u8 inputs ≤ 255, each
/// of `vpmaddubsw`'s i16 pair sums stays within ±32 640, so it never saturates. Returns the scale.
fn quantize_pair_bounded(w: &[f32], out: &mut [i8]) -> f32 {
    let widest = w
        .chunks(2)
        .map(|p| p.iter().map(|v| v.abs()).sum::<f32>())
        .fold(0f32, f32::max);
    if widest == 0.0 || !widest.is_finite() {
        out.iter_mut().for_each(|q| *q = 0);
        return if widest == 0.0 { 0.0 } else { f32::NAN };
    }
    // Rounding adds at most 1 to a pair's 127.
    let inv = 127.0 / widest;
    for (o, v) in out.iter_mut().zip(w) {
        *o = (v * inv).round_ties_even() as i8;
    }
    widest / 127.0
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

/// Packs int8 weights (`weight(output, input)`, zero past `k` and `n`) in panels of 16 outputs:
/// for each group of `g` inputs, outputs 0–7 then 8–15, each with its `g` weights in input order.
fn lay_out(weight: &dyn Fn(usize, usize) -> i8, k: usize, n: usize, g: usize) -> Vec<i8x16> {
    let (panels, groups) = (n.div_ceil(NR), k.div_ceil(g));
    let mut bytes = Vec::with_capacity(panels * NR * groups * g);
    for p in 0..panels {
        for j in 0..groups {
            for c in p * NR..(p + 1) * NR {
                for i in j * g..(j + 1) * g {
                    bytes.push(if c < n && i < k { weight(c, i) } else { 0 });
                }
            }
        }
    }
    bytes
        .chunks_exact(16)
        .map(|c| {
            let mut lanes = [0i8; 16];
            lanes.copy_from_slice(c);
            pulp::cast(lanes)
        })
        .collect()
}

impl Int8Weights {
    /// Packs `wt`, the weights stored transposed (`[k, n]`, input-major) as the f32 path keeps them.
    pub fn pack(wt: &[f32], k: usize, n: usize) -> Int8Weights {
        Int8Weights::pack_as(wt, k, n, Activations::initial(k))
    }

    /// [`pack`](Self::pack) with the rows' width chosen (`Adaptive` for inputs longer than
    /// 32 768 falls back to `Wide`).
    pub fn pack_as(wt: &[f32], k: usize, n: usize, activations: Activations) -> Int8Weights {
        let panels = n.div_ceil(NR);
        let pairs = k.div_ceil(2);
        let activations = match k > NARROW_MAX_INPUTS {
            true => Activations::Wide,
            false => activations,
        };
        let narrow = activations == Activations::Adaptive;
        let mut scales = vec![[0f32; NR]; panels];
        let mut narrow_scales = vec![[0f32; NR]; panels];
        // Output channel c (column c of wt) as packed pairs, like an input row.
        let mut q = vec![0i32; panels * NR * pairs];
        // And for the 8-bit kernel, with a scale that keeps each pair's |w0| + |w1| ≤ 128.
        let mut q8 = vec![0i8; if narrow { n * k } else { 0 }];
        let mut column = vec![0f32; k];
        for c in 0..n {
            for (i, v) in column.iter_mut().enumerate() {
                *v = wt[i * n + c];
            }
            scales[c / NR][c % NR] =
                quantize_pairs(&column, &mut q[c * pairs..(c + 1) * pairs], WEIGHT_LEVELS);
            if narrow {
                narrow_scales[c / NR][c % NR] =
                    quantize_pair_bounded(&column, &mut q8[c * k..(c + 1) * k]);
            }
        }
        let weight = |c: usize, i: usize| -> i8 {
            let v = q[c * pairs + i / 2];
            (if i.is_multiple_of(2) { v } else { v >> 16 }) as i16 as i8
        };
        let weight8 = |c: usize, i: usize| q8[c * k + i];
        Int8Weights {
            k,
            n,
            pairs: lay_out(&weight, k, n, 2),
            quads: match narrow {
                true => lay_out(&weight8, k, n, 4),
                false => Vec::new(),
            },
            sums: (0..panels)
                .map(|p| {
                    std::array::from_fn(|l| match (narrow, p * NR + l) {
                        (true, c) if c < n => (0..k).map(|i| weight8(c, i) as i32).sum(),
                        _ => 0,
                    })
                })
                .collect(),
            scales,
            narrow_scales,
        }
    }

    pub fn activations(&self) -> Activations {
        match self.quads.is_empty() {
            true => Activations::Wide,
            false => Activations::Adaptive,
        }
    }

    /// Chooses how rows are quantized, and says whether the layer now runs that way. `Wide`
    /// drops the 8-bit kernel's weights (half the layer's memory), which are built only when
    /// packing: after it, or for a layer packed with 12-bit rows, `Adaptive` is refused.
    pub fn set_activations(&mut self, a: Activations) -> bool {
        if a == Activations::Wide {
            self.quads = Vec::new();
        }
        self.activations() == a
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
        let (pairs, quads) = (k.div_ceil(2), k.div_ceil(4));
        let adaptive = self.activations() == Activations::Adaptive;
        // Each row quantized once, ready to broadcast as i32s: as 12-bit pairs in `a12` or as
        // 8-bit quads in `a8` (the other stays unused for that row); its scale; which it took.
        let mut a12 = vec![0i32; m * pairs];
        let mut a8 = vec![0i32; m * quads];
        let mut rows = vec![Row::default(); m];
        let simd = avx2();
        let levels = activation_levels(k);
        let quantize = |row: usize, wide: &mut [i32], narrow: &mut [i32], out: &mut Row| {
            let x = &x[row * k..(row + 1) * k];
            #[inline(always)]
            fn quantize(x: &[f32], w: &mut [i32], n: &mut [i32], adaptive: bool, l: i32) -> Row {
                if adaptive {
                    let (lo, hi, wide) = row_shape(x);
                    if !wide {
                        let (scale, zero) = quantize_quads(x, lo, hi, n);
                        return Row { scale, zero, wide };
                    }
                }
                Row {
                    scale: quantize_pairs(x, w, l),
                    zero: 0,
                    wide: true,
                }
            }
            *out = match simd {
                Some(v3) => v3.vectorize(
                    #[inline(always)]
                    || quantize(x, wide, narrow, adaptive, levels),
                ),
                None => quantize(x, wide, narrow, adaptive, levels),
            };
        };
        if m * k >= SERIAL_WORK / 8 {
            a12.par_chunks_mut(pairs)
                .zip(a8.par_chunks_mut(quads))
                .zip(rows.par_iter_mut())
                .enumerate()
                .for_each(|(r, ((w, n), o))| quantize(r, w, n, o));
        } else {
            a12.chunks_mut(pairs)
                .zip(a8.chunks_mut(quads))
                .zip(rows.iter_mut())
                .enumerate()
                .for_each(|(r, ((w, n), o))| quantize(r, w, n, o));
        }

        // The rows by width, in order: each block tiles its share of each list on its kernel.
        let (wide, narrow): (Vec<usize>, Vec<usize>) = (0..m).partition(|&r| rows[r].wide);
        let within =
            |list: &'_ [usize], block: &std::ops::Range<usize>| -> std::ops::Range<usize> {
                list.partition_point(|&r| r < block.start)..list.partition_point(|&r| r < block.end)
            };
        grid(
            m,
            self.n,
            m * k * self.n,
            |block, panel, dst, stride, width| {
                let sums = &self.sums[panel];
                let b12 = &self.pairs[panel * pairs * 2..(panel + 1) * pairs * 2];
                let b8 = match adaptive {
                    true => &self.quads[panel * quads * 4..(panel + 1) * quads * 4],
                    false => &[][..],
                };
                let mut acc = [[0i32; NR]; MR];
                for (list, is_wide) in [(&narrow, false), (&wide, true)] {
                    for tile in list[within(list, &block)].chunks(MR) {
                        let acc = &mut acc[..tile.len()];
                        let a_rows: [&[i32]; MR] = std::array::from_fn(|i| match tile.get(i) {
                            Some(&r) if is_wide => &a12[r * pairs..(r + 1) * pairs],
                            Some(&r) => &a8[r * quads..(r + 1) * quads],
                            None => &[][..],
                        });
                        let a_rows = &a_rows[..tile.len()];
                        let out = Out {
                            rows: tile,
                            first: block.start,
                            quantized: &rows,
                            scales: match is_wide {
                                true => &self.scales[panel],
                                false => &self.narrow_scales[panel],
                            },
                            sums,
                        };
                        match (simd, is_wide) {
                            (Some(s), false) => s.vectorize(
                                #[inline(always)]
                                || {
                                    u8_tile_avx2(s, a_rows, b8, acc);
                                    out.write(acc, dst, stride, width);
                                },
                            ),
                            (Some(s), true) => s.vectorize(
                                #[inline(always)]
                                || {
                                    int8_tile_avx2(s, a_rows, b12, acc);
                                    out.write(acc, dst, stride, width);
                                },
                            ),
                            (None, false) => {
                                u8_tile_portable(a_rows, b8, acc);
                                out.write(acc, dst, stride, width);
                            }
                            (None, true) => {
                                int8_tile_portable(a_rows, b12, acc);
                                out.write(acc, dst, stride, width);
                            }
                        }
                    }
                }
            },
        )
    }
}

/// How one input row was quantized: `x ≈ (q − zero) · scale`, in 12 bits or 8.
#[derive(Clone, Copy, Default)]
struct Row {
    scale: f32,
    zero: i32,
    wide: bool,
}

/// How a tile's integer sums become f32: which rows they are, how each was quantized, each
/// output's scale and weight sum.
struct Out<'a> {
    rows: &'a [usize],
    /// The row `dst` starts at.
    first: usize,
    quantized: &'a [Row],
    scales: &'a [f32; NR],
    sums: &'a [i32; NR],
}

impl Out<'_> {
    /// `(acc − zero · weight sum) · row scale · channel scale` into the destination rows (row
    /// `r` at `(r − first) · stride`, `width` outputs wide). The same operations in the same
    /// order on every path.
    #[inline(always)]
    fn write(&self, acc: &[[i32; NR]], dst: &mut [f32], stride: usize, width: usize) {
        let (scales, sums) = (self.scales, self.sums);
        for (acc_row, &r) in acc.iter().zip(self.rows) {
            let Row { scale, zero, .. } = self.quantized[r];
            let mut row = [0f32; NR];
            for c in 0..NR {
                let v = acc_row[c].wrapping_sub(zero.wrapping_mul(sums[c]));
                row[c] = v as f32 * scale * scales[c];
            }
            dst[(r - self.first) * stride..][..width].copy_from_slice(&row[..width]);
        }
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

/// One register tile: `acc[r][c] = Σ_j a[r][j] · b[j][c]` over groups of `G` packed registers.
/// `weights` readies a group's registers once for all rows; `product` multiplies one row's
/// broadcast group with them into the i32 sums of outputs 0–7 and 8–15.
#[inline(always)]
fn tile_avx2<const G: usize, W: Copy>(
    simd: V3,
    a: &[&[i32]],
    b: &[i8x16],
    acc: &mut [[i32; NR]],
    weights: impl Fn(&[i8x16]) -> W,
    product: impl Fn(i32x8, W) -> (i32x8, i32x8),
) {
    macro_rules! tile {
        ($mr:literal) => {{
            let zero = simd.splat_i32x8(0);
            let mut lo = [zero; $mr];
            let mut hi = [zero; $mr];
            let rows: [&[i32]; $mr] = std::array::from_fn(|r| &a[r][..b.len() / G]);
            for (j, group) in b.chunks_exact(G).enumerate() {
                let w = weights(group);
                for r in 0..$mr {
                    let (l, h) = product(simd.splat_i32x8(rows[r][j]), w);
                    lo[r] = simd.wrapping_add_i32x8(lo[r], l);
                    hi[r] = simd.wrapping_add_i32x8(hi[r], h);
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

/// The 12-bit product over packed pairs: sign-extended weights, `vpmaddwd` (16-bit pairs into
/// i32 lanes).
#[inline(always)]
fn int8_tile_avx2(simd: V3, a: &[&[i32]], b: &[i8x16], acc: &mut [[i32; NR]]) {
    tile_avx2::<2, _>(
        simd,
        a,
        b,
        acc,
        |bp| {
            let b0: i16x16 = simd.convert_i8x16_to_i16x16(bp[0]);
            let b1: i16x16 = simd.convert_i8x16_to_i16x16(bp[1]);
            (b0, b1)
        },
        |av, (b0, b1)| {
            let av: i16x16 = pulp::cast(av);
            (
                simd.multiply_wrapping_add_adjacent_i16x16(av, b0),
                simd.multiply_wrapping_add_adjacent_i16x16(av, b1),
            )
        },
    )
}

/// The same integers as [`int8_tile_avx2`], one lane at a time.
fn int8_tile_portable(a: &[&[i32]], b: &[i8x16], acc: &mut [[i32; NR]]) {
    for (row, acc_row) in a.iter().zip(acc.iter_mut()) {
        *acc_row = [0; NR];
        for (&v, bp) in row.iter().zip(b.chunks_exact(2)) {
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

/// The u8 × int8 product over packed quads: `vpmaddubsw` multiplies each row's four u8 values
/// with an output's four weights into two i16 sums, `vpmaddwd` by ones adds those into the
/// output's i32 lane.
#[inline(always)]
fn u8_tile_avx2(simd: V3, a: &[&[i32]], b: &[i8x16], acc: &mut [[i32; NR]]) {
    let ones = simd.splat_i16x16(1);
    tile_avx2::<4, _>(
        simd,
        a,
        b,
        acc,
        |bq| {
            let b0: i8x32 = pulp::cast([bq[0], bq[1]]);
            let b1: i8x32 = pulp::cast([bq[2], bq[3]]);
            (b0, b1)
        },
        |av, (b0, b1)| {
            let av: i8x32 = pulp::cast(av);
            let p0 = simd.multiply_saturating_add_adjacent_i8x32(av, b0);
            let p1 = simd.multiply_saturating_add_adjacent_i8x32(av, b1);
            (
                simd.multiply_wrapping_add_adjacent_i16x16(p0, ones),
                simd.multiply_wrapping_add_adjacent_i16x16(p1, ones),
            )
        },
    )
}

/// The same integers as [`u8_tile_avx2`], saturation included, one lane at a time.
fn u8_tile_portable(a: &[&[i32]], b: &[i8x16], acc: &mut [[i32; NR]]) {
    let sat = |v: i32| v.clamp(i16::MIN as i32, i16::MAX as i32);
    for (row, acc_row) in a.iter().zip(acc.iter_mut()) {
        *acc_row = [0; NR];
        for (&v, bq) in row.iter().zip(b.chunks_exact(4)) {
            let x = (v as u32).to_le_bytes().map(|v| v as i32);
            for half in 0..2 {
                let w: [i8; 32] = pulp::cast([bq[2 * half], bq[2 * half + 1]]);
                for l in 0..8 {
                    let w = |t: usize| w[4 * l + t] as i32;
                    acc_row[half * 8 + l] +=
                        sat(x[0] * w(0) + x[1] * w(1)) + sat(x[2] * w(2) + x[3] * w(3));
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
            for a in [Activations::Wide, Activations::Adaptive] {
                let q = Int8Weights::pack_as(&wt, k, n, a);
                let got = q.product(&x, m);
                assert_eq!(got.len(), m * n);
                let err = max_rel_err(&got, &reference(&x, &wt, m, k, n));
                assert!(err < 0.03, "{a:?} {m}x{k}x{n}: {err}");
            }
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
        let rows: Vec<&[i32]> = a.chunks(pairs).collect();
        let wt = pseudo(k * 16, 6);
        let w = Int8Weights::pack(&wt, k, 16);
        let mut portable = [[0i32; NR]; MR];
        int8_tile_portable(&rows, &w.pairs, &mut portable);
        if let Some(s) = V3::try_new() {
            let mut fast = [[0i32; NR]; MR];
            s.vectorize(|| int8_tile_avx2(s, &rows, &w.pairs, &mut fast));
            assert_eq!(portable, fast);
        }
        // And the integers are the dot products of the unpacked values.
        let q0: i32 = (0..pairs)
            .map(|j| {
                let v = a[j];
                let lanes: [i8; 16] = pulp::cast(w.pairs[2 * j]);
                (v as i16 as i32) * lanes[0] as i32 + ((v >> 16) as i16 as i32) * lanes[1] as i32
            })
            .sum();
        assert_eq!(portable[0][0], q0);
    }

    /// Output `c`'s weight for input `i` in the 8-bit kernel's layout.
    fn weight8(w: &Int8Weights, c: usize, i: usize) -> i8 {
        let quads = w.k.div_ceil(4);
        let (panel, half, lane) = (c / NR, (c % NR) / 8, c % 8);
        let byte = ((panel * quads + i / 4) * 2 + half) * 32 + lane * 4 + i % 4;
        let lanes: [i8; 16] = pulp::cast(w.quads[byte / 16]);
        lanes[byte % 16]
    }

    #[test]
    fn the_u8_kernels_never_saturate_and_agree() {
        let (k, quads) = (38, 10);
        // Row 0 all 255, against outputs whose first inputs are their largest weights: the
        // worst case for `vpmaddubsw`'s i16 pair sums.
        let a: Vec<i32> = (0..6 * quads)
            .map(|i| match i < quads {
                true => -1,
                false => u32::from_le_bytes([
                    (i * 37 % 256) as u8,
                    (i * 91 % 256) as u8,
                    (i * 13 % 256) as u8,
                    (i * 7 % 256) as u8,
                ]) as i32,
            })
            .collect();
        let rows: Vec<&[i32]> = a.chunks(quads).collect();
        let mut wt = pseudo(k * 16, 6);
        wt[..16 * 4].iter_mut().for_each(|v| *v = 1.0);
        let w = Int8Weights::pack_as(&wt, k, 16, Activations::Adaptive);
        for c in 0..16 {
            for j in 0..k.div_ceil(2) {
                let pair: i32 = (2 * j..(2 * j + 2).min(k))
                    .map(|i| (weight8(&w, c, i) as i32).abs())
                    .sum();
                assert!(pair <= 128, "output {c}, pair {j}: {pair}");
            }
        }
        let mut portable = [[0i32; NR]; MR];
        u8_tile_portable(&rows, &w.quads, &mut portable);
        if let Some(s) = V3::try_new() {
            let mut fast = [[0i32; NR]; MR];
            s.vectorize(|| u8_tile_avx2(s, &rows, &w.quads, &mut fast));
            assert_eq!(portable, fast);
        }
        // The exact dot products: nothing was clipped.
        for (row, got) in rows.iter().zip(&portable) {
            for (c, &got) in got.iter().enumerate() {
                let want: i32 = (0..k)
                    .map(|i| {
                        let x = (row[i / 4] as u32).to_le_bytes()[i % 4] as i32;
                        x * weight8(&w, c, i) as i32
                    })
                    .sum();
                assert_eq!(got, want, "output {c}");
            }
        }
    }

    #[test]
    fn twelve_bit_rows_need_no_eight_bit_weights() {
        let (k, n) = (37, 21);
        let wt = pseudo(k * n, 11);
        let mut w = Int8Weights::pack_as(&wt, k, n, Activations::Adaptive);
        let x = pseudo(5 * k, 12);
        let reference = reference(&x, &wt, 5, k, n);
        let adaptive = w.product(&x, 5);
        assert!(max_rel_err(&adaptive, &reference) < 0.03);
        assert!(w.set_activations(Activations::Wide));
        assert!(w.quads.is_empty());
        let wide = w.product(&x, 5);
        assert!(max_rel_err(&wide, &reference) < 0.03);
        // Dropped, the 8-bit weights do not come back.
        assert!(!w.set_activations(Activations::Adaptive));
        assert_eq!(w.activations(), Activations::Wide);
        assert_eq!(w.product(&x, 5), wide);
    }

    #[test]
    fn rows_with_an_outlier_take_twelve_bits() {
        let mut x = pseudo(384, 13);
        assert!(!row_shape(&x).2, "an even row takes 8 bits");
        x[7] = 40.0; // ~70× the row's rms
        assert!(row_shape(&x).2);
        x[7] = f32::NAN;
        assert!(row_shape(&x).2);
        assert!(!row_shape(&[0.0; 16]).2);
    }

    #[test]
    fn eight_bit_rows_span_their_range_with_a_zero_point() {
        let x = [-0.1f32, 0.0, 0.2, 3.0, 0.05];
        let (lo, hi, wide) = row_shape(&x);
        assert_eq!((lo, hi, wide), (-0.1, 3.0, false));
        let mut q = [0i32; 2];
        let (s, z) = quantize_quads(&x, lo, hi, &mut q);
        assert_eq!(z, 8); // 0.1 / (3.1 / 255) = 8.2
        let b = [(q[0] as u32).to_le_bytes(), (q[1] as u32).to_le_bytes()].concat();
        assert_eq!(b[..5], [0, 8, 24, 255, 12]);
        for (v, q) in x.iter().zip(&b) {
            assert!(
                ((*q as i32 - z) as f32 * s - v).abs() <= s / 2.0 + 1e-6,
                "{v}"
            );
        }
        // All zero, or too small for a scale: zero.
        assert_eq!(quantize_quads(&[0.0; 4], 0.0, 0.0, &mut q), (0.0, 0));
        assert_eq!(quantize_quads(&[1e-38; 4], 0.0, 1e-38, &mut q), (0.0, 0));
        assert_eq!(q, [0, 0]);
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
        for a in [Activations::Wide, Activations::Adaptive] {
            let q = Int8Weights::pack_as(&wt, 8, 4, a);
            let y = q.product(&[0.0; 8], 1);
            assert_eq!(y, vec![0.0; 4]);
            let mut bad = vec![1.0; 8];
            bad[3] = f32::INFINITY;
            assert!(q.product(&bad, 1).iter().all(|v| v.is_nan()), "{a:?}");
            bad[3] = f32::NAN;
            assert!(q.product(&bad, 1).iter().all(|v| v.is_nan()), "{a:?}");
            assert!(q.product(&[1e-38; 8], 1).iter().all(|v| *v == 0.0), "{a:?}");
        }
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
