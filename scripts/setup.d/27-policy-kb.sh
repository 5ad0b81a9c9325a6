#!/usr/bin/env bash
# The shipped policy documents (data/kb) embedded once into .waybill/kb-vectors, keyed by the
# model export and each window's text, so every knowledge base seeded from them (embedded
# runs, test meshes) starts without running the model. A change embeds only what changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
export WAYBILL_MODEL_DIR="${WAYBILL_MODEL_DIR:-$PWD/.waybill/models}"
export PYTHONPATH="$PWD:$PWD/gen${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -m retrieval.prepare; then
  echo "27-policy-kb: embedding the policy documents failed (see above)." \
    "Re-run: bash scripts/setup.d/27-policy-kb.sh" >&2
  exit 1
fi
