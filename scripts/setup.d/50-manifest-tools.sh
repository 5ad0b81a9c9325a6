#!/usr/bin/env bash
# The manifest checkers (.venv-k8s): kubernetes-validate (every rendered manifest against
# the Kubernetes OpenAPI schemas it ships) and checkov (security and reliability policies
# over the rendered manifests), for tests/ops/test_manifests.py.
#
# A separate environment because checkov pins its own versions of packages the platform
# also uses (jsonschema, pydantic's neighbours, boto3, networkx, ...); manifest-tools.txt
# pins the whole environment so a rebuild resolves to the same releases.
#
# Only `make test` needs it (WAYBILL_SETUP_FOR=test); `make up` skips this step.
# Idempotent: a stamp names the pinned requirements.
set -euo pipefail
cd "$(dirname "$0")/../.."
KVENV=${K8S_TOOLS_VENV:-.venv-k8s}
PYTHON=${K8S_TOOLS_PYTHON:-python3}
PINS=scripts/setup.d/manifest-tools.txt
REQUIREMENTS=("kubernetes-validate==1.37.0" "checkov==3.3.30")

if [ "${WAYBILL_SETUP_FOR:-test}" != "test" ]; then
  exit 0
fi
stamp="$KVENV/.installed-$( (printf '%s\n' "${REQUIREMENTS[@]}"; cat "$PINS") | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  exit 0
fi

echo "==> 50-manifest-tools: building $KVENV (kubernetes-validate, checkov; once, one to three minutes)"
echo "    progress: one line per package"
rm -rf "$KVENV"
"$PYTHON" -m venv "$KVENV"
"$KVENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
log="$KVENV/pip-install.log"
set +e
"$KVENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
  -c "$PINS" "${REQUIREMENTS[@]}" 2>&1 | tee "$log" | grep --line-buffered -E "^(Collecting|Successfully)"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  tail -30 "$log"
  echo "50-manifest-tools: pip install failed (exit $status); full log: $log" >&2
  exit "$status"
fi
"$KVENV/bin/kubernetes-validate" --version >/dev/null
"$KVENV/bin/checkov" --version >/dev/null
touch "$stamp"
echo "==> 50-manifest-tools: kubernetes-validate $("$KVENV/bin/python" -c \
  'import importlib.metadata as m; print(m.version("kubernetes-validate"))'), checkov $("$KVENV/bin/checkov" --version) ready in $KVENV"
