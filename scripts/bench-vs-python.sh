#!/usr/bin/env bash
# MiniLM sentence embeddings: hugflake (candle, fp32) against sentence-transformers (PyTorch) on the
# same 1,024 synthetic clinical sentences (20-40 words), same machine, same run, 2 threads each.
# Prints sentences/s at batch 1, 8, 32, 128 and single-sentence latency p50/p95 side by side with the
# ratio (>1.0 means hugflake is faster). Installs sentence-transformers into its own venv (PyTorch from
# PyPI is large: this is a benchmark, not part of the test suite).
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${THREADS:-2}"
eval "$(scripts/test-deps.sh)"
bench_venv="${HUGFLAKE_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hugflake-bench/venv}"
if [ ! -x "$bench_venv/bin/python" ] || ! "$bench_venv/bin/python" -c "import sentence_transformers" 2>/dev/null; then
  echo "== installing sentence-transformers into $bench_venv (large download, once)" >&2
  python3 -m venv "$bench_venv"
  "$bench_venv/bin/pip" install --quiet --disable-pip-version-check sentence-transformers
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 scripts/clinical_corpus.py 1024 >"$work/corpus.txt"
cargo build --release --quiet --bench embed
bench=$(ls -t target/release/deps/embed-* | grep -v '\.d$' | head -1)
RAYON_NUM_THREADS="$threads" "$bench" --model-dir "$HUGFLAKE_TEST_MINILM_DIR" --input "$work/corpus.txt" --json >"$work/ours.jsonl"
"$bench_venv/bin/python" scripts/bench_python.py "$HUGFLAKE_TEST_MINILM_DIR" "$work/corpus.txt" "$threads" 2>/dev/null >"$work/theirs.jsonl"
python3 - "$work/ours.jsonl" "$work/theirs.jsonl" "$("$bench_venv/bin/python" -c 'import sentence_transformers as s, torch; print(f"sentence-transformers {s.__version__}, PyTorch {torch.__version__}")')" <<'PY'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1])]
theirs = [json.loads(l) for l in open(sys.argv[2])]
print(f"MiniLM, 1,024 clinical sentences, {sys.argv[3]}")
print(f"{'':24}{'hugflake':>12}{'reference':>12}{'ratio':>8}")
for o in ours:
    if "batch" in o:
        t = next(x for x in theirs if x.get("batch") == o["batch"])
        print(f"{'batch %d (sentences/s)' % o['batch']:24}{o['sentences_per_s']:>12.1f}{t['sentences_per_s']:>12.1f}{o['sentences_per_s'] / t['sentences_per_s']:>7.2f}x")
o = next(x for x in ours if "latency_p50_ms" in x); t = next(x for x in theirs if "latency_p50_ms" in x)
for k, name in [("latency_p50_ms", "1 sentence p50 (ms)"), ("latency_p95_ms", "1 sentence p95 (ms)")]:
    print(f"{name:24}{o[k]:>12.2f}{t[k]:>12.2f}{t[k] / o[k]:>7.2f}x")
PY
