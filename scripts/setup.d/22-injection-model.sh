#!/usr/bin/env bash
# The guardrails' prompt-injection classifier: all-MiniLM-L6-v2 fine-tuned on the committed
# training corpus (data/guardrails/injection_corpus.v2.jsonl, built from DEV portions only)
# and an n-gram regression, their block threshold cross-fitted on two folds, exported to ONNX
# and verified against torch, into $WAYBILL_MODEL_DIR/injection-classifier, keyed by a hash
# of the corpus, the base weights and the training settings. The first run takes about twenty
# minutes on two cores (progress per epoch); a second run is a hash and a file check.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
export WAYBILL_MODEL_DIR="${WAYBILL_MODEL_DIR:-$PWD/.waybill/models}"
export PYTHONPATH="$PWD:$PWD/gen${PYTHONPATH:+:$PYTHONPATH}"
repo=$PWD
# A neutral working directory: a folder named `triton` where Python looks breaks torch.
cd "${TMPDIR:-/tmp}"
if ! "$repo/$PY" -P -m guardrails.train_injection; then
  echo "22-injection-model: training the injection classifier failed (see above); the" \
    "guardrails cannot start without it. Re-run: bash scripts/setup.d/22-injection-model.sh" >&2
  exit 1
fi
