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
  echo "==> installing the project and its dependencies (progress: one line per package)"
  log="$VENV/pip-install.log"
  set +e
  "$BIN/python" -m pip install --disable-pip-version-check --progress-bar off -e '.[dev,export]' \
    2>&1 | tee "$log" | grep --line-buffered -E "^(Collecting|Successfully)"
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ]; then
    tail -30 "$log"
    echo "setup: pip install failed (exit $status); full log: $log" >&2
    exit "$status"
  fi
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi

for step in scripts/setup.d/*.sh; do
  [ -e "$step" ] || continue
  WAYBILL_SETUP_FOR="$PURPOSE" VENV="$VENV" bash "$step"
done
