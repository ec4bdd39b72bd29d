//! Sentence-embedding throughput and latency of hugflake's MiniLM path.
//!
//!     cargo bench --bench embed -- --model-dir DIR --input corpus.txt [--batches 1,8,32,128]
//!         [--precision fp32|int8|bf16] [--cosine-against-fp32] [--json]
//!
//! Without arguments it uses $HUGFLAKE_TEST_MINILM_DIR and a generated corpus. Prints sentences/s
//! per batch size and single-sentence latency p50/p95. `scripts/bench-vs-python.sh` runs it beside
//! sentence-transformers and ONNX Runtime on the same input.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use hugflake::inference::calibrate::cosine;
use hugflake::inference::quant::Precision;
use hugflake::inference::sentence::SentenceEncoder;

/// `println!` that ends the bench quietly when stdout is closed (`| head`), instead of panicking.
macro_rules! out {
    ($($t:tt)*) => {
        if writeln!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(0);
        }
    };
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = arg(&args, "--model-dir")
        .or_else(|| std::env::var("HUGFLAKE_TEST_MINILM_DIR").ok())
        .map(PathBuf::from);
    let Some(dir) = dir else {
        eprintln!(
            "embed bench: give --model-dir DIR or set HUGFLAKE_TEST_MINILM_DIR (scripts/test-deps.sh prints it)"
        );
        return;
    };
    let sentences: Vec<String> = match arg(&args, "--input") {
        Some(p) => std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect(),
        None => (0..1024)
            .map(|i| format!("Patient {i} presents with fever, cough and wheezing for {} days; exam shows mild dehydration and clear lungs; oral rehydration advised with follow-up in 48 hours.", i % 14 + 1))
            .collect(),
    };
    let batches: Vec<usize> = arg(&args, "--batches")
        .unwrap_or_else(|| "1,8,32,128".into())
        .split(',')
        .filter_map(|b| b.trim().parse().ok())
        .collect();
    let json = args.iter().any(|a| a == "--json");
    let precision = arg(&args, "--precision")
        .map(|p| Precision::parse(&p).unwrap_or_else(|| panic!("unknown precision {p}")))
        .unwrap_or_default();
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let mut enc = SentenceEncoder::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    // The cosine of each embedding against fp32's on the first 256 sentences.
    let reference = (args.iter().any(|a| a == "--cosine-against-fp32")
        && precision != Precision::Fp32)
        .then(|| {
            enc.encode(&texts[..texts.len().min(256)], 32)
                .unwrap_or_else(|e| panic!("{e}"))
        });
    // `--gemm` keeps fp32 weights as tensors multiplied by candle's gemm (the path before packing).
    let gemm = args.iter().any(|a| a == "--gemm") && precision == Precision::Fp32;
    if !gemm {
        enc.set_precision(precision)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let tool = if gemm {
        "hugflake fp32-gemm".to_string()
    } else {
        format!("hugflake {precision}")
    };
    if let Some(reference) = reference {
        let got = enc
            .encode(&texts[..reference.len()], 32)
            .unwrap_or_else(|e| panic!("{e}"));
        let cos: Vec<f64> = got
            .iter()
            .zip(&reference)
            .map(|(a, b)| f64::from(cosine(a, b)))
            .collect();
        let mean = cos.iter().sum::<f64>() / cos.len() as f64;
        let min = cos.iter().copied().fold(f64::INFINITY, f64::min);
        if json {
            out!("{{\"tool\": \"{tool}\", \"cosine_mean\": {mean:.5}, \"cosine_min\": {min:.5}}}");
        } else {
            out!("{tool} against fp32: cosine mean {mean:.5}, min {min:.5}");
        }
    }
    // Warm up.
    let _ = enc.encode(&texts[..texts.len().min(32)], 32);
    for b in &batches {
        let start = Instant::now();
        for chunk in texts.chunks(*b) {
            let _ = enc.encode(chunk, *b).unwrap_or_else(|e| panic!("{e}"));
        }
        let rate = texts.len() as f64 / start.elapsed().as_secs_f64();
        if json {
            out!("{{\"tool\": \"{tool}\", \"batch\": {b}, \"sentences_per_s\": {rate:.1}}}");
        } else {
            out!("{tool} batch {b:>3}: {rate:7.1} sentences/s");
        }
    }
    let mut lat: Vec<f64> = texts
        .iter()
        .take(200)
        .map(|t| {
            let s = Instant::now();
            let _ = enc.encode(&[t], 1);
            s.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    let (p50, p95) = (percentile(&lat, 0.5), percentile(&lat, 0.95));
    if json {
        out!(
            "{{\"tool\": \"{tool}\", \"latency_p50_ms\": {p50:.2}, \"latency_p95_ms\": {p95:.2}}}"
        );
    } else {
        out!("{tool} single sentence: p50 {p50:.2} ms, p95 {p95:.2} ms");
    }
}
