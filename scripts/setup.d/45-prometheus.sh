#!/usr/bin/env bash
# Debian's Prometheus (promtool and the server) for the alert-rule tests
# (tests/ops/test_alert_rules.py: promtool check/test rules, a server scraping the mesh).
# Only `make test` needs it (WAYBILL_SETUP_FOR=test); `make up` skips this step.
set -euo pipefail
source "$(dirname "$0")/../lib/apt.sh"

if [ "${WAYBILL_SETUP_FOR:-up}" != "test" ]; then
  exit 0
fi
if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
apt_install 45-prometheus prometheus "the alert-rule tests (promtool and the server)"
if ! command -v promtool >/dev/null 2>&1; then
  echo "45-prometheus: prometheus installed but promtool is not on the PATH" >&2
  exit 1
fi
echo "==> 45-prometheus: $(prometheus --version 2>&1 | head -1) ready"
