#!/usr/bin/env bash
# Sets up everything `make up` and `make test` need, idempotently:
#   1. the virtual environment with the pinned dependencies (re-run when pyproject.toml changes);
#   2. every scripts/setup.d/*.sh step in name order (model export, browser, ...).
# Usage: scripts/setup.sh up|test   (steps may skip work only one of them needs)
set -euo pipefail
cd "$(dirname "$0")/.."
PURPOSE=${1:-up}
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
BIN="$VENV/bin"
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"

if [ ! -f "$stamp" ]; then
  echo "==> setting up $VENV (first run downloads dependencies; a few minutes)"
  [ -x "$BIN/python" ] || "$PYTHON" -m venv "$VENV"
  "$BIN/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  # torch first and pinned: anything else would pull a multi-GB CUDA build.
  "$BIN/python" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
  "$BIN/python" -m pip install --quiet --disable-pip-version-check -e '.[dev,export]'
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi

for step in scripts/setup.d/*.sh; do
  [ -e "$step" ] || continue
  WAYBILL_SETUP_FOR="$PURPOSE" VENV="$VENV" bash "$step"
done
