#!/usr/bin/env bash
# MiniLM sentence embeddings on the same 1,024 synthetic clinical sentences (20-40 words), same
# machine, same run, 2 threads each: hugflake at fp32, int8 and bf16 against sentence-transformers
# (PyTorch) and ONNX Runtime fp32 and int8 (the same model exported with torch.onnx, quantized with
# quantize_dynamic(per_channel=True)).
#
# Prints sentences/s at batch 1, 8, 32, 128 and single-sentence latency p50, each the median of
# ROUNDS (3) alternating rounds; each hugflake row's ratio against the best peer of its class
# (fp32: sentence-transformers and ORT fp32; int8: ORT int8; bf16 has no CPU peer here, so hugflake
# fp32), >1.0 meaning hugflake is faster; and each reduced precision's cosine against its own fp32
# on the first 256 sentences. Installs sentence-transformers, onnxruntime and onnx into their own
# venv (PyTorch from PyPI is large: this is a benchmark, not part of the test suite).
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${THREADS:-2}"
eval "$(scripts/test-deps.sh)"
bench_venv="${HUGFLAKE_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/hugflake-bench/venv}"
if [ ! -x "$bench_venv/bin/python" ] || ! "$bench_venv/bin/python" -c "import sentence_transformers, onnxruntime, onnx, onnxscript" 2>/dev/null; then
  echo "== installing sentence-transformers, onnxruntime and onnx into $bench_venv (large download, once)" >&2
  python3 -m venv "$bench_venv"
  "$bench_venv/bin/pip" install --quiet --disable-pip-version-check sentence-transformers onnxruntime onnx onnxscript
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 scripts/clinical_corpus.py 1024 >"$work/corpus.txt"
cargo build --release --quiet --bench embed
bench=$(ls -t target/release/deps/embed-* | grep -v '\.d$' | head -1)
onnx_cache="$(dirname "$bench_venv")/onnx"
rounds="${ROUNDS:-3}"
# Rounds alternate every tool, so a slow spell on a shared machine hits all of them; each figure is
# the median over the rounds.
for r in $(seq "$rounds"); do
  echo "== round $r/$rounds" >&2
  for p in fp32 int8 bf16; do
    RAYON_NUM_THREADS="$threads" "$bench" --model-dir "$HUGFLAKE_TEST_MINILM_DIR" --input "$work/corpus.txt" \
      --precision "$p" --cosine-against-fp32 --json >>"$work/results.jsonl"
  done
  "$bench_venv/bin/python" scripts/bench_python.py "$HUGFLAKE_TEST_MINILM_DIR" "$work/corpus.txt" "$threads" 2>/dev/null >>"$work/results.jsonl"
  "$bench_venv/bin/python" scripts/bench_onnx.py "$HUGFLAKE_TEST_MINILM_DIR" "$work/corpus.txt" "$threads" "$onnx_cache" 2>"$work/onnx.log" >>"$work/results.jsonl" \
    || { cat "$work/onnx.log" >&2; exit 1; }
done
versions=$("$bench_venv/bin/python" -c 'import sentence_transformers as s, torch, onnxruntime as o; print(f"sentence-transformers {s.__version__}, PyTorch {torch.__version__}, ONNX Runtime {o.__version__}")')
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_vnni|avx_vnni|avx512_bf16)$' | tr '\n' ' ')
python3 - "$work/results.jsonl" "$versions" "$rounds" "$threads" "$cpu ($flags)" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tools = ["hugflake fp32", "hugflake int8", "hugflake bf16", "sentence-transformers", "onnxruntime fp32", "onnxruntime int8"]
batches = [1, 8, 32, 128]
def med(tool, key, batch=None):
    v = [r[key] for r in rows if r.get("tool") == tool and key in r and (batch is None or r.get("batch") == batch)]
    return statistics.median(v) if v else float("nan")
peers = {"hugflake fp32": ["sentence-transformers", "onnxruntime fp32"], "hugflake int8": ["onnxruntime int8"], "hugflake bf16": ["hugflake fp32"]}
print(f"MiniLM, 1,024 clinical sentences, {sys.argv[4]} threads, median of {sys.argv[3]} alternating rounds")
print(f"{sys.argv[2]}; {sys.argv[5]}")
head = "".join(f"{'batch %d' % b:>10}" for b in batches) + f"{'p50 ms':>9}"
print(f"{'sentences/s':30}{head}")
for t in tools:
    print(f"{t:30}" + "".join(f"{med(t, 'sentences_per_s', b):>10.1f}" for b in batches) + f"{med(t, 'latency_p50_ms'):>9.2f}")
print("ratio against the best peer of the class (>1.0: hugflake faster; p50: lower is better, ratio peer/ours)")
for t, ps in peers.items():
    cells = []
    for b in batches:
        best = max(med(p, "sentences_per_s", b) for p in ps)
        cells.append(f"{med(t, 'sentences_per_s', b) / best:>9.2f}x")
    best_p50 = min(med(p, "latency_p50_ms") for p in ps)
    cells.append(f"{best_p50 / med(t, 'latency_p50_ms'):>8.2f}x")
    label = t + " vs " + "/".join(p.replace("sentence-transformers", "ST").replace("onnxruntime", "ORT") for p in ps)
    print(f"{label:30}" + "".join(cells))
print("cosine against the same tool's fp32, first 256 sentences (mean / min)")
for t in ["hugflake int8", "hugflake bf16", "onnxruntime int8"]:
    print(f"{t:30}{med(t, 'cosine_mean'):>10.5f}{med(t, 'cosine_min'):>10.5f}")
PY
