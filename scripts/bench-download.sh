#!/usr/bin/env bash
# Download throughput from the loopback Hub simulator: hugflake vs huggingface_hub's
# snapshot_download against the same server, in the same run, on the same machine.
# Repos: MiniLM (real weights, 91.6 MB in 13 files) and a synthetic 400 MB single-file model.
# Prints median seconds per tool and the ratio (>1.0 means hugflake is faster).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-5}"
eval "$(scripts/test-deps.sh)"
cargo build --release --quiet --bins --example hub-sim
cache="${HUGFLAKE_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hugflake-test}"
big="$cache/bench-big"
if [ ! -f "$big/pytorch_model.bin" ]; then
  mkdir -p "$big"
  python3 -c "import os,sys; f=open(sys.argv[1],'wb'); [f.write(os.urandom(1<<20)) for _ in range(400)]" "$big/pytorch_model.bin"
  echo '{"architectures": ["BertModel"]}' >"$big/config.json"
fi
work=$(mktemp -d)
trap 'kill $sim 2>/dev/null || true; rm -rf "$work"' EXIT
target/release/examples/hub-sim \
  sentence-transformers/all-MiniLM-L6-v2="$HUGFLAKE_TEST_MINILM_DIR@1110a243fdf4706b3f48f1d95db1a4f5529b4d41" \
  bench/big-model="$big" >"$work/endpoint" 2>/dev/null &
sim=$!
for _ in $(seq 50); do [ -s "$work/endpoint" ] && break; sleep 0.1; done
endpoint=$(cat "$work/endpoint")

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

for repo in sentence-transformers/all-MiniLM-L6-v2 bench/big-model; do
  : >"$work/ours"; : >"$work/theirs"
  for _ in $(seq "$runs"); do
    rm -rf "$work/c1" "$work/c2"
    t0=$(now)
    HF_ENDPOINT="$endpoint" HF_HUB_CACHE="$work/c1" target/release/hugflake download "$repo" >/dev/null 2>&1
    t1=$(now)
    HF_ENDPOINT="$endpoint" HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_DISABLE_PROGRESS_BARS=1 "$HUGFLAKE_TEST_PYTHON" -c \
      "import sys; from huggingface_hub import snapshot_download; snapshot_download(sys.argv[1], cache_dir=sys.argv[2])" \
      "$repo" "$work/c2" >/dev/null 2>&1
    t2=$(now)
    echo "$t1 - $t0" | bc -l >>"$work/ours"
    echo "$t2 - $t1" | bc -l >>"$work/theirs"
  done
  ours=$(median <"$work/ours"); theirs=$(median <"$work/theirs")
  bytes=$(du -sb "$work"/c1/models--*/blobs | cut -f1)
  printf '%-40s hugflake %6.3f s (%5.0f MB/s)  huggingface_hub %s %6.3f s (%5.0f MB/s)  ratio %.2fx\n' \
    "$repo" "$ours" "$(echo "$bytes / $ours / 1000000" | bc -l)" "$("$HUGFLAKE_TEST_PYTHON" -c 'import huggingface_hub as h; print(h.__version__)')" \
    "$theirs" "$(echo "$bytes / $theirs / 1000000" | bc -l)" "$(echo "$theirs / $ours" | bc -l)"
done
