#!/usr/bin/env bash
# Set up sevis on Debian/Ubuntu: system packages, a virtual environment in .venv, the Python packages.
#   ./setup.sh          app + CLI
#   ./setup.sh --dev    also the test tools
# System packages: python3-venv; chromium (static PNG/SVG/PDF export via kaleido, browser tests);
# dataset-fashion-mnist (training, `sevis evaluate`, tests; the app ships its own reference set);
# nginx (`sevis serve --replicas N`: the proxy in front of the app processes, run as you, not as a service).
set -euo pipefail
cd "$(dirname "$0")"

want=(python3-venv chromium dataset-fashion-mnist nginx)
missing=()
for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else sudo="none"; fi
  if [ "$sudo" = none ]; then
    echo "setup.sh: please install these Debian packages first: ${missing[*]}" >&2
  else
    echo "setup.sh: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
if [ "${1:-}" = "--dev" ]; then req=requirements-dev.txt; else req=requirements.txt; fi
.venv/bin/python -m pip install -q -r "$req"
.venv/bin/python -m pip install -q --no-deps -e .
echo "setup.sh: ready (.venv)"
