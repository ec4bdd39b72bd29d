#!/usr/bin/env bash
# Opens the TUI in tmux as a person would, on a fresh data dir, and checks what the screen shows:
# the four tabs, the catalog's three models, LOCAL_CPU in Health, help, and that q leaves cleanly.
# With the real MiniLM ($HUGFLAKE_TEST_MINILM_DIR, set by scripts/test-deps.sh) it also imports it
# through the form, runs a semantic search in Query with a PHI-like text, and checks that the text
# reached no log, database or daemon file.
set -euo pipefail
BIN=$(realpath "${1:-${CARGO_TARGET_DIR:-target}/release/hugflake}")
SIM=$(realpath "${2:-${CARGO_TARGET_DIR:-target}/release/examples/hub-sim}")
FIXTURE=$(realpath "$(dirname "$0")/../tests/fixtures/tiny-bert")
tmp=$(mktemp -d)
export TERM="${TERM:-xterm-256color}"
sock="hugflake-smoke-$$"
printf "[daemon]\nimport_concurrency = 2\n" >"$tmp/config.toml"
# A Hub simulator with one model, so the live search has something to find.
repos=(hugflake-test/tiny-bert="$FIXTURE")
if [ -n "${HUGFLAKE_TEST_MINILM_DIR:-}" ]; then
  repos+=(sentence-transformers/all-MiniLM-L6-v2="$HUGFLAKE_TEST_MINILM_DIR")
fi
"$SIM" "${repos[@]}" >"$tmp/endpoint" 2>/dev/null &
sim=$!
for _ in $(seq 50); do [ -s "$tmp/endpoint" ] && break; sleep 0.1; done
envs=(HUGFLAKE_CONFIG="$tmp/config.toml" HUGFLAKE_DATA_DIR="$tmp/data" HUGFLAKE_STATE_DIR="$tmp/state" HF_HUB_CACHE="$tmp/hf" HF_ENDPOINT="$(cat "$tmp/endpoint")")

cleanup() {
  kill "$sim" 2>/dev/null || true
  tmux -L "$sock" kill-server 2>/dev/null || true
  env "${envs[@]}" "$BIN" serve --stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

passed=0
screen() { tmux -L "$sock" capture-pane -p -t smoke; }
expect() { # expect TEXT...: waits up to $WAIT s (10) for every text to be on screen
  local deadline=$((SECONDS + ${WAIT:-10}))
  while :; do
    local s ok=1
    s=$(screen)
    for t in "$@"; do grep -qF -- "$t" <<<"$s" || ok=0; done
    if [ $ok = 1 ]; then passed=$((passed + 1)); return 0; fi
    if [ $SECONDS -ge $deadline ]; then
      echo "FAILED: expected on screen: $*" >&2
      echo "---- screen ----" >&2; echo "$s" >&2
      echo "---- log ----" >&2; cat "$tmp/state/"*.log >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
}

tmux -L "$sock" new-session -d -s smoke -x 140 -y 40 \
  "env ${envs[*]} $BIN; echo \"EXIT=\$?\" > $tmp/exit; sleep 60"
expect "1 Candidates" "2 Imports" "3 Health" "4 Query"
expect "sentence-transformers/all-MiniLM-L6-v2" "dmis-lab/biobert-v1.1" "microsoft/BiomedCLIP"
expect "daemon pid" "data "
# The live Hub search follows the filter; the details panel fills in from the Hub.
tmux -L "$sock" send-keys -t smoke / t i n y Enter
expect "hugflake-test/tiny-bert" "Hub: 1" "parameters   50.9k"
# d downloads the selected model into the HF cache; the row then comes from the cache.
tmux -L "$sock" send-keys -t smoke d
expect "✔ done:" "cache        243 kB on disk"
tmux -L "$sock" send-keys -t smoke Escape
sleep 0.3
tmux -L "$sock" send-keys -t smoke 3
expect "LOCAL_CPU" "IDLE" "No services yet."
# A paste is text, never key presses: pasted into Health it changes nothing (it once typed `s`
# then `y` and suspended the pool).
tmux -L "$sock" set-buffer -b note "symptoms: fever and cough, says yes"
tmux -L "$sock" paste-buffer -p -b note -t smoke
expect "paste ignored" "IDLE"
if screen | grep -qF "Suspend"; then echo "FAILED: the paste ran as keys" >&2; screen >&2; exit 1; fi
if [ -n "${HUGFLAKE_TEST_MINILM_DIR:-}" ]; then
  # Import MiniLM through the form, watch it reach ready, then search the demo notes in Query.
  tmux -L "$sock" send-keys -t smoke 1 g i
  expect "Import sentence-transformers/all-MiniLM-L6-v2" "plan"
  tmux -L "$sock" send-keys -t smoke Enter
  expect "Import jobs (1)"
  WAIT=120 expect "✔ ready" "service ALL_MINILM_L6_V2_SVC is RUNNING and answered its first call"
  tmux -L "$sock" send-keys -t smoke 4
  expect "ALL_MINILM_L6_V2_SVC" "Input · ENCODE · compare"
  tmux -L "$sock" send-keys -t smoke m e
  tmux -L "$sock" send-keys -t smoke -l "Jane Doe MRN 00012345 toddler with an ear infection"
  tmux -L "$sock" send-keys -t smoke C-s
  WAIT=30 expect "top notes of 30" "Toddler brought in for ear pulling"
  # What was typed into Query (PHI-like) is in no log, database or daemon file (history is off).
  if grep -rqs "00012345" "$tmp/state" "$tmp/data"; then
    echo "FAILED: the query text reached $(grep -rls "00012345" "$tmp/state" "$tmp/data" | head -3)" >&2
    exit 1
  fi
  passed=$((passed + 1))
  tmux -L "$sock" send-keys -t smoke 3
  expect "ALL_MINILM_L6_V2_SVC" "RUNNING"
fi
tmux -L "$sock" send-keys -t smoke '?'
expect "Keys (remap them"
tmux -L "$sock" send-keys -t smoke q
sleep 0.3
tmux -L "$sock" send-keys -t smoke q
deadline=$((SECONDS + 10))
until [ -s "$tmp/exit" ]; do
  [ $SECONDS -lt $deadline ] || { echo "FAILED: q did not leave the TUI" >&2; screen >&2; exit 1; }
  sleep 0.1
done
grep -q "EXIT=0" "$tmp/exit" || { echo "FAILED: $(cat "$tmp/exit")" >&2; exit 1; }
passed=$((passed + 1))
# Back on the normal screen: the alternate screen and its tabs are gone.
if screen | grep -qF "1 Candidates"; then echo "FAILED: the TUI is still on screen after exit" >&2; exit 1; fi
passed=$((passed + 1))
# After a large paste, Ctrl-C still quits at once (input is drained every turn).
rm -f "$tmp/exit"
tmux -L "$sock" new-session -d -s smoke2 -x 140 -y 40 \
  "env ${envs[*]} $BIN; echo \"EXIT=\$?\" > $tmp/exit; sleep 60"
screen2() { tmux -L "$sock" capture-pane -p -t smoke2; }
deadline=$((SECONDS + 10))
until screen2 | grep -qF "4 Query"; do
  [ $SECONDS -lt $deadline ] || { echo "FAILED: the second TUI did not start" >&2; exit 1; }
  sleep 0.2
done
tmux -L "$sock" send-keys -t smoke2 4 e
tmux -L "$sock" set-buffer -b big "$(head -c 6000 /dev/zero | tr '\0' 'a')"
tmux -L "$sock" paste-buffer -p -b big -t smoke2
tmux -L "$sock" send-keys -t smoke2 C-c
deadline=$((SECONDS + 5))
until [ -s "$tmp/exit" ]; do
  [ $SECONDS -lt $deadline ] || { echo "FAILED: Ctrl-C after a 6 kB paste did not quit" >&2; screen2 >&2; exit 1; }
  sleep 0.1
done
passed=$((passed + 1))
echo "smoke: $passed passed, 0 failed"
