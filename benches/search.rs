//! Search over a large embedding cache: load time, query latency (p50/p95) and the most similar
//! pairs, on synthetic unit vectors of 384 dimensions (MiniLM's).
//!
//!     cargo bench --bench search -- [--notes 100000] [--pairs-notes 100000]
//!
//! `scripts/bench-batch.sh` runs it beside the end-to-end embedding benchmark.

use std::time::Instant;

use hugflake::batch::cache::Cache;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = arg(&args, "--notes", 100_000);
    let pairs_n = arg(&args, "--pairs-notes", n);
    let dim = 384;
    let mut seed = 42u64;
    let mut rnd = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("bench.sqlite");
    let mut cache = Cache::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        let items: Vec<(String, String, Vec<f32>)> = chunk
            .iter()
            .map(|i| {
                (
                    format!("N{i:07}"),
                    String::new(),
                    (0..dim).map(|_| rnd()).collect(),
                )
            })
            .collect();
        cache
            .store("BENCH", "V1", &items)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    println!("store {n} embeddings: {:.2} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let m = cache.matrix(None).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "load {} embeddings: {:.2} s",
        m.len(),
        t.elapsed().as_secs_f64()
    );
    let mut lat: Vec<f64> = (0..50)
        .map(|_| {
            let q: Vec<f32> = (0..dim).map(|_| rnd()).collect();
            let t = Instant::now();
            let hits = m.search(&q, 10).unwrap_or_default();
            assert_eq!(hits.len(), 10);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    println!(
        "search top 10 of {n}: p50 {:.1} ms, p95 {:.1} ms",
        lat[lat.len() / 2],
        lat[(lat.len() - 1) * 95 / 100]
    );
    let sub = hugflake::batch::cache::Matrix {
        model: m.model.clone(),
        version: m.version.clone(),
        ids: m.ids[..pairs_n.min(m.len())].to_vec(),
        dim,
        data: m.data[..pairs_n.min(m.len()) * dim].to_vec(),
        damaged: Vec::new(),
    };
    let t = Instant::now();
    let pairs = sub.pairs(10).unwrap_or_default();
    println!(
        "most similar 10 pairs of {} notes ({:.2e} pairs): {:.1} s",
        sub.len(),
        sub.len() as f64 * (sub.len() as f64 - 1.0) / 2.0,
        t.elapsed().as_secs_f64()
    );
    assert_eq!(pairs.len(), 10);
}
