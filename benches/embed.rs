//! Sentence-embedding throughput and latency of hugflake's MiniLM path.
//!
//!     cargo bench --bench embed -- --model-dir DIR --input corpus.txt [--batches 1,8,32,128] [--json]
//!
//! Without arguments it uses $HUGFLAKE_TEST_MINILM_DIR and a generated corpus. Prints sentences/s
//! per batch size and single-sentence latency p50/p95. `scripts/bench-vs-python.sh` runs it beside
//! sentence-transformers and ONNX Runtime on the same input.

use std::path::PathBuf;
use std::time::Instant;

use hugflake::inference::sentence::SentenceEncoder;

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
    let enc = SentenceEncoder::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    // Warm up.
    let _ = enc.encode(&texts[..texts.len().min(32)], 32);
    for b in &batches {
        let start = Instant::now();
        for chunk in texts.chunks(*b) {
            let _ = enc.encode(chunk, *b).unwrap_or_else(|e| panic!("{e}"));
        }
        let rate = texts.len() as f64 / start.elapsed().as_secs_f64();
        if json {
            println!("{{\"tool\": \"hugflake\", \"batch\": {b}, \"sentences_per_s\": {rate:.1}}}");
        } else {
            println!("hugflake batch {b:>3}: {rate:7.1} sentences/s");
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
        println!(
            "{{\"tool\": \"hugflake\", \"latency_p50_ms\": {p50:.2}, \"latency_p95_ms\": {p95:.2}}}"
        );
    } else {
        println!("hugflake single sentence: p50 {p50:.2} ms, p95 {p95:.2} ms");
    }
}
