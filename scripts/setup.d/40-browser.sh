#!/usr/bin/env bash
# Headless Chromium for the chat page's browser tests (tests/edge/test_page_browser.py).
# Only `make test` needs it (WAYBILL_SETUP_FOR=test); `make up` skips this step.
# Playwright cannot download its own browser build here, so the tests drive Debian's
# `chromium` package through the installed python `playwright` (executable_path).
set -euo pipefail
source "$(dirname "$0")/../lib/apt.sh"
CHROMIUM=${WAYBILL_CHROMIUM:-/usr/bin/chromium}

if [ "${WAYBILL_SETUP_FOR:-up}" != "test" ] || [ -x "$CHROMIUM" ]; then
  exit 0
fi
apt_install 40-browser chromium "the browser tests (or set WAYBILL_CHROMIUM to a Chromium)"
if [ ! -x "$CHROMIUM" ]; then
  echo "40-browser: chromium installed but $CHROMIUM is not there" >&2
  exit 1
fi
echo "==> 40-browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) ready"
