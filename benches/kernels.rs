//! The linear-layer kernels alone, on MiniLM's and BERT-base's shapes: candle's gemm (f32 weights
//! as a tensor) against the packed f32, bf16 and int8 kernels of `inference::quant` (int8 with
//! 12-bit rows, as served, and `int8-8b` with 8-bit rows on `vpmaddubsw`, the opt-in
//! `HUGFLAKE_INT8_ACTIVATIONS=8`; these random inputs have no outlier rows).
//!
//!     cargo bench --bench kernels [-- --reps 200]
//!
//! Each figure is the fastest of `reps` calls (the least disturbed by other work on the machine),
//! in GFLOP/s counted as 2·m·k·n, on the threads rayon is given (`RAYON_NUM_THREADS`).

use std::time::Instant;

use candle_core::{Device, Tensor};
use hugflake::inference::quant::{Activations, FloatWeights, Int8Weights};

fn pseudo(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> candle_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let reps = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(100);
    println!(
        "{:>16} {:>9} {:>9} {:>9} {:>9} {:>9}   GFLOP/s, best of {reps}",
        "m×k×n", "gemm", "f32", "bf16", "int8", "int8-8b"
    );
    for &(m, k, n) in &[
        (20, 384, 1152),
        (20, 384, 1536),
        (20, 1536, 384),
        (320, 384, 1152),
        (320, 1536, 384),
        (512, 768, 3072),
    ] {
        let x = pseudo(m * k, 1);
        let wt = pseudo(k * n, 2);
        let xt = Tensor::from_vec(x.clone(), (m, k), &Device::Cpu)?;
        let wtt = Tensor::from_vec(wt.clone(), (k, n), &Device::Cpu)?;
        let f32p = FloatWeights::pack(&wt, k, n, false);
        let bf16 = FloatWeights::pack(&wt, k, n, true);
        let int8 = Int8Weights::pack_as(&wt, k, n, Activations::Wide);
        let int8_narrow = Int8Weights::pack_as(&wt, k, n, Activations::Adaptive);
        let flops = 2.0 * (m * k * n) as f64 / 1e9;
        let gemm = best(reps, || {
            let _ = xt.matmul(&wtt);
        });
        let f = best(reps, || {
            let _ = f32p.product(&x, m);
        });
        let b = best(reps, || {
            let _ = bf16.product(&x, m);
        });
        let q = best(reps, || {
            let _ = int8.product(&x, m);
        });
        let qn = best(reps, || {
            let _ = int8_narrow.product(&x, m);
        });
        println!(
            "{:>16} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            format!("{m}×{k}×{n}"),
            flops / gemm,
            flops / f,
            flops / b,
            flops / q,
            flops / qn
        );
    }
    Ok(())
}
