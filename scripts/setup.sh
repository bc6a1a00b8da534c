#!/usr/bin/env bash
# Install everything GW Portal needs on a fresh Debian machine: system packages and a virtualenv.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pair in chromium:chromium chromedriver:chromium-driver fitsverify:fitsverify; do
  cmd=${pair%%:*}; pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  mkdir -p var
  if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -e '.[test]'; } >var/setup-pip.log 2>&1; then
    tail -n 30 var/setup-pip.log >&2
    echo "pip install failed (full log: var/setup-pip.log)" >&2
    exit 1
  fi
  touch "$stamp"
fi
