#!/usr/bin/env bash
# Soak: mixed load on loopback for a while (30 minutes by default), with the daemon's and the
# service instance's memory and open file descriptors sampled every 30 s. The load is bounded
# (about one core): single-sentence calls from two clients, a batch embedding of 500 notes again
# and again into a fresh cache, and the status/logs/metrics polling the TUI does.
# It fails when, after a 3-minute warm-up, resident memory grows by more than 32 MiB or open
# descriptors by more than 16 in any process (stated bounds, printed with the samples).
# Usage: scripts/soak.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-1800}
WARMUP=180
cargo build --release --locked --bin hugflake --example hub-sim >/dev/null
FIXTURE=$(realpath tests/fixtures/tiny-bert)
tmp=$(mktemp -d)
# Copies: a rebuild during the soak must not swap the binaries under it.
cp target/release/hugflake target/release/examples/hub-sim "$tmp/"
BIN="$tmp/hugflake"
SIM="$tmp/hub-sim"
printf "[daemon]\nimport_concurrency = 2\n" >"$tmp/config.toml"
"$SIM" hugflake-test/tiny-bert="$FIXTURE" >"$tmp/endpoint" 2>/dev/null &
sim=$!
for _ in $(seq 50); do [ -s "$tmp/endpoint" ] && break; sleep 0.1; done
export HUGFLAKE_CONFIG="$tmp/config.toml" HUGFLAKE_DATA_DIR="$tmp/data" HUGFLAKE_STATE_DIR="$tmp/state" \
  HF_HUB_CACHE="$tmp/hf" HF_ENDPOINT="$(cat "$tmp/endpoint")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  kill "$sim" 2>/dev/null || true
  "$BIN" serve --stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

"$BIN" import hugflake-test/tiny-bert --model TINY --service TINY_SVC >/dev/null 2>&1
python3 - "$tmp/notes.csv" <<'PY'
import csv, sys
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["NOTE_ID", "NOTE_TEXT"])
    for i in range(500):
        w.writerow([f"N{i:05}", f"Child {i} with fever for {i % 7 + 1} days and a cough, lungs clear"])
PY
end=$((SECONDS + DURATION))
client() { while [ $SECONDS -lt $end ]; do "$BIN" predict TINY_SVC --text "wheezing at night $RANDOM" >/dev/null 2>>"$tmp/errors.log" || echo "call failed" >>"$tmp/errors"; sleep 0.05; done; }
batch() { while [ $SECONDS -lt $end ]; do rm -f "$tmp/cache.sqlite"; "$BIN" batch embed --service TINY_SVC --input "$tmp/notes.csv" --cache "$tmp/cache.sqlite" >/dev/null 2>>"$tmp/errors.log" || echo "batch failed" >>"$tmp/errors"; sleep 1; done; }
poll() { while [ $SECONDS -lt $end ]; do "$BIN" status --json >/dev/null 2>&1; "$BIN" logs TINY_SVC >/dev/null 2>&1; "$BIN" metrics TINY_SVC >/dev/null 2>&1; sleep 2; done; }
client & pids+=($!)
client & pids+=($!)
batch & pids+=($!)
poll & pids+=($!)

daemon=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['pid'])" "$tmp/data/daemon.json")
instance=$(pgrep -f "$BIN instance" | head -1)
rss() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$1/status" 2>/dev/null || echo 0; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
echo "seconds,daemon_rss_mib,daemon_fds,instance_rss_mib,instance_fds" | tee "$tmp/samples.csv"
start=$SECONDS
while [ $SECONDS -lt $end ]; do
  echo "$((SECONDS - start)),$(rss "$daemon"),$(fds "$daemon"),$(rss "$instance"),$(fds "$instance")" | tee -a "$tmp/samples.csv"
  sleep 30
done
wait "${pids[@]}" 2>/dev/null || true
errors=0
[ -f "$tmp/errors" ] && errors=$(wc -l <"$tmp/errors")
if [ "$errors" != 0 ]; then
  echo "failures, most frequent first:"
  grep "^hugflake:" "$tmp/errors.log" | sort | uniq -c | sort -rn | head -5
fi
python3 - "$tmp/samples.csv" "$WARMUP" "$errors" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1]))]
warm = [r for r in rows if int(r["seconds"]) >= int(sys.argv[2])] or rows
def growth(col):
    vals = [int(r[col]) for r in warm]
    return vals[-1] - vals[0], min(vals), max(vals)
bounds = {"daemon_rss_mib": 32, "instance_rss_mib": 32, "daemon_fds": 16, "instance_fds": 16}
ok = True
for col, bound in bounds.items():
    g, lo, hi = growth(col)
    verdict = "ok" if g <= bound else "GREW"
    ok &= g <= bound
    print(f"{col:18} after warm-up: {warm[0][col]} -> {warm[-1][col]} (min {lo}, max {hi}); growth {g} (bound {bound}) {verdict}")
print(f"failed client calls or batch runs: {sys.argv[3]}")
sys.exit(0 if ok and int(sys.argv[3]) == 0 else 1)
PY
