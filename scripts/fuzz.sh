#!/usr/bin/env bash
# Longer mutation fuzzing of every reader of user input (CSV, JSON Lines, Parquet, images, the
# config file): tests/readers_fuzz.rs with many more cases than the test command runs.
# HUGFLAKE_FUZZ_CASES=N sets the cases per reader (default here 20000).
set -euo pipefail
cd "$(dirname "$0")/.."
HUGFLAKE_FUZZ_CASES="${HUGFLAKE_FUZZ_CASES:-20000}" \
  cargo test --release --locked --test readers_fuzz -- --nocapture
