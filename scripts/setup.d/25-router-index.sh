#!/usr/bin/env bash
# The router's exemplar vectors: the training corpus (data/router/corpus.v2.jsonl) embedded
# once into .waybill/router-index, keyed by the model export and the texts, so every router
# process (and every test that starts one) loads them in milliseconds instead of embedding
# 6,400 rows for the better part of a minute. A second run is a hash and a file check.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
export WAYBILL_MODEL_DIR="${WAYBILL_MODEL_DIR:-$PWD/.waybill/models}"
export PYTHONPATH="$PWD:$PWD/gen${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -m router.vectors; then
  echo "25-router-index: building the router's vectors failed (see above)." \
    "Re-run: bash scripts/setup.d/25-router-index.sh" >&2
  exit 1
fi
