#!/usr/bin/env bash
# The Triton environment (.venv-triton): nvidia-pytriton, which bundles a real
# Triton Inference Server that runs on CPU. The LLM pool's Triton tests and
# `waybill up --triton` serve triton_models/cpu_test with it.
#
# A separate environment because nvidia-pytriton 0.7 wants numpy<2 (the platform
# runs numpy 2). Triton's Python backend loads the system libpython, so the
# environment is built from /usr/bin/python3.11 when there is one; otherwise from
# $TRITON_PYTHON (default python3), and the folder holding its libpython is
# recorded for LD_LIBRARY_PATH.
#
# Built for `make test` always, for `make up` only with WAYBILL_WITH_TRITON=1.
# Idempotent: a stamp names the pinned requirements.
set -euo pipefail
cd "$(dirname "$0")/../.."
TVENV=${TRITON_VENV:-.venv-triton}
REQUIREMENTS=("nvidia-pytriton==0.7.0" "numpy<2")

if [ "${WAYBILL_SETUP_FOR:-test}" = "up" ] && [ "${WAYBILL_WITH_TRITON:-0}" != "1" ]; then
  exit 0
fi
stamp="$TVENV/.installed-$(printf '%s\n' "${REQUIREMENTS[@]}" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  exit 0
fi

if [ -x /usr/bin/python3.11 ]; then
  python=/usr/bin/python3.11
else
  python=${TRITON_PYTHON:-python3}
fi
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
libdir=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR") or "")')
ldlib=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("INSTSONAME") or "")')
if [ -z "$ldlib" ] || [ ! -e "$libdir/$ldlib" ]; then
  echo "error: $python ($version) has no shared libpython ($libdir/$ldlib);" \
    "Triton's Python backend needs one: install python$version with its shared library" \
    "(Debian: libpython$version) or set TRITON_PYTHON to a Python built with --enable-shared" >&2
  exit 1
fi

echo "==> building $TVENV from $python $version (nvidia-pytriton: a Triton server for CPU tests)"
rm -rf "$TVENV"
"$python" -m venv "$TVENV"
"$TVENV/bin/python" -m pip install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}"
"$TVENV/bin/python" -c 'import pytriton.triton, numpy; assert numpy.__version__ < "2"'
printf '%s\n' "$libdir" > "$TVENV/waybill-libdir"
touch "$stamp"
echo "==> $TVENV ready"
