#!/usr/bin/env bash
# MiniLM sentence embeddings: hugflake (candle, fp32) against sentence-transformers (PyTorch) on the
# same 1,024 synthetic clinical sentences (20-40 words), same machine, same run, 2 threads each.
# Prints sentences/s at batch 1, 8, 32, 128 and single-sentence latency p50/p95 side by side with the
# ratio (>1.0 means hugflake is faster), each the median of ROUNDS (3) alternating rounds. Installs sentence-transformers into its own venv (PyTorch from
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
rounds="${ROUNDS:-3}"
# Rounds alternate hugflake and the reference, so a slow spell on a shared machine hits both; each
# figure is the median over the rounds.
for r in $(seq "$rounds"); do
  echo "== round $r/$rounds" >&2
  RAYON_NUM_THREADS="$threads" "$bench" --model-dir "$HUGFLAKE_TEST_MINILM_DIR" --input "$work/corpus.txt" --json >>"$work/ours.jsonl"
  "$bench_venv/bin/python" scripts/bench_python.py "$HUGFLAKE_TEST_MINILM_DIR" "$work/corpus.txt" "$threads" 2>/dev/null >>"$work/theirs.jsonl"
done
python3 - "$work/ours.jsonl" "$work/theirs.jsonl" "$("$bench_venv/bin/python" -c 'import sentence_transformers as s, torch; print(f"sentence-transformers {s.__version__}, PyTorch {torch.__version__}")')" "$rounds" <<'PY'
import json, statistics, sys
def load(path):
    return [json.loads(l) for l in open(path)]
def median(rows, key, batch=None):
    vals = [r[key] for r in rows if key in r and (batch is None or r.get("batch") == batch)]
    return statistics.median(vals)
ours, theirs = load(sys.argv[1]), load(sys.argv[2])
print(f"MiniLM, 1,024 clinical sentences, {sys.argv[3]}; median of {sys.argv[4]} alternating rounds")
print(f"{'':24}{'hugflake':>12}{'reference':>12}{'ratio':>8}")
for b in sorted({r["batch"] for r in ours if "batch" in r}):
    o, t = median(ours, "sentences_per_s", b), median(theirs, "sentences_per_s", b)
    print(f"{'batch %d (sentences/s)' % b:24}{o:>12.1f}{t:>12.1f}{o / t:>7.2f}x")
for k, name in [("latency_p50_ms", "1 sentence p50 (ms)"), ("latency_p95_ms", "1 sentence p95 (ms)")]:
    o, t = median(ours, k), median(theirs, k)
    print(f"{name:24}{o:>12.2f}{t:>12.2f}{t / o:>7.2f}x")
PY
