#!/usr/bin/env bash
# Headless Chromium for the chat page's browser tests (tests/edge/test_page_browser.py).
# Only `make test` needs it (WAYBILL_SETUP_FOR=test); `make up` skips this step.
# Playwright cannot download its own browser build here, so the tests drive Debian's
# `chromium` package through the installed python `playwright` (executable_path).
set -euo pipefail
CHROMIUM=${WAYBILL_CHROMIUM:-/usr/bin/chromium}

if [ "${WAYBILL_SETUP_FOR:-up}" != "test" ]; then
  exit 0
fi
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "40-browser: $CHROMIUM is missing and apt-get is not available;" \
    "install Chromium and set WAYBILL_CHROMIUM to its path" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "40-browser: installing chromium needs root (or sudo)" >&2
    exit 1
  fi
fi
echo "==> 40-browser: installing Debian's chromium for the browser tests (once; a minute or two)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
if [ ! -x "$CHROMIUM" ]; then
  echo "40-browser: chromium installed but $CHROMIUM is not there" >&2
  exit 1
fi
echo "==> 40-browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) ready"
