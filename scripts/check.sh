#!/usr/bin/env bash
# Every check, in the order a reviewer cares about; the same locally and in CI.
# Usage: scripts/check.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
BIN="$VENV/bin"
# Our Python: the packages at the root (pyproject lists them), tests, bench, scripts and examples.
PY_DIRS=(cli embeddings gateway guardrails ledger llm_pool orders retrieval router runtime workers tests bench scripts examples)
step() { printf '\n==> %s\n' "$*"; }

step "ruff format --check"
"$BIN/ruff" format --check "${PY_DIRS[@]}"
step "ruff check"
"$BIN/ruff" check "${PY_DIRS[@]}"
step "mypy (our code, not gen/)"
"$BIN/mypy"
step "buf format"
"$BIN/buf" format --diff --exit-code
step "buf lint"
"$BIN/buf" lint
step "buf breaking"
branch=$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo HEAD)
if [ "$branch" != "main" ] && git rev-parse --verify -q main >/dev/null; then
  against='.git#branch=main'
elif git rev-parse --verify -q HEAD~1 >/dev/null; then
  against='.git#ref=HEAD~1'
else
  against=''
fi
if [ -n "$against" ]; then
  echo "against $against"
  "$BIN/buf" breaking --against "$against"
else
  echo "no earlier commit to compare with"
fi
step "gen/ matches protos/"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BIN/python" scripts/gen_protos.py --out "$tmp/gen" >/dev/null
if ! diff -r -q "$tmp/gen" gen >/dev/null; then
  diff -r "$tmp/gen" gen | head -40
  echo "gen/ drifts from protos/: run 'make protos' and commit gen/" >&2
  exit 1
fi
echo "gen/ is up to date"
step "contracts version follows protos/"
"$BIN/python" scripts/build_contracts.py --check
step "pytest"
"$BIN/python" -m pytest "$@"
