#!/usr/bin/env bash
# The TUI's speed as a person meets it, in tmux (140x40), release build:
#   - frame and key-to-screen times at scale (benches/ui.rs: 10k candidates, 500 services,
#     1k jobs, a 100k-line log);
#   - cold start to the first frame, with no daemon running (the TUI starts one in the background)
#     and with one already running;
#   - idle cost: CPU seconds of the TUI and the daemon, and bytes the TUI writes to the terminal,
#     over 30 s with nothing changing.
# Usage: scripts/bench-ui.sh [IDLE_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${1:-30}
cargo build --release --locked --bin hugflake >/dev/null
cargo bench --locked --bench ui 2>/dev/null
BIN=$(realpath target/release/hugflake)
tmp=$(mktemp -d)
sock="hugflake-bench-$$"
export TERM="${TERM:-xterm-256color}"
printf "[daemon]\nimport_concurrency = 2\n" >"$tmp/config.toml"
# No Hub: HF_HUB_OFFLINE keeps the Candidates pane to the catalog and the cache.
envs=(HUGFLAKE_CONFIG="$tmp/config.toml" HUGFLAKE_DATA_DIR="$tmp/data" HUGFLAKE_STATE_DIR="$tmp/state" HF_HUB_CACHE="$tmp/hf" HF_HUB_OFFLINE=1)
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  env "${envs[@]}" "$BIN" serve --stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
now_ms() { date +%s%3N; }

# Opens the TUI and prints the milliseconds until the tab bar is on screen.
first_frame() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  local t0 t1
  t0=$(now_ms)
  tmux -L "$sock" new -d -s ui -x 140 -y 40 "env ${envs[*]} $BIN"
  while ! tmux -L "$sock" capture-pane -p -t ui 2>/dev/null | grep -qF "1 Candidates"; do sleep 0.005; done
  t1=$(now_ms)
  echo $((t1 - t0))
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo
no_daemon=$(first_frame)
sleep 3 # the daemon it started is up now
with_daemon=$(first_frame)
echo "cold start to first frame: ${no_daemon} ms with no daemon running, ${with_daemon} ms with one running"
echo "  (measured from tmux starting the process to the frame being on screen, 5 ms polling)"

ui_pid=$(pgrep -f "^$BIN\$" | head -1)
daemon_pid=$(pgrep -f "$BIN serve" | head -1)
sleep 5
tmux -L "$sock" pipe-pane -t ui -o "cat > $tmp/out.bytes"
hz=$(getconf CLK_TCK)
u0=$(cpu_ticks "$ui_pid"); d0=$(cpu_ticks "$daemon_pid")
sleep "$IDLE"
u1=$(cpu_ticks "$ui_pid"); d1=$(cpu_ticks "$daemon_pid")
tmux -L "$sock" pipe-pane -t ui
bytes=$(stat -c %s "$tmp/out.bytes" 2>/dev/null || echo 0)
awk -v u=$((u1 - u0)) -v d=$((d1 - d0)) -v hz="$hz" -v s="$IDLE" -v b="$bytes" 'BEGIN {
  printf "idle for %d s: TUI %.2f CPU s (%.2f%% of a core), daemon %.2f CPU s (%.2f%%), %d bytes written to the terminal\n",
    s, u / hz, 100 * u / hz / s, d / hz, 100 * d / hz / s, b }'
rss=$(awk '/VmRSS/ {print $2}' "/proc/$ui_pid/status")
echo "TUI resident memory: $((rss / 1024)) MiB"
