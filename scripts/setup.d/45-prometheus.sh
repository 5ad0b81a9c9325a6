#!/usr/bin/env bash
# Debian's Prometheus (promtool and the server) for the alert-rule tests
# (tests/ops/test_alert_rules.py: promtool check/test rules, a server scraping the mesh).
# Only `make test` needs it (WAYBILL_SETUP_FOR=test); `make up` skips this step.
set -euo pipefail

if [ "${WAYBILL_SETUP_FOR:-up}" != "test" ]; then
  exit 0
fi
if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "45-prometheus: promtool/prometheus are missing and apt-get is not available;" \
    "install Prometheus (its server and promtool) on the PATH" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "45-prometheus: installing prometheus needs root (or sudo)" >&2
    exit 1
  fi
fi
echo "==> 45-prometheus: installing Debian's prometheus for the alert tests (once; seconds)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
if ! command -v promtool >/dev/null 2>&1; then
  echo "45-prometheus: prometheus installed but promtool is not on the PATH" >&2
  exit 1
fi
echo "==> 45-prometheus: $(prometheus --version 2>&1 | head -1) ready"
